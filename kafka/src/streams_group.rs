//! A KIP-1071 streams group (`group.protocol=streams`) as StreamsGroupDescribe reports it:
//! the broker knows the app's topology and assignment, so none of it is guessed from member
//! userdata as for classic groups.

use std::collections::BTreeMap;

use crate::group::{DecodedMember, StreamsMemberFacts, pod_of};
use crate::lag::{ChangelogMapping, Partition};
use crate::protocol::messages::streams_group_describe_response::{DescribedGroup, TaskIds};
use crate::userdata::TaskId;

/// Group type of streams groups in ListGroups and in the status.
pub const STREAMS_GROUP_TYPE: &str = "streams";

/// An owned copy of a StreamsGroupDescribe answer for one group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamsGroupSnapshot {
    /// `Empty`, `NotReady`, `Assigning`, `Reconciling`, `Stable` or `Dead`.
    pub state: String,
    /// The group epoch: bumped by every membership or topology change.
    pub group_epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The subtopologies, once a member initialized the topology and its topics exist.
    pub subtopologies: Option<Vec<Subtopology>>,
    /// The members.
    pub members: Vec<StreamsMember>,
}

/// One subtopology of the app's topology, as the broker stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subtopology {
    /// Its id (Kafka Streams numbers them: `0`, `1`, ...).
    pub id: String,
    /// Input topics it reads.
    pub source_topics: Vec<String>,
    /// Repartition topics it reads.
    pub repartition_source_topics: Vec<String>,
    /// Repartition topics it writes.
    pub repartition_sink_topics: Vec<String>,
    /// Changelog topics of its stores.
    pub changelog_topics: Vec<String>,
}

/// A task: subtopology id and partition.
pub type TaskKey = (String, i32);

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamsMember {
    /// Member id.
    pub member_id: String,
    /// Its epoch; behind the group's assignment epoch while it reconciles.
    pub member_epoch: i32,
    /// `group.instance.id` of static membership.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id` (the operator sets it to the pod name).
    pub client_id: String,
    /// Host it connects from.
    pub client_host: String,
    /// The Kafka Streams instance (`process.id`) the member belongs to.
    pub process_id: String,
    /// `rack.aware.assignment.tags` values.
    pub client_tags: BTreeMap<String, String>,
    /// Cumulative changelog offsets per task, as the member reports them (empty while it
    /// reports none, as Kafka Streams 4.4.0 members were seen to do).
    pub task_offsets: BTreeMap<TaskKey, i64>,
    /// Cumulative changelog end offsets per task, as the member reports them.
    pub task_end_offsets: BTreeMap<TaskKey, i64>,
    /// Active tasks it runs.
    pub active: Vec<TaskKey>,
    /// Standby tasks it keeps.
    pub standby: Vec<TaskKey>,
    /// Warm-up tasks it restores before taking them over.
    pub warmup: Vec<TaskKey>,
    /// Whether its assignment is already the target one.
    pub reconciled: bool,
    /// Whether it is a classic-protocol member of a group being migrated.
    pub is_classic: bool,
}

fn tasks(ids: &[TaskIds]) -> Vec<TaskKey> {
    let mut out: Vec<TaskKey> = ids
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.subtopology_id.clone(), *p)))
        .collect();
    out.sort();
    out
}

