//! A word count to reset: known lines and the counts they make, the app started on them, and
//! readers of what a reset leaves behind: the counts written since an offset, the group's
//! committed offsets and the reset's Events.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kstreams_operator::crd::{ResetPhase, StreamApp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::local_pods::{example_jar, wordcount_app};
use crate::{Kafka, LocalPods, TestNamespace, is, wait_for};

/// How long an app may take to start, count or reset on a loaded CI machine.
pub const LONG: Duration = Duration::from_secs(300);

/// The words of `lines` and how often each occurs.
pub fn counts(lines: &[&str]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for w in lines.iter().flat_map(|l| l.split_whitespace()) {
        *out.entry(w.to_lowercase()).or_insert(0) += 1;
    }
    out
}

/// Produces `lines` to `topic`, all to `partition` (so their order is kept) or spread, each
/// with `timestamp` (epoch ms) when given.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    partition: Option<i32>,
    lines: &[&str],
    timestamp: Option<i64>,
) {
    let producer: FutureProducer = Kafka::config(bootstrap).create().expect("producer");
    for (i, line) in lines.iter().enumerate() {
        let key = i.to_string();
        let mut record = FutureRecord::to(topic).key(&key).payload(*line);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }
}

/// The high watermark of each partition of `topic`: where records written from now on start.
pub fn ends(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    watermarks(bootstrap, topic)
        .into_iter()
        .map(|(p, (_, high))| (p, high))
        .collect()
}

/// The low and high watermark of each partition of `topic`.
pub fn watermarks(bootstrap: &str, topic: &str) -> BTreeMap<i32, (i64, i64)> {
    let c: BaseConsumer = Kafka::config(bootstrap).create().expect("consumer");
    let timeout = Duration::from_secs(10);
    let md = c
        .fetch_metadata(Some(topic), timeout)
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions
        .into_iter()
        .map(|p| {
            let w = c
                .fetch_watermarks(topic, p, timeout)
                .unwrap_or_else(|e| panic!("watermarks of {topic}/{p}: {e}"));
            (p, w)
        })
        .collect()
}

/// The committed offset and commit metadata of `group` on each partition of `topic` that
/// has one.
pub fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, (i64, String)> {
    let c: BaseConsumer = Kafka::config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in watermarks(bootstrap, topic).keys() {
        tpl.add_partition(topic, *p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("committed offsets of {group}: {e}"));
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), (o, e.metadata().to_string()))),
            _ => None,
        })
        .collect()
}

/// The counts the app writes to `output` from `from` (partition -> offset) on.
pub struct CountReader {
    consumer: StreamConsumer,
    /// The latest count of each word read so far.
    pub seen: BTreeMap<String, i64>,
}

impl CountReader {
    /// Reads `output` from the offsets in `from`.
    pub fn from(bootstrap: &str, output: &str, from: &BTreeMap<i32, i64>) -> Self {
        let consumer: StreamConsumer = Kafka::config(bootstrap)
            .set("group.id", crate::unique("count-reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for (p, o) in from {
            tpl.add_partition_offset(output, *p, Offset::Offset(*o))
                .expect("an offset to read from");
        }
        consumer.assign(&tpl).expect("assigning the output");
        Self {
            consumer,
            seen: BTreeMap::new(),
        }
    }

    /// Reads until the latest count of every word of `want` equals it; panics at once on a
    /// count above it (counts only grow, so a double count shows as soon as it is written),
    /// and with what it saw on timeout.
    pub async fn await_counts(&mut self, want: &BTreeMap<String, i64>, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while want.iter().any(|(w, c)| self.seen.get(w) != Some(c)) {
            let msg = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(msg) => msg.unwrap_or_else(|e| panic!("consuming counts: {e}")),
                Err(_) => panic!("timed out waiting for counts {want:?}; saw {:?}", self.seen),
            };
            let word = String::from_utf8_lossy(msg.key().unwrap_or_default()).to_string();
            let bytes: [u8; 8] = msg
                .payload()
                .unwrap_or_default()
                .try_into()
                .unwrap_or_else(|_| panic!("count of {word:?} is not a Long"));
            let count = i64::from_be_bytes(bytes);
            if let Some(max) = want.get(&word) {
                assert!(
                    count <= *max,
                    "{word} counted {count} times, expected {max}: counted twice"
                );
            }
            self.seen.insert(word, count);
        }
    }
}

