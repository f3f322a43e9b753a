//! The desired state a user writes: `StreamApp.spec`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EnvVar, LocalObjectReference, PodSecurityContext, Probe, ResourceRequirements, SecurityContext,
    Toleration,
};
use kstreams_kafka::SecurityProtocol;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::StreamAppStatus;

/// A stateful Kafka Streams application: the operator runs it as a StatefulSet with one
/// persistent state volume per instance, a headless Service and the settings Kafka Streams
/// needs to keep its state local and its rebalances calm.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kstreams.dev",
    version = "v1alpha1",
    kind = "StreamApp",
    plural = "streamapps",
    shortname = "ksapp",
    category = "kstreams",
    namespaced,
    status = "StreamAppStatus",
    derive = "PartialEq",
    doc = "A stateful Kafka Streams application run by kstreams-operator.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas", description = "Desired instances"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Instances that are Ready"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason", description = "Why the app is or is not Ready"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.kafka.processingLagTotal", description = "Records not yet processed"),
    printcolumn(name = "Restore-Lag", type_ = "integer", json_path = ".status.kafka.restoreLagTotal", description = "Changelog records the instances still lack"),
    printcolumn(name = "Rollout", type_ = "string", json_path = ".status.rollout.summary", description = "What the rollout or scaling waits on"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "(has(self.spec.applicationId) ? self.spec.applicationId : self.metadata.name) == (has(oldSelf.spec.applicationId) ? oldSelf.spec.applicationId : oldSelf.metadata.name)"
    )
    .message("spec.applicationId is immutable: changing it starts a new consumer group and abandons the app's state and offsets")
    .field_path(".spec.applicationId"),
    validation = Rule::new(
        "!has(self.spec.reset) || self.spec.reset.inputOffsets == 'Keep' || (has(self.spec.topics) && has(self.spec.topics.inputs) && size(self.spec.topics.inputs) > 0)"
    )
    .message("a reset that moves input offsets needs the input topics in spec.topics.inputs")
    .field_path(".spec.reset"),
    validation = super::rules::name_length(),
    validation = super::rules::name_label(),
)]
#[x_kube(
    validation = super::rules::tls_store_type(&super::owned::REFUSED_WITH_TLS[0]),
    validation = super::rules::tls_store_type(&super::owned::REFUSED_WITH_TLS[1]),
)]
#[serde(rename_all = "camelCase")]
pub struct StreamAppSpec {
    /// Container image of the Kafka Streams application.
    #[schemars(length(min = 1))]
    pub image: String,

    /// When to pull the image: Always, IfNotPresent or Never (Kubernetes' default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets holding registry credentials for pulling the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Number of application instances (pods). Each instance keeps its own state volume.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,

