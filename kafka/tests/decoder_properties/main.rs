//! Property tests of every decoder of bytes that come from the network: the consumer
//! protocol's wrappers, Kafka Streams' subscription and assignment userdata, a group member
//! decoded from both, every generated Kafka message at every version, the response framing,
//! the SCRAM exchange and the streams-group snapshot built from a decoded answer.
//!
//! Inputs are the real fixtures (what Kafka Streams' own encoders wrote, DescribeGroups
//! answers captured from a real app), values generated and encoded, and mutations of both:
//! bit flips, overwrites, truncations, insertions, removals, duplicated regions, and length
//! or count fields replaced by extreme values. For every input two properties hold: the
//! decoder returns (a value or an error) without panicking, and the heap it holds at its peak
//! stays within a small multiple of the input's length, so no length or count read from the
//! wire makes it allocate for bytes that are not there. Unmutated inputs must decode to what
//! was encoded.
//!
//! Budget: `PROPTEST_CASES` cases per property (default [`DEFAULT_CASES`], 14 s for the whole
//! file in a debug build on two cores), scaled by the factor in each property's
//! `run` call: 4 for the generated messages, which cover 30 message types, a tenth for SCRAM,
//! whose key derivation costs milliseconds, a twentieth for members of thousands of
//! partitions. `PROPTEST_RNG_SEED` replays a run: every property prints the seed it used with
//! its counts (`-- --nocapture` shows them). A failure is saved, shrunk, under
//! `kafka/proptest-regressions/decoder_properties/` and replayed first by later runs.

mod mutate;
mod userdata;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::Instant;

use kstreams_kafka::decoder_testing as wire;
use kstreams_kafka::group::{MemberSnapshot, decode_member};
use kstreams_kafka::userdata::{
    AssignmentInfo, MAX_TOPIC_NAME, SubscriptionInfo, TopicPartitions, decode_assignment_info,
    decode_consumer_assignment, decode_consumer_subscription, decode_subscription_info,
};
use mutate::{Mutation, apply, mutations};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 10_000;

/// Heap a decoder may hold whatever its input: the first node of a map, an error message.
const HEAP_SLACK: u64 = 2 * 1024;

/// Heap per input byte for the decoders of the wire formats. A count is checked against the
/// least bytes its elements take, and no element is more than 32 times that in memory (the
/// crate's `no_struct_is_much_larger_in_memory_than_its_least_encoding`: a compact string is
/// 1 byte on the wire and a 24-byte `String`); past that only the bytes themselves.
const WIRE_PER_BYTE: u64 = 32;

/// Heap per input byte for a decoded member, which names the topic of each partition it
/// lists, twice (assigned partitions, active tasks): two 32-byte `(String, i32)`s and a name
/// of up to Kafka's 249 bytes for each 4-byte partition number.
const VIEW_PER_BYTE: u64 = (2 * 32 + MAX_TOPIC_NAME as u64) / 4 + WIRE_PER_BYTE;

// ---- budget and runner ----

struct Budget {
    cases: u32,
    seed: u64,
}

fn budget() -> &'static Budget {
    static B: OnceLock<Budget> = OnceLock::new();
    B.get_or_init(|| {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Budget {
            cases: env("PROPTEST_CASES")
                .map_or(DEFAULT_CASES, |n| n.clamp(1, u32::MAX.into()) as u32),
            seed: env("PROPTEST_RNG_SEED").unwrap_or_else(random_seed),
        }
    })
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // The standard library's hasher keys are random per process: entropy without a crate.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// What one property saw.
#[derive(Default)]
struct Tally {
    measured: u64,
    decoded: u64,
    refused: u64,
    peak: u64,
    peak_input: usize,
    worst_fraction: f64,
    worst_per_byte: f64,
    by_name: BTreeMap<&'static str, [u64; 2]>,
}

impl Tally {
    fn outcome<T, E>(&mut self, name: Option<&'static str>, r: &Result<T, E>) {
        let i = usize::from(r.is_err());
        if i == 0 {
            self.decoded += 1;
        } else {
            self.refused += 1;
        }
        if let Some(n) = name {
            self.by_name.entry(n).or_default()[i] += 1;
        }
    }
}

