//! What the operator reports about a real Kafka Streams app (the example word count, one JVM
//! per pod, run by the stand-in kubelet): its changelog, its group, its processing lag as
//! Kafka's own tool reports it, the restore lag of a member that comes back with an empty or
//! with its old state, and a changelog that stops being compacted.

use std::time::Duration;

use integration_tests::kafka::consumer_group_lags;
use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::{
    Kafka, LocalPods, Operator, TestNamespace, client, condition, is, wait_for, wait_for_list,
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kstreams_kafka::status::PodKafkaStatus;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::resources::INSTANCE_LABEL;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const APP: &str = "wc";
const PODS: [&str; 2] = ["wc-0", "wc-1"];
const STARTUP: Duration = Duration::from_secs(180);
const SETTLE: Duration = Duration::from_secs(180);

fn app(app_id: &str, bootstrap: &str, input: &str, output: &str) -> StreamApp {
    let mut app = wordcount_app(APP, app_id, bootstrap, input, output);
    // Small figures so the test runs in minutes: a member counts as caught up within 50
    // records and probing rebalances come every minute (the minimum).
    app.spec.standby_replicas = 1;
    app.spec.config.extend([
        ("acceptable.recovery.lag".to_string(), "50".to_string()),
        (
            "probing.rebalance.interval.ms".to_string(),
            "60000".to_string(),
        ),
        // A restore here is a few thousand records and would finish within the moment
        // between a join and Streams' follow-up rebalance, so the follow-up join would
        // already report part of it done. Real stores take minutes; the restore consumer
        // waits for a full fetch or 2 s, so the measurement sees a restore still to do.
        (
            "restore.consumer.fetch.min.bytes".to_string(),
            "10000000".to_string(),
        ),
        (
            "restore.consumer.fetch.max.wait.ms".to_string(),
            "2000".to_string(),
        ),
    ]);
    app
}

async fn produce_words(kafka: &Kafka, topic: &str, words: impl Iterator<Item = String>) {
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().unwrap();
    for (i, w) in words.enumerate() {
        let key = i.to_string();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&w),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }
}

/// Scales the app to `replicas` and waits until exactly its first `replicas` pods exist.
async fn scale(apps: &kube::Api<StreamApp>, pods: &kube::Api<Pod>, replicas: usize) {
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    apps.patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let want: Vec<&str> = PODS[..replicas].to_vec();
    wait_for_list(
        pods,
        &format!("{INSTANCE_LABEL}={APP}"),
        &format!("pods {want:?}"),
        STARTUP,
        |p| {
            let mut names: Vec<String> = p.iter().map(|p| p.name_any()).collect();
            names.sort();
            names == want
        },
    )
    .await;
}

fn kafka_pod<'a>(a: &'a StreamApp, pod: &str) -> Option<&'a PodKafkaStatus> {
    a.status
        .as_ref()?
        .kafka
        .as_ref()?
        .pods
        .iter()
        .find(|p| p.pod == pod)
}

