//! The broker calls of an application reset (see [`crate::reset`]): the group's state, the
//! checks before a reset, the commit of the reset offsets and the deletion of internal topics.
//!
//! These are the only calls of the crate that change anything on the brokers. The commit goes
//! through a consumer of its own, created for the call and dropped after it: the pool's
//! clients stay read-only (see the module docs of `client`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracing::{info, warn};

use super::cluster::{ClusterClients, serve};
use super::context::{PoolConsumer, PoolContext};
use super::pool::ClientPool;
use crate::connection::KafkaConnection;
use crate::error::{KafkaError, classify, code_of};
use crate::lag::Partition;
use crate::reset::{
    GroupMembers, OffsetTarget, OffsetsReset, ResetRefusal, already_applied, input_partitions,
    not_committed, reset_marker, retention_refusal, time_limit, timestamp_target,
};
use crate::topics::{internal_topics, missing_inputs};

/// Committed offsets with their metadata.
type CommittedMeta = BTreeMap<Partition, (i64, String)>;

/// How often `delete_topics` asks the metadata whether the topics are gone.
const DELETION_POLL: Duration = Duration::from_millis(100);

impl ClientPool {
    /// The group's state and member count now; None when the group does not exist (or is Dead
    /// with no members).
    pub async fn group_members(
        &self,
        conn: &KafkaConnection,
        group: &str,
    ) -> Result<Option<GroupMembers>, KafkaError> {
        let clients = self.cluster(conn)?;
        let group = group.to_string();
        run(&clients, "describe group", 1, move |c| {
            c.group_members(&group)
        })
        .await
    }

    /// Checks a reset can run: every input topic exists, and a Timestamp target is within
    /// every input topic's retention (retention.ms -1, or a compact-only policy, keeps records
    /// forever). `Ok(None)` = fine.
    pub async fn check_reset(
        &self,
        conn: &KafkaConnection,
        inputs: &[String],
        target: Option<OffsetTarget>,
        now_ms: i64,
    ) -> Result<Option<ResetRefusal>, KafkaError> {
        let clients = self.cluster(conn)?;
        let topics = run(&clients, "metadata", 1, |c| c.topics()).await?;
        let missing = missing_inputs(inputs, &topics);
        if !missing.is_empty() {
            return Ok(Some(ResetRefusal::MissingInputs(missing)));
        }
        let Some(OffsetTarget::Timestamp(ts)) = target else {
            return Ok(None);
        };
        let mut names = inputs.to_vec();
        names.sort();
        names.dedup();
        let limits = match clients.time_limits(&names).await? {
            Ok(limits) => limits,
            // Deleted since the metadata call.
            Err(gone) => return Ok(Some(ResetRefusal::MissingInputs(gone))),
        };
        Ok(retention_refusal(ts, now_ms, &limits))
    }

    /// Commits, for `group`, the target offset of every partition of every topic in
    /// `inputs`, each with metadata [`reset_marker`]`(id)`, as Kafka's reset tool does: a
    /// consumer that never joins the group commits, which the broker accepts only while the
    /// group is Empty or absent ([`KafkaError::GroupNotEmpty`] otherwise). When every
    /// partition already carries the marker, commits nothing (`already_applied`): a reset
    /// resumed after a crash commits exactly once.
    pub async fn reset_offsets(
        &self,
        conn: &KafkaConnection,
        group: &str,
        inputs: &[String],
        target: OffsetTarget,
        id: &str,
    ) -> Result<OffsetsReset, KafkaError> {
        let clients = self.cluster(conn)?;
        let (conn, group, inputs, marker) = (
            conn.clone(),
            group.to_string(),
            inputs.to_vec(),
            reset_marker(id),
        );
        // Describe, metadata, two offset fetches, up to two ListOffsets, the commit and, when
        // it is refused, one more describe.
        run(&clients, "reset offsets", 8, move |c| {
            c.reset_offsets(&conn, &group, &inputs, target, &marker)
        })
        .await
    }

