//! The Kafka side: the broker `KAFKA_BOOTSTRAP` points at, and topics with a per-test prefix.

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
