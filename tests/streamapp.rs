//! The StreamApp reconciler against the real cluster: what a user applies, sees and relies on.
//!
//! These tests are about the Kubernetes side. Their kwok pods run nothing, so with Kafka
//! checks on they would never be Ready (no member in the group, see `ready_processing.rs`):
//! the operator runs with Kafka checks off, except in the quiet minute, which also shows the
//! Kafka step writing nothing once an app's verdicts settled.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use integration_tests::{Operator, TestNamespace, client, wait_for, wait_for_list};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::kafka::KafkaSettings;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, ResourceExt};

const SELECTOR: &str = "app.kubernetes.io/managed-by=kstreams-operator";

/// The seed's word-count app as a StreamApp.
fn wordcount(name: &str) -> StreamApp {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP (make test sets it)");
    serde_yaml::from_str(&format!(
        r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: {name}}}
spec:
  image: kstreams-examples/wordcount:0.1.0
  replicas: 2
  kafka: {{bootstrapServers: "{bootstrap}"}}
  state: {{storage: 1Gi, mountPath: /data/count-store}}
  placement: {{antiAffinity: Required}}
"#
    ))
    .unwrap()
}

fn condition<'a>(app: &'a StreamApp, type_: &str) -> Option<&'a Condition> {
    app.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn is(app: &StreamApp, type_: &str, status: &str) -> bool {
    condition(app, type_)
        .is_some_and(|c| c.status == status && c.observed_generation == app.metadata.generation)
}

fn ready_at_current_generation(app: &StreamApp) -> bool {
    is(app, "Ready", "True")
        && app.status.as_ref().and_then(|s| s.observed_generation) == app.metadata.generation
}

/// The uids of the app pods in `ns`: a pod replaced by its StatefulSet gets a new uid.
async fn pod_uids(ns: &TestNamespace) -> BTreeSet<String> {
    ns.api::<Pod>()
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.uid())
        .collect()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Running")
            && s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

const LONG: Duration = Duration::from_secs(120);

#[tokio::test]
async fn wordcount_app_runs_spread_with_bound_state_and_reports_ready() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "wordcount").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &wordcount("wordcount"))
        .await
        .unwrap();

    let app = wait_for(
        &apps,
        "wordcount",
        "Ready=True at the current generation",
        LONG,
        ready_at_current_generation,
    )
    .await;
    let status = app.status.as_ref().unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (2, 2));
    assert!(
        condition(&app, "Processing").is_none() && status.kafka.is_none(),
        "with Kafka checks off nothing is said about Kafka"
    );

    let svc = ns.api::<Service>().get("wordcount").await.unwrap();
    let svc_spec = svc.spec.unwrap();
    assert_eq!(svc_spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(svc_spec.publish_not_ready_addresses, Some(true));
    let sts = ns.api::<StatefulSet>().get("wordcount").await.unwrap();
    assert_eq!(
        sts.spec.as_ref().unwrap().service_name.as_deref(),
        Some("wordcount")
    );
    ns.api::<PodDisruptionBudget>()
        .get("wordcount")
        .await
        .unwrap();
    let cm = ns.api::<ConfigMap>().get("wordcount-config").await.unwrap();
    let props = &cm.data.unwrap()["streams.properties"];
    assert!(props.contains("state.dir=/data/count-store"), "{props}");
    assert!(props.contains("application.id=wordcount"), "{props}");

    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(pod_ready));
    let nodes: BTreeSet<_> = pods
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    assert_eq!(
        nodes.len(),
        2,
        "required anti-affinity puts the instances on different nodes"
    );
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        let mount = spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "state")
            .expect("state volume mounted");
        assert_eq!(mount.mount_path, "/data/count-store");
        let claim = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "state")
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .expect("state volume is a PVC");
        let pvc = ns
            .api::<PersistentVolumeClaim>()
            .get(&claim.claim_name)
            .await
            .unwrap();
        assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    }
}

