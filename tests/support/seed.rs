//! A live word count with state worth protecting: seeded input (distinct words, so every
//! task's changelog holds thousands of records), a trickle of lines that keeps every task
//! committing, the app run by the stand-in with an in-process operator, and recorders that keep
//! every version of an object a watch delivered, to assert on what happened in between.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::EnvVar;
use kstreams_operator::crd::StreamApp;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::de::DeserializeOwned;

use crate::local_pods::{example_jar, wordcount_app};
use crate::{Kafka, LocalPods, Operator, TestNamespace, client, is, wait_for};

/// Now, in epoch milliseconds: the clock of the pods' `at=` log fields.
pub fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}

/// Produces `words` distinct words (`w0000001`, ...), ten to a line, the lines spread over
/// `partitions` partitions of `topic`.
pub async fn seed_words(bootstrap: &str, topic: &str, partitions: i32, words: usize) {
    let producer: FutureProducer = Kafka::config(bootstrap)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let lines: Vec<String> = (1..=words)
        .collect::<Vec<_>>()
        .chunks(10)
        .map(|c| {
            c.iter()
                .map(|i| format!("w{i:07}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let sends = lines.iter().enumerate().map(|(i, line)| {
        let producer = &producer;
        async move {
            producer
                .send(
                    FutureRecord::<(), str>::to(topic)
                        .partition(i as i32 % partitions)
                        .payload(line),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    for r in futures::future::join_all(sends).await {
        r.expect("seeding a line");
    }
}

/// A line every 150 ms to each partition in turn, until dropped: every task keeps
/// committing, so a restored one is seen restored.
pub struct Trickle(tokio::task::JoinHandle<()>);

impl Trickle {
    /// Starts producing to `topic`.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> Self {
        let producer: FutureProducer = Kafka::config(bootstrap)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        let topic = topic.to_string();
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(150));
            for i in 0u64.. {
                tick.tick().await;
                let line = format!("tick t{}", i % 50);
                let _ = producer
                    .send(
                        FutureRecord::<(), str>::to(&topic)
                            .partition((i % partitions as u64) as i32)
                            .payload(&line),
                        Duration::from_secs(5),
                    )
                    .await;
            }
        }))
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One version of an object as a watch delivered it.
#[derive(Debug, Clone)]
pub struct Seen<K> {
    /// When the test received it (epoch ms).
    pub at: i64,
    /// The object.
    pub object: K,
    /// A deletion event (the object is gone).
    pub deleted: bool,
}

/// Records every version of the objects a watch delivers, in the watch's order, until dropped.
pub struct Recorder<K> {
    seen: Arc<Mutex<Vec<Seen<K>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<K> Recorder<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    /// Starts watching `api` with `config`; returns once the initial list is recorded, so
    /// nothing that happens afterwards is missed.
    pub async fn start(api: Api<K>, config: watcher::Config) -> Self {
        let seen: Arc<Mutex<Vec<Seen<K>>>> = Arc::default();
        let (listed, on_listed) = tokio::sync::oneshot::channel();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut listed = Some(listed);
            let stream = watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let (object, deleted) = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    Ok(watcher::Event::InitDone) => {
                        if let Some(l) = listed.take() {
                            let _ = l.send(());
                        }
                        continue;
                    }
                    _ => continue,
                };
                record.lock().unwrap().push(Seen {
                    at: now_ms(),
                    object,
                    deleted,
                });
            }
        });
        tokio::time::timeout(Duration::from_secs(30), on_listed)
            .await
            .expect("the watch listed within 30 s")
            .expect("the watch listed");
        Self { seen, task }
    }

    /// What was recorded so far.
    pub fn seen(&self) -> Vec<Seen<K>> {
        self.seen.lock().unwrap().clone()
    }
}

impl<K> Drop for Recorder<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One state load in a pod's log: an active restore (`RESTORE-START` .. `RESTORED` or
/// `RESTORE-SUSPENDED`) or a standby/warm-up load (`STANDBY-START` .. `STANDBY-CAUGHT-UP` or
/// `STANDBY-SUSPENDED`), in epoch ms; `end` is `None` while it goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// The pod.
    pub pod: String,
    /// The changelog partition, `<topic>-<n>`.
    pub partition: String,
    /// A standby or warm-up load rather than an active restore.
    pub standby: bool,
    /// Records to restore (`end - start` of `RESTORE-START`); `None` for standbys.
    pub records: Option<i64>,
    /// When it began.
    pub start: i64,
    /// When it ended.
    pub end: Option<i64>,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