/// A word count of 2 instances on a 3-partition input of its own, in a namespace of its own,
/// with the stand-in running its pods; no operator (the test starts the one it needs).
pub struct ResetWorld {
    /// The namespace.
    pub ns: TestNamespace,
    /// The broker and the test's topic prefix.
    pub kafka: Kafka,
    /// The input topic.
    pub input: String,
    /// The output topic.
    pub output: String,
    /// The application.id (and group).
    pub app_id: String,
    /// The StreamApps of the namespace.
    pub apps: Api<StreamApp>,
    /// The stand-in.
    pub local: LocalPods,
}

/// The app's name in every reset test.
pub const APP: &str = "wc";

impl ResetWorld {
    /// Topics, namespace and stand-in for `test`.
    pub async fn new(client: &Client, test: &str) -> Self {
        example_jar();
        let ns = TestNamespace::new(client, test).await;
        let kafka = Kafka::new(test);
        let input = kafka.create_topic("lines", 3, &[]).await;
        let output = kafka.create_topic("counts", 3, &[]).await;
        let app_id = format!("{}.{APP}", kafka.prefix);
        let local = LocalPods::start(client, &ns.name, &[]);
        let apps = ns.api::<StreamApp>();
        Self {
            ns,
            kafka,
            input,
            output,
            app_id,
            apps,
            local,
        }
    }

    /// The word count as the tests run it.
    pub fn app(&self) -> StreamApp {
        wordcount_app(
            APP,
            &self.app_id,
            &self.kafka.bootstrap,
            &self.input,
            &self.output,
        )
    }

    /// Creates `app` and waits until it is Ready.
    pub async fn create(&self, app: &StreamApp) -> StreamApp {
        self.apps
            .create(&PostParams::default(), app)
            .await
            .expect("creating the StreamApp");
        self.ready().await
    }

    /// Waits until the app is Ready at its current spec.
    pub async fn ready(&self) -> StreamApp {
        wait_for(&self.apps, APP, "Ready", LONG, |a| is(a, "Ready", "True")).await
    }

    /// Merges `spec` into the app's spec.
    pub async fn patch_spec(&self, spec: serde_json::Value) {
        self.apps
            .patch(
                APP,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .expect("patching the spec");
    }

    /// Waits until the reset `id` is in `phase`.
    pub async fn reset_in(&self, id: &str, phase: ResetPhase) -> StreamApp {
        wait_for(
            &self.apps,
            APP,
            &format!("reset {id} {phase:?}"),
            LONG,
            |a| {
                a.status
                    .as_ref()
                    .and_then(|s| s.reset.as_ref())
                    .is_some_and(|r| r.id == id && r.phase == phase)
            },
        )
        .await
    }

    /// As [`ResetWorld::reset_events`], once an Event with reason `last` is there: the
    /// operator publishes a step's Events after the status recording it, so they may trail it.
    pub async fn reset_events_through(&self, uid: &str, last: &str) -> BTreeMap<String, i32> {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            let events = self.reset_events(uid).await;
            if events.contains_key(last) {
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {last} Event; saw {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many Events of each `Reset*` reason the StreamApp with `uid` got, counting the
    /// repeats an Event series records.
    pub async fn reset_events(&self, uid: &str) -> BTreeMap<String, i32> {
        let events = self
            .ns
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("listing Events");
        let mut out = BTreeMap::new();
        for e in events.items {
            let about = e.regarding.as_ref().and_then(|r| r.uid.as_deref());
            let reason = e.reason.clone().unwrap_or_default();
            if about == Some(uid) && reason.starts_with("Reset") {
                let n = e.series.as_ref().map_or(1, |s| s.count.max(1));
                *out.entry(reason).or_insert(0) += n;
            }
        }
        out
    }

    /// The uid of each state claim of the app.
    pub async fn claim_uids(&self) -> BTreeMap<String, String> {
        let claims = self
            .ns
            .api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>()
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={APP}")))
            .await
            .expect("listing claims");
        claims
            .items
            .iter()
            .map(|c| (c.name_any(), c.uid().unwrap_or_default()))
            .collect()
    }
}

/// The phases of the app's reset steps, in order.
pub fn steps(app: &StreamApp) -> Vec<ResetPhase> {
    app.status
        .as_ref()
        .and_then(|s| s.reset.as_ref())
        .map(|r| r.steps.iter().map(|s| s.phase).collect())
        .unwrap_or_default()
}

/// The detail of the app's reset step `phase`.
pub fn detail(app: &StreamApp, phase: ResetPhase) -> String {
    app.status
        .as_ref()
        .and_then(|s| s.reset.as_ref())
        .and_then(|r| r.steps.iter().find(|s| s.phase == phase))
        .map(|s| s.detail.clone())
        .unwrap_or_default()
}
