//! Restore-aware rollouts: which ordinals the StatefulSet may update now.
//!
//! The operator steps `rollingUpdate.partition` down one ordinal at a time rather than using
//! `OnDelete` and deleting pods itself: the StatefulSet controller keeps doing the restart
//! (with the pod's grace period and its revision bookkeeping), `kubectl rollout status` and
//! `updatedReplicas` stay meaningful, and a crashed operator leaves a StatefulSet that simply
//! stops at its partition instead of pods half-deleted.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::super::kafka::KafkaOutcome;
use super::settled::{Wait, is_ready, ordinal};
use crate::resources::statefulset::REVISION_LABEL;

/// Where a rollout stands, as the live StatefulSet and pods tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The StatefulSet controller has not caught up with the latest StatefulSet spec yet: its
    /// revisions are stale, so nothing can be told.
    Unknown,
    /// Every pod runs the latest revision.
    Done,
    /// The pod at `ordinal` (or above) has not restarted with the latest revision yet: the
    /// StatefulSet controller is at it.
    Restarting {
        /// The ordinal restarting.
        ordinal: i32,
    },
    /// Every pod at or above the partition runs the latest revision; `next` is the highest
    /// ordinal below that does not.
    StepDone {
        /// The next ordinal to update.
        next: i32,
    },
}

/// The revision a pod runs.
fn revision(pod: &Pod) -> Option<&str> {
    pod.labels().get(REVISION_LABEL).map(String::as_str)
}

/// Where the rollout of `sts` (with `replicas` instances) stands given its `pods`.
pub fn progress(sts: &StatefulSet, pods: &[&Pod], replicas: i32) -> Progress {
    let name = sts.name_any();
    let Some(status) = &sts.status else {
        return Progress::Unknown;
    };
    let generation = sts.metadata.generation.unwrap_or(0);
    let Some(update) = status.update_revision.as_deref() else {
        return Progress::Unknown;
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Progress::Unknown;
    }
    // One revision: a missing pod (deleted, evicted) comes back at it, no rollout needed.
    if status.current_revision.as_deref() == Some(update) {
        return Progress::Done;
    }
    let partition = live_partition(sts);
    let updated = |o: i32| {
        pods.iter().any(|p| {
            ordinal(&name, p) == Some(o)
                && p.metadata.deletion_timestamp.is_none()
                && revision(p) == Some(update)
        })
    };
    if let Some(o) = (partition.max(0)..replicas).rev().find(|o| !updated(*o)) {
        return Progress::Restarting { ordinal: o };
    }
    match (0..partition.min(replicas)).rev().find(|o| !updated(*o)) {
        Some(next) => Progress::StepDone { next },
        None => Progress::Done,
    }
}

/// The partition the live StatefulSet has (0 when unset).
pub fn live_partition(sts: &StatefulSet) -> i32 {
    sts.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
}

/// Whether the step to `next` may go ahead although the app is not settled: the pod to
/// restart is not Ready and holds no member of the app's group, so restarting it takes
/// nothing away, and the pods the last step touched are back. Without this a rollout could
/// never replace a broken revision. Not being Ready is not enough where the group is known:
/// every member's readiness drops while the group rebalances (Kafka Streams leaves RUNNING),
/// and a pod that is only rebalancing still holds tasks whose state would move. A member
/// of a crashed pod counts until the coordinator drops it (its session timeout).
pub fn free_step(
    sts: &StatefulSet,
    pods: &[&Pod],
    next: i32,
    kafka: Option<&KafkaOutcome>,
) -> bool {
    let name = sts.name_any();
    let partition = live_partition(sts);
    let of = |o: i32| pods.iter().find(|p| ordinal(&name, p) == Some(o));
    let holds_nothing = |pod: &Pod| {
        let pod = pod.name_any();
        kafka
            .and_then(|k| k.status.as_ref())
            .and_then(|s| Some((s, s.group.as_ref()?)))
            .is_none_or(|(status, group)| {
                group.members.iter().all(|m| m.pod.as_deref() != Some(&pod))
                    && status.pods.iter().all(|p| p.pod != pod || p.members == 0)
            })
    };
    of(next).is_some_and(|p| !is_ready(p) && holds_nothing(p))
        && pods
            .iter()
            .filter(|p| ordinal(&name, p).is_some_and(|o| o >= partition))
            .all(|p| is_ready(p))
}

/// The wait a restarting pod means.
pub fn restarting(sts: &StatefulSet, ordinal: i32) -> Wait {
    Wait {
        pod: Some(format!("{}-{ordinal}", sts.name_any())),
        what: "to restart with the latest spec".into(),
        blind: false,
    }
}
