//! What the operator reports about an app's Kafka side, at `status.kafka` of a StreamApp.
//!
//! Every figure is either exact or says it is not: lags the broker cannot determine are
//! `None`, and figures that rest on a guess carry an `...Exact: false` flag next to them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The app's Kafka side as seen from the brokers at `lastChecked`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaStatus {
    /// When the brokers were asked (RFC 3339).
    pub last_checked: String,
    /// The app's changelog topics (`<applicationId>-<store>-changelog`): its state in Kafka.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changelog_topics: Vec<ChangelogTopicStatus>,
    /// The app's repartition topics (`<applicationId>-<name>-repartition`); not state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repartition_topics: Vec<String>,
    /// Topics of `spec.topics.inputs` that do not exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_input_topics: Vec<String>,
    /// The app's consumer group (id = applicationId); absent when the group does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupStatus>,
    /// Per pod: its tasks and how far behind it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodKafkaStatus>,
    /// Records not yet processed: end offset minus committed offset, summed over every
    /// partition of the input and repartition topics. Absent while any non-empty partition
    /// has no committed offset (or no end offset): its lag, and so the sum, is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_lag_total: Option<i64>,
    /// Non-empty source partitions without a committed offset: why the lag is unknown.
    #[serde(default)]
    pub uncommitted_partitions: i32,
    /// Sum of the pods' restore lags; absent when any pod's is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_lag_total: Option<i64>,
    /// False when `restoreLagTotal` rests on a guessed store-to-task mapping (an upper bound).
    #[serde(default)]
    pub restore_lag_exact: bool,
    /// A member's assignment schedules a follow-up (probing) rebalance: warm-up replicas are
    /// still restoring state and tasks will move once they catch up.
    #[serde(default)]
    pub probing_rebalance_pending: bool,
    /// What looks wrong, one entry per finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<KafkaProblem>,
}

/// A changelog topic and its health.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChangelogTopicStatus {
    /// Topic name.
    pub name: String,
    /// The state store it backs, from the topic name.
    pub store: String,
    /// Number of partitions.
    pub partitions: i32,
    /// The topic's `cleanup.policy`; absent when the broker did not return it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_policy: Option<String>,
    /// Whether `cleanup.policy` includes `compact`; without it the state is deleted by
    /// retention. Absent when the policy is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted: Option<bool>,
    /// Whether the partition count equals that of the source topics of the store's tasks;
    /// absent when that cannot be told from the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_match_source: Option<bool>,
    /// What is wrong with this topic, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The app's consumer group as the group coordinator describes it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// Group state: Stable, PreparingRebalance, CompletingRebalance, Empty or Dead.
    /// (The classic protocol's DescribeGroups carries no generation id, so none is shown.)
    pub state: String,
    /// Protocol type (`consumer` for Kafka Streams).
    pub protocol_type: String,
    /// Chosen assignment protocol (`stream` for Kafka Streams); empty while rebalancing, and
    /// for a streams group (`protocolType: streams`).
    pub protocol: String,
    /// A streams group's epoch, bumped by every membership or topology change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_epoch: Option<i32>,
    /// The epoch of a streams group's target assignment; behind `groupEpoch` while the broker
    /// computes a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_epoch: Option<i32>,
    /// The members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<GroupMemberStatus>,
}

/// One member of the group: one consumer, i.e. one StreamThread of a pod.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberStatus {
    /// The member's `client.id` (`<pod>-StreamThread-<n>-consumer`).
    pub client_id: String,
    /// The pod it belongs to; absent when the client id matches no pod of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Host the member connects from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Partitions assigned to it (zero while the group rebalances).
    #[serde(default)]
    pub assigned_partitions: i32,
    /// Version of the Streams subscription data it sent; absent when undecodable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_version: Option<i32>,
    /// The Kafka Streams instance (`process.id`) of a streams-group member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    /// Its `client.rack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Its client tags (`client.tag.*`, used for rack-aware standbys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_tags: BTreeMap<String, String>,
    /// A streams-group member's epoch; behind the group's assignment epoch while it
    /// reconciles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_epoch: Option<i32>,
}

