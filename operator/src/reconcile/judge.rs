//! Judging what was observed (pure): the problems that make an app Degraded, and every
//! condition's verdict, from the cluster and from the Kafka check.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kstreams_kafka::{KafkaProblem, KafkaStatus, ProblemReason};

use super::kafka::{KafkaOutcome, KafkaSettings, Waits};
use super::observe::Observed;
use super::pods::PodsSeen;
pub use super::verdict::Verdict;
use crate::crd::{StreamApp, condition};

/// A problem that stops the app from converging and that its spec alone does not explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason (bounded set).
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// How long a pod may stay unschedulable before the app is Degraded for it. The scheduler
/// marks every new pod Unschedulable until its state volume is bound when the StorageClass
/// binds immediately, which takes a few seconds; reporting that would raise a Warning on
/// every new app and every scale-up.
pub const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(30);

/// The grace of a pod that waits only for its state volume's claim to bind. On a busy
/// cluster the PV controller binds claims one after another: creating 1,000 apps at once,
/// 732 of them waited past [`UNSCHEDULABLE_GRACE`] and raised a Warning, then `Recovered`,
/// for a wait nobody could act on. A claim that does not bind at all still shows after this
/// longer grace (and on the claim's own Events).
pub const UNBOUND_CLAIM_GRACE: Duration = Duration::from_secs(300);

/// What kube-scheduler's volume binding says of a pod whose claims are not bound yet.
const UNBOUND_CLAIMS: &str = "unbound immediate PersistentVolumeClaims";

/// The pods unschedulable at `now`, by name, with the scheduler's message, how long they
/// have been so and their grace.
fn unschedulable(observed: &Observed, now: Timestamp) -> Vec<(String, String, Duration, Duration)> {
    observed
        .pods
        .iter()
        // A lost pod's is told apart, with its cause.
        .filter(|pod| {
            !observed
                .lost_pods
                .contains(pod.metadata.name.as_deref().unwrap_or(""))
        })
        .filter_map(|pod| {
            let cond = pod
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
            if cond.reason.as_deref() != Some("Unschedulable") {
                return None;
            }
            let since = cond
                .last_transition_time
                .as_ref()
                .and_then(|t| Duration::try_from(now.duration_since(t.0)).ok())
                .unwrap_or(Duration::MAX);
            let message = cond
                .message
                .clone()
                .unwrap_or_else(|| "unschedulable".into());
            let grace = if message.contains(UNBOUND_CLAIMS) {
                UNBOUND_CLAIM_GRACE
            } else {
                UNSCHEDULABLE_GRACE
            };
            Some((
                pod.metadata.name.clone().unwrap_or_else(|| "?".into()),
                message,
                since,
                grace,
            ))
        })
        .collect()
}

/// When a pod unschedulable for less than its grace reaches it: the app must be looked at
/// again then, as nothing else may change.
pub fn unschedulable_grace_left(observed: &Observed, now: Timestamp) -> Option<Duration> {
    unschedulable(observed, now)
        .into_iter()
        .filter_map(|(_, _, since, grace)| grace.checked_sub(since))
        .filter(|left| !left.is_zero())
        .min()
}

