//! Pods lost with their node: which pods show it, what to look up about them, and which are
//! lost (pure), plus the lookups (I/O). A node is lost one of two ways:
//!
//! - its Node object is deleted (a cloud removed the VM, an autoscaler or an admin the node):
//!   the pod garbage collector force-deletes the pods bound to it within about a minute and the
//!   StatefulSet recreates them; one whose state volume only that node could mount (a local
//!   volume) then waits to be scheduled for ever;
//! - it stops reporting: after the node monitor's grace its Ready condition turns Unknown, the
//!   node controller marks its pods not Ready and, after their toleration (300 s by default),
//!   evicts them; a StatefulSet pod then stays Terminating until the node comes back or is
//!   removed, as a StatefulSet never runs two pods of one identity.
//!
//! Only the user knows whether a node is gone for good, so the operator reports and deletes no
//! pod and no claim. Nodes and volumes are looked up only for pods that show a symptom, so a
//! healthy app costs no request, and a 403 (the chart's `rbac.readNodes: false`) leaves what
//! the pods alone show.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Node, PersistentVolume, PersistentVolumeClaim, Pod, PodCondition,
};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tracing::debug;

use crate::crd::{LostPod, NodeLoss};
use crate::error::{Result, kube_err};

/// The reason of the Degraded and Ready conditions while a pod is lost with its node.
pub const NODE_LOST: &str = "NodeLost";

/// The node label local volumes are pinned to, and the scheduler's `kubernetes.io/hostname`.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// `DisruptionTarget` reasons of the controllers that delete the pods of a lost node: the
/// taint eviction controller (NotReady past the toleration) and the pod garbage collector
/// (node deleted, or tainted out-of-service).
const NODE_EVICTIONS: [&str; 2] = ["DeletionByTaintManager", "DeletionByPodGC"];

/// A node as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSeen {
    /// Its Ready condition is True.
    Ready,
    /// Its Ready condition is False or Unknown (or absent).
    NotReady {
        /// When Ready last changed (RFC 3339).
        since: Option<String>,
    },
    /// No such Node.
    Gone,
}

impl NodeSeen {
    /// The state of `node`, `None` meaning it does not exist.
    pub fn of(node: Option<&Node>) -> Self {
        let Some(node) = node else {
            return Self::Gone;
        };
        let ready = (node.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        match ready {
            Some(c) if c.status == "True" => Self::Ready,
            Some(c) => Self::NotReady {
                since: c.last_transition_time.as_ref().map(|t| t.0.to_string()),
            },
            None => Self::NotReady { since: None },
        }
    }
}

/// A claim as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimSeen {
    /// The hostnames its PersistentVolume's node affinity allows, when it pins the volume to
    /// named nodes (empty: any node of a zone or the cluster, or the volume was not read).
    pub hosts: Vec<String>,
}

/// What the lookups found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Nodes by name (for pods) or by `kubernetes.io/hostname` (for volumes); `None` when
    /// Nodes may not be read.
    pub nodes: Option<BTreeMap<String, NodeSeen>>,
    /// Claims by name; one missing here was not found or not read.
    pub claims: BTreeMap<String, ClaimSeen>,
}

