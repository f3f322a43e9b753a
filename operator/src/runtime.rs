//! The operator process: admin endpoint, readiness, leader election, controllers, and a
//! bounded graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::{self, Readiness};
use crate::cli::RunArgs;
use crate::controller;
use crate::crd::StreamAppSummary;
use crate::metrics::{AppGauges, Metrics};
use crate::reconcile::context::Context;
use crate::reconcile::kafka::KafkaSettings;

/// Why the operator could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// No Kubernetes client could be built (no kubeconfig, no in-cluster config).
    #[error("connecting to Kubernetes: {0}")]
    Client(#[from] kube::Error),
    /// The admin address could not be bound.
    #[error("binding the admin endpoint {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election needs a namespace for its Lease.
    #[error("leader election needs --lease-namespace or POD_NAMESPACE")]
    NoLeaseNamespace,
    /// The Lease could not be created or read.
    #[error("leader election Lease {name}: {source}")]
    Lease {
        /// Namespace/name of the Lease.
        name: String,
        /// The lease manager's error.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
}

/// Runs the operator until SIGTERM or SIGINT (a second signal exits at once).
pub async fn run(args: RunArgs) -> Result<(), RuntimeError> {
    let client = Client::try_default().await?;
    let instance = args.instance.clone().unwrap_or_else(default_identity);
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let readiness = Arc::new(Readiness::default());
    let (stop_tx, stop) = watch::channel(false);

    let listener = admin::bind(args.admin_addr)
        .await
        .map_err(|source| RuntimeError::Bind {
            addr: args.admin_addr,
            source,
        })?;
    let stores = app_caches(&client, &args.namespaces, readiness.clone());
    registry.register_collector(Box::new(AppGauges(stores)));
    let admin_stop = stopped(stop.clone());
    let admin = tokio::spawn(admin::serve(
        listener,
        Arc::new(registry),
        readiness,
        admin_stop,
    ));
    tokio::spawn(signals(stop_tx));

    let kafka = KafkaSettings {
        refresh: (args.kafka_refresh_seconds > 0)
            .then(|| Duration::from_secs(args.kafka_refresh_seconds)),
        member_grace: Duration::from_secs(args.member_grace_seconds),
        stall: Duration::from_secs(args.stall_seconds),
    };
    let mut context =
        Context::with_settings(client.clone(), Some(instance.clone()), metrics, kafka);
    context.reset_halt = args.reset_halt_after;
    let ctx = Arc::new(context);
    let grace = Duration::from_secs(args.shutdown_timeout);
    if args.leader_election {
        let ns = args
            .lease_namespace
            .clone()
            .or(args.pod_namespace.clone())
            .ok_or(RuntimeError::NoLeaseNamespace)?;
        lead_then_run(ctx, &args, &ns, instance, stop, grace).await?;
    } else {
        run_bounded(ctx, &args, stop, grace).await;
    }
    let _ = admin.await;
    info!("operator stopped");
    Ok(())
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "kstreams-operator".into());
    format!("{host}-{}", std::process::id())
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// First SIGTERM/SIGINT: graceful stop. Second: exit now.
async fn signals(stop: watch::Sender<bool>) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        warn!("cannot listen for SIGTERM");
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        if n > 0 {
            warn!("second signal: exiting at once");
            std::process::exit(130);
        }
        info!("signal received: finishing in-flight reconciles");
        let _ = stop.send(true);
    }
}

/// Watch caches of StreamApps, kept by every replica (leader or not): readiness means they
/// synced, and the apps-by-condition metric reads them.
fn app_caches(
    client: &Client,
    namespaces: &[String],
    readiness: Arc<Readiness>,
) -> Vec<reflector::Store<StreamAppSummary>> {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let stores: Vec<_> = scopes
        .into_iter()
        .map(|ns| {
            let (reader, writer) = reflector::store();
            let api = controller::api::<StreamAppSummary>(client, ns);
            let events = watcher(api, watcher::Config::default()).modify(StreamAppSummary::trim);
            let stream = reflector(writer, events)
                .default_backoff()
                .touched_objects()
                .for_each(|_| async {});
            tokio::spawn(stream);
            reader
        })
        .collect();
    let waiting = stores.clone();
    tokio::spawn(async move {
        for store in &waiting {
            if store.wait_until_ready().await.is_err() {
                return;
            }
        }
        info!("watch caches synced: ready");
        readiness.set_ready();
    });
    stores
}

/// Runs the controllers; after a stop signal they get `grace` to finish in-flight work.
async fn run_bounded(
    ctx: Arc<Context>,
    args: &RunArgs,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let controllers = controller::run(ctx, &args.namespaces, args.concurrency, stop.clone());
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => return,
        _ = stopped(stop) => {},
    }
    if tokio::time::timeout(grace, controllers).await.is_err() {
        warn!(
            ?grace,
            "in-flight reconciles did not finish in time; stopping anyway"
        );
    }
}

/// Waits for the Lease, runs the controllers while it is held, stops writing the moment it is
/// lost, and releases it on shutdown so a standby takes over without waiting for expiry.
async fn lead_then_run(
    ctx: Arc<Context>,
    args: &RunArgs,
    namespace: &str,
    identity: String,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), RuntimeError> {
    let lease = format!("{namespace}/{}", args.lease_name);
    let manager = LeaseManagerBuilder::new(ctx.client.clone(), &args.lease_name)
        .with_namespace(namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration)
        .with_grace(args.lease_duration.div_ceil(3).max(1))
        .with_field_manager(crate::resources::FIELD_MANAGER)
        .build()
        .await
        .map_err(|source| RuntimeError::Lease {
            name: lease.clone(),
            source,
        })?;
    let (mut leader, lease_task) = manager.watch().await;
    info!(%lease, %identity, "waiting for leadership");
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            changed = leader.wait_for(|l| *l) => if changed.is_err() { break },
        }
        info!(%lease, "became leader: reconciling");
        // Another process may have led meanwhile: what it saw is in the cluster, not here.
        ctx.kafka.took_lead();
        // The controllers stop on shutdown (gracefully) or on lost leadership (at once).
        let (lead_stop_tx, lead_stop) = watch::channel(false);
        let controllers =
            controller::run(ctx.clone(), &args.namespaces, args.concurrency, lead_stop);
        tokio::pin!(controllers);
        tokio::select! {
            _ = &mut controllers => {},
            lost = leader.wait_for(|l| !*l) => {
                let _ = lost;
                warn!(%lease, "lost leadership: stopped writing");
                continue;
            }
            _ = stop.wait_for(|s| *s) => {
                let _ = lead_stop_tx.send(true);
                if tokio::time::timeout(grace, &mut controllers).await.is_err() {
                    warn!(?grace, "in-flight reconciles did not finish in time; stopping anyway");
                }
                break;
            }
        }
    }
    // Dropping the receiver makes the lease task release the Lease.
    drop(leader);
    match lease_task.await {
        Ok(Ok(_)) => info!(%lease, "released leadership"),
        Ok(Err(e)) => warn!(%lease, error = %e, "releasing the Lease failed; it expires by itself"),
        Err(e) => warn!(%lease, error = %e, "lease task failed"),
    }
    Ok(())
}
