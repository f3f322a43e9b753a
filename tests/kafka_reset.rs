//! The Kafka half of an application reset against the real broker: committed input offsets
//! moved to each target exactly once per reset, refused while the group has a member, the
//! checks made before a reset, and the deletion of the app's own internal topics only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::Kafka;
use kstreams_kafka::{
    ClientPool, GroupMembers, KafkaConnection, KafkaError, OffsetTarget, OffsetsReset, PoolConfig,
    ResetRefusal, reset_marker,
};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const HOUR: i64 = 3_600_000;
/// Records of the first batch per partition; the second batch, an hour later, has `SECOND`.
const FIRST: [i64; 3] = [2, 3, 4];
const SECOND: i64 = 5;
const T: Duration = Duration::from_secs(10);
/// A join of a fresh group (the broker's initial rebalance delay is 0).
const JOIN: Duration = Duration::from_secs(60);

type Committed = BTreeMap<(String, i32), (i64, String)>;

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

fn pool_for(kafka: &Kafka) -> (ClientPool, KafkaConnection) {
    (
        ClientPool::new(PoolConfig::default()),
        KafkaConnection::plaintext(&kafka.bootstrap),
    )
}

/// Writes `count` records to `partition` of `topic`, stamped `ts`, `ts + 1`, ...
async fn produce(producer: &FutureProducer, topic: &str, partition: i32, ts: i64, count: i64) {
    for i in 0..count {
        let key = format!("{partition}-{i}");
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .timestamp(ts + i)
                    .key(&key)
                    .payload("v"),
                T,
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}-{partition}: {e}"));
    }
}

/// (low, high) watermarks of every partition of `topic`.
fn watermarks(kafka: &Kafka, topic: &str, partitions: i32) -> BTreeMap<i32, (i64, i64)> {
    let c: BaseConsumer = Kafka::config(&kafka.bootstrap).create().expect("consumer");
    (0..partitions)
        .map(|p| {
            let w = c
                .fetch_watermarks(topic, p, T)
                .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"));
            (p, w)
        })
        .collect()
}

/// What `committed_with_metadata` should return: `offset(p)` with `marker` on each partition.
fn expected(topic: &str, marker: &str, offset: impl Fn(i32) -> i64) -> Committed {
    (0..3)
        .map(|p| ((topic.to_string(), p), (offset(p), marker.to_string())))
        .collect()
}

/// Commits `offset` for `group` on partition 0 of `topic`, as a plain consumer outside the
/// group does (this creates the group when it does not exist).
fn commit_for(kafka: &Kafka, group: &str, topic: &str, offset: i64) {
    let c: BaseConsumer = Kafka::config(&kafka.bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("partition");
    c.commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("committing for group {group}: {e}"));
}

