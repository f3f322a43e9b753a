//! The CEL rules admission checks, generated from the lists in `owned` so that the CRD, the
//! runtime re-check (`reconcile::validation`) and the builders cannot drift apart.
//!
//! Cost: the apiserver refuses a CRD whose rules it estimates too expensive, from the largest
//! list, map and string the schema allows. Rules over every entry of `spec.env` and every key
//! of `spec.config` therefore come with `maxItems`, `maxProperties` and `maxLength` bounds
//! ([`MAX_ENV`], [`MAX_CONFIG`], [`MAX_ENV_NAME`]); rules that look keys up (`'k' in self`)
//! cost the same whatever the map's size.

use kube::core::Rule;
use serde_json::{Value, json};

use super::owned::{self, CONFIG_DIR, OwnedKey, OwnedMeta, REFUSED, RefusedWith, SECRET_SUFFIXES};

/// The most entries `spec.env` may have.
pub const MAX_ENV: usize = 1024;
/// The longest `spec.env` name.
pub const MAX_ENV_NAME: usize = 1024;
/// The most keys `spec.config` may have.
pub const MAX_CONFIG: usize = 1024;
/// The most topics `spec.topics.inputs` may name.
pub const MAX_INPUTS: usize = 1024;
/// The longest state mount path (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// The longest label key: a 253-character prefix, `/` and a 63-character name.
pub const MAX_LABEL_KEY: usize = 317;

/// A CEL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A CEL list literal of strings.
fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| lit(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The CEL rule refusing `key` and its client-prefixed spellings in a map of properties.
pub fn refusal_rule(key: &str) -> String {
    format!("!{}.exists(k, k in self)", list(&owned::spellings(key)))
}

/// The CEL rule refusing keys with a credential suffix in a map of properties.
pub fn secret_suffix_rule() -> String {
    let ends: Vec<String> = SECRET_SUFFIXES
        .iter()
        .map(|s| format!("!k.endsWith({})", lit(s)))
        .collect();
    format!("self.all(k, {})", ends.join(" && "))
}

fn rule(rule: String, message: &str) -> Value {
    json!({"rule": rule, "message": message})
}

fn rule_at(rule: String, message: &str, field_path: &str) -> Value {
    json!({"rule": rule, "message": message, "fieldPath": field_path})
}

/// The rules of `spec.config`: every refused key in [`REFUSED`] refused in `spec.config`,
/// then the credential suffixes.
pub fn config_rules() -> Vec<Value> {
    REFUSED
        .iter()
        .filter(|r| r.in_config)
        .map(|r| rule(refusal_rule(r.key.key), r.key.message))
        .chain(std::iter::once(rule(
            secret_suffix_rule(),
            owned::SECRET_IN_CONFIG,
        )))
        .collect()
}

/// The CEL rule refusing, in one `spec.env` entry, the names that set `key`.
pub fn env_refusal_rule(key: &str) -> String {
    format!(
        "!(self.name.lowerAscii() in {})",
        list(&owned::env_spellings(key))
    )
}

/// The CEL rule refusing, in one `spec.env` entry, a credential without a Secret reference.
pub fn env_secret_rule() -> String {
    let ends: Vec<String> = SECRET_SUFFIXES
        .iter()
        .map(|s| format!("self.name.lowerAscii().endsWith({})", lit(&env_suffix(s))))
        .collect();
    format!(
        "!(self.name.lowerAscii().startsWith({}) && ({})) || (has(self.valueFrom) && has(self.valueFrom.secretKeyRef))",
        lit(&owned::ENV_PREFIX.to_ascii_lowercase()),
        ends.join(" || ")
    )
}

/// A property suffix as the end of an environment name, lower case: `.password` ->
/// `_password`.
pub fn env_suffix(suffix: &str) -> String {
    suffix.replace('.', "_")
}

/// The rules of one `spec.env` entry: the names of refused properties, the operator's own
/// variables, credentials only from Secrets.
pub fn env_rules() -> Vec<Value> {
    let properties = REFUSED.iter().filter(|r| r.in_env).map(|r| {
        rule_at(
            env_refusal_rule(r.key.key),
            &owned::env_message(&r.key),
            ".name",
        )
    });
    let own = owned::OWNED_ENV.iter().map(|e| {
        rule_at(
            format!(
                "self.name.lowerAscii() != {}",
                lit(&e.name.to_ascii_lowercase())
            ),
            e.message,
            ".name",
        )
    });
    properties
        .chain(own)
        .chain(std::iter::once(rule(
            env_secret_rule(),
            owned::SECRET_IN_ENV,
        )))
        .collect()
}

/// The rules of a map of pod labels or annotations: the operator's own keys refused.
pub fn meta_rules(owned: &[OwnedMeta]) -> Vec<Value> {
    owned
        .iter()
        .map(|m| rule(format!("!({} in self)", lit(m.key)), m.message))
        .collect()
}

/// The `spec` rule refusing `key` in `spec.config` and `spec.env` while the
/// `spec.kafka.tls` field `tls_field` is set. On `spec`, not the root: a rule there is
/// ratcheted (kept quiet while `spec` is unchanged), so status writes to an object stored
/// before it still pass.
pub fn tls_rule(key: &OwnedKey, tls_field: &str) -> String {
    format!(
        "!(has(self.kafka.tls) && has(self.kafka.tls.{tls_field})) || ((!has(self.config) || !{}.exists(k, k in self.config)) && (!has(self.env) || !self.env.exists(e, e.name.lowerAscii() in {})))",
        list(&owned::spellings(key.key)),
        list(&owned::env_spellings(key.key)),
    )
}

/// Root rule: the name fits the label the StatefulSet controller derives from it.
///
/// Checked on creation only (`oldSelf` is absent then): the name never changes, and a root
/// rule is not ratcheted, so on an update it would refuse every write to an object stored
/// before the rule, status and finalizers included.
pub fn name_length() -> Rule {
    Rule::new(format!(
        "oldSelf.hasValue() || size(self.metadata.name) <= {}",
        owned::MAX_NAME_LEN
    ))
    .optional_old_self(true)
    .message(owned::NAME_TOO_LONG)
}

/// Root rule: the name can name a Service and pods; on creation only, as [`name_length`].
pub fn name_label() -> Rule {
    Rule::new(format!(
        "oldSelf.hasValue() || self.metadata.name.matches({})",
        lit(NAME_PATTERN)
    ))
    .optional_old_self(true)
    .message(owned::NAME_NOT_A_LABEL)
}

/// A DNS label that starts with a letter (RFC 1035): it names the headless Service, and
/// Kubernetes before `RelaxedServiceNameValidation` refuses a Service name that starts with a
/// digit.
pub const NAME_PATTERN: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

/// `spec` rule: a store type the operator writes with TLS material from Secrets is refused
/// while that material is configured.
pub fn tls_store_type(refused: &RefusedWith) -> Rule {
    Rule::new(tls_rule(&refused.key, refused.tls_field)).message(tls_message(refused).as_str())
}

/// The admission message of [`tls_store_type`].
pub fn tls_message(refused: &RefusedWith) -> String {
    format!(
        "spec.config and spec.env ({}): {}",
        owned::env_name(refused.key.key),
        refused.key.message
    )
}

/// Appends `rules` to the `x-kubernetes-validations` of `schema`.
fn add_rules(schema: &mut serde_json::Map<String, Value>, rules: impl IntoIterator<Item = Value>) {
    let mut all = match schema.remove("x-kubernetes-validations") {
        Some(Value::Array(existing)) => existing,
        _ => Vec::new(),
    };
    all.extend(rules);
    schema.insert("x-kubernetes-validations".into(), Value::Array(all));
}

/// Schema transform of `spec.config`: the refused keys and its size bound.
pub(super) fn config_schema(schema: &mut schemars::Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.insert("maxProperties".into(), json!(MAX_CONFIG));
    add_rules(obj, config_rules());
}

/// Schema transform of `spec.env`: the rules of each entry and the bounds they cost within.
pub(super) fn env_schema(schema: &mut schemars::Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.insert("maxItems".into(), json!(MAX_ENV));
    let Some(items) = obj.get_mut("items").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(name) = items
        .get_mut("properties")
        .and_then(|p| p.get_mut("name"))
        .and_then(Value::as_object_mut)
    {
        name.insert("maxLength".into(), json!(MAX_ENV_NAME));
    }
    add_rules(items, env_rules());
}

/// Schema transform of `spec.podTemplate.labels`.
pub(super) fn labels_schema(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        add_rules(obj, meta_rules(&owned::POD_LABELS));
    }
}

