//! What the operator last applied to each child and what the watches last saw of it, so a
//! reconcile skips a server-side apply that would change nothing. Such an apply is a no-op
//! for the stored object but not for the apiserver: it still decodes, merges, runs admission
//! and compares, and under a burst of reconciles (200 apps created at once) those writes are
//! where the reconcile's time goes.
//!
//! An apply is skipped only when the object is provably the one the last apply produced: the
//! same built object (by hash) was applied, and the live object is still at the version that
//! apply returned. For a ConfigMap and a Service that is the resourceVersion the watch last
//! delivered; for a StatefulSet and a budget, whose status moves their resourceVersion all
//! the time, the uid and `metadata.generation` of the freshly read object (a spec change by
//! anyone bumps it) and the labels and annotations the build sets. Anything else, including
//! a watch that has not yet delivered the apply's own event, applies again: the fallback is
//! today's behaviour, never a missed change. A deleted object's last event carries a new
//! resourceVersion, so it is applied (recreated) again. The state is per process: after a
//! restart or a leader change everything is applied once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// A child, by kind, namespace and name.
type ChildKey = (&'static str, String, String);

/// What an apply returned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    /// Hash of the object sent.
    hash: u64,
    uid: String,
    resource_version: String,
    generation: Option<i64>,
    /// The owning app's uid, to forget the entry with the app.
    owner: String,
}

/// The live side of a child at skip time.
#[derive(Debug, Clone, Copy)]
pub enum Live<'a> {
    /// Judge by the resourceVersion the watch last delivered (ConfigMap, Service).
    Watched,
    /// Judge by this freshly read object (StatefulSet, PodDisruptionBudget); `None` when it
    /// does not exist.
    Read(Option<&'a ObjectMeta>),
}

/// The operator's memory of its applies and of the children's watch events.
#[derive(Debug, Default)]
pub struct AppliedChildren {
    applied: Mutex<HashMap<ChildKey, Stamp>>,
    seen: Mutex<HashMap<ChildKey, String>>,
}

