//! The decision stage (pure): from the spec and what was observed, the StatefulSet's shape
//! (replicas and update partition), the disruption budget, where a rollout or scale-down
//! stands, and the Events its transitions deserve.
//!
//! Precedence, highest first:
//! 1. `spec.paused`: nothing is applied, so nothing is decided;
//! 2. a hold (`super::hold`): a reset between its first and last step, or `spec.suspend`,
//!    keeps the app at zero instances; a rollout asked meanwhile reaches every pod at once
//!    when they start again, and a reset resumes no rollout step;
//! 3. a rollout: a new pod template reaches the pods one at a time (`rollout`), and a
//!    scale-down waits for it;
//! 4. scaling: up at once (the new pods start as warm-up replicas), down one instance at a
//!    time once the app has settled (`scaling`).
//!
//! Each step waits for the app to settle (`settled`): a step never starts while another
//! instance restores.

pub mod disruption;
pub mod rollout;
pub mod scaling;
pub mod settled;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use self::rollout::Progress;
use self::settled::{Wait, ordinal, unsettled};
use super::hold::Hold;
use super::kafka::KafkaOutcome;
use super::observe::Observed;
use super::verdict::Verdict;
use crate::crd::{RolloutStatus, RolloutStrategy, StepTimeoutAction, StreamApp, condition};
use crate::resources::app_name;
use crate::resources::pdb::Budget;
use crate::resources::statefulset::{Shape, TEMPLATE_HASH_ANNOTATION};

/// What the decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The app, with the status it had before this reconcile.
    pub app: &'a StreamApp,
    /// The cluster as observed.
    pub observed: &'a Observed,
    /// The digest of the pod template built from the spec.
    pub template_hash: &'a str,
    /// The Kafka step's outcome; `None` when Kafka checks are off.
    pub kafka: Option<&'a KafkaOutcome>,
    /// Now.
    pub now: Timestamp,
    /// What holds the app at zero instances, if anything.
    pub hold: Option<&'a Hold>,
}

/// An Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Normal or Warning.
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
}

/// What the reconcile applies and reports beyond the spec alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The StatefulSet's replicas and partition.
    pub shape: Shape,
    /// The PodDisruptionBudget.
    pub budget: Budget,
    /// `status.rollout`: a rollout or scale-down under way.
    pub rollout: Option<RolloutStatus>,
    /// The Progressing verdict, when the decision has one to give.
    pub progressing: Option<Verdict>,
    /// Events on transitions.
    pub notices: Vec<Notice>,
    /// When the decision changes by itself (a step timeout or the restore allowance).
    pub next_look: Option<Duration>,
}

/// A step under way: its name ("update wc-2"), what it waits for, and the rollout figures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: String,
    wait: Option<Wait>,
    scale_down: bool,
    /// The step starts with this reconcile: its clock starts afresh.
    started: bool,
}

