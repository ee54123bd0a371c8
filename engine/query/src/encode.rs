//! Result encoders: record batches to the bytes of a response body, one
//! batch at a time, so that a result of any size streams in bounded memory.
//!
//! * [`Format::Json`]: one JSON document, written incrementally:
//!
//!   ```json
//!   {"columns":[{"name":"service","type":"Utf8"},{"name":"errors","type":"Int64"}],
//!    "rows":[
//!   {"service":"checkout","errors":3},
//!   {"service":"cart","errors":1}
//!   ],"row_count":2}
//!   ```
//!
//!   Rows are objects keyed by column name, every column present (`null`
//!   when null). Timestamps are RFC 3339 text, binary values (trace and
//!   span ids) lowercase hex, maps objects, lists arrays, structs objects;
//!   integers and finite doubles numbers, NaN and infinities `null`.
//!   When the query fails after the rows started, the document ends with
//!   `],"error":"...","kind":"..."}` instead of `row_count`, and the body
//!   is then aborted (see [`crate::http`]) so that the client sees a
//!   transfer error too.
//! * [`Format::Csv`]: RFC 4180 CSV with a header row. Nested values (maps,
//!   lists, structs) are their JSON text; binary values hex.
//! * [`Format::Arrow`]: an Arrow IPC stream (schema, then one message per
//!   batch, dictionaries resent when they change).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamWriter;
use arrow::json::writer::{EncoderOptions, JsonFormat, WriterBuilder, make_encoder};
use bytes::Bytes;

/// A result format of the HTTP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: the document described in the module docs.
    Json,
    /// `text/csv`: a header row, then one line per row.
    Csv,
    /// `application/vnd.apache.arrow.stream`: an Arrow IPC stream.
    Arrow,
}

impl Format {
    /// The media type sent as `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The format named by a `format=` query parameter: `json`, `csv`,
    /// `arrow`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "arrow" | "arrow-ipc" | "ipc" => Some(Format::Arrow),
            _ => None,
        }
    }

    /// The format of a media type, without parameters (`text/csv`).
    pub fn from_media_type(media: &str) -> Option<Format> {
        match media.to_ascii_lowercase().as_str() {
            "application/json" | "application/*" | "*/*" => Some(Format::Json),
            "text/csv" | "text/*" => Some(Format::Csv),
            "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
            _ => None,
        }
    }

    /// The format to answer a request with `Accept: accept`: the supported
    /// media range of highest quality, the first listed on a tie. `None`
    /// when the header names nothing Weir can produce.
    pub fn from_accept(accept: &str) -> Option<Format> {
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut quality = 1.0f32;
            for param in parts {
                if let Some(q) = param.trim().strip_prefix("q=") {
                    quality = q.trim().parse().unwrap_or(0.0);
                }
            }
            if quality <= 0.0 {
                continue;
            }
            if let Some(format) = Format::from_media_type(media)
                && best.is_none_or(|(q, _)| quality > q)
            {
                best = Some((quality, format));
            }
        }
        best.map(|(_, format)| format)
    }
}

/// Turns a stream of batches into body chunks in one [`Format`].
pub struct Encoder {
    inner: Inner,
}

enum Inner {
    Json(JsonEncoder),
    Csv(CsvEncoder),
    Arrow(StreamWriter<Vec<u8>>),
}

impl Encoder {
    /// An encoder for results of `schema`; [`Encoder::header`] comes first.
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Encoder, ArrowError> {
        let inner = match format {
            Format::Json => Inner::Json(JsonEncoder::new(schema)),
            Format::Csv => Inner::Csv(CsvEncoder {
                schema: Arc::clone(schema),
                header_done: false,
            }),
            Format::Arrow => Inner::Arrow(StreamWriter::try_new(Vec::new(), schema)?),
        };
        Ok(Encoder { inner })
    }

    /// The bytes before the first batch (the JSON header, the Arrow
    /// schema); CSV writes its header with the first batch.
    pub fn header(&mut self) -> Bytes {
        match &mut self.inner {
            Inner::Json(json) => Bytes::from(json.header()),
            Inner::Csv(_) => Bytes::new(),
            Inner::Arrow(writer) => Bytes::from(std::mem::take(writer.get_mut())),
        }
    }

