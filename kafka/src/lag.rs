//! Pure lag arithmetic: processing lag (records not yet processed) and restore lag (changelog
//! records a pod's local state lacks), by Kafka Streams' own rules.
//!
//! # Which changelog belongs to which task
//!
//! Task `<s>_<p>` owns partition `p` of the changelog of every store of subtopology `s`. The
//! broker does not say which subtopology a store belongs to (only the app's
//! `Topology#describe()` does), so [`map_changelogs`] infers it:
//!
//! 1. Candidates for a changelog with `n` partitions are the known subtopologies with `n`
//!    tasks (task count = partitions of the subtopology's source topics, seen through the
//!    assignment; a subtopology whose count is unknown stays a candidate).
//! 2. One candidate: it owns the changelog — **exact**.
//! 3. Otherwise, keep the candidates known to be stateful: members report offset sums only
//!    for stateful tasks, and standby tasks exist only for stateful tasks. If the assignment
//!    has standby tasks, the subtopologies with standbys are *all* the stateful ones, so a
//!    single stateful candidate is **exact**; without standbys, a single candidate that
//!    reported state is likely but not certain (**approximate**).
//! 4. Still ambiguous: the changelog is counted for every remaining candidate, so the
//!    resulting lags are **upper bounds** (approximate).
//!
//! Figures built on an approximate mapping carry `exact = false`.

use std::collections::{BTreeMap, BTreeSet};

pub use super::userdata::Partition;
use super::userdata::{LATEST_OFFSET, TaskId, UNKNOWN_OFFSET_SUM};
/// Offsets per partition.
pub type Offsets = BTreeMap<Partition, i64>;

/// `acceptable.recovery.lag` when the app does not set it (Kafka Streams' default).
pub const DEFAULT_ACCEPTABLE_RECOVERY_LAG: i64 = 10_000;

/// Processing lag over a set of partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessingLag {
    /// Sum of `end - committed` over partitions with both known.
    pub lag: i64,
    /// Non-empty partitions with no committed offset (lag unknown, not in `lag`).
    pub uncommitted: i32,
    /// Partitions whose end offset is unknown (not in `lag`).
    pub unknown_end: i32,
}

impl ProcessingLag {
    /// The lag when every partition's is known; a partial sum would pass for the whole.
    pub fn known(&self) -> Option<i64> {
        (self.uncommitted == 0 && self.unknown_end == 0).then_some(self.lag)
    }
}

/// `end - committed` for one partition, as Kafka's `kafka-consumer-groups --describe` computes
/// it; `None` when either is unknown (a group that never committed has no lag to speak of).
pub fn partition_lag(end: Option<i64>, committed: Option<i64>) -> Option<i64> {
    match (end, committed) {
        (Some(e), Some(c)) if e >= 0 && c >= 0 => Some(e - c),
        _ => None,
    }
}

/// Sums the processing lag of `partitions`.
pub fn processing_lag<'a>(
    partitions: impl IntoIterator<Item = &'a Partition>,
    end: &Offsets,
    committed: &Offsets,
) -> ProcessingLag {
    let mut out = ProcessingLag::default();
    for p in partitions {
        match (end.get(p), committed.get(p)) {
            (None, _) => out.unknown_end += 1,
            // An empty partition has nothing to process, whatever the reset policy.
            (Some(0), None) => {}
            (Some(_), None) => out.uncommitted += 1,
            (Some(e), Some(c)) => match partition_lag(Some(*e), Some(*c)) {
                Some(l) => out.lag = out.lag.saturating_add(l),
                None => out.uncommitted += 1,
            },
        }
    }
    out
}

/// A task's restore lag by Kafka Streams' rules (`ClientState#computeTaskLags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskLag {
    /// The member runs the task as a RUNNING active task: nothing to restore.
    Running,
    /// Changelog records missing from the member's local state.
    Behind(i64),
    /// The member sent no offsets for it (pre-v7 standby).
    Unknown,
}

