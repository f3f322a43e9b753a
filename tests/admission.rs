//! What the kube-apiserver answers a StreamApp, from the CRD's schema and CEL rules, and what
//! the operator's re-check of a stored spec (`reconcile::validation`) finds in the same spec.
//!
//! [`rows`] is the table: a JSON merge patch on a good StreamApp, and the answer. A refused
//! row names the field as the apiserver reports it and a piece of the message, which must
//! say what to use instead; the re-check must find the same field with the same message, so
//! an object stored before a rule existed is reported as the apiserver would refuse it.
//! Accepted rows keep the rules from being broader than they mean to be. Add a case by
//! adding a line.

use std::time::Duration;

use integration_tests::{TestNamespace, client, install_crd, unique};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kstreams_operator::crd::StreamApp;
use kstreams_operator::reconcile::validation;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Api, CustomResourceExt};
use serde_json::{Value, json};

/// What admission answers a row.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Refused, naming `field` and saying `says`; the re-check of a stored spec finds the
    /// same field with a message saying the same.
    Refused {
        field: &'static str,
        says: &'static str,
    },
    /// Refused by a schema rule the CRD has had from the start (types, ranges, lengths),
    /// which the re-check does not repeat.
    RefusedBySchema {
        field: &'static str,
        says: &'static str,
    },
    /// Created; the re-check finds nothing.
    Accepted,
}

use Answer::{Accepted, Refused, RefusedBySchema};

const fn refused(field: &'static str, says: &'static str) -> Answer {
    Refused { field, says }
}

const fn schema(field: &'static str, says: &'static str) -> Answer {
    RefusedBySchema { field, says }
}

fn config(key: &str) -> Value {
    json!({"spec": {"config": {key: "x"}}})
}

fn env(var: Value) -> Value {
    json!({"spec": {"env": [var]}})
}

fn env_value(name: &str) -> Value {
    env(json!({"name": name, "value": "x"}))
}

