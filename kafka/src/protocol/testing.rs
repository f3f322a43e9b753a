//! Entry points into the wire decoders for the property tests of
//! `tests/decoder_properties.rs` (feature `decoder-testing`): every generated message at every
//! version with its sampler, the response framing, the SCRAM exchange and the streams-group
//! snapshot built from a decoded answer. Not an API: nothing else may enable the feature.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::broker::{decode_response, read_frame, response_header_version};
use super::messages::response_header::ResponseHeader;
use super::messages::streams_group_describe_response::StreamsGroupDescribeResponse;
use super::messages::*;
use super::sasl::{Mechanism, Scram};
use super::writer::Writer;
use super::{Gen, Message, Request, Visit, messages};
use crate::streams_group::StreamsGroupSnapshot;
use crate::wire::{DecodeError, Reader};

/// Samples a value from a seed and encodes it at a version.
pub type Sampler = Box<dyn Fn(u64, i16) -> Vec<u8> + Send + Sync>;
/// Samples, encodes and decodes a value: the encoded length, or why the round trip failed.
pub type RoundTrip = Box<dyn Fn(u64, i16) -> Result<usize, String> + Send + Sync>;

/// One generated message type: its decoder, encoder and sampler at any of its versions.
pub struct WireMessage {
    /// The schema's name.
    pub name: &'static str,
    /// The versions the schema defines.
    pub versions: (i16, i16),
    /// Decodes a body of a version: the bytes it consumed.
    pub decode: fn(&[u8], i16) -> Result<usize, DecodeError>,
    /// Decodes a body of a version and encodes the value again at that version.
    pub reencode: fn(&[u8], i16) -> Result<Vec<u8>, DecodeError>,
    /// The encoding of a random value.
    pub sample: Sampler,
    /// A random value survives encode then decode, every byte consumed.
    pub round_trip: RoundTrip,
}

fn decode<M: Message>(bytes: &[u8], version: i16) -> Result<usize, DecodeError> {
    let mut r = Reader::new(bytes);
    M::decode(&mut r, version)?;
    Ok(bytes.len() - r.remaining())
}

fn reencode<M: Message>(bytes: &[u8], version: i16) -> Result<Vec<u8>, DecodeError> {
    let value = M::decode(&mut Reader::new(bytes), version)?;
    let mut w = Writer::new();
    value.encode(&mut w, version);
    Ok(w.into_bytes())
}

struct Collect(Vec<WireMessage>);

impl Visit for Collect {
    fn visit<M: Message + std::fmt::Debug + PartialEq + 'static>(
        &mut self,
        sample: fn(&mut Gen, i16) -> M,
    ) {
        self.0.push(WireMessage {
            name: M::NAME,
            versions: M::VERSIONS,
            decode: decode::<M>,
            reencode: reencode::<M>,
            sample: Box::new(move |seed, version| {
                let mut w = Writer::new();
                sample(&mut Gen(seed), version).encode(&mut w, version);
                w.into_bytes()
            }),
            round_trip: Box::new(move |seed, version| {
                let value = sample(&mut Gen(seed), version);
                let mut w = Writer::new();
                value.encode(&mut w, version);
                let bytes = w.into_bytes();
                let mut r = Reader::new(&bytes);
                let back = M::decode(&mut r, version).map_err(|e| e.to_string())?;
                if back != value {
                    return Err(format!("decoded {back:?}, encoded {value:?}"));
                }
                if r.remaining() != 0 {
                    return Err(format!("{} of {} bytes left", r.remaining(), bytes.len()));
                }
                Ok(bytes.len())
            }),
        });
    }
}

/// Every generated message type.
pub fn wire_messages() -> Vec<WireMessage> {
    let mut c = Collect(Vec::new());
    messages::visit_all(&mut c);
    c.0
}

