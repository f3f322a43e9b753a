//! A bounds-checked big-endian reader for the Kafka encodings the decoders need.
//!
//! Every read returns an error instead of panicking: member metadata comes from other
//! processes and may be truncated, corrupt, or of a newer version than we know.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The data ended before a field.
    #[error("{what}: data ends at byte {offset}, needed {needed} more")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where it started.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A length or count field is negative (and the field is not nullable) or absurd.
    #[error("{what}: invalid length {len} at byte {offset}")]
    InvalidLength {
        /// The field being read.
        what: &'static str,
        /// Where it started.
        offset: usize,
        /// The length found.
        len: i64,
    },
    /// The assignment lists a different number of active tasks than partitions.
    #[error("assignment has {tasks} active tasks for {partitions} partitions")]
    TaskCountMismatch {
        /// Active tasks in the Streams assignment.
        tasks: usize,
        /// Partitions in the consumer assignment.
        partitions: usize,
    },
}

/// Cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at the first byte.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    #[allow(dead_code)] // Called by generated code whose schemas have such fields.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    #[allow(dead_code)] // Called by generated code whose schemas have such fields.
    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_be_bytes(self.array(what)?))
    }

    /// Kafka's `bool`: any non-zero byte is true, as the Java reader has it.
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.i8(what)? != 0)
    }

    /// A 16-byte UUID as it is on the wire.
    pub(crate) fn uuid_bytes(&mut self, what: &'static str) -> Result<[u8; 16], DecodeError> {
        self.array(what)
    }

    /// An unsigned varint of at most 5 bytes (a u32), as flexible versions write lengths.
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let offset = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.array::<1>(what)?[0];
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidLength {
            what,
            offset,
            len: i64::from(value),
        })
    }

    /// An element count, compact (uvarint of n+1, 0 = null) in flexible versions, int32
    /// (-1 = null) before; checked against the bytes left as [`Reader::count`] does.
    pub(crate) fn array_count(
        &mut self,
        what: &'static str,
        flexible: bool,
        min_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        if !flexible {
            return self.count(what, min_size);
        }
        let offset = self.pos;
        let n = self.uvarint(what)?;
        if n == 0 {
            return Ok(None);
        }
        let len = (n - 1) as usize;
        if len.saturating_mul(min_size.max(1)) > self.remaining() {
            return Err(DecodeError::InvalidLength {
                what,
                offset,
                len: i64::from(n) - 1,
            });
        }
        Ok(Some(len))
    }

    /// A string, compact in flexible versions; `None` is null.
    pub(crate) fn flex_string(
        &mut self,
        what: &'static str,
        flexible: bool,
    ) -> Result<Option<String>, DecodeError> {
        if !flexible {
            return self.string(what);
        }
        match self.array_count(what, true, 1)? {
            None => Ok(None),
            Some(n) => Ok(Some(
                String::from_utf8_lossy(self.take(n, what)?).into_owned(),
            )),
        }
    }

    /// Bytes, compact in flexible versions; `None` is null.
    pub(crate) fn flex_bytes(
        &mut self,
        what: &'static str,
        flexible: bool,
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        let n = if flexible {
            self.array_count(what, true, 1)?
        } else {
            self.count(what, 1)?
        };
        match n {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n, what)?.to_vec())),
        }
    }

    /// One tagged field: its tag and its data, which the caller decodes or skips.
    pub(crate) fn tagged_field(
        &mut self,
        what: &'static str,
    ) -> Result<(u32, &'a [u8]), DecodeError> {
        let tag = self.uvarint(what)?;
        let size = self.uvarint(what)? as usize;
        Ok((tag, self.take(size, what)?))
    }

    /// A 16-byte UUID as its canonical 8-4-4-4-12 hex string.
    pub(crate) fn uuid(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let b = self.take(16, what)?;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        ))
    }

    /// An element count (int32). `-1` is null, returned as `None`; the count is checked
    /// against the bytes left, assuming each element takes at least `min_size` bytes, so a
    /// corrupt count cannot make us allocate gigabytes.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let len = length(what, offset, n.into())?;
        if len.saturating_mul(min_size.max(1)) > self.remaining() {
            return Err(DecodeError::InvalidLength {
                what,
                offset,
                len: n.into(),
            });
        }
        Ok(Some(len))
    }

    /// A non-nullable count: null is an error.
    pub(crate) fn len(
        &mut self,
        what: &'static str,
        min_size: usize,
    ) -> Result<usize, DecodeError> {
        let offset = self.pos;
        self.count(what, min_size)?
            .ok_or(DecodeError::InvalidLength {
                what,
                offset,
                len: -1,
            })
    }

    /// Kafka `bytes` (int32 length, -1 = null).
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.count(what, 1)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n, what)?)),
        }
    }

    /// Kafka `string` (int16 length, -1 = null), UTF-8.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        self.string_within(what, usize::MAX)
    }

    /// Kafka `string` of at most `max` bytes, as a name whose length Kafka limits: a longer
    /// one is corrupt data, refused before it is copied.
    pub(crate) fn string_within(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Option<String>, DecodeError> {
        let offset = self.pos;
        let n = self.i16(what)?;
        if n == -1 {
            return Ok(None);
        }
        let len = length(what, offset, n.into())?;
        if len > max {
            return Err(DecodeError::InvalidLength {
                what,
                offset,
                len: n.into(),
            });
        }
        let b = self.take(len, what)?;
        Ok(Some(String::from_utf8_lossy(b).into_owned()))
    }

    /// Java `DataOutputStream.writeUTF`: unsigned int16 length, then modified UTF-8 (equal to
    /// UTF-8 for the topic and host names Kafka allows).
    pub(crate) fn java_utf(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = usize::from(self.u16(what)?);
        let b = self.take(n, what)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// `n` Java chars (UTF-16 code units), as `DataOutputStream.writeChars` writes them.
    pub(crate) fn java_chars(
        &mut self,
        what: &'static str,
        n: usize,
    ) -> Result<String, DecodeError> {
        let b = self.take(n.saturating_mul(2), what)?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        Ok(String::from_utf16_lossy(&units))
    }
}

/// A decoded length as `usize`; a negative one (other than the null marker the caller
/// handled) is corrupt data.
fn length(what: &'static str, offset: usize, n: i64) -> Result<usize, DecodeError> {
    usize::try_from(n).map_err(|_| DecodeError::InvalidLength {
        what,
        offset,
        len: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_reports_truncation() {
        let mut r = Reader::new(&[0, 0, 1, 2, 0xff]);
        assert_eq!(r.i32("x").unwrap(), 258);
        assert_eq!(
            r.i16("y"),
            Err(DecodeError::Truncated {
                what: "y",
                offset: 4,
                needed: 1
            })
        );
    }

    #[test]
    fn rejects_counts_larger_than_the_data() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(matches!(
            r.count("n", 4),
            Err(DecodeError::InvalidLength { .. })
        ));
    }

    #[test]
    fn nullable_fields() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.bytes("b").unwrap(), None);
        assert_eq!(r.string("s").unwrap(), None);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn a_string_longer_than_its_limit_is_refused() {
        let mut r = Reader::new(&[0, 3, b'a', b'b', b'c']);
        assert_eq!(
            r.string_within("topic", 2),
            Err(DecodeError::InvalidLength {
                what: "topic",
                offset: 0,
                len: 3
            })
        );
        let mut r = Reader::new(&[0, 3, b'a', b'b', b'c']);
        assert_eq!(r.string_within("topic", 3).unwrap().as_deref(), Some("abc"));
    }

    #[test]
    fn uuid_is_canonical() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            Reader::new(&b).uuid("u").unwrap(),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
    }
}