/// Runtime problems visible in `observed` at `now`, plus `apply_error` if writing the
/// children failed.
pub fn problems(observed: &Observed, apply_error: Option<Problem>, now: Timestamp) -> Vec<Problem> {
    let mut out = Vec::new();
    // First: the reason then names what the user must decide (is the node gone for good?).
    if let Some(message) = observed.lost_pods.message() {
        out.push(Problem {
            reason: super::nodes::NODE_LOST,
            message,
        });
    }
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
    let unschedulable: Vec<String> = unschedulable(observed, now)
        .into_iter()
        .filter(|(_, _, since, grace)| since >= grace)
        .map(|(pod, message, _, _)| format!("{pod}: {message}"))
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
/// verdicts (KafkaReachable, ChangelogsHealthy, Restoring, Processing) when Kafka is checked:
/// then Ready also needs the app to be processing. `progressing` is the decision stage's word
/// on a rollout or scale-down it steps, which wins over what the StatefulSet alone tells.
pub fn verdicts(
    app: &StreamApp,
    observed: &Observed,
    problems: &[Problem],
    kafka: &[Verdict],
    progressing: Option<&Verdict>,
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
        None if processing_holds(kafka, Hold::Problem).is_some() => {
            not_ready_for(processing_holds(kafka, Hold::Problem))
        }
        None if kafka_true(condition::RESTORING).is_some() => {
            let v = kafka_true(condition::RESTORING).map(|v| v.message.clone());
            Verdict::new(condition::READY, false, "Restoring", v.unwrap_or_default())
        }
        None if processing_holds(kafka, Hold::Pending).is_some() => {
            not_ready_for(processing_holds(kafka, Hold::Pending))
        }
        None => Verdict::new(
            condition::READY,
            true,
            "AllReplicasReady",
            format!("{ready}/{want} instances ready"),
        ),
    });
    out.push(match (&rollout, degraded) {
        (_, None) if progressing.is_some() => progressing
            .cloned()
            .unwrap_or_else(|| Verdict::new(condition::PROGRESSING, false, "Converged", "")),
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

/// Ready, False, for the reason and with the message of a Processing verdict.
fn not_ready_for(processing: Option<&Verdict>) -> Verdict {
    let (reason, message) = processing
        .map(|v| (v.reason.as_str(), v.message.clone()))
        .unwrap_or_default();
    Verdict::new(condition::READY, false, reason, message)
}

/// How a Processing verdict weighs on Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Not processing, past every grace: Ready says so before anything transient.
    Problem,
    /// Not processing yet, within the grace: Ready says so only when nothing else does.
    Pending,
}

/// The Processing verdict among `kafka` when it holds Ready back as `hold` says.
fn processing_holds(kafka: &[Verdict], hold: Hold) -> Option<&Verdict> {
    kafka
        .iter()
        .filter(|v| v.type_ == condition::PROCESSING && !v.status)
        .find(|v| ProcessingReason::of(&v.reason).and_then(ProcessingReason::holds) == Some(hold))
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

/// The Kafka findings that make the app Degraded, and a group config the broker refused.
pub fn kafka_problems(outcome: &KafkaOutcome) -> Vec<Problem> {
    let found = outcome.status.iter().flat_map(|s| &s.problems);
    found
        .filter(|p| degrades_app(p.reason))
        .map(|p| Problem {
            reason: p.reason.as_str(),
            message: p.message.clone(),
        })
        .chain(outcome.group_config_refused.iter().map(|r| Problem {
            reason: r.reason(),
            message: r.message(),
        }))
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

/// The reasons of the Processing condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingReason {
    /// Every Ready pod has a member, the group is Stable, no commits stand still.
    Processing,
    /// Within the grace: a Ready pod has no member yet, or the group is rebalancing.
    MembersJoining,
    /// A Ready pod has had no member for longer than the grace.
    MembersMissing,
    /// The group has not been Stable for longer than the grace.
    GroupNotStable,
    /// Commits have stood still while records wait for longer than the stall limit.
    Stalled,
    /// No pod is Ready: nothing is expected to process.
    NoInstances,
    /// The last Kafka check failed.
    Unknown,
}

impl ProcessingReason {
    const ALL: [Self; 7] = [
        Self::Processing,
        Self::MembersJoining,
        Self::MembersMissing,
        Self::GroupNotStable,
        Self::Stalled,
        Self::NoInstances,
        Self::Unknown,
    ];

    /// The reason as the condition spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "Processing",
            Self::MembersJoining => "MembersJoining",
            Self::MembersMissing => "MembersMissing",
            Self::GroupNotStable => "GroupNotStable",
            Self::Stalled => "Stalled",
            Self::NoInstances => "NoInstances",
            Self::Unknown => "Unknown",
        }
    }

    /// The reason spelled `reason`, if it is one.
    pub fn of(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == reason)
    }

    /// Whether the app is not processing past every grace: worth a Warning Event.
    pub fn is_problem(self) -> bool {
        self.holds() == Some(Hold::Problem)
    }

    /// How a False verdict with this reason holds Ready back. A scaled-down app does not:
    /// membership is not expected. Unknown does not either: Ready already says the check
    /// failed.
    fn holds(self) -> Option<Hold> {
        match self {
            Self::MembersMissing | Self::GroupNotStable | Self::Stalled => Some(Hold::Problem),
            Self::MembersJoining => Some(Hold::Pending),
            Self::Processing | Self::NoInstances | Self::Unknown => None,
        }
    }
}

