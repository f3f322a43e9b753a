//! Restore-aware rollouts of a live 3-pod word count (real Kafka Streams members run by the
//! stand-in kubelet, standbyReplicas 1): a config change that makes each restarted pod start
//! from an empty volume with a throttled state load restarts one pod at a time, each only
//! once the previous one has caught up; the same change under `strategy: StatefulSet`
//! restarts every pod before the first restarted one has caught up. A step that takes too
//! long holds with a condition and an Event, and a spec reverted mid-rollout restarts only the
//! pod that ran the abandoned spec.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::seed::{Load, Trickle, pod_loads, seed_words};
use integration_tests::{
    Kafka, LocalPods, Operator, PrivateKafka, TestNamespace, client, is, wait_for,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kstreams_operator::crd::StreamApp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

const STARTUP: Duration = Duration::from_secs(240);
/// A step waits for warm-up replicas to load (throttled) and for the probing rebalance that
/// promotes them (`probing.rebalance.interval.ms`, at least 60 s).
const ROLLOUT: Duration = Duration::from_secs(600);
const PARTITIONS: i32 = 3;
/// Distinct words seeded before the app starts: each task's changelog holds a third.
const WORDS: usize = 15_000;

/// Each pod's creation time (epoch ms, second resolution) and uid.
async fn pods_now(pods: &Api<Pod>, app: &str) -> BTreeMap<String, (i64, String)> {
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={app}"));
    pods.list(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            let created = p
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_millisecond())
                .unwrap_or_default();
            (p.name_any(), (created, p.uid().unwrap_or_default()))
        })
        .collect()
}

/// The app's StatefulSet has rolled out: every pod at the update revision, Ready.
fn rolled_out(sts: &StatefulSet) -> bool {
    let (Some(spec), Some(status)) = (&sts.spec, &sts.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    status.observed_generation == sts.metadata.generation
        && status.update_revision.is_some()
        && status.current_revision == status.update_revision
        && status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
}

struct Live {
    ns: TestNamespace,
    local: LocalPods,
    apps: Api<StreamApp>,
    _operator: Operator,
    _trickle: Trickle,
}

/// A 3-pod word count on `WORDS` seeded words, Ready, every seeded line processed, with
/// `spec` merged into its spec, on the shared broker.
async fn live_app(test: &str, name: &str, spec: serde_json::Value) -> Live {
    live_app_on(Kafka::new(test), test, name, spec).await
}

/// As [`live_app`], on the broker `kafka` connects to.
async fn live_app_on(kafka: Kafka, test: &str, name: &str, spec: serde_json::Value) -> Live {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, test).await;
    let input = kafka.create_topic("lines", PARTITIONS, &[]).await;
    let output = kafka.create_topic("counts", PARTITIONS, &[]).await;
    seed_words(&kafka.bootstrap, &input, PARTITIONS, WORDS).await;
    let operator = Operator::start(&client, &ns.name).await;
    let local = LocalPods::start(&client, &ns.name, &[]);
    let app_id = format!("{}.{name}", kafka.prefix);
    let mut app = wordcount_app(name, &app_id, &kafka.bootstrap, &input, &output);
    app.spec.replicas = 3;
    app.spec.standby_replicas = 1;
    for (k, v) in [
        // A few thousand records behind counts as not caught up.
        ("acceptable.recovery.lag", "500"),
        // The probing rebalance that promotes caught-up warm-ups, as soon as allowed.
        ("probing.rebalance.interval.ms", "60000"),
        ("restore.consumer.max.poll.records", "100"),
    ] {
        app.spec.config.insert(k.into(), v.into());
    }
    let mut value = serde_json::to_value(&app).unwrap();
    json_merge(&mut value["spec"], spec);
    let app: StreamApp = serde_json::from_value(value).unwrap();
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app).await.unwrap();
    wait_for(
        &apps,
        name,
        "Ready with 3 members and every seeded line processed",
        STARTUP,
        |a| {
            is(a, "Ready", "True")
                && a.status
                    .as_ref()
                    .and_then(|s| s.kafka.as_ref())
                    .is_some_and(|k| {
                        k.pods.iter().filter(|p| p.members > 0).count() == 3
                            && k.processing_lag_total.is_some_and(|l| l < 100)
                    })
        },
    )
    .await;
    let trickle = Trickle::start(&kafka.bootstrap, &input, PARTITIONS);
    Live {
        ns,
        local,
        apps,
        _operator: operator,
        _trickle: trickle,
    }
}

