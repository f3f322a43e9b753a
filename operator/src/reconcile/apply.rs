//! Writing the children: server-side apply of every built object with the operator's one
//! field manager, and the growth of the state volumes, which a StatefulSet cannot apply.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::applied::{Live, hash_of};
use super::context::Context;
use super::report::publish;
use super::volumes;
use crate::crd::StreamApp;
use crate::error::{Result, kube_err};
use crate::resources::FIELD_MANAGER;
use crate::resources::children::Children;

/// Applies `children`; `live` is the StatefulSet as observed, which decides whether the
/// volumes must grow first, and `live_pdb` the budget as observed. A child provably as the
/// last apply left it is not sent again ([`applied`](super::applied)). Returns the
/// StatefulSet as the apiserver holds it after the apply, or `None` while it is being
/// replaced to grow the volumes.
pub async fn apply(
    ctx: &Context,
    ns: &str,
    app: &StreamApp,
    children: &Children,
    live: Option<&StatefulSet>,
    live_pdb: Option<&PodDisruptionBudget>,
) -> Result<Option<StatefulSet>> {
    let owner = app.uid().unwrap_or_default();
    apply_one(ctx, ns, &children.configmap, &owner, Live::Watched).await?;
    apply_one(ctx, ns, &children.service, &owner, Live::Watched).await?;
    let statefulset = if volumes::grow(&ctx.client, ns, app, live).await? {
        let note = format!(
            "state volumes grow to {}: PVCs expanded, StatefulSet replaced without restarting pods",
            app.spec.state.storage
        );
        publish(ctx, app, EventType::Normal, "GrowingVolumes", note).await;
        None
    } else {
        let read = Live::Read(live.map(|s| &s.metadata));
        let applied = apply_one(ctx, ns, &children.statefulset, &owner, read).await?;
        applied.or_else(|| live.cloned())
    };
    let read = Live::Read(live_pdb.map(|p| &p.metadata));
    apply_one(ctx, ns, &children.pdb, &owner, read).await?;
    Ok(statefulset)
}

/// Server-side apply with the operator's single field manager; returns the object as stored,
/// or `None` when the apply was skipped because it would change nothing.
async fn apply_one<K>(
    ctx: &Context,
    ns: &str,
    obj: &K,
    owner: &str,
    live: Live<'_>,
) -> Result<Option<K>>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let name = obj.name_any();
    let kind = kind_of::<K>();
    let hash = hash_of(obj);
    if ctx.applied.unchanged(kind, obj.meta(), hash, live) {
        ctx.metrics.apply_skipped(kind);
        return Ok(None);
    }
    let stored = Api::<K>::namespaced(ctx.client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await;
    match stored {
        Ok(stored) => {
            ctx.applied.applied(kind, hash, stored.meta(), owner);
            ctx.metrics.applied(kind);
            Ok(Some(stored))
        }
        Err(e) => {
            ctx.applied.forget(kind, obj.meta());
            Err(kube_err("apply", kind, &name)(e))
        }
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // Kinds of k8s-openapi types are 'static; the Cow is always borrowed for them.
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => "object",
    }
}
