#!/usr/bin/env bash
# Helpers shared by the benchmark scripts (e2e/bench-reconcile.sh, e2e/bench-memory.sh).
# Sourced after lib.sh, with kubectl on PATH and KUBECONFIG exported; never run.
#
# - Extra kwok nodes for runs of more pods than the 6 nodes of e2e/cluster.sh hold (110 pods
#   each): bench_nodes_add PODS adds bench-node-<i> (the Node shape of cluster.sh's `nodes()`,
#   zones spread over zone-a/b/c, labelled type=kwok-bench so that cluster.sh's `nodes_ready`,
#   which counts type=kwok, is not disturbed) until PODS more pods fit, and waits for them to
#   be Ready; bench_nodes_delete removes the nodes it added. BENCH_EXTRA_NODES=K adds K more
#   than needed (to exercise the path with a small run).
# - kube-apiserver request counts (apiserver_request_total): snapshots, deltas, summaries.
# - StreamApps settled (apps_settled_count): what "all Ready" means for apps of kwok pods.
# - bench_row: a row of e2e/bench.sh's table, appended to $BENCH_ROWS when it names a file.

BENCH_NODE_PODS=110
BENCH_NODE_ZONES=(zone-a zone-b zone-c)
BENCH_NODES=() # names of the nodes bench_nodes_add created

# bench_row SECTION MEASURE VALUE [TARGET]: appends the row to $BENCH_ROWS (if set).
bench_row() {
  [[ -n ${BENCH_ROWS:-} ]] || return 0
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$BENCH_ROWS"
}

# bench_free_port START: the first port from START up that nothing listens on.
bench_free_port() {
  local p=$1
  until port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

# bench_pod_room: pods the schedulable nodes can still take (allocatable pods of the Ready,
# schedulable nodes minus the pods bound to them that have not finished).
bench_pod_room() {
  local cap used
  cap=$(kubectl get nodes -o jsonpath='{range .items[*]}{.spec.unschedulable}{" "}{.status.allocatable.pods}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk '$1 != "true" && $NF == "True" {s += $(NF - 1)} END {print s + 0}')
  used=$(kubectl get pods -A --field-selector 'status.phase!=Succeeded,status.phase!=Failed' \
    -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -c . || true)
  echo $((cap - used))
}

bench_node_yaml() { # NAME ZONE
  cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $1
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: $2
    type: kwok-bench
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "$BENCH_NODE_PODS", ephemeral-storage: 1Ti}
  capacity: {cpu: "32", memory: 256Gi, pods: "$BENCH_NODE_PODS", ephemeral-storage: 1Ti}
NODE
}

bench_nodes_ready() {
  local ready
  ready=$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk -v names=" ${BENCH_NODES[*]} " '$2 == "True" && index(names, " " $1 " ") {n++} END {print n + 0}')
  [[ $ready == "${#BENCH_NODES[@]}" ]]
}

