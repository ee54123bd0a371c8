//! Trace request <-> `spans` rows.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int32Builder, Int64Builder, ListArray, PrimitiveArray, PrimitiveBuilder,
    StringBuilder, StringDictionaryBuilder, UInt32Array, UInt32Builder,
};
use arrow::datatypes::{Int32Type, TimestampNanosecondType, UInt32Type};
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message as _;

use super::build::{
    AttrColumns, CommonBuilder, IdBuilder, NestedAttrColumns, StructList, make_batch, nanos,
    non_empty, timestamp_builder,
};
use super::check::{Rejections, check_id, check_required_id, check_size, check_time, key_bytes};
use super::read::{
    Columns, CommonReader, IdCol, MapCol, StrCol, list_range, opt, runs, unix_nanos,
};
use super::value_text::KvRef;
use super::{ConvertError, Converted};
use crate::schema::{self, col};

const TABLE: &str = "spans";

/// A span's own fields (all but its attributes, events and links),
/// borrowed from a decoded `Span` or read from protobuf bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SpanFields<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub parent_span_id: &'a [u8],
    pub flags: u32,
    pub name: &'a str,
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub dropped_attributes_count: u32,
    pub dropped_events_count: u32,
    pub dropped_links_count: u32,
    /// The status' code and message, when the span has one.
    pub status: Option<(i32, &'a str)>,
}

impl<'a> SpanFields<'a> {
    fn of(s: &'a Span) -> Self {
        SpanFields {
            trace_id: &s.trace_id,
            span_id: &s.span_id,
            trace_state: &s.trace_state,
            parent_span_id: &s.parent_span_id,
            flags: s.flags,
            name: &s.name,
            kind: s.kind,
            start_time_unix_nano: s.start_time_unix_nano,
            end_time_unix_nano: s.end_time_unix_nano,
            dropped_attributes_count: s.dropped_attributes_count,
            dropped_events_count: s.dropped_events_count,
            dropped_links_count: s.dropped_links_count,
            status: s.status.as_ref().map(|st| (st.code, st.message.as_str())),
        }
    }
}

/// Why a span cannot be a row, if it cannot: `event_times` are its events'
/// times, `link_ids` its links' trace and span ids.
pub(super) fn check_fields<'a>(
    span: &SpanFields<'_>,
    event_times: impl IntoIterator<Item = u64>,
    link_ids: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), String> {
    check_required_id("trace_id", span.trace_id, 16)?;
    check_required_id("span_id", span.span_id, 8)?;
    check_id("parent_span_id", span.parent_span_id, 8, true)?;
    check_time("start_time_unix_nano", span.start_time_unix_nano)?;
    check_time("end_time_unix_nano", span.end_time_unix_nano)?;
    for (i, time) in event_times.into_iter().enumerate() {
        check_time(&format!("events[{i}].time_unix_nano"), time)?;
    }
    for (i, (trace_id, span_id)) in link_ids.into_iter().enumerate() {
        check_id(&format!("links[{i}].trace_id"), trace_id, 16, true)?;
        check_id(&format!("links[{i}].span_id"), span_id, 8, true)?;
    }
    Ok(())
}

/// Why `span` cannot be a row, if it cannot.
fn check(span: &Span) -> Result<(), String> {
    check_fields(
        &SpanFields::of(span),
        span.events.iter().map(|e| e.time_unix_nano),
        span.links
            .iter()
            .map(|l| (l.trace_id.as_slice(), l.span_id.as_slice())),
    )
}

/// The `events` column.
pub(super) struct EventsBuilder {
    list: StructList,
    time: PrimitiveBuilder<TimestampNanosecondType>,
    name: StringBuilder,
    attributes: NestedAttrColumns,
    dropped_attributes_count: UInt32Builder,
}

impl EventsBuilder {
    fn with_capacity(rows: usize) -> Self {
        EventsBuilder {
            list: StructList::with_capacity(rows),
            time: timestamp_builder(rows),
            name: StringBuilder::new(),
            attributes: NestedAttrColumns::with_capacity(rows),
            dropped_attributes_count: UInt32Builder::with_capacity(rows),
        }
    }