/// Schema transform of `spec.podTemplate.annotations`.
pub(super) fn annotations_schema(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        add_rules(obj, meta_rules(&owned::POD_ANNOTATIONS));
    }
}

/// Schema transform of `spec.topics.inputs`: each a Kafka topic name.
pub(super) fn topics_schema(schema: &mut schemars::Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    obj.insert("maxItems".into(), json!(MAX_INPUTS));
    let Some(items) = obj.get_mut("items").and_then(Value::as_object_mut) else {
        return;
    };
    items.insert("maxLength".into(), json!(owned::MAX_TOPIC_LEN));
    add_rules(
        items,
        [rule(
            format!(
                "self.matches({}) && self != '.' && self != '..'",
                lit(TOPIC_PATTERN)
            ),
            owned::TOPIC_NAME,
        )],
    );
}

/// The characters of a Kafka topic name.
pub const TOPIC_PATTERN: &str = "^[A-Za-z0-9._-]+$";

/// Rule of `spec.state.mountPath`: not the root.
pub fn mount_path_not_root() -> Rule {
    Rule::new("self != '/'").message(owned::MOUNT_PATH_ROOT)
}

/// Rule of `spec.state.mountPath`: not where `streams.properties` is mounted.
pub fn mount_path_not_config() -> Rule {
    Rule::new(format!(
        "self != {} && !self.startsWith({})",
        lit(CONFIG_DIR),
        lit(&format!("{CONFIG_DIR}/"))
    ))
    .message(owned::MOUNT_PATH_CONFIG)
}

/// Rule of `spec.state.mountPath`: no segment that hides where it is.
pub fn mount_path_plain() -> Rule {
    Rule::new("!self.contains('//') && !self.matches('(^|/)[.][.]?(/|$)')")
        .message(owned::MOUNT_PATH_SEGMENTS)
}

/// Rule of `spec.state.storage`: a positive size.
pub fn storage_positive() -> Rule {
    Rule::new("!isQuantity(self) || quantity(self).isGreaterThan(quantity('0'))")
        .message(owned::STORAGE_POSITIVE)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name.
pub const LABEL_KEY_PATTERN: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";

/// Rule of `spec.placement.topologyKey`: a label key.
pub fn topology_key() -> Rule {
    Rule::new(format!("self.matches({})", lit(LABEL_KEY_PATTERN))).message(owned::TOPOLOGY_KEY)
}
