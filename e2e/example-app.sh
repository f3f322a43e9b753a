#!/usr/bin/env bash
# Builds (once per source change) the example word-count app's runnable jar and prints its
# absolute path on stdout. Usage: e2e/example-app.sh build
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APP_DIR=$REPO_DIR/deploy/examples/wordcount-app
OUT_DIR=$KSO_CACHE/examples

# The jar is keyed by its sources, so an edit rebuilds and an unchanged tree never does.
source_hash() {
  (cd "$APP_DIR" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
    sha256sum | cut -c1-16
}

build() {
  local hash jar
  hash=$(source_hash)
  jar=$OUT_DIR/wordcount-$hash.jar
  if [[ ! -f $jar ]]; then
    mkdir -p "$OUT_DIR"
    # Tests may ask for the jar concurrently: one builds, the others wait and reuse it.
    exec 9>"$OUT_DIR/.build.lock"
    flock 9
    if [[ ! -f $jar ]]; then
      local build_dir=$OUT_DIR/build-$hash logf=$KSO_CACHE/logs/build-wordcount.log start=$SECONDS
      local mvn=(mvn -B -q -f "$APP_DIR/pom.xml" -Dmaven.repo.local="$KSO_CACHE/m2"
        -Dbuild.dir="$build_dir" -DskipTests package)
      mkdir -p "$KSO_CACHE/logs"
      log "building the word-count example jar (log: $logf)"
      # Offline first: once the cache holds everything, a rebuild needs no network.
      if ! "${mvn[@]}" -o >"$logf" 2>&1 && ! "${mvn[@]}" >>"$logf" 2>&1; then
        die "building the word-count example failed; see $logf"
      fi
      cp "$build_dir/wordcount.jar" "$jar.tmp"
      mv "$jar.tmp" "$jar"
      rm -rf "$build_dir"
      # Jars of older sources pile up at ~55 MB each: keep the newest few.
      ls -1t "$OUT_DIR"/wordcount-*.jar | tail -n +4 | xargs -r rm -f
      log "built $jar in $((SECONDS - start))s"
    fi
    exec 9>&-
  fi
  echo "$jar"
}

case ${1:-} in
  build) build ;;
  *) die "usage: $0 build" ;;
esac
