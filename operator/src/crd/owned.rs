//! The Kafka Streams properties the operator sets itself: one list, read by the CEL rules that
//! refuse them in `spec.config` and by the builders that write them.

use serde_json::{Value, json};

/// A property the operator owns, and what a user who tries to set it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedKey {
    /// The Kafka Streams property.
    pub key: &'static str,
    /// The admission message: which spec field sets it instead.
    pub message: &'static str,
}

/// `application.id`, from `spec.applicationId`.
pub const APPLICATION_ID: OwnedKey = OwnedKey {
    key: "application.id",
    message: "application.id is set by the operator: use spec.applicationId",
};
/// `bootstrap.servers`, from `spec.kafka.bootstrapServers`.
pub const BOOTSTRAP_SERVERS: OwnedKey = OwnedKey {
    key: "bootstrap.servers",
    message: "bootstrap.servers is set by the operator: use spec.kafka.bootstrapServers",
};
/// `state.dir`, from `spec.state.mountPath`.
pub const STATE_DIR: OwnedKey = OwnedKey {
    key: "state.dir",
    message: "state.dir is set by the operator: use spec.state.mountPath",
};
/// `num.standby.replicas`, from `spec.standbyReplicas`.
pub const NUM_STANDBY_REPLICAS: OwnedKey = OwnedKey {
    key: "num.standby.replicas",
    message: "num.standby.replicas is set by the operator: use spec.standbyReplicas",
};
/// `application.server`, from `spec.interactiveQueries.port` and the pod's DNS name.
pub const APPLICATION_SERVER: OwnedKey = OwnedKey {
    key: "application.server",
    message: "application.server is set by the operator: use spec.interactiveQueries.port",
};
/// `client.id`: the pod name, so group members map to pods.
pub const CLIENT_ID: OwnedKey = OwnedKey {
    key: "client.id",
    message: "client.id is set by the operator to the pod name",
};
/// `group.instance.id`, from `spec.staticMembership`.
pub const GROUP_INSTANCE_ID: OwnedKey = OwnedKey {
    key: "group.instance.id",
    message: "group.instance.id is set by the operator: use spec.staticMembership",
};

/// `client.tag.zone`: each pod's zone, from its `topology.kubernetes.io/zone` label, with
/// `spec.placement.zoneAwareStandbys`. Refused in `spec.config` whether or not that is on: a
/// value there would give every pod the same zone, which defeats the tag. A zone from another
/// source goes in `spec.env` (`KAFKA_STREAMS_CLIENT_TAG_ZONE`), per pod.
/// `rack.aware.assignment.tags` is not owned: the operator adds `zone` to the user's list.
pub const CLIENT_TAG_ZONE: OwnedKey = OwnedKey {
    key: "client.tag.zone",
    message: "client.tag.zone is set by the operator to each pod's zone (spec.placement.zoneAwareStandbys): one value in spec.config would give every pod the same zone; to take the zone from elsewhere, set KAFKA_STREAMS_CLIENT_TAG_ZONE per pod in spec.env",
};

/// `group.protocol`, from `spec.kafka.groupProtocol`: the operator reads the app's group by
/// its protocol (a classic consumer group or a KIP-1071 streams group) and sets the standby
/// count where that protocol takes it, so the protocol must be one it knows. Written only for
/// `Streams`; `Classic` is Kafka Streams' default.
pub const GROUP_PROTOCOL: OwnedKey = OwnedKey {
    key: "group.protocol",
    message: "group.protocol is set by the operator: use spec.kafka.groupProtocol (Classic or Streams)",
};

/// Every owned property, in the order admission checks them.
pub const OWNED_KEYS: [OwnedKey; 9] = [
    APPLICATION_ID,
    BOOTSTRAP_SERVERS,
    STATE_DIR,
    NUM_STANDBY_REPLICAS,
    APPLICATION_SERVER,
    CLIENT_ID,
    GROUP_INSTANCE_ID,
    CLIENT_TAG_ZONE,
    GROUP_PROTOCOL,
];

/// The CEL rule refusing `key` in a map of properties.
pub fn refusal_rule(key: &str) -> String {
    format!("!('{key}' in self)")
}

/// Adds a CEL rule per owned key to the schema of `spec.config`.
pub(super) fn refuse_owned_keys(schema: &mut schemars::Schema) {
    let rules: Vec<Value> = OWNED_KEYS
        .iter()
        .map(|k| json!({"message": k.message, "rule": refusal_rule(k.key)}))
        .collect();
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}
