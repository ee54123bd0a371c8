//! Logs request <-> `logs` rows.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int32Builder, PrimitiveArray, PrimitiveBuilder, StringBuilder,
    StringDictionaryBuilder, UInt32Array, UInt32Builder,
};
use arrow::datatypes::{Int32Type, TimestampNanosecondType, UInt32Type};
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message as _;

use super::build::{
    AttrColumns, CommonBuilder, IdBuilder, make_batch, nanos, non_empty, timestamp_builder,
};
use super::check::{Rejections, check_id, check_size, check_time, key_bytes};
use super::read::{Columns, CommonReader, IdCol, MapCol, StrCol, opt, runs, unix_nanos};
use super::value_text::{KvRef, ValueRef, append_value_text, value_from_text};
use super::{ConvertError, Converted};
use crate::schema::{self, col};

const TABLE: &str = "logs";

/// A log record's own fields (all but its body and attributes), borrowed
/// from a decoded `LogRecord` or read from protobuf bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LogFields<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: &'a str,
    pub dropped_attributes_count: u32,
    pub flags: u32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub event_name: &'a str,
}

impl<'a> LogFields<'a> {
    fn of(r: &'a LogRecord) -> Self {
        LogFields {
            time_unix_nano: r.time_unix_nano,
            observed_time_unix_nano: r.observed_time_unix_nano,
            severity_number: r.severity_number,
            severity_text: &r.severity_text,
            dropped_attributes_count: r.dropped_attributes_count,
            flags: r.flags,
            trace_id: &r.trace_id,
            span_id: &r.span_id,
            event_name: &r.event_name,
        }
    }

    /// Why the record cannot be a row, if it cannot.
    pub(super) fn check(&self) -> Result<(), String> {
        check_time("time_unix_nano", self.time_unix_nano)?;
        check_time("observed_time_unix_nano", self.observed_time_unix_nano)?;
        check_id("trace_id", self.trace_id, 16, true)?;
        check_id("span_id", self.span_id, 8, true)
    }
}

/// Why `record` cannot be a row, if it cannot.
fn check(record: &LogRecord) -> Result<(), String> {
    LogFields::of(record).check()
}

/// The columns of the `logs` table before the common ones.
pub(super) struct LogsBuilder {
    time: PrimitiveBuilder<TimestampNanosecondType>,
    observed_time: PrimitiveBuilder<TimestampNanosecondType>,
    severity_number: Int32Builder,
    severity_text: StringDictionaryBuilder<Int32Type>,
    body: StringBuilder,
    body_type: StringDictionaryBuilder<Int32Type>,
    attributes: AttrColumns,
    dropped_attributes_count: UInt32Builder,
    flags: UInt32Builder,
    trace_id: IdBuilder,
    span_id: IdBuilder,
    event_name: StringDictionaryBuilder<Int32Type>,
    scratch: String,
}

impl LogsBuilder {
    pub(super) fn with_capacity(rows: usize) -> Self {
        LogsBuilder {
            time: timestamp_builder(rows),
            observed_time: timestamp_builder(rows),
            severity_number: Int32Builder::with_capacity(rows),
            severity_text: StringDictionaryBuilder::with_capacity(rows, 32, 256),
            body: StringBuilder::with_capacity(rows, rows * 64),
            body_type: StringDictionaryBuilder::with_capacity(rows, 8, 8),
            attributes: AttrColumns::with_capacity(rows),
            dropped_attributes_count: UInt32Builder::with_capacity(rows),
            flags: UInt32Builder::with_capacity(rows),
            trace_id: IdBuilder::with_capacity(16, rows),
            span_id: IdBuilder::with_capacity(8, rows),
            event_name: StringDictionaryBuilder::with_capacity(rows, 32, 256),
            scratch: String::new(),
        }
    }

    fn append(&mut self, r: &LogRecord) {
        self.append_parts(
            &LogFields::of(r),
            ValueRef::of(r.body.as_ref()),
            r.attributes.iter().map(KvRef::from),
        );
    }

    /// Appends one row: the record's own fields, its body and attributes.
    pub(super) fn append_parts<'k>(
        &mut self,
        r: &LogFields<'_>,
        body: ValueRef<'_>,
        attributes: impl IntoIterator<Item = KvRef<'k>>,
    ) {
        self.time.append_option(nanos(r.time_unix_nano));
        self.observed_time
            .append_option(nanos(r.observed_time_unix_nano));
        self.severity_number.append_value(r.severity_number);
        self.severity_text.append_option(non_empty(r.severity_text));
        append_value_text(&mut self.body, body, &mut self.scratch);
        self.body_type.append_option(body.type_name());
        self.attributes.append_refs(attributes, &mut self.scratch);
        self.dropped_attributes_count
            .append_value(r.dropped_attributes_count);
        self.flags.append_value(r.flags);
        self.trace_id.append(r.trace_id);
        self.span_id.append(r.span_id);
        self.event_name.append_option(non_empty(r.event_name));
    }

    pub(super) fn finish(mut self, common: CommonBuilder<'_>) -> Result<RecordBatch, ConvertError> {
        let (service_name, resource_and_scope) = common.finish()?;
        let [attributes, attributes_types] = self.attributes.finish()?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.observed_time.finish()),
            service_name,
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.body_type.finish()),
            attributes,
            attributes_types,
            Arc::new(self.dropped_attributes_count.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.trace_id.finish()?),
            Arc::new(self.span_id.finish()?),
            Arc::new(self.event_name.finish()),
        ];
        columns.extend(resource_and_scope);
        make_batch(schema::logs_schema(), columns)
    }
}

