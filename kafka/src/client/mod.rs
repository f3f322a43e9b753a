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
//!
//! Layout, in the order they depend on each other: `config` the pool's settings; `context`
//! what every client runs with (logs, last error, statistics); `idle` slots swept when idle;
//! `cluster` one cluster's clients (creation, settings, group consumers, event serving);
//! `requests` the calls made through them (metadata, offsets, groups, configs); `brokers` the
//! cluster's wire connections for what librdkafka lacks (one per broker, see `crate::protocol`)
//! and `streams` the calls made through them (streams groups, group configs); `pool` the pool
//! of clusters; `reset` the calls of an application reset, the only ones that write (offsets
//! through a short-lived consumer of their own, topic deletions).

mod brokers;
mod cluster;
mod config;
mod context;
mod idle;
mod pool;
mod requests;
mod reset;
mod streams;

pub(crate) use cluster::ClusterClients;
pub use config::PoolConfig;
pub use pool::{ClientPool, RequestStats};
