//! Zone-aware standbys (KIP-708) on a live app: four word-count instances (real Kafka Streams
//! members run by the stand-in kubelet) on six nodes in three zones, one instance per node, so
//! some zone holds two. Each member subscribes with its own pod's zone as `client.tag.zone`
//! (the node's label, copied onto the pod at binding and read by the downward API), and every
//! stateful task's standby is in another zone than its active copy: after the first
//! rebalance, and again after a pod is replaced (possibly on another node and zone).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::zones::{
    PlacedPod, StreamsMember, incomplete, placed_pods, stable_streams_group,
};
use integration_tests::{
    Kafka, LocalPods, Operator, TestNamespace, client, install_crd, wait_for, wait_for_list,
};
use k8s_openapi::api::core::v1::Pod;
use kstreams_kafka::userdata::TaskId;
use kstreams_operator::crd::{PlacementRule, StreamApp};
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

const APP: &str = "zones";
const REPLICAS: usize = 4;
/// Partitions of the input topic, and so tasks per subtopology.
const PARTITIONS: i32 = 6;
const STANDBYS: usize = 1;
/// Four JVM starts (the stand-in starts two at a time) plus the joins and rebalances, on a
/// busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(300);

fn pod_ready(pod: &Pod) -> bool {
    (pod.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten()))
    .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Waits until the group is Stable with one member per pod, no probing rebalance pending and
/// every task assigned, and `also` holds; returns the members.
async fn settled(
    kafka: &Kafka,
    group: &str,
    pods: &[String],
    also: impl Fn(&[StreamsMember]) -> Option<String>,
) -> Vec<StreamsMember> {
    let deadline = Instant::now() + STARTUP;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let why = match stable_streams_group(&kafka.admin, group, pods) {
            Ok(members) => {
                match incomplete(&members, pods, PARTITIONS, STANDBYS).or_else(|| also(&members)) {
                    None => return members,
                    Some(why) => why,
                }
            }
            Err(why) => why,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {STARTUP:?} waiting for a complete assignment; last: {why}"
        );
    }
}

