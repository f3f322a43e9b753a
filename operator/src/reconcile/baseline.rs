//! The restore-lag baseline kept in the cluster, so that it outlives the process that took it.
//!
//! Members report their local state only when they join, so restore lag is measured against
//! the changelog end offsets of that moment ([`Baseline`]). A process that starts, or takes
//! over the lead, sees the members already joined and could only give upper bounds; with the
//! baseline of the process that saw them join it goes on with exact figures.
//!
//! Where: one ConfigMap per app, `<app>-kafka-baseline`, owned by the StreamApp (it goes with
//! the app), applied with the operator's one field manager. Key `baseline.json`, compact JSON:
//! `{"version":1,"witnessed":true,"members":[..],"end":{"<topic>":[offset|null, ..]},
//! "committed":{..}}`, one array per topic indexed by partition. For 1,000 partitions (500 of
//! them sources, with committed offsets too) and 100 members it takes 25,314 bytes with
//! 10-digit offsets, 38,814 with 19-digit ones; over [`MAX_BYTES`] (some 17,000 partitions of 19-digit
//! offsets) it is not kept in the cluster: the process goes on with its own, and a successor
//! gives upper bounds.
//!
//! When: read while the process holds no baseline of its own for the app; written only when
//! the baseline changes (other members, a partition first seen), and never over a copy not
//! read yet. A copy for other members than the group's has, not witnessed: those members
//! joined while no operator looked.
//!
//! The pure part (name, content, the choice of the baseline a check starts from) comes first;
//! [`read`] and [`write`] are the two requests.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kstreams_kafka::Baseline;
use kstreams_kafka::lag::Offsets;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crd::StreamApp;
use crate::resources::{FIELD_MANAGER, INSTANCE_LABEL};

/// The key of the baseline in the ConfigMap's `data`.
pub const KEY: &str = "baseline.json";

/// The largest encoded baseline kept in the cluster: half the 1 MiB an object may have, so
/// the metadata and managed fields never bring the ConfigMap near the limit.
pub const MAX_BYTES: usize = 512 * 1024;

/// The version of the content; another one is not read (a newer operator's).
const VERSION: u32 = 1;

/// Why the baseline could not be read or kept in the cluster. None of these stops a check:
/// the process goes on with the baseline it holds, or, without one, with upper bounds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BaselineError {
    /// The apiserver failed the read.
    #[error(
        "reading ConfigMap {name}: {detail} (the operator needs `get configmaps` in the app's namespace)"
    )]
    Read {
        /// The ConfigMap.
        name: String,
        /// What the apiserver said.
        detail: String,
    },
    /// The ConfigMap holds no baseline this operator reads (edited, or written by another
    /// version); it is written over with the next baseline.
    #[error("ConfigMap {name} holds no readable baseline: {detail}")]
    Undecodable {
        /// The ConfigMap.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The encoded baseline exceeds [`MAX_BYTES`]: too many partitions to keep it in an object.
    #[error(
        "the restore-lag baseline takes {bytes} bytes, over the {limit} kept in ConfigMap {name}: an operator that restarts or takes over gives upper bounds until the members next change"
    )]
    TooLarge {
        /// The ConfigMap.
        name: String,
        /// Its encoded size.
        bytes: usize,
        /// [`MAX_BYTES`].
        limit: usize,
    },
    /// The apiserver failed the apply.
    #[error(
        "applying ConfigMap {name}: {detail} (the operator needs `create` and `patch` on configmaps in the app's namespace)"
    )]
    Write {
        /// The ConfigMap.
        name: String,
        /// What the apiserver said.
        detail: String,
    },
}

impl BaselineError {
    /// Every value `category` returns, so the failure counter can start each one at zero.
    pub const CATEGORIES: [&'static str; 4] = [
        "BaselineReadFailed",
        "BaselineUndecodable",
        "BaselineTooLarge",
        "BaselineWriteFailed",
    ];

