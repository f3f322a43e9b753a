//! The app's consumer group as DescribeGroups reports it, and its members decoded.

use std::collections::BTreeMap;

use super::lag::Partition;
use super::userdata::{
    AssignmentInfo, SubscriptionInfo, TaskId, active_task_partitions, decode_assignment_info,
    decode_consumer_assignment, decode_consumer_subscription, decode_subscription_info,
};

/// Protocol type of consumer groups (Kafka Streams uses the consumer protocol).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Assignment protocol name of Kafka Streams' `StreamsPartitionAssignor`.
pub const STREAMS_PROTOCOL: &str = "stream";

/// An owned copy of a DescribeGroups answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSnapshot {
    /// Group state.
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol; empty unless Stable.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberSnapshot>,
}

impl GroupSnapshot {
    /// Whether the member data are Kafka Streams' (and thus decodable here).
    pub fn is_streams(&self) -> bool {
        self.protocol_type == CONSUMER_PROTOCOL_TYPE && self.protocol == STREAMS_PROTOCOL
    }
}

/// One member as DescribeGroups reports it. The coordinator returns metadata and assignment
/// only while the group is Stable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSnapshot {
    /// Member id.
    pub member_id: String,
    /// `client.id` of the consumer.
    pub client_id: String,
    /// Host it connects from.
    pub client_host: String,
    /// Raw `ConsumerProtocolSubscription`.
    pub metadata: Option<Vec<u8>>,
    /// Raw `ConsumerProtocolAssignment`.
    pub assignment: Option<Vec<u8>>,
}

/// A member with its Streams data decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedMember {
    /// `client.id`.
    pub client_id: String,
    /// Host.
    pub host: String,
    /// The pod it belongs to.
    pub pod: Option<String>,
    /// Streams subscription version.
    pub subscription_version: Option<i32>,
    /// Reported offset sums per task; `None` when the subscription was not decoded.
    pub offset_sums: Option<BTreeMap<TaskId, i64>>,
    /// Assigned partitions, sorted.
    pub assigned: Vec<Partition>,
    /// Active tasks with their source partitions.
    pub active: Vec<(Partition, TaskId)>,
    /// Standby tasks.
    pub standby: Vec<TaskId>,
    /// The assignment schedules a follow-up rebalance.
    pub rebalance_scheduled: bool,
    /// The assignor's error, when not NONE: (code, name).
    pub assignment_error: Option<(i32, &'static str)>,
    /// What could not be decoded.
    pub decode_problems: Vec<String>,
    /// What a streams group tells of the member beyond the classic fields.
    pub streams: Option<StreamsMemberFacts>,
}

/// What a streams group (KIP-1071) tells of a member that a classic group does not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamsMemberFacts {
    /// `process.id` of its Kafka Streams instance.
    pub process_id: String,
    /// `client.rack`.
    pub rack: Option<String>,
    /// Client tags.
    pub client_tags: BTreeMap<String, String>,
    /// Member epoch.
    pub member_epoch: i32,
    /// Warm-up tasks.
    pub warmup: Vec<TaskId>,
}

