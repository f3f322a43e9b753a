//! The word count on the streams rebalance protocol (KIP-1071, `spec.kafka.groupProtocol:
//! Streams`) run by the operator: two real Kafka Streams members (the stand-in kubelet's
//! JVMs) in a streams group the status shows as exactly as a classic one, its processing lag
//! as Kafka's own tool counts it, and `spec.standbyReplicas` applied where the broker reads
//! it (the group config), a value above the broker's cap refused with a condition.

use std::time::Duration;

use integration_tests::kafka::{streams_group_lags, wait_group_config};
use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::{Kafka, LocalPods, Operator, TestNamespace, client, is, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kstreams_kafka::{ClientPool, KafkaConnection, PoolConfig};
use kstreams_operator::crd::{GroupProtocol, StreamApp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use rdkafka::producer::{FutureProducer, FutureRecord};

const APP: &str = "sp";
const PARTITIONS: i32 = 2;
/// Two JVM starts plus the join of the streams group, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(300);
const SETTLE: Duration = Duration::from_secs(120);

fn kafka_status(a: &StreamApp) -> Option<&kstreams_kafka::KafkaStatus> {
    a.status.as_ref().and_then(|s| s.kafka.as_ref())
}

fn standby_count(a: &StreamApp) -> usize {
    kafka_status(a).map_or(0, |k| k.pods.iter().map(|p| p.standby_tasks.len()).sum())
}

fn degraded(a: &StreamApp) -> Option<(String, String)> {
    let c = a
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")?;
    (c.status == "True").then(|| (c.reason.clone(), c.message.clone()))
}

async fn produce(bootstrap: &str, topic: &str) {
    let producer: FutureProducer = Kafka::config(bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for p in 0..PARTITIONS {
        for i in 0..20 {
            let line = format!("line {i} of partition {p} the quick brown fox");
            producer
                .send(
                    FutureRecord::to(topic)
                        .partition(p)
                        .key(&line)
                        .payload(&line),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {topic}-{p}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_protocol_app_is_shown_like_a_classic_one_and_its_standbys_set_on_the_broker() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "streams-protocol").await;
    let kafka = Kafka::new("sp");
    let input = kafka.create_topic("lines", PARTITIONS, &[]).await;
    let output = kafka.create_topic("counts", PARTITIONS, &[]).await;
    let app_id = format!("{}.sp", kafka.prefix);
    let _operator = Operator::start(&client, &ns.name).await;
    let mut app = wordcount_app(APP, &app_id, &kafka.bootstrap, &input, &output);
    app.spec.kafka.group_protocol = GroupProtocol::Streams;
    app.spec.standby_replicas = 1;
    // The streams protocol keeps the session timeout on the broker.
    app.spec.config.remove("session.timeout.ms");
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let _local = LocalPods::start(&client, &ns.name, &[]);
    produce(&kafka.bootstrap, &input).await;

    // Both pods in the Stable streams group, the one standby the spec asks for placed by the
    // broker, everything processed: Ready.
    let a = wait_for(
        &apps,
        APP,
        "Ready, a Stable streams group of both pods with standby tasks, lag 0",
        STARTUP,
        |a| {
            is(a, "Ready", "True")
                && kafka_status(a).is_some_and(|k| {
                    k.group.as_ref().is_some_and(|g| {
                        g.protocol_type == "streams" && g.state == "Stable" && g.members.len() == 2
                    }) && k
                        .pods
                        .iter()
                        .all(|p| p.members == 1 && !p.active_tasks.is_empty())
                        && k.processing_lag_total == Some(0)
                })
                && standby_count(a) > 0
        },
    )
    .await;
    let k = kafka_status(&a).expect("a Kafka status");
    let g = k.group.as_ref().expect("a group");
    let mut pods: Vec<&str> = g.members.iter().filter_map(|m| m.pod.as_deref()).collect();
    pods.sort();
    assert_eq!(pods, ["sp-0", "sp-1"], "members mapped to their pods");
    assert!(
        g.members
            .iter()
            .all(|m| m.process_id.is_some() && m.member_epoch.is_some()),
        "{:?}",
        g.members
    );
    assert!(g.group_epoch.is_some() && g.assignment_epoch.is_some());
    assert_eq!(
        k.changelog_topics
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
        [format!("{app_id}-counts-changelog")]
    );
    assert_eq!(k.repartition_topics.len(), 1, "{:?}", k.repartition_topics);
    assert!(is(&a, "Processing", "True"));
    let tool: Option<i64> = streams_group_lags(&kafka.bootstrap, &app_id)
        .values()
        .try_fold(0i64, |acc, l| l.map(|l| acc + l));
    assert_eq!(
        tool,
        Some(0),
        "kafka-streams-groups agrees that nothing waits"
    );
    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    // The operator set the group config.
    wait_group_config(&pool, &conn, &app_id, "streams.num.standby.replicas", "1").await;

    // 0 standbys: the broker assigns none.
    let patch = |n: i32| serde_json::json!({"spec": {"standbyReplicas": n}});
    apps.patch(APP, &PatchParams::default(), &Patch::Merge(&patch(0)))
        .await
        .unwrap();
    wait_for(&apps, APP, "no standby tasks", SETTLE, |a| {
        kafka_status(a).is_some_and(|k| {
            k.group.as_ref().is_some_and(|g| g.state == "Stable") && !k.pods.is_empty()
        }) && standby_count(a) == 0
    })
    .await;

    // 3 is above the broker's cap (group.streams.max.standby.replicas, 2 by default): a
    // condition names the setting, and it clears once the spec is back within the cap.
    apps.patch(APP, &PatchParams::default(), &Patch::Merge(&patch(3)))
        .await
        .unwrap();
    let a = wait_for(&apps, APP, "Degraded GroupConfigRejected", SETTLE, |a| {
        degraded(a).is_some_and(|(reason, _)| reason == "GroupConfigRejected")
    })
    .await;
    let (_, message) = degraded(&a).expect("degraded");
    assert!(
        message.contains("streams.num.standby.replicas") && message.contains("3"),
        "{message}"
    );
    apps.patch(APP, &PatchParams::default(), &Patch::Merge(&patch(1)))
        .await
        .unwrap();
    wait_for(
        &apps,
        APP,
        "the refusal cleared, standbys back",
        SETTLE,
        |a| degraded(a).is_none() && standby_count(a) > 0,
    )
    .await;

    // A restore-aware rollout steps through a streams group too: each restarted pod is back
    // in the Stable group with its tasks caught up before the next one restarts, and the
    // rollout ends.
    let pod_api = ns.api::<Pod>();
    let uids =
        |ps: &[Pod]| -> Vec<Option<String>> { ps.iter().map(|p| p.metadata.uid.clone()).collect() };
    let before = uids(&pod_api.list(&ListParams::default()).await.unwrap().items);
    let env = serde_json::json!({"spec": {"env": [
        {"name": "WORDCOUNT_INPUT_TOPIC", "value": input},
        {"name": "WORDCOUNT_OUTPUT_TOPIC", "value": output},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "ROLLOUT_MARK", "value": "2"},
    ]}});
    apps.patch(APP, &PatchParams::default(), &Patch::Merge(&env))
        .await
        .unwrap();
    wait_for(&apps, APP, "a rollout under way", SETTLE, |a| {
        a.status.as_ref().is_some_and(|s| s.rollout.is_some())
    })
    .await;
    wait_for(
        &apps,
        APP,
        "the rollout done and the app Ready",
        STARTUP,
        |a| {
            a.status.as_ref().is_some_and(|s| s.rollout.is_none())
                && is(a, "Ready", "True")
                && kafka_status(a).is_some_and(|k| {
                    k.group
                        .as_ref()
                        .is_some_and(|g| g.state == "Stable" && g.members.len() == 2)
                })
        },
    )
    .await;
    let after = uids(&pod_api.list(&ListParams::default()).await.unwrap().items);
    assert!(
        before.iter().all(|uid| !after.contains(uid)),
        "both pods restarted: {before:?} -> {after:?}"
    );
}
