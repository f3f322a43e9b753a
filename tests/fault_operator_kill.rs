//! The operator SIGKILLed at random moments while apps are created, changed and scaled: once
//! a last operator has started, every app converges (Ready at its latest generation, its
//! StatefulSet, ConfigMap and pods as the spec last said), no app's status is ever lost or
//! goes back to an older generation, and the Events stay within a bound: a transition is told
//! at most once per change that caused it plus once per operator start (a start may repeat a
//! transition its killed predecessor told but had not yet recorded in the status).
//!
//! The real `kstreams-operator run` process (SIGKILL needs one) with Kafka checks off
//! (`--kafka-refresh-seconds 0`): the kwok pods run nothing, and Ready means the Kubernetes
//! side. The kill moments are random but seeded: the seed is printed, and
//! `KSTREAMS_FAULT_SEED=<seed>` replays a run. The fast variant (10 apps, 3 kills) runs in
//! `make test`; the full one (50 apps, ten kills) is ignored there and run by `make soak`:
//! `cargo test -p integration-tests --test fault_operator_kill -- --ignored`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use integration_tests::seed::Recorder;
use integration_tests::{OperatorProcess, TestNamespace, client, install_crd, is, wait_for_list};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::events::v1::Event;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::resources::configmap::{PROPERTIES_KEY, config_hash};
use kstreams_operator::resources::statefulset::CONFIG_HASH_ANNOTATION;
use kstreams_operator::resources::{FIELD_MANAGER, INSTANCE_LABEL};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Marks the test's apps, to watch and list them.
const LABEL: &str = "kstreams.dev/fault-test";
/// The Streams setting a config change changes.
const CONFIG_KEY: &str = "commit.interval.ms";
/// How long kube's Event recorder folds a repeated Event into the same object's series.
const EVENT_CACHE_TTL: Duration = Duration::from_secs(360);

/// How big a run is.
#[derive(Debug, Clone, Copy)]
struct Size {
    apps: usize,
    changes_per_app: usize,
    kills: usize,
    /// How long the apps get to converge under the last operator.
    converge: Duration,
}

#[tokio::test]
async fn operator_killed_at_random_moments_leaves_no_app_stuck() {
    run(Size {
        apps: 10,
        changes_per_app: 2,
        kills: 3,
        converge: Duration::from_secs(180),
    })
    .await;
}

#[tokio::test]
#[ignore = "soak: 50 apps, ten kills; run by `make soak`"]
async fn operator_killed_ten_times_over_fifty_apps() {
    run(Size {
        apps: 50,
        changes_per_app: 3,
        kills: 10,
        converge: Duration::from_secs(600),
    })
    .await;
}

/// One change the test makes, in the order it makes them.
#[derive(Debug, Clone)]
enum Op {
    Create { app: usize, replicas: i32 },
    Scale { app: usize, replicas: i32 },
    Configure { app: usize, value: u32 },
}

/// What the spec of each app says once every op is made.
#[derive(Debug, Clone, Default)]
struct Want {
    replicas: i32,
    config: Option<u32>,
    /// Ops on the app: each bumps its generation and may cause one Ready transition.
    changes: usize,
}

/// The ops of a run: each app is created, then changed `changes_per_app` times (scaled to
/// another count in 0..=3, or configured anew); the apps' ops interleaved at random.
fn plan(rng: &mut StdRng, size: Size) -> (Vec<Op>, Vec<Want>) {
    let mut per_app: Vec<Vec<Op>> = Vec::new();
    let mut wants = Vec::new();
    let mut next_value = 1000;
    for app in 0..size.apps {
        let mut replicas = rng.random_range(1..=2);
        let mut ops = vec![Op::Create { app, replicas }];
        let mut config = None;
        for _ in 0..size.changes_per_app {
            if rng.random_bool(0.5) {
                let others: Vec<i32> = (0..=3).filter(|r| *r != replicas).collect();
                replicas = others[rng.random_range(0..others.len())];
                ops.push(Op::Scale { app, replicas });
            } else {
                next_value += 1;
                config = Some(next_value);
                ops.push(Op::Configure {
                    app,
                    value: next_value,
                });
            }
        }
        wants.push(Want {
            replicas,
            config,
            changes: ops.len(),
        });
        ops.reverse();
        per_app.push(ops);
    }
    let mut ops = Vec::new();
    loop {
        let pending: Vec<usize> = (0..per_app.len())
            .filter(|a| !per_app[*a].is_empty())
            .collect();
        let Some(app) = pending.get(rng.random_range(0..pending.len().max(1))) else {
            break;
        };
        ops.extend(per_app[*app].pop());
    }
    (ops, wants)
}

