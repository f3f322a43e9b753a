//! `kstreams-operator describe NAME`: one StreamApp as a person wants to see it — its Kafka
//! figures, one row per pod with its node and zone, and the conditions that need attention.

mod fetch;
mod render;

pub use fetch::{DescribeError, Described, fetch};
pub use render::render;
