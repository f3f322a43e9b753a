use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetStatus,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kstreams_kafka::KafkaStatus;
use kstreams_kafka::status::PodKafkaStatus;

use super::*;
use crate::crd::StreamAppStatus;
use crate::reconcile::fixtures::{kafka_status, pod};
use crate::reconcile::kafka::{CheckFailure, KafkaOutcome};
use crate::resources::testing::app;
use kstreams_kafka::KafkaError;

const HASH: &str = "new-template";

fn wc(yaml_spec: &str) -> StreamApp {
    app(&format!(
        "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: wc, generation: 2}}
spec: {{image: wc:1, replicas: 3, kafka: {{bootstrapServers: 'k:9092'}}{yaml_spec}}}
"
    ))
}

/// A StatefulSet of `replicas` at `partition`, its controller caught up, revisions r1 -> r2,
/// built from template `hash`.
fn sts(replicas: i32, partition: i32, hash: &str) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("wc".into()),
            generation: Some(5),
            annotations: Some(BTreeMap::from([(
                TEMPLATE_HASH_ANNOTATION.to_string(),
                hash.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(partition),
                    ..RollingUpdateStatefulSetStrategy::default()
                }),
            }),
            ..StatefulSetSpec::default()
        }),
        status: Some(StatefulSetStatus {
            observed_generation: Some(5),
            replicas,
            current_revision: Some("r1".into()),
            update_revision: Some("r2".into()),
            ..StatefulSetStatus::default()
        }),
    }
}

/// Pod `wc-<ordinal>` at `revision`, Ready or not.
fn at(ordinal: i32, revision: &str, ready: bool) -> Pod {
    let mut p = pod(&format!("wc-{ordinal}"), &format!("uid-{ordinal}"), 0);
    p.metadata.labels = Some(BTreeMap::from([(
        REVISION_LABEL.to_string(),
        revision.to_string(),
    )]));
    if !ready {
        for c in p
            .status
            .iter_mut()
            .flat_map(|s| s.conditions.iter_mut().flatten())
        {
            c.status = "False".into();
        }
    }
    p
}

use crate::resources::statefulset::REVISION_LABEL;

