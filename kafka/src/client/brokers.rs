//! The wire connections of one cluster (see `crate::protocol`): one per broker, shared by
//! all apps of the cluster, opened on first use and dropped after any failure. Every call
//! runs under the pool's request timeout and its failure maps to a [`KafkaError`] category.
//! The requests sent are counted per broker and API ([`Brokers::requests`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;
use tracing::{debug, warn};

use super::context::lock;
use crate::connection::KafkaConnection;
use crate::error::KafkaError;
use crate::protocol::Request;
use crate::protocol::broker::{Broker, RequestCounts, WireError};
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::messages::metadata_request::MetadataRequest;
use crate::protocol::messages::metadata_response::MetadataResponseBroker;

/// Kafka error codes the callers tell apart.
pub(crate) mod code {
    /// The topic or partition does not exist (deleted, or never created).
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// No leader for the partition right now.
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    /// The broker asked is not the partition's leader (any more).
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// A replica is not available.
    pub const REPLICA_NOT_AVAILABLE: i16 = 9;
    /// The partition's log directory failed.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// The leader epoch the request carried is older than the broker's.
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// The leader epoch the request carried is newer than the broker's.
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    /// The leader has no offset to give yet (it just took over).
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
    /// The group is not coordinated by this broker (any more).
    pub const NOT_COORDINATOR: i16 = 16;
    /// The coordinator is loading or moving.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// The coordinator is loading the group.
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// No such group.
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    /// Topic ACL missing.
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    /// Group ACL missing.
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    /// Cluster ACL missing.
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

    /// Whether `code` means an ACL is missing.
    pub fn is_authorization(code: i16) -> bool {
        matches!(
            code,
            TOPIC_AUTHORIZATION_FAILED | GROUP_AUTHORIZATION_FAILED | CLUSTER_AUTHORIZATION_FAILED
        )
    }

    /// The code as librdkafka names it, e.g. `TopicAuthorizationFailed (Broker: Topic
    /// authorization failed)`: what the checks reported while librdkafka made the requests.
    pub fn text(code: i16) -> String {
        use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
        match RDKafkaRespErr::try_from(i32::from(code)) {
            Ok(e) => RDKafkaErrorCode::from(e).to_string(),
            Err(_) => format!("error code {code}"),
        }
    }

    /// Whether `code` means the group's coordinator moved, or is loading: ask where it is
    /// now and try again.
    pub fn is_coordinator_moving(code: i16) -> bool {
        matches!(
            code,
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS
        )
    }

    /// Whether `code` is about one partition's leadership or log, not about reaching or
    /// using the cluster: that partition is left out, the rest stands.
    pub fn is_partition_level(code: i16) -> bool {
        matches!(
            code,
            UNKNOWN_TOPIC_OR_PARTITION
                | LEADER_NOT_AVAILABLE
                | NOT_LEADER_OR_FOLLOWER
                | REPLICA_NOT_AVAILABLE
                | KAFKA_STORAGE_ERROR
                | FENCED_LEADER_EPOCH
                | UNKNOWN_LEADER_EPOCH
                | OFFSET_NOT_AVAILABLE
        )
    }
}

/// One broker's connection, and the requests sent to it over every connection it had.
#[derive(Default)]
struct Slot {
    broker: AsyncMutex<Option<Broker>>,
    counts: Arc<RequestCounts>,
}

/// One cluster's broker connections.
pub(crate) struct Brokers {
    conn: KafkaConnection,
    timeout: Duration,
    /// By `host:port`; bootstrap servers and brokers alike.
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    /// Node id -> `host:port`, from the latest Metadata.
    nodes: Mutex<BTreeMap<i32, String>>,
    /// Group -> its coordinator's `host:port`.
    coordinators: Mutex<BTreeMap<String, String>>,
}

impl Brokers {
    pub(crate) fn new(conn: KafkaConnection, timeout: Duration) -> Self {
        Self {
            conn,
            timeout,
            slots: Mutex::default(),
            nodes: Mutex::default(),
            coordinators: Mutex::default(),
        }
    }

    fn bootstrap(&self) -> &str {
        &self.conn.bootstrap_servers
    }

