//! One `kstreams_kafka::check` against the real broker (`KAFKA_BOOTSTRAP`) for an app with
//! 1,000 partitions (5 input topics and 5 changelogs of 100 partitions each) and committed
//! group offsets: prints time per refresh and broker requests per refresh. Asserts nothing
//! about time.
//!
//! Requests are counted from librdkafka's statistics of the pool's consumers (`tx` and the
//! per-API `req` counters of every broker, `statistics.interval.ms=1000`), as deltas between
//! emissions taken before and after one refresh, after the background traffic of an idle
//! window of the same kind was measured. The admin client emits no statistics; its
//! DescribeConfigs calls are counted by the pool (librdkafka sends one request per call for
//! topic resources).
//!
//! Run: `eval "$(e2e/kafka.sh env)"; cargo bench -p kstreams-kafka --bench kafka_refresh`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kstreams_kafka::{AppView, ClientPool, KafkaConnection, PoolConfig, RequestStats, check};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TOPICS: usize = 5;
const PARTITIONS: i32 = 100;
const TIMED_RUNS: usize = 10;
const COUNTED_RUNS: usize = 3;

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

async fn create_topics(admin: &AdminClient<DefaultClientContext>, names: &[String], compact: bool) {
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            let t = NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1));
            if compact {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    for r in admin
        .create_topics(&topics, &opts)
        .await
        .expect("create topics")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// One record in every input partition, and the group's offset committed at 0 everywhere:
/// a processing lag of one record per partition.
async fn seed(bootstrap: &str, group: &str, inputs: &[String]) {
    let producer: FutureProducer = config(bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let sends = inputs.iter().flat_map(|t| {
        let producer = &producer;
        (0..PARTITIONS).map(move |p| async move {
            producer
                .send(
                    FutureRecord::to(t).partition(p).key("k").payload("v"),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {t}-{p}: {e}"));
        })
    });
    futures::future::join_all(sends).await;

    let committer: BaseConsumer = config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    for t in inputs {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(t, p, Offset::Offset(0))
                .expect("offset");
        }
    }
    committer
        .commit(&tpl, CommitMode::Sync)
        .expect("commit group offsets");
}

/// Serves events until every consumer emitted statistics twice more: the second emission was
/// taken after this call started.
async fn settle(pool: &ClientPool, clients: u64) -> RequestStats {
    let target = pool.request_stats().emissions + 2 * clients;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        pool.serve_events().await;
        let s = pool.request_stats();
        if s.emissions >= target {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no statistics from the pool's consumers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn delta(after: &RequestStats, before: &RequestStats) -> (u64, u64, BTreeMap<String, u64>) {
    let by_api = after
        .by_api
        .iter()
        .map(|(k, v)| (k.clone(), v - before.by_api.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    (
        after.total - before.total,
        after.admin_describe_configs - before.admin_describe_configs,
        by_api,
    )
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP")
        .expect("KAFKA_BOOTSTRAP is not set: run `eval \"$(e2e/kafka.sh env)\"` first");
    let run = format!("bench-{}", std::process::id());
    let app_id = format!("{run}-app");
    let inputs: Vec<String> = (0..TOPICS).map(|i| format!("{run}.in{i}")).collect();
    let changelogs: Vec<String> = (0..TOPICS)
        .map(|i| format!("{app_id}-store{i}-changelog"))
        .collect();
    let admin: AdminClient<DefaultClientContext> = config(&bootstrap).create().expect("admin");
    let setup = Instant::now();
    create_topics(&admin, &inputs, false).await;
    create_topics(&admin, &changelogs, true).await;
    seed(&bootstrap, &app_id, &inputs).await;
    println!(
        "setup: {} partitions ({} input, {} changelog), group offsets committed, in {:?}",
        2 * TOPICS as i32 * PARTITIONS,
        TOPICS as i32 * PARTITIONS,
        TOPICS as i32 * PARTITIONS,
        setup.elapsed()
    );

    let pool = ClientPool::new(PoolConfig {
        statistics_interval: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let conn = KafkaConnection::plaintext(&bootstrap);
    let view = AppView {
        application_id: app_id.clone(),
        input_topics: inputs.clone(),
        pods: vec![],
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    };

    // Warm-up: creates the clients and connections (not counted).
    let started = Instant::now();
    let status = check(&pool, &conn, &view, None)
        .await
        .expect("first refresh")
        .status;
    println!(
        "first refresh (client creation, connections, coordinator lookup): {:?}; processing lag {:?} \
         over {} changelogs, group {:?}",
        started.elapsed(),
        status.processing_lag_total,
        status.changelog_topics.len(),
        status.group.as_ref().map(|g| &g.state)
    );
    assert_eq!(
        status.processing_lag_total,
        Some(i64::from(PARTITIONS) * TOPICS as i64)
    );

    let mut times = Vec::with_capacity(TIMED_RUNS);
    for _ in 0..TIMED_RUNS {
        let t = Instant::now();
        check(&pool, &conn, &view, None).await.expect("refresh");
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "time per refresh over {TIMED_RUNS} runs: min {:?}, median {:?}, max {:?}",
        times[0],
        times[TIMED_RUNS / 2],
        times[TIMED_RUNS - 1]
    );

    // Two consumers emit statistics: the shared one and the app group's.
    let clients = 2;
    let before = settle(&pool, clients).await;
    let idle = settle(&pool, clients).await;
    let (idle_total, _, idle_by_api) = delta(&idle, &before);
    println!("background requests in an idle window of ~2 s: {idle_total} {idle_by_api:?}");
    for i in 0..COUNTED_RUNS {
        let before = settle(&pool, clients).await;
        check(&pool, &conn, &view, None).await.expect("refresh");
        let after = settle(&pool, clients).await;
        let (total, admin_calls, by_api) = delta(&after, &before);
        println!(
            "refresh {}: {} broker requests = {total} from the consumers {by_api:?} + {admin_calls} \
             DescribeConfigs from the admin client",
            i + 1,
            total + admin_calls
        );
    }

    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let all: Vec<&str> = inputs
        .iter()
        .chain(&changelogs)
        .map(String::as_str)
        .collect();
    let _ = admin.delete_topics(&all, &opts).await;
    let _ = admin.delete_groups(&[app_id.as_str()], &opts).await;
}
