//! Reporting what a reconcile found: the status (pure, with unchanged conditions keeping their
//! transition time), whether it must be written, the write, and Events on the transitions a
//! user cares about.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kstreams_kafka::KafkaStatus;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use super::context::Context;
use super::judge::{ProcessingReason, Verdict};
use super::kafka::STATUS_HEARTBEAT;
use super::observe::Observed;
use crate::crd::{ResetStatus, RolloutStatus, StreamApp, StreamAppStatus, condition};
use crate::error::{Result, kube_err};
use crate::resources::{FIELD_MANAGER, selector_string};

/// The full status: conditions keep their `lastTransitionTime` unless their status changed,
/// so an unchanged world yields an identical status (and no write).
pub fn status(
    app: &StreamApp,
    observed: &Observed,
    verdicts: &[Verdict],
    kafka: Option<KafkaStatus>,
    rollout: Option<RolloutStatus>,
    reset: Option<ResetStatus>,
    now: &Time,
) -> StreamAppStatus {
    let old = app.status.as_ref();
    let generation = app.metadata.generation;
    let conditions = verdicts
        .iter()
        .map(|v| {
            let status = if v.status { "True" } else { "False" };
            let previous = old
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == v.type_))
                .filter(|c| c.status == status);
            Condition {
                type_: v.type_.to_string(),
                status: status.to_string(),
                reason: v.reason.clone(),
                message: v.message.clone(),
                observed_generation: generation,
                last_transition_time: previous
                    .map(|c| c.last_transition_time.clone())
                    .unwrap_or_else(|| now.clone()),
            }
        })
        .collect();
    let sts_status = observed
        .statefulset
        .as_ref()
        .and_then(|s| s.status.as_ref());
    StreamAppStatus {
        observed_generation: generation,
        replicas: sts_status.map(|s| s.replicas).unwrap_or(0),
        ready_replicas: sts_status.and_then(|s| s.ready_replicas).unwrap_or(0),
        selector: Some(selector_string(app)),
        application_id: Some(app.application_id()),
        kafka,
        rollout,
        reset,
        lost_pods: observed.lost_pods.pods.clone(),
        conditions,
    }
}

/// Whether the status must be written: anything changed but the time of the Kafka check, or
/// that time is older than the heartbeat. This keeps a quiet app from being rewritten on every
/// Kafka refresh while `lastChecked` stays honest within the heartbeat.
pub fn needs_write(old: Option<&StreamAppStatus>, new: &StreamAppStatus) -> bool {
    let Some(old) = old else { return true };
    let checked = |s: &StreamAppStatus| s.kafka.as_ref().map(|k| k.last_checked.clone());
    let mut aligned = new.clone();
    if let (Some(k), Some(at)) = (aligned.kafka.as_mut(), checked(old)) {
        k.last_checked = at;
    }
    if &aligned != old {
        return true;
    }
    checked(old)
        .and_then(|at| at.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|at| {
            let age = k8s_openapi::jiff::Timestamp::now().duration_since(at);
            age.unsigned_abs() > STATUS_HEARTBEAT
        })
        .unwrap_or(false)
}

/// Writes the status; returns the resourceVersion the write produced.
pub async fn write_status(
    ctx: &Context,
    ns: &str,
    app: &StreamApp,
    status: &StreamAppStatus,
) -> Result<String> {
    let patch = serde_json::json!({
        "apiVersion": StreamApp::api_version(&()),
        "kind": StreamApp::kind(&()),
        "status": status,
    });
    let name = app.name_any();
    let written = Api::<StreamApp>::namespaced(ctx.client.clone(), ns)
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await
        .map_err(kube_err("patch status", "StreamApp", &name))?;
    Ok(written.resource_version().unwrap_or_default())
}

/// Publishes an Event on `app`; a failure is logged, never fails the reconcile.
pub async fn publish(ctx: &Context, app: &StreamApp, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(&note)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
        warn!(error = %e, "publishing event failed");
    }
}

