//! Trace request protobuf -> `spans` rows, read straight from the bytes.
//!
//! [`super::spans_to_batch`] takes a request prost has decoded: every span
//! becomes a struct, every attribute a `KeyValue` with its own `String`s,
//! each allocated, copied into the rows and freed. [`SpansProto`] reads the
//! same rows from the protobuf bytes: strings and ids are copied once, from
//! the body into the columns. Only what is per container or rare goes
//! through prost: each resource and scope (decoded once per container),
//! and array and kvlist attribute values.
//!
//! The rows are the same as `spans_to_batch` makes of the decoded request,
//! refused spans and their reasons included. What the direct reader does
//! not handle exactly as prost does (see [`super::protobuf`]; also a span
//! status or attribute value given twice, which prost merges) makes it step
//! aside: [`SpansProto::scan`] or [`SpansProto::read`] answer `None`, and
//! the body is decoded by prost, which either decodes it or says what is
//! wrong with it ([`SpansProto::to_batch`], [`spans_proto_to_batch`]).

use std::ops::Range;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::build::CommonBuilder;
use super::check::{MAX_REQUEST_BYTES, Rejections, check_size, key_bytes};
use super::estimate::{ENTRY_BYTES, ROW_BYTES, resource_bytes, scope_bytes};
use super::protobuf::{Fields, Unsure, Value};
use super::spans::{LinkFields, SpanFields, SpansBuilder, check_fields};
use super::value_text::{KvRef, ValueRef};
use super::wire::{Msg, nested_fits};
use super::{ConvertError, Converted};

/// How deep the messages read here are nested in a trace request, as
/// prost counts nesting: a resource's container is 1.
const RESOURCE: u32 = 2;
const SCOPE: u32 = 3;
const SPAN_ATTRIBUTE: u32 = 4;
const NESTED_ATTRIBUTE: u32 = 5;

/// A trace export request's protobuf body, scanned: its containers, their
/// resources and scopes decoded, its spans counted.
#[derive(Debug)]
pub struct SpansProto<'a> {
    body: &'a [u8],
    resources: Vec<ResourceSpans<'a>>,
    rows: usize,
    /// The resource and scope attribute keys copied onto every row.
    repeated: usize,
    expanded: usize,
}

#[derive(Debug)]
struct ResourceSpans<'a> {
    resource: Option<Resource>,
    schema_url: &'a str,
    scopes: Vec<ScopeSpans<'a>>,
}

#[derive(Debug)]
struct ScopeSpans<'a> {
    scope: Option<InstrumentationScope>,
    schema_url: &'a str,
    /// The `ScopeSpans` message: its spans are read from it.
    message: &'a [u8],
    spans: usize,
}

impl<'a> SpansProto<'a> {
    /// Scans `body`, an `ExportTraceServiceRequest`: `None` when it holds
    /// something the direct reader leaves to prost.
    pub fn scan(body: &'a [u8]) -> Option<Self> {
        if body.len() > MAX_REQUEST_BYTES {
            return None;
        }
        let mut scan = SpansProto {
            body,
            resources: Vec::new(),
            rows: 0,
            repeated: 0,
            expanded: body.len(),
        };
        let mut fields = Fields::new(body);
        while let Some((tag, value)) = fields.next_field().ok()? {
            if tag == 1 {
                let rs = scan.resource_spans(value.bytes().ok()?).ok()?;
                scan.resources.push(rs);
            }
        }
        Some(scan)
    }

    fn resource_spans(&mut self, message: &'a [u8]) -> Result<ResourceSpans<'a>, Unsure> {
        let mut rs = ResourceSpans {
            resource: None,
            schema_url: "",
            scopes: Vec::new(),
        };
        let mut scopes = Vec::new();
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            match tag {
                1 => merge(&mut rs.resource, value, Msg::Resource, RESOURCE)?,
                2 => scopes.push(value.bytes()?),
                3 => rs.schema_url = value.str()?,
                _ => {}
            }
        }
        let resource_keys = rs.resource.as_ref().map_or(0, |r| key_bytes(&r.attributes));
        let resource_bytes = resource_bytes(rs.resource.as_ref());
        for message in scopes {
            let ss = self.scope_spans(message, resource_keys, resource_bytes)?;
            rs.scopes.push(ss);
        }
        Ok(rs)
    }