    /// The committed offsets of `group` for the partitions of `inputs`, with their metadata:
    /// (topic, partition) -> (offset, metadata). Partitions without a commit and topics that
    /// do not exist are left out. Read through the wire connections (Metadata, OffsetFetch at
    /// the group's coordinator): no consumer of the group is created.
    pub async fn committed_with_metadata(
        &self,
        conn: &KafkaConnection,
        group: &str,
        inputs: &[String],
    ) -> Result<BTreeMap<(String, i32), (i64, String)>, KafkaError> {
        let clients = self.cluster(conn)?;
        let meta = clients.metadata().await?;
        let present: Vec<String> = inputs
            .iter()
            .filter(|t| meta.topics.contains_key(*t))
            .cloned()
            .collect();
        let partitions = input_partitions(&present, &meta.topics).unwrap_or_default();
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let coordinator = clients.brokers.coordinator(group).await?;
        let wanted = BTreeMap::from([(group.to_string(), (coordinator, partitions))]);
        let mut found = clients.committed_offsets(wanted, &meta).await?;
        let committed = found.remove(group).unwrap_or_else(|| Ok(BTreeMap::new()))?;
        Ok(committed
            .into_iter()
            .map(|(p, (offset, metadata))| (p, (offset, metadata.unwrap_or_default())))
            .collect())
    }

