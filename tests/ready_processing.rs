//! Ready means processing (with Kafka checks on): pods that are Ready but have no member in
//! the app's consumer group hold Ready back, first while they may still be joining, then as
//! missing, by name; a replaced pod gets a new grace; an app on the streams protocol is told
//! it is not checked; and commits that stand still while records wait are a stall that clears
//! once they move.
//!
//! kwok pods run nothing, so they never join. The last test stands a plain Kafka consumer in
//! for the pod's Kafka Streams thread (named as Streams names it), which is all the check
//! reads of a member; the real app's JVMs are not needed for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use integration_tests::{
    Kafka, Operator, OperatorProcess, TestNamespace, client, condition, install_crd, is, wait_for,
};
use k8s_openapi::api::core::v1::{Event, Pod};
use kstreams_operator::crd::{GroupProtocol, StreamApp};
use kstreams_operator::reconcile::kafka::KafkaSettings;
use kube::api::{DeleteParams, ListParams, PostParams};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const LONG: Duration = Duration::from_secs(90);

/// Kafka checked every 2 s, a member grace of `grace_secs` and a stall limit of `stall_secs`.
fn settings(grace_secs: u64, stall_secs: u64) -> KafkaSettings {
    KafkaSettings {
        refresh: Some(Duration::from_secs(2)),
        ..checked_only_on_change(grace_secs, stall_secs)
    }
}

/// A refresh far beyond any test: a check happens only when the app, its pods or a clock
/// give cause.
fn checked_only_on_change(grace_secs: u64, stall_secs: u64) -> KafkaSettings {
    KafkaSettings {
        refresh: Some(Duration::from_secs(3600)),
        member_grace: Duration::from_secs(grace_secs),
        stall: Duration::from_secs(stall_secs),
    }
}

/// A StreamApp `name` of `replicas` reading `inputs`, with an application id unique to the
/// test so no other group on the shared broker is its.
fn app(name: &str, kafka: &Kafka, replicas: i32, inputs: &[&str]) -> StreamApp {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kstreams.dev/v1alpha1",
        "kind": "StreamApp",
        "metadata": {"name": name},
        "spec": {
            "image": "example/app:1",
            "replicas": replicas,
            "applicationId": format!("{}.{name}", kafka.prefix),
            "kafka": {"bootstrapServers": kafka.bootstrap},
            "topics": {"inputs": inputs},
        }
    }))
    .expect("a StreamApp")
}

/// Whether `type_` has `status` and `reason` at the app's current generation.
fn has(a: &StreamApp, type_: &str, status: &str, reason: &str) -> bool {
    let current = a
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .is_some_and(|c| c.observed_generation == a.metadata.generation);
    current && condition(a, type_).is_some_and(|(s, r, _)| s == status && r == reason)
}

fn message(a: &StreamApp, type_: &str) -> String {
    condition(a, type_).map(|c| c.2).unwrap_or_default()
}

