//! The PodDisruptionBudget: voluntary evictions take one instance at a time, or none while
//! the reconcile says the app cannot afford one.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{app_name, child_meta, selector_labels};
use crate::crd::StreamApp;

/// How many instances voluntary disruptions (evictions, node drains) may take at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The PDB's `maxUnavailable`.
    pub max_unavailable: i32,
}

impl Budget {
    /// One instance at a time: what an app that is not restoring can afford.
    pub const ONE: Budget = Budget { max_unavailable: 1 };
    /// No voluntary disruption: an eviction now would stack a second restore on the first.
    pub const NONE: Budget = Budget { max_unavailable: 0 };
}

/// The app's PodDisruptionBudget.
pub fn pdb(app: &StreamApp, budget: &Budget) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: child_meta(app, app_name(app)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(budget.max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(app)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
