//! Kafka refreshes against the real broker (`KAFKA_BOOTSTRAP`), printing numbers and asserting
//! nothing about time:
//!
//! 1. one `kstreams_kafka::check` of an app with 1,000 partitions (5 input topics and 5
//!    changelogs of 100 partitions each) and committed group offsets;
//! 2. one `kstreams_kafka::check_cluster` of all apps of the cluster at 1, 50 and 500 apps,
//!    each app with an input topic and a changelog of 2 partitions each and a committed
//!    group; and, for comparison, the same apps checked one `check` after the other.
//!
//! For each: wall time per refresh (min, median, max), the requests the refresh sent by broker
//! and API (counted on the wire connections, `ClientPool::wire_requests`), the clients the
//! pool holds (wire connections, librdkafka clients) and the threads of the process
//! (`/proc/self/status`). Topics and groups are created by this process, under a prefix of
//! its own, and deleted at the end.
//!
//! Run: `eval "$(e2e/kafka.sh env)"; cargo bench -p kstreams-kafka --bench kafka_refresh`
//!
//! With `BENCH_ROWS` naming a file (`make bench`, e2e/bench.sh), the main figures are also
//! appended to it as tab-separated rows `kafka<TAB>measure<TAB>value<TAB>target`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use kstreams_kafka::{
    AppView, Checked, ClientPool, KafkaConnection, KafkaError, PoolConfig, check, check_cluster,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The big app: topics and partitions per topic.
const TOPICS: usize = 5;
const PARTITIONS: i32 = 100;
/// The many apps: how many at most, partitions per topic, and the sizes measured.
const APPS: usize = 500;
const APP_PARTITIONS: i32 = 2;
const SIZES: [usize; 3] = [1, 50, 500];
const TIMED_RUNS: usize = 10;
const CLUSTER_RUNS: usize = 5;
/// Topics per CreateTopics/DeleteTopics call, and groups committed at once.
const CHUNK: usize = 100;
const COMMITTERS: usize = 8;

type Requests = BTreeMap<(i32, &'static str), u64>;

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    config(bootstrap).create().expect("admin")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)))
}

/// What the bench creates, all under one prefix.
struct Fixture {
    bootstrap: String,
    /// The big app.
    big: AppView,
    big_topics: Vec<String>,
    /// The many apps, with their input and changelog topics.
    apps: Vec<AppView>,
    app_topics: Vec<String>,
}

impl Fixture {
    fn new(bootstrap: &str) -> Self {
        let run = format!("bench-{}", std::process::id());
        let big_id = format!("{run}-big");
        let inputs: Vec<String> = (0..TOPICS).map(|i| format!("{run}.big.in{i}")).collect();
        let mut big_topics = inputs.clone();
        big_topics.extend((0..TOPICS).map(|i| format!("{big_id}-store{i}-changelog")));
        let mut app_topics = Vec::new();
        let apps = (0..APPS)
            .map(|i| {
                let id = format!("{run}-app{i:03}");
                let input = format!("{run}.app{i:03}.in");
                app_topics.push(input.clone());
                app_topics.push(format!("{id}-store-changelog"));
                view(&id, vec![input])
            })
            .collect();
        Self {
            bootstrap: bootstrap.to_string(),
            big: view(&big_id, inputs),
            big_topics,
            apps,
            app_topics,
        }
    }

    /// Creates the topics, produces one record to every input partition and commits each
    /// group's offset at 0 everywhere: a processing lag of one record per input partition.
    async fn create(&self) {
        let admin = admin(&self.bootstrap);
        let topics: Vec<(&String, i32)> = self
            .big_topics
            .iter()
            .map(|t| (t, PARTITIONS))
            .chain(self.app_topics.iter().map(|t| (t, APP_PARTITIONS)))
            .collect();
        for chunk in topics.chunks(CHUNK) {
            let new: Vec<NewTopic<'_>> = chunk
                .iter()
                .map(|(name, partitions)| {
                    let t = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
                    if name.ends_with("-changelog") {
                        t.set("cleanup.policy", "compact")
                    } else {
                        t
                    }
                })
                .collect();
            for r in admin
                .create_topics(&new, &opts())
                .await
                .expect("create topics")
            {
                r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
            }
        }
        let mut groups: Vec<(String, Vec<String>, i32)> = vec![(
            self.big.application_id.clone(),
            self.big.input_topics.clone(),
            PARTITIONS,
        )];
        groups.extend(self.apps.iter().map(|a| {
            (
                a.application_id.clone(),
                a.input_topics.clone(),
                APP_PARTITIONS,
            )
        }));
        let producer: FutureProducer = config(&self.bootstrap)
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        let sends = groups.iter().flat_map(|(_, inputs, partitions)| {
            inputs
                .iter()
                .flat_map(move |t| (0..*partitions).map(move |p| (t, p)))
        });
        let sends = sends.map(|(t, p)| {
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(t).partition(p).key("k").payload("v"),
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("producing to {t}-{p}: {e}"));
            }
        });
        futures::future::join_all(sends).await;
        // One consumer per group commits (the broker takes a commit from outside a group
        // while it is Empty); a few at once.
        let bootstrap = self.bootstrap.clone();
        let per_worker = groups.len().div_ceil(COMMITTERS);
        let workers: Vec<_> = groups
            .chunks(per_worker)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                let bootstrap = bootstrap.clone();
                tokio::task::spawn_blocking(move || {
                    for (group, inputs, partitions) in chunk {
                        commit(&bootstrap, &group, &inputs, partitions);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("committer");
        }
    }

    /// Deletes the topics and groups.
    async fn delete(&self) {
        let admin = admin(&self.bootstrap);
        let topics: Vec<&str> = self
            .big_topics
            .iter()
            .chain(&self.app_topics)
            .map(String::as_str)
            .collect();
        for chunk in topics.chunks(CHUNK) {
            let _ = admin.delete_topics(chunk, &opts()).await;
        }
        let groups: Vec<&str> = std::iter::once(&self.big)
            .chain(&self.apps)
            .map(|a| a.application_id.as_str())
            .collect();
        for chunk in groups.chunks(CHUNK) {
            let _ = admin.delete_groups(chunk, &opts()).await;
        }
    }
}

