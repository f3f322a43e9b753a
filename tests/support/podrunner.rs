//! A stand-in kubelet for StreamApp pods: kwok marks pods Running but runs nothing, so this
//! runs the example app as a local JVM per Running pod, with the pod's environment resolved
//! as the kubelet would and its volumes mapped to local directories (a PVC keeps its
//! directory across pod restarts, as a real volume keeps its data).
//!
//! A process that exits on its own stays down (`start_pod` starts it again): a crash then
//! fails the test that waits on it instead of hiding in a restart loop.

mod container;
mod process;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kstreams_operator::resources::statefulset::CONTAINER;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use container::Kubelet;
use process::{Proc, Spawner};

/// Host variables a container image would provide; everything else comes from the pod.
const HOST_ENV: &[&str] = &["PATH", "JAVA_HOME", "LANG", "TMPDIR"];

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

/// Runs the example app for every Running pod matching a selector in one namespace.
pub struct PodRunner {
    inner: Arc<Inner>,
    watch: tokio::task::JoinHandle<()>,
}

struct Inner {
    client: Client,
    namespace: String,
    jar: PathBuf,
    root: PathBuf,
    pods: Store<Pod>,
    spawner: Spawner,
    procs: Mutex<Procs>,
    /// Pods stopped by `stop_pod`: the watch leaves them down until `start_pod`.
    held: Mutex<HashSet<String>>,
    /// One lock per pod, so a stop and the start that follows never interleave.
    ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Why the last start of a pod failed, so a wait on it fails at once.
    failures: Mutex<HashMap<String, String>>,
}

#[derive(Default)]
struct Procs {
    /// Set on drop, under the same lock as spawning, so nothing starts after the kill.
    closed: bool,
    by_pod: HashMap<String, Proc>,
}

impl PodRunner {
    /// Starts watching the pods of `namespace` matching `selector`, running `jar` for each.
    pub fn start(client: &Client, namespace: &str, selector: &str, jar: &Path) -> Self {
        // Not under /tmp: Kafka Streams warns that a state.dir there may be cleaned away.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let root = target.join("podrunner").join(crate::unique("run"));
        for dir in ["pvc", "logs", "pods"] {
            std::fs::create_dir_all(root.join(dir))
                .unwrap_or_else(|e| panic!("creating {}: {e}", root.join(dir).display()));
        }
        let root = root.canonicalize().unwrap_or(root);
        let (pods, writer) = reflector::store();
        let inner = Arc::new(Inner {
            client: client.clone(),
            namespace: namespace.to_string(),
            jar: jar.to_path_buf(),
            root,
            pods,
            spawner: Spawner::new(),
            procs: Mutex::default(),
            held: Mutex::default(),
            ops: Mutex::default(),
            failures: Mutex::default(),
        });
        let api = Api::<Pod>::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().labels(selector);
        let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
        let watch = tokio::spawn(Inner::watch(inner.clone(), stream));
        Self { inner, watch }
    }

    /// The directory holding `pvc/<claim>`, `logs/<pod>.log` and per-pod volumes.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The local directory standing in for the PVC `claim`.
    pub fn claim_dir(&self, claim: &str) -> PathBuf {
        self.inner.root.join("pvc").join(claim)
    }

    /// The log of the pod's current process (the previous one is in `<pod>.previous.log`).
    pub fn log_path(&self, pod: &str) -> PathBuf {
        self.inner.log_path(pod)
    }

    /// SIGTERMs the pod's process (SIGKILL after a bound) but leaves the Pod, as a crash or
    /// a stopped container would; returns how the process exited.
    pub async fn stop_pod(&self, pod: &str) -> ExitStatus {
        self.inner.held.lock().unwrap().insert(pod.to_string());
        let op = self.inner.op_lock(pod);
        let _guard = op.lock().await;
        let proc = self.inner.procs.lock().unwrap().by_pod.get(pod).cloned();
        let proc = proc.unwrap_or_else(|| panic!("stop_pod({pod}): no process runs for it"));
        let status = proc.terminate().await;
        self.inner.procs.lock().unwrap().by_pod.remove(pod);
        status.unwrap_or_else(|e| panic!("stop_pod({pod}): {e}"))
    }