fn from_secret(name: &str) -> Value {
    env(json!({"name": name, "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}))
}

fn with_tls(tls: Value, rest: Value) -> Value {
    let mut patch = json!({"spec": {"kafka": {"tls": tls}}});
    json_merge(&mut patch, rest);
    patch
}

fn name(n: &str) -> Value {
    json!({"metadata": {"name": n}})
}

/// The table. One line per case.
#[rustfmt::skip]
fn rows() -> Vec<(Value, Answer)> {
    let a = |n: usize| "a".repeat(n);
    vec![
        // Types and ranges.
        (json!({"spec": {"replicas": -1}}), schema("spec.replicas", "greater than or equal to 0")),
        (json!({"spec": {"standbyReplicas": -1}}), schema("spec.standbyReplicas", "greater than or equal to 0")),
        (json!({"spec": {"image": ""}}), schema("spec.image", "at least 1 chars long")),
        (json!({"spec": {"kafka": {"bootstrapServers": "kafka"}}}), schema("spec.kafka.bootstrapServers", "must be host:port")),
        (json!({"spec": {"interactiveQueries": {"port": 0}}}), schema("spec.interactiveQueries.port", "greater than or equal to 1")),
        (json!({"spec": {"interactiveQueries": {"port": 65536}}}), schema("spec.interactiveQueries.port", "less than or equal to 65535")),
        (json!({"spec": {"interactiveQueries": {"port": 65535}}}), Accepted),
        // Owned properties in spec.config, also with Kafka Streams' client prefixes.
        (config("application.id"), refused("spec.config", "use spec.applicationId")),
        (config("bootstrap.servers"), refused("spec.config", "use spec.kafka.bootstrapServers")),
        (config("consumer.bootstrap.servers"), refused("spec.config", "use spec.kafka.bootstrapServers")),
        (config("state.dir"), refused("spec.config", "use spec.state.mountPath")),
        (config("num.standby.replicas"), refused("spec.config", "use spec.standbyReplicas")),
        (config("application.server"), refused("spec.config", "use spec.interactiveQueries.port")),
        (config("client.id"), refused("spec.config", "client.id is set by the operator to the pod name")),
        (config("group.instance.id"), refused("spec.config", "use spec.staticMembership")),
        (config("main.consumer.group.instance.id"), refused("spec.config", "use spec.staticMembership")),
        (config("client.tag.zone"), refused("spec.config", "set KAFKA_STREAMS_CLIENT_TAG_ZONE per pod in spec.env")),
        (config("group.protocol"), refused("spec.config", "use spec.kafka.groupProtocol")),
        (config("security.protocol"), refused("spec.config", "from spec.kafka.tls and spec.kafka.sasl")),
        (config("admin.security.protocol"), refused("spec.config", "from spec.kafka.tls and spec.kafka.sasl")),
        (config("sasl.mechanism"), refused("spec.config", "use spec.kafka.sasl.mechanism")),
        // Kafka property names are case-sensitive: another case is another, unknown, property.
        (config("Application.Id"), Accepted),
        (config("rack.aware.assignment.tags"), Accepted),
        (config("commit.interval.ms"), Accepted),
        // Credentials in spec.config.
        (config("sasl.jaas.config"), refused("spec.config", "use spec.kafka.sasl (secretName, usernameKey, passwordKey)")),
        (config("producer.sasl.jaas.config"), refused("spec.config", "use spec.kafka.sasl")),
        (config("ssl.truststore.certificates"), refused("spec.config", "use spec.kafka.tls.caCert")),
        (config("ssl.keystore.certificate.chain"), refused("spec.config", "use spec.kafka.tls.clientCertSecret")),
        (config("ssl.keystore.key"), refused("spec.config", "use spec.kafka.tls.clientCertSecret")),
        (config("ssl.truststore.password"), refused("spec.config", "would be stored in the ConfigMap in plain text")),
        (config("ssl.keystore.password"), refused("spec.config", "would be stored in the ConfigMap in plain text")),
        (config("ssl.key.password"), refused("spec.config", "from a Secret (valueFrom.secretKeyRef)")),
        (config("sasl.oauthbearer.client.credentials.client.secret"), refused("spec.config", "carry credentials")),
        (config("schema.registry.basic.auth.user.info"), refused("spec.config", "carry credentials")),
        (config("ssl.endpoint.identification.algorithm"), Accepted),
        // Store types the operator writes as PEM, only while it writes PEM material.
        (with_tls(json!({"caCert": {"name": "ca", "key": "ca.crt"}}), config("ssl.truststore.type")), refused("spec", "ssl.truststore.type is set by the operator to PEM")),
        (with_tls(json!({"clientCertSecret": "tls"}), env_value("KAFKA_STREAMS_SSL_KEYSTORE_TYPE")), refused("spec", "ssl.keystore.type is set by the operator to PEM")),
        (with_tls(json!({}), config("ssl.truststore.type")), Accepted),
        // Owned properties through the environment, in any letter case.
        (env_value("KAFKA_STREAMS_APPLICATION_ID"), refused("spec.env[0].name", "use spec.applicationId")),
        (env_value("kafka_streams_bootstrap_servers"), refused("spec.env[0].name", "use spec.kafka.bootstrapServers")),
        (env_value("Kafka_Streams_State_Dir"), refused("spec.env[0].name", "use spec.state.mountPath")),
        (env_value("KAFKA_STREAMS_NUM_STANDBY_REPLICAS"), refused("spec.env[0].name", "use spec.standbyReplicas")),
        (env_value("KAFKA_STREAMS_CLIENT_ID"), refused("spec.env[0].name", "set by the operator to the pod name")),
        (env_value("KAFKA_STREAMS_GROUP_INSTANCE_ID"), refused("spec.env[0].name", "use spec.staticMembership")),
        (env_value("KAFKA_STREAMS_APPLICATION_SERVER"), refused("spec.env[0].name", "use spec.interactiveQueries.port")),
        (env_value("KAFKA_STREAMS_GROUP_PROTOCOL"), refused("spec.env[0].name", "use spec.kafka.groupProtocol")),
        (env_value("KAFKA_STREAMS_SECURITY_PROTOCOL"), refused("spec.env[0].name", "from spec.kafka.tls and spec.kafka.sasl")),
        (env_value("KAFKA_STREAMS_SASL_MECHANISM"), refused("spec.env[0].name", "use spec.kafka.sasl.mechanism")),
        (env_value("KAFKA_STREAMS_CONSUMER_BOOTSTRAP_SERVERS"), refused("spec.env[0].name", "use spec.kafka.bootstrapServers")),
        (env_value("KAFKA_STREAMS_RACK_AWARE_ASSIGNMENT_TAGS"), refused("spec.env[0].name", "set it in spec.config")),
        (env_value("KAFKA_STREAMS_CONFIG_FILE"), refused("spec.env[0].name", "put settings in spec.config")),
        (env_value("POD_NAME"), refused("spec.env[0].name", "POD_NAME is set by the operator")),
        (env_value("pod_namespace"), refused("spec.env[0].name", "POD_NAMESPACE is set by the operator")),
        (env_value("KAFKA_SASL_USERNAME"), refused("spec.env[0].name", "from spec.kafka.sasl (secretName, usernameKey)")),
        (from_secret("KAFKA_SASL_PASSWORD"), refused("spec.env[0].name", "from spec.kafka.sasl (secretName, passwordKey)")),
        (env_value("KAFKA_STREAMS_COMMIT_INTERVAL_MS"), Accepted),
        // The documented way to give each pod its zone.
        (env(json!({"name": "KAFKA_STREAMS_CLIENT_TAG_ZONE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['zone']"}}})), Accepted),
        // Credentials through the environment: from a Secret, never literal; what the operator
        // sets from spec.kafka not even from a Secret.
        (env_value("KAFKA_STREAMS_SSL_KEY_PASSWORD"), refused("spec.env[0]", "take it from a Secret with valueFrom.secretKeyRef")),
        (env(json!({"name": "KAFKA_STREAMS_SSL_KEYSTORE_PASSWORD", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}})), refused("spec.env[0]", "take it from a Secret")),
        (env_value("kafka_streams_producer_sasl_oauthbearer_client_credentials_client_secret"), refused("spec.env[0]", "take it from a Secret")),
        (from_secret("KAFKA_STREAMS_SSL_KEY_PASSWORD"), Accepted),
        (env_value("KAFKA_STREAMS_SASL_JAAS_CONFIG"), refused("spec.env[0].name", "use spec.kafka.sasl")),
        (from_secret("KAFKA_STREAMS_SASL_JAAS_CONFIG"), refused("spec.env[0].name", "use spec.kafka.sasl")),
        (from_secret("KAFKA_STREAMS_SSL_TRUSTSTORE_CERTIFICATES"), refused("spec.env[0].name", "use spec.kafka.tls.caCert")),
        (env_value("KAFKA_STREAMS_SSL_KEYSTORE_KEY"), refused("spec.env[0].name", "use spec.kafka.tls.clientCertSecret")),
        // Not a Kafka Streams property: the app's own business.
        (env_value("DB_PASSWORD"), Accepted),
        // The pod labels the selectors use, and the operator's other pod metadata.
        (json!({"spec": {"podTemplate": {"labels": {"app.kubernetes.io/instance": "x"}}}}), refused("spec.podTemplate.labels", "select the app's pods by it")),
        (json!({"spec": {"podTemplate": {"labels": {"app.kubernetes.io/managed-by": "x"}}}}), refused("spec.podTemplate.labels", "select the app's pods by it")),
        (json!({"spec": {"podTemplate": {"labels": {"app.kubernetes.io/name": "x"}}}}), refused("spec.podTemplate.labels", "remove it from spec.podTemplate.labels")),
        (json!({"spec": {"podTemplate": {"labels": {"app.kubernetes.io/component": "x"}}}}), refused("spec.podTemplate.labels", "remove it from spec.podTemplate.labels")),
        (json!({"spec": {"podTemplate": {"annotations": {"kstreams.dev/config-hash": "x"}}}}), refused("spec.podTemplate.annotations", "remove it from spec.podTemplate.annotations")),
        (json!({"spec": {"podTemplate": {"labels": {"team": "payments", "app.kubernetes.io/part-of": "shop"}}}}), Accepted),
        // Names that would fail later: the pods' revision label, the Service.
        (name(&a(53)), refused("metadata.name", "metadata.name may have at most 52 characters")),
        (name(&a(52)), Accepted),
        (name("word.count"), refused("metadata.name", "metadata.name must be a DNS label")),
        (name("1wordcount"), refused("metadata.name", "metadata.name must be a DNS label that starts with a letter")),
        (name("wordcount-2"), Accepted),
        // Application ids and topics Kafka would refuse.
        (json!({"spec": {"applicationId": a(189)}}), refused("spec.applicationId", "at most 188 characters")),
        (json!({"spec": {"applicationId": a(188)}}), Accepted),
        (json!({"spec": {"applicationId": ".."}}), refused("spec.applicationId", "not be '.' or '..'")),
        (json!({"spec": {"applicationId": "word count"}}), refused("spec.applicationId", "only letters, digits")),
        (json!({"spec": {"topics": {"inputs": ["ok", "with space"]}}}), refused("spec.topics.inputs[1]", "must be Kafka topic names")),
        (json!({"spec": {"topics": {"inputs": [".."]}}}), refused("spec.topics.inputs[0]", "not '.' or '..'")),
        (json!({"spec": {"topics": {"inputs": [a(250)]}}}), schema("spec.topics.inputs[0]", "may not be more than 249")),
        (json!({"spec": {"topics": {"inputs": [a(249), "Text_Lines.v2-x"]}}}), Accepted),
        // Paths and sizes.
        (json!({"spec": {"state": {"mountPath": "data"}}}), refused("spec.state.mountPath", "must be an absolute path")),
        (json!({"spec": {"state": {"mountPath": "/"}}}), refused("spec.state.mountPath", "must not be /")),
        (json!({"spec": {"state": {"mountPath": "/etc/kafka-streams"}}}), refused("spec.state.mountPath", "must not be /etc/kafka-streams or under it")),
        (json!({"spec": {"state": {"mountPath": "/etc/kafka-streams/state"}}}), refused("spec.state.mountPath", "must not be /etc/kafka-streams or under it")),
        (json!({"spec": {"state": {"mountPath": "/data/../etc/kafka-streams"}}}), refused("spec.state.mountPath", "no '.' or '..' segments")),
        (json!({"spec": {"state": {"mountPath": "/etc/kafka-streams-state/"}}}), Accepted),
        (json!({"spec": {"state": {"storage": "0"}}}), refused("spec.state.storage", "must be greater than zero")),
        (json!({"spec": {"state": {"storage": "-1Gi"}}}), refused("spec.state.storage", "must be greater than zero")),
        (json!({"spec": {"state": {"storage": "1GB"}}}), refused("spec.state.storage", "must be a Kubernetes quantity")),
        (json!({"spec": {"placement": {"topologyKey": "not a label"}}}), refused("spec.placement.topologyKey", "must be a node label key")),
        (json!({"spec": {"placement": {"topologyKey": "topology.kubernetes.io/zone"}}}), Accepted),
    ]
}

