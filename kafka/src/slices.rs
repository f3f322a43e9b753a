//! The pure halves of a cluster check: what one app needs read once the metadata and the
//! group listing are in ([`Needs`]), which groups' committed offsets to fetch, and each app's
//! [`Observation`] cut from what was read for all the apps of the cluster ([`Reads`]). An
//! error the brokers gave for one group or one topic fails only the apps whose slice holds it.
//!
//! An app's observation holds only the topics its status reads, not all of the cluster's, so
//! that each app costs its own topics and a refresh of N apps does not grow as N times the
//! cluster's topics: its inputs, the topics whose names extend its id (its internal topics,
//! and those of apps extending its id, which [`crate::topics::internal_topics`] sets apart),
//! and the topics its group's members are assigned, whose partition counts tie changelogs to
//! tasks (the spec may name fewer inputs than the app reads).

use std::collections::{BTreeMap, BTreeSet};

use crate::client::{CommittedMeta, EndOffsets, PerGroup};
use crate::error::KafkaError;
use crate::group::GroupSnapshot;
use crate::lag::{Offsets, Partition};
use crate::report::{AppView, Observation};
use crate::streams_group::StreamsGroupSnapshot;
use crate::userdata::decode_consumer_assignment;

/// The topics of `all` that `app`'s status reads before its group is known: its inputs and
/// the topics whose names extend its id with a dash.
pub(crate) fn own_topics(app: &AppView, all: &BTreeMap<String, i32>) -> BTreeMap<String, i32> {
    let prefix = format!("{}-", app.application_id);
    let mut out: BTreeMap<String, i32> = all
        .range(prefix.clone()..)
        .take_while(|(t, _)| t.starts_with(&prefix))
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    for t in &app.input_topics {
        if let Some(n) = all.get(t) {
            out.insert(t.clone(), *n);
        }
    }
    out
}

/// Adds to `obs.topics` the topics of `all` its group's members are assigned: a classic
/// member's consumer assignment, a streams member's subtopologies' source topics.
fn add_member_topics(obs: &mut Observation, all: &BTreeMap<String, i32>) {
    let mut named: BTreeSet<String> = BTreeSet::new();
    for m in obs.group.iter().flat_map(|g| &g.members) {
        // Undecodable data name nothing: the status cannot read them either.
        if let Some(Ok(a)) = m
            .assignment
            .as_deref()
            .filter(|b| !b.is_empty())
            .map(decode_consumer_assignment)
        {
            named.extend(a.partitions.into_iter().map(|tp| tp.topic));
        }
    }
    for s in obs
        .streams_group
        .iter()
        .flat_map(|g| g.subtopologies.iter().flatten())
    {
        named.extend(s.source_topics.iter().cloned());
        named.extend(s.repartition_source_topics.iter().cloned());
    }
    for t in named {
        if let Some(n) = all.get(&t) {
            obs.topics.insert(t, *n);
        }
    }
}

/// The ids among `groups` that extend `app_id` with a dash (`app` -> `app-x`): other Kafka
/// Streams apps whose internal topics carry the app's prefix too.
pub(crate) fn extending_groups<V>(app_id: &str, groups: &BTreeMap<String, V>) -> BTreeSet<String> {
    let prefix = format!("{app_id}-");
    groups
        .range(prefix.clone()..)
        .map(|(g, _)| g)
        .take_while(|g| g.starts_with(&prefix))
        .cloned()
        .collect()
}

/// What one app needs read, from its observation so far (topics and other apps).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Needs {
    /// Its changelogs: their `cleanup.policy`.
    pub(crate) changelogs: Vec<String>,
    /// Partitions it consumes: their committed offsets.
    pub(crate) sources: Vec<Partition>,
    /// Source and changelog partitions: their end offsets.
    pub(crate) offsets_of: Vec<Partition>,
}

impl Needs {
    /// What `app` needs, given `obs` with its topics and other apps filled in.
    pub(crate) fn of(app: &AppView, obs: &Observation) -> Self {
        let changelogs = obs
            .internal_topics(app)
            .changelogs
            .into_iter()
            .map(|c| c.name)
            .collect();
        let sources = obs.source_partitions(app);
        let mut offsets_of = sources.clone();
        offsets_of.extend(obs.changelog_partitions(app));
        Self {
            changelogs,
            sources,
            offsets_of,
        }
    }
}

/// What was read for all the apps of a cluster, besides committed offsets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reads {
    /// `cleanup.policy` of every changelog asked for (absent: topic gone).
    pub(crate) policies: BTreeMap<String, Result<String, String>>,
    /// Classic groups described.
    pub(crate) groups: PerGroup<Option<GroupSnapshot>>,
    /// Streams groups described.
    pub(crate) streams_groups: PerGroup<Option<StreamsGroupSnapshot>>,
    /// End offsets of every partition asked for.
    pub(crate) end: EndOffsets,
}