    /// The per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The error for a failure of `operation`.
    pub(crate) fn error(&self, operation: &'static str, e: WireError) -> KafkaError {
        let bootstrap = self.bootstrap().to_string();
        let err = match e {
            WireError::Io(detail) => KafkaError::Unreachable { bootstrap, detail },
            WireError::Tls(detail) | WireError::Sasl(detail) => {
                KafkaError::AuthFailed { bootstrap, detail }
            }
            WireError::Config(detail) => KafkaError::InvalidConfig { bootstrap, detail },
            other => KafkaError::Request {
                bootstrap,
                operation,
                detail: other.to_string(),
            },
        };
        warn!(bootstrap = %self.bootstrap(), operation, error = %err, "Kafka request failed");
        err
    }

    /// A broker's error code as an error of `operation`.
    pub(crate) fn broker_error(
        &self,
        operation: &'static str,
        code: i16,
        message: Option<&str>,
    ) -> KafkaError {
        let bootstrap = self.bootstrap().to_string();
        let detail = match message {
            Some(m) if !m.is_empty() => format!("{}: {m}", code::text(code)),
            _ => code::text(code),
        };
        if code::is_authorization(code) {
            KafkaError::NotAuthorized {
                bootstrap,
                operation,
                detail,
            }
        } else {
            KafkaError::Request {
                bootstrap,
                operation,
                detail,
            }
        }
    }

    fn slot(&self, address: &str) -> Arc<Slot> {
        lock(&self.slots)
            .entry(address.to_string())
            .or_default()
            .clone()
    }

    /// Sends `request` to the broker at `address`, connecting first if needed.
    pub(crate) async fn call<R: Request>(
        &self,
        address: &str,
        operation: &'static str,
        request: &R,
    ) -> Result<R::Response, KafkaError> {
        self.call_from(address, operation, request, R::VERSIONS.0)
            .await
    }

    /// Sends `request` to the broker at `address` at a version of at least `min` (see
    /// [`Broker::send_from`]).
    pub(crate) async fn call_from<R: Request>(
        &self,
        address: &str,
        operation: &'static str,
        request: &R,
        min: i16,
    ) -> Result<R::Response, KafkaError> {
        let slot = self.slot(address);
        let mut guard = slot.broker.lock().await;
        let attempt = async {
            if guard.is_none() {
                *guard = Some(Broker::connect(address, &self.conn, slot.counts.clone()).await?);
                debug!(address, "wire connection opened");
            }
            match guard.as_mut() {
                Some(broker) => broker.send_from(request, min).await,
                None => Err(WireError::Io("no connection".into())),
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                *guard = None;
                Err(self.error(operation, e))
            }
            Err(_) => {
                *guard = None;
                Err(KafkaError::Timeout {
                    bootstrap: self.bootstrap().to_string(),
                    operation,
                    timeout: self.timeout,
                })
            }
        }
    }

    /// Sends `request` to any broker: one the latest Metadata named first (its connection is
    /// likely open already), then the bootstrap servers in turn until one answers.
    pub(crate) async fn call_any<R: Request>(
        &self,
        operation: &'static str,
        request: &R,
    ) -> Result<R::Response, KafkaError> {
        self.call_any_from(operation, request, R::VERSIONS.0).await
    }

    /// [`Brokers::call_any`] at a version of at least `min`.
    pub(crate) async fn call_any_from<R: Request>(
        &self,
        operation: &'static str,
        request: &R,
        min: i16,
    ) -> Result<R::Response, KafkaError> {
        let known = lock(&self.nodes).values().next().cloned();
        let mut addresses: Vec<String> = known.into_iter().collect();
        for a in self.bootstrap().split(',').map(str::trim) {
            if !a.is_empty() && !addresses.iter().any(|k| k == a) {
                addresses.push(a.to_string());
            }
        }
        let mut last = None;
        for address in &addresses {
            match self.call_from(address, operation, request, min).await {
                Ok(r) => return Ok(r),
                Err(e @ (KafkaError::Unreachable { .. } | KafkaError::Timeout { .. })) => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| KafkaError::InvalidConfig {
            bootstrap: self.bootstrap().to_string(),
            detail: "no bootstrap server".into(),
        }))
    }

    /// Every broker's `host:port`, from a fresh Metadata request of no topic.
    pub(crate) async fn nodes(&self) -> Result<BTreeMap<i32, String>, KafkaError> {
        let response = self
            .call_any("metadata", &MetadataRequest::default())
            .await?;
        Ok(self.remember_nodes(&response.brokers))
    }