/// The Events about the object `name`.
async fn events_for(ns: &TestNamespace, name: &str) -> Vec<Event> {
    ns.api::<Event>()
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn runtime_problems_show_as_degraded_with_reason_and_event() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "degraded").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();

    let mut secret_app = wordcount("no-secret");
    secret_app.spec.kafka.sasl = Some(
        serde_json::from_value(serde_json::json!(
            {"mechanism": "SCRAM-SHA-512", "secretName": "missing-creds"}
        ))
        .unwrap(),
    );
    let mut class_app = wordcount("no-class");
    class_app.spec.state.storage_class_name = Some("does-not-exist".into());
    let mut unschedulable = wordcount("nowhere");
    unschedulable.spec.placement.node_selector = [("pool".to_string(), "gpu".to_string())].into();
    for app in [&secret_app, &class_app, &unschedulable] {
        apps.create(&PostParams::default(), app).await.unwrap();
    }

    for (name, reason, detail) in [
        ("no-secret", "SecretNotFound", "missing-creds"),
        ("no-class", "StorageClassNotFound", "does-not-exist"),
        ("nowhere", "PodsUnschedulable", "node affinity/selector"),
    ] {
        let app = wait_for(
            &apps,
            name,
            &format!("Degraded=True reason {reason}"),
            LONG,
            |a| {
                condition(a, "Degraded").is_some_and(|c| {
                    c.status == "True" && c.reason == reason && c.message.contains(detail)
                })
            },
        )
        .await;
        let degraded = condition(&app, "Degraded").unwrap();
        assert!(
            degraded.message.contains(detail),
            "{name}: {}",
            degraded.message
        );
        assert!(is(&app, "Ready", "False"));
        let events = events_for(&ns, name).await;
        assert!(
            events
                .iter()
                .any(|e| e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")),
            "{name}: a Warning event {reason}: {events:?}"
        );
    }

    // Fixing the cause clears the condition without restarting anything.
    apps.patch(
        "nowhere",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(serde_json::json!(
                [{"op": "remove", "path": "/spec/placement/nodeSelector"}]
            ))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    wait_for(
        &apps,
        "nowhere",
        "Ready=True after the fix",
        LONG,
        ready_at_current_generation,
    )
    .await;
}

#[tokio::test]
async fn config_edit_rolls_pods_and_kubectl_scale_works() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "rollout").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    let mut app = wordcount("roll");
    app.spec.placement.anti_affinity = kstreams_operator::crd::PlacementRule::Preferred;
    apps.create(&PostParams::default(), &app).await.unwrap();
    wait_for(&apps, "roll", "Ready", LONG, ready_at_current_generation).await;
    let before = pod_uids(&ns).await;

    apps.patch(
        "roll",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"config": {"commit.interval.ms": "1000"}}})),
    )
    .await
    .unwrap();
    wait_for_list(
        &ns.api::<Pod>(),
        SELECTOR,
        "both pods replaced and Ready",
        LONG,
        |pods| {
            pods.len() == 2
                && pods
                    .iter()
                    .all(|p| pod_ready(p) && !before.contains(&p.uid().unwrap_or_default()))
        },
    )
    .await;
    wait_for(
        &apps,
        "roll",
        "Ready after the rollout",
        LONG,
        ready_at_current_generation,
    )
    .await;

    // `kubectl scale` goes through the scale subresource.
    let out = std::process::Command::new("kubectl")
        .args(["-n", &ns.name, "scale", "streamapp/roll", "--replicas=3"])
        .output()
        .expect("kubectl on PATH (e2e/cluster.sh env)");
    assert!(
        out.status.success(),
        "kubectl scale: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = wait_for(&apps, "roll", "3/3 ready after scale", LONG, |a| {
        ready_at_current_generation(a) && a.status.as_ref().is_some_and(|s| s.ready_replicas == 3)
    })
    .await;
    assert_eq!(app.spec.replicas, 3);
    let sts = ns.api::<StatefulSet>().get("roll").await.unwrap();
    assert_eq!(sts.spec.unwrap().replicas, Some(3));
}

#[tokio::test]
async fn deleting_the_app_keeps_volumes_under_retain_and_removes_them_under_delete() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "retention").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    let keep = wordcount("keep");
    let mut drop = wordcount("drop");
    drop.spec.state.retention.when_deleted = kstreams_operator::crd::RetentionPolicy::Delete;
    for app in [&keep, &drop] {
        let mut app = app.clone();
        app.spec.placement.anti_affinity = kstreams_operator::crd::PlacementRule::Preferred;
        apps.create(&PostParams::default(), &app).await.unwrap();
    }
    for name in ["keep", "drop"] {
        wait_for(&apps, name, "Ready", LONG, ready_at_current_generation).await;
    }
    let pvcs = ns.api::<PersistentVolumeClaim>();
    for name in ["keep", "drop"] {
        apps.delete(name, &DeleteParams::foreground())
            .await
            .unwrap();
    }
    wait_for_list(
        &pvcs,
        "app.kubernetes.io/instance=drop",
        "drop's PVCs deleted",
        LONG,
        |l| l.is_empty(),
    )
    .await;
    wait_for_list(
        &ns.api::<StatefulSet>(),
        SELECTOR,
        "both StatefulSets gone",
        LONG,
        |l| l.is_empty(),
    )
    .await;
    let kept = pvcs
        .list(&ListParams::default().labels("app.kubernetes.io/instance=keep"))
        .await
        .unwrap()
        .items;
    assert_eq!(kept.len(), 2, "Retain keeps both of keep's volumes");
    assert!(kept.iter().all(|p| p.metadata.deletion_timestamp.is_none()));
}