/// The group `id` as `described` has it: absent = it was not listed, so it does not exist.
fn group_of<T: Clone>(described: &PerGroup<Option<T>>, id: &str) -> Result<Option<T>, KafkaError> {
    match described.get(id) {
        Some(Ok(g)) => Ok(g.clone()),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(None),
    }
}

/// Fills `obs` with the app's slice of `reads`: its group and the topics its members are
/// assigned (out of `all`), its end offsets and changelog policies, the topics of its own
/// that disappeared. `Err`: the brokers refused one of its topics or its group.
pub(crate) fn take_reads(
    app: &AppView,
    needs: &Needs,
    reads: &Reads,
    all: &BTreeMap<String, i32>,
    obs: &mut Observation,
) -> Result<(), KafkaError> {
    let topics: BTreeSet<&String> = needs.offsets_of.iter().map(|(t, _)| t).collect();
    if let Some(e) = topics.iter().find_map(|t| reads.end.failed.get(*t)) {
        return Err(e.clone());
    }
    if app.streams_protocol {
        obs.streams_group = group_of(&reads.streams_groups, &app.application_id)?;
    } else {
        obs.group = group_of(&reads.groups, &app.application_id)?;
    }
    add_member_topics(obs, all);
    obs.end = needs
        .offsets_of
        .iter()
        .filter_map(|p| Some((p.clone(), *reads.end.end.get(p)?)))
        .collect();
    obs.gone = topics
        .into_iter()
        .filter(|t| reads.end.gone.contains(*t))
        .cloned()
        .collect();
    obs.cleanup_policies = needs
        .changelogs
        .iter()
        .filter_map(|c| Some((c.clone(), reads.policies.get(c)?.clone())))
        .collect();
    // A changelog DescribeConfigs no longer knows was deleted meanwhile.
    obs.gone.extend(
        needs
            .changelogs
            .iter()
            .filter(|c| !obs.cleanup_policies.contains_key(*c))
            .cloned(),
    );
    Ok(())
}

/// Whether the app's committed offsets are to be read: its group exists (no group: nothing
/// was ever committed; an Empty group with offsets is still listed) and it consumes something.
pub(crate) fn reads_committed(needs: &Needs, obs: &Observation) -> bool {
    (obs.group.is_some() || obs.streams_group.is_some()) && !needs.sources.is_empty()
}

/// The partitions whose committed offsets to fetch, per group, over all `apps` whose
/// committed offsets are to be read (two apps may share a group).
pub(crate) fn committed_wanted<'a>(
    apps: impl IntoIterator<Item = (&'a AppView, &'a Needs, &'a Observation)>,
) -> BTreeMap<String, BTreeSet<Partition>> {
    let mut out: BTreeMap<String, BTreeSet<Partition>> = BTreeMap::new();
    for (app, needs, obs) in apps {
        if reads_committed(needs, obs) {
            out.entry(app.application_id.clone())
                .or_default()
                .extend(needs.sources.iter().cloned());
        }
    }
    out
}

