#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1, from Maven
# Central jars. Usage: e2e/kafka.sh up|down|stop|env|status|topic NAME [PARTITIONS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KAFKA_PORT=${KSO_KAFKA_PORT:-19092}
CONTROLLER_PORT=${KSO_KAFKA_CONTROLLER_PORT:-19093}
# Optional SASL_SSL listener (tests of TLS and SASL): a CA and server certificate for
# 127.0.0.1 are generated under $DIR/tls, and the SCRAM users in KSO_KAFKA_SCRAM_USERS
# ("name:password ...") are created at format time; PLAIN accepts the same users.
SECURE_PORT=${KSO_KAFKA_SECURE_PORT:-}
SCRAM_USERS=${KSO_KAFKA_SCRAM_USERS:-}
DIR=$KSO_STATE/kafka
LIBS=$KSO_CACHE/kafka-$KAFKA_VERSION/libs
# The Kafka version that formatted $DIR/data and runs on it. The state dir is one per stack, not
# per version: a broker refuses storage that a newer version formatted, and on storage an older
# one formatted it would run at the old metadata version, so switching KAFKA_VERSION needs a
# `down` first. State from before this file existed was made by 4.3.1.
VERSION_FILE=$DIR/kafka-version
state_version() { cat "$VERSION_FILE" 2>/dev/null || echo 4.3.1; }

kafka_java() { java -cp "$LIBS/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" "$@"; }

# Asks the broker for its metadata with Kafka's own admin tool: the readiness proof. Uses the
# running broker's own jars when cached, so `status` works whatever KAFKA_VERSION says.
answers_metadata() {
  local libs=$KSO_CACHE/kafka-$(state_version)/libs
  [[ -d $libs ]] || libs=$LIBS
  java -cp "$libs/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    2>/dev/null | grep -q "127.0.0.1:$KAFKA_PORT"
}

up() {
  if running kafka; then
    [[ $(state_version) == "$KAFKA_VERSION" ]] ||
      die "kafka $(state_version) is running on 127.0.0.1:$KAFKA_PORT, not $KAFKA_VERSION: stop it first (e2e/kafka.sh down)"
    log "kafka $KAFKA_VERSION already running on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  if [[ -f $DIR/data/meta.properties && $(state_version) != "$KAFKA_VERSION" ]]; then
    die "kafka: $DIR/data was formatted by kafka $(state_version), not $KAFKA_VERSION: e2e/kafka.sh down deletes it"
  fi
  "$E2E_DIR/tools.sh" kafka
  for p in "$KAFKA_PORT" "$CONTROLLER_PORT" $SECURE_PORT; do
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
  local scram=()
  if [[ -n $SECURE_PORT ]]; then
    secure_listener
    local user
    for user in $SCRAM_USERS; do
      for m in SCRAM-SHA-256 SCRAM-SHA-512; do
        scram+=(--add-scram "$m=[name=${user%%:*},password=${user#*:}]")
      done
    done
  fi
  if [[ ! -f $DIR/data/meta.properties ]]; then
    local id
    id=$(kafka_java kafka.tools.StorageTool random-uuid)
    # The streams rebalance protocol (KIP-1071, group.protocol=streams) needs the feature
    # streams.version=1 (the default of 4.3 and 4.4 at their latest metadata version; set
    # explicitly so a different default cannot silently turn it off) and "streams" in
    # group.coordinator.rebalance.protocols (the default of both; that setting is deprecated).
    kafka_java kafka.tools.StorageTool format --standalone -t "$id" -c "$DIR/server.properties" \
      --feature streams.version=1 "${scram[@]}" >"$DIR/format.log" 2>&1 ||
      die "kafka: formatting storage failed; see $DIR/format.log"
    echo "$KAFKA_VERSION" >"$VERSION_FILE"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log: $DIR/kafka.log)"
  start_daemon kafka "$DIR/kafka.log" java -Xms256m -Xmx768m -XX:+UseSerialGC -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" kafka.Kafka "$DIR/server.properties"
  if ! wait_until 120 "kafka metadata" answers_metadata; then
    running kafka || die "kafka exited during start; see $DIR/kafka.log"
    die "kafka did not answer metadata within 120s; see $DIR/kafka.log"
  fi
}

# Appends the SASL_SSL listener to server.properties, with a fresh CA and server certificate.
secure_listener() {
  local tls=$DIR/tls plain_users="" user
  mkdir -p "$tls"
  if [[ ! -f $tls/server.pem ]]; then
    (
      cd "$tls"
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
        -subj /CN=kstreams-e2e-ca
      openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile san.ext -out server.crt
      cat server.key server.crt >server.pem
    ) >"$DIR/tls.log" 2>&1 || die "kafka: generating TLS certificates failed; see $DIR/tls.log"
  fi
  for user in $SCRAM_USERS; do
    plain_users+=" user_${user%%:*}=\"${user#*:}\""
  done
  sed -i -e "s|^listeners=.*|&,SASL_SSL://127.0.0.1:$SECURE_PORT|" \
    -e "s|^advertised.listeners=.*|&,SASL_SSL://127.0.0.1:$SECURE_PORT|" \
    -e "s|^listener.security.protocol.map=.*|&,SASL_SSL:SASL_SSL|" "$DIR/server.properties"
  cat >>"$DIR/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$tls/server.pem
PROPS
}

down() {
  stop_daemon kafka
  rm -rf "$DIR"
  log "kafka stopped"
}

# Stops the broker but keeps its data: `up` brings back the same cluster, topics and offsets.
stop() {
  stop_daemon kafka
  log "kafka stopped (data kept in $DIR)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  stop) stop ;;
  env) echo "export KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT" ;;
  topic)
    # topic NAME [PARTITIONS]: creates the topic unless it exists.
    [[ -n ${2:-} ]] || die "usage: $0 topic NAME [PARTITIONS]"
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --create --if-not-exists --topic "$2" --partitions "${3:-3}" --replication-factor 1 >/dev/null
    ;;
  status)
    if running kafka && answers_metadata; then
      echo "kafka: running on 127.0.0.1:$KAFKA_PORT (Apache Kafka $(state_version))"
    else
      echo "kafka: down"
      exit 1
    fi
    ;;
  *) die "usage: $0 up|down|stop|env|status|topic NAME [PARTITIONS]" ;;
esac