/// The seed's word-count app as a StreamApp.
fn wordcount(name: &str) -> StreamApp {
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".into());
    serde_yaml::from_str(&format!(
        r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: {name}}}
spec:
  image: kstreams-examples/wordcount:0.1.0
  replicas: 2
  kafka: {{bootstrapServers: "{bootstrap}"}}
  topics: {{inputs: [text-lines]}}
  state: {{storage: 1Gi, mountPath: /data/count-store}}
  placement: {{antiAffinity: Required}}
"#
    ))
    .expect("the word-count app")
}

fn json_merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// `wordcount(name)` with `patch` merged in, as the apiserver receives it.
fn patched(name: &str, patch: &Value) -> Value {
    let mut obj = serde_json::to_value(wordcount(name)).expect("serializable");
    json_merge(&mut obj, patch.clone());
    obj
}

#[tokio::test]
async fn every_row_of_the_table_gets_its_answer_at_admission_and_from_the_re_check() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "admission").await;
    // Raw JSON, so that a row may set what the Rust types would not serialize.
    let ar = ApiResource::erase::<StreamApp>(&());
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let mut failures = Vec::new();
    for (i, (patch, answer)) in rows().into_iter().enumerate() {
        let obj = patched(&format!("row-{i}"), &patch);
        let created = apps
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj.clone()).expect("a DynamicObject"),
            )
            .await;
        let app: Option<StreamApp> = serde_json::from_value(obj).ok();
        let rechecked = app.as_ref().map(validation::problems);
        // The answers, for a reader of `--nocapture`.
        match &created {
            Ok(_) => eprintln!("{patch}\n  -> accepted"),
            Err(e) => eprintln!("{patch}\n  -> {e}"),
        }
        match (answer, created) {
            (Accepted, Ok(_)) => match rechecked {
                Some(found) if found.is_empty() => {}
                other => failures.push(format!(
                    "{patch}: accepted, but the re-check found {other:?}"
                )),
            },
            (Accepted, Err(e)) => {
                failures.push(format!("{patch}: must be accepted, was refused: {e}"))
            }
            (Refused { field, says } | RefusedBySchema { field, says }, Err(e)) => {
                let e = e.to_string();
                if !(e.contains(field) && e.contains(says)) {
                    failures.push(format!("{patch}: expected {field:?} and {says:?} in: {e}"));
                }
                if let Refused { .. } = answer {
                    let found = rechecked.unwrap_or_default();
                    if !found
                        .iter()
                        .any(|p| p.field == field && p.message.contains(says))
                    {
                        failures.push(format!(
                            "{patch}: the re-check must find {field}: ...{says}..., found {found:?}"
                        ));
                    }
                }
            }
            (_, Ok(_)) => failures.push(format!("{patch}: must be refused, was accepted")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows answered wrong:\n{}",
        failures.len(),
        rows().len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn transition_rules_refuse_a_changed_application_id_and_shrunk_storage() {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "admission-update").await;
    let apps = ns.api::<StreamApp>();
    let mut good = wordcount("good");
    good.spec.state.storage = "2Gi".into();
    apps.create(&PostParams::default(), &good)
        .await
        .expect("the good app is created");
    for (patch, expected) in [
        (
            json!({"spec": {"applicationId": "other"}}),
            "spec.applicationId is immutable",
        ),
        (
            json!({"spec": {"state": {"storage": "1Gi"}}}),
            "never shrink",
        ),
    ] {
        let err = apps
            .patch("good", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect_err(&format!("{patch} must be refused"));
        assert!(
            err.to_string().contains(expected),
            "{patch}: expected '{expected}' in: {err}"
        );
    }
    // Growing storage and keeping the id are fine.
    apps.patch(
        "good",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"applicationId": "good", "state": {"storage": "3Gi"}}})),
    )
    .await
    .expect("growing storage with the same id is accepted");
}

