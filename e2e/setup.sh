#!/usr/bin/env bash
# What `make demo`, `make test` and `.ci/run` need before any build: the toolchains (checked,
# never installed: Debian's are too old or absent), the Debian packages the Rust build links
# against (installed when missing), and rustfmt/clippy. Fails within seconds with one line
# naming what is missing, instead of a build failing minutes later. Idempotent; calls no
# apt-get when everything is there. Usage: e2e/setup.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# librdkafka is built from source by cmake (rdkafka's cmake-build) with TLS and the curl-based
# OIDC support; openssl and curl also run in the e2e scripts and tests, python3 in the
# stand-in kubelet's tests (a web server pod) and e2e/image.sh.
PACKAGES=(cmake pkg-config libssl-dev libcurl4-openssl-dev openssl curl python3)
# Kafka 4 and the example app (maven.compiler.release 17) need Java 17.
JAVA_MIN=17
# The example app's plugins (compiler 3.13, shade 3.6) need Maven 3.6.3.
MAVEN_MIN=3.6.3
# The pinned Kubernetes module's go directive; GOTOOLCHAIN=local refuses anything older.
GO_MIN=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$E2E_DIR/k8s-bins/go.mod")
RUST_MIN=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$REPO_DIR/Cargo.toml")
APT_LOG=$KSO_CACHE/logs/setup-apt.log

# version_ge A B: true when dotted version A >= B.
version_ge() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1) == "$2" ]]; }

missing=() old=() hints=()
# need CMD HINT: records CMD as missing unless it is on PATH.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  missing+=("$1") hints+=("$2")
  return 1
}
# too_old WHAT HAVE WANT HINT: records WHAT as too old unless HAVE >= WANT.
too_old() {
  version_ge "$2" "$3" && return 0
  old+=("$1 ${2:-of unknown version} is too old") hints+=("$4")
}
# join SEP WORDS...: the words separated by SEP, each hint once.
join() {
  local sep=$1 out="" w
  shift
  for w in "$@"; do [[ "$sep$out$sep" == *"$sep$w$sep"* ]] || out+=${out:+$sep}$w; done
  printf '%s' "$out"
}
# report: fails with one line naming everything missing so far.
report() {
  ((${#missing[@]} + ${#old[@]})) || return 0
  local what=() s=
  ((${#missing[@]} > 1)) && s=s
  ((${#missing[@]})) && what+=("missing command$s $(join ', ' "${missing[@]}")")
  what+=("${old[@]}")
  die "$(join '; ' "${what[@]}"): $(join '; ' "${hints[@]}")"
}

# 1. Toolchains that cannot be installed from here: checked first, as the cheapest failure.
rust_hint="install Rust $RUST_MIN+ with rustup (https://rustup.rs)"
if need cargo "$rust_hint" && need rustc "$rust_hint"; then
  too_old rustc "$(rustc --version | awk '{print $2}')" "$RUST_MIN" "$rust_hint"
fi
go_hint="install Go $GO_MIN+ (https://go.dev/dl)"
if need go "$go_hint"; then
  too_old go "$(go env GOVERSION | sed 's/^go//')" "$GO_MIN" "$go_hint"
fi
java_hint="install a Java $JAVA_MIN+ JDK"
if need java "$java_hint" && need javac "$java_hint"; then
  # `openjdk version "17.0.15"`, or "1.8.0_292" for Java 8.
  java_version=$(java -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -1)
  java_major=${java_version#1.}
  too_old java "${java_major%%[._]*}" "$JAVA_MIN" "$java_hint"
fi
mvn_hint="install Maven $MAVEN_MIN+"
if need mvn "$mvn_hint"; then
  too_old mvn "$(mvn -B --version 2>/dev/null | sed -n 's/.*Apache Maven \([0-9.]*[0-9]\).*/\1/p' | head -1)" \
    "$MAVEN_MIN" "$mvn_hint"
fi
for cmd in cc c++ make; do need "$cmd" "install a C/C++ toolchain (apt-get install build-essential)" || true; done
for cmd in setsid flock; do need "$cmd" "install util-linux" || true; done
report

# 2. Debian packages: installed when missing.
need dpkg "e2e/setup.sh needs Debian or Ubuntu; install ${PACKAGES[*]} by hand" || report
absent=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || absent+=("$pkg")
done
if ((${#absent[@]})); then
  what="package ${absent[0]}"
  ((${#absent[@]} == 1)) || what="packages $(join ', ' "${absent[@]}")"
  sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "missing $what: run as root, or apt-get install ${absent[*]}"
    sudo=(sudo)
  fi
  log "installing ${absent[*]} (log: $APT_LOG)"
  mkdir -p "${APT_LOG%/*}"
  if ! { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${absent[@]}"; } >"$APT_LOG" 2>&1; then
    die "missing $what (apt-get install failed; see $APT_LOG)"
  fi
  still=()
  for pkg in "${absent[@]}"; do
    dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || still+=("$pkg")
  done
  ((${#still[@]} == 0)) || die "still missing after apt-get install: $(join ", " "${still[@]}"); see $APT_LOG"
fi
for cmd in cmake pkg-config openssl curl python3; do need "$cmd" "apt-get install $cmd" || true; done
report

# 3. rustfmt and clippy (make test runs both); rustup adds them when it can.
for component in rustfmt clippy; do
  sub=${component/rustfmt/fmt}
  cargo "$sub" --version >/dev/null 2>&1 && continue
  if command -v rustup >/dev/null 2>&1; then rustup component add "$component" >/dev/null 2>&1 || true; fi
  cargo "$sub" --version >/dev/null 2>&1 || { missing+=("cargo $sub"); hints+=("rustup component add $component"); }
done
report
