//! Growing the state volumes. A StatefulSet's volumeClaimTemplates are immutable, so a larger
//! `spec.state.storage` is rolled out the way Kubernetes allows: expand each existing PVC, then
//! delete the StatefulSet with `propagationPolicy: Orphan` (its pods keep running) and let the
//! next apply recreate it with the new template; it adopts the running pods.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::{Api, ResourceExt};
use tracing::info;

use crate::crd::StreamApp;
use crate::error::{Result, kube_err};
use crate::resources::statefulset::STATE_VOLUME;
use crate::resources::{FIELD_MANAGER, selector_string};

/// The storage request of the live StatefulSet's state template, if it differs from the spec.
pub fn storage_change(live: &StatefulSet, app: &StreamApp) -> Option<String> {
    let live_size = live
        .spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .iter()
        .find(|t| t.metadata.name.as_deref() == Some(STATE_VOLUME))?
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?
        .0
        .clone();
    (live_size != app.spec.state.storage).then_some(live_size)
}

/// Expands the app's PVCs and orphan-deletes its StatefulSet (`live`, as observed) when the
/// requested size grew. Returns true when the StatefulSet is being replaced (a later
/// reconcile applies it again).
pub async fn grow(
    client: &kube::Client,
    ns: &str,
    app: &StreamApp,
    live: Option<&StatefulSet>,
) -> Result<bool> {
    let sts_api = Api::<StatefulSet>::namespaced(client.clone(), ns);
    let name = app.name_any();
    let Some(live) = live else {
        return Ok(false);
    };
    if live.metadata.deletion_timestamp.is_some() {
        // An earlier orphan delete is still being processed.
        return Ok(true);
    }
    let Some(from) = storage_change(live, app) else {
        return Ok(false);
    };
    let to = &app.spec.state.storage;
    info!(%from, %to, "growing state volumes");
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let claims = pvcs
        .list(&ListParams::default().labels(&selector_string(app)))
        .await
        .map_err(kube_err("list", "PersistentVolumeClaim", &name))?;
    let patch = serde_json::json!({"spec": {"resources": {"requests": {"storage": to}}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    for pvc in claims {
        let claim = pvc.name_any();
        pvcs.patch(&claim, &params, &Patch::Merge(&patch))
            .await
            .map_err(kube_err("patch", "PersistentVolumeClaim", &claim))?;
    }
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    sts_api
        .delete(&name, &orphan)
        .await
        .map_err(kube_err("delete", "StatefulSet", &name))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::statefulset::{Shape, statefulset};
    use crate::resources::testing::app;

    const APP: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092'}, state: {storage: 1Gi}}
";

    #[test]
    fn a_grown_request_is_a_change_and_an_equal_one_is_not() {
        let old = app(APP);
        let live = statefulset(&old, "h", &Shape::of_spec(&old));
        assert_eq!(storage_change(&live, &old), None);
        let mut grown = old.clone();
        grown.spec.state.storage = "5Gi".into();
        assert_eq!(storage_change(&live, &grown).as_deref(), Some("1Gi"));
    }
}
