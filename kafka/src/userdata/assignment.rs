//! Decoder of Kafka Streams' `AssignmentInfo` (versions 1-11), the helpers that skip the
//! partitions-by-host maps it carries, and the pairing of active tasks with partitions.

use super::{
    AssignmentInfo, ConsumerAssignment, LATEST_KNOWN_STREAMS_VERSION, Partition, StreamsAssignment,
    TaskId,
};
use crate::wire::{DecodeError, Reader};

/// First Streams protocol version whose task ids carry a named topology.
const MIN_NAMED_TOPOLOGY_VERSION: i32 = 10;

/// Decodes Kafka Streams' `AssignmentInfo` (the assignment's user data), laid out per
/// `AssignmentInfo.encode()` (hand-written `DataOutputStream` encoding).
pub fn decode_assignment_info(buf: &[u8]) -> Result<AssignmentInfo, DecodeError> {
    assignment_info(&mut Reader::new(buf))
}

/// Decodes an `AssignmentInfo` from `r`, leaving any bytes after it unread.
pub(super) fn assignment_info(r: &mut Reader<'_>) -> Result<AssignmentInfo, DecodeError> {
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
    // Counted before the partitions are listed: each names its topic, a copy a mismatch
    // need not cost.
    let count: usize = assignment
        .partitions
        .iter()
        .map(|tp| tp.partitions.len())
        .sum();
    if count != info.active_tasks.len() {
        return Err(DecodeError::TaskCountMismatch {
            tasks: info.active_tasks.len(),
            partitions: count,
        });
    }
    Ok(assignment
        .sorted_partitions()
        .into_iter()
        .zip(info.active_tasks.iter().cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdata::vectors::{W, assignment_info_v11, assignment_v0};
    use crate::userdata::{NO_REBALANCE_SCHEDULED, decode_consumer_assignment};

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
}