/// Restore lag of a task given the end-offset sum of its changelog partitions and the offset
/// sum the member reported (`None` = the member has no state for it: lag = all of it).
/// A reported sum above the end sum means corrupt local state, restored from scratch.
pub fn task_lag(end_sum: i64, offset_sum: Option<i64>) -> TaskLag {
    match offset_sum.unwrap_or(0) {
        LATEST_OFFSET => TaskLag::Running,
        UNKNOWN_OFFSET_SUM => TaskLag::Unknown,
        s if s < 0 || end_sum < s => TaskLag::Behind(end_sum),
        s => TaskLag::Behind(end_sum - s),
    }
}

/// Kafka Streams' caught-up rule (`TaskMovement`): running, or lag within
/// `acceptable.recovery.lag` (`i64::MAX` = anything goes).
pub fn caught_up(lag: TaskLag, acceptable_recovery_lag: i64) -> Option<bool> {
    match lag {
        TaskLag::Running => Some(true),
        _ if acceptable_recovery_lag == i64::MAX => Some(true),
        TaskLag::Behind(l) => Some((0..=acceptable_recovery_lag).contains(&l)),
        TaskLag::Unknown => None,
    }
}

/// What the group tells about the app's subtopologies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopologyFacts {
    /// Every subtopology seen, with its task count when known.
    pub task_counts: BTreeMap<i32, Option<i32>>,
    /// Subtopologies some member reported offset sums for (hence stateful).
    pub reported_state: BTreeSet<i32>,
    /// Subtopologies with standby tasks in the current assignment (hence stateful).
    pub standby: BTreeSet<i32>,
}

impl TopologyFacts {
    /// Records an active task and the source partition it was assigned with; the task count
    /// of its subtopology is the largest partition count of its source topics.
    pub fn add_active(&mut self, task: &TaskId, source_partitions: Option<i32>) {
        let e = self.task_counts.entry(task.subtopology).or_insert(None);
        if let Some(n) = source_partitions {
            *e = Some(e.map_or(n, |m| m.max(n)));
        }
    }

    /// Records a standby task.
    pub fn add_standby(&mut self, task: &TaskId) {
        self.task_counts.entry(task.subtopology).or_insert(None);
        self.standby.insert(task.subtopology);
    }

    /// Records a task a member reported an offset sum for.
    pub fn add_reported(&mut self, task: &TaskId) {
        self.task_counts.entry(task.subtopology).or_insert(None);
        self.reported_state.insert(task.subtopology);
    }

    /// Subtopologies known to be stateful.
    pub fn stateful(&self) -> BTreeSet<i32> {
        self.reported_state.union(&self.standby).copied().collect()
    }
}

/// The inferred owner(s) of each changelog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangelogMapping {
    /// Changelog topic -> subtopologies counted as its owner (one when determined).
    pub owners: BTreeMap<String, Vec<i32>>,
    /// Changelog topic -> whether its owner is determined.
    pub exact: BTreeMap<String, bool>,
}

impl ChangelogMapping {
    /// Changelogs (with their partition counts) counted for subtopology `s`.
    fn of(&self, s: i32) -> impl Iterator<Item = &String> {
        self.owners
            .iter()
            .filter(move |(_, o)| o.contains(&s))
            .map(|(c, _)| c)
    }

    /// Whether every changelog counted for `s` has a determined owner.
    pub fn exact_for(&self, s: i32) -> bool {
        self.of(s)
            .all(|c| self.exact.get(c).copied().unwrap_or(false))
    }

    /// Subtopologies that own at least one changelog.
    pub fn stateful(&self) -> BTreeSet<i32> {
        self.owners.values().flatten().copied().collect()
    }
}

/// Infers which subtopology owns each changelog (`(topic, partitions)`); see the module doc.
pub fn map_changelogs(changelogs: &[(String, i32)], facts: &TopologyFacts) -> ChangelogMapping {
    let stateful = facts.stateful();
    let mut out = ChangelogMapping::default();
    for (topic, partitions) in changelogs {
        let candidates: Vec<i32> = facts
            .task_counts
            .iter()
            .filter(|(_, n)| n.is_none_or(|n| n == *partitions))
            .map(|(s, _)| *s)
            .collect();
        let (owners, exact) = if candidates.len() == 1 {
            (candidates, true)
        } else {
            let known: Vec<i32> = candidates
                .iter()
                .copied()
                .filter(|s| stateful.contains(s))
                .collect();
            match known.len() {
                1 => (known, !facts.standby.is_empty()),
                0 => (candidates, false),
                _ => (known, false),
            }
        };
        out.exact.insert(topic.clone(), exact);
        out.owners.insert(topic.clone(), owners);
    }
    out
}

