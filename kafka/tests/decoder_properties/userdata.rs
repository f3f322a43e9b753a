//! Generated Kafka Streams member data: values of every version of `SubscriptionInfo`,
//! `AssignmentInfo` and the consumer protocol's wrappers, encoded as Kafka lays them out, each
//! with the value the decoder must return for it. The layouts are those of
//! `SubscriptionInfoData.json`, `AssignmentInfo.encode()` and `ConsumerProtocol*.json`; the
//! real fixtures (`tests/fixtures/`) are what anchors them to Kafka's own encoders.

use kstreams_kafka::userdata::{
    ConsumerAssignment, ConsumerSubscription, LATEST_OFFSET, StreamsAssignment,
    StreamsSubscription, TaskId, TopicPartitions, UNKNOWN_OFFSET_SUM,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// A big-endian writer of the encodings the member data use.
#[derive(Default)]
pub struct W(pub Vec<u8>);

impl W {
    fn i8(&mut self, v: i8) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend(b);
        self
    }
    fn count(&mut self, n: usize) -> &mut Self {
        self.i32(n as i32)
    }
    /// Kafka `string` (int16 length), null as -1.
    fn string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.i16(s.len() as i16).raw(s.as_bytes()),
            None => self.i16(-1),
        }
    }
    /// Kafka `bytes` (int32 length), null as -1.
    fn bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => self.count(b.len()).raw(b),
            None => self.i32(-1),
        }
    }
    /// `DataOutputStream.writeUTF` of a name without NUL or supplementary characters, where
    /// modified UTF-8 equals UTF-8.
    fn utf(&mut self, s: &str) -> &mut Self {
        self.raw(&(s.len() as u16).to_be_bytes()).raw(s.as_bytes())
    }
    /// `DataOutputStream.writeChars`: UTF-16 code units.
    fn chars(&mut self, s: &str) -> &mut Self {
        let units: Vec<u16> = s.encode_utf16().collect();
        self.count(units.len());
        for u in units {
            self.raw(&u.to_be_bytes());
        }
        self
    }
}

/// Names as topics, hosts and topologies have them, with a few non-ASCII characters.
pub fn name() -> impl Strategy<Value = String> {
    let chars = select(vec!['a', 'b', 'z', '0', '9', '-', '.', '_', 'é', '日']);
    vec(chars, 0..10).prop_map(|c| c.into_iter().collect())
}

/// Any `n` from the range as a `usize`, for collection sizes.
fn small(max: usize) -> std::ops::RangeInclusive<usize> {
    0..=max
}

fn task() -> impl Strategy<Value = (i32, i32)> {
    (-1i32..40, -1i32..40)
}

/// An encoded `SubscriptionInfo` and what the decoder must make of it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The encoding.
    pub bytes: Vec<u8>,
    /// The decoded value.
    pub expect: StreamsSubscription,
}

/// A `SubscriptionInfo` of any known version (1-11).
pub fn subscription_info() -> impl Strategy<Value = Subscription> {
    (
        1i32..=11,
        any::<i32>(),
        any::<[u8; 16]>(),
        (vec(task(), small(4)), vec(task(), small(4))),
        option::of(name()),
        vec((task(), any::<i64>(), option::of(name())), small(6)),
        (any::<i8>(), any::<i32>()),
        vec((name(), name()), small(3)),
    )
        .prop_map(
            |(version, latest, pid, (prev, standby), end_point, sums, (unique, error), tags)| {
                encode_subscription(
                    version, latest, pid, &prev, &standby, end_point, &sums, unique, error, &tags,
                )
            },
        )
}

