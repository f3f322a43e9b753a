//! [`ClientPool`]: the clients of every cluster, shared by the apps that use it, the
//! requests their wire connections sent, and the request counts read from the librdkafka
//! clients' statistics.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{debug, info};

use super::cluster::ClusterClients;
use super::config::PoolConfig;
use super::context::{StatsBook, lock};
use super::idle::{Slot, sweep};
use crate::connection::KafkaConnection;
use crate::error::KafkaError;

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

/// Clients open for the pool's clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenClients {
    /// Clusters with clients.
    pub clusters: usize,
    /// Wire connections, one per broker of a cluster at most (bootstrap addresses a broker
    /// advertises under another name count apart).
    pub wire_connections: usize,
    /// librdkafka clients (each with its threads): only resets create them.
    pub librdkafka_clients: usize,
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

    /// The clients of `conn`'s cluster if they are open; never creates them.
    fn open(&self, conn: &KafkaConnection) -> Option<Arc<ClusterClients>> {
        lock(&self.clusters).get(conn).map(|s| s.value.clone())
    }

    /// Clusters with open clients.
    pub fn cluster_count(&self) -> usize {
        lock(&self.clusters).len()
    }

    /// Closes clients idle longer than the idle timeout (also done on every use).
    pub fn close_idle(&self) {
        let evicted = sweep(&mut lock(&self.clusters), self.config.idle_timeout);
        drop(evicted);
    }

    /// Requests the wire connections of `conn`'s cluster sent since its clients were created,
    /// by broker node id (-1: a bootstrap address no Metadata named) and API (`Metadata`,
    /// `OffsetFetch`, ...). Empty when the cluster has no clients.
    pub fn wire_requests(&self, conn: &KafkaConnection) -> BTreeMap<(i32, &'static str), u64> {
        self.open(conn)
            .map(|c| c.brokers.requests())
            .unwrap_or_default()
    }

    /// The clients open now, over all clusters.
    pub fn open_clients(&self) -> OpenClients {
        let clusters: Vec<Arc<ClusterClients>> = lock(&self.clusters)
            .values()
            .map(|s| s.value.clone())
            .collect();
        OpenClients {
            clusters: clusters.len(),
            wire_connections: clusters.iter().map(|c| c.brokers.open_connections()).sum(),
            librdkafka_clients: clusters.iter().map(|c| c.librdkafka_clients()).sum(),
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
    use std::time::Duration;

    use super::*;

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
