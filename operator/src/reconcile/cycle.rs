//! Refresh cycles: the periodic Kafka checks of all the apps of one cluster, made together in
//! one round of requests per refresh period ([`check_cluster`]), so what a refresh sends does
//! not grow with the number of apps.
//!
//! The periods begin at the same instants for every app, and every app's reconcile comes
//! back at the next beginning. The first reconcile of a period starts the round for every app
//! of its cluster seen so far; the others take their result from it. A result is taken only
//! by an app that would have been checked alone the same way (the same pods, the same
//! restore-lag baseline); any other app, and an app the round began without, is checked
//! alone. So is every check a change asks for (a new spec, other pods, a step waiting):
//! it is never held back for the next round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kstreams_kafka::check_cluster;
use kstreams_kafka::{AppView, Baseline, Checked, ClientPool, KafkaConnection, KafkaError};
use tracing::debug;

/// What an app was checked with in a round, and what the round found.
type Entry = (AppView, Option<Baseline>, Result<Checked, KafkaError>);
/// A round's results by app uid, each taken out by its app: a period has one round check per
/// app (the check it takes counts as this period's), and what is taken is not kept twice
/// for the rest of the period.
type Results = Arc<Mutex<HashMap<String, Entry>>>;
/// A round that every reconcile of its period awaits, whichever of them started it.
type Round = Shared<BoxFuture<'static, Results>>;

/// The shortest wait until the next period, so a timer that fires a little early does not
/// spin on a period that has not begun yet.
const MIN_WAIT: Duration = Duration::from_millis(100);

/// The refresh cycles of every cluster the operator's apps use.
pub struct Cycles {
    period: Duration,
    epoch: Instant,
    clusters: Mutex<HashMap<KafkaConnection, Cluster>>,
}

/// One cluster: its apps and the round of the latest period.
#[derive(Default)]
struct Cluster {
    /// Every app of the cluster by uid, with the view and baseline it was last checked with.
    apps: HashMap<String, (AppView, Option<Baseline>)>,
    /// The number of the period of the latest round, and the round.
    round: Option<(u64, Round)>,
}

impl Cycles {
    /// Cycles of `period`, the first beginning now.
    pub fn new(period: Duration) -> Self {
        Self {
            period: period.max(Duration::from_millis(1)),
            epoch: Instant::now(),
            clusters: Mutex::default(),
        }
    }

    /// The number of the period `at` falls in.
    fn period_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        (since / self.period.as_nanos()) as u64
    }

    /// When the period that `at` falls in began.
    pub fn began(&self, at: Instant) -> Instant {
        let n = self.period_of(at);
        let nanos = self.period.as_nanos().saturating_mul(n as u128);
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long from `now` until the next period begins.
    pub fn until_next(&self, now: Instant) -> Duration {
        let next = self.began(now) + self.period;
        next.saturating_duration_since(now).max(MIN_WAIT)
    }

    /// This period's check of the app `uid` on `conn`'s cluster, as `view` with `baseline`,
    /// from the round of this period (started now when there is none yet); `None` when the
    /// round began without the app or checked it otherwise, and the caller checks it alone.
    pub async fn check(
        &self,
        pool: &Arc<ClientPool>,
        conn: &KafkaConnection,
        uid: &str,
        view: &AppView,
        baseline: Option<&Baseline>,
    ) -> Option<Result<Checked, KafkaError>> {
        let period = self.period_of(Instant::now());
        let round = {
            let mut clusters = self.lock();
            let cluster = register(&mut clusters, conn, uid, view, baseline);
            match &cluster.round {
                Some((n, round)) if *n == period => round.clone(),
                _ => {
                    let round = start(pool.clone(), conn.clone(), cluster.apps.clone());
                    cluster.round = Some((period, round.clone()));
                    round
                }
            }
        };
        let results = round.await;
        let taken = results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
        match taken {
            Some((v, b, result)) if v == *view && b.as_ref() == baseline => Some(result),
            _ => None,
        }
    }

    /// Notes what the app `uid` was last checked as, and the baseline it came out with, for
    /// the next round: a check made alone counts too, so the round does not lag behind it.
    pub fn checked(&self, conn: &KafkaConnection, uid: &str, view: &AppView, baseline: &Baseline) {
        register(&mut self.lock(), conn, uid, view, Some(baseline));
    }

    /// Drops every app whose uid `keep` refuses, and every cluster left without apps.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut clusters = self.lock();
        for cluster in clusters.values_mut() {
            cluster.apps.retain(|uid, _| keep(uid));
        }
        clusters.retain(|_, c| !c.apps.is_empty());
    }

    /// Apps known per cluster, for tests and the benchmark.
    pub fn apps(&self) -> usize {
        self.lock().values().map(|c| c.apps.len()).sum()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<KafkaConnection, Cluster>> {
        self.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Puts the app `uid` on `conn`'s cluster as `view` with `baseline`; an app whose spec moved
/// it to another cluster leaves the one it was on.
fn register<'a>(
    clusters: &'a mut HashMap<KafkaConnection, Cluster>,
    conn: &KafkaConnection,
    uid: &str,
    view: &AppView,
    baseline: Option<&Baseline>,
) -> &'a mut Cluster {
    for (c, cluster) in clusters.iter_mut() {
        if c != conn {
            cluster.apps.remove(uid);
        }
    }
    clusters.retain(|c, cluster| c == conn || !cluster.apps.is_empty());
    let cluster = clusters.entry(conn.clone()).or_default();
    cluster
        .apps
        .insert(uid.to_string(), (view.clone(), baseline.cloned()));
    cluster
}