/// The app's lost pods, and the namespace the remedy's commands name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LostPods {
    /// The app's namespace.
    pub namespace: String,
    /// The lost pods, by name.
    pub pods: Vec<LostPod>,
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    (pod.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

fn bound_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// Ready False with no reason while the containers are ready: what the node controller
/// writes when the node stops reporting; the kubelet gives every Ready=False of its own a
/// reason (ContainersNotReady, ReadinessGatesNotReady, PodCompleted).
fn stopped_reporting(pod: &Pod) -> bool {
    let not_ready = condition(pod, "Ready")
        .is_some_and(|c| c.status == "False" && c.reason.as_deref().is_none_or(str::is_empty));
    let containers_ready = condition(pod, "ContainersReady").is_some_and(|c| c.status == "True");
    not_ready && containers_ready
}

fn evicted_for_its_node(pod: &Pod) -> bool {
    condition(pod, "DisruptionTarget").is_some_and(|c| {
        c.status == "True" && NODE_EVICTIONS.contains(&c.reason.as_deref().unwrap_or(""))
    })
}

fn unschedulable(pod: &Pod) -> bool {
    condition(pod, "PodScheduled")
        .is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
}

/// A bound pod that its node's controllers are acting on, or that is terminating (a pod on a
/// lost node cannot finish), or a pod the scheduler cannot place (its volume may be pinned to
/// a lost node). Healthy pods show none of these, so they cost no lookup.
fn shows_symptom(pod: &Pod) -> bool {
    let bound = bound_node(pod).is_some();
    let terminating = pod.metadata.deletion_timestamp.is_some();
    (bound && (stopped_reporting(pod) || evicted_for_its_node(pod) || terminating))
        || (!bound && unschedulable(pod))
}

/// The PersistentVolumeClaims a pod mounts.
pub fn claims_of(pod: &Pod) -> Vec<String> {
    (pod.spec.iter())
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.clone()))
        .collect()
}

/// The nodes to look up: those the pods showing a symptom are bound to (none for a healthy
/// app).
pub fn nodes_to_look_up(pods: &[Pod]) -> BTreeSet<String> {
    (pods.iter().filter(|p| shows_symptom(p)))
        .filter_map(|p| bound_node(p).map(str::to_string))
        .collect()
}

/// The claims worth reading once the nodes are known (`None`: they may not be read): those of
/// pods the scheduler cannot place, and of bound pods whose node is not Ready. A pod merely
/// terminating on a Ready node (any rollout) costs no claim lookup.
pub fn claims_to_read(
    pods: &[Pod],
    nodes: Option<&BTreeMap<String, NodeSeen>>,
) -> BTreeSet<String> {
    let worth = |pod: &Pod| match (bound_node(pod), nodes) {
        (None, _) => true,
        (Some(n), Some(nodes)) => nodes.get(n).is_some_and(|s| *s != NodeSeen::Ready),
        (Some(_), None) => stopped_reporting(pod) || evicted_for_its_node(pod),
    };
    (pods.iter().filter(|p| shows_symptom(p) && worth(p)))
        .flat_map(claims_of)
        .collect()
}

