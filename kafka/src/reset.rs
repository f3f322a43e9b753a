//! The Kafka half of an application reset, as Kafka's `kafka-streams-application-reset` does
//! it: move the group's committed input offsets to a target and delete the internal topics.
//!
//! This module is the pure part: the targets, the commit metadata that marks a reset's
//! offsets, the checks made before a reset starts, and what a reset did. The calls to the
//! brokers are methods of [`ClientPool`](crate::ClientPool) (`group_members`, `check_reset`,
//! `reset_offsets`, `committed_with_metadata`, `internal_topic_names`, `delete_topics`).
//!
//! The marker makes the offset step idempotent: a reset resumed after a crash finds its own
//! commits by their metadata and does not commit again, so offsets the group committed in
//! between are never moved back. The marker lasts only until the app's next commit (Kafka
//! Streams writes its own metadata), which is after the reset by construction.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::lag::Partition;

/// What precedes the reset id in a reset's commit metadata.
const MARKER_PREFIX: &str = "kstreams.dev/reset=";

/// The group state in which the broker accepts commits from a client outside the group.
pub(crate) const EMPTY_STATE: &str = "Empty";

/// Where a reset moves each input partition's committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetTarget {
    /// The log start offset (low watermark): reprocess everything the topic still holds.
    Earliest,
    /// The log end offset (high watermark): skip everything written so far.
    Latest,
    /// The first offset whose record timestamp is at or after this time (epoch ms); the high
    /// watermark where there is none.
    Timestamp(i64),
}

/// The commit metadata a reset's offsets carry: "kstreams.dev/reset=<id>".
pub fn reset_marker(id: &str) -> String {
    format!("{MARKER_PREFIX}{id}")
}

/// The reset id a commit's metadata carries, if a reset made that commit.
pub fn reset_id_of(metadata: &str) -> Option<&str> {
    metadata.strip_prefix(MARKER_PREFIX)
}

/// The group as a reset sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembers {
    /// The group state DescribeGroups reports (`Empty`, `Stable`, `PreparingRebalance`, ...).
    pub state: String,
    /// Members joined now.
    pub members: usize,
}

impl GroupMembers {
    /// Whether the broker accepts a reset's commits now: no member, and no rebalance under way.
    pub fn accepts_reset(&self) -> bool {
        self.members == 0 && self.state == EMPTY_STATE
    }
}

/// What a reset of the offsets did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsReset {
    /// Input partitions whose committed offset the reset set (or had set, when already applied).
    pub partitions: usize,
    /// Input topics those partitions belong to.
    pub topics: usize,
    /// The group's offsets already carried this reset's marker: nothing was committed.
    pub already_applied: bool,
}

/// Why a reset cannot run, found before its first step (a user-facing message via Display).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResetRefusal {
    /// Input topics that do not exist: their offsets cannot be reset.
    #[error(
        "input topics {} do not exist: create them or remove them from the app's inputs, then request the reset again",
        .0.join(", ")
    )]
    MissingInputs(Vec<String>),
    /// The timestamp is older than now - retention.ms of that topic: records since then are
    /// gone, so the reprocessing would be incomplete.
    #[error(
        "input topic {topic} keeps records for {} only (retention.ms={retention_ms}): records since the reset timestamp are already partly deleted, so reprocessing from it would be incomplete; choose a timestamp within the last {}, or Earliest",
        human_ms(*.retention_ms),
        human_ms(*.retention_ms)
    )]
    BeforeRetention {
        /// The input topic with the shortest retention among those the timestamp precedes.
        topic: String,
        /// Its `retention.ms`.
        retention_ms: i64,
    },
}

impl ResetRefusal {
    /// A short CamelCase label for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            ResetRefusal::MissingInputs(_) => "ResetInputsMissing",
            ResetRefusal::BeforeRetention { .. } => "ResetBeforeRetention",
        }
    }
}

/// A duration in ms as a person reads it: `90m`, `7d`, `36h`, `1500ms`.
fn human_ms(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| ms >= *unit && ms % unit == 0)
        .map(|(unit, name)| format!("{}{name}", ms / unit))
        .unwrap_or_else(|| format!("{ms}ms"))
}