    /// A short, bounded label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            BaselineError::Read { .. } => "BaselineReadFailed",
            BaselineError::Undecodable { .. } => "BaselineUndecodable",
            BaselineError::TooLarge { .. } => "BaselineTooLarge",
            BaselineError::Write { .. } => "BaselineWriteFailed",
        }
    }
}

/// What the cluster keeps of an app's baseline, as far as this process knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stored {
    /// Not read yet, or the read failed: nothing is written over a copy not read.
    #[default]
    Unread,
    /// As this process last read or wrote it; `None` when the cluster has no usable copy.
    Known(Option<Baseline>),
    /// This baseline was too large to keep; whatever the cluster held before is left there.
    Refused(Baseline),
}

impl Stored {
    /// Whether `baseline` must be written: the cluster's copy, read, is another one.
    pub fn needs(&self, baseline: &Baseline) -> bool {
        match self {
            Stored::Unread => false,
            Stored::Known(copy) => copy.as_ref() != Some(baseline),
            Stored::Refused(refused) => refused != baseline,
        }
    }
}

/// The baseline a check starts from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Start {
    /// The baseline to pass to the check.
    pub baseline: Option<Baseline>,
    /// It is the cluster's copy, taken by another process (or an earlier one): kept only if
    /// the group still has its members.
    pub from_cluster: bool,
}

/// The baseline a check starts from: the process's own, else the cluster's copy. The copy also
/// replaces an own baseline of the same members that this process did not see join (its read
/// had failed until now): the copy's process may have.
pub fn start_from(own: Option<Baseline>, stored: &Stored) -> Start {
    let copy = match stored {
        Stored::Known(Some(copy)) => Some(copy),
        _ => None,
    };
    match (own, copy) {
        (None, Some(copy)) => Start {
            baseline: Some(copy.clone()),
            from_cluster: true,
        },
        (Some(own), Some(copy))
            if !own.witnessed && copy.witnessed && own.members == copy.members =>
        {
            Start {
                baseline: Some(copy.clone()),
                from_cluster: false,
            }
        }
        (own, _) => Start {
            baseline: own,
            from_cluster: false,
        },
    }
}

/// Whether a check that started from the cluster's copy `start` and ended with `next` found
/// other members: the copy is of no use, and the check is to be made again without a baseline
/// (its figures upper bounds: the members joined while no operator looked).
pub fn discarded(start: &Start, next: &Baseline) -> bool {
    start.from_cluster
        && start
            .baseline
            .as_ref()
            .is_some_and(|b| b.members != next.members)
}

/// Name of the app's baseline ConfigMap.
pub fn configmap_name(app: &StreamApp) -> String {
    format!("{}-kafka-baseline", app.name_any())
}

/// The persisted form of a [`Baseline`].
#[derive(Debug, Serialize, Deserialize)]
struct Document {
    version: u32,
    witnessed: bool,
    members: BTreeSet<String>,
    end: BTreeMap<String, Vec<Option<i64>>>,
    committed: BTreeMap<String, Vec<Option<i64>>>,
}

/// Offsets as one array per topic, indexed by partition; `null` where a partition has none.
fn dense(offsets: &Offsets) -> BTreeMap<String, Vec<Option<i64>>> {
    let mut out: BTreeMap<String, Vec<Option<i64>>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        let Ok(p) = usize::try_from(*partition) else {
            continue;
        };
        let slots = out.entry(topic.clone()).or_default();
        if slots.len() <= p {
            slots.resize(p + 1, None);
        }
        slots[p] = Some(*offset);
    }
    out
}

fn sparse(topics: BTreeMap<String, Vec<Option<i64>>>) -> Offsets {
    topics
        .into_iter()
        .flat_map(|(topic, slots)| {
            slots
                .into_iter()
                .enumerate()
                .filter_map(move |(p, o)| Some(((topic.clone(), i32::try_from(p).ok()?), o?)))
        })
        .collect()
}

