//! What the operator sets itself in every app, one list each: the Kafka Streams properties, the
//! properties that carry credentials (which reach a pod only from Secrets), the environment
//! variables and the pod labels. The CRD's CEL rules (`rules`) refuse them where a user could
//! set them another way, the reconcile re-checks stored apps against the same lists
//! (`reconcile::validation`), and the builders (`resources`) write them.

/// A property the operator owns, and what a user who tries to set it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedKey {
    /// The Kafka Streams property.
    pub key: &'static str,
    /// The admission message: which spec field sets it instead.
    pub message: &'static str,
}

/// `application.id`, from `spec.applicationId`.
pub const APPLICATION_ID: OwnedKey = OwnedKey {
    key: "application.id",
    message: "application.id is set by the operator: use spec.applicationId",
};
/// `bootstrap.servers`, from `spec.kafka.bootstrapServers`.
pub const BOOTSTRAP_SERVERS: OwnedKey = OwnedKey {
    key: "bootstrap.servers",
    message: "bootstrap.servers is set by the operator: use spec.kafka.bootstrapServers",
};
/// `state.dir`, from `spec.state.mountPath`.
pub const STATE_DIR: OwnedKey = OwnedKey {
    key: "state.dir",
    message: "state.dir is set by the operator: use spec.state.mountPath",
};
/// `num.standby.replicas`, from `spec.standbyReplicas`.
pub const NUM_STANDBY_REPLICAS: OwnedKey = OwnedKey {
    key: "num.standby.replicas",
    message: "num.standby.replicas is set by the operator: use spec.standbyReplicas",
};
/// `application.server`, from `spec.interactiveQueries.port` and the pod's DNS name.
pub const APPLICATION_SERVER: OwnedKey = OwnedKey {
    key: "application.server",
    message: "application.server is set by the operator: use spec.interactiveQueries.port",
};
/// `client.id`: the pod name, so group members map to pods.
pub const CLIENT_ID: OwnedKey = OwnedKey {
    key: "client.id",
    message: "client.id is set by the operator to the pod name",
};
/// `group.instance.id`, from `spec.staticMembership`.
pub const GROUP_INSTANCE_ID: OwnedKey = OwnedKey {
    key: "group.instance.id",
    message: "group.instance.id is set by the operator: use spec.staticMembership",
};

/// `client.tag.zone`: each pod's zone, from its `topology.kubernetes.io/zone` label, with
/// `spec.placement.zoneAwareStandbys`. Refused in `spec.config` whether or not that is on: a
/// value there would give every pod the same zone, which defeats the tag. A zone from another
/// source goes in `spec.env` (`KAFKA_STREAMS_CLIENT_TAG_ZONE`), per pod: the one owned
/// property whose environment variable admission lets through.
/// `rack.aware.assignment.tags` is not owned: the operator adds `zone` to the user's list.
pub const CLIENT_TAG_ZONE: OwnedKey = OwnedKey {
    key: "client.tag.zone",
    message: "client.tag.zone is set by the operator to each pod's zone (spec.placement.zoneAwareStandbys): one value in spec.config would give every pod the same zone; to take the zone from elsewhere, set KAFKA_STREAMS_CLIENT_TAG_ZONE per pod in spec.env",
};

/// `group.protocol`, from `spec.kafka.groupProtocol`: the operator reads the app's group by
/// its protocol (a classic consumer group or a KIP-1071 streams group) and sets the standby
/// count where that protocol takes it, so the protocol must be one it knows. Written only for
/// `Streams`; `Classic` is Kafka Streams' default.
pub const GROUP_PROTOCOL: OwnedKey = OwnedKey {
    key: "group.protocol",
    message: "group.protocol is set by the operator: use spec.kafka.groupProtocol (Classic or Streams)",
};

/// Every owned property, in the order admission checks them.
pub const OWNED_KEYS: [OwnedKey; 9] = [
    APPLICATION_ID,
    BOOTSTRAP_SERVERS,
    STATE_DIR,
    NUM_STANDBY_REPLICAS,
    APPLICATION_SERVER,
    CLIENT_ID,
    GROUP_INSTANCE_ID,
    CLIENT_TAG_ZONE,
    GROUP_PROTOCOL,
];