fn view(id: &str, inputs: Vec<String>) -> AppView {
    AppView {
        application_id: id.to_string(),
        input_topics: inputs,
        pods: vec![],
        acceptable_recovery_lag: 10_000,
        streams_protocol: false,
    }
}

/// Commits `group`'s offset 0 on every partition of `inputs`. Blocking.
fn commit(bootstrap: &str, group: &str, inputs: &[String], partitions: i32) {
    let committer: BaseConsumer = config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    for t in inputs {
        for p in 0..partitions {
            tpl.add_partition_offset(t, p, Offset::Offset(0))
                .expect("offset");
        }
    }
    committer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing for {group}: {e}"));
}

/// Threads of this process now.
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `after - before`, requests never sent left out.
fn sent(after: &Requests, before: &Requests) -> Requests {
    after
        .iter()
        .map(|(k, n)| (*k, n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// `node 1: Metadata 1, ListGroups 1, ...; total 7`.
fn show(requests: &Requests) -> String {
    let mut by_node: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for ((node, api), n) in requests {
        by_node.entry(*node).or_default().push(format!("{api} {n}"));
    }
    let nodes: Vec<String> = by_node
        .into_iter()
        .map(|(node, apis)| format!("node {node}: {}", apis.join(", ")))
        .collect();
    format!(
        "{}; total {}",
        nodes.join("; "),
        requests.values().sum::<u64>()
    )
}

/// Min, median and max.
fn spread(times: &[Duration]) -> String {
    let mut times = times.to_vec();
    times.sort();
    format!(
        "min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}

/// The median, as `spread` prints it.
fn median(times: &[Duration]) -> Duration {
    let mut times = times.to_vec();
    times.sort();
    times[times.len() / 2]
}

/// Appends the row `kafka<TAB>measure<TAB>value<TAB>target` to the file `BENCH_ROWS` names,
/// if it names one (e2e/bench.sh's table); the printed output is unchanged either way.
fn row(measure: &str, value: &str, target: &str) {
    let Some(path) = std::env::var_os("BENCH_ROWS").filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format!("kafka\t{measure}\t{value}\t{target}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("appending a row to {}: {e}", path.to_string_lossy());
    }
}

fn total(requests: &Requests) -> u64 {
    requests.values().sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn held(pool: &ClientPool) -> String {
    let c = pool.open_clients();
    format!(
        "clients held: {} wire connections, {} librdkafka clients; threads: {}",
        c.wire_connections,
        c.librdkafka_clients,
        threads()
    )
}

/// The rows of `held`: wire connections (and librdkafka clients, when any) and threads.
fn held_rows(pool: &ClientPool, what: &str) {
    let c = pool.open_clients();
    let clients = if c.librdkafka_clients == 0 {
        String::new()
    } else {
        format!(", {} librdkafka clients", c.librdkafka_clients)
    };
    row(
        &format!("{what}: wire connections"),
        &format!("{}{clients}", c.wire_connections),
        "",
    );
    row(&format!("{what}: threads"), &threads().to_string(), "");
}

/// Every result a status with the seeded lag: a refresh that read what it should.
fn assert_read(results: &[Result<Checked, KafkaError>], apps: &[&AppView], partitions: i32) {
    for (r, app) in results.iter().zip(apps) {
        let c = r
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", app.application_id));
        let want = i64::from(partitions) * app.input_topics.len() as i64;
        assert_eq!(
            c.status.processing_lag_total,
            Some(want),
            "{}",
            app.application_id
        );
    }
}

async fn one_big_app(pool: &ClientPool, conn: &KafkaConnection, big: &AppView) {
    println!(
        "\n## one app of {} partitions ({} input, {} changelog)",
        2 * TOPICS as i32 * PARTITIONS,
        TOPICS as i32 * PARTITIONS,
        TOPICS as i32 * PARTITIONS
    );
    let started = Instant::now();
    let first = check(pool, conn, big, None).await;
    println!(
        "first refresh (connections opened): {:.1} ms",
        ms(started.elapsed())
    );
    assert_read(&[first], &[big], PARTITIONS);
    let mut times = Vec::with_capacity(TIMED_RUNS);
    for _ in 0..TIMED_RUNS {
        let t = Instant::now();
        check(pool, conn, big, None).await.expect("refresh");
        times.push(t.elapsed());
    }
    println!(
        "time per refresh over {TIMED_RUNS} runs: {}",
        spread(&times)
    );
    let before = pool.wire_requests(conn);
    check(pool, conn, big, None).await.expect("refresh");
    let requests = sent(&pool.wire_requests(conn), &before);
    println!("requests per refresh: {}", show(&requests));
    println!("{}", held(pool));
    let what = format!("one app of {} partitions", 2 * TOPICS as i32 * PARTITIONS);
    row(
        &format!("{what}: median refresh ({TIMED_RUNS} runs)"),
        &format!("{:.1} ms", ms(median(&times))),
        "<= 100 ms",
    );
    row(
        &format!("{what}: requests per refresh"),
        &total(&requests).to_string(),
        "",
    );
}

async fn many_apps(pool: &ClientPool, conn: &KafkaConnection, apps: &[AppView], n: usize) {
    let views: Vec<&AppView> = apps[..n].iter().collect();
    let batch: Vec<(&AppView, Option<&kstreams_kafka::Baseline>)> =
        views.iter().map(|v| (*v, None)).collect();
    println!("\n## {n} apps of one cluster");
    // Warm-up (not timed).
    assert_read(
        &check_cluster(pool, conn, &batch).await,
        &views,
        APP_PARTITIONS,
    );
    let mut times = Vec::with_capacity(CLUSTER_RUNS);
    for _ in 0..CLUSTER_RUNS {
        let t = Instant::now();
        let out = check_cluster(pool, conn, &batch).await;
        times.push(t.elapsed());
        assert_read(&out, &views, APP_PARTITIONS);
    }
    println!(
        "one check_cluster of all {n}, over {CLUSTER_RUNS} runs: {}",
        spread(&times)
    );
    let before = pool.wire_requests(conn);
    check_cluster(pool, conn, &batch).await;
    let requests = sent(&pool.wire_requests(conn), &before);
    println!("requests per refresh: {}", show(&requests));
    println!("{}", held(pool));
    let what = format!("{n} app{}, one round", if n == 1 { "" } else { "s" });
    row(
        &format!("{what}: median refresh ({CLUSTER_RUNS} runs)"),
        &format!("{:.1} ms", ms(median(&times))),
        "",
    );
    row(
        &format!("{what}: requests per refresh"),
        &total(&requests).to_string(),
        "independent of apps",
    );
    held_rows(pool, &what);

    let before = pool.wire_requests(conn);
    let t = Instant::now();
    let mut out = Vec::with_capacity(n);
    for v in &views {
        out.push(check(pool, conn, v, None).await);
    }
    let took = t.elapsed();
    assert_read(&out, &views, APP_PARTITIONS);
    let requests = sent(&pool.wire_requests(conn), &before);
    println!(
        "for comparison, {n} checks one after the other: {:.1} ms, {} requests ({:.1} per app)",
        ms(took),
        requests.values().sum::<u64>(),
        requests.values().sum::<u64>() as f64 / n as f64
    );
    if n == APPS {
        let what = format!("{n} apps, one by one");
        row(
            &format!("{what}: total time"),
            &format!("{:.1} ms", ms(took)),
            "",
        );
        row(
            &format!("{what}: requests"),
            &total(&requests).to_string(),
            "",
        );
    }
}

async fn measure(bootstrap: &str, fixture: &Fixture) {
    println!(
        "threads before the pool: {} (main, and the runtime's workers)",
        threads()
    );
    let pool = ClientPool::new(PoolConfig::default());
    let conn = KafkaConnection::plaintext(bootstrap);
    one_big_app(&pool, &conn, &fixture.big).await;
    for n in SIZES {
        many_apps(&pool, &conn, &fixture.apps, n).await;
    }
}

fn main() {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP")
        .expect("KAFKA_BOOTSTRAP is not set: run `eval \"$(e2e/kafka.sh env)\"` first");
    let fixture = Fixture::new(&bootstrap);
    // Setup and cleanup run on a runtime of their own, gone (with its blocking threads and
    // librdkafka clients) while the pool is measured.
    let setup = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    setup.block_on(fixture.create());
    println!(
        "setup: one app of {} partitions and {APPS} apps of {} partitions each, with committed \
         groups, in {:.1} s",
        2 * TOPICS as i32 * PARTITIONS,
        2 * APP_PARTITIONS,
        started.elapsed().as_secs_f64()
    );
    setup.shutdown_timeout(Duration::from_secs(30));

    let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(measure(&bootstrap, &fixture));
    }));

    // Deleted whatever the measurement came to.
    let cleanup = tokio::runtime::Runtime::new().expect("runtime");
    cleanup.block_on(fixture.delete());
    if let Err(panic) = measured {
        std::panic::resume_unwind(panic);
    }
}