/// The loads `pod`'s log tells of (see `RestoreLog.java` for the lines).
pub fn loads(pod: &str, log: &str) -> Vec<Load> {
    let mut open: std::collections::BTreeMap<(bool, String), (i64, Option<i64>)> =
        Default::default();
    let mut out = Vec::new();
    for line in log.lines() {
        let kind = line.split_whitespace().next().unwrap_or("");
        let (standby, starts) = match kind {
            "RESTORE-START" => (false, true),
            "RESTORED" | "RESTORE-SUSPENDED" => (false, false),
            "STANDBY-START" => (true, true),
            "STANDBY-CAUGHT-UP" | "STANDBY-SUSPENDED" => (true, false),
            _ => continue,
        };
        let (Some(partition), Some(at)) = (
            field(line, "partition"),
            field(line, "at").and_then(|a| a.parse::<i64>().ok()),
        ) else {
            continue;
        };
        let key = (standby, partition.to_string());
        if starts {
            let records = field(line, "start")
                .and_then(|s| s.parse::<i64>().ok())
                .zip(field(line, "end").and_then(|e| e.parse::<i64>().ok()))
                .map(|(s, e)| e - s);
            open.insert(key, (at, records.filter(|_| !standby)));
        } else if let Some((start, records)) = open.remove(&key) {
            out.push(Load {
                pod: pod.into(),
                partition: partition.into(),
                standby,
                records,
                start,
                end: Some(at),
            });
        }
    }
    out.extend(
        open.into_iter()
            .map(|((standby, partition), (start, records))| Load {
                pod: pod.into(),
                partition,
                standby,
                records,
                start,
                end: None,
            }),
    );
    out
}

/// The loads in the current logs of `pods`.
pub fn pod_loads(local: &LocalPods, pods: &[String]) -> Vec<Load> {
    pods.iter()
        .flat_map(|p| {
            let log = std::fs::read_to_string(local.log_path(p)).unwrap_or_default();
            loads(p, &log)
        })
        .collect()
}

/// How a [`LiveApp`] is made.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    /// Instances.
    pub replicas: i32,
    /// `spec.standbyReplicas`.
    pub standby_replicas: i32,
    /// Distinct words seeded before the app starts.
    pub words: usize,
    /// Partitions of the input (and so tasks per subtopology).
    pub partitions: i32,
    /// More environment for the container (`WORDCOUNT_...` knobs).
    pub env: Vec<(String, String)>,
}

impl Default for LiveSpec {
    fn default() -> Self {
        Self {
            replicas: 3,
            standby_replicas: 0,
            words: 30_000,
            partitions: 3,
            env: Vec::new(),
        }
    }
}

/// A live word count: Ready with every pod a member and the seed processed, the trickle on.
pub struct LiveApp {
    /// The app's name.
    pub name: String,
    /// The StreamApps of the test namespace.
    pub apps: Api<StreamApp>,
    /// The broker and the test's topic prefix.
    pub kafka: Kafka,
    /// The input topic.
    pub input: String,
    _trickle: Trickle,
    /// The stand-in running the pods.
    pub local: LocalPods,
    _operator: Operator,
    /// The test namespace.
    pub ns: TestNamespace,
}

impl LiveApp {
    /// The app's pod names, `<name>-0` ..
    pub fn pod_names(&self, n: i32) -> Vec<String> {
        (0..n).map(|o| format!("{}-{o}", self.name)).collect()
    }

    /// The label selector of the app's pods.
    pub fn pod_selector(&self) -> String {
        format!("app.kubernetes.io/instance={}", self.name)
    }
}

/// Starts the word count `name` as `spec` says, in a namespace of its own; waits (up to
/// `startup`) until it is Ready, every pod a member, nothing restoring and the seed processed.
pub async fn live_app(test: &str, name: &str, spec: LiveSpec, startup: Duration) -> LiveApp {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, test).await;
    let kafka = Kafka::new(test);
    let input = kafka.create_topic("lines", spec.partitions, &[]).await;
    let output = kafka.create_topic("counts", spec.partitions, &[]).await;
    seed_words(&kafka.bootstrap, &input, spec.partitions, spec.words).await;
    let operator = Operator::start(&client, &ns.name).await;
    let local = LocalPods::start(&client, &ns.name, &[]);
    let app_id = format!("{}.{name}", kafka.prefix);
    let mut app = wordcount_app(name, &app_id, &kafka.bootstrap, &input, &output);
    app.spec.replicas = spec.replicas;
    app.spec.standby_replicas = spec.standby_replicas;
    for (k, v) in [
        // A few thousand records behind is not caught up.
        ("acceptable.recovery.lag", "1000"),
        // Warm-up replicas are promoted as soon as Kafka Streams allows.
        ("probing.rebalance.interval.ms", "60000"),
        // Small restore batches, so WORDCOUNT_RESTORE_DELAY_MS throttles finely.
        ("restore.consumer.max.poll.records", "100"),
    ] {
        app.spec.config.insert(k.into(), v.into());
    }
    for (k, v) in &spec.env {
        app.spec.env.push(EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..EnvVar::default()
        });
    }
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let replicas = spec.replicas as usize;
    wait_for(
        &apps,
        name,
        "Ready, every pod a member, nothing restoring, the seed processed",
        startup,
        |a| {
            is(a, "Ready", "True")
                && !is(a, "Restoring", "True")
                && a.status
                    .as_ref()
                    .and_then(|s| s.kafka.as_ref())
                    .is_some_and(|k| {
                        k.pods.iter().filter(|p| p.members > 0).count() == replicas
                            && k.processing_lag_total.is_some_and(|l| l < 200)
                    })
        },
    )
    .await;
    let trickle = Trickle::start(&kafka.bootstrap, &input, spec.partitions);
    LiveApp {
        name: name.to_string(),
        apps,
        kafka,
        input,
        _trickle: trickle,
        local,
        _operator: operator,
        ns,
    }
}