/// `security.protocol`, from whether `spec.kafka.tls` and `spec.kafka.sasl` are set: the
/// operator's own Kafka clients connect the same way, so the app may not differ.
pub const SECURITY_PROTOCOL: OwnedKey = OwnedKey {
    key: "security.protocol",
    message: "security.protocol is set by the operator from spec.kafka.tls and spec.kafka.sasl: set those instead",
};
/// `sasl.mechanism`, from `spec.kafka.sasl.mechanism`.
pub const SASL_MECHANISM: OwnedKey = OwnedKey {
    key: "sasl.mechanism",
    message: "sasl.mechanism is set by the operator: use spec.kafka.sasl.mechanism",
};
/// `sasl.jaas.config`: assembled in the pod from the Secret `spec.kafka.sasl` names, so the
/// credentials are never in the ConfigMap.
pub const SASL_JAAS_CONFIG: OwnedKey = OwnedKey {
    key: "sasl.jaas.config",
    message: "sasl.jaas.config carries credentials and is set by the operator: put the username and password in a Secret and use spec.kafka.sasl (secretName, usernameKey, passwordKey)",
};
/// `ssl.truststore.certificates`, from the Secret key `spec.kafka.tls.caCert` names.
pub const SSL_TRUSTSTORE_CERTIFICATES: OwnedKey = OwnedKey {
    key: "ssl.truststore.certificates",
    message: "ssl.truststore.certificates is set by the operator: put the PEM CA certificate in a Secret and use spec.kafka.tls.caCert",
};
/// `ssl.keystore.certificate.chain`, from the Secret `spec.kafka.tls.clientCertSecret`.
pub const SSL_KEYSTORE_CERTIFICATE_CHAIN: OwnedKey = OwnedKey {
    key: "ssl.keystore.certificate.chain",
    message: "ssl.keystore.certificate.chain is set by the operator: put the client certificate in a kubernetes.io/tls Secret and use spec.kafka.tls.clientCertSecret",
};
/// `ssl.keystore.key`, from the Secret `spec.kafka.tls.clientCertSecret`.
pub const SSL_KEYSTORE_KEY: OwnedKey = OwnedKey {
    key: "ssl.keystore.key",
    message: "ssl.keystore.key is key material and is set by the operator: put the client key in a kubernetes.io/tls Secret and use spec.kafka.tls.clientCertSecret",
};
/// `ssl.truststore.type`: `PEM`, written with `spec.kafka.tls.caCert` (the user's value
/// would be overwritten); the user's own otherwise.
pub const SSL_TRUSTSTORE_TYPE: OwnedKey = OwnedKey {
    key: "ssl.truststore.type",
    message: "ssl.truststore.type is set by the operator to PEM when spec.kafka.tls.caCert is set: remove it, or remove caCert to use a truststore of your own",
};
/// `ssl.keystore.type`: `PEM`, written with `spec.kafka.tls.clientCertSecret`.
pub const SSL_KEYSTORE_TYPE: OwnedKey = OwnedKey {
    key: "ssl.keystore.type",
    message: "ssl.keystore.type is set by the operator to PEM when spec.kafka.tls.clientCertSecret is set: remove it, or remove clientCertSecret to use a keystore of your own",
};
/// `rack.aware.assignment.tags`: the user's list from `spec.config` with `zone` added. Only
/// its environment variable is refused: it would replace the merged list.
pub const RACK_AWARE_ASSIGNMENT_TAGS: OwnedKey = OwnedKey {
    key: "rack.aware.assignment.tags",
    message: "rack.aware.assignment.tags is written by the operator from spec.config, with zone added for spec.placement.zoneAwareStandbys: set it in spec.config",
};

/// Where a property is refused: `spec.config`, the environment variables that reach it
/// through the app's loader, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The property.
    pub key: OwnedKey,
    /// Refused in `spec.config`.
    pub in_config: bool,
    /// Refused as a `spec.env` name.
    pub in_env: bool,
}

const fn both(key: OwnedKey) -> Refused {
    Refused {
        key,
        in_config: true,
        in_env: true,
    }
}