    /// Kafka Streams `application.id`: the consumer group and the prefix of internal topics.
    /// Defaults to the StreamApp's name. Immutable once set. At most 188 characters, so
    /// that every internal topic Kafka Streams names stays within Kafka's 249.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self.matches('^[A-Za-z0-9._-]+$') && self != '.' && self != '..'").message(super::owned::APPLICATION_ID_CHARS),
        validation = Rule::new(format!("size(self) <= {}", super::owned::MAX_APPLICATION_ID_LEN)).message(super::owned::APPLICATION_ID_TOO_LONG),
    )]
    #[schemars(length(min = 1, max = 249))]
    pub application_id: Option<String>,

    /// How to reach the Kafka cluster.
    pub kafka: KafkaSpec,

    /// Topics the application reads; used to check they exist and to measure lag.
    #[serde(default, skip_serializing_if = "TopicsSpec::is_empty")]
    pub topics: TopicsSpec,

    /// Local state (RocksDB) storage.
    #[serde(default)]
    pub state: StateSpec,

    /// Kafka Streams `num.standby.replicas`: warm copies of each state store kept on other
    /// instances so a failover does not restore from the changelog. With
    /// `kafka.groupProtocol: Streams` the broker owns it: the operator sets the group config
    /// `streams.num.standby.replicas`, which the broker caps at its
    /// `group.streams.max.standby.replicas` (2 by default).
    #[serde(default = "default_standby_replicas")]
    #[schemars(range(min = 0))]
    pub standby_replicas: i32,

    /// Where instances may run relative to each other.
    #[serde(default)]
    pub placement: PlacementSpec,

    /// Static group membership (`group.instance.id` = pod name): a quick restart causes no
    /// rebalance, but a failed instance's tasks move only after `session.timeout.ms`.
    #[serde(default)]
    pub static_membership: bool,

    /// Interactive queries: the port the application serves its state on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_queries: Option<InteractiveQueriesSpec>,

    /// Extra Kafka Streams properties, written to `streams.properties` and the environment.
    /// Keys the operator owns are rejected, with their client-prefixed spellings
    /// (`consumer.`, `producer.`, ...); use the named spec field instead. Keys that carry
    /// credentials (`*.password`, `sasl.jaas.config`, key material) are rejected too: they
    /// come from Secrets. Kafka property names are case-sensitive, and so is the check.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = super::rules::config_schema)]
    pub config: BTreeMap<String, String>,

    /// Extra environment variables for the application container. Names that would set an
    /// operator-owned property through `KAFKA_STREAMS_<PROPERTY>`, in any letter case, and
    /// the variables the operator sets itself are rejected; `KAFKA_STREAMS_*` credentials
    /// only from a Secret (`valueFrom.secretKeyRef`). `KAFKA_STREAMS_CLIENT_TAG_ZONE` is
    /// allowed: a zone per pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = super::rules::env_schema)]
    pub env: Vec<EnvVar>,

    /// CPU and memory requests and limits of the application container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Overrides for the pod template.
    #[serde(default)]
    pub pod_template: PodTemplateSpec,

    /// Liveness, readiness and startup probes of the application container.
    #[serde(default, skip_serializing_if = "ProbesSpec::is_empty")]
    pub probes: ProbesSpec,

    /// How a change to the pods (image, config, env, template) reaches the running instances.
    #[serde(default)]
    pub rollout: RolloutSpec,

    /// Stop reconciling the app's Kubernetes objects (they are left as they are).
    #[serde(default)]
    pub paused: bool,

    /// Scale the app to zero instances and keep everything else: state volumes, internal
    /// topics and committed offsets. `false` brings it back where it stopped.
    #[serde(default)]
    pub suspend: bool,

    /// A reset to run once: stop the app, move its input offsets, drop its internal topics
    /// or local state as asked, and start it again. Changing `id` asks for a new reset; a
    /// StreamApp created with a reset set does not reset on creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetSpec>,
}

fn default_replicas() -> i32 {
    1
}

fn default_standby_replicas() -> i32 {
    1
}

/// Image pull policy of the application container.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePullPolicy {
    /// Pull on every start.
    Always,
    /// Pull when the node does not have the image.
    IfNotPresent,
    /// Never pull.
    Never,
}

/// Connection to the Kafka cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new(r"self.matches('^([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:]+\\]):[0-9]{1,5}(,([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:]+\\]):[0-9]{1,5})*$')").message("must be host:port[,host:port...]"))]
    pub bootstrap_servers: String,

    /// TLS to the brokers; certificates come from Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTlsSpec>,

    /// SASL authentication; credentials come from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSaslSpec>,

    /// The rebalance protocol of the app's group (Kafka Streams' `group.protocol`, which the
    /// operator writes): `Classic` (the default) or `Streams`, the KIP-1071 streams rebalance
    /// protocol, with which the broker assigns the tasks and owns the standby count.
    #[serde(default)]
    pub group_protocol: GroupProtocol,
}

/// The rebalance protocol of the app's group.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// The classic consumer group protocol, Kafka Streams' default: the app's own assignor
    /// places the tasks, and `spec.standbyReplicas` reaches it as `num.standby.replicas`.
    #[default]
    Classic,
    /// The streams rebalance protocol (KIP-1071, `group.protocol=streams`): a streams group
    /// whose coordinator assigns the tasks. The operator sets `spec.standbyReplicas` as the
    /// group config `streams.num.standby.replicas` (capped by the broker's
    /// `group.streams.max.standby.replicas`). Moving an app from `Classic` is offline: stop
    /// it, then start it on the new protocol, as Kafka Streams documents.
    Streams,
}

impl GroupProtocol {
    /// The value of Kafka Streams' `group.protocol` the operator writes; `None` for Kafka
    /// Streams' default, which it leaves unwritten.
    pub fn property(self) -> Option<&'static str> {
        match self {
            GroupProtocol::Classic => None,
            GroupProtocol::Streams => Some("streams"),
        }
    }
}

impl KafkaSpec {
    /// The security protocol of the app and of the operator's own clients alike.
    pub fn security_protocol(&self) -> SecurityProtocol {
        SecurityProtocol::of(self.tls.is_some(), self.sasl.is_some())
    }
}

/// A key in a Secret of the StreamApp's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// TLS settings for the Kafka connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTlsSpec {
    /// PEM CA certificate(s) that signed the brokers' certificates. Unset: the JVM's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<SecretKeyRef>,
    /// Client certificate for mutual TLS: a Secret with PEM `tls.crt` and `tls.key`
    /// (a `kubernetes.io/tls` Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret: Option<String>,
}

