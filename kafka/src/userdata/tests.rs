//! The decoders against bytes captured from a real Kafka Streams 4.3.1 app.

use std::collections::BTreeMap;

use super::assignment::assignment_info;
use super::subscription::subscription_info;
use super::{
    AssignmentInfo, LATEST_OFFSET, StreamsAssignment, SubscriptionInfo, TaskId, UNKNOWN_OFFSET_SUM,
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
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every version as Kafka Streams 4.3.1 itself encodes it (see
/// `tests/fixtures/GenUserdata.java` for how the file was made).
#[test]
fn decodes_kafka_streams_own_encodings_of_every_version() {
    let fixture = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/streams-4.3.1-userdata.txt"
    ));
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
