//! Pure computation of a StreamApp's status from what the cluster reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{StreamApp, StreamAppStatus, condition};
use crate::observe::Observed;
use crate::resources::selector_string;

/// A condition as computed, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Condition type.
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}

impl Verdict {
    /// A verdict.
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// A problem that stops the app from converging and that its spec alone does not explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason (bounded set).
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// Runtime problems visible in `observed`, plus `apply_error` if writing the children failed.
pub fn problems(observed: &Observed, apply_error: Option<Problem>) -> Vec<Problem> {
    let mut out = Vec::new();
    if !observed.missing_secrets.is_empty() {
        out.push(Problem {
            reason: "SecretNotFound",
            message: format!(
                "referenced Secret(s) not found in the namespace: {}",
                observed.missing_secrets.join(", ")
            ),
        });
    }
    if let Some(class) = &observed.missing_storage_class {
        out.push(Problem {
            reason: "StorageClassNotFound",
            message: format!(
                "StorageClass {class:?} (spec.state.storageClassName) does not exist; the state volumes cannot be provisioned"
            ),
        });
    }
    let unschedulable: Vec<String> = observed
        .pods
        .iter()
        .filter_map(|pod| {
            let cond = pod
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
            (cond.reason.as_deref() == Some("Unschedulable")).then(|| {
                format!(
                    "{}: {}",
                    pod.metadata.name.as_deref().unwrap_or("?"),
                    cond.message.as_deref().unwrap_or("unschedulable")
                )
            })
        })
        .collect();
    if !unschedulable.is_empty() {
        out.push(Problem {
            reason: "PodsUnschedulable",
            message: unschedulable.join("; "),
        });
    }
    out.extend(apply_error);
    out
}

/// The conditions of `app` given the observed cluster state, problems, and the Kafka
/// verdicts (KafkaReachable, ChangelogsHealthy, Restoring) when Kafka is checked.
pub fn verdicts(
    app: &StreamApp,
    observed: &Observed,
    problems: &[Problem],
    kafka: &[Verdict],
) -> Vec<Verdict> {
    let want = app.spec.replicas;
    let (ready, rollout) = rollout_state(app, observed);
    let mut out = Vec::with_capacity(4 + kafka.len());
    let degraded = problems.first();
    let kafka_false = |t: &str| kafka.iter().find(|v| v.type_ == t && !v.status);
    let kafka_true = |t: &str| kafka.iter().find(|v| v.type_ == t && v.status);
    out.push(match degraded {
        Some(p) => Verdict::new(condition::READY, false, p.reason, p.message.clone()),
        None if rollout.is_some() => Verdict::new(
            condition::READY,
            false,
            "RolloutInProgress",
            rollout.clone().unwrap_or_default(),
        ),
        None if ready < want => Verdict::new(
            condition::READY,
            false,
            "ReplicasNotReady",
            format!("{ready}/{want} instances ready"),
        ),
        None if kafka_false(condition::KAFKA_REACHABLE).is_some() => {
            let v = kafka_false(condition::KAFKA_REACHABLE).map(|v| v.message.clone());
            Verdict::new(
                condition::READY,
                false,
                "KafkaUnreachable",
                v.unwrap_or_default(),
            )
        }
        None if kafka_true(condition::RESTORING).is_some() => {
            let v = kafka_true(condition::RESTORING).map(|v| v.message.clone());
            Verdict::new(condition::READY, false, "Restoring", v.unwrap_or_default())
        }
        None => Verdict::new(
            condition::READY,
            true,
            "AllReplicasReady",
            format!("{ready}/{want} instances ready"),
        ),
    });
    out.push(match (&rollout, degraded) {
        (Some(msg), None) => Verdict::new(condition::PROGRESSING, true, "RollingOut", msg.clone()),
        (Some(msg), Some(_)) => Verdict::new(condition::PROGRESSING, false, "Blocked", msg.clone()),
        (None, _) => Verdict::new(
            condition::PROGRESSING,
            false,
            "Converged",
            "the StatefulSet matches the spec",
        ),
    });
    out.push(match degraded {
        Some(_) => Verdict::new(
            condition::DEGRADED,
            true,
            problems
                .iter()
                .map(|p| p.reason)
                .next()
                .unwrap_or("Degraded"),
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        None => Verdict::new(
            condition::DEGRADED,
            false,
            "AsExpected",
            "no problems found",
        ),
    });
    out.push(if app.spec.paused {
        Verdict::new(
            condition::RECONCILIATION_PAUSED,
            true,
            "Paused",
            "spec.paused is set: the app's Kubernetes objects are not updated",
        )
    } else {
        Verdict::new(
            condition::RECONCILIATION_PAUSED,
            false,
            "Reconciling",
            "spec.paused is not set",
        )
    });
    out.extend(kafka.iter().cloned());
    out
}

/// Ready instances, and a description of the rollout if one is still under way.
fn rollout_state(app: &StreamApp, observed: &Observed) -> (i32, Option<String>) {
    let want = app.spec.replicas;
    let Some(sts) = &observed.statefulset else {
        return (0, Some("the StatefulSet does not exist yet".into()));
    };
    let Some(status) = &sts.status else {
        return (0, Some("the StatefulSet has no status yet".into()));
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let generation = sts.metadata.generation.unwrap_or(0);
    let spec_replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if status.observed_generation.unwrap_or(0) < generation {
        return (
            ready,
            Some("the StatefulSet controller has not seen the latest spec".into()),
        );
    }
    if spec_replicas != want && !app.spec.paused {
        return (
            ready,
            Some(format!("scaling from {spec_replicas} to {want} instances")),
        );
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let revisions_differ =
        status.update_revision.is_some() && status.current_revision != status.update_revision;
    if updated < spec_replicas || (revisions_differ && spec_replicas > 0) {
        return (
            ready,
            Some(format!(
                "{updated}/{spec_replicas} instances updated to the latest spec"
            )),
        );
    }
    if status.replicas != spec_replicas {
        return (
            ready,
            Some(format!(
                "{}/{spec_replicas} instances exist",
                status.replicas
            )),
        );
    }
    (ready, None)
}

/// The full status: conditions keep their `lastTransitionTime` unless their status changed,
/// so an unchanged world yields an identical status (and no write).
pub fn status(
    app: &StreamApp,
    observed: &Observed,
    verdicts: &[Verdict],
    kafka: Option<crate::kafka::KafkaStatus>,
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
        conditions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;
    use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const APP: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc, generation: 3}
spec: {image: wc:1, replicas: 2, kafka: {bootstrapServers: 'k:9092'}}
";

    fn sts(ready: i32, updated: i32) -> Observed {
        Observed {
            statefulset: Some(StatefulSet {
                metadata: ObjectMeta {
                    generation: Some(1),
                    ..ObjectMeta::default()
                },
                spec: Some(StatefulSetSpec {
                    replicas: Some(2),
                    ..StatefulSetSpec::default()
                }),
                status: Some(StatefulSetStatus {
                    observed_generation: Some(1),
                    replicas: 2,
                    ready_replicas: Some(ready),
                    updated_replicas: Some(updated),
                    current_revision: Some("r1".into()),
                    update_revision: Some("r1".into()),
                    ..StatefulSetStatus::default()
                }),
            }),
            ..Observed::default()
        }
    }

    fn get<'a>(v: &'a [Verdict], t: &str) -> &'a Verdict {
        v.iter().find(|v| v.type_ == t).unwrap()
    }

    #[test]
    fn ready_only_when_every_instance_is_ready_and_updated() {
        let app = app(APP);
        let v = verdicts(&app, &sts(2, 2), &[], &[]);
        assert!(get(&v, condition::READY).status);
        assert!(!get(&v, condition::PROGRESSING).status);
        let v = verdicts(&app, &sts(1, 2), &[], &[]);
        assert_eq!(get(&v, condition::READY).reason, "ReplicasNotReady");
        let v = verdicts(&app, &sts(2, 1), &[], &[]);
        assert_eq!(get(&v, condition::READY).reason, "RolloutInProgress");
        assert!(get(&v, condition::PROGRESSING).status);
    }

    #[test]
    fn a_problem_makes_the_app_degraded_and_not_ready() {
        let app = app(APP);
        let observed = Observed {
            missing_secrets: vec!["creds".into()],
            ..sts(2, 2)
        };
        let found = problems(&observed, None);
        let v = verdicts(&app, &observed, &found, &[]);
        assert_eq!(get(&v, condition::DEGRADED).reason, "SecretNotFound");
        assert!(get(&v, condition::DEGRADED).message.contains("creds"));
        assert!(!get(&v, condition::READY).status);
    }

    #[test]
    fn an_unchanged_world_gives_an_identical_status() {
        let mut app = app(APP);
        let observed = sts(2, 2);
        let v = verdicts(&app, &observed, &[], &[]);
        let first = status(&app, &observed, &v, None, &Time(chrono_like(1)));
        app.status = Some(first.clone());
        let second = status(&app, &observed, &v, None, &Time(chrono_like(2)));
        assert_eq!(first, second);
        assert!(
            first
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
    }

    fn chrono_like(secs: i64) -> k8s_openapi::jiff::Timestamp {
        k8s_openapi::jiff::Timestamp::from_second(secs).unwrap()
    }
}
