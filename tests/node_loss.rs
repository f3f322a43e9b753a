//! A node lost with an app's pod on it, on the real control plane. The app's only instance
//! runs on a node of the test's own, on a volume only that node can mount (as a local volume
//! is), and the node goes one of the two ways a node goes:
//!
//! - its Node object is deleted, as a cloud does once the machine is gone (the word count run
//!   by the stand-in): the pod garbage collector removes the pod, the StatefulSet recreates
//!   it, and the new pod cannot be scheduled anywhere;
//! - it stops reporting, as a machine that lost power does (a kwok pod, Kafka checks off): the
//!   node controller turns it NotReady and marks its pod not Ready.
//!
//! Either way the app's status names the pod, the node and the claim; the operator deletes
//! neither the pod nor the claim; and what the status tells the user to do brings the app
//! back, Ready on another node.

use std::time::{Duration, Instant};

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::nodes::PrivateNode;
use integration_tests::seed::{Recorder, now_ms, seed_words};
use integration_tests::{
    Kafka, LocalPods, Operator, TestNamespace, client, condition, is, wait_for,
};
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
use kstreams_operator::crd::{LostPod, NodeLoss, StreamApp};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;

const APP: &str = "lost";
/// A JVM start, the seed processed, on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(240);
/// The pod garbage collector's quarantine (40 s) and sweep (20 s), then a reconcile.
const NOTICED: Duration = Duration::from_secs(180);

fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<(&'a str, Option<&'a str>)> {
    let c = (pod.status.as_ref()?.conditions.as_ref()?)
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.as_str(), c.reason.as_deref()))
}

fn lost_pods(app: &StreamApp) -> &[LostPod] {
    app.status
        .as_ref()
        .map(|s| &s.lost_pods[..])
        .unwrap_or_default()
}

