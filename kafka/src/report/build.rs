//! [`build_status`]: the status of one observation, with its changelogs, lags, per-pod
//! figures and problems.

use std::collections::{BTreeMap, BTreeSet};

use super::observation::{AppView, Observation};
use crate::group::{DecodedMember, GroupSnapshot, decode_member};
use crate::lag::{
    Partition, RestoreLag, TopologyFacts, map_changelogs, merge_offset_sums, processing_lag,
    restore_lag,
};
use crate::status::{
    GroupMemberStatus, GroupStatus, KafkaProblem, KafkaStatus, PodKafkaStatus, ProblemReason,
};
use crate::streams_group::STREAMS_GROUP_TYPE;
use crate::topics::{changelog_status, internal_topics, missing_inputs, partitions_match_source};
use crate::userdata::{LATEST_OFFSET, TaskId};

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
    let internal = internal_topics(&app.application_id, &topics, &obs.other_apps);
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

    // Group members, decoded; a streams group's come from the broker's own assignment.
    let members: Vec<DecodedMember> = match &obs.streams_group {
        Some(sg) => sg.decoded_members(&app.pods),
        None => {
            let streams = obs.group.as_ref().is_some_and(GroupSnapshot::is_streams);
            obs.group
                .iter()
                .flat_map(|g| g.members.iter())
                .map(|m| decode_member(m, &app.pods, streams))
                .collect()
        }
    };
    if let Some(g) = &obs.group {
        let unexpected = g.state == "Stable" && !g.is_streams();
        group_problems(
            &g.state,
            unexpected.then_some(g),
            &members,
            app,
            &mut problems,
        );
    }
    if let Some(sg) = &obs.streams_group {
        group_problems(&sg.state, None, &members, app, &mut problems);
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
    let mapping = match &obs.streams_group {
        Some(sg) if sg.subtopologies.is_some() => sg.changelog_mapping(),
        _ => map_changelogs(&changelog_counts, &facts),
    };
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
        // Streams-group members report their task offsets with every heartbeat, so they are
        // measured against the changelogs as they are now, not at the members' join.
        let end = match (&obs.streams_group, &obs.baseline) {
            (None, Some(b)) => &b.end,
            _ => &obs.end,
        };
        let restore = (has_assignment && !sums.is_empty()).then(|| {
            let mut merged = merge_offset_sums(sums.iter().copied());
            // An active task that committed past the baseline is processing, and Kafka
            // Streams processes a task only once its state is restored.
            for (partition, task) in mine.iter().flat_map(|m| &m.active) {
                if processing_since(obs, partition) {
                    merged.insert(task.clone(), LATEST_OFFSET);
                }
            }
            let all: BTreeSet<&TaskId> = active.iter().chain(standby.iter()).collect();
            let lag = restore_lag(
                all,
                &merged,
                &mapping,
                &changelog_partitions,
                (end, &obs.end),
                app.acceptable_recovery_lag,
            );
            // Standbys restore in the background; only active tasks hold processing back.
            let actives = restore_lag(
                active.iter(),
                &merged,
                &mapping,
                &changelog_partitions,
                (end, &obs.end),
                app.acceptable_recovery_lag,
            );
            let witnessed =
                obs.streams_group.is_some() || obs.baseline.as_ref().is_none_or(|b| b.witnessed);
            RestoreLag {
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
            warmup_tasks: mine
                .iter()
                .flat_map(|m| m.streams.iter().flat_map(|s| s.warmup.iter()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(ToString::to_string)
                .collect(),
            processing_lag: lag.known(),
            uncommitted_partitions: lag.uncommitted,
            restore_lag: restore.and_then(|r| r.lag),
            restore_lag_exact: restore.is_some_and(|r| r.lag.is_some() && r.exact),
            caught_up: match restore {
                Some(r) => r.caught_up,
                // A streams-group member that reports no task offsets: its active tasks are
                // caught up once every partition they read has nothing waiting or has been
                // committed since it joined (Kafka Streams processes a task only once
                // restored); unknown otherwise.
                None if obs.streams_group.is_some() && !active.is_empty() => {
                    let partitions: BTreeSet<&Partition> = mine
                        .iter()
                        .flat_map(|m| m.active.iter().map(|(p, _)| p))
                        .collect();
                    partitions
                        .iter()
                        .all(|p| {
                            processing_since(obs, p)
                                || processing_lag([*p], &obs.end, &obs.committed).known() == Some(0)
                        })
                        .then_some(true)
                }
                None => None,
            },
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

    let kind = match (&obs.group, &obs.streams_group) {
        (_, Some(sg)) => Some(GroupStatus {
            state: sg.state.clone(),
            protocol_type: STREAMS_GROUP_TYPE.to_string(),
            group_epoch: Some(sg.group_epoch),
            assignment_epoch: Some(sg.assignment_epoch),
            ..Default::default()
        }),
        (Some(g), None) => Some(GroupStatus {
            state: g.state.clone(),
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            ..Default::default()
        }),
        (None, None) => None,
    };
    let group = kind.map(|kind| {
        let mut members: Vec<GroupMemberStatus> = members
            .iter()
            .map(|m| GroupMemberStatus {
                client_id: m.client_id.clone(),
                pod: m.pod.clone(),
                host: m.host.clone(),
                assigned_partitions: m.assigned.len() as i32,
                subscription_version: m.subscription_version,
                process_id: m.streams.as_ref().map(|s| s.process_id.clone()),
                rack: m.streams.as_ref().and_then(|s| s.rack.clone()),
                client_tags: m
                    .streams
                    .as_ref()
                    .map(|s| s.client_tags.clone())
                    .unwrap_or_default(),
                member_epoch: m.streams.as_ref().map(|s| s.member_epoch),
            })
            .collect();
        members.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        GroupStatus { members, ..kind }
    });

    problems.sort_by(|a, b| (a.reason, &a.message).cmp(&(b.reason, &b.message)));
    KafkaStatus {
        last_checked: now,
        changelog_topics,
        repartition_topics: internal.repartitions.keys().cloned().collect(),
        missing_input_topics: missing,
        group,
        processing_lag_total: total.known(),
        uncommitted_partitions: total.uncommitted,
        restore_lag_exact: restore_lag_total.is_some()
            && in_group.iter().all(|p| p.restore_lag_exact),
        restore_lag_total,
        probing_rebalance_pending: members.iter().any(|m| m.rebalance_scheduled),
        pods,
        problems,
    }
}

/// Problems of the group in `state`; `unexpected` is a classic group whose protocol is not
/// Kafka Streams'.
fn group_problems(
    state: &str,
    unexpected: Option<&GroupSnapshot>,
    members: &[DecodedMember],
    app: &AppView,
    problems: &mut Vec<KafkaProblem>,
) {
    let stable = state == "Stable";
    if let Some(g) = unexpected {
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