    /// The bytes of one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, ArrowError> {
        let bytes = match &mut self.inner {
            Inner::Json(json) => json.batch(batch)?,
            Inner::Csv(csv) => csv.batch(batch)?,
            Inner::Arrow(writer) => {
                writer.write(batch)?;
                std::mem::take(writer.get_mut())
            }
        };
        Ok(Bytes::from(bytes))
    }

    /// The bytes that end a complete result.
    pub fn finish(&mut self) -> Result<Bytes, ArrowError> {
        let bytes = match &mut self.inner {
            Inner::Json(json) => json.finish()?,
            Inner::Csv(csv) => csv.finish()?,
            Inner::Arrow(writer) => {
                writer.finish()?;
                std::mem::take(writer.get_mut())
            }
        };
        Ok(Bytes::from(bytes))
    }

    /// The bytes that end a result cut short by `error` (JSON only: the
    /// error object; the other formats have no way to say it in-band).
    pub fn fail(&mut self, error: &serde_json::Value) -> Bytes {
        match &mut self.inner {
            Inner::Json(json) => Bytes::from(json.fail(error)),
            Inner::Csv(_) | Inner::Arrow(_) => Bytes::new(),
        }
    }
}

/// Writes `,\n` between rows; the document around the rows is ours.
#[derive(Debug, Default)]
struct RowsFormat;

impl JsonFormat for RowsFormat {
    fn start_row<W: std::io::Write>(
        &self,
        writer: &mut W,
        is_first_row: bool,
    ) -> Result<(), ArrowError> {
        writer.write_all(if is_first_row { b"\n" } else { b",\n" })?;
        Ok(())
    }
}

struct JsonEncoder {
    columns: serde_json::Value,
    writer: arrow::json::Writer<Vec<u8>, RowsFormat>,
    rows: usize,
}

impl JsonEncoder {
    fn new(schema: &Schema) -> JsonEncoder {
        let columns = schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({ "name": f.name(), "type": f.data_type().to_string() }))
            .collect();
        JsonEncoder {
            columns: serde_json::Value::Array(columns),
            writer: WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, RowsFormat>(Vec::new()),
            rows: 0,
        }
    }

    fn header(&mut self) -> Vec<u8> {
        format!("{{\"columns\":{},\"rows\":[", self.columns).into_bytes()
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows();
        Ok(std::mem::take(self.writer.get_mut()))
    }

    fn finish(&mut self) -> Result<Vec<u8>, ArrowError> {
        let newline = if self.rows > 0 { "\n" } else { "" };
        Ok(format!("{newline}],\"row_count\":{}}}\n", self.rows).into_bytes())
    }

    fn fail(&mut self, error: &serde_json::Value) -> Vec<u8> {
        let newline = if self.rows > 0 { "\n" } else { "" };
        let message = error.get("error").cloned().unwrap_or_default();
        let kind = error.get("kind").cloned().unwrap_or_default();
        format!("{newline}],\"error\":{message},\"kind\":{kind}}}\n").into_bytes()
    }
}

struct CsvEncoder {
    schema: SchemaRef,
    header_done: bool,
}

impl CsvEncoder {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        let batch = flatten_nested(batch)?;
        let mut out = Vec::new();
        {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(!self.header_done)
                .build(&mut out);
            writer.write(&batch)?;
        }
        self.header_done = true;
        Ok(out)
    }

    /// Nothing, or the header alone when no row came.
    fn finish(&mut self) -> Result<Vec<u8>, ArrowError> {
        if self.header_done {
            return Ok(Vec::new());
        }
        self.batch(&RecordBatch::new_empty(Arc::clone(&self.schema)))
    }
}

