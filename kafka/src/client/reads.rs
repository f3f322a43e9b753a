//! The reads of a cluster check through the wire connections, each one request for all the
//! apps that need it, per broker where the protocol routes it so: the metadata of every topic,
//! every broker's groups, the groups' descriptions and committed offsets at their
//! coordinators, end offsets at each partition's leader, and the changelogs' `cleanup.policy`.
//!
//! The outer `Result` of each read is the request's: a broker that cannot be reached or
//! fails the request fails the read for everyone. An error the broker reports for one group
//! or one topic is that group's or topic's alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use futures::future::join_all;

use super::brokers::code;
use super::cluster::ClusterClients;
use crate::error::KafkaError;
use crate::group::{GroupSnapshot, MemberSnapshot};
use crate::lag::{Offsets, Partition};
use crate::protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use crate::protocol::messages::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::messages::describe_groups_response::DescribedGroup;
use crate::protocol::messages::list_groups_request::ListGroupsRequest;
use crate::protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use crate::protocol::messages::metadata_request::MetadataRequest;
use crate::protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use crate::protocol::messages::streams_group_describe_request::StreamsGroupDescribeRequest;
use crate::streams_group::StreamsGroupSnapshot;

/// Config resource type of topics.
const TOPIC_RESOURCE: i8 = 2;
/// The one topic config a check reads.
const CLEANUP_POLICY: &str = "cleanup.policy";
/// ListOffsets' "timestamp" of the log end (the high watermark under read_uncommitted).
const LATEST: i64 = -1;
/// The first OffsetFetch version that takes many groups.
const OFFSET_FETCH_GROUPS: i16 = 8;

/// Every topic of the cluster, its partitions' leaders and the brokers.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterMetadata {
    /// Topic -> partition count; topics the broker reports in error (being created or
    /// deleted) are left out, as librdkafka's metadata leaves them out.
    pub(crate) topics: BTreeMap<String, i32>,
    /// Topic -> id and each partition's leader (absent while it has none).
    layout: HashMap<String, TopicLayout>,
    /// Node id -> `host:port`.
    pub(crate) nodes: BTreeMap<i32, String>,
}

#[derive(Debug, Clone, Default)]
struct TopicLayout {
    id: [u8; 16],
    leaders: BTreeMap<i32, i32>,
}

impl ClusterMetadata {
    /// The leader's `host:port` of `partition`, when it has one the metadata names.
    fn leader(&self, partition: &Partition) -> Option<&String> {
        let node = self.layout.get(&partition.0)?.leaders.get(&partition.1)?;
        self.nodes.get(node)
    }
}

/// End offsets, and what kept some from being read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EndOffsets {
    /// High watermarks.
    pub(crate) end: Offsets,
    /// Topics the leaders no longer know (deleted since the metadata).
    pub(crate) gone: BTreeSet<String>,
    /// Topics a leader refused for another reason (e.g. a missing ACL): the apps reading
    /// them fail, the others do not.
    pub(crate) failed: BTreeMap<String, KafkaError>,
}

/// What a coordinator answered for one group.
enum Answer<T> {
    /// The group's data.
    Got(T),
    /// The group is coordinated elsewhere now, or its coordinator is loading: the code and
    /// message, reported if asking again does not help.
    Moved(i16, Option<String>),
}

/// Per group: its answer, or the error the broker gave for it alone.
pub(crate) type PerGroup<T> = BTreeMap<String, Result<T, KafkaError>>;

/// Committed offsets with their commit metadata.
pub(crate) type CommittedMeta = BTreeMap<Partition, (i64, Option<String>)>;

