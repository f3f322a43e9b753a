//! The text of `describe`: a header, one row per pod, the conditions that need attention.
//! Pure: what was read goes in, the text comes out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kstreams_kafka::KafkaStatus;
use kstreams_kafka::status::PodKafkaStatus;
use kube::ResourceExt;

use crate::crd::{StreamApp, condition};

/// The node label that names a node's zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// An unknown figure: never a 0, which would claim a value.
const UNKNOWN: &str = "-";
/// A known, empty list (kubectl's spelling).
const NONE: &str = "<none>";
/// Longer task lists are shortened to their count and first few, so a row stays readable.
const TASKS_SHOWN: usize = 4;

/// The `describe` text for `app`, its `pods` and the `nodes` they run on.
pub fn render(app: &StreamApp, pods: &[Pod], nodes: &[Node]) -> String {
    let status = app.status.as_ref();
    let kafka = status.and_then(|s| s.kafka.as_ref());
    let mut out = header(app, kafka);
    out.push('\n');
    out.push_str(&pod_table(pods, nodes, kafka));
    out.push('\n');
    out.push_str(&conditions(
        status.map(|s| &s.conditions[..]).unwrap_or(&[]),
    ));
    out
}

fn header(app: &StreamApp, kafka: Option<&KafkaStatus>) -> String {
    let status = app.status.as_ref();
    let ready = status.map_or(UNKNOWN.to_string(), |s| s.ready_replicas.to_string());
    let application_id = status
        .and_then(|s| s.application_id.clone())
        .unwrap_or_else(|| app.application_id());
    let processing = kafka.map_or(UNKNOWN.to_string(), |k| {
        match (k.processing_lag_total, k.uncommitted_partitions) {
            (Some(lag), _) => lag.to_string(),
            (None, 0) => UNKNOWN.to_string(),
            (None, 1) => format!("{UNKNOWN} (1 partition without a committed offset)"),
            (None, n) => format!("{UNKNOWN} ({n} partitions without a committed offset)"),
        }
    });
    let restore = kafka.map_or(UNKNOWN.to_string(), |k| match k.restore_lag_total {
        Some(lag) if k.restore_lag_exact => lag.to_string(),
        Some(lag) => format!("{lag} (upper bound)"),
        None => UNKNOWN.to_string(),
    });
    let group = kafka.map_or(UNKNOWN.to_string(), |k| {
        k.group
            .as_ref()
            .map_or("no consumer group".to_string(), |g| g.state.clone())
    });
    let rollout = status
        .and_then(|s| s.rollout.as_ref())
        .map_or("none under way".to_string(), |r| {
            format!("{} (step {:?} since {})", r.summary, r.step, r.since)
        });
    let fields = [
        ("Name", app.name_any()),
        ("Namespace", app.namespace().unwrap_or_default()),
        ("Application ID", application_id),
        ("Replicas", format!("{ready}/{} ready", app.spec.replicas)),
        ("Processing lag", processing),
        ("Restore lag", restore),
        ("Group state", group),
        (
            "Kafka checked",
            kafka.map_or(UNKNOWN.to_string(), |k| k.last_checked.clone()),
        ),
        ("Rollout", rollout),
    ];
    let reset = status.and_then(|s| s.reset.as_ref()).map(|r| {
        let steps = r.steps.len();
        match &r.message {
            Some(m) => format!("{} {:?} after {steps} steps: {m}", r.id, r.phase),
            None => format!("{} {:?} after {steps} steps", r.id, r.phase),
        }
    });
    let fields: Vec<(&str, String)> = fields
        .into_iter()
        .chain(reset.map(|r| ("Reset", r)))
        .collect();
    // The longest key, its colon and two spaces, as kubectl describe aligns its fields.
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 3;
    fields
        .iter()
        .map(|(k, v)| format!("{:width$}{v}\n", format!("{k}:")))
        .collect()
}

