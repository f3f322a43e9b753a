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
    /// The last reset asked for in `spec.reset`: where it stands, or what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetStatus>,
    /// Pods that lost their node: bound to a node that is gone or NotReady, or unable to
    /// start because their state volume can only be mounted on such a node. The operator
    /// deletes none of them (condition `Degraded`, reason `NodeLost`, says what to do).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_pods: Vec<LostPod>,
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

/// What became of a lost pod's node.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum NodeLoss {
    /// The Node object no longer exists.
    Gone,
    /// The node's Ready condition is False or Unknown.
    NotReady,
    /// The pod shows that its node stopped reporting (Ready False while its containers are
    /// ready); the operator may not read Nodes to confirm it.
    NotReporting,
}

/// A pod that lost its node, or whose state volume did.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct LostPod {
    /// The pod.
    pub pod: String,
    /// The node (for a volume, the `kubernetes.io/hostname` its PersistentVolume requires).
    pub node: String,
    /// What became of the node.
    pub node_state: NodeLoss,
    /// When the node stopped being Ready (RFC 3339), as its Ready condition (or, when Nodes
    /// cannot be read, the pod's) says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The pod is bound to the node; false: it waits to be scheduled, and only that node can
    /// mount its volume.
    pub bound: bool,
    /// The pod is being deleted (evicted) but cannot finish while its node is away.
    #[serde(default)]
    pub terminating: bool,
    /// The pod's claims whose PersistentVolume only that node can mount (local volumes):
    /// they cannot follow the pod to another node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
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

/// Where a reset stands. Each phase is recorded before the operator acts on it, so a restarted
/// operator resumes the reset at the phase it was in, and every action is safe to repeat.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetPhase {
    /// Asked, not started: `spec.paused` is set, or the checks before the first step could
    /// not reach Kafka yet.
    Pending,
    /// The app is scaled to zero; waiting for its pods to be gone.
    ScalingDown,
    /// Waiting for the consumer group to have no members.
    WaitingForEmptyGroup,
    /// Committing the new input offsets for the app's group.
    ResettingOffsets,
    /// Deleting the app's changelog and repartition topics.
    DeletingTopics,
    /// Deleting the app's state volumes.
    WipingState,
    /// Bringing the app back to its replicas.
    ScalingUp,
    /// Done: every step ran once.
    Done,
    /// Refused before the first step: nothing was changed.
    Refused,
    /// Stopped at a step; the app stays at zero instances until `spec.reset.id` changes or
    /// `spec.reset` is removed.
    Failed,
    /// Taken as already applied: the StreamApp was created with it (or restored without its
    /// status), so it did not run.
    Adopted,
}

impl ResetPhase {
    /// Whether the reset holds the app at zero instances.
    pub fn holds_app_down(self) -> bool {
        matches!(
            self,
            Self::ScalingDown
                | Self::WaitingForEmptyGroup
                | Self::ResettingOffsets
                | Self::DeletingTopics
                | Self::WipingState
                | Self::Failed
        )
    }

    /// Whether the reset is over, one way or another.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Refused | Self::Failed | Self::Adopted
        )
    }
}

/// One step of a reset that is done.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResetStep {
    /// The phase that finished: ScalingDown, WaitingForEmptyGroup, ResettingOffsets,
    /// DeletingTopics, WipingState or ScalingUp.
    pub phase: ResetPhase,
    /// When it finished (RFC 3339).
    pub at: String,
    /// What it did, e.g. "6 partitions of 1 topic to Earliest".
    pub detail: String,
}

/// The last reset: its id, its phase and the steps done.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResetStatus {
    /// The `spec.reset.id` this is about.
    pub id: String,
    /// Where it stands.
    pub phase: ResetPhase,
    /// When the first step began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it reached Done, Refused or Failed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The steps done, in order, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<ResetStep>,
    /// Why it was refused or failed, or what the current phase waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