# bench_nodes_add PODS: adds nodes until PODS pods (plus 50 spare) fit beside what runs, plus
# BENCH_EXTRA_NODES; waits until they are Ready. Call it directly (not in $(...)): it records
# the nodes in BENCH_NODES for bench_nodes_delete.
bench_nodes_add() {
  local pods=$1 room short count i zone
  room=$(bench_pod_room)
  short=$((pods + 50 - room))
  count=$(((short > 0 ? (short + BENCH_NODE_PODS - 1) / BENCH_NODE_PODS : 0) + ${BENCH_EXTRA_NODES:-0}))
  if ((count == 0)); then
    log "nodes: room for $room pods, $pods (+50) needed: no node added"
    return 0
  fi
  log "nodes: room for $room pods, $pods (+50) needed: adding $count kwok nodes bench-node-*"
  # Recorded first, so that the cleanup deletes whatever part of them an error left behind.
  for ((i = 0; i < count; i++)); do BENCH_NODES+=("bench-node-$i"); done
  for ((i = 0; i < count; i++)); do
    zone=${BENCH_NODE_ZONES[$((i % ${#BENCH_NODE_ZONES[@]}))]}
    bench_node_yaml "bench-node-$i" "$zone"
  done | kubectl apply --server-side --field-manager kstreams-bench -f - >/dev/null
  wait_until 120 "nodes: $count bench nodes Ready" bench_nodes_ready ||
    die "nodes: the $count bench nodes were not Ready within 120s (is kwok running?)"
}

# bench_nodes_delete: deletes the nodes bench_nodes_add created (the pods on them should be gone
# first: delete and wait for the namespaces before).
bench_nodes_delete() {
  ((${#BENCH_NODES[@]} > 0)) || return 0
  log "nodes: deleting ${BENCH_NODES[*]}"
  kubectl delete node "${BENCH_NODES[@]}" --ignore-not-found --timeout=60s >/dev/null 2>&1 ||
    log "nodes: deleting ${BENCH_NODES[*]} failed"
  BENCH_NODES=()
}

# --- Volumes of earlier runs -----------------------------------------------------------------

# bench_volumes_left NS_REGEX: PersistentVolumes still bound or released to a claim in a
# namespace matching NS_REGEX.
bench_volumes_left() {
  kubectl get pv -o jsonpath='{range .items[*]}{.spec.claimRef.namespace}{"\n"}{end}' | grep -cE "^($1)\$" || true
}
bench_no_volumes_left() { [[ $(bench_volumes_left "$1") == 0 ]]; }

# bench_wait_volumes_reclaimed NS_REGEX: waits until the PV controller has deleted the volumes
# of the deleted namespaces matching NS_REGEX. A namespace is gone well before its volumes: the
# PV controller reclaims them one by one afterwards, with the same workers and request budget
# it binds new claims with, so a run started meanwhile waits for its own claims behind that
# cleanup (200 volumes took about 90 s here).
bench_wait_volumes_reclaimed() {
  local left
  left=$(bench_volumes_left "$1")
  ((left > 0)) || return 0
  log "volumes: waiting for $left volumes of earlier benchmark namespaces to be reclaimed"
  wait_until 1200 "volumes: reclaimed" bench_no_volumes_left "$1" ||
    die "volumes: $(bench_volumes_left "$1") volumes of $1 not reclaimed within 1200s"
}

# --- kube-apiserver requests ------------------------------------------------------------------

# api_snapshot FILE: apiserver_request_total summed by verb and resource, one line each:
# "VERB RESOURCE[/SUBRESOURCE] COUNT" (requests of no resource, such as discovery and /readyz, as "-").
# The counts are every client's: the operator's, kube-controller-manager's, the scheduler's,
# kwok's and this script's own kubectl.
api_snapshot() {
  kubectl get --raw /metrics | awk '
    /^apiserver_request_total\{/ {
      verb = res = sub_ = ""
      if (match($0, /verb="[^"]*"/)) verb = substr($0, RSTART + 6, RLENGTH - 7)
      if (match($0, /[{,]resource="[^"]*"/)) { s = substr($0, RSTART + 1, RLENGTH - 1); res = substr(s, 11, length(s) - 11) }
      if (match($0, /subresource="[^"]*"/)) sub_ = substr($0, RSTART + 13, RLENGTH - 14)
      if (res == "") res = "-"
      else if (sub_ != "") res = res "/" sub_
      n[verb " " res] += $NF
    }
    END { for (k in n) printf "%s %d\n", k, n[k] }' | sort >"$1"
}

# api_delta BEFORE AFTER: "VERB RESOURCE DELTA" for every count that grew.
api_delta() {
  awk 'FNR == NR {b[$1 " " $2] = $3; next} {d = $3 - b[$1 " " $2]; if (d > 0) print $1, $2, d}' "$1" "$2"
}

# api_by_verb DELTA [DIVISOR]: "GET 600 LIST 200 PATCH 1200 ..." (WATCH and WATCHLIST left
# out; divided by DIVISOR, to one decimal, when given).
api_by_verb() {
  awk -v div="${2:-}" '
    $1 !~ /^WATCH/ {n[$1] += $3}
    END {
      split("GET LIST POST PUT PATCH APPLY DELETE DELETECOLLECTION", order, " ")
      for (i = 1; i in order; i++) if (order[i] in n) { out = out sep fmt(order[i], n[order[i]]); sep = " "; delete n[order[i]] }
      for (v in n) { out = out sep fmt(v, n[v]); sep = " " }
      print (out == "" ? "none" : out)
    }
    function fmt(v, c) { return div == "" ? v " " c : sprintf("%s %.1f", v, c / div) }' "$1"
}

# api_by_resource DELTA VERB_REGEX [LIMIT]: the requests of the verbs matching VERB_REGEX by
# resource and verb, most first: "pods/status PATCH 1000, statefulsets APPLY 200, ...".
api_by_resource() {
  awk -v v="^($2)\$" '$1 ~ v {print $3, $2, $1}' "$1" | sort -k1,1nr -k2 |
    head -n "${3:-10}" | awk '{printf "%s%s %s %d", (NR > 1 ? ", " : ""), $2, $3, $1} END {if (NR == 0) printf "none"; print ""}'
}
# api_writes_by_resource DELTA [LIMIT]: the writes (POST PUT PATCH APPLY DELETE).
api_writes_by_resource() { api_by_resource "$1" 'POST|PUT|PATCH|APPLY|DELETE|DELETECOLLECTION' "${2:-10}"; }
# api_reads_by_resource DELTA [LIMIT]: the reads (GET LIST; WATCH left out).
api_reads_by_resource() { api_by_resource "$1" 'GET|LIST' "${2:-10}"; }

# api_writes DELTA RESOURCE: the writes to RESOURCE (e.g. streamapps/status) in DELTA.
api_writes() {
  awk -v r="$2" '$2 == r && $1 ~ /^(POST|PUT|PATCH|APPLY|DELETE|DELETECOLLECTION)$/ {s += $3} END {print s + 0}' "$1"
}

# --- StreamApps settled -----------------------------------------------------------------------

# apps_settled_count NS: how many StreamApps in NS are settled: reconciled at their generation,
# every replica Ready, Kafka checked (status.kafka.lastChecked), and Ready, or not Ready only
# because their pods have no member in the app's group yet (reason MembersJoining, within the
# member grace): kwok's pods run no Kafka Streams, so with Kafka checks on no app of kwok pods
# is ever Ready; MembersJoining is the steady state of such an app whose every other part is
# done (the operator judges membership last).
apps_settled_count() {
  kubectl -n "$1" get streamapps -o jsonpath='{range .items[*]}{.metadata.generation}|{.status.observedGeneration}|{.spec.replicas}|{.status.readyReplicas}|{.status.kafka.lastChecked}|{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
    awk -F'|' '$1 == $2 && $3 == $4 && $5 != "" && ($6 == "True" || $7 == "MembersJoining") {n++} END {print n + 0}'
}
# apps_ready_reasons NS: "MembersJoining 20, NoInstances 3" (the Ready condition's reasons).
apps_ready_reasons() {
  kubectl -n "$1" get streamapps -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
    awk '{n[$0 == "" ? "(no Ready condition)" : $0]++} END {for (r in n) printf "%s%s %d", (s++ ? ", " : ""), r, n[r]; print ""}'
}
