//! The Kafka Streams settings an app's pods receive: shared ones in `streams.properties` and
//! the environment, per-pod ones (client.id, application.server, client.tag.zone) in the
//! environment only.
//!
//! # Zone-aware standbys (KIP-708)
//!
//! With `spec.placement.zoneAwareStandbys` (the default) every pod tells Kafka Streams its zone,
//! `client.tag.zone`, and `rack.aware.assignment.tags` contains `zone`, so Kafka Streams'
//! standby assignor (`ClientTagAwareStandbyTaskAssignor`) puts a task's standbys in other zones
//! than its active copy. That is best effort: with fewer zones than copies of a task it falls
//! back to the least loaded instances.
//!
//! The zone reaches the pod without any right to read Nodes: the kube-apiserver's
//! `PodTopologyLabels` admission (KEP-4742; beta and on by default since Kubernetes 1.35, alpha
//! behind the `PodTopologyLabelsAdmission` gate in 1.33-1.34) copies the node's
//! `topology.kubernetes.io/zone` label onto the pod when it is bound, in the same update that
//! sets `spec.nodeName` and overwriting a value the pod was created with, and the downward API
//! reads the pod's label into `KAFKA_STREAMS_CLIENT_TAG_ZONE` when the container starts.
//!
//! Without the label (an older cluster, the admission off, a node without a zone) the kubelet
//! resolves the variable to an empty string, and Kafka Streams 4.3 refuses to start with an
//! empty tag (`StreamsConfig` throws "Tag value cannot be empty"). The pod template therefore
//! carries the label with [`UNKNOWN_ZONE`] ([`zone_label_default`]): the binding replaces it
//! with the real zone where there is one; where there is none every such pod reports the same
//! tag and the assignor places their standbys as if it had no zones, which is what it would do
//! without the setting.
//!
//! The operator does not copy the zone itself (read the node, label the pod): anything that
//! labels a pod after it is bound races the kubelet, which resolves the environment once, when
//! the container starts, and a process that started with `unknown` keeps it until it restarts.
//! (Nor does the Binding carry labels onto the Pod with the `PodTopologyLabelsAdmission` gate
//! off, so a webhook on `pods/binding` is no way around it on older clusters.) A user with the
//! zone elsewhere sets `KAFKA_STREAMS_CLIENT_TAG_ZONE` in `spec.env`, which wins; see
//! `docs/operations.md` for what a cluster needs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, SecretKeySelector};
use kstreams_kafka::SecurityProtocol;

use crate::crd::{SaslMechanism, StreamApp, owned};

/// Kafka Streams' interval between probing rebalances while warm-up replicas load.
pub const PROBING_REBALANCE_INTERVAL: &str = "probing.rebalance.interval.ms";
/// The operator's default for it: Kafka Streams' minimum, not its 10 minutes.
pub const DEFAULT_PROBING_REBALANCE_INTERVAL_MS: u32 = 60_000;

pub use crate::crd::owned::{CONFIG_DIR, ENV_PREFIX, env_name};

/// Kafka Streams' list of client tag keys its standby assignor spreads standbys over.
pub const RACK_AWARE_ASSIGNMENT_TAGS: &str = owned::RACK_AWARE_ASSIGNMENT_TAGS.key;
/// The client tag key that carries the pod's zone: `client.tag.zone`.
pub const ZONE_TAG: &str = "zone";
/// The node label the zone comes from, copied onto the pod when it is bound.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The zone of a pod whose node has none (or on a cluster that does not copy it): Kafka
/// Streams refuses an empty tag value.
pub const UNKNOWN_ZONE: &str = "unknown";

/// The pod label every instance is created with when zone-aware standbys are on:
/// `topology.kubernetes.io/zone: unknown`, replaced at binding by the node's zone where the
/// cluster copies it (see the module docs). `None` when the feature is off.
pub fn zone_label_default(app: &StreamApp) -> Option<(String, String)> {
    app.spec
        .placement
        .zone_aware_standbys
        .then(|| (ZONE_LABEL.to_string(), UNKNOWN_ZONE.to_string()))
}

/// `rack.aware.assignment.tags` with zone-aware standbys: the user's list from `spec.config`
/// (more tags, whose `client.tag.*` values the user sets per pod through `spec.env`), with
/// `zone` appended when missing.
fn zone_assignment_tags(user: Option<&String>) -> String {
    let mut tags: Vec<&str> = (user.iter().flat_map(|v| v.split(',')))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if !tags.contains(&ZONE_TAG) {
        tags.push(ZONE_TAG);
    }
    tags.join(",")
}