/// End offsets summed over the changelog partitions of a pod's stateful tasks (`1_<p>`).
fn changelog_volume(kafka: &Kafka, changelog: &str, pod: &PodKafkaStatus) -> i64 {
    let consumer: BaseConsumer = Kafka::config(&kafka.bootstrap).create().unwrap();
    pod.active_tasks
        .iter()
        .chain(&pod.standby_tasks)
        // Subtopology 1 (after the repartition) holds the store; 0 is stateless.
        .filter_map(|t| t.strip_prefix("1_")?.parse::<i32>().ok())
        .map(|p| {
            consumer
                .fetch_watermarks(changelog, p, Duration::from_secs(10))
                .map(|(_, high)| high)
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_changelog_group_lag_and_restore_of_a_real_app() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "insight").await;
    let kafka = Kafka::new("insight");
    let input = kafka.create_topic("lines", 3, &[]).await;
    let output = kafka.create_topic("counts", 3, &[]).await;
    let app_id = format!("{}.wc", kafka.prefix);
    let changelog = format!("{app_id}-counts-changelog");
    let _operator = Operator::start(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    apps.create(
        &PostParams::default(),
        &app(&app_id, &kafka.bootstrap, &input, &output),
    )
    .await
    .unwrap();
    let local = LocalPods::start(&client, &ns.name, &[]);
    let pods = ns.api::<Pod>();
    for pod in PODS {
        local.wait_log(pod, "-> RUNNING", STARTUP).await;
    }
    produce_words(&kafka, &input, (0..2000).map(|i| format!("w{i}"))).await;

    // 1. Changelog, group, members per pod, all caught up.
    let a = wait_for(
        &apps,
        APP,
        "changelog listed, group Stable with both pods, lag 0",
        SETTLE,
        |a| {
            let Some(k) = a.status.as_ref().and_then(|s| s.kafka.as_ref()) else {
                return false;
            };
            let members: Vec<_> = k
                .group
                .iter()
                .flat_map(|g| &g.members)
                .filter_map(|m| m.pod.as_deref())
                .collect();
            k.group.as_ref().is_some_and(|g| g.state == "Stable")
                && members.contains(&PODS[0])
                && members.contains(&PODS[1])
                && k.processing_lag_total == Some(0)
                && k.uncommitted_partitions == 0
                && is(a, "Ready", "True")
        },
    )
    .await;
    let k = a.status.as_ref().unwrap().kafka.as_ref().unwrap();
    let names: Vec<_> = k.changelog_topics.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [changelog.as_str()],
        "exactly the changelog, not the repartition topic"
    );
    let c = &k.changelog_topics[0];
    assert_eq!(
        (c.partitions, c.compacted, c.store.as_str()),
        (3, Some(true), "counts")
    );
    assert!(
        k.repartition_topics
            .iter()
            .all(|t| t.ends_with("-repartition"))
            && !k.repartition_topics.is_empty()
    );
    assert!(is(&a, "ChangelogsHealthy", "True") && is(&a, "KafkaReachable", "True"));

    // 2. Processing lag equals what Kafka's own tool reports for the same group, with the
    //    app scaled to zero (the volumes stay).
    scale(&apps, &pods, 0).await;
    produce_words(&kafka, &input, (0..300).map(|i| format!("late{i}"))).await;
    let a = wait_for(
        &apps,
        APP,
        "processing lag of the stopped app",
        SETTLE,
        |a| {
            a.status
                .as_ref()
                .and_then(|s| s.kafka.as_ref())
                .is_some_and(|k| k.processing_lag_total.is_some_and(|l| l >= 300))
        },
    )
    .await;
    let reported = a.status.unwrap().kafka.unwrap().processing_lag_total;
    let tool: i64 = consumer_group_lags(&kafka.bootstrap, &app_id)
        .values()
        .flatten()
        .sum();
    println!("processing lag: operator {reported:?}, kafka-consumer-groups {tool}");
    assert_eq!(
        reported,
        Some(tool),
        "the operator and Kafka's tool disagree"
    );
    assert_eq!(reported, Some(300));

    // 3. wc-1 comes back on a NEW volume (its claim deleted while it was scaled away): its
    //    restore lag is its tasks' changelog.
    scale(&apps, &pods, 1).await;
    local.wait_log(PODS[0], "-> RUNNING", STARTUP).await;
    let claims = ns.api::<PersistentVolumeClaim>();
    let claim = format!("state-{}", PODS[1]);
    let old_claim = claims.get(&claim).await.unwrap().uid();
    claims
        .delete(&claim, &DeleteParams::default())
        .await
        .unwrap();
    wait_for_list(
        &claims,
        &format!("{INSTANCE_LABEL}={APP}"),
        "wc-1's claim gone",
        SETTLE,
        |c| c.iter().all(|c| c.uid() != old_claim),
    )
    .await;
    scale(&apps, &pods, 2).await;
    let a = wait_for(
        &apps,
        APP,
        "wc-1 restoring with a restore lag",
        SETTLE,
        |a| {
            kafka_pod(a, PODS[1]).is_some_and(|p| p.restore_lag.unwrap_or(0) > 50)
                && is(a, "Restoring", "True")
        },
    )
    .await;
    let p = kafka_pod(&a, PODS[1]).unwrap();
    let volume = changelog_volume(&kafka, &changelog, p);
    let lag = p.restore_lag.unwrap();
    println!(
        "empty state: restore lag {lag} (exact: {}), changelog volume of its tasks {volume}",
        p.restore_lag_exact
    );
    assert!(
        volume > 0 && (lag - volume).abs() * 10 <= volume,
        "lag {lag} not close to {volume}"
    );
    // Ready is False while wc-1 restores. Its reason is Restoring, or ReplicasNotReady when the
    // status was written after wc-1's own readiness probe (the app's state, not RUNNING while
    // it restores) failed: that reason is named first.
    let ready = condition(&a, "Ready");
    assert!(
        ready
            .as_ref()
            .is_some_and(|(status, reason, _)| status == "False"
                && (reason == "Restoring" || reason == "ReplicasNotReady")),
        "Ready while restoring: {ready:?}"
    );
    wait_for(
        &apps,
        APP,
        "Restoring clears once wc-1 caught up",
        Duration::from_secs(300),
        |a| is(a, "Restoring", "False") && is(a, "Ready", "True"),
    )
    .await;

    // 4. wc-1 is deleted and comes back on its OLD volume: almost nothing to restore.
    let old_pod = pods.get(PODS[1]).await.unwrap().uid();
    pods.delete(PODS[1], &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&pods, PODS[1], "wc-1 replaced", STARTUP, |p| {
        p.uid() != old_pod
    })
    .await;
    produce_words(&kafka, &input, (0..20).map(|i| format!("later{i}"))).await;
    local.wait_log(PODS[1], "-> RUNNING", STARTUP).await;
    let a = wait_for(
        &apps,
        APP,
        "wc-1 back in the group with a known restore lag",
        SETTLE,
        |a| kafka_pod(a, PODS[1]).is_some_and(|p| p.members > 0 && p.restore_lag.is_some()),
    )
    .await;
    let p = kafka_pod(&a, PODS[1]).unwrap();
    let lag = p.restore_lag.unwrap();
    println!("old state: restore lag {lag}");
    assert!(
        lag <= 50,
        "restarting with its state, wc-1 should be near caught up, lag {lag}"
    );

    // 5. A changelog altered to cleanup.policy=delete loses state: flagged, by name.
    let alter =
        AlterConfig::new(ResourceSpecifier::Topic(&changelog)).set("cleanup.policy", "delete");
    kafka
        .admin
        .alter_configs(&[alter], &AdminOptions::new())
        .await
        .unwrap();
    let a = wait_for(&apps, APP, "ChangelogsHealthy=False", SETTLE, |a| {
        is(a, "ChangelogsHealthy", "False")
    })
    .await;
    let (_, reason, message) = condition(&a, "ChangelogsHealthy").unwrap();
    assert_eq!(reason, "ChangelogNotCompacted");
    assert!(message.contains(&changelog), "{message}");
    assert!(is(&a, "Degraded", "True"));
}
