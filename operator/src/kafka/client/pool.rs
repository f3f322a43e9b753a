//! The client pool: its settings, the context every client runs with (logging, last error,
//! statistics), idle slots and their sweeping, and [`ClientPool`] itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{ClientContext, Statistics};
use tracing::{debug, info, warn};

use super::cluster::ClusterClients;
use crate::kafka::connection::KafkaConnection;
use crate::kafka::error::{KafkaError, auth_failure_in_log, code_of, is_auth};

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Limit of each librdkafka call.
    pub request_timeout: Duration,
    /// Clients unused for this long are closed.
    pub idle_timeout: Duration,
    /// Enables librdkafka statistics (for request counting, see [`ClientPool::request_stats`]).
    pub statistics_interval: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            statistics_interval: None,
        }
    }
}

/// Requests the pool's consumers sent, from their latest librdkafka statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Statistics emissions received so far, over all clients.
    pub emissions: u64,
    /// Requests sent, over all consumers (librdkafka `brokers.*.tx`).
    pub total: u64,
    /// Requests by API (librdkafka `brokers.*.req`).
    pub by_api: BTreeMap<String, u64>,
    /// DescribeConfigs calls made through the admin clients (the admin client emits no
    /// statistics; librdkafka sends one DescribeConfigs request per call for topic resources).
    pub admin_describe_configs: u64,
}

/// Requests one client sent: in total and by API.
type ClientRequests = (u64, BTreeMap<String, u64>);

/// Statistics shared by all clients of a pool.
#[derive(Default)]
pub(super) struct StatsBook {
    emissions: AtomicU64,
    pub(super) admin_calls: AtomicU64,
    /// Per librdkafka handle name: (total requests, requests by API).
    latest: Mutex<HashMap<String, ClientRequests>>,
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

/// Owns a librdkafka client and drops it on the blocking pool when inside a runtime.
pub(super) struct OffThread<T: Send + 'static>(pub(super) Option<T>);

impl<T: Send + 'static> OffThread<T> {
    pub(super) fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<T: Send + 'static> Drop for OffThread<T> {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(move || drop(v));
                }
                Err(_) => drop(v),
            }
        }
    }
}

/// A cached value and when it was last handed out.
pub(super) struct Slot<T> {
    pub(super) value: T,
    pub(super) last_used: Instant,
}

/// Removes the slots idle longer than `idle`; returns them so they drop outside the lock.
pub(super) fn sweep<K: Clone + Eq + std::hash::Hash, T>(
    map: &mut HashMap<K, Slot<T>>,
    idle: Duration,
) -> Vec<T> {
    let now = Instant::now();
    let stale: Vec<K> = map
        .iter()
        .filter(|(_, s)| now.duration_since(s.last_used) > idle)
        .map(|(k, _)| k.clone())
        .collect();
    stale
        .into_iter()
        .filter_map(|k| map.remove(&k).map(|s| s.value))
        .collect()
}

/// Shared clients for many apps, keyed by connection settings.
pub struct ClientPool {
    config: PoolConfig,
    stats: Arc<StatsBook>,
    clusters: Mutex<HashMap<KafkaConnection, Slot<Arc<ClusterClients>>>>,
}

impl ClientPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            stats: Arc::default(),
            clusters: Mutex::default(),
        }
    }

    /// The pool's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The clients of `conn`'s cluster, created on first use; closes idle ones on the way.
    pub(crate) fn cluster(
        &self,
        conn: &KafkaConnection,
    ) -> Result<Arc<ClusterClients>, KafkaError> {
        let mut map = lock(&self.clusters);
        let evicted = sweep(&mut map, self.config.idle_timeout);
        if !evicted.is_empty() {
            debug!(count = evicted.len(), "closing idle Kafka clients");
        }
        if let Some(slot) = map.get_mut(conn) {
            slot.last_used = Instant::now();
            return Ok(slot.value.clone());
        }
        let clients = Arc::new(ClusterClients::new(
            conn.clone(),
            self.config.clone(),
            self.stats.clone(),
        )?);
        info!(bootstrap = %conn.bootstrap_servers, "created Kafka clients");
        map.insert(
            conn.clone(),
            Slot {
                value: clients.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(clients)
    }

    /// Clusters with open clients.
    pub fn cluster_count(&self) -> usize {
        lock(&self.clusters).len()
    }

    /// Closes clients idle longer than the idle timeout (also done on every use).
    pub fn close_idle(&self) {
        let mut map = lock(&self.clusters);
        let evicted = sweep(&mut map, self.config.idle_timeout);
        drop(map);
        for c in &evicted {
            c.close_idle_groups();
        }
    }

    /// Serves pending librdkafka events (statistics, errors) of every consumer in the pool.
    pub async fn serve_events(&self) {
        let clusters: Vec<Arc<ClusterClients>> = lock(&self.clusters)
            .values()
            .map(|s| s.value.clone())
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for c in clusters {
                c.serve_all();
            }
        })
        .await;
    }

    /// Requests sent so far, from the latest statistics (needs `statistics_interval`).
    pub fn request_stats(&self) -> RequestStats {
        let latest = lock(&self.stats.latest);
        let mut out = RequestStats {
            emissions: self.stats.emissions.load(Ordering::Relaxed),
            admin_describe_configs: self.stats.admin_calls.load(Ordering::Relaxed),
            ..Default::default()
        };
        for (total, by_api) in latest.values() {
            out.total += total;
            for (api, n) in by_api {
                *out.by_api.entry(api.clone()).or_default() += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_idle_slots() {
        let mut m: HashMap<&str, Slot<u8>> = HashMap::new();
        let old = Instant::now()
            .checked_sub(Duration::from_secs(100))
            .unwrap();
        m.insert(
            "old",
            Slot {
                value: 1,
                last_used: old,
            },
        );
        m.insert(
            "new",
            Slot {
                value: 2,
                last_used: Instant::now(),
            },
        );
        assert_eq!(sweep(&mut m, Duration::from_secs(10)), [1]);
        assert!(m.contains_key("new"));
    }

    #[tokio::test]
    async fn pool_shares_clients_per_connection_and_drops_idle_ones() {
        // Creating clients does not connect; nothing here needs a broker.
        let a = KafkaConnection::plaintext("127.0.0.1:1");
        let pool = ClientPool::new(PoolConfig::default());
        let first = pool.cluster(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &pool.cluster(&a).unwrap()));
        let b = KafkaConnection::plaintext("127.0.0.1:2");
        assert!(!Arc::ptr_eq(&first, &pool.cluster(&b).unwrap()));
        assert_eq!(pool.cluster_count(), 2);

        let pool = ClientPool::new(PoolConfig {
            idle_timeout: Duration::from_millis(1),
            ..Default::default()
        });
        drop(pool.cluster(&a).unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.cluster_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            pool.close_idle();
        }
        assert_eq!(pool.cluster_count(), 0);
    }
}