impl ClusterClients {
    /// Every topic with its partitions and leaders, and the brokers: one Metadata request.
    pub(crate) async fn metadata(&self) -> Result<ClusterMetadata, KafkaError> {
        let request = MetadataRequest {
            // Null asks for every topic; an empty list would ask for none.
            topics: None,
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let response = self.brokers.call_any("metadata", &request).await?;
        if response.error_code != 0 {
            return Err(self
                .brokers
                .broker_error("metadata", response.error_code, None));
        }
        let nodes = self.brokers.remember_nodes(&response.brokers);
        let mut out = ClusterMetadata {
            nodes,
            ..Default::default()
        };
        for t in response.topics {
            let Some(name) = t.name.filter(|_| t.error_code == 0) else {
                continue;
            };
            out.topics.insert(name.clone(), t.partitions.len() as i32);
            let leaders = t
                .partitions
                .iter()
                .filter(|p| p.leader_id >= 0)
                .map(|p| (p.partition_index, p.leader_id))
                .collect();
            out.layout.insert(
                name,
                TopicLayout {
                    id: t.topic_id,
                    leaders,
                },
            );
        }
        Ok(out)
    }

    /// Every group of the cluster -> the `host:port` of the broker that listed it, which
    /// coordinates it: one ListGroups (all types, all states) per broker.
    pub(crate) async fn list_groups(
        &self,
        nodes: &BTreeMap<i32, String>,
    ) -> Result<BTreeMap<String, String>, KafkaError> {
        let request = &ListGroupsRequest::default();
        let answers = join_all(nodes.values().map(|address| async move {
            let response = self.brokers.call(address, "list groups", request).await?;
            if response.error_code != 0 {
                return Err(self
                    .brokers
                    .broker_error("list groups", response.error_code, None));
            }
            Ok((address, response.groups))
        }))
        .await;
        let mut out = BTreeMap::new();
        for answer in answers {
            let (address, groups) = answer?;
            for g in groups {
                out.insert(g.group_id, address.clone());
            }
        }
        Ok(out)
    }

    /// Sends `send(address, groups)` to each coordinator for the groups it coordinates, all
    /// coordinators at once; groups whose coordinator moved meanwhile are looked up again
    /// (one FindCoordinator for all of them) and asked once more.
    async fn at_coordinators<T, F, Fut>(
        &self,
        operation: &'static str,
        groups: BTreeMap<String, String>,
        send: F,
    ) -> Result<PerGroup<T>, KafkaError>
    where
        F: Fn(String, Vec<String>) -> Fut,
        Fut: Future<Output = Result<PerGroup<Answer<T>>, KafkaError>>,
    {
        let mut out = BTreeMap::new();
        let mut pending = groups;
        for attempt in 0..2 {
            let mut by_address: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (group, address) in pending {
                by_address.entry(address).or_default().push(group);
            }
            let answers = join_all(by_address.into_iter().map(|(a, gs)| send(a, gs))).await;
            let mut moved = Vec::new();
            for answer in answers {
                for (group, r) in answer? {
                    let r = match r {
                        Ok(Answer::Got(t)) => Ok(t),
                        Ok(Answer::Moved(..)) if attempt == 0 => {
                            self.brokers.forget_coordinator(&group);
                            moved.push(group);
                            continue;
                        }
                        Ok(Answer::Moved(c, message)) => {
                            Err(self.brokers.broker_error(operation, c, message.as_deref()))
                        }
                        Err(e) => Err(e),
                    };
                    out.insert(group, r);
                }
            }
            if moved.is_empty() {
                break;
            }
            pending = BTreeMap::new();
            for (group, r) in self.brokers.coordinators(&moved).await? {
                match r {
                    Ok(address) => {
                        pending.insert(group, address);
                    }
                    Err(e) => {
                        out.insert(group, Err(e));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Classic groups as DescribeGroups reports them, `None` for a group that does not exist
    /// (as one): one request per coordinator. `groups`: group -> coordinator.
    pub(crate) async fn describe_groups(
        &self,
        groups: BTreeMap<String, String>,
    ) -> Result<PerGroup<Option<GroupSnapshot>>, KafkaError> {
        const OP: &str = "describe group";
        self.at_coordinators(OP, groups, |address, ids| async move {
            let request = DescribeGroupsRequest {
                groups: ids.clone(),
                include_authorized_operations: false,
            };
            let response = self.brokers.call(&address, OP, &request).await?;
            let mut out: PerGroup<Answer<Option<GroupSnapshot>>> = BTreeMap::new();
            for g in response.groups {
                let r = match g.error_code {
                    0 => Ok(Answer::Got(group_snapshot(&g))),
                    // Also the answer for a group of another type (consumer, streams).
                    code::GROUP_ID_NOT_FOUND => Ok(Answer::Got(None)),
                    c if code::is_coordinator_moving(c) => Ok(Answer::Moved(c, g.error_message)),
                    c => Err(self.brokers.broker_error(OP, c, g.error_message.as_deref())),
                };
                out.insert(g.group_id, r);
            }
            for id in ids {
                out.entry(id).or_insert(Ok(Answer::Got(None)));
            }
            Ok(out)
        })
        .await
    }

    /// Streams groups as StreamsGroupDescribe reports them, `None` for a group that does not
    /// exist (as one): one request per coordinator. `groups`: group -> coordinator.
    pub(crate) async fn describe_streams_groups(
        &self,
        groups: BTreeMap<String, String>,
    ) -> Result<PerGroup<Option<StreamsGroupSnapshot>>, KafkaError> {
        const OP: &str = "describe streams group";
        self.at_coordinators(OP, groups, |address, ids| async move {
            let request = StreamsGroupDescribeRequest {
                group_ids: ids.clone(),
                ..Default::default()
            };
            let response = self.brokers.call(&address, OP, &request).await?;
            let mut out: PerGroup<Answer<Option<StreamsGroupSnapshot>>> = BTreeMap::new();
            for g in &response.groups {
                let r = match g.error_code {
                    0 if g.group_state.eq_ignore_ascii_case("dead") => Ok(Answer::Got(None)),
                    0 => Ok(Answer::Got(Some(StreamsGroupSnapshot::from_described(g)))),
                    code::GROUP_ID_NOT_FOUND => Ok(Answer::Got(None)),
                    c if code::is_coordinator_moving(c) => {
                        Ok(Answer::Moved(c, g.error_message.clone()))
                    }
                    c => Err(self.brokers.broker_error(OP, c, g.error_message.as_deref())),
                };
                out.insert(g.group_id.clone(), r);
            }
            for id in ids {
                out.entry(id).or_insert(Ok(Answer::Got(None)));
            }
            Ok(out)
        })
        .await
    }

    /// Committed offsets (with their metadata) of each group for its partitions, absent where
    /// nothing was committed: one OffsetFetch (version 8+, many groups) per coordinator.
    /// `groups`: group -> (coordinator, partitions); topics must be in `meta` (their ids
    /// are what version 10 asks by).
    pub(crate) async fn committed_offsets(
        &self,
        groups: BTreeMap<String, (String, Vec<Partition>)>,
        meta: &ClusterMetadata,
    ) -> Result<PerGroup<CommittedMeta>, KafkaError> {
        const OP: &str = "fetch committed offsets";
        let coordinators: BTreeMap<String, String> = groups
            .iter()
            .map(|(g, (address, _))| (g.clone(), address.clone()))
            .collect();
        let names_by_id: HashMap<[u8; 16], &String> =
            meta.layout.iter().map(|(name, l)| (l.id, name)).collect();
        let groups = &groups;
        let names_by_id = &names_by_id;
        self.at_coordinators(OP, coordinators, |address, ids| async move {
            let request = OffsetFetchRequest {
                groups: ids
                    .iter()
                    .map(|g| OffsetFetchRequestGroup {
                        group_id: g.clone(),
                        member_id: None,
                        member_epoch: -1,
                        topics: Some(fetch_topics(
                            groups.get(g).map_or(&[][..], |(_, p)| p),
                            meta,
                        )),
                    })
                    .collect(),
                // Offsets of open transactions too, as `kafka-consumer-groups` shows them.
                require_stable: false,
                ..Default::default()
            };
            let response = self
                .brokers
                .call_from(&address, OP, &request, OFFSET_FETCH_GROUPS)
                .await?;
            let mut out: PerGroup<Answer<CommittedMeta>> = BTreeMap::new();
            for g in response.groups {
                let r = match g.error_code {
                    0 => {
                        let mut offsets = CommittedMeta::new();
                        for t in g.topics {
                            // Version 10 answers by topic id only.
                            let name = if t.name.is_empty() {
                                match names_by_id.get(&t.topic_id) {
                                    Some(n) => (*n).clone(),
                                    None => continue,
                                }
                            } else {
                                t.name
                            };
                            for p in t.partitions {
                                if p.error_code == 0 && p.committed_offset >= 0 {
                                    offsets.insert(
                                        (name.clone(), p.partition_index),
                                        (p.committed_offset, p.metadata),
                                    );
                                }
                            }
                        }
                        Ok(Answer::Got(offsets))
                    }
                    code::GROUP_ID_NOT_FOUND => Ok(Answer::Got(CommittedMeta::new())),
                    c if code::is_coordinator_moving(c) => Ok(Answer::Moved(c, None)),
                    c => Err(self.brokers.broker_error(OP, c, None)),
                };
                out.insert(g.group_id, r);
            }
            for id in ids {
                out.entry(id)
                    .or_insert(Ok(Answer::Got(CommittedMeta::new())));
            }
            Ok(out)
        })
        .await
    }

    /// End offsets (high watermarks) of `partitions`: one ListOffsets per partition leader.
    /// Partitions without a leader, or whose leader moved or cannot answer right now, are
    /// left out (their lag shows as unknown).
    pub(crate) async fn end_offsets(
        &self,
        partitions: &BTreeSet<Partition>,
        meta: &ClusterMetadata,
    ) -> Result<EndOffsets, KafkaError> {
        const OP: &str = "list offsets";
        let mut by_leader: BTreeMap<&String, BTreeMap<&String, Vec<i32>>> = BTreeMap::new();
        for p in partitions {
            if let Some(leader) = meta.leader(p) {
                by_leader
                    .entry(leader)
                    .or_default()
                    .entry(&p.0)
                    .or_default()
                    .push(p.1);
            }
        }
        let timeout_ms = i32::try_from(self.brokers.timeout().as_millis()).unwrap_or(i32::MAX);
        let answers = join_all(by_leader.into_iter().map(|(address, topics)| {
            let request = ListOffsetsRequest {
                // -1: a client, not a replica.
                replica_id: -1,
                isolation_level: 0,
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| ListOffsetsTopic {
                        name: name.clone(),
                        partitions: partitions
                            .into_iter()
                            .map(|p| ListOffsetsPartition {
                                partition_index: p,
                                timestamp: LATEST,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                timeout_ms,
            };
            async move { self.brokers.call(address, OP, &request).await }
        }))
        .await;
        let mut out = EndOffsets::default();
        for answer in answers {
            for t in answer?.topics {
                for p in t.partitions {
                    match p.error_code {
                        0 if p.offset >= 0 => {
                            out.end
                                .insert((t.name.clone(), p.partition_index), p.offset);
                        }
                        0 => {}
                        code::UNKNOWN_TOPIC_OR_PARTITION => {
                            out.gone.insert(t.name.clone());
                        }
                        c if code::is_partition_level(c) => {}
                        c => {
                            out.failed
                                .entry(t.name.clone())
                                .or_insert_with(|| self.brokers.broker_error(OP, c, None));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// `cleanup.policy` of each topic: `Ok(policy)`, or `Err` with the broker's per-topic
    /// error; topics the broker no longer knows are left out. One DescribeConfigs request.
    pub(crate) async fn cleanup_policies(
        &self,
        topics: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Result<String, String>>, KafkaError> {
        let mut out = BTreeMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        let request = DescribeConfigsRequest {
            resources: topics
                .iter()
                .map(|t| DescribeConfigsResource {
                    resource_type: TOPIC_RESOURCE,
                    resource_name: t.clone(),
                    configuration_keys: Some(vec![CLEANUP_POLICY.to_string()]),
                })
                .collect(),
            ..Default::default()
        };
        let response = self.brokers.call_any("describe configs", &request).await?;
        for r in response.results {
            if !topics.contains(&r.resource_name) {
                continue;
            }
            let policy = match r.error_code {
                0 => r
                    .configs
                    .into_iter()
                    .find(|c| c.name == CLEANUP_POLICY)
                    .and_then(|c| c.value)
                    .ok_or_else(|| format!("{CLEANUP_POLICY} not returned")),
                code::UNKNOWN_TOPIC_OR_PARTITION => continue,
                c => Err(code::text(c)),
            };
            out.insert(r.resource_name, policy);
        }
        Ok(out)
    }
}

/// The topics of an OffsetFetch group, by name and id (each version reads the one it has).
fn fetch_topics(partitions: &[Partition], meta: &ClusterMetadata) -> Vec<OffsetFetchRequestTopics> {
    let mut by_topic: BTreeMap<&String, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    by_topic
        .into_iter()
        .map(|(name, partition_indexes)| OffsetFetchRequestTopics {
            name: name.clone(),
            topic_id: meta.layout.get(name).map(|l| l.id).unwrap_or_default(),
            partition_indexes,
        })
        .collect()
}

/// The snapshot of a classic group; `None` for a group the coordinator calls Dead.
fn group_snapshot(g: &DescribedGroup) -> Option<GroupSnapshot> {
    if g.group_state == "Dead" && g.members.is_empty() {
        return None;
    }
    let bytes = |b: &Vec<u8>| (!b.is_empty()).then(|| b.clone());
    Some(GroupSnapshot {
        state: g.group_state.clone(),
        protocol_type: g.protocol_type.clone(),
        protocol: g.protocol_data.clone(),
        members: g
            .members
            .iter()
            .map(|m| MemberSnapshot {
                member_id: m.member_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: bytes(&m.member_metadata),
                assignment: bytes(&m.member_assignment),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::describe_groups_response::DescribedGroupMember;

    #[test]
    fn a_dead_group_is_none_and_empty_member_data_are_absent() {
        let dead = DescribedGroup {
            group_id: "g".into(),
            group_state: "Dead".into(),
            ..Default::default()
        };
        assert_eq!(group_snapshot(&dead), None);
        let stable = DescribedGroup {
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_data: "stream".into(),
            members: vec![DescribedGroupMember {
                member_id: "m".into(),
                client_id: "wc-0".into(),
                client_host: "/10.0.0.1".into(),
                member_metadata: vec![1, 2],
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = group_snapshot(&stable).expect("a snapshot");
        assert!(s.is_streams());
        assert_eq!(s.members[0].metadata, Some(vec![1, 2]));
        assert_eq!(s.members[0].assignment, None);
    }

    #[test]
    fn offset_fetch_topics_carry_name_and_id_and_group_partitions() {
        let mut meta = ClusterMetadata::default();
        meta.layout.insert(
            "in".into(),
            TopicLayout {
                id: [7; 16],
                leaders: BTreeMap::new(),
            },
        );
        let topics = fetch_topics(
            &[("in".into(), 1), ("in".into(), 0), ("x".into(), 0)],
            &meta,
        );
        assert_eq!(topics.len(), 2);
        assert_eq!(
            (
                topics[0].name.as_str(),
                topics[0].topic_id,
                &topics[0].partition_indexes
            ),
            ("in", [7; 16], &vec![1, 0])
        );
        assert_eq!(topics[1].topic_id, [0; 16]);
    }
}