/// Events of `reason` about the app `name`.
async fn events(ns: &TestNamespace, name: &str, reason: &str) -> Vec<Event> {
    ns.api::<Event>()
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test]
async fn pods_that_never_join_are_not_ready_and_named_once_the_grace_passed() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "ready-idle").await;
    let kafka = Kafka::new("ready-idle");
    let _operator = Operator::start_with(&client, &ns.name, settings(15, 300)).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app("idle", &kafka, 2, &[]))
        .await
        .unwrap();

    // Both pods Ready (kwok), nobody in the group: within the grace the app is joining.
    let joining = wait_for(&apps, "idle", "Ready=False MembersJoining", LONG, |a| {
        has(a, "Ready", "False", "MembersJoining")
    })
    .await;
    assert!(
        has(&joining, "Processing", "False", "MembersJoining"),
        "{:?}",
        condition(&joining, "Processing")
    );
    let msg = message(&joining, "Ready");
    assert!(
        msg.contains("waiting up to 15s") && msg.contains("idle-"),
        "the joining pods are named: {msg}"
    );

    // Past the grace: missing, both pods named, and said with a Warning Event. The two
    // pods turned Ready moments apart, so their graces end moments apart too: one may be
    // missing while the other is still joining.
    let missing = wait_for(
        &apps,
        "idle",
        "Ready=False MembersMissing naming both pods",
        LONG,
        |a| {
            has(a, "Ready", "False", "MembersMissing")
                && message(a, "Ready").contains("for over 15s: idle-0, idle-1")
        },
    )
    .await;
    let msg = message(&missing, "Ready");
    assert_eq!(msg, message(&missing, "Processing"));
    assert_eq!(
        condition(&missing, "Degraded").map(|c| c.0).as_deref(),
        Some("False"),
        "absent members are not a problem of the Kubernetes side"
    );
    let status = missing.status.as_ref().unwrap();
    assert_eq!(status.ready_replicas, 2, "the pods themselves are Ready");
    let warned = events(&ns, "idle", "MembersMissing").await;
    assert!(
        warned.iter().any(|e| e.type_.as_deref() == Some("Warning")),
        "a Warning Event MembersMissing: {warned:?}"
    );
}

#[tokio::test]
async fn the_grace_is_a_flag_of_run() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "ready-flags").await;
    let kafka = Kafka::new("ready-flags");
    let op = OperatorProcess::start(
        "op-grace",
        &[
            "--namespaces",
            &ns.name,
            "--kafka-refresh-seconds",
            "2",
            "--member-grace-seconds",
            "3",
            "--stall-seconds",
            "7",
        ],
    );
    op.wait_ready(LONG).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app("flagged", &kafka, 1, &[]))
        .await
        .unwrap();
    let a = wait_for(&apps, "flagged", "Ready=False MembersMissing", LONG, |a| {
        has(a, "Ready", "False", "MembersMissing")
    })
    .await;
    let msg = message(&a, "Ready");
    assert!(msg.contains("for over 3s: flagged-0"), "{msg}");
}

#[tokio::test]
async fn a_replaced_pod_gets_a_new_grace() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "ready-replaced").await;
    let kafka = Kafka::new("ready-replaced");
    // No periodic checks: the grace running out and the pod's replacement alone must make
    // the operator look again.
    let _operator = Operator::start_with(&client, &ns.name, checked_only_on_change(10, 300)).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app("solo", &kafka, 1, &[]))
        .await
        .unwrap();
    wait_for(&apps, "solo", "Ready=False MembersMissing", LONG, |a| {
        has(a, "Ready", "False", "MembersMissing")
    })
    .await;

    // The StatefulSet re-creates solo-0 under the same name with a new uid: the pod watch
    // wakes the app, the operator sees another pod, and the old pod's elapsed grace does not
    // carry over.
    let pods = ns.api::<Pod>();
    let old_uid = pods.get("solo-0").await.unwrap().metadata.uid;
    pods.delete("solo-0", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&pods, "solo-0", "solo-0 re-created and Ready", LONG, |p| {
        p.metadata.uid != old_uid
            && p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;
    let joining = wait_for(
        &apps,
        "solo",
        "Processing=False MembersJoining for the new solo-0",
        LONG,
        |a| has(a, "Processing", "False", "MembersJoining"),
    )
    .await;
    assert!(message(&joining, "Processing").contains("solo-0"));
    let again = wait_for(&apps, "solo", "MembersMissing once more", LONG, |a| {
        has(a, "Ready", "False", "MembersMissing")
    })
    .await;
    assert!(message(&again, "Ready").contains("solo-0"));
}

/// An app on the streams protocol is judged from its streams group as a classic app is from
/// its consumer group: Ready pods that never join are missing members, named.
#[tokio::test]
async fn an_app_on_the_streams_protocol_is_judged_from_its_streams_group() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "ready-kip1071").await;
    let kafka = Kafka::new("ready-kip1071");
    let _operator = Operator::start_with(&client, &ns.name, settings(5, 300)).await;
    let apps = ns.api::<StreamApp>();
    let mut streams = app("kip", &kafka, 1, &[]);
    streams.spec.kafka.group_protocol = GroupProtocol::Streams;
    apps.create(&PostParams::default(), &streams).await.unwrap();
    let a = wait_for(
        &apps,
        "kip",
        "Ready=False MembersMissing naming kip-0",
        LONG,
        |a| has(a, "Ready", "False", "MembersMissing") && message(a, "Ready").contains("kip-0"),
    )
    .await;
    assert!(
        is(&a, "KafkaReachable", "True"),
        "the streams group was read: {:?}",
        condition(&a, "KafkaReachable")
    );
    let msg = message(&a, "Processing");
    assert!(msg.contains("kip-0"), "{msg}");
}

