//! Safe scaling of a live 3-pod word count (real Kafka Streams members run by the stand-in
//! kubelet, seeded state, a trickle of input): a scale-down from 3 to 1 steps the StatefulSet
//! down one instance at a time, the second removal only once the group is Stable again with the
//! two remaining members; a scale-down asked for while an instance restores its state waits
//! until the restore is over, says so, and then completes.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::seed::{LiveApp, LiveSpec, Recorder, Seen, live_app, now_ms, pod_loads};
use integration_tests::{condition, is, wait_for, wait_for_list};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kstreams_operator::crd::{RolloutStatus, StreamApp};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

/// Three JVM starts, the seed processed, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(240);
/// A scale-down step: a clean close, the group's rebalance, the moved tasks' restores.
const SCALE: Duration = Duration::from_secs(240);

fn sts_replicas(s: &StatefulSet) -> i32 {
    s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rollout(a: &StreamApp) -> Option<&RolloutStatus> {
    a.status.as_ref()?.rollout.as_ref()
}

fn progressing_reason(a: &StreamApp) -> String {
    condition(a, "Progressing").map(|c| c.1).unwrap_or_default()
}

/// The replicas values the StatefulSet had, in order, each once per run of equal values.
fn replicas_history(seen: &[Seen<StatefulSet>]) -> Vec<i32> {
    let mut out: Vec<i32> = Vec::new();
    for s in seen.iter().filter(|s| !s.deleted) {
        let r = sts_replicas(&s.object);
        if out.last() != Some(&r) {
            out.push(r);
        }
    }
    out
}

/// One line per recorded StreamApp status: what `kubectl get -o yaml` showed over time.
fn status_lines(seen: &[Seen<StreamApp>]) -> String {
    seen.iter()
        .map(|s| {
            let a = &s.object;
            let k = a.status.as_ref().and_then(|s| s.kafka.as_ref());
            let group = k.and_then(|k| k.group.as_ref()).map(|g| {
                let pods: Vec<String> = g
                    .members
                    .iter()
                    .map(|m| m.pod.clone().unwrap_or_else(|| format!("?{}", m.client_id)))
                    .collect();
                format!("{} {pods:?}", g.state)
            });
            format!(
                "{} rollout={:?} progressing={} restoring={:?} group={group:?} probing={:?}",
                s.at,
                rollout(a).map(|r| (&r.step, r.replicas, &r.waiting_for)),
                progressing_reason(a),
                condition(a, "Restoring").map(|c| c.0),
                k.map(|k| k.probing_rebalance_pending),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn scale(live: &LiveApp, replicas: i32) {
    live.apps
        .patch(
            &live.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

/// Waits until the app runs `replicas` instances, Ready, with no scale-down under way and
/// only the pods `<name>-0` .. left.
async fn scaled_to(live: &LiveApp, replicas: i32) -> StreamApp {
    let done = wait_for(
        &live.apps,
        &live.name,
        &format!("{replicas} instances, Ready, no scale-down under way"),
        SCALE,
        |a| {
            a.status.as_ref().is_some_and(|s| {
                s.replicas == replicas
                    && s.rollout.is_none()
                    && s.observed_generation == a.metadata.generation
            }) && is(a, "Ready", "True")
        },
    )
    .await;
    let want: BTreeSet<String> = live.pod_names(replicas).into_iter().collect();
    wait_for_list(
        &live.ns.api::<Pod>(),
        &live.pod_selector(),
        &format!("only the pods {want:?}"),
        SCALE,
        |pods: &[Pod]| pods.iter().map(|p| p.name_any()).collect::<BTreeSet<_>>() == want,
    )
    .await;
    done
}

async fn recorders(
    live: &LiveApp,
) -> (
    Recorder<StatefulSet>,
    Recorder<Pod>,
    Recorder<StreamApp>,
    Api<StatefulSet>,
) {
    let by_name = watcher::Config::default().fields(&format!("metadata.name={}", live.name));
    let sts = live.ns.api::<StatefulSet>();
    (
        Recorder::start(sts.clone(), by_name.clone()).await,
        Recorder::start(
            live.ns.api::<Pod>(),
            watcher::Config::default().labels(&live.pod_selector()),
        )
        .await,
        Recorder::start(live.apps.clone(), by_name).await,
        sts,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_from_3_to_1_removes_one_pod_at_a_time_with_the_group_settled_between() {
    const APP: &str = "shrink";
    let spec = LiveSpec {
        standby_replicas: 1,
        words: 6_000,
        ..LiveSpec::default()
    };
    let live = live_app("scale-down", APP, spec, STARTUP).await;
    let [p0, p1, p2]: [String; 3] = live.pod_names(3).try_into().unwrap();
    let (sts_seen, pods_seen, app_seen, _) = recorders(&live).await;

    let started = std::time::Instant::now();
    scale(&live, 1).await;
    scaled_to(&live, 1).await;
    println!("3 -> 1 took {:?}", started.elapsed());

    let apps = app_seen.seen();
    println!("statuses during the scale-down:\n{}", status_lines(&apps));

    // The StatefulSet went 3 -> 2 -> 1, never straight to 1.
    let history = replicas_history(&sts_seen.seen());
    assert_eq!(history, [3, 2, 1], "the StatefulSet's replicas over time");

    // One pod at a time: p2 was gone before p1 began to terminate.
    let pods = pods_seen.seen();
    let gone = |name: &str| {
        pods.iter()
            .position(|s| s.deleted && s.object.name_any() == name)
    };
    let terminating = |name: &str| {
        pods.iter().position(|s| {
            s.object.name_any() == name
                && (s.deleted || s.object.metadata.deletion_timestamp.is_some())
        })
    };
    let (p2_gone, p1_terminating) = (gone(&p2), terminating(&p1));
    println!("pod events: {p2} gone at #{p2_gone:?}, {p1} terminating from #{p1_terminating:?}");
    assert!(
        p2_gone.is_some() && gone(&p1).is_some(),
        "both removed pods deleted"
    );
    assert!(
        p2_gone < p1_terminating,
        "{p1} began to terminate (event #{p1_terminating:?}) before {p2} was gone (#{p2_gone:?})"
    );
    assert!(
        terminating(&p0).is_none(),
        "{p0} was touched by the scale-down"
    );

    // The second step waited, and was taken from a settled app: the status that took it (the
    // StatefulSet at 1) shows the Kafka state it was decided on.
    let remove_p1 = format!("remove {p1}");
    // Once taken (the StatefulSet at 1) the step may still wait, on the StatefulSet controller
    // or the pod's termination; before, it waited with the StatefulSet still at 2.
    let waited: Vec<&RolloutStatus> = apps
        .iter()
        .filter_map(|s| rollout(&s.object))
        .filter(|r| r.step == remove_p1 && r.waiting_for.is_some() && r.replicas == 2)
        .collect();
    assert!(
        !waited.is_empty(),
        "the step {remove_p1:?} never waited with the StatefulSet at 2"
    );
    let position = |replicas: i32| {
        apps.iter().position(|s| {
            rollout(&s.object).is_some_and(|r| r.step == remove_p1 && r.replicas == replicas)
        })
    };
    assert!(
        position(2) < position(1),
        "{remove_p1:?} waited at 2 instances before it asked for 1"
    );
    assert!(
        apps.iter()
            .any(|s| rollout(&s.object).is_some_and(|r| r.step == remove_p1)
                && progressing_reason(&s.object) == "ScalingDown"),
        "Progressing never said ScalingDown during {remove_p1:?}"
    );
    let taken = apps
        .iter()
        .find(|s| rollout(&s.object).is_some_and(|r| r.step == remove_p1 && r.replicas == 1))
        .unwrap_or_else(|| panic!("no status took the step {remove_p1:?}"));
    let kafka = taken
        .object
        .status
        .as_ref()
        .and_then(|s| s.kafka.as_ref())
        .expect("the status that took the step has status.kafka");
    let group = kafka.group.as_ref().expect("a group");
    let members: Vec<Option<&str>> = group.members.iter().map(|m| m.pod.as_deref()).collect();
    assert_eq!(group.state, "Stable", "the group when {p1} was removed");
    assert_eq!(
        members.iter().copied().collect::<BTreeSet<_>>(),
        [Some(p0.as_str()), Some(p1.as_str())].into(),
        "the members when {p1} was removed: {p2} had left, the two remaining pods were members"
    );
    assert_eq!(members.len(), 2, "one member per pod: {members:?}");
    assert!(
        !kafka.probing_rebalance_pending,
        "a probing rebalance was pending when {p1} was removed"
    );
    for p in [&p0, &p1] {
        let pod = kafka.pods.iter().find(|k| &k.pod == p);
        assert!(
            pod.is_some_and(|k| k.members == 1 && k.caught_up != Some(false)),
            "{p} when {p1} was removed: {pod:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_during_a_restore_waits_until_the_restore_is_over() {
    const APP: &str = "hold";
    let restoring_pod = format!("{APP}-1");
    let spec = LiveSpec {
        // No standbys: a task that moves is restored from its changelog.
        standby_replicas: 0,
        words: 30_000,
        env: vec![
            // Only hold-1 starts from an empty volume, every time it starts.
            ("WORDCOUNT_WIPE_STATE".into(), restoring_pod.clone()),
            ("WORDCOUNT_RESTORE_DELAY_MS".into(), "200".into()),
        ],
        ..LiveSpec::default()
    };
    let live = live_app("scale-restore", APP, spec, STARTUP).await;
    let names = live.pod_names(3);
    let removed = names[2].clone();
    let (sts_seen, _pods_seen, app_seen, sts) = recorders(&live).await;
    let pods = live.ns.api::<Pod>();

    // hold-1 comes back with nothing: its tasks (and, meanwhile, the ones it left) restore.
    let deleted_at = now_ms();
    pods.delete(&restoring_pod, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&live.apps, APP, "Restoring=True", SCALE, |a| {
        is(a, "Restoring", "True")
    })
    .await;

    scale(&live, 2).await;
    let waiting = wait_for(
        &live.apps,
        APP,
        "the scale-down waiting for the restore",
        SCALE,
        |a| {
            a.metadata.generation == a.status.as_ref().and_then(|s| s.observed_generation)
                && rollout(a).is_some_and(|r| {
                    r.step == format!("remove {removed}")
                        && r.waiting_for
                            .as_deref()
                            .is_some_and(|w| w.contains("restor") || w.contains("warm-up"))
                })
        },
    )
    .await;
    let r = rollout(&waiting).unwrap();
    println!("waiting: {r:?}");
    assert_eq!(
        progressing_reason(&waiting),
        "ScaleDownWaitingForRestore",
        "{:?}",
        condition(&waiting, "Progressing")
    );
    assert!(is(&waiting, "Progressing", "True"));
    assert_eq!(r.replicas, 3, "the status says the StatefulSet keeps 3");
    assert_eq!(
        sts_replicas(&sts.get(APP).await.unwrap()),
        3,
        "the StatefulSet was scaled down during the restore"
    );
    assert!(
        pods.get_opt(&removed)
            .await
            .unwrap()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none()),
        "{removed} is terminating during the restore"
    );

    scaled_to(&live, 2).await;
    let apps = app_seen.seen();
    println!("statuses:\n{}", status_lines(&apps));
    let history = sts_seen.seen();
    assert_eq!(replicas_history(&history), [3, 2]);

    // The step was taken from a status with nothing restoring ...
    let taken = apps
        .iter()
        .find(|s| rollout(&s.object).is_some_and(|r| r.replicas == 2))
        .unwrap_or_else(|| panic!("no status took the step"));
    assert!(
        !is(&taken.object, "Restoring", "True"),
        "the step was taken while Restoring: {:?}",
        condition(&taken.object, "Restoring")
    );
    // ... and after every load that began since hold-1's deletion had ended, by the pods' own
    // logs (a load that began after the step is the removal's own).
    let stepped_at = history
        .iter()
        .find(|s| sts_replicas(&s.object) == 2)
        .map(|s| s.at)
        .unwrap();
    // Every pod's, the removed one's too: a restore there held the step as well.
    let loads = pod_loads(&live.local, &names);
    println!("loads since the deletion (step at {stepped_at}):");
    for l in loads.iter().filter(|l| l.start >= deleted_at) {
        println!("  {l:?}");
    }
    assert!(
        loads
            .iter()
            .any(|l| l.start >= deleted_at && l.start < stepped_at),
        "nothing restored after {restoring_pod} came back empty"
    );
    for l in loads
        .iter()
        .filter(|l| l.start >= deleted_at && l.start < stepped_at)
    {
        assert!(
            l.end.is_some_and(|e| e <= stepped_at),
            "the StatefulSet was scaled down at {stepped_at} while {} still loaded {}: {l:?}",
            l.pod,
            l.partition
        );
    }
}