    /// The app's own internal topics (changelog and repartition) now, sorted: the
    /// `topics::internal_topics` rule, leaving out the topics of other apps whose
    /// application.id extends this one, so a reset never deletes another app's topic. The
    /// cluster's groups are listed afresh for this.
    pub async fn internal_topic_names(
        &self,
        conn: &KafkaConnection,
        app_id: &str,
    ) -> Result<Vec<String>, KafkaError> {
        let clients = self.cluster(conn)?;
        let app_id = app_id.to_string();
        run(&clients, "list internal topics", 2, move |c| {
            let others = c.extending_groups(&app_id)?;
            let found = internal_topics(&app_id, &c.topics()?, &others);
            let mut names: Vec<String> = found
                .changelogs
                .into_iter()
                .map(|t| t.name)
                .chain(found.repartitions.into_keys())
                .collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    /// Deletes `names` (topics already gone are not an error) and waits, bounded by the
    /// pool's request timeout, until the metadata no longer lists any of them; returns the
    /// ones it deleted.
    pub async fn delete_topics(
        &self,
        conn: &KafkaConnection,
        names: &[String],
    ) -> Result<Vec<String>, KafkaError> {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Ok(names);
        }
        let clients = self.cluster(conn)?;
        let deleted = clients.delete(&names).await?;
        let deadline = Instant::now() + clients.timeout();
        loop {
            let listed = run(&clients, "metadata", 1, |c| c.listed_topics()).await?;
            if !names.iter().any(|n| listed.contains(n)) {
                return Ok(deleted);
            }
            if Instant::now() >= deadline {
                return Err(KafkaError::Timeout {
                    bootstrap: clients.bootstrap().to_string(),
                    operation: "delete topics",
                    timeout: clients.timeout(),
                });
            }
            tokio::time::sleep(DELETION_POLL).await;
        }
    }
}

impl ClusterClients {
    /// The group as a reset sees it. Blocking.
    fn group_members(&self, group: &str) -> Result<Option<GroupMembers>, KafkaError> {
        Ok(self.describe_group(group)?.map(|g| GroupMembers {
            state: g.state,
            members: g.members.len(),
        }))
    }

    /// The reset of the offsets, start to end (see [`ClientPool::reset_offsets`]). Blocking.
    fn reset_offsets(
        &self,
        conn: &KafkaConnection,
        group: &str,
        inputs: &[String],
        target: OffsetTarget,
        marker: &str,
    ) -> Result<OffsetsReset, KafkaError> {
        if let Some(g) = self.group_members(group)?
            && !g.accepts_reset()
        {
            return Err(KafkaError::GroupNotEmpty {
                group: group.to_string(),
                members: g.members,
            });
        }
        let partitions =
            input_partitions(inputs, &self.topics()?).map_err(|missing| KafkaError::Request {
                bootstrap: self.bootstrap().to_string(),
                operation: "reset offsets",
                detail: format!(
                    "input topics {} do not exist (deleted since the reset was checked?)",
                    missing.join(", ")
                ),
            })?;
        let topics = partitions
            .iter()
            .map(|(t, _)| t)
            .collect::<BTreeSet<_>>()
            .len();
        let done = |already_applied| OffsetsReset {
            partitions: partitions.len(),
            topics,
            already_applied,
        };
        if partitions.is_empty() {
            return Ok(done(false));
        }
        let (consumer, ctx) = self.reset_consumer(conn, group)?;
        let committed = self.committed_meta(&consumer, &ctx, &partitions)?;
        if already_applied(&committed, &partitions, marker) {
            info!(group, marker, "reset offsets already committed");
            return Ok(done(true));
        }
        let targets = self.targets(&partitions, target)?;
        let mut tpl = TopicPartitionList::with_capacity(targets.len());
        for ((t, p), o) in &targets {
            let mut el = tpl.add_partition(t, *p);
            el.set_offset(Offset::Offset(*o))
                .map_err(|e| self.fail("commit offsets", &ctx, Instant::now(), &e))?;
            el.set_metadata(marker);
        }
        let start = Instant::now();
        serve(&consumer);
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            serve(&consumer);
            return Err(self.refused_commit(group, &ctx, start, &e));
        }
        // Read back what the broker stored: success is reported only when a resumed reset's
        // marker check would see it, whatever librdkafka made of per-partition answers.
        let stored = self.committed_meta(&consumer, &ctx, &partitions)?;
        let missed = not_committed(&stored, &targets, marker);
        if !missed.is_empty() {
            return Err(KafkaError::Request {
                bootstrap: self.bootstrap().to_string(),
                operation: "commit offsets",
                detail: format!(
                    "the broker did not store the reset offsets of {} partitions (first: {}-{}); request the reset again",
                    missed.len(),
                    missed[0].0,
                    missed[0].1
                ),
            });
        }
        info!(
            group,
            marker,
            partitions = targets.len(),
            ?target,
            "committed reset offsets"
        );
        Ok(done(false))
    }

    /// The error of a refused commit: a group that gained a member since it was described
    /// makes the broker answer as to a stale member.
    fn refused_commit(
        &self,
        group: &str,
        ctx: &PoolContext,
        start: Instant,
        e: &RdError,
    ) -> KafkaError {
        if !code_of(e).is_some_and(refused_by_members) {
            return self.fail("commit offsets", ctx, start, e);
        }
        KafkaError::GroupNotEmpty {
            group: group.to_string(),
            members: self
                .group_members(group)
                .ok()
                .flatten()
                .map_or(0, |g| g.members),
        }
    }

    /// A consumer of `group` for one reset: the pool's settings, but its own client, so the
    /// pool's read-only group consumers never commit. Dropped on the blocking pool by its
    /// caller (it is created inside one).
    fn reset_consumer(
        &self,
        conn: &KafkaConnection,
        group: &str,
    ) -> Result<(PoolConsumer, PoolContext), KafkaError> {
        let mut cfg = ClientConfig::new();
        for (k, v) in conn.client_settings() {
            cfg.set(k, v);
        }
        // The pool's client.id, so brokers log and quota the reset as the operator.
        cfg.set("client.id", "kstreams-operator")
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("allow.auto.create.topics", "false")
            .set_log_level(RDKafkaLogLevel::Warning);
        let ctx = PoolContext::new(self.stats.clone());
        let consumer =
            cfg.create_with_context(ctx.clone())
                .map_err(|e| KafkaError::InvalidConfig {
                    bootstrap: self.bootstrap().to_string(),
                    detail: e.to_string(),
                })?;
        Ok((consumer, ctx))
    }

    /// The committed offsets and metadata of `consumer`'s group for `partitions`. Blocking.
    fn committed_meta(
        &self,
        consumer: &PoolConsumer,
        ctx: &PoolContext,
        partitions: &[Partition],
    ) -> Result<CommittedMeta, KafkaError> {
        let mut out = CommittedMeta::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let start = Instant::now();
        serve(consumer);
        let res = consumer
            .committed_offsets(tpl, self.timeout())
            .map_err(|e| {
                serve(consumer);
                self.fail("fetch committed offsets", ctx, start, &e)
            })?;
        for el in res.elements() {
            if let (Ok(()), Offset::Offset(o)) = (el.error(), el.offset()) {
                out.insert(
                    (el.topic().to_string(), el.partition()),
                    (o, el.metadata().to_string()),
                );
            }
        }
        Ok(out)
    }

    /// The offset `target` gives each partition. Blocking.
    fn targets(
        &self,
        partitions: &[Partition],
        target: OffsetTarget,
    ) -> Result<BTreeMap<Partition, i64>, KafkaError> {
        let exact = |query: Offset| -> Result<BTreeMap<Partition, i64>, KafkaError> {
            self.list_offsets(partitions, query)?
                .into_iter()
                .map(|(p, o)| {
                    o.map(|o| (p.clone(), o))
                        .ok_or_else(|| KafkaError::Request {
                            bootstrap: self.bootstrap().to_string(),
                            operation: "list offsets",
                            detail: format!("no {query:?} offset for {}-{}", p.0, p.1),
                        })
                })
                .collect()
        };
        match target {
            // ListOffsets' "timestamps" -2 and -1: the log start and end.
            OffsetTarget::Earliest => exact(Offset::Beginning),
            OffsetTarget::Latest => exact(Offset::End),
            OffsetTarget::Timestamp(ts) => {
                let found = self.list_offsets(partitions, Offset::Offset(ts))?;
                let high = exact(Offset::End)?;
                Ok(high
                    .into_iter()
                    .map(|(p, h)| {
                        let o = timestamp_target(found.get(&p).copied().flatten(), h);
                        (p, o)
                    })
                    .collect())
            }
        }
    }

    /// ListOffsets for every partition with `query` as the timestamp, in one call (one
    /// request per leader): the offset, or `None` when the broker has none (no record at or
    /// after a timestamp). Any partition failing fails the call: a reset moves all partitions
    /// or none. Blocking.
    fn list_offsets(
        &self,
        partitions: &[Partition],
        query: Offset,
    ) -> Result<BTreeMap<Partition, Option<i64>>, KafkaError> {
        let mut out = BTreeMap::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let c = self.shared()?;
        let start = Instant::now();
        let fail = |e: &RdError| self.fail("list offsets", &self.consumer_ctx, start, e);
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (t, p) in partitions {
            tpl.add_partition_offset(t, *p, query)
                .map_err(|e| fail(&e))?;
        }
        serve(c);
        let res = c.offsets_for_times(tpl, self.timeout()).map_err(|e| {
            serve(c);
            fail(&e)
        })?;
        for el in res.elements() {
            el.error().map_err(|e| fail(&e))?;
            let offset = match el.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            out.insert((el.topic().to_string(), el.partition()), offset);
        }
        Ok(out)
    }

    /// How long each topic keeps records by time (see [`time_limit`]), from one
    /// DescribeConfigs call; `Err` with the topics the broker no longer knows.
    async fn time_limits(
        &self,
        topics: &[String],
    ) -> Result<Result<BTreeMap<String, Option<i64>>, Vec<String>>, KafkaError> {
        let op = "describe configs";
        let admin = self.admin()?;
        let specs: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let opts = AdminOptions::new().request_timeout(Some(self.timeout()));
        self.stats.admin_calls.fetch_add(1, Ordering::Relaxed);
        let res = self
            .admin_call(op, admin.describe_configs(&specs, &opts))
            .await?;
        let mut limits = BTreeMap::new();
        let mut gone = Vec::new();
        for (topic, r) in topics.iter().zip(res) {
            let cfg = match r {
                Ok(cfg) => cfg,
                Err(Code::UnknownTopicOrPartition) => {
                    gone.push(topic.clone());
                    continue;
                }
                Err(code) => return Err(self.topic_failure(op, topic, code)),
            };
            let value = |key: &str| {
                cfg.get(key)
                    .and_then(|e| e.value.clone())
                    .unwrap_or_default()
            };
            let limit =
                time_limit(&value("retention.ms"), &value("cleanup.policy")).map_err(|detail| {
                    KafkaError::Request {
                        bootstrap: self.bootstrap().to_string(),
                        operation: op,
                        detail: format!("topic {topic}: {detail}"),
                    }
                })?;
            limits.insert(topic.clone(), limit);
        }
        Ok(if gone.is_empty() {
            Ok(limits)
        } else {
            Err(gone)
        })
    }

    /// Deletes `names` in one DeleteTopics call, waiting for the controller to complete it;
    /// returns the ones deleted (topics already gone are skipped).
    async fn delete(&self, names: &[String]) -> Result<Vec<String>, KafkaError> {
        let op = "delete topics";
        let admin = self.admin()?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let opts = AdminOptions::new()
            .request_timeout(Some(self.timeout()))
            .operation_timeout(Some(self.timeout()));
        let res = self
            .admin_call(op, admin.delete_topics(&refs, &opts))
            .await?;
        let mut deleted = Vec::new();
        for r in res {
            match r {
                Ok(name) => deleted.push(name),
                Err((_, Code::UnknownTopicOrPartition)) => {}
                Err((name, code)) => return Err(self.topic_failure(op, &name, code)),
            }
        }
        deleted.sort();
        info!(topics = ?deleted, "deleted topics");
        Ok(deleted)
    }

    /// Runs an admin call with the pool's timeout and classifies its failure.
    async fn admin_call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, RdError>>,
    ) -> Result<T, KafkaError> {
        tokio::time::timeout(self.timeout() + Duration::from_secs(1), call)
            .await
            .map_err(|_| KafkaError::Timeout {
                bootstrap: self.bootstrap().to_string(),
                operation: op,
                timeout: self.timeout(),
            })?
            .map_err(|e| {
                let err = classify(self.bootstrap(), op, self.timeout(), &e, None);
                warn!(bootstrap = %self.bootstrap(), error = %err, "Kafka request failed");
                err
            })
    }

