//! kstreams-operator: runs stateful Kafka Streams applications on Kubernetes.

pub mod admin;
pub mod cli;
pub mod context;
pub mod controller;
pub mod crd;
pub mod error;
pub mod kafka;
pub mod kafka_check;
pub mod metrics;
pub mod observe;
pub mod reconcile;
pub mod resources;
pub mod runtime;
pub mod status;
pub mod volumes;
