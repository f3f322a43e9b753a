//! The PodDisruptionBudget of a live 3-pod word count follows its restores: while one instance
//! loads its state (it came back with an empty volume), an eviction of another pod is refused
//! by the apiserver — every pod is Ready, it is the budget that says no — and once the load is
//! over the same eviction goes through. The disruption controller of the local stack computes
//! the budget's status, as in a real cluster.

use std::time::Duration;

use integration_tests::seed::{LiveSpec, Recorder, Seen, live_app, now_ms};
use integration_tests::{condition, is, wait_for};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kstreams_operator::crd::StreamApp;
use kube::api::{DeleteParams, EvictParams, ListParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

const APP: &str = "drain";
/// Three JVM starts, the seed processed, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(240);
/// A restart, the throttled warm-up and the probing rebalance (60 s) that ends it.
const RESTORE: Duration = Duration::from_secs(300);

/// The budget and the app over time, one line per version seen, merged by arrival.
fn history(pdbs: &[Seen<PodDisruptionBudget>], apps: &[Seen<StreamApp>]) -> String {
    let mut lines: Vec<(i64, String)> = pdbs
        .iter()
        .map(|s| {
            let p = &s.object;
            (
                s.at,
                format!(
                    "pdb gen={:?} maxUnavailable={:?} (healthy, expected, allowed)={:?}",
                    p.metadata.generation,
                    max_unavailable(p),
                    computed(p)
                ),
            )
        })
        .collect();
    lines.extend(apps.iter().map(|s| {
        let a = &s.object;
        let k = a.status.as_ref().and_then(|s| s.kafka.as_ref());
        let pods: Vec<String> = k
            .map(|k| {
                k.pods
                    .iter()
                    .map(|p| {
                        format!(
                            "{}(m={} active={:?} lag={:?} caughtUp={:?})",
                            p.pod, p.members, p.active_tasks, p.restore_lag, p.caught_up
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        (
            s.at,
            format!(
                "app restoring={:?} group={:?} probing={:?} pods={pods:?}",
                condition(a, "Restoring").map(|c| (c.0, c.2)),
                k.and_then(|k| k.group.as_ref()).map(|g| g.state.clone()),
                k.map(|k| k.probing_rebalance_pending),
            ),
        )
    }));
    lines.sort_by_key(|l| l.0);
    lines
        .into_iter()
        .map(|(at, l)| format!("{at} {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn max_unavailable(p: &PodDisruptionBudget) -> Option<i32> {
    match p.spec.as_ref()?.max_unavailable.as_ref()? {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(_) => None,
    }
}

/// `(currentHealthy, expectedPods, disruptionsAllowed)` once the disruption controller has
/// seen the budget's current spec.
fn computed(p: &PodDisruptionBudget) -> Option<(i32, i32, i32)> {
    let s = p.status.as_ref()?;
    (s.observed_generation == p.metadata.generation).then_some((
        s.current_healthy,
        s.expected_pods,
        s.disruptions_allowed,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_is_refused_while_a_pod_restores_and_allowed_after() {
    let restoring = format!("{APP}-1");
    let victim = format!("{APP}-0");
    let spec = LiveSpec {
        // With a standby per task the pods stay Ready while the emptied one warms up: only the
        // budget stands between a drain and a second instance losing its state.
        standby_replicas: 1,
        words: 30_000,
        env: vec![
            ("WORDCOUNT_WIPE_STATE".into(), restoring.clone()),
            ("WORDCOUNT_RESTORE_DELAY_MS".into(), "200".into()),
        ],
        ..LiveSpec::default()
    };
    let live = live_app("disruption", APP, spec, STARTUP).await;
    let (apps, pods) = (&live.apps, live.ns.api::<Pod>());
    // A client that reports a 429 rather than retrying it (kube's default client retries
    // 429s until they pass, as a drain does): the test asks once and reads the answer.
    let mut config = kube::Config::infer().await.expect("a kubeconfig");
    config.default_retry = false;
    let once = kube::Client::try_from(config).expect("a client");
    let evictions: Api<Pod> = Api::namespaced(once, &live.ns.name);
    let pdbs = live.ns.api::<PodDisruptionBudget>();
    let by_name = watcher::Config::default().fields(&format!("metadata.name={APP}"));
    let pdb_seen = Recorder::start(pdbs.clone(), by_name.clone()).await;
    let app_seen = Recorder::start(apps.clone(), by_name).await;
    let dump = || history(&pdb_seen.seen(), &app_seen.seen());
    wait_for(
        &pdbs,
        APP,
        "maxUnavailable 1, 3 healthy pods, one disruption allowed",
        RESTORE,
        |p| max_unavailable(p) == Some(1) && computed(p) == Some((3, 3, 1)),
    )
    .await;

    // drain-1 comes back with an empty volume and loads its state, throttled.
    pods.delete(&restoring, &DeleteParams::default())
        .await
        .unwrap();
    // The operator applies the budget before it writes the status that explains it: the
    // status first, then the budget the disruption controller has taken in.
    wait_for(apps, APP, "Restoring=True", RESTORE, |a| {
        is(a, "Restoring", "True")
    })
    .await;
    let blocked = wait_for(
        &pdbs,
        APP,
        "maxUnavailable 0 with all 3 pods healthy: no disruption allowed",
        RESTORE,
        |p| max_unavailable(p) == Some(0) && computed(p) == Some((3, 3, 0)),
    )
    .await;
    println!("{} blocked: {:?}", now_ms(), blocked.status);

    // A drain's eviction of another pod: refused, 429, by the budget.
    let victim_uid = pods.get(&victim).await.unwrap().uid();
    println!("{} evicting {victim}", now_ms());
    let refused = evictions.evict(&victim, &EvictParams::default()).await;
    println!("{} eviction answered", now_ms());
    let after = apps.get(APP).await.unwrap();
    let pdb_after = pdbs.get(APP).await.unwrap();
    match &refused {
        Err(kube::Error::Api(s)) => {
            println!("eviction refused: {} {} {}", s.code, s.reason, s.message);
            assert_eq!(s.code, 429, "{s:?}");
            assert!(s.message.contains("disruption budget"), "{s:?}");
        }
        other => panic!(
            "the eviction of {victim} during the restore was not refused: {other:?}\n{}",
            dump()
        ),
    }
    assert!(
        is(&after, "Restoring", "True") && max_unavailable(&pdb_after) == Some(0),
        "the restore ended during the eviction; the refusal proves nothing: {:?}",
        condition(&after, "Restoring")
    );
    let p = pods.get(&victim).await.unwrap();
    assert!(
        p.uid() == victim_uid && p.metadata.deletion_timestamp.is_none(),
        "{victim} was disrupted"
    );

    // The load is over: one disruption allowed again, and the eviction goes through.
    let done = wait_for(apps, APP, "Restoring no longer True", RESTORE, |a| {
        condition(a, "Restoring").is_some_and(|c| c.0 != "True")
    })
    .await;
    println!("restored: {:?}", condition(&done, "Restoring"));
    wait_for(
        &pdbs,
        APP,
        "maxUnavailable 1 with all 3 pods healthy: one disruption allowed",
        RESTORE,
        |p| max_unavailable(p) == Some(1) && computed(p) == Some((3, 3, 1)),
    )
    .await;
    let status = pods
        .evict(&victim, &EvictParams::default())
        .await
        .unwrap_or_else(|e| panic!("the eviction of {victim} after the restore was refused: {e}"));
    println!("eviction accepted: {status:?}\n{}", dump());
    wait_for(
        &pods,
        &victim,
        "evicted: terminating or replaced",
        RESTORE,
        |p| p.uid() != victim_uid || p.metadata.deletion_timestamp.is_some(),
    )
    .await;

    // Both transitions were told.
    let events = live
        .ns
        .api::<Event>()
        .list(&ListParams::default().fields(&format!("involvedObject.name={APP}")))
        .await
        .unwrap()
        .items;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e.reason.as_deref()).collect();
    for want in ["DisruptionsBlocked", "DisruptionsAllowed"] {
        assert!(reasons.contains(&want), "no Event {want}: {reasons:?}");
    }
}