fn pod_table(pods: &[Pod], nodes: &[Node], kafka: Option<&KafkaStatus>) -> String {
    let zones: BTreeMap<String, String> = nodes
        .iter()
        .filter_map(|n| Some((n.name_any(), n.labels().get(ZONE_LABEL)?.clone())))
        .collect();
    let by_pod: BTreeMap<&str, &PodKafkaStatus> = kafka
        .iter()
        .flat_map(|k| k.pods.iter())
        .map(|p| (p.pod.as_str(), p))
        .collect();
    let pods: BTreeMap<String, &Pod> = pods.iter().map(|p| (p.name_any(), p)).collect();
    // The Kafka check may know a pod that is gone since (or not yet listed): show it too.
    let mut names: Vec<&str> = pods
        .keys()
        .map(String::as_str)
        .chain(by_pod.keys().copied())
        .collect();
    names.sort_by_key(|n| ordinal_key(n));
    names.dedup();

    if names.is_empty() {
        return "Pods: none\n".to_string();
    }
    let mut rows = vec![
        [
            "POD", "NODE", "ZONE", "READY", "MEMBERS", "ACTIVE", "STANDBY", "LAG", "RESTORE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for name in names {
        let pod = pods.get(name);
        let node = pod.and_then(|p| p.spec.as_ref()?.node_name.clone());
        let zone = node.as_ref().and_then(|n| zones.get(n)).cloned();
        let ready = pod.and_then(|p| {
            let conditions = p.status.as_ref()?.conditions.as_ref()?;
            Some(
                conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")?
                    .status
                    .clone(),
            )
        });
        let k = by_pod.get(name);
        rows.push(vec![
            name.to_string(),
            node.unwrap_or_else(|| UNKNOWN.into()),
            zone.unwrap_or_else(|| UNKNOWN.into()),
            ready.unwrap_or_else(|| UNKNOWN.into()),
            k.map_or(UNKNOWN.into(), |k| k.members.to_string()),
            k.map_or(UNKNOWN.into(), |k| tasks(&k.active_tasks)),
            k.map_or(UNKNOWN.into(), |k| tasks(&k.standby_tasks)),
            k.and_then(|k| k.processing_lag)
                .map_or(UNKNOWN.into(), |l| l.to_string()),
            k.and_then(|k| Some((k.restore_lag?, k.restore_lag_exact)))
                .map_or(UNKNOWN.into(), |(lag, exact)| {
                    if exact {
                        lag.to_string()
                    } else {
                        format!("<={lag}")
                    }
                }),
        ]);
    }
    table(&rows)
}

/// Sorts `app-2` before `app-10`: by the name's stem, then its trailing ordinal.
fn ordinal_key(name: &str) -> (&str, u64, &str) {
    match name.rsplit_once('-') {
        Some((stem, n)) if let Ok(n) = n.parse() => (stem, n, name),
        _ => (name, 0, name),
    }
}

fn tasks(tasks: &[String]) -> String {
    match tasks.len() {
        0 => NONE.to_string(),
        n if n <= TASKS_SHOWN => tasks.join(","),
        n => format!("{n} ({},…)", tasks[..TASKS_SHOWN - 1].join(",")),
    }
}

/// Whether a condition is in the state a healthy app has; Progressing is news, not a problem.
fn good(c: &Condition) -> bool {
    match c.type_.as_str() {
        condition::PROGRESSING => true,
        condition::DEGRADED
        | condition::RESTORING
        | condition::RECONCILIATION_PAUSED
        | condition::SUSPENDED
        | condition::INSTANCES_IDLE => c.status == "False",
        condition::RESETTING => {
            c.status == "False" && !matches!(c.reason.as_str(), "ResetFailed" | "ResetRefused")
        }
        // Ready, KafkaReachable, ChangelogsHealthy, Processing and any type this version does
        // not know: positive polarity, the Kubernetes convention.
        _ => c.status == "True",
    }
}

fn conditions(conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return "Conditions: none reported yet\n".to_string();
    }
    let bad: Vec<&Condition> = conditions.iter().filter(|c| !good(c)).collect();
    if bad.is_empty() {
        return "Conditions: all conditions good\n".to_string();
    }
    let mut rows = vec![
        ["TYPE", "STATUS", "REASON", "MESSAGE"]
            .map(String::from)
            .to_vec(),
    ];
    rows.extend(bad.iter().map(|c| {
        vec![
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.split_whitespace().collect::<Vec<_>>().join(" "),
        ]
    }));
    format!("Conditions not in their good state:\n{}", table(&rows))
}