    /// The error of an admin operation the broker failed for one topic, naming the topic.
    fn topic_failure(&self, op: &'static str, topic: &str, code: Code) -> KafkaError {
        let bootstrap = self.bootstrap().to_string();
        let detail = match code {
            Code::TopicDeletionDisabled => {
                format!(
                    "topic {topic}: the brokers forbid deleting topics (delete.topic.enable=false)"
                )
            }
            _ => format!("topic {topic}: {code}"),
        };
        warn!(bootstrap, operation = op, detail, "Kafka request failed");
        match classify(
            &bootstrap,
            op,
            self.timeout(),
            &RdError::AdminOp(code),
            None,
        ) {
            KafkaError::NotAuthorized { .. } => KafkaError::NotAuthorized {
                bootstrap,
                operation: op,
                detail,
            },
            KafkaError::Request { .. } => KafkaError::Request {
                bootstrap,
                operation: op,
                detail,
            },
            other => other,
        }
    }

    /// The names of every topic the metadata lists, those in error included (a topic being
    /// deleted may still show so). Blocking.
    fn listed_topics(&self) -> Result<BTreeSet<String>, KafkaError> {
        let c = self.shared()?;
        let start = Instant::now();
        serve(c);
        let md = c.fetch_metadata(None, self.timeout()).map_err(|e| {
            serve(c);
            self.fail("metadata", &self.consumer_ctx, start, &e)
        })?;
        Ok(md.topics().iter().map(|t| t.name().to_string()).collect())
    }
}

