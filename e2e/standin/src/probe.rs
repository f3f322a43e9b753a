//! Probes as the kubelet runs them: `httpGet`, `tcpSocket` and `exec` against the pod's
//! own address, every `periodSeconds`, each within `timeoutSeconds`, the result flipping
//! only after `successThreshold` / `failureThreshold` results in a row.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One probe of a running container and where its thresholds stand.
pub struct Prober {
    probe: Probe,
    address: Ipv4Addr,
    ports: Vec<(String, i32)>,
    env: Vec<(String, String)>,
    /// The verdict so far: `None` until the thresholds first decide.
    pub passing: Option<bool>,
    successes: i32,
    failures: i32,
    /// When it runs next.
    pub next: Instant,
    /// What the last failure said.
    pub last_error: Option<String>,
}

impl Prober {
    /// A prober for `probe` of `container`, whose process binds `address`.
    pub fn new(
        probe: &Probe,
        container: &Container,
        address: Ipv4Addr,
        env: &[(String, String)],
        started: Instant,
    ) -> Self {
        let ports = container
            .ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, p.container_port)))
            .collect();
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        Self {
            probe: probe.clone(),
            address,
            ports,
            env: env.to_vec(),
            passing: None,
            successes: 0,
            failures: 0,
            next: started + Duration::from_secs(delay),
            last_error: None,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.probe.timeout_seconds.unwrap_or(1).max(1) as u64)
    }

    /// Runs the probe once and applies the thresholds; returns the verdict if it changed.
    pub async fn run(&mut self) -> Option<bool> {
        let result = tokio::time::timeout(self.timeout(), self.attempt())
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {:?}", self.timeout())));
        self.next = Instant::now() + self.period();
        let before = self.passing;
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                let needed = self.probe.success_threshold.unwrap_or(1).max(1);
                if self.successes >= needed {
                    self.passing = Some(true);
                }
            }
            Err(e) => {
                self.successes = 0;
                self.failures += 1;
                self.last_error = Some(e);
                let needed = self.probe.failure_threshold.unwrap_or(3).max(1);
                if self.failures >= needed {
                    self.passing = Some(false);
                }
            }
        }
        (self.passing != before).then_some(self.passing.unwrap_or(false))
    }

    async fn attempt(&self) -> Result<(), String> {
        if let Some(http) = &self.probe.http_get {
            if http.scheme.as_deref().is_some_and(|s| s != "HTTP") {
                return Err("only HTTP probes are supported".into());
            }
            let port = self.port(&http.port)?;
            let host = self.host(http.host.as_deref())?;
            let path = http.path.as_deref().unwrap_or("/");
            let headers: Vec<(String, String)> = http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            return http_get(SocketAddr::new(host.into(), port), path, &headers).await;
        }
        if let Some(tcp) = &self.probe.tcp_socket {
            let port = self.port(&tcp.port)?;
            let host = self.host(tcp.host.as_deref())?;
            return TcpStream::connect((host, port))
                .await
                .map(drop)
                .map_err(|e| format!("connecting to {host}:{port}: {e}"));
        }
        if let Some(exec) = &self.probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            let (program, args) = command
                .split_first()
                .ok_or("exec probe without a command")?;
            let status = tokio::process::Command::new(program)
                .args(args)
                .env_clear()
                .envs(std::env::vars().filter(|(k, _)| k == "PATH"))
                .envs(self.env.iter().cloned())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| format!("running {program}: {e}"))?;
            return if status.success() {
                Ok(())
            } else {
                Err(format!("{} exited with {status}", command.join(" ")))
            };
        }
        Err("unsupported probe (grpc?)".into())
    }

    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        let number = match port {
            IntOrString::Int(n) => *n,
            IntOrString::String(name) => self
                .ports
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| *p)
                .ok_or_else(|| format!("no container port named {name}"))?,
        };
        u16::try_from(number).map_err(|_| format!("port {number}"))
    }

    /// The probe's host: unset means the pod's own address, as the kubelet probes the pod IP.
    fn host(&self, host: Option<&str>) -> Result<Ipv4Addr, String> {
        match host {
            None | Some("") => Ok(self.address),
            Some(h) => h
                .parse()
                .map_err(|_| format!("probe host {h} is not an IPv4 address")),
        }
    }
}

/// `GET path` over HTTP/1.1; a status in 200..400 passes, as the kubelet's rule.
async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/stand-in\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("writing to {addr}: {e}"))?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream
            .read(&mut head[read..])
            .await
            .map_err(|e| format!("reading from {addr}: {e}"))?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr}{path}: not an HTTP response: {line:?}"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(json: serde_json::Value) -> Probe {
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn thresholds_decide_and_http_status_counts() {
        let listener = tokio::net::TcpListener::bind("127.3.2.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut served = 0;
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                served += 1;
                let code = if served <= 2 { 200 } else { 503 };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "ports": [{"name": "http", "containerPort": port}]
        }))
        .unwrap();
        let p = probe(serde_json::json!({
            "httpGet": {"port": "http", "path": "/ready"},
            "successThreshold": 2, "failureThreshold": 2, "periodSeconds": 1
        }));
        let mut prober = Prober::new(
            &p,
            &container,
            "127.3.2.1".parse().unwrap(),
            &[],
            Instant::now(),
        );
        assert_eq!(
            prober.run().await,
            None,
            "one success is below the threshold"
        );
        assert_eq!(prober.run().await, Some(true));
        assert_eq!(
            prober.run().await,
            None,
            "one failure is below the threshold"
        );
        assert_eq!(prober.run().await, Some(false));
        assert!(prober.last_error.as_deref().unwrap().contains("503"));
        server.abort();
        let _ = server.await;

        let closed = probe(serde_json::json!({"tcpSocket": {"port": port}, "failureThreshold": 1}));
        let mut prober = Prober::new(
            &closed,
            &container,
            "127.3.2.1".parse().unwrap(),
            &[],
            Instant::now(),
        );
        assert_eq!(prober.run().await, Some(false), "nothing listens any more");
    }
}