/// Space-padded columns, three spaces apart, like kubectl; no trailing blanks.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-pod app in the middle of a restore: pod 1 lacks state and has an uncommitted
    /// partition, pod 0 holds most tasks.
    const APP: &str = r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wordcount, namespace: shop, generation: 4}
spec: {image: wc:1, replicas: 2, applicationId: wordcount-v2, kafka: {bootstrapServers: 'k:9092'}}
status:
  observedGeneration: 4
  replicas: 2
  readyReplicas: 1
  applicationId: wordcount-v2
  kafka:
    lastChecked: "2026-03-01T10:00:00Z"
    group:
      state: Stable
      protocolType: consumer
      protocol: stream
    pods:
    - pod: wordcount-0
      members: 2
      activeTasks: [0_0, 0_1, 0_2, 1_0, 1_1]
      standbyTasks: [1_2]
      processingLag: 40
      restoreLag: 0
      restoreLagExact: true
      caughtUp: true
    - pod: wordcount-1
      members: 1
      activeTasks: [1_2]
      uncommittedPartitions: 1
      restoreLag: 1200
      restoreLagExact: false
      caughtUp: false
    uncommittedPartitions: 1
    restoreLagTotal: 1200
    restoreLagExact: false
  conditions:
  - {type: Ready, status: "False", reason: Restoring, message: "1 of 2 instances restore state", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: Progressing, status: "True", reason: Rollout, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: Degraded, status: "False", reason: AsExpected, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: KafkaReachable, status: "True", reason: Checked, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: ChangelogsHealthy, status: "True", reason: AllCompacted, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: Restoring, status: "True", reason: RestoreLagAboveAcceptable, message: "wordcount-1 lacks\n1200 changelog records", lastTransitionTime: "2026-03-01T10:00:00Z"}
