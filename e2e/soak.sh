#!/usr/bin/env bash
# The long cases that live in `make soak`, not in `make test`, run in this order and summed up
# in one table at the end (the script fails when a row's verdict is FAIL):
#   memory    SOAK_APPS StreamApps (default 200), each with its own topics and a committed
#             consumer group on the real broker, kwok pods, the release operator checking
#             Kafka every SOAK_REFRESH_SECONDS (5) for SOAK_MINUTES (10): RSS, open fds,
#             threads and Kafka connections at minute 2 and at the end (flat: RSS within +10%,
#             counts within +-2), and the error counters by category.
#   restarts  on a PRIVATE cluster (its own KSO_STATE and ports; the shared stack is never
#             touched): SOAK_RESTART_APPS (50) apps being created and changed while
#             kube-apiserver, then etcd, is stopped for SOAK_DOWN_SECONDS (10) and started
#             again: the operator lives, its watches resume, nothing that existed is re-created.
#   extra     the steps listed in SOAK_EXTRA_STEPS below.
# SOAK_ONLY="memory restarts extra" runs a subset. Needs the shared stack (under
# e2e/with-stack.sh, as `make soak` runs it). Usage: e2e/soak.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SOAK_MINUTES=${SOAK_MINUTES:-10}
SOAK_APPS=${SOAK_APPS:-200}
SOAK_REFRESH_SECONDS=${SOAK_REFRESH_SECONDS:-5}
SOAK_RESTART_APPS=${SOAK_RESTART_APPS:-50}
SOAK_DOWN_SECONDS=${SOAK_DOWN_SECONDS:-10}
SOAK_ONLY=${SOAK_ONLY:-memory restarts extra}
# A change after a restart reconciled later than this is flagged WARN (not a failure: the row
# prints the time; FAIL means it was not reconciled within 10 minutes).
SOAK_RESUME_WARN_SECONDS=${SOAK_RESUME_WARN_SECONDS:-60}
((SOAK_MINUTES >= 3)) || die "SOAK_MINUTES must be at least 3 (the baseline is minute 2)"
((SOAK_RESTART_APPS >= 20)) || die "SOAK_RESTART_APPS must be at least 20"

# ---------------------------------------------------------------------------------------------
# Extra steps. Each is a shell function `soak_extra_<name>` listed in SOAK_EXTRA_STEPS; they run
# after the restarts, in order, each in the repo root with the shared stack's KUBECONFIG and
# KAFKA_BOOTSTRAP exported. Its exit status is its verdict (0 = PASS) and the last line it
# prints is the detail in its table row; its full output goes to $WORK/extra-<name>.log
# (printed when it fails).
SOAK_PROPTEST_CASES=${SOAK_PROPTEST_CASES:-100000}

# The decoder properties at ten times `make test`'s budget, in a release build.
soak_extra_decoder_props() {
  local out
  out=$(PROPTEST_CASES=$SOAK_PROPTEST_CASES cargo test -q --release -p kstreams-kafka \
    --test decoder_properties -- --nocapture 2>&1) || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  printf '%s\n' "$out" | awk '/ cases in .* 0 panics/ {n += $2; p++} END {
    printf "%d properties, %d cases, 0 panics\n", p, n }'
}

# The operator SIGKILLed ten times while 50 apps are created, changed and scaled.
soak_extra_operator_kills() {
  local out
  out=$(cargo test -q -p integration-tests --test fault_operator_kill -- --ignored \
    --nocapture 2>&1) || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -o 'KSTREAMS_FAULT_SEED=[0-9]*: [0-9.]*s' | tail -1
}
SOAK_EXTRA_STEPS=(
  decoder_props
  operator_kills
)
# ---------------------------------------------------------------------------------------------

eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"
[[ -n ${KAFKA_BOOTSTRAP:-} ]] || die "KAFKA_BOOTSTRAP is not set: run under e2e/with-stack.sh"
KAFKA_PORT=${KAFKA_BOOTSTRAP##*:}
SHARED_API_PORT=$(awk '/server:/ {sub(/.*:/, ""); print; exit}' "$KUBECONFIG")
TARGET=${CARGO_TARGET_DIR:-$REPO_DIR/target}
BIN=$TARGET/release/kstreams-operator
SEEDER=$TARGET/debug/soak_kafka
K8S_BIN=$BIN_DIR/k8s-$K8S_VERSION
WORK=$(mktemp -d /tmp/kso-soak.XXXXXX)
RUN=soak$$
START=$SECONDS

ROWS=()
FAILED=0
# row PART CHECK RESULT VERDICT: one line of the final table.
row() {
  ROWS+=("$1|$2|$3|$4")
  [[ $4 != FAIL* ]] || FAILED=1
  log "$1: $2: $3 [$4]"
}

# What the cleanup undoes, recorded as it is made.
OPERATORS=()      # pids of operators we started
SHARED_NS=()      # namespaces in the shared cluster
KAFKA_PREFIXES=() # "PREFIX COUNT" seeded on the broker
PRIVATE_STATE=    # KSO_STATE of the private cluster
cleanup() {
  local rc=${1:-$?} pid p
  trap - EXIT INT TERM
  for pid in "${OPERATORS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${OPERATORS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ -n $PRIVATE_STATE ]]; then
    private "$E2E_DIR/cluster.sh" down >/dev/null 2>&1 || true
    rm -rf "$PRIVATE_STATE"
  fi
  for ns in "${SHARED_NS[@]}"; do kubectl delete ns "$ns" --wait=false >/dev/null 2>&1 || true; done
  for p in "${KAFKA_PREFIXES[@]}"; do
    # shellcheck disable=SC2086 # "PREFIX COUNT" are two arguments
    "$SEEDER" clean $p >/dev/null 2>&1 || log "cleanup: deleting the Kafka topics and groups of ${p% *} failed"
  done
  if ((rc == 0 && FAILED == 0)); then rm -rf "$WORK"; else log "soak: logs kept in $WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'cleanup 130' INT
trap 'cleanup 143' TERM

# free_port START: the first port from START up that nothing listens on and we have not taken.
TAKEN=" "
free_port() {
  local p=$1
  until port_free "$p" && [[ $TAKEN != *" $p "* ]]; do p=$((p + 1)); done
  TAKEN+="$p "
  echo "$p"
}

# --- Process figures --------------------------------------------------------------------------

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
thread_count() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
# conns_to PID PORT: established TCP connections of PID to a local PORT, from the socket
# inodes among its fds matched against the kernel's TCP tables.
conns_to() {
  local pid=$1 port
  port=$(printf '%04X' "$2")
  awk -v port="$port" '
    FNR == 1 { file++ }
    file == 1 { ino[$1]; next }
    FNR > 1 && $4 == "01" { split($3, r, ":"); if (r[2] == port && ($10 in ino)) n++ }
    END { print n + 0 }' \
    <(echo 0; find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n') \
    "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6"
}

# --- Operator helpers -------------------------------------------------------------------------

# metrics_text ADMIN_PORT: the operator's /metrics.
metrics_text() { curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics"; }
# metric NAME{LABELS} METRICS_TEXT: the sample's value, 0 when absent.
metric() { awk -v m="$1" '$1 == m {print $2; found = 1} END {if (!found) print 0}' <<<"$2"; }
# errors_by_category METRICS_TEXT: every error counter with a category label, as
# "reconcile/KubeApiError=2 kafka_baseline/Read=0 ..." (kstreams_<family>_{errors,failures}_total).
errors_by_category() {
  sed -n 's/^kstreams_\([a-z_]*\)_\(errors\|failures\)_total{category="\([^"]*\)"} \([0-9]*\)$/\1\/\3=\4/p' <<<"$1" |
    tr '\n' ' ' | sed 's/ $//'
}
# category_sum "A=1 B=2" [FAMILY]: 3 (only FAMILY/* when given).
category_sum() { tr ' ' '\n' <<<"$1" | awk -F= -v f="${2:-}" 'f == "" || index($1, f "/") == 1 {s += $2} END {print s + 0}'; }
# category_delta BEFORE AFTER: "A=1 B=0 ..." (after minus before).
category_delta() {
  join -t= <(tr ' ' '\n' <<<"$1" | sort) <(tr ' ' '\n' <<<"$2" | sort) | awk -F= '{printf "%s%s=%d", (NR > 1 ? " " : ""), $1, $3 - $2}'
}
# nonzero "A=1 B=0": "A=+1", or "none" with the number of categories.
nonzero() {
  tr ' ' '\n' <<<"$1" | awk -F= '$2 != 0 {printf "%s%s=%+d", (n++ ? " " : ""), $1, $2} END {if (!n) printf "none new in %d categories", NR}'
}
panics() { grep -c 'panicked' "$1" || true; }

# start_operator NAME ADMIN_PORT KUBECONFIG NAMESPACE: the release operator in the background,
# checking Kafka every SOAK_REFRESH_SECONDS. kwok's pods never join their app's group, so the
# member grace outlasts the soak: the apps stay in the steady state of apps whose members run
# (Ready), rather than all turning not Ready mid-soak.
start_operator() {
  local name=$1 port=$2 kc=$3 ns=$4
  KUBECONFIG=$kc KSTREAMS_KAFKA_REFRESH_SECONDS=$SOAK_REFRESH_SECONDS \
    KSTREAMS_MEMBER_GRACE_SECONDS=$((SOAK_MINUTES * 60 + 3600)) \
    "$BIN" run --namespaces "$ns" --admin-addr "127.0.0.1:$port" --instance "$RUN-$name" \
    >"$WORK/$name-operator.log" 2>&1 &
  OPERATORS+=($!)
  OP_PID=$!
  wait_until 60 "$name operator /readyz" curl -fsS --max-time 2 "http://127.0.0.1:$port/readyz" ||
    die "$name: operator not ready within 60s; log: $WORK/$name-operator.log"
}

# stop_operator PID: SIGTERM, as a rollout of the operator would; true when it exited in time.
stop_operator() {
  kill -TERM "$1" 2>/dev/null || return 1
  for _ in $(seq 1 160); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done
  return 1
}

build() {
  log "building the operator (release) and the Kafka seeder"
  (cd "$REPO_DIR" && cargo build -q --release -p kstreams-operator && cargo build -q -p integration-tests --bin soak_kafka) ||
    die "cargo build failed"
}

# --- (a) memory and error soak ----------------------------------------------------------------

memory_soak() {
  local ns=$RUN-mem prefix=$RUN-m port t0 m wait_s s
  local -a first last
  port=$(free_port 18180)
  kubectl apply --server-side --field-manager kstreams-soak -f "$REPO_DIR/crds/streamapp.yaml" >/dev/null
  kubectl wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null
  kubectl create ns "$ns" >/dev/null
  SHARED_NS+=("$ns")
  KAFKA_PREFIXES+=("$prefix $SOAK_APPS")
  log "memory: seeding $SOAK_APPS apps' topics and groups"
  "$SEEDER" seed "$prefix" "$SOAK_APPS"
  seeded_apps_yaml "$ns" "$prefix" 1 "$SOAK_APPS" >"$WORK/mem-apps.yaml"
  kubectl apply --server-side --field-manager kstreams-soak -f "$WORK/mem-apps.yaml" >/dev/null
  # The clock starts with the operator, which finds all the apps there at once.
  start_operator mem "$port" "$KUBECONFIG" "$ns"
  local pid=$OP_PID
  t0=$SECONDS
  log "memory: operator pid $pid, $SOAK_APPS apps, Kafka refresh ${SOAK_REFRESH_SECONDS}s, $SOAK_MINUTES minutes"
  printf '%-6s %9s %5s %7s %6s %5s %6s %9s %9s  %s\n' minute rss_MiB fds threads kafka kube ready checks reconciles errors >&2
  for ((m = 1; m <= SOAK_MINUTES; m++)); do
    wait_s=$((t0 + 60 * m - SECONDS))
    ((wait_s <= 0)) || sleep "$wait_s" # a soak waits for the minute marks
    kill -0 "$pid" 2>/dev/null || break
    local text
    text=$(metrics_text "$port" || true)
    s=("$(rss_kib "$pid")" "$(fd_count "$pid")" "$(thread_count "$pid")" "$(conns_to "$pid" "$KAFKA_PORT")"
      "$(conns_to "$pid" "$SHARED_API_PORT")"
      "$(metric 'kstreams_apps{condition="Ready",status="True"}' "$text")"
      "$(metric kstreams_kafka_check_duration_seconds_count "$text")"
      "$(metric 'kstreams_reconciles_total{result="success"}' "$text")"
      "$(errors_by_category "$text")")
    printf '%-6s %9.1f %5s %7s %6s %5s %6s %9s %9s  %s\n' "$m" "$(awk -v k="${s[0]}" 'BEGIN {print k / 1024}')" \
      "${s[1]}" "${s[2]}" "${s[3]}" "${s[4]}" "${s[5]}" "${s[6]}" "${s[7]}" "${s[8]}" >&2
    if ((m == 2)); then first=("${s[@]}"); fi
    last=("${s[@]}")
  done
  local elapsed=$(((SECONDS - t0) / 60))
  if ! kill -0 "$pid" 2>/dev/null; then
    row memory "operator alive for $SOAK_MINUTES min" "exited after ~$elapsed min; log: $WORK/mem-operator.log" FAIL
    return 0
  fi
  row memory "operator alive for $SOAK_MINUTES min" "pid $pid, $(panics "$WORK/mem-operator.log") panics in its log" \
    "$([[ $(panics "$WORK/mem-operator.log") == 0 ]] && echo PASS || echo FAIL)"
  local r2=${first[0]} rn=${last[0]}
  row memory "RSS min 2 -> $SOAK_MINUTES" "$(awk -v a="$r2" -v b="$rn" 'BEGIN {printf "%.1f -> %.1f MiB (%+.1f%%)", a / 1024, b / 1024, (b - a) * 100 / a}')" \
    "$(awk -v a="$r2" -v b="$rn" 'BEGIN {print (b <= a * 1.10) ? "PASS flat" : "FAIL grew"}')"
  local i names=("" "open fds" threads "Kafka connections")
  for i in 1 2 3; do
    local d=$((last[i] - first[i]))
    row memory "${names[$i]} min 2 -> $SOAK_MINUTES" "${first[$i]} -> ${last[$i]} ($(printf '%+d' "$d"))" \
      "$( ((d >= -2 && d <= 2)) && echo "PASS flat" || echo "FAIL drift")"
  done
  local checks=$((${last[6]%.*} - ${first[6]%.*})) minutes=$((SOAK_MINUTES - 2))
  row memory "Kafka checks min 2 -> $SOAK_MINUTES" \
    "$checks ($(awk -v c="$checks" -v m="$minutes" -v n="$SOAK_APPS" -v r="$SOAK_REFRESH_SECONDS" \
      'BEGIN {printf "%.0f%% of %d apps every %ds", c * 100 / (m * 60 * n / r), n, r}'))" info
  row memory "Ready apps at min 2 / $SOAK_MINUTES" "${first[5]} / ${last[5]} of $SOAK_APPS" info
  local e2=${first[8]} en=${last[8]} d
  d=$(category_delta "$e2" "$en")
  row memory "errors by category, min 2 -> $SOAK_MINUTES" "$(nonzero "$d") (since the start: $(nonzero "$en" | sed 's/ new//'))" \
    "$([[ $(category_sum "$d") == 0 ]] && echo "PASS none new" || echo "FAIL new errors")"
  if stop_operator "$pid"; then
    row memory "SIGTERM after the soak" "exited within 40s" PASS
  else
    row memory "SIGTERM after the soak" "still running after 40s" FAIL
  fi
}

# --- (b) kube-apiserver and etcd restarts, on a private cluster -------------------------------

# private CMD...: CMD with the private cluster's state and ports.
private() {
  KSO_STATE=$PRIVATE_STATE KSO_APISERVER_PORT=$P_API KSO_ETCD_PORT=$P_ETCD KSO_ETCD_PEER_PORT=$P_PEER \
    KSO_KCM_PORT=$P_KCM KSO_SCHEDULER_PORT=$P_SCHED KSO_KWOK_PORT=$P_KWOK "$@"
}
kp() { "$K8S_BIN/kubectl" --kubeconfig "$PRIVATE_STATE/cluster/admin.kubeconfig" --request-timeout=10s "$@"; }

# The uids of everything of the apps in NS: "kind/name uid", sorted.
uids() {
  kp -n "$1" get configmaps,services,statefulsets,poddisruptionbudgets,persistentvolumeclaims,pods \
    -o jsonpath='{range .items[*]}{.kind}/{.metadata.name} {.metadata.uid}{"\n"}{end}' | grep -v '^ConfigMap/kube-root-ca.crt ' | sort
}
# all_reconciled NS N [SKIP]: at least N apps other than those the regex SKIP names, every one
# of them reconciled at its current generation with its StatefulSet's pod Ready.
all_reconciled() {
  local ns=$1 n=$2 skip=${3:-^$} apps sts a_all a_ok s_all s_ok
  apps=$(kp -n "$ns" get streamapps -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.generation} {.status.observedGeneration}{"\n"}{end}' |
    awk -v skip="$skip" '$1 !~ skip {all++; if ($2 == $3) ok++} END {print all + 0, ok + 0}')
  sts=$(kp -n "$ns" get statefulsets -o jsonpath='{range .items[*]}{.metadata.name} {.status.readyReplicas}{"\n"}{end}' |
    awk -v skip="$skip" '$1 !~ skip {all++; if ($2 == 1) ok++} END {print all + 0, ok + 0}')
  read -r a_all a_ok <<<"$apps"
  read -r s_all s_ok <<<"$sts"
  ((a_all >= n && a_ok == a_all && s_all == a_all && s_ok == s_all))
}
# What each app in NS owns, one line per app: "APP KIND KIND ..." (kinds sorted, repeated per
# object), whatever the objects' names: a duplicate or a missing child changes the line.
owned_kinds() {
  kp -n "$1" get configmaps,services,statefulsets,poddisruptionbudgets \
    -o jsonpath='{range .items[*]}{.metadata.ownerReferences[?(@.kind=="StreamApp")].name} {.kind}{"\n"}{end}' |
    awk 'NF == 2' | sort | awk '$1 != app {if (app != "") print line; app = $1; line = $1} {line = line " " $2} END {print line}'
}
# probe NS APP VALUE: the app's ConfigMap carries soak.probe=VALUE (its spec was reconciled).
probe_applied() { kp -n "$1" get configmap "$2-config" -o yaml | grep -q "soak.probe=$3"; }

# The churn while the control plane restarts: every second, one of apps 1-5 gets a new
# spec.config value and one pending app is created; failed requests (the API is down) are
# retried the next round. Stops at $WORK/churn.stop or after 600 rounds.
churn() {
  local ns=$1 prefix=$2 from=$3 to=$4 r next=$3
  for ((r = 1; r <= 600; r++)); do
    [[ -f $WORK/churn.stop ]] && ((next > to)) && break
    kp -n "$ns" patch streamapp "app-$(((r - 1) % 5 + 1))" --type merge \
      -p "{\"spec\":{\"config\":{\"soak.round\":\"$r\"}}}" >/dev/null 2>&1 || true
    if ((next <= to)) && seeded_apps_yaml "$ns" "$prefix" "$next" "$next" | kp apply --server-side --field-manager kstreams-soak -f - >/dev/null 2>&1; then
      next=$((next + 1))
    fi
    sleep 1
  done
  echo "$r" >"$WORK/churn.rounds"
}

restart_soak() {
  local ns=$RUN-restart prefix=$RUN-r n=$SOAK_RESTART_APPS initial port
  initial=$((n - 10))
  PRIVATE_STATE=$(mktemp -d /tmp/kso-soak-cluster.XXXXXX)
  P_API=$(free_port 26443) P_ETCD=$(free_port 22379) P_PEER=$(free_port 22380)
  P_KCM=$(free_port 20257) P_SCHED=$(free_port 20259) P_KWOK=$(free_port 20247)
  port=$(free_port 18190)
  log "restarts: private cluster in $PRIVATE_STATE (apiserver 127.0.0.1:$P_API, etcd $P_ETCD)"
  private "$E2E_DIR/cluster.sh" up
  kp apply --server-side --field-manager kstreams-soak -f "$REPO_DIR/crds/streamapp.yaml" >/dev/null
  kp wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null
  kp create ns "$ns" >/dev/null
  KAFKA_PREFIXES+=("$prefix $n")
  "$SEEDER" seed "$prefix" "$n"
  seeded_apps_yaml "$ns" "$prefix" 1 "$initial" | kp apply --server-side --field-manager kstreams-soak -f - >/dev/null
  start_operator restart "$port" "$PRIVATE_STATE/cluster/admin.kubeconfig" "$ns"
  local pid=$OP_PID
  wait_until 600 "restarts: $initial apps reconciled, pods Ready" all_reconciled "$ns" "$initial" ||
    die "restarts: the first $initial apps did not converge; log: $WORK/restart-operator.log"

  uids "$ns" >"$WORK/uids.before"
  owned_kinds "$ns" >"$WORK/owned.before"
  local shape
  shape=$(awk '{$1 = ""; print substr($0, 2)}' "$WORK/owned.before" | sort -u)
  [[ $(wc -l <<<"$shape") == 1 ]] || die "restarts: the apps own different kinds of children before the restarts: $shape"
  local e0 e1 t0 text
  text=$(metrics_text "$port")
  e0=$(errors_by_category "$text")
  local rerr0 rerr1
  rerr0=$(metric 'kstreams_reconciles_total{result="error"}' "$text")
  churn "$ns" "$prefix" $((initial + 1)) "$n" &
  local churner=$!

  local what verb value
  for what in kube-apiserver etcd; do
    verb=restart-${what#kube-}
    value=after-${what#kube-}
    t0=$SECONDS
    private "$E2E_DIR/cluster.sh" "$verb" "$SOAK_DOWN_SECONDS"
    local back=$((SECONDS - t0))
    # kube-apiserver answers as soon as it is up; after etcd's restart it may still be catching up.
    wait_until 120 "private kube-apiserver /readyz" kp get --raw /readyz ||
      die "restarts: the private kube-apiserver is not ready 120s after restarting $what"
    # A spec change made after the restart: reconciled only if the operator's watch sees it.
    t0=$SECONDS
    local probe=app-$([[ $what == etcd ]] && echo 7 || echo 6)
    until kp -n "$ns" patch streamapp "$probe" --type merge -p "{\"spec\":{\"config\":{\"soak.probe\":\"$value\"}}}" >/dev/null 2>&1; do
      ((SECONDS - t0 < 120)) || die "restarts: cannot patch $probe after restarting $what"
      sleep 1
    done
    local check="$what down ${SOAK_DOWN_SECONDS}s, restarted"
    if wait_until 600 "restarts: $probe's change after the $what restart reconciled" probe_applied "$ns" "$probe" "$value"; then
      local took=$((SECONDS - t0))
      row restarts "$check" "ready again ${back}s after the stop; a spec change made then reconciled in ${took}s" \
        "$( ((took <= SOAK_RESUME_WARN_SECONDS)) && echo PASS || echo "WARN slow")"
    else
      row restarts "$check" "a spec change made after it was not reconciled within 600s" FAIL
    fi
    # The next restart starts from a converged operator, not from this one's recovery (the
    # apps being churned are never still for long, so they are left out).
    wait_until 600 "restarts: the apps not churned reconciled after the $what restart" \
      all_reconciled "$ns" $((initial - 5)) '^app-[1-5]$' ||
      row restarts "apps converge after the $what restart" "not within 600s" FAIL
  done

  touch "$WORK/churn.stop"
  wait "$churner"
  local rounds
  rounds=$(cat "$WORK/churn.rounds")
  if ! wait_until 600 "restarts: all $n apps reconciled" all_reconciled "$ns" "$n"; then
    row restarts "all $n apps converge after the restarts" "not within 600s" FAIL
  else
    row restarts "all $n apps converge after the restarts" "$initial existing, $((n - initial)) created and 5 changed every second for $rounds rounds during the restarts" PASS
  fi
  if kill -0 "$pid" 2>/dev/null; then
    row restarts "operator alive, no panic" "pid $pid, $(panics "$WORK/restart-operator.log") panics in its log" \
      "$([[ $(panics "$WORK/restart-operator.log") == 0 ]] && echo PASS || echo FAIL)"
  else
    row restarts "operator alive, no panic" "exited; log: $WORK/restart-operator.log" FAIL
  fi

  # Nothing re-created: every object that existed keeps its uid, except the pods of the apps
  # whose spec changed (1-5 churned, 6-7 probed), which their rollout replaces by design.
  uids "$ns" >"$WORK/uids.after"
  local kept changed
  grep -Ev '^Pod/app-[1-7]-[0-9]+ ' "$WORK/uids.before" >"$WORK/uids.kept"
  changed=$(comm -23 "$WORK/uids.kept" "$WORK/uids.after" | wc -l)
  kept=$(wc -l <"$WORK/uids.kept")
  row restarts "objects keep their uid" "$((kept - changed)) of $kept (ConfigMaps, Services, StatefulSets, PDBs, PVCs, pods of apps not changed)" \
    "$( ((changed == 0)) && echo PASS || echo "FAIL $(comm -23 "$WORK/uids.kept" "$WORK/uids.after" | head -3 | tr '\n' ' ')")"
  # No duplicates, nothing missing: every app, old or new, owns the same children as each app
  # did before the restarts (by kind and count, whatever their names).
  local odd
  owned_kinds "$ns" >"$WORK/owned.after"
  odd=$(awk -v shape="$shape" '{a = $1; $1 = ""; if (substr($0, 2) != shape) print a}' "$WORK/owned.after" | tr '\n' ' ')
  row restarts "same children per app (no duplicate)" "$(wc -l <"$WORK/owned.after") of $n apps own: $shape${odd:+; differ: $odd}" \
    "$([[ -z $odd && $(wc -l <"$WORK/owned.after") == "$n" ]] && echo PASS || echo FAIL)"

  text=$(metrics_text "$port")
  e1=$(errors_by_category "$text")
  rerr1=$(metric 'kstreams_reconciles_total{result="error"}' "$text")
  local failed=$((${rerr1%.*} - ${rerr0%.*})) counted
  counted=$(category_sum "$(category_delta "$e0" "$e1")" reconcile)
  row restarts "errors by category during the restarts" "$(nonzero "$(category_delta "$e0" "$e1")"); failed reconciles +$failed" \
    "$( ((counted == failed)) && echo "PASS each failure has a category" || echo "FAIL $failed failures, $counted categorised")"
  if stop_operator "$pid"; then
    row restarts "SIGTERM after the restarts" "exited within 40s" PASS
  else
    row restarts "SIGTERM after the restarts" "still running after 40s" FAIL
  fi
}

# --- (c) extra steps --------------------------------------------------------------------------

extra_steps() {
  local name t0 rc detail
  if ((${#SOAK_EXTRA_STEPS[@]} == 0)); then
    row extra "(none listed in SOAK_EXTRA_STEPS)" "-" info
    return 0
  fi
  for name in "${SOAK_EXTRA_STEPS[@]}"; do
    t0=$SECONDS
    log "extra: $name (log: $WORK/extra-$name.log)"
    rc=0
    (cd "$REPO_DIR" && "soak_extra_$name") >"$WORK/extra-$name.log" 2>&1 || rc=$?
    detail=$(grep -v '^[[:space:]]*$' "$WORK/extra-$name.log" | tail -1 | cut -c1-100)
    if ((rc == 0)); then
      row extra "$name" "${detail:-done} ($((SECONDS - t0))s)" PASS
    else
      tail -40 "$WORK/extra-$name.log" >&2
      row extra "$name" "exit $rc: $detail ($((SECONDS - t0))s)" FAIL
    fi
  done
}

# --- main -------------------------------------------------------------------------------------

# In a function, so bash has read the whole file before anything runs.
main() {
  build
  for part in memory restarts extra; do
    [[ " $SOAK_ONLY " == *" $part "* ]] || continue
    t=$SECONDS
    case $part in
      memory) memory_soak ;;
      restarts) restart_soak ;;
      extra) extra_steps ;;
    esac
    row "$part" "duration" "$((SECONDS - t)) s" info
  done

  printf '\nmake soak: %s StreamApps, Kafka refresh %ss, %s min; restarts: %s apps, %ss down; total %d s\n\n' \
    "$SOAK_APPS" "$SOAK_REFRESH_SECONDS" "$SOAK_MINUTES" "$SOAK_RESTART_APPS" "$SOAK_DOWN_SECONDS" $((SECONDS - START))
  {
    echo "PART|CHECK|RESULT|VERDICT"
    printf '%s\n' "${ROWS[@]}"
  } | column -t -s '|'
  ((FAILED == 0)) || die "soak: some checks failed (see the rows above; logs in $WORK)"
}
main "$@"
