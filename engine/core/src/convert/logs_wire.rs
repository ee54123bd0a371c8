//! Logs request protobuf -> `logs` rows, read straight from the bytes: the
//! same rows [`super::logs_to_batch`] makes of the decoded request, with
//! each string copied once, from the body into its column (see
//! [`super::spans_wire`], which reads traces the same way, and
//! [`super::direct`], what both share). What the direct reader does not
//! handle exactly as prost does makes it step aside
//! ([`LogsProto::scan`] or [`LogsProto::read`] answer `None`), and the body
//! is decoded by prost.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message as _;

use super::direct::{
    BODY, Containers, Kv, Names, RECORD_ATTRIBUTE, Record, Slot, read_any, read_kv,
};
use super::estimate::ENTRY_BYTES;
use super::logs::{LogFields, LogsBuilder};
use super::protobuf::{Fields, Unsure};
use super::value_text::ValueRef;
use super::{ConvertError, Converted};

const NAMES: Names = ["resource_logs", "scope_logs", "log_records"];

/// A logs export request's protobuf body, scanned: its containers, their
/// resources and scopes decoded, its log records counted.
#[derive(Debug)]
pub struct LogsProto<'a> {
    containers: Containers<'a>,
}

impl<'a> LogsProto<'a> {
    /// Scans `body`, an `ExportLogsServiceRequest`: `None` when it holds
    /// something the direct reader leaves to prost.
    pub fn scan(body: &'a [u8]) -> Option<Self> {
        Containers::scan(body, record_entries).map(|containers| LogsProto { containers })
    }

    /// The log records in the request.
    pub fn records(&self) -> usize {
        self.containers.rows
    }

    /// The bytes the body and its rows take once converted, estimated from
    /// its lengths (as `logs_expanded_size`, without prost's structs).
    pub fn expanded_size(&self) -> usize {
        self.containers.expanded
    }

    /// The rows of the request: read directly, or decoded by prost and
    /// converted by [`super::logs_to_batch`] when something in a record is
    /// left to it.
    pub fn to_batch(&self) -> Result<Converted, ConvertError> {
        match self.read() {
            Some(converted) => converted,
            None => {
                let request =
                    ExportLogsServiceRequest::decode(self.containers.body).map_err(|e| {
                        ConvertError::InvalidOtlp(format!("not a logs export request: {e}"))
                    })?;
                super::logs_to_batch(&request)
            }
        }
    }

    /// The rows of the request read directly; `None` when something in a
    /// record is left to prost.
    pub fn read(&self) -> Option<Result<Converted, ConvertError>> {
        let c = &self.containers;
        c.read::<RecordParts>(
            NAMES,
            LogsBuilder::with_capacity(c.rows),
            LogsBuilder::finish,
        )
    }
}

/// The bytes a log record's attribute entries add to its row (see
/// `logs_expanded_size`), from its tags.
fn record_entries(record: &[u8]) -> Result<usize, Unsure> {
    let mut entries = 0usize;
    let mut fields = Fields::new(record);
    while let Some((tag, _)) = fields.next_field()? {
        if tag == 6 {
            entries += ENTRY_BYTES;
        }
    }
    Ok(entries)
}

/// One log record read from its message, in buffers kept from record to
/// record.
#[derive(Debug, Default)]
struct RecordParts<'a> {
    fields: LogFields<'a>,
    body: Option<Slot<'a>>,
    attributes: Vec<Kv<'a>>,
    nested: Vec<AnyValue>,
}

impl<'a> Record<'a> for RecordParts<'a> {
    type Builder = LogsBuilder;

    fn read(&mut self, message: &'a [u8]) -> Result<(), Unsure> {
        self.fields = LogFields::default();
        self.body = None;
        self.attributes.clear();
        self.nested.clear();
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            let f = &mut self.fields;
            match tag {
                1 => f.time_unix_nano = value.fixed64()?,
                2 => f.severity_number = value.int32()?,
                3 => f.severity_text = value.str()?,
                5 => {
                    // prost merges a body given twice: left to it.
                    if self.body.is_some() {
                        return Err(Unsure);
                    }
                    self.body = Some(read_any(value.bytes()?, BODY, &mut self.nested)?);
                }
                6 => {
                    let kv = read_kv(value.bytes()?, RECORD_ATTRIBUTE, &mut self.nested)?;
                    self.attributes.push(kv);
                }
                7 => f.dropped_attributes_count = value.uint32()?,
                8 => f.flags = value.fixed32()?,
                9 => f.trace_id = value.bytes()?,
                10 => f.span_id = value.bytes()?,
                11 => f.observed_time_unix_nano = value.fixed64()?,
                12 => f.event_name = value.str()?,
                _ => {}
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        self.fields.check()
    }

    fn append(&self, out: &mut LogsBuilder) {
        let nested = &self.nested;
        let body = self.body.map_or(ValueRef::Absent, |b| b.get(nested));
        out.append_parts(
            &self.fields,
            body,
            self.attributes.iter().map(|kv| kv.get(nested)),
        );
    }
}
