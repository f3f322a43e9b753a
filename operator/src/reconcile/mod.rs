//! One reconcile of one StreamApp, stage by stage, each stage a file:
//!
//! 1. `observe`: read the app's StatefulSet, pods and referenced objects (I/O);
//! 2. build: every child from the spec and the StatefulSet's shape (pure, `resources`);
//! 3. `apply`: server-side apply of the children, growing the volumes first if asked (I/O);
//! 4. `kafka`: check the app's Kafka side when due (`pods` says when the pods changed), else
//!    reuse the last check (I/O, bounded);
//! 5. `judge`: problems and every condition's verdict (pure);
//! 6. `report`: the status, written only when it changed, and Events on transitions (I/O).
//!
//! `context` is what all reconciles share.

mod apply;
pub mod context;
#[cfg(test)]
mod fixtures;
pub mod judge;
pub mod kafka;
pub mod observe;
pub mod pods;
pub mod report;
mod volumes;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{debug, warn};

use self::context::Context;
use self::judge::Problem;
use self::pods::PodsSeen;
use crate::crd::StreamApp;
use crate::error::{Error, Result};
use crate::resources::children::children;
use crate::resources::statefulset::Shape;

/// How often a converged app is looked at again even if nothing changed.
const RESYNC: Duration = Duration::from_secs(300);
/// How often an app with a problem outside Kubernetes' watches (a Secret created later) is
/// looked at again.
const RECHECK: Duration = Duration::from_secs(15);

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

    let built = children(app, &Shape::of_spec(app));

    let mut apply_error = None;
    if app.spec.paused {
        debug!("paused: children left as they are");
    } else {
        match apply::apply(ctx, &ns, app, &built, observed.statefulset.as_ref()).await {
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

    let pods = PodsSeen::of(&observed.pods);
    let kafka = ctx.kafka.check(&ctx.client, &ctx.metrics, app, &pods).await;

    let mut problems = judge::problems(&observed, apply_error);
    problems.extend(kafka.iter().flat_map(judge::kafka_problems));
    let settings = ctx.kafka.settings();
    let kafka_verdicts = kafka
        .as_ref()
        .map(|k| judge::kafka_verdicts(app, &pods, k, settings))
        .unwrap_or_default();
    // A grace or stall limit reached changes the verdict: look again right then.
    let expiry = kafka.as_ref().and_then(|k| k.waits.next_expiry(settings));
    let verdicts = judge::verdicts(app, &observed, &problems, &kafka_verdicts);

    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = report::status(
        app,
        &observed,
        &verdicts,
        kafka.and_then(|k| k.status),
        &now,
    );
    report::publish_transitions(ctx, app, &verdicts).await;
    let status_written = if report::needs_write(app.status.as_ref(), &status) {
        Some(report::write_status(ctx, &ns, app, &status).await?)
    } else {
        None
    };

    let mut next = if problems.is_empty() { RESYNC } else { RECHECK };
    for soon in ctx.kafka.refresh().into_iter().chain(expiry) {
        next = next.min(soon);
    }
    Ok(Reconciled {
        action: Action::requeue(next),
        status_written,
    })
}
