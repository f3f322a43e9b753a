//! The requests a cluster's clients answer: topics, end and committed offsets, the group's
//! description and topic configs, and the error classifiers they use.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, warn};

use super::cluster::{ClusterClients, serve};
use super::context::lock;
use crate::error::{KafkaError, classify, code_of};
use crate::group::{GroupSnapshot, MemberSnapshot};
use crate::lag::{Offsets, Partition};

/// How long a listing of the cluster's consumer groups serves: a new app that extends
/// another's id is told apart within this time.
const GROUP_LIST_TTL: Duration = Duration::from_secs(60);

impl ClusterClients {
    /// All topics and their partition counts. Blocking.
    pub(crate) fn topics(&self) -> Result<BTreeMap<String, i32>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let md = c.fetch_metadata(None, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("metadata", &self.consumer_ctx, start, &e)
        })?;
        // A topic being deleted reports an error and is left out.
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// Ids of the consumer groups that extend `app_id` with a dash (`app` -> `app-x`): other
    /// Kafka Streams apps whose internal topics carry our prefix too. Blocking.
    pub(crate) fn extending_groups(&self, app_id: &str) -> Result<BTreeSet<String>, KafkaError> {
        let prefix = format!("{app_id}-");
        Ok(self
            .group_ids()?
            .iter()
            .filter(|g| g.starts_with(&prefix))
            .cloned()
            .collect())
    }

    /// Every consumer group id of the cluster, listed at most once per [`GROUP_LIST_TTL`] for
    /// all the apps that use it: librdkafka lists all groups by asking every broker
    /// (ListGroups) and then describing each group found (DescribeGroups). Blocking.
    fn group_ids(&self) -> Result<Arc<BTreeSet<String>>, KafkaError> {
        if let Some((at, ids)) = lock(&self.group_ids).as_ref()
            && at.elapsed() < GROUP_LIST_TTL
        {
            return Ok(ids.clone());
        }
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let list = c.fetch_group_list(None, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("list groups", &self.consumer_ctx, start, &e)
        })?;
        let ids: Arc<BTreeSet<String>> =
            Arc::new(list.groups().iter().map(|g| g.name().to_string()).collect());
        *lock(&self.group_ids) = Some((Instant::now(), ids.clone()));
        Ok(ids)
    }

    /// End offsets (high watermarks) of `partitions` in one call: librdkafka sends one
    /// ListOffsets request per partition leader. Blocking.
    ///
    /// librdkafka fails the whole call, discarding every result, when a single partition
    /// errs (topic deleted meanwhile, leader moving). Then the topics are asked one by one:
    /// the ones the broker no longer knows are returned in the second set, and partitions
    /// still failing are left out (their lag shows as unknown).
    pub(crate) fn end_offsets(
        &self,
        partitions: &[Partition],
    ) -> Result<(Offsets, BTreeSet<String>), KafkaError> {
        let mut gone = BTreeSet::new();
        let err = match self.list_end_offsets(partitions) {
            Ok(out) => return Ok((out, gone)),
            Err(e) if is_partition_level(&e) => e,
            Err(e) => {
                return Err(self.fail("list offsets", &self.consumer_ctx, Instant::now(), &e));
            }
        };
        debug!(error = %err, "batched ListOffsets failed on a partition; asking per topic");
        let mut by_topic: BTreeMap<&str, Vec<Partition>> = BTreeMap::new();
        for p in partitions {
            by_topic.entry(p.0.as_str()).or_default().push(p.clone());
        }
        let mut out = Offsets::new();
        for (topic, parts) in by_topic {
            match self.list_end_offsets(&parts) {
                Ok(o) => out.extend(o),
                Err(e) if is_unknown_topic(&e) => {
                    gone.insert(topic.to_string());
                }
                Err(e) if is_partition_level(&e) => {
                    debug!(topic, error = %e, "no end offsets for topic");
                }
                Err(e) => {
                    return Err(self.fail("list offsets", &self.consumer_ctx, Instant::now(), &e));
                }
            }
        }
        Ok((out, gone))
    }

    fn list_end_offsets(&self, partitions: &[Partition]) -> Result<Offsets, RdError> {
        let mut out = Offsets::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let c = self.consumer.get().ok_or(RdError::Canceled)?;
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (t, p) in partitions {
            // Offset::End is the "latest" timestamp (-1) ListOffsets understands.
            tpl.add_partition_offset(t, *p, Offset::End)?;
        }
        serve(c);
        let res = c.offsets_for_times(tpl, self.timeout());
        serve(c);
        for el in res?.elements() {
            match (el.error(), el.offset()) {
                (Ok(()), Offset::Offset(o)) => {
                    out.insert((el.topic().to_string(), el.partition()), o);
                }
                (r, o) => debug!(
                    topic = el.topic(),
                    partition = el.partition(),
                    ?r,
                    ?o,
                    "no end offset"
                ),
            }
        }
        Ok(out)
    }

    /// The group as DescribeGroups reports it; `None` when no such group exists. librdkafka
    /// asks every broker for its groups (ListGroups) and the coordinator for this one
    /// (DescribeGroups). Blocking.
    pub(crate) fn describe_group(&self, group: &str) -> Result<Option<GroupSnapshot>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let list = c
            .fetch_group_list(Some(group), self.timeout())
            .map_err(|e| {
                serve(c);
                self.fail("describe group", &self.consumer_ctx, start, &e)
            })?;
        let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
            return Ok(None);
        };
        // The coordinator answers "Dead" for a group it does not know.
        if g.state() == "Dead" && g.members().is_empty() {
            return Ok(None);
        }
        Ok(Some(GroupSnapshot {
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| MemberSnapshot {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    client_host: m.client_host().to_string(),
                    metadata: m.metadata().map(<[u8]>::to_vec),
                    assignment: m.assignment().map(<[u8]>::to_vec),
                })
                .collect(),
        }))
    }

    /// Committed offsets of `group` for `partitions` (absent = never committed). Blocking.
    pub(crate) fn committed(
        &self,
        group: &str,
        partitions: &[Partition],
    ) -> Result<Offsets, KafkaError> {
        let mut out = Offsets::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let gc = self.group_consumer(group)?;
        let c = gc.consumer.get().ok_or_else(|| self.closed())?;
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let start = Instant::now();
        serve(c);
        let res = c.committed_offsets(tpl, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("fetch committed offsets", &gc.ctx, start, &e)
        })?;
        for el in res.elements() {
            if let (Ok(()), Offset::Offset(o)) = (el.error(), el.offset()) {
                out.insert((el.topic().to_string(), el.partition()), o);
            }
        }
        Ok(out)
    }

    /// `cleanup.policy` of each topic in one DescribeConfigs call: `Ok(policy)`, or `Err` with
    /// the broker's per-topic error. Topics the broker no longer knows are left out.
    pub(crate) async fn cleanup_policies(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, Result<String, String>>, KafkaError> {
        let mut out = BTreeMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        let admin = self.admin.get().ok_or_else(|| self.closed())?;
        let specs: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let opts = AdminOptions::new().request_timeout(Some(self.timeout()));
        self.stats.admin_calls.fetch_add(1, Ordering::Relaxed);
        let res = tokio::time::timeout(
            self.timeout() + Duration::from_secs(1),
            admin.describe_configs(&specs, &opts),
        )
        .await
        .map_err(|_| KafkaError::Timeout {
            bootstrap: self.bootstrap().to_string(),
            operation: "describe configs",
            timeout: self.timeout(),
        })?
        .map_err(|e| {
            let err = classify(
                self.bootstrap(),
                "describe configs",
                self.timeout(),
                &e,
                None,
            );
            warn!(bootstrap = %self.bootstrap(), error = %err, "Kafka request failed");
            err
        })?;
        for (topic, r) in topics.iter().zip(res) {
            match r {
                Ok(cfg) => {
                    let policy = cfg
                        .get("cleanup.policy")
                        .and_then(|e| e.value.clone())
                        .ok_or_else(|| "cleanup.policy not returned".to_string());
                    out.insert(topic.clone(), policy);
                }
                Err(Code::UnknownTopicOrPartition) => {}
                Err(code) => {
                    out.insert(topic.clone(), Err(code.to_string()));
                }
            }
        }
        Ok(out)
    }
}

/// A topic the broker does not know (deleted, or never created).
fn is_unknown_topic(e: &RdError) -> bool {
    matches!(
        code_of(e),
        Some(Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::UnknownPartition)
    )
}

/// An error about some partitions, not about reaching or using the cluster.
fn is_partition_level(e: &RdError) -> bool {
    is_unknown_topic(e)
        || matches!(
            code_of(e),
            Some(
                Code::NotLeaderForPartition
                    | Code::LeaderNotAvailable
                    | Code::ReplicaNotAvailable
                    | Code::KafkaStorageError
                    | Code::OffsetNotAvailable
                    | Code::FencedLeaderEpoch
                    | Code::UnknownLeaderEpoch
            )
        )
}
