//! The controller: watches StreamApps and their children and runs reconciles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::DeserializeGuard;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::crd::StreamApp;
use crate::error::Error;
use crate::reconcile::context::Context;
use crate::reconcile::reconcile;
use crate::resources::{FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY_LABEL};

/// Runs one controller per watched namespace (or one for all namespaces when `namespaces`
/// is empty) until `shutdown` turns true; in-flight reconciles then finish.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: &[String],
    concurrency: u16,
    shutdown: watch::Receiver<bool>,
) {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let controllers = scopes
        .into_iter()
        .map(|ns| controller(ctx.clone(), ns, concurrency, shutdown.clone()));
    futures::future::join_all(controllers).await;
    info!("controllers stopped");
}

/// An API for `K` in `namespace`, or across all namespaces.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    match namespace {
        None => Api::all(client.clone()),
        Some(ns) => Api::namespaced(client.clone(), ns),
    }
}

async fn controller(
    ctx: Arc<Context>,
    ns: Option<&str>,
    concurrency: u16,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}"));
    info!(namespace = ns.unwrap_or("<all>"), "starting controller");
    let (apps, app_cache) = reflector::store();
    let app_events = watcher(
        api::<DeserializeGuard<StreamApp>>(&client, ns),
        watcher::Config::default().any_semantic(),
    )
    .modify(trim)
    .reflect(app_cache)
    .applied_objects();
    let controller = Controller::for_stream(app_events, apps);
    let scope = Arc::new(Scope {
        apps: controller.store(),
        ctx,
    });
    let forget = forget_deleted(scope.clone(), ns.map(str::to_string), shutdown.clone());
    let run = controller
        .owns(api::<StatefulSet>(&client, ns), managed.clone())
        // Watched rather than owned: the reconcile skips applying a ConfigMap or Service the
        // watch shows unchanged since the last apply (`reconcile::applied`).
        .watches_stream(children::<ConfigMap>(&client, ns, &managed), {
            let applied = scope.ctx.applied.clone();
            move |cm: PartialObjectMeta<ConfigMap>| {
                applied.saw("ConfigMap", &cm.metadata);
                owner(&cm)
            }
        })
        .watches_stream(children::<Service>(&client, ns, &managed), {
            let applied = scope.ctx.applied.clone();
            move |svc: PartialObjectMeta<Service>| {
                applied.saw("Service", &svc.metadata);
                owner(&svc)
            }
        })
        .owns(api::<PodDisruptionBudget>(&client, ns), managed.clone())
        // Pod conditions (unschedulable, ready) change without touching the StatefulSet spec.
        .watches_stream(
            children::<Pod>(&client, ns, &managed),
            |pod: PartialObjectMeta<Pod>| {
                let app = pod.labels().get(INSTANCE_LABEL)?.clone();
                Some(ObjectRef::new(&app).within(&pod.namespace()?))
            },
        )
        .trigger_backoff(TriggerBackoff::default())
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(concurrency)
                .debounce(DEBOUNCE),
        )
        .graceful_shutdown_on(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .run(reconcile_guarded, error_policy, scope)
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!(error = %e, "reconcile did not complete");
            }
        });
    futures::future::join(run, forget).await;
}

/// The metadata of the operator's children of kind `K`: the triggers read no more, and a
/// metadata watch still sees every change (a pod's status moves its resourceVersion), while
/// decoding a fraction of a full pod or StatefulSet for each event and each listed object.
fn children<K>(
    client: &Client,
    ns: Option<&str>,
    managed: &watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(api::<PartialObjectMeta<K>>(client, ns), managed.clone()).touched_objects()
}

/// Drops an app's managed fields before it is cached: no reconcile reads them, and as JSON
/// trees (each field a map entry) they are the larger part of a cached app's memory.
fn trim<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// How long the triggers of one app are gathered before it is reconciled: creating an app
/// makes its four children, its pod and their status changes arrive within moments, and one
/// reconcile serves them all.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The wait after a watch error, before any watch is polled again. kube-runtime backs off
/// the controller's watches together, with one timer over their merged stream, and its
/// default grows to 30 s (plus jitter) and resets only on an event: after a kube-apiserver
/// restart each of the six watches fails once with 410 Gone before it lists again, and those
/// failures queued up behind each other (`make soak`: a spec change made after the restart
/// was seen 282 s later). Capped at 4 s, the six take seconds; an unreachable apiserver is
/// still tried no more than once per watch every 4 s.
#[derive(Debug, Clone, Copy)]
struct TriggerBackoff {
    next: Duration,
}

impl TriggerBackoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(4);
}

impl Default for TriggerBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for TriggerBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(Self::MAX);
        Some(now)
    }
}

impl Backoff for TriggerBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// How often the Kafka step's state is swept for apps that were deleted.
const FORGET_DELETED: Duration = Duration::from_secs(10);