fn json_merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The env of the app's container plus `extra`, as a merge patch of `spec.env`.
fn with_env(app: &StreamApp, extra: &[(&str, &str)]) -> serde_json::Value {
    let mut env = serde_json::to_value(&app.spec.env).unwrap();
    let list = env.as_array_mut().unwrap();
    for (k, v) in extra {
        list.retain(|e| e["name"] != *k);
        list.push(serde_json::json!({"name": k, "value": v}));
    }
    env
}

async fn patch_spec(apps: &Api<StreamApp>, name: &str, spec: serde_json::Value) {
    apps.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "spec": spec })),
    )
    .await
    .unwrap();
}

/// The loads in the pods' current logs that started at or after `since`.
fn loads_since(local: &LocalPods, pods: &[String], since: i64) -> Vec<Load> {
    let mut loads = pod_loads(local, pods);
    loads.retain(|l| l.start >= since);
    loads
}

/// Makes every pod of `name` that restarts from now on start from an empty volume and load
/// its state with `delay_ms` of sleep per batch: a config change, so a rollout.
async fn wipe_on_restart(apps: &Api<StreamApp>, name: &str, delay_ms: &str) {
    let app = apps.get(name).await.unwrap();
    let env = with_env(
        &app,
        &[
            ("WORDCOUNT_WIPE_STATE", "true"),
            ("WORDCOUNT_RESTORE_DELAY_MS", delay_ms),
        ],
    );
    patch_spec(apps, name, serde_json::json!({ "env": env })).await;
}

