//! The operator as a real process (`kstreams-operator run`), as a Deployment would run it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::operator_binary;

/// A running `kstreams-operator run`; killed when dropped.
pub struct OperatorProcess {
    /// The child process.
    pub child: Child,
    /// `127.0.0.1:<port>` of its admin endpoint.
    pub admin: String,
    /// Its combined log.
    pub log: PathBuf,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

impl OperatorProcess {
    /// Starts the operator with `args` (plus an admin address of its own) and the caller's
    /// environment (KUBECONFIG).
    pub fn start(name: &str, args: &[&str]) -> Self {
        let admin = format!("127.0.0.1:{}", free_port());
        let log = std::env::temp_dir().join(format!("{}.log", crate::unique(name)));
        let file = std::fs::File::create(&log).expect("operator log file");
        let child = Command::new(operator_binary())
            .arg("run")
            .args(["--admin-addr", &admin, "--instance", name])
            .args(args)
            .stdout(Stdio::from(file.try_clone().expect("log file handle")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("starting kstreams-operator");
        Self { child, admin, log }
    }

    /// GET `path` on the admin endpoint; None while it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "2"])
            .arg(format!("http://{}{path}", self.admin))
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.parse().ok()?, body.to_string()))
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if let Some((200, _)) = self.get("/readyz").await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operator not ready within {timeout:?}; log: {}",
                self.log_text()
            );
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("operator still running");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} {pid}");
    }
}