    fn scope_spans(
        &mut self,
        message: &'a [u8],
        resource_keys: usize,
        resource_bytes: usize,
    ) -> Result<ScopeSpans<'a>, Unsure> {
        let mut ss = ScopeSpans {
            scope: None,
            schema_url: "",
            message,
            spans: 0,
        };
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            match tag {
                1 => merge(&mut ss.scope, value, Msg::Scope, SCOPE)?,
                2 => {
                    self.expanded = self.expanded.saturating_add(span_entries(value.bytes()?)?);
                    ss.spans += 1;
                }
                3 => ss.schema_url = value.str()?,
                _ => {}
            }
        }
        let scope_keys = ss.scope.as_ref().map_or(0, |s| key_bytes(&s.attributes));
        self.rows += ss.spans;
        self.repeated = self
            .repeated
            .saturating_add(ss.spans.saturating_mul(resource_keys + scope_keys));
        let per_row = ROW_BYTES
            .saturating_add(resource_bytes)
            .saturating_add(scope_bytes(ss.scope.as_ref()));
        self.expanded = self
            .expanded
            .saturating_add(ss.spans.saturating_mul(per_row));
        Ok(ss)
    }

    /// The spans in the request.
    pub fn records(&self) -> usize {
        self.rows
    }

    /// The bytes the body and its rows take once converted, estimated from
    /// its lengths (as `spans_expanded_size`, without prost's structs).
    pub fn expanded_size(&self) -> usize {
        self.expanded
    }

    /// The rows of the request: read directly, or decoded by prost and
    /// converted by [`super::spans_to_batch`] when something in a span is
    /// left to it.
    pub fn to_batch(&self) -> Result<Converted, ConvertError> {
        match self.read() {
            Some(converted) => converted,
            None => decode_and_convert(self.body),
        }
    }

    /// The rows of the request read directly; `None` when something in a
    /// span is left to prost.
    pub fn read(&self) -> Option<Result<Converted, ConvertError>> {
        if let Err(e) = check_size(self.body.len(), self.repeated) {
            return Some(Err(e));
        }
        let mut out = SpansBuilder::with_capacity(self.rows);
        let mut common = CommonBuilder::with_capacity(self.rows);
        let mut rejections = Rejections::default();
        let mut span = SpanParts::default();
        for (ri, rs) in self.resources.iter().enumerate() {
            common.set_resource(rs.resource.as_ref(), rs.schema_url);
            for (si, ss) in rs.scopes.iter().enumerate() {
                common.set_scope(ss.scope.as_ref(), ss.schema_url);
                let mut fields = Fields::new(ss.message);
                let mut pi = 0;
                while let Some((tag, value)) = fields.next_field().ok()? {
                    if tag != 2 {
                        continue;
                    }
                    span.read(value.bytes().ok()?).ok()?;
                    match span.check() {
                        Ok(()) => {
                            span.append(&mut out);
                            common.push_row();
                        }
                        Err(why) => rejections.add(
                            || format!("resource_spans[{ri}].scope_spans[{si}].spans[{pi}]"),
                            why,
                        ),
                    }
                    pi += 1;
                }
            }
        }
        Some(out.finish(common).map(|batch| Converted {
            batch,
            rejected: rejections.count,
            rejection: rejections.first,
        }))
    }
}

/// Converts an `ExportTraceServiceRequest`'s protobuf body to rows: read
/// directly when it can be, decoded by prost and converted by
/// [`super::spans_to_batch`] when not.
pub fn spans_proto_to_batch(body: &[u8]) -> Result<Converted, ConvertError> {
    match SpansProto::scan(body) {
        Some(scan) => scan.to_batch(),
        None => decode_and_convert(body),
    }
}

fn decode_and_convert(body: &[u8]) -> Result<Converted, ConvertError> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| ConvertError::InvalidOtlp(format!("not a trace export request: {e}")))?;
    super::spans_to_batch(&request)
}

/// Merges one occurrence of a resource or scope field into `into`, as
/// prost merges a message field given more than once.
fn merge<M: prost::Message + Default>(
    into: &mut Option<M>,
    value: Value<'_>,
    msg: Msg,
    depth: u32,
) -> Result<(), Unsure> {
    let bytes = value.bytes()?;
    if !nested_fits(msg, bytes, depth) {
        return Err(Unsure);
    }
    into.get_or_insert_default()
        .merge(bytes)
        .map_err(|_| Unsure)
}