/// How long a topic keeps records by time, from its `retention.ms` and `cleanup.policy`:
/// `None` when time never deletes them (retention -1, or compaction only, which ignores
/// retention.ms; so does an empty policy). `Err` names a value that cannot be read.
pub(crate) fn time_limit(retention_ms: &str, cleanup_policy: &str) -> Result<Option<i64>, String> {
    if !cleanup_policy.split(',').any(|p| p.trim() == "delete") {
        return Ok(None);
    }
    let ms: i64 = retention_ms
        .trim()
        .parse()
        .map_err(|_| format!("retention.ms {retention_ms:?} is not a number"))?;
    Ok((ms >= 0).then_some(ms))
}

/// The refusal of a reset to `timestamp_ms` when it precedes what a topic still keeps:
/// `limits` holds each input topic's time limit (see [`time_limit`]). The topic reported is
/// the one with the shortest limit, whose bound is the one to respect.
pub(crate) fn retention_refusal(
    timestamp_ms: i64,
    now_ms: i64,
    limits: &BTreeMap<String, Option<i64>>,
) -> Option<ResetRefusal> {
    limits
        .iter()
        .filter_map(|(topic, limit)| limit.map(|ms| (ms, topic)))
        .filter(|(ms, _)| timestamp_ms < now_ms.saturating_sub(*ms))
        .min()
        .map(|(retention_ms, topic)| ResetRefusal::BeforeRetention {
            topic: topic.clone(),
            retention_ms,
        })
}

/// Every partition of every input topic (`topics`: name -> partition count), or the inputs
/// that do not exist.
pub(crate) fn input_partitions(
    inputs: &[String],
    topics: &BTreeMap<String, i32>,
) -> Result<Vec<Partition>, Vec<String>> {
    let missing = crate::topics::missing_inputs(inputs, topics);
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut names: Vec<&String> = inputs.iter().collect();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .flat_map(|t| {
            let count = topics.get(t).copied().unwrap_or_default();
            (0..count).map(move |p| (t.clone(), p))
        })
        .collect())
}

/// The offset a Timestamp target gives a partition: the first offset at or after the time
/// (`found`, as ListOffsets answered; `None` when no record is that recent), else the high
/// watermark. `high` is asked after `found`, so records written in between cannot put `found`
/// past it; the `min` only guards that order.
pub(crate) fn timestamp_target(found: Option<i64>, high: i64) -> i64 {
    found.map_or(high, |o| o.min(high))
}

/// Whether every partition's committed metadata is `marker`: the reset already committed.
/// No partitions means nothing was committed, so never applied.
pub(crate) fn already_applied(
    committed: &BTreeMap<Partition, (i64, String)>,
    partitions: &[Partition],
    marker: &str,
) -> bool {
    !partitions.is_empty()
        && partitions
            .iter()
            .all(|p| committed.get(p).is_some_and(|(_, meta)| meta == marker))
}

