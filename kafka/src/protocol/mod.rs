//! Kafka's wire protocol for the APIs librdkafka does not give us (streams groups, group
//! configs, batched group reads): message types generated from Kafka's JSON schemas
//! (`messages`, by `kstreams-kafka-codegen`), and the traits that frame them.

pub(crate) mod broker;
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, unused)]
pub mod messages;
mod sasl;
#[cfg(feature = "decoder-testing")]
pub mod testing;
mod tls;
pub mod writer;

use crate::wire::{DecodeError, Reader};
use writer::Writer;

/// A message the generated code can write and read at any of its versions.
pub trait Message: Sized + Default {
    /// The schema's name, e.g. `StreamsGroupDescribeRequest`.
    const NAME: &'static str;
    /// The lowest and highest version the schema defines.
    const VERSIONS: (i16, i16);
    /// Whether `version` uses compact encodings and tagged fields.
    fn flexible(version: i16) -> bool;
    /// Writes the message body as `version` encodes it.
    fn encode(&self, w: &mut Writer, version: i16);
    /// Reads a message body of `version`; unknown tagged fields are skipped, a field the
    /// version lacks keeps its default.
    fn decode(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError>;
}

/// A request, with its API key and the response it gets.
pub trait Request: Message {
    /// The API key.
    const API_KEY: i16;
    /// The response type.
    type Response: Message;
}

/// The version both sides speak: the highest of ours the broker also supports, or `None`
/// when the ranges do not meet.
pub fn negotiate(ours: (i16, i16), broker: (i16, i16)) -> Option<i16> {
    let lo = ours.0.max(broker.0);
    let hi = ours.1.min(broker.1);
    (lo <= hi).then_some(hi)
}

/// Encodes a body on its own.
#[cfg(test)]
pub(crate) fn encode_body<M: Message>(message: &M, version: i16) -> Vec<u8> {
    let mut w = Writer::new();
    message.encode(&mut w, version);
    w.into_bytes()
}

/// Decodes a body.
#[cfg(test)]
pub(crate) fn decode_body<M: Message>(bytes: &[u8], version: i16) -> Result<M, DecodeError> {
    let mut r = Reader::new(bytes);
    M::decode(&mut r, version)
}

#[cfg(test)]
mod tests;

/// What a test does with each generated message type.
#[cfg(any(test, feature = "decoder-testing"))]
pub(crate) trait Visit {
    /// Called once per message with its sampler.
    fn visit<M: Message + std::fmt::Debug + PartialEq + 'static>(
        &mut self,
        sample: fn(&mut Gen, i16) -> M,
    );
}

/// A small seeded generator (SplitMix64) for the round-trip tests: the same seed, the same
/// messages.
#[cfg(any(test, feature = "decoder-testing"))]
pub(crate) struct Gen(pub u64);

#[cfg(any(test, feature = "decoder-testing"))]
#[allow(missing_docs, dead_code)] // The generated samplers use what their schemas need.
impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
    pub fn null(&mut self) -> bool {
        self.next().is_multiple_of(4)
    }
    pub fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    pub fn i16(&mut self) -> i16 {
        self.next() as i16
    }
    pub fn u16(&mut self) -> u16 {
        self.next() as u16
    }
    pub fn i32(&mut self) -> i32 {
        self.next() as i32
    }
    pub fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    pub fn i64(&mut self) -> i64 {
        self.next() as i64
    }
    pub fn f64(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 7.0
    }
    pub fn uuid(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next().to_be_bytes());
        out[8..].copy_from_slice(&self.next().to_be_bytes());
        out
    }
    pub fn len(&mut self) -> usize {
        (self.next() % 3) as usize
    }
    pub fn string(&mut self) -> String {
        let n = self.next() % 12;
        (0..n)
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }
    pub fn bytes(&mut self) -> Vec<u8> {
        let n = self.next() % 12;
        (0..n).map(|_| self.next() as u8).collect()
    }
}
