//! Kafka behind TLS and SASL: the operator reads the CA and the credentials from the app's
//! Secrets and reaches a real SASL_SSL listener (SCRAM-SHA-512 and PLAIN); a wrong password
//! or an untrusted broker certificate is reported as such; the password appears nowhere a
//! user could read it.

use std::process::Command;
use std::time::Duration;

use integration_tests::{Operator, PrivateKafka, TestNamespace, client, condition, is, wait_for};
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

fn app(name: &str, bootstrap: &str, ca_secret: &str, mechanism: &str) -> StreamApp {
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
    tls: {{caCert: {{name: {ca_secret}, key: ca.crt}}}}
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

/// A self-signed CA that signed nothing the broker holds.
fn unrelated_ca() -> String {
    // Its key is thrown away: nothing is ever signed with it.
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=unrelated-ca", "-keyout", "/dev/null"])
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn tls_and_sasl_credentials_from_secrets_reach_kafka_and_failures_are_named() {
    let kafka = PrivateKafka::start_secure(USER, PASSWORD);
    let secure = kafka.secure().clone();
    let client = client().await;
    let ns = TestNamespace::new(&client, "kafka-security").await;
    let _operator = Operator::start(&client, &ns.name).await;
    let secrets = ns.api::<Secret>();
    for s in [
        secret("kafka-ca", &[("ca.crt", &secure.ca_pem)]),
        secret("other-ca", &[("ca.crt", &unrelated_ca())]),
        secret("kafka-user", &[("username", USER), ("password", PASSWORD)]),
    ] {
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let apps = ns.api::<StreamApp>();
    for a in [
        app("scram", &secure.bootstrap, "kafka-ca", "SCRAM-SHA-512"),
        app("plain", &secure.bootstrap, "kafka-ca", "PLAIN"),
        app("untrusted", &secure.bootstrap, "other-ca", "SCRAM-SHA-512"),
    ] {
        apps.create(&PostParams::default(), &a).await.unwrap();
    }

    // 1. The right CA and credentials: reachable, over SCRAM and over PLAIN. The kwok pods
    //    run nothing, so the group the check read has no member of theirs: Ready waits on
    //    membership, no longer on Kafka.
    let membership = |a: &StreamApp| {
        condition(a, "Processing")
            .is_some_and(|(_, r, _)| r == "MembersJoining" || r == "MembersMissing")
    };
    for name in ["scram", "plain"] {
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

    // 5. Neither password anywhere a user reads: status, Events, ConfigMaps, StatefulSets.
    let mut visible =
        serde_json::to_string(&apps.list(&ListParams::default()).await.unwrap()).unwrap();
    visible += &serde_json::to_string(
        &ns.api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap(),
    )
    .unwrap();
    visible += &serde_json::to_string(
        &ns.api::<ConfigMap>()
            .list(&ListParams::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let statefulsets = ns
        .api::<StatefulSet>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(statefulsets.items.len(), 3);
    visible += &serde_json::to_string(&statefulsets).unwrap();
    for pw in [PASSWORD, wrong] {
        assert!(
            !visible.contains(pw),
            "a password is visible outside its Secret"
        );
    }
    // The pods get it by reference to the Secret.
    assert!(
        visible.contains("\"secretKeyRef\""),
        "no Secret reference in the pod template"
    );
}
