//! One check of an app's Kafka side: read the brokers, then compute the status.
//!
//! Reads only: the operator never joins the app's group, never commits, never alters a topic.
//! Requests per check: one Metadata; then concurrently one DescribeConfigs (all changelogs),
//! ListGroups per broker + one DescribeGroups, one OffsetFetch (all source partitions, after a
//! FindCoordinator the first time), and one ListOffsets per partition leader (all source and
//! changelog partitions). An app on the streams protocol gets one StreamsGroupDescribe (through
//! the wire connection to its coordinator) instead of the DescribeGroups.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, instrument};

use super::client::{ClientPool, ClusterClients};
use super::connection::KafkaConnection;
use super::error::KafkaError;
use super::progress::SourceOffsets;
use super::report::{AppView, Baseline, Observation, build_status};
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

/// Reads the app's topics, group, committed and end offsets, and computes its status.
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
    let started = Instant::now();
    let clients = pool.cluster(conn)?;
    let mut obs = observe(&clients, app).await?;
    let baseline = Baseline::next(previous, &obs);
    obs.baseline = Some(baseline.clone());
    let status = build_status(app, &obs, now_rfc3339());
    debug!(
        took_ms = started.elapsed().as_millis() as u64,
        processing_lag = ?status.processing_lag_total,
        problems = status.problems.len(),
        "Kafka check done"
    );
    Ok(Checked {
        status,
        baseline,
        sources: obs.source_offsets(app),
    })
}

/// Reads everything a status needs, in as few requests as the client library allows.
pub(crate) async fn observe(
    clients: &Arc<ClusterClients>,
    app: &AppView,
) -> Result<Observation, KafkaError> {
    let app_id = app.application_id.clone();
    let (topics, other_apps) = tokio::join!(
        blocking(clients, "metadata", |c| c.topics()),
        blocking(clients, "list groups", move |c| c.extending_groups(&app_id)),
    );
    let mut obs = Observation {
        topics: topics?,
        other_apps: other_apps?,
        ..Default::default()
    };
    let changelogs: Vec<String> = obs
        .internal_topics(app)
        .changelogs
        .into_iter()
        .map(|c| c.name)
        .collect();
    let sources = obs.source_partitions(app);
    let mut offsets_of = sources.clone();
    offsets_of.extend(obs.changelog_partitions(app));
    let group_id = app.application_id.clone();

    let streams = app.streams_protocol;
    let describe = async {
        if streams {
            Ok((None, clients.streams_group(&group_id).await?))
        } else {
            let group = blocking(clients, "describe group", move |c| {
                c.describe_group(&group_id)
            });
            Ok((group.await?, None))
        }
    };
    let (policies, groups, end) = tokio::join!(
        clients.cleanup_policies(&changelogs),
        describe,
        blocking(clients, "list offsets", move |c| c.end_offsets(&offsets_of)),
    );
    let (end, gone) = end?;
    (obs.group, obs.streams_group) = groups?;
    obs.cleanup_policies = policies?;
    obs.end = end;
    obs.gone = gone;
    // A changelog DescribeConfigs no longer knows was deleted meanwhile.
    obs.gone.extend(
        changelogs
            .iter()
            .filter(|c| !obs.cleanup_policies.contains_key(*c))
            .cloned(),
    );
    // No group: nothing was ever committed (an Empty group with offsets is still listed).
    if obs.group.is_some() || obs.streams_group.is_some() {
        let group_id = app.application_id.clone();
        obs.committed = blocking(clients, "fetch committed offsets", move |c| {
            c.committed(&group_id, &sources)
        })
        .await?;
    }
    Ok(obs)
}

/// Runs a blocking librdkafka call on the blocking pool. librdkafka enforces the per-call
/// timeout itself; the outer limit only guards against a call that never returns.
fn blocking<T, F>(
    clients: &Arc<ClusterClients>,
    operation: &'static str,
    f: F,
) -> impl Future<Output = Result<T, KafkaError>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce(&ClusterClients) -> Result<T, KafkaError> + Send + 'static,
{
    let c = clients.clone();
    let bootstrap = clients.bootstrap().to_string();
    let timeout = clients.timeout();
    async move {
        let limit = timeout * 2 + std::time::Duration::from_secs(1);
        match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || f(&c))).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(KafkaError::Request {
                bootstrap,
                operation,
                detail: format!("worker failed: {join}"),
            }),
            Err(_) => Err(KafkaError::Timeout {
                bootstrap,
                operation,
                timeout: limit,
            }),
        }
    }
}

/// Now, RFC 3339.
fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}