/// Runs `property` on `scale` times the budget's cases drawn from `strategy`, panicking with
/// the shrunk input on the first failure; prints the counts when all pass.
fn run<S: Strategy>(
    property: &'static str,
    scale: f64,
    strategy: S,
    test: impl Fn(S::Value, &mut Tally) -> Result<(), TestCaseError>,
) {
    let b = budget();
    let cases = ((f64::from(b.cases) * scale).round() as u32).max(1);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(b.seed),
        source_file: Some(file!()),
        test_name: Some(property),
        // One file per property: a saved seed only means something to its own strategy.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(Box::leak(
            format!(
                "{}/proptest-regressions/decoder_properties/{property}.txt",
                env!("CARGO_MANIFEST_DIR")
            )
            .into_boxed_str(),
        )))),
        ..Config::default()
    };
    let tally = RefCell::new(Tally::default());
    let ran = RefCell::new(0u64);
    let start = Instant::now();
    let result = TestRunner::new(config).run(&strategy, |v| {
        *ran.borrow_mut() += 1;
        test(v, &mut tally.borrow_mut())
    });
    let seed = b.seed;
    if let Err(e) = result {
        panic!("{property} (PROPTEST_RNG_SEED={seed}): {e}");
    }
    let t = tally.into_inner();
    let heap = if t.measured > 0 {
        format!(
            "; largest peak heap {} bytes (for a {}-byte input), at most {:.0}% of the bound, \
             {:.1} bytes per input byte past the slack",
            t.peak,
            t.peak_input,
            t.worst_fraction * 100.0,
            t.worst_per_byte
        )
    } else {
        String::new()
    };
    eprintln!(
        "{property}: {} cases in {:.1}s (PROPTEST_RNG_SEED={seed}), 0 panics: {} decoded, {} \
         refused{heap}",
        ran.into_inner(),
        start.elapsed().as_secs_f64(),
        t.decoded,
        t.refused,
    );
    for (name, [ok, err]) in &t.by_name {
        eprintln!("  {name}: {ok} decoded, {err} refused");
    }
}

/// Runs `decode` of an `input_len`-byte input. The case fails if it panics, or if the heap
/// held at its peak passes `per_byte` bytes per input byte plus [`HEAP_SLACK`].
fn bounded<T>(
    input_len: usize,
    per_byte: u64,
    tally: &mut Tally,
    decode: impl FnOnce() -> T,
) -> Result<T, TestCaseError> {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(catch_unwind(AssertUnwindSafe(decode))));
    let value = match out {
        Some(Ok(v)) => v,
        Some(Err(p)) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(TestCaseError::fail(format!("the decoder panicked: {msg}")));
        }
        None => return Err(TestCaseError::fail("the decoder did not run")),
    };
    let bound = per_byte * input_len as u64 + HEAP_SLACK;
    let peak = info.bytes_max;
    tally.measured += 1;
    if peak > tally.peak {
        tally.peak = peak;
        tally.peak_input = input_len;
    }
    tally.worst_fraction = tally.worst_fraction.max(peak as f64 / bound as f64);
    let per_byte_used = peak.saturating_sub(HEAP_SLACK) as f64 / input_len.max(1) as f64;
    tally.worst_per_byte = tally.worst_per_byte.max(per_byte_used);
    prop_assert!(
        peak <= bound,
        "the decoder held {peak} bytes of heap for a {input_len}-byte input (bound {bound})"
    );
    Ok(value)
}

// ---- fixtures ----

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

/// The member data of the two word-count instances of Kafka Streams 4.3.1 and 4.4.0:
/// (`ConsumerProtocolSubscription`, `ConsumerProtocolAssignment`) pairs.
fn captured_members() -> Vec<(Vec<u8>, Vec<u8>)> {
    macro_rules! fixture {
        ($name:literal) => {
            unhex(include_str!(concat!("../fixtures/", $name)))
        };
    }
    vec![
        (
            fixture!("wordcount-wc-0-subscription.hex"),
            fixture!("wordcount-wc-0-assignment.hex"),
        ),
        (
            fixture!("wordcount-wc-1-subscription.hex"),
            fixture!("wordcount-wc-1-assignment.hex"),
        ),
        (
            fixture!("wordcount-4.4.0-wc-0-subscription.hex"),
            fixture!("wordcount-4.4.0-wc-0-assignment.hex"),
        ),
        (
            fixture!("wordcount-4.4.0-wc-1-subscription.hex"),
            fixture!("wordcount-4.4.0-wc-1-assignment.hex"),
        ),
    ]
}

