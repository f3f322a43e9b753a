//! The Kafka step: when to check an app's Kafka side, with which credentials, and what the
//! last check found. The Kubernetes side never waits on it longer than one bounded check, and
//! a failed check keeps the last known figures.
//!
//! The state of each app (its last check, its restore-lag baseline, since when its pods lack
//! members, its group is unstable or its commits stand still, and the group configs last set
//! on a streams group) is kept under the StreamApp's uid and dropped once the app is gone from
//! the controller's cache, so a deleted app does not stay in memory and an app re-created
//! under the same name starts clean.
//!
//! The baseline is also kept in the cluster ([`super::baseline`]): read before the first check
//! of an app, written when it changes, so a process that restarts or takes over the lead goes
//! on with the baseline of the one that saw the members join.
//!
//! For an app on the streams rebalance protocol a successful check is followed, when due, by
//! one more bounded request: the group config `streams.num.standby.replicas` set to
//! `spec.standbyReplicas` (see [`super::group_config`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kstreams_kafka::lag::{DEFAULT_ACCEPTABLE_RECOVERY_LAG, Partition};
use kstreams_kafka::{AppView, Baseline, Checked, ClientPool, CommitProgress, KafkaConnection};
use kstreams_kafka::{KafkaError, KafkaStatus, PoolConfig, SourceOffsets, check};
use kube::{Api, Client, ResourceExt};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::baseline::{self, BaselineError, Stored};
use super::cycle::Cycles;
use super::group_config::{Applied, Refusal};
use super::pods::PodsSeen;
use crate::crd::StreamApp;
use crate::metrics::Metrics;

/// How the Kafka step checks apps and how long it lets their group settle; the default is
/// what `kstreams-operator run` uses without flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaSettings {
    /// How often each app's Kafka side is checked; `None` turns the checks off.
    pub refresh: Option<Duration>,
    /// How long a Ready pod may have no member in the app's group, or the group may be other
    /// than Stable, before the app counts as not processing.
    pub member_grace: Duration,
    /// How long the app's commits may stand still while records wait before it is Stalled.
    pub stall: Duration,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            refresh: Some(Duration::from_secs(30)),
            member_grace: Duration::from_secs(120),
            stall: Duration::from_secs(300),
        }
    }
}

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

/// What the last Kafka check of an app found, and how long what it found has lasted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KafkaOutcome {
    /// The figures, from the latest successful check (possibly older than a failed one).
    pub status: Option<KafkaStatus>,
    /// Why the latest check failed; `None` when it succeeded.
    pub failure: Option<CheckFailure>,
    /// How long the states the grace and stall rules judge have lasted, as of this reconcile.
    pub waits: Waits,
    /// The broker's refusal of a group config the operator sets on the app's streams group,
    /// until it takes one.
    pub group_config_refused: Option<Refusal>,
}

/// How long each state that is tolerated for a while has lasted. The Kafka step keeps the
/// clocks and the judge decides on them; the step only asks when a decision may change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Waits {
    /// Ready pods without a member in the app's group, with how long they have been seen so
    /// (counted afresh for a new pod uid or after a container restart).
    pub memberless: BTreeMap<String, Duration>,
    /// The group's state while it exists but is not Stable, with how long it has not been.
    pub unstable: Option<(String, Duration)>,
    /// Source partitions whose commits stand still while records wait, with for how long.
    pub standing_still: BTreeMap<Partition, Duration>,
}

impl Waits {
    /// Every clock with the limit the judge holds it to.
    fn clocks(&self, settings: &KafkaSettings) -> impl Iterator<Item = (Duration, Duration)> {
        let grace = settings.member_grace;
        self.memberless
            .values()
            .map(move |d| (*d, grace))
            .chain(self.unstable.iter().map(move |(_, d)| (*d, grace)))
            .chain(self.standing_still.values().map(|d| (*d, settings.stall)))
    }

    /// How soon the next clock reaches its limit, when one is still short of it: the verdict
    /// changes then, so the app must be looked at then.
    pub fn next_expiry(&self, settings: &KafkaSettings) -> Option<Duration> {
        self.clocks(settings)
            .filter(|(d, limit)| d < limit)
            .map(|(d, limit)| limit - d)
            .min()
    }

