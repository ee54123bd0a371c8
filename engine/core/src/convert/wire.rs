//! How much memory decoding a request takes, bounded before decoding it.
//!
//! Decoding is where a request's memory first grows: an empty attribute
//! (two bytes on the wire) becomes a `KeyValue` of about a hundred bytes in
//! its list, a packed varint of one byte becomes a `u64`. A request of a
//! few megabytes can take a gigabyte once decoded, before
//! [`estimate`](super::estimate) could look at it. These functions walk the
//! protobuf bytes with the OTLP schema (tags and lengths only: no value is
//! read, nothing is allocated) and add up what the decoded structs take:
//! each element of a repeated message field is one struct in a `Vec` (twice
//! over, as a `Vec` grows by doubling), each string or byte string its
//! length, each repeated number eight bytes. Unknown fields are skipped, as
//! the decoder skips them. For OTLP/JSON, [`json_decoded_size`] bounds the
//! same from the number of objects in the text.
//!
//! The walk also finds what would make decoding fail early (a length past
//! the end of its message, a truncated varint, nesting deeper than the
//! decoder allows), so a malformed body is refused before it is decoded.
//! It is never stricter than the decoder: a field with the wrong wire type
//! is left for the decoder to refuse (the fuzz target `otlp_proto` checks
//! that every body the decoder takes, the walk takes).

use std::fmt;
use std::mem::size_of;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, EntityRef, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, SummaryDataPoint, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// The deepest nesting of messages the walk follows, as the protobuf
/// decoder's recursion limit.
const MAX_DEPTH: u32 = 100;

/// Why a body is not a protobuf message of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The byte offset in the body where the problem is.
    pub offset: usize,
    /// What is wrong there.
    pub what: &'static str,
    /// The message being read, and the field if known.
    pub message: &'static str,
    /// The field number, 0 when the problem is in a field's key.
    pub field: u32,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            0 => write!(
                f,
                "{} in a {} at byte {}",
                self.what, self.message, self.offset
            ),
            n => write!(
                f,
                "{} in field {n} of a {} at byte {}",
                self.what, self.message, self.offset
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// The messages of the OTLP export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    TraceRequest,
    LogsRequest,
    MetricsRequest,
    ResourceSpans,
    ResourceLogs,
    ResourceMetrics,
    Resource,
    EntityRef,
    ScopeSpans,
    ScopeLogs,
    ScopeMetrics,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    Span,
    Event,
    Link,
    Status,
    LogRecord,
    Metric,
    /// Gauge, sum, histogram, exponential histogram or summary: a list of
    /// points (field 1) of the given kind.
    Points(Point),
    NumberPoint,
    HistogramPoint,
    ExponentialPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
}

/// The kinds of data point a metric's data holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    Number,
    Histogram,
    Exponential,
    Summary,
}

/// What one field of a message holds, as far as memory goes.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// A message held inside its parent's struct (an optional field or a
    /// oneof): its own fields count, not its struct.
    Inline(Msg),
    /// One element of a repeated message field: a struct in a `Vec`.
    Element(Msg, usize),
    /// A string or byte string: its length.
    Text,
    /// One element of a repeated string field.
    Texts,
    /// A repeated fixed-width number: eight bytes per value.
    Fixed,
    /// A repeated varint: up to eight bytes per byte on the wire.
    Varints,
    /// A scalar held in the struct: nothing more.
    Scalar,
}

