//! The reset's state machine without I/O: whether a reset begins, the phase after each, how
//! a finished step is recorded, and the limits a phase runs under.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kstreams_kafka::OffsetTarget;

use crate::crd::{
    InputOffsets, InternalTopics, LocalState, ResetPhase, ResetSpec, ResetStatus, ResetStep,
    StreamApp,
};

/// What this reconcile does about `spec.reset`, before any phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Nothing asked, or the recorded reset is the one asked: go on with it where it is.
    Continue,
    /// A StreamApp seen for the first time (created so, or restored without its status)
    /// with a reset set: taken as applied, never run.
    Adopt,
    /// A new id: start it.
    Start,
    /// `spec.reset` was removed while a reset ran.
    Abandon,
}

/// Whether `app`'s spec asks for a reset to start, given what its status records.
pub fn begin(app: &StreamApp) -> Begin {
    let status = app.status.as_ref();
    let recorded = status.and_then(|s| s.reset.as_ref());
    match (&app.spec.reset, recorded) {
        (None, Some(r)) if !r.phase.is_final() => Begin::Abandon,
        (None, _) => Begin::Continue,
        (Some(asked), Some(r)) if r.id == asked.id => Begin::Continue,
        // No status written yet: the operator has never reconciled this object, so the reset
        // it carries predates it (a create with the reset set, or a backup restored).
        (Some(_), _) if status.and_then(|s| s.observed_generation).is_none() => Begin::Adopt,
        (Some(_), _) => Begin::Start,
    }
}

/// The phase after `phase` for `spec`: phases the spec does not ask for are skipped.
pub fn following(phase: ResetPhase, spec: &ResetSpec) -> ResetPhase {
    use ResetPhase::*;
    let asked = |p: ResetPhase| match p {
        ResettingOffsets => spec.input_offsets != InputOffsets::Keep,
        DeletingTopics => spec.internal_topics == InternalTopics::Delete,
        WipingState => spec.local_state == LocalState::Wipe,
        _ => true,
    };
    let order = [
        Pending,
        ScalingDown,
        WaitingForEmptyGroup,
        ResettingOffsets,
        DeletingTopics,
        WipingState,
        ScalingUp,
        Done,
    ];
    order
        .iter()
        .skip_while(|p| **p != phase)
        .skip(1)
        .copied()
        .find(|p| asked(*p))
        .unwrap_or(phase)
}

/// The Event reason of a finished phase.
pub fn finished_reason(phase: ResetPhase) -> &'static str {
    match phase {
        ResetPhase::ScalingDown => "ResetScaledDown",
        ResetPhase::WaitingForEmptyGroup => "ResetGroupEmptied",
        ResetPhase::ResettingOffsets => "ResetOffsetsMoved",
        ResetPhase::DeletingTopics => "ResetTopicsDeleted",
        ResetPhase::WipingState => "ResetStateWiped",
        ResetPhase::ScalingUp => "ResetScaledUp",
        ResetPhase::Pending => "ResetStarted",
        ResetPhase::Done => "ResetDone",
        ResetPhase::Refused => "ResetRefused",
        ResetPhase::Failed => "ResetFailed",
        ResetPhase::Adopted => "ResetAdopted",
    }
}

/// `status` with its current phase recorded as done (`detail` says what it did) and the
/// next phase in its place.
pub fn finish(
    status: &ResetStatus,
    spec: &ResetSpec,
    detail: String,
    now: Timestamp,
) -> ResetStatus {
    let next = following(status.phase, spec);
    let mut out = status.clone();
    out.steps.push(ResetStep {
        phase: status.phase,
        at: now.to_string(),
        detail,
    });
    out.phase = next;
    out.message = None;
    if next == ResetPhase::Done {
        out.finished_at = Some(now.to_string());
    }
    out
}

/// `status` ended in `phase` (Refused or Failed) for `why`.
pub fn end(status: &ResetStatus, phase: ResetPhase, why: String, now: Timestamp) -> ResetStatus {
    ResetStatus {
        phase,
        message: Some(why),
        finished_at: Some(now.to_string()),
        ..status.clone()
    }
}

/// When the current phase began: the end of the step before it, or the reset's start.
pub fn phase_began(status: &ResetStatus) -> Option<Timestamp> {
    status
        .steps
        .last()
        .map(|s| s.at.as_str())
        .or(status.started_at.as_deref())
        .and_then(|t| t.parse().ok())
}

/// The session timeout Kafka Streams runs the app's consumers with.
const DEFAULT_SESSION_TIMEOUT_MS: u64 = 45_000;
/// Time beyond the session timeout for the coordinator to notice and for our checks.
const EMPTY_GROUP_MARGIN: Duration = Duration::from_secs(60);

