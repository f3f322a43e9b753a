//! The stand-in kubelet (`e2e/standin`) embedded in a test: it runs the test namespace's
//! pods labelled `stand-in.kstreams.dev/serve` as local processes, with real readiness.
//!
//! A test fails on a process restart it did not declare with [`LocalPods::expect_restarts`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kstreams_standin::{Config, Registry, StandIn};
use kube::Client;

pub use kstreams_standin::SERVE_LABEL;

/// The repo's image registry.
pub fn repo_registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/images.yaml")
}

/// Builds the example word-count jar (once per source change) and returns its path.
pub fn example_jar() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/example-app.sh");
    let out = std::process::Command::new(&script)
        .arg("build")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "`e2e/example-app.sh build` failed ({}); its log is named above",
        out.status
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "e2e/example-app.sh printed {path:?}, not a jar"
    );
    path
}

/// A stand-in serving one test namespace.
pub struct LocalPods {
    standin: StandIn,
    namespace: String,
    expected: Mutex<BTreeMap<String, u32>>,
}

impl LocalPods {
    /// Serves `namespace` with the repo's images and those of `extra` registry files.
    pub fn start(client: &Client, namespace: &str, extra: &[&Path]) -> Self {
        // Not under /tmp: Kafka Streams warns that a state.dir there may be cleaned away.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let root = target.join("standin").join(crate::unique("run"));
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        let root = root.canonicalize().unwrap_or(root);
        let mut registry = Registry::default();
        for file in std::iter::once(repo_registry().as_path()).chain(extra.iter().copied()) {
            registry
                .add_file(file)
                .unwrap_or_else(|e| panic!("registry {}: {e}", file.display()));
        }
        let mut config = Config::new(vec![namespace.to_string()], root, registry);
        // Quick restarts keep tests short; the backoff's doubling is the kubelet's.
        config.restart_backoff = Duration::from_secs(1);
        let standin = StandIn::start(client.clone(), config).expect("starting the stand-in");
        Self {
            standin,
            namespace: namespace.to_string(),
            expected: Mutex::default(),
        }
    }

    /// The stand-in itself.
    pub fn standin(&self) -> &StandIn {
        &self.standin
    }

    /// The log of the pod's current process (`<pod>.previous.log` holds the one before).
    pub fn log_path(&self, pod: &str) -> PathBuf {
        self.standin.log_path(&self.namespace, pod)
    }

    /// The log of the process before the current one.
    pub fn previous_log(&self, pod: &str) -> String {
        let path = self.log_path(pod).with_extension("previous.log");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The address the pod's process binds.
    pub fn address(&self, pod: &str) -> std::net::Ipv4Addr {
        self.standin
            .address(&self.namespace, pod)
            .unwrap_or_else(|| panic!("{pod} has no address yet"))
    }

    /// The local directory of PVC `claim`.
    pub async fn claim_dir(&self, claim: &str) -> PathBuf {
        self.standin
            .claim_dir(&self.namespace, claim)
            .await
            .unwrap_or_else(|e| panic!("claim {claim}: {e}"))
    }

    /// Declares that `pod`'s process restarts `n` times in this test (in total).
    pub fn expect_restarts(&self, pod: &str, n: u32) {
        self.expected.lock().unwrap().insert(pod.to_string(), n);
    }

    /// Sends `signal` to the pod's process.
    pub fn signal(&self, pod: &str, signal: i32) {
        assert!(
            self.standin.signal(&self.namespace, pod, signal),
            "{pod}: no process runs for it"
        );
    }

    /// Waits until the log of the pod's current process contains `needle` and returns it;
    /// panics with the log's tail on timeout.
    pub async fn wait_log(&self, pod: &str, needle: &str, timeout: Duration) -> String {
        let path = self.log_path(pod);
        let deadline = Instant::now() + timeout;
        // The log is a file: poll it until the deadline.
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.contains(needle) {
                return log;
            }
            if Instant::now() >= deadline {
                let state = kstreams_standin::status::table(&self.standin.pods());
                panic!(
                    "{pod}: no {needle:?} in its log within {timeout:?}; pods:\n{state}{}:\n{}",
                    path.display(),
                    tail(&log)
                );
            }
        }
    }
}

impl Drop for LocalPods {
    fn drop(&mut self) {
        // Counted before the kill: the kill is the test's end, not a restart.
        let restarts = self.standin.restarts();
        self.standin.kill_all();
        let served = self.standin.served();
        // The Pods go back to kwok, so deleting the namespace does not wait for a kubelet
        // that is gone. A fresh client: this one's runtime may be blocked in this drop.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = Client::try_default().await.ok()?;
                kstreams_standin::release(&client, &served).await;
                Some(())
            })
        })
        .join();
        let panicking = std::thread::panicking();
        let expected = self
            .expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let actual: BTreeMap<String, u32> = (restarts.into_iter())
            .map(|((_, pod), n)| (pod, n))
            .collect();
        let pods: std::collections::BTreeSet<&String> =
            expected.keys().chain(actual.keys()).collect();
        let wrong: Vec<String> = pods
            .into_iter()
            .filter_map(|pod| {
                let (want, got) = (expected.get(pod), actual.get(pod));
                let (want, got) = (want.copied().unwrap_or(0), got.copied().unwrap_or(0));
                (want != got).then(|| format!("{pod}: {got} restarts, expected {want}"))
            })
            .collect();
        // An unexpected restart keeps the logs too: the previous process's says why it ended.
        if panicking || !wrong.is_empty() || std::env::var_os("KSO_KEEP_RUNNER").is_some() {
            eprintln!(
                "stand-in: keeping {} (logs, volumes) for diagnosis",
                self.standin.root().display()
            );
        } else {
            let _ = std::fs::remove_dir_all(self.standin.root());
        }
        if !panicking {
            assert!(wrong.is_empty(), "process restarts: {wrong:?}");
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// The example word count as a 2-instance StreamApp named `name`, reading `input` and
/// writing `output`, run by the stand-in with its readiness probe. Counts reach the output
/// within a second (not the default 30 s), and a member that stops without leaving the group
/// (killed, or static) is dropped after 10 s instead of 45 s.
pub fn wordcount_app(
    name: &str,
    app_id: &str,
    bootstrap: &str,
    input: &str,
    output: &str,
) -> kstreams_operator::crd::StreamApp {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: {name}}}
spec:
  image: kstreams-examples/wordcount:0.1.0
  replicas: 2
  applicationId: {app_id}
  kafka: {{bootstrapServers: "{bootstrap}"}}
  topics: {{inputs: ["{input}"]}}
  placement: {{antiAffinity: Preferred}}
  interactiveQueries: {{port: 8080}}
  config: {{commit.interval.ms: "1000", session.timeout.ms: "10000"}}
  env:
  - {{name: WORDCOUNT_INPUT_TOPIC, value: "{input}"}}
  - {{name: WORDCOUNT_OUTPUT_TOPIC, value: "{output}"}}
  - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
  probes:
    readiness: {{httpGet: {{path: /ready, port: iq}}, periodSeconds: 1, failureThreshold: 3}}
  podTemplate:
    labels: {{"{SERVE_LABEL}": "true"}}
"#
    ))
    .expect("a valid StreamApp")
}