/// The baseline as the ConfigMap keeps it; `name` only names the ConfigMap in the error.
pub fn encode(baseline: &Baseline, name: &str) -> Result<String, BaselineError> {
    let doc = Document {
        version: VERSION,
        witnessed: baseline.witnessed,
        members: baseline.members.clone(),
        end: dense(&baseline.end),
        committed: dense(&baseline.committed),
    };
    // Maps of strings and numbers always serialize.
    let text = serde_json::to_string(&doc).unwrap_or_default();
    if text.len() > MAX_BYTES {
        return Err(BaselineError::TooLarge {
            name: name.to_string(),
            bytes: text.len(),
            limit: MAX_BYTES,
        });
    }
    Ok(text)
}

/// The baseline [`encode`] made; `name` only names the ConfigMap in the error.
pub fn decode(text: &str, name: &str) -> Result<Baseline, BaselineError> {
    let undecodable = |detail: String| BaselineError::Undecodable {
        name: name.to_string(),
        detail,
    };
    let doc: Document = serde_json::from_str(text).map_err(|e| undecodable(e.to_string()))?;
    if doc.version != VERSION {
        return Err(undecodable(format!(
            "version {}, this operator reads {VERSION}",
            doc.version
        )));
    }
    Ok(Baseline {
        members: doc.members,
        end: sparse(doc.end),
        committed: sparse(doc.committed),
        witnessed: doc.witnessed,
    })
}

/// The app's baseline ConfigMap holding `baseline`. Without the `managed-by` label: the
/// controller's watch of the app's children passes it by, as a new baseline is no reason to
/// reconcile the app.
pub fn configmap(app: &StreamApp, baseline: &Baseline) -> Result<ConfigMap, BaselineError> {
    let name = configmap_name(app);
    let text = encode(baseline, &name)?;
    let labels = BTreeMap::from([
        (INSTANCE_LABEL.to_string(), app.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            "kafka-baseline".to_string(),
        ),
    ]);
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: app.namespace(),
            labels: Some(labels),
            owner_references: app.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(KEY.to_string(), text)])),
        ..ConfigMap::default()
    })
}

/// The baseline `cm` holds for `app`; `None` when it belongs to another app of the same name
/// (an earlier one, not yet collected) or holds nothing.
pub fn from_configmap(app: &StreamApp, cm: &ConfigMap) -> Result<Option<Baseline>, BaselineError> {
    let ours = match app.uid() {
        Some(uid) => cm.owner_references().iter().any(|o| o.uid == uid),
        None => true,
    };
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(KEY)).filter(|_| ours) else {
        return Ok(None);
    };
    decode(text, &cm.name_any()).map(Some)
}

/// Reads the baseline the cluster keeps for `app`; `None` when there is none.
pub async fn read(client: &Client, app: &StreamApp) -> Result<Option<Baseline>, BaselineError> {
    let name = configmap_name(app);
    let api = Api::<ConfigMap>::namespaced(client.clone(), &app.namespace().unwrap_or_default());
    let cm = api.get_opt(&name).await.map_err(|e| BaselineError::Read {
        name: name.clone(),
        detail: e.to_string(),
    })?;
    match cm {
        Some(cm) => from_configmap(app, &cm),
        None => Ok(None),
    }
}

