#!/usr/bin/env bash
# Reconcile benchmark: N StreamApps (default 200) through the operator, against the floor of
# applying the same objects directly with `kubectl apply --server-side`. Prints time to all
# Ready for both, their ratio and the operator's peak RSS. Needs the stack (make up, or run
# under e2e/with-stack.sh). Usage: e2e/bench-reconcile.sh [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-${N:-200}}
eval "$("$E2E_DIR/cluster.sh" env)"
BIN=${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/kstreams-operator
WORK=$(mktemp -d)
FLOOR_NS=bench-floor-$$ OP_NS=bench-op-$$
OP_PID=
cleanup() {
  [[ -n $OP_PID ]] && kill "$OP_PID" 2>/dev/null
  kubectl delete ns "$FLOOR_NS" "$OP_NS" --wait=false >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "building the operator (release)"
(cd "$REPO_DIR" && cargo build -q --release -p kstreams-operator)
kubectl apply --server-side --field-manager kstreams-bench -f "$REPO_DIR/crds/streamapp.yaml" >/dev/null
kubectl wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null

for i in $(seq 1 "$N"); do
  cat <<APP
---
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: app-$i}
spec:
  image: example/bench:1
  replicas: 1
  kafka: {bootstrapServers: "127.0.0.1:19092"}
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

kubectl create ns "$FLOOR_NS" >/dev/null
start=$(date +%s.%N)
kubectl apply --server-side --field-manager kstreams-bench -f "$WORK/children.yaml" >/dev/null
wait_until 900 "floor: $N StatefulSets ready" sts_ready || die "floor did not converge"
floor=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')

# The floor's pods must not take the simulated nodes' pod capacity from the operator's.
kubectl delete ns "$FLOOR_NS" --wait=false >/dev/null
kubectl wait --for=delete "ns/$FLOOR_NS" --timeout=600s >/dev/null
kubectl create ns "$OP_NS" >/dev/null
"$BIN" run --namespaces "$OP_NS" --admin-addr 127.0.0.1:0 --concurrency 8 >"$WORK/operator.log" 2>&1 &
OP_PID=$!
start=$(date +%s.%N)
kubectl -n "$OP_NS" apply --server-side --field-manager kstreams-bench -f "$WORK/apps.yaml" >/dev/null
wait_until 900 "operator: $N StreamApps Ready" apps_ready || die "operator did not converge; log: $WORK/operator.log"
op=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')
rss=$(awk '/VmHWM/ {print $2}' "/proc/$OP_PID/status")

printf '\nreconcile benchmark, N=%s StreamApps (1 replica each), release build, concurrency 8\n' "$N"
printf '  floor (kubectl apply --server-side of the same children): %6.1f s\n' "$floor"
printf '  operator (StreamApps applied -> all Ready):               %6.1f s\n' "$op"
printf '  ratio operator/floor:                                     %6.2f\n' "$(awk -v a="$op" -v b="$floor" 'BEGIN {print a / b}')"
printf '  operator peak RSS (VmHWM):                                %6.1f MiB\n' "$(awk -v a="$rss" 'BEGIN {print a / 1024}')"