/// SASL mechanism.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    /// SASL/PLAIN.
    #[serde(rename = "PLAIN")]
    Plain,
    /// SASL/SCRAM with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SASL/SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name, as Kafka's `sasl.mechanism` and the CRD spell it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL settings for the Kafka connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSaslSpec {
    /// The SASL mechanism.
    pub mechanism: SaslMechanism,
    /// Secret with the username and password.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key of the username in the Secret.
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the password in the Secret.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

/// Topics the application uses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicsSpec {
    /// Source topics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = super::rules::topics_schema)]
    pub inputs: Vec<String>,
}

impl TopicsSpec {
    fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// Local state storage: one PersistentVolumeClaim per instance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateSpec {
    /// Size of each instance's volume (a Kubernetes quantity). May grow, never shrink.
    #[serde(default = "default_storage")]
    #[x_kube(
        validation = Rule::new("isQuantity(self)").message("must be a Kubernetes quantity such as 1Gi"),
        validation = Rule::new("!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0").message("spec.state.storage may grow but never shrink: Kubernetes cannot shrink a volume"),
        validation = super::rules::storage_positive(),
    )]
    #[schemars(length(max = 64))]
    pub storage: String,

    /// StorageClass of the volumes; unset uses the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,

    /// Where the volume is mounted; Kafka Streams' `state.dir`. Not `/`, and not at or under
    /// `/etc/kafka-streams`, where `streams.properties` is mounted.
    #[serde(default = "default_mount_path")]
    #[x_kube(
        validation = Rule::new("self.startsWith('/')").message("must be an absolute path"),
        validation = super::rules::mount_path_not_root(),
        validation = super::rules::mount_path_not_config(),
        validation = super::rules::mount_path_plain(),
    )]
    #[schemars(length(max = 4096))]
    pub mount_path: String,

    /// What happens to the volumes when the app is deleted or scaled down.
    #[serde(default)]
    pub retention: RetentionSpec,
}

impl Default for StateSpec {
    fn default() -> Self {
        Self {
            storage: default_storage(),
            storage_class_name: None,
            mount_path: default_mount_path(),
            retention: RetentionSpec::default(),
        }
    }
}

fn default_storage() -> String {
    "1Gi".into()
}

fn default_mount_path() -> String {
    "/var/lib/kafka-streams".into()
}

/// Whether volumes outlive their pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetentionPolicy {
    /// Keep the volume.
    #[default]
    Retain,
    /// Delete the volume.
    Delete,
}

/// Volume retention, mapped to the StatefulSet's `persistentVolumeClaimRetentionPolicy`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// When the StreamApp is deleted.
    #[serde(default)]
    pub when_deleted: RetentionPolicy,
    /// When the StreamApp is scaled down.
    #[serde(default)]
    pub when_scaled: RetentionPolicy,
}

/// How strongly a placement rule binds the scheduler.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlacementRule {
    /// Spread when possible, but schedule anyway.
    #[default]
    Preferred,
    /// Never place two instances together; extra instances stay Pending.
    Required,
    /// No rule.
    None,
}

/// Scheduling of the instances.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// Pod anti-affinity between instances over `topologyKey`.
    #[serde(default)]
    pub anti_affinity: PlacementRule,
    /// Node label the anti-affinity applies to.
    #[serde(default = "default_topology_key")]
    #[schemars(length(min = 1, max = 317))]
    #[x_kube(validation = super::rules::topology_key())]
    pub topology_key: String,
    /// Spread of instances across `topology.kubernetes.io/zone`.
    #[serde(default)]
    pub zone_spread: PlacementRule,
    /// Nodes the instances may run on, by label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the instances tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Tell Kafka Streams each instance's zone (`client.tag.zone`, from the pod's
    /// `topology.kubernetes.io/zone` label) and have it place standbys in other zones than
    /// their active task (`rack.aware.assignment.tags`, KIP-708).
    #[serde(default = "default_true")]
    pub zone_aware_standbys: bool,
}