/// Whether a commit error means the group has members: the broker answers a commit from
/// outside a non-empty group as one from an unknown or stale member (Kafka 4.3 answers
/// `UnknownMemberId` for a classic group; the others come from rebalances and from groups of
/// the newer protocols).
fn refused_by_members(code: Code) -> bool {
    matches!(
        code,
        Code::UnknownMemberId
            | Code::IllegalGeneration
            | Code::RebalanceInProgress
            | Code::StaleMemberEpoch
            | Code::FencedMemberEpoch
    )
}

/// Runs blocking librdkafka calls on the blocking pool. librdkafka enforces each call's
/// timeout itself; the outer limit, `calls` times the timeout, only guards against a call
/// that never returns.
fn run<T, F>(
    clients: &Arc<ClusterClients>,
    operation: &'static str,
    calls: u32,
    f: F,
) -> impl Future<Output = Result<T, KafkaError>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce(&ClusterClients) -> Result<T, KafkaError> + Send + 'static,
{
    let c = clients.clone();
    let bootstrap = clients.bootstrap().to_string();
    let limit = clients.timeout() * calls + Duration::from_secs(1);
    async move {
        match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || f(&c))).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(KafkaError::Request {
                bootstrap,
                operation,
                detail: format!("worker failed: {join}"),
            }),
            Err(_) => Err(KafkaError::Timeout {
                bootstrap,
                operation,
                timeout: limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_errors_of_a_commit_are_a_non_empty_group() {
        let e = RdError::ConsumerCommit(Code::UnknownMemberId);
        assert!(code_of(&e).is_some_and(refused_by_members));
        assert!(refused_by_members(Code::RebalanceInProgress));
        assert!(!refused_by_members(Code::GroupAuthorizationFailed));
        assert!(!refused_by_members(Code::RequestTimedOut));
    }
}
