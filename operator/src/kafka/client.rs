//! Shared librdkafka clients, one set per Kafka cluster (per distinct [`KafkaConnection`]).
//!
//! Per cluster: one admin client (topic configs), one consumer without a group (metadata, end
//! offsets, group description), and, on demand, one consumer per application group for
//! committed offsets: OffsetFetch is answered for the requesting client's own `group.id`, so a
//! shared client cannot read them. That consumer never subscribes, never assigns, never
//! commits (`enable.auto.commit=false`): it does not join the group, so the app never
//! rebalances because of it.
//!
//! Clients are created lazily and dropped after `idle_timeout` without use. librdkafka calls
//! block, so they run on Tokio's blocking pool, each with a timeout; clients are dropped there
//! too (a consumer's destructor waits for its threads).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{ClientConfig, ClientContext, Offset, Statistics, TopicPartitionList};
use tracing::{debug, info, warn};

use super::connection::KafkaConnection;
use super::error::{KafkaError, classify, code_of};
use super::group::{GroupSnapshot, MemberSnapshot};
use super::lag::{Offsets, Partition};

/// `client.id` of the operator's clients, as brokers log and quota it.
const CLIENT_ID: &str = "kstreams-operator";

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
struct StatsBook {
    emissions: AtomicU64,
    admin_calls: AtomicU64,
    /// Per librdkafka handle name: (total requests, requests by API).
    latest: Mutex<HashMap<String, ClientRequests>>,
}

/// Context of every pool client: logs to `tracing`, remembers the last client-level error
/// (to tell "unreachable" from "slow"), records statistics.
#[derive(Clone)]
struct PoolContext {
    last_error: Arc<Mutex<Option<(Code, String, Instant)>>>,
    stats: Arc<StatsBook>,
}

impl PoolContext {
    fn new(stats: Arc<StatsBook>) -> Self {
        Self {
            last_error: Arc::default(),
            stats,
        }
    }

    /// The last client-level error seen since `since`.
    fn error_since(&self, since: Instant) -> Option<(Code, String)> {
        lock(&self.last_error)
            .as_ref()
            .filter(|(_, _, at)| *at >= since)
            .map(|(c, d, _)| (*c, d.clone()))
    }
}

impl ClientContext for PoolContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
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
            *lock(&self.last_error) = Some((code, reason.to_string(), Instant::now()));
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

type PoolConsumer = BaseConsumer<PoolContext>;

