//! Shared clients, one set per Kafka cluster (per distinct [`KafkaConnection`]).
//!
//! Per cluster: one wire connection per broker (see `crate::protocol`), shared by every app
//! of the cluster and carrying every read of the checks, whose requests they count; and, for
//! resets only, one librdkafka admin client (topic configs and deletions) and one consumer
//! without a group (metadata, offsets, group description), each created on first use. No
//! client of the pool ever joins a group or commits: OffsetFetch over the wire reads any
//! group's offsets without being its member, so an app never rebalances because of the
//! operator.
//!
//! Clients are dropped after `idle_timeout` without use. librdkafka calls block, so they run
//! on Tokio's blocking pool, each with a timeout; clients are dropped there too (a consumer's
//! destructor waits for its threads).
//!
//! Layout, in the order they depend on each other: `config` the pool's settings; `context`
//! what every librdkafka client runs with (logs, last error, statistics); `idle` slots swept
//! when idle; `brokers` the cluster's wire connections; `cluster` one cluster's clients
//! (creation, settings, event serving); `reads` the batched wire reads of a cluster check
//! (metadata, groups, committed and end offsets, topic configs); `requests` the librdkafka
//! reads of resets; `streams` the wire calls for streams groups and group configs; `pool` the
//! pool of clusters; `reset` the calls of an application reset, the only ones that write
//! (offsets through a short-lived consumer of their own, topic deletions).

mod brokers;
mod cluster;
mod config;
mod context;
mod idle;
mod pool;
mod reads;
mod requests;
mod reset;
mod streams;

pub(crate) use cluster::ClusterClients;
pub use config::PoolConfig;
pub use pool::{ClientPool, OpenClients, RequestStats};
pub(crate) use reads::{CommittedMeta, EndOffsets, PerGroup};
