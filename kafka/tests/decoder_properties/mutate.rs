//! Mutations of valid encodings: what corruption, truncation and a hostile peer do to bytes.
//! Positions are indexes resolved against the bytes as they are when the mutation applies,
//! so every mutation of a list lands inside its input whatever the earlier ones did.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// One change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flips one bit.
    FlipBit(Index, u8),
    /// Replaces one byte.
    Overwrite(Index, u8),
    /// Cuts the input short.
    Truncate(Index),
    /// Inserts bytes.
    Insert(Index, Vec<u8>),
    /// Removes up to `n` bytes.
    Remove(Index, u8),
    /// Copies up to `n` bytes from one place to another (a repeated element or field).
    Duplicate(Index, u8, Index),
    /// Inserts `n` zero bytes: in compact encodings a run of empty or null fields, the
    /// cheapest elements a count can claim.
    Zeros(Index, u8),
    /// Overwrites what looks like a length or count field with an extreme value.
    Length(Index, Field, Bomb),
}

/// The encodings Kafka writes lengths and counts in.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// `int32` (arrays, bytes, Streams counts).
    I32,
    /// `int16` / `uint16` (classic strings, `writeUTF`).
    I16,
    /// Unsigned varint of n+1 (compact arrays, strings and bytes; tagged-field sizes).
    Varint,
}

/// The value written into a length field, most relative to the bytes left after it: the
/// counts a check against the remaining bytes must refuse or allow exactly.
#[derive(Debug, Clone, Copy)]
pub enum Bomb {
    /// The largest value the field holds.
    Max,
    /// The smallest (most negative) value the field holds.
    Min,
    /// -2: negative but not the null marker.
    MinusTwo,
    /// -1 (null) or varint 0 (compact null).
    Null,
    /// Zero elements.
    Zero,
    /// As many elements as bytes remain: allowed by a check that assumes 1-byte elements.
    Remaining,
    /// Half the bytes that remain.
    Half,
    /// One more than the bytes that remain.
    Beyond,
    /// 128 Mi: far more than any input, yet under every size cap.
    Large,
}

/// Any one mutation, the length bombs weighted up: they are what a count check must stop.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let field = select(vec![Field::I32, Field::I16, Field::Varint]);
    let bomb = select(vec![
        Bomb::Max,
        Bomb::Min,
        Bomb::MinusTwo,
        Bomb::Null,
        Bomb::Zero,
        Bomb::Remaining,
        Bomb::Half,
        Bomb::Beyond,
        Bomb::Large,
    ]);
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), any::<u8>(), any::<Index>())
            .prop_map(|(f, n, t)| Mutation::Duplicate(f, n, t)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, n)| Mutation::Zeros(i, n)),
        4 => (any::<Index>(), field, bomb).prop_map(|(i, f, b)| Mutation::Length(i, f, b)),
    ]
}

/// Up to `max` mutations (none at all leaves the seed as it is).
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    vec(mutation(), 0..=max)
}

/// `input` with `mutations` applied in order.
pub fn apply(mut input: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        apply_one(&mut input, m);
    }
    input
}

fn at(i: &Index, len: usize) -> usize {
    if len == 0 { 0 } else { i.index(len) }
}

fn apply_one(b: &mut Vec<u8>, m: &Mutation) {
    let len = b.len();
    match m {
        Mutation::FlipBit(i, bit) if len > 0 => b[at(i, len)] ^= 1 << bit,
        Mutation::Overwrite(i, byte) if len > 0 => b[at(i, len)] = *byte,
        Mutation::Truncate(i) => b.truncate(at(i, len + 1)),
        Mutation::Insert(i, bytes) => {
            let p = at(i, len + 1);
            b.splice(p..p, bytes.iter().copied());
        }
        Mutation::Remove(i, n) if len > 0 => {
            let p = at(i, len);
            let end = (p + usize::from(*n)).min(len);
            b.drain(p..end);
        }
        Mutation::Duplicate(from, n, to) if len > 0 => {
            let p = at(from, len);
            let end = (p + usize::from(*n)).min(len);
            let copy: Vec<u8> = b[p..end].to_vec();
            let q = at(to, len + 1);
            b.splice(q..q, copy);
        }
        Mutation::Zeros(i, n) => {
            let p = at(i, len + 1);
            b.splice(p..p, std::iter::repeat_n(0, usize::from(*n)));
        }
        Mutation::Length(i, field, bomb) => length(b, i, *field, *bomb),
        _ => {}
    }
}

/// Where a field of `width` bytes holds a value that could be the length of what follows:
/// the places a length bomb does the most harm.
fn length_like(b: &[u8], field: Field) -> Vec<usize> {
    let width = match field {
        Field::I32 => 4,
        Field::I16 => 2,
        Field::Varint => 1,
    };
    (0..b.len().saturating_sub(width - 1))
        .filter(|&p| {
            let rest = b.len() - p - width;
            let v = match field {
                Field::I32 => i64::from(i32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]])),
                Field::I16 => i64::from(i16::from_be_bytes([b[p], b[p + 1]])),
                Field::Varint if b[p] < 0x80 => i64::from(b[p]) - 1,
                Field::Varint => -2,
            };
            (0..=rest as i64).contains(&v)
        })
        .collect()
}

fn length(b: &mut Vec<u8>, i: &Index, field: Field, bomb: Bomb) {
    let candidates = length_like(b, field);
    let p = if candidates.is_empty() {
        at(i, b.len() + 1)
    } else {
        candidates[i.index(candidates.len())]
    };
    let (width, bytes) = match field {
        Field::I32 => {
            let rest = b.len().saturating_sub(p + 4) as i64;
            let v = pick(bomb, rest, i64::from(i32::MIN), i64::from(i32::MAX));
            (4, (v as i32).to_be_bytes().to_vec())
        }
        Field::I16 => {
            let rest = b.len().saturating_sub(p + 2) as i64;
            let v = pick(bomb, rest, i64::from(i16::MIN), i64::from(i16::MAX));
            (2, (v as i16).to_be_bytes().to_vec())
        }
        Field::Varint => {
            let rest = b.len().saturating_sub(p + 1) as i64;
            // Compact lengths are n+1 with 0 for null, so the extremes are u32's.
            let v = match bomb {
                Bomb::Null => 0,
                Bomb::MinusTwo => i64::from(u32::MAX) - 1,
                _ => pick(bomb, rest, 0, i64::from(u32::MAX)).saturating_add(1),
            };
            (1, uvarint(v.clamp(0, i64::from(u32::MAX)) as u32))
        }
    };
    let end = (p + width).min(b.len());
    b.splice(p..end, bytes);
}

fn pick(bomb: Bomb, rest: i64, min: i64, max: i64) -> i64 {
    let v = match bomb {
        Bomb::Max => max,
        Bomb::Min => min,
        Bomb::MinusTwo => -2,
        Bomb::Null => -1,
        Bomb::Zero => 0,
        Bomb::Remaining => rest,
        Bomb::Half => rest / 2,
        Bomb::Beyond => rest + 1,
        Bomb::Large => 128 << 20,
    };
    v.clamp(min, max)
}

/// Kafka's unsigned varint.
pub fn uvarint(mut v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}
