//! What the brokers tell about a Kafka Streams app: its internal topics and their health, its
//! consumer group and the Kafka Streams data of its members, processing and restore lag.
//!
//! This crate knows nothing of Kubernetes or of the StreamApp resource: its caller describes
//! the app as an [`AppView`]. Entry points: [`check_cluster`] with a shared [`ClientPool`], a
//! [`KafkaConnection`] and the views of all apps of that cluster (one round of requests for
//! all of them), or [`check`] of one app; each result ([`Checked`]) is a [`KafkaStatus`], the
//! [`Baseline`] to pass to the next check and the source offsets a [`CommitProgress`] follows
//! across checks. Everything but `client` and `check` is pure.
//!
//! Layout: `client` talks to the brokers (wire connections; librdkafka for resets), `check`
//! runs the checks through it, `slices` cuts each app's part out of what was read for all;
//! `userdata` and `group` decode what members send, `topics` and `lag` compute from the
//! offsets, `progress` follows commits across checks, `report` turns one observation into a
//! status; `status` is the status's shape; `reset` the pure part of an application reset,
//! whose broker calls are methods of [`ClientPool`].

mod check;
mod client;
mod connection;
mod error;
pub mod group;
pub mod lag;
mod progress;
pub(crate) mod protocol;
mod report;
pub mod reset;
mod slices;
pub mod status;
pub mod streams_group;
pub mod topics;
pub mod userdata;
mod wire;

pub use check::{Checked, check, check_cluster};
pub use client::{ClientPool, OpenClients, PoolConfig, RequestStats};
pub use connection::{KafkaConnection, SecurityProtocol};
pub use error::KafkaError;
pub use progress::{CommitProgress, SourceOffsets};
pub use report::{AppView, Baseline, Observation, build_status};
pub use reset::{GroupMembers, OffsetTarget, OffsetsReset, ResetRefusal, reset_marker};
pub use status::{KafkaProblem, KafkaStatus, ProblemReason};
pub use wire::DecodeError;

/// Entry points into the wire decoders for the property tests only (feature `decoder-testing`).
#[cfg(feature = "decoder-testing")]
#[doc(hidden)]
pub use protocol::testing as decoder_testing;