/// Decides the StatefulSet's shape and the disruption budget for `facts`.
pub fn decide(facts: &Facts) -> Decision {
    let app = facts.app;
    let timeout = step_timeout(app);
    let previous = app.status.as_ref().and_then(|s| s.rollout.as_ref());
    let restoring = facts
        .kafka
        .and_then(|k| k.status.as_ref())
        .and_then(settled::app_restoring);
    let (budget, mut notices, budget_expiry) =
        disruption::budget(facts, restoring.as_deref(), timeout);

    if let Some(hold) = facts.hold {
        return Decision {
            shape: Shape {
                replicas: 0,
                partition: restore_aware(app).then_some(0),
                held: true,
            },
            budget,
            rollout: None,
            progressing: Some(hold.progressing()),
            notices,
            next_look: budget_expiry,
        };
    }

    let Some(sts) = &facts.observed.statefulset else {
        // A new app: every pod starts at once, at the only revision there is.
        return Decision {
            shape: Shape {
                replicas: app.spec.replicas,
                partition: restore_aware(app).then_some(0),
                held: false,
            },
            budget,
            rollout: None,
            progressing: None,
            notices,
            next_look: budget_expiry,
        };
    };
    let name = app_name(app);
    let mut pods: Vec<&Pod> = facts.observed.pods.iter().collect();
    pods.sort_by_key(|p| std::cmp::Reverse(ordinal(&name, p)));
    let live_replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let template_changed = sts
        .annotations()
        .get(TEMPLATE_HASH_ANNOTATION)
        .is_none_or(|h| h != facts.template_hash);
    let settled = || unsettled(&name, &pods, live_replicas, facts.kafka);

    // The rollout first: its partition, and the step it is on.
    let (partition, rolling) = if !restore_aware(app) {
        (None, None)
    } else if template_changed {
        // The new template and a partition that holds every pod go in one apply; the steps
        // start once the StatefulSet controller has recorded the new revision.
        let step = Step {
            name: "new revision".into(),
            wait: Some(Wait {
                pod: None,
                what: "the StatefulSet controller to record the new revision".into(),
                blind: false,
            }),
            scale_down: false,
            started: false,
        };
        (Some(live_replicas), Some(step))
    } else {
        let live = rollout::live_partition(sts);
        match rollout::progress(sts, &pods, live_replicas) {
            Progress::Unknown => (Some(live), previous_step(previous)),
            Progress::Done => (Some(0), None),
            Progress::Restarting { ordinal } => {
                let step = Step {
                    name: format!("update {name}-{ordinal}"),
                    wait: Some(rollout::restarting(sts, ordinal)),
                    scale_down: false,
                    started: false,
                };
                (Some(live), Some(step))
            }
            Progress::StepDone { next } => {
                let step = Step {
                    name: format!("update {name}-{next}"),
                    wait: settled()
                        .filter(|w| w.blind || !rollout::free_step(sts, &pods, next, facts.kafka))
                        .map(|w| Wait {
                            what: format!("{} before {name}-{next} restarts", w.what),
                            // An app-wide wait (the group, warm-ups) is still the wait on
                            // the pod the last step restarted.
                            pod: w.pod.or_else(|| {
                                (live < live_replicas).then(|| format!("{name}-{live}"))
                            }),
                            ..w
                        }),
                    scale_down: false,
                    started: false,
                };
                let waiting = step.wait.clone();
                let go = waiting.is_none()
                    || (timed_out(previous, &step.name, facts.now, timeout)
                        && app.spec.rollout.on_step_timeout == StepTimeoutAction::Continue
                        && waiting.is_some_and(|w| !w.blind));
                if go {
                    let started = Step {
                        wait: None,
                        started: true,
                        ..step
                    };
                    (Some(next), Some(started))
                } else {
                    (Some(live), Some(step))
                }
            }
        }
    };

    // Then scaling, which a rollout holds back on the way down.
    let (replicas, scaling) = scaling::replicas(
        &name,
        app.spec.replicas,
        live_replicas,
        rolling.is_some(),
        settled,
    );
    let step = rolling.or(scaling.map(|s| Step {
        name: s.name,
        wait: s.wait,
        scale_down: true,
        started: s.started,
    }));

    let mut next_look = budget_expiry;
    let rollout_status = step.as_ref().map(|step| {
        let since = previous
            .filter(|p| p.step == step.name && !step.started)
            .map(|p| p.since.clone())
            .unwrap_or_else(|| facts.now.to_string());
        let elapsed = since
            .parse::<Timestamp>()
            .ok()
            .map(|t| facts.now.duration_since(t).unsigned_abs())
            .unwrap_or_default();
        let timed_out = step.wait.is_some() && elapsed >= timeout;
        if step.wait.is_some() && !timed_out {
            next_look = Some(next_look.map_or(timeout - elapsed, |n| n.min(timeout - elapsed)));
        }
        let sts_status = sts.status.as_ref();
        let updated = sts_status.and_then(|s| s.updated_replicas).unwrap_or(0);
        let summary = summary(step, updated, live_replicas, replicas, app.spec.replicas);
        RolloutStatus {
            current_revision: sts_status.and_then(|s| s.current_revision.clone()),
            update_revision: sts_status.and_then(|s| s.update_revision.clone()),
            updated_replicas: updated,
            replicas,
            step: step.name.clone(),
            waiting_on: step.wait.as_ref().and_then(|w| w.pod.clone()),
            waiting_for: step.wait.as_ref().map(|w| w.what.clone()),
            since,
            timed_out,
            summary,
        }
    });
    if let Some(r) = &rollout_status
        && r.timed_out
        && !previous.is_some_and(|p| p.step == r.step && p.timed_out)
    {
        notices.push(Notice {
            type_: EventType::Warning,
            reason: "StepTimedOut",
            note: format!(
                "step {:?} not done within {}s: waiting on {}{}; {}",
                r.step,
                timeout.as_secs(),
                r.waiting_on.as_deref().unwrap_or("the app"),
                r.waiting_for
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default(),
                match app.spec.rollout.on_step_timeout {
                    StepTimeoutAction::Hold =>
                        "the rollout holds (spec.rollout.onStepTimeout: Hold)",
                    StepTimeoutAction::Continue =>
                        "the rollout goes on (spec.rollout.onStepTimeout: Continue)",
                }
            ),
        });
    }
    let progressing = progressing(rollout_status.as_ref(), step.as_ref(), restoring.as_deref());
    Decision {
        shape: Shape {
            replicas,
            partition,
            held: false,
        },
        budget,
        rollout: rollout_status,
        progressing,
        notices,
        next_look,
    }
}

