#!/usr/bin/env bash
# Memory and quiet benchmark: BENCH_APPS StreamApps (default 1000), each with its own topics and
# a committed consumer group on the real broker (one `soak_kafka seed`, as `make soak`'s memory
# case) and a kwok pod, the release operator with Kafka checks on at the default refresh. It
# measures the time until all apps are settled (Ready but for their group's members, which
# kwok's pods never are: apps_settled_count in e2e/bench-nodes.sh), then a quiet window of BENCH_QUIET_SECONDS
# (default 300) in which nothing changes: the operator's peak and settled RSS, threads, CPU
# seconds, the writes kube-apiserver took in the window (StreamApp status writes per app, and the
# other resources the operator writes, from apiserver_request_total: every client's) and the
# Kafka checks done. Prints the figures and, with BENCH_ROWS naming a file, appends them as rows
# of e2e/bench.sh's table. Asserts nothing. Adds kwok nodes (e2e/bench-nodes.sh) when the
# cluster's cannot hold the pods; cleans up everything it created on exit. Needs the stack
# (under e2e/with-stack.sh, as `make bench-memory` runs it). Usage: e2e/bench-memory.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_APPS=${BENCH_APPS:-1000}
BENCH_QUIET_SECONDS=${BENCH_QUIET_SECONDS:-300}
BENCH_READY_SECONDS=${BENCH_READY_SECONDS:-1200}
eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"
[[ -n ${KAFKA_BOOTSTRAP:-} ]] || die "KAFKA_BOOTSTRAP is not set: run under e2e/with-stack.sh"
. "$E2E_DIR/bench-nodes.sh"
TARGET=${CARGO_TARGET_DIR:-$REPO_DIR/target}
BIN=$TARGET/release/kstreams-operator
SEEDER=$TARGET/debug/soak_kafka
WORK=$(mktemp -d)
OP_LOG=${BENCH_LOG_DIR:-$WORK}/memory-operator.log
RUN=bench$$
NS=$RUN-mem PREFIX=$RUN-m
SECTION="memory N=$BENCH_APPS"
# The operator's Kafka refresh: its default, unless the caller sets one.
REFRESH=${KSTREAMS_KAFKA_REFRESH_SECONDS:-30}