/// The hostnames a PersistentVolume is pinned to: every term of its required node affinity
/// names hosts (`kubernetes.io/hostname In [...]`), as local volumes do. A volume of a zone
/// (or of no node in particular) is pinned to none.
pub fn pinned_hosts(pv: &PersistentVolume) -> Vec<String> {
    let terms = (pv.spec.as_ref())
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    let mut hosts = Vec::new();
    for term in terms {
        let named = (term.match_expressions.iter().flatten())
            .find(|e| e.key == HOSTNAME_LABEL && e.operator == "In")
            .and_then(|e| e.values.clone());
        match named {
            Some(values) if !values.is_empty() => hosts.extend(values),
            // One term a node of any name can satisfy: the volume is not tied to hosts.
            _ => return Vec::new(),
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The hostnames worth looking up: those the claims of unscheduled pods are pinned to.
pub fn hosts_to_look_up(pods: &[Pod], claims: &BTreeMap<String, ClaimSeen>) -> BTreeSet<String> {
    pods.iter()
        .filter(|p| shows_symptom(p) && bound_node(p).is_none())
        .flat_map(claims_of)
        .filter_map(|c| match claims.get(&c)?.hosts.as_slice() {
            [host] => Some(host.clone()),
            _ => None,
        })
        .collect()
}

/// The pods of `pods` that lost their node, given what the lookups found.
pub fn lost_pods(pods: &[Pod], found: &Lookups) -> Vec<LostPod> {
    let pinned = |pod: &Pod| -> Vec<(String, String)> {
        claims_of(pod)
            .into_iter()
            .filter_map(|c| match found.claims.get(&c)?.hosts.as_slice() {
                [host] => Some((c, host.clone())),
                _ => None,
            })
            .collect()
    };
    let mut out: Vec<LostPod> = pods
        .iter()
        .filter(|p| shows_symptom(p))
        .filter_map(|pod| {
            let name = pod.name_any();
            let terminating = pod.metadata.deletion_timestamp.is_some();
            if let Some(node) = bound_node(pod) {
                let (node_state, since) = match &found.nodes {
                    Some(nodes) => match nodes.get(node)? {
                        NodeSeen::Ready => return None,
                        NodeSeen::Gone => (NodeLoss::Gone, None),
                        NodeSeen::NotReady { since } => (NodeLoss::NotReady, since.clone()),
                    },
                    // Only what the pod shows, and the node controller's marks alone say it.
                    None if stopped_reporting(pod) || evicted_for_its_node(pod) => {
                        let since = condition(pod, "Ready")
                            .and_then(|c| c.last_transition_time.as_ref())
                            .map(|t| t.0.to_string());
                        (NodeLoss::NotReporting, since)
                    }
                    None => return None,
                };
                // The scheduler placed the pod on the one node its pinned volumes allow.
                let claims = pinned(pod).into_iter().map(|(c, _)| c).collect();
                return Some(LostPod {
                    pod: name,
                    node: node.to_string(),
                    node_state,
                    since,
                    bound: true,
                    terminating,
                    claims,
                });
            }
            let nodes = found.nodes.as_ref()?;
            let (host, node_state, since) =
                pinned(pod)
                    .into_iter()
                    .find_map(|(_, host)| match nodes.get(&host)? {
                        NodeSeen::Ready => None,
                        NodeSeen::Gone => Some((host, NodeLoss::Gone, None)),
                        NodeSeen::NotReady { since } => {
                            Some((host, NodeLoss::NotReady, since.clone()))
                        }
                    })?;
            let claims = (pinned(pod).into_iter())
                .filter(|(_, h)| *h == host)
                .map(|(c, _)| c)
                .collect();
            Some(LostPod {
                pod: name,
                node: host,
                node_state,
                since,
                bound: false,
                terminating,
                claims,
            })
        })
        .collect();
    out.sort();
    out
}

/// How every node-loss message ends, whichever remedy it gives: where it ends in a Degraded
/// message that joins it with other problems.
const TOLD_END: &str = "nothing needs doing.";

/// The node-loss part of a Degraded message (the whole of one that has none).
pub fn told(message: &str) -> &str {
    message
        .find(TOLD_END)
        .map(|at| &message[..at + TOLD_END.len()])
        .unwrap_or(message)
}

/// One lost pod, told.
fn describe(lost: &LostPod) -> String {
    let LostPod {
        pod, node, since, ..
    } = lost;
    let since = since
        .as_deref()
        .map(|s| format!(" since {s}"))
        .unwrap_or_default();
    let claims = lost.claims.join(", ");
    let mut text = match (lost.bound, lost.node_state) {
        (true, NodeLoss::Gone) => format!("pod {pod} was on node {node}, which no longer exists"),
        (true, NodeLoss::NotReady) => format!("pod {pod} is on node {node}, NotReady{since}"),
        (true, NodeLoss::NotReporting) => format!(
            "pod {pod} on node {node} is not Ready{since} while its containers are: its node \
             stopped reporting (the operator may not read Nodes to confirm it)"
        ),
        (false, state) => format!(
            "pod {pod} cannot be scheduled: only node {node} can mount the volume of its claim \
             {claims}, and that node {}",
            match state {
                NodeLoss::Gone => "no longer exists".to_string(),
                _ => format!("is NotReady{since}"),
            }
        ),
    };
    if lost.terminating && lost.node_state != NodeLoss::Gone {
        text.push_str(", and it is stuck terminating there");
    }
    if lost.bound && !lost.claims.is_empty() {
        text.push_str(&format!(
            "; its claim {claims} is on a volume only that node can mount"
        ));
    }
    text
}

impl LostPods {
    /// Whether `pod` is lost.
    pub fn contains(&self, pod: &str) -> bool {
        self.pods.iter().any(|p| p.pod == pod)
    }

    /// The lost pods and what the user does about them; `None` when none is lost.
    pub fn message(&self) -> Option<String> {
        if self.pods.is_empty() {
            return None;
        }
        let ns = &self.namespace;
        let told: Vec<String> = self.pods.iter().map(describe).collect();
        let names = |pick: &dyn Fn(&LostPod) -> bool, of: &dyn Fn(&LostPod) -> Vec<String>| {
            let set: BTreeSet<String> = self.pods.iter().filter(|p| pick(p)).flat_map(of).collect();
            set.into_iter().collect::<Vec<_>>()
        };
        // Pods on a node that still exists stay until it is removed; claims only a lost node
        // can mount must go with their pods, which the StatefulSet recreates elsewhere.
        let away = names(&|p| p.bound && p.node_state != NodeLoss::Gone, &|p| {
            vec![p.node.clone()]
        });
        let claims = names(&|_| true, &|p| p.claims.clone());
        let pods = names(&|p| !p.claims.is_empty(), &|p| vec![p.pod.clone()]);
        let mut steps = Vec::new();
        if !away.is_empty() {
            steps.push(format!(
                "remove the node (kubectl delete node {}, or taint it \
                 node.kubernetes.io/out-of-service=nodeshutdown:NoExecute) so Kubernetes deletes \
                 its pods",
                away.join(" ")
            ));
        }
        if !claims.is_empty() {
            steps.push(format!(
                "delete the claims only it can mount and their pods (kubectl -n {ns} delete pvc \
                 {} --wait=false; kubectl -n {ns} delete pod {})",
                claims.join(" "),
                pods.join(" ")
            ));
        }
        let remedy = if steps.is_empty() {
            "The pod garbage collector deletes the pods of a removed node within about a minute \
             and the StatefulSet recreates them on other nodes: nothing needs doing."
                .to_string()
        } else {
            format!(
                "The operator deletes no pod and no claim. If the node is gone for good, {}: the \
                 StatefulSet recreates them on other nodes and each instance restores its state \
                 from the changelog topics. If it comes back, nothing needs doing.",
                steps.join(", then ")
            )
        };
        Some(format!("{}. {remedy}", told.join("; ")))
    }
}

/// `Ok(None)` for a 403: this operator may not read the object's kind.
fn readable<T>(got: kube::Result<T>) -> kube::Result<Option<T>> {
    match got {
        Ok(found) => Ok(Some(found)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Looks up what `pods` (the app's, in `ns`) need, and returns the lost ones.
pub async fn observe(client: &Client, ns: &str, pods: &[Pod]) -> Result<LostPods> {
    let mut lost = LostPods {
        namespace: ns.to_string(),
        pods: Vec::new(),
    };
    if !pods.iter().any(shows_symptom) {
        return Ok(lost);
    }
    let api = Api::<Node>::all(client.clone());
    let mut nodes = BTreeMap::new();
    let mut nodes_readable = true;
    for name in nodes_to_look_up(pods) {
        match readable(api.get_opt(&name).await).map_err(kube_err("get", "Node", &name))? {
            Some(node) => {
                nodes.insert(name, NodeSeen::of(node.as_ref()));
            }
            None => {
                nodes_readable = false;
                break;
            }
        }
    }
    let mut found = Lookups::default();
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let pvs = Api::<PersistentVolume>::all(client.clone());
    let mut volumes_readable = true;
    for claim in claims_to_read(pods, nodes_readable.then_some(&nodes)) {
        let pvc = (pvcs.get_opt(&claim).await).map_err(kube_err(
            "get",
            "PersistentVolumeClaim",
            &claim,
        ))?;
        let volume = pvc.and_then(|c| c.spec?.volume_name);
        let mut hosts = Vec::new();
        if let Some(v) = volume.filter(|_| volumes_readable) {
            let pv = readable(pvs.get_opt(&v).await);
            match pv.map_err(kube_err("get", "PersistentVolume", &v))? {
                Some(pv) => hosts = pv.as_ref().map(pinned_hosts).unwrap_or_default(),
                None => {
                    debug!("no permission to read PersistentVolumes: pinned volumes not checked");
                    volumes_readable = false;
                }
            }
        }
        found.claims.insert(claim, ClaimSeen { hosts });
    }
    for host in hosts_to_look_up(pods, &found.claims) {
        if !nodes_readable {
            break;
        }
        let by_host = ListParams::default().labels(&format!("{HOSTNAME_LABEL}={host}"));
        match readable(api.list(&by_host).await).map_err(kube_err("list", "Node", &host))? {
            Some(list) => {
                nodes.insert(host, NodeSeen::of(list.items.first()));
            }
            None => nodes_readable = false,
        }
    }
    if !nodes_readable {
        debug!("no permission to read Nodes: lost pods told from what the pods show");
    }
    found.nodes = nodes_readable.then_some(nodes);
    lost.pods = lost_pods(pods, &found);
    Ok(lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeCondition, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, NodeStatus,
        PersistentVolumeClaimVolumeSource, PersistentVolumeSpec, PodSpec, PodStatus, Volume,
        VolumeNodeAffinity,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    const T: &str = "2026-12-03T08:06:25Z";

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().unwrap())
    }

    fn cond(type_: &str, status: &str, reason: Option<&str>) -> PodCondition {
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(str::to_string),
            last_transition_time: Some(at(T)),
            ..PodCondition::default()
        }
    }

    /// Pod `name` with its state claim `state-<name>`, on `node` if given, with `conds`.
    fn pod(name: &str, node: Option<&str>, conds: Vec<PodCondition>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                volumes: Some(vec![Volume {
                    name: "state".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: format!("state-{name}"),
                        ..Default::default()
                    }),
                    ..Volume::default()
                }]),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                conditions: Some(conds),
                ..PodStatus::default()
            }),
        }
    }

    fn running(name: &str, node: &str) -> Pod {
        let ready = vec![
            cond("Ready", "True", None),
            cond("ContainersReady", "True", None),
        ];
        pod(name, Some(node), ready)
    }

    /// What the node controller leaves on a pod of a node that stopped reporting.
    fn marked(name: &str, node: &str) -> Pod {
        let marked = vec![
            cond("Ready", "False", None),
            cond("ContainersReady", "True", None),
        ];
        pod(name, Some(node), marked)
    }

    fn evicted(name: &str, node: &str) -> Pod {
        let mut p = marked(name, node);
        p.metadata.deletion_timestamp = Some(at(T));
        if let Some(c) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            c.push(cond(
                "DisruptionTarget",
                "True",
                Some("DeletionByTaintManager"),
            ));
        }
        p
    }

    fn pending(name: &str) -> Pod {
        pod(
            name,
            None,
            vec![cond("PodScheduled", "False", Some("Unschedulable"))],
        )
    }

    fn pinned(hosts: &[&str]) -> ClaimSeen {
        ClaimSeen {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn found(nodes: &[(&str, NodeSeen)], claims: &[(&str, ClaimSeen)]) -> Lookups {
        Lookups {
            nodes: Some(
                nodes
                    .iter()
                    .map(|(n, s)| (n.to_string(), s.clone()))
                    .collect(),
            ),
            claims: claims
                .iter()
                .map(|(c, s)| (c.to_string(), s.clone()))
                .collect(),
        }
    }

    fn lost(pods: Vec<LostPod>) -> LostPods {
        LostPods {
            namespace: "team".into(),
            pods,
        }
    }

    #[test]
    fn healthy_pods_cost_no_lookup_and_are_not_lost() {
        let pods = [running("wc-0", "n0"), running("wc-1", "n1")];
        assert!(nodes_to_look_up(&pods).is_empty());
        assert!(claims_to_read(&pods, None).is_empty());
        // A failing readiness probe is the kubelet's report: the node is there.
        let mut probe = running("wc-1", "n1");
        probe.status.as_mut().unwrap().conditions = Some(vec![
            cond("Ready", "False", Some("ContainersNotReady")),
            cond("ContainersReady", "False", Some("ContainersNotReady")),
        ]);
        assert!(nodes_to_look_up(&[probe]).is_empty());
        // A pod on a Ready node is not lost, whatever it shows, and its claims are not read.
        let mut leaving = running("wc-1", "n1");
        leaving.metadata.deletion_timestamp = Some(at(T));
        let pods = [marked("wc-0", "n1"), leaving];
        assert_eq!(nodes_to_look_up(&pods), BTreeSet::from(["n1".to_string()]));
        let nodes = found(&[("n1", NodeSeen::Ready)], &[]);
        assert!(claims_to_read(&pods, nodes.nodes.as_ref()).is_empty());
        assert!(lost_pods(&pods, &nodes).is_empty());
    }

    #[test]
    fn a_pod_on_a_deleted_node_is_lost_with_the_claim_only_that_node_can_mount() {
        let pods = [running("wc-0", "n0"), evicted("wc-1", "gone")];
        assert_eq!(
            nodes_to_look_up(&pods),
            BTreeSet::from(["gone".to_string()])
        );
        let nodes = found(
            &[("gone", NodeSeen::Gone)],
            &[("state-wc-1", pinned(&["gone"]))],
        );
        assert_eq!(
            claims_to_read(&pods, nodes.nodes.as_ref()),
            BTreeSet::from(["state-wc-1".to_string()])
        );
        let found = lost_pods(&pods, &nodes);
        assert_eq!(
            found,
            [LostPod {
                pod: "wc-1".into(),
                node: "gone".into(),
                node_state: NodeLoss::Gone,
                since: None,
                bound: true,
                terminating: true,
                claims: vec!["state-wc-1".into()],
            }]
        );
        let message = lost(found).message().unwrap();
        assert!(
            message.starts_with("pod wc-1 was on node gone, which no longer exists"),
            "{message}"
        );
        assert!(
            message.contains("its claim state-wc-1 is on a volume only that node can mount")
                && message.contains(
                    "kubectl -n team delete pvc state-wc-1 --wait=false; kubectl -n team delete pod wc-1"
                )
                && message.contains("The operator deletes no pod and no claim")
                && !message.contains("delete node"),
            "{message}"
        );
    }

    #[test]
    fn a_pod_whose_volume_does_not_pin_it_recovers_by_itself() {
        let pods = [evicted("wc-1", "gone")];
        let nodes = found(&[("gone", NodeSeen::Gone)], &[("state-wc-1", pinned(&[]))]);
        let message = lost(lost_pods(&pods, &nodes)).message().unwrap();
        assert!(message.ends_with("nothing needs doing."), "{message}");
        assert!(!message.contains("kubectl"), "{message}");
    }

    #[test]
    fn a_pod_on_a_node_that_stopped_reporting_waits_for_the_node_to_be_removed() {
        let pods = [evicted("wc-1", "n1")];
        let nodes = found(
            &[(
                "n1",
                NodeSeen::NotReady {
                    since: Some(T.into()),
                },
            )],
            &[],
        );
        let found = lost_pods(&pods, &nodes);
        assert_eq!(
            (found[0].node_state, found[0].since.as_deref()),
            (NodeLoss::NotReady, Some(T))
        );
        let message = lost(found).message().unwrap();
        assert!(
            message.starts_with(&format!(
                "pod wc-1 is on node n1, NotReady since {T}, and it is stuck terminating there."
            )) && message.contains("kubectl delete node n1")
                && message.contains("out-of-service")
                && !message.contains("delete pvc"),
            "{message}"
        );
    }

    #[test]
    fn a_pod_that_cannot_be_scheduled_for_its_pinned_volume_names_the_volumes_node() {
        let pods = [running("wc-0", "n0"), pending("wc-1")];
        assert!(
            nodes_to_look_up(&pods).is_empty(),
            "an unscheduled pod has no node"
        );
        assert_eq!(
            claims_to_read(&pods, Some(&BTreeMap::new())),
            BTreeSet::from(["state-wc-1".to_string()])
        );
        let claims = BTreeMap::from([("state-wc-1".to_string(), pinned(&["gone"]))]);
        assert_eq!(
            hosts_to_look_up(&pods, &claims),
            BTreeSet::from(["gone".to_string()])
        );
        let nodes = found(
            &[("gone", NodeSeen::Gone)],
            &[("state-wc-1", pinned(&["gone"]))],
        );
        let found = lost_pods(&pods, &nodes);
        assert_eq!(
            found
                .iter()
                .map(|l| (&*l.pod, &*l.node, l.bound))
                .collect::<Vec<_>>(),
            [("wc-1", "gone", false)]
        );
        let message = lost(found).message().unwrap();
        assert!(
            message.starts_with(
                "pod wc-1 cannot be scheduled: only node gone can mount the volume of its claim \
                 state-wc-1, and that node no longer exists."
            ) && message.contains("delete pvc state-wc-1"),
            "{message}"
        );
        // Unschedulable for another reason (its volume is not pinned): not lost.
        let free = self::found(&[], &[("state-wc-1", pinned(&[]))]);
        assert!(lost_pods(&pods, &free).is_empty());
    }

    #[test]
    fn without_node_access_only_what_the_pods_show_is_told() {
        let pods = [marked("wc-0", "n0"), pending("wc-1"), running("wc-2", "n2")];
        let blind = Lookups {
            nodes: None,
            claims: BTreeMap::from([("state-wc-1".to_string(), pinned(&["gone"]))]),
        };
        // The marked pod's claims and the unscheduled one's are still worth reading.
        assert_eq!(
            claims_to_read(&pods, None),
            BTreeSet::from(["state-wc-0".to_string(), "state-wc-1".to_string()])
        );
        let found = lost_pods(&pods, &blind);
        assert_eq!(
            found
                .iter()
                .map(|l| (&*l.pod, l.node_state))
                .collect::<Vec<_>>(),
            [("wc-0", NodeLoss::NotReporting)]
        );
        assert_eq!(found[0].since.as_deref(), Some(T));
        let message = lost(found).message().unwrap();
        assert!(message.contains("may not read Nodes"), "{message}");
        // A pod merely terminating tells nothing without its node.
        let mut leaving = running("wc-3", "n3");
        leaving.metadata.deletion_timestamp = Some(at(T));
        assert!(lost_pods(&[leaving], &blind).is_empty());
    }

    #[test]
    fn a_volume_is_pinned_only_when_every_term_names_hosts() {
        let term = |key: &str, values: &[&str]| NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: "In".into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
            ..NodeSelectorTerm::default()
        };
        let pv = |terms: Vec<NodeSelectorTerm>| PersistentVolume {
            spec: Some(PersistentVolumeSpec {
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                }),
                ..PersistentVolumeSpec::default()
            }),
            ..PersistentVolume::default()
        };
        assert_eq!(
            pinned_hosts(&pv(vec![term(HOSTNAME_LABEL, &["n1"])])),
            ["n1"]
        );
        assert_eq!(
            pinned_hosts(&pv(vec![
                term(HOSTNAME_LABEL, &["n2"]),
                term(HOSTNAME_LABEL, &["n1"])
            ])),
            ["n1", "n2"]
        );
        let zonal = term("topology.kubernetes.io/zone", &["zone-b"]);
        assert!(pinned_hosts(&pv(vec![zonal.clone()])).is_empty());
        assert!(pinned_hosts(&pv(vec![term(HOSTNAME_LABEL, &["n1"]), zonal])).is_empty());
        assert!(pinned_hosts(&PersistentVolume::default()).is_empty());
    }

    #[test]
    fn a_node_is_ready_only_with_ready_true() {
        let node = |status: &str| Node {
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: status.into(),
                    last_transition_time: Some(at(T)),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        assert_eq!(NodeSeen::of(Some(&node("True"))), NodeSeen::Ready);
        assert_eq!(
            NodeSeen::of(Some(&node("Unknown"))),
            NodeSeen::NotReady {
                since: Some(T.into())
            }
        );
        assert_eq!(NodeSeen::of(None), NodeSeen::Gone);
    }
}
