//! One reconcile of one StreamApp: observe (I/O), build and judge (pure), apply and report (I/O).

use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::crd::{StreamApp, StreamAppStatus, condition};
use crate::error::{Error, Result, kube_err};
use crate::observe::{Observed, observe};
use crate::resources::{FIELD_MANAGER, configmap, pdb, service, statefulset};
use crate::status::{Problem, Verdict, problems, status, verdicts};
use crate::{kafka_check, volumes};

/// How often a converged app is looked at again even if nothing changed.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);
/// How often an app with a problem outside Kubernetes' watches (a Secret created later) is
/// looked at again.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// What a reconcile did, beyond when to come back.
#[derive(Debug)]
pub struct Reconciled {
    /// When to reconcile again if nothing changes.
    pub action: Action,
    /// The resourceVersion the status write produced, if the status was written.
    pub status_written: Option<String>,
}

/// Brings the children of `app` to the spec and reports the outcome in its status.
pub async fn reconcile(app: &StreamApp, ctx: Arc<Context>) -> Result<Reconciled> {
    let ns = app
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(app.name_any()))?;
    let (applied, apply_error) = if app.spec.paused {
        debug!("paused: children left as they are");
        (None, None)
    } else {
        match apply_children(&ctx, &ns, app).await {
            Ok(sts) => (sts, None),
            Err(e) => {
                warn!(error = %e, "applying children failed");
                let problem = Problem {
                    reason: "ApplyFailed",
                    message: e.to_string(),
                };
                (None, Some(problem))
            }
        }
    };
    let observed: Observed = observe(&ctx.client, app, applied).await?;
    let pods: Vec<String> = observed.pods.iter().map(|p| p.name_any()).collect();
    let kafka = kafka_check::check(&ctx, app, pods).await;
    let mut found = problems(&observed, apply_error);
    let kafka_verdicts = kafka
        .as_ref()
        .map(kafka_check::verdicts)
        .unwrap_or_default();
    found.extend(kafka.iter().flat_map(kafka_check::problems));
    let verdicts = verdicts(app, &observed, &found, &kafka_verdicts);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let new_status = status(
        app,
        &observed,
        &verdicts,
        kafka.and_then(|k| k.status),
        &now,
    );
    publish_transitions(&ctx, app, &verdicts).await;
    let status_written = if needs_write(app.status.as_ref(), &new_status) {
        Some(write_status(&ctx, &ns, app, &new_status).await?)
    } else {
        None
    };
    let mut next = if found.is_empty() { RESYNC } else { RECHECK };
    if let Some(refresh) = ctx.kafka_refresh {
        next = next.min(refresh);
    }
    Ok(Reconciled {
        action: Action::requeue(next),
        status_written,
    })
}

/// Whether the status must be written: anything changed but the time of the Kafka check, or
/// that time is older than the heartbeat. This keeps a quiet app from being rewritten on every
/// Kafka refresh while `lastChecked` stays honest within the heartbeat.
fn needs_write(old: Option<&StreamAppStatus>, new: &StreamAppStatus) -> bool {
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
            age.unsigned_abs() > kafka_check::STATUS_HEARTBEAT
        })
        .unwrap_or(false)
}

/// Applies the children; returns the StatefulSet as the apiserver holds it after the apply
/// (`None` while it is being replaced to grow the volumes), so observing needs no second read.
async fn apply_children(ctx: &Context, ns: &str, app: &StreamApp) -> Result<Option<StatefulSet>> {
    let cm = configmap::configmap(app);
    let hash = configmap::config_hash(&cm);
    apply(ctx, ns, &cm).await?;
    apply(ctx, ns, &service::service(app)).await?;
    let sts = if volumes::grow(&ctx.client, ns, app).await? {
        publish(ctx, app, EventType::Normal, "GrowingVolumes", format!(
            "state volumes grow to {}: PVCs expanded, StatefulSet replaced without restarting pods",
            app.spec.state.storage
        ))
        .await;
        None
    } else {
        Some(apply(ctx, ns, &statefulset::statefulset(app, &hash)).await?)
    };
    apply(ctx, ns, &pdb::pdb(app)).await?;
    Ok(sts)
}

async fn publish(ctx: &Context, app: &StreamApp, type_: EventType, reason: &str, note: String) {
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

/// Server-side apply with the operator's single field manager; returns the object as stored.
/// An unchanged object is a no-op for the apiserver: no new resourceVersion.
async fn apply<K>(ctx: &Context, ns: &str, obj: &K) -> Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let name = obj.name_any();
    Api::<K>::namespaced(ctx.client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .map_err(kube_err("apply", kind_of::<K>(), &name))
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // Kinds of k8s-openapi types are 'static; the Cow is always borrowed for them.
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => "object",
    }
}

/// Writes the status; returns the resourceVersion the write produced.
async fn write_status(
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

/// Events on the transitions a user cares about: becoming Degraded (with why), recovering,
/// and becoming Ready.
async fn publish_transitions(ctx: &Context, app: &StreamApp, verdicts: &[Verdict]) {
    let was = |t: &str| {
        app.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
            .map(|c| (c.status == "True", c.reason.clone()))
    };
    for v in verdicts {
        let before = was(v.type_);
        if before.as_ref().map(|(s, r)| (*s, r.as_str())) == Some((v.status, v.reason.as_str())) {
            continue;
        }
        let (type_, reason, note) = match (v.type_, v.status) {
            (condition::DEGRADED, true) => {
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
            _ => continue,
        };
        info!(reason, "publishing event");
        publish(ctx, app, type_, reason, note).await;
    }
}

/// Event notes are limited to 1 kB by the API.
fn truncate(s: &str) -> String {
    s.chars().take(1000).collect()
}
