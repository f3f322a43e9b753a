#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager
# and kube-scheduler built from source, kwok simulating 6 nodes, two in each of 3 zones, a default
# StorageClass whose PVCs the PV controller really binds. Usage: e2e/cluster.sh up|down|env|status|nodes
# (`nodes` prints the Node objects, for `kubectl apply` to a running cluster after NODES changed),
# or restart-apiserver|restart-etcd [SECONDS_DOWN] (fault tests, on a private cluster only).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APISERVER_PORT=${KSO_APISERVER_PORT:-16443}
ETCD_PORT=${KSO_ETCD_PORT:-12379}
ETCD_PEER_PORT=${KSO_ETCD_PEER_PORT:-12380}
KCM_PORT=${KSO_KCM_PORT:-10257}
SCHEDULER_PORT=${KSO_SCHEDULER_PORT:-10259}
KWOK_PORT=${KSO_KWOK_PORT:-10247}
DIR=$KSO_STATE/cluster
PKI=$DIR/pki
K8S_BIN=$BIN_DIR/k8s-$K8S_VERSION
KWOK_BIN=$BIN_DIR/kwok-$KWOK_VERSION/kwok
KUBECONFIG_FILE=$DIR/admin.kubeconfig
ZONES=(zone-a zone-b zone-c)
# Two nodes per zone: kwok-node-<i> is in ZONES[i % 3], so a zone can hold two instances of an
# app with per-node anti-affinity (what zone-aware standby placement is tested on).
NODES=6

kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# Tool dirs that go first on PATH: kubectl matching the server, helm, kubeconform.
tool_path() {
  echo "$K8S_BIN:$BIN_DIR/helm-$HELM_VERSION:$BIN_DIR/kubeconform-$KUBECONFORM_VERSION:$BIN_DIR/kwok-$KWOK_VERSION"
}

