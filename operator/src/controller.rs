//! The controller: watches StreamApps and their children and runs reconciles.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{Instrument, error, info, info_span, warn};

use crate::context::Context;
use crate::crd::StreamApp;
use crate::error::Error;
use crate::reconcile::reconcile;
use crate::resources::{FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY_LABEL};

/// Where the controller looks for StreamApps.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every namespace.
    Cluster,
    /// One namespace.
    Namespace(String),
}

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    match scope {
        Scope::Cluster => Api::all(client.clone()),
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
    }
}

/// Runs the controller until a shutdown signal arrives.
pub async fn run(client: Client, scope: Scope, concurrency: u16, instance: Option<String>) {
    let ctx = Arc::new(Context::new(client.clone(), instance));
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}"));
    let apps = api::<DeserializeGuard<StreamApp>>(&client, &scope);
    info!(?scope, "starting controller");
    Controller::new(apps, watcher::Config::default().any_semantic())
        .owns(api::<StatefulSet>(&client, &scope), managed.clone())
        .owns(api::<Service>(&client, &scope), managed.clone())
        .owns(api::<ConfigMap>(&client, &scope), managed.clone())
        .owns(api::<PodDisruptionBudget>(&client, &scope), managed.clone())
        // Pod conditions (unschedulable, ready) change without touching the StatefulSet spec.
        .watches(api::<Pod>(&client, &scope), managed, |pod: Pod| {
            let app = pod.labels().get(INSTANCE_LABEL)?.clone();
            Some(ObjectRef::new(&app).within(&pod.namespace()?))
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile_guarded, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!(error = %e, "reconcile did not complete");
            }
        })
        .await;
    info!("controller stopped");
}

fn key(obj: &DeserializeGuard<StreamApp>) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// A StreamApp that does not deserialize is reported and skipped; it never stops the watch.
async fn reconcile_guarded(
    obj: Arc<DeserializeGuard<StreamApp>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let span = info_span!("reconcile", object = %key(&obj));
    async move {
        match &obj.0 {
            Ok(app) => {
                let result = reconcile(app, ctx.clone()).await;
                if result.is_ok() {
                    ctx.succeeded(&key(&obj));
                }
                result
            }
            Err(invalid) => {
                error!(error = %invalid.error, "StreamApp does not match the operator's schema; skipped");
                Ok(Action::await_change())
            }
        }
    }
    .instrument(span)
    .await
}

fn error_policy(obj: Arc<DeserializeGuard<StreamApp>>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&key(&obj));
    warn!(object = %key(&obj), category = err.category(), error = %err, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}
