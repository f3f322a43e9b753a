#!/usr/bin/env bash
# Reconcile benchmark: N StreamApps (default 200) through the operator, against the floor of
# applying the same objects directly with `kubectl apply --server-side`. Prints time to all
# Ready for both (the operator with Kafka checks off, so Ready means the Kubernetes side), their
# ratio, the operator's peak RSS and reconciles, and the kube-apiserver
# requests each phase made (by verb, and the writes by resource: every client's, the
# controllers', kwok's and this script's polling included). Adds kwok nodes (e2e/bench-nodes.sh)
# when the cluster's cannot hold N pods, and deletes them at the end. Needs the stack (make up,
# or run under e2e/with-stack.sh). With BENCH_ROWS naming a file, appends the figures to it as
# rows of e2e/bench.sh's table; BENCH_LOG_DIR keeps the operator's log.
# Usage: e2e/bench-reconcile.sh [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-${N:-200}}
eval "$("$E2E_DIR/cluster.sh" env)"
. "$E2E_DIR/bench-nodes.sh"
BIN=${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/kstreams-operator
BOOTSTRAP=${KAFKA_BOOTSTRAP:-127.0.0.1:19092}
WORK=$(mktemp -d)
OP_LOG=${BENCH_LOG_DIR:-$WORK}/reconcile-$N-operator.log
FLOOR_NS=bench-floor-$$ OP_NS=bench-op-$$
SECTION="reconcile N=$N"
OP_PID=
cleanup() {
  local rc=$?
  trap - EXIT
  if [[ -n $OP_PID ]]; then
    kill "$OP_PID" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$OP_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$OP_PID" 2>/dev/null || true
  fi
  # Waited for, so the next run starts on a quiet cluster and the added nodes go last.
  kubectl delete ns "$FLOOR_NS" "$OP_NS" --ignore-not-found --timeout=600s >/dev/null 2>&1 ||
    log "cleanup: namespaces $FLOOR_NS $OP_NS not gone within 600s"
  bench_nodes_delete
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

log "building the operator (release)"
(cd "$REPO_DIR" && cargo build -q --release -p kstreams-operator)
kubectl apply --server-side --field-manager kstreams-bench -f "$REPO_DIR/crds/streamapp.yaml" >/dev/null
kubectl wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null
bench_nodes_add "$N"

for i in $(seq 1 "$N"); do
  cat <<APP
---
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: app-$i}
spec:
  image: example/bench:1
  replicas: 1
  kafka: {bootstrapServers: "$BOOTSTRAP"}
  placement: {antiAffinity: None, zoneSpread: None}
APP
done >"$WORK/apps.yaml"
"$BIN" render "$WORK/apps.yaml" | sed "s/namespace: default/namespace: $FLOOR_NS/" >"$WORK/children.yaml"

# all_ready KIND NS JSONPATH-COUNT: true when every object reports ready.
sts_ready() {
  [[ $(kubectl -n "$FLOOR_NS" get sts -o jsonpath='{range .items[*]}{.status.readyReplicas}{"\n"}{end}' | grep -c '^1$') == "$N" ]]
}
apps_ready() {
  [[ $(kubectl -n "$OP_NS" get streamapps -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$') == "$N" ]]
}

# Both phases start on a quiet cluster: no volumes of an earlier run still being reclaimed.
bench_wait_volumes_reclaimed 'bench-(floor|op)-.*|bench[0-9]+-mem'

kubectl create ns "$FLOOR_NS" >/dev/null
api_snapshot "$WORK/floor.before"
start=$(date +%s.%N)
kubectl apply --server-side --field-manager kstreams-bench -f "$WORK/children.yaml" >/dev/null
wait_until 900 "floor: $N StatefulSets ready" sts_ready || die "floor did not converge"
floor=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')
api_snapshot "$WORK/floor.after"
api_delta "$WORK/floor.before" "$WORK/floor.after" >"$WORK/floor.delta"

# The floor's pods must not take the simulated nodes' pod capacity from the operator's.
kubectl delete ns "$FLOOR_NS" --wait=false >/dev/null
kubectl wait --for=delete "ns/$FLOOR_NS" --timeout=600s >/dev/null
bench_wait_volumes_reclaimed "$FLOOR_NS"
kubectl create ns "$OP_NS" >/dev/null
ADMIN_PORT=$(bench_free_port 18280)
# Kafka checks off: kwok's pods run no Kafka Streams, and this measures the Kubernetes side
# (e2e/bench-memory.sh measures with the checks on).
api_snapshot "$WORK/op.before"
KSTREAMS_KAFKA_REFRESH_SECONDS=0 "$BIN" run --namespaces "$OP_NS" --admin-addr "127.0.0.1:$ADMIN_PORT" --concurrency 8 >"$OP_LOG" 2>&1 &
OP_PID=$!
start=$(date +%s.%N)
kubectl -n "$OP_NS" apply --server-side --field-manager kstreams-bench -f "$WORK/apps.yaml" >/dev/null
wait_until 900 "operator: $N StreamApps Ready" apps_ready ||
  die "operator did not converge: Ready reasons: $(apps_ready_reasons "$OP_NS"); log: $OP_LOG"
op=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')
api_snapshot "$WORK/op.after"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$OP_PID/status")
metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" || true)
api_delta "$WORK/op.before" "$WORK/op.after" >"$WORK/op.delta"
reconciles=$(awk '$1 == "kstreams_reconciles_total{result=\"success\"}" {print $2}' <<<"$metrics")
reconcile_errors=$(awk '$1 == "kstreams_reconciles_total{result=\"error\"}" {print $2}' <<<"$metrics")

ratio=$(awk -v a="$op" -v b="$floor" 'BEGIN {printf "%.2f", a / b}')
rss_mib=$(awk -v a="$rss" 'BEGIN {printf "%.1f", a / 1024}')
floor_verbs=$(api_by_verb "$WORK/floor.delta")
op_verbs=$(api_by_verb "$WORK/op.delta")
op_verbs_app=$(api_by_verb "$WORK/op.delta" "$N")
floor_writes=$(api_writes_by_resource "$WORK/floor.delta" 12)
op_writes=$(api_writes_by_resource "$WORK/op.delta" 12)
# The table's rows name the 8 biggest.
floor_writes8=$(api_writes_by_resource "$WORK/floor.delta" 8)
op_writes8=$(api_writes_by_resource "$WORK/op.delta" 8)
floor_reads=$(api_reads_by_resource "$WORK/floor.delta" 8)
op_reads=$(api_reads_by_resource "$WORK/op.delta" 8)
printf '\nreconcile benchmark, N=%s StreamApps (1 replica each), release build, concurrency 8\n' "$N"
printf '  floor (kubectl apply --server-side of the same children): %6.1f s\n' "$floor"
printf '  operator (StreamApps applied -> all Ready):               %6.1f s\n' "$op"
printf '  ratio operator/floor:                                     %6.2f\n' "$ratio"
printf '  operator peak RSS (VmHWM):                                %6.1f MiB\n' "$rss_mib"
printf '  operator reconciles: %s successful, %s failed\n' "${reconciles:-?}" "${reconcile_errors:-?}"
printf '  kube-apiserver requests (all clients, WATCH left out):\n'
printf '    floor phase:    %s\n' "$floor_verbs"
printf '    operator phase: %s\n' "$op_verbs"
printf '    operator phase per app: %s\n' "$op_verbs_app"
printf '    floor writes by resource:    %s\n' "$floor_writes"
printf '    operator writes by resource: %s\n' "$op_writes"
printf '    floor reads by resource:     %s\n' "$floor_reads"
printf '    operator reads by resource:  %s\n' "$op_reads"
printf '    (the polling for all Ready is 1 LIST every 0.5 s)\n'

bench_row "$SECTION" "floor: kubectl apply --server-side -> all Ready" "$(printf '%.1f s' "$floor")"
bench_row "$SECTION" "operator: StreamApps applied -> all Ready (Kafka checks off)" "$(printf '%.1f s' "$op")"
bench_row "$SECTION" "ratio operator/floor" "$ratio" "<= 1.2"
bench_row "$SECTION" "operator peak RSS (VmHWM)" "$rss_mib MiB"
bench_row "$SECTION" "operator reconciles (successful)" \
  "${reconciles:-?} ($(awk -v r="${reconciles:-0}" -v n="$N" 'BEGIN {printf "%.1f", r / n}') per app)$([[ ${reconcile_errors:-0} == 0 ]] || echo "; $reconcile_errors failed")"
bench_row "$SECTION" "floor phase: apiserver requests by verb" "$floor_verbs"
bench_row "$SECTION" "operator phase: apiserver requests by verb" "$op_verbs"
bench_row "$SECTION" "operator phase: apiserver requests per app by verb" "$op_verbs_app"
bench_row "$SECTION" "floor phase: writes by resource (8 most)" "$floor_writes8"
bench_row "$SECTION" "operator phase: writes by resource (8 most)" "$op_writes8"
bench_row "$SECTION" "floor phase: reads by resource (8 most; polling: 1 LIST per 0.5 s)" "$floor_reads"
bench_row "$SECTION" "operator phase: reads by resource (8 most; polling: 1 LIST per 0.5 s)" "$op_reads"
