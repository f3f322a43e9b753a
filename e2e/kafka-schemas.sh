#!/usr/bin/env bash
# Refreshes the Kafka message schemas the wire layer (kafka/src/protocol) is generated from:
# copies each schema kafka/protocol/schema/ holds out of the kafka-clients jar of
# KAFKA_VERSION (default: the stack's pin), records the version, and regenerates the Rust
# types. To add an API, name its schemas: e2e/kafka-schemas.sh OffsetDeleteRequest ...
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SCHEMA_DIR=$REPO_DIR/kafka/protocol/schema
JAR=$KSO_CACHE/m2/org/apache/kafka/kafka-clients/$KAFKA_VERSION/kafka-clients-$KAFKA_VERSION.jar
if [[ ! -f $JAR ]]; then
  mvn -B -q dependency:get -Dartifact="org.apache.kafka:kafka-clients:$KAFKA_VERSION" \
    -Dtransitive=false -Dmaven.repo.local="$KSO_CACHE/m2"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unzip -q -o "$JAR" 'common/message/*' -d "$tmp"

names=("$@")
for f in "$SCHEMA_DIR"/*.json; do names+=("$(basename "$f" .json)"); done
for name in "${names[@]}"; do
  [[ -f $tmp/common/message/$name.json ]] || die "kafka-clients $KAFKA_VERSION has no schema $name"
  cp "$tmp/common/message/$name.json" "$SCHEMA_DIR/"
done
echo "$KAFKA_VERSION" >"$SCHEMA_DIR/VERSION"
(cd "$REPO_DIR" && cargo run -q -p kstreams-kafka-codegen)
log "schemas of kafka-clients $KAFKA_VERSION in $SCHEMA_DIR, Rust types regenerated"
