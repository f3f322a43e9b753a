//! kstreams-operator: runs stateful Kafka Streams applications on Kubernetes.
//!
//! `crd` is the API, `resources` the pure builders of its children, `reconcile` the pipeline
//! that observes, builds, applies, checks Kafka (through the `kstreams-kafka` crate), judges
//! and reports; `controller` runs it on every change; `runtime` is the process around it
//! (`cli`, `admin`, `metrics`, leader election); `describe` is the per-app view for people.

pub mod admin;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod describe;
pub mod error;
pub mod metrics;
pub mod reconcile;
pub mod resources;
pub mod runtime;
