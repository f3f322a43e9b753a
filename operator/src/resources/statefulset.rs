//! The StatefulSet running the app's instances, each with its own state volume.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, SeccompProfile, SecurityContext, TopologySpreadConstraint, Volume,
    VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use sha2::{Digest, Sha256};

use super::properties::{CONFIG_DIR, container_env};
use super::service::IQ_PORT_NAME;
use super::{app_name, child_meta, configmap_name, labels, selector_labels};
use crate::crd::{PlacementRule, RetentionPolicy, StreamApp};

/// Name of the state volume claim template (PVCs are `state-<app>-<ordinal>`).
pub const STATE_VOLUME: &str = "state";
/// Name of the application container.
pub const CONTAINER: &str = "streams";
pub use crate::crd::owned::CONFIG_HASH_ANNOTATION;
/// StatefulSet annotation carrying the digest of the pod template the operator built: a
/// differing digest on the live StatefulSet means this apply starts a new rollout.
pub const TEMPLATE_HASH_ANNOTATION: &str = "kstreams.dev/template-hash";
/// Label the StatefulSet controller puts on each pod: the revision the pod runs.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Default grace period: Kafka Streams needs a clean close to commit and write checkpoints;
/// a killed instance restores its stores from the changelog.
pub const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 300;
const ZONE_KEY: &str = "topology.kubernetes.io/zone";
const RESTRICTED_UID: i64 = 1000;

/// What the reconcile decides about the StatefulSet rather than the spec alone: how many
/// instances run, and which ordinals a rolling update may restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// `spec.replicas` of the StatefulSet.
    pub replicas: i32,
    /// `rollingUpdate.partition`: only ordinals at or above it are updated; `None` leaves
    /// the StatefulSet controller to update every pod by itself.
    pub partition: Option<i32>,
    /// Held at zero by `spec.suspend` or a reset: the volumes stay whatever
    /// `spec.state.retention.whenScaled` says, since the app comes back to them.
    pub held: bool,
}

impl Shape {
    /// The shape the spec asks for: all its replicas, every pod updated.
    pub fn of_spec(app: &StreamApp) -> Self {
        Self {
            replicas: app.spec.replicas,
            partition: None,
            held: false,
        }
    }
}

