//! The encoder the generated messages write with: big-endian fixed widths, classic and
//! compact lengths, tagged fields.

/// A growing request buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Kafka `bool`.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// Kafka `int8`.
    pub fn i8(&mut self, v: i8) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `int16`.
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `uint16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `int32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `uint32`.
    #[allow(dead_code)] // Called by generated code whose schemas have such fields.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `int64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `float64`.
    #[allow(dead_code)] // Called by generated code whose schemas have such fields.
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Kafka `uuid`.
    pub fn uuid(&mut self, v: [u8; 16]) {
        self.buf.extend_from_slice(&v);
    }

    /// An unsigned varint.
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// A length the receiver reads as int32 (classic) or uvarint n+1 (compact).
    fn length(&mut self, n: usize, flexible: bool) {
        if flexible {
            self.uvarint(u32::try_from(n).map_or(u32::MAX, |n| n.saturating_add(1)));
        } else {
            self.i32(i32::try_from(n).unwrap_or(i32::MAX));
        }
    }

    /// The null marker of a string.
    pub fn null_string(&mut self, flexible: bool) {
        if flexible {
            self.uvarint(0)
        } else {
            self.i16(-1)
        }
    }

    /// A string, compact in flexible versions.
    pub fn string(&mut self, v: &str, flexible: bool) {
        if flexible {
            self.length(v.len(), true);
        } else {
            self.i16(i16::try_from(v.len()).unwrap_or(i16::MAX));
        }
        self.buf.extend_from_slice(v.as_bytes());
    }

    /// The null marker of bytes.
    #[allow(dead_code)] // Called by generated code whose schemas have such fields.
    pub fn null_bytes(&mut self, flexible: bool) {
        if flexible {
            self.uvarint(0)
        } else {
            self.i32(-1)
        }
    }

    /// Bytes, compact in flexible versions.
    pub fn bytes(&mut self, v: &[u8], flexible: bool) {
        self.length(v.len(), flexible);
        self.buf.extend_from_slice(v);
    }

    /// The null marker of an array.
    pub fn null_array(&mut self, flexible: bool) {
        if flexible {
            self.uvarint(0)
        } else {
            self.i32(-1)
        }
    }

    /// An array's element count; the elements follow.
    pub fn array_len(&mut self, n: usize, flexible: bool) {
        self.length(n, flexible);
    }

    /// The tagged-field section: count, then each tag with its size and data, in tag order.
    pub fn tagged_fields(&mut self, fields: &[(u32, Vec<u8>)]) {
        self.uvarint(u32::try_from(fields.len()).unwrap_or(u32::MAX));
        for (tag, data) in fields {
            self.uvarint(*tag);
            self.uvarint(u32::try_from(data.len()).unwrap_or(u32::MAX));
            self.buf.extend_from_slice(data);
        }
    }
}
