//! The Kafka side of a StreamApp, read from the brokers: internal topics and their health,
//! the app's consumer group and its Kafka Streams member data, processing and restore lag.
//!
//! Entry point: [`inspect`] with a shared [`ClientPool`], a [`KafkaConnection`] and an
//! [`AppView`]; the result is the [`KafkaStatus`] for `status.kafka`. Everything but
//! `client` and `inspect` is pure.

mod client;
mod connection;
mod error;
pub mod group;
mod inspect;
pub mod lag;
mod report;
pub mod status;
pub mod topics;
pub mod userdata;
mod wire;

pub use client::{ClientPool, PoolConfig, RequestStats};
pub use connection::KafkaConnection;
pub use error::KafkaError;
pub use inspect::{inspect, inspect_with};
pub use report::{AppView, Baseline, Observation, build_status};
pub use status::{KafkaProblem, KafkaStatus, ProblemReason};
pub use wire::DecodeError;