/// After convergence, an unchanged StreamApp causes no writes: no child and no status gets
/// a new resourceVersion over a quiet minute.
#[tokio::test]
async fn a_converged_app_causes_no_writes_over_a_quiet_minute() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "quiet").await;
    // Kafka checked every 5 s, and a member grace short enough to settle within the test.
    let kafka = KafkaSettings {
        refresh: Some(Duration::from_secs(5)),
        member_grace: Duration::from_secs(5),
        ..KafkaSettings::default()
    };
    let _operator = Operator::start_with(&client, &ns.name, kafka).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &wordcount("quiet"))
        .await
        .unwrap();
    // Its pods never join the group: settled once the grace passed for both (they turned
    // Ready moments apart, so one may still be "joining" a moment longer), Ready=False.
    wait_for(
        &apps,
        "quiet",
        "Ready=False MembersMissing for both pods at the current generation",
        LONG,
        |a| {
            condition(a, "Ready").is_some_and(|c| {
                c.status == "False"
                    && c.reason == "MembersMissing"
                    && !c.message.contains("still joining")
                    && c.observed_generation == a.metadata.generation
            })
        },
    )
    .await;
    let before = serde_json::to_string(&apps.get("quiet").await.unwrap().status).unwrap();
    // Let the last pod-status-triggered reconciles finish before the window opens: the window
    // starts at the resourceVersion of a list taken after the settled status was observed.
    let rv = ns
        .api::<ConfigMap>()
        .list_metadata(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let mut writes = Vec::new();
    let window = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + window;
    let wp = WatchParams::default().timeout(60);
    let streams = futures::stream::select_all([
        watch_writes(ns.api::<StreamApp>(), &wp, &rv).await,
        watch_writes(ns.api::<StatefulSet>(), &wp, &rv).await,
        watch_writes(ns.api::<Service>(), &wp, &rv).await,
        watch_writes(ns.api::<ConfigMap>(), &wp, &rv).await,
        watch_writes(ns.api::<PodDisruptionBudget>(), &wp, &rv).await,
    ]);
    futures::pin_mut!(streams);
    while let Ok(Some(write)) = tokio::time::timeout_at(deadline, streams.next()).await {
        writes.push(write);
    }
    assert!(
        writes.is_empty(),
        "writes during the quiet minute: {writes:#?}\nstatus when the window opened: {before}"
    );
}

async fn watch_writes<K>(
    api: Api<K>,
    wp: &WatchParams,
    rv: &str,
) -> futures::stream::BoxStream<'static, String>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + 'static,
{
    let stream = api.watch(wp, rv).await.unwrap();
    stream
        .filter_map(|ev| async move {
            match ev {
                Ok(WatchEvent::Added(o))
                | Ok(WatchEvent::Modified(o))
                | Ok(WatchEvent::Deleted(o)) => {
                    // The status is what a write most likely changed: show it, so a failure
                    // says what moved and not only that something did.
                    let status = serde_json::to_value(&o)
                        .ok()
                        .and_then(|v| v.get("status").cloned())
                        .unwrap_or_default();
                    Some(format!(
                        "{} {} rv={} status={status}",
                        K::kind(&()),
                        o.name_any(),
                        o.resource_version().unwrap_or_default()
                    ))
                }
                _ => None,
            }
        })
        .boxed()
}

/// Growing `spec.state.storage` expands every PVC and replaces the StatefulSet's template
/// without restarting the pods (volumeClaimTemplates are immutable in Kubernetes).
#[tokio::test]
async fn growing_storage_expands_the_volumes_without_restarting_pods() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "grow").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &wordcount("grow"))
        .await
        .unwrap();
    wait_for(&apps, "grow", "Ready", LONG, ready_at_current_generation).await;
    let pods_before = pod_uids(&ns).await;

    apps.patch(
        "grow",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"state": {"storage": "2Gi"}}})),
    )
    .await
    .unwrap();
    let requested = |pvc: &PersistentVolumeClaim| {
        pvc.spec
            .as_ref()
            .and_then(|s| {
                s.resources
                    .as_ref()?
                    .requests
                    .as_ref()?
                    .get("storage")
                    .cloned()
            })
            .map(|q| q.0)
    };
    wait_for_list(
        &ns.api::<PersistentVolumeClaim>(),
        SELECTOR,
        "both PVCs ask for 2Gi",
        LONG,
        |l| l.len() == 2 && l.iter().all(|p| requested(p).as_deref() == Some("2Gi")),
    )
    .await;
    wait_for(
        &ns.api::<StatefulSet>(),
        "grow",
        "a StatefulSet with a 2Gi template",
        LONG,
        |s| {
            s.spec.as_ref().is_some_and(|spec| {
                spec.volume_claim_templates
                    .iter()
                    .flatten()
                    .any(|t| requested(t).as_deref() == Some("2Gi"))
            })
        },
    )
    .await;
    wait_for(
        &apps,
        "grow",
        "Ready after growing",
        LONG,
        ready_at_current_generation,
    )
    .await;
    let pods_after = pod_uids(&ns).await;
    assert_eq!(
        pods_before, pods_after,
        "the pods keep running through the change"
    );
    let events = events_for(&ns, "grow").await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("GrowingVolumes")),
        "{events:?}"
    );
}
