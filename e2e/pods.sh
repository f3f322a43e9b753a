#!/usr/bin/env bash
# The stand-in kubelet: runs the pods labelled stand-in.kstreams.dev/serve on the kwok nodes
# as local processes (images from e2e/images.yaml and the files KSO_STANDIN_IMAGES names),
# with their probes deciding readiness. Usage: e2e/pods.sh up|down|status|logs POD [NAMESPACE]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DIR=$KSO_STATE/pods
# The namespaces it serves: the demo's by default (tests embed their own stand-in).
NAMESPACES=${KSO_STANDIN_NAMESPACES:-default}
BIN=${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/stand-in-kubelet

up() {
  eval "$("$E2E_DIR/cluster.sh" env)"
  if running standin; then
    log "stand-in kubelet already running (serving $NAMESPACES)"
    return 0
  fi
  log "building the stand-in kubelet"
  (cd "$REPO_DIR" && cargo build -q -p kstreams-standin) || die "pods: cargo build failed"
  # Built now rather than at the first pod, so a pod's start is a JVM start, not a build.
  "$E2E_DIR/example-app.sh" build >/dev/null
  mkdir -p "$DIR"
  rm -f "$DIR/status"
  log "starting the stand-in kubelet for namespaces $NAMESPACES (log: $DIR/standin.log)"
  start_daemon standin "$DIR/standin.log" "$BIN" --root "$DIR" --namespace "$NAMESPACES" \
    --registry "$E2E_DIR/images.yaml" --stop-grace-seconds 8
  wait_until 30 "stand-in kubelet" test -f "$DIR/status" || die "pods: the stand-in did not start; see $DIR/standin.log"
}

status() {
  if running standin; then
    echo "stand-in kubelet: running (serving $NAMESPACES; files: $DIR)"
    cat "$DIR/status"
  else
    echo "stand-in kubelet: down"
    return 1
  fi
}

logs() {
  local pod=${1:-} ns=${2:-default}
  [[ -n $pod ]] || die "usage: $0 logs POD [NAMESPACE]"
  local f=$DIR/logs/$ns/$pod.log
  [[ -f $f ]] || die "pods: no log for $ns/$pod (is it served? e2e/pods.sh status)"
  cat "$f"
}

case ${1:-} in
  up) up ;;
  down) stop_daemon standin; log "stand-in kubelet stopped" ;;
  status) status ;;
  logs) shift; logs "$@" ;;
  *) die "usage: $0 up|down|status|logs POD [NAMESPACE]" ;;
esac
