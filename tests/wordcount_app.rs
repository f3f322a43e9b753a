//! The example word-count app run by the operator: real Kafka Streams members (local JVMs
//! run by the stand-in kubelet for the kwok pods) with the settings and volumes the operator
//! gives them, their own addresses, and readiness from their own endpoint.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::{Kafka, LocalPods, Operator, TestNamespace, client, is, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kstreams_operator::crd::StreamApp;
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const APP: &str = "wordcount";
const PODS: [&str; 2] = ["wordcount-0", "wordcount-1"];
/// A JVM start plus a Kafka Streams join and rebalance, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(180);
const SETTLE: Duration = Duration::from_secs(120);

const LINES: &[&str] = &[
    "The quick brown fox",
    "jumps over the lazy dog",
    "THE DOG barks; the fox runs",
];
const COUNTS: &[(&str, i64)] = &[
    ("the", 4),
    ("quick", 1),
    ("brown", 1),
    ("fox", 2),
    ("jumps", 1),
    ("over", 1),
    ("lazy", 1),
    ("dog", 2),
    ("barks", 1),
    ("runs", 1),
];

fn wordcount(app_id: &str, bootstrap: &str, input: &str, output: &str) -> StreamApp {
    let mut app = wordcount_app(APP, app_id, bootstrap, input, output);
    app.spec.state.storage = "1Gi".into();
    app.spec.state.mount_path = "/data/count-store".into();
    app
}

/// Retries `check` until it returns `Ok` or `timeout` passes; panics with the last error.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {e}")
            }
            Err(_) => {}
        }
    }
}

/// The client ids of the members of a Stable consumer group.
fn stable_members(kafka: &Kafka, group: &str) -> Result<Vec<String>, String> {
    let list = tokio::task::block_in_place(|| {
        kafka
            .admin
            .inner()
            .fetch_group_list(Some(group), Duration::from_secs(10))
    })
    .map_err(|e| format!("listing group {group}: {e}"))?;
    let g = (list.groups().iter().find(|g| g.name() == group))
        .ok_or_else(|| format!("no group {group}"))?;
    let members: Vec<String> = g
        .members()
        .iter()
        .map(|m| m.client_id().to_string())
        .collect();
    if g.state() != "Stable" {
        return Err(format!("group {group} is {} with {members:?}", g.state()));
    }
    Ok(members)
}

fn topic_names(kafka: &Kafka) -> Vec<String> {
    let md = tokio::task::block_in_place(|| {
        kafka
            .admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
    })
    .unwrap_or_else(|e| panic!("fetching topic metadata: {e}"));
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

async fn produce(kafka: &Kafka, topic: &str, lines: &[&str]) {
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().unwrap();
    for (i, line) in lines.iter().enumerate() {
        let key = i.to_string();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(*line),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }
}

/// Reads counts until the latest count of every word equals `want`; panics with what it
/// saw on timeout (an overcount fails at once: counts only grow).
async fn await_counts(
    consumer: &StreamConsumer,
    seen: &mut BTreeMap<String, i64>,
    want: &[(&str, i64)],
) {
    let want: BTreeMap<String, i64> = want.iter().map(|(w, c)| (w.to_string(), *c)).collect();
    let deadline = tokio::time::Instant::now() + SETTLE;
    while want.iter().any(|(w, c)| seen.get(w) != Some(c)) {
        let msg = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(msg) => msg.unwrap_or_else(|e| panic!("consuming counts: {e}")),
            Err(_) => panic!("timed out waiting for counts {want:?}; saw {seen:?}"),
        };
        let word = String::from_utf8(msg.key().unwrap_or_default().to_vec()).unwrap();
        let bytes: [u8; 8] = (msg.payload().unwrap_or_default().try_into())
            .unwrap_or_else(|_| panic!("count of {word:?} is not a Long: {:?}", msg.payload()));
        let count = i64::from_be_bytes(bytes);
        if let Some(max) = want.get(&word) {
            assert!(
                count <= *max,
                "{word} counted {count} times, expected {max}"
            );
        }
        seen.insert(word, count);
    }
}

fn find_dir(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let path = e.path();
            path.is_dir() && (e.file_name() == name || find_dir(&path, name))
        })
}