/// A Stable group with a member per pod in `pods`, every pod caught up.
fn stable(pods: &[i32]) -> KafkaStatus {
    let ids: Vec<String> = pods
        .iter()
        .map(|o| format!("wc-{o}-StreamThread-1-consumer"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut status = kafka_status("Stable", &refs);
    status.pods = pods
        .iter()
        .map(|o| PodKafkaStatus {
            pod: format!("wc-{o}"),
            members: 1,
            active_tasks: vec![format!("0_{o}")],
            restore_lag: Some(0),
            restore_lag_exact: true,
            caught_up: Some(true),
            ..PodKafkaStatus::default()
        })
        .collect();
    status
}

fn restoring(mut status: KafkaStatus, ordinal: i32, lag: i64) -> KafkaStatus {
    for p in &mut status.pods {
        if p.pod == format!("wc-{ordinal}") {
            p.caught_up = Some(false);
            p.restore_lag = Some(lag);
        }
    }
    status
}

fn ok(status: KafkaStatus) -> KafkaOutcome {
    KafkaOutcome {
        status: Some(status),
        ..KafkaOutcome::default()
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

struct World {
    app: StreamApp,
    observed: Observed,
    kafka: Option<KafkaOutcome>,
    now: Timestamp,
    hold: Option<Hold>,
}

impl World {
    fn new(app: StreamApp, sts: StatefulSet, pods: Vec<Pod>, kafka: KafkaStatus) -> Self {
        Self {
            app,
            observed: Observed {
                statefulset: Some(sts),
                pods,
                ..Observed::default()
            },
            kafka: Some(ok(kafka)),
            now: t(0),
            hold: None,
        }
    }

    fn decide(&self) -> Decision {
        decide(&Facts {
            app: &self.app,
            observed: &self.observed,
            template_hash: HASH,
            kafka: self.kafka.as_ref(),
            now: self.now,
            hold: self.hold.as_ref(),
        })
    }

    /// The decision's status carried into the app, as the next reconcile sees it.
    fn remember(&mut self, d: &Decision) {
        let status = self.app.status.get_or_insert_with(StreamAppStatus::default);
        status.rollout = d.rollout.clone();
    }
}

#[test]
fn a_new_template_holds_every_pod_until_the_controller_has_the_revision() {
    let w = World::new(
        wc(""),
        sts(3, 0, "old-template"),
        vec![at(0, "r1", true), at(1, "r1", true), at(2, "r1", true)],
        stable(&[0, 1, 2]),
    );
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(3));
    assert_eq!(d.shape.replicas, 3);
    assert_eq!(d.rollout.unwrap().step, "new revision");
}

#[test]
fn a_settled_app_steps_the_highest_ordinal_first_and_waits_for_its_restore() {
    let pods = |two: &str, one: &str| vec![at(0, "r1", true), at(1, one, true), at(2, two, true)];
    let mut w = World::new(
        wc(""),
        sts(3, 3, HASH),
        pods("r1", "r1"),
        stable(&[0, 1, 2]),
    );
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(2));
    let r = d.rollout.clone().unwrap();
    assert_eq!((r.step.as_str(), r.waiting_for), ("update wc-2", None));
    w.remember(&d);

    // The controller restarts wc-2: the partition stays while it does.
    w.observed.statefulset = Some(sts(3, 2, HASH));
    w.observed.pods = pods("r1", "r1");
    w.now = t(10);
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(2));
    let r = d.rollout.clone().unwrap();
    assert_eq!(r.waiting_on.as_deref(), Some("wc-2"));
    assert_eq!(r.since, t(0).to_string(), "the same step, the same clock");
    w.remember(&d);

    // wc-2 is back and Ready, but restores: wc-1 waits.
    w.observed.pods = pods("r2", "r1");
    w.kafka = Some(ok(restoring(stable(&[0, 1, 2]), 2, 120_431)));
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(2));
    let r = d.rollout.clone().unwrap();
    assert_eq!(r.waiting_on.as_deref(), Some("wc-2"));
    assert_eq!(
        r.waiting_for.as_deref(),
        Some("restoring 120431 records in 1 tasks before wc-1 restarts")
    );
    assert_eq!(d.budget, Budget::NONE, "no eviction while wc-2 restores");
    let p = d.progressing.clone().unwrap();
    assert_eq!((p.status, p.reason.as_str()), (true, "RollingOut"));
    w.remember(&d);

    // Caught up: wc-1 goes next, then wc-0, then the rollout is done.
    w.kafka = Some(ok(stable(&[0, 1, 2])));
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(1));
    assert_eq!(d.budget, Budget::ONE);
    w.observed.statefulset = Some(sts(3, 1, HASH));
    w.observed.pods = pods("r2", "r2");
    assert_eq!(w.decide().shape.partition, Some(0));
    w.observed.statefulset = Some(sts(3, 0, HASH));
    w.observed.pods = vec![at(0, "r2", true), at(1, "r2", true), at(2, "r2", true)];
    let d = w.decide();
    assert_eq!((d.shape.partition, d.rollout), (Some(0), None));
}

