use super::messages::api_versions_request::ApiVersionsRequest;
use super::messages::api_versions_response::ApiVersionsResponse;
use super::messages::request_header::RequestHeader;
use super::{Gen, Message, Visit, decode_body, encode_body, messages, negotiate};
use crate::wire::Reader;

const SEEDS: u64 = 40;

/// Every message at every version: a random value survives encode then decode, the decoder
/// consumes exactly what the encoder wrote, and every shorter prefix is an error, not a panic.
struct RoundTrip {
    checked: usize,
}

impl Visit for RoundTrip {
    fn visit<M: Message + std::fmt::Debug + PartialEq + 'static>(
        &mut self,
        sample: fn(&mut Gen, i16) -> M,
    ) {
        for version in M::VERSIONS.0..=M::VERSIONS.1 {
            for seed in 0..SEEDS {
                let mut g = Gen(seed * 7919 + u64::from(version.unsigned_abs()));
                let value = sample(&mut g, version);
                let bytes = encode_body(&value, version);
                let mut r = Reader::new(&bytes);
                let back = M::decode(&mut r, version)
                    .unwrap_or_else(|e| panic!("{} v{version} seed {seed}: {e}", M::NAME));
                assert_eq!(back, value, "{} v{version} seed {seed}", M::NAME);
                assert_eq!(r.remaining(), 0, "{} v{version} seed {seed}", M::NAME);
                for cut in 0..bytes.len() {
                    assert!(
                        decode_body::<M>(&bytes[..cut], version).is_err(),
                        "{} v{version} seed {seed}: a {cut}-byte prefix of {} decoded",
                        M::NAME,
                        bytes.len()
                    );
                }
                self.checked += 1;
            }
        }
    }
}

#[test]
fn every_message_round_trips_at_every_version_and_truncation_is_an_error() {
    let mut visitor = RoundTrip { checked: 0 };
    messages::visit_all(&mut visitor);
    assert!(visitor.checked > 30 * SEEDS as usize, "{}", visitor.checked);
}

/// Random bytes never panic a decoder, whatever the version.
struct Garbage;

impl Visit for Garbage {
    fn visit<M: Message + std::fmt::Debug + PartialEq + 'static>(
        &mut self,
        _: fn(&mut Gen, i16) -> M,
    ) {
        let mut g = Gen(42);
        for version in M::VERSIONS.0..=M::VERSIONS.1 {
            for _ in 0..200 {
                let n = (g.next() % 64) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| g.next() as u8).collect();
                let _ = decode_body::<M>(&bytes, version);
            }
        }
    }
}

#[test]
fn random_bytes_are_an_error_or_a_value_never_a_panic() {
    messages::visit_all(&mut Garbage);
}

#[test]
fn compact_strings_and_tagged_fields_are_laid_out_as_kafka_does() {
    let request = ApiVersionsRequest {
        client_software_name: "a".into(),
        client_software_version: "1".into(),
        ..Default::default()
    };
    // v3 is flexible: uvarint length + 1, then an empty tagged-field section.
    assert_eq!(encode_body(&request, 3), [2, b'a', 2, b'1', 0]);
    // v0 has neither field.
    assert!(encode_body(&request, 0).is_empty());

    // The request header's client id stays a classic nullable string in v2.
    let header = RequestHeader {
        request_api_key: 18,
        request_api_version: 3,
        correlation_id: 7,
        client_id: Some("k".into()),
    };
    assert_eq!(
        encode_body(&header, 2),
        [0, 18, 0, 3, 0, 0, 0, 7, 0, 1, b'k', 0]
    );
}

#[test]
fn unknown_tagged_fields_of_a_newer_broker_are_skipped() {
    let response = ApiVersionsResponse {
        throttle_time_ms: 5,
        ..Default::default()
    };
    let mut bytes = encode_body(&response, 3);
    // Replace the empty tagged section with one holding tag 99 (unknown) of 3 bytes.
    assert_eq!(bytes.pop(), Some(0));
    bytes.extend_from_slice(&[1, 99, 3, 1, 2, 3]);
    let back: ApiVersionsResponse = decode_body(&bytes, 3).unwrap();
    assert_eq!(back, response);
}

#[test]
fn the_version_is_the_highest_both_speak() {
    assert_eq!(negotiate((0, 5), (0, 3)), Some(3));
    assert_eq!(negotiate((3, 5), (0, 4)), Some(4));
    assert_eq!(negotiate((3, 5), (0, 2)), None);
}

/// A decoded count is checked against the bytes its elements need at the least, so what it
/// allocates up front is bounded by the bytes left times the ratio of an element's size in
/// memory to its least size on the wire: no struct may make that ratio large.
#[test]
fn no_struct_is_much_larger_in_memory_than_its_least_encoding() {
    let mut worst = (0.0, "", 0);
    for (name, size, min_size, (lo, hi)) in messages::struct_sizes() {
        for version in lo..=hi {
            let ratio = size as f64 / min_size(version).max(1) as f64;
            if ratio > worst.0 {
                worst = (ratio, name, version);
            }
        }
    }
    let (ratio, name, version) = worst;
    eprintln!("largest: {name} v{version}, {ratio:.1} times its least encoding");
    assert!(
        ratio <= 32.0,
        "{name} v{version} is {ratio:.1} times its least encoding"
    );
}