/// Every property refused everywhere but in its spec field, with its client-prefixed
/// spellings ([`spellings`]). The owned keys come from [`OWNED_KEYS`]; `client.tag.zone` is
/// allowed in `spec.env`, the documented way to set a zone per pod.
pub const REFUSED: [Refused; 16] = [
    both(APPLICATION_ID),
    both(BOOTSTRAP_SERVERS),
    both(STATE_DIR),
    both(NUM_STANDBY_REPLICAS),
    both(APPLICATION_SERVER),
    both(CLIENT_ID),
    both(GROUP_INSTANCE_ID),
    Refused {
        key: CLIENT_TAG_ZONE,
        in_config: true,
        in_env: false,
    },
    both(GROUP_PROTOCOL),
    both(SECURITY_PROTOCOL),
    both(SASL_MECHANISM),
    both(SASL_JAAS_CONFIG),
    both(SSL_TRUSTSTORE_CERTIFICATES),
    both(SSL_KEYSTORE_CERTIFICATE_CHAIN),
    both(SSL_KEYSTORE_KEY),
    Refused {
        key: RACK_AWARE_ASSIGNMENT_TAGS,
        in_config: false,
        in_env: true,
    },
];

/// A property the operator writes only when a `spec.kafka.tls` field is set, and then
/// refuses elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedWith {
    /// The property.
    pub key: OwnedKey,
    /// The `spec.kafka.tls` field (camelCase) whose presence makes the operator write it.
    pub tls_field: &'static str,
}

/// The store types written as `PEM` with PEM material from Secrets.
pub const REFUSED_WITH_TLS: [RefusedWith; 2] = [
    RefusedWith {
        key: SSL_TRUSTSTORE_TYPE,
        tls_field: "caCert",
    },
    RefusedWith {
        key: SSL_KEYSTORE_TYPE,
        tls_field: "clientCertSecret",
    },
];

/// Kafka Streams' prefixes that pass a property to one of its clients
/// (`StreamsConfig.consumerPrefix` and friends): `consumer.bootstrap.servers` would reach
/// the consumers as well as `bootstrap.servers`, so each refused key is refused with each.
pub const CLIENT_PREFIXES: [&str; 6] = [
    "consumer.",
    "producer.",
    "admin.",
    "main.consumer.",
    "restore.consumer.",
    "global.consumer.",
];

/// `key` and its client-prefixed spellings, as `spec.config` keys.
pub fn spellings(key: &str) -> Vec<String> {
    std::iter::once(key.to_string())
        .chain(CLIENT_PREFIXES.iter().map(|p| format!("{p}{key}")))
        .collect()
}

/// Endings of property names that carry a credential: Kafka's `*.password` (keystores,
/// truststores, keys), OAuth's `*.secret` and `*.passphrase`, and the Schema Registry
/// clients' `basic.auth.user.info` and `bearer.auth.token`, which serdes read from the same
/// properties. In `spec.config` they would sit in a ConfigMap in plain text.
pub const SECRET_SUFFIXES: [&str; 5] = [
    ".password",
    ".passphrase",
    ".secret",
    ".user.info",
    ".auth.token",
];

/// The admission message for a `spec.config` key with one of [`SECRET_SUFFIXES`].
pub const SECRET_IN_CONFIG: &str = "spec.config keys ending in .password, .passphrase, .secret, .user.info or .auth.token carry credentials, which would be stored in the ConfigMap in plain text: use spec.kafka.sasl or spec.kafka.tls for the Kafka connection; for anything else, set KAFKA_STREAMS_<PROPERTY> in spec.env from a Secret (valueFrom.secretKeyRef)";

/// Whether the `spec.config` key `key` carries a credential: one of [`SECRET_SUFFIXES`], or
/// the JAAS config or PEM key material under any client prefix. Admission refuses them; a
/// spec stored before that rule still never gets them into the ConfigMap.
pub fn carries_credential(key: &str) -> bool {
    SECRET_SUFFIXES.iter().any(|s| key.ends_with(s))
        || [
            SASL_JAAS_CONFIG,
            SSL_TRUSTSTORE_CERTIFICATES,
            SSL_KEYSTORE_CERTIFICATE_CHAIN,
            SSL_KEYSTORE_KEY,
        ]
        .iter()
        .any(|owned| spellings(owned.key).iter().any(|k| k == key))
}

/// The admission message for a `spec.env` credential variable with a literal value.
pub const SECRET_IN_ENV: &str = "a KAFKA_STREAMS_ variable ending in _PASSWORD, _PASSPHRASE, _SECRET, _USER_INFO or _AUTH_TOKEN carries a credential: take it from a Secret with valueFrom.secretKeyRef, not a literal value";

/// Prefix of every environment variable carrying a Kafka Streams property.
pub const ENV_PREFIX: &str = "KAFKA_STREAMS_";