/// A consumer in `group` named as Kafka Streams names the first thread of `pod`; it reads
/// `topic` and commits only when `commit` is set. Stops when `stop` is set.
fn stand_in_member(
    bootstrap: &str,
    group: &str,
    pod: &str,
    topic: &str,
    commit: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let consumer: BaseConsumer = Kafka::config(bootstrap)
        .set("group.id", group)
        .set("client.id", format!("{pod}-StreamThread-1-consumer"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(200)) {
                eprintln!("stand-in member: {e}");
            }
            if commit.load(Ordering::Relaxed) {
                // Nothing consumed yet is not an error worth stopping for.
                let _ = consumer.commit_consumer_state(CommitMode::Sync);
            }
        }
        consumer.unsubscribe();
    })
}

#[tokio::test]
async fn commits_that_stand_still_while_records_wait_are_a_stall_until_they_move() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "ready-stall").await;
    let kafka = Kafka::new("ready-stall");
    let input = kafka.create_topic("input", 1, &[]).await;
    let _operator = Operator::start_with(&client, &ns.name, settings(60, 8)).await;
    let apps = ns.api::<StreamApp>();
    let stalling = app("stall", &kafka, 1, &[&input]);
    let group = stalling.application_id();
    apps.create(&PostParams::default(), &stalling)
        .await
        .unwrap();

    let commit = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let member = stand_in_member(
        &kafka.bootstrap,
        &group,
        "stall-0",
        &input,
        commit.clone(),
        stop.clone(),
    );
    // The member joined and there is nothing to process: Ready.
    let a = wait_for(&apps, "stall", "Processing=True and Ready", LONG, |a| {
        has(a, "Processing", "True", "Processing") && is(a, "Ready", "True")
    })
    .await;
    println!("joined: {}", message(&a, "Processing"));

    // Records arrive; the member reads them but never commits.
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().unwrap();
    for i in 0..20 {
        let key = i.to_string();
        producer
            .send(
                FutureRecord::to(&input).key(&key).payload("x"),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {input}: {e}"));
    }
    let stalled = wait_for(&apps, "stall", "Ready=False Stalled", LONG, |a| {
        has(a, "Ready", "False", "Stalled")
    })
    .await;
    let msg = message(&stalled, "Processing");
    assert!(
        msg.contains("for over 8s") && msg.ends_with(&format!("on: {input}-0")),
        "the partition is named: {msg}"
    );
    assert!(has(&stalled, "Processing", "False", "Stalled"));

    // Commits move again: processing, Ready, at once.
    commit.store(true, Ordering::Relaxed);
    wait_for(
        &apps,
        "stall",
        "Processing=True and Ready again",
        LONG,
        |a| {
            has(a, "Processing", "True", "Processing")
                && has(a, "Ready", "True", "AllReplicasReady")
        },
    )
    .await;
    let warned = events(&ns, "stall", "Stalled").await;
    assert!(!warned.is_empty(), "a Warning Event Stalled");
    let resumed = events(&ns, "stall", "Processing").await;
    assert!(!resumed.is_empty(), "a Normal Event Processing on recovery");
    stop.store(true, Ordering::Relaxed);
    member.join().expect("stand-in member thread");
}
