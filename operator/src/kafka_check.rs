//! The reconciler's Kafka step: when to ask the brokers, with which credentials, and what the
//! answer means for a StreamApp's conditions. The Kubernetes side never waits on it longer
//! than one bounded check, and a failed check keeps the last known figures.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use tracing::debug;

use crate::context::Context;
use crate::crd::{StreamApp, condition};
use crate::kafka::{
    AppView, KafkaConnection, KafkaStatus, ProblemReason, inspect_with, status::KafkaProblem,
};
use crate::status::{Problem, Verdict};

/// What the last Kafka check of an app found.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOutcome {
    /// The figures, from the latest successful check (possibly older than a failed one).
    pub status: Option<KafkaStatus>,
    /// Why the latest check failed: (reason, message); `None` when it succeeded.
    pub failure: Option<(String, String)>,
}

/// Runs a check when one is due (first sight, spec change, or the refresh period passed),
/// otherwise returns the cached outcome. `None` when Kafka checks are disabled.
pub async fn check(ctx: &Context, app: &StreamApp, pods: Vec<String>) -> Option<KafkaOutcome> {
    let refresh = ctx.kafka_refresh?;
    let key = format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any());
    // A new spec or a different set of pods changes what the check looks for: check now.
    let generation = app.metadata.generation.unwrap_or(0);
    let seen = (generation, pods.clone());
    if let Some((at, seen_before, outcome)) = ctx.kafka_cache(&key)
        && at.elapsed() < refresh
        && seen_before == seen
    {
        return Some(outcome);
    }
    let started = Instant::now();
    let last = app
        .status
        .as_ref()
        .and_then(|s| s.kafka.clone())
        .or_else(|| ctx.kafka_cache(&key).and_then(|(_, _, o)| o.status));
    let result = match connection(ctx, app).await {
        Ok(conn) => {
            let view = AppView::new(app, pods);
            let previous = ctx.kafka_baseline(&key);
            match inspect_with(&ctx.kafka, &conn, &view, previous.as_ref()).await {
                Ok((status, baseline)) => {
                    ctx.set_kafka_baseline(key.clone(), baseline);
                    Ok(status)
                }
                Err(e) => Err((e.reason().to_string(), e.to_string())),
            }
        }
        Err(failure) => Err(failure),
    };
    ctx.metrics.kafka_checked(started.elapsed());
    let outcome = match result {
        Ok(status) => KafkaOutcome {
            status: Some(status),
            failure: None,
        },
        Err(failure) => {
            debug!(reason = %failure.0, "Kafka check failed");
            KafkaOutcome {
                status: last,
                failure: Some(failure),
            }
        }
    };
    ctx.set_kafka_cache(key, seen, outcome.clone());
    Some(outcome)
}

/// The connection settings of `app`, with credentials read from its Secrets.
async fn connection(ctx: &Context, app: &StreamApp) -> Result<KafkaConnection, (String, String)> {
    let kafka = &app.spec.kafka;
    let mut conn = KafkaConnection::plaintext(kafka.bootstrap_servers.clone());
    let ns = app.namespace().unwrap_or_default();
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &ns);
    if let Some(tls) = &kafka.tls {
        conn.security_protocol = Some(
            if kafka.sasl.is_some() {
                "SASL_SSL"
            } else {
                "SSL"
            }
            .into(),
        );
        if let Some(ca) = &tls.ca_cert {
            conn.ca_pem = Some(read(&secrets, &ca.name, &ca.key).await?);
        }
        if let Some(s) = &tls.client_cert_secret {
            conn.client_cert_pem = Some(read(&secrets, s, "tls.crt").await?);
            conn.client_key_pem = Some(read(&secrets, s, "tls.key").await?);
        }
    }
    if let Some(sasl) = &kafka.sasl {
        conn.sasl_mechanism = Some(
            serde_json::to_value(sasl.mechanism)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
        conn.sasl_username = Some(read(&secrets, &sasl.secret_name, &sasl.username_key).await?);
        conn.sasl_password = Some(read(&secrets, &sasl.secret_name, &sasl.password_key).await?);
    }
    Ok(conn)
}