pub(super) fn to_batch(req: &ExportLogsServiceRequest) -> Result<Converted, ConvertError> {
    let mut rows = 0usize;
    let mut repeated = 0usize;
    for rl in &req.resource_logs {
        let resource_keys = rl.resource.as_ref().map_or(0, |r| key_bytes(&r.attributes));
        for sl in &rl.scope_logs {
            let scope_keys = sl.scope.as_ref().map_or(0, |s| key_bytes(&s.attributes));
            rows += sl.log_records.len();
            repeated = repeated.saturating_add(
                sl.log_records
                    .len()
                    .saturating_mul(resource_keys + scope_keys),
            );
        }
    }
    check_size(req.encoded_len(), repeated)?;

    let mut out = LogsBuilder::with_capacity(rows);
    let mut common = CommonBuilder::with_capacity(rows);
    let mut rejections = Rejections::default();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        common.set_resource(rl.resource.as_ref(), &rl.schema_url);
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            common.set_scope(sl.scope.as_ref(), &sl.schema_url);
            for (li, record) in sl.log_records.iter().enumerate() {
                if let Err(why) = check(record) {
                    rejections.add(
                        || format!("resource_logs[{ri}].scope_logs[{si}].log_records[{li}]"),
                        why,
                    );
                    continue;
                }
                out.append(record);
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

/// The `logs` columns read back.
struct LogsReader {
    time: PrimitiveArray<TimestampNanosecondType>,
    observed_time: PrimitiveArray<TimestampNanosecondType>,
    severity_number: Int32Array,
    severity_text: StrCol,
    body: StrCol,
    body_type: StrCol,
    attributes: MapCol,
    attributes_types: StrCol,
    dropped_attributes_count: UInt32Array,
    flags: UInt32Array,
    trace_id: IdCol,
    span_id: IdCol,
    event_name: StrCol,
}

impl LogsReader {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        Ok(LogsReader {
            time: cols.timestamp(col::TIME)?,
            observed_time: cols.timestamp(col::OBSERVED_TIME)?,
            severity_number: cols.primitive::<Int32Type>(col::SEVERITY_NUMBER)?,
            severity_text: cols.string(col::SEVERITY_TEXT)?,
            body: cols.string(col::BODY)?,
            body_type: cols.string(col::BODY_TYPE)?,
            attributes: cols.map(col::ATTRIBUTES)?,
            attributes_types: cols.string(col::ATTRIBUTES_TYPES)?,
            dropped_attributes_count: cols
                .primitive::<UInt32Type>(col::DROPPED_ATTRIBUTES_COUNT)?,
            flags: cols.primitive::<UInt32Type>(col::FLAGS)?,
            trace_id: cols.id(col::TRACE_ID, 16)?,
            span_id: cols.id(col::SPAN_ID, 8)?,
            event_name: cols.string(col::EVENT_NAME)?,
        })
    }

    fn record(&self, i: usize) -> LogRecord {
        let body = self.body_type.get(i).and_then(|t| {
            let letter = t.as_bytes().first().copied().unwrap_or(b's');
            value_from_text(letter, self.body.get(i))
        });
        LogRecord {
            time_unix_nano: unix_nanos(opt(&self.time, i)),
            observed_time_unix_nano: unix_nanos(opt(&self.observed_time, i)),
            severity_number: opt(&self.severity_number, i).unwrap_or(0),
            severity_text: self.severity_text.text(i),
            body,
            attributes: self
                .attributes
                .attributes(i, self.attributes_types.get(i))
                .unwrap_or_default(),
            dropped_attributes_count: opt(&self.dropped_attributes_count, i).unwrap_or(0),
            flags: opt(&self.flags, i).unwrap_or(0),
            trace_id: self.trace_id.get(i),
            span_id: self.span_id.get(i),
            event_name: self.event_name.text(i),
        }
    }
}

pub(super) fn from_batch(batch: &RecordBatch) -> Result<ExportLogsServiceRequest, ConvertError> {
    let cols = Columns::of_batch(batch, TABLE);
    let common = CommonReader::new(&cols)?;
    let logs = LogsReader::new(&cols)?;
    let resource_logs = runs(0..batch.num_rows(), |a, b| common.same_resource(a, b))
        .map(|res| {
            let first = res.start;
            let scope_logs = runs(res, |a, b| common.same_scope(a, b))
                .map(|scope| ScopeLogs {
                    scope: common.scope(scope.start),
                    schema_url: common.scope_schema_url(scope.start),
                    log_records: scope.map(|i| logs.record(i)).collect(),
                })
                .collect();
            Ok(ResourceLogs {
                resource: common.resource(first)?,
                scope_logs,
                schema_url: common.resource_schema_url(first),
            })
        })
        .collect::<Result<_, ConvertError>>()?;
    Ok(ExportLogsServiceRequest { resource_logs })
}