    /// Whether a clock reached its limit within the last `window`: a verdict is about to
    /// change on facts up to `window` old, which deserve a fresh look first.
    fn expired_within(&self, settings: &KafkaSettings, window: Duration) -> bool {
        self.clocks(settings)
            .any(|(d, limit)| d >= limit && d - limit < window)
    }
}

/// What a check was made for: a new spec or other pods need a new check at once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedFor {
    generation: i64,
    pods: PodsSeen,
}

/// Whether a check is due, and how it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Not yet: the last outcome stands.
    No,
    /// At once, alone: something changed, or there is no check yet.
    Now,
    /// The periodic check, in the round of the current period.
    Round,
}

/// One app's Kafka state.
#[derive(Debug, Default)]
struct AppState {
    namespace: String,
    last: Option<(Instant, CheckedFor, KafkaOutcome)>,
    baseline: Option<Baseline>,
    /// What the cluster keeps of the baseline.
    stored: Stored,
    /// Per Ready pod without a member (by uid): its restart count and since when.
    memberless: HashMap<String, (i32, Instant)>,
    /// Since when the group has existed but not been Stable.
    unstable_since: Option<Instant>,
    progress: CommitProgress,
    /// The group configs last set on a streams group.
    group_config: Applied,
}

impl AppState {
    /// Moves the clocks on by what a successful check found about `pods`.
    fn follow(&mut self, pods: &PodsSeen, status: &KafkaStatus, now: Instant) {
        let memberless: Vec<_> = pods
            .ready()
            .filter(|p| !has_member(status, &p.name))
            .collect();
        self.memberless
            .retain(|uid, _| memberless.iter().any(|p| p.uid == *uid));
        for pod in memberless {
            let since = self
                .memberless
                .entry(pod.uid.clone())
                .or_insert((pod.restarts, now));
            if since.0 != pod.restarts {
                *since = (pod.restarts, now);
            }
        }
        let unstable = pods.ready().next().is_some()
            && status.group.as_ref().is_some_and(|g| g.state != STABLE);
        self.unstable_since = unstable.then(|| self.unstable_since.unwrap_or(now));
    }

    /// Moves every clock on by a successful check of `pods` at `now`.
    fn took_in(
        &mut self,
        pods: &PodsSeen,
        status: &KafkaStatus,
        sources: &SourceOffsets,
        now: Instant,
    ) {
        self.follow(pods, status, now);
        self.progress.observe(sources, now);
        if !self.ought_to_commit(pods, status) {
            self.progress.restart();
        }
    }

    /// Whether the app ought to be committing: it has Ready pods, each with a member in a
    /// Stable group, and none restoring. Otherwise time without commits is expected (scaled
    /// to zero, joining, rebalancing, restoring) or already reported as something else, and
    /// must not count towards a stall once the app is back.
    fn ought_to_commit(&self, pods: &PodsSeen, status: &KafkaStatus) -> bool {
        pods.ready().next().is_some()
            && self.memberless.is_empty()
            && self.unstable_since.is_none()
            && !status.pods.iter().any(|p| p.caught_up == Some(false))
    }

    /// The clocks as of `now`, named for `pods`.
    fn waits(&self, pods: &PodsSeen, now: Instant) -> Waits {
        let status = self.last.as_ref().and_then(|(_, _, o)| o.status.as_ref());
        Waits {
            memberless: pods
                .ready()
                .filter_map(|p| {
                    let (_, since) = self.memberless.get(&p.uid)?;
                    Some((p.name.clone(), now.duration_since(*since)))
                })
                .collect(),
            unstable: self.unstable_since.and_then(|since| {
                let state = status?.group.as_ref()?.state.clone();
                Some((state, now.duration_since(since)))
            }),
            standing_still: self.progress.standing_still(now),
        }
    }
}

/// The group state in which every member has its assignment.
const STABLE: &str = "Stable";

/// Whether the group has a member whose `client.id` names `pod`.
fn has_member(status: &KafkaStatus, pod: &str) -> bool {
    status
        .group
        .iter()
        .flat_map(|g| &g.members)
        .any(|m| m.pod.as_deref() == Some(pod))
}

