//! Decoder of Kafka Streams' `SubscriptionInfo` (versions 1-11), down to the offset sums of
//! the state a member holds per task.

use std::collections::BTreeMap;

use super::{
    LATEST_KNOWN_STREAMS_VERSION, LATEST_OFFSET, StreamsSubscription, SubscriptionInfo, TaskId,
    UNKNOWN_OFFSET_SUM,
};
use crate::wire::{DecodeError, Reader};

/// First version whose subscription carries task offset sums instead of task sets.
const MIN_OFFSET_SUM_VERSION: i32 = 7;

/// Decodes Kafka Streams' `SubscriptionInfo` (the subscription's user data), laid out per
/// `SubscriptionInfoData.json` (Kafka's generated, non-flexible message encoding).
pub fn decode_subscription_info(buf: &[u8]) -> Result<SubscriptionInfo, DecodeError> {
    subscription_info(&mut Reader::new(buf))
}

/// Decodes a `SubscriptionInfo` from `r`, leaving any bytes after it unread.
pub(super) fn subscription_info(r: &mut Reader<'_>) -> Result<SubscriptionInfo, DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::vectors::{UUID, W, subscription_info_v11};

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
}