/// The bytes a span's attribute entries, events and links add to its row
/// (see `spans_expanded_size`), from its tags.
fn span_entries(span: &[u8]) -> Result<usize, Unsure> {
    let mut entries = 0usize;
    let mut fields = Fields::new(span);
    while let Some((tag, value)) = fields.next_field()? {
        match tag {
            9 => entries += ENTRY_BYTES,
            11 | 13 => {
                entries += 4 * ENTRY_BYTES;
                let attributes = if tag == 11 { 3 } else { 4 };
                let mut inner = Fields::new(value.bytes()?);
                while let Some((tag, _)) = inner.next_field()? {
                    if tag == attributes {
                        entries += ENTRY_BYTES;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(entries)
}

/// An attribute entry read from its `KeyValue` message; an array or kvlist
/// value is decoded by prost into [`SpanParts::nested`].
#[derive(Debug, Clone, Copy)]
struct Kv<'a> {
    key: &'a str,
    value: Slot<'a>,
    key_strindex: i32,
}

#[derive(Debug, Clone, Copy)]
enum Slot<'a> {
    Value(ValueRef<'a>),
    /// An index in [`SpanParts::nested`].
    Nested(usize),
}

impl<'a> Kv<'a> {
    fn get<'s>(&self, nested: &'s [AnyValue]) -> KvRef<'s>
    where
        'a: 's,
    {
        KvRef {
            key: self.key,
            value: match self.value {
                Slot::Value(v) => v,
                Slot::Nested(i) => ValueRef::of(Some(&nested[i])),
            },
            key_strindex: self.key_strindex,
        }
    }
}

#[derive(Debug, Default)]
struct EventParts<'a> {
    time_unix_nano: u64,
    name: &'a str,
    attributes: Range<usize>,
    dropped_attributes_count: u32,
}

#[derive(Debug, Default)]
struct LinkParts<'a> {
    fields: LinkFields<'a>,
    attributes: Range<usize>,
}

/// One span read from its message, in buffers kept from span to span.
#[derive(Debug, Default)]
struct SpanParts<'a> {
    fields: SpanFields<'a>,
    attributes: Vec<Kv<'a>>,
    events: Vec<EventParts<'a>>,
    event_attributes: Vec<Kv<'a>>,
    links: Vec<LinkParts<'a>>,
    link_attributes: Vec<Kv<'a>>,
    nested: Vec<AnyValue>,
}

impl<'a> SpanParts<'a> {
    /// Reads a `Span` message, every field of it, so that what prost would
    /// refuse anywhere in it is found before the span is checked.
    fn read(&mut self, message: &'a [u8]) -> Result<(), Unsure> {
        self.fields = SpanFields::default();
        self.attributes.clear();
        self.events.clear();
        self.event_attributes.clear();
        self.links.clear();
        self.link_attributes.clear();
        self.nested.clear();
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            let f = &mut self.fields;
            match tag {
                1 => f.trace_id = value.bytes()?,
                2 => f.span_id = value.bytes()?,
                3 => f.trace_state = value.str()?,
                4 => f.parent_span_id = value.bytes()?,
                5 => f.name = value.str()?,
                6 => f.kind = value.int32()?,
                7 => f.start_time_unix_nano = value.fixed64()?,
                8 => f.end_time_unix_nano = value.fixed64()?,
                9 => {
                    let kv = read_kv(value.bytes()?, SPAN_ATTRIBUTE, &mut self.nested)?;
                    self.attributes.push(kv);
                }
                10 => f.dropped_attributes_count = value.uint32()?,
                11 => self.read_event(value.bytes()?)?,
                12 => f.dropped_events_count = value.uint32()?,
                13 => self.read_link(value.bytes()?)?,
                14 => f.dropped_links_count = value.uint32()?,
                15 => {
                    // prost merges a status given twice: left to it.
                    if f.status.is_some() {
                        return Err(Unsure);
                    }
                    f.status = Some(read_status(value.bytes()?)?);
                }
                16 => f.flags = value.fixed32()?,
                _ => {}
            }
        }
        Ok(())
    }

    fn read_event(&mut self, message: &'a [u8]) -> Result<(), Unsure> {
        let start = self.event_attributes.len();
        let mut event = EventParts::default();
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            match tag {
                1 => event.time_unix_nano = value.fixed64()?,
                2 => event.name = value.str()?,
                3 => {
                    let kv = read_kv(value.bytes()?, NESTED_ATTRIBUTE, &mut self.nested)?;
                    self.event_attributes.push(kv);
                }
                4 => event.dropped_attributes_count = value.uint32()?,
                _ => {}
            }
        }
        event.attributes = start..self.event_attributes.len();
        self.events.push(event);
        Ok(())
    }

    fn read_link(&mut self, message: &'a [u8]) -> Result<(), Unsure> {
        let start = self.link_attributes.len();
        let mut link = LinkParts::default();
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            let f = &mut link.fields;
            match tag {
                1 => f.trace_id = value.bytes()?,
                2 => f.span_id = value.bytes()?,
                3 => f.trace_state = value.str()?,
                4 => {
                    let kv = read_kv(value.bytes()?, NESTED_ATTRIBUTE, &mut self.nested)?;
                    self.link_attributes.push(kv);
                }
                5 => f.dropped_attributes_count = value.uint32()?,
                6 => f.flags = value.fixed32()?,
                _ => {}
            }
        }
        link.attributes = start..self.link_attributes.len();
        self.links.push(link);
        Ok(())
    }

    /// Why the span cannot be a row, if it cannot.
    fn check(&self) -> Result<(), String> {
        check_fields(
            &self.fields,
            self.events.iter().map(|e| e.time_unix_nano),
            self.links
                .iter()
                .map(|l| (l.fields.trace_id, l.fields.span_id)),
        )
    }

    fn append(&self, out: &mut SpansBuilder) {
        let nested = &self.nested;
        out.append_fields(&self.fields);
        out.attributes.append_refs(
            self.attributes.iter().map(|kv| kv.get(nested)),
            &mut out.scratch,
        );
        for e in &self.events {
            out.events.push(
                e.time_unix_nano,
                e.name,
                self.event_attributes[e.attributes.clone()]
                    .iter()
                    .map(|kv| kv.get(nested)),
                e.dropped_attributes_count,
                &mut out.scratch,
            );
        }
        out.events.close_row(self.events.len());
        for l in &self.links {
            out.links.push(
                l.fields,
                self.link_attributes[l.attributes.clone()]
                    .iter()
                    .map(|kv| kv.get(nested)),
                &mut out.scratch,
            );
        }
        out.links.close_row(self.links.len());
    }
}