/// `SubscriptionInfo`s and `AssignmentInfo`s of every version as Kafka Streams' own encoders
/// wrote them, then those inside the captured members.
fn streams_userdata() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut subs, mut asgs) = (Vec::new(), Vec::new());
    for file in [
        include_str!("../fixtures/streams-4.3.1-userdata.txt"),
        include_str!("../fixtures/streams-4.4.0-userdata.txt"),
    ] {
        for line in file.lines() {
            let mut parts = line.split(' ');
            match (parts.next(), parts.nth(1)) {
                (Some("subscription"), Some(hex)) => subs.push(unhex(hex)),
                (Some("assignment"), Some(hex)) => asgs.push(unhex(hex)),
                _ => {}
            }
        }
    }
    for (sub, asg) in captured_members() {
        let sub = decode_consumer_subscription(&sub).expect("captured subscription decodes");
        subs.extend(sub.user_data);
        let asg = decode_consumer_assignment(&asg).expect("captured assignment decodes");
        asgs.extend(asg.user_data);
    }
    subs.sort();
    subs.dedup();
    asgs.sort();
    asgs.dedup();
    (subs, asgs)
}

/// A seed (a fixture, or a generated encoding with the value it must decode to) and the
/// mutations to apply to it.
fn seeded<T: Clone + std::fmt::Debug + 'static>(
    fixtures: Vec<Vec<u8>>,
    generated: impl Strategy<Value = (Vec<u8>, T)> + 'static,
) -> impl Strategy<Value = (Vec<u8>, Option<T>, Vec<Mutation>)> {
    let seed = prop_oneof![
        select(fixtures).prop_map(|b| (b, None)),
        generated.prop_map(|(b, v)| (b, Some(v))),
    ];
    (seed, mutations(4)).prop_map(|((b, v), m)| (b, v, m))
}

fn user_data() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        userdata::subscription_info().prop_map(|s| Some(s.bytes)),
        userdata::assignment_info().prop_map(|a| Some(a.bytes)),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Some),
    ]
}

// ---- the Kafka Streams member data ----

#[test]
fn consumer_protocol_subscription() {
    let fixtures = captured_members().into_iter().map(|(s, _)| s).collect();
    let generated = userdata::consumer_subscription(user_data()).prop_map(|w| (w.bytes, w.expect));
    run(
        "consumer_protocol_subscription",
        1.0,
        seeded(fixtures, generated),
        |(seed, expect, m), t| {
            let bytes = apply(seed, &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                decode_consumer_subscription(&bytes)
            })?;
            t.outcome(None, &r);
            if m.is_empty() {
                match expect {
                    Some(e) => prop_assert_eq!(r, Ok(e)),
                    None => prop_assert!(r.is_ok(), "a fixture failed: {:?}", r),
                }
            }
            Ok(())
        },
    );
}

#[test]
fn consumer_protocol_assignment() {
    let fixtures = captured_members().into_iter().map(|(_, a)| a).collect();
    let generated = userdata::consumer_assignment(user_data()).prop_map(|w| (w.bytes, w.expect));
    run(
        "consumer_protocol_assignment",
        1.0,
        seeded(fixtures, generated),
        |(seed, expect, m), t| {
            let bytes = apply(seed, &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                decode_consumer_assignment(&bytes)
            })?;
            t.outcome(None, &r);
            if m.is_empty() {
                match expect {
                    Some(e) => prop_assert_eq!(r, Ok(e)),
                    None => prop_assert!(r.is_ok(), "a fixture failed: {:?}", r),
                }
            }
            Ok(())
        },
    );
}

#[test]
fn streams_subscription_info() {
    let (fixtures, _) = streams_userdata();
    let generated = userdata::subscription_info().prop_map(|s| (s.bytes, s.expect));
    run(
        "streams_subscription_info",
        1.0,
        seeded(fixtures, generated),
        |(seed, expect, m), t| {
            let bytes = apply(seed, &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                decode_subscription_info(&bytes)
            })?;
            t.outcome(None, &r);
            if m.is_empty() {
                match expect {
                    Some(e) => prop_assert_eq!(r, Ok(SubscriptionInfo::Decoded(e))),
                    None => prop_assert!(
                        matches!(r, Ok(SubscriptionInfo::Decoded(_))),
                        "a fixture failed: {:?}",
                        r
                    ),
                }
            }
            Ok(())
        },
    );
}

