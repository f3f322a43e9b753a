//! Turns one observation of the brokers into a [`KafkaStatus`](crate::KafkaStatus). Pure.
//!
//! Layout: `observation` holds what goes in (the app's view, the observation, the baseline
//! of the current members); `build` turns it into the status and its problems.

mod build;
mod observation;
#[cfg(test)]
mod tests;

pub use build::build_status;
pub use observation::{AppView, Baseline, Observation};
