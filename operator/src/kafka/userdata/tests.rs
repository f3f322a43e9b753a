//! Vectors built by hand from the message specs, plus (in `fixtures`) bytes captured from a
//! real Kafka Streams 4.3.1 app.

use std::collections::BTreeMap;

use super::assignment::assignment_info;
use super::subscription::subscription_info;
use super::{
    AssignmentInfo, LATEST_OFFSET, StreamsAssignment, SubscriptionInfo, TaskId, UNKNOWN_OFFSET_SUM,
};
use crate::kafka::wire::{DecodeError, Reader};

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

pub(super) const UUID: [u8; 16] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
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
    let fixture = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kafka/streams-4.3.1-userdata.txt"
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
