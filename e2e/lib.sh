#!/usr/bin/env bash
# Shared settings for the e2e scripts: pinned versions, the cache, state dirs, helpers.
# Sourced, never run.

K8S_VERSION=v1.36.3
STAGING_VERSION=v0.36.3
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
# The broker's (and its tools') version; KAFKA_VERSION=4.3.1 runs the older supported one
# (`make test-kafka-compat`). Each version has its own cache dir (kafka-$KAFKA_VERSION).
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
export KAFKA_VERSION

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$E2E_DIR/.." && pwd)
# One cache for every download and build, outside the repo, keyed by version below it.
KSO_CACHE=${KSO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kstreams-operator}
# Running state (certs, data, logs, pids); one stack per machine by default.
KSO_STATE=${KSO_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/kstreams-operator}
BIN_DIR=$KSO_CACHE/bin
export GOTOOLCHAIN=local
export GOMODCACHE=$KSO_CACHE/go/mod
export GOCACHE=$KSO_CACHE/go/build
export GOFLAGS=-mod=mod

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION CMD...: polls CMD until it succeeds or the deadline passes.
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
  log "$what: ready"
}

# start_daemon NAME LOGFILE CMD...: starts CMD detached, records its pid under $KSO_STATE/pids.
start_daemon() {
  local name=$1 logf=$2
  shift 2
  mkdir -p "$KSO_STATE/pids"
  setsid "$@" >"$logf" 2>&1 </dev/null &
  echo $! >"$KSO_STATE/pids/$name.pid"
}

# running NAME: true when the daemon we started under NAME is alive.
running() {
  local f=$KSO_STATE/pids/$1.pid
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop_daemon NAME: TERM, then KILL after a grace period, only the pid we recorded.
stop_daemon() {
  local f=$KSO_STATE/pids/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# seeded_apps_yaml NAMESPACE PREFIX FROM TO: StreamApps PREFIX-app-<i> for i in FROM..TO, named app-<i>,
# each reading its own seeded topic (`soak_kafka seed PREFIX`; make soak, make bench-memory).
seeded_apps_yaml() {
  local ns=$1 prefix=$2 i
  for ((i = $3; i <= $4; i++)); do
    cat <<APP
---
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: app-$i, namespace: $ns}
spec:
  image: example/soak:1
  replicas: 1
  applicationId: $prefix-app-$i
  kafka: {bootstrapServers: "$KAFKA_BOOTSTRAP"}
  topics: {inputs: [$prefix-app-$i.in]}
  placement: {antiAffinity: None, zoneSpread: None}
APP
  done
}