fn name(app: usize) -> String {
    format!("k{app:02}")
}

fn streamapp(app: usize, replicas: i32) -> StreamApp {
    serde_yaml::from_str(&format!(
        "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\n\
         metadata: {{name: {}, labels: {{'{LABEL}': 'true'}}}}\n\
         spec: {{image: 'example/app:1', replicas: {replicas}, \
         kafka: {{bootstrapServers: '127.0.0.1:9'}}}}",
        name(app)
    ))
    .expect("a valid StreamApp")
}

async fn make(apps: &Api<StreamApp>, op: &Op) {
    let patch = |app: usize, spec: serde_json::Value| async move {
        apps.patch(
            &name(app),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": spec })),
        )
        .await
        .unwrap_or_else(|e| panic!("{op:?}: {e}"));
    };
    match *op {
        Op::Create { app, replicas } => {
            apps.create(&PostParams::default(), &streamapp(app, replicas))
                .await
                .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
        Op::Scale { app, replicas } => {
            patch(app, serde_json::json!({ "replicas": replicas })).await
        }
        Op::Configure { app, value } => {
            patch(
                app,
                serde_json::json!({ "config": { CONFIG_KEY: value.to_string() } }),
            )
            .await
        }
    }
}

/// Reconciles the operator finished so far (successful or not); None while it does not
/// answer.
async fn reconciles(op: &OperatorProcess) -> Option<u64> {
    let (code, text) = op.get("/metrics").await?;
    if code != 200 {
        return None;
    }
    let total = text
        .lines()
        .filter(|l| l.starts_with("kstreams_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    Some(total as u64)
}

/// Waits until the operator finished `more` reconciles beyond `base`: the moment to kill it
/// comes while it works, not before it started nor once it is idle.
async fn after_reconciles(op: &OperatorProcess, base: u64, more: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let done = reconciles(op).await.unwrap_or(0);
        if done >= base + more {
            return done;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator did not reconcile {more} more times after a change (at {done}, base \
             {base}); log: {}",
            op.log_text()
        );
    }
}

fn start_operator(namespace: &str, n: usize) -> OperatorProcess {
    OperatorProcess::start(
        &format!("op-kill-{n}"),
        &["--namespaces", namespace, "--kafka-refresh-seconds", "0"],
    )
}

/// Whether the app is done under the last operator: Ready at its latest generation with the
/// replicas of its spec, and its spec what the test last asked for.
fn converged(a: &StreamApp, want: &Want) -> bool {
    let Some(s) = a.status.as_ref() else {
        return false;
    };
    s.observed_generation == a.metadata.generation
        && is(a, "Ready", "True")
        && s.replicas == want.replicas
        && s.ready_replicas == want.replicas
        && a.spec.replicas == want.replicas
        && a.spec.config.get(CONFIG_KEY).cloned() == want.config.map(|v| v.to_string())
}

async fn run(size: Size) {
    let seed = std::env::var("KSTREAMS_FAULT_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("KSTREAMS_FAULT_SEED is a number"))
        .unwrap_or_else(|| rand::rng().random());
    println!("KSTREAMS_FAULT_SEED={seed} (set it to replay this run) {size:?}");
    let mut rng = StdRng::seed_from_u64(seed);
    let (ops, wants) = plan(&mut rng, size);
    let mut kill_after: Vec<usize> = (1..ops.len()).collect();
    kill_after.shuffle(&mut rng);
    let kill_after: BTreeMap<usize, u64> = kill_after
        .into_iter()
        .take(size.kills)
        .map(|i| (i, rng.random_range(1..=3)))
        .collect();
    println!(
        "{} ops; kills after ops (and that many reconciles more) {kill_after:?}",
        ops.len()
    );
    for (app, want) in wants.iter().enumerate() {
        let mine: Vec<String> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match *op {
                Op::Create { app: a, replicas } if a == app => {
                    Some(format!("{i}:create {replicas}"))
                }
                Op::Scale { app: a, replicas } if a == app => Some(format!("{i}:scale {replicas}")),
                Op::Configure { app: a, value } if a == app => Some(format!("{i}:config {value}")),
                _ => None,
            })
            .collect();
        println!("  {}: {} -> {want:?}", name(app), mine.join(", "));
    }

    let started = Instant::now();
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "opkill").await;
    let apps = ns.api::<StreamApp>();
    let selector = format!("{LABEL}=true");
    let history = Recorder::start(apps.clone(), watcher::Config::default().labels(&selector)).await;

    let mut starts = 1;
    let mut operator = start_operator(&ns.name, starts);
    for (i, op) in ops.iter().enumerate() {
        // Paced by the operator's progress: each change lands while it works on the ones
        // before, so a kill finds children half changed, not only a backlog never started.
        let base = reconciles(&operator).await.unwrap_or(0);
        make(&apps, op).await;
        let done = after_reconciles(&operator, base, 1).await;
        let Some(more) = kill_after.get(&i) else {
            continue;
        };
        let at = after_reconciles(&operator, done, *more).await;
        operator.signal("KILL");
        let _ = operator.child.wait().await;
        println!(
            "SIGKILL {} after op {i} ({op:?}) at {at} reconciles, {:.1}s in",
            starts,
            started.elapsed().as_secs_f64()
        );
        starts += 1;
        operator = start_operator(&ns.name, starts);
    }
    println!(
        "all ops made and {} kills done in {:.1}s; operator {starts} converges the apps",
        size.kills,
        started.elapsed().as_secs_f64()
    );

    // 1. Every app converges under the last operator.
    let converging = Instant::now();
    let items = wait_for_list(
        &apps,
        &selector,
        "every app Ready at its latest generation with its spec's replicas",
        size.converge,
        |items| {
            items.len() == size.apps
                && items.iter().all(|a| {
                    let app: usize = a.metadata.name.as_deref().unwrap_or("k")[1..]
                        .parse()
                        .unwrap_or(usize::MAX);
                    wants.get(app).is_some_and(|w| converged(a, w))
                })
        },
    )
    .await;
    println!(
        "converged {:.1}s after the last start; {:.1}s in all",
        converging.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // 2. Each app's children are what its spec last said: replicas as last scaled, the last
    //    config in the ConfigMap and on the pod template, every pod of the latest revision.
    let statefulsets = ns.api::<StatefulSet>();
    let configmaps = ns.api::<ConfigMap>();
    let pods = ns.api::<Pod>();
    for (app, want) in wants.iter().enumerate() {
        let n = name(app);
        let sts = statefulsets.get(&n).await.unwrap();
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(want.replicas), "{n}: {want:?}");
        let cm = configmaps.get(&format!("{n}-config")).await.unwrap();
        let properties = cm
            .data
            .as_ref()
            .and_then(|d| d.get(PROPERTIES_KEY))
            .unwrap();
        let line = want.config.map(|v| format!("{CONFIG_KEY}={v}"));
        assert_eq!(
            properties.lines().find(|l| l.starts_with(CONFIG_KEY)),
            line.as_deref(),
            "{n}: {properties}"
        );
        let template = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref());
        assert_eq!(
            template.and_then(|a| a.get(CONFIG_HASH_ANNOTATION)),
            Some(&config_hash(&cm)),
            "{n}: the pod template carries the ConfigMap's hash"
        );
        let revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());
        let own = pods
            .list(&ListParams::default().labels(&format!("{INSTANCE_LABEL}={n}")))
            .await
            .unwrap();
        assert_eq!(own.items.len() as i32, want.replicas, "{n}: pods");
        for p in &own.items {
            assert_eq!(
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("controller-revision-hash")),
                revision.as_ref(),
                "{n}: pod {:?} runs an older revision",
                p.metadata.name
            );
        }
    }

    // 3. No status lost: once an app had one, every later version has one with the same
    //    conditions, at a generation that never goes back.
    let final_types: BTreeMap<String, BTreeSet<String>> = items
        .iter()
        .map(|a| {
            let types = a.status.iter().flat_map(|s| &s.conditions);
            (
                a.metadata.name.clone().unwrap_or_default(),
                types.map(|c| c.type_.clone()).collect(),
            )
        })
        .collect();
    let mut last_generation: BTreeMap<String, i64> = BTreeMap::new();
    let seen = history.seen();
    for s in seen.iter().filter(|s| !s.deleted) {
        let a = &s.object;
        let n = a.metadata.name.clone().unwrap_or_default();
        let version = a.metadata.resource_version.as_deref().unwrap_or("?");
        let Some(status) = &a.status else {
            assert!(
                !last_generation.contains_key(&n),
                "{n}: version {version} lost its status"
            );
            continue;
        };
        let types: BTreeSet<String> = status.conditions.iter().map(|c| c.type_.clone()).collect();
        assert_eq!(
            Some(&types),
            final_types.get(&n),
            "{n}: version {version} has other conditions"
        );
        let generation = status.observed_generation.unwrap_or(0);
        let before = last_generation.insert(n.clone(), generation).unwrap_or(0);
        assert!(
            generation >= before,
            "{n}: version {version} describes generation {generation}, after {before}"
        );
    }
    println!("{} versions of the apps judged", seen.len());

    // 4. No storm of Events: per app and reason, at most one per change plus one per start,
    //    and one Event object per operator instance (the recorder folds repeats into its
    //    series) unless the run outlived the recorder's cache.
    let events = Api::<Event>::namespaced(client.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut told: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut objects: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut warnings = Vec::new();
    for e in events
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(FIELD_MANAGER))
    {
        let app = e
            .regarding
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let reason = e.reason.clone().unwrap_or_default();
        let times = e.series.as_ref().map(|s| s.count as u64).unwrap_or(1);
        *told.entry((app.clone(), reason.clone())).or_default() += times;
        let instance = e.reporting_instance.clone().unwrap_or_default();
        *objects
            .entry((app.clone(), reason.clone(), instance))
            .or_default() += 1;
        if e.type_.as_deref() == Some("Warning") {
            warnings.push(format!("{app} {reason}: {:?}", e.note));
        }
    }
    // Warnings are held to the same bound below; they are listed for the reader.
    if !warnings.is_empty() {
        println!("Warning Events: {warnings:#?}");
    }
    let per_instance = 1 + (started.elapsed().as_secs() / EVENT_CACHE_TTL.as_secs());
    for ((app, reason, instance), n) in &objects {
        assert!(
            *n <= per_instance,
            "{app}: {n} {reason} Events from {instance}, at most {per_instance} expected"
        );
    }
    let mut worst = 0.0f64;
    for ((app, reason), n) in &told {
        let i: usize = app[1..].parse().unwrap();
        let bound = (wants[i].changes + starts) as u64;
        worst = worst.max(*n as f64 / bound as f64);
        assert!(
            *n <= bound,
            "{app}: {reason} told {n} times, for {} changes and {starts} operator starts",
            wants[i].changes
        );
    }
    let ready_told: u64 = told
        .iter()
        .filter(|((_, r), _)| r == "Ready")
        .map(|(_, n)| n)
        .sum();
    println!(
        "Events: {} objects, {} tellings ({ready_told} Ready) for {} changes and {starts} starts; \
         worst (app, reason) at {:.0}% of its bound",
        events.items.len(),
        told.values().sum::<u64>(),
        wants.iter().map(|w| w.changes).sum::<usize>(),
        worst * 100.0
    );
    assert!(ready_told > 0, "the operator told no Ready transition");
    println!(
        "KSTREAMS_FAULT_SEED={seed}: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