/// Events on the transitions a user cares about: becoming Degraded (with why), recovering,
/// becoming Ready, and ceasing (with why) and resuming to process.
pub async fn publish_transitions(ctx: &Context, app: &StreamApp, verdicts: &[Verdict]) {
    let was = |t: &str| {
        app.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
            .map(|c| (c.status == "True", c.reason.clone()))
    };
    let message_was = |t: &str| {
        app.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
            .map(|c| c.message.as_str())
    };
    for v in verdicts {
        let before = was(v.type_);
        if before.as_ref().map(|(s, r)| (*s, r.as_str())) == Some((v.status, v.reason.as_str()))
            && !more_lost(v, message_was(v.type_))
        {
            continue;
        }
        let (type_, reason, note) = match (v.type_, v.status) {
            // A refused group config has its own Event, published when it is news.
            (condition::DEGRADED, true) if !super::group_config::is_reason(&v.reason) => {
                (EventType::Warning, v.reason.as_str(), v.message.clone())
            }
            (condition::DEGRADED, false) if before.as_ref().is_some_and(|(s, _)| *s) => (
                EventType::Normal,
                "Recovered",
                "the problems reported earlier are gone".to_string(),
            ),
            (condition::READY, true) => (EventType::Normal, "Ready", v.message.clone()),
            (condition::CHANGELOGS_HEALTHY, false) if v.reason != "Unknown" => {
                (EventType::Warning, v.reason.as_str(), v.message.clone())
            }
            (condition::CHANGELOGS_HEALTHY, true) if before.as_ref().is_some_and(|(s, _)| !*s) => {
                (EventType::Normal, "ChangelogsHealthy", v.message.clone())
            }
            (condition::INSTANCES_IDLE, true) => {
                (EventType::Warning, v.reason.as_str(), v.message.clone())
            }
            (condition::PROCESSING, false) if processing_problem(&v.reason) => {
                (EventType::Warning, v.reason.as_str(), v.message.clone())
            }
            (condition::PROCESSING, true)
                if before
                    .as_ref()
                    .is_some_and(|(s, r)| !*s && processing_problem(r)) =>
            {
                (EventType::Normal, "Processing", v.message.clone())
            }
            _ => continue,
        };
        info!(reason, "publishing event");
        publish(ctx, app, type_, reason, note).await;
    }
}

/// Whether `v` is Degraded for lost pods other than those `before` (its last message) told:
/// another pod or node lost while the reason stays NodeLost is worth its own Warning.
fn more_lost(v: &Verdict, before: Option<&str>) -> bool {
    v.type_ == condition::DEGRADED
        && v.status
        && v.reason == super::nodes::NODE_LOST
        && before.map(super::nodes::told) != Some(super::nodes::told(&v.message))
}

/// Whether a Processing reason says the app is not processing past every grace.
fn processing_problem(reason: &str) -> bool {
    ProcessingReason::of(reason).is_some_and(ProcessingReason::is_problem)
}

/// Event notes are limited to 1 kB by the API.
fn truncate(s: &str) -> String {
    s.chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::{APP, statefulset_with as sts};
    use crate::reconcile::judge::verdicts;
    use crate::resources::testing::app;

    #[test]
    fn an_unchanged_world_gives_an_identical_status() {
        let mut app = app(APP);
        let observed = sts(2, 2);
        let v = verdicts(&app, &observed, &[], &[], None);
        let first = status(&app, &observed, &v, None, None, None, &Time(chrono_like(1)));
        app.status = Some(first.clone());
        let second = status(&app, &observed, &v, None, None, None, &Time(chrono_like(2)));
        assert_eq!(first, second);
        assert!(
            first
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
    }

    #[test]
    fn another_lost_pod_is_news_and_the_same_ones_are_not() {
        let degraded = |message: &str| Verdict::new(condition::DEGRADED, true, "NodeLost", message);
        let one = "pod wc-1 was on node n1, which no longer exists. nothing needs doing.";
        let two = "pod wc-0 was on node n0, which no longer exists; pod wc-1 was on node n1, \
                   which no longer exists. nothing needs doing.";
        assert!(!more_lost(&degraded(one), Some(one)));
        // Another problem told after the lost pods changes nothing about them.
        assert!(!more_lost(
            &degraded(&format!("{one}; referenced Secret(s) not found")),
            Some(one)
        ));
        assert!(more_lost(&degraded(two), Some(one)));
        let other = Verdict::new(condition::DEGRADED, true, "SecretNotFound", "x");
        assert!(!more_lost(&other, Some("y")));
    }

    fn chrono_like(secs: i64) -> k8s_openapi::jiff::Timestamp {
        k8s_openapi::jiff::Timestamp::from_second(secs).unwrap()
    }
}
