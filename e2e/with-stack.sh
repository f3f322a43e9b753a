#!/usr/bin/env bash
# Runs a command with the local cluster and Kafka available: starts whichever is not running,
# exports KUBECONFIG, KAFKA_BOOTSTRAP and the pinned tools' PATH, runs the command, and stops
# only what it started. Usage: e2e/with-stack.sh CMD [ARGS...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

started=()
cleanup() {
  local rc=$?
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    "$E2E_DIR/${started[$i]}.sh" down || true
  done
  exit $rc
}
trap cleanup EXIT INT TERM

for part in cluster kafka; do
  if ! "$E2E_DIR/$part.sh" status >/dev/null 2>&1; then
    started+=("$part")
    "$E2E_DIR/$part.sh" up
  fi
done
eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"
"$@"
