//! One served pod from bind to removal, as the kubelet runs it: start its process, probe it,
//! restart it with backoff after an exit or a failed liveness probe (`restartPolicy: Always`),
//! and on deletion stop it (SIGTERM, the grace period, SIGKILL) before removing the Pod.

use std::net::Ipv4Addr;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use crate::address::{PodKey, key};
use crate::container::{Resolved, Resolver};
use crate::error::Error;
use crate::probe::Prober;
use crate::process::Proc;
use crate::registry::{Known, Launch};
use crate::shared::Shared;
use crate::status::PodReport;
use crate::status::{self, State, Terminated};

/// Host variables a container image would provide; everything else comes from the pod.
const HOST_ENV: &[&str] = &["PATH", "JAVA_HOME", "LANG", "TMPDIR", "HOME"];
/// The kubelet's cap on CrashLoopBackOff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long starts its next backoff from the beginning again.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: i64 = 30;

/// Why a container's run ended.
enum Outcome {
    /// The process exited by itself.
    Exited(Result<ExitStatus, String>),
    /// A liveness or startup probe failed: the container is killed and restarted.
    Unhealthy(String),
    /// The Pod is being deleted.
    Deleting,
    /// The Pod is gone (force-deleted): kill at once.
    Gone,
}

/// The supervisor of one pod uid; returns once the pod's process has ended and the Pod is
/// removed, or the Pod is gone.
pub(crate) async fn supervise(shared: Arc<Shared>, pods: watch::Receiver<Option<Pod>>) {
    let mut sup = match Supervisor::new(shared, pods) {
        Some(s) => s,
        None => return,
    };
    sup.run().await;
    sup.shared.forget(&sup.uid);
}

struct Supervisor {
    shared: Arc<Shared>,
    pods: watch::Receiver<Option<Pod>>,
    key: PodKey,
    uid: String,
    report: status::Container,
    address: Option<Ipv4Addr>,
    pid: Option<i32>,
    unknown: bool,
}

impl Supervisor {
    fn new(shared: Arc<Shared>, pods: watch::Receiver<Option<Pod>>) -> Option<Self> {
        let pod = pods.borrow().clone()?;
        let uid = pod.uid()?;
        let container = pod.spec.as_ref()?.containers.first()?;
        let report = status::Container {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            last_state: None,
            ready: false,
            started: false,
            restart_count: 0,
            ready_since: status::now(),
        };
        Some(Self {
            shared,
            pods,
            key: key(&pod),
            uid,
            report,
            address: None,
            pid: None,
            unknown: false,
        })
    }

    fn pod(&self) -> Option<Pod> {
        self.pods.borrow().clone()
    }