OP_PID='' SEEDED='' NS_CREATED=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $OP_PID ]]; then
    kill -TERM "$OP_PID" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$OP_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$OP_PID" 2>/dev/null || true
  fi
  if [[ -n $NS_CREATED ]]; then
    kubectl delete ns "$NS" --ignore-not-found --timeout=600s >/dev/null 2>&1 ||
      log "cleanup: namespace $NS not gone within 600s"
  fi
  if [[ -n $SEEDED ]]; then
    "$SEEDER" clean "$PREFIX" "$BENCH_APPS" >"$WORK/clean.log" 2>&1 ||
      log "cleanup: deleting the Kafka topics and groups of $PREFIX failed: $(tail -1 "$WORK/clean.log")"
  fi
  bench_nodes_delete
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ready_count() { apps_settled_count "$NS"; }
apps_ready() { [[ $(ready_count) == "$BENCH_APPS" ]]; }
metrics_text() { curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics"; }
metric() { awk -v m="$1" '$1 == m {print $2; found = 1} END {if (!found) print 0}' <<<"$2"; }
# cpu_ticks PID: utime + stime (clock ticks) from /proc/PID/stat (fields after the comm).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

log "building the operator (release) and the Kafka seeder"
(cd "$REPO_DIR" && cargo build -q --release -p kstreams-operator && cargo build -q -p integration-tests --bin soak_kafka) ||
  die "cargo build failed"
kubectl apply --server-side --field-manager kstreams-bench -f "$REPO_DIR/crds/streamapp.yaml" >/dev/null
kubectl wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null
bench_nodes_add "$BENCH_APPS"
bench_wait_volumes_reclaimed 'bench-(floor|op)-.*|bench[0-9]+-mem'
kubectl create ns "$NS" >/dev/null
NS_CREATED=1

log "memory: seeding $BENCH_APPS apps' topics and groups"
SEEDED=1
t=$SECONDS
"$SEEDER" seed "$PREFIX" "$BENCH_APPS"
seed_s=$((SECONDS - t))
seeded_apps_yaml "$NS" "$PREFIX" 1 "$BENCH_APPS" >"$WORK/apps.yaml"
kubectl apply --server-side --field-manager kstreams-bench -f "$WORK/apps.yaml" >/dev/null

# The clock starts with the operator, which finds all the apps there at once. kwok's pods never
# join their app's group: the member grace outlasts the run, so the apps stay settled
# (MembersJoining) rather than turn MembersMissing.
ADMIN_PORT=$(bench_free_port 18290)
KSTREAMS_MEMBER_GRACE_SECONDS=$((BENCH_READY_SECONDS + BENCH_QUIET_SECONDS + 3600)) \
  "$BIN" run --namespaces "$NS" --admin-addr "127.0.0.1:$ADMIN_PORT" --instance "$RUN" >"$OP_LOG" 2>&1 &
OP_PID=$!
t0=$(date +%s.%N)
log "memory: operator pid $OP_PID (admin 127.0.0.1:$ADMIN_PORT, log $OP_LOG), waiting for $BENCH_APPS apps settled"
# Polled every 2 s, not wait_until's 0.5 s: listing 1000 StreamApps with their status costs
# kube-apiserver and kubectl a CPU share of their own on a small machine.
settle() {
  local deadline=$((SECONDS + BENCH_READY_SECONDS))
  until apps_ready; do
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
  log "memory: $BENCH_APPS StreamApps settled"
}
if ! settle; then
  why="$(ready_count) of $BENCH_APPS settled after ${BENCH_READY_SECONDS}s, Ready reasons: $(apps_ready_reasons "$NS")"
  bench_row "$SECTION" "operator start -> all $BENCH_APPS settled" "$why"
  die "memory: $why; log: $OP_LOG"
fi
ready_s=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
kill -0 "$OP_PID" 2>/dev/null || die "memory: the operator exited; log: $OP_LOG"
cpu_ready=$(cpu_ticks "$OP_PID")

# The quiet window.
HZ=$(getconf CLK_TCK)
api_snapshot "$WORK/quiet.before"
m0=$(metrics_text)
c0=$(cpu_ticks "$OP_PID")
log "memory: all settled in ${ready_s}s; quiet window of ${BENCH_QUIET_SECONDS}s"
sleep "$BENCH_QUIET_SECONDS" # a benchmark waits on time; it asserts nothing
kill -0 "$OP_PID" 2>/dev/null || die "memory: the operator exited during the quiet window; log: $OP_LOG"
c1=$(cpu_ticks "$OP_PID")
m1=$(metrics_text)
api_snapshot "$WORK/quiet.after"
hwm=$(status_kib "$OP_PID" VmHWM) rss=$(status_kib "$OP_PID" VmRSS) threads=$(status_kib "$OP_PID" Threads)
ready_end=$(ready_count)
reasons_end=$(apps_ready_reasons "$NS")
api_delta "$WORK/quiet.before" "$WORK/quiet.after" >"$WORK/quiet.delta"

cpu_quiet=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz}')
cpu_to_ready=$(awk -v a="$cpu_ready" -v hz="$HZ" 'BEGIN {printf "%.2f", a / hz}')
status_writes=$(api_writes "$WORK/quiet.delta" streamapps/status)
per_app=$(awk -v w="$status_writes" -v n="$BENCH_APPS" -v s="$BENCH_QUIET_SECONDS" 'BEGIN {printf "%.2f", w / n * 300 / s}')
others=
for r in streamapps events statefulsets statefulsets/status configmaps services poddisruptionbudgets poddisruptionbudgets/status pods pods/status; do
  w=$(api_writes "$WORK/quiet.delta" "$r")
  # The main resources always, their subresources when written.
  [[ $r != */* || $w != 0 ]] || continue
  others+="${others:+, }$r $w"
done
checks=$(($(metric kstreams_kafka_check_duration_seconds_count "$m1" | cut -d. -f1) - $(metric kstreams_kafka_check_duration_seconds_count "$m0" | cut -d. -f1)))
reconciles=$(($(metric 'kstreams_reconciles_total{result="success"}' "$m1" | cut -d. -f1) - $(metric 'kstreams_reconciles_total{result="success"}' "$m0" | cut -d. -f1)))
checks_rate=$(awk -v c="$checks" -v n="$BENCH_APPS" -v s="$BENCH_QUIET_SECONDS" -v r="$REFRESH" 'BEGIN {printf "%.2f", c / n / (s / r)}')
refresh_note="default refresh ${REFRESH}s"
[[ -z ${KSTREAMS_KAFKA_REFRESH_SECONDS:-} ]] || refresh_note="refresh ${REFRESH}s (KSTREAMS_KAFKA_REFRESH_SECONDS set)"

printf '\nmemory benchmark: %s StreamApps (1 kwok pod each, seeded topics and groups), release build, Kafka checks on (%s)\n' \
  "$BENCH_APPS" "$refresh_note"
printf '  seeding the topics and groups (soak_kafka):    %s s\n' "$seed_s"
printf '  operator start -> all settled:                  %s s (%s CPU s)\n' "$ready_s" "$cpu_to_ready"
printf '  quiet window:                                   %s s; settled at its end: %s of %s (%s)\n' "$BENCH_QUIET_SECONDS" "$ready_end" "$BENCH_APPS" "$reasons_end"
printf '  peak RSS (VmHWM) / settled RSS (VmRSS):         %s / %s MiB\n' "$(mib "$hwm")" "$(mib "$rss")"
printf '  threads:                                        %s\n' "$threads"
printf '  CPU over the quiet window:                      %s s\n' "$cpu_quiet"
printf '  StreamApp status writes in the window:          %s (%s per app per 300 s)\n' "$status_writes" "$per_app"
printf '  other writes in the window:                     %s\n' "$others"
printf '  all writes in the window (any client):          %s\n' "$(api_writes_by_resource "$WORK/quiet.delta" 12)"
printf '  Kafka checks / reconciles in the window:        %s / %s\n' "$checks" "$reconciles"

bench_row "$SECTION" "seeding topics and groups (soak_kafka seed)" "$seed_s s"
bench_row "$SECTION" "operator start -> all $BENCH_APPS settled (Ready but for group members)" "$ready_s s ($cpu_to_ready CPU s)"
bench_row "$SECTION" "peak RSS (VmHWM)" "$(mib "$hwm") MiB" "<= 32 MiB"
bench_row "$SECTION" "settled RSS (VmRSS, end of the quiet window)" "$(mib "$rss") MiB" "<= 32 MiB"
bench_row "$SECTION" "threads" "$threads"
bench_row "$SECTION" "CPU over the ${BENCH_QUIET_SECONDS}s quiet window" "$cpu_quiet s"
bench_row "$SECTION" "StreamApp status writes in the quiet window" "$status_writes ($per_app per app per 300 s)" "<= 1 per app per 300 s"
bench_row "$SECTION" "other writes in the quiet window (all clients)" "$others"
bench_row "$SECTION" "all writes in the quiet window (8 most; all clients)" "$(api_writes_by_resource "$WORK/quiet.delta" 8)"
bench_row "$SECTION" "all reads in the quiet window (8 most; all clients)" "$(api_reads_by_resource "$WORK/quiet.delta" 8)"
bench_row "$SECTION" "Kafka checks in the quiet window ($refresh_note)" "$checks ($checks_rate per app per refresh)"
bench_row "$SECTION" "reconciles in the quiet window" "$reconciles"
bench_row "$SECTION" "settled at the end of the quiet window" "$ready_end of $BENCH_APPS ($reasons_end)"
