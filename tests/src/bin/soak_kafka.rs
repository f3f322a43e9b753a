//! The Kafka side of `make soak` (e2e/soak.sh), from one process: `seed PREFIX COUNT` creates,
//! for each app `PREFIX-app-<i>` (i = 1..=COUNT), an input topic `PREFIX-app-<i>.in` and a
//! changelog `PREFIX-app-<i>-counts-changelog` (2 partitions each), 3 records in every input
//! partition and the app's consumer group with the end offset 3 committed on each (no lag, so
//! no app is ever stalled: the steady state of apps that keep up); `clean PREFIX COUNT` deletes those topics and groups. The broker is
//! `KAFKA_BOOTSTRAP`. One process rather than one Kafka tool run (one JVM) per group: 200 JVM
//! starts would take longer than the soak itself on a 2-core machine.

use std::process::ExitCode;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;
const RECORDS_PER_PARTITION: i32 = 3;
const COMMITTED_OFFSET: i64 = RECORDS_PER_PARTITION as i64;
/// Topics per CreateTopics/DeleteTopics request: keeps each request well inside its timeout.
const BATCH: usize = 100;
/// Groups committed at once, each by its own short-lived consumer.
const PARALLEL_COMMITS: usize = 16;
const TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (verb, prefix, count) = match args.as_slice() {
        [verb, prefix, count] => match count.parse::<usize>() {
            Ok(n) => (verb.as_str(), prefix.as_str(), n),
            Err(_) => return usage(&format!("COUNT {count:?} is not a number")),
        },
        _ => return usage("expected 3 arguments"),
    };
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        return usage("KAFKA_BOOTSTRAP is not set (eval \"$(e2e/kafka.sh env)\")");
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak_kafka: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let apps: Vec<App> = (1..=count).map(|i| App::new(prefix, i)).collect();
    let result = match verb {
        "seed" => runtime.block_on(seed(&bootstrap, &apps)),
        "clean" => runtime.block_on(clean(&bootstrap, &apps)),
        other => return usage(&format!("unknown verb {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak_kafka {verb}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("soak_kafka: {why}\nusage: soak_kafka seed|clean PREFIX COUNT");
    ExitCode::from(2)
}

/// The Kafka names of one soak app.
struct App {
    group: String,
    input: String,
    changelog: String,
}

impl App {
    fn new(prefix: &str, i: usize) -> Self {
        let group = format!("{prefix}-app-{i}");
        Self {
            input: format!("{group}.in"),
            changelog: format!("{group}-counts-changelog"),
            group,
        }
    }
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, String> {
    config(bootstrap)
        .create()
        .map_err(|e| format!("admin client for {bootstrap}: {e}"))
}

async fn seed(bootstrap: &str, apps: &[App]) -> Result<(), String> {
    let admin = admin(bootstrap)?;
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let mut topics = Vec::new();
    for app in apps {
        topics.push(NewTopic::new(
            &app.input,
            PARTITIONS,
            TopicReplication::Fixed(1),
        ));
        topics.push(
            NewTopic::new(&app.changelog, PARTITIONS, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact"),
        );
    }
    for batch in topics.chunks(BATCH) {
        let results = admin
            .create_topics(batch, &opts)
            .await
            .map_err(|e| format!("creating topics: {e}"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => return Err(format!("creating topic {t}: {e}")),
            }
        }
    }
    eprintln!("soak_kafka: {} topics present", topics.len());

    let producer: FutureProducer = config(bootstrap)
        .set("linger.ms", "20")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let sends = apps.iter().flat_map(|app| {
        let producer = &producer;
        (0..PARTITIONS).flat_map(move |p| {
            (0..RECORDS_PER_PARTITION).map(move |n| async move {
                let payload = format!("soak record {n}");
                producer
                    .send(
                        FutureRecord::<(), str>::to(&app.input)
                            .partition(p)
                            .payload(&payload),
                        TIMEOUT,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| format!("producing to {}-{p}: {e}", app.input))
            })
        })
    });
    join_all(sends)
        .await
        .into_iter()
        .collect::<Result<(), _>>()?;
    eprintln!(
        "soak_kafka: {} records produced",
        apps.len() * (PARTITIONS * RECORDS_PER_PARTITION) as usize
    );

    for chunk in apps.chunks(PARALLEL_COMMITS) {
        let commits = chunk.iter().map(|app| {
            let (bootstrap, group, input) =
                (bootstrap.to_string(), app.group.clone(), app.input.clone());
            tokio::task::spawn_blocking(move || commit(&bootstrap, &group, &input))
        });
        for r in join_all(commits).await {
            r.map_err(|e| format!("commit task: {e}"))??;
        }
    }
    eprintln!("soak_kafka: {} groups committed", apps.len());
    Ok(())
}

/// Commits `COMMITTED_OFFSET` on every partition of `input` for `group`, as a consumer outside
/// the group does (this creates the group, with no member).
fn commit(bootstrap: &str, group: &str, input: &str) -> Result<(), String> {
    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("consumer for group {group}: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(input, p, Offset::Offset(COMMITTED_OFFSET))
            .map_err(|e| format!("partition {input}-{p}: {e}"))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| format!("committing for group {group}: {e}"))
}

async fn clean(bootstrap: &str, apps: &[App]) -> Result<(), String> {
    let admin = admin(bootstrap)?;
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let groups: Vec<&str> = apps.iter().map(|a| a.group.as_str()).collect();
    let mut failed = Vec::new();
    for batch in groups.chunks(BATCH) {
        let results = admin
            .delete_groups(batch, &opts)
            .await
            .map_err(|e| format!("deleting groups: {e}"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((g, e)) => failed.push(format!("group {g}: {e}")),
            }
        }
    }
    let topics: Vec<&str> = apps
        .iter()
        .flat_map(|a| [a.input.as_str(), a.changelog.as_str()])
        .collect();
    for batch in topics.chunks(BATCH) {
        let results = admin
            .delete_topics(batch, &opts)
            .await
            .map_err(|e| format!("deleting topics: {e}"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((t, e)) => failed.push(format!("topic {t}: {e}")),
            }
        }
    }
    if failed.is_empty() {
        eprintln!(
            "soak_kafka: {} groups and {} topics deleted",
            groups.len(),
            topics.len()
        );
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}
