//! The PodDisruptionBudget: voluntary evictions take one instance at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{app_name, child_meta, selector_labels};
use crate::crd::StreamApp;

/// The app's PodDisruptionBudget (`maxUnavailable: 1`).
pub fn pdb(app: &StreamApp) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: child_meta(app, app_name(app)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(app)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