"#;

    fn pod(name: &str, node: &str, ready: &str) -> Pod {
        serde_yaml::from_str(&format!(
            "metadata: {{name: {name}, namespace: shop}}\n\
             spec: {{nodeName: {node}, containers: [{{name: app}}]}}\n\
             status: {{conditions: [{{type: Ready, status: '{ready}'}}]}}"
        ))
        .unwrap()
    }

    fn node(name: &str, zone: &str) -> Node {
        serde_yaml::from_str(&format!(
            "metadata: {{name: {name}, labels: {{topology.kubernetes.io/zone: {zone}}}}}"
        ))
        .unwrap()
    }

    fn app(yaml: &str) -> StreamApp {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_restoring_two_pod_app() {
        let pods = [
            pod("wordcount-1", "kwok-1", "False"),
            pod("wordcount-0", "kwok-0", "True"),
        ];
        let nodes = [node("kwok-0", "zone-a"), node("kwok-1", "zone-b")];
        assert_eq!(
            render(&app(APP), &pods, &nodes),
            "\
Name:            wordcount
Namespace:       shop
Application ID:  wordcount-v2
Replicas:        1/2 ready
Processing lag:  - (1 partition without a committed offset)
Restore lag:     1200 (upper bound)
Group state:     Stable
Kafka checked:   2026-03-01T10:00:00Z
Rollout:         none under way

POD           NODE     ZONE     READY   MEMBERS   ACTIVE              STANDBY   LAG   RESTORE
wordcount-0   kwok-0   zone-a   True    2         5 (0_0,0_1,0_2,…)   1_2       40    0
wordcount-1   kwok-1   zone-b   False   1         1_2                 <none>    -     <=1200

Conditions not in their good state:
TYPE        STATUS   REASON                      MESSAGE
Ready       False    Restoring                   1 of 2 instances restore state
Restoring   True     RestoreLagAboveAcceptable   wordcount-1 lacks 1200 changelog records
"
        );
    }

    #[test]
    fn a_new_app_shows_unknown_figures_as_dashes_never_zeros() {
        let fresh = "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\n\
                     metadata: {name: fresh, namespace: dev}\n\
                     spec: {image: x:1, replicas: 1, kafka: {bootstrapServers: 'k:9092'}}";
        // Not scheduled yet: no node, no Ready condition.
        let pending: Pod = serde_yaml::from_str(
            "metadata: {name: fresh-0}\nspec: {containers: [{name: app}]}\nstatus: {phase: Pending}",
        )
        .unwrap();
        assert_eq!(
            render(&app(fresh), &[pending], &[]),
            "\
Name:            fresh
Namespace:       dev
Application ID:  fresh
Replicas:        -/1 ready
Processing lag:  -
Restore lag:     -
Group state:     -
Kafka checked:   -
Rollout:         none under way

POD       NODE   ZONE   READY   MEMBERS   ACTIVE   STANDBY   LAG   RESTORE
fresh-0   -      -      -       -         -        -         -     -

Conditions: none reported yet
"
        );
    }

    #[test]
    fn a_healthy_app_says_so_and_rows_follow_the_ordinals() {
        let healthy = r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc, namespace: shop}
spec: {image: wc:1, replicas: 3, kafka: {bootstrapServers: 'k:9092'}}
status:
  replicas: 3
  readyReplicas: 3
  kafka:
    lastChecked: "2026-03-01T10:00:00Z"
    processingLagTotal: 0
    restoreLagTotal: 0
    restoreLagExact: true
    pods:
    - {pod: wc-10, members: 1, activeTasks: [0_1], processingLag: 0, restoreLag: 0, restoreLagExact: true}
    - {pod: wc-2, members: 0}
  conditions:
  - {type: Ready, status: "True", reason: AllReplicasReady, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: Progressing, status: "False", reason: Stable, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: Degraded, status: "False", reason: AsExpected, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
  - {type: Processing, status: "True", reason: Committing, message: "", lastTransitionTime: "2026-03-01T10:00:00Z"}
"#;
        // wc-2 sorts before wc-10; wc-3 is a pod the last Kafka check has not seen yet.
        let pods = [
            pod("wc-10", "kwok-0", "True"),
            pod("wc-3", "kwok-1", "True"),
            pod("wc-2", "kwok-2", "True"),
        ];
        let text = render(&app(healthy), &pods, &[node("kwok-0", "zone-a")]);
        let table: Vec<&str> = text.lines().skip(10).take(4).collect();
        assert_eq!(
            table,
            [
                "POD     NODE     ZONE     READY   MEMBERS   ACTIVE   STANDBY   LAG   RESTORE",
                "wc-2    kwok-2   -        True    0         <none>   <none>    -     -",
                "wc-3    kwok-1   -        True    -         -        -         -     -",
                "wc-10   kwok-0   zone-a   True    1         0_1      <none>    0     0",
            ]
        );
        assert!(
            text.contains("Group state:     no consumer group\n"),
            "{text}"
        );
        assert!(text.contains("Processing lag:  0\n"), "{text}");
        assert!(
            text.ends_with("\nConditions: all conditions good\n"),
            "{text}"
        );
    }

    #[test]
    fn an_app_without_pods_says_so_instead_of_an_empty_table() {
        let mut gone = app(APP);
        if let Some(k) = gone.status.as_mut().and_then(|s| s.kafka.as_mut()) {
            k.pods.clear();
        }
        let text = render(&gone, &[], &[]);
        assert!(text.contains("\n\nPods: none\n\n"), "{text}");
        assert!(!text.contains("POD "), "{text}");
    }

    #[test]
    fn a_condition_is_listed_when_it_is_not_in_its_good_state() {
        let cond = |type_: &str, status: &str| -> Condition {
            serde_yaml::from_str(&format!(
                "{{type: {type_}, status: '{status}', reason: R, message: '', \
                 lastTransitionTime: '2026-03-01T10:00:00Z'}}"
            ))
            .unwrap()
        };
        for (type_, good_status) in [
            ("Ready", "True"),
            ("KafkaReachable", "True"),
            ("ChangelogsHealthy", "True"),
            ("Processing", "True"),
            ("Degraded", "False"),
            ("Restoring", "False"),
            ("ReconciliationPaused", "False"),
            ("InstancesIdle", "False"),
        ] {
            assert!(good(&cond(type_, good_status)), "{type_}={good_status}");
            let bad = if good_status == "True" {
                "False"
            } else {
                "True"
            };
            for status in [bad, "Unknown"] {
                assert!(!good(&cond(type_, status)), "{type_}={status}");
                assert!(
                    conditions(&[cond(type_, status)]).contains(&format!("\n{type_} ")),
                    "{type_}={status}"
                );
            }
        }
        for status in ["True", "False", "Unknown"] {
            assert!(good(&cond("Progressing", status)));
        }
    }
}
