//! Every child object of a StreamApp, built together: what the reconcile applies and what
//! `kstreams-operator render` prints are this one value.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::pdb::Budget;
use super::statefulset::{Shape, statefulset};
use super::{configmap, pdb, service};
use crate::crd::StreamApp;

/// The children of one StreamApp, in the order they are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    /// `streams.properties`.
    pub configmap: ConfigMap,
    /// The headless Service.
    pub service: Service,
    /// The instances and their state volumes.
    pub statefulset: StatefulSet,
    /// The disruption budget.
    pub pdb: PodDisruptionBudget,
}

/// The digest of the pod template `children` builds for `app`.
pub fn template_hash(app: &StreamApp) -> String {
    let hash = configmap::config_hash(&configmap::configmap(app));
    super::statefulset::template_hash(app, &hash)
}

/// Builds every child of `app`; the reconcile decides the StatefulSet's `shape` and the
/// disruption `budget`.
pub fn children(app: &StreamApp, shape: &Shape, budget: &Budget) -> Children {
    let configmap = configmap::configmap(app);
    let hash = configmap::config_hash(&configmap);
    Children {
        service: service::service(app),
        statefulset: statefulset(app, &hash, shape),
        pdb: pdb::pdb(app, budget),
        configmap,
    }
}
