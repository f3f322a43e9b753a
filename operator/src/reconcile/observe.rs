//! The first stage: what the cluster holds for one StreamApp (its StatefulSet, its pods, its
//! disruption budget, the Secrets and StorageClass its spec names, the pods lost with their
//! node).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PartialObjectMeta};
use kube::{Api, Client, ResourceExt};

use tracing::debug;

use super::nodes::LostPods;
use crate::crd::StreamApp;
use crate::error::{Error, Result, kube_err};
use crate::resources::{app_name, selector_string};

/// The live objects and references a StreamApp's status depends on.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// The app's StatefulSet, if it exists.
    pub statefulset: Option<StatefulSet>,
    /// The app's pods.
    pub pods: Vec<Pod>,
    /// The app's PodDisruptionBudget, if it exists.
    pub pdb: Option<PodDisruptionBudget>,
    /// Secrets the spec references that do not exist.
    pub missing_secrets: Vec<String>,
    /// The StorageClass the spec names, when it does not exist.
    pub missing_storage_class: Option<String>,
    /// Pods lost with their node (`nodes`).
    pub lost_pods: LostPods,
}

/// Secrets a StreamApp's pods need.
pub fn referenced_secrets(app: &StreamApp) -> Vec<String> {
    let kafka = &app.spec.kafka;
    let mut names: Vec<String> = kafka
        .tls
        .iter()
        .flat_map(|t| {
            t.ca_cert
                .iter()
                .map(|c| c.name.clone())
                .chain(t.client_cert_secret.iter().cloned())
        })
        .chain(kafka.sasl.iter().map(|s| s.secret_name.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether an object exists; `None` when RBAC does not allow asking (cluster-wide mode
/// grants no Secret access by design), so the check is skipped rather than failing the app.
fn exists<T>(got: kube::Result<Option<T>>) -> kube::Result<Option<bool>> {
    match got {
        Ok(found) => Ok(Some(found.is_some())),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads everything `Observed` holds for `app`.
pub async fn observe(client: &Client, app: &StreamApp) -> Result<Observed> {
    let ns = app
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(app.name_any()))?;
    let name = app_name(app);
    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(kube_err("get", "StatefulSet", &name))?;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&selector_string(app)))
        .await
        .map_err(kube_err("list", "Pod", &name))?
        .items;
    let lost_pods = super::nodes::observe(client, &ns, &pods).await?;
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(kube_err("get", "PodDisruptionBudget", &name))?;
    let secrets = Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), &ns);
    let mut missing_secrets = Vec::new();
    for s in referenced_secrets(app) {
        // Metadata only here; the Kafka check reads the data it needs and reports a 403.
        match exists(secrets.get_metadata_opt(&s).await).map_err(kube_err("get", "Secret", &s))? {
            Some(false) => missing_secrets.push(s),
            Some(true) => {}
            None => debug!(secret = %s, "no permission to check the Secret; skipped"),
        }
    }
    let mut missing_storage_class = None;
    if let Some(class) = &app.spec.state.storage_class_name {
        let classes = Api::<PartialObjectMeta<StorageClass>>::all(client.clone());
        match exists(classes.get_metadata_opt(class).await).map_err(kube_err(
            "get",
            "StorageClass",
            class,
        ))? {
            Some(false) => missing_storage_class = Some(class.clone()),
            Some(true) => {}
            None => debug!(%class, "no permission to check the StorageClass; skipped"),
        }
    }
    Ok(Observed {
        statefulset,
        pods,
        pdb,
        missing_secrets,
        missing_storage_class,
        lost_pods,
    })
}
