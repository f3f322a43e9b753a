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

/// The Kafka version of the local broker: `KAFKA_VERSION` (as `e2e/lib.sh` reads it), else
/// the default pinned in `e2e/lib.sh`.
pub fn kafka_version() -> String {
    if let Ok(v) = std::env::var("KAFKA_VERSION") {
        return v;
    }
    let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/lib.sh");
    let text = std::fs::read_to_string(&lib).unwrap_or_else(|e| panic!("reading {lib:?}: {e}"));
    text.lines()
        .find_map(|l| l.trim().strip_prefix("KAFKA_VERSION="))
        .map(|v| {
            let v = v.trim_matches('"');
            // `${KAFKA_VERSION:-4.4.0}` or a plain `4.4.0`.
            v.rsplit_once(":-")
                .map_or(v, |(_, d)| d)
                .trim_end_matches('}')
                .to_string()
        })
        .unwrap_or_else(|| panic!("no KAFKA_VERSION= line in {lib:?}"))
}

/// The classpath of the Kafka jars e2e/tools.sh fetched (KSO_CACHE, default
/// ~/.cache/kstreams-operator), for Kafka's own command-line tools.
pub fn kafka_classpath() -> String {
    let cache = std::env::var("KSO_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/kstreams-operator",
            std::env::var("HOME").expect("HOME")
        )
    });
    format!("{cache}/kafka-{}/libs/*", kafka_version())
}

/// Runs one of Kafka's command-line tools (its main `class`) and returns what it printed;
/// panics with its output when it fails.
pub fn kafka_tool(class: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("java")
        .args(["-cp", &kafka_classpath(), class])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {class}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{class} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Kafka's own `kafka-streams-groups --describe --offsets`: lag per partition of a streams
/// group (`None` for "-").
pub fn streams_group_lags(bootstrap: &str, group: &str) -> BTreeMap<(String, i32), Option<i64>> {
    let text = kafka_tool(
        "org.apache.kafka.tools.streams.StreamsGroupCommand",
        &[
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--offsets",
            "--group",
            group,
        ],
    );
    // Columns by header name: the tool's layout differs between versions.
    let mut rows = BTreeMap::new();
    let mut header: Option<Vec<String>> = None;
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.contains(&"PARTITION") && cols.iter().any(|c| c.ends_with("LAG")) {
            header = Some(cols.iter().map(|c| c.to_string()).collect());
            continue;
        }
        let Some(h) = &header else { continue };
        let col = |name: &str| h.iter().position(|c| c == name).and_then(|i| cols.get(i));
        if cols.len() != h.len() || col("GROUP") != Some(&group) {
            continue;
        }
        let lag = col("LAG").or(col("OFFSET-LAG"));
        let (Some(topic), Some(partition), Some(lag)) = (col("TOPIC"), col("PARTITION"), lag)
        else {
            continue;
        };
        let partition: i32 = partition.parse().unwrap_or_else(|_| panic!("row {line:?}"));
        rows.insert((topic.to_string(), partition), lag.parse::<i64>().ok());
    }
    assert!(
        !rows.is_empty(),
        "no rows in StreamsGroupCommand output:\n{text}"
    );
    rows
}

/// Kafka's own `kafka-consumer-groups --describe`: lag per partition (`None` for "-").
pub fn consumer_group_lags(bootstrap: &str, group: &str) -> BTreeMap<(String, i32), Option<i64>> {
    let text = kafka_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &[
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ],
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

/// Polls `group`'s config `key` until the broker answers `want`, and returns. A config the
/// controller took reaches the broker's metadata cache a moment later, so a describe right
/// after an alter may still show the old value.
pub async fn wait_group_config(
    pool: &kstreams_kafka::ClientPool,
    conn: &kstreams_kafka::KafkaConnection,
    group: &str,
    key: &str,
    want: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Polling cadence of the condition, not a wait for time to pass.
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let last = pool.group_configs(conn, group, &[key]).await;
        if let Ok(configs) = &last
            && configs.get(key).map(String::as_str) == Some(want)
        {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {group}'s {key} to read {want}; last: {last:?}");
        }
    }
}