/// The Kafka step of every reconcile: shared clients and each app's state.
pub struct KafkaChecks {
    pool: Arc<ClientPool>,
    /// The rounds the periodic checks of each cluster's apps are made in.
    cycles: Option<Cycles>,
    settings: KafkaSettings,
    /// Boxed: an `AppState` is over a kilobyte, and a map's table holds room for more
    /// entries than it has.
    apps: Mutex<HashMap<String, Box<AppState>>>,
}

impl KafkaChecks {
    /// Checks every app at most once per `settings.refresh` (`None` disables the checks).
    pub fn new(settings: KafkaSettings) -> Self {
        Self {
            pool: Arc::new(ClientPool::new(PoolConfig {
                request_timeout: Duration::from_secs(5),
                ..PoolConfig::default()
            })),
            cycles: settings.refresh.map(Cycles::new),
            settings,
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// How often each app is checked; `None` when checks are off.
    pub fn refresh(&self) -> Option<Duration> {
        self.settings.refresh
    }

    /// How long until the next refresh period begins, when every app of a cluster is checked
    /// in one round; `None` when checks are off.
    pub fn next_refresh(&self) -> Option<Duration> {
        self.cycles.as_ref().map(|c| c.until_next(Instant::now()))
    }

    /// The refresh cycles, for tests that look at them.
    pub fn cycles(&self) -> Option<&Cycles> {
        self.cycles.as_ref()
    }

    /// The shared clients, for the reset's Kafka steps.
    pub fn pool(&self) -> &ClientPool {
        &self.pool
    }

    /// The settings the step runs with.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    /// Runs a check when one is due (first sight, spec change, other pods as [`PodsSeen`]
    /// tells them apart, the refresh period passed, or a grace or stall limit was reached
    /// since the last check, or `eager` passed while a rollout step waits on the app to
    /// settle), otherwise returns the last outcome. Either way the clocks are read as of now.
    /// `None` when checks are off.
    pub async fn check(
        &self,
        client: &Client,
        metrics: &Metrics,
        app: &StreamApp,
        pods: &PodsSeen,
        eager: Option<Duration>,
    ) -> Option<KafkaOutcome> {
        // Checks off: nothing to say about Kafka.
        self.settings.refresh?;
        let uid = state_key(app);
        let checked_for = CheckedFor {
            generation: app.metadata.generation.unwrap_or(0),
            pods: pods.clone(),
        };
        let (last, own, stored, waits, apply) = {
            let apps = self.lock();
            let state = apps.get(&uid);
            let last = state.and_then(|s| s.last.clone());
            let waits = state.map(|s| s.waits(pods, Instant::now()));
            let apply = match state {
                Some(s) => s.group_config.due(app),
                None => Applied::default().due(app),
            };
            let own = state.and_then(|s| s.baseline.clone());
            let stored = state.map(|s| s.stored.clone()).unwrap_or_default();
            (last, own, stored, waits, apply)
        };
        let due = match &last {
            Some((at, seen, _)) => self.due(
                *at,
                Instant::now(),
                seen,
                &checked_for,
                waits.as_ref(),
                eager,
            ),
            None => Due::Now,
        };
        if let (Due::No, Some((_, _, outcome))) = (due, &last) {
            // The same pods as at that check: the clocks it set still apply as they are.
            return Some(KafkaOutcome {
                waits: waits.unwrap_or_default(),
                ..outcome.clone()
            });
        }
        let stored = load_baseline(client, metrics, app, stored).await;
        let start = baseline::start_from(own, &stored);
        let started = Instant::now();
        let (result, sent) = match connection(client, app).await {
            Ok(conn) => {
                let view = app_view(app, pods.names());
                let round = match (&self.cycles, due) {
                    (Some(cycles), Due::Round) => {
                        cycles
                            .check(&self.pool, &conn, &uid, &view, start.baseline.as_ref())
                            .await
                    }
                    _ => None,
                };
                let mut result = match round {
                    Some(result) => result,
                    None => check(&self.pool, &conn, &view, start.baseline.as_ref()).await,
                };
                if let Ok(checked) = &result
                    && baseline::discarded(&start, &checked.baseline)
                {
                    // Checked again without it, rather than with it, which would count the
                    // new members' join as seen.
                    debug!("stored restore-lag baseline is of other members: discarded");
                    result = check(&self.pool, &conn, &view, None).await;
                }
                if let (Some(cycles), Ok(checked)) = (&self.cycles, &result) {
                    cycles.checked(&conn, &uid, &view, &checked.baseline);
                }
                let result = result.map_err(CheckFailure::from);
                metrics.kafka_checked(started.elapsed());
                // Only brokers that just answered are asked to change the group; a failed
                // check says why they are not, and the change waits for the next one.
                let sent = match (&result, apply) {
                    (Ok(_), Some(apply)) => {
                        let r = self
                            .pool
                            .alter_group_configs(&conn, &apply.group, &apply.configs())
                            .await;
                        Some((apply, r))
                    }
                    _ => None,
                };
                (result, sent)
            }
            Err(e) => {
                metrics.kafka_checked(started.elapsed());
                (Err(CheckFailure::from(e)), None)
            }
        };
        log_group_config(sent.as_ref());
        // Kept in the cluster before the status that rests on it is written.
        let stored = match &result {
            Ok(checked) => keep_baseline(client, metrics, app, stored, &checked.baseline).await,
            Err(_) => stored,
        };
        let now = Instant::now();
        let mut apps = self.lock();
        let state = apps.entry(uid).or_insert_with(|| {
            Box::new(AppState {
                namespace: app.namespace().unwrap_or_default(),
                ..AppState::default()
            })
        });
        state.stored = stored;
        state
            .group_config
            .took_in(app, sent.as_ref().map(|(a, r)| (a, r)));
        let group_config_refused = state.group_config.refusal.clone();
        let outcome = match result {
            Ok(Checked {
                status,
                baseline,
                sources,
            }) => {
                state.baseline = Some(baseline);
                state.took_in(pods, &status, &sources, now);
                KafkaOutcome {
                    status: Some(status),
                    failure: None,
                    waits: Waits::default(),
                    group_config_refused,
                }
            }
            Err(failure) => {
                debug!(reason = failure.reason(), "Kafka check failed");
                let known = app.status.as_ref().and_then(|s| s.kafka.clone());
                KafkaOutcome {
                    status: known.or_else(|| last.and_then(|(_, _, o)| o.status)),
                    failure: Some(failure),
                    waits: Waits::default(),
                    group_config_refused,
                }
            }
        };
        state.last = Some((now, checked_for, outcome.clone()));
        Some(KafkaOutcome {
            waits: state.waits(pods, now),
            ..outcome
        })
    }

    /// Whether a check is due at `time`, and how, after the last one, made at `at` for `seen`,
    /// now that the app is as `now` says, its clocks as `waits`, and a waiting rollout step asks for
    /// checks every `eager`: a change is checked at once, alone; the periodic check waits
    /// for the round of the period, which the last check was made before.
    fn due(
        &self,
        at: Instant,
        time: Instant,
        seen: &CheckedFor,
        now: &CheckedFor,
        waits: Option<&Waits>,
        eager: Option<Duration>,
    ) -> Due {
        let age = time.saturating_duration_since(at);
        if seen != now
            || eager.is_some_and(|e| age >= e)
            || waits.is_some_and(|w| w.expired_within(&self.settings, age))
        {
            return Due::Now;
        }
        match &self.cycles {
            Some(cycles) if at < cycles.began(time) => Due::Round,
            Some(_) => Due::No,
            None => Due::Now,
        }
    }

    /// Drops the state of the apps of `namespace` (every namespace when `None`) whose uid is
    /// not in `live`: they were deleted.
    pub fn forget_deleted(&self, namespace: Option<&str>, live: &HashSet<String>) {
        let mut apps = self.lock();
        apps.retain(|uid, state| {
            namespace.is_some_and(|ns| ns != state.namespace) || live.contains(uid)
        });
        if let Some(cycles) = &self.cycles {
            cycles.retain(|uid| apps.contains_key(uid));
        }
    }

    /// Forgets every app's baseline, for a process that just became leader: members may have
    /// joined while another one led, so the check reads the cluster's copy again.
    pub fn took_lead(&self) {
        for state in self.lock().values_mut() {
            state.baseline = None;
            state.stored = Stored::Unread;
        }
    }

    /// Whether the step holds state for the app with this uid.
    pub fn tracks(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }

    /// `lastChecked` of the figures the app with this uid was last given: apps checked in
    /// one round share it.
    pub fn last_checked(&self, uid: &str) -> Option<String> {
        let apps = self.lock();
        let (_, _, outcome) = apps.get(uid)?.last.as_ref()?;
        outcome.status.as_ref().map(|s| s.last_checked.clone())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Box<AppState>>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `stored`, read from the cluster while it has not been read yet. A failed read leaves it
/// unread (read again at the next check); an undecodable copy counts as none, to be replaced.
async fn load_baseline(
    client: &Client,
    metrics: &Metrics,
    app: &StreamApp,
    stored: Stored,
) -> Stored {
    if stored != Stored::Unread {
        return stored;
    }
    match baseline::read(client, app).await {
        Ok(copy) => {
            debug!(
                found = copy.is_some(),
                witnessed = copy.as_ref().is_some_and(|b| b.witnessed),
                "read the stored restore-lag baseline"
            );
            Stored::Known(copy)
        }
        Err(e) => {
            warn!(category = e.category(), error = %e, "reading the stored restore-lag baseline failed");
            metrics.baseline_failed(e.category());
            match e {
                BaselineError::Undecodable { .. } => Stored::Known(None),
                _ => Stored::Unread,
            }
        }
    }
}

/// Keeps `baseline` in the cluster when it is not what `stored` says the cluster holds; what
/// the cluster holds after. A failed write is tried again at the next check; meanwhile the
/// process goes on with the baseline it holds.
async fn keep_baseline(
    client: &Client,
    metrics: &Metrics,
    app: &StreamApp,
    stored: Stored,
    baseline: &Baseline,
) -> Stored {
    if !stored.needs(baseline) {
        return stored;
    }
    match baseline::write(client, app, baseline).await {
        Ok(()) => {
            debug!(
                members = baseline.members.len(),
                witnessed = baseline.witnessed,
                "stored the restore-lag baseline"
            );
            Stored::Known(Some(baseline.clone()))
        }
        Err(e) => {
            warn!(category = e.category(), error = %e, "storing the restore-lag baseline failed");
            metrics.baseline_failed(e.category());
            match e {
                BaselineError::TooLarge { .. } => Stored::Refused(baseline.clone()),
                _ => stored,
            }
        }
    }
}

/// Logs what setting a group config came to; the condition and the Event come from the
/// outcome.
fn log_group_config(sent: Option<&(super::group_config::Apply, Result<(), KafkaError>)>) {
    let Some((apply, result)) = sent else { return };
    let key = super::group_config::STANDBY_REPLICAS;
    match result {
        Ok(()) => info!(group = %apply.group, key, value = apply.standbys, "set group config"),
        Err(e) if Refusal::of(e, apply).is_some() => {
            warn!(group = %apply.group, key, value = apply.standbys, error = %e, "group config refused");
        }
        Err(e) => {
            debug!(group = %apply.group, key, reason = e.reason(), error = %e, "setting group config failed; retried at the next check");
        }
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
        streams_protocol: app.uses_streams_protocol(),
    }
}

/// The connection settings of `app`, with credentials read from its Secrets.
pub async fn connection(
    client: &Client,
    app: &StreamApp,
) -> Result<KafkaConnection, CredentialsError> {
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
    use crate::reconcile::fixtures::{kafka_status, pod, ready_pods};
    use crate::resources::testing::app;
    use k8s_openapi::api::core::v1::Pod;

    const APP: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc, generation: 1}
spec: {image: wc:1, kafka: {bootstrapServers: 'k:9092'}}
";

    fn seed(checks: &KafkaChecks, app: &StreamApp) {
        let state = AppState {
            namespace: app.namespace().unwrap_or_default(),
            baseline: Some(Baseline {
                witnessed: true,
                ..Baseline::default()
            }),
            ..AppState::default()
        };
        checks.lock().insert(state_key(app), Box::new(state));
    }

    #[test]
    fn a_deleted_app_is_forgotten_and_its_successor_starts_clean() {
        let checks = KafkaChecks::new(KafkaSettings::default());
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
    fn a_new_leader_forgets_the_baselines_it_held_and_reads_the_clusters_again() {
        let checks = KafkaChecks::new(KafkaSettings::default());
        let a = app(APP);
        seed(&checks, &a);
        checks
            .lock()
            .entry(state_key(&a))
            .and_modify(|s| s.stored = Stored::Known(None));
        checks.took_lead();
        let apps = checks.lock();
        let state = apps.get(&state_key(&a)).unwrap();
        assert_eq!(state.baseline, None);
        assert_eq!(state.stored, Stored::Unread);
    }

    const S: Duration = Duration::from_secs(1);

    /// `follow` a check that found `status` for `pods` at `at`, then read the clocks then.
    fn follow(state: &mut AppState, pods: &PodsSeen, status: KafkaStatus, at: Instant) -> Waits {
        state.follow(pods, &status, at);
        state.last = Some((
            at,
            CheckedFor {
                generation: 1,
                pods: pods.clone(),
            },
            KafkaOutcome {
                status: Some(status),
                failure: None,
                ..KafkaOutcome::default()
            },
        ));
        state.waits(pods, at)
    }

    #[test]
    fn a_memberless_pod_is_timed_from_first_sight_and_afresh_when_replaced_or_restarted() {
        let t0 = Instant::now();
        let mut state = AppState::default();
        let empty = || kafka_status("Empty", &[]);
        let both = ready_pods(&["wc-0", "wc-1"]);
        follow(&mut state, &both, empty(), t0);
        let w = follow(&mut state, &both, empty(), t0 + 30 * S);
        assert_eq!(
            w.memberless.into_iter().collect::<Vec<_>>(),
            [("wc-0".to_string(), 30 * S), ("wc-1".to_string(), 30 * S)]
        );
        // wc-0 joins; wc-1 is replaced (same name, new uid), then its container restarts.
        let joined = || kafka_status("Stable", &["wc-0-StreamThread-1-consumer"]);
        let replaced = PodsSeen::of(&[pod("wc-0", "uid-wc-0", 0), pod("wc-1", "new", 0)]);
        let w = follow(&mut state, &replaced, joined(), t0 + 40 * S);
        assert_eq!(w.memberless.get("wc-0"), None);
        assert_eq!(w.memberless.get("wc-1"), Some(&Duration::ZERO));
        let w = follow(&mut state, &replaced, joined(), t0 + 50 * S);
        assert_eq!(w.memberless.get("wc-1"), Some(&(10 * S)));
        let restarted = PodsSeen::of(&[pod("wc-0", "uid-wc-0", 0), pod("wc-1", "new", 1)]);
        let w = follow(&mut state, &restarted, joined(), t0 + 60 * S);
        assert_eq!(w.memberless.get("wc-1"), Some(&Duration::ZERO));
        assert_eq!(w.unstable, None);
    }

    #[test]
    fn an_unstable_group_is_timed_until_it_is_stable() {
        let t0 = Instant::now();
        let mut state = AppState::default();
        let pods = ready_pods(&["wc-0"]);
        let member = ["wc-0-StreamThread-1-consumer"];
        follow(
            &mut state,
            &pods,
            kafka_status("PreparingRebalance", &member),
            t0,
        );
        let w = follow(
            &mut state,
            &pods,
            kafka_status("CompletingRebalance", &member),
            t0 + 5 * S,
        );
        assert_eq!(w.unstable, Some(("CompletingRebalance".into(), 5 * S)));
        let w = follow(
            &mut state,
            &pods,
            kafka_status("Stable", &member),
            t0 + 6 * S,
        );
        assert_eq!(w.unstable, None);
        // Without Ready pods an Empty group is what is expected.
        let w = follow(
            &mut state,
            &PodsSeen::default(),
            kafka_status("Empty", &[]),
            t0 + 7 * S,
        );
        assert_eq!(w, Waits::default());
    }

    #[test]
    fn a_check_is_due_for_other_pods_a_new_spec_the_refresh_or_a_clock_at_its_limit() {
        let checks = KafkaChecks::new(KafkaSettings {
            refresh: Some(30 * S),
            member_grace: 10 * S,
            ..KafkaSettings::default()
        });
        let for_pods = |pods: &[Pod]| CheckedFor {
            generation: 1,
            pods: PodsSeen::of(pods),
        };
        // 5 s into a refresh period.
        let began = checks.cycles().unwrap().began(Instant::now() + 60 * S);
        let now = began + 5 * S;
        let due = |age: Duration, same: &CheckedFor, waits, eager| {
            checks.due(now - age, now, same, same, waits, eager)
        };
        let seen = for_pods(&[pod("wc-0", "a", 0)]);
        assert_eq!(
            due(4 * S, &seen, None, None),
            Due::No,
            "checked this period"
        );
        assert_eq!(
            due(6 * S, &seen, None, None),
            Due::Round,
            "checked last period: the round of this one"
        );
        // The StatefulSet replaced the pod, or its container restarted: same name.
        let last = |current: &CheckedFor| checks.due(now - 4 * S, now, &seen, current, None, None);
        assert_eq!(last(&for_pods(&[pod("wc-0", "b", 0)])), Due::Now);
        assert_eq!(last(&for_pods(&[pod("wc-0", "a", 1)])), Due::Now);
        let respec = CheckedFor {
            generation: 2,
            ..seen.clone()
        };
        assert_eq!(last(&respec), Due::Now);
        // wc-0 reached the grace 1 s ago, on a check 4 s old.
        let waits = Waits {
            memberless: [("wc-0".to_string(), 11 * S)].into(),
            ..Waits::default()
        };
        assert_eq!(due(4 * S, &seen, Some(&waits), None), Due::Now);
        assert_eq!(due(S / 2, &seen, Some(&waits), None), Due::No);
        // A rollout step waiting on the app to settle looks every 5 s, at once.
        assert_eq!(due(5 * S, &seen, None, Some(5 * S)), Due::Now);
        assert_eq!(due(4 * S, &seen, None, Some(5 * S)), Due::No);
    }

    #[test]
    fn time_without_members_does_not_count_towards_a_stall() {
        let t0 = Instant::now();
        let mut state = AppState::default();
        let offsets = |end| SourceOffsets {
            committed: [(("in".to_string(), 0), 10)].into(),
            end: [(("in".to_string(), 0), end)].into(),
        };
        let standing = |state: &AppState, at| state.waits(&ready_pods(&["wc-0"]), at);
        // Scaled to zero while records arrive, then wc-0 Ready but not yet a member.
        let empty = kafka_status("Empty", &[]);
        state.took_in(&PodsSeen::default(), &empty, &offsets(10), t0);
        state.took_in(&PodsSeen::default(), &empty, &offsets(50), t0 + 100 * S);
        state.took_in(&ready_pods(&["wc-0"]), &empty, &offsets(60), t0 + 110 * S);
        assert!(standing(&state, t0 + 120 * S).standing_still.is_empty());
        // A member now, still no commit as records keep coming: the clock starts here.
        let joined = kafka_status("Stable", &["wc-0-StreamThread-1-consumer"]);
        state.took_in(&ready_pods(&["wc-0"]), &joined, &offsets(70), t0 + 130 * S);
        let w = standing(&state, t0 + 135 * S);
        assert_eq!(w.standing_still.values().collect::<Vec<_>>(), [&(5 * S)]);
        assert!(w.memberless.is_empty());
    }

    #[test]
    fn the_next_look_is_when_a_clock_reaches_its_limit() {
        let settings = KafkaSettings {
            member_grace: 10 * S,
            stall: 60 * S,
            ..KafkaSettings::default()
        };
        let waits = Waits {
            memberless: [("wc-0".to_string(), 4 * S), ("wc-1".to_string(), 12 * S)].into(),
            unstable: None,
            standing_still: [(("in".to_string(), 0), 58 * S)].into(),
        };
        assert_eq!(waits.next_expiry(&settings), Some(2 * S));
        // wc-1 reached the grace 2 s ago: a check older than that is stale for it.
        assert!(waits.expired_within(&settings, 3 * S));
        assert!(!waits.expired_within(&settings, 2 * S));
        assert_eq!(Waits::default().next_expiry(&settings), None);
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
