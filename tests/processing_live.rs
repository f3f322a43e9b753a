//! Ready means processing, against real Kafka Streams members run by the stand-in kubelet:
//! a pod whose process runs but never joins holds Ready back, by name, until it joins; an
//! app that cannot commit while its input grows is Stalled, by partition, until unblocked;
//! and a pod replaced under the same name is re-checked at once, not at the next refresh.

use std::time::Duration;

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::{
    Kafka, LocalPods, Operator, TestNamespace, client, condition, is, wait_for,
};
use k8s_openapi::api::core::v1::Pod;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::kafka::KafkaSettings;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{FutureProducer, FutureRecord};

const APP: &str = "live";
const POD: &str = "live-0";
const STARTUP: Duration = Duration::from_secs(180);
const GRACE: Duration = Duration::from_secs(8);

/// One instance of the word count.
fn app(app_id: &str, kafka: &Kafka, input: &str, output: &str) -> StreamApp {
    let mut app = wordcount_app(APP, app_id, &kafka.bootstrap, input, output);
    app.spec.replicas = 1;
    app.spec.standby_replicas = 0;
    app
}

fn settings(refresh: Duration, stall: Duration) -> KafkaSettings {
    KafkaSettings {
        refresh: Some(refresh),
        member_grace: GRACE,
        stall,
    }
}

