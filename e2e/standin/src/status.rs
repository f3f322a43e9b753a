//! What the stand-in writes: the Pod's status as the kubelet would report it, and the
//! `status` table of `e2e/pods.sh status`.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::address::PodKey;

/// One served pod as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodReport {
    /// Namespace and name.
    pub key: PodKey,
    /// Its uid.
    pub uid: String,
    /// The container's image.
    pub image: String,
    /// `Running`, `Waiting: <reason>`, `Terminating`, or `UnknownImage` (left as kwok has it).
    pub state: String,
    /// Whether the container is Ready.
    pub ready: bool,
    /// The container's restart count.
    pub restarts: i32,
    /// The address its process binds.
    pub address: Option<Ipv4Addr>,
    /// The process id while it runs.
    pub pid: Option<i32>,
}

/// A container's state, as `containerStatuses[].state` spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not running: why, and details.
    Waiting {
        /// `ContainerCreating`, `CrashLoopBackOff`, an error reason.
        reason: String,
        /// Details.
        message: String,
    },
    /// Running since then (RFC 3339).
    Running {
        /// Start time.
        started_at: String,
    },
    /// Ended.
    Terminated(Terminated),
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// Exit code (128 + signal for a signal, as the kubelet reports).
    pub exit_code: i32,
    /// `Completed`, `Error`, or why the stand-in ended it.
    pub reason: String,
    /// Start time.
    pub started_at: String,
    /// End time.
    pub finished_at: String,
}

/// Everything the stand-in reports about a pod's one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// Current state.
    pub state: State,
    /// How the previous process ended.
    pub last_state: Option<Terminated>,
    /// Ready as its readiness probe says.
    pub ready: bool,
    /// Started as its startup probe says.
    pub started: bool,
    /// Restarts so far.
    pub restart_count: i32,
    /// When `ready` last changed (RFC 3339).
    pub ready_since: String,
}

/// Now, as the API's timestamps spell it.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn terminated(t: &Terminated) -> Value {
    json!({"terminated": {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "startedAt": t.started_at,
        "finishedAt": t.finished_at,
    }})
}

fn state(s: &State) -> Value {
    match s {
        State::Waiting { reason, message } => {
            json!({"waiting": {"reason": reason, "message": message}})
        }
        State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
        State::Terminated(t) => terminated(t),
    }
}

/// The strategic-merge status patch for the pod `uid` with container `c`: conditions merge
/// by type, so kwok's `Initialized` and `PodScheduled` stay. The uid makes the patch fail
/// on a newer pod of the same name.
pub fn patch(uid: &str, c: &Container) -> Value {
    let ready = if c.ready { "True" } else { "False" };
    let reason = (!c.ready).then_some("ContainersNotReady");
    let message = (!c.ready).then(|| format!("containers with unready status: [{}]", c.name));
    let condition = |kind: &str| {
        json!({
            "type": kind,
            "status": ready,
            "lastTransitionTime": c.ready_since,
            "reason": reason,
            "message": message,
        })
    };
    let mut status = json!({
        "name": c.name,
        "image": c.image,
        "imageID": "",
        "ready": c.ready,
        "started": c.started,
        "restartCount": c.restart_count,
        "state": state(&c.state),
    });
    if let Some(last) = &c.last_state {
        status["lastState"] = terminated(last);
    }
    json!({
        "metadata": {"uid": uid},
        "status": {
            "phase": "Running",
            "conditions": [condition("Ready"), condition("ContainersReady")],
            "containerStatuses": [status],
        }
    })
}

/// The served pods as a table, one line each.
pub fn table(pods: &[PodReport]) -> String {
    let mut rows = vec![[
        "NAMESPACE".to_string(),
        "POD".into(),
        "STATE".into(),
        "READY".into(),
        "RESTARTS".into(),
        "ADDRESS".into(),
        "PID".into(),
        "IMAGE".into(),
    ]];
    let mut pods = pods.to_vec();
    pods.sort_by(|a, b| a.key.cmp(&b.key));
    for p in pods {
        rows.push([
            p.key.0.clone(),
            p.key.1.clone(),
            p.state.clone(),
            p.ready.to_string(),
            p.restarts.to_string(),
            p.address.map_or("-".into(), |a| a.to_string()),
            p.pid.map_or("-".into(), |pid| pid.to_string()),
            p.image.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out += line.join("   ").trim_end();
        out += "\n";
    }
    out
}