/// Reads a `Status` message: its code and message.
fn read_status(message: &[u8]) -> Result<(i32, &str), Unsure> {
    let (mut code, mut text) = (0, "");
    let mut fields = Fields::new(message);
    while let Some((tag, value)) = fields.next_field()? {
        match tag {
            2 => text = value.str()?,
            3 => code = value.int32()?,
            _ => {}
        }
    }
    Ok((code, text))
}

/// Reads a `KeyValue` message nested `depth` messages deep.
fn read_kv<'a>(
    message: &'a [u8],
    depth: u32,
    nested: &mut Vec<AnyValue>,
) -> Result<Kv<'a>, Unsure> {
    let mut kv = Kv {
        key: "",
        value: Slot::Value(ValueRef::Absent),
        key_strindex: 0,
    };
    let mut value = None;
    let mut fields = Fields::new(message);
    while let Some((tag, field)) = fields.next_field()? {
        match tag {
            1 => kv.key = field.str()?,
            2 => {
                // prost merges a value given twice: left to it.
                if value.is_some() {
                    return Err(Unsure);
                }
                value = Some(field.bytes()?);
            }
            3 => kv.key_strindex = field.int32()?,
            _ => {}
        }
    }
    if let Some(bytes) = value {
        kv.value = read_any(bytes, depth + 1, nested)?;
    }
    Ok(kv)
}

/// Reads an `AnyValue` message nested `depth` messages deep. The last
/// value field given wins, as in prost; one holding an array or kvlist
/// anywhere is decoded whole by prost.
fn read_any<'a>(
    message: &'a [u8],
    depth: u32,
    nested: &mut Vec<AnyValue>,
) -> Result<Slot<'a>, Unsure> {
    let mut value = ValueRef::Empty;
    let mut fields = Fields::new(message);
    while let Some((tag, field)) = fields.next_field()? {
        value = match tag {
            1 => ValueRef::Str(field.str()?),
            2 => ValueRef::Bool(field.varint()? != 0),
            3 => ValueRef::Int(field.varint()? as i64),
            4 => ValueRef::Double(f64::from_bits(field.fixed64()?)),
            5 | 6 => {
                if !nested_fits(Msg::AnyValue, message, depth) {
                    return Err(Unsure);
                }
                let any = AnyValue::decode(message).map_err(|_| Unsure)?;
                nested.push(any);
                return Ok(Slot::Nested(nested.len() - 1));
            }
            7 => ValueRef::Bytes(field.bytes()?),
            8 => ValueRef::Strindex(field.int32()?),
            _ => continue,
        };
    }
    Ok(Slot::Value(value))
}
