//! More instances than tasks (pure): Kafka Streams runs at most one active copy of a task, so
//! instances beyond the largest subtopology's task count get no active task and only cost
//! resources. Reported as a warning condition, never refused: a user may scale up ahead of
//! adding partitions, or keep spares for standbys.

use std::collections::{BTreeMap, BTreeSet};

use kstreams_kafka::KafkaStatus;

use super::verdict::Verdict;
use crate::crd::condition;

/// The task count of the largest subtopology in the assignment (`<subtopology>_<partition>`
/// ids of every pod's active tasks); `None` while no task is assigned.
pub fn largest_subtopology(status: &KafkaStatus) -> Option<usize> {
    let mut tasks: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for task in status.pods.iter().flat_map(|p| &p.active_tasks) {
        if let Some((sub, partition)) = task.split_once('_') {
            tasks.entry(sub).or_default().insert(partition);
        }
    }
    tasks.values().map(BTreeSet::len).max()
}

/// The InstancesIdle verdict for `replicas` wanted, when the assignment of a Stable group
/// tells the task counts; `None` when it cannot be told.
pub fn idle_instances(replicas: i32, status: &KafkaStatus) -> Option<Verdict> {
    if status.group.as_ref().is_none_or(|g| g.state != "Stable") {
        return None;
    }
    let most = largest_subtopology(status)? as i32;
    Some(if replicas > most {
        Verdict::new(
            condition::INSTANCES_IDLE,
            true,
            "MoreInstancesThanTasks",
            format!(
                "{replicas} instances for at most {most} tasks per subtopology: {} instance(s) get no active task; add partitions to the source topics or lower spec.replicas",
                replicas - most
            ),
        )
    } else {
        Verdict::new(
            condition::INSTANCES_IDLE,
            false,
            "EveryInstanceCanWork",
            format!("{replicas} instances for up to {most} tasks per subtopology"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::kafka_status;
    use kstreams_kafka::status::PodKafkaStatus;

    fn assigned(tasks: &[&[&str]]) -> KafkaStatus {
        let mut s = kafka_status("Stable", &[]);
        s.pods = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| PodKafkaStatus {
                pod: format!("wc-{i}"),
                members: 1,
                active_tasks: t.iter().map(|t| t.to_string()).collect(),
                ..PodKafkaStatus::default()
            })
            .collect();
        s
    }

    #[test]
    fn instances_beyond_the_largest_subtopology_are_idle() {
        // Subtopology 0 has 3 tasks, subtopology 1 has 2.
        let s = assigned(&[&["0_0", "1_0"], &["0_1", "1_1"], &["0_2"], &[]]);
        assert_eq!(largest_subtopology(&s), Some(3));
        let v = idle_instances(4, &s).unwrap();
        assert!(v.status);
        assert!(
            v.message.starts_with("4 instances for at most 3 tasks"),
            "{}",
            v.message
        );
        assert!(!idle_instances(3, &s).unwrap().status);
        let mut rebalancing = s.clone();
        rebalancing.group.as_mut().unwrap().state = "PreparingRebalance".into();
        assert_eq!(idle_instances(4, &rebalancing), None);
        assert_eq!(idle_instances(1, &assigned(&[&[]])), None);
    }
}