/// Locks a mutex, recovering from poisoning (the data are caches and counters).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Owns a librdkafka client and drops it on the blocking pool when inside a runtime.
struct OffThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> OffThread<T> {
    fn get(&self) -> Option<&T> {
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
struct Slot<T> {
    value: T,
    last_used: Instant,
}

/// Removes the slots idle longer than `idle`; returns them so they drop outside the lock.
fn sweep<K: Clone + Eq + std::hash::Hash, T>(
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

/// The clients of one cluster.
pub(crate) struct ClusterClients {
    conn: KafkaConnection,
    config: PoolConfig,
    stats: Arc<StatsBook>,
    admin: OffThread<AdminClient<PoolContext>>,
    consumer: OffThread<PoolConsumer>,
    consumer_ctx: PoolContext,
    groups: Mutex<HashMap<String, Slot<Arc<GroupConsumer>>>>,
}

/// A consumer whose `group.id` is an app's group, for its committed offsets.
struct GroupConsumer {
    consumer: OffThread<PoolConsumer>,
    ctx: PoolContext,
}

impl ClusterClients {
    fn new(
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
        Ok(Self {
            conn,
            config,
            stats,
            admin: OffThread(Some(admin)),
            consumer: OffThread(Some(consumer)),
            consumer_ctx,
            groups: Mutex::default(),
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

    fn shared(&self) -> Result<&PoolConsumer, KafkaError> {
        self.consumer.get().ok_or_else(|| self.closed())
    }

    fn closed(&self) -> KafkaError {
        KafkaError::Request {
            bootstrap: self.conn.bootstrap_servers.clone(),
            operation: "client",
            detail: "client closed".into(),
        }
    }

    fn fail(&self, op: &'static str, ctx: &PoolContext, since: Instant, e: &RdError) -> KafkaError {
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

    /// All topics and their partition counts. Blocking.
    pub(crate) fn topics(&self) -> Result<BTreeMap<String, i32>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let md = c.fetch_metadata(None, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("metadata", &self.consumer_ctx, start, &e)
        })?;
        // A topic being deleted reports an error and is left out.
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// End offsets (high watermarks) of `partitions` in one call: librdkafka sends one
    /// ListOffsets request per partition leader. Blocking.
    ///
    /// librdkafka fails the whole call, discarding every result, when a single partition
    /// errs (topic deleted meanwhile, leader moving). Then the topics are asked one by one:
    /// the ones the broker no longer knows are returned in the second set, and partitions
    /// still failing are left out (their lag shows as unknown).
    pub(crate) fn end_offsets(
        &self,
        partitions: &[Partition],
    ) -> Result<(Offsets, BTreeSet<String>), KafkaError> {
        let mut gone = BTreeSet::new();
        let err = match self.list_end_offsets(partitions) {
            Ok(out) => return Ok((out, gone)),
            Err(e) if is_partition_level(&e) => e,
            Err(e) => {
                return Err(self.fail("list offsets", &self.consumer_ctx, Instant::now(), &e));
            }
        };
        debug!(error = %err, "batched ListOffsets failed on a partition; asking per topic");
        let mut by_topic: BTreeMap<&str, Vec<Partition>> = BTreeMap::new();
        for p in partitions {
            by_topic.entry(p.0.as_str()).or_default().push(p.clone());
        }
        let mut out = Offsets::new();
        for (topic, parts) in by_topic {
            match self.list_end_offsets(&parts) {
                Ok(o) => out.extend(o),
                Err(e) if is_unknown_topic(&e) => {
                    gone.insert(topic.to_string());
                }
                Err(e) if is_partition_level(&e) => {
                    debug!(topic, error = %e, "no end offsets for topic");
                }
                Err(e) => {
                    return Err(self.fail("list offsets", &self.consumer_ctx, Instant::now(), &e));
                }
            }
        }
        Ok((out, gone))
    }

    fn list_end_offsets(&self, partitions: &[Partition]) -> Result<Offsets, RdError> {
        let mut out = Offsets::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let c = self.consumer.get().ok_or(RdError::Canceled)?;
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (t, p) in partitions {
            // Offset::End is the "latest" timestamp (-1) ListOffsets understands.
            tpl.add_partition_offset(t, *p, Offset::End)?;
        }
        serve(c);
        let res = c.offsets_for_times(tpl, self.timeout());
        serve(c);
        for el in res?.elements() {
            match (el.error(), el.offset()) {
                (Ok(()), Offset::Offset(o)) => {
                    out.insert((el.topic().to_string(), el.partition()), o);
                }
                (r, o) => debug!(
                    topic = el.topic(),
                    partition = el.partition(),
                    ?r,
                    ?o,
                    "no end offset"
                ),
            }
        }
        Ok(out)
    }

    /// The group as DescribeGroups reports it; `None` when no such group exists. librdkafka
    /// asks every broker for its groups (ListGroups) and the coordinator for this one
    /// (DescribeGroups). Blocking.
    pub(crate) fn describe_group(&self, group: &str) -> Result<Option<GroupSnapshot>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let list = c
            .fetch_group_list(Some(group), self.timeout())
            .map_err(|e| {
                serve(c);
                self.fail("describe group", &self.consumer_ctx, start, &e)
            })?;
        let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
            return Ok(None);
        };
        // The coordinator answers "Dead" for a group it does not know.
        if g.state() == "Dead" && g.members().is_empty() {
            return Ok(None);
        }
        Ok(Some(GroupSnapshot {
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| MemberSnapshot {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    client_host: m.client_host().to_string(),
                    metadata: m.metadata().map(<[u8]>::to_vec),
                    assignment: m.assignment().map(<[u8]>::to_vec),
                })
                .collect(),
        }))
    }

    /// Committed offsets of `group` for `partitions` (absent = never committed). Blocking.
    pub(crate) fn committed(
        &self,
        group: &str,
        partitions: &[Partition],
    ) -> Result<Offsets, KafkaError> {
        let mut out = Offsets::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let gc = self.group_consumer(group)?;
        let c = gc.consumer.get().ok_or_else(|| self.closed())?;
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let start = Instant::now();
        serve(c);
        let res = c.committed_offsets(tpl, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("fetch committed offsets", &gc.ctx, start, &e)
        })?;
        for el in res.elements() {
            if let (Ok(()), Offset::Offset(o)) = (el.error(), el.offset()) {
                out.insert((el.topic().to_string(), el.partition()), o);
            }
        }
        Ok(out)
    }

    /// `cleanup.policy` of each topic in one DescribeConfigs call: `Ok(policy)`, or `Err` with
    /// the broker's per-topic error. Topics the broker no longer knows are left out.
    pub(crate) async fn cleanup_policies(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, Result<String, String>>, KafkaError> {
        let mut out = BTreeMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        let admin = self.admin.get().ok_or_else(|| self.closed())?;
        let specs: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let opts = AdminOptions::new().request_timeout(Some(self.timeout()));
        self.stats.admin_calls.fetch_add(1, Ordering::Relaxed);
        let res = tokio::time::timeout(
            self.timeout() + Duration::from_secs(1),
            admin.describe_configs(&specs, &opts),
        )
        .await
        .map_err(|_| KafkaError::Timeout {
            bootstrap: self.bootstrap().to_string(),
            operation: "describe configs",
            timeout: self.timeout(),
        })?
        .map_err(|e| {
            let err = classify(
                self.bootstrap(),
                "describe configs",
                self.timeout(),
                &e,
                None,
            );
            warn!(bootstrap = %self.bootstrap(), error = %err, "Kafka request failed");
            err
        })?;
        for (topic, r) in topics.iter().zip(res) {
            match r {
                Ok(cfg) => {
                    let policy = cfg
                        .get("cleanup.policy")
                        .and_then(|e| e.value.clone())
                        .ok_or_else(|| "cleanup.policy not returned".to_string());
                    out.insert(topic.clone(), policy);
                }
                Err(Code::UnknownTopicOrPartition) => {}
                Err(code) => {
                    out.insert(topic.clone(), Err(code.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// The consumer of `group`, created on first use; closes idle ones on the way.
    fn group_consumer(&self, group: &str) -> Result<Arc<GroupConsumer>, KafkaError> {
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

    fn close_idle_groups(&self) {
        let evicted = sweep(&mut lock(&self.groups), self.config.idle_timeout);
        drop(evicted);
    }

    /// Serves the events of every consumer of this cluster. Blocking.
    fn serve_all(&self) {
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

/// A topic the broker does not know (deleted, or never created).
fn is_unknown_topic(e: &RdError) -> bool {
    matches!(
        code_of(e),
        Some(Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::UnknownPartition)
    )
}

/// An error about some partitions, not about reaching or using the cluster.
fn is_partition_level(e: &RdError) -> bool {
    is_unknown_topic(e)
        || matches!(
            code_of(e),
            Some(
                Code::NotLeaderForPartition
                    | Code::LeaderNotAvailable
                    | Code::ReplicaNotAvailable
                    | Code::KafkaStorageError
                    | Code::OffsetNotAvailable
                    | Code::FencedLeaderEpoch
                    | Code::UnknownLeaderEpoch
            )
        )
}

/// Serves queued events (errors, statistics) without waiting: librdkafka delivers them only
/// when the queue is polled, and an unpolled queue grows.
fn serve(c: &PoolConsumer) {
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
