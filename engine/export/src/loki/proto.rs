//! The messages of Loki's push API (`logproto.PushRequest` and what it
//! holds), as prost structs with the field numbers and types of Loki's
//! `pkg/push/push.proto` (vendored for reference in
//! `engine/export/proto/loki/`). Left out: `PushRequest.format` (set by
//! Loki itself) and `EntryAdapter.parsed` (query answers only).

/// `logproto.PushRequest`: the body of one push, before snappy.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams and their entries.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one label set and its entries, in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The label set in Prometheus' syntax: `{level="info", service_name="api"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The entries, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// A hash of the labels that Loki fills in itself; clients send 0.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`: one log line at a time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When the line was logged.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Name-value pairs kept with the entry but not indexed (Loki 3).
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`: one pair of structured metadata.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelPairAdapter {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds past `seconds`, 0 to 999,999,999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// The time `unix_nanos` nanoseconds after the Unix epoch.
    pub fn from_unix_nanos(unix_nanos: u64) -> Self {
        const NANOS_PER_SECOND: u64 = 1_000_000_000;
        Timestamp {
            seconds: i64::try_from(unix_nanos / NANOS_PER_SECOND).unwrap_or(i64::MAX),
            nanos: i32::try_from(unix_nanos % NANOS_PER_SECOND).unwrap_or(0),
        }
    }

    /// Nanoseconds since the Unix epoch (0 before it).
    pub fn unix_nanos(&self) -> u64 {
        let seconds = u64::try_from(self.seconds).unwrap_or(0);
        let nanos = u64::try_from(self.nanos).unwrap_or(0);
        seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
    }
}
