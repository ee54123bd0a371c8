//! `logs` rows -> `LogRecord` messages, field by field in prost's order (by
//! field number: `observed_time_unix_nano`, 11, after `span_id`).

use arrow::array::{FixedSizeBinaryArray, Int32Array, PrimitiveArray, UInt32Array};
use arrow::datatypes::{Int32Type, TimestampNanosecondType, UInt32Type};

use super::super::ConvertError;
use super::super::read::{Columns, StrCol, opt, unix_nanos};
use super::attrs::{AttrCol, write_value};
use super::out::Out;
use super::{Records, id, id_col};
use crate::schema::col;

/// The fields of `LogRecord`.
mod record {
    pub const TIME: u32 = 1;
    pub const OBSERVED_TIME: u32 = 11;
    pub const SEVERITY_NUMBER: u32 = 2;
    pub const SEVERITY_TEXT: u32 = 3;
    pub const BODY: u32 = 5;
    pub const ATTRIBUTES: u32 = 6;
    pub const DROPPED_ATTRIBUTES_COUNT: u32 = 7;
    pub const FLAGS: u32 = 8;
    pub const TRACE_ID: u32 = 9;
    pub const SPAN_ID: u32 = 10;
    pub const EVENT_NAME: u32 = 12;
}

/// The columns of the `logs` table a `LogRecord` is made of.
pub(super) struct LogCols {
    time: PrimitiveArray<TimestampNanosecondType>,
    observed_time: PrimitiveArray<TimestampNanosecondType>,
    severity_number: Int32Array,
    severity_text: StrCol,
    body: StrCol,
    body_type: StrCol,
    attributes: AttrCol,
    dropped_attributes_count: UInt32Array,
    flags: UInt32Array,
    trace_id: FixedSizeBinaryArray,
    span_id: FixedSizeBinaryArray,
    event_name: StrCol,
}

impl Records for LogCols {
    const TABLE: &'static str = "logs";

    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        Ok(LogCols {
            time: cols.timestamp(col::TIME)?,
            observed_time: cols.timestamp(col::OBSERVED_TIME)?,
            severity_number: cols.primitive::<Int32Type>(col::SEVERITY_NUMBER)?,
            severity_text: cols.string(col::SEVERITY_TEXT)?,
            body: cols.string(col::BODY)?,
            body_type: cols.string(col::BODY_TYPE)?,
            attributes: AttrCol::new(cols, col::ATTRIBUTES, col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: cols
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
            flags: cols.primitive::<UInt32Type>(col::FLAGS)?,
            trace_id: id_col(cols, col::TRACE_ID, 16)?,
            span_id: id_col(cols, col::SPAN_ID, 8)?,
            event_name: cols.string(col::EVENT_NAME)?,
        })
    }

    fn write(&self, out: &mut Out<'_>, field: u32, i: usize, scratch: &mut Vec<u8>) {
        out.message(field, 2, |out| {
            out.fixed64(record::TIME, unix_nanos(opt(&self.time, i)));
            out.int32(
                record::SEVERITY_NUMBER,
                opt(&self.severity_number, i).unwrap_or(0),
            );
            out.string(
                record::SEVERITY_TEXT,
                self.severity_text.get(i).unwrap_or_default(),
            );
            // A null type is no body; an empty one is a string.
            if let Some(types) = self.body_type.get(i) {
                let type_letter = types.as_bytes().first().copied().unwrap_or(b's');
                write_value(out, record::BODY, type_letter, self.body.get(i), scratch);
            }
            self.attributes.write(out, record::ATTRIBUTES, i, scratch);
            out.uint32(
                record::DROPPED_ATTRIBUTES_COUNT,
                opt(&self.dropped_attributes_count, i).unwrap_or(0),
            );
            out.fixed32(record::FLAGS, opt(&self.flags, i).unwrap_or(0));
            out.bytes(record::TRACE_ID, id(&self.trace_id, i));
            out.bytes(record::SPAN_ID, id(&self.span_id, i));
            out.fixed64(
                record::OBSERVED_TIME,
                unix_nanos(opt(&self.observed_time, i)),
            );
            out.string(
                record::EVENT_NAME,
                self.event_name.get(i).unwrap_or_default(),
            );
        });
    }
}