#[test]
fn streams_assignment_info() {
    let (_, fixtures) = streams_userdata();
    let generated = userdata::assignment_info().prop_map(|a| (a.bytes, a.expect));
    run(
        "streams_assignment_info",
        1.0,
        seeded(fixtures, generated),
        |(seed, expect, m), t| {
            let bytes = apply(seed, &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                decode_assignment_info(&bytes)
            })?;
            t.outcome(None, &r);
            if m.is_empty() {
                match expect {
                    Some(e) => prop_assert_eq!(r, Ok(AssignmentInfo::Decoded(e))),
                    None => prop_assert!(
                        matches!(r, Ok(AssignmentInfo::Decoded(_))),
                        "a fixture failed: {:?}",
                        r
                    ),
                }
            }
            Ok(())
        },
    );
}

/// Where a member's mutations go: into the wrappers as they are on the wire, or into the
/// Streams data inside them, re-wrapped so that the wrappers still decode.
#[derive(Debug, Clone, Copy)]
enum Layer {
    Wrapper,
    UserData,
}

#[test]
fn group_member_decoded_from_both() {
    let pods: Vec<String> = ["wc-0", "wc-1", "wc"].map(String::from).to_vec();
    let captured = captured_members();
    let generated = (
        userdata::consumer_subscription(userdata::subscription_info().prop_map(|s| Some(s.bytes))),
        userdata::consumer_assignment(userdata::assignment_info().prop_map(|a| Some(a.bytes))),
    )
        .prop_map(|(s, a)| (s.bytes, a.bytes));
    // Only a real member's two halves belong together: generated ones assign tasks at random.
    let member = prop_oneof![
        select(captured).prop_map(|m| (m, true)),
        generated.prop_map(|m| (m, false)),
    ];
    let layer = select(vec![Layer::Wrapper, Layer::UserData]);
    let client = select(vec!["wc-0", "wc-1"]);
    let strategy = (member, layer, mutations(3), mutations(3), client);
    run(
        "group_member_decoded_from_both",
        1.0,
        strategy,
        |(((sub, asg), real), layer, ms, ma, client), t| {
            let (sub, asg) = match layer {
                Layer::Wrapper => (apply(sub, &ms), apply(asg, &ma)),
                Layer::UserData => (rewrap_subscription(&sub, &ms), rewrap_assignment(&asg, &ma)),
            };
            let m = MemberSnapshot {
                member_id: "m".into(),
                client_id: format!("{client}-StreamThread-1-consumer"),
                client_host: "/10.0.0.1".into(),
                metadata: Some(sub),
                assignment: Some(asg),
            };
            let len = m.metadata.iter().chain(&m.assignment).map(Vec::len).sum();
            let d = bounded(len, VIEW_PER_BYTE, t, || decode_member(&m, &pods, true))?;
            let ok: Result<(), ()> = if d.decode_problems.is_empty() {
                Ok(())
            } else {
                Err(())
            };
            t.outcome(None, &ok);
            if real && ms.is_empty() && ma.is_empty() {
                prop_assert!(d.decode_problems.is_empty(), "{:?}", d.decode_problems);
            }
            Ok(())
        },
    );
}

fn rewrap_subscription(wrapper: &[u8], m: &[Mutation]) -> Vec<u8> {
    let Ok(s) = decode_consumer_subscription(wrapper) else {
        return wrapper.to_vec();
    };
    userdata::encode_consumer_subscription(
        s.version,
        s.topics,
        s.user_data.map(|u| apply(u, m)),
        s.owned_partitions,
        s.generation_id.unwrap_or_default(),
        s.rack_id,
        &[],
    )
    .bytes
}

fn rewrap_assignment(wrapper: &[u8], m: &[Mutation]) -> Vec<u8> {
    let Ok(a) = decode_consumer_assignment(wrapper) else {
        return wrapper.to_vec();
    };
    userdata::encode_consumer_assignment(a.version, a.partitions, a.user_data.map(|u| apply(u, m)))
        .bytes
}

