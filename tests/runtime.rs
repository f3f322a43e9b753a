//! The operator process as a Deployment runs it: metrics, readiness, leader election with a
//! real Lease, and a clean exit on SIGTERM.
//!
//! The apps' kwok pods run nothing and never join a consumer group, so where a test waits for
//! Ready the operator runs with Kafka checks off (`--kafka-refresh-seconds 0`); Ready then
//! means the pods are Ready.

use std::time::{Duration, Instant};

use integration_tests::{OperatorProcess, TestNamespace, client, install_crd, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kstreams_operator::crd::StreamApp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};

fn app(name: &str) -> StreamApp {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP (make test sets it)");
    serde_yaml::from_str(&format!(
        "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\nmetadata: {{name: {name}}}\n\
         spec: {{image: 'example/app:1', replicas: 1, kafka: {{bootstrapServers: '{bootstrap}'}}}}"
    ))
    .unwrap()
}

fn ready(a: &StreamApp) -> bool {
    a.status.as_ref().is_some_and(|s| {
        s.observed_generation == a.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The value of a metric line `name{labels} value` (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn metrics_show_reconciles_and_apps_by_condition() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "metrics").await;
    let op = OperatorProcess::start(
        "op-metrics",
        &["--namespaces", &ns.name, "--kafka-refresh-seconds", "0"],
    );
    op.wait_ready(LONG).await;
    let (_, before) = op.get("/metrics").await.expect("metrics answer");
    let success = r#"kstreams_reconciles_total{result="success"}"#;
    assert_eq!(metric(&before, success), 0.0);

    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app("m1"))
        .await
        .unwrap();
    wait_for(&apps, "m1", "Ready", LONG, ready).await;

    // The gauge is read from the watch cache, which sees the status moments after us.
    let ready_apps = r#"kstreams_apps{condition="Ready",status="True"}"#;
    let deadline = Instant::now() + LONG;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let after = loop {
        tick.tick().await;
        let (code, text) = op.get("/metrics").await.expect("metrics answer");
        assert_eq!(code, 200);
        if metric(&text, ready_apps) == 1.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{ready_apps} never reached 1: {text}"
        );
    };
    assert!(metric(&after, success) >= 1.0, "{after}");
    assert!(metric(&after, "kstreams_reconcile_duration_seconds_count") >= 1.0);
}

#[tokio::test]
async fn only_the_leader_writes_and_a_standby_takes_over_when_it_dies() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "leader").await;
    let lease_secs = "6";
    let args = [
        "--namespaces",
        &ns.name,
        "--leader-election=true",
        "--lease-namespace",
        &ns.name,
        "--lease-duration",
        lease_secs,
        "--kafka-refresh-seconds",
        "0",
    ];
    let leases = ns.api::<Lease>();
    let holder = |who: &'static str| {
        move |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(who)
    };
    let mut first = OperatorProcess::start("op-a", &args);
    first.wait_ready(LONG).await;
    wait_for(
        &leases,
        "kstreams-operator",
        "held by op-a",
        LONG,
        holder("op-a"),
    )
    .await;
    let second = OperatorProcess::start("op-b", &args);
    // A standby is ready too: it can take over at any moment.
    second.wait_ready(LONG).await;

    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app("led"))
        .await
        .unwrap();
    wait_for(&apps, "led", "Ready", LONG, ready).await;
    let events: Vec<Event> = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reporting_component.as_deref() == Some("kstreams-operator"))
        .collect();
    assert!(!events.is_empty(), "the operator publishes a Ready event");
    for e in &events {
        assert_eq!(
            e.reporting_instance.as_deref(),
            Some("op-a"),
            "only the leader writes: {e:?}"
        );
    }
    assert!(!second.log_text().contains("became leader"));

    // The leader dies without releasing the Lease.
    first.signal("KILL");
    let killed = Instant::now();
    let _ = first.child.wait().await;
    wait_for(
        &leases,
        "kstreams-operator",
        "taken over by op-b",
        LONG,
        holder("op-b"),
    )
    .await;
    let takeover = killed.elapsed();
    println!("leader takeover after SIGKILL: {takeover:?} (lease duration {lease_secs}s)");
    assert!(
        takeover < Duration::from_secs(2 * lease_secs.parse::<u64>().unwrap()),
        "takeover took {takeover:?}"
    );

    // The new leader reconciles.
    apps.patch(
        "led",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    wait_for(
        &apps,
        "led",
        "Ready with 2 replicas under op-b",
        LONG,
        |a| ready(a) && a.status.as_ref().is_some_and(|s| s.ready_replicas == 2),
    )
    .await;
}

#[tokio::test]
async fn sigterm_mid_reconcile_exits_cleanly_within_the_bound() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "sigterm").await;
    let mut op = OperatorProcess::start(
        "op-term",
        &["--namespaces", &ns.name, "--shutdown-timeout", "10"],
    );
    op.wait_ready(LONG).await;
    let apps = ns.api::<StreamApp>();
    for i in 0..20 {
        apps.create(&PostParams::default(), &app(&format!("t{i}")))
            .await
            .unwrap();
    }
    // Signal as soon as reconciles are visibly under way.
    wait_for(&apps, "t0", "a first status", LONG, |a| a.status.is_some()).await;
    op.signal("TERM");
    let signalled = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), op.child.wait())
        .await
        .expect("exited within the shutdown bound")
        .unwrap();
    println!("exit after SIGTERM: {:?}", signalled.elapsed());
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        op.log_text()
    );
    let log = op.log_text();
    assert!(
        log.contains("signal received") && log.contains("operator stopped"),
        "{log}"
    );

    // Every status written is whole: all conditions, at a generation.
    for a in apps.list(&ListParams::default()).await.unwrap() {
        if let Some(s) = &a.status {
            assert!(
                s.observed_generation.is_some(),
                "{}: {s:?}",
                a.metadata.name.as_deref().unwrap_or("")
            );
            let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
            assert_eq!(
                types,
                [
                    "Ready",
                    "Progressing",
                    "Degraded",
                    "ReconciliationPaused",
                    "KafkaReachable",
                    "ChangelogsHealthy",
                    "Restoring",
                    "Processing",
                    "Suspended",
                    "Resetting"
                ]
            );
        }
    }
}

#[tokio::test]
async fn watches_exactly_the_namespaces_it_is_given() {
    let client = client().await;
    install_crd(&client).await;
    let outside = TestNamespace::new(&client, "ns-outside").await;
    let (a, b) = (
        TestNamespace::new(&client, "ns-a").await,
        TestNamespace::new(&client, "ns-b").await,
    );
    // The unwatched app exists first: an operator watching everything would take it first.
    outside
        .api::<StreamApp>()
        .create(&PostParams::default(), &app("w"))
        .await
        .unwrap();
    let list = format!("{},{}", a.name, b.name);
    let op = OperatorProcess::start(
        "op-namespaces",
        &["--namespaces", &list, "--kafka-refresh-seconds", "0"],
    );
    op.wait_ready(LONG).await;
    for ns in [&a, &b] {
        let apps = ns.api::<StreamApp>();
        apps.create(&PostParams::default(), &app("w"))
            .await
            .unwrap();
        wait_for(&apps, "w", "Ready in a watched namespace", LONG, ready).await;
    }
    let untouched = outside.api::<StreamApp>().get("w").await.unwrap();
    assert!(
        untouched.status.is_none(),
        "an app outside --namespaces got a status: {:?}",
        untouched.status
    );
    let children = outside
        .api::<k8s_openapi::api::apps::v1::StatefulSet>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        children.items.is_empty(),
        "children created outside --namespaces"
    );
}