#[test]
fn the_group_must_be_stable_with_no_stale_member_and_no_probing_rebalance() {
    let pods = vec![at(0, "r1", true), at(1, "r1", true), at(2, "r2", true)];
    let mut w = World::new(wc(""), sts(3, 2, HASH), pods, stable(&[0, 1, 2]));
    let mut rebalancing = stable(&[0, 1, 2]);
    rebalancing.group.as_mut().unwrap().state = "PreparingRebalance".into();
    let mut stale = stable(&[0, 1, 2]);
    stale
        .group
        .as_mut()
        .unwrap()
        .members
        .push(kafka_status("Stable", &["gone"]).group.unwrap().members[0].clone());
    stale.group.as_mut().unwrap().members[3].pod = None;
    let mut probing = stable(&[0, 1, 2]);
    probing.probing_rebalance_pending = true;
    let mut absent = stable(&[0, 1]);
    absent.pods.push(PodKafkaStatus {
        pod: "wc-2".into(),
        ..PodKafkaStatus::default()
    });
    for (status, waits) in [
        (rebalancing, "the group to be Stable (PreparingRebalance)"),
        (
            stale,
            "member gone of a pod that is gone to leave the group",
        ),
        (probing, "warm-up replicas to catch up"),
        (absent, "to join the group"),
    ] {
        w.kafka = Some(ok(status));
        let d = w.decide();
        assert_eq!(d.shape.partition, Some(2), "{waits}");
        let r = d.rollout.unwrap();
        assert!(r.waiting_for.unwrap().starts_with(waits), "{waits}");
    }
}

#[test]
fn a_kafka_outage_holds_the_rollout_even_past_the_timeout_with_continue() {
    let mut app = wc(", rollout: {stepTimeoutSeconds: 60, onStepTimeout: Continue}");
    app.status = Some(StreamAppStatus {
        rollout: Some(RolloutStatus {
            step: "update wc-1".into(),
            since: t(0).to_string(),
            ..RolloutStatus::default()
        }),
        ..StreamAppStatus::default()
    });
    let pods = vec![at(0, "r1", true), at(1, "r1", true), at(2, "r2", true)];
    let mut w = World::new(app, sts(3, 2, HASH), pods, stable(&[0, 1, 2]));
    w.now = t(120);
    w.kafka = Some(KafkaOutcome {
        status: Some(stable(&[0, 1, 2])),
        failure: Some(CheckFailure::Kafka(KafkaError::Timeout {
            bootstrap: "k:9092".into(),
            operation: "describe group",
            timeout: Duration::from_secs(5),
        })),
        ..KafkaOutcome::default()
    });
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(2));
    let p = d.progressing.unwrap();
    assert_eq!(p.reason, "StepTimedOut");
    assert!(
        d.rollout
            .unwrap()
            .waiting_for
            .unwrap()
            .starts_with("Kafka to be reachable")
    );
}

#[test]
fn pods_unready_while_kafka_is_down_are_no_free_step() {
    // wc-2 was updated; Kafka goes down and wc-1 stops being Ready with it.
    let pods = vec![at(0, "r1", true), at(1, "r1", false), at(2, "r2", true)];
    let mut w = World::new(wc(""), sts(3, 2, HASH), pods, stable(&[0, 1, 2]));
    w.kafka = Some(KafkaOutcome {
        status: Some(stable(&[0, 1, 2])),
        failure: Some(CheckFailure::Kafka(KafkaError::Timeout {
            bootstrap: "k:9092".into(),
            operation: "describe group",
            timeout: Duration::from_secs(5),
        })),
        ..KafkaOutcome::default()
    });
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(2));
    let r = d.rollout.unwrap();
    assert!(r.waiting_for.unwrap().starts_with("Kafka to be reachable"));
    assert_eq!(d.progressing.unwrap().reason, "RolloutWaitingForKafka");
}

