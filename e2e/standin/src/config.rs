//! What a stand-in serves and how: the namespaces, the images, the start and restart limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::registry::Registry;

/// What a stand-in serves and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespaces served; empty serves every namespace.
    pub namespaces: Vec<String>,
    /// A label selector ANDed with [`SERVE_LABEL`], if any.
    pub selector: Option<String>,
    /// Holds `logs/`, `volumes/`, `pods/`, the hosts file and the status file.
    pub root: PathBuf,
    /// The images it can run.
    pub registry: Registry,
    /// Containers starting at once: a start holds its slot until Ready (or
    /// [`Config::start_window`] passes), so slow JVM starts on few cores do not pile up.
    pub max_starting: usize,
    /// How long one start may hold its slot.
    pub start_window: Duration,
    /// The first restart delay after an exit; it doubles up to five minutes, as the
    /// kubelet's CrashLoopBackOff (whose first delay is 10 s).
    pub restart_backoff: Duration,
}

impl Config {
    /// Defaults for serving `namespaces` from `root` with `registry`.
    pub fn new(namespaces: Vec<String>, root: PathBuf, registry: Registry) -> Self {
        Self {
            namespaces,
            selector: None,
            root,
            registry,
            max_starting: 2,
            start_window: Duration::from_secs(180),
            restart_backoff: Duration::from_secs(10),
        }
    }
}