/// The environment variable carrying `property`, as the app's loader reads it back:
/// `client.id` -> `KAFKA_STREAMS_CLIENT_ID`.
pub fn env_name(property: &str) -> String {
    let mut name = String::from(ENV_PREFIX);
    name.extend(property.chars().map(|c| match c {
        'a'..='z' => c.to_ascii_uppercase(),
        'A'..='Z' | '0'..='9' => c,
        _ => '_',
    }));
    name
}

/// The `spec.env` names, lower case, that set `key` or one of its client-prefixed
/// spellings through the loader. Admission compares names without regard to case: a loader
/// that matches case-insensitively (as Spring's relaxed binding does) would read them too.
pub fn env_spellings(key: &str) -> Vec<String> {
    spellings(key)
        .iter()
        .map(|k| env_name(k).to_ascii_lowercase())
        .collect()
}

/// The admission message for `spec.env` names that set the refused property `key`.
pub fn env_message(key: &OwnedKey) -> String {
    format!(
        "{} (in any letter case, or with a client prefix such as KAFKA_STREAMS_CONSUMER_) sets {} in the pod: {}",
        env_name(key.key),
        key.key,
        key.message
    )
}

/// An environment variable the operator sets itself, and what a user who sets it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedEnv {
    /// The variable.
    pub name: &'static str,
    /// The admission message.
    pub message: &'static str,
}

/// The pod's name, from the downward API: `client.id` and `application.server` use it.
pub const POD_NAME: OwnedEnv = OwnedEnv {
    name: "POD_NAME",
    message: "POD_NAME is set by the operator to the pod's name, which client.id, group.instance.id and application.server are made of: use another name",
};
/// The pod's namespace, from the downward API.
pub const POD_NAMESPACE: OwnedEnv = OwnedEnv {
    name: "POD_NAMESPACE",
    message: "POD_NAMESPACE is set by the operator to the pod's namespace, which application.server is made of: use another name",
};
/// The SASL username, from the Secret `spec.kafka.sasl` names.
pub const SASL_USERNAME: OwnedEnv = OwnedEnv {
    name: "KAFKA_SASL_USERNAME",
    message: "KAFKA_SASL_USERNAME is set by the operator from spec.kafka.sasl (secretName, usernameKey): set those instead",
};
/// The SASL password, from the Secret `spec.kafka.sasl` names.
pub const SASL_PASSWORD: OwnedEnv = OwnedEnv {
    name: "KAFKA_SASL_PASSWORD",
    message: "KAFKA_SASL_PASSWORD is set by the operator from spec.kafka.sasl (secretName, passwordKey): set those instead",
};
/// The file the loader reads the shared settings from: the image points it at the
/// operator's `streams.properties`; another file would bypass every owned setting.
pub const CONFIG_FILE: OwnedEnv = OwnedEnv {
    name: "KAFKA_STREAMS_CONFIG_FILE",
    message: "KAFKA_STREAMS_CONFIG_FILE would make the app read another file than the operator's streams.properties (mounted in /etc/kafka-streams): put settings in spec.config",
};

/// Every variable the operator sets itself or that would bypass its settings.
pub const OWNED_ENV: [OwnedEnv; 5] = [
    POD_NAME,
    POD_NAMESPACE,
    SASL_USERNAME,
    SASL_PASSWORD,
    CONFIG_FILE,
];

/// Where `streams.properties` is mounted in the container.
pub const CONFIG_DIR: &str = "/etc/kafka-streams";

/// Label naming the StreamApp a child object belongs to; selects its pods.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label marking objects the operator manages; selects the app's pods.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label naming what the pods run.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Label naming the pods' role.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// A pod label or annotation the operator sets, and what a user who sets it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedMeta {
    /// The label or annotation key.
    pub key: &'static str,
    /// The admission message.
    pub message: &'static str,
}

/// The labels the operator puts on every pod, overwriting a template label of the same key.
pub const POD_LABELS: [OwnedMeta; 4] = [
    OwnedMeta {
        key: INSTANCE_LABEL,
        message: "app.kubernetes.io/instance is set by the operator to the StreamApp's name; the StatefulSet, Service and PodDisruptionBudget select the app's pods by it: remove it from spec.podTemplate.labels",
    },
    OwnedMeta {
        key: MANAGED_BY_LABEL,
        message: "app.kubernetes.io/managed-by is set by the operator; the StatefulSet, Service and PodDisruptionBudget select the app's pods by it: remove it from spec.podTemplate.labels",
    },
    OwnedMeta {
        key: NAME_LABEL,
        message: "app.kubernetes.io/name is set by the operator on every pod (kafka-streams): remove it from spec.podTemplate.labels, or use a label of your own",
    },
    OwnedMeta {
        key: COMPONENT_LABEL,
        message: "app.kubernetes.io/component is set by the operator on every pod (streams-app): remove it from spec.podTemplate.labels, or use a label of your own",
    },
];