/// A CRD of its own group, deleted when dropped (also on panic).
struct ScratchCrd {
    name: String,
}

impl Drop for ScratchCrd {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for CRD cleanup");
            rt.block_on(async {
                if let Ok(client) = kube::Client::try_default().await {
                    let _ = Api::<CustomResourceDefinition>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await;
                }
            });
        })
        .join();
    }
}

/// The StreamApp CRD under `group`, with the rules of `spec.env` entries or without them
/// (as an operator before them installed it).
fn crd_in(group: &str, env_rules: bool) -> Value {
    let mut crd = serde_json::to_value(StreamApp::crd()).expect("serializable CRD");
    crd["metadata"]["name"] = json!(format!("streamapps.{group}"));
    crd["spec"]["group"] = json!(group);
    if !env_rules {
        let items = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["env"]["items"];
        items
            .as_object_mut()
            .expect("env items")
            .remove("x-kubernetes-validations");
    }
    crd
}

/// The shared CRD is the current one for every test on the cluster, so this test stores its
/// "old" object under a CRD of its own: the same schema in a group of its own, first without
/// the rules of `spec.env` entries, then with them.
#[tokio::test]
async fn a_spec_stored_before_a_rule_is_kept_on_other_writes_and_reported() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "ratchet").await;
    let group = format!("{}.kstreams.test", unique("ratchet"));
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let _cleanup = ScratchCrd {
        name: format!("streamapps.{group}"),
    };
    let apply = |crd: Value| {
        let crds = crds.clone();
        async move {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            crds.patch(
                &name,
                &PatchParams::apply("kstreams-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
            tokio::time::timeout(
                Duration::from_secs(30),
                kube::runtime::wait::await_condition(
                    crds,
                    &name,
                    kube::runtime::wait::conditions::is_crd_established(),
                ),
            )
            .await
            .expect("CRD established within 30s")
            .expect("watching the CRD");
        }
    };
    apply(crd_in(&group, false)).await;
    let gvk = GroupVersionKind::gvk(&group, "v1alpha1", "StreamApp");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "streamapps");
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let object = |name: &str| {
        let mut obj = patched(name, &env_value("KAFKA_STREAMS_NUM_STANDBY_REPLICAS"));
        obj["apiVersion"] = json!(format!("{group}/v1alpha1"));
        serde_json::from_value::<DynamicObject>(obj).expect("a DynamicObject")
    };
    // A new CRD may take a moment to serve; the create is what waits for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = apps.create(&PostParams::default(), &object("legacy")).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the env override stored without the rule: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The operator upgrades the CRD. The apiserver takes the new schema in a moment: a new
    // object with the same env is refused once it has.
    apply(crd_in(&group, true)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refusal = loop {
        match apps.create(&PostParams::default(), &object("new")).await {
            Err(e) => break e.to_string(),
            Ok(_) => {
                let _ = apps.delete("new", &DeleteParams::default()).await;
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the upgraded CRD never refused the env override"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(
        refusal.contains("spec.env[0].name") && refusal.contains("use spec.standbyReplicas"),
        "{refusal}"
    );

    // The stored object stays writable where it does not touch the offending field: a spec
    // edit elsewhere, a label, and the status the operator writes.
    apps.patch(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("an unrelated spec edit of the stored object is accepted");
    apps.patch(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .expect("a label on the stored object is accepted");
    apps.patch_status(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 2}})),
    )
    .await
    .expect("a status write to the stored object is accepted");
    // Touching the list re-checks it: the old entry must go.
    let err = apps
        .patch(
            "legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"env": [
                {"name": "KAFKA_STREAMS_NUM_STANDBY_REPLICAS", "value": "x"},
                {"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx1g"},
            ]}})),
        )
        .await
        .expect_err("an edit of spec.env keeping the override is refused");
    assert!(err.to_string().contains("spec.env[0].name"), "{err}");

    // What the operator reads back, it reports.
    let stored = apps.get("legacy").await.expect("the stored object");
    let app: StreamApp = serde_json::from_value(serde_json::to_value(&stored).expect("json"))
        .expect("the stored object as a StreamApp");
    assert_eq!(app.spec.replicas, 3);
    let problem = validation::problem(&app).expect("the stored override is reported");
    assert_eq!(problem.reason, validation::REASON);
    assert!(
        problem
            .message
            .contains("spec.env[0].name: KAFKA_STREAMS_NUM_STANDBY_REPLICAS")
            && problem.message.contains("use spec.standbyReplicas"),
        "{}",
        problem.message
    );
}
