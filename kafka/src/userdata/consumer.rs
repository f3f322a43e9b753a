//! Decoders of the consumer protocol's wrappers (`ConsumerProtocolSubscription` /
//! `ConsumerProtocolAssignment`, versions 0-3) around the assignor's user data.

use super::{ConsumerAssignment, ConsumerSubscription, TopicPartitions};
use crate::wire::{DecodeError, Reader};

/// The longest topic name Kafka allows (`Topic.MAX_NAME_LENGTH`). A longer one is corrupt
/// data, and refusing it bounds what the decoded member costs: its topic is copied for each
/// of its partitions.
pub const MAX_TOPIC_NAME: usize = 249;

/// Decodes a `ConsumerProtocolSubscription` (DescribeGroups member metadata).
pub fn decode_consumer_subscription(buf: &[u8]) -> Result<ConsumerSubscription, DecodeError> {
    let mut r = Reader::new(buf);
    let version = r.i16("subscription version")?;
    let n = r.len("subscription topics", 2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(
            r.string_within("subscription topic", MAX_TOPIC_NAME)?
                .unwrap_or_default(),
        );
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
        let topic = r.string_within(what, MAX_TOPIC_NAME)?.unwrap_or_default();
        let m = r.len(what, 4)?;
        let mut partitions = Vec::with_capacity(m);
        for _ in 0..m {
            partitions.push(r.i32(what)?);
        }
        out.push(TopicPartitions { topic, partitions });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::vectors::{W, assignment_v0, subscription_v3};

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
    fn a_topic_name_longer_than_kafka_allows_is_refused() {
        let long = "t".repeat(MAX_TOPIC_NAME + 1);
        let ok = assignment_v0(&[(&long[1..], &[0, 1])], b"");
        assert!(decode_consumer_assignment(&ok).is_ok());
        let bad = assignment_v0(&[(&long, &[0, 1])], b"");
        assert!(matches!(
            decode_consumer_assignment(&bad),
            Err(DecodeError::InvalidLength { len: 250, .. })
        ));
        assert!(decode_consumer_subscription(&subscription_v3(&[&long], b"")).is_err());
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
}
