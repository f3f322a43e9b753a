//! Kafka behind TLS and SASL: the operator reads the CA, a client key and the credentials
//! from the app's Secrets and reaches a real SASL_SSL listener (SCRAM-SHA-512 and PLAIN); a
//! wrong password or an untrusted broker certificate is reported as such; no password, key
//! or resolved JAAS config appears anywhere a user could read it: the status, Events,
//! ConfigMaps, StatefulSets, and the operator's own log at debug level (every crate:
//! kstreams, kube, rustls; the test checks each logged at debug) and `/metrics`, of the real `kstreams-operator run` process.

use std::process::Command;
use std::time::Duration;

use integration_tests::{
    OperatorProcess, PrivateKafka, TestNamespace, client, condition, install_crd, is, wait_for,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kstreams_operator::crd::StreamApp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};

const LONG: Duration = Duration::from_secs(90);
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-alice-pw";

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// An app on the SASL_SSL listener, trusting `ca_secret`, with a client certificate from
/// `client_cert` when given.
fn app(
    name: &str,
    bootstrap: &str,
    ca_secret: &str,
    mechanism: &str,
    client_cert: Option<&str>,
) -> StreamApp {
    let client_cert = client_cert
        .map(|s| format!(", clientCertSecret: {s}"))
        .unwrap_or_default();
    serde_yaml::from_str(&format!(
        r#"
apiVersion: kstreams.dev/v1alpha1
kind: StreamApp
metadata: {{name: {name}}}
spec:
  image: example/app:1
  replicas: 1
  kafka:
    bootstrapServers: "{bootstrap}"
    tls: {{caCert: {{name: {ca_secret}, key: ca.crt}}{client_cert}}}
    sasl: {{mechanism: {mechanism}, secretName: kafka-user}}
"#
    ))
    .expect("a valid StreamApp")
}

