//! Test vectors built by hand from the message specs: a big-endian writer and the encoded
//! messages the decoder tests and the status tests share.

/// A minimal big-endian writer mirroring Kafka's encodings, for building test vectors.
#[derive(Default)]
pub(crate) struct W(pub Vec<u8>);

impl W {
    pub(crate) fn i8(mut self, v: i8) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    pub(crate) fn i16(mut self, v: i16) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    pub(crate) fn i32(mut self, v: i32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    pub(crate) fn i64(mut self, v: i64) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    pub(crate) fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend(b);
        self
    }
    pub(crate) fn string(self, s: &str) -> Self {
        self.i16(s.len() as i16).raw(s.as_bytes())
    }
    pub(crate) fn bytes(self, b: &[u8]) -> Self {
        self.i32(b.len() as i32).raw(b)
    }
    pub(crate) fn utf(mut self, s: &str) -> Self {
        self.0.extend((s.len() as u16).to_be_bytes());
        self.0.extend(s.as_bytes());
        self
    }
}

pub(crate) const UUID: [u8; 16] = [
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
];

/// A v3 ConsumerProtocolSubscription wrapping `user_data`.
pub(crate) fn subscription_v3(topics: &[&str], user_data: &[u8]) -> Vec<u8> {
    let mut w = W::default().i16(3).i32(topics.len() as i32);
    for t in topics {
        w = w.string(t);
    }
    w.bytes(user_data)
        .i32(1) // owned partitions: one topic
        .string(topics[0])
        .i32(2)
        .i32(0)
        .i32(1)
        .i32(7) // generation
        .i16(-1) // rack id null
        .0
}

/// A v11 SubscriptionInfo with the given task offset sums.
pub(crate) fn subscription_info_v11(sums: &[(i32, i32, i64)]) -> Vec<u8> {
    let mut w = W::default()
        .i32(11)
        .i32(11)
        .raw(&UUID)
        .bytes(b"host:8080")
        .i32(sums.len() as i32);
    for (s, p, sum) in sums {
        w = w.i32(*s).i32(*p).i64(*sum).i16(-1);
    }
    w.i8(0).i32(0).i32(1).bytes(b"zone").bytes(b"a").0
}

/// A ConsumerProtocolAssignment wrapping `user_data`.
pub(crate) fn assignment_v0(parts: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
    let mut w = W::default().i16(0).i32(parts.len() as i32);
    for (t, ps) in parts {
        w = w.string(t).i32(ps.len() as i32);
        for p in *ps {
            w = w.i32(*p);
        }
    }
    w.bytes(user_data).0
}

/// A v11 AssignmentInfo.
pub(crate) fn assignment_info_v11(
    active: &[(i32, i32)],
    standby: &[(i32, i32)],
    next_rebalance_ms: i64,
) -> Vec<u8> {
    let mut w = W::default().i32(11).i32(11).i32(active.len() as i32);
    for (s, p) in active {
        w = w.i32(*s).i32(*p).i32(0);
    }
    w = w.i32(standby.len() as i32);
    for (s, p) in standby {
        w = w
            .i32(*s)
            .i32(*p)
            .i32(0)
            .i32(1)
            .utf("app-store-changelog")
            .i32(*p);
    }
    w.i32(1) // topic dictionary
        .i32(0)
        .utf("in")
        .i32(1) // active by host
        .utf("h")
        .i32(80)
        .i32(1)
        .i32(0)
        .i32(0)
        .i32(0) // standby by host: none
        .i32(0) // error code
        .i64(next_rebalance_ms)
        .0
}
