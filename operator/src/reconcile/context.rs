//! What every reconcile shares: the Kubernetes client, the Event recorder, the metrics, the
//! Kafka step's clients and per-app state, and the retry state of failed reconciles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use super::applied::AppliedChildren;
use super::kafka::{KafkaChecks, KafkaSettings};
use crate::crd::ResetPhase;
use crate::metrics::Metrics;
use crate::resources::FIELD_MANAGER;

/// Shared state of the controller.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events on StreamApps.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// The Kafka step: shared clients per Kafka cluster, and each app's last check.
    pub kafka: KafkaChecks,
    /// The last apply of each child and the watches' view of it: applies that would change
    /// nothing are skipped.
    pub applied: Arc<AppliedChildren>,
    /// Test only (`--reset-halt-after`): the reset phase after whose action a reconcile parks.
    pub reset_halt: Option<ResetPhase>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context for `client`, reporting Events as `instance` of the operator; `kafka_refresh`
    /// is how often each app's Kafka side is checked (`None` disables the checks), the other
    /// Kafka settings are the defaults.
    pub fn new(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        kafka_refresh: Option<Duration>,
    ) -> Self {
        let kafka = KafkaSettings {
            refresh: kafka_refresh,
            ..KafkaSettings::default()
        };
        Self::with_settings(client, instance, metrics, kafka)
    }

    /// A context as [`Context::new`] makes it, with every Kafka setting given.
    pub fn with_settings(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        kafka: KafkaSettings,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            kafka: KafkaChecks::new(kafka),
            applied: Arc::default(),
            reset_halt: None,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Exponential backoff per object: 2 s, 4 s, ... capped at 5 minutes.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(2u64.saturating_pow((*n).min(9)).min(300))
    }

    /// Forget the failures of an object that reconciled.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}
