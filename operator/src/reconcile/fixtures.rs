//! Observations the pure stages' tests share.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kstreams_kafka::KafkaStatus;
use kstreams_kafka::status::{GroupMemberStatus, GroupStatus};

use super::observe::Observed;
use super::pods::PodsSeen;

/// A 2-replica app at generation 3.
pub const APP: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc, generation: 3}
spec: {image: wc:1, replicas: 2, kafka: {bootstrapServers: 'k:9092'}}
";

/// A 2-replica StatefulSet at generation 1 with `ready` pods Ready and `updated` updated.
pub fn statefulset_with(ready: i32, updated: i32) -> Observed {
    Observed {
        statefulset: Some(StatefulSet {
            metadata: ObjectMeta {
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(2),
                ..StatefulSetSpec::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(1),
                replicas: 2,
                ready_replicas: Some(ready),
                updated_replicas: Some(updated),
                current_revision: Some("r1".into()),
                update_revision: Some("r1".into()),
                ..StatefulSetStatus::default()
            }),
        }),
        ..Observed::default()
    }
}

/// Pods of the app by name, each Ready, with uid `uid-<name>` and no restarts.
pub fn ready_pods(names: &[&str]) -> PodsSeen {
    let pods: Vec<Pod> = names
        .iter()
        .map(|n| pod(n, &format!("uid-{n}"), 0))
        .collect();
    PodsSeen::of(&pods)
}

/// A Ready pod.
pub fn pod(name: &str, uid: &str, restarts: i32) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..PodCondition::default()
            }]),
            container_statuses: Some(vec![ContainerStatus {
                name: "streams".into(),
                restart_count: restarts,
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

/// A Kafka status whose group `wc` is in `state` with one member per client id in `members`
/// (`<pod>-StreamThread-1-consumer` for a pod's, anything else matches no pod).
pub fn kafka_status(state: &str, members: &[&str]) -> KafkaStatus {
    KafkaStatus {
        group: Some(GroupStatus {
            state: state.into(),
            protocol_type: "consumer".into(),
            protocol: "stream".into(),
            members: members
                .iter()
                .map(|id| GroupMemberStatus {
                    client_id: id.to_string(),
                    pod: id
                        .strip_suffix("-StreamThread-1-consumer")
                        .map(str::to_string),
                    ..GroupMemberStatus::default()
                })
                .collect(),
            ..GroupStatus::default()
        }),
        ..KafkaStatus::default()
    }
}
