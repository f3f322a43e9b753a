//! One reconcile of one StreamApp, stage by stage, each stage a file:
//!
//! 1. `observe`: read the app's StatefulSet, pods, budget and referenced objects, and with
//!    `nodes` the pods lost with their node (I/O);
//! 2. `kafka`: check the app's Kafka side when due (`pods` says when the pods changed), else
//!    reuse the last check, and set the group configs of a streams group (`group_config`)
//!    (I/O, bounded);
//! 3. `reset`: one step of a reset asked in `spec.reset` (I/O), and with `spec.suspend` the
//!    `hold` that keeps the app at zero instances (pure);
//! 4. `decide`: the StatefulSet's shape (replicas, update partition) and the disruption
//!    budget from the spec and what the stages before saw (pure);
//! 5. build: every child from the spec and the decision (pure, `resources`);
//! 6. `apply`: server-side apply of the children, growing the volumes first if asked, and
//!    none that `applied` knows would change nothing (I/O);
//! 7. `judge`: problems and every condition's verdict (pure), with `validation` re-checking
//!    the stored spec against admission's rules;
//! 8. `report`: the status, written only when it changed, and Events on transitions (I/O);
//!    a reset's Events only once the status recording its step is written.
//!
//! `context` is what all reconciles share.

pub mod applied;
mod apply;
pub mod baseline;
pub mod context;
pub mod cycle;
pub mod decide;
#[cfg(test)]
mod fixtures;
pub mod group_config;
pub mod hold;
pub mod idle;
pub mod judge;
pub mod kafka;
pub mod nodes;
pub mod observe;
pub mod pods;
pub mod report;
pub mod reset;
pub mod validation;
pub mod verdict;
mod volumes;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::{debug, info, warn};

use self::context::Context;
use self::judge::Problem;
use self::pods::PodsSeen;
use crate::crd::{StreamApp, condition};
use crate::error::{Error, Result};
use crate::resources::children::{children, template_hash};

/// How often a converged app is looked at again even if nothing changed.
const RESYNC: Duration = Duration::from_secs(300);
/// How often an app with a problem outside Kubernetes' watches (a Secret created later) is
/// looked at again.
const RECHECK: Duration = Duration::from_secs(15);
/// How often an app whose rollout or scale-down step waits is looked at (and its Kafka side
/// checked) again: the step goes on as soon as the app has settled.
const STEPPING: Duration = Duration::from_secs(5);

/// What a reconcile did, beyond when to come back.
#[derive(Debug)]
pub struct Reconciled {
    /// When to reconcile again if nothing changes.
    pub action: Action,
    /// The resourceVersion the status write produced, if the status was written.
    pub status_written: Option<String>,
}