/// At most this many partitions are named in a message; the count says how many more.
const NAMED_PARTITIONS: usize = 20;

/// Whether the app processes: its Ready pods are members of a Stable group whose commits do
/// not stand still, each tolerated for a while as `settings` say.
pub fn processing(
    app: &StreamApp,
    pods: &PodsSeen,
    outcome: &KafkaOutcome,
    settings: &KafkaSettings,
) -> Verdict {
    use ProcessingReason as R;
    let verdict = |reason: R, message: String| {
        Verdict::new(
            condition::PROCESSING,
            reason == R::Processing,
            reason.as_str(),
            message,
        )
    };
    // A streams group (KIP-1071) is judged as a consumer group is: its state is Stable once
    // every member has its assignment, and its members map to pods by client.id alike.
    let group = format!("{} {}", group_kind(app), app.application_id());
    let Some(status) = outcome
        .status
        .as_ref()
        .filter(|_| outcome.failure.is_none())
    else {
        return verdict(
            R::Unknown,
            "the last Kafka check failed: group membership and commits are unknown".into(),
        );
    };
    let ready = pods.ready().count();
    if ready == 0 {
        let message = if app.spec.replicas == 0 {
            "spec.replicas is 0: no instance is expected to process"
        } else {
            "no pod of the app is Ready yet"
        };
        return verdict(R::NoInstances, message.into());
    }
    let grace = settings.member_grace;
    let waits = &outcome.waits;
    let (missing, joining) = memberless(waits, grace);
    if !missing.is_empty() {
        let mut message = format!(
            "pod(s) without a member in {group} for over {}s: {} (is the Kafka Streams app \
             running, with the client.id the operator sets?)",
            grace.as_secs(),
            missing.join(", ")
        );
        if !joining.is_empty() {
            message.push_str(&format!("; still joining: {}", joining.join(", ")));
        }
        let strangers = strangers(status);
        if !strangers.is_empty() {
            message.push_str(&format!(
                "; group members matching no pod: {}",
                strangers.join(", ")
            ));
        }
        return verdict(R::MembersMissing, message);
    }
    if let Some((state, lasted)) = &waits.unstable
        && *lasted >= grace
    {
        return verdict(
            R::GroupNotStable,
            format!(
                "{group} has not been Stable for over {}s (it is {state}{})",
                grace.as_secs(),
                state_hint(app, state)
            ),
        );
    }
    if !joining.is_empty() {
        return verdict(
            R::MembersJoining,
            format!(
                "waiting up to {}s for pod(s) to join {group}: {}",
                grace.as_secs(),
                joining.join(", ")
            ),
        );
    }
    if let Some((state, _)) = &waits.unstable {
        return verdict(
            R::MembersJoining,
            format!(
                "waiting up to {}s for {group} to become Stable (it is {state}{})",
                grace.as_secs(),
                state_hint(app, state)
            ),
        );
    }
    let stalled: Vec<String> = waits
        .standing_still
        .iter()
        .filter(|(_, lasted)| **lasted >= settings.stall)
        .map(|((topic, partition), _)| format!("{topic}-{partition}"))
        .collect();
    if !stalled.is_empty() {
        let mut named = stalled[..stalled.len().min(NAMED_PARTITIONS)].join(", ");
        if stalled.len() > NAMED_PARTITIONS {
            named.push_str(&format!(" and {} more", stalled.len() - NAMED_PARTITIONS));
        }
        return verdict(
            R::Stalled,
            format!(
                "no commits for over {}s while records wait on: {named}",
                settings.stall.as_secs()
            ),
        );
    }
    verdict(
        R::Processing,
        format!(
            "{ready} Ready pod(s) are members of the Stable {group}; no partition's commits \
             stand still"
        ),
    )
}

/// What the app's group is, as messages name it.
fn group_kind(app: &StreamApp) -> &'static str {
    if app.uses_streams_protocol() {
        "streams group"
    } else {
        "consumer group"
    }
}

