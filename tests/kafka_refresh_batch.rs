//! `kstreams_kafka::check_cluster` against the real broker: the apps of one cluster are
//! refreshed together with one request of each kind (per broker where the protocol routes it
//! so), counted on the wire, and each app's result is the one its own `check` gives. The
//! operator's periodic checks go through it: two StreamApps of one cluster are refreshed in
//! one round.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::local_pods::wordcount_app;
use integration_tests::{Kafka, Operator, TestNamespace, client, wait_for};
use kstreams_kafka::{
    AppView, Checked, ClientPool, KafkaConnection, PoolConfig, check, check_cluster,
};
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::kafka::{KafkaSettings, connection};
use kube::ResourceExt;
use kube::api::PostParams;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
/// Records produced to each input partition; the group committed `COMMITTED` of them.
const RECORDS: i64 = 4;
const COMMITTED: i64 = 1;
const SETTLE: Duration = Duration::from_secs(60);

type Requests = BTreeMap<(i32, &'static str), u64>;

fn view(id: &str, inputs: &[&str]) -> AppView {
    AppView {
        application_id: id.to_string(),
        input_topics: inputs.iter().map(|t| t.to_string()).collect(),
        pods: vec![format!("{id}-0")],
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    }
}

/// `RECORDS` records in every partition of `topic`, and `group`'s offset committed at
/// `COMMITTED` on each, by a consumer that never joins the group (the group stays Empty).
async fn seed(kafka: &Kafka, topic: &str, group: &str) {
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().expect("producer");
    for p in 0..PARTITIONS {
        for _ in 0..RECORDS {
            producer
                .send(
                    FutureRecord::to(topic).partition(p).key("k").payload("v"),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {topic}-{p}: {e}"));
        }
    }
    let committer: BaseConsumer = Kafka::config(&kafka.bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(COMMITTED))
            .expect("offset");
    }
    committer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing for {group}: {e}"));
}

/// What one refresh sent: `after - before`, by broker and API.
fn sent(after: &Requests, before: &Requests) -> Requests {
    after
        .iter()
        .map(|(k, n)| (*k, n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Requests of `api` over all brokers.
fn total(requests: &Requests, api: &str) -> u64 {
    requests
        .iter()
        .filter(|((_, a), _)| *a == api)
        .map(|(_, n)| n)
        .sum()
}

/// The check with `lastChecked` cleared: two checks differ in nothing else when the brokers
/// did not change.
fn timeless(c: Checked) -> Checked {
    let mut c = c;
    c.status.last_checked.clear();
    c
}

/// Checks `app` until its status shows the seeded lag: the broker answers with what was
/// produced and committed.
async fn settled(pool: &ClientPool, conn: &KafkaConnection, app: &AppView) {
    let want = Some(PARTITIONS as i64 * (RECORDS - COMMITTED));
    let deadline = tokio::time::Instant::now() + SETTLE;
    // Polling cadence of the condition, not a wait for time to pass.
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let last = check(pool, conn, app, None).await;
        if let Ok(c) = &last
            && c.status.group.is_some()
            && c.status.processing_lag_total == want
        {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{}: timed out waiting for lag {want:?}; last: {last:#?}",
                app.application_id
            );
        }
    }
}

#[tokio::test]
async fn two_apps_of_one_cluster_are_refreshed_with_one_request_of_each_kind() {
    let kafka = Kafka::new("kbatch");
    // `wc-enrich` extends `wc`'s id: each must be shown its own changelog only, from the one
    // group listing both share.
    let (a, b) = (
        format!("{}.wc", kafka.prefix),
        format!("{}.wc-enrich", kafka.prefix),
    );
    let compact = [("cleanup.policy", "compact")];
    let input_a = kafka.create_topic("words", PARTITIONS, &[]).await;
    let input_b = kafka.create_topic("lines", PARTITIONS, &[]).await;
    kafka
        .create_topic("wc-counts-changelog", PARTITIONS, &compact)
        .await;
    kafka
        .create_topic("wc-enrich-totals-changelog", PARTITIONS, &compact)
        .await;
    seed(&kafka, &input_a, &a).await;
    seed(&kafka, &input_b, &b).await;
    let (va, vb) = (view(&a, &[&input_a]), view(&b, &[&input_b]));
    // An app without a group nor its input: it needs no group request of its own.
    let vc = view(
        &format!("{}.nobody", kafka.prefix),
        &[&format!("{}.absent", kafka.prefix)],
    );
    let conn = KafkaConnection::plaintext(&kafka.bootstrap);
    let pool = ClientPool::new(PoolConfig::default());
    settled(&pool, &conn, &va).await;
    settled(&pool, &conn, &vb).await;

    // Each app on its own, as the operator checks them today: two of each request.
    let before = pool.wire_requests(&conn);
    let mut alone: Vec<Checked> = Vec::new();
    for v in [&va, &vb, &vc] {
        alone.push(check(&pool, &conn, v, None).await.expect("check"));
    }
    let singles = sent(&pool.wire_requests(&conn), &before);
    println!("three checks of one app each: {singles:?}");
    assert_eq!(total(&singles, "Metadata"), 3, "{singles:?}");
    assert_eq!(total(&singles, "OffsetFetch"), 2, "{singles:?}");

    // All three together.
    let before = pool.wire_requests(&conn);
    let together = check_cluster(&pool, &conn, &[(&va, None), (&vb, None), (&vc, None)]).await;
    let batch = sent(&pool.wire_requests(&conn), &before);
    println!("one refresh of the cluster's three apps: {batch:?}");
    let brokers: Vec<i32> = {
        let mut b: Vec<i32> = batch.keys().map(|(node, _)| *node).collect();
        b.dedup();
        b
    };
    assert_eq!(total(&batch, "Metadata"), 1, "{batch:?}");
    assert_eq!(total(&batch, "OffsetFetch"), 1, "{batch:?}");
    assert_eq!(total(&batch, "DescribeGroups"), 1, "{batch:?}");
    assert_eq!(total(&batch, "DescribeConfigs"), 1, "{batch:?}");
    assert_eq!(total(&batch, "FindCoordinator"), 0, "{batch:?}");
    for node in &brokers {
        // ListGroups to every broker, ListOffsets to every leader: at most one each.
        for api in ["ListGroups", "ListOffsets"] {
            assert!(
                batch.get(&(*node, api)).copied().unwrap_or(0) <= 1,
                "{api} to node {node}: {batch:?}"
            );
        }
    }
    let list_offsets = total(&batch, "ListOffsets");
    assert!(
        (1..=brokers.len() as u64).contains(&list_offsets),
        "{batch:?}"
    );
    let sum: u64 = batch.values().sum();
    assert!(
        sum <= 4 + 2 * brokers.len() as u64,
        "{sum} requests: {batch:?}"
    );

    // Each app's result is its own check's.
    let together: Vec<Checked> = together
        .into_iter()
        .map(|r| r.expect("check of the cluster"))
        .collect();
    for (alone, together) in alone.into_iter().zip(together) {
        assert_eq!(timeless(together), timeless(alone));
    }
    let s = check_cluster(&pool, &conn, &[(&va, None), (&vb, None)]).await;
    let names = |c: &Checked| -> Vec<String> {
        c.status
            .changelog_topics
            .iter()
            .map(|t| t.name.clone())
            .collect()
    };
    let (sa, sb) = (s[0].as_ref().expect("a"), s[1].as_ref().expect("b"));
    assert_eq!(names(sa), [format!("{a}-counts-changelog")]);
    assert_eq!(names(sb), [format!("{b}-totals-changelog")]);
    for c in [sa, sb] {
        let g = c.status.group.as_ref().expect("the committed group");
        assert_eq!(g.state, "Empty");
        assert_eq!(
            c.status.processing_lag_total,
            Some(PARTITIONS as i64 * (RECORDS - COMMITTED))
        );
        assert_eq!(c.status.changelog_topics[0].compacted, Some(true));
    }
}

#[tokio::test]
async fn an_unreachable_cluster_fails_every_app_with_the_same_error() {
    let port = integration_tests::process::free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let conn = KafkaConnection::plaintext(&bootstrap);
    let pool = ClientPool::new(PoolConfig {
        request_timeout: Duration::from_secs(3),
        ..Default::default()
    });
    let (a, b) = (view("a", &["in"]), view("b", &["in"]));
    let out = check_cluster(&pool, &conn, &[(&a, None), (&b, None)]).await;
    assert_eq!(out.len(), 2);
    let errors: Vec<_> = out
        .into_iter()
        .map(|r| r.expect_err("no broker there"))
        .collect();
    assert_eq!(errors[0].reason(), "KafkaUnreachable", "{}", errors[0]);
    assert!(errors[0].to_string().contains(&bootstrap), "{}", errors[0]);
    assert_eq!(errors[0], errors[1]);
}

/// Waits until the operator has given both apps the figures of one round (the same
/// `lastChecked`) other than `after`'s; that `lastChecked`.
async fn one_round(operator: &Operator, uids: &[String], after: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + SETTLE;
    // Polling cadence of the condition, not a wait for time to pass.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let seen: Vec<Option<String>> = uids
            .iter()
            .map(|u| operator.ctx.kafka.last_checked(u))
            .collect();
        if let [Some(a), Some(b)] = &seen[..]
            && a == b
            && after != Some(a.as_str())
        {
            return a.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for both apps checked in one round; last: {seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_refreshes_two_apps_of_one_cluster_in_one_round() {
    let kafka = Kafka::new("kround");
    let client = client().await;
    let ns = TestNamespace::new(&client, "kround").await;
    // Long enough that a round is over well before the next one begins.
    let refresh = Duration::from_secs(15);
    let operator = Operator::start_with(
        &client,
        &ns.name,
        KafkaSettings {
            refresh: Some(refresh),
            ..KafkaSettings::default()
        },
    )
    .await;
    let apps = ns.api::<StreamApp>();
    let mut uids = Vec::new();
    for name in ["one", "two"] {
        let id = format!("{}.{name}", kafka.prefix);
        let input = kafka
            .create_topic(&format!("{name}-in"), PARTITIONS, &[])
            .await;
        seed(&kafka, &input, &id).await;
        // No pods: the group is the committed one, Empty.
        let mut app = wordcount_app(name, &id, &kafka.bootstrap, &input, "out");
        app.spec.replicas = 0;
        let app = apps.create(&PostParams::default(), &app).await.unwrap();
        uids.push(app.uid().unwrap());
    }
    let want = Some(PARTITIONS as i64 * (RECORDS - COMMITTED));
    for name in ["one", "two"] {
        wait_for(
            &apps,
            name,
            "its own group's lag in the status",
            SETTLE,
            |a| {
                a.status
                    .as_ref()
                    .and_then(|s| s.kafka.as_ref())
                    .is_some_and(|k| k.group.is_some() && k.processing_lag_total == want)
            },
        )
        .await;
    }

    // The connection as the operator makes it, which keys its clients.
    let conn = connection(&client, &apps.get("one").await.unwrap())
        .await
        .unwrap();
    let pool = operator.ctx.kafka.pool();
    let first = one_round(&operator, &uids, None).await;
    let before = pool.wire_requests(&conn);
    let second = one_round(&operator, &uids, Some(&first)).await;
    let round = sent(&pool.wire_requests(&conn), &before);
    println!("rounds at {first} and {second}; the second sent {round:?}");
    assert_eq!(total(&round, "Metadata"), 1, "{round:?}");
    assert_eq!(total(&round, "OffsetFetch"), 1, "{round:?}");
    assert_eq!(total(&round, "DescribeGroups"), 1, "{round:?}");
    assert_eq!(total(&round, "ListGroups"), 1, "{round:?}");
    for name in ["one", "two"] {
        let k = apps.get(name).await.unwrap().status.unwrap().kafka.unwrap();
        assert_eq!(k.processing_lag_total, want, "{name}: {k:?}");
    }
}
