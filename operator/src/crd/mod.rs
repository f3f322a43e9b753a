//! The `StreamApp` custom resource (`kstreams.dev/v1alpha1`).

mod spec;
mod status;

pub use spec::*;
pub use status::StreamAppStatus;

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
}

impl StreamApp {
    /// The Kafka Streams `application.id` in effect.
    pub fn application_id(&self) -> String {
        self.spec
            .application_id
            .clone()
            .unwrap_or_else(|| self.name_any())
    }
}

/// The CRD as YAML, exactly what `kstreams-operator crd` prints and `crds/` holds.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&StreamApp::crd())
}