    /// Starts the pod's process again from the current Pod (restarting it if it runs).
    pub async fn start_pod(&self, pod: &str) {
        self.inner.held.lock().unwrap().remove(pod);
        self.inner.sync(pod, true).await;
        let procs = self.inner.procs.lock().unwrap();
        assert!(
            procs.by_pod.get(pod).is_some_and(Proc::running),
            "start_pod({pod}): no process started (is the Pod Running? see {})",
            self.inner.log_path(pod).display()
        );
    }

    /// Empties the directory of PVC `claim`, as a fresh volume would be; the pod using it
    /// must be stopped first.
    pub fn wipe_state(&self, claim: &str) {
        let procs = self.inner.procs.lock().unwrap();
        if let Some((pod, _)) = procs
            .by_pod
            .iter()
            .find(|(_, p)| p.running() && p.claims.iter().any(|c| c == claim))
        {
            panic!("wipe_state({claim}): pod {pod} still runs on it; stop_pod it first");
        }
        let dir = self.claim_dir(claim);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("recreating {dir:?}: {e}"));
    }

    /// Waits until the log of the pod's current process contains `needle` and returns the
    /// log; panics with the log's tail on timeout or if the process exits first.
    pub async fn wait_log(&self, pod: &str, needle: &str, timeout: Duration) -> String {
        let path = self.inner.log_path(pod);
        let deadline = Instant::now() + timeout;
        // The log is a file: poll it at this cadence until the deadline.
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            // Read the exit status before the log: once exited, the log is complete.
            let exited = (self.inner.procs.lock().unwrap().by_pod.get(pod))
                .and_then(|p| p.exited.borrow().clone());
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.contains(needle) {
                return log;
            }
            if let Some(e) = self.inner.failures.lock().unwrap().get(pod) {
                panic!("{pod}: the pod runner cannot start it: {e}");
            }
            if let Some(status) = exited {
                panic!(
                    "{pod}: process exited ({status:?}) without logging {needle:?}; {}:\n{}",
                    path.display(),
                    tail(&log)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{pod}: no {needle:?} in its log within {timeout:?}; {}:\n{}",
                    path.display(),
                    tail(&log)
                );
            }
        }
    }
}

impl Drop for PodRunner {
    fn drop(&mut self) {
        self.watch.abort();
        let mut procs = self.inner.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs.closed = true;
        for proc in procs.by_pod.values().filter(|p| p.running()) {
            proc.signal(libc::SIGKILL);
        }
        drop(procs);
        if std::thread::panicking() || std::env::var_os("KSO_KEEP_RUNNER").is_some() {
            eprintln!(
                "podrunner: keeping {} (logs, state) for diagnosis",
                self.inner.root.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.inner.root);
        }
    }
}