    async fn run(&mut self) {
        // kwok gives the pod its IP once bound; until then nothing may run, and a status
        // written before kwok's would be overwritten by it.
        let pod = loop {
            match self.pod() {
                None => return,
                Some(p) if p.metadata.deletion_timestamp.is_some() => {
                    return self.remove(&p).await;
                }
                Some(p) if p.status.as_ref().is_some_and(|s| s.pod_ip.is_some()) => break p,
                Some(_) => {}
            }
            if self.pods.changed().await.is_err() {
                return;
            }
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let container = spec.containers[0].clone();
        if spec.containers.len() > 1 {
            let e = Error::Unsupported("pods with more than one container".into());
            return self.wait_for_removal(Some(e)).await;
        }
        let image = container.image.clone().unwrap_or_default();
        let Some(known) = self.shared.config.registry.get(&image) else {
            self.unknown = true;
            return self.wait_for_removal(None).await;
        };
        let address = self.shared.addresses.assign(&pod);
        self.address = Some(address);
        self.publish_report();
        // A replacement of the same name waits for its predecessor's process to end.
        let name_lock = self.shared.name_lock(&self.key);
        let _name = name_lock.lock_owned().await;

        let mut backoff = self.shared.config.restart_backoff;
        loop {
            let Some(pod) = self.pod() else { return };
            if pod.metadata.deletion_timestamp.is_some() {
                return self.remove(&pod).await;
            }
            let resolved = match self.prepare(&pod, &container, &known, address).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("stand-in: {}/{}: {e}", self.key.0, self.key.1);
                    self.report.state = State::Waiting {
                        reason: e.reason().into(),
                        message: e.to_string(),
                    };
                    self.write_status().await;
                    match self.wait(backoff).await {
                        Some(pod) => return self.remove(&pod).await,
                        None if self.pod().is_none() => return,
                        None => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let permit = tokio::select! {
                p = self.shared.starting.clone().acquire_owned() => p.ok(),
                deleting = self.until_deleting() => match deleting {
                    Some(pod) => return self.remove(&pod).await,
                    None => return,
                },
            };
            let (proc, cmd_started) = match self.spawn(resolved.1) {
                Ok(p) => p,
                Err(e) => {
                    self.report.state = State::Waiting {
                        reason: e.reason().into(),
                        message: e.to_string(),
                    };
                    self.write_status().await;
                    drop(permit);
                    if let Some(pod) = self.wait(backoff).await {
                        return self.remove(&pod).await;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let started_at = status::now();
            let outcome = self
                .run_container(&container, &resolved.0, &proc, permit, &started_at)
                .await;
            let grace = grace(&pod);
            let status = match outcome {
                Outcome::Deleting => {
                    let status = proc.terminate(grace_of_deletion(&self.pod())).await;
                    self.ended(&proc, &started_at, status, None);
                    return self.remove_after_stop().await;
                }
                Outcome::Gone => {
                    proc.signal(libc::SIGKILL);
                    let _ = proc.terminate(Duration::ZERO).await;
                    self.shared.remove_proc(&self.uid);
                    return;
                }
                // Killed by the stand-in's own shutdown: no restart, and none counted.
                Outcome::Exited(_) if self.shared.is_closed() => {
                    self.shared.remove_proc(&self.uid);
                    return;
                }
                Outcome::Exited(status) => self.ended(&proc, &started_at, status, None),
                Outcome::Unhealthy(why) => {
                    eprintln!("stand-in: {}/{}: {why}; restarting", self.key.0, self.key.1);
                    let status = proc.terminate(grace).await;
                    self.ended(&proc, &started_at, status, Some(why))
                }
            };
            if cmd_started.elapsed() >= BACKOFF_RESET {
                backoff = self.shared.config.restart_backoff;
            }
            self.report.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {}s restarting failed container={} ({status})",
                    backoff.as_secs(),
                    container.name
                ),
            };
            self.write_status().await;
            match self.wait(backoff).await {
                Some(pod) => return self.remove(&pod).await,
                None if self.pod().is_none() => return,
                None => {}
            }
            if self.shared.is_closed() {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            self.report.restart_count += 1;
            self.shared.count_restart(&self.key);
        }
    }

    /// Resolves the container and builds its command line.
    async fn prepare(
        &self,
        pod: &Pod,
        container: &Container,
        known: &Known,
        address: Ipv4Addr,
    ) -> Result<(Resolved, tokio::process::Command), Error> {
        let launch = known.launch().await?;
        let pod_dir = self.shared.config.root.join("pods").join(&self.uid);
        let resolver = Resolver {
            client: &self.shared.client,
            root: &self.shared.config.root,
            address,
        };
        let resolved = resolver.resolve(pod, container, &known.entry.env).await?;
        let mut cmd = match &launch {
            Launch::Jvm { options, target } => {
                let mut cmd = tokio::process::Command::new("java");
                cmd.args(options)
                    .arg(format!(
                        "-Djdk.net.hosts.file={}",
                        self.shared.addresses.hosts_file().display()
                    ))
                    .arg(format!("-Djava.io.tmpdir={}", pod_dir.display()))
                    .args(target)
                    .args(&resolved.args);
                cmd
            }
            Launch::Host { entrypoint } => {
                let line = if container.command.as_ref().is_some_and(|c| !c.is_empty()) {
                    resolved.command.clone()
                } else {
                    entrypoint.iter().chain(&resolved.args).cloned().collect()
                };
                let (program, args) = line.split_first().ok_or_else(|| {
                    Error::Unsupported("a host image needs a command or an entrypoint".into())
                })?;
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                cmd
            }
        };
        std::fs::create_dir_all(&pod_dir)
            .map_err(|e| Error::Local(format!("{}: {e}", pod_dir.display())))?;
        cmd.env_clear()
            .envs(
                HOST_ENV
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .envs(resolved.env.iter().cloned())
            .current_dir(&pod_dir)
            .stdin(Stdio::null());
        Ok((resolved, cmd))
    }

    /// Starts the process with its log (the previous one kept as `.previous.log`).
    fn spawn(&mut self, mut cmd: tokio::process::Command) -> Result<(Proc, Instant), Error> {
        let local = |e: std::io::Error| Error::Local(format!("log of {}: {e}", self.key.1));
        let log_path = self.shared.log_path(&self.key);
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(local)?;
        }
        if log_path.exists() {
            std::fs::rename(&log_path, log_path.with_extension("previous.log")).map_err(local)?;
        }
        let header = format!(
            "# stand-in: pod {}/{} uid {} address {} restart {}\n",
            self.key.0,
            self.key.1,
            self.uid,
            self.address.map_or("-".into(), |a| a.to_string()),
            self.report.restart_count
        );
        std::fs::write(&log_path, header).map_err(local)?;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(local)?;
        let log_err = log.try_clone().map_err(local)?;
        cmd.stdout(log).stderr(log_err);
        let proc = self.shared.spawner.spawn(cmd).map_err(Error::Local)?;
        if !self.shared.add_proc(&self.uid, proc.clone()) {
            return Err(Error::Local("the stand-in is shutting down".into()));
        }
        self.pid = Some(proc.pid);
        Ok((proc, Instant::now()))
    }

    /// Probes the running container until it ends or the Pod goes away.
    async fn run_container(
        &mut self,
        container: &Container,
        resolved: &Resolved,
        proc: &Proc,
        permit: Option<OwnedSemaphorePermit>,
        started_at: &str,
    ) -> Outcome {
        let address = self.address.unwrap_or(Ipv4Addr::LOCALHOST);
        let began = Instant::now();
        let prober = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref()
                .map(|p| Prober::new(p, container, address, &resolved.env, began))
        };
        let mut startup = prober(&container.startup_probe);
        let mut liveness = prober(&container.liveness_probe);
        let mut readiness = prober(&container.readiness_probe);
        let mut permit = permit;
        let window = began + self.shared.config.start_window;
        self.report.state = State::Running {
            started_at: started_at.to_string(),
        };
        self.report.started = startup.is_none();
        self.set_ready(self.report.started && readiness.is_none());
        self.write_status().await;
        if self.report.ready {
            permit = None;
        }
        let mut exited = proc.exited.clone();
        loop {
            let mut next = window.max(Instant::now() + Duration::from_secs(3600));
            if permit.is_some() {
                next = next.min(window);
            }
            if !self.report.started {
                next = next.min(startup.as_ref().map_or(next, |p| p.next));
            } else {
                for p in [&liveness, &readiness].into_iter().flatten() {
                    next = next.min(p.next);
                }
            }
            tokio::select! {
                status = exit_of(&mut exited) => return Outcome::Exited(status),
                changed = self.pods.changed() => {
                    if changed.is_err() {
                        return Outcome::Gone;
                    }
                    match self.pod() {
                        None => return Outcome::Gone,
                        Some(p) if p.metadata.deletion_timestamp.is_some() => return Outcome::Deleting,
                        Some(_) => {}
                    }
                }
                () = tokio::time::sleep_until(next) => {
                    let now = Instant::now();
                    if permit.is_some() && now >= window {
                        permit = None;
                    }
                    if !self.report.started {
                        if let Some(p) = startup.as_mut().filter(|p| p.next <= now) {
                            match p.run().await {
                                Some(true) => {
                                    self.report.started = true;
                                    // The other probes' initial delays count from the start.
                                    if readiness.is_none() {
                                        self.set_ready(true);
                                    }
                                    self.write_status().await;
                                }
                                Some(false) => {
                                    let why = p.last_error.clone().unwrap_or_default();
                                    return Outcome::Unhealthy(format!("Startup probe failed: {why}"));
                                }
                                None => {}
                            }
                        }
                        continue;
                    }
                    if let Some(p) = liveness.as_mut().filter(|p| p.next <= now)
                        && p.run().await == Some(false)
                    {
                        let why = p.last_error.clone().unwrap_or_default();
                        return Outcome::Unhealthy(format!("Liveness probe failed: {why}"));
                    }
                    if let Some(p) = readiness.as_mut().filter(|p| p.next <= now)
                        && let Some(ready) = p.run().await
                    {
                        if !ready {
                            let why = p.last_error.clone().unwrap_or_default();
                            eprintln!("stand-in: {}/{}: Readiness probe failed: {why}", self.key.0, self.key.1);
                        }
                        self.set_ready(ready);
                        self.write_status().await;
                    }
                    if self.report.ready {
                        permit = None;
                    }
                }
            }
        }
    }

    fn set_ready(&mut self, ready: bool) {
        if self.report.ready != ready {
            self.report.ready = ready;
            self.report.ready_since = status::now();
        }
    }

    /// Records how the process ended; returns a one-line summary.
    fn ended(
        &mut self,
        proc: &Proc,
        started_at: &str,
        status: Result<ExitStatus, String>,
        why: Option<String>,
    ) -> String {
        use std::os::unix::process::ExitStatusExt;
        self.shared.remove_proc(&self.uid);
        debug_assert!(!proc.running());
        self.pid = None;
        let (code, summary) = match &status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => (c, format!("exit code {c}")),
                (None, Some(sig)) => (128 + sig, format!("signal {sig}")),
                _ => (-1, s.to_string()),
            },
            Err(e) => (-1, e.clone()),
        };
        let reason = match (&why, code) {
            (Some(_), _) => "Unhealthy".to_string(),
            (None, 0) => "Completed".to_string(),
            (None, _) => "Error".to_string(),
        };
        let last = Terminated {
            exit_code: code,
            reason,
            started_at: started_at.to_string(),
            finished_at: status::now(),
        };
        self.report.last_state = Some(last.clone());
        self.report.state = State::Terminated(last);
        self.set_ready(false);
        summary
    }

    /// Waits `delay` unless the Pod starts deleting (returned) or goes away (`None`).
    async fn wait(&mut self, delay: Duration) -> Option<Pod> {
        tokio::select! {
            () = tokio::time::sleep(delay) => None,
            deleting = self.until_deleting() => deleting,
        }
    }

    /// Resolves once the Pod is being deleted (`Some`) or gone (`None`).
    async fn until_deleting(&mut self) -> Option<Pod> {
        loop {
            match self.pod() {
                None => return None,
                Some(p) if p.metadata.deletion_timestamp.is_some() => return Some(p),
                Some(_) => {}
            }
            if self.pods.changed().await.is_err() {
                return None;
            }
        }
    }

    /// A pod the stand-in does not run: listed by `status`, removed when deleted.
    async fn wait_for_removal(&mut self, error: Option<Error>) {
        if let Some(e) = &error {
            eprintln!("stand-in: {}/{}: {e}", self.key.0, self.key.1);
            self.report.state = State::Waiting {
                reason: e.reason().into(),
                message: e.to_string(),
            };
            self.write_status().await;
        }
        self.publish_report();
        if let Some(pod) = self.until_deleting().await {
            self.remove(&pod).await;
        }
    }

    /// Removes a deleting Pod whose process is not running.
    async fn remove(&mut self, _pod: &Pod) {
        self.remove_after_stop().await;
    }

    /// The last step of a deletion, after the process ended: the Pod goes away (grace 0,
    /// only this uid).
    async fn remove_after_stop(&mut self) {
        self.publish_report();
        // The pod's log is its previous one now: a replacement's log starts empty.
        let log = self.shared.log_path(&self.key);
        if log.exists() {
            let _ = std::fs::rename(&log, log.with_extension("previous.log"));
        }
        let api = Api::<Pod>::namespaced(self.shared.client.clone(), &self.key.0);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&self.key.1, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => eprintln!("stand-in: removing {}/{}: {e}", self.key.0, self.key.1),
        }
    }

