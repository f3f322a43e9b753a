//! The example word-count app run as plain local JVMs, without Kubernetes, for tests of the
//! Kafka side: instances with their own state directories and logs, lines to feed them, and
//! a wait on the status the Kafka check builds.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kstreams_kafka::status::KafkaStatus;
use kstreams_kafka::{AppView, Baseline, ClientPool, KafkaConnection, check};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::process::{Child, Command};

use crate::Kafka;

/// One instance of the example app; killed (and its state removed) when dropped.
pub struct AppInstance {
    /// Its `client.id`, as a pod name.
    pub pod: String,
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
    state: PathBuf,
}

impl AppInstance {
    /// Starts `pod` of `app_id` reading `input`, writing `output`.
    pub fn start(
        jar: &Path,
        pod: &str,
        app_id: &str,
        bootstrap: &str,
        input: &str,
        output: &str,
    ) -> Self {
        Self::start_with(jar, pod, app_id, bootstrap, (input, output), &[])
    }

    /// Starts `pod` with `env` on top of the defaults (`KAFKA_STREAMS_*` settings, the
    /// example app's `WORDCOUNT_*` ones).
    pub fn start_with(
        jar: &Path,
        pod: &str,
        app_id: &str,
        bootstrap: &str,
        (input, output): (&str, &str),
        env: &[(&str, &str)],
    ) -> Self {
        let dir = std::env::temp_dir().join(crate::unique(&format!("jvm-{pod}")));
        let state = dir.join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        let mut all: Vec<(String, std::ffi::OsString)> = vec![
            (
                "KAFKA_STREAMS_CONFIG_FILE".into(),
                dir.join("absent.properties").into(),
            ),
            ("KAFKA_STREAMS_APPLICATION_ID".into(), app_id.into()),
            ("KAFKA_STREAMS_BOOTSTRAP_SERVERS".into(), bootstrap.into()),
            ("KAFKA_STREAMS_STATE_DIR".into(), state.into()),
            ("KAFKA_STREAMS_CLIENT_ID".into(), pod.into()),
            ("KAFKA_STREAMS_NUM_STANDBY_REPLICAS".into(), "1".into()),
            ("KAFKA_STREAMS_COMMIT_INTERVAL_MS".into(), "500".into()),
            ("WORDCOUNT_INPUT_TOPIC".into(), input.into()),
            ("WORDCOUNT_OUTPUT_TOPIC".into(), output.into()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.into())));
        let command = vec!["-Xmx256m".into(), "-jar".into(), jar.into()];
        let log = dir.join("app.log");
        let child = spawn(pod, &command, &all, &log);
        Self {
            pod: pod.to_string(),
            child,
            log,
            state: dir,
        }
    }

    /// SIGTERM and wait for a clean close (it commits offsets).
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM)
            };
        }
        let status = tokio::time::timeout(Duration::from_secs(90), self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not stop within 90s; log: {}",
                    self.pod,
                    self.log.display()
                )
            })
            .expect("waiting for the app");
        // The JVM exits with 128 + SIGTERM after its shutdown hook closed the app.
        assert!(
            status.success() || status.code() == Some(143),
            "{} exited with {status}; log: {}",
            self.pod,
            self.log.display()
        );
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            log.contains("-> NOT_RUNNING"),
            "{} did not close cleanly:\n{}",
            self.pod,
            self.log_tail()
        );
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for AppInstance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

/// Refreshes until `cond` holds; panics with the last status (and app logs) at the deadline.
pub async fn wait_status(
    pool: &ClientPool,
    conn: &KafkaConnection,
    view: &AppView,
    apps: &[&AppInstance],
    what: &str,
    timeout: Duration,
    cond: impl Fn(&KafkaStatus) -> bool,
) -> KafkaStatus {
    let deadline = Instant::now() + timeout;
    // Polling cadence of the condition below, not a wait for time to pass.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    // The test started the app itself, in a group that did not exist before: it witnessed
    // the members join, as the operator does when it sees an app from its creation.
    let mut baseline = Baseline::default();
    loop {
        tick.tick().await;
        let last = match check(pool, conn, view, Some(&baseline)).await {
            Ok(c) if cond(&c.status) => return c.status,
            Ok(c) => {
                baseline = c.baseline;
                Ok(c.status)
            }
            Err(e) => Err(e),
        };
        if Instant::now() > deadline {
            let logs: Vec<String> = apps
                .iter()
                .map(|a| format!("--- {} ({}):\n{}", a.pod, a.log.display(), a.log_tail()))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for: {what}\nlast: {last:#?}\n{}",
                logs.join("\n")
            );
        }
    }
}

/// Starts the JVM, its output to `log`.
fn spawn(
    pod: &str,
    command: &[std::ffi::OsString],
    env: &[(String, std::ffi::OsString)],
    log: &Path,
) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new("java")
        .args(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting java for {pod}: {e}"))
}

/// Produces `n` lines to every partition of `topic`.
pub async fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    let producer: FutureProducer = Kafka::config(bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for p in 0..partitions {
        for i in 0..n {
            let line = format!("line {i} of partition {p} the quick brown fox");
            let key = format!("k{p}-{i}");
            producer
                .send(
                    FutureRecord::to(topic)
                        .partition(p)
                        .key(&key)
                        .payload(&line),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {topic}-{p}: {e}"));
        }
    }
}
