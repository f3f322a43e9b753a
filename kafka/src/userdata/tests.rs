//! The decoders against bytes captured from real Kafka Streams 4.3.1 and 4.4.0 apps.

use std::collections::BTreeMap;

use super::assignment::assignment_info;
use super::subscription::subscription_info;
use super::{
    AssignmentInfo, LATEST_OFFSET, StreamsAssignment, SubscriptionInfo, TaskId, UNKNOWN_OFFSET_SUM,
    active_task_partitions, decode_assignment_info, decode_consumer_assignment,
    decode_consumer_subscription, decode_subscription_info,
};
use crate::wire::{DecodeError, Reader};

/// Decodes `buf` fully: every byte must belong to a field.
fn exact<T>(buf: &[u8], f: fn(&mut Reader<'_>) -> Result<T, DecodeError>) -> T {
    let mut r = Reader::new(buf);
    let v = f(&mut r).unwrap();
    assert_eq!(r.remaining(), 0, "trailing bytes");
    v
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every version as Kafka Streams 4.3.1 and 4.4.0 themselves encode it (see
/// `tests/fixtures/GenUserdata.java` for how the files were made).
#[test]
fn decodes_kafka_streams_own_encodings_of_every_version() {
    let fixtures = [
        (
            "4.3.1",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/streams-4.3.1-userdata.txt"
            )),
        ),
        (
            "4.4.0",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/streams-4.4.0-userdata.txt"
            )),
        ),
    ];
    for (streams_version, fixture) in fixtures {
        check_own_encodings(streams_version, fixture);
    }
}

/// Decodes every line of one `GenUserdata.java` output and checks it against the values the
/// generator encoded.
fn check_own_encodings(streams_version: &str, fixture: &str) {
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
                let SubscriptionInfo::Decoded(s) = exact(&unhex(data), subscription_info) else {
                    panic!("{streams_version}: v{version} not decoded");
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
                    panic!("{streams_version}: v{version} not decoded");
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
    assert_eq!(seen, (11, 11), "{streams_version}");
}

/// The DescribeGroups member data of the two word-count instances (Kafka Streams 4.3.1 and
/// 4.4.0, see `tests/fixtures/README.md`): the consumer wrappers and the Streams data inside.
#[test]
fn decodes_members_captured_from_real_apps_of_each_version() {
    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/",
                $name
            ))
        };
    }
    let captured = [
        (
            "4.3.1",
            [
                (
                    fixture!("wordcount-wc-0-subscription.hex"),
                    fixture!("wordcount-wc-0-assignment.hex"),
                ),
                (
                    fixture!("wordcount-wc-1-subscription.hex"),
                    fixture!("wordcount-wc-1-assignment.hex"),
                ),
            ],
        ),
        (
            "4.4.0",
            [
                (
                    fixture!("wordcount-4.4.0-wc-0-subscription.hex"),
                    fixture!("wordcount-4.4.0-wc-0-assignment.hex"),
                ),
                (
                    fixture!("wordcount-4.4.0-wc-1-subscription.hex"),
                    fixture!("wordcount-4.4.0-wc-1-assignment.hex"),
                ),
            ],
        ),
    ];
    for (streams_version, members) in captured {
        let (mut active, mut standby) = (Vec::new(), Vec::new());
        for (sub, asg) in members {
            let sub = decode_consumer_subscription(&unhex(sub)).unwrap();
            assert!(
                sub.topics.iter().any(|t| t.ends_with(".words")),
                "{streams_version}: {:?}",
                sub.topics
            );
            let SubscriptionInfo::Decoded(info) =
                decode_subscription_info(sub.user_data.as_deref().unwrap()).unwrap()
            else {
                panic!("{streams_version}: subscription not decoded");
            };
            assert_eq!(info.version, 11, "{streams_version}");
            assert_eq!(info.process_id.len(), 36, "{streams_version}");

            let asg = decode_consumer_assignment(&unhex(asg)).unwrap();
            let AssignmentInfo::Decoded(a) =
                decode_assignment_info(asg.user_data.as_deref().unwrap()).unwrap()
            else {
                panic!("{streams_version}: assignment not decoded");
            };
            assert_eq!(a.version, 11, "{streams_version}");
            assert_eq!(a.error_code, 0, "{streams_version}");
            assert!(!a.rebalance_scheduled(), "{streams_version}");
            for ((topic, partition), task) in active_task_partitions(&asg, &a).unwrap() {
                // Subtopology 0 reads the input topic, 1 the repartition topic.
                let expect = if topic.ends_with(".words") { 0 } else { 1 };
                assert!(
                    expect == 0 || topic.ends_with("-counts-repartition"),
                    "{streams_version}: {topic}"
                );
                assert_eq!((task.subtopology, task.partition), (expect, partition));
                active.push(task.to_string());
            }
            standby.extend(a.standby_tasks.iter().map(ToString::to_string));
        }
        active.sort();
        standby.sort();
        assert_eq!(
            active,
            ["0_0", "0_1", "0_2", "1_0", "1_1", "1_2"],
            "{streams_version}"
        );
        assert_eq!(standby, ["1_0", "1_1", "1_2"], "{streams_version}");
    }
}
