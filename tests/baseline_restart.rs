//! The restore-lag baseline outlives the operator process. A live word count (two pods of real
//! Kafka Streams members run by the stand-in kubelet, one standby) has one pod rejoin with an
//! empty volume while operator A watches, so A measures its restore lag against the changelog
//! as it was at the join, exactly. Then A is SIGKILLed and a new process, C (leader election
//! on), takes over: its figures are still exact and the same, although the changelog grew
//! since. Then C, the leader, is SIGKILLed, and the standby D takes over the Lease: the same
//! again. Without the baseline kept in the cluster, C and D would see the members already
//! joined and give upper bounds (`restoreLagExact: false`) measured against the grown changelog.
//! Last, bl-1 rejoins while no operator runs: the kept baseline is of other members, and the
//! next operator, E, rightly gives upper bounds.

use std::time::{Duration, Instant};

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::seed::{Trickle, seed_words};
use integration_tests::{
    Kafka, LocalPods, OperatorProcess, TestNamespace, client, install_crd, wait_for,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, Pod};
use k8s_openapi::jiff::Timestamp;
use kstreams_kafka::status::{KafkaStatus, PodKafkaStatus};
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::baseline;
use kube::api::PostParams;
use rdkafka::consumer::{BaseConsumer, Consumer};

const APP: &str = "bl";
const RESTARTED: &str = "bl-1";
const PARTITIONS: i32 = 2;
/// Distinct words seeded: the changelog holds as many records.
const WORDS: usize = 6_000;
const STARTUP: Duration = Duration::from_secs(240);
const SETTLE: Duration = Duration::from_secs(120);
/// Lease duration of the leader-elected operators, in seconds.
const LEASE: &str = "4";

fn kafka_of(a: &StreamApp) -> Option<&KafkaStatus> {
    a.status.as_ref()?.kafka.as_ref()
}

fn pod<'a>(k: &'a KafkaStatus, name: &str) -> Option<&'a PodKafkaStatus> {
    k.pods.iter().find(|p| p.pod == name)
}

/// Restore figures as a user reads them: the restarted pod's lag, whether it is exact, and
/// whether the total is (the total itself drops as bl-0's promoted standbys, restoring as
/// active tasks, finish and commit).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Figures {
    pod_lag: Option<i64>,
    pod_exact: bool,
    total_exact: bool,
}

fn figures(k: &KafkaStatus) -> Option<Figures> {
    let p = pod(k, RESTARTED)?;
    Some(Figures {
        pod_lag: p.restore_lag,
        pod_exact: p.restore_lag_exact,
        total_exact: k.restore_lag_total.is_some() && k.restore_lag_exact,
    })
}

/// Whether `k` was checked after `t`: by the operator started (or leading) since.
fn checked_after(k: &KafkaStatus, t: Timestamp) -> bool {
    k.last_checked.parse::<Timestamp>().is_ok_and(|at| at > t)
}

/// End offsets summed over the changelog partitions of the pod's stateful tasks (`1_<p>`).
fn changelog_volume(bootstrap: &str, changelog: &str, p: &PodKafkaStatus) -> i64 {
    let consumer: BaseConsumer = Kafka::config(bootstrap).create().unwrap();
    p.active_tasks
        .iter()
        .chain(&p.standby_tasks)
        .filter_map(|t| t.strip_prefix("1_")?.parse::<i32>().ok())
        .map(|n| {
            consumer
                .fetch_watermarks(changelog, n, Duration::from_secs(10))
                .map(|(_, high)| high)
                .unwrap_or_else(|e| panic!("watermarks of {changelog}-{n}: {e}"))
        })
        .sum()
}

/// The kept baseline, as a user finds it: the app's `<app>-kafka-baseline` ConfigMap, with
/// the size of its content.
async fn kept(ns: &TestNamespace, app: &StreamApp) -> (kstreams_kafka::Baseline, usize) {
    let cm = ns
        .api::<ConfigMap>()
        .get(&baseline::configmap_name(app))
        .await
        .expect("the baseline ConfigMap exists");
    let size = cm.data.as_ref().map_or(0, |d| d[baseline::KEY].len());
    let kept = baseline::from_configmap(app, &cm)
        .unwrap()
        .expect("the ConfigMap holds the app's baseline");
    (kept, size)
}

