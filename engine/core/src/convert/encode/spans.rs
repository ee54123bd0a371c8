//! `spans` rows -> `Span` messages, field by field in prost's order (by
//! field number: `flags`, 16, last).

use arrow::array::{FixedSizeBinaryArray, Int32Array, ListArray, PrimitiveArray, UInt32Array};
use arrow::datatypes::{Int32Type, TimestampNanosecondType, UInt32Type};

use super::super::ConvertError;
use super::super::read::{Columns, StrCol, list_range, opt, unix_nanos};
use super::attrs::AttrCol;
use super::out::Out;
use super::{Records, id, id_col};
use crate::schema::col;

/// The fields of `Span`.
mod span {
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const TRACE_STATE: u32 = 3;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const FLAGS: u32 = 16;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START_TIME: u32 = 7;
    pub const END_TIME: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const DROPPED_ATTRIBUTES_COUNT: u32 = 10;
    pub const EVENTS: u32 = 11;
    pub const DROPPED_EVENTS_COUNT: u32 = 12;
    pub const LINKS: u32 = 13;
    pub const DROPPED_LINKS_COUNT: u32 = 14;
    pub const STATUS: u32 = 15;
}

/// The fields of `Span.Event`.
mod event {
    pub const TIME: u32 = 1;
    pub const NAME: u32 = 2;
    pub const ATTRIBUTES: u32 = 3;
    pub const DROPPED_ATTRIBUTES_COUNT: u32 = 4;
}

/// The fields of `Span.Link`.
mod link {
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const TRACE_STATE: u32 = 3;
    pub const ATTRIBUTES: u32 = 4;
    pub const DROPPED_ATTRIBUTES_COUNT: u32 = 5;
    pub const FLAGS: u32 = 6;
}

/// The fields of `Status`.
mod status {
    pub const MESSAGE: u32 = 2;
    pub const CODE: u32 = 3;
}

/// The `events` column.
struct Events {
    list: ListArray,
    time: PrimitiveArray<TimestampNanosecondType>,
    name: StrCol,
    attributes: AttrCol,
    dropped_attributes_count: UInt32Array,
}

impl Events {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        let (list, items) = cols.struct_list(col::EVENTS)?;
        Ok(Events {
            list,
            time: items.timestamp(col::TIME)?,
            name: items.string(col::NAME)?,
            attributes: AttrCol::new(&items, col::ATTRIBUTES, col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: items
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
        })
    }

    fn write(&self, out: &mut Out<'_>, i: usize, scratch: &mut Vec<u8>) {
        for j in list_range(&self.list, i).unwrap_or_default() {
            out.message(span::EVENTS, 1, |out| {
                out.fixed64(event::TIME, unix_nanos(opt(&self.time, j)));
                out.string(event::NAME, self.name.get(j).unwrap_or_default());
                self.attributes.write(out, event::ATTRIBUTES, j, scratch);
                out.uint32(
                    event::DROPPED_ATTRIBUTES_COUNT,
                    opt(&self.dropped_attributes_count, j).unwrap_or(0),
                );
            });
        }
    }
}

/// The `links` column.
struct Links {
    list: ListArray,
    trace_id: FixedSizeBinaryArray,
    span_id: FixedSizeBinaryArray,
    trace_state: StrCol,
    attributes: AttrCol,
    dropped_attributes_count: UInt32Array,
    flags: UInt32Array,
}

impl Links {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        let (list, items) = cols.struct_list(col::LINKS)?;
        Ok(Links {
            list,
            trace_id: id_col(&items, col::TRACE_ID, 16)?,
            span_id: id_col(&items, col::SPAN_ID, 8)?,
            trace_state: items.string(col::TRACE_STATE)?,
            attributes: AttrCol::new(&items, col::ATTRIBUTES, col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: items
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
            flags: items.primitive::<UInt32Type>(col::FLAGS)?,
        })
    }

    fn write(&self, out: &mut Out<'_>, i: usize, scratch: &mut Vec<u8>) {
        for j in list_range(&self.list, i).unwrap_or_default() {
            out.message(span::LINKS, 1, |out| {
                out.bytes(link::TRACE_ID, id(&self.trace_id, j));
                out.bytes(link::SPAN_ID, id(&self.span_id, j));
                out.string(
                    link::TRACE_STATE,
                    self.trace_state.get(j).unwrap_or_default(),
                );
                self.attributes.write(out, link::ATTRIBUTES, j, scratch);
                out.uint32(
                    link::DROPPED_ATTRIBUTES_COUNT,
                    opt(&self.dropped_attributes_count, j).unwrap_or(0),
                );
                out.fixed32(link::FLAGS, opt(&self.flags, j).unwrap_or(0));
            });
        }
    }
}

