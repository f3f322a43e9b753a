//! `spec.suspend` on the real word count: zero pods, everything kept, and back where it
//! stopped without a full restore.

use integration_tests::reset::{
    APP, CountReader, LONG, ResetWorld, committed, counts, ends, produce,
};
use integration_tests::seed::pod_loads;
use integration_tests::{Operator, client, condition, wait_for, wait_for_list};
use k8s_openapi::api::core::v1::Pod;

/// Words enough that a full restore of the counts store would show in the restore log.
fn lines() -> Vec<String> {
    (0..300)
        .map(|i| {
            (0..10)
                .map(|j| format!("w{:05}", i * 10 + j))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_app_keeps_its_state_and_resumes_without_a_full_restore() {
    let client = client().await;
    let w = ResetWorld::new(&client, "suspend").await;
    let _operator = Operator::start(&client, &w.ns.name).await;
    w.create(&w.app()).await;
    let lines = lines();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    produce(&w.kafka.bootstrap, &w.input, None, &refs, None).await;
    let want = counts(&refs);
    let zero = ends(&w.kafka.bootstrap, &w.output)
        .into_keys()
        .map(|p| (p, 0))
        .collect();
    CountReader::from(&w.kafka.bootstrap, &w.output, &zero)
        .await_counts(&want, LONG)
        .await;
    let claims = w.claim_uids().await;
    let changelog = format!("{}-counts-changelog", w.app_id);

    w.patch_spec(serde_json::json!({"suspend": true})).await;
    let pods = w.ns.api::<Pod>();
    let selector = format!("app.kubernetes.io/instance={APP}");
    wait_for_list(&pods, &selector, "no pod left", LONG, |p| p.is_empty()).await;
    let suspended = wait_for(&w.apps, APP, "Suspended and not Ready", LONG, |a| {
        condition(a, "Suspended").is_some_and(|c| c.0 == "True")
            && condition(a, "Ready").is_some_and(|c| c.1 == "Suspended")
    })
    .await;
    assert_eq!(suspended.spec.replicas, 2, "spec.replicas untouched");
    assert_eq!(w.claim_uids().await, claims, "state volumes kept");
    let offsets = committed(&w.kafka.bootstrap, &w.app_id, &w.input);
    assert_eq!(offsets.len(), 3, "committed offsets kept: {offsets:?}");
    assert!(
        !integration_tests::reset::watermarks(&w.kafka.bootstrap, &changelog).is_empty(),
        "changelog {changelog} kept"
    );

    // Records written while suspended are counted after the resume, once.
    let from = ends(&w.kafka.bootstrap, &w.output);
    produce(&w.kafka.bootstrap, &w.input, None, &["w00001 w00002"], None).await;
    w.patch_spec(serde_json::json!({"suspend": false})).await;
    w.ready().await;
    let mut more = std::collections::BTreeMap::new();
    more.insert("w00001".to_string(), want["w00001"] + 1);
    more.insert("w00002".to_string(), want["w00002"] + 1);
    CountReader::from(&w.kafka.bootstrap, &w.output, &from)
        .await_counts(&more, LONG)
        .await;
    let resumed = committed(&w.kafka.bootstrap, &w.app_id, &w.input);
    for (p, (o, _)) in &offsets {
        assert!(
            resumed[p].0 >= *o,
            "partition {p} went back: {o} -> {}",
            resumed[p].0
        );
    }
    // Local state kept: the pods restored at most what the changelog got after their last
    // checkpoint, far from the 3000 counts a wiped store would load.
    let names: Vec<String> = (0..2).map(|o| format!("{APP}-{o}")).collect();
    let restored: i64 = pod_loads(&w.local, &names)
        .iter()
        .filter(|l| !l.standby)
        .filter_map(|l| l.records)
        .sum();
    assert!(
        restored < 500,
        "restored {restored} records after the resume"
    );
    assert_eq!(w.claim_uids().await, claims, "the same volumes came back");
}