/// One key of a Secret, as text. The value never leaves this function but into the client.
async fn read(secrets: &Api<Secret>, name: &str, key: &str) -> Result<String, (String, String)> {
    let ns = secrets.namespace().unwrap_or_default().to_string();
    let secret = secrets.get(name).await.map_err(|e| {
        let reason = match &e {
            kube::Error::Api(s) if s.code == 403 => "CredentialsForbidden",
            _ => "CredentialsUnavailable",
        };
        (
            reason.to_string(),
            format!(
                "reading Secret {ns}/{name} for the Kafka check: {e} (the operator needs `get secrets` in this namespace for TLS/SASL apps)"
            ),
        )
    })?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| {
            (
                "CredentialsUnavailable".to_string(),
                format!("Secret {ns}/{name} has no key {key:?}"),
            )
        })
}

/// Findings that make the app Degraded: state that would be lost, inputs that do not exist.
pub fn problems(outcome: &KafkaOutcome) -> Vec<Problem> {
    let Some(status) = &outcome.status else {
        return Vec::new();
    };
    status
        .problems
        .iter()
        .filter_map(|p| {
            let reason = match p.reason {
                ProblemReason::ChangelogNotCompacted => "ChangelogNotCompacted",
                ProblemReason::ChangelogPartitionMismatch => "ChangelogPartitionMismatch",
                ProblemReason::NoChangelogTopics => "NoChangelogTopics",
                ProblemReason::InputTopicMissing => "InputTopicMissing",
                _ => return None,
            };
            Some(Problem {
                reason,
                message: p.message.clone(),
            })
        })
        .collect()
}

fn changelog_problem(p: &&KafkaProblem) -> bool {
    matches!(
        p.reason,
        ProblemReason::ChangelogNotCompacted
            | ProblemReason::ChangelogPartitionMismatch
            | ProblemReason::NoChangelogTopics
    )
}

/// KafkaReachable, ChangelogsHealthy and Restoring.
pub fn verdicts(outcome: &KafkaOutcome) -> Vec<Verdict> {
    let mut out = Vec::with_capacity(3);
    out.push(match &outcome.failure {
        Some((reason, message)) => {
            Verdict::new(condition::KAFKA_REACHABLE, false, reason, message.clone())
        }
        None => Verdict::new(
            condition::KAFKA_REACHABLE,
            true,
            "Connected",
            "the brokers answered the last check",
        ),
    });
    let status = outcome.status.as_ref();
    let changelog: Vec<&KafkaProblem> = status
        .iter()
        .flat_map(|s| s.problems.iter())
        .filter(changelog_problem)
        .collect();
    out.push(match (status, changelog.first()) {
        (None, _) => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            false,
            "Unknown",
            "the changelog topics have not been checked yet",
        ),
        (Some(_), Some(first)) => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            false,
            &format!("{:?}", first.reason),
            changelog
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (Some(s), None) if s.changelog_topics.is_empty() => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            true,
            "NoChangelogsYet",
            "no changelog topic exists yet: Kafka Streams creates them when the app first runs",
        ),
        (Some(s), None) => Verdict::new(
            condition::CHANGELOGS_HEALTHY,
            true,
            "Healthy",
            format!(
                "{} changelog topic(s), all compacted",
                s.changelog_topics.len()
            ),
        ),
    });
    let behind: Vec<String> = status
        .iter()
        .flat_map(|s| s.pods.iter())
        .filter(|p| p.caught_up == Some(false))
        .map(|p| match p.restore_lag {
            Some(lag) => format!("{} ({lag} records behind)", p.pod),
            None => p.pod.clone(),
        })
        .collect();
    let probing = status.is_some_and(|s| s.probing_rebalance_pending);
    out.push(if !behind.is_empty() {
        Verdict::new(
            condition::RESTORING,
            true,
            "RestoringState",
            format!(
                "restoring beyond acceptable.recovery.lag: {}",
                behind.join(", ")
            ),
        )
    } else if probing {
        Verdict::new(
            condition::RESTORING,
            true,
            "WarmupPending",
            "a probing rebalance is scheduled: warm-up replicas are still catching up",
        )
    } else {
        Verdict::new(
            condition::RESTORING,
            false,
            "CaughtUp",
            "no instance is restoring state",
        )
    });
    out
}

/// How long a failed check's figures stay in the status before they are called stale is up
/// to the reader: `lastChecked` says when they were taken.
pub const STATUS_HEARTBEAT: Duration = Duration::from_secs(300);