/// The record counts of Kafka Streams' "Finished restoring changelog ..." log lines.
fn restored_records(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("Finished restoring changelog"))
        .filter_map(|l| {
            l.split("total number of ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// `GET http://<addr>:8080<path>` with curl; the body, or why there is none.
async fn http_get(addr: std::net::Ipv4Addr, path: &str) -> Result<String, String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--max-time", "10"])
        .arg(format!("http://{addr}:8080{path}"))
        .output()
        .await
        .map_err(|e| format!("running curl: {e}"))?;
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(body)
    } else {
        Err(format!("{body}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// `"key":"value"` or `"key":number` of a flat JSON object, as text.
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = json.split(&format!("\"{key}\":")).nth(1)?;
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

fn pod_ready(pod: &Pod) -> bool {
    (pod.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten()))
    .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_count_words_with_their_state_on_their_volumes() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "wordcount-app").await;
    let kafka = Kafka::new("wordcount-app");
    let input = kafka.create_topic("lines", 2, &[]).await;
    let output = kafka.create_topic("counts", 2, &[]).await;
    let app_id = format!("{}.wordcount", kafka.prefix);
    let _operator = Operator::start(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    apps.create(
        &PostParams::default(),
        &wordcount(&app_id, &kafka.bootstrap, &input, &output),
    )
    .await
    .unwrap();
    let local = LocalPods::start(&client, &ns.name, &[]);

    for pod in PODS {
        let log = local.wait_log(pod, "-> RUNNING", STARTUP).await;
        assert!(
            log.contains("CONFIG loaded ") && log.contains("streams.properties"),
            "{pod} did not read the operator's streams.properties"
        );
        let state = local.claim_dir(&format!("state-{pod}")).await.join(&app_id);
        assert!(
            state.is_dir(),
            "{pod} keeps no state in its volume: {state:?}"
        );
    }

    let members = eventually("both members in the Stable group", SETTLE, || async {
        let members = stable_members(&kafka, &app_id)?;
        let by_pod = |pod: &str| members.iter().filter(|c| c.starts_with(pod)).count();
        if members.len() == 2 && PODS.iter().all(|p| by_pod(p) == 1) {
            Ok(members)
        } else {
            Err(format!("members {members:?}"))
        }
    })
    .await;
    eprintln!("group {app_id}: members {members:?}");
    // Ready pods through their own /ready endpoint, and so the app.
    let pods = ns.api::<Pod>();
    for pod in PODS {
        wait_for(
            &pods,
            pod,
            "pod Ready by its readiness probe",
            SETTLE,
            pod_ready,
        )
        .await;
    }
    wait_for(&apps, APP, "StreamApp Ready", SETTLE, |a| {
        is(a, "Ready", "True")
    })
    .await;

    let topics = topic_names(&kafka);
    for internal in ["counts-changelog", "counts-repartition"] {
        let name = format!("{app_id}-{internal}");
        assert!(topics.contains(&name), "no topic {name} among {topics:?}");
    }

    let consumer: StreamConsumer = Kafka::config(&kafka.bootstrap)
        .set("group.id", format!("{}.reader", kafka.prefix))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&output]).unwrap();
    let mut seen = BTreeMap::new();
    produce(&kafka, &input, LINES).await;
    await_counts(&consumer, &mut seen, COUNTS).await;

    // Both pods serve port 8080, each on its own address; a word another instance holds is
    // fetched from it through its application.server name.
    let addresses = PODS.map(|p| local.address(p));
    assert_ne!(addresses[0], addresses[1]);
    let own = |pod: &str| format!("{pod}.{APP}.{}.svc:8080", ns.name);
    let mut forwarded = Vec::new();
    for (pod, addr) in PODS.iter().zip(addresses) {
        for (word, count) in COUNTS {
            let answer = eventually("an interactive query answer", SETTLE, || async {
                http_get(addr, &format!("/count/{word}")).await
            })
            .await;
            assert_eq!(
                field(&answer, "count"),
                Some(count.to_string().as_str()),
                "{pod} answered {answer}"
            );
            let host = field(&answer, "host").unwrap_or_default().to_string();
            assert!(
                PODS.iter().any(|p| host == own(p)),
                "{pod}: answered by {host:?}, not an instance's application.server"
            );
            if host != own(pod) {
                forwarded.push(format!("{pod} -> {host} for {word}"));
            }
        }
    }
    eprintln!("interactive queries answered by the other pod: {forwarded:?}");
    assert!(
        !forwarded.is_empty(),
        "no query went from one pod to the other through application.server"
    );

    // A deleted pod's JVM gets SIGTERM: its shutdown hook closes Kafka Streams cleanly,
    // flushing its stores, before the StatefulSet's replacement starts on the same volume.
    let old_uid = pods.get(PODS[0]).await.unwrap().uid();
    pods.delete(PODS[0], &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&pods, PODS[0], "a new wordcount-0 Ready", STARTUP, |p| {
        p.uid() != old_uid && pod_ready(p)
    })
    .await;
    let log = local.previous_log(PODS[0]);
    assert!(
        log.contains("PENDING_SHUTDOWN -> NOT_RUNNING"),
        "{} did not close cleanly; see {:?}",
        PODS[0],
        local.log_path(PODS[0]).with_extension("previous.log")
    );
    // Kafka Streams 4.3 keeps a RocksDB store's changelog offsets inside the store (column
    // family `offsets`), not in a `.checkpoint` file: a clean close shows as clean task closes.
    assert!(
        log.contains("Closed clean") && !log.contains("Closed dirty"),
        "{} closed its tasks dirty",
        PODS[0],
    );
    let stores = local
        .claim_dir(&format!("state-{}", PODS[0]))
        .await
        .join(&app_id);
    assert!(
        find_dir(&stores, "counts"),
        "no RocksDB store `counts` under {stores:?}"
    );

    // Back on the same volume, the member rejoins and counting continues where it was.
    let log = local.wait_log(PODS[0], "-> RUNNING", STARTUP).await;
    let replayed = restored_records(&log);
    assert!(
        replayed.iter().all(|n| *n == 0),
        "the restart replayed changelog records {replayed:?} although its state was kept"
    );
    produce(&kafka, &input, &["The end"]).await;
    await_counts(&consumer, &mut seen, &[("the", 5), ("end", 1), ("fox", 2)]).await;
}
