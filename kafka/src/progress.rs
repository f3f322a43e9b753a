//! Whether an app's commits keep up with its input, across checks. Pure: the caller passes
//! the clock, so the rule is testable without waiting.
//!
//! A source partition *stands still* from the first check that saw its end offset grow while
//! its committed offset stayed where it was, until the committed offset moves. An idle
//! partition (no new records) never stands still, however old its last commit: otherwise the
//! first record after a quiet hour would look like an hour-long stall.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::lag::{Offsets, Partition};

/// Committed and end offsets of an app's source partitions (its input and repartition
/// topics) as one check read them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceOffsets {
    /// The group's committed offsets; a partition never committed is absent.
    pub committed: Offsets,
    /// End offsets; a partition whose end the brokers did not return is absent.
    pub end: Offsets,
}

/// One partition as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watch {
    committed: Option<i64>,
    end: i64,
    /// When the end was first seen past where it was at the last commit; `None` while the
    /// partition is idle or its commits move.
    standing_since: Option<Instant>,
}

/// Per source partition, since when its commits have stood still while records arrived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitProgress {
    partitions: BTreeMap<Partition, Watch>,
}

impl CommitProgress {
    /// Takes in one check's offsets, read at `now`. Partitions the check no longer lists
    /// (a topic deleted or no longer an input) are dropped.
    pub fn observe(&mut self, offsets: &SourceOffsets, now: Instant) {
        let mut next = BTreeMap::new();
        for (partition, &end) in &offsets.end {
            let committed = offsets.committed.get(partition).copied();
            let watch = match self.partitions.remove(partition) {
                // A shrunk end offset is a re-created topic: start over.
                Some(w) if w.committed == committed && end >= w.end => Watch {
                    standing_since: w.standing_since.or((end > w.end).then_some(now)),
                    committed,
                    end,
                },
                _ => Watch {
                    committed,
                    end,
                    standing_since: None,
                },
            };
            next.insert(partition.clone(), watch);
        }
        self.partitions = next;
    }

    /// Stops every clock, for a time in which no commits are expected (no members yet, a
    /// rebalance, a restore): it must not count once the app is back. A clock starts again
    /// when records arrive after this.
    pub fn restart(&mut self) {
        for w in self.partitions.values_mut() {
            w.standing_since = None;
        }
    }

    /// The partitions that have records to process and whose commits have stood still, with
    /// for how long as of `now`.
    pub fn standing_still(&self, now: Instant) -> BTreeMap<Partition, Duration> {
        self.partitions
            .iter()
            .filter(|(_, w)| w.end > w.committed.unwrap_or(0))
            .filter_map(|(p, w)| Some((p.clone(), now.duration_since(w.standing_since?))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(committed: Option<i64>, end: i64) -> SourceOffsets {
        let p: Partition = ("in".into(), 0);
        SourceOffsets {
            committed: committed.map(|c| (p.clone(), c)).into_iter().collect(),
            end: [(p, end)].into(),
        }
    }

    fn standing(progress: &CommitProgress, now: Instant) -> Option<Duration> {
        progress.standing_still(now).get(&("in".into(), 0)).copied()
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn an_idle_partition_never_stands_still() {
        let t0 = Instant::now();
        let mut p = CommitProgress::default();
        p.observe(&offsets(Some(10), 10), t0);
        p.observe(&offsets(Some(10), 10), t0 + 600 * S);
        assert_eq!(standing(&p, t0 + 600 * S), None);
        // Records arrive after the quiet hour: the clock starts now, not at the last commit.
        p.observe(&offsets(Some(10), 15), t0 + 630 * S);
        assert_eq!(standing(&p, t0 + 640 * S), Some(10 * S));
    }

    #[test]
    fn a_commit_stops_the_clock_and_a_lagging_stop_keeps_it() {
        let t0 = Instant::now();
        let mut p = CommitProgress::default();
        p.observe(&offsets(Some(10), 10), t0);
        p.observe(&offsets(Some(10), 20), t0 + 30 * S);
        // No new records, still no commit: the backlog is still unprocessed.
        p.observe(&offsets(Some(10), 20), t0 + 60 * S);
        assert_eq!(standing(&p, t0 + 90 * S), Some(60 * S));
        p.observe(&offsets(Some(18), 25), t0 + 90 * S);
        assert_eq!(standing(&p, t0 + 90 * S), None);
        // Caught up exactly: nothing to process.
        p.observe(&offsets(Some(25), 25), t0 + 120 * S);
        assert_eq!(standing(&p, t0 + 120 * S), None);
    }

    #[test]
    fn a_partition_never_committed_stands_still_once_records_arrive() {
        let t0 = Instant::now();
        let mut p = CommitProgress::default();
        p.observe(&offsets(None, 0), t0);
        p.observe(&offsets(None, 5), t0 + 30 * S);
        assert_eq!(standing(&p, t0 + 45 * S), Some(15 * S));
    }

    #[test]
    fn restart_and_recreated_topics_start_over() {
        let t0 = Instant::now();
        let mut p = CommitProgress::default();
        p.observe(&offsets(Some(1), 1), t0);
        p.observe(&offsets(Some(1), 9), t0 + S);
        p.restart();
        assert_eq!(standing(&p, t0 + 100 * S), None);
        p.observe(&offsets(Some(1), 12), t0 + 101 * S);
        assert_eq!(standing(&p, t0 + 102 * S), Some(S));
        p.observe(&offsets(Some(1), 3), t0 + 103 * S);
        assert_eq!(standing(&p, t0 + 200 * S), None);
        // A partition no longer listed is forgotten.
        p.observe(&SourceOffsets::default(), t0 + 201 * S);
        assert!(p.standing_still(t0 + 300 * S).is_empty());
    }
}
