//! The stand-in kubelet against the real control plane: pods whose readiness is their
//! process's, restarts a user sees in `kubectl get pods`, a StatefulSet rollout that waits
//! for a pod's readiness probe, and deletion that ends the process before a replacement.
//!
//! The pods run a `test/host` image: the container's own command as a host process, added
//! through a registry file of the test's own, as a user adds an app.

use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::local_pods::SERVE_LABEL;
use integration_tests::{LocalPods, TestNamespace, client, wait_for, wait_for_list};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

const SETTLE: Duration = Duration::from_secs(60);

/// A registry file adding the `test/host:1` image, in a fresh directory.
fn host_registry(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("images.yaml");
    std::fs::write(&file, "images:\n- image: test/host:1\n  host: {}\n").unwrap();
    file
}

fn test_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target
        .join("standin-tests")
        .join(integration_tests::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

fn ready(pod: &Pod) -> bool {
    condition(pod, "Ready") == Some("True")
}

fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a str> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == kind)?;
    Some(c.status.as_str())
}

fn restarts(pod: &Pod) -> i32 {
    (pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten()))
    .map(|c| c.restart_count)
    .sum()
}

/// A web server on the pod's own address, port 8080, Ready when it answers.
fn web_pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {SERVE_LABEL: "true", "app": "web"}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "web",
                "image": "test/host:1",
                "command": ["python3", "-m", "http.server", "--bind", "$(POD_IP)", "8080"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
            }],
        },
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_process_is_restarted_and_two_pods_share_a_port() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "standin-web").await;
    let dir = test_dir("web");
    let local = LocalPods::start(&client, &ns.name, &[&host_registry(&dir)]);
    let pods = ns.api::<Pod>();
    for name in ["web-a", "web-b"] {
        pods.create(&PostParams::default(), &web_pod(name))
            .await
            .unwrap();
    }
    // An image the stand-in does not know stays as kwok has it: bound, never Ready.
    let mut unknown = web_pod("mystery");
    unknown.spec.as_mut().unwrap().containers[0].image = Some("test/unknown:1".into());
    pods.create(&PostParams::default(), &unknown).await.unwrap();

    for name in ["web-a", "web-b"] {
        wait_for(&pods, name, "Ready by its readiness probe", SETTLE, ready).await;
    }
    let (a, b) = (local.address("web-a"), local.address("web-b"));
    assert_ne!(a, b, "each pod binds its own address");
    for addr in [a, b] {
        let reply = std::net::TcpStream::connect((addr, 8080));
        assert!(reply.is_ok(), "{addr}:8080 does not answer: {reply:?}");
    }
    let listed = local.standin().pods();
    let mystery = listed.iter().find(|p| p.key.1 == "mystery");
    assert_eq!(
        mystery.map(|p| p.state.as_str()),
        Some("UnknownImage"),
        "{listed:?}"
    );
    let mystery = pods.get("mystery").await.unwrap();
    assert!(
        mystery
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_some()
            && !ready(&mystery),
        "kwok gave the unknown pod its IP and left it NotReady"
    );

    // The process dies: the pod turns NotReady, is restarted, and counts the restart.
    local.expect_restarts("web-a", 1);
    local.signal("web-a", libc::SIGKILL);
    wait_for(
        &pods,
        "web-a",
        "NotReady after its process died",
        SETTLE,
        |p| !ready(p),
    )
    .await;
    let back = wait_for(
        &pods,
        "web-a",
        "Ready again, restart counted",
        SETTLE,
        |p| ready(p) && restarts(p) == 1,
    )
    .await;
    let status = &back.status.unwrap().container_statuses.unwrap()[0];
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    assert_eq!(last.map(|t| t.exit_code), Some(128 + libc::SIGKILL));
    assert_eq!(restarts(&pods.get("web-b").await.unwrap()), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A StatefulSet whose pods are Ready only while `$DIR/ready-$VERSION` exists; every probe
/// leaves a line in `$DIR/probes-<pod>-$VERSION`, so a test can tell a probe ran and failed.
fn gated_statefulset(name: &str, dir: &Path, version: &str) -> StatefulSet {
    let probe = "echo probe >> \"$DIR/probes-$POD_NAME-$VERSION\"; test -e \"$DIR/ready-$VERSION\"";
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, SERVE_LABEL: "true"}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "app",
                        "image": "test/host:1",
                        // Records its start and, on SIGTERM, its end two seconds later, so the
                        // journal shows whether a replacement started before it ended.
                        "command": ["sh", "-c",
                            "echo \"start $POD_NAME $POD_UID\" >> \"$DIR/journal\"; \
                             trap 'sleep 2; echo \"stop $POD_NAME $POD_UID\" >> \"$DIR/journal\"; exit 0' TERM; \
                             while true; do sleep 0.2; done"],
                        "env": [
                            {"name": "DIR", "value": dir.display().to_string()},
                            {"name": "VERSION", "value": version},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                        ],
                        "readinessProbe": {
                            "exec": {"command": ["sh", "-c", probe]},
                            "periodSeconds": 1,
                            "failureThreshold": 1,
                        },
                    }],
                },
            },
        },
    }))
    .unwrap()
}

