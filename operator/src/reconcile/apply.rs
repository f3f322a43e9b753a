//! Writing the children: server-side apply of every built object with the operator's one
//! field manager, and the growth of the state volumes, which a StatefulSet cannot apply.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::Context;
use super::report::publish;
use super::volumes;
use crate::crd::StreamApp;
use crate::error::{Result, kube_err};
use crate::resources::FIELD_MANAGER;
use crate::resources::children::Children;

/// Applies `children`; `live` is the StatefulSet as observed, which decides whether the
/// volumes must grow first. Returns the StatefulSet as the apiserver holds it after the
/// apply, or `None` while it is being replaced to grow the volumes.
pub async fn apply(
    ctx: &Context,
    ns: &str,
    app: &StreamApp,
    children: &Children,
    live: Option<&StatefulSet>,
) -> Result<Option<StatefulSet>> {
    apply_one(ctx, ns, &children.configmap).await?;
    apply_one(ctx, ns, &children.service).await?;
    let statefulset = if volumes::grow(&ctx.client, ns, app, live).await? {
        let note = format!(
            "state volumes grow to {}: PVCs expanded, StatefulSet replaced without restarting pods",
            app.spec.state.storage
        );
        publish(ctx, app, EventType::Normal, "GrowingVolumes", note).await;
        None
    } else {
        Some(apply_one(ctx, ns, &children.statefulset).await?)
    };
    apply_one(ctx, ns, &children.pdb).await?;
    Ok(statefulset)
}

/// Server-side apply with the operator's single field manager; returns the object as stored.
/// An unchanged object is a no-op for the apiserver: no new resourceVersion.
async fn apply_one<K>(ctx: &Context, ns: &str, obj: &K) -> Result<K>
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
