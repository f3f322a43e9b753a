//! Pure builders: a StreamApp in, the Kubernetes objects that run it out. No I/O here.

pub mod children;
pub mod configmap;
pub mod pdb;
pub mod properties;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::{StreamApp, owned};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "kstreams-operator";
pub use crate::crd::owned::{INSTANCE_LABEL, MANAGED_BY_LABEL};

/// Labels that select the app's pods; never change for the life of an app (the StatefulSet
/// selector is immutable).
pub fn selector_labels(app: &StreamApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE_LABEL.to_string(), app.name_any()),
        (MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string()),
    ])
}

/// All labels the operator puts on the app's objects.
pub fn labels(app: &StreamApp) -> BTreeMap<String, String> {
    let mut labels = selector_labels(app);
    labels.insert(owned::NAME_LABEL.into(), "kafka-streams".into());
    labels.insert(owned::COMPONENT_LABEL.into(), "streams-app".into());
    labels
}

/// The selector labels as a string, as the scale subresource wants it.
pub fn selector_string(app: &StreamApp) -> String {
    selector_labels(app)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata of a child object: name, namespace, labels and the controller reference that
/// makes Kubernetes garbage-collect it with the app.
pub fn child_meta(app: &StreamApp, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: app.namespace(),
        labels: Some(labels(app)),
        owner_references: owner_reference(app).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(app: &StreamApp) -> Option<OwnerReference> {
    app.controller_owner_ref(&())
}

/// Name of the ConfigMap holding `streams.properties`.
pub fn configmap_name(app: &StreamApp) -> String {
    format!("{}-config", app.name_any())
}

/// Name of the headless Service, the StatefulSet and the PodDisruptionBudget.
pub fn app_name(app: &StreamApp) -> String {
    app.name_any()
}

/// The children of every StreamApp in `yaml` (multi-document), as YAML: what the operator
/// applies for the spec's shape (all replicas, every pod updated). Without a uid (not read
/// from a cluster) they carry no owner reference.
pub fn render(yaml: &str) -> Result<String, serde_yaml::Error> {
    use serde::Deserialize;
    let mut out = String::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let mut app = StreamApp::deserialize(doc)?;
        app.metadata
            .namespace
            .get_or_insert_with(|| "default".into());
        let c = children::children(&app, &statefulset::Shape::of_spec(&app), &pdb::Budget::ONE);
        for obj in [
            serde_yaml::to_string(&c.configmap)?,
            serde_yaml::to_string(&c.service)?,
            serde_yaml::to_string(&c.statefulset)?,
            serde_yaml::to_string(&c.pdb)?,
        ] {
            out.push_str("---\n");
            out.push_str(&obj);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::crd::StreamApp;

    /// A StreamApp from YAML, with the uid and namespace the apiserver would have set.
    pub fn app(yaml: &str) -> StreamApp {
        let mut app: StreamApp = serde_yaml::from_str(yaml).expect("valid StreamApp YAML");
        app.metadata
            .namespace
            .get_or_insert_with(|| "streams".into());
        app.metadata.uid = Some("8a5f3c1e-0000-4000-8000-000000000001".into());
        app
    }
}