/// Pod template annotation carrying the ConfigMap digest.
pub const CONFIG_HASH_ANNOTATION: &str = "kstreams.dev/config-hash";

/// The annotations the operator puts on every pod.
pub const POD_ANNOTATIONS: [OwnedMeta; 1] = [OwnedMeta {
    key: CONFIG_HASH_ANNOTATION,
    message: "kstreams.dev/config-hash is set by the operator to the digest of streams.properties, so a config change rolls the pods: remove it from spec.podTemplate.annotations",
}];

/// The longest StreamApp name: the StatefulSet controller labels each pod
/// `controller-revision-hash: <name>-<hash>` with a hash of up to 10 characters, and a label
/// value has at most 63.
pub const MAX_NAME_LEN: usize = 52;

/// The admission message for a name longer than [`MAX_NAME_LEN`].
pub const NAME_TOO_LONG: &str = "metadata.name may have at most 52 characters: the StatefulSet controller labels each pod controller-revision-hash=<name>-<hash of up to 10 characters>, and a label value has at most 63; choose a shorter name (spec.applicationId can stay longer)";

/// The admission message for a name that is not a DNS label.
pub const NAME_NOT_A_LABEL: &str = "metadata.name must be a DNS label that starts with a letter (lower-case letters, digits and '-', ending with a letter or digit, no '.'): it names the app's headless Service, StatefulSet and pods";

/// A Kafka topic name's limit.
pub const MAX_TOPIC_LEN: usize = 249;

/// The longest suffix Kafka Streams appends to `application.id` for a generated internal
/// topic: `-KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000008-changelog` (61 characters;
/// generated names carry a 10-digit index).
pub const LONGEST_INTERNAL_SUFFIX: usize = 61;

/// The longest `application.id`: every internal topic with a generated name stays within
/// [`MAX_TOPIC_LEN`].
pub const MAX_APPLICATION_ID_LEN: usize = MAX_TOPIC_LEN - LONGEST_INTERNAL_SUFFIX;

/// The admission message for an application id longer than [`MAX_APPLICATION_ID_LEN`].
pub const APPLICATION_ID_TOO_LONG: &str = "spec.applicationId may have at most 188 characters: it prefixes every internal topic, Kafka allows 249 characters in a topic name, and Kafka Streams appends up to 61 (-KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000008-changelog)";

/// The admission message for an application id that is not a topic name prefix.
pub const APPLICATION_ID_CHARS: &str = "spec.applicationId must contain only letters, digits, '.', '_' and '-', and not be '.' or '..': it prefixes the app's internal topics and names its directory under state.dir";

/// The admission message for an input that is not a topic name.
pub const TOPIC_NAME: &str = "spec.topics.inputs must be Kafka topic names: 1-249 letters, digits, '.', '_' and '-', and not '.' or '..'";

/// The admission message for a state mount path `/`.
pub const MOUNT_PATH_ROOT: &str = "spec.state.mountPath must not be /: the state volume would hide the container's file system; use a directory such as /var/lib/kafka-streams";

/// The admission message for a state mount path at or under [`CONFIG_DIR`].
pub const MOUNT_PATH_CONFIG: &str = "spec.state.mountPath must not be /etc/kafka-streams or under it: the operator mounts streams.properties there, read-only; use a directory such as /var/lib/kafka-streams";

/// The admission message for a state mount path with `.`, `..` or empty segments, which
/// would hide where it really is.
pub const MOUNT_PATH_SEGMENTS: &str =
    "spec.state.mountPath must be a plain absolute path: no '.' or '..' segments and no '//'";

/// The admission message for a storage size that is not positive.
pub const STORAGE_POSITIVE: &str =
    "spec.state.storage must be greater than zero: a volume claim of no size is refused";

/// The admission message for a topology key that is not a label key.
pub const TOPOLOGY_KEY: &str = "spec.placement.topologyKey must be a node label key such as kubernetes.io/hostname or topology.kubernetes.io/zone";
