//! The operator skips applies that would change nothing (`reconcile::applied`); this proves the
//! skip never keeps a child away from the spec: a child someone edits or deletes is put back
//! by the next reconcile, whichever kind it is.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::{Operator, TestNamespace, client, wait_for};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kstreams_operator::crd::StreamApp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

const LONG: Duration = Duration::from_secs(120);
const APP: &str = "drift";

fn app() -> StreamApp {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: {APP}}}
spec:
  image: kstreams-examples/wordcount:0.1.0
  replicas: 2
  kafka: {{bootstrapServers: "127.0.0.1:9"}}
  config: {{commit.interval.ms: "1000"}}
  placement: {{antiAffinity: None, zoneSpread: None}}
"#
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

/// Another field manager's edit, as `kubectl edit` or a script would make it.
fn other_manager() -> PatchParams {
    PatchParams {
        field_manager: Some("someone-else".into()),
        ..PatchParams::default()
    }
}

#[tokio::test]
async fn edited_or_deleted_children_are_put_back_to_the_spec() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "drift").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app()).await.unwrap();
    wait_for(&apps, APP, "Ready", LONG, ready).await;

    let configmaps = ns.api::<ConfigMap>();
    let cm_name = kstreams_operator::resources::configmap_name(&apps.get(APP).await.unwrap());
    let data = |c: &ConfigMap| c.data.clone().unwrap_or_default();
    let original: BTreeMap<String, String> = data(&configmaps.get(&cm_name).await.unwrap());
    assert!(
        original
            .values()
            .any(|v| v.contains("commit.interval.ms=1000"))
    );

    // ConfigMap data edited: the operator's build wins again.
    configmaps
        .patch(
            &cm_name,
            &other_manager(),
            &Patch::Merge(serde_json::json!({"data": {"streams.properties": "tampered=1\n"}})),
        )
        .await
        .unwrap();
    wait_for(
        &configmaps,
        &cm_name,
        "ConfigMap data restored",
        LONG,
        |c| data(c) == original,
    )
    .await;

    // Service deleted: recreated.
    let services = ns.api::<Service>();
    let svc_uid = services.get(APP).await.unwrap().metadata.uid;
    services
        .delete(APP, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&services, APP, "Service recreated", LONG, |s| {
        s.metadata.uid != svc_uid && s.metadata.deletion_timestamp.is_none()
    })
    .await;

    // StatefulSet scaled behind the operator's back: back to spec.replicas.
    let statefulsets = ns.api::<StatefulSet>();
    statefulsets
        .patch(
            APP,
            &other_manager(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    wait_for(
        &statefulsets,
        APP,
        "StatefulSet back at 2 replicas",
        LONG,
        |s| s.spec.as_ref().and_then(|s| s.replicas) == Some(2),
    )
    .await;

    // Budget deleted: recreated.
    let budgets = ns.api::<PodDisruptionBudget>();
    let pdb_uid = budgets.get(APP).await.unwrap().metadata.uid;
    budgets.delete(APP, &DeleteParams::default()).await.unwrap();
    wait_for(&budgets, APP, "PodDisruptionBudget recreated", LONG, |p| {
        p.metadata.uid != pdb_uid && p.metadata.deletion_timestamp.is_none()
    })
    .await;

    // ConfigMap deleted: recreated with the same data.
    let cm_uid = configmaps.get(&cm_name).await.unwrap().metadata.uid;
    configmaps
        .delete(&cm_name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&configmaps, &cm_name, "ConfigMap recreated", LONG, |c| {
        c.metadata.uid != cm_uid && data(c) == original
    })
    .await;
    wait_for(&apps, APP, "Ready again", LONG, ready).await;
}