/// One pod's share of the app's work and how far behind it is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodKafkaStatus {
    /// Pod name.
    pub pod: String,
    /// Group members (StreamThreads) of this pod.
    pub members: i32,
    /// Active tasks (`<subtopology>_<partition>`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_tasks: Vec<String>,
    /// Standby tasks, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standby_tasks: Vec<String>,
    /// Warm-up tasks of a streams-group member: restored here before they move here, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup_tasks: Vec<String>,
    /// Processing lag of the source partitions assigned to this pod; absent while any of them
    /// has no committed offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_lag: Option<i64>,
    /// Non-empty assigned source partitions without a committed offset (their lag is unknown).
    #[serde(default)]
    pub uncommitted_partitions: i32,
    /// Changelog records this pod lacked for its assigned stateful tasks (active and standby)
    /// when it last joined: the offset sums it reported then, against the changelog end offsets
    /// when the operator first saw that membership. Not live restore progress, except that an
    /// active task that commits again counts as restored. Absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_lag: Option<i64>,
    /// False when `restoreLag` is an upper bound: a guessed store-to-task mapping, or a
    /// membership that was already in place when the operator first looked.
    #[serde(default)]
    pub restore_lag_exact: bool,
    /// Every active stateful task is restored or within `acceptable.recovery.lag` (Kafka
    /// Streams' rule); standbys restore in the background and do not count. Absent when
    /// unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up: Option<bool>,
}

/// A finding about the app's Kafka side.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KafkaProblem {
    /// What kind of problem.
    pub reason: ProblemReason,
    /// Details: which topic, member or pod, and what to do.
    pub message: String,
}

/// The kinds of problems the Kafka check reports.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum ProblemReason {
    /// A changelog's `cleanup.policy` lacks `compact`: old state is deleted by retention.
    ChangelogNotCompacted,
    /// A changelog's partition count differs from its source topics'.
    ChangelogPartitionMismatch,
    /// Members report stateful tasks but no changelog topic exists.
    NoChangelogTopics,
    /// A topic of `spec.topics.inputs` does not exist.
    InputTopicMissing,
    /// A topic disappeared while it was being checked.
    TopicDeleted,
    /// The broker did not return a topic's configuration or offsets.
    TopicDataUnavailable,
    /// A group member's client id matches no pod of the app.
    UnknownGroupMember,
    /// A pod has no member in the Stable group.
    PodNotInGroup,
    /// The group is not a Kafka Streams group (another client uses the same group id?).
    UnexpectedGroupProtocol,
    /// A member's subscription or assignment data could not be decoded.
    UndecodableMemberData,
    /// The group leader reported an assignment error to its members.
    AssignmentError,
}

impl ProblemReason {
    /// The reason as conditions and Events spell it (the variant's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChangelogNotCompacted => "ChangelogNotCompacted",
            Self::ChangelogPartitionMismatch => "ChangelogPartitionMismatch",
            Self::NoChangelogTopics => "NoChangelogTopics",
            Self::InputTopicMissing => "InputTopicMissing",
            Self::TopicDeleted => "TopicDeleted",
            Self::TopicDataUnavailable => "TopicDataUnavailable",
            Self::UnknownGroupMember => "UnknownGroupMember",
            Self::PodNotInGroup => "PodNotInGroup",
            Self::UnexpectedGroupProtocol => "UnexpectedGroupProtocol",
            Self::UndecodableMemberData => "UndecodableMemberData",
            Self::AssignmentError => "AssignmentError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProblemReason::*;

    #[test]
    fn a_reason_is_spelled_as_it_serializes() {
        for r in [
            ChangelogNotCompacted,
            ChangelogPartitionMismatch,
            NoChangelogTopics,
            InputTopicMissing,
            TopicDeleted,
            TopicDataUnavailable,
            UnknownGroupMember,
            PodNotInGroup,
            UnexpectedGroupProtocol,
            UndecodableMemberData,
            AssignmentError,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