/// A member whose assignment lists many partitions of topics with long names: what a
/// decoded member costs when it names the topic of each partition, and the limit on names.
#[test]
fn group_member_with_long_topics_and_many_partitions() {
    let pods = vec!["wc-0".to_string()];
    let (subscription, _) = captured_members().remove(0);
    let strategy = (
        // Names about the limit, and some as long as a Kafka string holds.
        proptest::collection::vec(
            (
                prop_oneof![9 => 0usize..=MAX_TOPIC_NAME + 8, 1 => 1000usize..=32767],
                0i32..600,
            ),
            1..=3,
        ),
        0usize..=2,
        any::<bool>(),
    );
    run(
        "group_member_with_long_topics_and_many_partitions",
        0.05,
        strategy,
        |(topics, standbys, mismatch), t| {
            let topics: Vec<TopicPartitions> = topics
                .iter()
                .enumerate()
                .map(|(i, (len, n))| TopicPartitions {
                    topic: format!("{i}{}", "t".repeat(*len))
                        .chars()
                        .take(*len.max(&1))
                        .collect(),
                    partitions: (0..*n).collect(),
                })
                .collect();
            let partitions: usize = topics.iter().map(|tp| tp.partitions.len()).sum();
            // Without a task per partition the member still lists its partitions.
            let tasks = if mismatch { 0 } else { partitions };
            let active: Vec<((i32, i32), String)> =
                (0..tasks).map(|p| ((0, p as i32), String::new())).collect();
            let standby: Vec<_> = (0..standbys)
                .map(|p| (((1, p as i32), String::new()), Vec::new()))
                .collect();
            let info = userdata::encode_assignment(11, 11, &active, &standby, &Vec::new(), 0, 0);
            let too_long = topics.iter().any(|tp| tp.topic.len() > MAX_TOPIC_NAME);
            let asg = userdata::encode_consumer_assignment(0, topics, Some(info.bytes)).bytes;
            let m = MemberSnapshot {
                client_id: "wc-0-StreamThread-1-consumer".into(),
                metadata: Some(subscription.clone()),
                assignment: Some(asg),
                ..Default::default()
            };
            let len = subscription.len() + m.assignment.as_ref().map_or(0, Vec::len);
            let d = bounded(len, VIEW_PER_BYTE, t, || decode_member(&m, &pods, true))?;
            let ok = if d.decode_problems.is_empty() {
                Ok(())
            } else {
                Err(())
            };
            t.outcome(None, &ok);
            if too_long {
                prop_assert!(d.active.is_empty() && !d.decode_problems.is_empty());
            } else if mismatch && partitions > 0 {
                prop_assert_eq!(d.assigned.len(), partitions);
            } else {
                prop_assert!(d.decode_problems.is_empty(), "{:?}", d.decode_problems);
                prop_assert_eq!(d.active.len(), partitions);
            }
            Ok(())
        },
    );
}

// ---- the Kafka wire protocol ----

/// One generated message type at one of its versions, a sample seed, mutations.
fn message_cases(
    messages: &[wire::WireMessage],
    max_mutations: usize,
) -> impl Strategy<Value = (usize, i16, u64, Vec<Mutation>)> + use<> {
    let versions: Vec<(i16, i16)> = messages.iter().map(|m| m.versions).collect();
    (0..versions.len()).prop_flat_map(move |i| {
        let (lo, hi) = versions[i];
        (Just(i), lo..=hi, any::<u64>(), mutations(max_mutations))
    })
}

#[test]
fn generated_messages_at_every_version() {
    let messages = wire::wire_messages();
    run(
        "generated_messages_at_every_version",
        4.0,
        message_cases(&messages, 4),
        |(i, version, seed, m), t| {
            let msg = &messages[i];
            let bytes = apply((msg.sample)(seed, version), &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                (msg.decode)(&bytes, version)
            })?;
            t.outcome(Some(msg.name), &r);
            if m.is_empty() {
                prop_assert_eq!(&r, &Ok(bytes.len()), "{} v{}", msg.name, version);
            }
            if r.is_ok() {
                // Whatever decodes re-encodes to a canonical form that decodes to itself.
                let canonical = (msg.reencode)(&bytes, version)
                    .map_err(|e| TestCaseError::fail(format!("decoded once, not twice: {e}")))?;
                let again = (msg.reencode)(&canonical, version).map_err(|e| {
                    TestCaseError::fail(format!("{} v{version}: re-encoding fails: {e}", msg.name))
                })?;
                prop_assert_eq!(&again, &canonical, "{} v{}", msg.name, version);
                prop_assert_eq!(
                    (msg.decode)(&canonical, version),
                    Ok(canonical.len()),
                    "{} v{}",
                    msg.name,
                    version
                );
            }
            Ok(())
        },
    );
}

#[test]
fn generated_values_round_trip() {
    let messages = wire::wire_messages();
    run(
        "generated_values_round_trip",
        1.0,
        message_cases(&messages, 0),
        |(i, version, seed, _), t| {
            let msg = &messages[i];
            let r = (msg.round_trip)(seed, version);
            t.outcome(Some(msg.name), &r);
            prop_assert!(
                r.is_ok(),
                "{} v{} seed {}: {:?}",
                msg.name,
                version,
                seed,
                r
            );
            Ok(())
        },
    );
}

