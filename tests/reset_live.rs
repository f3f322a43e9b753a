//! Declarative resets on the real word count and broker: a reset recounts from scratch once,
//! and never again on a restart, a re-apply or a re-create; a reset to a timestamp counts only
//! what came after it; an operator killed after each step's action, before recording it,
//! finishes the reset exactly once; what admission and the first check refuse.

use std::time::Duration;

use integration_tests::reset::{
    APP, CountReader, LONG, ResetWorld, committed, counts, detail, ends, produce, steps, watermarks,
};
use integration_tests::{Operator, OperatorProcess, client, condition, wait_for};
use kstreams_operator::crd::ResetPhase;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

const LINES: &[&str] = &[
    "the quick brown fox",
    "jumps over the lazy dog",
    "the dog barks",
    "the fox runs",
    "a quick dog",
    "over and over",
];

/// Every step a reset that moves the offsets, deletes the topics and wipes the state takes.
const ALL_STEPS: [ResetPhase; 6] = [
    ResetPhase::ScalingDown,
    ResetPhase::WaitingForEmptyGroup,
    ResetPhase::ResettingOffsets,
    ResetPhase::DeletingTopics,
    ResetPhase::WipingState,
    ResetPhase::ScalingUp,
];

/// The Event reason of each step, and of the reset's start and end.
const STEP_EVENTS: [&str; 8] = [
    "ResetStarted",
    "ResetScaledDown",
    "ResetGroupEmptied",
    "ResetOffsetsMoved",
    "ResetTopicsDeleted",
    "ResetStateWiped",
    "ResetScaledUp",
    "ResetDone",
];

