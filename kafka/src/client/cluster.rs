//! The clients of one cluster: their creation and settings, the per-group consumers for
//! committed offsets, event serving, and the failure helpers the requests share.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdError;
use tracing::warn;

use super::brokers::Brokers;
use super::config::PoolConfig;
use super::context::{PoolConsumer, PoolContext, StatsBook, lock};
use super::idle::{OffThread, Slot, sweep};
use crate::connection::KafkaConnection;
use crate::error::{KafkaError, classify};

/// `client.id` of the operator's clients, as brokers log and quota it.
const CLIENT_ID: &str = "kstreams-operator";

/// The clients of one cluster.
pub(crate) struct ClusterClients {
    conn: KafkaConnection,
    config: PoolConfig,
    pub(super) stats: Arc<StatsBook>,
    pub(super) admin: OffThread<AdminClient<PoolContext>>,
    pub(super) consumer: OffThread<PoolConsumer>,
    pub(super) consumer_ctx: PoolContext,
    groups: Mutex<HashMap<String, Slot<Arc<GroupConsumer>>>>,
    /// The cluster's consumer group ids and when they were listed (see `group_ids`).
    pub(super) group_ids: Mutex<Option<(Instant, Arc<BTreeSet<String>>)>>,
    /// Wire connections for what librdkafka lacks.
    pub(super) brokers: Brokers,
}

/// A consumer whose `group.id` is an app's group, for its committed offsets.
pub(super) struct GroupConsumer {
    pub(super) consumer: OffThread<PoolConsumer>,
    pub(super) ctx: PoolContext,
}

impl ClusterClients {
    pub(super) fn new(
        conn: KafkaConnection,
        config: PoolConfig,
        stats: Arc<StatsBook>,
    ) -> Result<Self, KafkaError> {
        let invalid = |e: RdError| KafkaError::InvalidConfig {
            bootstrap: conn.bootstrap_servers.clone(),
            detail: e.to_string(),
        };
        let mut admin_cfg = base_config(&conn, &config);
        // The admin client never polls its main queue, where librdkafka queues log lines:
        // keep only the most severe so an unreachable cluster cannot grow that queue.
        admin_cfg.set_log_level(RDKafkaLogLevel::Emerg);
        admin_cfg.remove("statistics.interval.ms");
        let admin: AdminClient<PoolContext> = admin_cfg
            .create_with_context(PoolContext::new(stats.clone()))
            .map_err(invalid)?;
        let consumer_ctx = PoolContext::new(stats.clone());
        let consumer: PoolConsumer = consumer_config(&conn, &config, None)
            .create_with_context(consumer_ctx.clone())
            .map_err(invalid)?;
        let brokers = Brokers::new(conn.clone(), config.request_timeout);
        Ok(Self {
            conn,
            config,
            stats,
            admin: OffThread(Some(admin)),
            consumer: OffThread(Some(consumer)),
            consumer_ctx,
            groups: Mutex::default(),
            group_ids: Mutex::default(),
            brokers,
        })
    }

    /// The bootstrap servers, for error messages.
    pub(crate) fn bootstrap(&self) -> &str {
        &self.conn.bootstrap_servers
    }

    /// The per-call timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.config.request_timeout
    }

    pub(super) fn shared(&self) -> Result<&PoolConsumer, KafkaError> {
        self.consumer.get().ok_or_else(|| self.closed())
    }

    pub(super) fn closed(&self) -> KafkaError {
        KafkaError::Request {
            bootstrap: self.conn.bootstrap_servers.clone(),
            operation: "client",
            detail: "client closed".into(),
        }
    }

    pub(super) fn fail(
        &self,
        op: &'static str,
        ctx: &PoolContext,
        since: Instant,
        e: &RdError,
    ) -> KafkaError {
        let err = classify(
            self.bootstrap(),
            op,
            self.timeout(),
            e,
            ctx.error_since(since.checked_sub(self.timeout()).unwrap_or(since)),
        );
        warn!(bootstrap = %self.bootstrap(), operation = op, error = %err, "Kafka request failed");
        err
    }

    /// The consumer of `group`, created on first use; closes idle ones on the way.
    pub(super) fn group_consumer(&self, group: &str) -> Result<Arc<GroupConsumer>, KafkaError> {
        let mut map = lock(&self.groups);
        let evicted = sweep(&mut map, self.config.idle_timeout);
        drop(evicted);
        if let Some(slot) = map.get_mut(group) {
            slot.last_used = Instant::now();
            return Ok(slot.value.clone());
        }
        let ctx = PoolContext::new(self.stats.clone());
        let consumer: PoolConsumer = consumer_config(&self.conn, &self.config, Some(group))
            .create_with_context(ctx.clone())
            .map_err(|e| KafkaError::InvalidConfig {
                bootstrap: self.conn.bootstrap_servers.clone(),
                detail: e.to_string(),
            })?;
        let gc = Arc::new(GroupConsumer {
            consumer: OffThread(Some(consumer)),
            ctx,
        });
        map.insert(
            group.to_string(),
            Slot {
                value: gc.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(gc)
    }

    pub(super) fn close_idle_groups(&self) {
        let evicted = sweep(&mut lock(&self.groups), self.config.idle_timeout);
        drop(evicted);
    }

    /// Serves the events of every consumer of this cluster. Blocking.
    pub(super) fn serve_all(&self) {
        if let Some(c) = self.consumer.get() {
            serve(c);
        }
        let groups: Vec<Arc<GroupConsumer>> = lock(&self.groups)
            .values()
            .map(|s| s.value.clone())
            .collect();
        for g in groups {
            if let Some(c) = g.consumer.get() {
                serve(c);
            }
        }
    }
}

/// Serves queued events (errors, statistics) without waiting: librdkafka delivers them only
/// when the queue is polled, and an unpolled queue grows.
pub(super) fn serve(c: &PoolConsumer) {
    for _ in 0..1000 {
        if c.poll(Duration::ZERO).is_none() {
            break;
        }
    }
}

/// Settings common to every pool client.
fn base_config(conn: &KafkaConnection, config: &PoolConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in conn.client_settings() {
        c.set(k, v);
    }
    c.set("client.id", CLIENT_ID);
    if let Some(i) = config.statistics_interval {
        c.set("statistics.interval.ms", i.as_millis().max(1).to_string());
    }
    c.set_log_level(RDKafkaLogLevel::Warning);
    c
}

/// Settings of a read-only consumer; with `group`, for that group's committed offsets only.
fn consumer_config(
    conn: &KafkaConnection,
    config: &PoolConfig,
    group: Option<&str>,
) -> ClientConfig {
    let mut c = base_config(conn, config);
    c.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false")
        // The high watermark and non-stable committed offsets, as `kafka-consumer-groups
        // --describe` reports them (read_committed would make OffsetFetch wait on open
        // transactions of exactly-once apps).
        .set("isolation.level", "read_uncommitted");
    if let Some(g) = group {
        c.set("group.id", g);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_settings_never_commit_and_carry_the_group() {
        let conn = KafkaConnection::plaintext("k:9092");
        let c = consumer_config(&conn, &PoolConfig::default(), Some("app"));
        assert_eq!(c.get("group.id"), Some("app"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("isolation.level"), Some("read_uncommitted"));
        let shared = consumer_config(&conn, &PoolConfig::default(), None);
        assert_eq!(shared.get("group.id"), None);
    }
}