/// End-offset sum of a task's changelog partitions: `None` when the task's subtopology owns no
/// changelog (stateless), `Some(None)` when an end offset is unknown.
pub fn task_end_sum(
    task: &TaskId,
    mapping: &ChangelogMapping,
    partitions: &BTreeMap<String, i32>,
    end: &Offsets,
) -> Option<Option<i64>> {
    let mut any = false;
    let mut sum: Option<i64> = Some(0);
    for topic in mapping.of(task.subtopology) {
        any = true;
        if partitions.get(topic).is_some_and(|n| task.partition < *n) {
            let e = end.get(&(topic.clone(), task.partition)).copied();
            sum = sum.zip(e).map(|(a, b)| a.saturating_add(b));
        }
    }
    any.then_some(sum)
}

/// A pod's restore lag over its assigned tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreLag {
    /// Sum of the stateful tasks' lags; `None` when one is unknown.
    pub lag: Option<i64>,
    /// Whether every task's changelog mapping is determined.
    pub exact: bool,
    /// Every stateful task caught up by Streams' rule; `None` when one is unknown.
    pub caught_up: Option<bool>,
}

/// Restore lag of a pod for `tasks` (its active and standby tasks), from the offset sums its
/// members reported, against the changelog `end` offsets of the baseline. A sum beyond the
/// baseline's end was reported at a later rebalance of the same members (the baseline only
/// changes with the member ids): it is measured against the end offsets `now` (an upper
/// bound, `exact: false`) instead of being taken for corrupt state.
pub fn restore_lag<'a>(
    tasks: impl IntoIterator<Item = &'a TaskId>,
    offset_sums: &BTreeMap<TaskId, i64>,
    mapping: &ChangelogMapping,
    partitions: &BTreeMap<String, i32>,
    (end, now): (&Offsets, &Offsets),
    acceptable_recovery_lag: i64,
) -> RestoreLag {
    let mut out = RestoreLag {
        lag: Some(0),
        exact: true,
        caught_up: Some(true),
    };
    for task in tasks {
        let Some(end_sum) = task_end_sum(task, mapping, partitions, end) else {
            continue; // stateless
        };
        out.exact &= mapping.exact_for(task.subtopology);
        let Some(end_sum) = end_sum else {
            out.lag = None;
            out.caught_up = None;
            continue;
        };
        let sum = offset_sums.get(task).copied();
        let end_sum = match sum {
            Some(s) if s > end_sum => {
                // The end at that later rebalance is unknown: the end now bounds it.
                out.exact = false;
                task_end_sum(task, mapping, partitions, now)
                    .flatten()
                    .unwrap_or(end_sum)
            }
            _ => end_sum,
        };
        let lag = task_lag(end_sum, sum);
        let amount = match lag {
            TaskLag::Running => Some(0),
            TaskLag::Behind(l) => Some(l),
            TaskLag::Unknown => None,
        };
        out.lag = out.lag.zip(amount).map(|(a, b)| a.saturating_add(b));
        out.caught_up = match (out.caught_up, caught_up(lag, acceptable_recovery_lag)) {
            (Some(a), Some(b)) => Some(a && b),
            (Some(false), None) => Some(false),
            _ => None,
        };
    }
    out
}