/// Input topic `in` with 3 partitions: `FIRST[p]` records stamped two hours ago, then
/// `SECOND` records stamped an hour later; returns the topic and the first batch's time.
async fn input_with_two_batches(kafka: &Kafka) -> (String, i64) {
    let input = kafka.create_topic("in", 3, &[]).await;
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().expect("producer");
    let first = now_ms() - 2 * HOUR;
    for (p, n) in (0..).zip(FIRST) {
        produce(&producer, &input, p, first, n).await;
        produce(&producer, &input, p, first + HOUR, SECOND).await;
    }
    (input, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_move_to_each_target_once_per_reset() {
    let kafka = Kafka::new("kreset-offsets");
    let (input, first) = input_with_two_batches(&kafka).await;
    let group = format!("{}.app", kafka.prefix);
    let inputs = [input.clone()];
    let (pool, conn) = pool_for(&kafka);
    // Records before offset 1 of partition 2 deleted: Earliest is the log start, not 0.
    let mut cut = TopicPartitionList::new();
    cut.add_partition_offset(&input, 2, Offset::Offset(1))
        .expect("partition");
    kafka
        .admin
        .delete_records(&cut, &AdminOptions::new())
        .await
        .expect("delete records");
    let marks = watermarks(&kafka, &input, 3);
    assert_eq!(marks[&2].0, 1, "log start of partition 2: {marks:?}");
    assert_eq!(
        pool.group_members(&conn, &group).await.expect("describe"),
        None,
        "no group before the first reset"
    );
    let committed = async || {
        pool.committed_with_metadata(&conn, &group, &inputs)
            .await
            .expect("committed offsets")
    };
    let applied = |already_applied| OffsetsReset {
        partitions: 3,
        topics: 1,
        already_applied,
    };

    // Earliest: the log start of each partition.
    let r = pool
        .reset_offsets(&conn, &group, &inputs, OffsetTarget::Earliest, "r1")
        .await
        .expect("reset to earliest");
    assert_eq!(r, applied(false));
    let m1 = reset_marker("r1");
    assert_eq!(committed().await, expected(&input, &m1, |p| marks[&p].0));
    // The commit created the group, Empty.
    assert_eq!(
        pool.group_members(&conn, &group).await.expect("describe"),
        Some(GroupMembers {
            state: "Empty".into(),
            members: 0
        })
    );
    let again = pool
        .reset_offsets(&conn, &group, &inputs, OffsetTarget::Earliest, "r1")
        .await
        .expect("same reset again");
    assert_eq!(again, applied(true));

    // Latest: the high watermarks.
    let m2 = reset_marker("r2");
    let r = pool
        .reset_offsets(&conn, &group, &inputs, OffsetTarget::Latest, "r2")
        .await
        .expect("reset to latest");
    assert_eq!(r, applied(false));
    let at_latest = expected(&input, &m2, |p| marks[&p].1);
    assert_eq!(committed().await, at_latest);
    assert_eq!(marks[&0].1, FIRST[0] + SECOND);
    // The same reset resumed after more records: nothing is committed again, so the
    // offsets stay at the high watermarks of the first attempt.
    let producer: FutureProducer = Kafka::config(&kafka.bootstrap).create().expect("producer");
    for p in 0..3 {
        produce(&producer, &input, p, now_ms(), 1).await;
    }
    let resumed = pool
        .reset_offsets(&conn, &group, &inputs, OffsetTarget::Latest, "r2")
        .await
        .expect("resumed reset");
    assert_eq!(resumed, applied(true));
    assert_eq!(committed().await, at_latest);

    // A time between the batches: the first record of the second batch.
    let between = first + HOUR / 2;
    let r = pool
        .reset_offsets(
            &conn,
            &group,
            &inputs,
            OffsetTarget::Timestamp(between),
            "r3",
        )
        .await
        .expect("reset to a timestamp");
    assert_eq!(r, applied(false));
    let m3 = reset_marker("r3");
    assert_eq!(
        committed().await,
        expected(&input, &m3, |p| FIRST[p as usize])
    );
    // A time after every record: the high watermarks (the extra record included).
    pool.reset_offsets(
        &conn,
        &group,
        &inputs,
        OffsetTarget::Timestamp(now_ms() + HOUR),
        "r4",
    )
    .await
    .expect("reset to a future timestamp");
    let m4 = reset_marker("r4");
    assert_eq!(
        committed().await,
        expected(&input, &m4, |p| marks[&p].1 + 1)
    );
}

/// A member that subscribed and got its assignment; it never commits.
fn join(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = Kafka::config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + JOIN;
    while c.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no assignment within {JOIN:?}");
        if let Some(Err(e)) = c.poll(Duration::from_millis(100)) {
            panic!("member of {group}: {e}");
        }
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_a_member_is_not_reset() {
    let kafka = Kafka::new("kreset-member");
    let (input, _) = input_with_two_batches(&kafka).await;
    let group = format!("{}.app", kafka.prefix);
    let inputs = [input.clone()];
    let (pool, conn) = pool_for(&kafka);
    pool.reset_offsets(&conn, &group, &inputs, OffsetTarget::Latest, "r0")
        .await
        .expect("first reset, no group yet");
    let before = pool
        .committed_with_metadata(&conn, &group, &inputs)
        .await
        .expect("committed");
    assert_eq!(before.len(), 3);

    let (bootstrap, g, t) = (kafka.bootstrap.clone(), group.clone(), input.clone());
    let member = tokio::task::spawn_blocking(move || join(&bootstrap, &g, &t))
        .await
        .expect("joining");
    assert_eq!(
        pool.group_members(&conn, &group).await.expect("describe"),
        Some(GroupMembers {
            state: "Stable".into(),
            members: 1
        })
    );
    let err = pool
        .reset_offsets(&conn, &group, &inputs, OffsetTarget::Earliest, "r1")
        .await
        .expect_err("a member is joined");
    assert_eq!(
        err,
        KafkaError::GroupNotEmpty {
            group: group.clone(),
            members: 1
        }
    );
    assert_eq!(err.reason(), "KafkaGroupNotEmpty");
    assert!(err.to_string().contains("scale the app to 0"), "{err}");
    assert_eq!(
        pool.committed_with_metadata(&conn, &group, &inputs)
            .await
            .expect("committed"),
        before,
        "nothing committed"
    );

    // The member leaves (LeaveGroup on close): the group turns Empty and the reset runs.
    tokio::task::spawn_blocking(move || drop(member))
        .await
        .expect("closing");
    let deadline = Instant::now() + JOIN;
    loop {
        let g = pool.group_members(&conn, &group).await.expect("describe");
        if g.as_ref().is_some_and(GroupMembers::accepts_reset) {
            break;
        }
        assert!(Instant::now() < deadline, "group still {g:?}");
        tokio::task::yield_now().await;
    }
    let r = pool
        .reset_offsets(&conn, &group, &inputs, OffsetTarget::Earliest, "r1")
        .await
        .expect("reset once the group is empty");
    assert!(!r.already_applied);
    let marker = reset_marker("r1");
    assert_eq!(
        pool.committed_with_metadata(&conn, &group, &inputs)
            .await
            .expect("committed"),
        expected(&input, &marker, |_| 0)
    );
}

#[tokio::test]
async fn checks_refuse_missing_inputs_and_timestamps_before_retention() {
    let kafka = Kafka::new("kreset-check");
    let (pool, conn) = pool_for(&kafka);
    let plain = kafka.create_topic("in", 1, &[]).await;
    let short = kafka
        .create_topic("short", 1, &[("retention.ms", "3600000")])
        .await;
    let forever = kafka
        .create_topic("forever", 1, &[("retention.ms", "-1")])
        .await;
    let table = kafka
        .create_topic(
            "table",
            1,
            &[("cleanup.policy", "compact"), ("retention.ms", "3600000")],
        )
        .await;
    let absent = format!("{}.absent", kafka.prefix);
    let now = now_ms();
    let check = |inputs: Vec<String>, target| {
        let (pool, conn) = (&pool, &conn);
        async move {
            pool.check_reset(conn, &inputs, target, now)
                .await
                .expect("check")
        }
    };

    let missing = check(
        vec![plain.clone(), absent.clone()],
        Some(OffsetTarget::Earliest),
    )
    .await;
    assert_eq!(missing, Some(ResetRefusal::MissingInputs(vec![absent])));
    let two_hours_ago = Some(OffsetTarget::Timestamp(now - 2 * HOUR));
    let refused = check(
        vec![plain.clone(), short.clone(), forever.clone()],
        two_hours_ago,
    )
    .await
    .expect("refused");
    assert_eq!(
        refused,
        ResetRefusal::BeforeRetention {
            topic: short.clone(),
            retention_ms: HOUR
        }
    );
    assert!(refused.to_string().contains("keeps records for 1h only"));
    let half_an_hour_ago = Some(OffsetTarget::Timestamp(now - HOUR / 2));
    assert_eq!(
        check(vec![plain.clone(), short.clone()], half_an_hour_ago).await,
        None
    );
    assert_eq!(
        check(vec![short.clone()], Some(OffsetTarget::Earliest)).await,
        None
    );
    assert_eq!(check(vec![short.clone()], None).await, None);
    // Infinite retention, and compaction alone, keep records of any age.
    let a_month_ago = Some(OffsetTarget::Timestamp(now - 720 * HOUR));
    assert_eq!(check(vec![forever, table], a_month_ago).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_apps_own_internal_topics_are_deleted() {
    let kafka = Kafka::new("kreset-topics");
    let (pool, conn) = pool_for(&kafka);
    let compact = [("cleanup.policy", "compact")];
    let store = kafka.create_topic("app-store-changelog", 2, &compact).await;
    let repartition = kafka.create_topic("app-x-repartition", 2, &[]).await;
    let theirs = kafka
        .create_topic("app-other-store-changelog", 1, &compact)
        .await;
    let input = kafka.create_topic("app-input", 1, &[]).await;
    let app = format!("{}.app", kafka.prefix);
    // The other app's group exists, as a Streams app's does once it has committed.
    commit_for(&kafka, &format!("{app}-other"), &theirs, 0);
    // The app's own commit on its repartition topic, to see what deletion does to it.
    commit_for(&kafka, &app, &repartition, 0);

    let own_commit = BTreeMap::from([((repartition.clone(), 0), (0, String::new()))]);
    assert_eq!(
        pool.committed_with_metadata(&conn, &app, std::slice::from_ref(&repartition))
            .await
            .expect("committed"),
        own_commit
    );

    let found = pool
        .internal_topic_names(&conn, &app)
        .await
        .expect("internal topics");
    assert_eq!(found, [store.clone(), repartition.clone()]);
    let deleted = pool
        .delete_topics(&conn, &found)
        .await
        .expect("delete topics");
    assert_eq!(deleted, found);
    assert_eq!(
        pool.internal_topic_names(&conn, &app)
            .await
            .expect("internal topics"),
        Vec::<String>::new()
    );
    assert_eq!(
        pool.delete_topics(&conn, &found)
            .await
            .expect("deleting again"),
        Vec::<String>::new(),
        "already gone: nothing to delete"
    );
    let c: BaseConsumer = Kafka::config(&kafka.bootstrap).create().expect("consumer");
    let md = c.fetch_metadata(None, T).expect("metadata");
    let names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert!(
        names.contains(&theirs.as_str()),
        "the other app's topic stays"
    );
    assert!(names.contains(&input.as_str()), "the input stays");
    assert!(!names.contains(&store.as_str()));
    assert!(!names.contains(&repartition.as_str()));

    // The broker dropped the group's offsets of the deleted topic: the topic created again
    // under its name, as the app does on its next start, has no commit of the group.
    kafka.create_topic("app-x-repartition", 2, &[]).await;
    let deadline = Instant::now() + T;
    loop {
        let left = pool
            .committed_with_metadata(&conn, &app, std::slice::from_ref(&repartition))
            .await
            .expect("committed");
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "offsets kept: {left:?}");
        tokio::task::yield_now().await;
    }
}
