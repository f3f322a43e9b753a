//! The Kafka side: the broker `KAFKA_BOOTSTRAP` points at, and topics with a per-test prefix.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// A connection to the test broker, naming every topic it creates `<prefix>.<name>`.
pub struct Kafka {
    /// `host:port` of the broker.
    pub bootstrap: String,
    /// Unique to the test: keeps tests and runs from seeing each other's topics.
    pub prefix: String,
    /// Admin client.
    pub admin: AdminClient<DefaultClientContext>,
}

impl Kafka {
    /// Connects to `KAFKA_BOOTSTRAP`; panics with the way to fix it if unset.
    pub fn new(test: &str) -> Self {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
            panic!(
                "KAFKA_BOOTSTRAP is not set: these tests need the local broker. Run them with \
                 `make test`, or `make up` then `eval \"$(e2e/kafka.sh env)\"`"
            )
        });
        let admin = Self::config(&bootstrap)
            .create()
            .unwrap_or_else(|e| panic!("admin client for {bootstrap}: {e}"));
        Self {
            prefix: crate::unique(test),
            bootstrap,
            admin,
        }
    }

    /// Client settings for the test broker.
    pub fn config(bootstrap: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap);
        c
    }

    /// Creates `<prefix>.<name>` with `partitions` and the given topic configs; returns its
    /// full name.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> String {
        let full = format!("{}.{}", self.prefix, name);
        let mut topic = NewTopic::new(&full, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = self
            .admin
            .create_topics(&[topic], &opts)
            .await
            .unwrap_or_else(|e| panic!("creating topic {full}: {e}"));
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
        }
        full
    }
}

/// Kafka's own `kafka-consumer-groups --describe`: lag per partition (`None` for "-").
pub fn consumer_group_lags(bootstrap: &str, group: &str) -> BTreeMap<(String, i32), Option<i64>> {
    // The jars e2e/tools.sh fetched (KSO_CACHE, default ~/.cache/kstreams-operator).
    let cache = std::env::var("KSO_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/kstreams-operator",
            std::env::var("HOME").expect("HOME")
        )
    });
    let libs = format!("{cache}/kafka-4.3.1/libs/*");
    let out = std::process::Command::new("java")
        .args([
            "-cp",
            &libs,
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        ])
        .args([
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ])
        .output()
        .expect("running ConsumerGroupCommand");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ConsumerGroupCommand failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 6 && cols[0] == group {
            let partition: i32 = cols[2].parse().unwrap_or_else(|_| panic!("row {line:?}"));
            rows.insert(
                (cols[1].to_string(), partition),
                cols[5].parse::<i64>().ok(),
            );
        }
    }
    assert!(
        !rows.is_empty(),
        "no rows in ConsumerGroupCommand output:\n{text}"
    );
    rows
}