/// Merges the offset sums of a pod's members (one per StreamThread): a task any thread runs is
/// running; otherwise the largest sum (the most complete local copy) counts.
pub fn merge_offset_sums<'a>(
    per_member: impl IntoIterator<Item = &'a BTreeMap<TaskId, i64>>,
) -> BTreeMap<TaskId, i64> {
    let mut out: BTreeMap<TaskId, i64> = BTreeMap::new();
    for sums in per_member {
        for (task, sum) in sums {
            out.entry(task.clone())
                .and_modify(|cur| {
                    *cur = match (*cur, *sum) {
                        (LATEST_OFFSET, _) | (_, LATEST_OFFSET) => LATEST_OFFSET,
                        (UNKNOWN_OFFSET_SUM, s) | (s, UNKNOWN_OFFSET_SUM) => s,
                        (a, b) => a.max(b),
                    }
                })
                .or_insert(*sum);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str, n: i32) -> Partition {
        (t.to_string(), n)
    }

    #[test]
    fn processing_lag_counts_uncommitted_separately() {
        let end: Offsets = [(p("in", 0), 10), (p("in", 1), 5), (p("in", 2), 3)].into();
        let committed: Offsets = [(p("in", 0), 4), (p("in", 1), 5)].into();
        let parts = [p("in", 0), p("in", 1), p("in", 2), p("gone", 0)];
        assert_eq!(
            processing_lag(&parts, &end, &committed),
            ProcessingLag {
                lag: 6,
                uncommitted: 1,
                unknown_end: 1
            }
        );
        assert_eq!(processing_lag(&parts, &end, &committed).known(), None);
        // An empty partition without a commit has nothing to process: its lag is known.
        let end: Offsets = [(p("in", 0), 10), (p("in", 1), 0)].into();
        let committed: Offsets = [(p("in", 0), 4)].into();
        let lag = processing_lag(&[p("in", 0), p("in", 1)], &end, &committed);
        assert_eq!((lag.known(), lag.uncommitted), (Some(6), 0));
        assert_eq!(partition_lag(Some(3), None), None);
        assert_eq!(partition_lag(Some(3), Some(-1001)), None);
    }

    #[test]
    fn task_lag_follows_streams_rules() {
        assert_eq!(task_lag(100, Some(LATEST_OFFSET)), TaskLag::Running);
        assert_eq!(task_lag(100, None), TaskLag::Behind(100));
        assert_eq!(task_lag(100, Some(150)), TaskLag::Behind(100)); // corrupted
        assert_eq!(task_lag(100, Some(40)), TaskLag::Behind(60));
        assert_eq!(task_lag(100, Some(UNKNOWN_OFFSET_SUM)), TaskLag::Unknown);
    }

    #[test]
    fn caught_up_rule() {
        assert_eq!(caught_up(TaskLag::Behind(10_000), 10_000), Some(true));
        assert_eq!(caught_up(TaskLag::Behind(10_001), 10_000), Some(false));
        assert_eq!(caught_up(TaskLag::Running, 0), Some(true));
        assert_eq!(caught_up(TaskLag::Behind(5), i64::MAX), Some(true));
        assert_eq!(caught_up(TaskLag::Unknown, 10), None);
    }

    fn facts(counts: &[(i32, Option<i32>)], reported: &[i32], standby: &[i32]) -> TopologyFacts {
        TopologyFacts {
            task_counts: counts.iter().copied().collect(),
            reported_state: reported.iter().copied().collect(),
            standby: standby.iter().copied().collect(),
        }
    }

    #[test]
    fn mapping_exact_by_partition_count() {
        let f = facts(&[(0, Some(2)), (1, Some(4))], &[], &[]);
        let m = map_changelogs(&[("app-s-changelog".into(), 4)], &f);
        assert_eq!(m.owners["app-s-changelog"], [1]);
        assert!(m.exact["app-s-changelog"]);
    }

    #[test]
    fn mapping_exact_by_standbys_when_counts_tie() {
        // Word count: subtopology 0 (stateless) and 1 (count store) both have 3 tasks.
        let f = facts(&[(0, Some(3)), (1, Some(3))], &[1], &[1]);
        let m = map_changelogs(&[("c".into(), 3)], &f);
        assert_eq!((m.owners["c"].as_slice(), m.exact["c"]), (&[1][..], true));
        // Without standbys the reported state is a strong hint, not proof.
        let f = facts(&[(0, Some(3)), (1, Some(3))], &[1], &[]);
        let m = map_changelogs(&[("c".into(), 3)], &f);
        assert_eq!((m.owners["c"].as_slice(), m.exact["c"]), (&[1][..], false));
    }

    #[test]
    fn mapping_ambiguous_counts_every_candidate() {
        let f = facts(&[(0, Some(3)), (1, None)], &[], &[]);
        let m = map_changelogs(&[("c".into(), 3)], &f);
        assert_eq!(
            (m.owners["c"].as_slice(), m.exact["c"]),
            (&[0, 1][..], false)
        );
        assert!(!m.exact_for(0));
    }

    #[test]
    fn restore_lag_sums_assigned_stateful_tasks() {
        let f = facts(&[(0, Some(2)), (1, Some(2))], &[1], &[1]);
        let m = map_changelogs(&[("c".into(), 2)], &f);
        let parts: BTreeMap<String, i32> = [("c".to_string(), 2)].into();
        let end: Offsets = [(p("c", 0), 500), (p("c", 1), 20_000)].into();
        let sums: BTreeMap<TaskId, i64> = [(TaskId::new(1, 0), LATEST_OFFSET)].into();
        let tasks = [TaskId::new(0, 0), TaskId::new(1, 0), TaskId::new(1, 1)];
        let r = restore_lag(
            &tasks,
            &sums,
            &m,
            &parts,
            (&end, &end),
            DEFAULT_ACCEPTABLE_RECOVERY_LAG,
        );
        assert_eq!(
            r,
            RestoreLag {
                lag: Some(20_000),
                exact: true,
                caught_up: Some(false)
            }
        );
        let sums: BTreeMap<TaskId, i64> = [
            (TaskId::new(1, 0), LATEST_OFFSET),
            (TaskId::new(1, 1), 19_000),
        ]
        .into();
        let r = restore_lag(
            &tasks,
            &sums,
            &m,
            &parts,
            (&end, &end),
            DEFAULT_ACCEPTABLE_RECOVERY_LAG,
        );
        assert_eq!((r.lag, r.caught_up), (Some(1_000), Some(true)));

        // Sums sent at a later rebalance of the same members, past the baseline's end: lag
        // against the end now, not "corrupt state, restore it all".
        let now: Offsets = [(p("c", 0), 500), (p("c", 1), 26_000)].into();
        let sums: BTreeMap<TaskId, i64> = [
            (TaskId::new(1, 0), LATEST_OFFSET),
            (TaskId::new(1, 1), 25_500),
        ]
        .into();
        let r = restore_lag(
            &tasks,
            &sums,
            &m,
            &parts,
            (&end, &now),
            DEFAULT_ACCEPTABLE_RECOVERY_LAG,
        );
        assert_eq!((r.lag, r.caught_up), (Some(500), Some(true)));
        // Beyond the end now too: corrupt local state, restored from scratch.
        let sums: BTreeMap<TaskId, i64> = [(TaskId::new(1, 1), 30_000)].into();
        let r = restore_lag(&tasks[2..], &sums, &m, &parts, (&end, &now), 0);
        assert_eq!(r.lag, Some(26_000));
    }

    #[test]
    fn restore_lag_unknown_end_offset_is_unknown() {
        let f = facts(&[(0, Some(1))], &[0], &[]);
        let m = map_changelogs(&[("c".into(), 1)], &f);
        let parts: BTreeMap<String, i32> = [("c".to_string(), 1)].into();
        let r = restore_lag(
            &[TaskId::new(0, 0)],
            &BTreeMap::new(),
            &m,
            &parts,
            (&Offsets::new(), &Offsets::new()),
            10,
        );
        assert_eq!((r.lag, r.caught_up, r.exact), (None, None, true));
    }

    #[test]
    fn merged_offset_sums_prefer_running() {
        let a: BTreeMap<TaskId, i64> = [(TaskId::new(0, 0), 5), (TaskId::new(0, 1), 9)].into();
        let b: BTreeMap<TaskId, i64> =
            [(TaskId::new(0, 0), LATEST_OFFSET), (TaskId::new(0, 1), 3)].into();
        let m = merge_offset_sums([&a, &b]);
        assert_eq!(m[&TaskId::new(0, 0)], LATEST_OFFSET);
        assert_eq!(m[&TaskId::new(0, 1)], 9);
    }
}
