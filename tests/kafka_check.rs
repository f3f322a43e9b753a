//! `kstreams_kafka::check` against the real broker and two real Kafka Streams instances of the
//! example word-count app (local JVMs standing in for two pods; no Kubernetes involved).
//!
//! Set `KSO_UPDATE_FIXTURES=1` to (re)write the captured member data under
//! `kafka/tests/fixtures/`, which the decoder unit tests read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::Kafka;
use integration_tests::jvm_app::{AppInstance, produce, wait_status};
use integration_tests::kafka::consumer_group_lags;
use integration_tests::local_pods::example_jar;
use kstreams_kafka::status::PodKafkaStatus;
use kstreams_kafka::userdata::{
    AssignmentInfo, SubscriptionInfo, decode_assignment_info, decode_consumer_assignment,
    decode_consumer_subscription, decode_subscription_info,
};
use kstreams_kafka::{
    AppView, ClientPool, KafkaConnection, KafkaStatus, PoolConfig, ProblemReason, check,
};
use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};

const PODS: [&str; 2] = ["wc-0", "wc-1"];
const PARTITIONS: i32 = 3;
/// A JVM start plus a Kafka Streams join and rebalance, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(180);
const SETTLE: Duration = Duration::from_secs(60);

/// The raw member data of `group`, by client id, read with plain rdkafka.
fn raw_members(bootstrap: &str, group: &str) -> BTreeMap<String, (Vec<u8>, Vec<u8>)> {
    let c: BaseConsumer = Kafka::config(bootstrap).create().expect("consumer");
    let list = c
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .expect("describe group");
    let g = list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .expect("group listed");
    g.members()
        .iter()
        .map(|m| {
            (
                m.client_id().to_string(),
                (
                    m.metadata().unwrap_or_default().to_vec(),
                    m.assignment().unwrap_or_default().to_vec(),
                ),
            )
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks the decoders on the real bytes, and saves them as fixtures when asked to.
fn check_and_capture(members: &BTreeMap<String, (Vec<u8>, Vec<u8>)>, input: &str, app_id: &str) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kafka/tests/fixtures");
    let update = std::env::var_os("KSO_UPDATE_FIXTURES").is_some();
    let mut standby_subtopologies = BTreeSet::new();
    for (client_id, (metadata, assignment)) in members {
        let sub = decode_consumer_subscription(metadata).expect("subscription wrapper");
        assert!(sub.topics.iter().any(|t| t == input), "{:?}", sub.topics);
        let info = decode_subscription_info(sub.user_data.as_deref().expect("user data"))
            .expect("subscription info");
        let SubscriptionInfo::Decoded(info) = info else {
            panic!("{client_id}: subscription version not known: {info:?}");
        };
        assert_eq!(info.version, 11, "Kafka Streams 4.3 sends v11");
        assert_eq!(info.process_id.len(), 36);

        let asg = decode_consumer_assignment(assignment).expect("assignment wrapper");
        let AssignmentInfo::Decoded(a) =
            decode_assignment_info(asg.user_data.as_deref().expect("user data"))
                .expect("assignment info")
        else {
            panic!("{client_id}: assignment version not known");
        };
        assert_eq!(a.version, 11);
        assert_eq!(a.active_tasks.len(), asg.sorted_partitions().len());
        assert_eq!(a.error_code, 0);
        // Positional: the input topic's partitions go to subtopology 0, the repartition
        // topic's to subtopology 1 (the one with the `counts` store).
        let pairs = kstreams_kafka::userdata::active_task_partitions(&asg, &a).expect("pairs");
        for ((topic, partition), task) in &pairs {
            let expect = if topic == input { 0 } else { 1 };
            assert_eq!(
                (task.subtopology, task.partition),
                (expect, *partition),
                "{topic}"
            );
            assert!(topic == input || topic.starts_with(app_id));
        }
        standby_subtopologies.extend(a.standby_tasks.iter().map(|t| t.subtopology));
        if update {
            let pod = client_id.split("-StreamThread").next().unwrap_or(client_id);
            for (kind, bytes) in [("subscription", metadata), ("assignment", assignment)] {
                let path = fixtures.join(format!("wordcount-{pod}-{kind}.hex"));
                std::fs::write(&path, hex(bytes) + "\n").expect("writing fixture");
            }
        }
    }
    assert_eq!(
        standby_subtopologies,
        BTreeSet::from([1]),
        "standbys only for the stateful subtopology"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_a_real_word_count_app() {
    let kafka = Kafka::new("kcheck");
    let input = kafka.create_topic("words", PARTITIONS, &[]).await;
    let output = kafka.create_topic("counts", PARTITIONS, &[]).await;
    let app_id = format!("{}-wc", kafka.prefix);
    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    let view = AppView {
        application_id: app_id.clone(),
        input_topics: vec![input.clone()],
        pods: PODS.iter().map(|p| p.to_string()).collect(),
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    };
    produce(&kafka.bootstrap, &input, PARTITIONS, 20).await;

    let jar = example_jar();
    let mut apps: Vec<AppInstance> = PODS
        .iter()
        .map(|pod| AppInstance::start(&jar, pod, &app_id, &kafka.bootstrap, &input, &output))
        .collect();
    let refs: Vec<&AppInstance> = apps.iter().collect();

    // Running: both pods in the Stable group, everything processed and committed.
    let s = wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "Stable group of both pods, all tasks assigned, all input processed, exact restore lag",
        STARTUP,
        |s| {
            // A cooperative rebalance passes through a Stable generation with the moving
            // tasks revoked and not yet reassigned; the end state has every task placed.
            let tasks = |pick: fn(&PodKafkaStatus) -> &Vec<String>| -> BTreeSet<String> {
                s.pods
                    .iter()
                    .flat_map(|p| pick(p).iter().cloned())
                    .collect()
            };
            tasks(|p| &p.active_tasks).len() == 6
                && tasks(|p| &p.standby_tasks).len() == 3
                && s.group
                    .as_ref()
                    .is_some_and(|g| g.state == "Stable" && g.members.len() == 2)
                && s.pods
                    .iter()
                    .all(|p| p.members == 1 && p.restore_lag.is_some())
                && s.uncommitted_partitions == 0
                && s.processing_lag_total == Some(0)
                && !s.changelog_topics.is_empty()
                // A changelog Streams just created may lack a partition leader for a moment,
                // its end offset unknown and the lag with it an upper bound: asserted below.
                && s.restore_lag_exact
        },
    )
    .await;

    println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    let changelog = format!("{app_id}-counts-changelog");
    assert_eq!(s.changelog_topics.len(), 1, "{:#?}", s.changelog_topics);
    let c = &s.changelog_topics[0];
    assert_eq!(c.name, changelog);
    assert_eq!(c.store, "counts");
    assert_eq!(c.partitions, PARTITIONS);
    assert_eq!(c.compacted, Some(true));
    assert_eq!(c.cleanup_policy.as_deref(), Some("compact"));
    assert_eq!(c.partitions_match_source, Some(true));
    assert_eq!(c.problem, None);
    assert_eq!(
        s.repartition_topics,
        [format!("{app_id}-counts-repartition")]
    );
    assert!(s.missing_input_topics.is_empty());

    let g = s.group.as_ref().expect("group");
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol.as_str()),
        ("consumer", "stream")
    );
    let mapped: BTreeMap<&str, &str> = g
        .members
        .iter()
        .map(|m| {
            (
                m.client_id.as_str(),
                m.pod.as_deref().expect("member mapped to a pod"),
            )
        })
        .collect();
    assert_eq!(
        mapped,
        BTreeMap::from([
            ("wc-0-StreamThread-1-consumer", "wc-0"),
            ("wc-1-StreamThread-1-consumer", "wc-1")
        ])
    );
    assert!(g.members.iter().all(|m| m.subscription_version == Some(11)));
    let active: BTreeSet<&str> = s
        .pods
        .iter()
        .flat_map(|p| p.active_tasks.iter().map(String::as_str))
        .collect();
    assert_eq!(
        active,
        BTreeSet::from(["0_0", "0_1", "0_2", "1_0", "1_1", "1_2"])
    );
    let standby: BTreeSet<&str> = s
        .pods
        .iter()
        .flat_map(|p| p.standby_tasks.iter().map(String::as_str))
        .collect();
    assert_eq!(standby, BTreeSet::from(["1_0", "1_1", "1_2"]));
    // Standbys exist only for subtopology 1, and its task count matches: the mapping of the
    // changelog to its tasks is determined.
    assert!(s.restore_lag_exact, "{s:#?}");
    assert!(
        s.pods
            .iter()
            .all(|p| p.restore_lag_exact && p.caught_up.is_some())
    );
    assert!(
        s.problems.is_empty(),
        "no problems expected for a healthy app: {:#?}",
        s.problems
    );

    // The decoders on the real bytes (saved as fixtures on request).
    check_and_capture(&raw_members(&kafka.bootstrap, &app_id), &input, &app_id);

    // Stopped: produce while nobody consumes; the lag must be Kafka's own figure.
    for a in &mut apps {
        a.stop().await;
    }
    produce(&kafka.bootstrap, &input, PARTITIONS, 7).await;
    let refs: Vec<&AppInstance> = apps.iter().collect();
    let s = wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "empty group with the new records as lag",
        SETTLE,
        |s| {
            s.group.as_ref().is_some_and(|g| g.members.is_empty())
                && s.processing_lag_total == Some(7 * PARTITIONS as i64)
        },
    )
    .await;
    let cgc = consumer_group_lags(&kafka.bootstrap, &app_id);
    assert!(
        cgc.values().all(Option::is_some),
        "every partition has a commit: {cgc:?}"
    );
    let cgc_total: i64 = cgc.values().flatten().sum();
    assert_eq!(
        s.processing_lag_total,
        Some(cgc_total),
        "kafka-consumer-groups reports {cgc:?}"
    );
    assert_eq!(s.uncommitted_partitions, 0);
    let cgc_input: i64 = cgc
        .iter()
        .filter(|((t, _), _)| *t == input)
        .filter_map(|(_, l)| *l)
        .sum();
    assert_eq!(cgc_input, 7 * PARTITIONS as i64);
    assert!(
        s.pods
            .iter()
            .all(|p| p.members == 0 && p.restore_lag.is_none())
    );
    assert_eq!(s.restore_lag_total, None);

    // Someone switches the changelog to delete: state would be lost to retention.
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let alter =
        AlterConfig::new(ResourceSpecifier::Topic(&changelog)).set("cleanup.policy", "delete");
    for r in kafka
        .admin
        .alter_configs(&[alter], &opts)
        .await
        .expect("alter configs")
    {
        r.unwrap_or_else(|(spec, e)| panic!("altering {spec:?}: {e}"));
    }
    let s = wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "changelog flagged as not compacted",
        SETTLE,
        |s| {
            s.changelog_topics
                .first()
                .is_some_and(|c| c.compacted == Some(false))
        },
    )
    .await;
    let c = &s.changelog_topics[0];
    assert_eq!(c.cleanup_policy.as_deref(), Some("delete"));
    assert!(c.problem.is_some());
    let p = s
        .problems
        .iter()
        .find(|p| p.reason == ProblemReason::ChangelogNotCompacted)
        .expect("a ChangelogNotCompacted problem");
    assert!(p.message.contains(&changelog), "{}", p.message);

    // The input topic disappears: a finding, not an error.
    kafka
        .admin
        .delete_topics(&[input.as_str()], &opts)
        .await
        .expect("delete topics")
        .into_iter()
        .for_each(|r| {
            r.unwrap_or_else(|(t, e)| panic!("deleting {t}: {e}"));
        });
    let s = wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "input topic reported missing",
        SETTLE,
        |s| s.missing_input_topics == [input.clone()],
    )
    .await;
    assert!(
        s.problems
            .iter()
            .any(|p| p.reason == ProblemReason::InputTopicMissing)
    );
}