pki() {
  [[ -f $PKI/admin.crt ]] && return 0
  mkdir -p "$PKI" && cd "$PKI"
  (
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.crt -subj "/CN=kstreams-e2e-ca"
    cat >apiserver.ext <<EXT
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EXT
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt
    echo "extendedKeyUsage=clientAuth" >client.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=kstreams-e2e-admin"
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$DIR/pki.log" 2>&1 || die "cluster: creating certificates failed; see $DIR/pki.log"
  cd - >/dev/null
}

kubeconfig() {
  cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kstreams-e2e
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: kstreams-e2e
  context: {cluster: kstreams-e2e, user: admin}
current-context: kstreams-e2e
KC
}

healthy() { # URL: answers 200 "ok" over TLS with the admin cert
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$1" 2>/dev/null | grep -q '^ok'
}
healthz_insecure() { curl -fsSk --max-time 2 "$1" 2>/dev/null | grep -q '^ok'; }
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

# start NAME READINESS_DESCRIPTION CHECK_CMD -- CMD...: idempotent start plus a readiness wait.
start() {
  local name=$1 check=$2
  shift 2
  if running "$name"; then return 0; fi
  log "starting $name (log: $DIR/$name.log)"
  start_daemon "$name" "$DIR/$name.log" "$@"
  local deadline=$((SECONDS + 120))
  until $check >/dev/null 2>&1; do
    running "$name" || die "cluster: $name exited during start; see $DIR/$name.log"
    ((SECONDS < deadline)) || die "cluster: $name not ready within 120s; see $DIR/$name.log"
    sleep 0.5
  done
  log "$name: ready"
}

check_ports() {
  local name port
  for pair in etcd:$ETCD_PORT etcd-peer:$ETCD_PEER_PORT kube-apiserver:$APISERVER_PORT \
    kube-controller-manager:$KCM_PORT kube-scheduler:$SCHEDULER_PORT kwok:$KWOK_PORT; do
    name=${pair%%:*} port=${pair##*:}
    running "${name%-peer}" && continue
    port_free "$port" || die "cluster: port 127.0.0.1:$port for $name is already taken (see KSO_*_PORT in e2e/cluster.sh)"
  done
}

nodes() {
  local i zone
  for ((i = 0; i < NODES; i++)); do
    zone=${ZONES[$((i % ${#ZONES[@]}))]}
    cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: $zone
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 1Ti}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 1Ti}
NODE
  done
}

nodes_and_storage() {
  nodes
  cat <<SC
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
SC
}

nodes_ready() {
  [[ $(kubectl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True) == "$NODES" ]]
}
default_sa_exists() { kubectl -n default get serviceaccount default; }

start_etcd() {
  start etcd "etcd_healthy" "$K8S_BIN/etcd" --name e2e --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes=2147483648 \
    --listen-metrics-urls=""
}

start_apiserver() {
  start kube-apiserver "healthy https://127.0.0.1:$APISERVER_PORT/readyz" "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --endpoint-reconciler-type none \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --authorization-mode Node,RBAC \
    --service-cluster-ip-range 10.96.0.0/16 \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --profiling=false --event-ttl 1h
}

# restart NAME START_FN [SECONDS_DOWN]: stops the daemon we recorded under NAME, keeps it down
# for SECONDS_DOWN (default 0; an outage long enough for clients to notice), starts it again
# with the same flags and data, and waits for it to be ready. For `make soak`'s fault tests,
# on a private cluster (KSO_STATE and the KSO_*_PORT variables): never on the shared one.
restart() {
  [[ $KSO_STATE != "${XDG_STATE_HOME:-$HOME/.local/state}/kstreams-operator" ]] ||
    die "cluster: refusing to restart $1 of the default (shared) stack; set KSO_STATE and KSO_*_PORT for a private cluster"
  running "$1" || die "cluster: $1 is not running under $KSO_STATE"
  log "stopping $1"
  stop_daemon "$1"
  sleep "${3:-0}"
  "$2"
}

up() {
  "$E2E_DIR/tools.sh" k8s
  "$E2E_DIR/tools.sh" kwok
  "$E2E_DIR/tools.sh" helm
  "$E2E_DIR/tools.sh" kubeconform
  mkdir -p "$DIR"
  check_ports
  pki
  kubeconfig
  start_etcd
  start_apiserver
  start kube-controller-manager "healthz_insecure https://127.0.0.1:$KCM_PORT/healthz" "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_FILE" --authentication-kubeconfig "$KUBECONFIG_FILE" \
    --authorization-kubeconfig "$KUBECONFIG_FILE" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --root-ca-file "$PKI/ca.crt" \
    --service-account-private-key-file "$PKI/sa.key" --use-service-account-credentials \
    --enable-hostpath-provisioner --profiling=false
  start kube-scheduler "healthz_insecure https://127.0.0.1:$SCHEDULER_PORT/healthz" "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_FILE" --authentication-kubeconfig "$KUBECONFIG_FILE" \
    --authorization-kubeconfig "$KUBECONFIG_FILE" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --profiling=false
  start kwok "healthz_insecure http://127.0.0.1:$KWOK_PORT/healthz" "$KWOK_BIN" \
    --kubeconfig "$KUBECONFIG_FILE" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --config "$BIN_DIR/kwok-$KWOK_VERSION/node-stages.yaml,$E2E_DIR/kwok/pod-stages.yaml" --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:$KWOK_PORT" --cidr 10.244.0.0/16 --node-ip 10.0.0.1
  nodes_and_storage | kubectl apply --server-side --field-manager kstreams-e2e -f - >/dev/null
  wait_until 120 "$NODES kwok nodes Ready" nodes_ready || die "cluster: nodes not Ready within 120s; see $DIR/kwok.log"
  wait_until 60 "service accounts" default_sa_exists || die "cluster: default ServiceAccount never appeared; see $DIR/kube-controller-manager.log"
}

down() {
  for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$c"; done
  rm -rf "$DIR"
  log "cluster stopped"
}

status() {
  local ok=0
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    if running "$c"; then echo "$c: running"; else echo "$c: down"; ok=1; fi
  done
  if ((ok == 0)) && healthy "https://127.0.0.1:$APISERVER_PORT/readyz"; then
    kubectl version 2>/dev/null | sed 's/^/  /' || true
    kubectl get nodes -L topology.kubernetes.io/zone 2>/dev/null | sed 's/^/  /' || true
  fi
  return $ok
}

case ${1:-} in
  up) up ;;
  nodes) nodes ;;
  down) down ;;
  env)
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
    echo "export PATH=$(tool_path):\$PATH"
    ;;
  status) status ;;
  restart-apiserver) restart kube-apiserver start_apiserver "${2:-0}" ;;
  restart-etcd) restart etcd start_etcd "${2:-0}" ;;
  *) die "usage: $0 up|down|env|status|nodes|restart-apiserver|restart-etcd [SECONDS_DOWN]" ;;
esac
