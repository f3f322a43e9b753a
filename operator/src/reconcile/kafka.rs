//! The Kafka step: when to check an app's Kafka side, with which credentials, and what the
//! last check found. The Kubernetes side never waits on it longer than one bounded check, and
//! a failed check keeps the last known figures.
//!
//! The state of each app (its last check and its restore-lag baseline) is kept under the
//! StreamApp's uid and dropped once the app is gone from the controller's cache, so a deleted
//! app does not stay in memory and an app re-created under the same name starts clean.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kstreams_kafka::lag::DEFAULT_ACCEPTABLE_RECOVERY_LAG;
use kstreams_kafka::{AppView, Baseline, ClientPool, KafkaConnection, KafkaError, KafkaStatus};
use kstreams_kafka::{PoolConfig, check};
use kube::{Api, Client, ResourceExt};
use thiserror::Error;
use tracing::debug;

use crate::crd::StreamApp;
use crate::metrics::Metrics;

/// How often a converged app's figures are written again although only `lastChecked` moved.
pub const STATUS_HEARTBEAT: Duration = Duration::from_secs(300);

/// Why a Kafka check failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckFailure {
    /// A Secret the connection needs could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The brokers failed the check.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl CheckFailure {
    /// The bounded reason of `KafkaReachable=False`.
    pub fn reason(&self) -> &'static str {
        match self {
            CheckFailure::Credentials(e) => e.reason(),
            CheckFailure::Kafka(e) => e.reason(),
        }
    }
}

/// Why the credentials of a TLS or SASL app could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    /// RBAC does not let the operator read the Secret.
    #[error(
        "reading Secret {namespace}/{name} for the Kafka check: {detail} (the operator needs `get secrets` in this namespace for TLS/SASL apps)"
    )]
    Forbidden {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// What the apiserver said.
        detail: String,
    },
    /// The Secret could not be read (missing, or the apiserver failed).
    #[error(
        "reading Secret {namespace}/{name} for the Kafka check: {detail} (the operator needs `get secrets` in this namespace for TLS/SASL apps)"
    )]
    Unreadable {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// What the apiserver said.
        detail: String,
    },
    /// The Secret lacks the key the spec names.
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    MissingKey {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The key the spec names.
        key: String,
    },
}

impl CredentialsError {
    /// The bounded reason of `KafkaReachable=False`.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialsError::Forbidden { .. } => "CredentialsForbidden",
            CredentialsError::Unreadable { .. } | CredentialsError::MissingKey { .. } => {
                "CredentialsUnavailable"
            }
        }
    }
}

/// What the last Kafka check of an app found.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOutcome {
    /// The figures, from the latest successful check (possibly older than a failed one).
    pub status: Option<KafkaStatus>,
    /// Why the latest check failed; `None` when it succeeded.
    pub failure: Option<CheckFailure>,
}

/// What a check was made for: a new spec or another set of pods needs a new check at once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedFor {
    generation: i64,
    pods: Vec<String>,
}

/// One app's Kafka state.
#[derive(Debug, Default)]
struct AppState {
    namespace: String,
    last: Option<(Instant, CheckedFor, KafkaOutcome)>,
    baseline: Option<Baseline>,
}

/// The Kafka step of every reconcile: shared clients and each app's state.
pub struct KafkaChecks {
    pool: ClientPool,
    refresh: Option<Duration>,
    apps: Mutex<HashMap<String, AppState>>,
}