#[tokio::test]
async fn a_missing_group_is_a_status_not_an_error() {
    let kafka = Kafka::new("kcheck-nogroup");
    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    let view = AppView {
        application_id: format!("{}-nobody", kafka.prefix),
        input_topics: vec![format!("{}.absent", kafka.prefix)],
        pods: vec!["p-0".into()],
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    };
    let s = check(&pool, &conn, &view, None)
        .await
        .expect("check")
        .status;
    assert_eq!(s.group, None);
    assert!(s.changelog_topics.is_empty());
    assert_eq!(s.missing_input_topics, view.input_topics);
    assert_eq!(s.pods[0].members, 0);
    assert_eq!(s.restore_lag_total, None);
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_bounded_error_naming_it() {
    let port = integration_tests::process::free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let conn = KafkaConnection::plaintext(&bootstrap);
    let pool = ClientPool::new(PoolConfig {
        request_timeout: Duration::from_secs(3),
        ..Default::default()
    });
    let view = AppView {
        application_id: "nobody".into(),
        input_topics: vec![],
        pods: vec![],
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    };
    let started = Instant::now();
    let err = check(&pool, &conn, &view, None)
        .await
        .expect_err("no broker there");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.reason(), "KafkaUnreachable", "{err}");
    assert!(err.to_string().contains(&bootstrap), "{err}");
}