#[allow(clippy::too_many_arguments)]
fn encode_subscription(
    version: i32,
    latest: i32,
    pid: [u8; 16],
    prev: &[(i32, i32)],
    standby: &[(i32, i32)],
    end_point: Option<String>,
    sums: &[((i32, i32), i64, Option<String>)],
    unique: i8,
    error: i32,
    tags: &[(String, String)],
) -> Subscription {
    let mut w = W::default();
    let mut expect = StreamsSubscription {
        version,
        latest_supported_version: -1,
        process_id: uuid(&pid),
        ..Default::default()
    };
    w.i32(version);
    if version >= 3 {
        w.i32(latest);
        expect.latest_supported_version = latest;
    }
    w.raw(&pid);
    if version < 7 {
        for list in [prev, standby] {
            w.count(list.len());
            for (s, p) in list {
                w.i32(*s).i32(*p);
            }
        }
        for (s, p) in prev {
            expect
                .task_offset_sums
                .insert(TaskId::new(*s, *p), LATEST_OFFSET);
        }
        for (s, p) in standby {
            expect
                .task_offset_sums
                .entry(TaskId::new(*s, *p))
                .or_insert(UNKNOWN_OFFSET_SUM);
        }
    }
    if version >= 2 {
        let ep = end_point.unwrap_or_default();
        w.bytes(Some(ep.as_bytes()));
        expect.user_end_point = Some(ep).filter(|e| !e.is_empty());
    }
    if (7..=9).contains(&version) {
        // Per subtopology, in order of first appearance, its (partition, sum) entries.
        let mut groups: Vec<(i32, Vec<(i32, i64)>)> = Vec::new();
        for ((s, p), sum, _) in sums {
            match groups.iter_mut().find(|(g, _)| g == s) {
                Some((_, entries)) => entries.push((*p, *sum)),
                None => groups.push((*s, vec![(*p, *sum)])),
            }
        }
        w.count(groups.len());
        for (s, entries) in &groups {
            w.i32(*s).count(entries.len());
            for (p, sum) in entries {
                w.i32(*p).i64(*sum);
                expect.task_offset_sums.insert(TaskId::new(*s, *p), *sum);
            }
        }
    }
    if version >= 10 {
        w.count(sums.len());
        for ((s, p), sum, named) in sums {
            w.i32(*s).i32(*p).i64(*sum).string(named.as_deref());
            expect.task_offset_sums.insert(
                TaskId {
                    subtopology: *s,
                    partition: *p,
                    named_topology: named.clone().filter(|n| !n.is_empty()),
                },
                *sum,
            );
        }
    }
    if version >= 8 {
        w.i8(unique);
        expect.unique_field = Some(unique);
    }
    if version >= 9 {
        w.i32(error);
        expect.error_code = Some(error);
    }
    if version >= 11 {
        w.count(tags.len());
        for (k, v) in tags {
            w.bytes(Some(k.as_bytes())).bytes(Some(v.as_bytes()));
            expect.client_tags.insert(k.clone(), v.clone());
        }
    }
    Subscription { bytes: w.0, expect }
}

fn uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An encoded `AssignmentInfo` and what the decoder must make of it.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The encoding.
    pub bytes: Vec<u8>,
    /// The decoded value.
    pub expect: StreamsAssignment,
}

/// Partitions by host: (host, port, (topic, partition)s).
pub type HostPartitions = Vec<(String, i32, Vec<(String, i32)>)>;

/// An `AssignmentInfo` of any known version (1-11).
pub fn assignment_info() -> impl Strategy<Value = Assignment> {
    let topic_partitions = || vec((name(), any::<i32>()), small(3));
    (
        1i32..=11,
        any::<i32>(),
        vec((task(), name()), small(6)),
        vec(((task(), name()), topic_partitions()), small(3)),
        vec((name(), any::<i32>(), topic_partitions()), small(3)),
        (any::<i32>(), any::<i64>()),
    )
        .prop_map(|(version, common, active, standby, hosts, (error, next))| {
            encode_assignment(version, common, &active, &standby, &hosts, error, next)
        })
}

/// Encodes an `AssignmentInfo` of `version` with these tasks (`(task, named topology)`,
/// standbys with their partitions) and partitions-by-host.
#[allow(clippy::type_complexity)]
pub fn encode_assignment(
    version: i32,
    common: i32,
    active: &[((i32, i32), String)],
    standby: &[(((i32, i32), String), Vec<(String, i32)>)],
    hosts: &HostPartitions,
    error: i32,
    next: i64,
) -> Assignment {
    let mut w = W::default();
    let mut expect = StreamsAssignment {
        version,
        ..Default::default()
    };
    let task = |w: &mut W, (s, p): (i32, i32), named: &str| -> TaskId {
        w.i32(s).i32(p);
        let mut t = TaskId::new(s, p);
        if version >= 10 {
            w.chars(named);
            t.named_topology = Some(named.to_string()).filter(|n| !n.is_empty());
        }
        t
    };
    w.i32(version);
    if version >= 3 {
        w.i32(common);
        expect.commonly_supported_version = Some(common);
    }
    w.count(active.len());
    for (t, named) in active {
        expect.active_tasks.push(task(&mut w, *t, named));
    }
    w.count(standby.len());
    for ((t, named), partitions) in standby {
        expect.standby_tasks.push(task(&mut w, *t, named));
        w.count(partitions.len());
        for (topic, p) in partitions {
            w.utf(topic).i32(*p);
        }
    }
    // The partitions-by-host maps: parsed past, not kept.
    let topics: Vec<&String> = hosts
        .iter()
        .flat_map(|(_, _, tps)| tps.iter().map(|(t, _)| t))
        .collect();
    match version {
        1 => {}
        2..=4 => {
            w.count(hosts.len());
            for (host, port, tps) in hosts {
                w.utf(host).i32(*port).count(tps.len());
                for (topic, p) in tps {
                    w.utf(topic).i32(*p);
                }
            }
        }
        _ => {
            w.count(topics.len());
            for (i, topic) in topics.iter().enumerate() {
                w.i32(i as i32).utf(topic);
            }
            let maps = if version == 5 { 1 } else { 2 };
            for _ in 0..maps {
                w.count(hosts.len());
                let mut index = 0;
                for (host, port, tps) in hosts {
                    w.utf(host).i32(*port).count(tps.len());
                    for (_, p) in tps {
                        w.i32(index).i32(*p);
                        index += 1;
                    }
                }
            }
        }
    }
    if version >= 4 {
        w.i32(error);
        expect.error_code = error;
    }
    if version >= 7 {
        w.i64(next);
        expect.next_rebalance_ms = Some(next);
    }
    Assignment { bytes: w.0, expect }
}