/// What a state of the app's group waits on, where the state name alone does not tell.
fn state_hint(app: &StreamApp, state: &str) -> &'static str {
    if app.uses_streams_protocol() && state == "NotReady" {
        ": a streams group is NotReady while its internal topics are missing"
    } else {
        ""
    }
}

/// The memberless pods past the grace and within it, each sorted.
fn memberless(waits: &Waits, grace: Duration) -> (Vec<&str>, Vec<&str>) {
    let named = |past: bool| {
        waits
            .memberless
            .iter()
            .filter(move |(_, d)| (**d >= grace) == past)
            .map(|(pod, _)| pod.as_str())
            .collect()
    };
    (named(true), named(false))
}

/// The client ids of group members that match no pod of the app.
fn strangers(status: &KafkaStatus) -> Vec<&str> {
    status
        .group
        .iter()
        .flat_map(|g| &g.members)
        .filter(|m| m.pod.is_none())
        .map(|m| m.client_id.as_str())
        .collect()
}

/// KafkaReachable, ChangelogsHealthy, Restoring, Processing and, when the assignment tells,
/// InstancesIdle.
pub fn kafka_verdicts(
    app: &StreamApp,
    pods: &PodsSeen,
    outcome: &KafkaOutcome,
    settings: &KafkaSettings,
) -> Vec<Verdict> {
    let mut out = Vec::with_capacity(4);
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
    out.push(processing(app, pods, outcome, settings));
    out.extend(status.and_then(|s| super::idle::idle_instances(app.spec.replicas, s)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::{APP, kafka_status, ready_pods, statefulset_with as sts};
    use crate::reconcile::kafka::CheckFailure;
    use crate::resources::testing::app;
    use std::collections::BTreeMap;

    const SETTINGS: KafkaSettings = KafkaSettings {
        refresh: Some(Duration::from_secs(30)),
        member_grace: Duration::from_secs(120),
        stall: Duration::from_secs(300),
    };

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A successful check that found `status`, with `waits`.
    fn outcome(status: KafkaStatus, waits: Waits) -> KafkaOutcome {
        KafkaOutcome {
            status: Some(status),
            waits,
            ..KafkaOutcome::default()
        }
    }

    fn memberless(pods: &[(&str, u64)]) -> Waits {
        Waits {
            memberless: pods
                .iter()
                .map(|(p, s)| (p.to_string(), secs(*s)))
                .collect(),
            ..Waits::default()
        }
    }

    /// Every verdict of the 2-replica app `wc` with both pods Ready and Kafka checked.
    fn judged(app: &StreamApp, outcome: &KafkaOutcome) -> Vec<Verdict> {
        let kafka = kafka_verdicts(app, &ready_pods(&["wc-0", "wc-1"]), outcome, &SETTINGS);
        verdicts(app, &sts(2, 2), &[], &kafka, None)
    }

    fn reason<'a>(v: &'a [Verdict], t: &str) -> (bool, &'a str) {
        let v = get(v, t);
        (v.status, v.reason.as_str())
    }

    #[test]
    fn ready_pods_without_members_hold_ready_back_and_are_named() {
        let app = app(APP);
        let none = kafka_status("Empty", &[]);
        // Within the grace: joining, not yet Ready.
        let v = judged(
            &app,
            &outcome(none.clone(), memberless(&[("wc-0", 5), ("wc-1", 5)])),
        );
        assert_eq!(reason(&v, condition::PROCESSING), (false, "MembersJoining"));
        let msg = &get(&v, condition::PROCESSING).message;
        assert!(msg.contains("wc-0, wc-1") && msg.contains("120s"), "{msg}");
        assert_eq!(reason(&v, condition::READY), (false, "MembersJoining"));
        // Past it for one pod: missing, naming that pod, the other still joining.
        let v = judged(
            &app,
            &outcome(none, memberless(&[("wc-0", 121), ("wc-1", 5)])),
        );
        assert_eq!(reason(&v, condition::PROCESSING), (false, "MembersMissing"));
        let ready = get(&v, condition::READY);
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (false, "MembersMissing")
        );
        assert!(
            ready.message.contains("for over 120s: wc-0 (")
                && ready.message.contains("still joining: wc-1"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn members_of_a_client_id_the_operator_did_not_set_are_named_too() {
        let app = app(APP);
        let status = kafka_status("Stable", &["custom-StreamThread-1"]);
        let v = judged(
            &app,
            &outcome(status, memberless(&[("wc-0", 500), ("wc-1", 500)])),
        );
        let msg = &get(&v, condition::PROCESSING).message;
        assert!(
            msg.contains("matching no pod: custom-StreamThread-1"),
            "{msg}"
        );
    }

    #[test]
    fn every_pod_a_member_of_a_stable_group_is_processing_and_ready() {
        let app = app(APP);
        let status = kafka_status(
            "Stable",
            &[
                "wc-0-StreamThread-1-consumer",
                "wc-1-StreamThread-1-consumer",
            ],
        );
        let v = judged(&app, &outcome(status, Waits::default()));
        assert_eq!(reason(&v, condition::PROCESSING), (true, "Processing"));
        assert_eq!(reason(&v, condition::READY), (true, "AllReplicasReady"));
    }

    #[test]
    fn a_group_that_does_not_settle_is_not_stable_once_the_grace_passed() {
        let app = app(APP);
        let status = kafka_status("PreparingRebalance", &[]);
        let unstable = |s| Waits {
            unstable: Some(("PreparingRebalance".into(), secs(s))),
            ..Waits::default()
        };
        let v = judged(&app, &outcome(status.clone(), unstable(10)));
        assert_eq!(reason(&v, condition::READY), (false, "MembersJoining"));
        assert!(
            get(&v, condition::READY)
                .message
                .contains("PreparingRebalance")
        );
        let v = judged(&app, &outcome(status, unstable(120)));
        assert_eq!(reason(&v, condition::PROCESSING), (false, "GroupNotStable"));
        assert_eq!(reason(&v, condition::READY), (false, "GroupNotStable"));
    }

    #[test]
    fn commits_standing_still_past_the_limit_are_a_stall_naming_the_partitions() {
        let app = app(APP);
        let status = kafka_status("Stable", &[]);
        let standing = |pairs: &[(&str, i32, u64)]| Waits {
            standing_still: pairs
                .iter()
                .map(|(t, p, s)| ((t.to_string(), *p), secs(*s)))
                .collect::<BTreeMap<_, _>>(),
            ..Waits::default()
        };
        let v = judged(
            &app,
            &outcome(
                status.clone(),
                standing(&[("words", 0, 300), ("words", 1, 299)]),
            ),
        );
        assert_eq!(reason(&v, condition::PROCESSING), (false, "Stalled"));
        let ready = get(&v, condition::READY);
        assert_eq!(ready.reason, "Stalled");
        assert!(
            ready.message.ends_with("on: words-0") && ready.message.contains("300s"),
            "{}",
            ready.message
        );
        // Commits moved again: the clocks the Kafka step keeps are gone.
        let v = judged(&app, &outcome(status, Waits::default()));
        assert_eq!(reason(&v, condition::READY), (true, "AllReplicasReady"));
    }

    #[test]
    fn many_stalled_partitions_are_counted_not_all_named() {
        let app = app(APP);
        let waits = Waits {
            standing_still: (0..25)
                .map(|p| (("in".to_string(), p), secs(400)))
                .collect(),
            ..Waits::default()
        };
        let v = judged(&app, &outcome(kafka_status("Stable", &[]), waits));
        let msg = &get(&v, condition::PROCESSING).message;
        assert!(msg.ends_with(" and 5 more"), "{msg}");
    }

    #[test]
    fn a_streams_group_is_judged_like_a_consumer_group() {
        let mut app = app(APP);
        app.spec.kafka.group_protocol = crate::crd::GroupProtocol::Streams;
        let both = [
            "wc-0-StreamThread-1-consumer",
            "wc-1-StreamThread-1-consumer",
        ];
        let mut stable = kafka_status("Stable", &both);
        if let Some(g) = stable.group.as_mut() {
            g.protocol_type = "streams".into();
        }
        let v = judged(&app, &outcome(stable, Waits::default()));
        assert_eq!(reason(&v, condition::PROCESSING), (true, "Processing"));
        assert!(
            get(&v, condition::PROCESSING)
                .message
                .contains("Stable streams group wc")
        );
        assert_eq!(reason(&v, condition::READY), (true, "AllReplicasReady"));
        // Missing members hold Ready back as they do on the classic protocol.
        let v = judged(
            &app,
            &outcome(kafka_status("Empty", &[]), memberless(&[("wc-0", 900)])),
        );
        assert_eq!(reason(&v, condition::READY), (false, "MembersMissing"));
        assert!(
            get(&v, condition::READY)
                .message
                .contains("streams group wc")
        );
        // A streams group waiting on its internal topics says so.
        let not_ready = Waits {
            unstable: Some(("NotReady".into(), secs(300))),
            ..Waits::default()
        };
        let v = judged(&app, &outcome(kafka_status("NotReady", &both), not_ready));
        assert_eq!(reason(&v, condition::READY), (false, "GroupNotStable"));
        let msg = &get(&v, condition::READY).message;
        assert!(
            msg.contains("it is NotReady: a streams group is NotReady while"),
            "{msg}"
        );
    }

    #[test]
    fn restoring_outranks_joining_but_not_missing_members() {
        let app = app(APP);
        let mut status = kafka_status("Stable", &["wc-0-StreamThread-1-consumer"]);
        status.pods = vec![kstreams_kafka::status::PodKafkaStatus {
            pod: "wc-0".into(),
            caught_up: Some(false),
            ..Default::default()
        }];
        let v = judged(&app, &outcome(status.clone(), memberless(&[("wc-1", 5)])));
        assert_eq!(reason(&v, condition::READY), (false, "Restoring"));
        let v = judged(&app, &outcome(status, memberless(&[("wc-1", 500)])));
        assert_eq!(reason(&v, condition::READY), (false, "MembersMissing"));
    }

    #[test]
    fn a_failed_check_leaves_processing_unknown_and_ready_says_why() {
        let app = app(APP);
        let failed = KafkaOutcome {
            failure: Some(CheckFailure::Kafka(kstreams_kafka::KafkaError::Timeout {
                bootstrap: "k:9092".into(),
                operation: "metadata",
                timeout: secs(5),
            })),
            ..outcome(kafka_status("Stable", &[]), memberless(&[("wc-0", 500)]))
        };
        let v = judged(&app, &failed);
        assert_eq!(reason(&v, condition::PROCESSING), (false, "Unknown"));
        assert_eq!(reason(&v, condition::READY), (false, "KafkaUnreachable"));
    }

    #[test]
    fn no_ready_pod_has_nothing_to_judge_and_zero_replicas_stay_ready() {
        let mut app = app(APP);
        app.spec.replicas = 0;
        let out = outcome(kafka_status("Empty", &[]), Waits::default());
        let kafka = kafka_verdicts(&app, &PodsSeen::default(), &out, &SETTINGS);
        let mut observed = sts(0, 0);
        if let Some(s) = observed.statefulset.as_mut() {
            s.spec.as_mut().unwrap().replicas = Some(0);
            let st = s.status.as_mut().unwrap();
            (st.replicas, st.updated_replicas) = (0, Some(0));
        }
        let v = verdicts(&app, &observed, &[], &kafka, None);
        assert_eq!(reason(&v, condition::PROCESSING), (false, "NoInstances"));
        assert_eq!(reason(&v, condition::READY), (true, "AllReplicasReady"));
    }

    #[test]
    fn every_reason_is_spelled_once() {
        let spelled: std::collections::BTreeSet<_> =
            ProcessingReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(spelled.len(), ProcessingReason::ALL.len());
        for r in ProcessingReason::ALL {
            assert_eq!(ProcessingReason::of(r.as_str()), Some(r));
        }
    }

    fn get<'a>(v: &'a [Verdict], t: &str) -> &'a Verdict {
        v.iter().find(|v| v.type_ == t).unwrap()
    }

    #[test]
    fn ready_only_when_every_instance_is_ready_and_updated() {
        let app = app(APP);
        // Kafka checks off: no Processing condition, and Ready means the pods are.
        let v = verdicts(&app, &sts(2, 2), &[], &[], None);
        assert!(get(&v, condition::READY).status);
        assert!(v.iter().all(|v| v.type_ != condition::PROCESSING));
        assert!(!get(&v, condition::PROGRESSING).status);
        let v = verdicts(&app, &sts(1, 2), &[], &[], None);
        assert_eq!(get(&v, condition::READY).reason, "ReplicasNotReady");
        let v = verdicts(&app, &sts(2, 1), &[], &[], None);
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
        let found = problems(&observed, None, Timestamp::now());
        let v = verdicts(&app, &observed, &found, &[], None);
        assert_eq!(get(&v, condition::DEGRADED).reason, "SecretNotFound");
        assert!(get(&v, condition::DEGRADED).message.contains("creds"));
        assert!(!get(&v, condition::READY).status);
    }

    #[test]
    fn a_lost_pod_makes_the_app_degraded_for_its_node_and_is_told_once() {
        use crate::crd::{LostPod, NodeLoss};
        use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
        let app = app(APP);
        let pending = |name: &str| Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some("0/7 nodes are available".into()),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        let observed = Observed {
            missing_secrets: vec!["creds".into()],
            pods: vec![pending("wc-0"), pending("wc-1")],
            lost_pods: super::super::nodes::LostPods {
                namespace: "team".into(),
                pods: vec![LostPod {
                    pod: "wc-1".into(),
                    node: "n1".into(),
                    node_state: NodeLoss::Gone,
                    since: None,
                    bound: false,
                    terminating: false,
                    claims: vec!["state-wc-1".into()],
                }],
            },
            ..sts(2, 2)
        };
        let found = problems(&observed, None, Timestamp::now());
        let reasons: Vec<&str> = found.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, ["NodeLost", "SecretNotFound", "PodsUnschedulable"]);
        let unschedulable = &found[2].message;
        assert!(
            unschedulable.starts_with("wc-0:") && !unschedulable.contains("wc-1"),
            "{unschedulable}"
        );
        let v = verdicts(&app, &observed, &found, &[], None);
        assert_eq!(get(&v, condition::DEGRADED).reason, "NodeLost");
        let ready = get(&v, condition::READY);
        assert_eq!((ready.status, ready.reason.as_str()), (false, "NodeLost"));
        assert!(
            ready.message.contains("only node n1 can mount"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn a_pod_is_unschedulable_for_the_app_only_after_the_grace() {
        use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let now = Timestamp::now();
        let pending_for = |secs: i64, message: &str| Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("wc-0".into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some(message.into()),
                    last_transition_time: Some(Time(
                        now - k8s_openapi::jiff::SignedDuration::from_secs(secs),
                    )),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        let no_node =
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
        let fresh = Observed {
            pods: vec![pending_for(5, no_node)],
            ..sts(1, 0)
        };
        assert_eq!(problems(&fresh, None, now), vec![]);
        assert_eq!(
            unschedulable_grace_left(&fresh, now),
            Some(UNSCHEDULABLE_GRACE - Duration::from_secs(5))
        );
        let stuck = Observed {
            pods: vec![pending_for(31, no_node)],
            ..sts(1, 0)
        };
        let found = problems(&stuck, None, now);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].reason, "PodsUnschedulable");
        assert!(found[0].message.starts_with("wc-0: 0/3 nodes"));
        assert_eq!(unschedulable_grace_left(&stuck, now), None);
        // Waiting for its claim to bind, a pod gets the longer grace.
        let unbound = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
        let binding = Observed {
            pods: vec![pending_for(31, unbound)],
            ..sts(1, 0)
        };
        assert_eq!(problems(&binding, None, now), vec![]);
        assert_eq!(
            unschedulable_grace_left(&binding, now),
            Some(UNBOUND_CLAIM_GRACE - Duration::from_secs(31))
        );
        let never_bound = Observed {
            pods: vec![pending_for(301, unbound)],
            ..sts(1, 0)
        };
        let found = problems(&never_bound, None, now);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .message
                .starts_with("wc-0: 0/3 nodes are available: pod has unbound")
        );
    }
}