/// Starts the round of `apps` on `conn`'s cluster. It runs on its own task, so a reconcile
/// that started it and is then dropped (the controller shutting down) leaves it to the
/// others; a round whose task died gives no results, and every app is checked alone.
fn start(
    pool: Arc<ClientPool>,
    conn: KafkaConnection,
    apps: HashMap<String, (AppView, Option<Baseline>)>,
) -> Round {
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let list: Vec<(String, (AppView, Option<Baseline>))> = apps.into_iter().collect();
        let refs: Vec<(&AppView, Option<&Baseline>)> =
            list.iter().map(|(_, (v, b))| (v, b.as_ref())).collect();
        let results = check_cluster(&pool, &conn, &refs).await;
        debug!(
            apps = list.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "Kafka refresh round done"
        );
        let results: HashMap<String, Entry> = list
            .into_iter()
            .zip(results)
            .map(|((uid, (v, b)), r)| (uid, (v, b, r)))
            .collect();
        Arc::new(Mutex::new(results))
    });
    async move { task.await.unwrap_or_default() }
        .boxed()
        .shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_begin_together_and_the_wait_reaches_the_next_one() {
        let c = Cycles::new(Duration::from_secs(5));
        let t = c.epoch + Duration::from_millis(12_300);
        assert_eq!(c.began(t), c.epoch + Duration::from_secs(10));
        assert_eq!(c.until_next(t), Duration::from_millis(2_700));
        let almost = c.epoch + Duration::from_millis(14_990);
        assert_eq!(c.until_next(almost), MIN_WAIT, "never a spin");
        assert_eq!(c.began(c.epoch), c.epoch);
    }

    #[test]
    fn apps_of_deleted_streamapps_and_empty_clusters_go() {
        let c = Cycles::new(Duration::from_secs(5));
        let conn = KafkaConnection::plaintext("k:9092");
        let view = AppView {
            application_id: "a".into(),
            input_topics: vec![],
            pods: vec![],
            acceptable_recovery_lag: 1,
            streams_protocol: false,
        };
        c.lock().entry(conn.clone()).or_default().apps.extend([
            ("u1".to_string(), (view.clone(), None)),
            ("u2".to_string(), (view.clone(), None)),
        ]);
        c.checked(&conn, "u1", &view, &Baseline::default());
        assert!(c.lock()[&conn].apps["u1"].1.is_some());
        // u2's spec moved it to another cluster.
        let other = KafkaConnection::plaintext("other:9092");
        c.checked(&other, "u2", &view, &Baseline::default());
        assert_eq!(c.lock()[&conn].apps.len(), 1);
        c.checked(&other, "u1", &view, &Baseline::default());
        assert!(!c.lock().contains_key(&conn), "a cluster without apps goes");
        assert_eq!(c.apps(), 2);
        c.retain(|uid| uid == "u2");
        assert_eq!(c.apps(), 1);
        c.retain(|_| false);
        assert!(c.lock().is_empty());
    }
}