#[test]
fn a_step_timeout_holds_with_an_event_once_or_continues_as_asked() {
    let timed = |action: &str| {
        let mut app = wc(&format!(
            ", rollout: {{stepTimeoutSeconds: 60, onStepTimeout: {action}}}"
        ));
        app.status = Some(StreamAppStatus {
            rollout: Some(RolloutStatus {
                step: "update wc-1".into(),
                since: t(0).to_string(),
                ..RolloutStatus::default()
            }),
            ..StreamAppStatus::default()
        });
        let pods = vec![at(0, "r1", true), at(1, "r1", true), at(2, "r2", true)];
        let mut w = World::new(
            app,
            sts(3, 2, HASH),
            pods,
            restoring(stable(&[0, 1, 2]), 2, 50_000),
        );
        w.now = t(61);
        w
    };
    let mut w = timed("Hold");
    let d = w.decide();
    assert_eq!(d.shape.partition, Some(2));
    let r = d.rollout.clone().unwrap();
    assert!(r.timed_out);
    assert!(!d.progressing.clone().unwrap().status);
    let notice = d
        .notices
        .iter()
        .find(|n| n.reason == "StepTimedOut")
        .unwrap();
    assert!(
        notice.note.contains("wc-2: restoring 50000 records"),
        "{}",
        notice.note
    );
    w.remember(&d);
    w.now = t(70);
    let again = w.decide();
    assert!(
        again.notices.iter().all(|n| n.reason != "StepTimedOut"),
        "one Event per timeout"
    );

    let d = timed("Continue").decide();
    assert_eq!(d.shape.partition, Some(1), "goes on to wc-1");
    assert_eq!(
        d.rollout.unwrap().since,
        t(61).to_string(),
        "a new step, a new clock"
    );
}

#[test]
fn a_broken_pod_is_replaced_without_waiting_for_the_app_to_settle() {
    // wc-1 crashes on the old revision; wc-2 came back Ready on the new one.
    let pods = vec![at(0, "r1", true), at(1, "r1", false), at(2, "r2", true)];
    let w = World::new(wc(""), sts(3, 2, HASH), pods, stable(&[0, 2]));
    assert_eq!(w.decide().shape.partition, Some(1));
}

#[test]
fn a_pod_unready_while_the_group_rebalances_is_no_free_step() {
    // wc-2 came back on the new revision and joined: the group rebalanced, and wc-1, which
    // still has its member and tasks, is not Ready until Kafka Streams is RUNNING again.
    let pods = vec![at(0, "r1", true), at(1, "r1", false), at(2, "r2", true)];
    let mut status = stable(&[0, 1, 2]);
    status.probing_rebalance_pending = true;
    let d = World::new(wc(""), sts(3, 2, HASH), pods, status).decide();
    assert_eq!(d.shape.partition, Some(2), "wc-1 is not restarted");
    let r = d.rollout.unwrap();
    assert_eq!(r.waiting_on.as_deref(), Some("wc-1"));
    assert_eq!(
        r.waiting_for.as_deref(),
        Some("to be Ready before wc-1 restarts")
    );
}

#[test]
fn a_deleted_pod_at_the_only_revision_is_no_rollout() {
    let mut one = sts(3, 0, HASH);
    one.status.as_mut().unwrap().current_revision = Some("r2".into());
    let pods = vec![at(0, "r2", true), at(2, "r2", true)];
    let d = World::new(wc(""), one, pods, stable(&[0, 2])).decide();
    assert_eq!((d.shape.partition, d.rollout), (Some(0), None));
}

#[test]
fn the_statefulset_strategy_leaves_the_update_to_the_controller() {
    let pods = vec![at(0, "r1", true), at(1, "r1", true), at(2, "r1", true)];
    let w = World::new(
        wc(", rollout: {strategy: StatefulSet}"),
        sts(3, 0, "old"),
        pods,
        stable(&[0, 1, 2]),
    );
    let d = w.decide();
    assert_eq!((d.shape.partition, d.shape.replicas), (None, 3));
    assert_eq!(d.rollout, None);
}