/// Waits until every pod of `name` runs the latest spec and the app is Ready with no
/// rollout left.
async fn wait_rolled_out(apps: &Api<StreamApp>, sts: &Api<StatefulSet>, name: &str) {
    wait_for(sts, name, "every pod rolled out", ROLLOUT, rolled_out).await;
    wait_for(
        apps,
        name,
        "the rollout done and the app Ready",
        ROLLOUT,
        |a| is(a, "Ready", "True") && a.status.as_ref().is_some_and(|s| s.rollout.is_none()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_restarts_one_pod_at_a_time_after_each_caught_up_unlike_the_statefulset_strategy()
 {
    const APP: &str = "roll";
    let live = live_app("rollout", APP, serde_json::json!({})).await;
    let (apps, local) = (&live.apps, &live.local);
    let pods = live.ns.api::<Pod>();
    let sts = live.ns.api::<StatefulSet>();
    let names: Vec<String> = (0..3).map(|o| format!("{APP}-{o}")).collect();
    let before = pods_now(&pods, APP).await;

    // Every restarted pod starts from an empty volume and loads its state slowly.
    let changed_at = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    wipe_on_restart(apps, APP, "100").await;

    // The rollout is seen waiting on a restarted pod's state.
    wait_for(
        apps,
        APP,
        "the rollout waiting on a restore",
        ROLLOUT,
        |a| {
            a.status
                .as_ref()
                .and_then(|s| s.rollout.as_ref())
                .and_then(|r| r.waiting_for.as_deref())
                .is_some_and(|w| w.contains("restor") || w.contains("warm-up"))
        },
    )
    .await;
    wait_rolled_out(apps, &sts, APP).await;

    let after = pods_now(&pods, APP).await;
    let mut restarts: Vec<(i64, String)> = names
        .iter()
        .map(|n| {
            assert_ne!(before[n].1, after[n].1, "{n} was not restarted");
            (after[n].0, n.clone())
        })
        .collect();
    restarts.sort();
    let order: Vec<&str> = restarts.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        order,
        [&names[2], &names[1], &names[0]],
        "highest ordinal first"
    );
    let loads = loads_since(local, &names, changed_at);
    println!("restore-aware: restarts {restarts:?}\nloads {loads:#?}");
    assert!(
        loads.iter().any(|l| l.pod == names[2]),
        "{} loaded no state after its restart: {loads:?}",
        names[2]
    );
    // No pod restarted while a load that began before it was still going on (1 s slack for
    // the creation timestamps' second resolution).
    for (created, pod) in &restarts[1..] {
        for l in loads.iter().filter(|l| l.start < *created) {
            let end = l.end.unwrap_or(i64::MAX);
            assert!(
                end <= created + 1000,
                "{pod} was created at {created} while {} still loaded {} ({l:?})",
                l.pod,
                l.partition
            );
        }
    }

    // The same kind of change, left to the StatefulSet controller, with a slower load.
    let changed_at = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let app = apps.get(APP).await.unwrap();
    let env = with_env(&app, &[("WORDCOUNT_RESTORE_DELAY_MS", "400")]);
    patch_spec(
        apps,
        APP,
        serde_json::json!({ "env": env, "rollout": {"strategy": "StatefulSet"} }),
    )
    .await;
    let old: Vec<String> = after.values().map(|(_, uid)| uid.clone()).collect();
    integration_tests::wait_for_list(
        &pods,
        &format!("app.kubernetes.io/instance={APP}"),
        "every pod restarted by the StatefulSet and Ready",
        ROLLOUT,
        |list: &[Pod]| {
            list.len() == 3
                && list.iter().all(|p| {
                    !old.contains(&p.uid().unwrap_or_default())
                        && p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                })
        },
    )
    .await;
    let again = pods_now(&pods, APP).await;
    let last_created = names.iter().map(|n| again[n].0).max().unwrap();
    let first = names.iter().min_by_key(|n| again[*n].0).unwrap().clone();
    let loads = loads_since(local, &names, changed_at);
    println!("statefulset: pods {again:?}\nloads {loads:#?}");
    let first_loads: Vec<&Load> = loads.iter().filter(|l| l.pod == first).collect();
    assert!(
        first_loads
            .iter()
            .any(|l| l.end.is_none_or(|e| e > last_created + 1000)),
        "every pod was restarted ({last_created}) only after the first one, {first}, had loaded its state: {first_loads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_its_timeout_holds_with_an_event_and_a_reverted_spec_restarts_only_the_updated_pod()
 {
    const APP: &str = "hold";
    let live = live_app(
        "rollhold",
        APP,
        serde_json::json!({"rollout": {"stepTimeoutSeconds": 15}}),
    )
    .await;
    let apps = &live.apps;
    let pods = live.ns.api::<Pod>();
    let sts = live.ns.api::<StatefulSet>();
    let before = pods_now(&pods, APP).await;
    let original = apps.get(APP).await.unwrap();

    // The restarted pod comes up slowly (Kafka Streams starts 40 s late, well past the 15 s
    // step timeout), so the step after it times out whatever the assignor does with its
    // tasks: a fast restore or a caught-up warm-up could otherwise settle within the timeout.
    let env = with_env(
        &original,
        &[
            ("WORDCOUNT_WIPE_STATE", "true"),
            ("WORDCOUNT_RESTORE_DELAY_MS", "400"),
            ("WORDCOUNT_START_DELAY_MS", "40000"),
        ],
    );
    patch_spec(apps, APP, serde_json::json!({ "env": env })).await;
    let step = format!("update {APP}-1");
    let held = wait_for(
        apps,
        APP,
        "the step before hold-1 timed out",
        ROLLOUT,
        |a| {
            is(a, "Progressing", "False")
                && a.status
                    .as_ref()
                    .and_then(|s| s.rollout.as_ref())
                    .is_some_and(|r| r.timed_out && r.step == step)
        },
    )
    .await;
    let rollout = held.status.as_ref().unwrap().rollout.clone().unwrap();
    println!("held: {rollout:?}");
    assert_eq!(
        rollout.waiting_on.as_deref(),
        Some(format!("{APP}-2").as_str())
    );
    let reason = integration_tests::condition(&held, "Progressing")
        .unwrap()
        .1;
    assert_eq!(reason, "StepTimedOut");
    let events = live.ns.api::<Event>();
    let event = integration_tests::wait_for_list(
        &events,
        "",
        "the StepTimedOut Event",
        Duration::from_secs(60),
        |list: &[Event]| {
            list.iter()
                .any(|e| e.reason.as_deref() == Some("StepTimedOut"))
        },
    )
    .await
    .into_iter()
    .find(|e| e.reason.as_deref() == Some("StepTimedOut"))
    .unwrap();
    let note = event.message.unwrap_or_default();
    assert!(note.contains(&format!("{APP}-2")), "{note}");
    let s = sts.get(APP).await.unwrap();
    let partition = s
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition);
    assert_eq!(partition, Some(2), "held at the first step");

    // Back to the spec the other pods run: only the pod that ran the abandoned one restarts.
    patch_spec(
        apps,
        APP,
        serde_json::json!({ "env": serde_json::to_value(&original.spec.env).unwrap() }),
    )
    .await;
    wait_rolled_out(apps, &sts, APP).await;
    let after = pods_now(&pods, APP).await;
    for o in 0..2 {
        let n = format!("{APP}-{o}");
        assert_eq!(
            before[&n].1, after[&n].1,
            "{n} restarted although it ran the spec"
        );
    }
    let n = format!("{APP}-2");
    assert_ne!(before[&n].1, after[&n].1);
}

/// The StatefulSet's update partition.
fn partition(s: &StatefulSet) -> Option<i32> {
    s.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_outage_mid_rollout_holds_it_until_kafka_is_back() {
    const APP: &str = "blind";
    let broker = PrivateKafka::start();
    let kafka = Kafka {
        admin: Kafka::config(&broker.bootstrap).create().unwrap(),
        bootstrap: broker.bootstrap.clone(),
        prefix: integration_tests::unique("blind"),
    };
    let live = live_app_on(kafka, "rollblind", APP, serde_json::json!({})).await;
    let apps = &live.apps;
    let pods = live.ns.api::<Pod>();
    let sts = live.ns.api::<StatefulSet>();
    let before = pods_now(&pods, APP).await;
    wipe_on_restart(apps, APP, "400").await;
    // Mid-rollout: a pod runs the new spec, others do not yet, and the next step waits
    // (on the restarted pod being Ready, restoring, or warming up: which one depends on where
    // the assignor puts the active tasks).
    wait_for(
        apps,
        APP,
        "a step of the rollout waiting with some pods updated",
        ROLLOUT,
        |a| {
            a.status
                .as_ref()
                .and_then(|s| s.rollout.as_ref())
                .is_some_and(|r| {
                    (1..r.replicas).contains(&r.updated_replicas)
                        && r.waiting_for.is_some()
                        && r.step != "new revision"
                })
        },
    )
    .await;

    broker.stop();
    let held = wait_for(apps, APP, "the rollout holding on Kafka", ROLLOUT, |a| {
        a.status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .and_then(|r| r.waiting_for.as_deref())
            .is_some_and(|w| w.starts_with("Kafka to be reachable"))
    })
    .await;
    let reason = integration_tests::condition(&held, "Progressing")
        .unwrap()
        .1;
    assert_eq!(reason, "RolloutWaitingForKafka");
    let held_at = partition(&sts.get(APP).await.unwrap()).unwrap_or_default();
    assert!(
        held_at >= 1,
        "the rollout held mid-way, not done: partition {held_at}"
    );
    let during = pods_now(&pods, APP).await;
    for o in 0..held_at {
        let n = format!("{APP}-{o}");
        assert_eq!(
            before[&n].1, during[&n].1,
            "{n} restarted while Kafka was down"
        );
    }

    broker.up();
    wait_rolled_out(apps, &sts, APP).await;
}