/// Every member reports its own pod's zone, and every standby is in another zone than the
/// active copy of its task.
fn assert_zone_aware(members: &[StreamsMember], placed: &BTreeMap<String, PlacedPod>) {
    let zone_of = |m: &StreamsMember| {
        let pod = m.pod.as_deref().expect("a member of a pod");
        &placed
            .get(pod)
            .unwrap_or_else(|| panic!("{pod} is not placed: {placed:?}"))
            .zone
    };
    for m in members {
        let want = BTreeMap::from([("zone".to_string(), zone_of(m).clone())]);
        assert_eq!(
            m.client_tags, want,
            "{} subscribed with client tags {:?}, its pod runs in {}",
            m.client_id, m.client_tags, want["zone"]
        );
    }
    let active: BTreeMap<&TaskId, &StreamsMember> = members
        .iter()
        .flat_map(|m| m.active.iter().map(move |t| (t, m)))
        .collect();
    let mut layout = Vec::new();
    for m in members {
        for task in &m.standby {
            let holder = active[task];
            layout.push(format!(
                "{task}: active {} ({}), standby {} ({})",
                holder.client_id,
                zone_of(holder),
                m.client_id,
                zone_of(m)
            ));
            assert_ne!(
                zone_of(holder),
                zone_of(m),
                "standby of {task} on {} is in the zone of its active task on {}",
                m.client_id,
                holder.client_id
            );
        }
    }
    layout.sort();
    println!("standbys:\n  {}", layout.join("\n  "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_live_in_another_zone_than_their_active_task() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "zones").await;
    let kafka = Kafka::new("zones");
    let input = kafka.create_topic("lines", PARTITIONS, &[]).await;
    let output = kafka.create_topic("counts", PARTITIONS, &[]).await;
    let app_id = format!("{}.zones", kafka.prefix);
    let _operator = Operator::start(&client, &ns.name).await;
    let mut app = wordcount_app(APP, &app_id, &kafka.bootstrap, &input, &output);
    app.spec.replicas = REPLICAS as i32;
    app.spec.standby_replicas = STANDBYS as i32;
    app.spec.placement.anti_affinity = PlacementRule::Required;
    assert!(app.spec.placement.zone_aware_standbys, "on by default");
    let apps = ns.api::<StreamApp>();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let local = LocalPods::start(&client, &ns.name, &[]);
    let started = Instant::now();

    let pods: Vec<String> = (0..REPLICAS).map(|i| format!("{APP}-{i}")).collect();
    let selector = format!("app.kubernetes.io/instance={APP}");
    let pod_api = ns.api::<Pod>();
    wait_for_list(&pod_api, &selector, "all pods bound", STARTUP, |ps| {
        ps.len() == REPLICAS
            && ps
                .iter()
                .all(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
    })
    .await;
    let placed = placed_pods(&client, &ns.name, &selector).await;
    println!("placed: {placed:#?}");
    for (pod, p) in &placed {
        assert_eq!(
            p.label.as_deref(),
            Some(p.zone.as_str()),
            "{pod} does not carry its node's zone label (PodTopologyLabels admission)"
        );
    }
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for p in placed.values() {
        *per_zone.entry(&p.zone).or_default() += 1;
    }
    assert_eq!(
        placed
            .values()
            .map(|p| &p.node)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        REPLICAS,
        "one instance per node: {placed:?}"
    );
    assert!(
        per_zone.values().any(|n| *n >= 2),
        "no zone holds two instances: {per_zone:?}"
    );

    let members = settled(&kafka, &app_id, &pods, |_| None).await;
    println!("first complete assignment after {:?}", started.elapsed());
    assert_zone_aware(&members, &placed);
    let log = local.wait_log(&pods[0], "-> RUNNING", STARTUP).await;
    assert!(
        log.contains("rack.aware.assignment.tags = [zone]"),
        "{} did not run with rack.aware.assignment.tags=zone",
        pods[0]
    );

    // Replace an instance of the zone that holds two: its successor may land on another node
    // and zone, and must report where it is now.
    let (victim, old) = placed
        .iter()
        .find(|(_, p)| per_zone[p.zone.as_str()] >= 2)
        .map(|(name, p)| (name.clone(), p.clone()))
        .unwrap();
    let old_members: Vec<String> = members
        .iter()
        .filter(|m| m.pod.as_deref() == Some(&victim))
        .map(|m| m.member_id.clone())
        .collect();
    let deleted = Instant::now();
    pod_api
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&pod_api, &victim, "a new pod Ready", STARTUP, |p| {
        p.uid().as_deref() != Some(&old.uid) && pod_ready(p)
    })
    .await;
    let members = settled(&kafka, &app_id, &pods, |ms| {
        let m = ms.iter().find(|m| m.pod.as_deref() == Some(&victim))?;
        old_members
            .contains(&m.member_id)
            .then(|| format!("{victim} is still its old member {}", m.member_id))
    })
    .await;
    println!(
        "{victim} replaced; complete assignment {:?} after the delete",
        deleted.elapsed()
    );
    let placed = placed_pods(&client, &ns.name, &selector).await;
    println!(
        "{victim}: was on {} ({}), now on {} ({})",
        old.node, old.zone, placed[&victim].node, placed[&victim].zone
    );
    assert_zone_aware(&members, &placed);
}

/// One `client.tag.zone` in `spec.config` would give every pod the same zone: the apiserver
/// refuses it, zone-aware or not, and names the way that works; other tags and the tag list
/// are the user's.
#[tokio::test]
async fn a_shared_zone_tag_is_refused_at_admission() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "zones-admission").await;
    let apps = ns.api::<StreamApp>();
    let app = |name: &str, zone_aware: bool, config: &[(&str, &str)]| {
        let mut app = wordcount_app(name, name, "127.0.0.1:19092", "in", "out");
        app.spec.placement.zone_aware_standbys = zone_aware;
        app.spec.config = (config.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        app
    };
    for zone_aware in [true, false] {
        let err = apps
            .create(
                &PostParams::default(),
                &app("shared-zone", zone_aware, &[("client.tag.zone", "zone-a")]),
            )
            .await
            .expect_err("client.tag.zone in spec.config must be refused");
        assert!(
            err.to_string()
                .contains("set KAFKA_STREAMS_CLIENT_TAG_ZONE per pod in spec.env"),
            "zoneAwareStandbys {zone_aware}: {err}"
        );
    }
    let tags = [
        ("rack.aware.assignment.tags", "rack"),
        ("client.tag.rack", "r1"),
    ];
    apps.create(&PostParams::default(), &app("own-tags", true, &tags))
        .await
        .expect("other client tags and the tag list are the user's");
}
