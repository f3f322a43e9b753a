#!/usr/bin/env bash
# `make demo`: from a fresh machine, the local cluster and Kafka, the CRD, the operator, and
# the seed's word-count StreamApp, Ready.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$E2E_DIR/cluster.sh" up
"$E2E_DIR/kafka.sh" up
"$E2E_DIR/operator.sh" up
eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"

# The example reads text-lines; the operator reports a missing input topic as Degraded.
"$E2E_DIR/kafka.sh" topic text-lines 3
kubectl apply --server-side --field-manager kstreams-demo -f "$REPO_DIR/deploy/examples/wordcount.yaml"
kubectl wait --for=condition=Ready streamapp/wordcount --timeout=180s
echo
kubectl get streamapps
echo
kubectl get statefulsets,pods,pvc -l app.kubernetes.io/instance=wordcount -o wide
cat <<MSG

The operator runs in the background (log: e2e/operator.sh logs; metrics: http://127.0.0.1:${KSO_OPERATOR_ADMIN_PORT:-18080}/metrics).
Use the cluster and Kafka from this shell with:
  eval "\$(e2e/cluster.sh env)"; eval "\$(e2e/kafka.sh env)"
Try: kubectl scale streamapp/wordcount --replicas=3; kubectl get streamapps -w
Stop everything with: make down
MSG