/// Keeps `baseline` as the app's baseline in the cluster.
pub async fn write(
    client: &Client,
    app: &StreamApp,
    baseline: &Baseline,
) -> Result<(), BaselineError> {
    let cm = configmap(app, baseline)?;
    let name = cm.name_any();
    let api = Api::<ConfigMap>::namespaced(client.clone(), &app.namespace().unwrap_or_default());
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await
    .map_err(|e| BaselineError::Write {
        name: name.clone(),
        detail: e.to_string(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;

    const APP: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092'}}
";

    fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
        entries
            .iter()
            .map(|(t, p, o)| ((t.to_string(), *p), *o))
            .collect()
    }

    fn members(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_baseline_reads_back_as_it_was_written() {
        let baseline = Baseline {
            members: members(&[
                "wc-0-StreamThread-1-consumer-9f2c",
                "wc-1-StreamThread-1-consumer-0a7e",
            ]),
            // A partition without an offset (the broker returned none) stays without one.
            end: offsets(&[
                ("wc-counts-changelog", 0, 1200),
                ("wc-counts-changelog", 2, 7),
                ("in", 0, 5),
            ]),
            committed: offsets(&[("in", 0, 3)]),
            witnessed: true,
        };
        let text = encode(&baseline, "wc-kafka-baseline").unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"witnessed":true,"members":["wc-0-StreamThread-1-consumer-9f2c","wc-1-StreamThread-1-consumer-0a7e"],"end":{"in":[5],"wc-counts-changelog":[1200,null,7]},"committed":{"in":[3]}}"#
        );
        assert_eq!(decode(&text, "wc-kafka-baseline").unwrap(), baseline);
        let empty = Baseline::default();
        assert_eq!(decode(&encode(&empty, "x").unwrap(), "x").unwrap(), empty);
    }

    #[test]
    fn content_of_another_version_or_garbage_is_not_read() {
        for text in [
            r#"{"version":2,"witnessed":true,"members":[],"end":{},"committed":{}}"#,
            "{not json",
            r#"{"version":1}"#,
        ] {
            let e = decode(text, "wc-kafka-baseline").unwrap_err();
            assert_eq!(e.category(), "BaselineUndecodable", "{text}");
            assert!(e.to_string().contains("wc-kafka-baseline"), "{e}");
        }
    }

    /// A deterministic offset generator (xorshift), seeded and printed.
    fn offsets_of(topics: usize, partitions: i32, digits: u32, seed: u64) -> Offsets {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let low = 10i64.pow(digits - 1);
        // Every offset of `digits` digits an i64 holds.
        let span = (9 * low).min(i64::MAX - low) as u64;
        (0..topics)
            .flat_map(|t| {
                (0..partitions).map(move |p| (format!("orders-enricher-store-{t}-changelog"), p))
            })
            .map(|k| (k, low + (next() % span) as i64))
            .collect()
    }

    #[test]
    fn a_baseline_of_1000_partitions_stays_far_under_the_object_limit() {
        let seed = 0x5eed_ba5e_u64;
        println!("seed {seed:#x}");
        // 1,000 partitions: 5 changelogs and 5 source topics of 100 partitions each, the
        // committed offsets of the sources, and 100 members (pods of 4 threads each).
        let members: BTreeSet<String> = (0..25)
            .flat_map(|pod| {
                (1..=4).map(move |t| {
                    format!("orders-enricher-{pod}-StreamThread-{t}-consumer-8a5f3c1e-0000-4000-8000-00000000{pod:04}")
                })
            })
            .collect();
        for digits in [10, 19] {
            let mut end = offsets_of(5, 100, digits, seed);
            let sources = offsets_of(5, 100, digits, seed ^ 1)
                .into_iter()
                .map(|((t, p), o)| ((t.replace("changelog", "repartition"), p), o))
                .collect::<Offsets>();
            end.extend(sources.clone());
            assert_eq!(end.len(), 1000);
            let baseline = Baseline {
                members: members.clone(),
                end,
                committed: sources,
                witnessed: true,
            };
            let text = encode(&baseline, "orders-enricher-kafka-baseline").unwrap();
            let cm = configmap(&app(APP), &baseline).unwrap();
            let object = serde_json::to_string(&cm).unwrap().len();
            println!(
                "1,000 partitions, {digits}-digit offsets, {} members: baseline.json {} bytes ({:.1} KiB), ConfigMap {object} bytes; limit {MAX_BYTES}",
                members.len(),
                text.len(),
                text.len() as f64 / 1024.0
            );
            assert!(text.len() * 8 < MAX_BYTES, "{}", text.len());
            assert_eq!(decode(&text, "x").unwrap(), baseline);
        }
    }

    #[test]
    fn a_baseline_over_the_limit_is_refused() {
        let baseline = Baseline {
            end: offsets_of(100, 500, 19, 7),
            ..Baseline::default()
        };
        let e = configmap(&app(APP), &baseline).unwrap_err();
        assert_eq!(e.category(), "BaselineTooLarge");
        assert!(e.to_string().contains("wc-kafka-baseline"), "{e}");
        // Once refused, the same baseline is not tried again; another one is.
        let refused = Stored::Refused(baseline.clone());
        assert!(!refused.needs(&baseline));
        assert!(refused.needs(&Baseline::default()));
    }

    #[test]
    fn the_configmap_is_the_apps_and_only_its_own_is_read() {
        let a = app(APP);
        let baseline = Baseline {
            members: members(&["m1"]),
            witnessed: true,
            ..Baseline::default()
        };
        let cm = configmap(&a, &baseline).unwrap();
        assert_eq!(cm.name_any(), "wc-kafka-baseline");
        assert_eq!(cm.namespace().as_deref(), Some("streams"));
        let owner = &cm.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("StreamApp", "wc")
        );
        assert!(!cm.labels().contains_key(crate::resources::MANAGED_BY_LABEL));
        assert_eq!(from_configmap(&a, &cm).unwrap(), Some(baseline));
        // An app re-created under the same name does not take its predecessor's.
        let mut successor = a.clone();
        successor.metadata.uid = Some("8a5f3c1e-0000-4000-8000-000000000002".into());
        assert_eq!(from_configmap(&successor, &cm).unwrap(), None);
        assert_eq!(from_configmap(&a, &ConfigMap::default()).unwrap(), None);
    }

    #[test]
    fn a_check_starts_from_the_own_baseline_else_the_clusters_copy() {
        let own = |ids: &[&str], witnessed| Baseline {
            members: members(ids),
            witnessed,
            ..Baseline::default()
        };
        let known = |b: &Baseline| Stored::Known(Some(b.clone()));
        // A fresh process: the copy, to be checked against the group's members.
        let copy = own(&["m1"], true);
        let start = start_from(None, &known(&copy));
        assert_eq!(start.baseline.as_ref(), Some(&copy));
        assert!(start.from_cluster);
        assert!(!discarded(&start, &copy));
        // Other members since: the copy goes; the members joined while no one looked.
        assert!(discarded(&start, &own(&["m2"], true)));
        for stored in [Stored::Unread, Stored::Known(None)] {
            assert_eq!(start_from(None, &stored), Start::default());
        }
        // The process's own baseline goes first ...
        let mine = own(&["m2"], true);
        let start = start_from(Some(mine.clone()), &known(&copy));
        assert_eq!((start.baseline, start.from_cluster), (Some(mine), false));
        // ... unless it did not see these members join and the copy's process did.
        let unseen = own(&["m1"], false);
        let start = start_from(Some(unseen.clone()), &known(&copy));
        assert_eq!((start.baseline, start.from_cluster), (Some(copy), false));
        let start = start_from(Some(unseen.clone()), &Stored::Unread);
        assert_eq!(start.baseline, Some(unseen));
    }

    #[test]
    fn a_baseline_is_written_only_when_it_differs_from_the_copy_read() {
        let b = Baseline {
            members: members(&["m1"]),
            ..Baseline::default()
        };
        assert!(!Stored::Unread.needs(&b));
        assert!(Stored::Known(None).needs(&b));
        assert!(!Stored::Known(Some(b.clone())).needs(&b));
        let mut grown = b.clone();
        grown.end.insert(("new-topic".into(), 0), 4);
        assert!(Stored::Known(Some(b)).needs(&grown));
    }
}
