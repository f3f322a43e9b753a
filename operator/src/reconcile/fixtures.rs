//! Observations the pure stages' tests share.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::observe::Observed;

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