#[test]
fn a_scale_down_removes_one_instance_at_a_time_from_a_settled_app() {
    let app = wc("").tap(|a| a.spec.replicas = 1);
    let all = vec![at(0, "r2", true), at(1, "r2", true), at(2, "r2", true)];
    let mut done = sts(3, 0, HASH);
    done.status.as_mut().unwrap().current_revision = Some("r2".into());
    let mut w = World::new(app, done.clone(), all.clone(), stable(&[0, 1, 2]));
    let d = w.decide();
    assert_eq!(d.shape.replicas, 2);
    assert_eq!(d.rollout.clone().unwrap().step, "remove wc-2");
    w.remember(&d);

    // wc-2 still terminating: the next removal waits.
    done.spec.as_mut().unwrap().replicas = Some(2);
    w.observed.statefulset = Some(done.clone());
    let d = w.decide();
    assert_eq!(d.shape.replicas, 2);
    let r = d.rollout.clone().unwrap();
    assert_eq!(
        (r.step.as_str(), r.waiting_on.as_deref()),
        ("remove wc-1", Some("wc-2"))
    );
    // Gone, but its tasks restore on wc-0: still waiting, and saying so.
    w.observed.pods = all[..2].to_vec();
    w.kafka = Some(ok(restoring(stable(&[0, 1]), 0, 20_000)));
    let d = w.decide();
    assert_eq!(d.shape.replicas, 2);
    assert_eq!(d.progressing.unwrap().reason, "ScaleDownWaitingForRestore");
    // Caught up: wc-1 goes.
    w.kafka = Some(ok(stable(&[0, 1])));
    assert_eq!(w.decide().shape.replicas, 1);
    // Scaling to zero stops the app at once, restoring or not.
    w.app.spec.replicas = 0;
    w.kafka = Some(ok(restoring(stable(&[0, 1]), 0, 20_000)));
    assert_eq!(w.decide().shape.replicas, 0);
}

#[test]
fn a_scale_down_waits_for_a_rollout_and_a_scale_up_does_not() {
    let pods = vec![at(0, "r1", true), at(1, "r1", true), at(2, "r2", true)];
    let down = World::new(
        wc("").tap(|a| a.spec.replicas = 2),
        sts(3, 2, HASH),
        pods.clone(),
        restoring(stable(&[0, 1, 2]), 2, 50_000),
    );
    assert_eq!(down.decide().shape.replicas, 3);
    let up = World::new(
        wc("").tap(|a| a.spec.replicas = 5),
        sts(3, 2, HASH),
        pods,
        restoring(stable(&[0, 1, 2]), 2, 50_000),
    );
    assert_eq!(up.decide().shape.replicas, 5);
}

#[test]
fn the_budget_blocks_evictions_while_restoring_until_the_allowance_is_spent() {
    let pods = vec![at(0, "r2", true), at(1, "r2", true), at(2, "r2", true)];
    let mut done = sts(3, 0, HASH);
    done.status.as_mut().unwrap().current_revision = Some("r2".into());
    let mut app = wc(", rollout: {stepTimeoutSeconds: 600}");
    app.status = Some(StreamAppStatus {
        conditions: vec![Condition {
            type_: condition::RESTORING.into(),
            status: "True".into(),
            reason: "RestoringState".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(t(0)),
        }],
        ..StreamAppStatus::default()
    });
    let mut w = World::new(app, done, pods, restoring(stable(&[0, 1, 2]), 1, 99_000));
    w.now = t(100);
    let d = w.decide();
    assert_eq!(d.budget, Budget::NONE);
    assert_eq!(d.next_look, Some(Duration::from_secs(500)));
    assert_eq!(d.notices[0].reason, "DisruptionsBlocked");
    w.now = t(600);
    let d = w.decide();
    assert_eq!(d.budget, Budget::ONE);
    assert!(d.notices.is_empty(), "the live budget was never 0 here");
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for StreamApp {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[test]
fn a_hold_stops_every_pod_mid_rollout_and_keeps_the_volumes() {
    // Mid-rollout (wc-2 updated, the step waiting), a suspend takes the app to zero at once:
    // no step waits, and the partition opens so the pods start at the latest spec.
    let mut w = World::new(
        wc(""),
        sts(3, 2, HASH),
        vec![at(0, "r1", true), at(1, "r1", true), at(2, "r2", false)],
        stable(&[0, 1]),
    );
    w.hold = Some(Hold::Suspended);
    let d = w.decide();
    assert_eq!(
        d.shape,
        Shape {
            replicas: 0,
            partition: Some(0),
            held: true
        }
    );
    assert_eq!(d.rollout, None);
    assert_eq!(d.progressing.unwrap().reason, "Suspended");
}
