//! The reset's Kubernetes side: whether the operator may delete the app's state volumes, and
//! deleting them.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::{Api, Client, ResourceExt};
use tracing::info;

use super::plan::is_state_claim;
use crate::crd::StreamApp;
use crate::resources::{app_name, selector_string};

/// Whether the operator's own account may delete PersistentVolumeClaims in `ns`, as the
/// apiserver's authorizer answers it (a SelfSubjectAccessReview, which every account may
/// create).
pub async fn may_delete_claims(client: &Client, ns: &str) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some("delete".into()),
                resource: Some("persistentvolumeclaims".into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// What one pass of deleting the state volumes did.
#[derive(Debug, Default)]
pub struct Wiped {
    /// Claims deleted by this pass.
    pub deleted: Vec<String>,
    /// The app's state claims that still exist (deleted ones wait for their finalizers).
    pub remaining: Vec<String>,
}

/// Deletes the state PVCs of `app`'s StatefulSet: only claims that carry the app's labels
/// and the StatefulSet's claim name, each deleted with its uid as a precondition so a claim
/// re-created meanwhile is not touched.
pub async fn wipe(client: &Client, ns: &str, app: &StreamApp) -> Result<Wiped, kube::Error> {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let sts = app_name(app);
    let claims = api
        .list(&ListParams::default().labels(&selector_string(app)))
        .await?;
    let mut out = Wiped::default();
    for claim in claims
        .items
        .iter()
        .filter(|c| is_state_claim(&c.name_any(), &sts))
    {
        let name = claim.name_any();
        if claim.metadata.deletion_timestamp.is_none() {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: claim.uid(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => {
                    info!(claim = %name, "reset: deleted state volume claim");
                    out.deleted.push(name.clone());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => continue,
                Err(e) => return Err(e),
            }
        }
        out.remaining.push(name);
    }
    Ok(out)
}
