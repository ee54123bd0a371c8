//! The batches the conversion makes work with the rest of the Arrow
//! toolbox: Arrow IPC (the write-ahead log's format) keeps them intact, the
//! Arrow JSON writer (SQL results) accepts them, and Arrow's comparison
//! kernels find attributes by key as SQL's `attributes['key']` does.

use std::io::Cursor;
use std::sync::Arc;

use crate::common::generate::{logs_request, metrics_request, trace_request};
use crate::common::{assert_same, example, normalise_logs, normalise_metrics, normalise_spans};
use arrow::array::{AsArray, Scalar, StringArray};
use arrow::compute::kernels::cmp::eq;
use arrow::datatypes::Int32Type;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::{FileWriter, StreamWriter};
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use weir_core::convert::{self, json};
use weir_core::schema::col;

fn example_batches() -> Vec<RecordBatch> {
    let logs = json::decode_logs(&example("logs.json")).expect("decodes");
    let events = json::decode_logs(&example("events.json")).expect("decodes");
    let spans = json::decode_spans(&example("trace.json")).expect("decodes");
    let metrics = json::decode_metrics(&example("metrics.json")).expect("decodes");
    vec![
        convert::logs_to_batch(&logs).expect("converts").batch,
        convert::logs_to_batch(&events).expect("converts").batch,
        convert::spans_to_batch(&spans).expect("converts").batch,
        convert::metrics_to_batch(&metrics).expect("converts").batch,
    ]
}

/// Writes `batches` (one schema) as an IPC stream and reads them back.
fn through_ipc_stream(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema()).expect("writer");
    for b in batches {
        writer.write(b).expect("writes");
    }
    let bytes = writer.into_inner().expect("finishes");
    StreamReader::try_new(Cursor::new(bytes), None)
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("reads")
}

/// Guarantees: every table's batch survives an Arrow IPC stream (several
/// batches with different dictionaries in one stream) and an IPC file,
/// equal column by column and schema metadata included.
#[test]
fn batches_survive_ipc() {
    for batch in example_batches() {
        let two = [batch.clone(), batch.slice(0, batch.num_rows())];
        let read = through_ipc_stream(&two);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], batch);
        assert_eq!(read[0].schema().metadata(), batch.schema().metadata());

        let mut writer = FileWriter::try_new(Vec::new(), &batch.schema()).expect("writer");
        writer.write(&batch).expect("writes");
        let bytes = writer.into_inner().expect("finishes");
        let read: Vec<RecordBatch> = FileReader::try_new(Cursor::new(bytes), None)
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(read, vec![batch]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Guarantees: OTLP -> Arrow -> IPC stream -> Arrow -> OTLP is lossless
    /// for any logs request (up to the documented normalisation).
    #[test]
    fn logs_survive_ipc(a in logs_request(), b in logs_request()) {
        let batches = [convert::logs_to_batch(&a).expect("converts").batch,
                       convert::logs_to_batch(&b).expect("converts").batch];
        let read = through_ipc_stream(&batches);
        assert_same(&normalise_logs(&a), &convert::batch_to_logs(&read[0]).expect("back"));
        assert_same(&normalise_logs(&b), &convert::batch_to_logs(&read[1]).expect("back"));
    }

    /// Guarantees: the same for spans.
    #[test]
    fn spans_survive_ipc(a in trace_request(), b in trace_request()) {
        let batches = [convert::spans_to_batch(&a).expect("converts").batch,
                       convert::spans_to_batch(&b).expect("converts").batch];
        let read = through_ipc_stream(&batches);
        assert_same(&normalise_spans(&a), &convert::batch_to_spans(&read[0]).expect("back"));
        assert_same(&normalise_spans(&b), &convert::batch_to_spans(&read[1]).expect("back"));
    }

    /// Guarantees: the same for metrics.
    #[test]
    fn metrics_survive_ipc(a in metrics_request(), b in metrics_request()) {
        let batches = [convert::metrics_to_batch(&a).expect("converts").batch,
                       convert::metrics_to_batch(&b).expect("converts").batch];
        let read = through_ipc_stream(&batches);
        assert_same(&normalise_metrics(&a), &convert::batch_to_metrics(&read[0]).expect("back"));
        assert_same(&normalise_metrics(&b), &convert::batch_to_metrics(&read[1]).expect("back"));
    }
}

/// Guarantees: Arrow's JSON writer (used for SQL results) accepts every
/// table, maps included, and shows attribute maps as JSON objects.
#[test]
fn arrow_json_writer_accepts_every_table() {
    for batch in example_batches() {
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        writer.write(&batch).expect("writes");
        writer.finish().expect("finishes");
        let text = String::from_utf8(writer.into_inner()).expect("UTF-8");
        assert!(text.contains(r#""service_name":"my.service""#), "{text}");
        assert!(
            text.contains(r#""resource_attributes":{"service.name":"my.service"}"#),
            "{text}"
        );
    }
}

/// Guarantees: looking an attribute up by key with Arrow's comparison
/// kernels (what DataFusion does for `attributes['key']`) works on both the
/// plain record maps and the dictionary-valued resource maps.
#[test]
fn attribute_lookup_by_key() {
    let batch = example_batches().remove(0);
    let attributes = batch
        .column_by_name(col::ATTRIBUTES)
        .expect("column")
        .as_map();
    let key = Scalar::new(StringArray::from(vec!["int.attribute"]));
    let hits = eq(attributes.keys(), &key).expect("Utf8 keys compare");
    let at = (0..hits.len())
        .find(|i| hits.value(*i))
        .expect("key present");
    assert_eq!(attributes.values().as_string::<i32>().value(at), "10");

    let resource = batch
        .column_by_name(col::RESOURCE_ATTRIBUTES)
        .expect("column")
        .as_map();
    let key = Scalar::new(StringArray::from(vec!["service.name"]));
    let hits = eq(resource.keys(), &key).expect("Utf8 keys compare");
    let at = (0..hits.len())
        .find(|i| hits.value(*i))
        .expect("key present");
    let values = resource.values().as_dictionary::<Int32Type>();
    let wanted = Scalar::new(StringArray::from(vec!["my.service"]));
    let same = eq(values, &wanted).expect("dictionary values compare with a Utf8 literal");
    assert!(same.value(at));
    // The dictionary column `service_name` compares the same way.
    let service = batch.column_by_name(col::SERVICE_NAME).expect("column");
    assert!(
        eq(&Arc::clone(service), &wanted)
            .expect("compares")
            .value(0)
    );
}