/// The digest of the pod template built for `app` with the ConfigMap digest `config_hash`.
pub fn template_hash(app: &StreamApp, config_hash: &str) -> String {
    let template = serde_json::to_vec(&pod_template(app, config_hash)).unwrap_or_default();
    Sha256::digest(&template)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The app's StatefulSet; `config_hash` is the digest of its ConfigMap.
pub fn statefulset(app: &StreamApp, config_hash: &str, shape: &Shape) -> StatefulSet {
    let spec = &app.spec;
    let retention = |p: RetentionPolicy| match p {
        RetentionPolicy::Retain => "Retain".to_string(),
        RetentionPolicy::Delete => "Delete".to_string(),
    };
    let mut metadata = child_meta(app, app_name(app));
    metadata.annotations = Some(BTreeMap::from([(
        TEMPLATE_HASH_ANNOTATION.to_string(),
        template_hash(app, config_hash),
    )]));
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(shape.replicas),
            service_name: Some(app_name(app)),
            // Instances are peers: starting them one by one only delays the first rebalance.
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(app)),
                ..LabelSelector::default()
            },
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: shape
                    .partition
                    .map(|partition| RollingUpdateStatefulSetStrategy {
                        partition: Some(partition),
                        ..RollingUpdateStatefulSetStrategy::default()
                    }),
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention(spec.state.retention.when_deleted)),
                    when_scaled: Some(if shape.held {
                        retention(RetentionPolicy::Retain)
                    } else {
                        retention(spec.state.retention.when_scaled)
                    }),
                },
            ),
            volume_claim_templates: Some(vec![state_claim(app)]),
            template: pod_template(app, config_hash),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn state_claim(app: &StreamApp) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(STATE_VOLUME.into()),
            labels: Some(selector_labels(app)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: app.spec.state.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(app.spec.state.storage.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn pod_template(app: &StreamApp, config_hash: &str) -> PodTemplateSpec {
    let spec = &app.spec;
    let overrides = &spec.pod_template;
    // A placeholder zone the binding overwrites with the node's (PodTopologyLabels): without
    // any value Kafka Streams refuses an empty `client.tag.zone` and the app cannot start.
    let mut pod_labels: BTreeMap<String, String> = super::properties::zone_label_default(app)
        .into_iter()
        .collect();
    pod_labels.extend(overrides.labels.clone());
    pod_labels.extend(labels(app));
    let mut annotations = overrides.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash.into());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: overrides.service_account_name.clone(),
            termination_grace_period_seconds: Some(
                overrides
                    .termination_grace_period_seconds
                    .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS),
            ),
            security_context: Some(
                overrides
                    .security_context
                    .clone()
                    .unwrap_or_else(restricted_pod_security),
            ),
            affinity: affinity(app),
            topology_spread_constraints: zone_spread(app),
            node_selector: (!spec.placement.node_selector.is_empty())
                .then(|| spec.placement.node_selector.clone()),
            tolerations: (!spec.placement.tolerations.is_empty())
                .then(|| spec.placement.tolerations.clone()),
            image_pull_secrets: (!spec.image_pull_secrets.is_empty())
                .then(|| spec.image_pull_secrets.clone()),
            // Service links would add an env var per Service in the namespace.
            enable_service_links: Some(false),
            containers: vec![container(app)],
            volumes: Some(vec![Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: configmap_name(app),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
    }
}

fn container(app: &StreamApp) -> Container {
    let spec = &app.spec;
    Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| format!("{p:?}")),
        env: Some(container_env(app)),
        ports: spec.interactive_queries.as_ref().map(|iq| {
            vec![ContainerPort {
                name: Some(IQ_PORT_NAME.into()),
                container_port: iq.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: STATE_VOLUME.into(),
                mount_path: spec.state.mount_path.clone(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        resources: spec.resources.clone(),
        liveness_probe: spec.probes.liveness.clone(),
        readiness_probe: spec.probes.readiness.clone(),
        startup_probe: spec.probes.startup.clone(),
        security_context: Some(
            spec.pod_template
                .container_security_context
                .clone()
                .unwrap_or_else(restricted_container_security),
        ),
        ..Container::default()
    }
}

/// The `restricted` Pod Security Standard, with `fsGroup` so the state volume is writable.
fn restricted_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RESTRICTED_UID),
        run_as_group: Some(RESTRICTED_UID),
        fs_group: Some(RESTRICTED_UID),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn own_pods(app: &StreamApp) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(app)),
        ..LabelSelector::default()
    }
}

fn affinity(app: &StreamApp) -> Option<Affinity> {
    let term = PodAffinityTerm {
        label_selector: Some(own_pods(app)),
        topology_key: app.spec.placement.topology_key.clone(),
        ..PodAffinityTerm::default()
    };
    let anti = match app.spec.placement.anti_affinity {
        PlacementRule::None => return None,
        PlacementRule::Required => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..PodAntiAffinity::default()
        },
        PlacementRule::Preferred => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..PodAntiAffinity::default()
        },
    };
    Some(Affinity {
        pod_anti_affinity: Some(anti),
        ..Affinity::default()
    })
}

fn zone_spread(app: &StreamApp) -> Option<Vec<TopologySpreadConstraint>> {
    let when = match app.spec.placement.zone_spread {
        PlacementRule::None => return None,
        PlacementRule::Required => "DoNotSchedule",
        PlacementRule::Preferred => "ScheduleAnyway",
    };
    Some(vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: ZONE_KEY.into(),
        when_unsatisfiable: when.into(),
        label_selector: Some(own_pods(app)),
        ..TopologySpreadConstraint::default()
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;

    #[test]
    fn an_app_held_at_zero_keeps_its_volumes_whatever_when_scaled_says() {
        let app = app(
            "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\nmetadata: {name: wc}\nspec: {image: wc:1, replicas: 3, kafka: {bootstrapServers: 'k:9092'}, state: {retention: {whenScaled: Delete}}}",
        );
        let policy = |held: bool| {
            let shape = Shape {
                replicas: if held { 0 } else { 3 },
                partition: None,
                held,
            };
            statefulset(&app, "h", &shape)
                .spec
                .and_then(|s| s.persistent_volume_claim_retention_policy)
                .and_then(|p| p.when_scaled)
        };
        assert_eq!(policy(false).as_deref(), Some("Delete"));
        assert_eq!(policy(true).as_deref(), Some("Retain"));
    }
}
