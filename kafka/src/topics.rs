//! Internal topic discovery and health checks, from cluster metadata and topic configs.
//!
//! Kafka Streams marks its internal topics by name only: `<applicationId>-` prefix and a
//! `-changelog` or `-repartition` suffix (Kafka's own `StreamsResetter` uses the same rule).
//! That rule alone gives app `app` the topics of app `app-x` too; a topic is left to the
//! longest application id that prefixes it, among the consumer groups the cluster knows
//! (a Streams app's group id is its application id). An app whose group has expired can
//! still be mistaken for ours: ids that are not dash-prefixes of each other are safest.

use std::collections::{BTreeMap, BTreeSet};

use super::status::ChangelogTopicStatus;

const CHANGELOG_SUFFIX: &str = "-changelog";
const REPARTITION_SUFFIX: &str = "-repartition";

/// A changelog topic found for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogTopic {
    /// Topic name.
    pub name: String,
    /// Store name (with a named topology: `<topology>-<store>`).
    pub store: String,
    /// Partition count.
    pub partitions: i32,
}

/// The app's internal topics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InternalTopics {
    /// Changelogs, by name.
    pub changelogs: Vec<ChangelogTopic>,
    /// Repartition topics and their partition counts, by name.
    pub repartitions: BTreeMap<String, i32>,
}

/// The middle part of `<appId>-<middle><suffix>`, if non-empty.
fn middle<'a>(app_id: &str, topic: &'a str, suffix: &str) -> Option<&'a str> {
    topic
        .strip_prefix(app_id)?
        .strip_prefix('-')?
        .strip_suffix(suffix)
        .filter(|m| !m.is_empty())
}

/// The store a changelog topic of `app_id` backs.
pub fn changelog_store<'a>(app_id: &str, topic: &'a str) -> Option<&'a str> {
    middle(app_id, topic, CHANGELOG_SUFFIX)
}

/// Whether `topic` is a repartition topic of `app_id`.
pub fn is_repartition(app_id: &str, topic: &str) -> bool {
    middle(app_id, topic, REPARTITION_SUFFIX).is_some()
}