/// Brings the children of `app` to the spec and reports the outcome in its status.
pub async fn reconcile(app: &StreamApp, ctx: &Context) -> Result<Reconciled> {
    let ns = app
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(app.name_any()))?;
    let mut observed = observe::observe(&ctx.client, app).await?;

    let pods = PodsSeen::of(&observed.pods);
    let stepping = app
        .status
        .as_ref()
        .and_then(|s| s.rollout.as_ref())
        .is_some_and(|r| r.waiting_for.is_some());
    let kafka = ctx
        .kafka
        .check(
            &ctx.client,
            &ctx.metrics,
            app,
            &pods,
            stepping.then_some(STEPPING),
        )
        .await;

    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let reset = reset::advance(ctx, app, &observed, now.0).await;
    let hold = hold::of(app, reset::recorded(app), reset.status.as_ref());
    let decision = decide::decide(&decide::Facts {
        app,
        observed: &observed,
        template_hash: &template_hash(app),
        kafka: kafka.as_ref(),
        now: now.0,
        hold: hold.as_ref(),
    });
    log_step(&observed, &decision, kafka.as_ref());
    let built = children(app, &decision.shape, &decision.budget);

    let mut apply_error = None;
    if app.spec.paused {
        debug!("paused: children left as they are");
    } else {
        match apply::apply(
            ctx,
            &ns,
            app,
            &built,
            observed.statefulset.as_ref(),
            observed.pdb.as_ref(),
        )
        .await
        {
            // The applied StatefulSet is newer than the one observed; while the volumes grow
            // the observed one stands.
            Ok(applied) => observed.statefulset = applied.or(observed.statefulset),
            Err(e) => {
                warn!(error = %e, "applying children failed");
                apply_error = Some(Problem {
                    reason: "ApplyFailed",
                    message: e.to_string(),
                });
            }
        }
    }

    let mut problems = judge::problems(&observed, apply_error, now.0);
    problems.extend(kafka.iter().flat_map(judge::kafka_problems));
    // A stored spec that breaks a rule admission gained since: reported, the rest goes on.
    problems.extend(validation::problem(app));
    let settings = ctx.kafka.settings();
    let kafka_verdicts = kafka
        .as_ref()
        .map(|k| judge::kafka_verdicts(app, &pods, k, settings))
        .unwrap_or_default();
    // A grace or stall limit reached changes the verdict: look again right then.
    let expiry = kafka.as_ref().and_then(|k| k.waits.next_expiry(settings));
    let mut verdicts = judge::verdicts(
        app,
        &observed,
        &problems,
        &kafka_verdicts,
        decision.progressing.as_ref(),
    );
    if let Some(h) = &hold
        && let Some(ready) = verdicts.iter_mut().find(|v| v.type_ == condition::READY)
    {
        *ready = h.ready();
    }
    verdicts.extend(hold::verdicts(app, reset.status.as_ref()));
    // A refused group config is told once, when the status does not tell it yet (the
    // Degraded transition's own Event leaves it out: another problem may mask it there).
    let refused = kafka
        .as_ref()
        .and_then(|k| k.group_config_refused.clone())
        .filter(|r| r.is_news(app));

    let status = report::status(
        app,
        &observed,
        &verdicts,
        kafka.and_then(|k| k.status),
        decision.rollout.clone(),
        reset.status.clone(),
        &now,
    );
    report::publish_transitions(ctx, app, &verdicts).await;
    if let Some(r) = refused {
        report::publish(ctx, app, EventType::Warning, r.reason(), r.message()).await;
    }
    // A paused app's children are not applied: the decision's transitions did not happen.
    for n in decision.notices.iter().filter(|_| !app.spec.paused) {
        report::publish(ctx, app, n.type_, n.reason, n.note.clone()).await;
    }
    if let (Some(halt), Some(finished)) = (ctx.reset_halt, reset.finished)
        && halt == finished
    {
        warn!(phase = ?finished, "reset halted after {finished:?} (--reset-halt-after): parked before recording it");
        std::future::pending::<()>().await;
    }
    let status_written = if report::needs_write(app.status.as_ref(), &status) {
        Some(report::write_status(ctx, &ns, app, &status).await?)
    } else {
        None
    };
    for n in &reset.notices {
        report::publish(ctx, app, n.type_, n.reason, n.note.clone()).await;
    }

    // A spec problem changes only with the spec, which the watch sees: no early look.
    let mut next = if problems.iter().all(validation::is_spec_problem) {
        RESYNC
    } else {
        RECHECK
    };
    let step_waits = decision
        .rollout
        .as_ref()
        .is_some_and(|r| r.waiting_for.is_some());
    let stepping = step_waits.then_some(STEPPING);
    // The next refresh period: every app of a cluster comes back together, for one round.
    for soon in ctx
        .kafka
        .next_refresh()
        .into_iter()
        .chain(expiry)
        .chain(decision.next_look)
        .chain(reset.next_look)
        .chain(judge::unschedulable_grace_left(&observed, now.0))
        .chain(stepping)
    {
        next = next.min(soon);
    }
    Ok(Reconciled {
        action: Action::requeue(next),
        status_written,
    })
}

/// Logs a rollout or scale-down step the decision takes, with what the app looked like to
/// the Kafka step then: the facts a step is taken on are the ones to read when it was wrong.
fn log_step(
    observed: &observe::Observed,
    decision: &decide::Decision,
    kafka: Option<&kafka::KafkaOutcome>,
) {
    let live = observed.statefulset.as_ref();
    let live_partition = live.map(decide::rollout::live_partition);
    let live_replicas = live.and_then(|s| s.spec.as_ref()).and_then(|s| s.replicas);
    let partition_down = decision
        .shape
        .partition
        .zip(live_partition)
        .is_some_and(|(p, l)| p < l);
    let replicas_down = live_replicas.is_some_and(|r| decision.shape.replicas < r);
    if !(partition_down || replicas_down) || decision.shape.held {
        return;
    }
    let status = kafka.and_then(|k| k.status.as_ref());
    let pods: Vec<String> = status
        .into_iter()
        .flat_map(|s| &s.pods)
        .map(|p| {
            format!(
                "{}: members {} active {:?} standby {:?} caught up {:?} restore lag {:?}",
                p.pod, p.members, p.active_tasks, p.standby_tasks, p.caught_up, p.restore_lag
            )
        })
        .collect();
    info!(
        partition = ?decision.shape.partition,
        replicas = decision.shape.replicas,
        checked = status.map(|s| s.last_checked.as_str()),
        group = status.and_then(|s| s.group.as_ref()).map(|g| g.state.as_str()),
        probing = status.map(|s| s.probing_rebalance_pending),
        pods = ?pods,
        "step taken"
    );
}
