//! What the operator observed: `StreamApp.status`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a StreamApp.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StreamAppStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods that exist.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the app's pods, for the scale subresource (HPA, KEDA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The application.id in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The app's Kafka side: changelog topics, consumer group, processing and restore lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<kstreams_kafka::KafkaStatus>,
    /// Where a rollout or a scale-down stands and what it waits on; absent when the pods run
    /// the latest spec and the replicas match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// Ready, Progressing, Degraded, ReconciliationPaused, KafkaReachable,
    /// ChangelogsHealthy, Restoring, Processing and InstancesIdle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Conditions as a list-map keyed by type, so server-side apply merges them per type.
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "properties": {
                "lastTransitionTime": { "type": "string", "format": "date-time" },
                "message": { "type": "string", "maxLength": 32768 },
                "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0 },
                "reason": { "type": "string", "maxLength": 1024 },
                "status": { "type": "string", "enum": ["True", "False", "Unknown"] },
                "type": { "type": "string", "maxLength": 316 }
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"]
        }
    })
}

/// A rollout or scale-down under way.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The StatefulSet revision the not yet updated pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// The StatefulSet revision of the latest spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Pods running the latest spec.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Instances the StatefulSet runs now (steps towards `spec.replicas` on a scale-down).
    #[serde(default)]
    pub replicas: i32,
    /// The step under way: `update <pod>` or `remove <pod>`.
    pub step: String,
    /// The pod the step waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<String>,
    /// What the step waits for, e.g. "restoring 120431 records in 3 tasks".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// When the step began (RFC 3339).
    pub since: String,
    /// The step took longer than `spec.rollout.stepTimeoutSeconds`.
    #[serde(default)]
    pub timed_out: bool,
    /// One line for `kubectl get`: "2/3 updated, wc-1 restoring".
    pub summary: String,
}