impl StreamsGroupSnapshot {
    /// The snapshot of a described group (whose error code the caller checked).
    pub(crate) fn from_described(g: &DescribedGroup) -> Self {
        let subtopologies = g
            .topology
            .as_ref()
            .and_then(|t| t.subtopologies.as_ref())
            .map(|subs| {
                subs.iter()
                    .map(|s| Subtopology {
                        id: s.subtopology_id.clone(),
                        source_topics: s.source_topics.clone(),
                        repartition_source_topics: s
                            .repartition_source_topics
                            .iter()
                            .map(|t| t.name.clone())
                            .collect(),
                        repartition_sink_topics: s.repartition_sink_topics.clone(),
                        changelog_topics: s
                            .state_changelog_topics
                            .iter()
                            .map(|t| t.name.clone())
                            .collect(),
                    })
                    .collect()
            });
        let members = g
            .members
            .iter()
            .map(|m| {
                let active = tasks(&m.assignment.active_tasks);
                let standby = tasks(&m.assignment.standby_tasks);
                let warmup = tasks(&m.assignment.warmup_tasks);
                let reconciled = active == tasks(&m.target_assignment.active_tasks)
                    && standby == tasks(&m.target_assignment.standby_tasks)
                    && warmup == tasks(&m.target_assignment.warmup_tasks);
                StreamsMember {
                    member_id: m.member_id.clone(),
                    member_epoch: m.member_epoch,
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    process_id: m.process_id.clone(),
                    client_tags: m
                        .client_tags
                        .iter()
                        .map(|kv| (kv.key.clone(), kv.value.clone()))
                        .collect(),
                    task_offsets: m
                        .task_offsets
                        .iter()
                        .map(|t| ((t.subtopology_id.clone(), t.partition), t.offset))
                        .collect(),
                    task_end_offsets: m
                        .task_end_offsets
                        .iter()
                        .map(|t| ((t.subtopology_id.clone(), t.partition), t.offset))
                        .collect(),
                    active,
                    standby,
                    warmup,
                    reconciled,
                    is_classic: m.is_classic,
                }
            })
            .collect();
        Self {
            state: g.group_state.clone(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            subtopologies,
            members,
        }
    }

    fn subtopology(&self, id: &str) -> Option<&Subtopology> {
        self.subtopologies.iter().flatten().find(|s| s.id == id)
    }

    /// Topics the app reads: every subtopology's inputs and repartition sources.
    pub fn source_topics(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .subtopologies
            .iter()
            .flatten()
            .flat_map(|s| s.source_topics.iter().chain(&s.repartition_source_topics))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Which subtopology owns which changelog: exact, from the broker's topology.
    /// Subtopologies whose id is not a number (never so for Kafka Streams) are left out.
    pub fn changelog_mapping(&self) -> ChangelogMapping {
        let mut out = ChangelogMapping::default();
        for s in self.subtopologies.iter().flatten() {
            let Ok(n) = s.id.parse::<i32>() else { continue };
            for c in &s.changelog_topics {
                out.owners.entry(c.clone()).or_default().push(n);
                out.exact.insert(c.clone(), true);
            }
        }
        out
    }

    /// The members in the shape the status is built from, their pods found by `client.id`
    /// as for classic members. A task's source partitions are its subtopology's source
    /// topics at the task's partition.
    pub fn decoded_members(&self, pods: &[String]) -> Vec<DecodedMember> {
        self.members
            .iter()
            .map(|m| {
                let task = |(s, p): &TaskKey| s.parse::<i32>().ok().map(|n| TaskId::new(n, *p));
                let mut problems = Vec::new();
                let mut active = Vec::new();
                for key in &m.active {
                    let Some(id) = task(key) else {
                        problems.push(format!("subtopology id {:?} is not a number", key.0));
                        continue;
                    };
                    let sources: Vec<&String> = self
                        .subtopology(&key.0)
                        .map(|s| {
                            s.source_topics
                                .iter()
                                .chain(&s.repartition_source_topics)
                                .collect()
                        })
                        .unwrap_or_default();
                    for topic in sources {
                        active.push(((topic.clone(), key.1), id.clone()));
                    }
                }
                let mut assigned: Vec<Partition> = active.iter().map(|(p, _)| p.clone()).collect();
                assigned.sort();
                assigned.dedup();
                let offset_sums = (!m.task_offsets.is_empty()).then(|| {
                    m.task_offsets
                        .iter()
                        .filter_map(|(k, o)| task(k).map(|t| (t, *o)))
                        .collect()
                });
                DecodedMember {
                    client_id: m.client_id.clone(),
                    host: m.client_host.clone(),
                    pod: pod_of(&m.client_id, pods).cloned(),
                    subscription_version: None,
                    offset_sums,
                    assigned,
                    active,
                    standby: m.standby.iter().filter_map(task).collect(),
                    // Warm-ups moving in, or an assignment not yet reconciled, is the
                    // streams protocol's pending task movement.
                    rebalance_scheduled: !m.warmup.is_empty() || !m.reconciled,
                    assignment_error: None,
                    decode_problems: problems,
                    streams: Some(StreamsMemberFacts {
                        process_id: m.process_id.clone(),
                        rack: m.rack_id.clone(),
                        client_tags: m.client_tags.clone(),
                        member_epoch: m.member_epoch,
                        warmup: m.warmup.iter().filter_map(task).collect(),
                    }),
                }
            })
            .collect()
    }
}