/// How long the group may keep members once the pods are gone: a member that did not leave
/// on close stays until its session times out, so the limit is the app's session timeout
/// and a margin.
pub fn empty_group_limit(app: &StreamApp) -> Duration {
    let session = [
        "session.timeout.ms",
        "consumer.session.timeout.ms",
        "main.consumer.session.timeout.ms",
    ]
    .iter()
    .filter_map(|k| app.spec.config.get(*k))
    .filter_map(|v| v.trim().parse::<u64>().ok())
    .max()
    .unwrap_or(DEFAULT_SESSION_TIMEOUT_MS);
    Duration::from_millis(session) + EMPTY_GROUP_MARGIN
}

/// Where the spec moves the input offsets, or why its timestamp cannot be read (CEL already
/// checks the format, so this is a second line).
pub fn target(spec: &ResetSpec) -> Result<Option<OffsetTarget>, String> {
    Ok(match spec.input_offsets {
        InputOffsets::Keep => None,
        InputOffsets::Earliest => Some(OffsetTarget::Earliest),
        InputOffsets::Latest => Some(OffsetTarget::Latest),
        InputOffsets::Timestamp => {
            let text = spec.timestamp.as_deref().unwrap_or_default();
            let t: Timestamp = text.parse().map_err(|e| {
                format!("spec.reset.timestamp {text:?} is not an RFC 3339 time: {e}")
            })?;
            Some(OffsetTarget::Timestamp(t.as_millisecond()))
        }
    })
}

/// How the target reads in a step's detail.
pub fn target_name(spec: &ResetSpec) -> String {
    match spec.input_offsets {
        InputOffsets::Timestamp => spec.timestamp.clone().unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

/// Whether `name` is the state PVC of an instance of `statefulset`: `state-<sts>-<ordinal>`,
/// the name the StatefulSet controller gives the claims of its template.
pub fn is_state_claim(name: &str, statefulset: &str) -> bool {
    name.strip_prefix(crate::resources::statefulset::STATE_VOLUME)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_prefix(statefulset))
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::StreamAppStatus;

    fn app(_: &str, _: &str) -> StreamApp {
        crate::resources::testing::app(crate::reconcile::fixtures::APP)
    }

    fn spec(yaml: &str) -> ResetSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn phases_the_spec_does_not_ask_for_are_skipped() {
        use ResetPhase::*;
        let all = spec("{id: a, inputOffsets: Earliest, internalTopics: Delete, localState: Wipe}");
        let mut p = Pending;
        let mut seen = vec![];
        while p != Done {
            p = following(p, &all);
            seen.push(p);
        }
        assert_eq!(
            seen,
            [
                ScalingDown,
                WaitingForEmptyGroup,
                ResettingOffsets,
                DeletingTopics,
                WipingState,
                ScalingUp,
                Done
            ]
        );
        let state_only = spec("{id: a, inputOffsets: Keep, localState: Wipe}");
        assert_eq!(following(WaitingForEmptyGroup, &state_only), WipingState);
        let latest = spec("{id: a, inputOffsets: Latest}");
        assert_eq!(following(ResettingOffsets, &latest), ScalingUp);
    }

    #[test]
    fn a_reset_on_an_object_never_reconciled_is_adopted_and_a_new_id_starts() {
        let mut a = app("wc", "{}");
        a.spec.reset = Some(spec("{id: r1, inputOffsets: Latest}"));
        assert_eq!(begin(&a), Begin::Adopt);
        a.status = Some(StreamAppStatus {
            observed_generation: Some(1),
            ..StreamAppStatus::default()
        });
        assert_eq!(begin(&a), Begin::Start);
        let recorded = ResetStatus {
            id: "r1".into(),
            phase: ResetPhase::WipingState,
            started_at: None,
            finished_at: None,
            steps: vec![],
            message: None,
        };
        a.status.as_mut().unwrap().reset = Some(recorded);
        assert_eq!(begin(&a), Begin::Continue);
        a.spec.reset = None;
        assert_eq!(begin(&a), Begin::Abandon);
    }

    #[test]
    fn only_the_claims_of_the_apps_own_statefulset_are_state_claims() {
        assert!(is_state_claim("state-wc-0", "wc"));
        assert!(is_state_claim("state-wc-12", "wc"));
        assert!(!is_state_claim("state-wc-x-0", "wc"));
        assert!(!is_state_claim("state-wc-", "wc"));
        assert!(!is_state_claim("data-wc-0", "wc"));
    }

    #[test]
    fn the_empty_group_limit_exceeds_the_apps_session_timeout() {
        let mut a = app("wc", "{}");
        assert_eq!(empty_group_limit(&a), Duration::from_secs(105));
        a.spec
            .config
            .insert("session.timeout.ms".into(), "120000".into());
        assert_eq!(empty_group_limit(&a), Duration::from_secs(180));
    }
}
