//! The reset stage: one step of a reset from `spec.reset` per reconcile, recorded in
//! `status.reset` so a restarted operator (or a new leader) goes on where it was.
//!
//! Phases: Pending (checks before anything changes) → ScalingDown → WaitingForEmptyGroup →
//! ResettingOffsets → DeletingTopics → WipingState → ScalingUp → Done, skipping the ones the
//! spec does not ask for (`plan`). A phase is recorded before it acts; the scaling phases act
//! through the decision (`super::hold`), the others here, and every action is safe to repeat:
//! an operator killed after acting and before recording repeats it without a second effect
//! (the offsets carry the reset's id in their commit metadata; topics and claims already gone
//! are skipped). Events are published once the status that records the step is written.
//!
//! `plan` is the state machine without I/O, `volumes` the Kubernetes side; the Kafka side is
//! `kstreams_kafka`'s reset requests.

pub mod plan;
pub mod volumes;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kstreams_kafka::{KafkaError, OffsetTarget};
use kube::ResourceExt;
use kube::runtime::events::EventType;
use tracing::{info, warn};

use self::plan::Begin;
use super::context::Context;
use super::decide::Notice;
use super::kafka::connection;
use super::observe::Observed;
use crate::crd::{ResetPhase, ResetSpec, ResetStatus, StreamApp};

/// How soon a reset under way is looked at again.
const RESET_TICK: Duration = Duration::from_secs(2);

/// What the reset stage found and did in this reconcile.
#[derive(Debug, Default)]
pub struct ResetOutcome {
    /// `status.reset` to write.
    pub status: Option<ResetStatus>,
    /// The phase this reconcile finished, if one.
    pub finished: Option<ResetPhase>,
    /// Events to publish once the status is written.
    pub notices: Vec<Notice>,
    /// When to look again.
    pub next_look: Option<Duration>,
}

impl ResetOutcome {
    fn unchanged(app: &StreamApp) -> Self {
        Self {
            status: recorded(app).cloned(),
            ..Self::default()
        }
    }
}

/// `status.reset` as the app's status records it.
pub fn recorded(app: &StreamApp) -> Option<&ResetStatus> {
    app.status.as_ref().and_then(|s| s.reset.as_ref())
}

/// Runs what `spec.reset` asks of this reconcile: a start, an adoption, or the current
/// phase's step. `observed` is the cluster as this reconcile saw it before applying.
pub async fn advance(
    ctx: &Context,
    app: &StreamApp,
    observed: &Observed,
    now: Timestamp,
) -> ResetOutcome {
    let Some(spec) = app.spec.reset.as_ref() else {
        return match plan::begin(app) {
            Begin::Abandon => abandon(app, now),
            _ => ResetOutcome::unchanged(app),
        };
    };
    let current = match plan::begin(app) {
        Begin::Adopt => {
            let status = ResetStatus {
                id: spec.id.clone(),
                phase: ResetPhase::Adopted,
                started_at: None,
                finished_at: Some(now.to_string()),
                steps: Vec::new(),
                message: Some(
                    "the StreamApp was created with this reset (or restored without its status): taken as applied, not run".into(),
                ),
            };
            return ResetOutcome {
                notices: vec![notice(
                    EventType::Normal,
                    "ResetAdopted",
                    format!(
                        "reset {} was set when the operator first saw this StreamApp: taken as applied, not run; change spec.reset.id to reset",
                        spec.id
                    ),
                )],
                status: Some(status),
                ..ResetOutcome::default()
            };
        }
        Begin::Start => ResetStatus {
            id: spec.id.clone(),
            phase: ResetPhase::Pending,
            started_at: None,
            finished_at: None,
            steps: Vec::new(),
            message: None,
        },
        Begin::Continue | Begin::Abandon => match recorded(app) {
            Some(r) if r.id == spec.id && !r.phase.is_final() => r.clone(),
            _ => return ResetOutcome::unchanged(app),
        },
    };
    if app.spec.paused {
        let mut status = current;
        status.message = Some("spec.paused is set: the reset waits until it is unset".into());
        return ResetOutcome {
            status: Some(status),
            ..ResetOutcome::default()
        };
    }
    let mut out = step(ctx, app, spec, current, observed, now).await;
    if out.status.as_ref().is_some_and(|s| !s.phase.is_final()) {
        out.next_look = Some(RESET_TICK);
    }
    out
}

