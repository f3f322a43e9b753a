//! Turns one observation of the brokers into a [`KafkaStatus`]. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::group::{DecodedMember, GroupSnapshot, decode_member};
use super::lag::{
    DEFAULT_ACCEPTABLE_RECOVERY_LAG, Offsets, Partition, TopologyFacts, map_changelogs,
    merge_offset_sums, processing_lag, restore_lag,
};
use super::status::{
    GroupMemberStatus, GroupStatus, KafkaProblem, KafkaStatus, PodKafkaStatus, ProblemReason,
};
use super::topics::{changelog_status, internal_topics, missing_inputs, partitions_match_source};
use super::userdata::TaskId;
use crate::crd::StreamApp;

/// What the Kafka check needs to know about an app.
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
}

impl AppView {
    /// The view of a StreamApp with the given pods; `acceptable.recovery.lag` comes from
    /// `spec.config` (Kafka Streams' default when unset or unparsable).
    pub fn new(app: &StreamApp, pods: Vec<String>) -> Self {
        Self {
            application_id: app.application_id(),
            input_topics: app.spec.topics.inputs.clone(),
            pods,
            acceptable_recovery_lag: app
                .spec
                .config
                .get("acceptable.recovery.lag")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_ACCEPTABLE_RECOVERY_LAG),
        }
    }
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
    /// Committed offsets of the group.
    pub committed: Offsets,
    /// End offsets.
    pub end: Offsets,
    /// When the current group members joined, as near as the operator saw it (see
    /// [`Baseline`]); `None` measures restore lag against `end`.
    pub baseline: Option<Baseline>,
    /// Topics that disappeared during the check.
    pub gone: BTreeSet<String>,
}

impl Observation {
    /// Partitions of the topics the app consumes: existing inputs and repartition topics.
    pub fn source_partitions(&self, app: &AppView) -> Vec<Partition> {
        let internal = internal_topics(&app.application_id, &self.topics);
        let mut names: BTreeSet<&String> = app
            .input_topics
            .iter()
            .filter(|t| self.topics.contains_key(*t))
            .collect();
        names.extend(internal.repartitions.keys());
        partitions_of(names, &self.topics)
    }

