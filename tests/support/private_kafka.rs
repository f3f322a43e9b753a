//! A broker of the test's own, for tests that stop and restart Kafka without disturbing the
//! shared one: `e2e/kafka.sh` with its own state directory and ports.

use std::path::PathBuf;
use std::process::Command;

use crate::process::free_port;

/// A private broker; stopped when dropped.
pub struct PrivateKafka {
    /// `127.0.0.1:<port>`.
    pub bootstrap: String,
    state: PathBuf,
    port: u16,
    controller_port: u16,
}

impl PrivateKafka {
    /// Starts a broker on free ports.
    pub fn start() -> Self {
        let state = std::env::temp_dir().join(crate::unique("kafka-state"));
        let (port, controller_port) = (free_port(), free_port());
        let kafka = Self {
            bootstrap: format!("127.0.0.1:{port}"),
            state,
            port,
            controller_port,
        };
        kafka.up();
        kafka
    }

    fn script(&self, action: &str) -> bool {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../e2e/kafka.sh");
        Command::new("bash")
            .arg(script)
            .arg(action)
            .env("KSO_STATE", &self.state)
            .env("KSO_KAFKA_PORT", self.port.to_string())
            .env(
                "KSO_KAFKA_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Starts (or restarts) the broker on the same ports and waits until it answers.
    pub fn up(&self) {
        assert!(
            self.script("up"),
            "starting the private Kafka broker failed"
        );
    }

    /// Stops the broker.
    pub fn down(&self) {
        assert!(
            self.script("down"),
            "stopping the private Kafka broker failed"
        );
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        self.script("down");
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