/// The reset ends, unfinished, because `spec.reset` is gone.
fn abandon(app: &StreamApp, now: Timestamp) -> ResetOutcome {
    let Some(r) = recorded(app) else {
        return ResetOutcome::default();
    };
    let why = format!(
        "spec.reset was removed during {:?}: the app runs again as it is",
        r.phase
    );
    ResetOutcome {
        notices: vec![notice(
            EventType::Warning,
            "ResetAbandoned",
            format!("reset {}: {why}", r.id),
        )],
        status: Some(plan::end(r, ResetPhase::Failed, why, now)),
        ..ResetOutcome::default()
    }
}

/// What a phase's step came to.
enum Step {
    /// Done: record it with this detail and go to the next phase.
    Finished(String),
    /// Not yet: what it waits for.
    Waiting(String),
    /// Cannot go on: why.
    Failed(String),
}

/// Runs the step of `current`'s phase.
async fn step(
    ctx: &Context,
    app: &StreamApp,
    spec: &ResetSpec,
    current: ResetStatus,
    observed: &Observed,
    now: Timestamp,
) -> ResetOutcome {
    let phase = current.phase;
    if phase == ResetPhase::Pending {
        return start(ctx, app, spec, current, now).await;
    }
    let result = match phase {
        ResetPhase::ScalingDown => scaled_to(observed, 0, true),
        ResetPhase::WaitingForEmptyGroup => group_empty(ctx, app, &current, now).await,
        ResetPhase::ResettingOffsets => move_offsets(ctx, app, spec).await,
        ResetPhase::DeletingTopics => delete_topics(ctx, app).await,
        ResetPhase::WipingState => wipe_state(ctx, app, &current).await,
        ResetPhase::ScalingUp => {
            let want = if app.spec.suspend {
                0
            } else {
                app.spec.replicas
            };
            scaled_to(observed, want, false)
        }
        _ => return ResetOutcome::unchanged(app),
    };
    match result {
        Step::Finished(detail) => {
            let status = plan::finish(&current, spec, detail.clone(), now);
            let mut notices = vec![notice(
                EventType::Normal,
                plan::finished_reason(phase),
                format!("reset {}: {detail}", spec.id),
            )];
            if status.phase == ResetPhase::Done {
                notices.push(notice(
                    EventType::Normal,
                    "ResetDone",
                    format!("reset {} done: {}", spec.id, super::hold::summary(&status)),
                ));
            }
            ResetOutcome {
                status: Some(status),
                finished: Some(phase),
                notices,
                next_look: None,
            }
        }
        Step::Waiting(what) => {
            let mut status = current;
            status.message = Some(what);
            ResetOutcome {
                status: Some(status),
                ..ResetOutcome::default()
            }
        }
        Step::Failed(why) => {
            warn!(id = %spec.id, ?phase, %why, "reset failed");
            ResetOutcome {
                notices: vec![notice(
                    EventType::Warning,
                    "ResetFailed",
                    format!(
                        "reset {} failed at {phase:?}: {why}; the app stays at 0 instances until spec.reset.id changes or spec.reset is removed",
                        spec.id
                    ),
                )],
                status: Some(plan::end(
                    &current,
                    ResetPhase::Failed,
                    format!("at {phase:?}: {why}"),
                    now,
                )),
                ..ResetOutcome::default()
            }
        }
    }
}

