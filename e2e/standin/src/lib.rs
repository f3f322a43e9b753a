//! A stand-in kubelet for kwok nodes. kwok marks pods Running and Ready but runs nothing;
//! the stand-in runs each pod it serves as a local process, with the pod's command,
//! environment and volumes resolved as the kubelet does, its own loopback address, its
//! probes deciding its Ready condition, restarts with backoff, and graceful deletion.
//!
//! It serves the pods labelled [`SERVE_LABEL`] (kwok's stages in `e2e/kwok/` leave those
//! to it), in the namespaces it is told. `e2e/pods.sh` runs it as a daemon; the integration
//! tests embed it through [`StandIn::start`].

pub mod address;
pub mod config;
pub mod container;
pub mod error;
pub mod pod;
pub mod probe;
pub mod process;
pub mod registry;
mod shared;
pub mod status;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Semaphore, watch};

pub use address::PodKey;
pub use config::Config;
pub use error::Error;
pub use registry::Registry;
pub use status::PodReport;

use shared::{Shared, lock};

/// The label that opts a pod in: kwok leaves its readiness and deletion to the stand-in.
pub const SERVE_LABEL: &str = "stand-in.kstreams.dev/serve";

/// A running stand-in kubelet.
pub struct StandIn {
    shared: Arc<Shared>,
    watch: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Starts serving: watches the pods in scope and supervises each.
    pub fn start(client: Client, config: Config) -> Result<Self, Error> {
        for dir in ["logs", "volumes", "pods"] {
            let dir = config.root.join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Local(format!("{}: {e}", dir.display())))?;
        }
        let seed = std::process::id() as u64 ^ (config.root.as_os_str().len() as u64) << 32;
        let seed = seed
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let shared = Arc::new(Shared {
            client: client.clone(),
            addresses: address::Addresses::new(seed, config.root.join("hosts")),
            spawner: process::Spawner::new()
                .map_err(|e| Error::Local(format!("starting the spawner thread: {e}")))?,
            starting: Arc::new(Semaphore::new(config.max_starting.max(1))),
            names: Mutex::default(),
            reports: Mutex::default(),
            restarts: Mutex::default(),
            procs: Mutex::default(),
            closed: Mutex::new(false),
            config,
        });
        shared.write_status_file();
        let watch = tokio::spawn(watch_pods(shared.clone()));
        Ok(Self { shared, watch })
    }

    /// The served pods, by namespace and name.
    pub fn pods(&self) -> Vec<PodReport> {
        let mut pods: Vec<PodReport> = lock(&self.shared.reports).values().cloned().collect();
        pods.sort_by(|a, b| a.key.cmp(&b.key));
        pods
    }

    /// The directory of its files.
    pub fn root(&self) -> &Path {
        &self.shared.config.root
    }

    /// The log of the pod's current process (the one before is `<pod>.previous.log`).
    pub fn log_path(&self, namespace: &str, pod: &str) -> PathBuf {
        self.shared
            .log_path(&(namespace.to_string(), pod.to_string()))
    }

    /// The address the pod's process binds.
    pub fn address(&self, namespace: &str, pod: &str) -> Option<Ipv4Addr> {
        self.shared.addresses.get(namespace, pod)
    }

    /// The hosts file mapping pod DNS names to their addresses.
    pub fn hosts_file(&self) -> &Path {
        self.shared.addresses.hosts_file()
    }

    /// The local directory standing in for PVC `claim` (by the claim's current uid).
    pub async fn claim_dir(&self, namespace: &str, claim: &str) -> Result<PathBuf, Error> {
        let resolver = container::Resolver {
            client: &self.shared.client,
            root: &self.shared.config.root,
            address: Ipv4Addr::LOCALHOST,
        };
        resolver.claim_dir(namespace, claim).await
    }

    /// Process restarts per pod name since the stand-in started.
    pub fn restarts(&self) -> BTreeMap<PodKey, u32> {
        lock(&self.shared.restarts).clone()
    }

    /// Sends `signal` to the process of the pod (as a crash or an OOM kill would end it);
    /// false when none runs.
    pub fn signal(&self, namespace: &str, pod: &str, signal: i32) -> bool {
        let uids: Vec<String> = lock(&self.shared.reports)
            .values()
            .filter(|r| r.key.0 == namespace && r.key.1 == pod)
            .map(|r| r.uid.clone())
            .collect();
        let procs = lock(&self.shared.procs);
        let mut sent = false;
        for proc in uids.iter().filter_map(|u| procs.get(u)) {
            proc.signal(signal);
            sent = true;
        }
        sent
    }

    /// Stops watching and ends every process: SIGTERM, SIGKILL after `grace`. The Pods keep
    /// their last status, as they do when a node's kubelet stops.
    pub async fn shutdown(&self, grace: Duration) {
        self.watch.abort();
        let procs: Vec<process::Proc> = {
            let mut closed = lock(&self.shared.closed);
            *closed = true;
            lock(&self.shared.procs).values().cloned().collect()
        };
        futures::future::join_all(procs.iter().map(|p| p.terminate(grace))).await;
    }

    /// SIGKILLs every process at once (for a drop in a test).
    pub fn kill_all(&self) {
        self.watch.abort();
        *lock(&self.shared.closed) = true;
        for proc in lock(&self.shared.procs).values() {
            proc.signal(libc::SIGKILL);
        }
    }

    /// The pods this stand-in served, for a caller that hands them back (see
    /// [`release`]).
    pub fn served(&self) -> Vec<PodKey> {
        let set: HashSet<PodKey> = lock(&self.shared.reports)
            .values()
            .map(|r| r.key.clone())
            .collect();
        set.into_iter().collect()
    }
}