/// The columns of the `spans` table a `Span` is made of.
pub(super) struct SpanCols {
    start_time: PrimitiveArray<TimestampNanosecondType>,
    end_time: PrimitiveArray<TimestampNanosecondType>,
    trace_id: FixedSizeBinaryArray,
    span_id: FixedSizeBinaryArray,
    parent_span_id: FixedSizeBinaryArray,
    trace_state: StrCol,
    flags: UInt32Array,
    name: StrCol,
    kind: Int32Array,
    attributes: AttrCol,
    dropped_attributes_count: UInt32Array,
    events: Events,
    dropped_events_count: UInt32Array,
    links: Links,
    dropped_links_count: UInt32Array,
    status_code: Int32Array,
    status_message: StrCol,
}

impl Records for SpanCols {
    const TABLE: &'static str = "spans";

    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        Ok(SpanCols {
            start_time: cols.timestamp(col::START_TIME)?,
            end_time: cols.timestamp(col::END_TIME)?,
            trace_id: id_col(cols, col::TRACE_ID, 16)?,
            span_id: id_col(cols, col::SPAN_ID, 8)?,
            parent_span_id: id_col(cols, col::PARENT_SPAN_ID, 8)?,
            trace_state: cols.string(col::TRACE_STATE)?,
            flags: cols.primitive::<UInt32Type>(col::FLAGS)?,
            name: cols.string(col::NAME)?,
            kind: cols.primitive::<Int32Type>(col::KIND)?,
            attributes: AttrCol::new(cols, col::ATTRIBUTES, col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: cols
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
            events: Events::new(cols)?,
            dropped_events_count: cols.primitive::<UInt32Type>(col::DROPPED_EVENTS_COUNT)?,
            links: Links::new(cols)?,
            dropped_links_count: cols.primitive::<UInt32Type>(col::DROPPED_LINKS_COUNT)?,
            status_code: cols.primitive::<Int32Type>(col::STATUS_CODE)?,
            status_message: cols.string(col::STATUS_MESSAGE)?,
        })
    }

    fn write(&self, out: &mut Out<'_>, field: u32, i: usize, scratch: &mut Vec<u8>) {
        out.message(field, 2, |out| {
            out.bytes(span::TRACE_ID, id(&self.trace_id, i));
            out.bytes(span::SPAN_ID, id(&self.span_id, i));
            out.string(
                span::TRACE_STATE,
                self.trace_state.get(i).unwrap_or_default(),
            );
            out.bytes(span::PARENT_SPAN_ID, id(&self.parent_span_id, i));
            out.string(span::NAME, self.name.get(i).unwrap_or_default());
            out.int32(span::KIND, opt(&self.kind, i).unwrap_or(0));
            out.fixed64(span::START_TIME, unix_nanos(opt(&self.start_time, i)));
            out.fixed64(span::END_TIME, unix_nanos(opt(&self.end_time, i)));
            self.attributes.write(out, span::ATTRIBUTES, i, scratch);
            out.uint32(
                span::DROPPED_ATTRIBUTES_COUNT,
                opt(&self.dropped_attributes_count, i).unwrap_or(0),
            );
            self.events.write(out, i, scratch);
            out.uint32(
                span::DROPPED_EVENTS_COUNT,
                opt(&self.dropped_events_count, i).unwrap_or(0),
            );
            self.links.write(out, i, scratch);
            out.uint32(
                span::DROPPED_LINKS_COUNT,
                opt(&self.dropped_links_count, i).unwrap_or(0),
            );
            if let Some(code) = opt(&self.status_code, i) {
                out.message(span::STATUS, 1, |out| {
                    out.string(
                        status::MESSAGE,
                        self.status_message.get(i).unwrap_or_default(),
                    );
                    out.int32(status::CODE, code);
                });
            }
            out.fixed32(span::FLAGS, opt(&self.flags, i).unwrap_or(0));
        });
    }
}
