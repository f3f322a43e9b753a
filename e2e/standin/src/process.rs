//! Container processes: spawned so none outlives the stand-in, reaped, and stopped as the
//! kubelet stops a container (SIGTERM, SIGKILL after the pod's grace period).

use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;

/// How a process ended; `None` while it runs.
pub type Exit = Option<Result<ExitStatus, String>>;

/// A process the stand-in started.
#[derive(Clone)]
pub struct Proc {
    /// Its pid, also its process group id.
    pub pid: i32,
    /// Set once, when the process has been reaped.
    pub exited: watch::Receiver<Exit>,
}

impl Proc {
    /// Whether the process has not exited yet.
    pub fn running(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// SIGTERM, then SIGKILL after `grace`, to the process's group; waits for the exit.
    pub async fn terminate(&self, grace: Duration) -> Result<ExitStatus, String> {
        let mut exited = self.exited.clone();
        if self.running() {
            self.signal(libc::SIGTERM);
        }
        let grace = tokio::time::timeout(grace, exited.wait_for(Option::is_some));
        if grace.await.is_err() {
            self.signal(libc::SIGKILL);
        }
        let status = exited.wait_for(Option::is_some).await;
        let status = status.map_err(|_| "the process's reaper is gone")?.clone();
        status.unwrap_or_else(|| Err("no exit status".into()))
    }

    /// Sends `sig` to the process's group.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) only takes integers; a negative pid addresses the process group
        // the stand-in created for this process.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-self.pid, sig);
        }
    }
}

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns processes from one thread that lives exactly as long as the stand-in: Linux's
/// parent-death signal fires when the spawning *thread* exits, and tokio's worker threads
/// can come and go, so they are no place to spawn from.
pub struct Spawner {
    requests: mpsc::Sender<Request>,
}

impl Spawner {
    /// Starts the spawning thread; it ends when the spawner is dropped.
    pub fn new() -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("standin-spawner".into())
            .spawn(move || {
                // Children register with the runtime's reaper, which is not on this thread.
                let _runtime = runtime.enter();
                while let Ok((mut cmd, reply)) = incoming.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(Self { requests })
    }

    /// Spawns `cmd` in its own process group, killed if the stand-in dies, and returns it
    /// with a reaper publishing its exit.
    pub fn spawn(&self, mut cmd: Command) -> Result<Proc, String> {
        // Its own group, so a signal reaches the whole process tree.
        cmd.process_group(0).kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It kills
        // the process if the stand-in dies without cleaning up (e.g. SIGKILLed).
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (reply, spawned) = mpsc::channel();
        let gone = "the spawner thread is gone";
        self.requests.send((cmd, reply)).map_err(|_| gone)?;
        let spawned = spawned.recv().map_err(|_| gone)?;
        let mut child = spawned.map_err(|e| format!("spawning: {e}"))?;
        let pid = child.id().ok_or("spawned process has no pid")? as i32;
        let (tx, exited) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await.map_err(|e| e.to_string());
            let _ = tx.send(Some(status));
        });
        Ok(Proc { pid, exited })
    }
}