/// Drops the Kafka step's state of apps gone from the controller's cache, until shutdown.
/// The cache is complete once it synced; before that an empty cache proves nothing.
async fn forget_deleted(
    scope: Arc<Scope>,
    ns: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let sweeping = async {
        if scope.apps.wait_until_ready().await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(FORGET_DELETED);
        loop {
            tick.tick().await;
            let live = scope
                .apps
                .state()
                .iter()
                .filter_map(|app| app.uid())
                .collect();
            scope.ctx.kafka.forget_deleted(ns.as_deref(), &live);
            scope.ctx.applied.forget_deleted(ns.as_deref(), &live);
        }
    };
    tokio::select! {
        _ = sweeping => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// The StreamApp controlling `child`, from its owner reference.
fn owner<K: Resource>(child: &K) -> Option<ObjectRef<DeserializeGuard<StreamApp>>> {
    let ns = child.meta().namespace.as_deref()?;
    child
        .owner_references()
        .iter()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == StreamApp::kind(&())
                && o.api_version == StreamApp::api_version(&())
        })
        .map(|o| ObjectRef::new(&o.name).within(ns))
}

fn key(obj: &DeserializeGuard<StreamApp>) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What one controller's reconciles share: the operator's context and the controller's own
/// cache of StreamApps.
struct Scope {
    ctx: Arc<Context>,
    apps: Store<DeserializeGuard<StreamApp>>,
}

/// How long a reconcile waits for the cache to show its own status write.
const READ_OWN_WRITE: Duration = Duration::from_secs(5);

/// A StreamApp that does not deserialize is reported and skipped; it never stops the watch.
async fn reconcile_guarded(
    obj: Arc<DeserializeGuard<StreamApp>>,
    scope: Arc<Scope>,
) -> Result<Action, Error> {
    let span = info_span!("reconcile", object = %key(&obj));
    let ctx = scope.ctx.clone();
    async move {
        match &obj.0 {
            Ok(app) => {
                let started = Instant::now();
                let result = reconcile(app, &ctx).await;
                ctx.metrics
                    .reconciled(started.elapsed(), result.as_ref().err().map(Error::category));
                let reconciled = result?;
                ctx.succeeded(&key(&obj));
                if let Some(written) = reconciled.status_written {
                    await_own_write(&scope.apps, &obj, &written).await;
                }
                Ok(reconciled.action)
            }
            Err(invalid) => {
                error!(error = %invalid.error, "StreamApp does not match the operator's schema; skipped");
                Ok(Action::await_change())
            }
        }
    }
    .instrument(span)
    .await
}

/// Holds the reconcile until the cache moves past the version it reconciled (to the write or
/// later), or the object is gone. The controller never reconciles one object twice at once,
/// so the next reconcile of this app starts from its own status: without this it could start
/// from the version before, take a condition for new, stamp a fresh `lastTransitionTime` and
/// write again. The store offers no per-object change signal, hence the short poll.
async fn await_own_write(
    apps: &Store<DeserializeGuard<StreamApp>>,
    obj: &DeserializeGuard<StreamApp>,
    written: &str,
) {
    let before = obj.resource_version();
    if before.as_deref() == Some(written) {
        return; // the write changed nothing
    }
    let at = ObjectRef::from_obj(obj);
    let moved = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if apps.get(&at).is_none_or(|o| o.resource_version() != before) {
                return;
            }
        }
    };
    if tokio::time::timeout(READ_OWN_WRITE, moved).await.is_err() {
        debug!(written, "the cache did not show the status write in time");
    }
}

fn error_policy(obj: Arc<DeserializeGuard<StreamApp>>, err: &Error, scope: Arc<Scope>) -> Action {
    let delay = scope.ctx.backoff(&key(&obj));
    warn!(object = %key(&obj), category = err.category(), error = %err, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;
    use kube::runtime::reflector::store::Writer;

    fn at(rv: &str) -> DeserializeGuard<StreamApp> {
        let mut a = app("
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092'}}
");
        a.metadata.resource_version = Some(rv.into());
        DeserializeGuard(Ok(a))
    }

    /// A cache holding the app at resourceVersion "1".
    fn cache() -> (
        Writer<DeserializeGuard<StreamApp>>,
        Store<DeserializeGuard<StreamApp>>,
    ) {
        let mut writer = Writer::default();
        writer.apply_watcher_event(&watcher::Event::Apply(at("1")));
        let store = writer.as_reader();
        (writer, store)
    }

    #[test]
    fn six_failed_watches_back_off_for_seconds_not_minutes() {
        let mut b = TriggerBackoff::default();
        let waits: Vec<Duration> = b.by_ref().take(6).collect();
        assert_eq!(
            waits.iter().sum::<Duration>(),
            Duration::from_millis(15_500)
        );
        assert_eq!(b.next(), Some(TriggerBackoff::MAX));
        b.reset();
        assert_eq!(b.next(), Some(TriggerBackoff::FIRST));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_the_cache_shows_the_write() {
        let (mut writer, store) = cache();
        let before = at("1");
        let started = tokio::time::Instant::now();
        let update = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            writer.apply_watcher_event(&watcher::Event::Apply(at("2")));
        });
        await_own_write(&store, &before, "2").await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < READ_OWN_WRITE,
            "{waited:?}"
        );
        update.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_bound_when_the_cache_lags() {
        let (_writer, store) = cache();
        let before = at("1");
        let started = tokio::time::Instant::now();
        await_own_write(&store, &before, "2").await;
        assert!(started.elapsed() >= READ_OWN_WRITE);
        // A write that changed nothing returns the version the cache already has.
        let started = tokio::time::Instant::now();
        await_own_write(&store, &before, "1").await;
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