/// Waits (polling, as Events have no watch by reason here) for an Event `reason` on the app
/// whose message contains every one of `needles`; returns the message.
async fn event(ns: &TestNamespace, reason: &str, needles: &[&str]) -> String {
    let events = ns.api::<Event>();
    let on_app = ListParams::default().fields(&format!("involvedObject.name={APP}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let listed = events.list(&on_app).await.expect("listing Events").items;
        if let Some(m) = listed
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.message.clone())
            .find(|m| needles.iter().all(|n| m.contains(n)))
        {
            return m;
        }
        let seen: Vec<_> = listed.iter().map(|e| (&e.reason, &e.message)).collect();
        assert!(
            Instant::now() < deadline,
            "no Event {reason} naming {needles:?} within 60s; Events: {seen:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_lost_with_its_node_is_reported_and_left_to_the_user() {
    let started = Instant::now();
    let phase = |what: &str| println!("{:>6.1}s {what}", started.elapsed().as_secs_f64());
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "node-loss").await;
    let mut node = PrivateNode::create(&client, "zone-b").await;
    let (pod, claim) = (format!("{APP}-0"), format!("state-{APP}-0"));
    // The StatefulSet's claim takes the default class; the volume waits for it, pinned.
    let volume = node.pin_volume(&ns.name, &claim, "standard").await;
    let kafka = Kafka::new("node-loss");
    let input = kafka.create_topic("lines", 2, &[]).await;
    let output = kafka.create_topic("counts", 2, &[]).await;
    seed_words(&kafka.bootstrap, &input, 2, 5_000).await;
    let _operator = Operator::start(&client, &ns.name).await;
    let _local = LocalPods::start(&client, &ns.name, &[]);
    let app_id = format!("{}.{APP}", kafka.prefix);
    let mut app = wordcount_app(APP, &app_id, &kafka.bootstrap, &input, &output);
    app.spec.replicas = 1;
    app.spec.placement.tolerations.push(node.toleration());
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app).await.unwrap();
    wait_for(&apps, APP, "Ready", STARTUP, |a| is(a, "Ready", "True")).await;
    phase("Ready on the private node");

    let (pods, pvcs) = (ns.api::<Pod>(), ns.api::<PersistentVolumeClaim>());
    let first = pods.get(&pod).await.unwrap();
    let on = first.spec.as_ref().and_then(|s| s.node_name.clone());
    assert_eq!(on.as_deref(), Some(node.name.as_str()), "where {pod} runs");
    let kept = pvcs.get(&claim).await.unwrap();
    let bound_to = kept.spec.as_ref().and_then(|s| s.volume_name.clone());
    assert_eq!(
        bound_to.as_deref(),
        Some(volume.as_str()),
        "{claim}'s volume"
    );

    let selector = format!("app.kubernetes.io/instance={APP}");
    let pod_seen =
        Recorder::start(pods.clone(), watcher::Config::default().labels(&selector)).await;
    node.delete().await;
    let lost_at = Instant::now();
    let lost_ms = now_ms();
    phase(&format!("deleted node {}", node.name));
    let reported = wait_for(
        &apps,
        APP,
        "Degraded=True, NodeLost, naming the pod, the node and the claim",
        NOTICED,
        |a| {
            condition(a, "Degraded").is_some_and(|c| c.0 == "True" && c.1 == "NodeLost")
                && lost_pods(a).iter().any(|l| l.pod == pod && !l.bound)
        },
    )
    .await;
    phase(&format!(
        "status names the lost pod, {:.1}s after the node went",
        lost_at.elapsed().as_secs_f64()
    ));
    assert_eq!(
        lost_pods(&reported),
        [LostPod {
            pod: pod.clone(),
            node: node.name.clone(),
            node_state: NodeLoss::Gone,
            since: None,
            bound: false,
            terminating: false,
            claims: vec![claim.clone()],
        }]
    );
    let (_, _, message) = condition(&reported, "Degraded").unwrap();
    println!("Degraded: {message}");
    let remedy = format!(
        "kubectl -n {} delete pvc {claim} --wait=false; kubectl -n {} delete pod {pod}",
        ns.name, ns.name
    );
    for needle in [
        format!(
            "pod {pod} cannot be scheduled: only node {} can mount",
            node.name
        ),
        format!("its claim {claim}, and that node no longer exists"),
        remedy,
        "The operator deletes no pod and no claim".to_string(),
    ] {
        assert!(message.contains(&needle), "no {needle:?} in: {message}");
    }
    let ready = condition(&reported, "Ready").unwrap();
    assert_eq!((ready.0.as_str(), ready.1.as_str()), ("False", "NodeLost"));

    // When Kubernetes acted on the pods, after the node went.
    for s in pod_seen.seen() {
        let p = &s.object;
        println!(
            "  +{:>5}ms pod {} uid={} node={:?} phase={:?} scheduled={:?} disruption={:?}{}",
            s.at - lost_ms,
            p.name_any(),
            &p.uid().unwrap_or_default()[..8],
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            pod_condition(p, "PodScheduled"),
            pod_condition(p, "DisruptionTarget"),
            if s.deleted { " DELETED" } else { "" }
        );
    }
    // Kubernetes removed the pod: its last versions carry the pod garbage collector's mark.
    let old: Vec<Pod> = (pod_seen.seen().into_iter())
        .filter(|s| s.object.uid() == first.uid())
        .map(|s| s.object)
        .collect();
    assert!(
        old.iter().any(
            |p| pod_condition(p, "DisruptionTarget") == Some(("True", Some("DeletionByPodGC")))
        ),
        "no version of the old {pod} marked by the pod garbage collector: {:#?}",
        old.iter().map(|p| &p.status).collect::<Vec<_>>()
    );
    // The operator deleted nothing: the claim is the one bound to the pinned volume, and the
    // recreated pod waits, unschedulable.
    let warning = event(&ns, "NodeLost", &[&pod, &node.name, &claim]).await;
    println!("Warning NodeLost: {warning}");
    let claim_now = pvcs.get(&claim).await.unwrap();
    assert_eq!(claim_now.uid(), kept.uid(), "{claim} was replaced");
    assert!(
        claim_now.metadata.deletion_timestamp.is_none(),
        "{claim} is being deleted"
    );
    let waiting = pods.get(&pod).await.unwrap();
    assert_ne!(waiting.uid(), first.uid());
    assert!(
        waiting.metadata.deletion_timestamp.is_none(),
        "{pod} is being deleted"
    );
    assert_eq!(
        pod_condition(&waiting, "PodScheduled"),
        Some(("False", Some("Unschedulable")))
    );

    // What the status says to do when the node is gone for good.
    pvcs.delete(&claim, &DeleteParams::background())
        .await
        .unwrap();
    match pods.delete(&pod, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("deleting {pod}: {e}"),
    }
    phase("deleted the claim and the pod");
    let back = wait_for(
        &apps,
        APP,
        "Ready, not Degraded, nothing lost",
        STARTUP,
        |a| is(a, "Ready", "True") && is(a, "Degraded", "False") && lost_pods(a).is_empty(),
    )
    .await;
    phase("Ready again");
    let moved = pods.get(&pod).await.unwrap();
    let now_on = moved.spec.as_ref().and_then(|s| s.node_name.clone());
    assert!(
        now_on.as_ref().is_some_and(|n| *n != node.name),
        "{pod} runs on {now_on:?}"
    );
    let fresh = pvcs.get(&claim).await.unwrap();
    assert_ne!(fresh.uid(), kept.uid(), "{claim} is the old claim");
    assert_ne!(
        fresh.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some(volume.as_str())
    );
    event(&ns, "Recovered", &[]).await;
    println!(
        "{pod} on {now_on:?}, {claim} on {:?}; Ready: {:?}",
        fresh.spec.and_then(|s| s.volume_name),
        condition(&back, "Ready")
    );
}

