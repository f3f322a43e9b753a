#!/usr/bin/env bash
# Builds (once) and caches the pinned tools the local stack and the tests need:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm,
# kubeconform, and Apache Kafka's jars. Usage: e2e/tools.sh [all|k8s|kwok|helm|kubeconform|kafka]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$BIN_DIR" "$KSO_CACHE/logs"

# timed NAME CMD...: runs CMD with its output in a log; on failure prints one line naming it.
timed() {
  local name=$1 start=$SECONDS logf=$KSO_CACHE/logs/build-$1.log
  shift
  log "building $name (log: $logf)"
  if ! "$@" >"$logf" 2>&1; then
    die "building $name failed; see $logf"
  fi
  log "built $name in $((SECONDS - start))s"
}

k8s_ldflags() {
  local major minor
  major=$(echo "${K8S_VERSION#v}" | cut -d. -f1)
  minor=$(echo "${K8S_VERSION#v}" | cut -d. -f2)
  local f=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "-s -w$f"
}

build_k8s() {
  local out=$BIN_DIR/k8s-$K8S_VERSION
  [[ -x $out/kubectl && -x $out/etcd ]] && return 0
  mkdir -p "$out.tmp"
  (
    cd "$E2E_DIR/k8s-bins"
    export CGO_ENABLED=0
    local ld
    ld=$(k8s_ldflags)
    for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      timed "$cmd" go build -trimpath -ldflags "$ld" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
    timed etcd go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# go_tool NAME MODULE/PATH VERSION [LDFLAGS]: go install of a module that needs no replaces.
go_tool() {
  local name=$1 pkg=$2 version=$3 ld=${4:-}
  local out=$BIN_DIR/$name-$version
  [[ -x $out/$name ]] && return 0
  mkdir -p "$out"
  CGO_ENABLED=0 GOBIN=$out timed "$name" go install -trimpath -ldflags "-s -w $ld" "$pkg@$version"
}

# kwok plus its node stages (heartbeats with leases) and Job pods' completion, taken from the
# same module version as the binary. The other pod stages are the repo's (e2e/kwok/).
build_kwok() {
  local out=$BIN_DIR/kwok-$KWOK_VERSION
  go_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
  [[ -f $out/node-stages.yaml ]] && return 0
  local src
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [[ -d $src ]] || die "kwok module source not found for $KWOK_VERSION"
  for f in "$src"/kustomize/stage/node/fast/node-initialize.yaml \
    "$src"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$src"/kustomize/stage/pod/fast/pod-complete.yaml; do
    echo "---"
    cat "$f"
  done >"$out/node-stages.yaml.tmp"
  mv "$out/node-stages.yaml.tmp" "$out/node-stages.yaml"
}

fetch_kafka() {
  local out=$KSO_CACHE/kafka-$KAFKA_VERSION
  [[ -f $out/.complete ]] && return 0
  rm -rf "$out" && mkdir -p "$out/libs"
  local pom=$out/pom.xml
  cat >"$pom" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kstreams.e2e</groupId><artifactId>kafka-dist</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.4</version></dependency>
  </dependencies>
</project>
POM
  timed "kafka-$KAFKA_VERSION" mvn -B -q -f "$pom" -Dmaven.repo.local="$KSO_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out/libs"
  touch "$out/.complete"
}

what=${1:-all}
case $what in
  k8s) build_k8s ;;
  kwok) build_kwok ;;
  helm) go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
  kubeconform) go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" ;;
  kafka) fetch_kafka ;;
  all)
    fetch_kafka
    build_kwok
    build_k8s
    go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
    ;;
  *) die "unknown tool '$what' (all|k8s|kwok|helm|kubeconform|kafka)" ;;
esac