/// Settings shared by all instances, operator-owned ones first overridden by nothing.
/// Secrets never appear here: this map is written to a ConfigMap.
pub fn shared_properties(app: &StreamApp) -> BTreeMap<String, String> {
    let spec = &app.spec;
    let mut props: BTreeMap<String, String> = spec.config.clone();
    // Kafka Streams' default protocol is left unwritten; a value stored in spec.config before
    // admission refused it has been read into `group_protocol` and goes.
    props.remove(owned::GROUP_PROTOCOL.key);
    // Credentials in a spec stored before admission refused them (reported as InvalidSpec):
    // the ConfigMap is readable by whoever reads the namespace's ConfigMaps.
    props.retain(|k, _| !owned::carries_credential(k));
    // Defaults the user may override. Warm-up replicas (KIP-441) take their tasks over only at
    // the next probing rebalance: Kafka Streams' 10 minutes would hold every restore-aware
    // step, the Restoring condition and the disruption budget that long after the warm-up
    // caught up; 60 s is the least Kafka Streams allows.
    props
        .entry(PROBING_REBALANCE_INTERVAL.to_string())
        .or_insert_with(|| DEFAULT_PROBING_REBALANCE_INTERVAL_MS.to_string());
    let mut own = |k: &str, v: String| {
        props.insert(k.to_string(), v);
    };
    own(owned::APPLICATION_ID.key, app.application_id());
    own(
        owned::BOOTSTRAP_SERVERS.key,
        spec.kafka.bootstrap_servers.clone(),
    );
    own(owned::STATE_DIR.key, spec.state.mount_path.clone());
    // Under the streams protocol the broker ignores it (the group config
    // `streams.num.standby.replicas` counts, which the Kafka step sets); written all the same,
    // so a protocol switch alone does not change it.
    own(
        owned::NUM_STANDBY_REPLICAS.key,
        spec.standby_replicas.to_string(),
    );
    if let Some(protocol) = app.group_protocol().property() {
        own(owned::GROUP_PROTOCOL.key, protocol.to_string());
    }
    if spec.placement.zone_aware_standbys {
        let tags = zone_assignment_tags(spec.config.get(RACK_AWARE_ASSIGNMENT_TAGS));
        own(RACK_AWARE_ASSIGNMENT_TAGS, tags);
    }
    let tls = spec.kafka.tls.as_ref();
    // Kafka's own default; written only when it differs, as it always was.
    let protocol = spec.kafka.security_protocol();
    if protocol != SecurityProtocol::Plaintext {
        own(owned::SECURITY_PROTOCOL.key, protocol.as_str().to_string());
    }
    if let Some(sasl) = &spec.kafka.sasl {
        own(owned::SASL_MECHANISM.key, sasl.mechanism.name().to_string());
    }
    if tls.and_then(|t| t.ca_cert.as_ref()).is_some() {
        own(owned::SSL_TRUSTSTORE_TYPE.key, "PEM".into());
    }
    if tls.and_then(|t| t.client_cert_secret.as_ref()).is_some() {
        own(owned::SSL_KEYSTORE_TYPE.key, "PEM".into());
    }
    props
}

/// `streams.properties` text, keys sorted, escaped as `java.util.Properties#load` reads it.
pub fn properties_file(props: &BTreeMap<String, String>) -> String {
    let mut out = String::from("# Written by kstreams-operator; edit the StreamApp instead.\n");
    for (k, v) in props {
        out.push_str(&escape(k, true));
        out.push('=');
        out.push_str(&escape(v, false));
        out.push('\n');
    }
    out
}

fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' if is_key || i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

