//! The wire connections of one cluster (see `crate::protocol`): one per broker, shared by
//! all apps of the cluster, opened on first use and dropped after any failure. Every call
//! runs under the pool's request timeout and its failure maps to a [`KafkaError`] category.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;
use tracing::{debug, warn};

use super::context::lock;
use crate::connection::KafkaConnection;
use crate::error::KafkaError;
use crate::protocol::Request;
use crate::protocol::broker::{Broker, WireError};
use crate::protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::messages::metadata_request::MetadataRequest;

/// Kafka error codes the callers tell apart.
pub(crate) mod code {
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
}

type Slot = Arc<AsyncMutex<Option<Broker>>>;

/// One cluster's broker connections.
pub(crate) struct Brokers {
    conn: KafkaConnection,
    timeout: Duration,
    /// By `host:port`; bootstrap servers and brokers alike.
    slots: Mutex<BTreeMap<String, Slot>>,
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

    /// The error for a failure of `operation`.
    pub(crate) fn error(&self, operation: &'static str, e: WireError) -> KafkaError {
        let bootstrap = self.bootstrap().to_string();
        let err = match e {
            WireError::Io(detail) => KafkaError::Unreachable { bootstrap, detail },
            WireError::Tls(detail) | WireError::Sasl(detail) => {
                KafkaError::AuthFailed { bootstrap, detail }
            }
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
            Some(m) if !m.is_empty() => format!("error code {code}: {m}"),
            _ => format!("error code {code}"),
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

    fn slot(&self, address: &str) -> Slot {
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
        let slot = self.slot(address);
        let mut guard = slot.lock().await;
        let attempt = async {
            if guard.is_none() {
                *guard = Some(Broker::connect(address, &self.conn).await?);
                debug!(address, "wire connection opened");
            }
            match guard.as_mut() {
                Some(broker) => broker.send(request).await,
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

    /// Sends `request` to any broker: the bootstrap servers in turn until one answers.
    pub(crate) async fn call_any<R: Request>(
        &self,
        operation: &'static str,
        request: &R,
    ) -> Result<R::Response, KafkaError> {
        let mut last = None;
        for address in self
            .bootstrap()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match self.call(address, operation, request).await {
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

    /// Every broker's `host:port`, from a fresh Metadata request.
    pub(crate) async fn nodes(&self) -> Result<BTreeMap<i32, String>, KafkaError> {
        let response = self
            .call_any("metadata", &MetadataRequest::default())
            .await?;
        let nodes: BTreeMap<i32, String> = response
            .brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        *lock(&self.nodes) = nodes.clone();
        Ok(nodes)
    }

    /// The coordinator of `group`, from the cache or a FindCoordinator request.
    pub(crate) async fn coordinator(&self, group: &str) -> Result<String, KafkaError> {
        if let Some(a) = lock(&self.coordinators).get(group) {
            return Ok(a.clone());
        }
        let request = FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec![group.to_string()],
            key: group.to_string(),
        };
        // A fresh cluster creates its offsets topic on the first lookup and answers
        // COORDINATOR_NOT_AVAILABLE until it exists: ask again, within one request timeout.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let (host, port) = loop {
            let response = self.call_any("find coordinator", &request).await?;
            let (code, message, host, port) = match response.coordinators.first() {
                Some(c) => (
                    c.error_code,
                    c.error_message.clone(),
                    c.host.clone(),
                    c.port,
                ),
                None => (
                    response.error_code,
                    response.error_message.clone(),
                    response.host.clone(),
                    response.port,
                ),
            };
            match code {
                0 => break (host, port),
                code::COORDINATOR_NOT_AVAILABLE | code::COORDINATOR_LOAD_IN_PROGRESS
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                c => return Err(self.broker_error("find coordinator", c, message.as_deref())),
            }
        };
        let address = format!("{host}:{port}");
        lock(&self.coordinators).insert(group.to_string(), address.clone());
        Ok(address)
    }

    /// Forgets `group`'s coordinator after the broker said it moved.
    pub(crate) fn forget_coordinator(&self, group: &str) {
        lock(&self.coordinators).remove(group);
    }
}