    fn append(&mut self, events: &[span::Event], scratch: &mut String) {
        for e in events {
            self.push(
                e.time_unix_nano,
                &e.name,
                e.attributes.iter().map(KvRef::from),
                e.dropped_attributes_count,
                scratch,
            );
        }
        self.list.close_row(events.len(), true);
    }

    /// Appends one event of the current row.
    pub(super) fn push<'k>(
        &mut self,
        time_unix_nano: u64,
        name: &str,
        attributes: impl IntoIterator<Item = KvRef<'k>>,
        dropped_attributes_count: u32,
        scratch: &mut String,
    ) {
        self.time.append_option(nanos(time_unix_nano));
        self.name.append_option(non_empty(name));
        self.attributes.append_refs(attributes, scratch);
        self.dropped_attributes_count
            .append_value(dropped_attributes_count);
    }

    /// Ends the current row, holding the `n` events pushed since the last.
    pub(super) fn close_row(&mut self, n: usize) {
        self.list.close_row(n, true);
    }

    fn finish(mut self) -> Result<ListArray, ConvertError> {
        let [attributes, types] = self.attributes.finish()?;
        self.list.finish(
            schema::event_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.name.finish()),
                attributes,
                types,
                Arc::new(self.dropped_attributes_count.finish()),
            ],
        )
    }
}

/// A link's own fields (all but its attributes).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LinkFields<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// The `links` column.
pub(super) struct LinksBuilder {
    list: StructList,
    trace_id: IdBuilder,
    span_id: IdBuilder,
    trace_state: StringBuilder,
    attributes: NestedAttrColumns,
    dropped_attributes_count: UInt32Builder,
    flags: UInt32Builder,
}

impl LinksBuilder {
    fn with_capacity(rows: usize) -> Self {
        LinksBuilder {
            list: StructList::with_capacity(rows),
            trace_id: IdBuilder::with_capacity(16, 0),
            span_id: IdBuilder::with_capacity(8, 0),
            trace_state: StringBuilder::new(),
            attributes: NestedAttrColumns::with_capacity(0),
            dropped_attributes_count: UInt32Builder::new(),
            flags: UInt32Builder::new(),
        }
    }

    fn append(&mut self, links: &[span::Link], scratch: &mut String) {
        for l in links {
            self.push(
                LinkFields {
                    trace_id: &l.trace_id,
                    span_id: &l.span_id,
                    trace_state: &l.trace_state,
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                },
                l.attributes.iter().map(KvRef::from),
                scratch,
            );
        }
        self.list.close_row(links.len(), true);
    }

    /// Appends one link of the current row.
    pub(super) fn push<'k>(
        &mut self,
        link: LinkFields<'_>,
        attributes: impl IntoIterator<Item = KvRef<'k>>,
        scratch: &mut String,
    ) {
        self.trace_id.append(link.trace_id);
        self.span_id.append(link.span_id);
        self.trace_state.append_option(non_empty(link.trace_state));
        self.attributes.append_refs(attributes, scratch);
        self.dropped_attributes_count
            .append_value(link.dropped_attributes_count);
        self.flags.append_value(link.flags);
    }

    /// Ends the current row, holding the `n` links pushed since the last.
    pub(super) fn close_row(&mut self, n: usize) {
        self.list.close_row(n, true);
    }

    fn finish(mut self) -> Result<ListArray, ConvertError> {
        let [attributes, types] = self.attributes.finish()?;
        self.list.finish(
            schema::link_fields(),
            vec![
                Arc::new(self.trace_id.finish()?),
                Arc::new(self.span_id.finish()?),
                Arc::new(self.trace_state.finish()),
                attributes,
                types,
                Arc::new(self.dropped_attributes_count.finish()),
                Arc::new(self.flags.finish()),
            ],
        )
    }
}

