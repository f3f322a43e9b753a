//! Kafka going away and coming back: the operator says so within one refresh, keeps
//! reconciling the Kubernetes side meanwhile, never shows the last known figures with a newer
//! `lastChecked` (every status written during the outage is judged), and recovers without a
//! restart of its own, showing the figures the restarted broker kept; and the Kafka step
//! forgets an app that was deleted.

use std::time::Duration;

use integration_tests::jvm_app::produce;
use integration_tests::seed::Recorder;
use integration_tests::{
    Kafka, Operator, PrivateKafka, TestNamespace, client, condition, is, wait_for,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::jiff::Timestamp;
use kstreams_kafka::KafkaStatus;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::kafka::KafkaSettings;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const LONG: Duration = Duration::from_secs(90);

/// The reason of the app's Ready condition.
fn ready_reason(a: &StreamApp) -> String {
    condition(a, "Ready").map(|c| c.1).unwrap_or_default()
}

/// When the operator's clock is `rfc3339` (a `lastChecked` or a transition time).
fn at(rfc3339: &str) -> Timestamp {
    rfc3339
        .parse()
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
}

/// `lastChecked` of the app's Kafka figures.
fn last_checked(a: &StreamApp) -> Option<Timestamp> {
    let kafka = a.status.as_ref()?.kafka.as_ref()?;
    Some(at(&kafka.last_checked))
}

/// The figures a restart of the broker leaves as they are (its data is kept): what the
/// operator must show again once it is back.
fn lasting_figures(k: &KafkaStatus) -> String {
    let group = k
        .group
        .as_ref()
        .map(|g| format!("{} with {} members", g.state, g.members.len()));
    format!(
        "group {group:?}, processing lag {:?}, uncommitted {}, missing inputs {:?}, changelogs {:?}",
        k.processing_lag_total,
        k.uncommitted_partitions,
        k.missing_input_topics,
        k.changelog_topics
    )
}

#[tokio::test]
async fn kafka_outage_is_reported_and_recovered_without_restart() {
    let kafka = PrivateKafka::start();
    // An input with records and commits, so the figures are worth keeping: lag 2 x (5 - 2).
    let topics = Kafka {
        bootstrap: kafka.bootstrap.clone(),
        prefix: integration_tests::unique("outage"),
        admin: Kafka::config(&kafka.bootstrap)
            .create()
            .expect("admin client"),
    };
    let input = topics.create_topic("in", 2, &[]).await;
    produce(&kafka.bootstrap, &input, 2, 5).await;
    let group: BaseConsumer = Kafka::config(&kafka.bootstrap)
        .set("group.id", "outage")
        .create()
        .expect("consumer");
    let mut commits = TopicPartitionList::new();
    for p in 0..2 {
        commits
            .add_partition_offset(&input, p, Offset::Offset(2))
            .unwrap();
    }
    group.commit(&commits, CommitMode::Sync).expect("commit");

    let client = client().await;
    let ns = TestNamespace::new(&client, "outage").await;
    // The in-process operator checks Kafka every 5 s. The app's kwok pods run nothing, so
    // once a check reached the group they are missing from it after a 5 s grace: what Ready
    // says while Kafka answers.
    let refresh = Duration::from_secs(5);
    let kafka_settings = KafkaSettings {
        refresh: Some(refresh),
        member_grace: Duration::from_secs(5),
        ..KafkaSettings::default()
    };
    let _operator = Operator::start_with(&client, &ns.name, kafka_settings).await;
    let apps = ns.api::<StreamApp>();
    let app: StreamApp = serde_yaml::from_str(&format!(
        "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\nmetadata: {{name: outage}}\n\
         spec: {{image: 'example/app:1', replicas: 1, kafka: {{bootstrapServers: '{}'}}, \
         topics: {{inputs: ['{input}']}}}}",
        kafka.bootstrap
    ))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let lag = |a: &StreamApp| a.status.as_ref()?.kafka.as_ref()?.processing_lag_total;
    let up = wait_for(
        &apps,
        "outage",
        "KafkaReachable, the lag known, Ready=False for the missing members",
        LONG,
        |a| {
            is(a, "KafkaReachable", "True")
                && ready_reason(a) == "MembersMissing"
                && lag(a) == Some(6)
        },
    )
    .await;
    let figures = lasting_figures(up.status.as_ref().unwrap().kafka.as_ref().unwrap());
    assert!(figures.contains("Empty"), "the group is listed: {figures}");

    // Every status the app goes through from here on, to judge each, not just the last.
    let recorder = Recorder::start(
        apps.clone(),
        watcher::Config::default().fields("metadata.name=outage"),
    )
    .await;
    // A restart: stopped with its data kept, started again on the same port.
    kafka.stop();
    let stopped = Timestamp::now();
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
    let flipped = down.status.as_ref().unwrap().conditions.iter();
    let flipped = flipped
        .filter(|c| c.type_ == "KafkaReachable")
        .map(|c| c.last_transition_time.0)
        .next()
        .unwrap();
    println!(
        "KafkaReachable=False {:.1}s after the broker stopped (refresh {refresh:?}, check timeout 5 s)",
        flipped.duration_since(stopped).as_secs_f64()
    );

    // The Kubernetes side is still reconciled while Kafka is away, and that status is written.
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
    wait_for(
        &apps,
        "outage",
        "the status of generation 2, Kafka still away",
        LONG,
        |a| {
            a.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
                && a.status.as_ref().is_some_and(|s| s.replicas == 2)
                && is(a, "KafkaReachable", "False")
        },
    )
    .await;

    let restarted = Timestamp::now();
    kafka.up();
    let back = wait_for(
        &apps,
        "outage",
        "Ready back to what the group says once Kafka is back",
        LONG,
        |a| {
            is(a, "KafkaReachable", "True")
                && ready_reason(a) == "MembersMissing"
                && last_checked(a).is_some_and(|t| t > restarted)
        },
    )
    .await;
    assert_eq!(
        lasting_figures(back.status.as_ref().unwrap().kafka.as_ref().unwrap()),
        figures,
        "the figures after the restart are those the broker kept"
    );

    // Each status written meanwhile: while Kafka was away the figures were the last known
    // ones, unchanged, with their own `lastChecked`; a newer `lastChecked` only came with
    // figures read from the broker after it was back, and right ones.
    let seen: Vec<StreamApp> = recorder
        .seen()
        .into_iter()
        .map(|s| s.object)
        .filter(|a| a.status.is_some())
        .collect();
    let first_down = seen
        .iter()
        .position(|a| is(a, "KafkaReachable", "False"))
        .expect("a status with KafkaReachable=False was seen");
    let last_good = seen[..first_down]
        .iter()
        .rev()
        .find(|a| is(a, "KafkaReachable", "True"))
        .expect("the status before the outage was seen");
    let last_good_figures = last_good.status.as_ref().unwrap().kafka.clone();
    let good_checked = last_checked(last_good).expect("checked before the outage");
    let mut while_down = 0;
    for (i, a) in seen.iter().enumerate() {
        let s = a.status.as_ref().unwrap();
        let version = a.metadata.resource_version.as_deref().unwrap_or("?");
        if is(a, "KafkaReachable", "False") {
            while_down += 1;
            assert_eq!(
                s.kafka, last_good_figures,
                "version {version} (#{i}) with Kafka away shows other figures than the last known"
            );
            continue;
        }
        let Some(checked) = last_checked(a) else {
            continue;
        };
        if checked > good_checked {
            assert!(
                checked > restarted,
                "version {version} (#{i}) carries lastChecked {checked}, during the outage \
                 ({stopped} .. {restarted})"
            );
            assert!(i > first_down, "version {version} (#{i})");
            assert_eq!(
                lasting_figures(s.kafka.as_ref().unwrap()),
                figures,
                "version {version} (#{i}), checked after the restart, shows other figures"
            );
        }
    }
    println!(
        "{} status versions seen, {while_down} of them with Kafka away",
        seen.len()
    );
    assert!(
        while_down >= 2,
        "the outage's first status and the scale's were both judged"
    );
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