/// Whether the operator steps rollouts itself.
fn restore_aware(app: &StreamApp) -> bool {
    app.spec.rollout.strategy == RolloutStrategy::RestoreAware
}

/// `spec.rollout.stepTimeoutSeconds` as a duration.
pub fn step_timeout(app: &StreamApp) -> Duration {
    Duration::from_secs(app.spec.rollout.step_timeout_seconds.max(1) as u64)
}

/// The step the previous status names, when the live StatefulSet cannot tell a newer one.
fn previous_step(previous: Option<&RolloutStatus>) -> Option<Step> {
    previous.map(|p| Step {
        name: p.step.clone(),
        wait: Some(Wait {
            pod: p.waiting_on.clone(),
            what: "the StatefulSet controller to catch up".into(),
            blind: false,
        }),
        scale_down: p.step.starts_with("remove "),
        started: false,
    })
}

/// Whether the step named `step` has waited longer than `timeout` by the previous status.
fn timed_out(
    previous: Option<&RolloutStatus>,
    step: &str,
    now: Timestamp,
    timeout: Duration,
) -> bool {
    previous
        .filter(|p| p.step == step)
        .and_then(|p| p.since.parse::<Timestamp>().ok())
        .is_some_and(|since| now.duration_since(since).unsigned_abs() >= timeout)
}

/// The one line `kubectl get` shows.
fn summary(step: &Step, updated: i32, live: i32, replicas: i32, want: i32) -> String {
    let head = if step.scale_down {
        format!("{live}->{want} instances")
    } else {
        format!("{updated}/{replicas} updated")
    };
    match &step.wait {
        Some(w) => format!(
            "{head}; {}{}",
            w.pod
                .as_deref()
                .map(|p| format!("{p}: "))
                .unwrap_or_default(),
            w.what
        ),
        None => format!("{head}; {}", step.name),
    }
}

/// The Progressing verdict: a step under way, a held step, or warm-up replicas catching up.
fn progressing(
    status: Option<&RolloutStatus>,
    step: Option<&Step>,
    restoring: Option<&str>,
) -> Option<Verdict> {
    let Some((status, step)) = status.zip(step) else {
        return restoring.map(|what| {
            Verdict::new(
                condition::PROGRESSING,
                true,
                "WarmingUp",
                format!("{what}; the app is not yet at full speed"),
            )
        });
    };
    let message = status.summary.clone();
    Some(if status.timed_out {
        Verdict::new(condition::PROGRESSING, false, "StepTimedOut", message)
    } else if step.scale_down {
        let reason = match &step.wait {
            Some(_) if restoring.is_some() => "ScaleDownWaitingForRestore",
            Some(w) if w.what.contains("restor") || w.what.contains("warm-up") => {
                "ScaleDownWaitingForRestore"
            }
            _ => "ScalingDown",
        };
        Verdict::new(condition::PROGRESSING, true, reason, message)
    } else if step.wait.as_ref().is_some_and(|w| w.blind) {
        Verdict::new(
            condition::PROGRESSING,
            true,
            "RolloutWaitingForKafka",
            message,
        )
    } else {
        Verdict::new(condition::PROGRESSING, true, "RollingOut", message)
    })
}

#[cfg(test)]
mod tests;
