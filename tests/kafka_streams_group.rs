//! Apps on the KIP-1071 streams rebalance protocol (`group.protocol=streams`), read from the
//! real broker through the generated wire layer, with real Kafka Streams members (the example
//! word count as local JVMs): the group's topology, members and tasks, processing lag as
//! Kafka's own `kafka-streams-groups` tool shows it, and the standby setting the broker owns.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::jvm_app::{AppInstance, produce, wait_status};
use integration_tests::kafka::{streams_group_lags, wait_group_config};
use integration_tests::local_pods::example_jar;
use integration_tests::{Kafka, PrivateKafka};
use kstreams_kafka::status::KafkaStatus;
use kstreams_kafka::streams_group::StreamsGroupSnapshot;
use kstreams_kafka::{AppView, ClientPool, KafkaConnection, KafkaError, PoolConfig};

const PARTITIONS: i32 = 2;
/// A JVM start plus a join of the streams group, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(180);
const SETTLE: Duration = Duration::from_secs(90);
const STANDBYS: &str = "streams.num.standby.replicas";

/// The settings that put the example app on the streams protocol, with a short heartbeat so
/// the broker hears of task offsets and assignment changes within seconds.
const STREAMS: &[(&str, &str)] = &[
    ("KAFKA_STREAMS_GROUP_PROTOCOL", "streams"),
    ("KAFKA_STREAMS_NUM_STANDBY_REPLICAS", "0"),
];

fn pods(app_id: &str) -> Vec<String> {
    (0..2).map(|i| format!("{app_id}-{i}")).collect()
}

/// Polls the streams group until `cond` holds; panics with the last answer at the deadline.
async fn wait_group(
    pool: &ClientPool,
    conn: &KafkaConnection,
    group: &str,
    what: &str,
    cond: impl Fn(&StreamsGroupSnapshot) -> bool,
) -> StreamsGroupSnapshot {
    let deadline = tokio::time::Instant::now() + SETTLE;
    // Polling cadence of the condition, not a wait for time to pass.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let last = pool.streams_group(conn, group).await;
        if let Ok(Some(g)) = &last
            && cond(g)
        {
            return g.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; last: {last:#?}");
        }
    }
}

fn standby_tasks(g: &StreamsGroupSnapshot) -> usize {
    g.members.iter().map(|m| m.standby.len()).sum()
}