/// Hands pods back to kwok by removing [`SERVE_LABEL`]: kwok's own stages then delete them
/// at once when asked, so a namespace whose stand-in is gone can still be deleted.
pub async fn release(client: &Client, pods: &[PodKey]) {
    let patch = serde_json::json!({"metadata": {"labels": {SERVE_LABEL: null}}});
    for (ns, name) in pods {
        let api = Api::<Pod>::namespaced(client.clone(), ns);
        let _ = api
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await;
    }
}

/// Watches the pods in scope and routes each version to its uid's supervisor.
async fn watch_pods(shared: Arc<Shared>) {
    let labels = match &shared.config.selector {
        Some(s) if !s.is_empty() => format!("{SERVE_LABEL},{s}"),
        _ => SERVE_LABEL.to_string(),
    };
    let config = watcher::Config::default().labels(&labels);
    let apis: Vec<Api<Pod>> = if shared.config.namespaces.is_empty() {
        vec![Api::all(shared.client.clone())]
    } else {
        (shared.config.namespaces.iter())
            .map(|ns| Api::namespaced(shared.client.clone(), ns))
            .collect()
    };
    let streams = apis
        .into_iter()
        .map(|api| watcher(api, config.clone()).default_backoff().boxed());
    let mut events = futures::stream::select_all(streams);
    let mut supervisors: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    while let Some(event) = events.next().await {
        supervisors.retain(|_, tx| !tx.is_closed());
        match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                let Some(uid) = pod.uid() else { continue };
                listed.insert(uid.clone());
                match supervisors.get(&uid) {
                    Some(tx) => {
                        tx.send_replace(Some(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(pod));
                        tokio::spawn(pod::supervise(shared.clone(), rx));
                        supervisors.insert(uid, tx);
                    }
                }
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(tx) = pod.uid().and_then(|uid| supervisors.remove(&uid)) {
                    tx.send_replace(None);
                }
            }
            Ok(watcher::Event::Init) => listed.clear(),
            // A relist is complete: pods deleted while the watch was down are gone. With
            // several namespaces, only uids some list showed survive.
            Ok(watcher::Event::InitDone) => {
                if shared.config.namespaces.len() <= 1 {
                    supervisors.retain(|uid, tx| {
                        let keep = listed.contains(uid);
                        if !keep {
                            tx.send_replace(None);
                        }
                        keep
                    });
                }
            }
            Err(e) => eprintln!("stand-in: watching pods: {e}"),
        }
    }
}
