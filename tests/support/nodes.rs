//! A kwok node of one test's own, to lose: created as `e2e/cluster.sh` creates the shared
//! ones (kwok's annotation, the zone label), tainted so only pods that tolerate it go there,
//! and removed, with the volumes pinned to it, when dropped. The shared nodes other tests run
//! on are never touched.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec,
    ObjectReference, PersistentVolume, PersistentVolumeSpec, Taint, Toleration, VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::wait_for;

/// The taint key of a private node; its value is the node's name.
pub const PRIVATE_TAINT: &str = "kstreams.dev/private-node";

/// A node only the test's pods go to; deleted (if still there) when dropped.
pub struct PrivateNode {
    /// The node's name, `lost-node-<random>`; also its `kubernetes.io/hostname`.
    pub name: String,
    client: Client,
    volumes: Vec<String>,
}

impl PrivateNode {
    /// Creates the node in `zone` and waits until kwok reports it Ready.
    pub async fn create(client: &Client, zone: &str) -> Self {
        let name = crate::unique("lost-node");
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                annotations: Some(
                    [
                        ("node.alpha.kubernetes.io/ttl", "0"),
                        ("kwok.x-k8s.io/node", "fake"),
                    ]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
                ),
                labels: Some(
                    [
                        ("kubernetes.io/hostname", name.as_str()),
                        ("kubernetes.io/os", "linux"),
                        ("kubernetes.io/arch", "amd64"),
                        ("topology.kubernetes.io/zone", zone),
                        ("type", "kwok-private"),
                    ]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(vec![Taint {
                    key: PRIVATE_TAINT.into(),
                    value: Some(name.clone()),
                    effect: "NoSchedule".into(),
                    ..Taint::default()
                }]),
                ..NodeSpec::default()
            }),
            ..Node::default()
        };
        let nodes = Api::<Node>::all(client.clone());
        nodes
            .create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("creating node {name}: {e}"));
        let made = Self {
            name: name.clone(),
            client: client.clone(),
            volumes: Vec::new(),
        };
        wait_for(
            &nodes,
            &name,
            "Ready (kwok manages it)",
            Duration::from_secs(60),
            |n| {
                let ready = (n.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                // The node controller lifts its not-ready taint a moment after.
                let tainted = (n.spec.as_ref())
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.key.starts_with("node.kubernetes.io/")));
                ready && !tainted
            },
        )
        .await;
        made
    }

    /// The toleration of the node's taint.
    pub fn toleration(&self) -> Toleration {
        Toleration {
            key: Some(PRIVATE_TAINT.into()),
            operator: Some("Equal".into()),
            value: Some(self.name.clone()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        }
    }

    /// A PersistentVolume only this node can mount, as a local volume is, reserved for claim
    /// `claim` in `ns` (of StorageClass `class`); returns its name.
    pub async fn pin_volume(&mut self, ns: &str, claim: &str, class: &str) -> String {
        let name = crate::unique("pinned");
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some([("storage".to_string(), Quantity("10Gi".into()))].into()),
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                persistent_volume_reclaim_policy: Some("Retain".into()),
                storage_class_name: Some(class.into()),
                // Nothing mounts it: the stand-in gives each claim a directory of its own.
                host_path: Some(HostPathVolumeSource {
                    path: format!("/nonexistent/{name}"),
                    ..HostPathVolumeSource::default()
                }),
                claim_ref: Some(ObjectReference {
                    namespace: Some(ns.into()),
                    name: Some(claim.into()),
                    ..ObjectReference::default()
                }),
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "kubernetes.io/hostname".into(),
                                operator: "In".into(),
                                values: Some(vec![self.name.clone()]),
                            }]),
                            ..NodeSelectorTerm::default()
                        }],
                    }),
                }),
                ..PersistentVolumeSpec::default()
            }),
            ..PersistentVolume::default()
        };
        Api::<PersistentVolume>::all(self.client.clone())
            .create(&PostParams::default(), &pv)
            .await
            .unwrap_or_else(|e| panic!("creating volume {name}: {e}"));
        self.volumes.push(name.clone());
        name
    }

    /// Makes the node stop reporting, as a machine that lost power does: its Lease is taken
    /// over for an hour by a holder that never renews it (kwok leaves a Lease another holder
    /// keeps alone), so the node controller sees no heartbeat after this one.
    pub async fn stop_reporting(&self) {
        let leases = Api::<Lease>::namespaced(self.client.clone(), "kube-node-lease");
        let now = k8s_openapi::jiff::Timestamp::now();
        let patch = serde_json::json!({"spec": {
            "holderIdentity": "kstreams-tests-power-off",
            "leaseDurationSeconds": 3600,
            "renewTime": MicroTime(now),
        }});
        leases
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("taking over the Lease of node {}: {e}", self.name));
    }

    /// Taints the node out of service (`node.kubernetes.io/out-of-service`), as an admin does
    /// for a machine that is gone but whose Node object stays.
    pub async fn taint_out_of_service(&self) {
        let nodes = Api::<Node>::all(self.client.clone());
        let mut taints = (nodes.get(&self.name).await)
            .unwrap_or_else(|e| panic!("reading node {}: {e}", self.name))
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default();
        taints.push(Taint {
            key: "node.kubernetes.io/out-of-service".into(),
            value: Some("nodeshutdown".into()),
            effect: "NoExecute".into(),
            ..Taint::default()
        });
        let patch = serde_json::json!({"spec": {"taints": taints}});
        nodes
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("tainting node {}: {e}", self.name));
    }

    /// Deletes the Node object, as a cloud does once its machine is gone.
    pub async fn delete(&self) {
        Api::<Node>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting node {}: {e}", self.name));
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        let (node, volumes) = (self.name.clone(), self.volumes.clone());
        // As TestNamespace's drop: a runtime of its own, on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for node cleanup");
            rt.block_on(async {
                let Ok(client) = Client::try_default().await else {
                    return;
                };
                let _ = Api::<Node>::all(client.clone())
                    .delete(&node, &DeleteParams::default())
                    .await;
                let pvs = Api::<PersistentVolume>::all(client);
                for v in volumes {
                    let _ = pvs.delete(&v, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}
