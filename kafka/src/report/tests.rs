//! Word-count scenarios: the status built from a two-pod observation, and how the baseline,
//! deleted topics, foreign members and a delete cleanup policy change it.

use std::collections::{BTreeMap, BTreeSet};

use super::{AppView, Baseline, Observation, build_status};
use crate::group::{GroupSnapshot, MemberSnapshot};
use crate::lag::Offsets;
use crate::status::ProblemReason;
use crate::streams_group::{StreamsGroupSnapshot, StreamsMember, Subtopology};
use crate::userdata::vectors::{
    assignment_info_v11, assignment_v0, subscription_info_v11, subscription_v3,
};
use crate::userdata::{LATEST_OFFSET, NO_REBALANCE_SCHEDULED};

const REP: &str = "wc-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition";
const CL: &str = "wc-counts-changelog";

fn app() -> AppView {
    AppView {
        application_id: "wc".into(),
        input_topics: vec!["words".into(), "absent".into()],
        pods: vec!["wc-0".into(), "wc-1".into()],
        acceptable_recovery_lag: 100,
        streams_protocol: false,
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
        streams_group: None,
        committed,
        end,
        baseline: None,
        gone: BTreeSet::new(),
        other_apps: BTreeSet::new(),
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
    // One partition's lag is unknown, so the total is too.
    assert_eq!(
        (s.processing_lag_total, s.uncommitted_partitions),
        (None, 1)
    );
    let p0 = &s.pods[0];
    assert_eq!(p0.active_tasks, ["0_0", "1_0"]);
    assert_eq!(p0.standby_tasks, ["1_1"]);
    assert_eq!(
        (p0.processing_lag, p0.uncommitted_partitions),
        (Some(10), 0)
    );
    // 1_0 running; standby 1_1 at 1500 of 2000. Only active tasks hold processing back,
    // so the pod counts as caught up.
    assert_eq!(
        (p0.restore_lag, p0.restore_lag_exact, p0.caught_up),
        (Some(500), true, Some(true))
    );
    let p1 = &s.pods[1];
    assert_eq!((p1.processing_lag, p1.uncommitted_partitions), (None, 1));
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
    assert_eq!(
        (s.processing_lag_total, s.uncommitted_partitions),
        (None, 4)
    );
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
    obs.group.as_mut().unwrap().members[1].client_id = "intruder-StreamThread-1-consumer".into();
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

#[test]
fn source_offsets_cover_inputs_and_repartitions_still_there() {
    let mut obs = observation();
    let s = obs.source_offsets(&app());
    let ends: Vec<_> = s.end.keys().map(|(t, p)| format!("{t}-{p}")).collect();
    assert_eq!(
        ends,
        [
            format!("{REP}-0"),
            format!("{REP}-1"),
            "words-0".into(),
            "words-1".into()
        ]
    );
    assert_eq!(s.committed.len(), 3, "words-1 never committed");
    obs.gone.insert(REP.into());
    let s = obs.source_offsets(&app());
    assert!(
        s.end
            .keys()
            .chain(s.committed.keys())
            .all(|(t, _)| t == "words")
    );
}

/// The same word count on the streams protocol: the broker's topology maps the changelog
/// exactly, tasks come from its assignment, and reported task offsets give exact restore lag
/// against today's end offsets; a member reporting none (clients before 4.4.0) has none.
#[test]
fn streams_group_status() {
    let mut obs = observation();
    obs.group = None;
    let key = |s: &str, p: i32| (s.to_string(), p);
    let member =
        |pod: &str, part: i32, standby: i32, offsets: &[((String, i32), i64)]| StreamsMember {
            member_id: format!("{pod}-id"),
            client_id: format!("{pod}-StreamThread-1-consumer"),
            client_host: "/127.0.0.1".into(),
            process_id: format!("{pod}-process"),
            active: vec![key("0", part), key("1", part)],
            standby: vec![key("1", standby)],
            task_offsets: offsets.iter().cloned().collect(),
            reconciled: true,
            ..Default::default()
        };
    obs.streams_group = Some(StreamsGroupSnapshot {
        state: "Stable".into(),
        group_epoch: 3,
        assignment_epoch: 3,
        subtopologies: Some(vec![
            Subtopology {
                id: "0".into(),
                source_topics: vec!["words".into()],
                repartition_sink_topics: vec![REP.into()],
                ..Default::default()
            },
            Subtopology {
                id: "1".into(),
                repartition_source_topics: vec![REP.into()],
                changelog_topics: vec![CL.into()],
                ..Default::default()
            },
        ]),
        members: vec![
            member("wc-0", 0, 1, &[(key("1", 0), 1000), (key("1", 1), 1500)]),
            member("wc-1", 1, 0, &[]),
        ],
    });
    let s = build_status(&app(), &obs, "2026-01-01T00:00:00Z".into());
    let g = s.group.as_ref().unwrap();
    assert_eq!(
        (g.state.as_str(), g.protocol_type.as_str()),
        ("Stable", "streams")
    );
    assert_eq!(g.members.len(), 2);
    assert_eq!(g.members[1].pod.as_deref(), Some("wc-1"));
    assert_eq!(g.members[0].assigned_partitions, 2);
    assert_eq!((g.group_epoch, g.assignment_epoch), (Some(3), Some(3)));
    assert_eq!(g.members[0].process_id.as_deref(), Some("wc-0-process"));
    assert_eq!(g.members[0].subscription_version, None);
    let p0 = &s.pods[0];
    assert_eq!(p0.active_tasks, ["0_0", "1_0"]);
    assert_eq!(p0.standby_tasks, ["1_1"]);
    assert_eq!(p0.processing_lag, Some(10));
    // 1_0 at its end (1000 of 1000), standby 1_1 at 1500 of 2000.
    assert_eq!(
        (p0.restore_lag, p0.restore_lag_exact, p0.caught_up),
        (Some(500), true, Some(true))
    );
    assert_eq!(s.pods[1].restore_lag, None);
    assert_eq!(s.restore_lag_total, None);
    // Without reported offsets a pod is caught up once nothing waits on its partitions (or
    // they were committed since it joined), unknown before.
    assert_eq!(s.pods[1].caught_up, None);
    let mut done = obs.clone();
    done.committed.insert(("words".into(), 1), 50);
    done.committed.insert((REP.into(), 1), 10);
    let caught_up = build_status(&app(), &done, "2026-01-01T00:00:00Z".into());
    assert_eq!(caught_up.pods[1].caught_up, Some(true));
    assert_eq!(caught_up.pods[1].restore_lag, None, "still not a figure");
    assert_eq!(s.changelog_topics[0].partitions_match_source, Some(true));
    assert!(!s.probing_rebalance_pending);
    let reasons: Vec<ProblemReason> = s.problems.iter().map(|p| p.reason).collect();
    assert_eq!(reasons, [ProblemReason::InputTopicMissing]);

    // A member still taking over warm-up tasks is task movement in progress.
    if let Some(sg) = obs.streams_group.as_mut() {
        sg.members[1].warmup = vec![key("1", 0)];
    }
    let s = build_status(&app(), &obs, "2026-01-01T00:00:00Z".into());
    assert!(s.probing_rebalance_pending);
    assert_eq!(s.pods[1].warmup_tasks, ["1_0"]);
}
