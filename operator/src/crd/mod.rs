//! The `StreamApp` custom resource (`kstreams.dev/v1alpha1`).

pub mod owned;
pub mod rules;
mod spec;
mod status;
mod summary;

pub use spec::*;
pub use status::{
    LostPod, NodeLoss, ResetPhase, ResetStatus, ResetStep, RolloutStatus, StreamAppStatus,
};
pub use summary::{StreamAppSummary, SummaryCondition, SummaryKafka, SummaryStatus};

use kube::{CustomResourceExt, ResourceExt};

/// Condition types the operator maintains.
pub mod condition {
    /// The app runs all its instances, ready, at the current spec.
    pub const READY: &str = "Ready";
    /// A rollout or scale is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Something outside the spec stops the app from converging.
    pub const DEGRADED: &str = "Degraded";
    /// `spec.paused` is set.
    pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";
    /// The last Kafka check reached the brokers.
    pub const KAFKA_REACHABLE: &str = "KafkaReachable";
    /// Every changelog topic exists, is compacted and has the right partition count.
    pub const CHANGELOGS_HEALTHY: &str = "ChangelogsHealthy";
    /// An instance restores state beyond `acceptable.recovery.lag`, or warm-up replicas are
    /// still catching up.
    pub const RESTORING: &str = "Restoring";
    /// Every Ready instance has a member in the app's consumer group, the group is Stable and
    /// no partition's commits stand still while records wait.
    pub const PROCESSING: &str = "Processing";
    /// More instances than the largest subtopology has tasks: some get no active task.
    pub const INSTANCES_IDLE: &str = "InstancesIdle";
    /// `spec.suspend` is set: the app runs no instances and keeps its state.
    pub const SUSPENDED: &str = "Suspended";
    /// A reset from `spec.reset` is under way, or the last one was refused or failed.
    pub const RESETTING: &str = "Resetting";
}

impl StreamApp {
    /// The Kafka Streams `application.id` in effect.
    pub fn application_id(&self) -> String {
        self.spec
            .application_id
            .clone()
            .unwrap_or_else(|| self.name_any())
    }

    /// The rebalance protocol the app runs: `spec.kafka.groupProtocol`, or `Streams` when an
    /// app stored before `group.protocol` was refused in `spec.config` still sets it to
    /// `streams` there (so an operator upgrade does not move a running app to another
    /// protocol).
    pub fn group_protocol(&self) -> GroupProtocol {
        let legacy = self
            .spec
            .config
            .get(owned::GROUP_PROTOCOL.key)
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("streams"));
        if legacy {
            GroupProtocol::Streams
        } else {
            self.spec.kafka.group_protocol
        }
    }

    /// Whether the app is on the KIP-1071 streams rebalance protocol, whose groups are
    /// streams groups, not classic consumer groups.
    pub fn uses_streams_protocol(&self) -> bool {
        self.group_protocol() == GroupProtocol::Streams
    }
}

/// The CRD as YAML, exactly what `kstreams-operator crd` prints and `crds/` holds.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&StreamApp::crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owned_key_is_refused_at_admission() {
        let crd = serde_json::to_value(StreamApp::crd()).unwrap();
        let config = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["config"];
        let rules = config["x-kubernetes-validations"].as_array().unwrap();
        for key in owned::OWNED_KEYS {
            assert!(
                rules
                    .iter()
                    .any(|r| r["rule"] == rules::refusal_rule(key.key)
                        && r["message"] == key.message),
                "{} is not refused in spec.config",
                key.key
            );
        }
    }

    #[test]
    fn the_group_protocol_comes_from_the_spec_or_a_stored_config_key() {
        let mut app: StreamApp = serde_yaml::from_str(
            "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092'}}
",
        )
        .unwrap();
        assert_eq!(app.spec.kafka.group_protocol, GroupProtocol::Classic);
        assert!(!app.uses_streams_protocol());
        app.spec.kafka.group_protocol = GroupProtocol::Streams;
        assert!(app.uses_streams_protocol());
        assert_eq!(
            serde_json::to_value(&app.spec.kafka).unwrap()["groupProtocol"],
            "Streams"
        );
        // Stored before admission refused the key: still honoured.
        app.spec.kafka.group_protocol = GroupProtocol::Classic;
        app.spec
            .config
            .insert("group.protocol".into(), " Streams ".into());
        assert!(app.uses_streams_protocol());
        app.spec
            .config
            .insert("group.protocol".into(), "classic".into());
        assert!(!app.uses_streams_protocol());
    }

    #[test]
    fn a_mechanism_is_named_as_it_serializes() {
        for m in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
    }
}
