#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1, from Maven
# Central jars. Usage: e2e/kafka.sh up|down|env|status|topic NAME [PARTITIONS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KAFKA_PORT=${KSO_KAFKA_PORT:-19092}
CONTROLLER_PORT=${KSO_KAFKA_CONTROLLER_PORT:-19093}
DIR=$KSO_STATE/kafka
LIBS=$KSO_CACHE/kafka-$KAFKA_VERSION/libs

kafka_java() { java -cp "$LIBS/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" "$@"; }

# Asks the broker for its metadata with Kafka's own admin tool: the readiness proof.
answers_metadata() {
  kafka_java org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    2>/dev/null | grep -q "127.0.0.1:$KAFKA_PORT"
}

up() {
  if running kafka; then
    log "kafka already running on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  "$E2E_DIR/tools.sh" kafka
  for p in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
    port_free "$p" || die "kafka: port 127.0.0.1:$p is already taken (set KSO_KAFKA_PORT / KSO_KAFKA_CONTROLLER_PORT)"
  done
  mkdir -p "$DIR"
  cat >"$DIR/log4j2.properties" <<PROPS
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
PROPS
  cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  if [[ ! -f $DIR/data/meta.properties ]]; then
    local id
    id=$(kafka_java kafka.tools.StorageTool random-uuid)
    kafka_java kafka.tools.StorageTool format --standalone -t "$id" -c "$DIR/server.properties" \
      >"$DIR/format.log" 2>&1 || die "kafka: formatting storage failed; see $DIR/format.log"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log: $DIR/kafka.log)"
  start_daemon kafka "$DIR/kafka.log" java -Xms256m -Xmx768m -XX:+UseSerialGC -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" kafka.Kafka "$DIR/server.properties"
  if ! wait_until 120 "kafka metadata" answers_metadata; then
    running kafka || die "kafka exited during start; see $DIR/kafka.log"
    die "kafka did not answer metadata within 120s; see $DIR/kafka.log"
  fi
}

down() {
  stop_daemon kafka
  rm -rf "$DIR"
  log "kafka stopped"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) echo "export KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT" ;;
  topic)
    # topic NAME [PARTITIONS]: creates the topic unless it exists.
    [[ -n ${2:-} ]] || die "usage: $0 topic NAME [PARTITIONS]"
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --create --if-not-exists --topic "$2" --partitions "${3:-3}" --replication-factor 1 >/dev/null
    ;;
  status)
    if running kafka && answers_metadata; then echo "kafka: running on 127.0.0.1:$KAFKA_PORT"; else echo "kafka: down"; exit 1; fi ;;
  *) die "usage: $0 up|down|env|status|topic NAME [PARTITIONS]" ;;
esac