    /// Writes the container's status to the Pod (and to the `status` table).
    async fn write_status(&mut self) {
        self.publish_report();
        let api = Api::<Pod>::namespaced(self.shared.client.clone(), &self.key.0);
        let patch = status::patch(&self.uid, &self.report);
        let result = api
            .patch_status(
                &self.key.1,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await;
        match result {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => {}
            Err(e) => eprintln!("stand-in: status of {}/{}: {e}", self.key.0, self.key.1),
        }
    }

    fn publish_report(&self) {
        let deleting = self
            .pod()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        let state = if self.unknown {
            "UnknownImage".to_string()
        } else if deleting {
            "Terminating".to_string()
        } else {
            match &self.report.state {
                State::Running { .. } => "Running".to_string(),
                State::Waiting { reason, .. } => format!("Waiting:{reason}"),
                State::Terminated(t) => format!("Terminated:{}", t.reason),
            }
        };
        self.shared.report(PodReport {
            key: self.key.clone(),
            uid: self.uid.clone(),
            image: self.report.image.clone(),
            state,
            ready: self.report.ready,
            restarts: self.report.restart_count,
            address: self.address,
            pid: self.pid,
        });
    }
}

/// The process's exit status once it has exited.
async fn exit_of(exited: &mut watch::Receiver<crate::process::Exit>) -> Result<ExitStatus, String> {
    match exited.wait_for(Option::is_some).await {
        Ok(status) => status
            .clone()
            .unwrap_or_else(|| Err("no exit status".into())),
        Err(_) => Err("the process's reaper is gone".into()),
    }
}

/// The pod's grace period for a kill that is not a deletion (a failed liveness probe).
fn grace(pod: &Pod) -> Duration {
    let secs = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE);
    Duration::from_secs(secs.max(0) as u64)
}

/// The grace period a deletion asked for (the API stores it on the Pod).
fn grace_of_deletion(pod: &Option<Pod>) -> Duration {
    let Some(pod) = pod else {
        return Duration::ZERO;
    };
    match pod.metadata.deletion_grace_period_seconds {
        Some(secs) => Duration::from_secs(secs.max(0) as u64),
        None => grace(pod),
    }
}
