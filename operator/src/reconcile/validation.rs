//! The admission rules, checked again on the stored spec (pure). The apiserver refuses a spec
//! that breaks them, but an object stored before a rule existed stays as it is (CEL
//! ratcheting keeps it valid while the offending field is unchanged): the reconcile reports it
//! as Degraded, reason [`REASON`], naming each field and what to use instead, and goes on
//! reconciling the rest. What the builders do with such a value is unchanged: an owned key in
//! `spec.config` loses to the operator's, a `spec.env` entry still reaches the pod.
//!
//! Every check reads the same lists as the CEL rules (`crd::owned`) and gives the same message,
//! so a field refused at admission and a field reported here read alike. Transition rules
//! (immutable `applicationId`, storage that may not shrink) need the old object and are not
//! checked again.

use k8s_openapi::api::core::v1::EnvVar;
use kube::ResourceExt;

use super::judge::Problem;
use crate::crd::owned::{self, OwnedMeta};
use crate::crd::rules::{env_suffix, tls_message};
use crate::crd::{KafkaTlsSpec, StreamApp};

/// The Degraded reason of a stored spec that breaks an admission rule.
pub const REASON: &str = "InvalidSpec";

/// A field of the stored spec that admission would refuse today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// The field, as the apiserver names it (`spec.env[2].name`).
    pub field: String,
    /// What is wrong and what to use instead: the admission message.
    pub message: String,
}

impl SpecProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every field of `app` that breaks an admission rule, in the order of the spec.
pub fn problems(app: &StreamApp) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    name(&app.name_any(), &mut out);
    let spec = &app.spec;
    if let Some(id) = &spec.application_id {
        application_id(id, &mut out);
    }
    for (i, topic) in spec.topics.inputs.iter().enumerate() {
        if !is_topic_name(topic) {
            out.push(SpecProblem::new(
                format!("spec.topics.inputs[{i}]"),
                owned::TOPIC_NAME,
            ));
        }
    }
    state(app, &mut out);
    if !is_label_key(&spec.placement.topology_key) {
        out.push(SpecProblem::new(
            "spec.placement.topologyKey",
            owned::TOPOLOGY_KEY,
        ));
    }
    config(app, &mut out);
    for (i, var) in spec.env.iter().enumerate() {
        env(i, var, &mut out);
    }
    tls_store_types(app, &mut out);
    meta(
        "spec.podTemplate.labels",
        spec.pod_template.labels.keys(),
        &owned::POD_LABELS,
        &mut out,
    );
    meta(
        "spec.podTemplate.annotations",
        spec.pod_template.annotations.keys(),
        &owned::POD_ANNOTATIONS,
        &mut out,
    );
    out
}

