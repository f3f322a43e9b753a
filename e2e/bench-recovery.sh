#!/usr/bin/env bash
# Recovery benchmark: what restarts, rollouts and scale-outs of the real word-count app cost in
# rebalances, processing pauses and restored records. Prints numbers, asserts nothing. Needs the
# stack (make up, or run under e2e/with-stack.sh); starts its own operator and stand-in kubelet
# for its own namespace and removes both, the namespace and its Kafka topics and groups after.
#
# Usage: e2e/bench-recovery.sh [rollout|restarts]
#   rollout  (default, `make bench-recovery`): two apps on the same seeded input, one with
#            spec.rollout.strategy RestoreAware, one with StatefulSet, 3 replicas, 1 standby:
#            (i) a rolling update from a config change, (ii) one pod restarted with its volume
#            and one restarted wiped (WORDCOUNT_WIPE_STATE), (iii) scale 2 -> 3, (iw) a rolling
#            update in which every pod starts wiped (BENCH_PHASES picks, default "i ii iii iw").
#   restarts one pod deleted (kubectl delete pod) under dynamic/static membership, with and
#            without leaving the group on close, and a few session/KIP-441 settings.
# Knobs: BENCH_WORDS (distinct words seeded, default 300000), BENCH_RESTORE_DELAY_MS (sleep per
# restored batch of BENCH_RESTORE_BATCH records, defaults 25 and 500), BENCH_LINES_PER_SECOND
# (generator, default 20), BENCH_PROBING_REBALANCE_INTERVAL_MS (default 60000, the minimum),
# BENCH_CASES (restarts mode: the cases to run), BENCH_KEEP=1 keeps
# the pod logs and watcher output (printed path).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
MODE=${1:-rollout}
eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"
TARGET=${CARGO_TARGET_DIR:-$REPO_DIR/target}
OP_BIN=$TARGET/debug/kstreams-operator
STANDIN_BIN=$TARGET/debug/stand-in-kubelet
LIBS=$KSO_CACHE/kafka-$KAFKA_VERSION/libs
WORDS=${BENCH_WORDS:-300000}
DELAY_MS=${BENCH_RESTORE_DELAY_MS:-25}
BATCH=${BENCH_RESTORE_BATCH:-500}
RATE=${BENCH_LINES_PER_SECOND:-20}
PROBE_MS=${BENCH_PROBING_REBALANCE_INTERVAL_MS:-60000}
RUN=brec-$$
NS=bench-recovery-$$
INPUT=$RUN-lines
OUTPUT=$RUN-counts
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-recovery.XXXXXX")
OP_PID= STANDIN_PID=
WATCH_PIDS=()
APP_IDS=()

kafka_tool() { java -cp "$LIBS/*" -Dlog4j2.configurationFile=/dev/null "$@" 2>/dev/null; }
now_ms() { date +%s%3N; }

