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

use std::collections::BTreeMap;
use std::fmt;

use super::wire::{DecodeError, Reader};

/// Offset sum a member reports for a task it runs as a RUNNING active task (`Task.LATEST_OFFSET`).
pub const LATEST_OFFSET: i64 = -2;
/// Offset sum for a standby task of a pre-v7 subscription, which carried no offsets.
pub const UNKNOWN_OFFSET_SUM: i64 = -3;
/// `AssignmentInfo.nextRebalanceMs` when no follow-up rebalance is scheduled.
pub const NO_REBALANCE_SCHEDULED: i64 = i64::MAX;

/// Newest Streams subscription/assignment version this module decodes.
pub const LATEST_KNOWN_STREAMS_VERSION: i32 = 11;
/// First Streams protocol version whose task ids carry a named topology.
const MIN_NAMED_TOPOLOGY_VERSION: i32 = 10;
/// First version whose subscription carries task offset sums instead of task sets.
const MIN_OFFSET_SUM_VERSION: i32 = 7;

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

/// Decodes a `ConsumerProtocolSubscription` (DescribeGroups member metadata).
pub fn decode_consumer_subscription(buf: &[u8]) -> Result<ConsumerSubscription, DecodeError> {
    let mut r = Reader::new(buf);
    let version = r.i16("subscription version")?;
    let n = r.len("subscription topics", 2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.string("subscription topic")?.unwrap_or_default());
    }
    let user_data = r.bytes("subscription user data")?.map(<[u8]>::to_vec);
    let mut out = ConsumerSubscription {
        version,
        topics,
        user_data,
        owned_partitions: Vec::new(),
        generation_id: None,
        rack_id: None,
    };
    // Fields added in later versions are appended; a member on a newer version still has them.
    if version >= 1 {
        out.owned_partitions = topic_partitions(&mut r, "owned partitions")?;
    }
    if version >= 2 {
        out.generation_id = Some(r.i32("generation id")?);
    }
    if version >= 3 {
        out.rack_id = r.string("rack id")?;
    }
    Ok(out)
}

/// Decodes a `ConsumerProtocolAssignment` (DescribeGroups member assignment).
pub fn decode_consumer_assignment(buf: &[u8]) -> Result<ConsumerAssignment, DecodeError> {
    let mut r = Reader::new(buf);
    let version = r.i16("assignment version")?;
    let partitions = topic_partitions(&mut r, "assigned partitions")?;
    let user_data = r.bytes("assignment user data")?.map(<[u8]>::to_vec);
    Ok(ConsumerAssignment {
        version,
        partitions,
        user_data,
    })
}

fn topic_partitions(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<Vec<TopicPartitions>, DecodeError> {
    let n = r.len(what, 6)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.string(what)?.unwrap_or_default();
        let m = r.len(what, 4)?;
        let mut partitions = Vec::with_capacity(m);
        for _ in 0..m {
            partitions.push(r.i32(what)?);
        }
        out.push(TopicPartitions { topic, partitions });
    }
    Ok(out)
}

/// Decodes Kafka Streams' `SubscriptionInfo` (the subscription's user data), laid out per
/// `SubscriptionInfoData.json` (Kafka's generated, non-flexible message encoding).
pub fn decode_subscription_info(buf: &[u8]) -> Result<SubscriptionInfo, DecodeError> {
    subscription_info(&mut Reader::new(buf))
}

fn subscription_info(r: &mut Reader<'_>) -> Result<SubscriptionInfo, DecodeError> {
    let version = r.i32("subscription info version")?;
    if !(1..=LATEST_KNOWN_STREAMS_VERSION).contains(&version) {
        // Streams itself reads only the version and latest supported version of a future
        // subscription; both are int32s at the front from v3 on.
        let latest_supported_version = r.i32("latest supported version").ok();
        return Ok(SubscriptionInfo::UnknownVersion {
            version,
            latest_supported_version,
        });
    }
    let mut s = StreamsSubscription {
        version,
        latest_supported_version: -1,
        ..Default::default()
    };
    if version >= 3 {
        s.latest_supported_version = r.i32("latest supported version")?;
    }
    s.process_id = r.uuid("process id")?;
    if version < MIN_OFFSET_SUM_VERSION {
        // Before v7 the member sent task sets; Streams maps them to the same sentinels.
        for task in task_id_array(r, "previous active tasks")? {
            s.task_offset_sums.insert(task, LATEST_OFFSET);
        }
        for task in task_id_array(r, "standby tasks")? {
            s.task_offset_sums.entry(task).or_insert(UNKNOWN_OFFSET_SUM);
        }
    }
    if version >= 2 {
        s.user_end_point = r
            .bytes("user end point")?
            .filter(|b| !b.is_empty())
            .map(|b| String::from_utf8_lossy(b).into_owned());
    }
    if version >= MIN_OFFSET_SUM_VERSION {
        decode_task_offset_sums(r, version, &mut s.task_offset_sums)?;
    }
    if version >= 8 {
        s.unique_field = Some(r.i8("unique field")?);
    }
    if version >= 9 {
        s.error_code = Some(r.i32("error code")?);
    }
    if version >= 11 {
        let n = r.len("client tags", 8)?;
        for _ in 0..n {
            let k = r.bytes("client tag key")?.unwrap_or_default();
            let v = r.bytes("client tag value")?.unwrap_or_default();
            s.client_tags.insert(
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            );
        }
    }
    Ok(SubscriptionInfo::Decoded(s))
}

