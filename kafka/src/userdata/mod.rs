//! Decoders for what a Kafka Streams group member tells the group coordinator, readable by
//! anyone through DescribeGroups:
//!
//! - the consumer protocol's subscription and assignment wrappers
//!   (`ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`, versions 0-3), and inside
//!   them
//! - Kafka Streams' `SubscriptionInfo` (versions 1-11: process id, endpoint, the offset sums of
//!   the state it holds per task) and `AssignmentInfo` (versions 1-11: active and standby
//!   tasks, error code, next probing rebalance).
//!
//! The wrappers are hand-decoded rather than taken from the `kafka-protocol` crate: they are a
//! few fixed fields, and that crate would add its compression codecs for nothing.
//! Versions newer than known are not an error: the wrappers are parsed with the newest known
//! layout (Kafka's own rule: new versions only append fields), and the Streams data yields an
//! `UnknownVersion` value, as Kafka Streams itself does with a future subscription.
//!
//! Layout: the types and constants shared by the decoders are here; `consumer` decodes the
//! wrappers, `subscription` the `SubscriptionInfo` and `assignment` the `AssignmentInfo`.

use std::collections::BTreeMap;
use std::fmt;

mod assignment;
mod consumer;
mod subscription;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod vectors;

pub use assignment::{active_task_partitions, decode_assignment_info};
pub use consumer::{MAX_TOPIC_NAME, decode_consumer_assignment, decode_consumer_subscription};
pub use subscription::decode_subscription_info;

/// Offset sum a member reports for a task it runs as a RUNNING active task (`Task.LATEST_OFFSET`).
pub const LATEST_OFFSET: i64 = -2;
/// Offset sum for a standby task of a pre-v7 subscription, which carried no offsets.
pub const UNKNOWN_OFFSET_SUM: i64 = -3;
/// `AssignmentInfo.nextRebalanceMs` when no follow-up rebalance is scheduled.
pub const NO_REBALANCE_SCHEDULED: i64 = i64::MAX;

/// Newest Streams subscription/assignment version this module decodes.
pub const LATEST_KNOWN_STREAMS_VERSION: i32 = 11;

/// A topic partition: (topic, partition).
pub type Partition = (String, i32);

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition numbers.
    pub partitions: Vec<i32>,
}

/// `ConsumerProtocolSubscription`: what a member sends when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSubscription {
    /// Wrapper version.
    pub version: i16,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// The assignor's user data (Kafka Streams' `SubscriptionInfo`).
    pub user_data: Option<Vec<u8>>,
    /// Partitions the member owned before this rebalance (v1+).
    pub owned_partitions: Vec<TopicPartitions>,
    /// Generation of the owned partitions (v2+).
    pub generation_id: Option<i32>,
    /// `client.rack` (v3+).
    pub rack_id: Option<String>,
}

/// `ConsumerProtocolAssignment`: what the leader assigned to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerAssignment {
    /// Wrapper version.
    pub version: i16,
    /// Assigned partitions.
    pub partitions: Vec<TopicPartitions>,
    /// The assignor's user data (Kafka Streams' `AssignmentInfo`).
    pub user_data: Option<Vec<u8>>,
}

impl ConsumerAssignment {
    /// Assigned partitions sorted by (topic, partition): the order Kafka Streams lists the
    /// active tasks in.
    pub fn sorted_partitions(&self) -> Vec<Partition> {
        let mut out: Vec<Partition> = self
            .partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p)))
            .collect();
        out.sort();
        out
    }
}

/// A Kafka Streams task: subtopology and partition (and named topology, long deprecated).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// Subtopology ("topic group") number.
    pub subtopology: i32,
    /// Partition number.
    pub partition: i32,
    /// Named topology, if any.
    pub named_topology: Option<String>,
}

impl TaskId {
    /// A task of the unnamed topology.
    pub fn new(subtopology: i32, partition: i32) -> Self {
        Self {
            subtopology,
            partition,
            named_topology: None,
        }
    }
}

impl fmt::Display for TaskId {
    /// Kafka Streams' own notation: `0_1`, or `topology__0_1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.named_topology {
            Some(t) => write!(f, "{t}__{}_{}", self.subtopology, self.partition),
            None => write!(f, "{}_{}", self.subtopology, self.partition),
        }
    }
}

/// Kafka Streams' `SubscriptionInfo`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionInfo {
    /// A version this module knows.
    Decoded(StreamsSubscription),
    /// A newer version: only its first two fields are stable.
    UnknownVersion {
        /// The version used.
        version: i32,
        /// The newest version the member supports, when present.
        latest_supported_version: Option<i32>,
    },
}

/// The fields of a known `SubscriptionInfo` version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamsSubscription {
    /// Version used.
    pub version: i32,
    /// Newest version the member supports (-1 before v3).
    pub latest_supported_version: i32,
    /// The Kafka Streams instance's process id (stable while its state directory persists).
    pub process_id: String,
    /// `application.server`, if set.
    pub user_end_point: Option<String>,
    /// Per task the member has state for: the sum of its changelog offsets in local state,
    /// [`LATEST_OFFSET`] for a running active task, [`UNKNOWN_OFFSET_SUM`] for a pre-v7 standby.
    pub task_offset_sums: BTreeMap<TaskId, i64>,
    /// v8+.
    pub unique_field: Option<i8>,
    /// v9+: an error the member reports (e.g. shutdown requested).
    pub error_code: Option<i32>,
    /// v11+: `client.tag.*` settings.
    pub client_tags: BTreeMap<String, String>,
}

/// Kafka Streams' `AssignmentInfo`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentInfo {
    /// A version this module knows.
    Decoded(StreamsAssignment),
    /// A newer version.
    UnknownVersion {
        /// The version used.
        version: i32,
    },
}

/// The fields of a known `AssignmentInfo` version the operator uses (partitions-by-host maps
/// are parsed past but not kept).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamsAssignment {
    /// Version used.
    pub version: i32,
    /// Newest version every member supports (v3+).
    pub commonly_supported_version: Option<i32>,
    /// Active tasks, positional: entry i belongs to the i-th assigned partition in
    /// (topic, partition) order.
    pub active_tasks: Vec<TaskId>,
    /// Standby tasks.
    pub standby_tasks: Vec<TaskId>,
    /// Assignor error code (v4+; 0 = none).
    pub error_code: i32,
    /// When the next (probing) rebalance is due, epoch ms (v7+); [`NO_REBALANCE_SCHEDULED`]
    /// if none.
    pub next_rebalance_ms: Option<i64>,
}

impl StreamsAssignment {
    /// A follow-up rebalance is scheduled: warm-up replicas are restoring, or tasks still move.
    pub fn rebalance_scheduled(&self) -> bool {
        matches!(self.next_rebalance_ms, Some(ms) if ms != NO_REBALANCE_SCHEDULED)
    }

    /// The assignor error's name, per Kafka Streams' `AssignorError`.
    pub fn error_name(&self) -> &'static str {
        match self.error_code {
            0 => "NONE",
            1 => "INCOMPLETE_SOURCE_TOPIC_METADATA",
            2 => "VERSION_PROBING",
            3 => "ASSIGNMENT_ERROR",
            4 => "SHUTDOWN_REQUESTED",
            _ => "UNKNOWN",
        }
    }
}
