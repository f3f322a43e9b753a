//! Kafka going away and coming back: the operator says so within one refresh, keeps
//! reconciling the Kubernetes side meanwhile, and recovers without a restart; and the Kafka
//! step forgets an app that was deleted.

use std::time::Duration;

use integration_tests::{Operator, PrivateKafka, TestNamespace, client, condition, is, wait_for};
use k8s_openapi::api::apps::v1::StatefulSet;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::kafka::KafkaSettings;
use kube::api::{Patch, PatchParams, PostParams};

const LONG: Duration = Duration::from_secs(90);

/// The reason of the app's Ready condition.
fn ready_reason(a: &StreamApp) -> String {
    condition(a, "Ready").map(|c| c.1).unwrap_or_default()
}

#[tokio::test]
async fn kafka_outage_is_reported_and_recovered_without_restart() {
    let kafka = PrivateKafka::start();
    let client = client().await;
    let ns = TestNamespace::new(&client, "outage").await;
    // The in-process operator checks Kafka every 5 s. The app's kwok pods run nothing, so
    // once a check reached the group they are missing from it after a 5 s grace: what Ready
    // says while Kafka answers.
    let kafka_settings = KafkaSettings {
        refresh: Some(Duration::from_secs(5)),
        member_grace: Duration::from_secs(5),
        ..KafkaSettings::default()
    };
    let _operator = Operator::start_with(&client, &ns.name, kafka_settings).await;
    let apps = ns.api::<StreamApp>();
    let app: StreamApp = serde_yaml::from_str(&format!(
        "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\nmetadata: {{name: outage}}\n\
         spec: {{image: 'example/app:1', replicas: 1, kafka: {{bootstrapServers: '{}'}}}}",
        kafka.bootstrap
    ))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
    wait_for(
        &apps,
        "outage",
        "KafkaReachable, Ready=False for the missing members",
        LONG,
        |a| is(a, "KafkaReachable", "True") && ready_reason(a) == "MembersMissing",
    )
    .await;

    kafka.down();
    let down = wait_for(&apps, "outage", "KafkaReachable=False", LONG, |a| {
        is(a, "KafkaReachable", "False")
    })
    .await;
    let (_, reason, message) = condition(&down, "KafkaReachable").unwrap();
    assert!(reason.starts_with("Kafka"), "reason {reason}");
    assert!(
        message.contains(&kafka.bootstrap),
        "the message names the brokers: {message}"
    );
    assert!(is(&down, "Ready", "False"));
    assert_eq!(ready_reason(&down), "KafkaUnreachable");
    assert_eq!(
        condition(&down, "Processing").map(|c| c.1).as_deref(),
        Some("Unknown"),
        "membership is not known while Kafka is away"
    );
    assert!(
        down.status.as_ref().unwrap().kafka.is_some(),
        "the last known Kafka figures stay"
    );

    // The Kubernetes side is still reconciled while Kafka is away.
    apps.patch(
        "outage",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    wait_for(
        &ns.api::<StatefulSet>(),
        "outage",
        "scaled to 2 while Kafka is down",
        LONG,
        |s| s.spec.as_ref().and_then(|s| s.replicas) == Some(2),
    )
    .await;

    kafka.up();
    wait_for(
        &apps,
        "outage",
        "Ready back to what the group says once Kafka is back",
        LONG,
        |a| is(a, "KafkaReachable", "True") && ready_reason(a) == "MembersMissing",
    )
    .await;
}

/// Polls `cond` until it holds, or fails after `timeout` saying `what`.
async fn until(what: &str, timeout: Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tick.tick().await;
    }
}

#[tokio::test]
async fn a_deleted_app_is_forgotten_and_its_successor_starts_clean() {
    let kafka = integration_tests::Kafka::new("forget");
    let client = client().await;
    let ns = TestNamespace::new(&client, "forget").await;
    let operator = Operator::start(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    let app: StreamApp = serde_yaml::from_str(&format!(
        "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\nmetadata: {{name: forget}}\n\
         spec: {{image: 'example/app:1', replicas: 1, kafka: {{bootstrapServers: '{}'}}}}",
        kafka.bootstrap
    ))
    .unwrap();
    let checked = |a: &StreamApp| a.status.as_ref().is_some_and(|s| s.kafka.is_some());
    apps.create(&PostParams::default(), &app).await.unwrap();
    let first = wait_for(&apps, "forget", "a Kafka check", LONG, checked).await;
    let first_uid = first.metadata.uid.clone().unwrap();
    assert!(operator.ctx.kafka.tracks(&first_uid));

    apps.delete("forget", &Default::default()).await.unwrap();
    until("the deleted app's Kafka state dropped", LONG, || {
        !operator.ctx.kafka.tracks(&first_uid)
    })
    .await;

    apps.create(&PostParams::default(), &app).await.unwrap();
    let second = wait_for(&apps, "forget", "the new app's Kafka check", LONG, |a| {
        checked(a) && a.metadata.uid.as_deref() != Some(first_uid.as_str())
    })
    .await;
    let second_uid = second.metadata.uid.clone().unwrap();
    assert!(operator.ctx.kafka.tracks(&second_uid));
    assert!(
        !operator.ctx.kafka.tracks(&first_uid),
        "the re-created app has its own state, not the deleted one's"
    );
}
