#!/usr/bin/env bash
# `make demo`: from a fresh machine, the local cluster and Kafka, the CRD, the operator, the
# stand-in kubelet, and the word-count StreamApp running as 2 Kafka Streams members with a
# generator feeding it, Ready, with its processing lag.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$SECONDS
"$E2E_DIR/cluster.sh" up
"$E2E_DIR/kafka.sh" up
"$E2E_DIR/operator.sh" up
"$E2E_DIR/pods.sh" up
eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"

# The example reads text-lines; the operator reports a missing input topic as Degraded.
"$E2E_DIR/kafka.sh" topic text-lines 3
"$E2E_DIR/kafka.sh" topic word-counts 3
kubectl apply --server-side --field-manager kstreams-demo \
  -f "$REPO_DIR/deploy/examples/wordcount.yaml" -f "$REPO_DIR/deploy/examples/wordcount-generator.yaml"
log "waiting for the app: two JVMs start, join the group and process (a few minutes on 2 cores)"
kubectl wait --for=condition=Ready streamapp/wordcount --timeout=600s
# Ready means processing; the lag is a number once every input partition has a commit.
lag_known() { [[ -n $(kubectl get streamapp wordcount -o jsonpath='{.status.kafka.processingLagTotal}') ]]; }
wait_until 300 "processing lag known" lag_known || die "demo: the app is Ready but its lag stays unknown; see kubectl describe streamapp wordcount"
echo
kubectl get streamapps
echo
"${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/kstreams-operator" describe wordcount
echo
kubectl get pods -o wide -l 'stand-in.kstreams.dev/serve'
echo
log "demo ready in $((SECONDS - start))s"
cat <<MSG

The operator and the stand-in kubelet run in the background (logs: e2e/operator.sh logs,
e2e/pods.sh logs wordcount-0; metrics: http://127.0.0.1:${KSO_OPERATOR_ADMIN_PORT:-18080}/metrics).
Use the cluster and Kafka from this shell with:
  eval "\$(e2e/cluster.sh env)"; eval "\$(e2e/kafka.sh env)"
Try: kubectl scale streamapp/wordcount --replicas=3; kubectl get streamapps -w
     target/debug/kstreams-operator describe wordcount
Stop everything with: make down
MSG
