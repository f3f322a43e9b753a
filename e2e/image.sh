#!/usr/bin/env bash
# The operator's container image without a container engine: a fully static musl build
# (OpenSSL and zlib from source, the `static` feature), laid out as an OCI image by umoci
# (Debian's daemonless OCI tool) from scratch, then checked by running the image's own
# entrypoint binary against the local stack.
# Usage: e2e/image.sh build|check|all   (the image lands in $KSO_CACHE/image/oci)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARGET=x86_64-unknown-linux-musl
IMAGE_DIR=$KSO_CACHE/image
LAYOUT=$IMAGE_DIR/oci
TARGET_DIR=$IMAGE_DIR/target
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_DIR/Cargo.toml" | head -1)
TAG=$VERSION
# Distroless' non-root user; the Dockerfile uses the same.
NONROOT=65532

need() {
  local missing=()
  command -v umoci >/dev/null || missing+=(umoci)
  command -v musl-gcc >/dev/null || missing+=(musl-tools)
  command -v readelf >/dev/null || missing+=(binutils)
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "image: could not install ${missing[*]}"
  fi
  rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET" \
    || die "image: rustup target add $TARGET failed"
}

binary() {
  # librdkafka includes curl/curl.h even with curl off (`#ifdef` on a 0/1 define); musl-gcc
  # does not search the host's headers, so it gets just that directory.
  local inc=$IMAGE_DIR/include curl_dir=
  for d in /usr/include/x86_64-linux-gnu/curl /usr/include/curl; do
    [[ -d $d ]] && curl_dir=$d && break
  done
  [[ -n $curl_dir ]] || die "image: curl headers missing (apt-get install libcurl4-openssl-dev)"
  mkdir -p "$inc" && ln -sfn "$curl_dir" "$inc/curl"
  log "building the static binary (log: $IMAGE_DIR/build.log)"
  (cd "$REPO_DIR" && CC_x86_64_unknown_linux_musl=musl-gcc CXX_x86_64_unknown_linux_musl=g++ \
    CFLAGS_x86_64_unknown_linux_musl="-I$inc" CARGO_TARGET_DIR=$TARGET_DIR \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --target "$TARGET" -p kstreams-operator --features static) \
    >"$IMAGE_DIR/build.log" 2>&1 || die "image: cargo build failed; see $IMAGE_DIR/build.log"
  local bin=$TARGET_DIR/$TARGET/release/kstreams-operator
  if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
    die "image: $bin is dynamically linked"
  fi
  echo "$bin"
}

build() {
  need
  mkdir -p "$IMAGE_DIR"
  local bin bundle=$IMAGE_DIR/bundle
  bin=$(binary)
  rm -rf "$LAYOUT" "$bundle"
  umoci init --layout "$LAYOUT"
  umoci new --image "$LAYOUT:$TAG"
  umoci unpack --rootless --image "$LAYOUT:$TAG" "$bundle" >/dev/null
  local root=$bundle/rootfs
  install -D -m 0755 "$bin" "$root/kstreams-operator"
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$NONROOT" "$NONROOT" >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$NONROOT" >"$root/etc/group"
  install -d -m 0700 "$root/tmp"
  umoci repack --image "$LAYOUT:$TAG" "$bundle"
  umoci config --image "$LAYOUT:$TAG" \
    --config.user "$NONROOT:$NONROOT" \
    --config.entrypoint /kstreams-operator --config.cmd run \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.label "org.opencontainers.image.title=kstreams-operator" \
    --config.label "org.opencontainers.image.version=$VERSION" \
    --architecture amd64 --os linux
  umoci gc --layout "$LAYOUT"
  rm -rf "$bundle"
  local layers
  layers=$(umoci stat --image "$LAYOUT:$TAG" --json | python3 -c '
import json, sys
print(sum(1 for h in json.load(sys.stdin)["history"] if not h.get("empty_layer")))')
  log "image $LAYOUT:$TAG: $layers layer(s), $(du -sb "$LAYOUT/blobs" | cut -f1) bytes compressed," \
    "binary $(stat -c %s "$bin") bytes"
}

check() {
  [[ -f $LAYOUT/index.json ]] || die "image: no image at $LAYOUT; run: $0 build"
  local bundle=$IMAGE_DIR/check
  rm -rf "$bundle"
  umoci unpack --rootless --image "$LAYOUT:$TAG" "$bundle" >/dev/null
  # What a runtime would execute: the entrypoint and user from the image's own config.
  local entry user
  read -r entry user < <(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["process"]
print(p["args"][0], p["user"]["uid"])' "$bundle/config.json")
  [[ $user == "$NONROOT" ]] || die "image: runs as uid $user, not $NONROOT"
  local bin=$bundle/rootfs$entry
  log "unpacked entrypoint $entry: $("$bin" --version)"
  log "running the image's binary as the demo's operator"
  "$E2E_DIR/operator.sh" down >/dev/null
  "$E2E_DIR/cluster.sh" up
  eval "$("$E2E_DIR/cluster.sh" env)"
  # A fresh app, so every object and condition comes from this binary, not an earlier run.
  kubectl delete streamapp wordcount --ignore-not-found --wait >/dev/null 2>&1 || true
  KSO_OPERATOR_BIN=$bin "$E2E_DIR/demo.sh" >/dev/null
  kubectl wait --for=condition=KafkaReachable streamapp/wordcount --timeout=60s >/dev/null \
    || die "image: the image's binary did not reach Kafka; see e2e/operator.sh logs"
  "$E2E_DIR/operator.sh" logs | tail -n 3
  log "image check passed: the image's binary reached Kafka and reconciled the word-count StreamApp to Ready"
  "$E2E_DIR/operator.sh" down >/dev/null
  rm -rf "$bundle"
}

case ${1:-} in
  build) build ;;
  check) check ;;
  all) build && check ;;
  *) die "usage: $0 build|check|all" ;;
esac
