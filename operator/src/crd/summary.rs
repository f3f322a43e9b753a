//! `StreamAppSummary`: the few fields of a StreamApp that every replica's gauges read, as a
//! resource of its own so their watch cache holds only those. A full `StreamApp` in that
//! cache cost about 20 KB per app (its spec with every schema default, its whole status, its
//! managed fields), the largest single share of the operator's memory at 1,000 apps.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Deserialize;

use super::StreamApp;

/// A StreamApp's name, conditions and lag totals; it reads any stored StreamApp, valid or not.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StreamAppSummary {
    /// Name, namespace, uid and resourceVersion ([`StreamAppSummary::trim`] drops the rest).
    pub metadata: ObjectMeta,
    /// What the gauges read of `status`.
    #[serde(default)]
    pub status: Option<SummaryStatus>,
}

/// The part of `StreamApp.status` the gauges read.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SummaryStatus {
    /// Each condition's type and status.
    #[serde(default)]
    pub conditions: Vec<SummaryCondition>,
    /// The lag totals of the last Kafka check.
    #[serde(default)]
    pub kafka: Option<SummaryKafka>,
}

/// A condition's type and status.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SummaryCondition {
    /// The condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
}

/// The lag totals of `status.kafka`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryKafka {
    /// `status.kafka.processingLagTotal`.
    #[serde(default)]
    pub processing_lag_total: Option<i64>,
    /// `status.kafka.restoreLagTotal`.
    #[serde(default)]
    pub restore_lag_total: Option<i64>,
}

impl StreamAppSummary {
    /// Keeps of the metadata only what identifies the app and its version.
    pub fn trim(&mut self) {
        let meta = std::mem::take(&mut self.metadata);
        self.metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            ..ObjectMeta::default()
        };
    }
}

impl Resource for StreamAppSummary {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        StreamApp::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        StreamApp::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        StreamApp::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        StreamApp::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stored_app_and_keeps_only_what_the_gauges_need() {
        let mut s: StreamAppSummary = serde_json::from_value(serde_json::json!({
            "apiVersion": "kstreams.dev/v1alpha1",
            "kind": "StreamApp",
            "metadata": {
                "name": "wc", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "labels": {"team": "a"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            // Not a valid spec: the summary does not read it.
            "spec": {"replicas": "many"},
            "status": {
                "replicas": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "",
                                "lastTransitionTime": "2026-03-01T10:00:00Z"}],
                "kafka": {"processingLagTotal": 7, "lastChecked": "2026-03-01T10:00:00Z"}
            }
        }))
        .unwrap();
        s.trim();
        assert_eq!(
            s,
            StreamAppSummary {
                metadata: ObjectMeta {
                    name: Some("wc".into()),
                    namespace: Some("shop".into()),
                    uid: Some("u1".into()),
                    resource_version: Some("7".into()),
                    ..ObjectMeta::default()
                },
                status: Some(SummaryStatus {
                    conditions: vec![SummaryCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                    }],
                    kafka: Some(SummaryKafka {
                        processing_lag_total: Some(7),
                        restore_lag_total: None,
                    }),
                }),
            }
        );
        assert_eq!(
            StreamAppSummary::url_path(&(), Some("shop")),
            StreamApp::url_path(&(), Some("shop"))
        );
    }
}
