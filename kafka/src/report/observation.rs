//! What the status is built from: the app as the Kafka check sees it ([`AppView`]), one
//! refresh's reading of the brokers ([`Observation`]) and the offsets when the group's
//! current members joined ([`Baseline`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::group::GroupSnapshot;
use crate::lag::{Offsets, Partition};
use crate::progress::SourceOffsets;
use crate::streams_group::StreamsGroupSnapshot;
use crate::topics::{InternalTopics, internal_topics};

/// What the Kafka check needs to know about an app; the caller builds it from its own
/// description of the app (the operator from a StreamApp and its pods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    /// `application.id`: group id and internal topic prefix.
    pub application_id: String,
    /// `spec.topics.inputs`.
    pub input_topics: Vec<String>,
    /// Names of the app's pods (each pod's `client.id`).
    pub pods: Vec<String>,
    /// `acceptable.recovery.lag` in effect.
    pub acceptable_recovery_lag: i64,
    /// The app's group is a KIP-1071 streams group (`group.protocol=streams`), read with
    /// StreamsGroupDescribe instead of DescribeGroups.
    pub streams_protocol: bool,
}

/// The end and committed offsets when the operator first saw the group's current members.
/// Members report their local state (offset sums) only when they join, so restore lag is
/// measured against the changelog as it was then, not as it grew since by normal processing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Baseline {
    /// Member ids of the group at that moment.
    pub members: BTreeSet<String>,
    /// End offsets then.
    pub end: Offsets,
    /// Committed offsets then.
    pub committed: Offsets,
    /// Whether the operator saw the members change (it saw the group before they joined);
    /// otherwise the join happened before the operator looked and figures are upper bounds.
    pub witnessed: bool,
}

impl Baseline {
    /// The baseline for `obs`: `previous` while the members are the same, a new one when
    /// they changed.
    pub fn next(previous: Option<&Baseline>, obs: &Observation) -> Baseline {
        let members: BTreeSet<String> = obs
            .group
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.member_id.clone()))
            .chain(
                obs.streams_group
                    .iter()
                    .flat_map(|g| g.members.iter().map(|m| m.member_id.clone())),
            )
            .collect();
        match previous {
            Some(p) if p.members == members => {
                // A partition first seen now (its topic appeared later) starts from here.
                let mut kept = p.clone();
                for (partition, end) in &obs.end {
                    kept.end.entry(partition.clone()).or_insert(*end);
                }
                kept
            }
            _ => Baseline {
                members,
                end: obs.end.clone(),
                committed: obs.committed.clone(),
                witnessed: previous.is_some(),
            },
        }
    }
}

/// Everything one refresh read from the brokers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// All topics and their partition counts.
    pub topics: BTreeMap<String, i32>,
    /// `cleanup.policy` per changelog, or the broker's error; absent = topic gone.
    pub cleanup_policies: BTreeMap<String, Result<String, String>>,
    /// The group; `None` when it does not exist.
    pub group: Option<GroupSnapshot>,
    /// The streams group of an app on the streams protocol; `None` when it does not exist.
    pub streams_group: Option<StreamsGroupSnapshot>,
    /// Committed offsets of the group.
    pub committed: Offsets,
    /// End offsets.
    pub end: Offsets,
    /// When the current group members joined, as near as the operator saw it (see
    /// [`Baseline`]); `None` measures restore lag against `end`.
    pub baseline: Option<Baseline>,
    /// Topics that disappeared during the check.
    pub gone: BTreeSet<String>,
    /// Consumer groups whose id extends the app's with a dash: other Streams apps, whose
    /// internal topics share the app's prefix and are not its own.
    pub other_apps: BTreeSet<String>,
}

impl Observation {
    /// The app's internal topics among those observed.
    pub fn internal_topics(&self, app: &AppView) -> InternalTopics {
        internal_topics(&app.application_id, &self.topics, &self.other_apps)
    }

    /// Partitions of the topics the app consumes: existing inputs and repartition topics.
    pub fn source_partitions(&self, app: &AppView) -> Vec<Partition> {
        let internal = self.internal_topics(app);
        let mut names: BTreeSet<&String> = app
            .input_topics
            .iter()
            .filter(|t| self.topics.contains_key(*t))
            .collect();
        names.extend(internal.repartitions.keys());
        partitions_of(names, &self.topics)
    }

    /// Committed and end offsets of the source partitions still there after the check.
    pub fn source_offsets(&self, app: &AppView) -> SourceOffsets {
        let mut out = SourceOffsets::default();
        for p in self.source_partitions(app) {
            if self.gone.contains(&p.0) {
                continue;
            }
            if let Some(c) = self.committed.get(&p) {
                out.committed.insert(p.clone(), *c);
            }
            if let Some(e) = self.end.get(&p) {
                out.end.insert(p, *e);
            }
        }
        out
    }

    /// Partitions of the app's changelogs.
    pub fn changelog_partitions(&self, app: &AppView) -> Vec<Partition> {
        let internal = self.internal_topics(app);
        partitions_of(internal.changelogs.iter().map(|c| &c.name), &self.topics)
    }
}

fn partitions_of<'a>(
    names: impl IntoIterator<Item = &'a String>,
    topics: &BTreeMap<String, i32>,
) -> Vec<Partition> {
    names
        .into_iter()
        .flat_map(|t| (0..topics.get(t).copied().unwrap_or(0)).map(move |p| (t.clone(), p)))
        .collect()
}
