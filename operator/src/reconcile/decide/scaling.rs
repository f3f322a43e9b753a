//! Safe scaling: up at once, down one instance at a time.
//!
//! A scale-up adds every new instance together: Kafka Streams gives them warm-up replicas
//! (KIP-441) and moves tasks only once those caught up, so nothing restores in the way of
//! processing. A scale-down moves the removed instance's tasks to the others, which restore
//! them unless a standby was warm: removing one at a time, and only from a settled app, keeps
//! those restores from stacking. Scaling to zero stops the app at once.

use super::settled::Wait;

/// A scale-down step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleDown {
    /// "remove wc-2".
    pub name: String,
    /// What the step waits for before the instance is removed.
    pub wait: Option<Wait>,
    /// The instance is removed with this reconcile.
    pub started: bool,
}

/// The replicas of `statefulset` when the spec wants `desired` and it runs `live`, a rollout is
/// (or is not) `rolling`, and `settled` tells what the app still waits for; with the
/// scale-down step under way, if any.
pub fn replicas(
    statefulset: &str,
    desired: i32,
    live: i32,
    rolling: bool,
    settled: impl FnOnce() -> Option<Wait>,
) -> (i32, Option<ScaleDown>) {
    // Scaling to zero stops the app: no instance is left to take tasks over, so there is
    // nothing to step for.
    if desired >= live || desired == 0 {
        return (desired, None);
    }
    let name = format!("remove {statefulset}-{}", live - 1);
    if rolling {
        let wait = Wait {
            pod: None,
            what: "the rollout to finish".into(),
            blind: false,
        };
        return (live, Some(waiting(name, wait)));
    }
    match settled() {
        None => (
            live - 1,
            Some(ScaleDown {
                name,
                wait: None,
                started: true,
            }),
        ),
        Some(wait) => (live, Some(waiting(name, wait))),
    }
}

fn waiting(name: String, wait: Wait) -> ScaleDown {
    ScaleDown {
        name,
        wait: Some(wait),
        started: false,
    }
}