fn plain(name: impl Into<String>, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Kubernetes expands `$(VAR)` in env values; a literal `$(` from the user must survive.
fn literal(v: &str) -> String {
    v.replace("$(", "$$(")
}

/// The application container's environment: downward-API pod identity, every shared
/// property, the per-pod ones, credentials by Secret reference, then the user's `spec.env`.
/// Admission refuses `spec.env` names that would override the operator's; one stored before
/// that still wins by name here (and is reported, see `reconcile::validation`), so an
/// operator upgrade changes no running app's pods.
pub fn container_env(app: &StreamApp) -> Vec<EnvVar> {
    let spec = &app.spec;
    let mut env = vec![
        field(owned::POD_NAME.name, "metadata.name"),
        field(owned::POD_NAMESPACE.name, "metadata.namespace"),
    ];
    env.extend(
        shared_properties(app)
            .iter()
            .map(|(k, v)| plain(env_name(k), literal(v))),
    );
    env.push(plain(env_name(owned::CLIENT_ID.key), "$(POD_NAME)"));
    if spec.placement.zone_aware_standbys {
        env.push(field(
            &env_name(owned::CLIENT_TAG_ZONE.key),
            &format!("metadata.labels['{ZONE_LABEL}']"),
        ));
    }
    if spec.static_membership {
        env.push(plain(env_name(owned::GROUP_INSTANCE_ID.key), "$(POD_NAME)"));
    }
    if let Some(iq) = &spec.interactive_queries {
        let host = format!(
            "$(POD_NAME).{}.$(POD_NAMESPACE).svc:{}",
            super::app_name(app),
            iq.port
        );
        env.push(plain(env_name(owned::APPLICATION_SERVER.key), host));
    }
    if let Some(tls) = &spec.kafka.tls {
        if let Some(ca) = &tls.ca_cert {
            env.push(secret(
                &env_name(owned::SSL_TRUSTSTORE_CERTIFICATES.key),
                &ca.name,
                &ca.key,
            ));
        }
        if let Some(s) = &tls.client_cert_secret {
            env.push(secret(
                &env_name(owned::SSL_KEYSTORE_CERTIFICATE_CHAIN.key),
                s,
                "tls.crt",
            ));
            env.push(secret(&env_name(owned::SSL_KEYSTORE_KEY.key), s, "tls.key"));
        }
    }
    if let Some(sasl) = &spec.kafka.sasl {
        env.push(secret(
            owned::SASL_USERNAME.name,
            &sasl.secret_name,
            &sasl.username_key,
        ));
        env.push(secret(
            owned::SASL_PASSWORD.name,
            &sasl.secret_name,
            &sasl.password_key,
        ));
        let module = match sasl.mechanism {
            SaslMechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
            _ => "org.apache.kafka.common.security.scram.ScramLoginModule",
        };
        env.push(plain(
            env_name(owned::SASL_JAAS_CONFIG.key),
            format!(
                "{module} required username=\"$(KAFKA_SASL_USERNAME)\" password=\"$(KAFKA_SASL_PASSWORD)\";"
            ),
        ));
    }
    for user in &spec.env {
        match env.iter_mut().find(|e| e.name == user.name) {
            Some(existing) => *existing = user.clone(),
            None => env.push(user.clone()),
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;

    const SASL_APP: &str = r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: orders}
spec:
  image: example/orders:1
  kafka:
    bootstrapServers: kafka:9093
    tls: {caCert: {name: kafka-ca, key: ca.crt}}
    sasl: {mechanism: SCRAM-SHA-512, secretName: orders-user}
  config: {commit.interval.ms: "1000", "weird key": "a$(b)"}
  interactiveQueries: {port: 8080}
"#;

    #[test]
    fn env_names_follow_the_documented_rule() {
        assert_eq!(env_name("client.id"), "KAFKA_STREAMS_CLIENT_ID");
        assert_eq!(
            env_name("rack.aware.assignment-tags"),
            "KAFKA_STREAMS_RACK_AWARE_ASSIGNMENT_TAGS"
        );
    }

    #[test]
    fn credentials_only_reach_the_pod_through_secret_references() {
        let app = app(SASL_APP);
        let file = properties_file(&shared_properties(&app));
        assert!(file.contains("security.protocol=SASL_SSL"));
        assert!(file.contains("sasl.mechanism=SCRAM-SHA-512"));
        assert!(
            !file.contains("jaas"),
            "JAAS config must not be in the ConfigMap"
        );
        let env = container_env(&app);
        let user = env
            .iter()
            .find(|e| e.name == "KAFKA_SASL_USERNAME")
            .unwrap();
        let secret = user
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("orders-user", "username")
        );
        let ca = env
            .iter()
            .find(|e| e.name == "KAFKA_STREAMS_SSL_TRUSTSTORE_CERTIFICATES")
            .unwrap();
        assert!(ca.value.is_none());
    }

    #[test]
    fn per_pod_settings_use_the_pod_name() {
        let env = container_env(&app(SASL_APP));
        let get = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            get("KAFKA_STREAMS_CLIENT_ID").as_deref(),
            Some("$(POD_NAME)")
        );
        assert_eq!(
            get("KAFKA_STREAMS_APPLICATION_SERVER").as_deref(),
            Some("$(POD_NAME).orders.$(POD_NAMESPACE).svc:8080")
        );
        // POD_NAME must be defined before anything that refers to it.
        assert_eq!(env[0].name, "POD_NAME");
        // A user value is passed literally, not expanded by the kubelet.
        assert_eq!(get("KAFKA_STREAMS_WEIRD_KEY").as_deref(), Some("a$$(b)"));
    }

    #[test]
    fn the_group_protocol_is_written_only_for_streams() {
        let mut app = app(SASL_APP);
        let protocol = |app: &StreamApp| shared_properties(app).get("group.protocol").cloned();
        assert_eq!(protocol(&app), None);
        app.spec.kafka.group_protocol = crate::crd::GroupProtocol::Streams;
        assert_eq!(protocol(&app).as_deref(), Some("streams"));
        let env = container_env(&app);
        assert!(
            env.iter().any(|e| e.name == "KAFKA_STREAMS_GROUP_PROTOCOL"
                && e.value.as_deref() == Some("streams"))
        );
        // A value stored in spec.config before admission refused it: the spec field's
        // protocol, or the stored `streams`, is what is written.
        app.spec
            .config
            .insert("group.protocol".into(), "classic".into());
        assert_eq!(protocol(&app).as_deref(), Some("streams"));
        app.spec.kafka.group_protocol = crate::crd::GroupProtocol::Classic;
        assert_eq!(protocol(&app), None);
        app.spec
            .config
            .insert("group.protocol".into(), "Streams".into());
        assert_eq!(protocol(&app).as_deref(), Some("streams"));
    }

    #[test]
    fn properties_file_escapes_as_java_reads_it() {
        let props = BTreeMap::from([("a key".to_string(), " lead=x\\y".to_string())]);
        assert_eq!(
            properties_file(&props).lines().nth(1),
            Some("a\\ key=\\ lead=x\\\\y")
        );
    }

    #[test]
    fn each_pod_tells_kafka_streams_its_zone_by_default() {
        let app = app(SASL_APP);
        let props = shared_properties(&app);
        assert_eq!(props[RACK_AWARE_ASSIGNMENT_TAGS], "zone");
        assert!(!props.contains_key("client.tag.zone"), "a shared zone");
        let env = container_env(&app);
        let zone = env
            .iter()
            .find(|e| e.name == "KAFKA_STREAMS_CLIENT_TAG_ZONE")
            .expect("the zone in the environment");
        let path = (zone.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str());
        assert_eq!(path, Some("metadata.labels['topology.kubernetes.io/zone']"));
        assert_eq!(
            zone_label_default(&app),
            Some((ZONE_LABEL.to_string(), UNKNOWN_ZONE.to_string()))
        );
    }

    #[test]
    fn user_assignment_tags_keep_theirs_and_gain_zone() {
        let mut app = app(SASL_APP);
        let mut tags = |v: &str| {
            app.spec
                .config
                .insert(RACK_AWARE_ASSIGNMENT_TAGS.into(), v.into());
            shared_properties(&app)[RACK_AWARE_ASSIGNMENT_TAGS].clone()
        };
        assert_eq!(tags("rack"), "rack,zone");
        assert_eq!(tags(" zone , rack "), "zone,rack");
        assert_eq!(tags(""), "zone");
    }

    #[test]
    fn zone_aware_standbys_off_leaves_the_tags_to_the_user() {
        let mut app = app(SASL_APP);
        app.spec.placement.zone_aware_standbys = false;
        assert!(!shared_properties(&app).contains_key(RACK_AWARE_ASSIGNMENT_TAGS));
        assert!(
            !container_env(&app)
                .iter()
                .any(|e| e.name == "KAFKA_STREAMS_CLIENT_TAG_ZONE")
        );
        assert_eq!(zone_label_default(&app), None);
        app.spec
            .config
            .insert(RACK_AWARE_ASSIGNMENT_TAGS.into(), "rack".into());
        assert_eq!(shared_properties(&app)[RACK_AWARE_ASSIGNMENT_TAGS], "rack");
    }

    #[test]
    fn the_builders_set_every_owned_key() {
        let mut app = app(SASL_APP);
        app.spec.static_membership = true;
        app.spec.kafka.group_protocol = crate::crd::GroupProtocol::Streams;
        let props = shared_properties(&app);
        let env = container_env(&app);
        for k in owned::OWNED_KEYS {
            let in_env = env.iter().any(|e| e.name == env_name(k.key));
            assert!(in_env, "{} is not in the environment", k.key);
        }
        // A key that reached spec.config (stored before a rule existed) still loses.
        app.spec
            .config
            .insert("application.id".into(), "other".into());
        assert_eq!(shared_properties(&app)["application.id"], "orders");
        assert!(props.contains_key(owned::STATE_DIR.key));
    }

    #[test]
    fn credentials_stored_before_the_rule_never_reach_the_configmap() {
        let mut app = app(SASL_APP);
        for key in [
            "sasl.jaas.config",
            "producer.sasl.jaas.config",
            "ssl.keystore.key",
            "ssl.key.password",
            "schema.registry.basic.auth.user.info",
        ] {
            app.spec.config.insert(key.into(), "s3cret".into());
        }
        app.spec
            .config
            .insert("commit.interval.ms".into(), "1000".into());
        let props = shared_properties(&app);
        assert!(!props.values().any(|v| v == "s3cret"), "{props:?}");
        assert_eq!(props["commit.interval.ms"], "1000");
        assert!(
            !container_env(&app)
                .iter()
                .any(|e| e.value.as_deref() == Some("s3cret"))
        );
    }
}
