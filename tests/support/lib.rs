//! Support for tests against the real local stack started by `e2e/`: a Kubernetes client
//! from `KUBECONFIG`, a fresh namespace per test, waits on conditions with deadlines, and
//! Kafka topics with a unique prefix per test.
//!
//! Nothing here skips: a missing stack is a loud failure, never a green run.

pub mod binary;
pub mod conditions;
pub mod jvm_app;
pub mod kafka;
pub mod kube_env;
pub mod local_pods;
pub mod nodes;
pub mod operator;
pub mod private_kafka;
pub mod process;
pub mod reset;
pub mod seed;
pub mod wait;
pub mod zones;

pub use binary::operator_binary;
pub use conditions::{condition, is};
pub use kafka::Kafka;
pub use kube_env::{TestNamespace, client};
pub use local_pods::LocalPods;
pub use operator::{Operator, install_crd};
pub use private_kafka::PrivateKafka;
pub use process::OperatorProcess;
pub use wait::{wait_for, wait_for_list};

/// A short random suffix for names that must not collide between tests or runs.
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect();
    format!("{prefix}-{suffix}")
}