    /// Keeps the brokers a Metadata response named; returns them by node id.
    pub(crate) fn remember_nodes(
        &self,
        brokers: &[MetadataResponseBroker],
    ) -> BTreeMap<i32, String> {
        let nodes: BTreeMap<i32, String> = brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        *lock(&self.nodes) = nodes.clone();
        nodes
    }

    /// The coordinator of `group`, from the cache or a FindCoordinator request.
    pub(crate) async fn coordinator(&self, group: &str) -> Result<String, KafkaError> {
        let mut found = self.coordinators(&[group.to_string()]).await?;
        found.remove(group).unwrap_or_else(|| {
            Err(self.broker_error(
                "find coordinator",
                code::COORDINATOR_NOT_AVAILABLE,
                Some("the broker did not answer for the group"),
            ))
        })
    }

    /// The coordinators of `groups`: from the cache, the others from one FindCoordinator
    /// request for all of them (version 4 takes many keys). The outer error is the request's;
    /// a group the broker answered with an error (e.g. a missing ACL) gets it alone.
    pub(crate) async fn coordinators(
        &self,
        groups: &[String],
    ) -> Result<BTreeMap<String, Result<String, KafkaError>>, KafkaError> {
        let mut out = BTreeMap::new();
        let mut ask: BTreeSet<String> = BTreeSet::new();
        {
            let cached = lock(&self.coordinators);
            for g in groups {
                match cached.get(g) {
                    Some(a) => {
                        out.insert(g.clone(), Ok(a.clone()));
                    }
                    None => {
                        ask.insert(g.clone());
                    }
                }
            }
        }
        // A fresh cluster creates its offsets topic on the first lookup and answers
        // COORDINATOR_NOT_AVAILABLE until it exists: ask again, within one request timeout.
        let deadline = tokio::time::Instant::now() + self.timeout;
        while !ask.is_empty() {
            let request = FindCoordinatorRequest {
                key_type: 0,
                coordinator_keys: ask.iter().cloned().collect(),
                key: String::new(),
            };
            let response = self
                .call_any_from("find coordinator", &request, FIND_COORDINATOR_BATCH)
                .await?;
            let retry = tokio::time::Instant::now() < deadline;
            for c in response.coordinators {
                if !ask.contains(&c.key) {
                    continue;
                }
                match c.error_code {
                    0 => {
                        let address = format!("{}:{}", c.host, c.port);
                        lock(&self.coordinators).insert(c.key.clone(), address.clone());
                        ask.remove(&c.key);
                        out.insert(c.key, Ok(address));
                    }
                    code::COORDINATOR_NOT_AVAILABLE | code::COORDINATOR_LOAD_IN_PROGRESS
                        if retry => {}
                    e => {
                        ask.remove(&c.key);
                        let err =
                            self.broker_error("find coordinator", e, c.error_message.as_deref());
                        out.insert(c.key, Err(err));
                    }
                }
            }
            if !ask.is_empty() {
                if !retry {
                    for g in std::mem::take(&mut ask) {
                        let err = self.broker_error(
                            "find coordinator",
                            code::COORDINATOR_NOT_AVAILABLE,
                            Some("the group's coordinator did not become available"),
                        );
                        out.insert(g, Err(err));
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(out)
    }

    /// Forgets `group`'s coordinator after the broker said it moved.
    pub(crate) fn forget_coordinator(&self, group: &str) {
        lock(&self.coordinators).remove(group);
    }

    /// Requests sent so far, by broker node id (-1 for a bootstrap address no Metadata named)
    /// and API.
    pub(crate) fn requests(&self) -> BTreeMap<(i32, &'static str), u64> {
        let by_address: BTreeMap<String, i32> = lock(&self.nodes)
            .iter()
            .map(|(id, a)| (a.clone(), *id))
            .collect();
        let mut out = BTreeMap::new();
        for (address, slot) in lock(&self.slots).iter() {
            let node = by_address.get(address).copied().unwrap_or(-1);
            for (api, n) in slot.counts.snapshot() {
                *out.entry((node, api)).or_default() += n;
            }
        }
        out
    }

    /// Connections open now (one in use counts as open).
    pub(crate) fn open_connections(&self) -> usize {
        lock(&self.slots)
            .values()
            .filter(|s| s.broker.try_lock().map_or(true, |b| b.is_some()))
            .count()
    }
}

/// The first FindCoordinator version that takes many keys.
const FIND_COORDINATOR_BATCH: i16 = 4;