impl Inner {
    async fn watch(
        self: Arc<Self>,
        stream: impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>,
    ) {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let names = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::Delete(pod)) => {
                    vec![pod.name_any()]
                }
                // A relist is complete: pods deleted while the watch was down are gone now.
                Ok(watcher::Event::InitDone) => self.known_pods(),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                Err(e) => {
                    eprintln!("podrunner: watching pods in {}: {e}", self.namespace);
                    continue;
                }
            };
            for name in names {
                let inner = self.clone();
                tokio::spawn(async move { inner.sync(&name, false).await });
            }
        }
    }

    fn known_pods(&self) -> Vec<String> {
        let mut names: HashSet<String> = self.pods.state().iter().map(|p| p.name_any()).collect();
        names.extend(self.procs.lock().unwrap().by_pod.keys().cloned());
        names.into_iter().collect()
    }

    fn op_lock(&self, pod: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.ops
            .lock()
            .unwrap()
            .entry(pod.to_string())
            .or_default()
            .clone()
    }

    fn log_path(&self, pod: &str) -> PathBuf {
        self.root.join("logs").join(format!("{pod}.log"))
    }

    /// Brings the pod's process in line with the Pod: one process per Running pod uid.
    async fn sync(&self, name: &str, restart: bool) {
        let op = self.op_lock(name);
        let _guard = op.lock().await;
        let pod = self
            .pods
            .get(&ObjectRef::new(name).within(&self.namespace))
            .filter(|p| is_running(p) && !self.held.lock().unwrap().contains(name));
        let current = self.procs.lock().unwrap().by_pod.get(name).cloned();
        if let Some(proc) = current {
            let same_pod = pod
                .as_ref()
                .is_some_and(|p| p.uid().as_ref() == Some(&proc.uid));
            if same_pod && !restart {
                return;
            }
            if let Err(e) = proc.terminate().await {
                eprintln!("podrunner: stopping {name}: {e}");
            }
            self.procs.lock().unwrap().by_pod.remove(name);
        }
        if let Some(pod) = pod {
            let result = self.launch(&pod).await;
            let mut failures = self.failures.lock().unwrap();
            match result {
                Ok(()) => failures.remove(name),
                Err(e) => {
                    eprintln!("podrunner: cannot start {name}: {e}");
                    failures.insert(name.to_string(), e)
                }
            };
        }
    }

    async fn launch(&self, pod: &Pod) -> Result<(), String> {
        let name = pod.name_any();
        let uid = pod.uid().ok_or("pod has no uid")?;
        let spec = pod.spec.as_ref().ok_or("pod has no spec")?;
        let container = spec
            .containers
            .iter()
            .find(|c| c.name == CONTAINER)
            .or_else(|| spec.containers.first())
            .ok_or("pod has no container")?;
        let kubelet = Kubelet {
            client: &self.client,
            namespace: &self.namespace,
            root: &self.root,
        };
        let resolved = kubelet.resolve(pod, container, &uid).await?;

        let log_path = self.log_path(&name);
        if log_path.exists() {
            let previous = log_path.with_extension("previous.log");
            std::fs::rename(&log_path, previous).map_err(|e| format!("rotating log: {e}"))?;
        }
        let mut header = format!("# podrunner: pod {name} uid {uid}\n");
        for (mount, dir) in &resolved.mounts {
            header += &format!("# mount {mount} -> {}\n", dir.display());
        }
        for (k, v) in &resolved.env {
            let shown = if resolved.secret_vars.contains(k) {
                "<secret>"
            } else {
                v
            };
            header += &format!("# env {k}={shown}\n");
        }
        std::fs::write(&log_path, header).map_err(|e| format!("writing log: {e}"))?;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;

        let mut cmd = tokio::process::Command::new("java");
        cmd.arg("-Xmx256m")
            .arg("-jar")
            .arg(&self.jar)
            .env_clear()
            .envs(
                HOST_ENV
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .envs(resolved.env)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut procs = self.procs.lock().unwrap();
        if procs.closed {
            return Err("the runner is shutting down".into());
        }
        let proc = self.spawner.spawn(cmd, uid, resolved.claims)?;
        procs.by_pod.insert(name, proc);
        Ok(())
    }
}

fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// The example word count as a 2-instance StreamApp named `name`, reading `input` and
/// writing `output`. Counts reach the output within a second (not the default 30 s), and a
/// stopped member leaves the group after 10 s instead of 45 s: Kafka Streams does not leave
/// the group on close.
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
  config: {{commit.interval.ms: "1000", session.timeout.ms: "10000"}}
  env:
  - {{name: WORDCOUNT_INPUT_TOPIC, value: "{input}"}}
  - {{name: WORDCOUNT_OUTPUT_TOPIC, value: "{output}"}}
"#
    ))
    .expect("a valid StreamApp")
}