#[test]
fn response_frames_as_the_connection_reads_them() {
    let messages = wire::wire_messages();
    let responses = wire::wire_responses();
    let versions: Vec<(i16, i16)> = responses.iter().map(|r| r.versions).collect();
    let strategy = (0..versions.len()).prop_flat_map(move |i| {
        let (lo, hi) = versions[i];
        (Just(i), lo..=hi, any::<u64>(), any::<i32>(), mutations(4))
    });
    run(
        "response_frames_as_the_connection_reads_them",
        1.0,
        strategy,
        |(i, version, seed, correlation, m), t| {
            let resp = &responses[i];
            let body = messages
                .iter()
                .find(|w| w.name == resp.response)
                .map(|w| (w.sample)(seed, version))
                .unwrap_or_default();
            let mut frame = wire::response_header((resp.header_version)(version), correlation);
            frame.extend(body);
            let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
            bytes.extend(frame);
            let bytes = apply(bytes, &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                wire::read_frame_from(&bytes)
                    .and_then(|frame| (resp.decode)(&frame, version, correlation))
            })?;
            t.outcome(Some(resp.response), &r);
            if m.is_empty() {
                prop_assert!(r.is_ok(), "{} v{}: {:?}", resp.response, version, r);
            }
            Ok(())
        },
    );
}

#[test]
fn streams_group_snapshot_from_a_decoded_answer() {
    let messages = wire::wire_messages();
    let describe = messages
        .iter()
        .find(|m| m.name == "StreamsGroupDescribeResponse")
        .expect("the StreamsGroupDescribe response is generated");
    let pods: Vec<String> = ["app-0", "app-1"].map(String::from).to_vec();
    let (lo, hi) = describe.versions;
    run(
        "streams_group_snapshot_from_a_decoded_answer",
        0.5,
        (lo..=hi, any::<u64>(), mutations(4)),
        |(version, seed, m), t| {
            let bytes = apply((describe.sample)(seed, version), &m);
            let r = bounded(bytes.len(), WIRE_PER_BYTE, t, || {
                wire::decode_streams_group_describe(&bytes, version)
            })?;
            t.outcome(None, &r);
            // The views follow the content (each active task names its subtopology's source
            // topics), not a length: built, not measured, and they must not panic.
            if let Ok(answer) = r {
                wire::streams_group_views(&answer, &pods);
            }
            Ok(())
        },
    );
}

// ---- SASL ----

/// RFC 7677's SCRAM-SHA-256 example, which the client of [`wire::scram_exchange`] speaks.
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

#[test]
fn scram_server_messages() {
    // The iteration count is what the broker makes the client spend CPU on.
    let iterations = select(vec![
        None,
        Some("0"),
        Some("1"),
        Some("4095"),
        Some("4096"),
        Some("16384"),
        Some("16385"),
        Some("4294967295"),
        Some("99999999999"),
        Some("-1"),
        Some(""),
    ]);
    run(
        "scram_server_messages",
        0.1,
        (iterations, mutations(3), mutations(3)),
        |(i, m1, m2), t| {
            let first = match i {
                Some(i) => SERVER_FIRST.replace("i=4096", &format!("i={i}")),
                None => SERVER_FIRST.to_string(),
            };
            let first = apply(first.into_bytes(), &m1);
            let last = apply(SERVER_FINAL.as_bytes().to_vec(), &m2);
            let r = bounded(first.len() + last.len(), WIRE_PER_BYTE, t, || {
                wire::scram_exchange(&first, &last)
            })?;
            t.outcome(None, &r);
            let asked = String::from_utf8_lossy(&first)
                .split(',')
                .find_map(|kv| kv.strip_prefix("i=").map(str::to_string));
            if let Some(n) = asked.and_then(|n| n.parse::<u64>().ok())
                && !(4096..=16384).contains(&n)
            {
                prop_assert!(r.is_err(), "{} iterations were accepted", n);
            }
            if m1.is_empty() && m2.is_empty() && i.is_none_or(|i| i == "4096" || i == "16384") {
                // 16384 iterations derive another key: the RFC's signature no longer matches.
                prop_assert_eq!(r.is_ok(), i.is_none_or(|i| i == "4096"), "{:?}", r);
            }
            Ok(())
        },
    );
}