impl Default for PlacementSpec {
    fn default() -> Self {
        Self {
            anti_affinity: PlacementRule::default(),
            topology_key: default_topology_key(),
            zone_spread: PlacementRule::default(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            zone_aware_standbys: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_topology_key() -> String {
    "kubernetes.io/hostname".into()
}

/// Who steps a rolling update through the instances.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RolloutStrategy {
    /// The operator restarts one instance at a time, highest ordinal first, and moves on only
    /// once that instance is Ready, back in a Stable group with no probing rebalance pending,
    /// and every instance's active tasks are caught up.
    #[default]
    RestoreAware,
    /// The StatefulSet controller's own rolling update: the next pod restarts as soon as the
    /// previous one is Ready, whatever its state restore.
    StatefulSet,
}

/// What a restore-aware rollout does when a step is not done within `stepTimeoutSeconds`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepTimeoutAction {
    /// Stay on the step (Progressing=False, reason StepTimedOut, and an Event) until it is
    /// done or the spec changes.
    #[default]
    Hold,
    /// Report the timeout and go on to the next instance.
    Continue,
}

/// Rollout settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// `RestoreAware` (the default) or `StatefulSet`.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// How long one instance may take to come back and catch up before the step counts as
    /// timed out. The default fits restores of a few GiB of state.
    #[serde(default = "default_step_timeout_seconds")]
    #[schemars(range(min = 1))]
    pub step_timeout_seconds: i64,
    /// `Hold` (the default) or `Continue` after a step timed out.
    #[serde(default)]
    pub on_step_timeout: StepTimeoutAction,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            strategy: RolloutStrategy::default(),
            step_timeout_seconds: default_step_timeout_seconds(),
            on_step_timeout: StepTimeoutAction::default(),
        }
    }
}

fn default_step_timeout_seconds() -> i64 {
    1800
}

/// Where a reset moves the app's committed input offsets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputOffsets {
    /// The earliest offset still in each input partition: reprocess everything.
    Earliest,
    /// The end of each input partition: skip what has not been processed.
    Latest,
    /// The first offset at or after `timestamp` in each input partition.
    Timestamp,
    /// Leave the committed offsets where they are (for a reset that only rebuilds state).
    Keep,
}

/// What a reset does with the app's changelog and repartition topics.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InternalTopics {
    /// Leave them.
    #[default]
    Keep,
    /// Delete them; Kafka Streams creates them again, empty, when the app starts.
    Delete,
}

/// What a reset does with the instances' local state volumes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LocalState {
    /// Leave them.
    #[default]
    Keep,
    /// Delete the state PersistentVolumeClaims; the StatefulSet creates them again, empty.
    Wipe,
}

/// A reset of the app's processing position and state, run once per `id`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.inputOffsets == 'Timestamp' ? has(self.timestamp) : !has(self.timestamp)")
        .message("timestamp is set exactly when inputOffsets is Timestamp"),
    validation = Rule::new("!(self.inputOffsets in ['Earliest', 'Timestamp']) || (self.internalTopics == 'Delete' && self.localState == 'Wipe') || self.acceptDoubleCounting")
        .message("rewinding the inputs while keeping the internal topics or the local state counts the replayed records a second time on top of the kept results: set internalTopics: Delete and localState: Wipe, or acceptDoubleCounting: true if that is what you mean")
)]
pub struct ResetSpec {
    /// Names this reset; change it to ask for another. A reset runs once per id.
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    /// `Earliest`, `Latest`, `Timestamp` or `Keep`.
    pub input_offsets: InputOffsets,
    /// With `inputOffsets: Timestamp`, the time to reprocess from (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: Option<String>,
    /// `Keep` (the default) or `Delete` the app's changelog and repartition topics.
    #[serde(default)]
    pub internal_topics: InternalTopics,
    /// `Keep` (the default) or `Wipe` the instances' state volumes.
    #[serde(default)]
    pub local_state: LocalState,
    /// Rewind the inputs although results already computed from them are kept.
    #[serde(default)]
    pub accept_double_counting: bool,
}

/// Interactive queries settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InteractiveQueriesSpec {
    /// Port the application serves queries on: the container port, the Service port and the
    /// port in `application.server`.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// Pod template overrides.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    /// Extra pod labels. The operator's own (`app.kubernetes.io/instance`, `managed-by`,
    /// `name`, `component`) are rejected: the first two select the app's pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = super::rules::labels_schema)]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations (`kstreams.dev/config-hash` is the operator's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = super::rules::annotations_schema)]
    pub annotations: BTreeMap<String, String>,
    /// ServiceAccount the pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Pod security context; replaces the operator's restricted default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Container security context; replaces the operator's restricted default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    /// Seconds a pod gets to close Kafka Streams cleanly (commit, write checkpoints) before it
    /// is killed. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
}

/// Probes of the application container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProbesSpec {
    /// Liveness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    /// Readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// Startup probe (give state restoration time here rather than in liveness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
}

impl ProbesSpec {
    fn is_empty(&self) -> bool {
        self.liveness.is_none() && self.readiness.is_none() && self.startup.is_none()
    }
}