fn topic_partitions() -> impl Strategy<Value = Vec<TopicPartitions>> {
    vec(
        (name(), vec(any::<i32>(), small(4)))
            .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions }),
        small(4),
    )
}

fn write_topic_partitions(w: &mut W, tps: &[TopicPartitions]) {
    w.count(tps.len());
    for tp in tps {
        w.string(Some(&tp.topic)).count(tp.partitions.len());
        for p in &tp.partitions {
            w.i32(*p);
        }
    }
}

/// An encoded `ConsumerProtocolSubscription` and its decoded value.
#[derive(Debug, Clone)]
pub struct Wrapped<T> {
    /// The encoding.
    pub bytes: Vec<u8>,
    /// The decoded value.
    pub expect: T,
}

/// A `ConsumerProtocolSubscription` of version 0-3, or of a future version (which appends
/// fields the decoder skips), around `user_data`.
pub fn consumer_subscription(
    user_data: impl Strategy<Value = Option<Vec<u8>>>,
) -> impl Strategy<Value = Wrapped<ConsumerSubscription>> {
    (
        prop_oneof![4 => 0i16..=3, 1 => 4i16..=9],
        vec(name(), small(4)),
        user_data,
        topic_partitions(),
        any::<i32>(),
        option::of(name()),
        vec(any::<u8>(), small(6)),
    )
        .prop_map(
            |(version, topics, user_data, owned, generation, rack, future)| {
                encode_consumer_subscription(
                    version, topics, user_data, owned, generation, rack, &future,
                )
            },
        )
}

/// Encodes a consumer subscription; `future` are the bytes a newer version appends.
pub fn encode_consumer_subscription(
    version: i16,
    topics: Vec<String>,
    user_data: Option<Vec<u8>>,
    owned: Vec<TopicPartitions>,
    generation: i32,
    rack: Option<String>,
    future: &[u8],
) -> Wrapped<ConsumerSubscription> {
    let mut w = W::default();
    w.i16(version).count(topics.len());
    for t in &topics {
        w.string(Some(t));
    }
    w.bytes(user_data.as_deref());
    let mut expect = ConsumerSubscription {
        version,
        topics,
        user_data,
        owned_partitions: Vec::new(),
        generation_id: None,
        rack_id: None,
    };
    if version >= 1 {
        write_topic_partitions(&mut w, &owned);
        expect.owned_partitions = owned;
    }
    if version >= 2 {
        w.i32(generation);
        expect.generation_id = Some(generation);
    }
    if version >= 3 {
        w.string(rack.as_deref());
        expect.rack_id = rack;
    }
    if version > 3 {
        w.raw(future);
    }
    Wrapped { bytes: w.0, expect }
}

/// A `ConsumerProtocolAssignment` of any version around `user_data`.
pub fn consumer_assignment(
    user_data: impl Strategy<Value = Option<Vec<u8>>>,
) -> impl Strategy<Value = Wrapped<ConsumerAssignment>> {
    (0i16..=9, topic_partitions(), user_data).prop_map(|(version, partitions, user_data)| {
        encode_consumer_assignment(version, partitions, user_data)
    })
}

/// Encodes a consumer assignment.
pub fn encode_consumer_assignment(
    version: i16,
    partitions: Vec<TopicPartitions>,
    user_data: Option<Vec<u8>>,
) -> Wrapped<ConsumerAssignment> {
    let mut w = W::default();
    w.i16(version);
    write_topic_partitions(&mut w, &partitions);
    w.bytes(user_data.as_deref());
    Wrapped {
        bytes: w.0,
        expect: ConsumerAssignment {
            version,
            partitions,
            user_data,
        },
    }
}
