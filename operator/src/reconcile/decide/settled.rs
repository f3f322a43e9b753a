//! Whether the app has settled after a step: every instance Ready, back in a Stable group with
//! no probing rebalance pending, and every active task caught up. A rollout or a scale-down
//! takes its next step only from a settled app, so two restores never stack.

use k8s_openapi::api::core::v1::Pod;
use kstreams_kafka::KafkaStatus;
use kstreams_kafka::status::PodKafkaStatus;
use kube::ResourceExt;

use super::super::kafka::KafkaOutcome;

/// What a step waits for, on which pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// The pod waited on; `None` when the wait is the whole app's (the group, Kafka).
    pub pod: Option<String>,
    /// What is awaited, as a user reads it: "restoring 120431 records in 3 tasks".
    pub what: String,
    /// Whether the wait is on Kafka being unreachable: the operator then cannot tell and
    /// never advances, whatever `onStepTimeout` says.
    pub blind: bool,
}

impl Wait {
    fn on(pod: &str, what: impl Into<String>) -> Self {
        Self {
            pod: Some(pod.to_string()),
            what: what.into(),
            blind: false,
        }
    }

    fn app(what: impl Into<String>) -> Self {
        Self {
            pod: None,
            what: what.into(),
            blind: false,
        }
    }
}

/// The group state in which every member has its assignment.
const STABLE: &str = "Stable";

/// Whether a pod is Ready and not terminating.
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The ordinal of a StatefulSet pod of `statefulset`, from its name.
pub fn ordinal(statefulset: &str, pod: &Pod) -> Option<i32> {
    pod.name_any()
        .strip_prefix(statefulset)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The first thing the app still waits for before it counts as settled with `replicas`
/// instances of `statefulset`, its `pods` sorted highest ordinal first (so the pod a step
/// touched last is named first); `None` when settled. Without Kafka checks (`kafka` is `None`)
/// or a group ever seen, Ready pods are all the operator can go by; with a group seen, a
/// failed check holds: the operator never advances blind.
pub fn unsettled(
    statefulset: &str,
    pods: &[&Pod],
    replicas: i32,
    kafka: Option<&KafkaOutcome>,
) -> Option<Wait> {
    // A group the operator has never seen has nothing to protect: its pods are not
    // processing, so Ready pods are all there is to wait for. With one seen, a failed check
    // comes first: pods that are not Ready while Kafka is down say nothing the operator may
    // act on, and a step taken now would be taken blind.
    let known = kafka.and_then(|k| Some((k, k.status.as_ref().filter(|s| s.group.is_some())?)));
    if let Some((outcome, _)) = known
        && let Some(failure) = &outcome.failure
    {
        return Some(Wait {
            pod: None,
            what: format!("Kafka to be reachable ({})", failure.reason()),
            blind: true,
        });
    }
    if let Some(extra) = pods
        .iter()
        .find(|p| ordinal(statefulset, p).is_none_or(|o| o >= replicas))
    {
        return Some(Wait::on(&extra.name_any(), "to terminate"));
    }
    if (pods.len() as i32) < replicas {
        return Some(Wait::app(format!(
            "{} of {replicas} instances to exist",
            pods.len()
        )));
    }
    if let Some(p) = pods.iter().find(|p| !is_ready(p)) {
        return Some(Wait::on(&p.name_any(), "to be Ready"));
    }
    let (_, status) = known?;
    kafka_unsettled(pods, status)
}

/// The Kafka half of [`unsettled`].
fn kafka_unsettled(pods: &[&Pod], status: &KafkaStatus) -> Option<Wait> {
    let Some(group) = &status.group else {
        return None;
    };
    if group.state != STABLE {
        return Some(Wait::app(format!(
            "the group to be Stable ({})",
            group.state
        )));
    }
    if let Some(m) = group.members.iter().find(|m| m.pod.is_none()) {
        return Some(Wait::app(format!(
            "member {} of a pod that is gone to leave the group",
            m.client_id
        )));
    }
    let of = |name: &str| status.pods.iter().find(|p| p.pod == name);
    for pod in pods {
        let name = pod.name_any();
        if of(&name).is_none_or(|p| p.members == 0) {
            return Some(Wait::on(&name, "to join the group"));
        }
    }
    if status.probing_rebalance_pending {
        return Some(Wait::app(
            "warm-up replicas to catch up (a probing rebalance is pending)",
        ));
    }
    for pod in pods {
        let name = pod.name_any();
        if let Some(p) = of(&name)
            && let Some(what) = restoring(p)
        {
            return Some(Wait::on(&name, what));
        }
    }
    None
}

/// What a pod's active tasks still restore, if they are not caught up (or that this is
/// unknown while it has active tasks).
pub fn restoring(pod: &PodKafkaStatus) -> Option<String> {
    match pod.caught_up {
        Some(true) => None,
        _ if pod.active_tasks.is_empty() => None,
        Some(false) => {
            let tasks = pod.active_tasks.len();
            Some(match pod.restore_lag {
                Some(lag) if pod.restore_lag_exact => {
                    format!("restoring {lag} records in {tasks} tasks")
                }
                Some(lag) => format!("restoring up to {lag} records in {tasks} tasks"),
                None => format!("restoring {tasks} tasks"),
            })
        }
        None => Some("its restore lag to be known".into()),
    }
}

/// Whether any instance restores: an active task beyond `acceptable.recovery.lag`, or warm-up
/// replicas still catching up.
pub fn app_restoring(status: &KafkaStatus) -> Option<String> {
    if let Some((pod, what)) = status
        .pods
        .iter()
        .filter(|p| p.members > 0 && p.caught_up == Some(false))
        .find_map(|p| restoring(p).map(|w| (p.pod.clone(), w)))
    {
        return Some(format!("{pod} is {what}"));
    }
    status
        .probing_rebalance_pending
        .then(|| "warm-up replicas are catching up".to_string())
}