/// One request's response as the connection reads it: header, then body.
pub struct WireResponse {
    /// The response schema's name (its body sampler is the [`WireMessage`] of that name).
    pub response: &'static str,
    /// The versions of the request.
    pub versions: (i16, i16),
    /// The response header version a response of that version carries.
    pub header_version: fn(i16) -> i16,
    /// Decodes a frame that must answer the given correlation id.
    pub decode: fn(&[u8], i16, i32) -> Result<(), String>,
}

fn response_of<R: Request>() -> WireResponse {
    WireResponse {
        response: R::Response::NAME,
        versions: R::VERSIONS,
        header_version: response_header_version::<R>,
        decode: |frame, version, correlation| {
            decode_response::<R>(frame, version, correlation)
                .map(drop)
                .map_err(|e| e.to_string())
        },
    }
}

/// The response of every request the connection can send.
pub fn wire_responses() -> Vec<WireResponse> {
    vec![
        response_of::<api_versions_request::ApiVersionsRequest>(),
        response_of::<describe_configs_request::DescribeConfigsRequest>(),
        response_of::<describe_groups_request::DescribeGroupsRequest>(),
        response_of::<find_coordinator_request::FindCoordinatorRequest>(),
        response_of::<incremental_alter_configs_request::IncrementalAlterConfigsRequest>(),
        response_of::<leave_group_request::LeaveGroupRequest>(),
        response_of::<list_groups_request::ListGroupsRequest>(),
        response_of::<list_offsets_request::ListOffsetsRequest>(),
        response_of::<metadata_request::MetadataRequest>(),
        response_of::<offset_commit_request::OffsetCommitRequest>(),
        response_of::<offset_fetch_request::OffsetFetchRequest>(),
        response_of::<sasl_authenticate_request::SaslAuthenticateRequest>(),
        response_of::<sasl_handshake_request::SaslHandshakeRequest>(),
        response_of::<streams_group_describe_request::StreamsGroupDescribeRequest>(),
    ]
}

/// A response header of a version answering a correlation id.
pub fn response_header(header_version: i16, correlation: i32) -> Vec<u8> {
    let mut w = Writer::new();
    ResponseHeader {
        correlation_id: correlation,
    }
    .encode(&mut w, header_version);
    w.into_bytes()
}

/// Reads one frame from `bytes` as from a connection that then closes.
pub fn read_frame_from(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = bytes;
    let mut frame = pin!(read_frame(&mut stream));
    // A byte slice is always ready, so one poll finishes the read.
    match frame.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r.map_err(|e| e.to_string()),
        Poll::Pending => Err("a read from memory did not complete".into()),
    }
}

/// The SCRAM-SHA-256 client of RFC 7677's example (user `user`, password `pencil`, its client
/// nonce) given a server-first and a server-final message.
pub fn scram_exchange(server_first: &[u8], server_final: &[u8]) -> Result<(), String> {
    let mut s = Scram::with_nonce(
        Mechanism::ScramSha256,
        "user",
        "pencil",
        "rOprNGfwEbeRWgbNEkqO",
    );
    s.client_final(server_first)?;
    s.verify(server_final)
}

/// A decoded StreamsGroupDescribe answer.
pub struct StreamsGroupAnswer(StreamsGroupDescribeResponse);

/// Decodes a StreamsGroupDescribe response body of `version`.
pub fn decode_streams_group_describe(
    body: &[u8],
    version: i16,
) -> Result<StreamsGroupAnswer, DecodeError> {
    StreamsGroupDescribeResponse::decode(&mut Reader::new(body), version).map(StreamsGroupAnswer)
}

/// What the operator builds of each group of an answer: the snapshot, its source topics,
/// its changelog mapping and its members for `pods`. The number of members.
pub fn streams_group_views(answer: &StreamsGroupAnswer, pods: &[String]) -> usize {
    let mut members = 0;
    for g in &answer.0.groups {
        let snapshot = StreamsGroupSnapshot::from_described(g);
        let _ = snapshot.source_topics();
        let _ = snapshot.changelog_mapping();
        members += snapshot.decoded_members(pods).len();
    }
    members
}