/// Waits until `who` holds the app namespace's Lease.
async fn leading(ns: &TestNamespace, who: &'static str) {
    wait_for(
        &ns.api::<Lease>(),
        "kstreams-operator",
        &format!("the Lease held by {who}"),
        SETTLE,
        move |l| l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(who),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_lag_stays_exact_across_an_operator_restart_and_a_leader_change() {
    let began = Instant::now();
    example_jar();
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "baseline").await;
    let kafka = Kafka::new("baseline");
    let input = kafka.create_topic("lines", PARTITIONS, &[]).await;
    let output = kafka.create_topic("counts", PARTITIONS, &[]).await;
    seed_words(&kafka.bootstrap, &input, PARTITIONS, WORDS).await;
    let solo = ["--namespaces", &ns.name, "--kafka-refresh-seconds", "2"];
    let mut op_a = OperatorProcess::start("op-a", &solo);
    let local = LocalPods::start(&client, &ns.name, &[]);

    let app_id = format!("{}.{APP}", kafka.prefix);
    let changelog = format!("{app_id}-counts-changelog");
    let mut app = wordcount_app(APP, &app_id, &kafka.bootstrap, &input, &output);
    app.spec.standby_replicas = 1;
    for (k, v) in [
        // The rejoined pod, behind by thousands, is not caught up: its standbys load.
        ("acceptable.recovery.lag", "50"),
        // No probing rebalance within the test: the members report their state only at the
        // rebalances of the join, so the figures stay those of the join.
        ("probing.rebalance.interval.ms", "3600000"),
        // Throttled loading (50 records per 100 ms): the state reported at the rebalance that
        // follows the join is still almost all to load.
        ("restore.consumer.max.poll.records", "50"),
    ] {
        app.spec.config.insert(k.into(), v.into());
    }
    for (k, v) in [
        ("WORDCOUNT_WIPE_STATE", RESTARTED),
        ("WORDCOUNT_RESTORE_DELAY_MS", "100"),
    ] {
        app.spec.env.push(EnvVar {
            name: k.into(),
            value: Some(v.into()),
            ..EnvVar::default()
        });
    }
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app).await.unwrap();
    wait_for(
        &apps,
        APP,
        "both pods members and every seeded line processed",
        STARTUP,
        |a| {
            kafka_of(a).is_some_and(|k| {
                k.pods.iter().filter(|p| p.members > 0).count() == 2
                    && k.processing_lag_total == Some(0)
            })
        },
    )
    .await;
    let started_up = began.elapsed();

    // bl-1 stops (leaving the group) and comes back on an empty volume, while A watches.
    local.expect_restarts(RESTARTED, 1);
    local.signal(RESTARTED, libc::SIGTERM);
    let a = wait_for(
        &apps,
        APP,
        "bl-1 back with its standbys to load and its share of active tasks, exact",
        SETTLE,
        |a| {
            kafka_of(a).is_some_and(|k| {
                let stable = k.group.as_ref().is_some_and(|g| g.state == "Stable");
                stable
                    && k.restore_lag_exact
                    && pod(k, RESTARTED).is_some_and(|p| {
                        p.members > 0
                            && p.restore_lag_exact
                            && p.restore_lag.is_some_and(|l| l > WORDS as i64 / 4)
                            && !p.standby_tasks.is_empty()
                            && !p.active_tasks.is_empty()
                    })
            })
        },
    )
    .await;
    let k = kafka_of(&a).unwrap();
    let seen_by_a = figures(k).unwrap();
    // Nothing was produced since the seed: the changelog is as it was at the join.
    let at_join = changelog_volume(&kafka.bootstrap, &changelog, pod(k, RESTARTED).unwrap());
    let lag = seen_by_a.pod_lag.unwrap();
    println!("A: {seen_by_a:?}; the changelog of bl-1's tasks held {at_join} records at its join");
    assert!(
        lag <= at_join && lag * 10 >= at_join * 8,
        "bl-1's restore lag {lag} is not what its empty store needs ({at_join} records, less \
         the little it loaded before the rebalance that followed its join)"
    );

    // The baseline is in the cluster: the members' join, as A saw it.
    let (stored, size) = kept(&ns, &a).await;
    assert!(stored.witnessed, "{stored:?}");
    assert_eq!(stored.members.len(), 2, "{stored:?}");
    let seen_members = stored.members.clone();
    println!(
        "baseline ConfigMap: {size} bytes for {} partitions",
        stored.end.len()
    );

    // Records flow again: bl-0 processes them, and the changelog grows past the join.
    let _trickle = Trickle::start(&kafka.bootstrap, &input, PARTITIONS);

    // 1. Restart: A dies without a word; C, a new process, starts and takes the Lease.
    op_a.signal("KILL");
    let _ = op_a.child.wait().await;
    let restarted = Timestamp::now();
    let elected = [
        "--namespaces",
        &ns.name,
        "--kafka-refresh-seconds",
        "2",
        "--leader-election=true",
        "--lease-namespace",
        &ns.name,
        "--lease-duration",
        LEASE,
    ];
    let mut op_c = OperatorProcess::start("op-c", &elected);
    leading(&ns, "op-c").await;
    let mut op_d = OperatorProcess::start("op-d", &elected);
    let a = wait_for(&apps, APP, "a check by C", SETTLE, |a| {
        kafka_of(a).is_some_and(|k| checked_after(k, restarted))
    })
    .await;
    let k = kafka_of(&a).unwrap();
    let grown = changelog_volume(&kafka.bootstrap, &changelog, pod(k, RESTARTED).unwrap());
    println!(
        "C (after a restart): {:?}; the changelog now holds {grown}",
        figures(k)
    );
    assert_eq!(
        figures(k).as_ref(),
        Some(&seen_by_a),
        "the new process measures against the baseline of the join, as exactly as A"
    );

    // 2. Leader change: C, the leader, dies without releasing the Lease; D takes over.
    op_d.wait_ready(SETTLE).await;
    op_c.signal("KILL");
    let _ = op_c.child.wait().await;
    let killed = Timestamp::now();
    let takeover = Instant::now();
    leading(&ns, "op-d").await;
    let took_over = takeover.elapsed();
    // bl-0 processes the records: once the changelog has grown past the join, figures
    // measured against the changelog as it is now would be others.
    let tasks = pod(k, RESTARTED).unwrap().clone();
    let deadline = Instant::now() + SETTLE;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let grown = loop {
        tick.tick().await;
        let now = changelog_volume(&kafka.bootstrap, &changelog, &tasks);
        if now > at_join {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the changelog did not grow past {at_join} within {SETTLE:?}"
        );
    };
    let grew = Timestamp::now();
    let a = wait_for(
        &apps,
        APP,
        "a check by D after the changelog grew",
        SETTLE,
        |a| kafka_of(a).is_some_and(|k| checked_after(k, grew.max(killed))),
    )
    .await;
    let k = kafka_of(&a).unwrap();
    println!(
        "D (leader after {took_over:?}): {:?}; the changelog held {grown} before its check",
        figures(k)
    );
    assert_eq!(
        figures(k).as_ref(),
        Some(&seen_by_a),
        "the new leader measures against the baseline of the join, as exactly as A"
    );
    let (_, metrics) = op_d.get("/metrics").await.expect("D's metrics answer");
    let failures: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("kstreams_kafka_baseline_failures_total{"))
        .collect();
    assert!(
        failures.len() == 4 && failures.iter().all(|l| l.ends_with(" 0")),
        "no baseline read or write failed: {failures:?}"
    );

    // 3. bl-1 rejoins (a new member) while no operator runs: E, started then, did not see
    //    the join, and the kept baseline is of other members. Its figures are upper bounds.
    op_d.signal("KILL");
    let _ = op_d.child.wait().await;
    local.expect_restarts(RESTARTED, 2);
    local.signal(RESTARTED, libc::SIGTERM);
    wait_for(
        &ns.api::<Pod>(),
        RESTARTED,
        "bl-1 restarted a second time and Ready (its Kafka Streams RUNNING)",
        SETTLE,
        |p| {
            let status = p.status.as_ref();
            let restarts = status
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .map_or(0, |c| c.restart_count);
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            restarts == 2 && ready
        },
    )
    .await;
    let unseen = Timestamp::now();
    let _op_e = OperatorProcess::start("op-e", &solo);
    let a = wait_for(&apps, APP, "a check by E with bl-1 a member", SETTLE, |a| {
        kafka_of(a).is_some_and(|k| {
            checked_after(k, unseen) && pod(k, RESTARTED).is_some_and(|p| p.members > 0)
        })
    })
    .await;
    let k = kafka_of(&a).unwrap();
    println!("E (after a join it did not see): {:?}", figures(k));
    let bounds = figures(k).unwrap();
    assert!(
        bounds.pod_lag.is_some() && !bounds.pod_exact && !bounds.total_exact,
        "a join no operator saw gives upper bounds: {bounds:?}"
    );
    let (stored, _) = kept(&ns, &a).await;
    assert!(
        !stored.witnessed && stored.members.len() == 2 && stored.members != seen_members,
        "E keeps a baseline of its own, of the new members, not witnessed: {stored:?}"
    );
    println!("startup {started_up:?}, whole test {:?}", began.elapsed());
}