/// Why a reset of an app on the streams rebalance protocol is refused, and how to do it by
/// hand: the reset's Kafka steps are written for a classic consumer group, and a streams
/// group's offsets are reset with its own tooling (`kafka-streams-groups.sh`).
fn streams_protocol_refusal(app: &StreamApp, spec: &ResetSpec) -> String {
    use crate::crd::{InputOffsets, InternalTopics, LocalState};
    let group = app.application_id();
    let target = match spec.input_offsets {
        InputOffsets::Earliest => Some("--to-earliest".to_string()),
        InputOffsets::Latest => Some("--to-latest".to_string()),
        InputOffsets::Timestamp => Some(format!(
            "--to-datetime {}",
            spec.timestamp.as_deref().unwrap_or("...")
        )),
        InputOffsets::Keep => None,
    };
    let mut by_hand =
        vec!["suspend the app (spec.suspend: true) and wait until the group is Empty".to_string()];
    let delete = spec.internal_topics == InternalTopics::Delete;
    match (target, delete) {
        (Some(to), _) => by_hand.push(format!(
            "run `kafka-streams-groups.sh --bootstrap-server ... --group {group} --reset-offsets \
             --all-input-topics {to}{} --execute`",
            if delete {
                " --delete-all-internal-topics"
            } else {
                ""
            }
        )),
        (None, true) => by_hand.push(format!(
            "run `kafka-streams-groups.sh --bootstrap-server ... --group {group} --reset-offsets \
             --all-input-topics --to-current --delete-all-internal-topics --execute`"
        )),
        (None, false) => {}
    }
    if spec.local_state == LocalState::Wipe {
        by_hand.push("delete the app's state PersistentVolumeClaims".into());
    }
    by_hand.push("resume the app".into());
    format!(
        "the app is on the streams rebalance protocol (spec.kafka.groupProtocol: Streams, \
         KIP-1071): the offsets of streams group {group} are reset with the group's own \
         tooling, which this operator does not run yet. To reset by hand: {}",
        by_hand.join(", then ")
    )
}

/// The checks before the first step: what admission could not know. Refused leaves
/// everything as it was; a check that cannot run yet keeps the reset Pending.
async fn start(
    ctx: &Context,
    app: &StreamApp,
    spec: &ResetSpec,
    current: ResetStatus,
    now: Timestamp,
) -> ResetOutcome {
    let refuse = |why: String| {
        warn!(id = %spec.id, %why, "reset refused");
        ResetOutcome {
            notices: vec![notice(
                EventType::Warning,
                "ResetRefused",
                format!("reset {} refused, nothing changed: {why}", spec.id),
            )],
            status: Some(plan::end(&current, ResetPhase::Refused, why.clone(), now)),
            ..ResetOutcome::default()
        }
    };
    let pending = |why: String| ResetOutcome {
        status: Some(ResetStatus {
            message: Some(why),
            ..current.clone()
        }),
        next_look: Some(RESET_TICK),
        ..ResetOutcome::default()
    };
    if app.uses_streams_protocol() {
        return refuse(streams_protocol_refusal(app, spec));
    }
    let target = match plan::target(spec) {
        Ok(t) => t,
        Err(why) => return refuse(why),
    };
    let ns = app.namespace().unwrap_or_default();
    if spec.local_state == crate::crd::LocalState::Wipe {
        match volumes::may_delete_claims(&ctx.client, &ns).await {
            Ok(true) => {}
            Ok(false) => {
                return refuse(format!(
                    "localState: Wipe deletes the app's PersistentVolumeClaims, which the operator may not delete in namespace {ns}: install the chart with reset.allowStateWipe=true (or grant delete on persistentvolumeclaims)"
                ));
            }
            Err(e) => return pending(format!("checking the right to delete volumes: {e}")),
        }
    }
    let conn = match connection(&ctx.client, app).await {
        Ok(c) => c,
        Err(e) => return pending(format!("reading the Kafka credentials: {e}")),
    };
    let inputs = &app.spec.topics.inputs;
    match ctx
        .kafka
        .pool()
        .check_reset(&conn, inputs, target, now.as_millisecond())
        .await
    {
        Ok(Some(refusal)) => return refuse(refusal.to_string()),
        Ok(None) => {}
        Err(e) => return pending(format!("waiting for Kafka to check the reset: {e}")),
    }
    info!(id = %spec.id, "reset starting: scaling to 0 instances");
    ResetOutcome {
        notices: vec![notice(
            EventType::Normal,
            "ResetStarted",
            format!(
                "reset {}: inputs to {}, internal topics {:?}, local state {:?}; scaling to 0 instances",
                spec.id,
                plan::target_name(spec),
                spec.internal_topics,
                spec.local_state
            ),
        )],
        status: Some(ResetStatus {
            phase: ResetPhase::ScalingDown,
            started_at: Some(now.to_string()),
            message: None,
            ..current
        }),
        next_look: Some(RESET_TICK),
        ..ResetOutcome::default()
    }
}