/// Fills `obs` with the app's committed offsets from `committed`. `Err`: the coordinator
/// refused the app's group.
pub(crate) fn take_committed(
    app: &AppView,
    needs: &Needs,
    committed: &PerGroup<CommittedMeta>,
    obs: &mut Observation,
) -> Result<(), KafkaError> {
    if !reads_committed(needs, obs) {
        return Ok(());
    }
    let group = match committed.get(&app.application_id) {
        Some(Ok(g)) => g,
        Some(Err(e)) => return Err(e.clone()),
        None => return Ok(()),
    };
    obs.committed = needs
        .sources
        .iter()
        .filter_map(|p| Some((p.clone(), group.get(p)?.0)))
        .collect::<Offsets>();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::MemberSnapshot;
    use crate::report::build_status;
    use crate::streams_group::{StreamsMember, Subtopology};
    use crate::userdata::NO_REBALANCE_SCHEDULED;
    use crate::userdata::vectors::{
        assignment_info_v11, assignment_v0, subscription_info_v11, subscription_v3,
    };

    /// The status of an app from its own topics is the one from all of the cluster's, also
    /// when its members read a topic its spec does not name (`words`; the spec names only
    /// `absent`): the members' topic is what ties the changelog to its 3 tasks.
    #[test]
    fn a_status_from_the_apps_own_topics_is_the_one_from_all_topics() {
        const CL: &str = "wc-counts-changelog";
        let all: BTreeMap<String, i32> = [
            ("words", 3),
            (CL, 3),
            ("wc.other-x-changelog", 3),
            ("unrelated", 7),
        ]
        .into_iter()
        .map(|(t, n)| (t.to_string(), n))
        .collect();
        let client_id = "wc-0-StreamThread-1-consumer".to_string();
        let info = assignment_info_v11(&[(0, 0), (0, 1), (0, 2)], &[], NO_REBALANCE_SCHEDULED);
        let classic = GroupSnapshot {
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "stream".into(),
            members: vec![MemberSnapshot {
                member_id: "m".into(),
                client_id: client_id.clone(),
                client_host: "/127.0.0.1".into(),
                metadata: Some(subscription_v3(&["words"], &subscription_info_v11(&[]))),
                assignment: Some(assignment_v0(&[("words", &[0, 1, 2])], &info)),
            }],
        };
        let streams = StreamsGroupSnapshot {
            state: "Stable".into(),
            subtopologies: Some(vec![Subtopology {
                id: "0".into(),
                source_topics: vec!["words".into()],
                changelog_topics: vec![CL.into()],
                ..Default::default()
            }]),
            members: vec![StreamsMember {
                member_id: "m".into(),
                client_id,
                active: (0..3).map(|p| ("0".to_string(), p)).collect(),
                reconciled: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let now = || "2026-01-01T00:00:00Z".to_string();
        for (streams_protocol, group, streams_group) in
            [(false, Some(classic), None), (true, None, Some(streams))]
        {
            let app = AppView {
                streams_protocol,
                pods: vec!["wc-0".into()],
                ..app("wc", &["absent"])
            };
            let full = Observation {
                topics: all.clone(),
                group,
                streams_group,
                cleanup_policies: [(CL.to_string(), Ok("compact".to_string()))].into(),
                end: (0..3).map(|p| (("words".to_string(), p), 5)).collect(),
                ..Default::default()
            };
            let own = Observation {
                topics: own_topics(&app, &all),
                ..full.clone()
            };
            let mut sliced = own.clone();
            add_member_topics(&mut sliced, &all);
            assert_eq!(
                sliced.topics.keys().collect::<Vec<_>>(),
                [CL, "words"],
                "streams: {streams_protocol}"
            );
            let want = build_status(&app, &full, now());
            assert_eq!(build_status(&app, &sliced, now()), want);
            assert_eq!(sliced.source_offsets(&app), full.source_offsets(&app));
            assert_eq!(want.changelog_topics[0].partitions_match_source, Some(true));
            // Without the members' topics the changelog would not be tied to its tasks.
            assert_ne!(build_status(&app, &own, now()), want);
        }
    }

    fn app(id: &str, inputs: &[&str]) -> AppView {
        AppView {
            application_id: id.into(),
            input_topics: inputs.iter().map(|t| t.to_string()).collect(),
            pods: vec![],
            acceptable_recovery_lag: 10_000,
            streams_protocol: false,
        }
    }

    fn topics() -> BTreeMap<String, i32> {
        [
            ("a.in", 2),
            ("b.in", 1),
            ("a-s-changelog", 2),
            ("b-s-changelog", 1),
            ("a-x-t-changelog", 1),
        ]
        .into_iter()
        .map(|(t, n)| (t.to_string(), n))
        .collect()
    }

    fn observed(a: &AppView, groups: &BTreeMap<String, String>) -> (Needs, Observation) {
        let obs = Observation {
            topics: own_topics(a, &topics()),
            other_apps: extending_groups(&a.application_id, groups),
            ..Default::default()
        };
        (Needs::of(a, &obs), obs)
    }

    fn p(t: &str, n: i32) -> Partition {
        (t.to_string(), n)
    }

    fn refused(op: &'static str) -> KafkaError {
        KafkaError::NotAuthorized {
            bootstrap: "k".into(),
            operation: op,
            detail: "TopicAuthorizationFailed".into(),
        }
    }

    fn empty_group() -> Option<GroupSnapshot> {
        Some(GroupSnapshot {
            state: "Empty".into(),
            ..Default::default()
        })
    }

    #[test]
    fn other_apps_are_the_groups_extending_the_id_with_a_dash() {
        let groups: BTreeMap<String, ()> = ["a", "a-x", "a-y-z", "ab", "a.b", "b-a"]
            .into_iter()
            .map(|g| (g.to_string(), ()))
            .collect();
        assert_eq!(
            extending_groups("a", &groups),
            BTreeSet::from(["a-x".to_string(), "a-y-z".to_string()])
        );
        assert!(extending_groups("c", &groups).is_empty());
    }

    #[test]
    fn each_app_gets_its_own_offsets_policies_and_gone_topics() {
        let groups: BTreeMap<String, String> = [("a", "k:1"), ("a-x", "k:1"), ("b", "k:1")]
            .into_iter()
            .map(|(g, c)| (g.to_string(), c.to_string()))
            .collect();
        let (a, b) = (app("a", &["a.in"]), app("b", &["b.in"]));
        let (na, mut oa) = observed(&a, &groups);
        let (nb, mut ob) = observed(&b, &groups);
        // a-x's changelog is not a's.
        assert_eq!(na.changelogs, ["a-s-changelog"]);
        assert_eq!(na.sources, [p("a.in", 0), p("a.in", 1)]);
        assert_eq!(na.offsets_of.len(), 4);
        let reads = Reads {
            policies: [
                ("a-s-changelog".to_string(), Ok("compact".to_string())),
                // b's changelog went between metadata and DescribeConfigs.
            ]
            .into(),
            groups: [
                ("a".to_string(), Ok(empty_group())),
                ("b".to_string(), Ok(empty_group())),
            ]
            .into(),
            end: EndOffsets {
                end: [(p("a.in", 0), 5), (p("a.in", 1), 6), (p("b.in", 0), 7)].into(),
                gone: BTreeSet::from(["b-s-changelog".to_string()]),
                ..Default::default()
            },
            ..Default::default()
        };
        take_reads(&a, &na, &reads, &topics(), &mut oa).unwrap();
        take_reads(&b, &nb, &reads, &topics(), &mut ob).unwrap();
        assert_eq!(
            oa.end,
            Offsets::from([(p("a.in", 0), 5), (p("a.in", 1), 6)])
        );
        assert!(oa.gone.is_empty());
        assert_eq!(oa.cleanup_policies.len(), 1);
        assert_eq!(ob.end, Offsets::from([(p("b.in", 0), 7)]));
        assert_eq!(ob.gone, BTreeSet::from(["b-s-changelog".to_string()]));
        assert!(ob.cleanup_policies.is_empty());

        let wanted = committed_wanted([(&a, &na, &oa), (&b, &nb, &ob)]);
        assert_eq!(
            wanted,
            BTreeMap::from([
                (
                    "a".to_string(),
                    BTreeSet::from([p("a.in", 0), p("a.in", 1)])
                ),
                ("b".to_string(), BTreeSet::from([p("b.in", 0)])),
            ])
        );
        // One OffsetFetch answered for both; each app keeps its own partitions.
        let committed: PerGroup<CommittedMeta> = [
            (
                "a".to_string(),
                Ok([(p("a.in", 0), (1, None)), (p("b.in", 0), (9, None))].into()),
            ),
            ("b".to_string(), Ok([(p("b.in", 0), (2, None))].into())),
        ]
        .into();
        take_committed(&a, &na, &committed, &mut oa).unwrap();
        take_committed(&b, &nb, &committed, &mut ob).unwrap();
        assert_eq!(oa.committed, Offsets::from([(p("a.in", 0), 1)]));
        assert_eq!(ob.committed, Offsets::from([(p("b.in", 0), 2)]));
    }

    #[test]
    fn an_error_of_one_apps_group_or_topic_fails_that_app_alone() {
        let groups: BTreeMap<String, String> = [("a", "k:1"), ("b", "k:1")]
            .into_iter()
            .map(|(g, c)| (g.to_string(), c.to_string()))
            .collect();
        let (a, b) = (app("a", &["a.in"]), app("b", &["b.in"]));
        let (na, mut oa) = observed(&a, &groups);
        let (nb, mut ob) = observed(&b, &groups);
        let reads = Reads {
            groups: [
                ("a".to_string(), Err(refused("describe group"))),
                ("b".to_string(), Ok(empty_group())),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(
            take_reads(&a, &na, &reads, &topics(), &mut oa),
            Err(refused("describe group"))
        );
        assert_eq!(take_reads(&b, &nb, &reads, &topics(), &mut ob), Ok(()));

        // A leader refusing b's input fails b, not a.
        let (na, mut oa) = observed(&a, &groups);
        let (nb, mut ob) = observed(&b, &groups);
        let reads = Reads {
            end: EndOffsets {
                failed: [("b.in".to_string(), refused("list offsets"))].into(),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(take_reads(&a, &na, &reads, &topics(), &mut oa), Ok(()));
        assert_eq!(
            take_reads(&b, &nb, &reads, &topics(), &mut ob),
            Err(refused("list offsets"))
        );
        // Not listed: no group, so no committed offsets to read.
        assert_eq!(oa.group, None);
        assert!(!reads_committed(&na, &oa));

        // The coordinator refusing a's group in OffsetFetch fails a alone.
        let (mut oa, mut ob) = (oa, ob);
        oa.group = empty_group();
        ob.group = empty_group();
        let committed: PerGroup<CommittedMeta> = [
            ("a".to_string(), Err(refused("fetch committed offsets"))),
            ("b".to_string(), Ok(CommittedMeta::new())),
        ]
        .into();
        assert!(take_committed(&a, &na, &committed, &mut oa).is_err());
        assert_eq!(take_committed(&b, &nb, &committed, &mut ob), Ok(()));
    }
}
