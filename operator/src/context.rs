//! What every reconcile shares: the client, the event recorder, retry state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;

/// Shared state of the controller.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events on StreamApps.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context for `client`, reporting Events as `instance` of the operator.
    pub fn new(client: Client, instance: Option<String>, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: crate::resources::FIELD_MANAGER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
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