impl KafkaChecks {
    /// Checks every app at most once per `refresh` (`None` disables the checks).
    pub fn new(refresh: Option<Duration>) -> Self {
        Self {
            pool: ClientPool::new(PoolConfig {
                request_timeout: Duration::from_secs(5),
                ..PoolConfig::default()
            }),
            refresh,
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// How often each app is checked; `None` when checks are off.
    pub fn refresh(&self) -> Option<Duration> {
        self.refresh
    }

    /// Runs a check when one is due (first sight, spec change, other pods, or the refresh
    /// period passed), otherwise returns the last outcome. `None` when checks are off.
    pub async fn check(
        &self,
        client: &Client,
        metrics: &Metrics,
        app: &StreamApp,
        pods: Vec<String>,
    ) -> Option<KafkaOutcome> {
        let refresh = self.refresh?;
        let uid = state_key(app);
        let checked_for = CheckedFor {
            generation: app.metadata.generation.unwrap_or(0),
            pods,
        };
        let (last, previous) = {
            let apps = self.lock();
            let state = apps.get(&uid);
            let last = state.and_then(|s| s.last.clone());
            (last, state.and_then(|s| s.baseline.clone()))
        };
        if let Some((at, seen, outcome)) = &last
            && at.elapsed() < refresh
            && *seen == checked_for
        {
            return Some(outcome.clone());
        }
        let started = Instant::now();
        let result = match connection(client, app).await {
            Ok(conn) => {
                let view = app_view(app, checked_for.pods.clone());
                check(&self.pool, &conn, &view, previous.as_ref())
                    .await
                    .map_err(CheckFailure::from)
            }
            Err(e) => Err(CheckFailure::from(e)),
        };
        metrics.kafka_checked(started.elapsed());
        let mut apps = self.lock();
        let state = apps.entry(uid).or_insert_with(|| AppState {
            namespace: app.namespace().unwrap_or_default(),
            ..AppState::default()
        });
        let outcome = match result {
            Ok((status, baseline)) => {
                state.baseline = Some(baseline);
                KafkaOutcome {
                    status: Some(status),
                    failure: None,
                }
            }
            Err(failure) => {
                debug!(reason = failure.reason(), "Kafka check failed");
                let known = app.status.as_ref().and_then(|s| s.kafka.clone());
                KafkaOutcome {
                    status: known.or_else(|| last.and_then(|(_, _, o)| o.status)),
                    failure: Some(failure),
                }
            }
        };
        state.last = Some((Instant::now(), checked_for, outcome.clone()));
        Some(outcome)
    }

    /// Drops the state of the apps of `namespace` (every namespace when `None`) whose uid is
    /// not in `live`: they were deleted.
    pub fn forget_deleted(&self, namespace: Option<&str>, live: &HashSet<String>) {
        self.lock().retain(|uid, state| {
            namespace.is_some_and(|ns| ns != state.namespace) || live.contains(uid)
        });
    }

    /// Whether the step holds state for the app with this uid.
    pub fn tracks(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, AppState>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The key of an app's state: its uid, which a re-created app does not share.
fn state_key(app: &StreamApp) -> String {
    app.uid()
        .unwrap_or_else(|| format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any()))
}

/// The app as the Kafka library sees it; `acceptable.recovery.lag` comes from `spec.config`
/// (Kafka Streams' default when unset or unparsable).
pub fn app_view(app: &StreamApp, pods: Vec<String>) -> AppView {
    AppView {
        application_id: app.application_id(),
        input_topics: app.spec.topics.inputs.clone(),
        pods,
        acceptable_recovery_lag: app
            .spec
            .config
            .get("acceptable.recovery.lag")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_ACCEPTABLE_RECOVERY_LAG),
    }
}

/// The connection settings of `app`, with credentials read from its Secrets.
async fn connection(client: &Client, app: &StreamApp) -> Result<KafkaConnection, CredentialsError> {
    let kafka = &app.spec.kafka;
    let mut conn = KafkaConnection::plaintext(kafka.bootstrap_servers.clone());
    conn.security_protocol = Some(kafka.security_protocol());
    let ns = app.namespace().unwrap_or_default();
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    if let Some(tls) = &kafka.tls {
        if let Some(ca) = &tls.ca_cert {
            conn.ca_pem = Some(read(&secrets, &ca.name, &ca.key).await?);
        }
        if let Some(s) = &tls.client_cert_secret {
            conn.client_cert_pem = Some(read(&secrets, s, "tls.crt").await?);
            conn.client_key_pem = Some(read(&secrets, s, "tls.key").await?);
        }
    }
    if let Some(sasl) = &kafka.sasl {
        conn.sasl_mechanism = Some(sasl.mechanism.name().to_string());
        conn.sasl_username = Some(read(&secrets, &sasl.secret_name, &sasl.username_key).await?);
        conn.sasl_password = Some(read(&secrets, &sasl.secret_name, &sasl.password_key).await?);
    }
    Ok(conn)
}

/// One key of a Secret, as text. The value never leaves this function but into the client.
async fn read(secrets: &Api<Secret>, name: &str, key: &str) -> Result<String, CredentialsError> {
    let namespace = secrets.namespace().unwrap_or_default().to_string();
    let secret = secrets.get(name).await.map_err(|e| {
        let detail = e.to_string();
        let (namespace, name) = (namespace.clone(), name.to_string());
        match &e {
            kube::Error::Api(s) if s.code == 403 => CredentialsError::Forbidden {
                namespace,
                name,
                detail,
            },
            _ => CredentialsError::Unreadable {
                namespace,
                name,
                detail,
            },
        }
    })?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| CredentialsError::MissingKey {
            namespace,
            name: name.to_string(),
            key: key.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;

    const APP: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc, generation: 1}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092'}}
";

    fn seed(checks: &KafkaChecks, app: &StreamApp) {
        let state = AppState {
            namespace: app.namespace().unwrap_or_default(),
            last: None,
            baseline: Some(Baseline {
                witnessed: true,
                ..Baseline::default()
            }),
        };
        checks.lock().insert(state_key(app), state);
    }

    #[test]
    fn a_deleted_app_is_forgotten_and_its_successor_starts_clean() {
        let checks = KafkaChecks::new(Some(Duration::from_secs(30)));
        let old = app(APP);
        let mut other = app(APP);
        other.metadata.namespace = Some("elsewhere".into());
        other.metadata.uid = Some("uid-elsewhere".into());
        seed(&checks, &old);
        seed(&checks, &other);
        let old_uid = old.uid().unwrap();

        // The controller of the app's namespace sees it: nothing is dropped.
        checks.forget_deleted(Some("streams"), &HashSet::from([old_uid.clone()]));
        assert!(checks.tracks(&old_uid));
        // Deleted: its state goes; another namespace's app is not this controller's to drop.
        checks.forget_deleted(Some("streams"), &HashSet::new());
        assert!(!checks.tracks(&old_uid));
        assert!(checks.tracks("uid-elsewhere"));

        // Re-created under the same name: a new uid, and no baseline inherited.
        seed(&checks, &old);
        let mut new = old.clone();
        new.metadata.uid = Some("8a5f3c1e-0000-4000-8000-000000000002".into());
        let inherited = checks
            .lock()
            .get(&state_key(&new))
            .and_then(|s| s.baseline.clone());
        assert_eq!(inherited, None);
    }

    #[test]
    fn the_view_reads_acceptable_recovery_lag_from_the_config() {
        let mut a = app(APP);
        assert_eq!(
            app_view(&a, vec![]).acceptable_recovery_lag,
            DEFAULT_ACCEPTABLE_RECOVERY_LAG
        );
        a.spec
            .config
            .insert("acceptable.recovery.lag".into(), " 500 ".into());
        let view = app_view(&a, vec!["wc-0".into()]);
        assert_eq!(view.acceptable_recovery_lag, 500);
        assert_eq!(view.application_id, "wc");
        assert_eq!(view.pods, ["wc-0"]);
    }
}