/// The columns of the `spans` table before the common ones.
pub(super) struct SpansBuilder {
    start_time: PrimitiveBuilder<TimestampNanosecondType>,
    end_time: PrimitiveBuilder<TimestampNanosecondType>,
    duration_ns: Int64Builder,
    trace_id: IdBuilder,
    span_id: IdBuilder,
    parent_span_id: IdBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    name: StringDictionaryBuilder<Int32Type>,
    kind: Int32Builder,
    pub(super) attributes: AttrColumns,
    dropped_attributes_count: UInt32Builder,
    pub(super) events: EventsBuilder,
    dropped_events_count: UInt32Builder,
    pub(super) links: LinksBuilder,
    dropped_links_count: UInt32Builder,
    status_code: Int32Builder,
    status_message: StringBuilder,
    pub(super) scratch: String,
}

impl SpansBuilder {
    pub(super) fn with_capacity(rows: usize) -> Self {
        SpansBuilder {
            start_time: timestamp_builder(rows),
            end_time: timestamp_builder(rows),
            duration_ns: Int64Builder::with_capacity(rows),
            trace_id: IdBuilder::with_capacity(16, rows),
            span_id: IdBuilder::with_capacity(8, rows),
            parent_span_id: IdBuilder::with_capacity(8, rows),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::with_capacity(rows),
            name: StringDictionaryBuilder::with_capacity(rows, 64, 1024),
            kind: Int32Builder::with_capacity(rows),
            attributes: AttrColumns::with_capacity(rows),
            dropped_attributes_count: UInt32Builder::with_capacity(rows),
            events: EventsBuilder::with_capacity(rows),
            dropped_events_count: UInt32Builder::with_capacity(rows),
            links: LinksBuilder::with_capacity(rows),
            dropped_links_count: UInt32Builder::with_capacity(rows),
            status_code: Int32Builder::with_capacity(rows),
            status_message: StringBuilder::new(),
            scratch: String::new(),
        }
    }

    fn append(&mut self, s: &Span) {
        self.append_fields(&SpanFields::of(s));
        self.attributes.append(&s.attributes, &mut self.scratch);
        self.events.append(&s.events, &mut self.scratch);
        self.links.append(&s.links, &mut self.scratch);
    }

    /// Appends a row's own fields; the caller appends its attributes,
    /// events and links.
    pub(super) fn append_fields(&mut self, s: &SpanFields<'_>) {
        let start = nanos(s.start_time_unix_nano);
        let end = nanos(s.end_time_unix_nano);
        self.start_time.append_option(start);
        self.end_time.append_option(end);
        // Both are within 0..=i64::MAX, so the difference fits.
        self.duration_ns
            .append_option(start.zip(end).map(|(start, end)| end - start));
        self.trace_id.append(s.trace_id);
        self.span_id.append(s.span_id);
        self.parent_span_id.append(s.parent_span_id);
        self.trace_state.append_option(non_empty(s.trace_state));
        self.flags.append_value(s.flags);
        self.name.append_option(non_empty(s.name));
        self.kind.append_value(s.kind);
        self.dropped_attributes_count
            .append_value(s.dropped_attributes_count);
        self.dropped_events_count
            .append_value(s.dropped_events_count);
        self.dropped_links_count.append_value(s.dropped_links_count);
        self.status_code
            .append_option(s.status.map(|(code, _)| code));
        self.status_message
            .append_option(s.status.and_then(|(_, message)| non_empty(message)));
    }

    pub(super) fn finish(mut self, common: CommonBuilder<'_>) -> Result<RecordBatch, ConvertError> {
        let (service_name, resource_and_scope) = common.finish()?;
        let [attributes, attributes_types] = self.attributes.finish()?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.start_time.finish()),
            Arc::new(self.end_time.finish()),
            Arc::new(self.duration_ns.finish()),
            service_name,
            Arc::new(self.trace_id.finish()?),
            Arc::new(self.span_id.finish()?),
            Arc::new(self.parent_span_id.finish()?),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            attributes,
            attributes_types,
            Arc::new(self.dropped_attributes_count.finish()),
            Arc::new(self.events.finish()?),
            Arc::new(self.dropped_events_count.finish()),
            Arc::new(self.links.finish()?),
            Arc::new(self.dropped_links_count.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
        ];
        columns.extend(resource_and_scope);
        make_batch(schema::spans_schema(), columns)
    }
}