fn full_reset(id: &str) -> serde_json::Value {
    serde_json::json!({"reset": {
        "id": id, "inputOffsets": "Earliest", "internalTopics": "Delete", "localState": "Wipe"
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_to_earliest_recounts_from_scratch_once_and_never_again() {
    let client = client().await;
    let w = ResetWorld::new(&client, "reset-earliest").await;
    let operator = Operator::start(&client, &w.ns.name).await;
    let app = w.create(&w.app()).await;
    let uid = app.uid().unwrap();
    produce(&w.kafka.bootstrap, &w.input, None, LINES, None).await;
    let want = counts(LINES);
    CountReader::from(&w.kafka.bootstrap, &w.output, &ends_zero(&w))
        .await_counts(&want, LONG)
        .await;
    let claims_before = w.claim_uids().await;

    let from = ends(&w.kafka.bootstrap, &w.output);
    w.patch_spec(full_reset("r1")).await;
    let done = w.reset_in("r1", ResetPhase::Done).await;
    assert_eq!(steps(&done), ALL_STEPS, "each step once, in order");
    assert_eq!(
        detail(&done, ResetPhase::ResettingOffsets),
        "3 partitions of 1 input topic to Earliest"
    );
    w.ready().await;
    // Recounted from nothing: every count written since the reset ends at the input's count,
    // never above it.
    CountReader::from(&w.kafka.bootstrap, &w.output, &from)
        .await_counts(&want, LONG)
        .await;
    let claims_after = w.claim_uids().await;
    assert_eq!(claims_after.len(), 2);
    for (name, uid) in &claims_before {
        assert_ne!(claims_after.get(name), Some(uid), "{name} was not wiped");
    }
    let events = w.reset_events_through(&uid, "ResetDone").await;
    for reason in STEP_EVENTS {
        assert_eq!(events.get(reason), Some(&1), "{reason} once: {events:?}");
    }
    let resetting = condition(&done, "Resetting").unwrap();
    assert_eq!(
        (resetting.0.as_str(), resetting.1.as_str()),
        ("False", "ResetDone")
    );

    // Re-applied as a GitOps tool would (server-side apply of the same spec, another field
    // manager), then a restarted operator: once it has reconciled again (a newer Kafka check
    // in the status), nothing ran again.
    let same = serde_json::json!({
        "apiVersion": "kstreams.dev/v1alpha1", "kind": "StreamApp",
        "metadata": {"name": APP}, "spec": done.spec,
    });
    w.apps
        .patch(
            APP,
            &PatchParams::apply("gitops").force(),
            &Patch::Apply(&same),
        )
        .await
        .expect("re-applying the same spec");
    drop(operator);
    let operator = Operator::start(&client, &w.ns.name).await;
    // Two finished reconciles: the first one after the start, and one more after whatever it
    // wrote (a status, Events) came back through the watches.
    wait_until("the new operator reconciled twice", || {
        operator.ctx.metrics.reconciles("success") >= 2
    })
    .await;
    let again = w.apps.get(APP).await.unwrap();
    assert_eq!(
        again.status.as_ref().and_then(|s| s.reset.clone()),
        done.status.as_ref().and_then(|s| s.reset.clone())
    );
    assert_eq!(w.reset_events(&uid).await, events);

    // Deleted and created again with the same spec, as a backup restore would: the reset is
    // taken as applied and the offsets stay where the app committed them.
    let offsets = committed(&w.kafka.bootstrap, &w.app_id, &w.input);
    let spec = w.apps.get(APP).await.unwrap().spec;
    w.apps.delete(APP, &DeleteParams::default()).await.unwrap();
    wait_gone(&w).await;
    let mut recreated = w.app();
    recreated.spec = spec;
    w.apps
        .create(&PostParams::default(), &recreated)
        .await
        .unwrap();
    let adopted = w.reset_in("r1", ResetPhase::Adopted).await;
    w.ready().await;
    let new_uid = adopted.uid().unwrap();
    let events = w.reset_events_through(&new_uid, "ResetAdopted").await;
    assert_eq!(events.get("ResetAdopted"), Some(&1));
    assert_eq!(events.get("ResetOffsetsMoved"), None, "{events:?}");
    let now = committed(&w.kafka.bootstrap, &w.app_id, &w.input);
    for (p, (o, _)) in &offsets {
        assert!(
            now.get(p).is_some_and(|(n, _)| n >= o),
            "partition {p} moved back: {o} -> {:?}",
            now.get(p)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_to_a_timestamp_counts_only_the_records_after_it() {
    let client = client().await;
    let w = ResetWorld::new(&client, "reset-time").await;
    let _operator = Operator::start(&client, &w.ns.name).await;
    w.create(&w.app()).await;
    // One partition keeps the order: "apple" counted before the time would overcount.
    let old = &["apple apple banana"];
    let new = &["apple cherry"];
    let t = integration_tests::seed::now_ms() - 3_600_000;
    produce(&w.kafka.bootstrap, &w.input, Some(0), old, Some(t - 60_000)).await;
    produce(&w.kafka.bootstrap, &w.input, Some(0), new, Some(t + 60_000)).await;
    let both = counts(&[old[0], new[0]]);
    CountReader::from(&w.kafka.bootstrap, &w.output, &ends_zero(&w))
        .await_counts(&both, LONG)
        .await;

    let from = ends(&w.kafka.bootstrap, &w.output);
    let at = k8s_openapi::jiff::Timestamp::from_millisecond(t)
        .unwrap()
        .to_string();
    w.patch_spec(serde_json::json!({"reset": {
        "id": "t1", "inputOffsets": "Timestamp", "timestamp": at,
        "internalTopics": "Delete", "localState": "Wipe"
    }}))
    .await;
    w.reset_in("t1", ResetPhase::Done).await;
    let mut reader = CountReader::from(&w.kafka.bootstrap, &w.output, &from);
    reader.await_counts(&counts(new), LONG).await;
    assert_eq!(
        reader.seen.get("banana"),
        None,
        "a record before the time was counted"
    );
    let offsets = committed(&w.kafka.bootstrap, &w.app_id, &w.input);
    assert!(offsets.get(&0).is_some_and(|(o, _)| *o >= 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_after_each_step_finishes_the_reset_exactly_once() {
    let client = client().await;
    let w = ResetWorld::new(&client, "reset-kill").await;
    let run = |halt: Option<ResetPhase>| {
        let mut args = vec![
            "--namespaces".to_string(),
            w.ns.name.clone(),
            "--kafka-refresh-seconds=5".to_string(),
        ];
        if let Some(p) = halt {
            args.push(format!("--reset-halt-after={p:?}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        OperatorProcess::start("reset-kill", &args)
    };
    let op = run(None);
    op.wait_ready(LONG).await;
    let app = w.create(&w.app()).await;
    let uid = app.uid().unwrap();
    produce(&w.kafka.bootstrap, &w.input, None, LINES, None).await;
    let want = counts(LINES);
    CountReader::from(&w.kafka.bootstrap, &w.output, &ends_zero(&w))
        .await_counts(&want, LONG)
        .await;
    let from = ends(&w.kafka.bootstrap, &w.output);
    drop(op);

    let mut op = run(Some(ALL_STEPS[0]));
    w.patch_spec(full_reset("k1")).await;
    for (i, phase) in ALL_STEPS.iter().enumerate() {
        let line = format!("reset halted after {phase:?}");
        wait_log(&op, &line).await;
        let recorded = w.apps.get(APP).await.unwrap().status.and_then(|s| s.reset);
        assert_eq!(
            recorded.map(|r| r.phase),
            Some(*phase),
            "acted on, not yet recorded as done"
        );
        if *phase == ResetPhase::ResettingOffsets {
            // Committed, not yet recorded: the targets, each with the reset's marker.
            let at = committed(&w.kafka.bootstrap, &w.app_id, &w.input);
            let low = watermarks(&w.kafka.bootstrap, &w.input);
            assert_eq!(at.len(), low.len());
            for (p, (offset, metadata)) in &at {
                assert_eq!(*offset, low[p].0, "partition {p} at its earliest offset");
                assert_eq!(metadata, "kstreams.dev/reset=k1");
            }
        }
        op.signal("KILL");
        let _ = op.child.wait().await;
        op = run(ALL_STEPS.get(i + 1).copied());
    }
    let done = w.reset_in("k1", ResetPhase::Done).await;
    assert_eq!(steps(&done), ALL_STEPS, "each step recorded once");
    assert!(
        detail(&done, ResetPhase::ResettingOffsets).contains("already committed before a restart"),
        "{:?}",
        done.status.as_ref().and_then(|s| s.reset.as_ref())
    );
    let events = w.reset_events_through(&uid, "ResetDone").await;
    for reason in STEP_EVENTS {
        assert_eq!(events.get(reason), Some(&1), "{reason} once: {events:?}");
    }
    w.ready().await;
    CountReader::from(&w.kafka.bootstrap, &w.output, &from)
        .await_counts(&want, LONG)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_that_would_double_count_or_names_a_missing_topic_is_refused() {
    let client = client().await;
    let w = ResetWorld::new(&client, "reset-refused").await;
    integration_tests::install_crd(&client).await;
    // Admission: rewinding with the state kept, unless meant; a timestamp without the mode.
    let mut app = w.app();
    app.spec.reset = serde_json::from_value(serde_json::json!(
        {"id": "x", "inputOffsets": "Earliest"}
    ))
    .unwrap();
    let err = w
        .apps
        .create(&PostParams::default(), &app)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("acceptDoubleCounting"), "{err}");
    app.spec.reset = serde_json::from_value(serde_json::json!(
        {"id": "x", "inputOffsets": "Latest", "timestamp": "2026-01-01T00:00:00Z"}
    ))
    .unwrap();
    let err = w
        .apps
        .create(&PostParams::default(), &app)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timestamp is set exactly when"), "{err}");

    // A missing input topic is found before the first step: nothing goes down.
    let _operator = Operator::start(&client, &w.ns.name).await;
    let mut app = w.app();
    let missing = format!("{}.absent", w.kafka.prefix);
    app.spec.topics.inputs.push(missing.clone());
    w.apps.create(&PostParams::default(), &app).await.unwrap();
    wait_for(&w.apps, APP, "reconciled", LONG, |a| {
        a.status
            .as_ref()
            .is_some_and(|s| s.observed_generation.is_some())
    })
    .await;
    let deadline = tokio::time::Instant::now() + LONG;
    let claims = loop {
        let claims = w.claim_uids().await;
        if claims.len() == 2 {
            break claims;
        }
        assert!(tokio::time::Instant::now() < deadline, "claims: {claims:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    w.patch_spec(serde_json::json!({"reset": {
        "id": "m1", "inputOffsets": "Earliest", "acceptDoubleCounting": true
    }}))
    .await;
    let refused = w.reset_in("m1", ResetPhase::Refused).await;
    let message = refused
        .status
        .as_ref()
        .and_then(|s| s.reset.as_ref())
        .and_then(|r| r.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&missing), "{message}");
    assert_eq!(steps(&refused), []);
    let sts =
        w.ns.api::<k8s_openapi::api::apps::v1::StatefulSet>()
            .get(APP)
            .await
            .unwrap();
    assert_eq!(
        sts.spec.and_then(|s| s.replicas),
        Some(2),
        "the app never went down"
    );
    assert_eq!(w.claim_uids().await, claims, "no volume touched");
    let events = w
        .reset_events_through(&refused.uid().unwrap(), "ResetRefused")
        .await;
    assert_eq!(events.get("ResetRefused"), Some(&1));
}

/// Offset 0 of each output partition: every count written so far.
fn ends_zero(w: &ResetWorld) -> std::collections::BTreeMap<i32, i64> {
    ends(&w.kafka.bootstrap, &w.output)
        .into_keys()
        .map(|p| (p, 0))
        .collect()
}

/// Polls `done` until it holds, failing after [`LONG`].
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_gone(w: &ResetWorld) {
    let deadline = tokio::time::Instant::now() + LONG;
    while w.apps.get_opt(APP).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "{APP} not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the operator's log has `line`.
async fn wait_log(op: &OperatorProcess, line: &str) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !op.log_text().contains(line) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {line:?} in the operator's log:\n{}",
            op.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
