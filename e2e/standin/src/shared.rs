//! What the pod supervisors share: the client, the settings, addresses, the spawner, the
//! start slots, and the reports `status` lists.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kube::Client;
use tokio::sync::Semaphore;

use crate::address::{Addresses, PodKey};
use crate::config::Config;
use crate::process::{Proc, Spawner};
use crate::status::{self, PodReport};

/// State the pod supervisors share.
pub struct Shared {
    pub client: Client,
    pub config: Config,
    pub addresses: Addresses,
    pub spawner: Spawner,
    pub starting: Arc<Semaphore>,
    /// One process per pod name at a time: a replacement waits for its predecessor's exit.
    pub names: Mutex<HashMap<PodKey, Arc<tokio::sync::Mutex<()>>>>,
    /// The latest report of each served pod, by uid.
    pub reports: Mutex<BTreeMap<String, PodReport>>,
    /// Process restarts per pod name, over all its uids.
    pub restarts: Mutex<BTreeMap<PodKey, u32>>,
    /// Running processes by pod uid.
    pub procs: Mutex<HashMap<String, Proc>>,
    /// Set on shutdown, under the `procs` lock, so nothing starts after it.
    pub closed: Mutex<bool>,
}

impl Shared {
    pub fn name_lock(&self, key: &PodKey) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.names).entry(key.clone()).or_default().clone()
    }

    pub fn report(&self, report: PodReport) {
        let changed = {
            let mut reports = lock(&self.reports);
            let changed = reports.get(&report.uid) != Some(&report);
            reports.insert(report.uid.clone(), report);
            changed
        };
        if changed {
            self.write_status_file();
        }
    }

    pub fn forget(&self, uid: &str) {
        lock(&self.reports).remove(uid);
        self.write_status_file();
    }

    pub fn count_restart(&self, key: &PodKey) {
        *lock(&self.restarts).entry(key.clone()).or_default() += 1;
    }

    /// Whether the stand-in is shutting down: an exit then is its doing, not a crash.
    pub fn is_closed(&self) -> bool {
        *lock(&self.closed)
    }

    /// Registers a started process unless the stand-in is shutting down.
    pub fn add_proc(&self, uid: &str, proc: Proc) -> bool {
        let closed = lock(&self.closed);
        if *closed {
            proc.signal(libc::SIGKILL);
            return false;
        }
        lock(&self.procs).insert(uid.to_string(), proc);
        true
    }

    pub fn remove_proc(&self, uid: &str) {
        lock(&self.procs).remove(uid);
    }

    pub fn log_path(&self, key: &PodKey) -> PathBuf {
        self.config
            .root
            .join("logs")
            .join(&key.0)
            .join(format!("{}.log", key.1))
    }

    pub fn write_status_file(&self) {
        let text = status::table(&lock(&self.reports).values().cloned().collect::<Vec<_>>());
        let file = self.config.root.join("status");
        let tmp = file.with_extension("tmp");
        let _ = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &file));
    }
}

/// A poisoned lock only means a supervisor panicked; its data is still the best we have.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