pub(super) fn to_batch(req: &ExportTraceServiceRequest) -> Result<Converted, ConvertError> {
    let mut rows = 0usize;
    let mut repeated = 0usize;
    for rs in &req.resource_spans {
        let resource_keys = rs.resource.as_ref().map_or(0, |r| key_bytes(&r.attributes));
        for ss in &rs.scope_spans {
            let scope_keys = ss.scope.as_ref().map_or(0, |s| key_bytes(&s.attributes));
            rows += ss.spans.len();
            repeated =
                repeated.saturating_add(ss.spans.len().saturating_mul(resource_keys + scope_keys));
        }
    }
    check_size(req.encoded_len(), repeated)?;

    let mut out = SpansBuilder::with_capacity(rows);
    let mut common = CommonBuilder::with_capacity(rows);
    let mut rejections = Rejections::default();
    for (ri, rs) in req.resource_spans.iter().enumerate() {
        common.set_resource(rs.resource.as_ref(), &rs.schema_url);
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            common.set_scope(ss.scope.as_ref(), &ss.schema_url);
            for (pi, span) in ss.spans.iter().enumerate() {
                if let Err(why) = check(span) {
                    rejections.add(
                        || format!("resource_spans[{ri}].scope_spans[{si}].spans[{pi}]"),
                        why,
                    );
                    continue;
                }
                out.append(span);
                common.push_row();
            }
        }
    }
    Ok(Converted {
        batch: out.finish(common)?,
        rejected: rejections.count,
        rejection: rejections.first,
    })
}

/// The `events` column read back.
struct EventsReader {
    list: ListArray,
    time: PrimitiveArray<TimestampNanosecondType>,
    name: StrCol,
    attributes: MapCol,
    attributes_types: StrCol,
    dropped_attributes_count: UInt32Array,
}

impl EventsReader {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        let (list, items) = cols.struct_list(col::EVENTS)?;
        Ok(EventsReader {
            list,
            time: items.timestamp(col::TIME)?,
            name: items.string(col::NAME)?,
            attributes: items.map(col::ATTRIBUTES)?,
            attributes_types: items.string(col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: items
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
        })
    }

    fn events(&self, i: usize) -> Vec<span::Event> {
        list_range(&self.list, i)
            .unwrap_or_default()
            .map(|j| span::Event {
                time_unix_nano: unix_nanos(opt(&self.time, j)),
                name: self.name.text(j),
                attributes: self
                    .attributes
                    .attributes(j, self.attributes_types.get(j))
                    .unwrap_or_default(),
                dropped_attributes_count: opt(&self.dropped_attributes_count, j).unwrap_or(0),
            })
            .collect()
    }
}

/// The `links` column read back.
struct LinksReader {
    list: ListArray,
    trace_id: IdCol,
    span_id: IdCol,
    trace_state: StrCol,
    attributes: MapCol,
    attributes_types: StrCol,
    dropped_attributes_count: UInt32Array,
    flags: UInt32Array,
}

impl LinksReader {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        let (list, items) = cols.struct_list(col::LINKS)?;
        Ok(LinksReader {
            list,
            trace_id: items.id(col::TRACE_ID, 16)?,
            span_id: items.id(col::SPAN_ID, 8)?,
            trace_state: items.string(col::TRACE_STATE)?,
            attributes: items.map(col::ATTRIBUTES)?,
            attributes_types: items.string(col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: items
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
            flags: items.primitive::<UInt32Type>(col::FLAGS)?,
        })
    }

    fn links(&self, i: usize) -> Vec<span::Link> {
        list_range(&self.list, i)
            .unwrap_or_default()
            .map(|j| span::Link {
                trace_id: self.trace_id.get(j),
                span_id: self.span_id.get(j),
                trace_state: self.trace_state.text(j),
                attributes: self
                    .attributes
                    .attributes(j, self.attributes_types.get(j))
                    .unwrap_or_default(),
                dropped_attributes_count: opt(&self.dropped_attributes_count, j).unwrap_or(0),
                flags: opt(&self.flags, j).unwrap_or(0),
            })
            .collect()
    }
}

