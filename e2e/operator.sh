#!/usr/bin/env bash
# The operator as a local process against the local cluster: builds it, installs the CRD,
# runs `kstreams-operator run` in the background. Usage: e2e/operator.sh up|down|status|logs
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ADMIN_PORT=${KSO_OPERATOR_ADMIN_PORT:-18080}
DIR=$KSO_STATE/operator
# KSO_OPERATOR_BIN runs a prebuilt binary instead (e2e/image.sh runs the image's own).
BIN=${KSO_OPERATOR_BIN:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/kstreams-operator}

ready() { curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1; }

up() {
  eval "$("$E2E_DIR/cluster.sh" env)"
  if running operator; then
    log "operator already running (admin: http://127.0.0.1:$ADMIN_PORT)"
    return 0
  fi
  port_free "$ADMIN_PORT" || die "operator: port 127.0.0.1:$ADMIN_PORT is already taken (set KSO_OPERATOR_ADMIN_PORT)"
  if [[ -z ${KSO_OPERATOR_BIN:-} ]]; then
    log "building the operator"
    (cd "$REPO_DIR" && cargo build -q -p kstreams-operator) || die "operator: cargo build failed"
  fi
  kubectl apply --server-side --field-manager kstreams-e2e -f "$REPO_DIR/crds/streamapp.yaml" >/dev/null
  kubectl wait --for=condition=Established crd/streamapps.kstreams.dev --timeout=60s >/dev/null
  mkdir -p "$DIR"
  log "starting the operator (log: $DIR/operator.log)"
  # The demo's operator watches only its own namespaces, so that tests (which run an operator
  # per test namespace) never share an app with it.
  start_daemon operator "$DIR/operator.log" "$BIN" run --admin-addr "127.0.0.1:$ADMIN_PORT" \
    --instance local --namespaces "${KSO_OPERATOR_NAMESPACES:-default}"
  wait_until 60 "operator /readyz" ready || die "operator: not ready within 60s; see $DIR/operator.log"
}

case ${1:-} in
  up) up ;;
  down) stop_daemon operator; log "operator stopped" ;;
  status) if running operator && ready; then echo "operator: running (admin: http://127.0.0.1:$ADMIN_PORT)"; else echo "operator: down"; exit 1; fi ;;
  logs) cat "$DIR/operator.log" ;;
  *) die "usage: $0 up|down|status|logs" ;;
esac