/// Whether the StatefulSet asks for `want` instances and (going down) no pod is left.
fn scaled_to(observed: &Observed, want: i32, down: bool) -> Step {
    let asked = observed
        .statefulset
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas);
    if asked != Some(want) {
        return Step::Waiting(format!("the StatefulSet to ask for {want} instances"));
    }
    if down && !observed.pods.is_empty() {
        let names: Vec<String> = observed.pods.iter().map(|p| p.name_any()).collect();
        return Step::Waiting(format!("pods to stop: {}", names.join(", ")));
    }
    Step::Finished(if down {
        "every pod stopped".into()
    } else {
        format!("the StatefulSet asks for {want} instances again")
    })
}

/// A failed Kafka call: a retry for what may pass, a failure for what will not.
fn kafka_step(what: &str, e: KafkaError) -> Step {
    match e {
        KafkaError::NotAuthorized { .. } | KafkaError::GroupNotEmpty { .. } => {
            Step::Failed(format!("{what}: {e}"))
        }
        _ => Step::Waiting(format!("{what}, retrying: {e}")),
    }
}

async fn group_empty(
    ctx: &Context,
    app: &StreamApp,
    current: &ResetStatus,
    now: Timestamp,
) -> Step {
    let conn = match connection(&ctx.client, app).await {
        Ok(c) => c,
        Err(e) => return Step::Waiting(format!("reading the Kafka credentials: {e}")),
    };
    let group = app.application_id();
    let members = match ctx.kafka.pool().group_members(&conn, &group).await {
        Ok(m) => m,
        Err(e) => return kafka_step("describing the group", e),
    };
    match members {
        None => Step::Finished(format!("group {group} does not exist")),
        Some(m) if m.members == 0 => Step::Finished(format!("group {group} is {}", m.state)),
        Some(m) => {
            let limit = plan::empty_group_limit(app);
            let waited = plan::phase_began(current)
                .map(|t| now.duration_since(t).unsigned_abs())
                .unwrap_or_default();
            if waited > limit {
                Step::Failed(format!(
                    "group {group} still has {} members ({}) {}s after the pods stopped, beyond the session timeout: something outside this StatefulSet runs application.id {group}",
                    m.members,
                    m.state,
                    waited.as_secs()
                ))
            } else {
                Step::Waiting(format!(
                    "group {group} has {} members ({}); members that did not leave on close time out within {}s",
                    m.members,
                    m.state,
                    limit.as_secs()
                ))
            }
        }
    }
}

async fn move_offsets(ctx: &Context, app: &StreamApp, spec: &ResetSpec) -> Step {
    let target: OffsetTarget = match plan::target(spec) {
        Ok(Some(t)) => t,
        Ok(None) => return Step::Finished("input offsets kept".into()),
        Err(why) => return Step::Failed(why),
    };
    let conn = match connection(&ctx.client, app).await {
        Ok(c) => c,
        Err(e) => return Step::Waiting(format!("reading the Kafka credentials: {e}")),
    };
    let group = app.application_id();
    match ctx
        .kafka
        .pool()
        .reset_offsets(&conn, &group, &app.spec.topics.inputs, target, &spec.id)
        .await
    {
        Ok(done) => {
            let mut detail = format!(
                "{} partitions of {} input {} to {}",
                done.partitions,
                done.topics,
                if done.topics == 1 { "topic" } else { "topics" },
                plan::target_name(spec)
            );
            if done.already_applied {
                detail.push_str(" (already committed before a restart)");
            }
            info!(id = %spec.id, %detail, "reset: offsets moved");
            Step::Finished(detail)
        }
        Err(e) => kafka_step("committing the input offsets", e),
    }
}