/// The `spans` columns read back.
struct SpansReader {
    start_time: PrimitiveArray<TimestampNanosecondType>,
    end_time: PrimitiveArray<TimestampNanosecondType>,
    trace_id: IdCol,
    span_id: IdCol,
    parent_span_id: IdCol,
    trace_state: StrCol,
    flags: UInt32Array,
    name: StrCol,
    kind: Int32Array,
    attributes: MapCol,
    attributes_types: StrCol,
    dropped_attributes_count: UInt32Array,
    events: EventsReader,
    dropped_events_count: UInt32Array,
    links: LinksReader,
    dropped_links_count: UInt32Array,
    status_code: Int32Array,
    status_message: StrCol,
}

impl SpansReader {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        Ok(SpansReader {
            start_time: cols.timestamp(col::START_TIME)?,
            end_time: cols.timestamp(col::END_TIME)?,
            trace_id: cols.id(col::TRACE_ID, 16)?,
            span_id: cols.id(col::SPAN_ID, 8)?,
            parent_span_id: cols.id(col::PARENT_SPAN_ID, 8)?,
            trace_state: cols.string(col::TRACE_STATE)?,
            flags: cols.primitive::<UInt32Type>(col::FLAGS)?,
            name: cols.string(col::NAME)?,
            kind: cols.primitive::<Int32Type>(col::KIND)?,
            attributes: cols.map(col::ATTRIBUTES)?,
            attributes_types: cols.string(col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: cols
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
            events: EventsReader::new(cols)?,
            dropped_events_count: cols.primitive::<UInt32Type>(col::DROPPED_EVENTS_COUNT)?,
            links: LinksReader::new(cols)?,
            dropped_links_count: cols.primitive::<UInt32Type>(col::DROPPED_LINKS_COUNT)?,
            status_code: cols.primitive::<Int32Type>(col::STATUS_CODE)?,
            status_message: cols.string(col::STATUS_MESSAGE)?,
        })
    }

    fn span(&self, i: usize) -> Span {
        Span {
            trace_id: self.trace_id.get(i),
            span_id: self.span_id.get(i),
            trace_state: self.trace_state.text(i),
            parent_span_id: self.parent_span_id.get(i),
            flags: opt(&self.flags, i).unwrap_or(0),
            name: self.name.text(i),
            kind: opt(&self.kind, i).unwrap_or(0),
            start_time_unix_nano: unix_nanos(opt(&self.start_time, i)),
            end_time_unix_nano: unix_nanos(opt(&self.end_time, i)),
            attributes: self
                .attributes
                .attributes(i, self.attributes_types.get(i))
                .unwrap_or_default(),
            dropped_attributes_count: opt(&self.dropped_attributes_count, i).unwrap_or(0),
            events: self.events.events(i),
            dropped_events_count: opt(&self.dropped_events_count, i).unwrap_or(0),
            links: self.links.links(i),
            dropped_links_count: opt(&self.dropped_links_count, i).unwrap_or(0),
            status: opt(&self.status_code, i).map(|code| Status {
                message: self.status_message.text(i),
                code,
            }),
        }
    }
}

pub(super) fn from_batch(batch: &RecordBatch) -> Result<ExportTraceServiceRequest, ConvertError> {
    let cols = Columns::of_batch(batch, TABLE);
    let common = CommonReader::new(&cols)?;
    let spans = SpansReader::new(&cols)?;
    let resource_spans = runs(0..batch.num_rows(), |a, b| common.same_resource(a, b))
        .map(|res| {
            let first = res.start;
            let scope_spans = runs(res, |a, b| common.same_scope(a, b))
                .map(|scope| ScopeSpans {
                    scope: common.scope(scope.start),
                    schema_url: common.scope_schema_url(scope.start),
                    spans: scope.map(|i| spans.span(i)).collect(),
                })
                .collect();
            Ok(ResourceSpans {
                resource: common.resource(first)?,
                scope_spans,
                schema_url: common.resource_schema_url(first),
            })
        })
        .collect::<Result<_, ConvertError>>()?;
    Ok(ExportTraceServiceRequest { resource_spans })
}