/// Hash of what an apply sends.
pub fn hash_of<T: Serialize>(obj: &T) -> u64 {
    let mut h = DefaultHasher::new();
    // Serialising a built object cannot fail: its types have no non-string map keys.
    serde_json::to_vec(obj).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn key(kind: &'static str, meta: &ObjectMeta) -> ChildKey {
    (
        kind,
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Whether every entry of `want` is in `have`.
fn contains(
    have: Option<&BTreeMap<String, String>>,
    want: Option<&BTreeMap<String, String>>,
) -> bool {
    want.into_iter()
        .flatten()
        .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

impl AppliedChildren {
    /// Records a watch event of a child.
    pub fn saw(&self, kind: &'static str, meta: &ObjectMeta) {
        let Some(rv) = meta.resource_version.clone() else {
            return;
        };
        lock(&self.seen).insert(key(kind, meta), rv);
    }

    /// Records what an apply of `sent` (hash `hash`) returned, for the app with uid `owner`.
    pub fn applied(&self, kind: &'static str, hash: u64, stored: &ObjectMeta, owner: &str) {
        let stamp = Stamp {
            hash,
            uid: stored.uid.clone().unwrap_or_default(),
            resource_version: stored.resource_version.clone().unwrap_or_default(),
            generation: stored.generation,
            owner: owner.to_string(),
        };
        lock(&self.applied).insert(key(kind, stored), stamp);
    }

    /// Forgets the last apply of a child, so the next reconcile applies it (after a failed
    /// apply, whose outcome is unknown).
    pub fn forget(&self, kind: &'static str, built: &ObjectMeta) {
        lock(&self.applied).remove(&key(kind, built));
    }

    /// Whether applying `built` (hash `hash`) now would change nothing.
    pub fn unchanged(
        &self,
        kind: &'static str,
        built: &ObjectMeta,
        hash: u64,
        live: Live<'_>,
    ) -> bool {
        let k = key(kind, built);
        let Some(stamp) = lock(&self.applied).get(&k).cloned() else {
            return false;
        };
        if stamp.hash != hash {
            return false;
        }
        match live {
            Live::Watched => lock(&self.seen).get(&k) == Some(&stamp.resource_version),
            Live::Read(None) => false,
            Live::Read(Some(meta)) => {
                meta.deletion_timestamp.is_none()
                    && meta.uid.as_deref() == Some(stamp.uid.as_str())
                    && meta.generation == stamp.generation
                    && contains(meta.labels.as_ref(), built.labels.as_ref())
                    && contains(meta.annotations.as_ref(), built.annotations.as_ref())
            }
        }
    }

    /// Forgets the children of apps in `namespace` (all namespaces for `None`) whose uid is
    /// not in `live`.
    pub fn forget_deleted(&self, namespace: Option<&str>, live: &HashSet<String>) {
        let mut applied = lock(&self.applied);
        applied
            .retain(|(_, ns, _), s| namespace.is_some_and(|n| n != ns) || live.contains(&s.owner));
        let kept: HashSet<ChildKey> = applied.keys().cloned().collect();
        drop(applied);
        lock(&self.seen).retain(|(kind, ns, name), _| {
            namespace.is_some_and(|n| n != ns) || kept.contains(&(*kind, ns.clone(), name.clone()))
        });
    }

    /// Entries held (applies, watch events), for the memory a benchmark reports.
    pub fn len(&self) -> (usize, usize) {
        (lock(&self.applied).len(), lock(&self.seen).len())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, uid: &str, rv: &str, generation: Option<i64>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            resource_version: Some(rv.into()),
            generation,
            labels: Some([("app".to_string(), "wc".to_string())].into()),
            ..ObjectMeta::default()
        }
    }

    fn built(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some([("app".to_string(), "wc".to_string())].into()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn a_watched_child_is_skipped_only_at_the_version_the_apply_returned() {
        let a = AppliedChildren::default();
        let b = built("wc");
        assert!(
            !a.unchanged("ConfigMap", &b, 1, Live::Watched),
            "never applied"
        );
        a.applied("ConfigMap", 1, &meta("wc", "u1", "10", None), "app");
        assert!(
            !a.unchanged("ConfigMap", &b, 1, Live::Watched),
            "watch not caught up"
        );
        a.saw("ConfigMap", &meta("wc", "u1", "10", None));
        assert!(a.unchanged("ConfigMap", &b, 1, Live::Watched));
        assert!(
            !a.unchanged("ConfigMap", &b, 2, Live::Watched),
            "another build"
        );
        // Someone edited it, or deleted it (the delete event has a new version).
        a.saw("ConfigMap", &meta("wc", "u1", "11", None));
        assert!(!a.unchanged("ConfigMap", &b, 1, Live::Watched));
    }

    #[test]
    fn a_read_child_is_skipped_while_uid_generation_and_labels_hold() {
        let a = AppliedChildren::default();
        let b = built("wc");
        a.applied("StatefulSet", 7, &meta("wc", "u1", "10", Some(3)), "app");
        // Status updates move the resourceVersion, not the generation.
        let live = meta("wc", "u1", "15", Some(3));
        assert!(a.unchanged("StatefulSet", &b, 7, Live::Read(Some(&live))));
        let respec = meta("wc", "u1", "16", Some(4));
        assert!(!a.unchanged("StatefulSet", &b, 7, Live::Read(Some(&respec))));
        let recreated = meta("wc", "u2", "20", Some(3));
        assert!(!a.unchanged("StatefulSet", &b, 7, Live::Read(Some(&recreated))));
        let mut relabelled = live.clone();
        relabelled.labels = None;
        assert!(!a.unchanged("StatefulSet", &b, 7, Live::Read(Some(&relabelled))));
        assert!(!a.unchanged("StatefulSet", &b, 7, Live::Read(None)), "gone");
        a.forget("StatefulSet", &b);
        assert!(!a.unchanged("StatefulSet", &b, 7, Live::Read(Some(&live))));
    }

    #[test]
    fn a_deleted_app_is_forgotten_in_its_namespace_only() {
        let a = AppliedChildren::default();
        a.applied("ConfigMap", 1, &meta("wc", "u1", "10", None), "gone");
        a.saw("ConfigMap", &meta("wc", "u1", "10", None));
        let mut other = meta("wc", "u9", "10", None);
        other.namespace = Some("elsewhere".into());
        a.applied("ConfigMap", 1, &other, "gone-too");
        a.forget_deleted(Some("ns"), &HashSet::new());
        assert_eq!(a.len(), (1, 0));
        a.forget_deleted(None, &HashSet::new());
        assert_eq!(a.len(), (0, 0));
    }
}
