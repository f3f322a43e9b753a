//! What every reconcile shares: the client, the event recorder, Kafka clients, retry state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::kafka::{Baseline, ClientPool, PoolConfig};
use crate::kafka_check::KafkaOutcome;
use crate::metrics::Metrics;

/// What a Kafka check was made for: the app's generation and its pods.
pub type CheckedFor = (i64, Vec<String>);

/// Shared state of the controller.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events on StreamApps.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Kafka clients, one set per Kafka cluster, shared by the apps that use it.
    pub kafka: ClientPool,
    /// How often each app's Kafka side is checked; `None` disables the checks.
    pub kafka_refresh: Option<Duration>,
    failures: Mutex<HashMap<String, u32>>,
    kafka_outcomes: Mutex<HashMap<String, (Instant, CheckedFor, KafkaOutcome)>>,
    kafka_baselines: Mutex<HashMap<String, Baseline>>,
}

impl Context {
    /// A context for `client`, reporting Events as `instance` of the operator.
    pub fn new(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        kafka_refresh: Option<Duration>,
    ) -> Self {
        let reporter = Reporter {
            controller: crate::resources::FIELD_MANAGER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            kafka: ClientPool::new(PoolConfig {
                request_timeout: Duration::from_secs(5),
                ..PoolConfig::default()
            }),
            kafka_refresh,
            failures: Mutex::new(HashMap::new()),
            kafka_outcomes: Mutex::new(HashMap::new()),
            kafka_baselines: Mutex::new(HashMap::new()),
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

    /// The last Kafka check of an app: when, for which generation and pods, what it found.
    pub fn kafka_cache(&self, key: &str) -> Option<(Instant, CheckedFor, KafkaOutcome)> {
        let cache = self
            .kafka_outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.get(key).cloned()
    }

    /// The restore-lag baseline of an app's current group members.
    pub fn kafka_baseline(&self, key: &str) -> Option<Baseline> {
        let baselines = self
            .kafka_baselines
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        baselines.get(key).cloned()
    }

    /// Remembers the restore-lag baseline of an app.
    pub fn set_kafka_baseline(&self, key: String, baseline: Baseline) {
        let mut baselines = self
            .kafka_baselines
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        baselines.insert(key, baseline);
    }

    /// Remembers a Kafka check.
    pub fn set_kafka_cache(&self, key: String, checked_for: CheckedFor, outcome: KafkaOutcome) {
        let mut cache = self
            .kafka_outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.insert(key, (Instant::now(), checked_for, outcome));
    }
}
