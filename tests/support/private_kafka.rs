//! A broker of the test's own, for tests that stop and restart Kafka or need a secured
//! listener, without disturbing the shared one: `e2e/kafka.sh` with its own state directory
//! and ports.

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
    secure: Option<Secure>,
}

/// The SASL_SSL listener of a secured private broker.
#[derive(Clone)]
pub struct Secure {
    /// `127.0.0.1:<port>` of the SASL_SSL listener.
    pub bootstrap: String,
    /// PEM of the CA that signed the broker's certificate (for 127.0.0.1).
    pub ca_pem: String,
    /// The SCRAM (and PLAIN) user and its password.
    pub user: (String, String),
}

impl PrivateKafka {
    /// Starts a broker on free ports.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Starts a broker that also has a SASL_SSL listener (SCRAM-SHA-256/512 and PLAIN) for
    /// `user` with `password`, its certificate signed by a CA of its own.
    pub fn start_secure(user: &str, password: &str) -> Self {
        let port = free_port();
        let mut kafka = Self::launch(Some(Secure {
            bootstrap: format!("127.0.0.1:{port}"),
            ca_pem: String::new(),
            user: (user.into(), password.into()),
        }));
        let ca = kafka.state.join("kafka/tls/ca.crt");
        let pem = std::fs::read_to_string(&ca).unwrap_or_else(|e| panic!("reading {ca:?}: {e}"));
        if let Some(s) = kafka.secure.as_mut() {
            s.ca_pem = pem;
        }
        kafka
    }

    /// The SASL_SSL listener, when started with [`PrivateKafka::start_secure`].
    pub fn secure(&self) -> &Secure {
        self.secure.as_ref().expect("started with start_secure")
    }

    fn launch(secure: Option<Secure>) -> Self {
        let state = std::env::temp_dir().join(crate::unique("kafka-state"));
        let (port, controller_port) = (free_port(), free_port());
        let kafka = Self {
            bootstrap: format!("127.0.0.1:{port}"),
            state,
            port,
            controller_port,
            secure,
        };
        kafka.up();
        kafka
    }

    fn script(&self, action: &str) -> bool {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../e2e/kafka.sh");
        let mut cmd = Command::new("bash");
        if let Some(s) = &self.secure {
            let port = s.bootstrap.rsplit(':').next().unwrap_or_default();
            cmd.env("KSO_KAFKA_SECURE_PORT", port).env(
                "KSO_KAFKA_SCRAM_USERS",
                format!("{}:{}", s.user.0, s.user.1),
            );
        }
        cmd.arg(script)
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

    /// Stops the broker and keeps its data: [`PrivateKafka::up`] brings back the same topics,
    /// groups and offsets, as after a broker outage.
    pub fn stop(&self) {
        assert!(
            self.script("stop"),
            "stopping the private Kafka broker failed"
        );
    }

    /// Stops the broker and deletes its data.
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
