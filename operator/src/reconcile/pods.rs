//! The app's pods as the Kafka step tells them apart: what makes a new check due, and which
//! pods must have a member in the app's group.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// One pod as the Kafka step sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodSeen {
    /// Pod name: the `client.id` the operator sets, so what its group members are named after.
    pub name: String,
    /// Pod uid: a replaced pod keeps its name but not its uid.
    pub uid: String,
    /// Ready and not terminating: a pod that should have a member in the group.
    pub ready: bool,
    /// Restarts of its containers, summed: a restarted container keeps the pod's uid.
    pub restarts: i32,
}

/// The app's pods, sorted by name. A Kafka check is due whenever this changes: a pod added,
/// removed or replaced (same name, new uid), turning Ready or not, or a container restarting
/// (same uid, higher restart count). Names alone miss all but the first, as a StatefulSet pod
/// keeps its name through all of them, and each can change the group's membership.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodsSeen(Vec<PodSeen>);

impl PodsSeen {
    /// The pods as observed.
    pub fn of(pods: &[Pod]) -> Self {
        let mut seen: Vec<PodSeen> = pods
            .iter()
            .map(|pod| {
                let status = pod.status.as_ref();
                let ready = pod.metadata.deletion_timestamp.is_none()
                    && status
                        .and_then(|s| s.conditions.as_ref())
                        .into_iter()
                        .flatten()
                        .any(|c| c.type_ == "Ready" && c.status == "True");
                let restarts = status
                    .and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|c| c.restart_count)
                    .sum();
                PodSeen {
                    name: pod.name_any(),
                    uid: pod.uid().unwrap_or_default(),
                    ready,
                    restarts,
                }
            })
            .collect();
        seen.sort();
        Self(seen)
    }

    /// Every pod's name.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name.clone()).collect()
    }

    /// The pods that should have a member in the group.
    pub fn ready(&self) -> impl Iterator<Item = &PodSeen> {
        self.0.iter().filter(|p| p.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::pod as ready_pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, uid: &str, ready: bool, restarts: i32) -> Pod {
        let mut pod = ready_pod(name, uid, restarts);
        if !ready {
            for c in pod
                .status
                .iter_mut()
                .flat_map(|s| s.conditions.iter_mut().flatten())
            {
                c.status = "False".into();
            }
        }
        pod
    }

    #[test]
    fn a_replaced_restarted_or_unready_pod_is_another_set_of_pods() {
        let before = PodsSeen::of(&[pod("wc-1", "b", true, 0), pod("wc-0", "a", true, 0)]);
        assert_eq!(before.names(), ["wc-0", "wc-1"], "sorted by name");
        let same = PodsSeen::of(&[pod("wc-0", "a", true, 0), pod("wc-1", "b", true, 0)]);
        assert_eq!(before, same, "the order pods are listed in does not matter");
        for changed in [
            pod("wc-0", "a2", true, 0), // replaced: same name, new uid
            pod("wc-0", "a", false, 0), // not Ready
            pod("wc-0", "a", true, 1),  // its container restarted
        ] {
            let after = PodsSeen::of(&[changed.clone(), pod("wc-1", "b", true, 0)]);
            assert_ne!(before, after, "{:?}", changed.metadata);
            assert_eq!(before.names(), after.names());
        }
        assert_ne!(before, PodsSeen::of(&[pod("wc-0", "a", true, 0)]));
    }

    #[test]
    fn a_terminating_pod_need_not_be_a_member() {
        let mut leaving = pod("wc-0", "a", true, 0);
        leaving.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let seen = PodsSeen::of(&[
            leaving,
            pod("wc-1", "b", true, 0),
            pod("wc-2", "c", false, 0),
        ]);
        let ready: Vec<&str> = seen.ready().map(|p| p.name.as_str()).collect();
        assert_eq!(ready, ["wc-1"]);
    }
}
