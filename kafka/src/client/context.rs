//! The context every pool client runs with: logs to `tracing`, the last client-level error,
//! and the statistics the pool counts requests from.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{ClientContext, Statistics};
use tracing::{debug, info, warn};

use crate::error::{auth_failure_in_log, code_of, is_auth};

/// Requests one client sent: in total and by API.
type ClientRequests = (u64, BTreeMap<String, u64>);

/// Statistics shared by all clients of a pool.
#[derive(Default)]
pub(super) struct StatsBook {
    pub(super) emissions: AtomicU64,
    pub(super) admin_calls: AtomicU64,
    /// Per librdkafka handle name: (total requests, requests by API).
    pub(super) latest: Mutex<HashMap<String, ClientRequests>>,
}

type SeenError = Option<(Code, String, Instant)>;

/// Context of every pool client: logs to `tracing`, remembers the last client-level error
/// (to tell "unreachable" from "slow") and the last TLS/SASL failure, records statistics.
#[derive(Clone)]
pub(super) struct PoolContext {
    last_error: Arc<Mutex<SeenError>>,
    /// Kept apart because librdkafka follows a failed handshake with transport errors
    /// ("all brokers down"), which would otherwise hide the cause.
    last_auth_error: Arc<Mutex<SeenError>>,
    stats: Arc<StatsBook>,
}

impl PoolContext {
    pub(super) fn new(stats: Arc<StatsBook>) -> Self {
        Self {
            last_error: Arc::default(),
            last_auth_error: Arc::default(),
            stats,
        }
    }

    /// The client-level error seen since `since` that explains a failure best: a TLS/SASL
    /// failure if there was one, else the last error.
    pub(super) fn error_since(&self, since: Instant) -> Option<(Code, String)> {
        let recent = |seen: &SeenError| {
            seen.as_ref()
                .filter(|(_, _, at)| *at >= since)
                .map(|(c, d, _)| (*c, d.clone()))
        };
        recent(&lock(&self.last_auth_error)).or_else(|| recent(&lock(&self.last_error)))
    }
}

impl ClientContext for PoolContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if let Some(code) = auth_failure_in_log(fac, message) {
            // Without librdkafka's thread tag, the line reads like the error callback's.
            let detail = match message.split_once("]: ") {
                Some((thread, rest)) if thread.starts_with("[thrd:") => rest,
                _ => message,
            };
            *lock(&self.last_auth_error) = Some((code, detail.to_string(), Instant::now()));
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Warning | RDKafkaLogLevel::Notice => {
                info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => {
                debug!(target: "librdkafka", fac, "{message}")
            }
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        debug!(target: "librdkafka", %error, reason, "client error");
        if let Some(code) = code_of(&error) {
            let seen = Some((code, reason.to_string(), Instant::now()));
            if is_auth(code) {
                *lock(&self.last_auth_error) = seen.clone();
            }
            *lock(&self.last_error) = seen;
        }
    }

    fn stats(&self, s: Statistics) {
        let mut by_api: BTreeMap<String, u64> = BTreeMap::new();
        for broker in s.brokers.values() {
            for (api, n) in &broker.req {
                *by_api.entry(api.clone()).or_default() += u64::try_from(*n).unwrap_or(0);
            }
        }
        let total = u64::try_from(s.tx).unwrap_or(0);
        lock(&self.stats.latest).insert(s.name, (total, by_api));
        self.stats.emissions.fetch_add(1, Ordering::Relaxed);
    }
}

impl ConsumerContext for PoolContext {}

pub(super) type PoolConsumer = BaseConsumer<PoolContext>;

/// Locks a mutex, recovering from poisoning (the data are caches and counters).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
