//! What people and dashboards see of a live 2-pod app (the word count, run by the stand-in
//! kubelet, reconciled by a real `kstreams-operator run`): `kstreams-operator describe`
//! prints its pods with their nodes, zones, tasks and lags, and the lag gauges on `/metrics`
//! equal the figures in the status.

use std::time::{Duration, Instant};

use integration_tests::local_pods::{example_jar, wordcount_app};
use integration_tests::{
    Kafka, LocalPods, OperatorProcess, TestNamespace, client, install_crd, is, operator_binary,
    wait_for,
};
use kstreams_operator::crd::StreamApp;
use kube::Api;
use kube::api::PostParams;

const APP: &str = "view";
const STARTUP: Duration = Duration::from_secs(180);

/// Status figures the view and the gauges must show: (lastChecked, processing, restore,
/// per pod (members, active tasks, processing lag)).
type Figures = (
    String,
    Option<i64>,
    Option<i64>,
    Vec<(String, i32, Vec<String>, Option<i64>)>,
);

fn figures(a: &StreamApp) -> Option<Figures> {
    let k = a.status.as_ref()?.kafka.as_ref()?;
    let pods = k
        .pods
        .iter()
        .map(|p| {
            (
                p.pod.clone(),
                p.members,
                p.active_tasks.clone(),
                p.processing_lag,
            )
        })
        .collect();
    Some((
        k.last_checked.clone(),
        k.processing_lag_total,
        k.restore_lag_total,
        pods,
    ))
}

fn shown(v: Option<i64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The value of `metric{namespace="ns",name="view"}` on a `/metrics` page.
fn gauge(page: &str, metric: &str, ns: &str) -> Option<i64> {
    let series = format!("{metric}{{namespace=\"{ns}\",name=\"{APP}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

/// Reads the status, runs `read`, reads the status again: `read`'s result with the figures
/// it must match, once no Kafka check landed in between.
async fn consistent<T>(apps: &Api<StreamApp>, mut read: impl AsyncFnMut() -> T) -> (T, Figures) {
    let deadline = Instant::now() + STARTUP;
    loop {
        let before = figures(&apps.get(APP).await.unwrap());
        let value = read().await;
        let after = figures(&apps.get(APP).await.unwrap());
        if let (Some(b), Some(a)) = (before, after)
            && a == b
        {
            return (value, a);
        }
        assert!(Instant::now() < deadline, "the status never held still");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_metrics_show_a_live_app_as_its_status_does() {
    example_jar();
    let client = client().await;
    let ns = TestNamespace::new(&client, "view").await;
    let kafka = Kafka::new("view");
    let input = kafka.create_topic("lines", 2, &[]).await;
    let output = kafka.create_topic("counts", 2, &[]).await;
    let app_id = format!("{}.view", kafka.prefix);
    install_crd(&client).await;
    let operator = OperatorProcess::start(
        "view",
        &["--namespaces", &ns.name, "--kafka-refresh-seconds", "3"],
    );
    operator.wait_ready(Duration::from_secs(60)).await;
    let _local = LocalPods::start(&client, &ns.name, &[]);
    let apps = ns.api::<StreamApp>();
    apps.create(
        &PostParams::default(),
        &wordcount_app(APP, &app_id, &kafka.bootstrap, &input, &output),
    )
    .await
    .unwrap();
    wait_for(
        &apps,
        APP,
        "Ready, both pods members, lag known",
        STARTUP,
        |a| {
            is(a, "Ready", "True")
                && figures(a).is_some_and(|(_, lag, _, pods)| {
                    lag.is_some() && pods.len() == 2 && pods.iter().all(|p| p.1 == 1)
                })
        },
    )
    .await;

    let describe = async || {
        let out = tokio::process::Command::new(operator_binary())
            .args(["describe", APP, "-n", &ns.name])
            .output()
            .await
            .expect("running kstreams-operator describe");
        assert!(
            out.status.success(),
            "describe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (text, (_, lag, restore, pods)) = consistent(&apps, describe).await;
    println!("{text}");
    assert!(
        text.contains(&format!("Processing lag:  {}", shown(lag))),
        "{text}"
    );
    assert!(
        text.contains(&format!("Restore lag:     {}", shown(restore))),
        "{text}"
    );
    for (pod, members, active, pod_lag) in &pods {
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(pod.as_str()))
            .unwrap_or_else(|| panic!("no row for {pod}:\n{text}"))
            .split_whitespace()
            .collect();
        // POD NODE ZONE READY MEMBERS ACTIVE STANDBY LAG RESTORE
        assert!(row[1].starts_with("kwok-node-"), "{pod}'s node: {row:?}");
        assert!(row[2].starts_with("zone-"), "{pod}'s zone: {row:?}");
        assert_eq!(row[3], "True", "{pod} Ready: {row:?}");
        assert_eq!(row[4], members.to_string(), "{pod}'s members: {row:?}");
        assert_eq!(row[5], active.join(","), "{pod}'s active tasks: {row:?}");
        assert_eq!(row[7], shown(*pod_lag), "{pod}'s lag: {row:?}");
    }
    assert!(text.contains("all conditions good"), "{text}");

    // The gauges come from the operator's own cache of the status: they catch up within a
    // watch event.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let scrape = async || operator.get("/metrics").await.map(|(_, body)| body);
        let (page, (_, lag, restore, _)) = consistent(&apps, scrape).await;
        let page = page.unwrap_or_default();
        let gauges = (
            gauge(&page, "kstreams_app_processing_lag_records", &ns.name),
            gauge(&page, "kstreams_app_restore_lag_records", &ns.name),
        );
        if gauges == (lag, restore) {
            println!("gauges {gauges:?} equal the status");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gauges {gauges:?}, status {:?}",
            (lag, restore)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