/// The pod a member belongs to: the operator sets `client.id` to the pod name, and Kafka
/// Streams names each thread's consumer `<client.id>-StreamThread-<n>-consumer`. The longest
/// matching pod name wins, so `app-1` never claims `app-10`'s threads.
pub fn pod_of<'a>(client_id: &str, pods: &'a [String]) -> Option<&'a String> {
    pods.iter()
        .filter(|pod| {
            client_id == pod.as_str()
                || client_id
                    .strip_prefix(pod.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|pod| pod.len())
}

/// Decodes a member of a Streams group.
pub fn decode_member(m: &MemberSnapshot, pods: &[String], streams: bool) -> DecodedMember {
    let mut out = DecodedMember {
        client_id: m.client_id.clone(),
        host: m.client_host.clone(),
        pod: pod_of(&m.client_id, pods).cloned(),
        ..Default::default()
    };
    if !streams {
        return out;
    }
    if let Some(bytes) = m.metadata.as_deref().filter(|b| !b.is_empty()) {
        match decode_consumer_subscription(bytes).map(|s| s.user_data) {
            Ok(Some(ud)) => match decode_subscription_info(&ud) {
                Ok(SubscriptionInfo::Decoded(s)) => {
                    out.subscription_version = Some(s.version);
                    out.offset_sums = Some(s.task_offset_sums);
                }
                Ok(SubscriptionInfo::UnknownVersion { version, .. }) => {
                    out.subscription_version = Some(version);
                    out.decode_problems.push(format!(
                        "subscription data version {version} is newer than known"
                    ));
                }
                Err(e) => out.decode_problems.push(format!("subscription data: {e}")),
            },
            Ok(None) => out
                .decode_problems
                .push("subscription carries no Streams data".into()),
            Err(e) => out.decode_problems.push(format!("subscription: {e}")),
        }
    }
    if let Some(bytes) = m.assignment.as_deref().filter(|b| !b.is_empty()) {
        match decode_consumer_assignment(bytes) {
            Ok(a) => {
                out.assigned = a.sorted_partitions();
                match a.user_data.as_deref().map(decode_assignment_info) {
                    Some(Ok(AssignmentInfo::Decoded(info))) => {
                        out.standby = info.standby_tasks.clone();
                        out.rebalance_scheduled = info.rebalance_scheduled();
                        if info.error_code != 0 {
                            out.assignment_error = Some((info.error_code, info.error_name()));
                        }
                        match active_task_partitions(&a, &info) {
                            Ok(pairs) => out.active = pairs,
                            Err(e) => out.decode_problems.push(format!("assignment: {e}")),
                        }
                    }
                    Some(Ok(AssignmentInfo::UnknownVersion { version })) => {
                        out.decode_problems.push(format!(
                            "assignment data version {version} is newer than known"
                        ))
                    }
                    Some(Err(e)) => out.decode_problems.push(format!("assignment data: {e}")),
                    None => out
                        .decode_problems
                        .push("assignment carries no Streams data".into()),
                }
            }
            Err(e) => out.decode_problems.push(format!("assignment: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::vectors::{
        assignment_info_v11, assignment_v0, subscription_info_v11, subscription_v3,
    };
    use crate::userdata::{LATEST_OFFSET, NO_REBALANCE_SCHEDULED};

    fn pods(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_thread_client_ids_to_pods() {
        let p = pods(&["wc-1", "wc-10", "wc"]);
        assert_eq!(
            pod_of("wc-1-StreamThread-1-consumer", &p).map(String::as_str),
            Some("wc-1")
        );
        assert_eq!(
            pod_of("wc-10-StreamThread-2-consumer", &p).map(String::as_str),
            Some("wc-10")
        );
        assert_eq!(pod_of("wc-1", &p).map(String::as_str), Some("wc-1"));
        assert_eq!(pod_of("other-StreamThread-1-consumer", &p), None);
        assert_eq!(pod_of("wcx-StreamThread-1-consumer", &p), None);
    }

    #[test]
    fn decodes_a_streams_member() {
        let sub = subscription_v3(&["in"], &subscription_info_v11(&[(1, 0, LATEST_OFFSET)]));
        let info = assignment_info_v11(&[(0, 0), (1, 0)], &[(1, 1)], NO_REBALANCE_SCHEDULED);
        let asg = assignment_v0(&[("in", &[0]), ("wc-x-repartition", &[0])], &info);
        let m = MemberSnapshot {
            member_id: "m".into(),
            client_id: "wc-0-StreamThread-1-consumer".into(),
            client_host: "/10.0.0.1".into(),
            metadata: Some(sub),
            assignment: Some(asg),
        };
        let d = decode_member(&m, &pods(&["wc-0"]), true);
        assert_eq!(d.pod.as_deref(), Some("wc-0"));
        assert_eq!(d.subscription_version, Some(11));
        assert_eq!(
            d.active,
            [
                (("in".into(), 0), TaskId::new(0, 0)),
                (("wc-x-repartition".into(), 0), TaskId::new(1, 0))
            ]
        );
        assert_eq!(d.standby, [TaskId::new(1, 1)]);
        assert!(d.decode_problems.is_empty());
        assert!(!d.rebalance_scheduled);
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        let m = MemberSnapshot {
            client_id: "wc-0-StreamThread-1-consumer".into(),
            metadata: Some(vec![0, 3, 0xff]),
            assignment: Some(vec![0]),
            ..Default::default()
        };
        let d = decode_member(&m, &pods(&["wc-0"]), true);
        assert_eq!(d.decode_problems.len(), 2);
        assert_eq!(d.offset_sums, None);
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s = s.trim();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Bytes of two real word-count instances (see `tests/fixtures/README.md`).
    #[test]
    fn decodes_members_captured_from_a_real_app() {
        let captured = [
            (
                "wc-0",
                include_str!("../tests/fixtures/wordcount-wc-0-subscription.hex"),
                include_str!("../tests/fixtures/wordcount-wc-0-assignment.hex"),
            ),
            (
                "wc-1",
                include_str!("../tests/fixtures/wordcount-wc-1-subscription.hex"),
                include_str!("../tests/fixtures/wordcount-wc-1-assignment.hex"),
            ),
        ];
        let mut active = Vec::new();
        let mut standby = Vec::new();
        for (pod, sub, asg) in captured {
            let m = MemberSnapshot {
                member_id: "m".into(),
                client_id: format!("{pod}-StreamThread-1-consumer"),
                client_host: "/127.0.0.1".into(),
                metadata: Some(unhex(sub)),
                assignment: Some(unhex(asg)),
            };
            let d = decode_member(&m, &pods(&["wc-0", "wc-1"]), true);
            assert!(d.decode_problems.is_empty(), "{:?}", d.decode_problems);
            assert_eq!(d.pod.as_deref(), Some(pod));
            assert_eq!(d.subscription_version, Some(11));
            assert!(d.offset_sums.is_some());
            assert!(!d.rebalance_scheduled);
            for ((topic, partition), task) in &d.active {
                // Subtopology 0 reads the input topic, 1 the repartition topic.
                let sub = if topic.ends_with(".words") { 0 } else { 1 };
                assert!(
                    sub == 0 || topic.ends_with("-counts-repartition"),
                    "{topic}"
                );
                assert_eq!((task.subtopology, task.partition), (sub, *partition));
                active.push(task.to_string());
            }
            standby.extend(d.standby.iter().map(ToString::to_string));
        }
        active.sort();
        standby.sort();
        assert_eq!(active, ["0_0", "0_1", "0_2", "1_0", "1_1", "1_2"]);
        assert_eq!(standby, ["1_0", "1_1", "1_2"]);
    }
}