impl Msg {
    fn name(self) -> &'static str {
        match self {
            Msg::TraceRequest => "ExportTraceServiceRequest",
            Msg::LogsRequest => "ExportLogsServiceRequest",
            Msg::MetricsRequest => "ExportMetricsServiceRequest",
            Msg::ResourceSpans => "ResourceSpans",
            Msg::ResourceLogs => "ResourceLogs",
            Msg::ResourceMetrics => "ResourceMetrics",
            Msg::Resource => "Resource",
            Msg::EntityRef => "EntityRef",
            Msg::ScopeSpans => "ScopeSpans",
            Msg::ScopeLogs => "ScopeLogs",
            Msg::ScopeMetrics => "ScopeMetrics",
            Msg::Scope => "InstrumentationScope",
            Msg::KeyValue => "KeyValue",
            Msg::AnyValue => "AnyValue",
            Msg::ArrayValue => "ArrayValue",
            Msg::KeyValueList => "KeyValueList",
            Msg::Span => "Span",
            Msg::Event => "Span.Event",
            Msg::Link => "Span.Link",
            Msg::Status => "Status",
            Msg::LogRecord => "LogRecord",
            Msg::Metric => "Metric",
            Msg::Points(Point::Number) => "Gauge or Sum",
            Msg::Points(Point::Histogram) => "Histogram",
            Msg::Points(Point::Exponential) => "ExponentialHistogram",
            Msg::Points(Point::Summary) => "Summary",
            Msg::NumberPoint => "NumberDataPoint",
            Msg::HistogramPoint => "HistogramDataPoint",
            Msg::ExponentialPoint => "ExponentialHistogramDataPoint",
            Msg::Buckets => "ExponentialHistogramDataPoint.Buckets",
            Msg::SummaryPoint => "SummaryDataPoint",
            Msg::Quantile => "SummaryDataPoint.ValueAtQuantile",
            Msg::Exemplar => "Exemplar",
        }
    }

    /// What field `tag` of this message holds; `None` for a field the
    /// decoder skips.
    fn field(self, tag: u32) -> Option<Field> {
        use Field::*;
        let kv = Element(Msg::KeyValue, size_of::<KeyValue>());
        Some(match (self, tag) {
            (Msg::TraceRequest, 1) => Element(Msg::ResourceSpans, size_of::<ResourceSpans>()),
            (Msg::LogsRequest, 1) => Element(Msg::ResourceLogs, size_of::<ResourceLogs>()),
            (Msg::MetricsRequest, 1) => Element(Msg::ResourceMetrics, size_of::<ResourceMetrics>()),
            (Msg::ResourceSpans | Msg::ResourceLogs | Msg::ResourceMetrics, 1) => {
                Inline(Msg::Resource)
            }
            (Msg::ResourceSpans, 2) => Element(Msg::ScopeSpans, size_of::<ScopeSpans>()),
            (Msg::ResourceLogs, 2) => Element(Msg::ScopeLogs, size_of::<ScopeLogs>()),
            (Msg::ResourceMetrics, 2) => Element(Msg::ScopeMetrics, size_of::<ScopeMetrics>()),
            (Msg::ResourceSpans | Msg::ResourceLogs | Msg::ResourceMetrics, 3) => Text,
            (Msg::ScopeSpans | Msg::ScopeLogs | Msg::ScopeMetrics, 1) => Inline(Msg::Scope),
            (Msg::ScopeSpans, 2) => Element(Msg::Span, size_of::<Span>()),
            (Msg::ScopeLogs, 2) => Element(Msg::LogRecord, size_of::<LogRecord>()),
            (Msg::ScopeMetrics, 2) => Element(Msg::Metric, size_of::<Metric>()),
            (Msg::ScopeSpans | Msg::ScopeLogs | Msg::ScopeMetrics, 3) => Text,
            (Msg::Resource, 1) => kv,
            (Msg::Resource, 2) => Scalar,
            (Msg::Resource, 3) => Element(Msg::EntityRef, size_of::<EntityRef>()),
            (Msg::EntityRef, 1 | 2) => Text,
            (Msg::EntityRef, 3 | 4) => Texts,
            (Msg::Scope, 1 | 2) => Text,
            (Msg::Scope, 3) => kv,
            (Msg::Scope, 4) => Scalar,
            (Msg::KeyValue, 1) => Text,
            (Msg::KeyValue, 2) => Inline(Msg::AnyValue),
            (Msg::KeyValue, 3) => Scalar,
            (Msg::AnyValue, 1 | 7) => Text,
            (Msg::AnyValue, 2 | 3 | 4 | 8) => Scalar,
            (Msg::AnyValue, 5) => Inline(Msg::ArrayValue),
            (Msg::AnyValue, 6) => Inline(Msg::KeyValueList),
            (Msg::ArrayValue, 1) => Element(Msg::AnyValue, size_of::<AnyValue>()),
            (Msg::KeyValueList, 1) => kv,
            (Msg::Span, 1..=5) => Text,
            (Msg::Span, 6..=8 | 10 | 12 | 14 | 16) => Scalar,
            (Msg::Span, 9) => kv,
            (Msg::Span, 11) => Element(Msg::Event, size_of::<Event>()),
            (Msg::Span, 13) => Element(Msg::Link, size_of::<Link>()),
            (Msg::Span, 15) => Inline(Msg::Status),
            (Msg::Event, 1 | 4) => Scalar,
            (Msg::Event, 2) => Text,
            (Msg::Event, 3) => kv,
            (Msg::Link, 1..=3) => Text,
            (Msg::Link, 4) => kv,
            (Msg::Link, 5 | 6) => Scalar,
            (Msg::Status, 2) => Text,
            (Msg::Status, 3) => Scalar,
            (Msg::LogRecord, 1 | 2 | 7 | 8 | 11) => Scalar,
            (Msg::LogRecord, 3 | 9 | 10 | 12) => Text,
            (Msg::LogRecord, 5) => Inline(Msg::AnyValue),
            (Msg::LogRecord, 6) => kv,
            (Msg::Metric, 1..=3) => Text,
            (Msg::Metric, 5 | 7) => Inline(Msg::Points(Point::Number)),
            (Msg::Metric, 9) => Inline(Msg::Points(Point::Histogram)),
            (Msg::Metric, 10) => Inline(Msg::Points(Point::Exponential)),
            (Msg::Metric, 11) => Inline(Msg::Points(Point::Summary)),
            (Msg::Metric, 12) => kv,
            (Msg::Points(p), 1) => match p {
                Point::Number => Element(Msg::NumberPoint, size_of::<NumberDataPoint>()),
                Point::Histogram => Element(Msg::HistogramPoint, size_of::<HistogramDataPoint>()),
                Point::Exponential => Element(
                    Msg::ExponentialPoint,
                    size_of::<ExponentialHistogramDataPoint>(),
                ),
                Point::Summary => Element(Msg::SummaryPoint, size_of::<SummaryDataPoint>()),
            },
            (Msg::Points(_), 2 | 3) => Scalar,
            (Msg::NumberPoint, 7) => kv,
            (Msg::NumberPoint, 2 | 3 | 4 | 6 | 8) => Scalar,
            (Msg::NumberPoint, 5) => Element(Msg::Exemplar, size_of::<Exemplar>()),
            (Msg::HistogramPoint, 9) => kv,
            (Msg::HistogramPoint, 2..=5 | 10..=12) => Scalar,
            (Msg::HistogramPoint, 6 | 7) => Fixed,
            (Msg::HistogramPoint, 8) => Element(Msg::Exemplar, size_of::<Exemplar>()),
            (Msg::ExponentialPoint, 1) => kv,
            (Msg::ExponentialPoint, 2..=7 | 10 | 12..=14) => Scalar,
            (Msg::ExponentialPoint, 8 | 9) => Inline(Msg::Buckets),
            (Msg::ExponentialPoint, 11) => Element(Msg::Exemplar, size_of::<Exemplar>()),
            (Msg::Buckets, 1) => Scalar,
            (Msg::Buckets, 2) => Varints,
            (Msg::SummaryPoint, 7) => kv,
            (Msg::SummaryPoint, 2..=5 | 8) => Scalar,
            (Msg::SummaryPoint, 6) => Element(Msg::Quantile, size_of::<ValueAtQuantile>()),
            (Msg::Quantile, 1 | 2) => Scalar,
            (Msg::Exemplar, 7) => kv,
            (Msg::Exemplar, 2 | 3 | 6) => Scalar,
            (Msg::Exemplar, 4 | 5) => Text,
            _ => return None,
        })
    }
}