/// Finds the app's internal topics among all topics (name -> partition count), leaving out
/// those of `other_apps`: application ids that extend `app_id` and so share its prefix.
pub fn internal_topics(
    app_id: &str,
    topics: &BTreeMap<String, i32>,
    other_apps: &BTreeSet<String>,
) -> InternalTopics {
    let mut out = InternalTopics::default();
    let theirs = |topic: &str| {
        other_apps.iter().any(|other| {
            other.len() > app_id.len()
                && other.starts_with(app_id)
                && topic
                    .strip_prefix(other.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    };
    for (name, partitions) in topics {
        if theirs(name) {
            continue;
        }
        if let Some(store) = changelog_store(app_id, name) {
            out.changelogs.push(ChangelogTopic {
                name: name.clone(),
                store: store.to_string(),
                partitions: *partitions,
            });
        } else if is_repartition(app_id, name) {
            out.repartitions.insert(name.clone(), *partitions);
        }
    }
    out
}

/// Input topics that do not exist.
pub fn missing_inputs(inputs: &[String], topics: &BTreeMap<String, i32>) -> Vec<String> {
    let mut out: Vec<String> = inputs
        .iter()
        .filter(|t| !topics.contains_key(*t))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a `cleanup.policy` value (comma-separated) keeps the latest value per key.
pub fn is_compacted(policy: &str) -> bool {
    policy.split(',').any(|p| p.trim() == "compact")
}

/// Whether a changelog's partition count fits its sources.
///
/// `owner_task_count` is the task count of the subtopology that owns the changelog, when that
/// is determined (see [`super::lag::map_changelogs`]). Otherwise only a count that equals no
/// source topic at all is certainly wrong (a subtopology has as many tasks as its largest
/// source topic has partitions); anything else cannot be told.
pub fn partitions_match_source(
    changelog_partitions: i32,
    owner_task_count: Option<i32>,
    source_partition_counts: &[i32],
) -> Option<bool> {
    if let Some(n) = owner_task_count {
        return Some(n == changelog_partitions);
    }
    if source_partition_counts.is_empty() {
        return None;
    }
    if !source_partition_counts.contains(&changelog_partitions) {
        return Some(false);
    }
    source_partition_counts
        .iter()
        .all(|n| *n == changelog_partitions)
        .then_some(true)
}

/// The status entry of a changelog, with a problem when its policy or partitions are wrong.
pub fn changelog_status(
    topic: &ChangelogTopic,
    cleanup_policy: Option<String>,
    partitions_match_source: Option<bool>,
) -> ChangelogTopicStatus {
    let compacted = cleanup_policy.as_deref().map(is_compacted);
    let mut problems = Vec::new();
    if compacted == Some(false) {
        problems.push(format!(
            "cleanup.policy is {:?}, not compact: the broker deletes old state of store {:?} by \
             retention, and a restore from this changelog loses it",
            cleanup_policy.as_deref().unwrap_or_default(),
            topic.store
        ));
    }
    if partitions_match_source == Some(false) {
        problems.push(format!(
            "{} partitions do not match the app's source topics: the changelog no longer lines \
             up with the tasks (were partitions added to an input topic?)",
            topic.partitions
        ));
    }
    ChangelogTopicStatus {
        name: topic.name.clone(),
        store: topic.store.clone(),
        partitions: topic.partitions,
        cleanup_policy,
        compacted,
        partitions_match_source,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    #[test]
    fn finds_changelogs_and_repartitions_by_name() {
        let all = topics(&[
            ("wc-counts-changelog", 3),
            ("wc-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition", 3),
            ("wc-changelog", 1),           // no store name
            ("wcx-counts-changelog", 3),   // another app
            ("other-counts-changelog", 3), // another app
            ("words", 3),
        ]);
        let found = internal_topics("wc", &all, &BTreeSet::new());
        assert_eq!(
            found.changelogs,
            [ChangelogTopic {
                name: "wc-counts-changelog".into(),
                store: "counts".into(),
                partitions: 3
            }]
        );
        assert_eq!(
            found.repartitions.keys().collect::<Vec<_>>(),
            ["wc-KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition"]
        );
    }

    #[test]
    fn topics_of_an_app_whose_id_extends_ours_are_theirs() {
        let all = topics(&[
            ("wc-counts-changelog", 3),
            ("wc-enrich-totals-changelog", 3), // app "wc-enrich", store "totals"
            ("wc-enrich-x-repartition", 3),
            ("wc-enriched-changelog", 3), // "wc-enrich" does not claim this: no dash after it
        ]);
        let others = BTreeSet::from(["wc-enrich".to_string()]);
        let found = internal_topics("wc", &all, &others);
        let names: Vec<&str> = found.changelogs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["wc-counts-changelog", "wc-enriched-changelog"]);
        assert!(found.repartitions.is_empty());
        // Without knowing of "wc-enrich", its topics pass for ours (the name rule alone).
        assert_eq!(
            internal_topics("wc", &all, &BTreeSet::new())
                .changelogs
                .len(),
            3
        );
    }

    #[test]
    fn compaction_policies() {
        assert!(is_compacted("compact"));
        assert!(is_compacted("compact,delete"));
        assert!(is_compacted("delete, compact"));
        assert!(!is_compacted("delete"));
        assert!(!is_compacted(""));
    }

    #[test]
    fn missing_inputs_are_sorted_and_unique() {
        let all = topics(&[("a", 1)]);
        assert_eq!(
            missing_inputs(&["c".into(), "a".into(), "b".into(), "c".into()], &all),
            ["b", "c"]
        );
    }

    #[test]
    fn partition_match_rules() {
        assert_eq!(partitions_match_source(3, Some(3), &[3, 6]), Some(true));
        assert_eq!(partitions_match_source(3, Some(6), &[3, 6]), Some(false));
        assert_eq!(partitions_match_source(4, None, &[3, 6]), Some(false));
        assert_eq!(partitions_match_source(3, None, &[3, 6]), None);
        assert_eq!(partitions_match_source(3, None, &[3, 3]), Some(true));
        assert_eq!(partitions_match_source(3, None, &[]), None);
    }

    #[test]
    fn delete_policy_is_a_problem_naming_the_store() {
        let t = ChangelogTopic {
            name: "wc-counts-changelog".into(),
            store: "counts".into(),
            partitions: 2,
        };
        let s = changelog_status(&t, Some("delete".into()), Some(true));
        assert_eq!(s.compacted, Some(false));
        assert!(s.problem.unwrap().contains("\"counts\""));
        let s = changelog_status(&t, Some("compact".into()), Some(true));
        assert_eq!((s.compacted, s.problem), (Some(true), None));
        let s = changelog_status(&t, None, None);
        assert_eq!((s.compacted, s.problem), (None, None));
    }
}
