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
//! Layout: `pool` holds the pool itself (settings, client contexts and statistics, idle
//! slots); `cluster` one cluster's clients (creation, settings, group consumers, event
//! serving); `requests` the calls made through them (metadata, offsets, groups, configs).

mod cluster;
mod pool;
mod requests;

pub(crate) use cluster::ClusterClients;
pub use pool::{ClientPool, PoolConfig, RequestStats};