/// The partitions whose committed offset and metadata differ from the intended ones.
pub(crate) fn not_committed(
    committed: &BTreeMap<Partition, (i64, String)>,
    targets: &BTreeMap<Partition, i64>,
    marker: &str,
) -> Vec<Partition> {
    targets
        .iter()
        .filter(|(p, o)| {
            committed
                .get(*p)
                .is_none_or(|(c, meta)| c != *o || meta != marker)
        })
        .map(|(p, _)| p.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str, n: i32) -> Partition {
        (t.to_string(), n)
    }

    #[test]
    fn marker_round_trips_and_other_metadata_is_not_a_reset() {
        assert_eq!(reset_marker("r-1"), "kstreams.dev/reset=r-1");
        assert_eq!(reset_id_of(&reset_marker("r-1")), Some("r-1"));
        // Kafka Streams commits a base64 partition time as metadata.
        assert_eq!(reset_id_of("AQAAAZWxkJ8A"), None);
        assert_eq!(reset_id_of(""), None);
    }

    #[test]
    fn only_an_empty_group_accepts_a_reset() {
        let g = |state: &str, members| GroupMembers {
            state: state.into(),
            members,
        };
        assert!(g("Empty", 0).accepts_reset());
        assert!(!g("Stable", 2).accepts_reset());
        // The last member left, the rebalance is not over: the broker still refuses.
        assert!(!g("PreparingRebalance", 0).accepts_reset());
    }

    #[test]
    fn time_limits_follow_retention_and_policy() {
        assert_eq!(time_limit("3600000", "delete"), Ok(Some(3_600_000)));
        assert_eq!(time_limit("3600000", "compact,delete"), Ok(Some(3_600_000)));
        assert_eq!(time_limit("-1", "delete"), Ok(None));
        // Compaction alone ignores retention.ms.
        assert_eq!(time_limit("3600000", "compact"), Ok(None));
        assert_eq!(time_limit("3600000", ""), Ok(None));
        assert!(time_limit("soon", "delete").is_err());
    }

    #[test]
    fn a_timestamp_older_than_the_shortest_retention_is_refused() {
        let now = 10 * 3_600_000;
        let limits = BTreeMap::from([
            ("a".to_string(), Some(3 * 3_600_000)),
            ("b".to_string(), Some(3_600_000)),
            ("c".to_string(), None),
        ]);
        let two_hours_ago = now - 2 * 3_600_000;
        assert_eq!(
            retention_refusal(two_hours_ago, now, &limits),
            Some(ResetRefusal::BeforeRetention {
                topic: "b".into(),
                retention_ms: 3_600_000
            })
        );
        assert_eq!(retention_refusal(now - 1_800_000, now, &limits), None);
        // Exactly at the bound: still kept.
        assert_eq!(retention_refusal(now - 3_600_000, now, &limits), None);
        let infinite = BTreeMap::from([("c".to_string(), None)]);
        assert_eq!(retention_refusal(0, now, &infinite), None);
    }

    #[test]
    fn refusals_read_as_what_to_do() {
        let r = ResetRefusal::BeforeRetention {
            topic: "in".into(),
            retention_ms: 3_600_000,
        };
        let msg = r.to_string();
        assert!(
            msg.contains("input topic in keeps records for 1h only"),
            "{msg}"
        );
        assert!(msg.contains("within the last 1h, or Earliest"), "{msg}");
        let r = ResetRefusal::MissingInputs(vec!["a".into(), "b".into()]);
        assert!(r.to_string().starts_with("input topics a, b do not exist"));
        assert_eq!(r.reason(), "ResetInputsMissing");
        assert_eq!(human_ms(604_800_000), "7d");
        assert_eq!(human_ms(5_400_000), "90m");
        assert_eq!(human_ms(1_500), "1500ms");
    }

    #[test]
    fn partitions_of_inputs_or_the_missing_ones() {
        let topics = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        assert_eq!(
            input_partitions(&["b".into(), "a".into(), "b".into()], &topics),
            Ok(vec![p("a", 0), p("a", 1), p("b", 0)])
        );
        assert_eq!(
            input_partitions(&["a".into(), "x".into()], &topics),
            Err(vec!["x".to_string()])
        );
    }

    #[test]
    fn timestamp_targets() {
        assert_eq!(timestamp_target(Some(4), 9), 4);
        // No record at or after the time: the end.
        assert_eq!(timestamp_target(None, 9), 9);
    }

    #[test]
    fn applied_only_when_every_partition_carries_the_marker() {
        let m = reset_marker("r1");
        let parts = [p("a", 0), p("a", 1)];
        let mut committed =
            BTreeMap::from([(p("a", 0), (3, m.clone())), (p("a", 1), (5, m.clone()))]);
        assert!(already_applied(&committed, &parts, &m));
        assert!(!already_applied(&committed, &parts, &reset_marker("r2")));
        assert!(!already_applied(&committed, &[], &m));
        // A partition added since, without a commit.
        assert!(!already_applied(
            &committed,
            &[p("a", 0), p("a", 1), p("a", 2)],
            &m
        ));
        committed.insert(p("a", 1), (7, String::new()));
        assert!(!already_applied(&committed, &parts, &m));
        let targets = BTreeMap::from([(p("a", 0), 3), (p("a", 1), 7)]);
        assert_eq!(not_committed(&committed, &targets, &m), [p("a", 1)]);
    }
}