async fn delete_topics(ctx: &Context, app: &StreamApp) -> Step {
    let conn = match connection(&ctx.client, app).await {
        Ok(c) => c,
        Err(e) => return Step::Waiting(format!("reading the Kafka credentials: {e}")),
    };
    let pool = ctx.kafka.pool();
    // An input named like an internal topic is still the user's data (KAFKA-7930).
    let inputs = &app.spec.topics.inputs;
    let names: Vec<String> = match pool
        .internal_topic_names(&conn, &app.application_id())
        .await
    {
        Ok(n) => n.into_iter().filter(|t| !inputs.contains(t)).collect(),
        Err(e) => return kafka_step("listing the internal topics", e),
    };
    match pool.delete_topics(&conn, &names).await {
        Ok(deleted) => {
            for t in &deleted {
                info!(topic = %t, "reset: deleted internal topic");
            }
            Step::Finished(if names.is_empty() {
                "no internal topics existed".into()
            } else {
                format!(
                    "deleted {} internal topics: {}",
                    names.len(),
                    names.join(", ")
                )
            })
        }
        Err(e) => kafka_step("deleting the internal topics", e),
    }
}

/// How the WipingState phase names the claims it waits for, and later reports as deleted.
const CLAIMS_GOING: &str = "state volume claims to be gone: ";

async fn wipe_state(ctx: &Context, app: &StreamApp, current: &ResetStatus) -> Step {
    let ns = app.namespace().unwrap_or_default();
    match volumes::wipe(&ctx.client, &ns, app).await {
        Ok(w) if w.remaining.is_empty() => {
            // The claims were deleted by an earlier pass, which named them in the message.
            let named = current
                .message
                .as_deref()
                .and_then(|m| m.strip_prefix(CLAIMS_GOING));
            Step::Finished(match named {
                Some(names) => format!("deleted the state volume claims {names}"),
                None => "no state volume claim left".into(),
            })
        }
        Ok(w) => Step::Waiting(format!("{CLAIMS_GOING}{}", w.remaining.join(", "))),
        Err(kube::Error::Api(e)) if e.code == 403 => Step::Failed(format!(
            "deleting the state volume claims is forbidden ({}): install the chart with reset.allowStateWipe=true",
            e.message
        )),
        Err(e) => Step::Waiting(format!("deleting the state volume claims, retrying: {e}")),
    }
}

fn notice(type_: EventType, reason: &'static str, note: String) -> Notice {
    Notice {
        type_,
        reason,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{GroupProtocol, InputOffsets, InternalTopics, LocalState};
    use crate::resources::testing::app;

    #[test]
    fn a_streams_protocol_reset_is_refused_with_the_command_that_does_it() {
        let mut app = app("
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092', groupProtocol: Streams}}
");
        assert_eq!(app.spec.kafka.group_protocol, GroupProtocol::Streams);
        app.spec.application_id = Some("wordcount".into());
        let mut spec = ResetSpec {
            id: "r1".into(),
            input_offsets: InputOffsets::Earliest,
            timestamp: None,
            internal_topics: InternalTopics::Delete,
            local_state: LocalState::Wipe,
            accept_double_counting: false,
        };
        let why = streams_protocol_refusal(&app, &spec);
        assert!(why.contains("streams rebalance protocol"), "{why}");
        assert!(why.contains("does not run yet"), "{why}");
        assert!(
            why.contains(
                "kafka-streams-groups.sh --bootstrap-server ... --group wordcount --reset-offsets \
                 --all-input-topics --to-earliest --delete-all-internal-topics --execute"
            ),
            "{why}"
        );
        assert!(why.contains("PersistentVolumeClaims"), "{why}");
        spec.input_offsets = InputOffsets::Keep;
        spec.internal_topics = InternalTopics::Keep;
        let why = streams_protocol_refusal(&app, &spec);
        assert!(!why.contains("kafka-streams-groups.sh"), "{why}");
    }
}