/// The Degraded problem of `app`'s stored spec, if it breaks any admission rule: one problem
/// naming every field.
pub fn problem(app: &StreamApp) -> Option<Problem> {
    let found = problems(app);
    (!found.is_empty()).then(|| Problem {
        reason: REASON,
        message: format!(
            "the stored spec breaks admission rules added after it was stored; change these fields (re-create the app for metadata.name): {}",
            found
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    })
}

/// Whether `problem` is about the stored spec: it changes only when the spec does, and the
/// watch sees that, so it needs no early look again.
pub fn is_spec_problem(problem: &Problem) -> bool {
    problem.reason == REASON
}

fn name(name: &str, out: &mut Vec<SpecProblem>) {
    if name.len() > owned::MAX_NAME_LEN {
        out.push(SpecProblem::new("metadata.name", owned::NAME_TOO_LONG));
    }
    if !is_app_name(name) {
        out.push(SpecProblem::new("metadata.name", owned::NAME_NOT_A_LABEL));
    }
}

fn application_id(id: &str, out: &mut Vec<SpecProblem>) {
    if id.is_empty() || !id.chars().all(is_topic_char) || id == "." || id == ".." {
        out.push(SpecProblem::new(
            "spec.applicationId",
            owned::APPLICATION_ID_CHARS,
        ));
    }
    if id.chars().count() > owned::MAX_APPLICATION_ID_LEN {
        out.push(SpecProblem::new(
            "spec.applicationId",
            owned::APPLICATION_ID_TOO_LONG,
        ));
    }
}

fn state(app: &StreamApp, out: &mut Vec<SpecProblem>) {
    let path = app.spec.state.mount_path.as_str();
    let field = "spec.state.mountPath";
    if !path.starts_with('/') {
        out.push(SpecProblem::new(field, "must be an absolute path"));
    }
    if path == "/" {
        out.push(SpecProblem::new(field, owned::MOUNT_PATH_ROOT));
    }
    let config = owned::CONFIG_DIR;
    if path == config || path.starts_with(&format!("{config}/")) {
        out.push(SpecProblem::new(field, owned::MOUNT_PATH_CONFIG));
    }
    let hidden = path.contains("//") || path.split('/').any(|s| s == "." || s == "..");
    if hidden {
        out.push(SpecProblem::new(field, owned::MOUNT_PATH_SEGMENTS));
    }
    let storage = &app.spec.state.storage;
    match quantity_sign(storage) {
        None => out.push(SpecProblem::new(
            "spec.state.storage",
            "must be a Kubernetes quantity such as 1Gi",
        )),
        Some(sign) if sign <= 0 => out.push(SpecProblem::new(
            "spec.state.storage",
            owned::STORAGE_POSITIVE,
        )),
        Some(_) => {}
    }
}

fn config(app: &StreamApp, out: &mut Vec<SpecProblem>) {
    let config = &app.spec.config;
    for refused in owned::REFUSED.iter().filter(|r| r.in_config) {
        if owned::spellings(refused.key.key)
            .iter()
            .any(|k| config.contains_key(k))
        {
            out.push(SpecProblem::new("spec.config", refused.key.message));
        }
    }
    let secret = config
        .keys()
        .any(|k| owned::SECRET_SUFFIXES.iter().any(|s| k.ends_with(s)));
    if secret {
        out.push(SpecProblem::new("spec.config", owned::SECRET_IN_CONFIG));
    }
}

fn env(i: usize, var: &EnvVar, out: &mut Vec<SpecProblem>) {
    let name = var.name.to_ascii_lowercase();
    let field = format!("spec.env[{i}].name");
    for refused in owned::REFUSED.iter().filter(|r| r.in_env) {
        if owned::env_spellings(refused.key.key).contains(&name) {
            out.push(SpecProblem::new(&field, owned::env_message(&refused.key)));
        }
    }
    for own in owned::OWNED_ENV {
        if name == own.name.to_ascii_lowercase() {
            out.push(SpecProblem::new(&field, own.message));
        }
    }
    let credential = name.starts_with(&owned::ENV_PREFIX.to_ascii_lowercase())
        && owned::SECRET_SUFFIXES
            .iter()
            .any(|s| name.ends_with(&env_suffix(s)));
    let from_secret = var
        .value_from
        .as_ref()
        .is_some_and(|v| v.secret_key_ref.is_some());
    if credential && !from_secret {
        out.push(SpecProblem::new(
            format!("spec.env[{i}]"),
            owned::SECRET_IN_ENV,
        ));
    }
}

fn tls_store_types(app: &StreamApp, out: &mut Vec<SpecProblem>) {
    let Some(tls) = &app.spec.kafka.tls else {
        return;
    };
    for refused in owned::REFUSED_WITH_TLS {
        if !tls_field_set(tls, refused.tls_field) {
            continue;
        }
        let in_config = owned::spellings(refused.key.key)
            .iter()
            .any(|k| app.spec.config.contains_key(k));
        let names = owned::env_spellings(refused.key.key);
        let in_env = (app.spec.env.iter()).any(|e| names.contains(&e.name.to_ascii_lowercase()));
        if in_config || in_env {
            out.push(SpecProblem::new("spec", tls_message(&refused)));
        }
    }
}

/// Whether the `spec.kafka.tls` field named `field` (camelCase, as the CEL rule names it) is
/// set.
fn tls_field_set(tls: &KafkaTlsSpec, field: &str) -> bool {
    match field {
        "caCert" => tls.ca_cert.is_some(),
        "clientCertSecret" => tls.client_cert_secret.is_some(),
        _ => false,
    }
}

fn meta<'a>(
    field: &str,
    keys: impl Iterator<Item = &'a String>,
    owned: &[OwnedMeta],
    out: &mut Vec<SpecProblem>,
) {
    let keys: Vec<&String> = keys.collect();
    for m in owned {
        if keys.iter().any(|k| k.as_str() == m.key) {
            out.push(SpecProblem::new(field, m.message));
        }
    }
}

fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn is_topic_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= owned::MAX_TOPIC_LEN
        && t.chars().all(is_topic_char)
        && t != "."
        && t != ".."
}

/// A DNS label as RFC 1123 has it, without the length (checked on its own).
fn is_dns_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || c == '-')
}

/// A StreamApp name: a DNS label that starts with a letter, as a Service name must be on
/// every supported Kubernetes version.
fn is_app_name(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends with `-`, `_` and `.` between.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| p.split('.').all(is_dns_label) && !p.is_empty());
    name_ok && prefix_ok && key.len() <= 317
}

/// The sign of a Kubernetes quantity (`-1`, `0` or `1`), `None` when `s` is not one:
/// a signed decimal number, then a binary (`Ki`..`Ei`) or decimal (`n`, `u`, `m`, `k`, `M`..
/// `E`) suffix or an exponent (`e3`, `E-2`).
fn quantity_sign(s: &str) -> Option<i8> {
    let (negative, rest) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => (false, s),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = (!whole.is_empty() || !fraction.is_empty())
        && !fraction.contains('.')
        && whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit());
    let suffix_ok = match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
            .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())),
    };
    if !digits_ok || !suffix_ok {
        return None;
    }
    let zero = whole.chars().chain(fraction.chars()).all(|c| c == '0');
    Some(match (zero, negative) {
        (true, _) => 0,
        (false, true) => -1,
        (false, false) => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::app;

    const BASE: &str = "
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {name: wc}
spec:
  image: wc:1
  kafka:
    bootstrapServers: 'k:9092'
    tls: {caCert: {name: ca, key: ca.crt}, clientCertSecret: wc-tls}
    sasl: {mechanism: SCRAM-SHA-512, secretName: wc-user}
  topics: {inputs: [text-lines]}
";

    /// `BASE` with `patch` merged in (a JSON merge patch, as the admission test writes it).
    fn with(patch: serde_json::Value) -> StreamApp {
        let mut obj = serde_json::to_value(app(BASE)).unwrap();
        merge(&mut obj, patch);
        serde_json::from_value(obj).unwrap()
    }

    fn merge(into: &mut serde_json::Value, patch: serde_json::Value) {
        match (into, patch) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn fields(app: &StreamApp) -> Vec<String> {
        problems(app).into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn a_spec_admission_takes_has_no_problem() {
        let good = with(serde_json::json!({"spec": {
            "applicationId": "a".repeat(188),
            "config": {"commit.interval.ms": "100", "rack.aware.assignment.tags": "rack",
                       "ssl.endpoint.identification.algorithm": ""},
            "env": [
                {"name": "KAFKA_STREAMS_CLIENT_TAG_ZONE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['zone']"}}},
                {"name": "KAFKA_STREAMS_SSL_KEY_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "KAFKA_STREAMS_COMMIT_INTERVAL_MS", "value": "50"},
                {"name": "MY_PASSWORD", "value": "not a Kafka property"},
            ],
            "podTemplate": {"labels": {"team": "a"}, "annotations": {"prometheus.io/scrape": "true"}},
            "state": {"mountPath": "/etc/kafka-streams-state", "storage": "500Mi"},
            "placement": {"topologyKey": "topology.kubernetes.io/zone"},
        }}));
        assert_eq!(problems(&good), vec![]);
        let mut long = good.clone();
        long.metadata.name = Some("a".repeat(52));
        assert_eq!(problems(&long), vec![]);
        assert_eq!(problem(&good), None);
    }

    #[test]
    fn owned_properties_are_found_in_config_with_their_client_prefixes() {
        for key in [
            "application.id",
            "consumer.bootstrap.servers",
            "main.consumer.group.instance.id",
            "security.protocol",
            "admin.sasl.mechanism",
            "producer.sasl.jaas.config",
            "ssl.keystore.key",
        ] {
            let app = with(serde_json::json!({"spec": {"config": {key: "x"}}}));
            assert_eq!(fields(&app), ["spec.config"], "{key}");
        }
        // Kafka's names are case-sensitive: another case is another (unknown) property.
        let app = with(serde_json::json!({"spec": {"config": {"Application.Id": "x"}}}));
        assert_eq!(fields(&app), Vec::<String>::new());
    }

    #[test]
    fn credentials_in_config_are_found_by_their_ending() {
        for key in [
            "ssl.truststore.password",
            "sasl.oauthbearer.client.credentials.client.secret",
            "schema.registry.basic.auth.user.info",
        ] {
            let app = with(serde_json::json!({"spec": {"config": {key: "x"}}}));
            let found = problems(&app);
            assert_eq!(found.len(), 1, "{key}: {found:?}");
            assert_eq!(found[0].message, owned::SECRET_IN_CONFIG);
        }
    }

    #[test]
    fn env_names_are_matched_in_any_case_and_credentials_need_a_secret() {
        let app = with(serde_json::json!({"spec": {"env": [
            {"name": "kafka_streams_application_id", "value": "x"},
            {"name": "KAFKA_STREAMS_CONSUMER_BOOTSTRAP_SERVERS", "value": "x"},
            {"name": "POD_NAME", "value": "x"},
            {"name": "Kafka_Streams_Config_File", "value": "/x"},
            {"name": "KAFKA_STREAMS_SSL_KEY_PASSWORD", "value": "hunter2"},
            {"name": "KAFKA_STREAMS_SASL_JAAS_CONFIG", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "KAFKA_STREAMS_RACK_AWARE_ASSIGNMENT_TAGS", "value": "rack"},
        ]}}));
        let found = problems(&app);
        let at: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            at,
            [
                "spec.env[0].name",
                "spec.env[1].name",
                "spec.env[2].name",
                "spec.env[3].name",
                "spec.env[4]",
                "spec.env[5].name",
                "spec.env[6].name",
            ]
        );
        assert!(
            found[0].message.contains("use spec.applicationId"),
            "{}",
            found[0].message
        );
        assert!(
            found[5].message.contains("use spec.kafka.sasl"),
            "{}",
            found[5].message
        );
    }

    #[test]
    fn store_types_are_refused_only_with_the_material_the_operator_writes() {
        let typed = serde_json::json!({"spec": {"config": {"ssl.truststore.type": "JKS"},
            "env": [{"name": "KAFKA_STREAMS_SSL_KEYSTORE_TYPE", "value": "PKCS12"}]}});
        assert_eq!(fields(&with(typed.clone())), ["spec", "spec"]);
        let mut own_stores = with(typed);
        own_stores.spec.kafka.tls = Some(KafkaTlsSpec::default());
        assert_eq!(fields(&own_stores), Vec::<String>::new());
    }

    #[test]
    fn names_paths_and_sizes_that_would_fail_later_are_found() {
        let mut app = with(serde_json::json!({"spec": {
            "applicationId": "a".repeat(189),
            "topics": {"inputs": ["ok", "with space", ".."]},
            "state": {"mountPath": "/etc/kafka-streams/state", "storage": "0"},
            "placement": {"topologyKey": "not a key"},
            "podTemplate": {"labels": {"app.kubernetes.io/instance": "other"},
                            "annotations": {"kstreams.dev/config-hash": "x"}},
        }}));
        app.metadata.name = Some("a".repeat(53));
        assert_eq!(
            fields(&app),
            [
                "metadata.name",
                "spec.applicationId",
                "spec.topics.inputs[1]",
                "spec.topics.inputs[2]",
                "spec.state.mountPath",
                "spec.state.storage",
                "spec.placement.topologyKey",
                "spec.podTemplate.labels",
                "spec.podTemplate.annotations",
            ]
        );
        for bad in ["my.app", "1abc", "-a", "a-"] {
            app.metadata.name = Some(bad.into());
            assert!(
                problems(&app)
                    .iter()
                    .any(|p| p.message == owned::NAME_NOT_A_LABEL),
                "{bad}"
            );
        }
    }

    #[test]
    fn mount_paths_that_hide_where_they_are_are_found() {
        for (path, message) in [
            ("/", owned::MOUNT_PATH_ROOT),
            ("/etc/kafka-streams", owned::MOUNT_PATH_CONFIG),
            ("/data/../etc/kafka-streams", owned::MOUNT_PATH_SEGMENTS),
            ("/data/./x", owned::MOUNT_PATH_SEGMENTS),
            ("/etc//kafka-streams", owned::MOUNT_PATH_SEGMENTS),
            ("data", "must be an absolute path"),
        ] {
            let app = with(serde_json::json!({"spec": {"state": {"mountPath": path}}}));
            let found: Vec<String> = problems(&app).into_iter().map(|p| p.message).collect();
            assert_eq!(found, [message], "{path}");
        }
    }

    #[test]
    fn quantities_are_read_as_kubernetes_writes_them() {
        for (q, sign) in [
            ("1Gi", Some(1)),
            ("0.5", Some(1)),
            (".5Ti", Some(1)),
            ("1e3", Some(1)),
            ("+2k", Some(1)),
            ("0", Some(0)),
            ("0.0Mi", Some(0)),
            ("-1Gi", Some(-1)),
            ("", None),
            ("Gi", None),
            ("1GB", None),
            ("1..2", None),
            ("1e", None),
        ] {
            assert_eq!(quantity_sign(q), sign, "{q}");
        }
    }

    #[test]
    fn label_keys_are_checked_as_kubernetes_does() {
        for (key, ok) in [
            ("kubernetes.io/hostname", true),
            ("topology.kubernetes.io/zone", true),
            ("rack", true),
            ("example.com/Rack_1", true),
            ("", false),
            ("a b", false),
            ("/rack", false),
            ("Example.com/rack", false),
            (&"r".repeat(64), false),
        ] {
            assert_eq!(is_label_key(key), ok, "{key}");
        }
    }

    #[test]
    fn the_degraded_problem_names_every_field_and_is_a_spec_problem() {
        let app = with(serde_json::json!({"spec": {
            "config": {"bootstrap.servers": "x"},
            "env": [{"name": "KAFKA_STREAMS_NUM_STANDBY_REPLICAS", "value": "3"}],
        }}));
        let p = problem(&app).expect("a problem");
        assert_eq!(p.reason, REASON);
        assert!(is_spec_problem(&p));
        assert!(
            p.message.contains("spec.config: bootstrap.servers is set by the operator: use spec.kafka.bootstrapServers")
                && p.message.contains("spec.env[0].name: KAFKA_STREAMS_NUM_STANDBY_REPLICAS"),
            "{}",
            p.message
        );
    }

    #[test]
    fn a_stored_spec_problem_makes_the_app_degraded_naming_the_field() {
        use crate::crd::condition;
        use crate::reconcile::fixtures::statefulset_with;
        use crate::reconcile::judge::verdicts;
        let app = with(serde_json::json!({"spec": {
            "env": [{"name": "KAFKA_STREAMS_APPLICATION_ID", "value": "other"}],
        }}));
        let found: Vec<Problem> = problem(&app).into_iter().collect();
        let v = verdicts(&app, &statefulset_with(1, 1), &found, &[], None);
        let get = |t: &str| v.iter().find(|v| v.type_ == t).expect("a verdict");
        let degraded = get(condition::DEGRADED);
        assert!(degraded.status);
        assert_eq!(degraded.reason, REASON);
        assert!(
            degraded
                .message
                .contains("spec.env[0].name: KAFKA_STREAMS_APPLICATION_ID")
                && degraded.message.contains("use spec.applicationId"),
            "{}",
            degraded.message
        );
        assert_eq!(get(condition::READY).reason, REASON);
    }
}