fn task_id_array(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<TaskId>, DecodeError> {
    let n = r.len(what, 8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(TaskId::new(r.i32(what)?, r.i32(what)?));
    }
    Ok(out)
}

fn decode_task_offset_sums(
    r: &mut Reader<'_>,
    version: i32,
    into: &mut BTreeMap<TaskId, i64>,
) -> Result<(), DecodeError> {
    const WHAT: &str = "task offset sums";
    if version >= 10 {
        // v10+: one flat entry per task: topicGroupId, partition, offsetSum, namedTopology.
        let n = r.len(WHAT, 18)?;
        for _ in 0..n {
            let subtopology = r.i32(WHAT)?;
            let partition = r.i32(WHAT)?;
            let sum = r.i64(WHAT)?;
            let named_topology = r.string(WHAT)?.filter(|t| !t.is_empty());
            into.insert(
                TaskId {
                    subtopology,
                    partition,
                    named_topology,
                },
                sum,
            );
        }
    } else {
        // v7-9: per subtopology, a list of (partition, offsetSum).
        let n = r.len(WHAT, 8)?;
        for _ in 0..n {
            let subtopology = r.i32(WHAT)?;
            let m = r.len(WHAT, 12)?;
            for _ in 0..m {
                let partition = r.i32(WHAT)?;
                let sum = r.i64(WHAT)?;
                into.insert(TaskId::new(subtopology, partition), sum);
            }
        }
    }
    Ok(())
}

/// Decodes Kafka Streams' `AssignmentInfo` (the assignment's user data), laid out per
/// `AssignmentInfo.encode()` (hand-written `DataOutputStream` encoding).
pub fn decode_assignment_info(buf: &[u8]) -> Result<AssignmentInfo, DecodeError> {
    assignment_info(&mut Reader::new(buf))
}

fn assignment_info(r: &mut Reader<'_>) -> Result<AssignmentInfo, DecodeError> {
    let version = r.i32("assignment info version")?;
    if !(1..=LATEST_KNOWN_STREAMS_VERSION).contains(&version) {
        return Ok(AssignmentInfo::UnknownVersion { version });
    }
    let mut a = StreamsAssignment {
        version,
        ..Default::default()
    };
    if version >= 3 {
        a.commonly_supported_version = Some(r.i32("commonly supported version")?);
    }
    let n = r.len("active tasks", 8)?;
    for _ in 0..n {
        a.active_tasks.push(assigned_task_id(r, version)?);
    }
    let n = r.len("standby tasks", 12)?;
    for _ in 0..n {
        a.standby_tasks.push(assigned_task_id(r, version)?);
        skip_topic_partitions(r, "standby task partitions")?;
    }
    match version {
        1 => {}
        2..=4 => skip_partitions_by_host(r)?,
        5 => {
            skip_topic_dictionary(r)?;
            skip_host_map_with_dictionary(r)?;
        }
        _ => {
            skip_topic_dictionary(r)?;
            skip_host_map_with_dictionary(r)?; // active partitions by host
            skip_host_map_with_dictionary(r)?; // standby partitions by host
        }
    }
    if version >= 4 {
        a.error_code = r.i32("error code")?;
    }
    if version >= 7 {
        a.next_rebalance_ms = Some(r.i64("next rebalance ms")?);
    }
    Ok(AssignmentInfo::Decoded(a))
}

fn assigned_task_id(r: &mut Reader<'_>, version: i32) -> Result<TaskId, DecodeError> {
    const WHAT: &str = "task id";
    let subtopology = r.i32(WHAT)?;
    let partition = r.i32(WHAT)?;
    let mut named_topology = None;
    if version >= MIN_NAMED_TOPOLOGY_VERSION {
        let chars = r.len(WHAT, 2)?;
        let name = r.java_chars(WHAT, chars)?;
        named_topology = Some(name).filter(|n| !n.is_empty());
    }
    Ok(TaskId {
        subtopology,
        partition,
        named_topology,
    })
}

fn skip_topic_partitions(r: &mut Reader<'_>, what: &'static str) -> Result<(), DecodeError> {
    let n = r.len(what, 6)?;
    for _ in 0..n {
        r.java_utf(what)?;
        r.i32(what)?;
    }
    Ok(())
}

fn skip_partitions_by_host(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    const WHAT: &str = "partitions by host";
    let n = r.len(WHAT, 10)?;
    for _ in 0..n {
        r.java_utf(WHAT)?;
        r.i32(WHAT)?;
        skip_topic_partitions(r, WHAT)?;
    }
    Ok(())
}

fn skip_topic_dictionary(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    const WHAT: &str = "topic dictionary";
    let n = r.len(WHAT, 6)?;
    for _ in 0..n {
        r.i32(WHAT)?;
        r.java_utf(WHAT)?;
    }
    Ok(())
}

fn skip_host_map_with_dictionary(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    const WHAT: &str = "partitions by host";
    let n = r.len(WHAT, 10)?;
    for _ in 0..n {
        r.java_utf(WHAT)?;
        r.i32(WHAT)?;
        let m = r.len(WHAT, 8)?;
        for _ in 0..m {
            r.i32(WHAT)?;
            r.i32(WHAT)?;
        }
    }
    Ok(())
}

/// Pairs each assigned partition with its active task (Streams lists active tasks in the
/// order of the assigned partitions sorted by topic, then partition).
pub fn active_task_partitions(
    assignment: &ConsumerAssignment,
    info: &StreamsAssignment,
) -> Result<Vec<(Partition, TaskId)>, DecodeError> {
    let partitions = assignment.sorted_partitions();
    if partitions.len() != info.active_tasks.len() {
        return Err(DecodeError::TaskCountMismatch {
            tasks: info.active_tasks.len(),
            partitions: partitions.len(),
        });
    }
    Ok(partitions
        .into_iter()
        .zip(info.active_tasks.iter().cloned())
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    //! Vectors built by hand from the message specs, plus (in `fixtures`) bytes captured from a
    //! real Kafka Streams 4.3.1 app.

    use super::*;

    /// A minimal big-endian writer mirroring Kafka's encodings, for building test vectors.
    #[derive(Default)]
    pub(crate) struct W(pub Vec<u8>);

    impl W {
        pub(crate) fn i8(mut self, v: i8) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        pub(crate) fn i16(mut self, v: i16) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        pub(crate) fn i32(mut self, v: i32) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        pub(crate) fn i64(mut self, v: i64) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        pub(crate) fn raw(mut self, b: &[u8]) -> Self {
            self.0.extend(b);
            self
        }
        pub(crate) fn string(self, s: &str) -> Self {
            self.i16(s.len() as i16).raw(s.as_bytes())
        }
        pub(crate) fn bytes(self, b: &[u8]) -> Self {
            self.i32(b.len() as i32).raw(b)
        }
        pub(crate) fn utf(mut self, s: &str) -> Self {
            self.0.extend((s.len() as u16).to_be_bytes());
            self.0.extend(s.as_bytes());
            self
        }
    }

    const UUID: [u8; 16] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    /// A v3 ConsumerProtocolSubscription wrapping `user_data`.
    pub(crate) fn subscription_v3(topics: &[&str], user_data: &[u8]) -> Vec<u8> {
        let mut w = W::default().i16(3).i32(topics.len() as i32);
        for t in topics {
            w = w.string(t);
        }
        w.bytes(user_data)
            .i32(1) // owned partitions: one topic
            .string(topics[0])
            .i32(2)
            .i32(0)
            .i32(1)
            .i32(7) // generation
            .i16(-1) // rack id null
            .0
    }

    /// A v11 SubscriptionInfo with the given task offset sums.
    pub(crate) fn subscription_info_v11(sums: &[(i32, i32, i64)]) -> Vec<u8> {
        let mut w = W::default()
            .i32(11)
            .i32(11)
            .raw(&UUID)
            .bytes(b"host:8080")
            .i32(sums.len() as i32);
        for (s, p, sum) in sums {
            w = w.i32(*s).i32(*p).i64(*sum).i16(-1);
        }
        w.i8(0).i32(0).i32(1).bytes(b"zone").bytes(b"a").0
    }

    /// A ConsumerProtocolAssignment wrapping `user_data`.
    pub(crate) fn assignment_v0(parts: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut w = W::default().i16(0).i32(parts.len() as i32);
        for (t, ps) in parts {
            w = w.string(t).i32(ps.len() as i32);
            for p in *ps {
                w = w.i32(*p);
            }
        }
        w.bytes(user_data).0
    }

    /// A v11 AssignmentInfo.
    pub(crate) fn assignment_info_v11(
        active: &[(i32, i32)],
        standby: &[(i32, i32)],
        next_rebalance_ms: i64,
    ) -> Vec<u8> {
        let mut w = W::default().i32(11).i32(11).i32(active.len() as i32);
        for (s, p) in active {
            w = w.i32(*s).i32(*p).i32(0);
        }
        w = w.i32(standby.len() as i32);
        for (s, p) in standby {
            w = w
                .i32(*s)
                .i32(*p)
                .i32(0)
                .i32(1)
                .utf("app-store-changelog")
                .i32(*p);
        }
        w.i32(1) // topic dictionary
            .i32(0)
            .utf("in")
            .i32(1) // active by host
            .utf("h")
            .i32(80)
            .i32(1)
            .i32(0)
            .i32(0)
            .i32(0) // standby by host: none
            .i32(0) // error code
            .i64(next_rebalance_ms)
            .0
    }

    #[test]
    fn consumer_subscription_v3() {
        let bytes = subscription_v3(&["in", "app-x-repartition"], b"ud");
        let s = decode_consumer_subscription(&bytes).unwrap();
        assert_eq!(s.version, 3);
        assert_eq!(s.topics, ["in", "app-x-repartition"]);
        assert_eq!(s.user_data.as_deref(), Some(&b"ud"[..]));
        assert_eq!(
            s.owned_partitions,
            [TopicPartitions {
                topic: "in".into(),
                partitions: vec![0, 1]
            }]
        );
        assert_eq!(s.generation_id, Some(7));
        assert_eq!(s.rack_id, None);
    }

    #[test]
    fn consumer_subscription_v0_and_future_versions() {
        let v0 = W::default().i16(0).i32(1).string("t").i32(-1).0;
        let s = decode_consumer_subscription(&v0).unwrap();
        assert_eq!(
            (s.topics.len(), s.user_data, s.generation_id),
            (1, None, None)
        );
        // A v9 member appends fields we do not know: they are ignored.
        let mut v9 = subscription_v3(&["t"], b"");
        v9[1] = 9;
        v9.extend([1, 2, 3]);
        assert_eq!(decode_consumer_subscription(&v9).unwrap().version, 9);
    }

    #[test]
    fn decodes_subscription_info_v11() {
        let bytes = subscription_info_v11(&[(0, 0, LATEST_OFFSET), (0, 1, 42), (1, 0, 7)]);
        let SubscriptionInfo::Decoded(s) = decode_subscription_info(&bytes).unwrap() else {
            panic!("not decoded");
        };
        assert_eq!(s.version, 11);
        assert_eq!(s.process_id, "12345678-9abc-def0-0123-456789abcdef");
        assert_eq!(s.user_end_point.as_deref(), Some("host:8080"));
        assert_eq!(s.task_offset_sums[&TaskId::new(0, 0)], LATEST_OFFSET);
        assert_eq!(s.task_offset_sums[&TaskId::new(0, 1)], 42);
        assert_eq!(s.task_offset_sums[&TaskId::new(1, 0)], 7);
        assert_eq!(s.error_code, Some(0));
        assert_eq!(s.client_tags["zone"], "a");
    }

    #[test]
    fn subscription_info_v9_nested_offset_sums() {
        let bytes = W::default()
            .i32(9)
            .i32(9)
            .raw(&UUID)
            .bytes(b"")
            .i32(1) // one subtopology
            .i32(2)
            .i32(2) // two partitions
            .i32(0)
            .i64(10)
            .i32(3)
            .i64(LATEST_OFFSET)
            .i8(1)
            .i32(0)
            .0;
        let SubscriptionInfo::Decoded(s) = decode_subscription_info(&bytes).unwrap() else {
            panic!("not decoded");
        };
        assert_eq!(s.user_end_point, None);
        assert_eq!(s.task_offset_sums.len(), 2);
        assert_eq!(s.task_offset_sums[&TaskId::new(2, 0)], 10);
        assert_eq!(s.task_offset_sums[&TaskId::new(2, 3)], LATEST_OFFSET);
        assert_eq!(s.unique_field, Some(1));
    }

    #[test]
    fn subscription_info_v2_task_sets_map_to_sentinels() {
        let bytes = W::default()
            .i32(2)
            .raw(&UUID)
            .i32(1)
            .i32(0)
            .i32(1) // prev active 0_1
            .i32(1)
            .i32(0)
            .i32(2) // standby 0_2
            .bytes(b"h:1")
            .0;
        let SubscriptionInfo::Decoded(s) = decode_subscription_info(&bytes).unwrap() else {
            panic!("not decoded");
        };
        assert_eq!(s.latest_supported_version, -1);
        assert_eq!(s.task_offset_sums[&TaskId::new(0, 1)], LATEST_OFFSET);
        assert_eq!(s.task_offset_sums[&TaskId::new(0, 2)], UNKNOWN_OFFSET_SUM);
    }

    #[test]
    fn subscription_info_future_version_is_a_value_not_an_error() {
        let bytes = W::default().i32(14).i32(14).raw(&[0xde, 0xad]).0;
        assert_eq!(
            decode_subscription_info(&bytes).unwrap(),
            SubscriptionInfo::UnknownVersion {
                version: 14,
                latest_supported_version: Some(14)
            }
        );
        assert!(decode_subscription_info(&[0, 0]).is_err());
    }

    #[test]
    fn truncated_subscription_info_is_an_error_not_a_panic() {
        let bytes = subscription_info_v11(&[(0, 0, 5)]);
        for cut in 0..bytes.len() {
            assert!(
                decode_subscription_info(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn assignment_info_v11_and_positional_tasks() {
        let info = assignment_info_v11(&[(0, 1), (1, 0), (0, 0)], &[(0, 2)], 1_700_000_000_000);
        let AssignmentInfo::Decoded(a) = decode_assignment_info(&info).unwrap() else {
            panic!("not decoded");
        };
        assert_eq!(a.commonly_supported_version, Some(11));
        assert_eq!(a.standby_tasks, [TaskId::new(0, 2)]);
        assert!(a.rebalance_scheduled());
        // Partitions in the wrapper in any order; tasks follow the sorted order.
        let wrapper = assignment_v0(&[("in", &[1, 0]), ("app-x-repartition", &[0])], &info);
        let c = decode_consumer_assignment(&wrapper).unwrap();
        let pairs = active_task_partitions(&c, &a).unwrap();
        assert_eq!(
            pairs,
            [
                (("app-x-repartition".into(), 0), TaskId::new(0, 1)),
                (("in".into(), 0), TaskId::new(1, 0)),
                (("in".into(), 1), TaskId::new(0, 0)),
            ]
        );
    }

    #[test]
    fn assignment_info_without_pending_rebalance() {
        let info = assignment_info_v11(&[(0, 0)], &[], NO_REBALANCE_SCHEDULED);
        let AssignmentInfo::Decoded(a) = decode_assignment_info(&info).unwrap() else {
            panic!("not decoded");
        };
        assert!(!a.rebalance_scheduled());
        assert_eq!(a.error_name(), "NONE");
    }

    #[test]
    fn assignment_info_v4_with_partitions_by_host() {
        let bytes = W::default()
            .i32(4)
            .i32(4)
            .i32(1)
            .i32(0)
            .i32(0) // active 0_0
            .i32(0) // no standby
            .i32(1)
            .utf("host")
            .i32(1234)
            .i32(1)
            .utf("in")
            .i32(0)
            .i32(2) // error code
            .0;
        let AssignmentInfo::Decoded(a) = decode_assignment_info(&bytes).unwrap() else {
            panic!("not decoded");
        };
        assert_eq!(a.active_tasks, [TaskId::new(0, 0)]);
        assert_eq!(a.error_code, 2);
        assert_eq!(a.error_name(), "VERSION_PROBING");
        assert_eq!(a.next_rebalance_ms, None);
        assert!(!a.rebalance_scheduled());
    }

    #[test]
    fn assignment_info_named_topology_and_future_version() {
        let bytes = W::default()
            .i32(10)
            .i32(10)
            .i32(1)
            .i32(3)
            .i32(4)
            .i32(2)
            .raw(&[0, b'n', 0, b't']) // "nt" as Java chars
            .i32(0)
            .i32(0)
            .i32(0)
            .i32(0)
            .i32(0)
            .i64(NO_REBALANCE_SCHEDULED)
            .0;
        let AssignmentInfo::Decoded(a) = decode_assignment_info(&bytes).unwrap() else {
            panic!("not decoded");
        };
        assert_eq!(a.active_tasks[0].to_string(), "nt__3_4");
        assert_eq!(
            decode_assignment_info(&W::default().i32(12).0).unwrap(),
            AssignmentInfo::UnknownVersion { version: 12 }
        );
    }

    #[test]
    fn mismatched_task_count_is_reported() {
        let info = assignment_info_v11(&[(0, 0)], &[], NO_REBALANCE_SCHEDULED);
        let AssignmentInfo::Decoded(a) = decode_assignment_info(&info).unwrap() else {
            panic!("not decoded");
        };
        let c = decode_consumer_assignment(&assignment_v0(&[("in", &[0, 1])], &info)).unwrap();
        assert_eq!(
            active_task_partitions(&c, &a),
            Err(DecodeError::TaskCountMismatch {
                tasks: 1,
                partitions: 2
            })
        );
    }

    /// Decodes `buf` fully: every byte must belong to a field.
    fn exact<T>(buf: &[u8], f: fn(&mut Reader<'_>) -> Result<T, DecodeError>) -> T {
        let mut r = Reader::new(buf);
        let v = f(&mut r).unwrap();
        assert_eq!(r.remaining(), 0, "trailing bytes");
        v
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Every version as Kafka Streams 4.3.1 itself encodes it (see
    /// `tests/fixtures/kafka/GenUserdata.java` for how the file was made).
    #[test]
    fn decodes_kafka_streams_own_encodings_of_every_version() {
        let fixture = include_str!("../../tests/fixtures/kafka/streams-4.3.1-userdata.txt");
        let mut seen = (0, 0);
        for line in fixture.lines() {
            let mut parts = line.split(' ');
            let (kind, version, data) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let version: i32 = version.parse().unwrap();
            match kind {
                "subscription" => {
                    seen.0 += 1;
                    let SubscriptionInfo::Decoded(s) = exact(&unhex(data), subscription_info)
                    else {
                        panic!("v{version} not decoded");
                    };
                    assert_eq!(s.version, version);
                    assert_eq!(s.process_id, "12345678-9abc-def0-0123-456789abcdef");
                    assert_eq!(s.user_end_point.is_some(), version >= 2, "v{version}");
                    let expect: BTreeMap<TaskId, i64> = if version >= 7 {
                        [
                            (TaskId::new(0, 0), LATEST_OFFSET),
                            (TaskId::new(1, 0), 1234),
                            (TaskId::new(1, 1), 0),
                        ]
                        .into()
                    } else {
                        [
                            (TaskId::new(0, 0), LATEST_OFFSET),
                            (TaskId::new(1, 0), UNKNOWN_OFFSET_SUM),
                            (TaskId::new(1, 1), UNKNOWN_OFFSET_SUM),
                        ]
                        .into()
                    };
                    assert_eq!(s.task_offset_sums, expect, "v{version}");
                    assert_eq!(s.unique_field, (version >= 8).then_some(1));
                    assert_eq!(s.error_code, (version >= 9).then_some(0));
                    assert_eq!(s.client_tags.contains_key("zone"), version >= 11);
                }
                "assignment" => {
                    seen.1 += 1;
                    let AssignmentInfo::Decoded(a) = exact(&unhex(data), assignment_info) else {
                        panic!("v{version} not decoded");
                    };
                    assert_eq!(a.version, version);
                    assert_eq!(
                        a.active_tasks,
                        [TaskId::new(0, 0), TaskId::new(1, 0)],
                        "v{version}"
                    );
                    assert_eq!(a.standby_tasks, [TaskId::new(1, 1)], "v{version}");
                    assert_eq!(a.error_code, if version >= 4 { 2 } else { 0 });
                    assert_eq!(
                        a.next_rebalance_ms,
                        (version >= 7).then_some(1_700_000_000_000)
                    );
                }
                "assignor-error" => {
                    let a = StreamsAssignment {
                        error_code: version,
                        ..Default::default()
                    };
                    assert_eq!(a.error_name(), data);
                }
                other => panic!("unknown fixture line {other}"),
            }
        }
        assert_eq!(seen, (11, 11));
    }
}
