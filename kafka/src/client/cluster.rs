//! The clients of one cluster: the wire connections the checks read through, the
//! librdkafka clients the resets use (created on first use), event serving, and the failure
//! helpers the requests share.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdError;
use tracing::warn;

use super::brokers::Brokers;
use super::config::PoolConfig;
use super::context::{PoolConsumer, PoolContext, StatsBook};
use super::idle::OffThread;
use crate::connection::KafkaConnection;
use crate::error::{KafkaError, classify};

/// `client.id` of the operator's clients, as brokers log and quota it.
const CLIENT_ID: &str = "kstreams-operator";

/// The clients of one cluster.
pub(crate) struct ClusterClients {
    conn: KafkaConnection,
    config: PoolConfig,
    pub(super) stats: Arc<StatsBook>,
    /// The librdkafka clients of resets (topic configs and deletions; metadata, group and
    /// offsets reads), each created on first use: checks never start them, nor their threads.
    admin: OnceLock<OffThread<AdminClient<PoolContext>>>,
    consumer: OnceLock<OffThread<PoolConsumer>>,
    pub(super) consumer_ctx: PoolContext,
    /// The wire connections, one per broker: every read of the checks.
    pub(super) brokers: Brokers,
}

impl ClusterClients {
    /// The clients of `conn`'s cluster; connects to nothing yet.
    pub(super) fn new(
        conn: KafkaConnection,
        config: PoolConfig,
        stats: Arc<StatsBook>,
    ) -> Result<Self, KafkaError> {
        // Settings librdkafka would refuse are found now, not at the first reset.
        consumer_config(&conn, &config)
            .create_native_config()
            .map_err(|e| KafkaError::InvalidConfig {
                bootstrap: conn.bootstrap_servers.clone(),
                detail: e.to_string(),
            })?;
        let brokers = Brokers::new(conn.clone(), config.request_timeout);
        Ok(Self {
            conn,
            config,
            consumer_ctx: PoolContext::new(stats.clone()),
            stats,
            admin: OnceLock::new(),
            consumer: OnceLock::new(),
            brokers,
        })
    }

    fn invalid(&self, e: RdError) -> KafkaError {
        KafkaError::InvalidConfig {
            bootstrap: self.conn.bootstrap_servers.clone(),
            detail: e.to_string(),
        }
    }

    /// The admin client, created on first use.
    pub(super) fn admin(&self) -> Result<&AdminClient<PoolContext>, KafkaError> {
        if self.admin.get().is_none() {
            let mut cfg = base_config(&self.conn, &self.config);
            // The admin client never polls its main queue, where librdkafka queues log lines:
            // keep only the most severe so an unreachable cluster cannot grow that queue.
            cfg.set_log_level(RDKafkaLogLevel::Emerg);
            cfg.remove("statistics.interval.ms");
            let admin: AdminClient<PoolContext> = cfg
                .create_with_context(PoolContext::new(self.stats.clone()))
                .map_err(|e| self.invalid(e))?;
            // Another caller may have won the race; its client is kept and this one dropped.
            let _ = self.admin.set(OffThread(Some(admin)));
        }
        self.admin
            .get()
            .and_then(OffThread::get)
            .ok_or_else(|| self.closed())
    }

    /// The librdkafka clients open: 0, 1 or 2.
    pub(super) fn librdkafka_clients(&self) -> usize {
        usize::from(self.admin.get().is_some()) + usize::from(self.consumer.get().is_some())
    }

    /// The bootstrap servers, for error messages.
    pub(crate) fn bootstrap(&self) -> &str {
        &self.conn.bootstrap_servers
    }

    /// The per-call timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// The consumer without a group, created on first use. Blocking the first time.
    pub(super) fn shared(&self) -> Result<&PoolConsumer, KafkaError> {
        if self.consumer.get().is_none() {
            let consumer: PoolConsumer = consumer_config(&self.conn, &self.config)
                .create_with_context(self.consumer_ctx.clone())
                .map_err(|e| self.invalid(e))?;
            let _ = self.consumer.set(OffThread(Some(consumer)));
        }
        self.consumer
            .get()
            .and_then(OffThread::get)
            .ok_or_else(|| self.closed())
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

    /// Serves the events of the cluster's consumer, if it was created. Blocking.
    pub(super) fn serve_all(&self) {
        if let Some(c) = self.consumer.get().and_then(OffThread::get) {
            serve(c);
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

/// Settings of a read-only consumer without a group.
fn consumer_config(conn: &KafkaConnection, config: &PoolConfig) -> ClientConfig {
    let mut c = base_config(conn, config);
    c.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false")
        // The high watermark and non-stable committed offsets, as `kafka-consumer-groups
        // --describe` reports them (read_committed would make OffsetFetch wait on open
        // transactions of exactly-once apps).
        .set("isolation.level", "read_uncommitted");
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_settings_never_commit_and_have_no_group() {
        let conn = KafkaConnection::plaintext("k:9092");
        let c = consumer_config(&conn, &PoolConfig::default());
        assert_eq!(c.get("group.id"), None);
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("isolation.level"), Some("read_uncommitted"));
    }

    #[test]
    fn librdkafka_clients_start_only_when_used() {
        let conn = KafkaConnection::plaintext("127.0.0.1:1");
        let c = ClusterClients::new(conn, PoolConfig::default(), Arc::default()).unwrap();
        assert_eq!(c.librdkafka_clients(), 0);
        c.admin().unwrap();
        assert_eq!(c.librdkafka_clients(), 1);
    }
}