/// The batch with its nested columns (maps, lists, structs), which CSV
/// cannot hold, replaced by their JSON text.
fn flatten_nested(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch.columns().iter().any(|c| c.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if column.data_type().is_nested() {
            fields.push(Arc::new(Field::new(field.name(), DataType::Utf8, true)));
            columns.push(json_text(field, column)?);
        } else {
            fields.push(Arc::clone(field));
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

fn json_text(field: &Arc<Field>, column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let mut encoder = make_encoder(field, column.as_ref(), &options)?;
    let mut out = StringBuilder::with_capacity(column.len(), column.len() * 16);
    let mut buffer = Vec::new();
    for row in 0..column.len() {
        if column.is_null(row) {
            out.append_null();
            continue;
        }
        buffer.clear();
        encoder.encode(row, &mut buffer);
        out.append_value(String::from_utf8_lossy(&buffer));
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, MapBuilder, StringBuilder as Strings};

    fn encode_all(format: Format, batches: &[RecordBatch], schema: &SchemaRef) -> String {
        let mut encoder = Encoder::new(format, schema).expect("encoder");
        let mut out = encoder.header().to_vec();
        for batch in batches {
            out.extend_from_slice(&encoder.batch(batch).expect("encodes"));
        }
        out.extend_from_slice(&encoder.finish().expect("finishes"));
        String::from_utf8(out).expect("text")
    }

    fn sample() -> RecordBatch {
        let mut map = MapBuilder::new(None, Strings::new(), Strings::new());
        map.keys().append_value("http.route");
        map.values().append_value("/api");
        map.append(true).expect("map row");
        map.append(false).expect("null map row");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(map.finish()),
        ];
        RecordBatch::try_from_iter([
            ("n", columns[0].clone()),
            ("attributes", columns[1].clone()),
        ])
        .expect("batch")
    }

    /// JSON: the documented document, across several batches.
    #[test]
    fn json_document_across_batches() {
        let batch = sample();
        let text = encode_all(
            Format::Json,
            &[batch.clone(), batch.clone()],
            &batch.schema(),
        );
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(doc["row_count"], 4);
        assert_eq!(doc["columns"][1]["name"], "attributes");
        assert_eq!(doc["rows"][2]["attributes"]["http.route"], "/api");
        assert_eq!(doc["rows"][3]["attributes"], serde_json::Value::Null);
        assert_eq!(text.lines().count(), 6, "{text}");
    }

    /// JSON and CSV of an empty result still describe the columns.
    #[test]
    fn empty_results_keep_their_columns() {
        let schema = sample().schema();
        let json = encode_all(Format::Json, &[], &schema);
        let doc: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(doc["rows"], serde_json::json!([]));
        assert_eq!(doc["row_count"], 0);
        assert_eq!(encode_all(Format::Csv, &[], &schema), "n,attributes\n");
    }

    /// CSV writes maps as JSON text and the header once.
    #[test]
    fn csv_nested_values_are_json() {
        let batch = sample();
        let csv = encode_all(
            Format::Csv,
            &[batch.clone(), batch.clone()],
            &batch.schema(),
        );
        assert_eq!(
            csv,
            "n,attributes\n1,\"{\"\"http.route\"\":\"\"/api\"\"}\"\n2,\n1,\"{\"\"http.route\"\":\"\"/api\"\"}\"\n2,\n"
        );
    }

    /// A failure mid-stream closes the JSON document with the error.
    #[test]
    fn json_failure_closes_the_document() {
        let batch = sample();
        let mut encoder = Encoder::new(Format::Json, &batch.schema()).expect("encoder");
        let mut out = encoder.header().to_vec();
        out.extend_from_slice(&encoder.batch(&batch).expect("encodes"));
        let error = serde_json::json!({"error": "query cancelled", "kind": "timeout"});
        out.extend_from_slice(&encoder.fail(&error));
        let doc: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(doc["kind"], "timeout");
        assert_eq!(doc["error"], "query cancelled");
        assert!(doc.get("row_count").is_none());
        assert_eq!(doc["rows"].as_array().map(Vec::len), Some(2));
    }

    /// `Accept` picks the supported type of highest quality.
    #[test]
    fn accept_negotiation() {
        assert_eq!(Format::from_accept("text/csv"), Some(Format::Csv));
        assert_eq!(
            Format::from_accept("application/vnd.apache.arrow.stream, application/json;q=0.5"),
            Some(Format::Arrow)
        );
        assert_eq!(
            Format::from_accept("text/csv;q=0.2, application/json;q=0.9"),
            Some(Format::Json)
        );
        assert_eq!(Format::from_accept("*/*"), Some(Format::Json));
        assert_eq!(Format::from_accept("image/png"), None);
        assert_eq!(Format::from_accept("text/csv;q=0"), None);
    }
}
