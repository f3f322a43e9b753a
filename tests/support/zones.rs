//! Where an app's pods run (their nodes' zones) and what its Kafka Streams members say about
//! it: the client tags each member subscribed with and the tasks the assignor gave it, decoded
//! with the `kstreams-kafka` crate from a DescribeGroups answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kstreams_kafka::group::{MemberSnapshot, decode_member};
use kstreams_kafka::userdata::{
    SubscriptionInfo, TaskId, decode_consumer_subscription, decode_subscription_info,
};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

/// The node label holding a node's zone, which the apiserver copies onto bound pods.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A pod as placed by the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPod {
    /// The pod's uid.
    pub uid: String,
    /// Its node.
    pub node: String,
    /// The node's zone label.
    pub zone: String,
    /// The pod's own zone label (what the downward API gives the container).
    pub label: Option<String>,
}

/// The bound pods matching `labels`, by name, with their nodes' zones.
pub async fn placed_pods(client: &Client, ns: &str, labels: &str) -> BTreeMap<String, PlacedPod> {
    let nodes: BTreeMap<String, String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing nodes: {e}"))
        .items
        .into_iter()
        .filter_map(|n| {
            let zone = n.labels().get(ZONE_LABEL)?.clone();
            Some((n.name_any(), zone))
        })
        .collect();
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(labels))
        .await
        .unwrap_or_else(|e| panic!("listing pods: {e}"))
        .items
        .into_iter()
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.clone()?;
            let placed = PlacedPod {
                uid: p.uid()?,
                zone: nodes.get(&node)?.clone(),
                label: p.labels().get(ZONE_LABEL).cloned(),
                node,
            };
            Some((p.name_any(), placed))
        })
        .collect()
}

/// One member of a Kafka Streams group, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsMember {
    /// Member id (new for every join of a new process).
    pub member_id: String,
    /// `client.id` of its consumer.
    pub client_id: String,
    /// The pod it belongs to.
    pub pod: Option<String>,
    /// `client.tag.*` of its subscription (SubscriptionInfo v11).
    pub client_tags: BTreeMap<String, String>,
    /// Active tasks.
    pub active: Vec<TaskId>,
    /// Standby tasks (warm-up replicas included).
    pub standby: Vec<TaskId>,
    /// A follow-up (probing) rebalance is scheduled.
    pub rebalance_scheduled: bool,
}

/// A Stable Kafka Streams group: its members, decoded. `Err` says why there is none yet (not
/// Stable, not a Streams group, data that do not decode).
pub fn stable_streams_group(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    group: &str,
    pods: &[String],
) -> Result<Vec<StreamsMember>, String> {
    let list = tokio::task::block_in_place(|| {
        admin
            .inner()
            .fetch_group_list(Some(group), Duration::from_secs(10))
    })
    .map_err(|e| format!("describing group {group}: {e}"))?;
    let g = (list.groups().iter().find(|g| g.name() == group))
        .ok_or_else(|| format!("no group {group}"))?;
    if g.state() != "Stable" {
        return Err(format!("group {group} is {}", g.state()));
    }
    if (g.protocol_type(), g.protocol()) != ("consumer", "stream") {
        return Err(format!(
            "group {group} runs {}/{}, not Kafka Streams",
            g.protocol_type(),
            g.protocol()
        ));
    }
    g.members()
        .iter()
        .map(|m| {
            let snapshot = MemberSnapshot {
                member_id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                client_host: m.client_host().to_string(),
                metadata: m.metadata().map(<[u8]>::to_vec),
                assignment: m.assignment().map(<[u8]>::to_vec),
            };
            let decoded = decode_member(&snapshot, pods, true);
            if !decoded.decode_problems.is_empty() {
                return Err(format!("{}: {:?}", m.client_id(), decoded.decode_problems));
            }
            Ok(StreamsMember {
                member_id: snapshot.member_id.clone(),
                client_id: decoded.client_id,
                pod: decoded.pod,
                client_tags: client_tags(&snapshot)?,
                active: decoded.active.into_iter().map(|(_, t)| t).collect(),
                standby: decoded.standby,
                rebalance_scheduled: decoded.rebalance_scheduled,
            })
        })
        .collect()
}

/// The client tags a member subscribed with.
fn client_tags(m: &MemberSnapshot) -> Result<BTreeMap<String, String>, String> {
    let what = |e: &dyn std::fmt::Display| format!("{}: subscription: {e}", m.client_id);
    let bytes = m.metadata.as_deref().ok_or_else(|| what(&"absent"))?;
    let user_data = (decode_consumer_subscription(bytes)
        .map_err(|e| what(&e))?
        .user_data)
        .ok_or_else(|| what(&"no Streams data"))?;
    match decode_subscription_info(&user_data).map_err(|e| what(&e))? {
        SubscriptionInfo::Decoded(s) => Ok(s.client_tags),
        SubscriptionInfo::UnknownVersion { version, .. } => {
            Err(what(&format!("version {version} is newer than known")))
        }
    }
}

/// Why an assignment is not complete yet: every member belongs to a pod in `pods`, one member
/// per pod, no probing rebalance pending, every task active exactly once, and every task of a
/// stateful subtopology (one with standbys) on exactly `standbys` other members. `partitions`
/// is the number of tasks per subtopology.
pub fn incomplete(
    members: &[StreamsMember],
    pods: &[String],
    partitions: i32,
    standbys: usize,
) -> Option<String> {
    let by_pod: BTreeMap<&str, usize> = pods
        .iter()
        .map(|p| {
            let n = members
                .iter()
                .filter(|m| m.pod.as_deref() == Some(p))
                .count();
            (p.as_str(), n)
        })
        .collect();
    if members.len() != pods.len() || by_pod.values().any(|n| *n != 1) {
        return Some(format!("members per pod {by_pod:?} of {}", members.len()));
    }
    if let Some(m) = members.iter().find(|m| m.rebalance_scheduled) {
        return Some(format!("{} has a probing rebalance pending", m.client_id));
    }
    let count = |tasks: &mut dyn Iterator<Item = &TaskId>| {
        let mut n: BTreeMap<TaskId, usize> = BTreeMap::new();
        for t in tasks {
            *n.entry(t.clone()).or_default() += 1;
        }
        n
    };
    let active = count(&mut members.iter().flat_map(|m| &m.active));
    let standby = count(&mut members.iter().flat_map(|m| &m.standby));
    let subtopologies: BTreeSet<i32> = active.keys().map(|t| t.subtopology).collect();
    let stateful: BTreeSet<i32> = standby.keys().map(|t| t.subtopology).collect();
    if stateful.is_empty() {
        return Some("no standby tasks".into());
    }
    for sub in &subtopologies {
        for p in 0..partitions {
            let task = TaskId::new(*sub, p);
            if active.get(&task) != Some(&1) {
                return Some(format!(
                    "task {task} is active {:?} times",
                    active.get(&task)
                ));
            }
            let want = if stateful.contains(sub) { standbys } else { 0 };
            if standby.get(&task).copied().unwrap_or(0) != want {
                return Some(format!("task {task} has {:?} standbys", standby.get(&task)));
            }
        }
    }
    if active.len() != subtopologies.len() * partitions as usize {
        return Some(format!("unexpected active tasks {:?}", active.keys()));
    }
    None
}
