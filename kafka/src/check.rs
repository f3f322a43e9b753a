//! Checks of apps' Kafka side: read the brokers once for all the apps of a cluster, then
//! compute each app's status from its own slice of what was read.
//!
//! Reads only: the operator never joins an app's group, never commits, never alters a topic.
//! Requests per check of any number of apps of one cluster, all through the cluster's shared
//! wire connections (one per broker): one Metadata (every topic); one ListGroups per broker
//! (every group: which groups exist, which other apps extend an app's id, and each group's
//! coordinator, the broker that lists it); then at once one DescribeConfigs (every
//! changelog's `cleanup.policy`), one DescribeGroups per coordinator (every classic group),
//! one StreamsGroupDescribe per coordinator (every streams group) and one ListOffsets per
//! partition leader (every source and changelog partition); then one OffsetFetch per
//! coordinator (every existing group's source partitions). A group whose coordinator moved
//! in between costs one FindCoordinator for all such groups and one more request each.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::{debug, instrument};

use super::client::{ClientPool, ClusterClients, PerGroup};
use super::connection::KafkaConnection;
use super::error::KafkaError;
use super::progress::SourceOffsets;
use super::report::{AppView, Baseline, Observation, build_status};
use super::slices::{
    Needs, Reads, committed_wanted, extending_groups, own_topics, take_committed, take_reads,
};
use super::status::KafkaStatus;

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The status.
    pub status: KafkaStatus,
    /// The baseline to pass to the next check.
    pub baseline: Baseline,
    /// The source partitions' committed and end offsets, for following progress across
    /// checks ([`CommitProgress`](crate::CommitProgress)).
    pub sources: SourceOffsets,
}

/// Reads the app's topics, group, committed and end offsets, and computes its status: a
/// [`check_cluster`] of this app alone.
/// Restore lag is measured against the baseline of the group's current members: pass the one
/// the previous check returned (`None` at first) and keep the one returned.
/// A missing group is `status.group = None`; a topic deleted mid-check is a status problem.
#[instrument(skip_all, fields(app = %app.application_id, bootstrap = %conn.bootstrap_servers))]
pub async fn check(
    pool: &ClientPool,
    conn: &KafkaConnection,
    app: &AppView,
    previous: Option<&Baseline>,
) -> Result<Checked, KafkaError> {
    check_cluster(pool, conn, &[(app, previous)])
        .await
        .pop()
        .unwrap_or_else(|| {
            Err(KafkaError::Request {
                bootstrap: conn.bootstrap_servers.clone(),
                operation: "check",
                detail: "the check returned no result".into(),
            })
        })
}

/// Checks every app of `apps`, all on `conn`'s cluster, with one round of requests whose
/// number does not grow with the number of apps (see the module docs); each app's result
/// is what [`check`] of that app alone returns, in the order of `apps`, each with the
/// previous baseline it came with. An error the brokers gave for one app's group or topics
/// fails that app alone; a request that failed (a broker unreachable, timing out, refusing
/// the request) fails every app, with the same error.
#[instrument(skip_all, fields(apps = apps.len(), bootstrap = %conn.bootstrap_servers))]
pub async fn check_cluster(
    pool: &ClientPool,
    conn: &KafkaConnection,
    apps: &[(&AppView, Option<&Baseline>)],
) -> Vec<Result<Checked, KafkaError>> {
    let started = Instant::now();
    let observed = match pool.cluster(conn) {
        Ok(clients) => observe(&clients, apps).await,
        Err(e) => Err(e),
    };
    let observed = match observed {
        Ok(o) => o,
        Err(e) => return vec![Err(e); apps.len()],
    };
    let now = now_rfc3339();
    let out: Vec<Result<Checked, KafkaError>> = apps
        .iter()
        .zip(observed)
        .map(|((app, previous), obs)| Ok(finish(app, *previous, obs?, now.clone())))
        .collect();
    debug!(
        took_ms = started.elapsed().as_millis() as u64,
        failed = out.iter().filter(|r| r.is_err()).count(),
        "Kafka check done"
    );
    out
}

/// The app's check from its observation.
fn finish(
    app: &AppView,
    previous: Option<&Baseline>,
    mut obs: Observation,
    now: String,
) -> Checked {
    let baseline = Baseline::next(previous, &obs);
    obs.baseline = Some(baseline.clone());
    let status = build_status(app, &obs, now);
    Checked {
        sources: obs.source_offsets(app),
        status,
        baseline,
    }
}

/// Reads everything the statuses of `apps` need, each request once for all of them; the
/// outer error is a request's, the inner ones each app's own.
async fn observe(
    clients: &ClusterClients,
    apps: &[(&AppView, Option<&Baseline>)],
) -> Result<Vec<Result<Observation, KafkaError>>, KafkaError> {
    let meta = clients.metadata().await?;
    let listed = clients.list_groups(&meta.nodes).await?;
    let mut observed: Vec<Observation> = apps
        .iter()
        .map(|(app, _)| Observation {
            topics: own_topics(app, &meta.topics),
            other_apps: extending_groups(&app.application_id, &listed),
            ..Default::default()
        })
        .collect();
    let needs: Vec<Needs> = apps
        .iter()
        .zip(&observed)
        .map(|((app, _), obs)| Needs::of(app, obs))
        .collect();

    let changelogs = needs
        .iter()
        .flat_map(|n| n.changelogs.iter().cloned())
        .collect();
    let partitions = needs
        .iter()
        .flat_map(|n| n.offsets_of.iter().cloned())
        .collect();
    // Only listed groups exist; each is asked of the broker that listed it.
    let (mut classic, mut streams) = (BTreeMap::new(), BTreeMap::new());
    for (app, _) in apps {
        if let Some(coordinator) = listed.get(&app.application_id) {
            let to = if app.streams_protocol {
                &mut streams
            } else {
                &mut classic
            };
            to.insert(app.application_id.clone(), coordinator.clone());
        }
    }
    let (policies, groups, streams_groups, end) = tokio::join!(
        clients.cleanup_policies(&changelogs),
        clients.describe_groups(classic),
        clients.describe_streams_groups(streams),
        clients.end_offsets(&partitions, &meta),
    );
    let reads = Reads {
        end: end?,
        groups: groups?,
        streams_groups: streams_groups?,
        policies: policies?,
    };
    let mut results: Vec<Result<(), KafkaError>> = apps
        .iter()
        .zip(&needs)
        .zip(&mut observed)
        .map(|(((app, _), needs), obs)| take_reads(app, needs, &reads, &meta.topics, obs))
        .collect();

    let wanted = committed_wanted(
        apps.iter()
            .zip(&needs)
            .zip(&observed)
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|((((app, _), needs), obs), _)| (*app, needs, obs)),
    );
    let committed: PerGroup<_> = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        let groups = wanted
            .into_iter()
            .filter_map(|(group, partitions)| {
                let coordinator = listed.get(&group)?.clone();
                Some((group, (coordinator, partitions.into_iter().collect())))
            })
            .collect();
        clients.committed_offsets(groups, &meta).await?
    };
    for ((((app, _), needs), obs), result) in
        apps.iter().zip(&needs).zip(&mut observed).zip(&mut results)
    {
        if result.is_ok() {
            *result = take_committed(app, needs, &committed, obs);
        }
    }
    Ok(observed
        .into_iter()
        .zip(results)
        .map(|(obs, r)| r.map(|()| obs))
        .collect())
}

/// Now, RFC 3339.
fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}
