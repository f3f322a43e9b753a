//! Judging what was observed (pure): the problems that make an app Degraded, and every
//! condition's verdict, from the cluster and from the Kafka check.

use kstreams_kafka::{KafkaProblem, ProblemReason};

use super::kafka::KafkaOutcome;
use super::observe::Observed;
use crate::crd::{StreamApp, condition};

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

/// The Kafka findings that make the app Degraded.
pub fn kafka_problems(outcome: &KafkaOutcome) -> Vec<Problem> {
    let Some(status) = &outcome.status else {
        return Vec::new();
    };
    status
        .problems
        .iter()
        .filter(|p| degrades_app(p.reason))
        .map(|p| Problem {
            reason: p.reason.as_str(),
            message: p.message.clone(),
        })
        .collect()
}

/// Kafka findings that make the app Degraded: state that would be lost, inputs that do not
/// exist. The others (members, decoding) are shown in `status.kafka` only.
fn degrades_app(reason: ProblemReason) -> bool {
    matches!(
        reason,
        ProblemReason::ChangelogNotCompacted
            | ProblemReason::ChangelogPartitionMismatch
            | ProblemReason::NoChangelogTopics
            | ProblemReason::InputTopicMissing
    )
}

fn changelog_problem(p: &&KafkaProblem) -> bool {
    matches!(
        p.reason,
        ProblemReason::ChangelogNotCompacted
            | ProblemReason::ChangelogPartitionMismatch
            | ProblemReason::NoChangelogTopics
    )
}

/// KafkaReachable, ChangelogsHealthy and Restoring.
pub fn kafka_verdicts(outcome: &KafkaOutcome) -> Vec<Verdict> {
    let mut out = Vec::with_capacity(3);
    out.push(match &outcome.failure {
        Some(failure) => Verdict::new(
            condition::KAFKA_REACHABLE,
            false,
            failure.reason(),
            failure.to_string(),
        ),
        None => Verdict::new(
            condition::KAFKA_REACHABLE,
            true,
            "Connected",
            "the brokers answered the last check",
        ),
    });
    let status = outcome.status.as_ref();
    let changelog: Vec<&KafkaProblem> = status
        .iter()
        .flat_map(|s| s.problems.iter())
        .filter(changelog_problem)
        .collect();
    out.push(match (status, changelog.first()) {
        (None, _) => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            false,
            "Unknown",
            "the changelog topics have not been checked yet",
        ),
        (Some(_), Some(first)) => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            false,
            first.reason.as_str(),
            changelog
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (Some(s), None) if s.changelog_topics.is_empty() => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            true,
            "NoChangelogsYet",
            "no changelog topic exists yet: Kafka Streams creates them when the app first runs",
        ),
        (Some(s), None) => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            true,
            "Healthy",
            format!(
                "{} changelog topic(s), all compacted",
                s.changelog_topics.len()
            ),
        ),
    });
    let behind: Vec<String> = status
        .iter()
        .flat_map(|s| s.pods.iter())
        .filter(|p| p.caught_up == Some(false))
        .map(|p| match p.restore_lag {
            Some(lag) => format!("{} ({lag} records behind)", p.pod),
            None => p.pod.clone(),
        })
        .collect();
    let probing = status.is_some_and(|s| s.probing_rebalance_pending);
    out.push(if !behind.is_empty() {
        Verdict::new(
            condition::RESTORING,
            true,
            "RestoringState",
            format!(
                "restoring beyond acceptable.recovery.lag: {}",
                behind.join(", ")
            ),
        )
    } else if probing {
        Verdict::new(
            condition::RESTORING,
            true,
            "WarmupPending",
            "a probing rebalance is scheduled: warm-up replicas are still catching up",
        )
    } else {
        Verdict::new(
            condition::RESTORING,
            false,
            "CaughtUp",
            "no instance is restoring state",
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::{APP, statefulset_with as sts};
    use crate::resources::testing::app;

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
}