/// A registry file adding `test/idle:1`: a process that runs and never talks to Kafka.
fn idle_registry(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("images.yaml");
    std::fs::write(
        &file,
        "images:\n- image: test/idle:1\n  host: {command: [sh, -c, 'while true; do sleep 1; done']}\n",
    )
    .unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_joins_holds_ready_until_it_joins() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "live-join").await;
    let kafka = Kafka::new("live-join");
    let input = kafka.create_topic("lines", 2, &[]).await;
    let output = kafka.create_topic("counts", 2, &[]).await;
    let app_id = format!("{}.live", kafka.prefix);
    let _operator = Operator::start_with(
        &client,
        &ns.name,
        settings(Duration::from_secs(3), Duration::from_secs(300)),
    )
    .await;
    let dir = std::env::temp_dir().join(integration_tests::unique("idle"));
    let _local = LocalPods::start(&client, &ns.name, &[&idle_registry(&dir)]);
    let apps = ns.api::<StreamApp>();
    let mut idle = app(&app_id, &kafka, &input, &output);
    idle.spec.image = "test/idle:1".into();
    idle.spec.probes = Default::default();
    apps.create(&PostParams::default(), &idle).await.unwrap();

    // The process runs (its pod is Ready: no probe) but no member joins.
    let pods = ns.api::<Pod>();
    wait_for(&pods, POD, "the idle pod Ready", STARTUP, |p| {
        (p.status.iter().flat_map(|s| s.conditions.iter().flatten()))
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
    .await;
    let a = wait_for(
        &apps,
        APP,
        "MembersMissing once the grace passed",
        STARTUP,
        |a| condition(a, "Processing").is_some_and(|c| c.1 == "MembersMissing"),
    )
    .await;
    let (status, reason, message) = condition(&a, "Ready").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "MembersMissing")
    );
    assert!(
        message.contains(POD),
        "Ready's message names the pod: {message}"
    );

    // The real app on the same pod name: it joins, and the app turns Ready.
    let patch = serde_json::json!({"spec": {"image": "kstreams-examples/wordcount:0.1.0",
        "probes": {"readiness": {"httpGet": {"path": "/ready", "port": "iq"}, "periodSeconds": 1}}}});
    apps.patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for(&apps, APP, "Ready once the member joined", STARTUP, |a| {
        is(a, "Ready", "True") && is(a, "Processing", "True")
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_cannot_commit_is_stalled_by_partition_and_recovers() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "live-stall").await;
    let kafka = Kafka::new("live-stall");
    let input = kafka.create_topic("lines", 2, &[]).await;
    let output = kafka.create_topic("counts", 2, &[]).await;
    let app_id = format!("{}.live", kafka.prefix);
    let _operator = Operator::start_with(
        &client,
        &ns.name,
        settings(Duration::from_secs(3), Duration::from_secs(10)),
    )
    .await;
    let _local = LocalPods::start(&client, &ns.name, &[]);
    let apps = ns.api::<StreamApp>();
    apps.create(
        &PostParams::default(),
        &app(&app_id, &kafka, &input, &output),
    )
    .await
    .unwrap();

    // Lines keep coming, as in production.
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().unwrap();
    let feed = {
        let (producer, input) = (producer.clone(), input.clone());
        tokio::spawn(async move {
            for i in 0u64.. {
                let key = i.to_string();
                let record = FutureRecord::to(&input)
                    .key(&key)
                    .payload("a line of words");
                let _ = producer.send(record, Duration::from_secs(5)).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    wait_for(&apps, APP, "Ready and processing", STARTUP, |a| {
        is(a, "Ready", "True") && is(a, "Processing", "True")
    })
    .await;

    // Without its output topic the app's producer blocks: nothing is committed while the
    // input grows.
    kafka
        .admin
        .delete_topics(&[&output], &AdminOptions::new())
        .await
        .unwrap();
    let a = wait_for(&apps, APP, "Stalled", STARTUP, |a| {
        condition(a, "Processing").is_some_and(|c| c.1 == "Stalled")
    })
    .await;
    let (_, _, message) = condition(&a, "Processing").unwrap();
    assert!(
        message.contains(&format!("{input}-0")) || message.contains(&format!("{input}-1")),
        "the Stalled message names the input partitions: {message}"
    );
    assert!(is(&a, "Ready", "False"));

    // Unblocked: commits move again. (Right after a deletion the broker may still refuse
    // the name for a moment.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let topic = NewTopic::new(&output, 2, TopicReplication::Fixed(1));
        let created = kafka
            .admin
            .create_topics(&[topic], &AdminOptions::new())
            .await;
        match created.as_deref() {
            Ok([Ok(_)]) => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "re-creating {output}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_for(&apps, APP, "processing again", STARTUP, |a| {
        is(a, "Processing", "True") && is(a, "Ready", "True")
    })
    .await;
    feed.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_pod_is_rechecked_within_seconds() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "live-recheck").await;
    let kafka = Kafka::new("live-recheck");
    let input = kafka.create_topic("lines", 2, &[]).await;
    let output = kafka.create_topic("counts", 2, &[]).await;
    let app_id = format!("{}.live", kafka.prefix);
    // A refresh far beyond the test: only a pod change can cause a second check.
    let _operator = Operator::start_with(
        &client,
        &ns.name,
        settings(Duration::from_secs(3600), Duration::from_secs(300)),
    )
    .await;
    let _local = LocalPods::start(&client, &ns.name, &[]);
    let apps = ns.api::<StreamApp>();
    apps.create(
        &PostParams::default(),
        &app(&app_id, &kafka, &input, &output),
    )
    .await
    .unwrap();
    let a = wait_for(&apps, APP, "Ready with its member", STARTUP, |a| {
        is(a, "Ready", "True")
    })
    .await;
    let checked = |a: &StreamApp| {
        a.status
            .as_ref()
            .and_then(|s| s.kafka.as_ref())
            .map(|k| k.last_checked.clone())
    };
    let before = checked(&a).expect("a Kafka check");

    let pods = ns.api::<Pod>();
    let old = pods.get(POD).await.unwrap().uid();
    pods.delete(POD, &DeleteParams::default()).await.unwrap();
    wait_for(&pods, POD, "replaced", STARTUP, |p| p.uid() != old).await;
    let a = wait_for(
        &apps,
        APP,
        "a Kafka check after the pod was replaced",
        Duration::from_secs(60),
        |a| checked(a).is_some_and(|c| c > before),
    )
    .await;
    println!(
        "checked {before} before, {} after the replacement",
        checked(&a).unwrap_or_default()
    );
    wait_for(&apps, APP, "Ready again", STARTUP, |a| {
        is(a, "Ready", "True")
    })
    .await;
}
