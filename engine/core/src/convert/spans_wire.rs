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
use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message as _;

use super::direct::{Containers, Kv, NESTED_ATTRIBUTE, Names, RECORD_ATTRIBUTE, Record, read_kv};
use super::estimate::ENTRY_BYTES;
use super::protobuf::{Fields, Unsure};
use super::spans::{LinkFields, SpanFields, SpansBuilder, check_fields};
use super::{ConvertError, Converted};

const NAMES: Names = ["resource_spans", "scope_spans", "spans"];

/// A trace export request's protobuf body, scanned: its containers, their
/// resources and scopes decoded, its spans counted.
#[derive(Debug)]
pub struct SpansProto<'a> {
    containers: Containers<'a>,
}

impl<'a> SpansProto<'a> {
    /// Scans `body`, an `ExportTraceServiceRequest`: `None` when it holds
    /// something the direct reader leaves to prost.
    pub fn scan(body: &'a [u8]) -> Option<Self> {
        Containers::scan(body, span_entries).map(|containers| SpansProto { containers })
    }

    /// The spans in the request.
    pub fn records(&self) -> usize {
        self.containers.rows
    }

    /// The bytes the body and its rows take once converted, estimated from
    /// its lengths (as `spans_expanded_size`, without prost's structs).
    pub fn expanded_size(&self) -> usize {
        self.containers.expanded
    }

    /// The rows of the request: read directly, or decoded by prost and
    /// converted by [`super::spans_to_batch`] when something in a span is
    /// left to it.
    pub fn to_batch(&self) -> Result<Converted, ConvertError> {
        match self.read() {
            Some(converted) => converted,
            None => decode_and_convert(self.containers.body),
        }
    }

    /// The rows of the request read directly; `None` when something in a
    /// span is left to prost.
    pub fn read(&self) -> Option<Result<Converted, ConvertError>> {
        let c = &self.containers;
        c.read::<SpanParts>(
            NAMES,
            SpansBuilder::with_capacity(c.rows),
            SpansBuilder::finish,
        )
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

impl<'a> Record<'a> for SpanParts<'a> {
    type Builder = SpansBuilder;

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
                    let kv = read_kv(value.bytes()?, RECORD_ATTRIBUTE, &mut self.nested)?;
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

impl<'a> SpanParts<'a> {
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
