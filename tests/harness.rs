//! Proof that the e2e ground is real: the real scheduler places pods by anti-affinity on
//! simulated nodes, the PV controller binds their claims, and the broker stores and serves.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::{Kafka, TestNamespace, client, wait_for, wait_for_list};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use rdkafka::Message;
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const STS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: spread}
spec:
  replicas: 0
  serviceName: spread
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
      containers:
      - {name: app, image: example.invalid/app:1}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

fn running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[tokio::test]
async fn required_anti_affinity_spreads_pods_and_binds_their_volumes() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "harness").await;
    // One instance per simulated node (e2e/cluster.sh decides how many there are).
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels("type=kwok"))
        .await
        .unwrap()
        .items
        .len();
    assert!(nodes >= 2, "the e2e cluster has {nodes} kwok nodes");
    let mut sts: StatefulSet = serde_yaml::from_str(STS).unwrap();
    sts.spec.as_mut().unwrap().replicas = Some(nodes as i32);
    ns.api::<StatefulSet>()
        .create(&PostParams::default(), &sts)
        .await
        .unwrap();

    let pods = wait_for_list(
        &ns.api::<Pod>(),
        "app=spread",
        &format!("{nodes} pods Running and Ready"),
        Duration::from_secs(120),
        |pods| pods.len() == nodes && pods.iter().all(running_and_ready),
    )
    .await;
    let used: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    assert_eq!(
        used.len(),
        nodes,
        "pods must land on {nodes} different nodes: {used:?}"
    );

    let claims = wait_for_list(
        &ns.api::<PersistentVolumeClaim>(),
        "app=spread",
        &format!("{nodes} PVCs Bound"),
        Duration::from_secs(120),
        |pvcs| {
            pvcs.len() == nodes
                && pvcs
                    .iter()
                    .all(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
        },
    )
    .await;
    assert!(
        claims
            .iter()
            .all(|c| c.spec.as_ref().unwrap().volume_name.is_some())
    );

    // One more instance has no node left that satisfies the anti-affinity.
    ns.api::<StatefulSet>()
        .patch(
            "spread",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": nodes + 1}})),
        )
        .await
        .unwrap();
    let pending = wait_for(
        &ns.api::<Pod>(),
        &format!("spread-{nodes}"),
        "PodScheduled=False because of the anti-affinity (once its volume is bound)",
        Duration::from_secs(60),
        |p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.type_ == "PodScheduled"
                        && c.reason.as_deref() == Some("Unschedulable")
                        && c.message.as_deref().unwrap_or("").contains("anti-affinity")
                })
        },
    )
    .await;
    let status = pending.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert!(status.conditions.unwrap().iter().any(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.message.as_deref().unwrap_or("").contains(&format!(
                "{nodes} node(s) didn't match pod anti-affinity rules"
            ))
    }));
}

#[tokio::test]
async fn a_compacted_topic_keeps_its_policy_and_serves_records() {
    let kafka = Kafka::new("harness");
    let topic = kafka
        .create_topic("compacted", 3, &[("cleanup.policy", "compact")])
        .await;

    let configs = kafka
        .admin
        .describe_configs(&[ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await
        .unwrap();
    let config = configs.into_iter().next().unwrap().unwrap();
    let policy = config.get("cleanup.policy").and_then(|e| e.value.clone());
    assert_eq!(policy.as_deref(), Some("compact"));

    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("word").payload("count=1"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let consumer: StreamConsumer = Kafka::config(&kafka.bootstrap)
        .set("group.id", format!("{}.reader", kafka.prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record within 30s")
        .unwrap();
    assert_eq!(msg.key(), Some(&b"word"[..]));
    assert_eq!(msg.payload(), Some(&b"count=1"[..]));
}