    /// Partitions of the app's changelogs.
    pub fn changelog_partitions(&self, app: &AppView) -> Vec<Partition> {
        let internal = internal_topics(&app.application_id, &self.topics);
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

/// Whether the group committed on `partition` since the baseline.
fn processing_since(obs: &Observation, partition: &Partition) -> bool {
    let Some(base) = &obs.baseline else {
        return false;
    };
    match (obs.committed.get(partition), base.committed.get(partition)) {
        (Some(now), Some(then)) => now > then,
        (Some(_), None) => true,
        _ => false,
    }
}

fn problem(reason: ProblemReason, message: String) -> KafkaProblem {
    KafkaProblem { reason, message }
}

/// Builds the status from one observation. `now` is the RFC 3339 time of the check.
pub fn build_status(app: &AppView, obs: &Observation, now: String) -> KafkaStatus {
    let mut problems = Vec::new();
    let topics: BTreeMap<String, i32> = obs
        .topics
        .iter()
        .filter(|(t, _)| !obs.gone.contains(*t))
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    let internal = internal_topics(&app.application_id, &topics);
    let missing = missing_inputs(&app.input_topics, &topics);
    if !missing.is_empty() {
        problems.push(problem(
            ProblemReason::InputTopicMissing,
            format!("input topic(s) do not exist: {}", missing.join(", ")),
        ));
    }
    if !obs.gone.is_empty() {
        let gone: Vec<&str> = obs.gone.iter().map(String::as_str).collect();
        problems.push(problem(
            ProblemReason::TopicDeleted,
            format!("topic(s) deleted during the check: {}", gone.join(", ")),
        ));
    }

    // Group members, decoded.
    let streams = obs.group.as_ref().is_some_and(GroupSnapshot::is_streams);
    let members: Vec<DecodedMember> = obs
        .group
        .iter()
        .flat_map(|g| g.members.iter())
        .map(|m| decode_member(m, &app.pods, streams))
        .collect();
    if let Some(g) = &obs.group {
        group_problems(g, &members, app, &mut problems);
    }

    // Which subtopology owns which changelog.
    let mut facts = TopologyFacts::default();
    for m in &members {
        for ((topic, _), task) in &m.active {
            facts.add_active(task, topics.get(topic).copied());
        }
        m.standby.iter().for_each(|t| facts.add_standby(t));
        m.offset_sums
            .iter()
            .flatten()
            .for_each(|(t, _)| facts.add_reported(t));
    }
    let changelog_counts: Vec<(String, i32)> = internal
        .changelogs
        .iter()
        .map(|c| (c.name.clone(), c.partitions))
        .collect();
    let mapping = map_changelogs(&changelog_counts, &facts);
    let changelog_partitions: BTreeMap<String, i32> = changelog_counts.iter().cloned().collect();

    // Changelogs and their health.
    let source_counts: Vec<i32> = app
        .input_topics
        .iter()
        .filter_map(|t| topics.get(t).copied())
        .chain(internal.repartitions.values().copied())
        .collect();
    let mut changelog_topics = Vec::new();
    for c in &internal.changelogs {
        let owner_count = match mapping.owners.get(&c.name).map(Vec::as_slice) {
            Some([owner]) if mapping.exact.get(&c.name) == Some(&true) => {
                facts.task_counts.get(owner).copied().flatten()
            }
            _ => None,
        };
        let policy = match obs.cleanup_policies.get(&c.name) {
            Some(Ok(p)) => Some(p.clone()),
            Some(Err(e)) => {
                problems.push(problem(
                    ProblemReason::TopicDataUnavailable,
                    format!("cleanup.policy of {}: {e}", c.name),
                ));
                None
            }
            None => None,
        };
        let status = changelog_status(
            c,
            policy,
            partitions_match_source(c.partitions, owner_count, &source_counts),
        );
        if status.compacted == Some(false) {
            problems.push(problem(
                ProblemReason::ChangelogNotCompacted,
                format!(
                    "changelog {} has cleanup.policy={:?}: state of store {:?} is lost to \
                     retention; set cleanup.policy=compact",
                    c.name,
                    status.cleanup_policy.as_deref().unwrap_or_default(),
                    c.store
                ),
            ));
        }
        if status.partitions_match_source == Some(false) {
            problems.push(problem(
                ProblemReason::ChangelogPartitionMismatch,
                format!(
                    "changelog {} has {} partitions, which does not match the app's source \
                     topics",
                    c.name, c.partitions
                ),
            ));
        }
        changelog_topics.push(status);
    }
    if internal.changelogs.is_empty() && !facts.stateful().is_empty() {
        problems.push(problem(
            ProblemReason::NoChangelogTopics,
            format!(
                "members report state for stateful tasks but no {}-<store>-changelog topic \
                 exists: the state is not backed up in Kafka (logging disabled, or topics \
                 deleted)",
                app.application_id
            ),
        ));
    }

    // Processing lag of every source partition.
    let sources = obs.source_partitions(app);
    let missing_end = sources.iter().filter(|p| !obs.end.contains_key(*p)).count()
        + obs
            .changelog_partitions(app)
            .iter()
            .filter(|p| !obs.end.contains_key(*p) && !obs.gone.contains(&p.0))
            .count();
    let sources: Vec<Partition> = sources
        .into_iter()
        .filter(|p| !obs.gone.contains(&p.0))
        .collect();
    let total = processing_lag(&sources, &obs.end, &obs.committed);
    if missing_end > 0 {
        problems.push(problem(
            ProblemReason::TopicDataUnavailable,
            format!("the brokers returned no end offset for {missing_end} partition(s); lags leave them out"),
        ));
    }

    // Per pod.
    let mut pods = Vec::new();
    for pod in &app.pods {
        let mine: Vec<&DecodedMember> = members
            .iter()
            .filter(|m| m.pod.as_deref() == Some(pod))
            .collect();
        let assigned: BTreeSet<&Partition> = mine.iter().flat_map(|m| &m.assigned).collect();
        let active: BTreeSet<TaskId> = mine
            .iter()
            .flat_map(|m| m.active.iter().map(|(_, t)| t.clone()))
            .collect();
        let standby: BTreeSet<TaskId> = mine
            .iter()
            .flat_map(|m| m.standby.iter().cloned())
            .collect();
        let lag = processing_lag(assigned.iter().copied(), &obs.end, &obs.committed);
        let has_assignment = mine
            .iter()
            .any(|m| !m.assigned.is_empty() || !m.standby.is_empty());
        let sums: Vec<_> = mine.iter().filter_map(|m| m.offset_sums.as_ref()).collect();
        let end = obs.baseline.as_ref().map_or(&obs.end, |b| &b.end);
        let restore = (has_assignment && !sums.is_empty()).then(|| {
            let mut merged = merge_offset_sums(sums.iter().copied());
            // An active task that committed past the baseline is processing, and Kafka
            // Streams processes a task only once its state is restored.
            for (partition, task) in mine.iter().flat_map(|m| &m.active) {
                if processing_since(obs, partition) {
                    merged.insert(task.clone(), super::userdata::LATEST_OFFSET);
                }
            }
            let all: BTreeSet<&TaskId> = active.iter().chain(standby.iter()).collect();
            let lag = restore_lag(
                all,
                &merged,
                &mapping,
                &changelog_partitions,
                end,
                app.acceptable_recovery_lag,
            );
            // Standbys restore in the background; only active tasks hold processing back.
            let actives = restore_lag(
                active.iter(),
                &merged,
                &mapping,
                &changelog_partitions,
                end,
                app.acceptable_recovery_lag,
            );
            let witnessed = obs.baseline.as_ref().is_none_or(|b| b.witnessed);
            super::lag::RestoreLag {
                exact: lag.exact && witnessed,
                caught_up: actives.caught_up,
                ..lag
            }
        });
        pods.push(PodKafkaStatus {
            pod: pod.clone(),
            members: mine.len() as i32,
            active_tasks: active.iter().map(ToString::to_string).collect(),
            standby_tasks: standby.iter().map(ToString::to_string).collect(),
            processing_lag: lag.lag,
            uncommitted_partitions: lag.uncommitted,
            restore_lag: restore.and_then(|r| r.lag),
            restore_lag_exact: restore.is_some_and(|r| r.lag.is_some() && r.exact),
            caught_up: restore.and_then(|r| r.caught_up),
        });
    }
    let in_group: Vec<&PodKafkaStatus> = pods.iter().filter(|p| p.members > 0).collect();
    let restore_lag_total = if in_group.is_empty() {
        None
    } else {
        in_group
            .iter()
            .try_fold(0i64, |acc, p| p.restore_lag.map(|l| acc.saturating_add(l)))
    };

    let group = obs.group.as_ref().map(|g| {
        let mut members: Vec<GroupMemberStatus> = members
            .iter()
            .map(|m| GroupMemberStatus {
                client_id: m.client_id.clone(),
                pod: m.pod.clone(),
                host: m.host.clone(),
                assigned_partitions: m.assigned.len() as i32,
                subscription_version: m.subscription_version,
            })
            .collect();
        members.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        GroupStatus {
            state: g.state.clone(),
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            members,
        }
    });

    problems.sort_by(|a, b| (a.reason, &a.message).cmp(&(b.reason, &b.message)));
    KafkaStatus {
        last_checked: now,
        changelog_topics,
        repartition_topics: internal.repartitions.keys().cloned().collect(),
        missing_input_topics: missing,
        group,
        processing_lag_total: total.lag,
        uncommitted_partitions: total.uncommitted,
        restore_lag_exact: restore_lag_total.is_some()
            && in_group.iter().all(|p| p.restore_lag_exact),
        restore_lag_total,
        probing_rebalance_pending: members.iter().any(|m| m.rebalance_scheduled),
        pods,
        problems,
    }
}

fn group_problems(
    g: &GroupSnapshot,
    members: &[DecodedMember],
    app: &AppView,
    problems: &mut Vec<KafkaProblem>,
) {
    let stable = g.state == "Stable";
    if stable && !g.is_streams() {
        problems.push(problem(
            ProblemReason::UnexpectedGroupProtocol,
            format!(
                "group {} uses protocol {}/{}, not Kafka Streams' consumer/stream: another \
                 client shares the application.id",
                app.application_id, g.protocol_type, g.protocol
            ),
        ));
    }
    let unknown: Vec<&str> = members
        .iter()
        .filter(|m| m.pod.is_none())
        .map(|m| m.client_id.as_str())
        .collect();
    if !unknown.is_empty() {
        problems.push(problem(
            ProblemReason::UnknownGroupMember,
            format!(
                "group members that are not pods of this app: {} (another deployment using the \
                 same application.id?)",
                unknown.join(", ")
            ),
        ));
    }
    if stable {
        let absent: Vec<&str> = app
            .pods
            .iter()
            .filter(|p| !members.iter().any(|m| m.pod.as_ref() == Some(*p)))
            .map(String::as_str)
            .collect();
        if !absent.is_empty() {
            problems.push(problem(
                ProblemReason::PodNotInGroup,
                format!("pod(s) not in the Stable group: {}", absent.join(", ")),
            ));
        }
    }
    for m in members {
        if !m.decode_problems.is_empty() {
            problems.push(problem(
                ProblemReason::UndecodableMemberData,
                format!("{}: {}", m.client_id, m.decode_problems.join("; ")),
            ));
        }
        if let Some((code, name)) = m.assignment_error {
            problems.push(problem(
                ProblemReason::AssignmentError,
                format!(
                    "{}: the group leader reported assignment error {code} ({name})",
                    m.client_id
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::group::MemberSnapshot;
    use crate::kafka::userdata::tests::{
        assignment_info_v11, assignment_v0, subscription_info_v11, subscription_v3,
    };
    use crate::kafka::userdata::{LATEST_OFFSET, NO_REBALANCE_SCHEDULED};

    const REP: &str = "wc-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition";
    const CL: &str = "wc-counts-changelog";

    fn app() -> AppView {
        AppView {
            application_id: "wc".into(),
            input_topics: vec!["words".into(), "absent".into()],
            pods: vec!["wc-0".into(), "wc-1".into()],
            acceptable_recovery_lag: 100,
        }
    }

    fn member(
        pod: &str,
        part: i32,
        sums: &[(i32, i32, i64)],
        standby: &[(i32, i32)],
    ) -> MemberSnapshot {
        let info = assignment_info_v11(&[(0, part), (1, part)], standby, NO_REBALANCE_SCHEDULED);
        MemberSnapshot {
            member_id: format!("{pod}-id"),
            client_id: format!("{pod}-StreamThread-1-consumer"),
            client_host: "/127.0.0.1".into(),
            metadata: Some(subscription_v3(
                &["words", REP],
                &subscription_info_v11(sums),
            )),
            assignment: Some(assignment_v0(&[("words", &[part]), (REP, &[part])], &info)),
        }
    }

    /// Word count on 2 partitions: subtopology 0 reads `words`, subtopology 1 reads the
    /// repartition topic and owns the `counts` store.
    fn observation() -> Observation {
        let topics: BTreeMap<String, i32> = [
            ("words".to_string(), 2),
            (REP.to_string(), 2),
            (CL.to_string(), 2),
            ("unrelated".to_string(), 7),
        ]
        .into();
        let end: Offsets = [
            (("words".into(), 0), 100),
            (("words".into(), 1), 50),
            ((REP.into(), 0), 10),
            ((REP.into(), 1), 10),
            ((CL.into(), 0), 1000),
            ((CL.into(), 1), 2000),
        ]
        .into();
        let committed: Offsets = [
            (("words".into(), 0), 90),
            ((REP.into(), 0), 10),
            ((REP.into(), 1), 4),
        ]
        .into();
        Observation {
            topics,
            cleanup_policies: [(CL.to_string(), Ok("compact".to_string()))].into(),
            group: Some(GroupSnapshot {
                state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol: "stream".into(),
                members: vec![
                    member("wc-0", 0, &[(1, 0, LATEST_OFFSET), (1, 1, 1500)], &[(1, 1)]),
                    member("wc-1", 1, &[(1, 1, LATEST_OFFSET)], &[(1, 0)]),
                ],
            }),
            committed,
            end,
            baseline: None,
            gone: BTreeSet::new(),
        }
    }

    #[test]
    fn word_count_status() {
        let s = build_status(&app(), &observation(), "2026-01-01T00:00:00Z".into());
        assert_eq!(s.changelog_topics.len(), 1);
        let c = &s.changelog_topics[0];
        assert_eq!(
            (c.store.as_str(), c.compacted, c.partitions_match_source),
            ("counts", Some(true), Some(true))
        );
        assert_eq!(s.repartition_topics, [REP]);
        assert_eq!(s.missing_input_topics, ["absent"]);
        // words-0: 10, words-1: no commit, rep-0: 0, rep-1: 6.
        assert_eq!((s.processing_lag_total, s.uncommitted_partitions), (16, 1));
        let p0 = &s.pods[0];
        assert_eq!(p0.active_tasks, ["0_0", "1_0"]);
        assert_eq!(p0.standby_tasks, ["1_1"]);
        assert_eq!((p0.processing_lag, p0.uncommitted_partitions), (10, 0));
        // 1_0 running; standby 1_1 at 1500 of 2000. Only active tasks hold processing back,
        // so the pod counts as caught up.
        assert_eq!(
            (p0.restore_lag, p0.restore_lag_exact, p0.caught_up),
            (Some(500), true, Some(true))
        );
        let p1 = &s.pods[1];
        assert_eq!((p1.processing_lag, p1.uncommitted_partitions), (6, 1));
        // Standby 1_0 has no local state: all 1000 records.
        assert_eq!(p1.restore_lag, Some(1000));
        assert_eq!(
            (s.restore_lag_total, s.restore_lag_exact),
            (Some(1500), true)
        );
        assert!(!s.probing_rebalance_pending);
        assert_eq!(
            s.group.as_ref().unwrap().members[0].pod.as_deref(),
            Some("wc-0")
        );
        let reasons: Vec<ProblemReason> = s.problems.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, [ProblemReason::InputTopicMissing]);
    }

    #[test]
    fn restore_lag_is_measured_at_the_join_and_cleared_by_processing() {
        let mut obs = observation();
        // The operator saw these members join when each changelog partition ended 100 records
        // earlier,
        // and nothing was committed on the repartition topic since.
        let mut at_join = obs.clone();
        for ((topic, _), end) in at_join.end.iter_mut() {
            if topic == CL {
                *end -= 100;
            }
        }
        let baseline = Baseline::next(Some(&Baseline::default()), &at_join);
        assert!(baseline.witnessed);
        obs.baseline = Some(baseline.clone());
        let s = build_status(&app(), &obs, "t".into());
        // Standby 1_1 of wc-0: 1500 of 1900 then; standby 1_0 of wc-1: all 900.
        assert_eq!(s.pods[0].restore_lag, Some(400));
        assert_eq!(s.pods[1].restore_lag, Some(900));
        assert!(s.restore_lag_exact);
        // Same members later: the baseline stays, whatever the changelog does meanwhile.
        assert_eq!(Baseline::next(Some(&baseline), &obs), baseline);
        // Members already there when the operator first looked: an upper bound.
        obs.baseline = Some(Baseline::next(None, &obs));
        assert!(!build_status(&app(), &obs, "t".into()).restore_lag_exact);
    }

    #[test]
    fn delete_policy_and_missing_group() {
        let mut obs = observation();
        obs.cleanup_policies.insert(CL.into(), Ok("delete".into()));
        obs.group = None;
        obs.committed.clear();
        let s = build_status(&app(), &obs, "t".into());
        assert_eq!(s.changelog_topics[0].compacted, Some(false));
        let p = s
            .problems
            .iter()
            .find(|p| p.reason == ProblemReason::ChangelogNotCompacted)
            .unwrap();
        assert!(p.message.contains(CL));
        assert_eq!(s.group, None);
        assert_eq!((s.processing_lag_total, s.uncommitted_partitions), (0, 4));
        assert_eq!(s.restore_lag_total, None);
        assert!(
            s.pods
                .iter()
                .all(|p| p.restore_lag.is_none() && p.members == 0)
        );
    }

    #[test]
    fn deleted_topic_and_foreign_member() {
        let mut obs = observation();
        obs.gone.insert(REP.into());
        obs.group.as_mut().unwrap().members[1].client_id =
            "intruder-StreamThread-1-consumer".into();
        let s = build_status(&app(), &obs, "t".into());
        assert!(s.repartition_topics.is_empty());
        let reasons: BTreeSet<ProblemReason> = s.problems.iter().map(|p| p.reason).collect();
        for r in [
            ProblemReason::TopicDeleted,
            ProblemReason::UnknownGroupMember,
            ProblemReason::PodNotInGroup,
        ] {
            assert!(reasons.contains(&r), "{r:?} in {:?}", s.problems);
        }
    }

    #[test]
    fn status_serializes_camel_case() {
        let s = build_status(&app(), &observation(), "t".into());
        let v = serde_json::to_value(&s).unwrap();
        assert!(
            v["changelogTopics"][0]["partitionsMatchSource"]
                .as_bool()
                .unwrap()
        );
        assert_eq!(v["problems"][0]["reason"], "InputTopicMissing");
        assert_eq!(v["pods"][0]["restoreLagExact"], true);
    }
}