fn all_active(s: &KafkaStatus) -> BTreeSet<String> {
    s.pods
        .iter()
        .flat_map(|p| p.active_tasks.iter().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_group_is_read_with_its_topology_tasks_lag_and_standby_setting() {
    let kafka = Kafka::new("ksg");
    let input = kafka.create_topic("words", PARTITIONS, &[]).await;
    let output = kafka.create_topic("counts", PARTITIONS, &[]).await;
    let app_id = format!("{}-wc", kafka.prefix);
    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    let view = AppView {
        application_id: app_id.clone(),
        input_topics: vec![input.clone()],
        pods: pods(&app_id),
        acceptable_recovery_lag: 10_000,
        streams_protocol: true,
    };
    produce(&kafka.bootstrap, &input, PARTITIONS, 30).await;

    // The broker's cap on standbys is 2 by default: 3 is refused, naming the setting.
    match pool
        .alter_group_configs(&conn, &app_id, &[(STANDBYS.into(), Some("3".into()))])
        .await
    {
        Err(KafkaError::ConfigRejected { key, value, .. }) => {
            assert_eq!((key.as_str(), value.as_str()), (STANDBYS, "3"));
        }
        other => panic!("3 standbys should be refused by the broker's cap, got {other:?}"),
    }

    let jar = example_jar();
    let apps: Vec<AppInstance> = view
        .pods
        .iter()
        .map(|pod| {
            AppInstance::start_with(
                &jar,
                pod,
                &app_id,
                &kafka.bootstrap,
                (&input, &output),
                STREAMS,
            )
        })
        .collect();
    let refs: Vec<&AppInstance> = apps.iter().collect();

    // Both pods in the Stable streams group, every task placed, all input committed.
    let s = wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "Stable streams group of both pods, all tasks placed, no lag",
        STARTUP,
        |s| {
            s.group.as_ref().is_some_and(|g| g.state == "Stable")
                && s.pods
                    .iter()
                    .all(|p| p.members == 1 && !p.active_tasks.is_empty())
                && all_active(s).len() == 2 * PARTITIONS as usize
                && s.processing_lag_total == Some(0)
        },
    )
    .await;
    let g = s.group.as_ref().expect("a group");
    assert_eq!(g.protocol_type, "streams");
    let mapped: BTreeSet<Option<&str>> = g.members.iter().map(|m| m.pod.as_deref()).collect();
    assert_eq!(
        mapped,
        view.pods.iter().map(|p| Some(p.as_str())).collect(),
        "every member is mapped to its pod"
    );
    // The topology is the broker's: the changelog of the `counts` store and the repartition
    // topic, exact.
    let changelog = format!("{app_id}-counts-changelog");
    assert_eq!(
        s.changelog_topics
            .iter()
            .map(|c| (c.name.as_str(), c.partitions_match_source))
            .collect::<Vec<_>>(),
        [(changelog.as_str(), Some(true))]
    );
    assert_eq!(s.repartition_topics.len(), 1, "{:?}", s.repartition_topics);
    assert!(
        s.problems.is_empty(),
        "no problems expected: {:?}",
        s.problems
    );
    let listed = pool.streams_group_ids(&conn).await.expect("list groups");
    assert!(listed.contains(&app_id), "{listed:?}");

    // New input: the operator's lag matches Kafka's own tool once both see the same commits.
    produce(&kafka.bootstrap, &input, PARTITIONS, 10).await;
    wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "processing lag equal to kafka-streams-groups --describe --offsets",
        SETTLE,
        |s| {
            let tool: Option<i64> = streams_group_lags(&kafka.bootstrap, &app_id)
                .values()
                .try_fold(0i64, |acc, l| l.map(|l| acc + l));
            s.processing_lag_total.is_some() && s.processing_lag_total == tool
        },
    )
    .await;

    // The standby setting lives on the broker: 1 yields standby tasks, 0 none.
    pool.alter_group_configs(&conn, &app_id, &[(STANDBYS.into(), Some("1".into()))])
        .await
        .expect("1 standby is within the cap");
    wait_group_config(&pool, &conn, &app_id, STANDBYS, "1").await;
    let g = wait_group(&pool, &conn, &app_id, "standby tasks assigned", |g| {
        g.state == "Stable" && standby_tasks(g) > 0
    })
    .await;
    assert!(g.members.iter().all(|m| !m.process_id.is_empty()));
    let s = wait_status(
        &pool,
        &conn,
        &view,
        &refs,
        "standby tasks in the status",
        SETTLE,
        |s| s.pods.iter().any(|p| !p.standby_tasks.is_empty()),
    )
    .await;
    assert!(s.pods.iter().all(|p| p.members == 1));
    pool.alter_group_configs(&conn, &app_id, &[(STANDBYS.into(), Some("0".into()))])
        .await
        .expect("0 standbys");
    wait_group(&pool, &conn, &app_id, "no standby tasks", |g| {
        g.state == "Stable" && standby_tasks(g) == 0
    })
    .await;
    drop(apps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_streams_group_is_none_and_an_unreachable_cluster_a_bounded_error() {
    let kafka = Kafka::new("ksgnone");
    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    let group = format!("{}-absent", kafka.prefix);
    assert_eq!(pool.streams_group(&conn, &group).await, Ok(None));

    let pool = ClientPool::new(PoolConfig {
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    });
    let nowhere = KafkaConnection::plaintext("127.0.0.1:1");
    match pool.streams_group(&nowhere, &group).await {
        Err(KafkaError::Unreachable { bootstrap, .. }) => assert_eq!(bootstrap, "127.0.0.1:1"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// The wire connections are secured like librdkafka's: TLS with the app's CA, SASL
/// SCRAM-SHA-512 and PLAIN with its credentials; a wrong password is an authentication
/// failure, not a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_connections_use_tls_and_sasl_like_the_rest_of_the_kafka_step() {
    let kafka = PrivateKafka::start_secure("alice", "alice-secret");
    let secure = kafka.secure().clone();
    let pool = ClientPool::new(PoolConfig {
        request_timeout: Duration::from_secs(15),
        ..Default::default()
    });
    let conn = |mechanism: &str, password: &str| {
        let mut c = KafkaConnection::plaintext(&secure.bootstrap);
        c.ca_pem = Some(secure.ca_pem.clone());
        c.sasl_mechanism = Some(mechanism.into());
        c.sasl_username = Some(secure.user.0.clone());
        c.sasl_password = Some(password.into());
        c
    };
    // A fresh broker creates its offsets topic on the first coordinator lookup, which takes a
    // while on a busy machine: wait until the first mechanism gets an answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let answer = pool
            .streams_group(&conn("SCRAM-SHA-512", &secure.user.1), "absent-group")
            .await;
        match answer {
            Ok(None) => break,
            Err(KafkaError::Request { .. } | KafkaError::Timeout { .. })
                if tokio::time::Instant::now() < deadline => {}
            other => panic!("SCRAM-SHA-512 should get an answer, got {other:?}"),
        }
    }
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let answer = pool
            .streams_group(&conn(mechanism, &secure.user.1), "absent-group")
            .await;
        assert_eq!(answer, Ok(None), "{mechanism}");
    }
    match pool
        .streams_group(&conn("SCRAM-SHA-512", "wrong"), "absent-group")
        .await
    {
        Err(KafkaError::AuthFailed { detail, .. }) => {
            assert!(detail.contains("SASL"), "{detail}")
        }
        other => panic!("a wrong password should fail authentication, got {other:?}"),
    }
}