/// An app whose kwok pods run nothing (Kafka checks off: Ready means the pods are), its only
/// instance on `node` by a volume only that node can mount.
fn kwok_app(node: &PrivateNode) -> StreamApp {
    let mut app: StreamApp = serde_yaml::from_str(&format!(
        "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: {APP}}}
spec:
  image: kstreams-examples/idle:1
  replicas: 1
  kafka: {{bootstrapServers: '127.0.0.1:1'}}
"
    ))
    .expect("a valid StreamApp");
    app.spec.placement.tolerations.push(node.toleration());
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_on_a_node_that_stopped_reporting_is_reported_until_the_node_is_removed() {
    let started = Instant::now();
    let phase = |what: &str| println!("{:>6.1}s {what}", started.elapsed().as_secs_f64());
    let client = client().await;
    let ns = TestNamespace::new(&client, "node-notready").await;
    let mut node = PrivateNode::create(&client, "zone-c").await;
    let (pod, claim) = (format!("{APP}-0"), format!("state-{APP}-0"));
    let volume = node.pin_volume(&ns.name, &claim, "standard").await;
    let _operator = Operator::start_without_kafka(&client, &ns.name).await;
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &kwok_app(&node))
        .await
        .unwrap();
    wait_for(&apps, APP, "Ready", STARTUP, |a| is(a, "Ready", "True")).await;
    let (pods, pvcs) = (ns.api::<Pod>(), ns.api::<PersistentVolumeClaim>());
    let first = pods.get(&pod).await.unwrap();
    let on = first.spec.as_ref().and_then(|s| s.node_name.clone());
    assert_eq!(on.as_deref(), Some(node.name.as_str()), "where {pod} runs");
    let kept = pvcs.get(&claim).await.unwrap();
    phase("Ready on the private node");

    node.stop_reporting().await;
    let silent_at = Instant::now();
    phase(&format!("node {} stopped reporting", node.name));
    let reported = wait_for(
        &apps,
        APP,
        "Degraded=True, NodeLost, the pod on a NotReady node",
        NOTICED,
        |a| {
            condition(a, "Degraded").is_some_and(|c| c.0 == "True" && c.1 == "NodeLost")
                && lost_pods(a).iter().any(|l| l.pod == pod && l.bound)
        },
    )
    .await;
    phase(&format!(
        "status names the lost pod, {:.1}s after the last heartbeat",
        silent_at.elapsed().as_secs_f64()
    ));
    let lost = &lost_pods(&reported)[0];
    assert_eq!(
        (&lost.node, lost.node_state, lost.bound, &lost.claims),
        (&node.name, NodeLoss::NotReady, true, &vec![claim.clone()]),
        "{lost:?}"
    );
    assert!(lost.since.is_some(), "{lost:?}");
    let (_, _, message) = condition(&reported, "Degraded").unwrap();
    println!("Degraded: {message}");
    for needle in [
        format!("pod {pod} is on node {}, NotReady since", node.name),
        format!("its claim {claim} is on a volume only that node can mount"),
        format!("kubectl delete node {}", node.name),
        "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute".to_string(),
        format!("delete pvc {claim} --wait=false"),
        "If it comes back, nothing needs doing".to_string(),
    ] {
        assert!(message.contains(&needle), "no {needle:?} in: {message}");
    }
    // The node controller marked the pod; nothing deleted it or its claim.
    let marked = pods.get(&pod).await.unwrap();
    assert_eq!(marked.uid(), first.uid());
    assert!(marked.metadata.deletion_timestamp.is_none());
    assert_eq!(pod_condition(&marked, "Ready"), Some(("False", None)));
    let claim_now = pvcs.get(&claim).await.unwrap();
    assert_eq!(claim_now.uid(), kept.uid());
    assert!(claim_now.metadata.deletion_timestamp.is_none());
    event(&ns, "NodeLost", &[&pod, &node.name]).await;

    // The machine is gone for good: the remedy the status gives.
    node.taint_out_of_service().await;
    pvcs.delete(&claim, &DeleteParams::background())
        .await
        .unwrap();
    match pods.delete(&pod, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("deleting {pod}: {e}"),
    }
    phase("tainted the node out of service, deleted the claim and the pod");
    wait_for(
        &apps,
        APP,
        "Ready, not Degraded, nothing lost",
        NOTICED,
        |a| is(a, "Ready", "True") && is(a, "Degraded", "False") && lost_pods(a).is_empty(),
    )
    .await;
    phase("Ready again");
    let moved = pods.get(&pod).await.unwrap();
    let now_on = moved.spec.as_ref().and_then(|s| s.node_name.clone());
    assert!(
        now_on.as_ref().is_some_and(|n| *n != node.name),
        "{pod} runs on {now_on:?}"
    );
    let fresh = pvcs.get(&claim).await.unwrap();
    assert_ne!(fresh.uid(), kept.uid());
    assert_ne!(
        fresh.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some(volume.as_str())
    );
}