/// The bytes decoding a trace export request takes, at most.
pub fn spans_decoded_size(body: &[u8]) -> Result<usize, WireError> {
    decoded_size(
        Msg::TraceRequest,
        size_of::<ExportTraceServiceRequest>(),
        body,
    )
}

/// The bytes decoding a logs export request takes, at most.
pub fn logs_decoded_size(body: &[u8]) -> Result<usize, WireError> {
    decoded_size(
        Msg::LogsRequest,
        size_of::<ExportLogsServiceRequest>(),
        body,
    )
}

/// The bytes decoding a metrics export request takes, at most.
pub fn metrics_decoded_size(body: &[u8]) -> Result<usize, WireError> {
    decoded_size(
        Msg::MetricsRequest,
        size_of::<ExportMetricsServiceRequest>(),
        body,
    )
}

/// The most any of [`spans_decoded_size`], [`logs_decoded_size`] and
/// [`metrics_decoded_size`] counts for a body of `len` bytes, known without
/// walking it: a caller that only compares the count with a limit can skip
/// the walk when this is within it. An element of a repeated message field
/// takes two bytes on the wire at least (its key and a zero length) and
/// counts twice its struct, a string of a repeated field two bytes and
/// twice a `String`, a packed varint one byte and sixteen; nothing else
/// counts more per byte.
pub fn decoded_size_at_most(len: usize) -> usize {
    let request = [
        size_of::<ExportTraceServiceRequest>(),
        size_of::<ExportLogsServiceRequest>(),
        size_of::<ExportMetricsServiceRequest>(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let per_byte = [
        size_of::<ResourceSpans>(),
        size_of::<ResourceLogs>(),
        size_of::<ResourceMetrics>(),
        size_of::<ScopeSpans>(),
        size_of::<ScopeLogs>(),
        size_of::<ScopeMetrics>(),
        size_of::<EntityRef>(),
        size_of::<KeyValue>(),
        size_of::<AnyValue>(),
        size_of::<Span>(),
        size_of::<Event>(),
        size_of::<Link>(),
        size_of::<LogRecord>(),
        size_of::<Metric>(),
        size_of::<NumberDataPoint>(),
        size_of::<HistogramDataPoint>(),
        size_of::<ExponentialHistogramDataPoint>(),
        size_of::<SummaryDataPoint>(),
        size_of::<ValueAtQuantile>(),
        size_of::<Exemplar>(),
        size_of::<String>(),
        2 * size_of::<u64>(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    request.saturating_add(len.saturating_mul(per_byte))
}

/// Whether `body`, a `msg` nested `depth` messages deep in a request,
/// is well framed and within the decoder's nesting limit: what decoding it
/// alone cannot tell, as the decoder counts nesting from where it starts.
pub(crate) fn nested_fits(msg: Msg, body: &[u8], depth: u32) -> bool {
    let mut walk = Walk::new(body, 0);
    walk.message(msg, 0, body.len(), depth).is_ok()
}

fn decoded_size(msg: Msg, top: usize, body: &[u8]) -> Result<usize, WireError> {
    let mut walk = Walk::new(body, top);
    walk.message(msg, 0, body.len(), 0)?;
    Ok(walk.total)
}

/// The bytes of one `serde_json` object map's first node: an OTLP/JSON
/// body is parsed into a `serde_json::Value` tree before its messages are
/// read out of it, and every object with a key allocates a node of eleven
/// keys and values.
const JSON_OBJECT_NODE: usize = 640;

/// The bytes one key of a JSON object takes in its map besides its text:
/// its share of a node.
const JSON_KEY: usize = 128;

/// The bytes decoding an OTLP/JSON body takes, at most: the parsed
/// document (a node per object, a share of a node per key, a value slot
/// per array element or member, every string's text) and the structs read
/// out of it (every object may become the largest struct of the requests,
/// twice over in a growing `Vec`). Counts objects, keys and values outside
/// strings in one pass over the text.
pub fn json_decoded_size(body: &[u8]) -> usize {
    let largest = [
        size_of::<Span>(),
        size_of::<LogRecord>(),
        size_of::<Metric>(),
        size_of::<NumberDataPoint>(),
        size_of::<HistogramDataPoint>(),
        size_of::<ExponentialHistogramDataPoint>(),
        size_of::<SummaryDataPoint>(),
        size_of::<ResourceSpans>(),
        size_of::<ResourceLogs>(),
        size_of::<ResourceMetrics>(),
        size_of::<KeyValue>(),
        size_of::<Exemplar>(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let value = 2 * size_of::<serde_json::Value>();
    let (mut objects, mut keys, mut values) = (0usize, 0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => objects += 1,
            b':' => keys += 1,
            b',' | b'[' => values += 1,
            _ => {}
        }
    }
    body.len()
        .saturating_add(objects.saturating_mul(JSON_OBJECT_NODE + 2 * largest))
        .saturating_add(keys.saturating_mul(JSON_KEY))
        .saturating_add(values.saturating_mul(value))
}

struct Walk<'a> {
    body: &'a [u8],
    total: usize,
    /// Tests walk with the generic path only, to compare with the paths
    /// of the frequent messages.
    #[cfg(test)]
    generic: bool,
}

impl<'a> Walk<'a> {
    fn new(body: &'a [u8], total: usize) -> Self {
        Walk {
            body,
            total,
            #[cfg(test)]
            generic: false,
        }
    }

    /// Whether the frequent messages take their own paths.
    #[inline(always)]
    fn fast(&self) -> bool {
        #[cfg(test)]
        return !self.generic;
        #[cfg(not(test))]
        true
    }

    fn add(&mut self, n: usize) {
        self.total = self.total.saturating_add(n);
    }

    /// Walks the fields of `msg` in `body[start..end]`.
    fn message(&mut self, msg: Msg, start: usize, end: usize, depth: u32) -> Result<(), WireError> {
        self.within_depth(depth, start, msg)?;
        match msg {
            Msg::KeyValue if self.fast() => self.key_value(start, end, depth),
            Msg::AnyValue if self.fast() => self.any_value(start, end, depth),
            Msg::Span if self.fast() => self.span(start, end, depth),
            _ => self.fields(msg, start, end, depth, |_, _, _| Ok(false)),
        }
    }

    /// Walks the fields of `msg` in `body[start..end]`: each key goes to
    /// `known` first, which walks its field and answers `true`, or answers
    /// `false` to leave it to [`Walk::field`].
    #[inline(always)]
    fn fields(
        &mut self,
        msg: Msg,
        start: usize,
        end: usize,
        depth: u32,
        mut known: impl FnMut(&mut Self, u64, &mut usize) -> Result<bool, WireError>,
    ) -> Result<(), WireError> {
        let mut at = start;
        while at < end {
            let key_at = at;
            let key = self.varint(&mut at, end, msg, 0)?;
            if !known(self, key, &mut at)? {
                self.field(msg, key_at, key, &mut at, end, depth)?;
            }
        }
        Ok(())
    }

    /// Walks a `KeyValue`, the most frequent message by far: its key and
    /// its value are taken without looking their fields up. Counts and
    /// refuses exactly as the generic walk does.
    fn key_value(&mut self, start: usize, end: usize, depth: u32) -> Result<(), WireError> {
        self.fields(Msg::KeyValue, start, end, depth, |w, key, at| {
            match key {
                // 1: the key, a string.
                0x0a => {
                    let (_, len) = w.delimited(at, end, Msg::KeyValue, 1)?;
                    w.add(len);
                }
                // 2: the value, an `AnyValue` held in the struct.
                0x12 => {
                    let (inner, _) = w.delimited(at, end, Msg::KeyValue, 2)?;
                    w.within_depth(depth + 1, inner, Msg::AnyValue)?;
                    w.any_value(inner, *at, depth + 1)?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// Walks a `Span`: its strings, times and attributes without looking
    /// their fields up; events, links and the status the generic way.
    fn span(&mut self, start: usize, end: usize, depth: u32) -> Result<(), WireError> {
        self.fields(Msg::Span, start, end, depth, |w, key, at| {
            let tag = (key >> 3) as u32;
            match key {
                // 1 to 5: the ids, the trace state and the name.
                0x0a | 0x12 | 0x1a | 0x22 | 0x2a => {
                    let (_, len) = w.delimited(at, end, Msg::Span, tag)?;
                    w.add(len);
                }
                // 6: the kind, 10: dropped attributes, as varints.
                0x30 | 0x50 => {
                    w.varint(at, end, Msg::Span, tag)?;
                }
                // 7, 8: the start and end times, 64-bit.
                0x39 | 0x41 => *at = w.skip(*at, 8, end, Msg::Span, tag)?,
                // 9: an attribute, a `KeyValue` in a list.
                0x4a => {
                    let (inner, _) = w.delimited(at, end, Msg::Span, 9)?;
                    w.add(2 * size_of::<KeyValue>());
                    w.within_depth(depth + 1, inner, Msg::KeyValue)?;
                    w.key_value(inner, *at, depth + 1)?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// Walks an `AnyValue`: a string or bytes value and the scalars
    /// without a lookup; arrays and lists the generic way.
    fn any_value(&mut self, start: usize, end: usize, depth: u32) -> Result<(), WireError> {
        self.fields(Msg::AnyValue, start, end, depth, |w, key, at| {
            let tag = (key >> 3) as u32;
            match key {
                // 1: string_value, 7: bytes_value.
                0x0a | 0x3a => {
                    let (_, len) = w.delimited(at, end, Msg::AnyValue, tag)?;
                    w.add(len);
                }
                // 2: bool_value, 3: int_value, as varints.
                0x10 | 0x18 => {
                    w.varint(at, end, Msg::AnyValue, tag)?;
                }
                // 4: double_value, 64-bit.
                0x21 => *at = w.skip(*at, 8, end, Msg::AnyValue, tag)?,
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// A length-delimited field's value at `at`, which is moved past it:
    /// where the value starts, and its length.
    #[inline(always)]
    fn delimited(
        &self,
        at: &mut usize,
        end: usize,
        msg: Msg,
        tag: u32,
    ) -> Result<(usize, usize), WireError> {
        let len = self.varint(at, end, msg, tag)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let inner = *at;
        *at = self.skip(*at, len, end, msg, tag)?;
        Ok((inner, len))
    }

    /// Refuses `msg`, starting at `at`, when it is nested `depth` deep,
    /// past the decoder's limit. The fast paths check this and call each
    /// other directly: going through [`Walk::message`] instead made the
    /// walk of a 512-span request half as slow again (81 -> 122 us).
    #[inline(always)]
    fn within_depth(&self, depth: u32, at: usize, msg: Msg) -> Result<(), WireError> {
        if depth > MAX_DEPTH {
            return Err(self.error(at, "messages nested too deep", msg, 0));
        }
        Ok(())
    }

    /// Walks the field of `msg` whose key, read at `key_at`, is `key`; its
    /// value starts at `at`, which is moved past it.
    fn field(
        &mut self,
        msg: Msg,
        key_at: usize,
        key: u64,
        at: &mut usize,
        end: usize,
        depth: u32,
    ) -> Result<(), WireError> {
        let wire = (key & 7) as u8;
        let tag = u32::try_from(key >> 3).unwrap_or(0);
        if tag == 0 {
            return Err(self.error(key_at, "a field number of 0", msg, 0));
        }
        let field = msg.field(tag);
        match wire {
            // varint
            0 => {
                self.varint(at, end, msg, tag)?;
                if let Some(Field::Fixed | Field::Varints) = field {
                    self.add(2 * size_of::<u64>());
                }
            }
            // 64-bit
            1 => {
                *at = self.skip(*at, 8, end, msg, tag)?;
                if let Some(Field::Fixed) = field {
                    self.add(2 * size_of::<u64>());
                }
            }
            // length-delimited
            2 => {
                let (inner, len) = self.delimited(at, end, msg, tag)?;
                match field {
                    Some(Field::Inline(child)) => self.message(child, inner, *at, depth + 1)?,
                    Some(Field::Element(child, size)) => {
                        self.add(2 * size);
                        self.message(child, inner, *at, depth + 1)?;
                    }
                    Some(Field::Text) => self.add(len),
                    Some(Field::Texts) => self.add(len.saturating_add(2 * size_of::<String>())),
                    Some(Field::Fixed) => self.add(len.saturating_mul(2)),
                    Some(Field::Varints) => self.add(len.saturating_mul(2 * size_of::<u64>())),
                    // A scalar's wrong wire type is left for the
                    // decoder to refuse: the walk is never stricter.
                    Some(Field::Scalar) | None => {}
                }
            }
            // a group, skipped as the decoder skips unknown groups
            3 => *at = self.group(*at, end, msg, tag, depth + 1)?,
            // 32-bit
            5 => *at = self.skip(*at, 4, end, msg, tag)?,
            _ => return Err(self.error(key_at, "an invalid wire type", msg, tag)),
        }
        Ok(())
    }

    /// Skips a group that starts at `at` up to its end key.
    fn group(
        &mut self,
        mut at: usize,
        end: usize,
        msg: Msg,
        tag: u32,
        depth: u32,
    ) -> Result<usize, WireError> {
        if depth > MAX_DEPTH {
            return Err(self.error(at, "groups nested too deep", msg, tag));
        }
        loop {
            if at >= end {
                return Err(self.error(at, "a group without its end", msg, tag));
            }
            let key_at = at;
            let key = self.varint(&mut at, end, msg, tag)?;
            match key & 7 {
                0 => {
                    self.varint(&mut at, end, msg, tag)?;
                }
                1 => at = self.skip(at, 8, end, msg, tag)?,
                2 => {
                    let len = self.varint(&mut at, end, msg, tag)?;
                    at = self.skip(
                        at,
                        usize::try_from(len).unwrap_or(usize::MAX),
                        end,
                        msg,
                        tag,
                    )?;
                }
                3 => at = self.group(at, end, msg, tag, depth + 1)?,
                4 => {
                    if key >> 3 != u64::from(tag) {
                        return Err(self.error(
                            key_at,
                            "a group ended by another field's end",
                            msg,
                            tag,
                        ));
                    }
                    return Ok(at);
                }
                5 => at = self.skip(at, 4, end, msg, tag)?,
                _ => return Err(self.error(key_at, "an invalid wire type", msg, tag)),
            }
        }
    }

    fn skip(
        &self,
        at: usize,
        len: usize,
        end: usize,
        msg: Msg,
        tag: u32,
    ) -> Result<usize, WireError> {
        match at.checked_add(len) {
            Some(next) if next <= end => Ok(next),
            _ => Err(self.error(
                at,
                "a value that runs past the end of its message",
                msg,
                tag,
            )),
        }
    }

    /// Reads a varint at `at`; a one-byte varint (most tags and lengths)
    /// takes the short path.
    #[inline(always)]
    fn varint(&self, at: &mut usize, end: usize, msg: Msg, tag: u32) -> Result<u64, WireError> {
        if *at < end
            && let Some(&b) = self.body.get(*at)
            && b < 0x80
        {
            *at += 1;
            return Ok(u64::from(b));
        }
        self.long_varint(at, end, msg, tag)
    }

    #[inline(never)]
    fn long_varint(
        &self,
        at: &mut usize,
        end: usize,
        msg: Msg,
        tag: u32,
    ) -> Result<u64, WireError> {
        let start = *at;
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.body.get(*at).filter(|_| *at < end) else {
                return Err(self.error(start, "a truncated varint", msg, tag));
            };
            *at += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error(start, "a varint longer than 10 bytes", msg, tag))
    }

    fn error(&self, offset: usize, what: &'static str, msg: Msg, field: u32) -> WireError {
        WireError {
            offset,
            what,
            message: msg.name(),
            field,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn spans(n: usize, attrs: usize) -> ExportTraceServiceRequest {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /orders".into(),
            attributes: (0..attrs)
                .map(|i| kv(&format!("k{i}"), Value::StringValue("v".repeat(20))))
                .collect(),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue("checkout".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span; n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// Guarantees: the bound covers the structs a decoded request holds
    /// (each list element's struct and each string), and stays within a
    /// small factor of them for an ordinary request.
    #[test]
    fn bounds_an_ordinary_request_closely() {
        let req = spans(512, 10);
        let body = req.encode_to_vec();
        let bound = spans_decoded_size(&body).expect("valid");
        let held = 512 * (size_of::<Span>() + 10 * (size_of::<KeyValue>() + 2 + 20) + 24)
            + size_of::<ResourceSpans>();
        assert!(bound >= held, "bound {bound} under the structs held {held}");
        assert!(bound <= 3 * held, "bound {bound} far over {held}");
    }

    /// Both ways of walking `body` as a trace request: with the paths of
    /// the frequent messages, and with the generic one only.
    fn both(body: &[u8]) -> (Result<usize, WireError>, Result<usize, WireError>) {
        let top = size_of::<ExportTraceServiceRequest>();
        let mut generic = Walk::new(body, top);
        generic.generic = true;
        let generic = generic
            .message(Msg::TraceRequest, 0, body.len(), 0)
            .map(|()| generic.total);
        (spans_decoded_size(body), generic)
    }

    /// Guarantees: the paths taken for spans, attributes and their values
    /// count and refuse exactly as the generic walk: the same total for
    /// every kind of value, fields out of order, unknown fields and wrong
    /// wire types in them, long lengths; the same error at the same byte
    /// for bodies cut and bytes changed anywhere.
    #[test]
    fn the_frequent_messages_walk_as_the_generic_walk() {
        use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
        let mut req = spans(3, 2);
        let span = &mut req.resource_spans[0].scope_spans[0].spans[0];
        span.attributes.extend([
            kv("bool", Value::BoolValue(true)),
            kv("int", Value::IntValue(-7)),
            kv("double", Value::DoubleValue(1.5)),
            kv("bytes", Value::BytesValue(vec![9; 300])),
            kv("long", Value::StringValue("x".repeat(200))),
            kv(
                "array",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::IntValue(1)),
                    }],
                }),
            ),
            kv(
                "list",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("inner", Value::StringValue("v".into()))],
                }),
            ),
            KeyValue::default(),
        ]);
        span.kind = 2;
        span.start_time_unix_nano = 1;
        span.end_time_unix_nano = 2;
        span.dropped_attributes_count = 3;
        span.parent_span_id = vec![3; 8];
        span.trace_state = "a=b".into();
        span.events.push(Event {
            name: "e".into(),
            attributes: vec![kv("k", Value::StringValue("v".into()))],
            ..Default::default()
        });
        span.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
            message: "m".into(),
            code: 2,
        });
        let body = req.encode_to_vec();
        let (fast, generic) = both(&body);
        assert!(fast.is_ok(), "{fast:?}");
        assert_eq!(fast, generic);

        // A span and a KeyValue with their fields out of order, an unknown
        // field of each kind and wrong wire types: span { 9: kv, 2: id,
        // 7: varint, 99: varint, 99: bytes, 6: bytes }, kv { 2: value,
        // 1: key, 3: varint }, value { 3: bytes, 1: string, 8: varint }.
        let value = [0x1a, 0x01, 0x00, 0x0a, 0x01, b'v', 0x40, 0x01];
        let mut kv_bytes = vec![0x12, value.len() as u8];
        kv_bytes.extend_from_slice(&value);
        kv_bytes.extend_from_slice(&[0x0a, 0x01, b'k', 0x18, 0x05]);
        let mut span_bytes = vec![0x4a, kv_bytes.len() as u8];
        span_bytes.extend_from_slice(&kv_bytes);
        span_bytes.extend_from_slice(&[0x12, 0x02, 1, 2, 0x38, 0x01]);
        span_bytes.extend_from_slice(&[0x98, 0x06, 0x01, 0x9a, 0x06, 0x01, 0x00]);
        span_bytes.extend_from_slice(&[0x32, 0x01, 0x00]);
        let mut scope = vec![0x12, span_bytes.len() as u8];
        scope.extend_from_slice(&span_bytes);
        let mut resource = vec![0x12, scope.len() as u8];
        resource.extend_from_slice(&scope);
        let mut odd = vec![0x0a, resource.len() as u8];
        odd.extend_from_slice(&resource);
        let (fast, generic) = both(&odd);
        assert!(fast.is_ok(), "{fast:?}");
        assert_eq!(fast, generic);

        // Every cut, and bytes changed at every offset to a few values.
        for body in [&body, &odd] {
            for end in 0..body.len() {
                let (fast, generic) = both(&body[..end]);
                assert_eq!(fast, generic, "cut at {end}");
            }
            for at in 0..body.len() {
                for b in [0x00, 0x01, 0x07, 0x0a, 0x12, 0x21, 0x4a, 0x7f, 0x80, 0xff] {
                    let mut changed = body.clone();
                    changed[at] = b;
                    let (fast, generic) = both(&changed);
                    assert_eq!(fast, generic, "byte {at} set to {b:#x}");
                }
            }
        }
    }

    /// Guarantees: empty attributes, two bytes each on the wire, are
    /// counted at their decoded size, so a body of them is seen for what
    /// it becomes.
    #[test]
    fn sees_the_amplification_of_empty_elements() {
        let mut req = spans(1, 0);
        req.resource_spans[0].scope_spans[0].spans[0].attributes =
            vec![KeyValue::default(); 100_000];
        let body = req.encode_to_vec();
        let bound = spans_decoded_size(&body).expect("valid");
        assert!(body.len() < 300_000, "{} bytes", body.len());
        assert!(bound >= 100_000 * size_of::<KeyValue>(), "{bound}");
    }

    /// Guarantees: no body is counted above [`decoded_size_at_most`] of its
    /// length: not the most amplifying ones (empty attributes, empty spans,
    /// empty metrics and points, packed varints), not an ordinary one.
    #[test]
    fn no_body_counts_above_the_bound_from_its_length() {
        let mut attrs = spans(1, 0);
        attrs.resource_spans[0].scope_spans[0].spans[0].attributes =
            vec![KeyValue::default(); 10_000];
        let empty_spans = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); 10_000],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        for body in [
            attrs.encode_to_vec(),
            empty_spans.encode_to_vec(),
            spans(512, 10).encode_to_vec(),
        ] {
            let counted = spans_decoded_size(&body).expect("valid");
            assert!(counted <= decoded_size_at_most(body.len()), "{counted}");
        }
        // Repeated empty messages of every list, and a packed varint list.
        let mut body = Vec::new();
        for tag in 1..=15u8 {
            for _ in 0..100 {
                body.extend_from_slice(&[tag << 3 | 2, 0]);
            }
        }
        for walk in [spans_decoded_size, logs_decoded_size, metrics_decoded_size] {
            let counted = walk(&body).expect("valid");
            assert!(counted <= decoded_size_at_most(body.len()), "{counted}");
        }
        let metric = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric::default(); 10_000],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let counted = metrics_decoded_size(&metric).expect("valid");
        assert!(counted <= decoded_size_at_most(metric.len()), "{counted}");
        assert!(
            counted * 4 > decoded_size_at_most(metric.len()),
            "{counted}: the bound is loose"
        );
    }

    /// Guarantees: packed varints count eight bytes per value however
    /// short on the wire.
    #[test]
    fn counts_packed_varints_at_their_decoded_width() {
        // Buckets { bucket_counts: [0; 1000] } inside a point.
        use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
        use opentelemetry_proto::tonic::metrics::v1::{
            ExponentialHistogram, ScopeMetrics, metric::Data,
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                positive: Some(Buckets {
                                    offset: 0,
                                    bucket_counts: vec![0; 1000],
                                }),
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = req.encode_to_vec();
        let bound = metrics_decoded_size(&body).expect("valid");
        assert!(bound >= 1000 * 8, "{bound}");
    }

    /// Guarantees: a length past the end, a truncated varint and nesting
    /// past the decoder's limit are refused with where they are; a body
    /// the decoder accepts is accepted.
    #[test]
    fn refuses_what_the_decoder_would_refuse() {
        let err = spans_decoded_size(&[0x0a, 0x05, 0x00]).expect_err("too short");
        assert_eq!(err.offset, 2);
        assert_eq!(err.field, 1);
        assert!(err.to_string().contains("runs past the end"), "{err}");
        let err = spans_decoded_size(&[0x0a, 0x80]).expect_err("truncated");
        assert!(err.to_string().contains("truncated varint"), "{err}");

        // AnyValue nested 150 times: array_value { values { array_value ... } }
        let mut value = AnyValue::default();
        for _ in 0..150 {
            value = AnyValue {
                value: Some(Value::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![value],
                    },
                )),
            };
        }
        let mut req = spans(1, 0);
        req.resource_spans[0].scope_spans[0].spans[0].attributes = vec![KeyValue {
            key: "deep".into(),
            value: Some(value),
            ..Default::default()
        }];
        let body = req.encode_to_vec();
        assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
        let err = spans_decoded_size(&body).expect_err("too deep");
        assert!(err.to_string().contains("nested too deep"), "{err}");

        // Unknown fields (here field 99 as varint, bytes and group) are skipped.
        let mut body = spans(2, 1).encode_to_vec();
        body.extend_from_slice(&[0x98, 0x06, 0x01]); // 99: varint 1
        body.extend_from_slice(&[0x9a, 0x06, 0x02, 0xaa, 0xbb]); // 99: 2 bytes
        body.extend_from_slice(&[0x9b, 0x06, 0x08, 0x01, 0x9c, 0x06]); // 99: group
        assert!(ExportTraceServiceRequest::decode(&body[..]).is_ok());
        spans_decoded_size(&body).expect("unknown fields skipped");
    }

    /// Guarantees: JSON objects count at the largest struct they may
    /// become; braces inside strings do not count.
    #[test]
    fn bounds_json_by_its_objects() {
        let empty = json_decoded_size(b"{\"resourceSpans\":[]}");
        let many = json_decoded_size(b"{\"resourceSpans\":[{},{},{},{}]}");
        assert!(many >= empty + 4 * size_of::<Span>(), "{empty} {many}");
        let quoted = json_decoded_size(b"{\"a\":\"{{{{\\\"{{\"}");
        assert!(quoted < empty + size_of::<Span>(), "{quoted}");
    }
}