fn revision(pod: &Pod) -> String {
    pod.labels()
        .get("controller-revision-hash")
        .cloned()
        .unwrap_or_default()
}

fn probe_count(dir: &Path, pod: &str, version: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("probes-{pod}-{version}")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_waits_for_a_failing_readiness_probe() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "standin-roll").await;
    let dir = test_dir("roll");
    let _local = LocalPods::start(&client, &ns.name, &[&host_registry(&dir)]);
    let sets: Api<StatefulSet> = ns.api();
    let pods: Api<Pod> = ns.api();
    sets.create(
        &PostParams::default(),
        &gated_statefulset("gate", &dir, "v1"),
    )
    .await
    .unwrap();
    std::fs::write(dir.join("ready-v1"), "").unwrap();
    let v1 = wait_for_list(&pods, "app=gate", "2 pods Ready on v1", SETTLE, |p| {
        p.len() == 2 && p.iter().all(ready)
    })
    .await;
    let old = revision(&v1[0]);

    // v2 never turns Ready until its file exists: gate-1 is replaced first and the rollout
    // must not touch gate-0 while gate-1 fails its probe.
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "VERSION", "value": "v2"}]}
    ]}}}});
    sets.patch("gate", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    wait_for(&pods, "gate-1", "gate-1 on v2, NotReady", SETTLE, |p| {
        revision(p) != old && condition(p, "Ready") == Some("False")
    })
    .await;
    // Wait on the probe itself: three failed v2 probes of gate-1.
    let deadline = tokio::time::Instant::now() + SETTLE;
    while probe_count(&dir, "gate-1", "v2") < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gate-1's v2 probe never ran 3 times"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gate0 = pods.get("gate-0").await.unwrap();
    assert_eq!(
        revision(&gate0),
        old,
        "the rollout went on past a NotReady pod"
    );
    assert!(ready(&gate0) && gate0.metadata.deletion_timestamp.is_none());
    let gate1 = pods.get("gate-1").await.unwrap();
    assert!(!ready(&gate1), "gate-1 Ready although its probe fails");

    std::fs::write(dir.join("ready-v2"), "").unwrap();
    wait_for_list(&pods, "app=gate", "both pods Ready on v2", SETTLE, |p| {
        p.len() == 2 && p.iter().all(|p| ready(p) && revision(p) != old)
    })
    .await;

    // Every stop came before the start of the pod that replaced it.
    let journal = std::fs::read_to_string(dir.join("journal")).unwrap();
    for pod in ["gate-0", "gate-1"] {
        let lines: Vec<&str> = journal
            .lines()
            .filter(|l| l.split(' ').nth(1) == Some(pod))
            .collect();
        assert_eq!(lines.len(), 3, "{pod}: {journal}");
        let uid = |l: &str| l.split(' ').nth(2).unwrap_or_default().to_string();
        assert!(
            lines[0].starts_with("start ")
                && lines[1].starts_with("stop ")
                && uid(lines[0]) == uid(lines[1])
                && lines[2].starts_with("start ")
                && uid(lines[2]) != uid(lines[0]),
            "{pod}: the replacement started before its predecessor ended:\n{journal}"
        );
    }
    sets.delete("gate", &DeleteParams::default()).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