/// App `x.wc` and app `x.wc-enrich` share the name prefix `x.wc-`: each is shown its own
/// changelogs only, told apart by the other's consumer group.
#[tokio::test]
async fn an_app_whose_id_extends_ours_keeps_its_topics() {
    let kafka = Kafka::new("kcheck-prefix");
    let compact = [("cleanup.policy", "compact")];
    let ours = kafka.create_topic("wc-counts-changelog", 2, &compact).await;
    let theirs = kafka
        .create_topic("wc-enrich-totals-changelog", 2, &compact)
        .await;
    let (app_id, other_id) = (
        format!("{}.wc", kafka.prefix),
        format!("{}.wc-enrich", kafka.prefix),
    );
    // The other app's group exists, as a Streams app's does once it has committed.
    let consumer: BaseConsumer = Kafka::config(&kafka.bootstrap)
        .set("group.id", &other_id)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&theirs, 0, rdkafka::Offset::Offset(0))
        .unwrap();
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing for group {other_id}: {e}"));

    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    let view = |id: &str| AppView {
        application_id: id.to_string(),
        input_topics: vec![],
        pods: vec![],
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    };
    let names = |s: &KafkaStatus| -> Vec<String> {
        s.changelog_topics.iter().map(|c| c.name.clone()).collect()
    };
    let s = check(&pool, &conn, &view(&app_id), None)
        .await
        .expect("check")
        .status;
    assert_eq!(names(&s), [ours], "{app_id} sees only its own changelog");
    let s = check(&pool, &conn, &view(&other_id), None)
        .await
        .expect("check")
        .status;
    assert_eq!(names(&s), [theirs], "{other_id} sees its changelog");
    assert_eq!(s.changelog_topics[0].store, "totals");
}