cleanup() {
  local rc=$?
  set +e
  for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  log "cleaning up namespace $NS (the stand-in stops its pods first)"
  kubectl -n "$NS" delete streamapps --all --wait=false >/dev/null 2>&1
  kubectl -n "$NS" delete deploy --all --wait=false >/dev/null 2>&1
  for _ in $(seq 1 120); do
    [[ -z $(kubectl -n "$NS" get pods -o name 2>/dev/null) ]] && break
    sleep 1
  done
  [[ -n $STANDIN_PID ]] && kill "$STANDIN_PID" 2>/dev/null && wait "$STANDIN_PID" 2>/dev/null
  [[ -n $OP_PID ]] && kill "$OP_PID" 2>/dev/null && wait "$OP_PID" 2>/dev/null
  kubectl delete ns "$NS" --wait=false >/dev/null 2>&1
  for id in "${APP_IDS[@]}"; do
    kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
      --delete --group "$id" >/dev/null
  done
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --delete \
    --topic "$RUN-.*" >/dev/null
  if [[ $rc != 0 || -n ${BENCH_KEEP:-} ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---------------------------------------------------------------------------------------------
log "building the operator, the stand-in kubelet and the example app"
(cd "$REPO_DIR" && cargo build -q -p kstreams-operator -p kstreams-standin)
JAR=$("$E2E_DIR/example-app.sh" build)
"$OP_BIN" crd | kubectl apply --server-side --force-conflicts --field-manager kstreams-bench -f - >/dev/null
kubectl wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null
HAS_ROLLOUT=$(kubectl get crd streamapps.kstreams.dev -o json | grep -c '"stepTimeoutSeconds"' || true)
kubectl create ns "$NS" >/dev/null
"$OP_BIN" run --namespaces "$NS" --admin-addr 127.0.0.1:0 >"$WORK/operator.log" 2>&1 &
OP_PID=$!
"$STANDIN_BIN" --root "$WORK/standin" --namespace "$NS" --registry "$E2E_DIR/images.yaml" \
  --stop-grace-seconds 15 >"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!

"$E2E_DIR/kafka.sh" topic "$INPUT" 3
"$E2E_DIR/kafka.sh" topic "$OUTPUT" 3
log "seeding $WORDS distinct words into $INPUT"
java -cp "$JAR" dev.kstreams.examples.wordcount.WordSeeder "$KAFKA_BOOTSTRAP" "$INPUT" "$WORDS" 100 2>"$WORK/seeder.err" >&2
kubectl -n "$NS" apply --server-side --field-manager kstreams-bench -f - >/dev/null <<GEN
apiVersion: apps/v1
kind: Deployment
metadata: {name: generator}
spec:
  replicas: 1
  selector: {matchLabels: {app: generator}}
  template:
    metadata:
      labels: {app: generator, stand-in.kstreams.dev/serve: "true"}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: generator
        image: kstreams-examples/wordcount-generator:0.1.0
        env:
        - {name: KAFKA_BOOTSTRAP_SERVERS, value: "$KAFKA_BOOTSTRAP"}
        - {name: GENERATOR_TOPIC, value: "$INPUT"}
        - {name: GENERATOR_LINES_PER_SECOND, value: "$RATE"}
GEN

# app NAME STRATEGY REPLICAS [KEY=VALUE config...] [env:NAME=VALUE...] [static]: applies a StreamApp.
app() {
  local name=$1 strategy=$2 replicas=$3
  shift 3
  local config="" envs="" static=false rollout=""
  for kv in "$@"; do
    case $kv in
      static) static=true ;;
      env:*) kv=${kv#env:}; envs+="  - {name: ${kv%%=*}, value: \"${kv#*=}\"}"$'\n' ;;
      *) config+="    ${kv%%=*}: \"${kv#*=}\""$'\n' ;;
    esac
  done
  if [[ $HAS_ROLLOUT != 0 ]]; then
    rollout="  rollout: {strategy: $strategy}"
  fi
  APP_IDS+=("$RUN-$name")
  kubectl -n "$NS" apply --server-side --force-conflicts --field-manager kstreams-bench -f - >/dev/null <<APP
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: $name}
spec:
  image: kstreams-examples/wordcount:0.1.0
  replicas: $replicas
  applicationId: $RUN-$name
  standbyReplicas: 1
  staticMembership: $static
  kafka: {bootstrapServers: "$KAFKA_BOOTSTRAP"}
  topics: {inputs: [$INPUT]}
  state: {storage: 1Gi, mountPath: /data/count-store}
  placement: {antiAffinity: None, zoneSpread: None}
  interactiveQueries: {port: 8080}
$rollout
  config:
    commit.interval.ms: "1000"
    restore.consumer.max.poll.records: "$BATCH"
    # Kafka's default (10 min) keeps warm-up replicas, and so the app's Restoring condition
    # and a restore-aware rollout step, waiting up to 10 minutes for the follow-up rebalance.
    probing.rebalance.interval.ms: "${PROBE_MS}"
$config
  env:
  - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
  - {name: WORDCOUNT_INPUT_TOPIC, value: "$INPUT"}
  - {name: WORDCOUNT_OUTPUT_TOPIC, value: "$OUTPUT"}
  - {name: WORDCOUNT_RESTORE_DELAY_MS, value: "$DELAY_MS"}
$envs
  probes:
    readiness:
      httpGet: {path: /ready, port: iq}
      periodSeconds: 1
      failureThreshold: 2
  podTemplate:
    labels: {stand-in.kstreams.dev/serve: "true"}
APP
}