/// Changes the password in the app's credentials Secret, as a user rotating it would.
async fn set_password(secrets: &kube::Api<Secret>, password: &str) {
    let patch = serde_json::json!({"stringData": {"password": password}});
    secrets
        .patch("kafka-user", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// A self-signed certificate for `cn` and its private key, as PEM.
fn self_signed(cn: &str) -> (String, String) {
    let dir = std::env::temp_dir().join(integration_tests::unique("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("tls.key");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (String::from_utf8(out.stdout).unwrap(), key_pem)
}

/// A self-signed CA that signed nothing the broker holds.
fn unrelated_ca() -> String {
    // Its key is thrown away: nothing is ever signed with it.
    self_signed("unrelated-ca").0
}

/// `value` base64-encoded, as a Secret's `data` carries it in JSON.
fn base64(value: &str) -> String {
    serde_json::to_value(ByteString(value.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// What must appear nowhere outside the Secrets: each password, raw and base64-encoded as in a
/// Secret; the client key's PEM body line by line (a line survives any JSON escaping of the
/// newlines) and its PEM base64-encoded; the JAAS config resolved with the credentials.
fn secret_material(passwords: &[&str], key_pem: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pw in passwords {
        out.push((format!("password {pw:?}"), pw.to_string()));
        out.push((format!("password {pw:?} in base64"), base64(pw)));
    }
    let body: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .collect();
    assert!(body.len() > 10, "a 2048-bit key has many PEM lines");
    for (i, line) in body.iter().enumerate() {
        out.push((format!("private key PEM line {}", i + 2), line.to_string()));
    }
    out.push((
        "private key PEM in base64".into(),
        base64(key_pem).chars().take(60).collect(),
    ));
    for quote in ["\"", "\\\""] {
        out.push((
            "the JAAS config with the username filled in".into(),
            format!("username={quote}{USER}{quote}"),
        ));
    }
    out
}

/// Fails naming every piece of `material` found in `text`, and where.
fn assert_absent(place: &str, text: &str, material: &[(String, String)]) {
    let found: Vec<&str> = material
        .iter()
        .filter(|(_, needle)| text.contains(needle.as_str()))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(found.is_empty(), "{place} shows {found:?}");
}

#[tokio::test]
async fn tls_and_sasl_credentials_from_secrets_reach_kafka_and_failures_are_named() {
    let kafka = PrivateKafka::start_secure(USER, PASSWORD);
    let secure = kafka.secure().clone();
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "kafka-security").await;
    // The operator as a Deployment runs it, its whole log at debug level: the kstreams
    // crates, kube and its HTTP stack, rustls, and librdkafka's log (target `librdkafka`).
    let operator = OperatorProcess::start(
        "op-security",
        &[
            "--namespaces",
            &ns.name,
            "--kafka-refresh-seconds",
            "5",
            "--log-level",
            "debug",
        ],
    );
    operator.wait_ready(LONG).await;
    let (client_cert, client_key) = self_signed("kstreams-client");
    let secrets = ns.api::<Secret>();
    for s in [
        secret("kafka-ca", &[("ca.crt", &secure.ca_pem)]),
        secret("other-ca", &[("ca.crt", &unrelated_ca())]),
        secret("kafka-user", &[("username", USER), ("password", PASSWORD)]),
        secret(
            "kafka-client",
            &[("tls.crt", &client_cert), ("tls.key", &client_key)],
        ),
    ] {
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let apps = ns.api::<StreamApp>();
    let bootstrap = &secure.bootstrap;
    for a in [
        app("scram", bootstrap, "kafka-ca", "SCRAM-SHA-512", None),
        app("plain", bootstrap, "kafka-ca", "PLAIN", None),
        app("untrusted", bootstrap, "other-ca", "SCRAM-SHA-512", None),
        // The broker asks for no client certificate; the key still goes into the operator's
        // clients, which is what the scan below is about.
        app(
            "client-key",
            bootstrap,
            "kafka-ca",
            "SCRAM-SHA-256",
            Some("kafka-client"),
        ),
    ] {
        apps.create(&PostParams::default(), &a).await.unwrap();
    }

    // 1. The right CA and credentials: reachable, over SCRAM and over PLAIN, with and without
    //    a client key. The kwok pods run nothing, so the group the check read has no member
    //    of theirs: Ready waits on membership, no longer on Kafka.
    let membership = |a: &StreamApp| {
        condition(a, "Processing")
            .is_some_and(|(_, r, _)| r == "MembersJoining" || r == "MembersMissing")
    };
    for name in ["scram", "plain", "client-key"] {
        let a = wait_for(
            &apps,
            name,
            "KafkaReachable=True and Processing judged from the group",
            LONG,
            |a| is(a, "KafkaReachable", "True") && membership(a),
        )
        .await;
        let (status, reason, _) = condition(&a, "Ready").unwrap();
        assert_eq!(
            status, "False",
            "{name}: pods that run nothing are not Ready"
        );
        assert!(
            reason.starts_with("Members"),
            "{name}: Ready reason {reason}"
        );
    }

    // 2. A broker certificate the CA did not sign: a TLS failure, named as such.
    let a = wait_for(&apps, "untrusted", "KafkaReachable=False", LONG, |a| {
        is(a, "KafkaReachable", "False")
    })
    .await;
    let (_, reason, message) = condition(&a, "KafkaReachable").unwrap();
    println!("untrusted CA: {reason}: {message}");
    assert_eq!(reason, "KafkaAuthFailed", "{message}");
    assert!(message.contains(&secure.bootstrap), "{message}");

    // 3. A wrong password: an authentication failure, without the password in the message.
    let wrong = "not-the-password";
    set_password(&secrets, wrong).await;
    let a = wait_for(
        &apps,
        "scram",
        "KafkaReachable=False after the password changed",
        LONG,
        |a| is(a, "KafkaReachable", "False"),
    )
    .await;
    let (_, reason, message) = condition(&a, "KafkaReachable").unwrap();
    println!("wrong password: {reason}: {message}");
    assert_eq!(reason, "KafkaAuthFailed", "{message}");
    assert!(
        !message.contains(wrong) && !message.contains(PASSWORD),
        "{message}"
    );

    // 4. The password fixed in the Secret: reachable again, no operator restart.
    set_password(&secrets, PASSWORD).await;
    wait_for(&apps, "scram", "KafkaReachable=True again", LONG, |a| {
        is(a, "KafkaReachable", "True")
    })
    .await;

    // 5. No secret anywhere a user reads: status, Events, ConfigMaps, StatefulSets.
    let material = secret_material(&[PASSWORD, wrong], &client_key);
    let listed = ListParams::default();
    let streamapps = apps.list(&listed).await.unwrap();
    let events = ns.api::<Event>().list(&listed).await.unwrap();
    let configmaps = ns.api::<ConfigMap>().list(&listed).await.unwrap();
    let statefulsets = ns.api::<StatefulSet>().list(&listed).await.unwrap();
    assert_eq!(statefulsets.items.len(), 4);
    for name in ["scram", "plain", "untrusted", "client-key"] {
        let cm = format!("{name}-config");
        assert!(
            configmaps
                .items
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(cm.as_str())),
            "no ConfigMap {cm}"
        );
    }
    // The scan finds the material where it belongs: in the Secrets (base64-encoded).
    let in_secrets = json(&secrets.list(&listed).await.unwrap());
    for (what, needle) in &material {
        if what.ends_with("in base64") && !what.contains(wrong) {
            assert!(in_secrets.contains(needle.as_str()), "{what} not found");
        }
    }
    assert_absent("the StreamApps", &json(&streamapps), &material);
    assert_absent("the Events", &json(&events), &material);
    assert_absent("the ConfigMaps", &json(&configmaps), &material);
    assert_absent("the StatefulSets", &json(&statefulsets), &material);
    assert!(
        !json(&configmaps).contains("sasl.jaas.config"),
        "the JAAS config is in a ConfigMap"
    );
    // The pods get the secrets by reference to the Secrets, the JAAS config from them.
    let sts = json(&statefulsets);
    assert!(
        sts.contains("\"secretKeyRef\"") && sts.contains("\"kafka-client\""),
        "no Secret reference in the pod template"
    );
    assert!(
        sts.contains(r#"password=\"$(KAFKA_SASL_PASSWORD)\""#),
        "the JAAS config reads the password from the pod's environment"
    );

    // 6. Nor in the operator's own output. The log is at debug level and saw every path the
    //    credentials took: checks that passed, failed authentication, failed TLS.
    let (code, metrics) = operator.get("/metrics").await.expect("metrics answer");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("kstreams_kafka_check_duration_seconds_count"),
        "{metrics}"
    );
    assert_absent("/metrics", &metrics, &material);
    let log = operator.log_text();
    // `<time> DEBUG <spans>: <target>: <message>`.
    let debug_from = |target: &str| {
        let target = format!(": {target}::");
        log.lines()
            .any(|l| l.contains(" DEBUG ") && l.contains(&target))
    };
    // The kstreams crates, the Kubernetes client and the TLS stack all logged at debug, and
    // the failures (wrong password, untrusted CA) went through the log too.
    for target in [
        "kstreams_kafka",
        "kstreams_operator",
        "kube_client",
        "rustls",
    ] {
        assert!(
            debug_from(target),
            "no debug line from {target} in {}",
            operator.log.display()
        );
    }
    let rejected = format!("Kafka at {} rejected the connection", secure.bootstrap);
    assert!(
        log.contains(&rejected),
        "{rejected:?} not in {}",
        operator.log.display()
    );
    println!(
        "scanned {} log lines ({} bytes) and {} bytes of /metrics",
        log.lines().count(),
        log.len(),
        metrics.len()
    );
    assert_absent(
        &format!("the operator's log {}", operator.log.display()),
        &log,
        &material,
    );
}

/// The JSON text of a listed object, as the scans read it.
fn json<T: serde::Serialize>(listed: &T) -> String {
    serde_json::to_string(listed).expect("a listed object serializes")
}