jp() { kubectl -n "$NS" get "$1" -o jsonpath="$2" 2>/dev/null; }
app_ready() { [[ $(jp "streamapp/$1" '{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
pods_ready() { # NAME N: pods NAME-0..N-1 all Ready
  local n=0 i
  for ((i = 0; i < $2; i++)); do
    [[ $(jp "pod/$1-$i" '{.status.conditions[?(@.type=="Ready")].status}') == True ]] && n=$((n + 1))
  done
  [[ $n == "$2" ]]
}
sts_settled() { # NAME N: StatefulSet rolled out, N ready
  local s
  s=$(jp "sts/$1" '{.status.currentRevision} {.status.updateRevision} {.status.updatedReplicas} {.status.readyReplicas}')
  read -r cur upd updated ready <<<"$s"
  [[ -n $cur && $cur == "$upd" && $updated == "$2" && $ready == "$2" ]]
}
lag_of() { jp "streamapp/$1" '{.status.kafka.processingLagTotal}'; }
caught_up() { local l; l=$(lag_of "$1"); [[ -n $l && $l -lt $((RATE * 5 + 200)) ]]; }
settled() { sts_settled "$1" "$2" && pods_ready "$1" "$2" && app_ready "$1" && caught_up "$1"; }

wait_settled() { # NAME N TIMEOUT
  wait_until "${3:-900}" "$1: $2 pods Ready, rolled out, caught up" settled "$1" "$2" ||
    die "$1 did not settle; kubectl -n $NS describe streamapp $1; logs in $WORK"
}

# Pod logs (current and previous container), with their RESTORE lines and generations.
pod_logs() { cat "$WORK"/standin/logs/"$NS"/"$1"-[0-9]*.log 2>/dev/null || true; }
max_generation() { pod_logs "$1" | grep -o 'Successfully joined group with generation Generation{generationId=[0-9]*' |
  grep -o '[0-9]*$' | sort -n | tail -1; }

# sum_field NAME KEYWORD FIELD: sum of FIELD= over the KEYWORD lines of NAME's pods since the phase began.
sum_field() {
  pod_logs "$1" | awk -v k="$2" -v f="$3=" -v t0="$PH_T0" '$1 == k { split($NF, a, "="); if (a[2] + 0 < t0 + 0) next
    for (i = 2; i <= NF; i++) if (index($i, f) == 1) s += substr($i, length(f) + 1) } END { print s + 0 }'
}

# sampler NAME N OUT: every second: epoch ms, pods not Ready (of N), restoreLagTotal, lag.
sampler() {
  local name=$1 n=$2 out=$3 i ready
  while :; do
    ready=0
    for ((i = 0; i < n; i++)); do
      [[ $(jp "pod/$name-$i" '{.status.conditions[?(@.type=="Ready")].status}') == True ]] && ready=$((ready + 1))
    done
    echo "$(now_ms) $((n - ready)) $(jp "streamapp/$name" '{.status.kafka.restoreLagTotal}' | sed 's/^$/-/') $(lag_of "$name" | sed 's/^$/-/')" >>"$out"
    sleep 1
  done
}

# phase_start NAME N LABEL: starts the watcher and the sampler.
phase_start() {
  PH_NAME=$1 PH_N=$2 PH_LABEL=$3
  PH_DIR=$WORK/$3
  mkdir -p "$PH_DIR"
  PH_GEN=$(max_generation "$1")
  PH_GEN=${PH_GEN:-0}
  java -cp "$JAR" dev.kstreams.examples.wordcount.RecoveryWatch "$KAFKA_BOOTSTRAP" "$RUN-$1" >"$PH_DIR/watch.txt" 2>"$PH_DIR/watch.err" &
  PH_WATCH=$!
  WATCH_PIDS+=("$PH_WATCH")
  sampler "$1" "$2" "$PH_DIR/samples.txt" &
  PH_SAMPLER=$!
  WATCH_PIDS+=("$PH_SAMPLER")
  sleep 5
  PH_T0=$(now_ms)
}

# phase_end: waits for the app to settle, stops the watcher, writes $PH_DIR/result.
phase_end() {
  wait_settled "$PH_NAME" "$PH_N"
  local t1
  t1=$(now_ms)
  sleep 15
  kill "$PH_SAMPLER" 2>/dev/null || true
  kill "$PH_WATCH" 2>/dev/null || true
  wait "$PH_WATCH" 2>/dev/null || true
  local gen restored suspended loaded maxrestoring maxdown maxrl pause reb
  gen=$(max_generation "$PH_NAME")
  restored=$(sum_field "$PH_NAME" RESTORED records)
  suspended=$(sum_field "$PH_NAME" RESTORE-SUSPENDED records)
  loaded=$(sum_field "$PH_NAME" STANDBY-CAUGHT-UP loaded)
  # Restores under way at once, over every pod: +1 at RESTORE-START, -1 at RESTORED/SUSPENDED.
  maxrestoring=$(for f in "$WORK"/standin/logs/"$NS"/"$PH_NAME"-[0-9]*.log; do
      awk -v f="$f" -v t0="$PH_T0" '/^RESTORE-START |^RESTORED |^RESTORE-SUSPENDED / {
        split($NF, a, "="); if (a[2] < t0) next
        for (i = 2; i <= NF; i++) if ($i ~ /^partition=/) p = $i
        print a[2], ($1 == "RESTORE-START" ? 1 : -1), f, p }' "$f"
    done 2>/dev/null | sort -n | awk '{ k = $3 " " $4; if ($2 > 0) { if (!(k in on)) { on[k] = 1; pods[$3]++ } } else if (k in on) { delete on[k]; pods[$3]-- }
      n = 0; for (p in pods) if (pods[p] > 0) n++; if (n > m) m = n } END { print m + 0 }')
  maxdown=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$PH_DIR/samples.txt")
  # Highest restoreLagTotal the operator reported during the phase, and the first (before).
  maxrl=$(awk 'BEGIN { m = "-"; f = "" } $3 != "-" { if (f == "") f = $3; if (m == "-" || $3 > m) m = $3 } END { print m "(" (f == "" ? "-" : f) ")" }' "$PH_DIR/samples.txt")
  pause=$(sed -n 's/^SUMMARY .*longestPauseMs=\([0-9]*\).*/\1/p' "$PH_DIR/watch.txt")
  reb=$(sed -n 's/^SUMMARY .*rebalances=\([0-9]*\).*/\1/p' "$PH_DIR/watch.txt")
  printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$PH_LABEL" "$(( (t1 - PH_T0) / 1000 ))" "$maxdown" "$maxrestoring" \
    "${pause:-?}" "$(( ${gen:-0} - PH_GEN ))/${reb:-?}" "$restored" "$suspended" "$loaded" "$maxrl" >>"$WORK/results"
  log "$PH_LABEL: $(tail -1 "$WORK/results")"
}

table() {
  echo
  echo "$1"
  printf '%-38s %5s %5s %8s %8s %9s %9s %8s %9s %14s\n' case secs maxNR maxRestr pauseMs gens/rebs restored suspRec sbLoaded maxRestLag
  while IFS='|' read -r label secs down restr pause reb restored susp loaded rl; do
    printf '%-38s %5s %5s %8s %8s %9s %9s %8s %9s %14s\n' "$label" "$secs" "$down" "$restr" "$pause" "$reb" "$restored" "$susp" "$loaded" "$rl"
  done <"$WORK/results"
  cat <<'KEY'
  secs: from the action to rolled out, all Ready, caught up. maxNR: most pods not Ready at once
  (1 s samples). maxRestr: most pods restoring at once (RESTORE-START..RESTORED). pauseMs:
  longest time any source partition's committed offset stood still while records waited
  (RecoveryWatch, 200 ms polls; ~1000 is the commit interval). gens/rebs: group generations
  (members' "joined group with generation" lines) / rebalances RecoveryWatch saw. restored /
  suspRec: records in RESTORED / RESTORE-SUSPENDED lines (active tasks). sbLoaded: records
  standbys and warm-up replicas loaded until caught up (STANDBY-CAUGHT-UP). maxRestLag: highest
  status.kafka.restoreLagTotal the operator reported during the phase (its first value).
KEY
}

delete_pod() { # POD: a pod restart as the kubelet sees a deletion
  kubectl -n "$NS" delete pod "$1" --wait=false >/dev/null
}

# ---------------------------------------------------------------------------------------------
PHASES=" ${BENCH_PHASES:-i ii iii iw} "
has_phase() { [[ $PHASES == *" $1 "* ]]; }

rollout_mode() {
  local s name
  [[ $HAS_ROLLOUT != 0 ]] || log "note: the CRD has no spec.rollout yet: both apps roll out as StatefulSet"
  declare -A names=([RestoreAware]=wc-aware [StatefulSet]=wc-sts)
  for s in RestoreAware StatefulSet; do app "${names[$s]}" "$s" 3; done
  for s in RestoreAware StatefulSet; do wait_settled "${names[$s]}" 3 1200; done
  for s in RestoreAware StatefulSet; do
    name=${names[$s]}
    if has_phase i; then
      # (i) a config change rolls every pod.
      phase_start "$name" 3 "$s (i) rolling update"
      app "$name" "$s" 3 "max.task.idle.ms=1"
      sleep 3
      phase_end
    fi
    if has_phase ii; then
      # (ii) one pod restarted with its volume, then wiped.
      phase_start "$name" 3 "$s (ii) restart, volume kept"
      delete_pod "$name-1"
      sleep 3
      phase_end
      # The wipe knob names pod -1 only; setting it rolls the pods (not measured), then the
      # measured restart of pod -1 starts it on an emptied state directory.
      app "$name" "$s" 3 "max.task.idle.ms=1" "env:WORDCOUNT_WIPE_STATE=$name-1"
      sleep 3
      wait_settled "$name" 3
      phase_start "$name" 3 "$s (ii) restart, wiped"
      delete_pod "$name-1"
      sleep 3
      phase_end
    fi
    if has_phase iii; then
      # (iii) scale 2 -> 3.
      kubectl -n "$NS" patch streamapp "$name" --type merge -p '{"spec":{"replicas":2}}' >/dev/null
      sleep 3
      wait_settled "$name" 2
      phase_start "$name" 3 "$s (iii) scale 2->3"
      kubectl -n "$NS" patch streamapp "$name" --type merge -p '{"spec":{"replicas":3}}' >/dev/null
      sleep 3
      phase_end
    fi
    if has_phase iw; then
      # (iw) a rolling update onto fresh volumes: every restarted pod starts wiped, as when
      # a rollout also moves the pods to new nodes with local disks.
      phase_start "$name" 3 "$s (iw) rolling update, all wiped"
      app "$name" "$s" 3 "max.task.idle.ms=2" "env:WORDCOUNT_WIPE_STATE=true"
      sleep 3
      phase_end
    fi
  done
  table "recovery benchmark: $WORDS words seeded, 3 replicas, 1 standby, restore throttled to $BATCH records per ${DELAY_MS} ms"
}

restarts_mode() {
  local cases=${BENCH_CASES:-"dyn-stay dyn-leave static-slow static-45s"} c i=0
  for c in $cases; do
    i=$((i + 1))
    local name=wc-r$i args=()
    case $c in
      dyn-stay) args=("env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=false") ;;
      dyn-leave) args=("env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=true") ;;
      dyn-stay-10s) args=("env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=false" "session.timeout.ms=10000") ;;
      dyn-leave-lag1m) args=("env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=true" "acceptable.recovery.lag=1000000") ;;
      dyn-leave-lag100) args=("env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=true" "acceptable.recovery.lag=100" "max.warmup.replicas=3") ;;
      static-45s) args=(static) ;;
      static-short) args=(static "session.timeout.ms=10000") ;;
      static-120s) args=(static "session.timeout.ms=120000") ;;
      static-leave) args=(static "env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=true") ;;
      static-slow) args=(static "env:WORDCOUNT_START_DELAY_MS=60000") ;;
      dyn-leave-slow) args=("env:WORDCOUNT_LEAVE_GROUP_ON_CLOSE=true" "env:WORDCOUNT_START_DELAY_MS=60000") ;;
      *) die "unknown case $c" ;;
    esac
    app "$name" StatefulSet 3 "${args[@]}"
    wait_settled "$name" 3 1200
    sleep 10
    phase_start "$name" 3 "$c: delete pod $name-1"
    local t0
    t0=$(now_ms)
    delete_pod "$name-1"
    sleep 3
    phase_end
    # How long the pod was away: deletion to the new pod Ready.
    grep -h "^STATE\|^SHUTDOWN" "$WORK"/standin/logs/"$NS"/"$name"-1.*log >"$WORK/$c.states" 2>/dev/null || true
    kubectl -n "$NS" delete streamapp "$name" --wait=false >/dev/null
    wait_until 120 "$name deleted" test -z "$(kubectl -n "$NS" get pods -o name -l "app.kubernetes.io/instance=$name" 2>/dev/null)" || true
  done
  table "restart benchmark: one pod deleted, 3 replicas, 1 standby, $WORDS words seeded"
}

case $MODE in
  rollout) rollout_mode ;;
  restarts) restarts_mode ;;
  *) die "usage: $0 [rollout|restarts]" ;;
esac
