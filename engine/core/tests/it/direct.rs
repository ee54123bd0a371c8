//! Rows read straight from protobuf bytes ([`SpansProto`], [`LogsProto`])
//! are the rows prost's decoding and `spans_to_batch` / `logs_to_batch`
//! make of the same bytes: for any
//! request, for requests with spans to refuse, for bytes prost accepts but
//! never writes (fields out of order or given twice, unknown fields,
//! overlong varints), and for corrupted bytes, where the direct reader
//! either reads what prost reads or leaves the body to prost.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use proptest::prelude::*;
use prost::Message;
use weir_core::convert::{self, Converted, LogsProto, SpansProto};

use crate::common::generate::{logs_request, trace_request};

/// What the direct reader makes of `body`: `None` when it leaves it to
/// prost.
fn direct(body: &[u8]) -> Option<Result<Converted, convert::ConvertError>> {
    SpansProto::scan(body)?.read()
}

/// Asserts the direct reader's rows of `body` are prost's, when it reads
/// it; returns whether it did.
fn agrees(body: &[u8]) -> Result<bool, TestCaseError> {
    let Some(read) = direct(body) else {
        return Ok(false);
    };
    let decoded = ExportTraceServiceRequest::decode(body);
    prop_assert!(
        decoded.is_ok(),
        "the direct reader read a body prost refuses: {:?}",
        decoded.err()
    );
    same(read, convert::spans_to_batch(&decoded.unwrap_or_default()))?;
    Ok(true)
}

/// [`agrees`] for a logs body.
fn agrees_logs(body: &[u8]) -> Result<bool, TestCaseError> {
    let Some(read) = LogsProto::scan(body).and_then(|scan| scan.read()) else {
        return Ok(false);
    };
    let decoded = ExportLogsServiceRequest::decode(body);
    prop_assert!(
        decoded.is_ok(),
        "the direct reader read a logs body prost refuses: {:?}",
        decoded.err()
    );
    same(read, convert::logs_to_batch(&decoded.unwrap_or_default()))?;
    Ok(true)
}

fn same(
    read: Result<Converted, convert::ConvertError>,
    expected: Result<Converted, convert::ConvertError>,
) -> Result<(), TestCaseError> {
    match (read, expected) {
        (Ok(read), Ok(expected)) => {
            prop_assert_eq!(read.batch, expected.batch);
            prop_assert_eq!(read.rejected, expected.rejected);
            prop_assert_eq!(read.rejection, expected.rejection);
        }
        (Err(read), Err(expected)) => prop_assert_eq!(read.to_string(), expected.to_string()),
        (read, expected) => prop_assert!(false, "direct: {read:?}, prost: {expected:?}"),
    }
    Ok(())
}

/// Makes span `at` (of all spans, in order) one the converter refuses.
fn spoil(req: &mut ExportTraceServiceRequest, at: usize, how: u8) {
    let mut spans: Vec<&mut Span> = req
        .resource_spans
        .iter_mut()
        .flat_map(|r| &mut r.scope_spans)
        .flat_map(|s| &mut s.spans)
        .collect();
    let n = spans.len();
    if n == 0 {
        return;
    }
    let span = &mut spans[at % n];
    match how % 4 {
        0 => span.trace_id = vec![1; 15],
        1 => span.span_id = vec![0; 8],
        2 => span.end_time_unix_nano = u64::MAX,
        _ => span.events.push(Default::default()),
    }
    if how % 4 == 3 {
        span.events.last_mut().expect("pushed").time_unix_nano = i64::MAX as u64 + 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Guarantees: any request prost encodes is read directly, into the
    /// rows prost's path makes, refused spans and their reasons included.
    #[test]
    fn direct_rows_are_the_decoded_rows(
        mut req in trace_request(),
        spoilers in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        for (at, how) in spoilers {
            spoil(&mut req, at, how);
        }
        let body = req.encode_to_vec();
        prop_assert!(agrees(&body)?, "a body prost wrote was left to prost");
        let scan = SpansProto::scan(&body).expect("scanned");
        let spans: usize = req.resource_spans.iter()
            .flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        prop_assert_eq!(scan.records(), spans);
        prop_assert!(scan.expanded_size() >= body.len());
    }

    /// Guarantees: any logs request prost encodes is read directly, into
    /// the rows prost's path makes, refused records included.
    #[test]
    fn direct_log_rows_are_the_decoded_rows(
        mut req in logs_request(),
        spoilers in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let mut records: Vec<&mut LogRecord> = req
            .resource_logs
            .iter_mut()
            .flat_map(|r| &mut r.scope_logs)
            .flat_map(|s| &mut s.log_records)
            .collect();
        let n = records.len();
        for (at, how) in spoilers {
            if n == 0 {
                break;
            }
            let record = &mut records[at % n];
            match how % 3 {
                0 => record.trace_id = vec![1; 3],
                1 => record.span_id = vec![1; 9],
                _ => record.observed_time_unix_nano = u64::MAX,
            }
        }
        let body = req.encode_to_vec();
        prop_assert!(agrees_logs(&body)?, "a body prost wrote was left to prost");
        let scan = LogsProto::scan(&body).expect("scanned");
        prop_assert_eq!(scan.records(), n);
        prop_assert!(scan.expanded_size() >= body.len());
    }
}

/// Guarantees: a corrupted body (bytes changed, inserted or cut off) is
/// either read into exactly the rows prost's path makes of it, or left to
/// prost: never read when prost refuses it. Of 3,000 corrupted bodies,
/// many are still read directly, so the comparison is not vacuous.
#[test]
fn corrupted_bodies_are_read_as_prost_reads_them_or_left_to_it() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut read, mut total) = (0, 0);
    while total < 3000 {
        let logs = total % 2 == 1;
        let mut body = if logs {
            logs_request()
                .new_tree(&mut runner)
                .expect("a request")
                .current()
                .encode_to_vec()
        } else {
            trace_request()
                .new_tree(&mut runner)
                .expect("a request")
                .current()
                .encode_to_vec()
        };
        if body.is_empty() {
            continue;
        }
        let rng = runner.rng();
        for _ in 0..rng.random_range(1..4) {
            if body.is_empty() {
                break;
            }
            let at = rng.random_range(0..body.len());
            match rng.random_range(0..6) {
                0 => body.truncate(at),
                1 => body.insert(at, rng.random()),
                _ => body[at] = rng.random(),
            }
        }
        total += 1;
        let agreed = if logs {
            agrees_logs(&body)
        } else {
            agrees(&body)
        };
        if agreed.unwrap_or_else(|e| panic!("{e}")) {
            read += 1;
        }
    }
    assert!(
        read > total / 10,
        "only {read} of {total} were read directly"
    );
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn span(name: &str) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: vec![kv("k", any_value::Value::IntValue(7))],
        ..Default::default()
    }
}

/// Encodes field `tag` holding `message`.
fn field(tag: u32, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::bytes::encode(tag, &message.to_vec(), &mut out);
    out
}

/// Guarantees: bytes prost accepts though it never writes them are read
/// as prost reads them: a resource after its scopes and given twice
/// (merged), a span field given twice (the last wins), unknown fields of
/// every wire type, and an overlong varint.
#[test]
fn unusual_but_valid_bodies_are_read_as_prost_reads_them() {
    let resource_a = opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![kv(
            "service.name",
            any_value::Value::StringValue("a".into()),
        )],
        ..Default::default()
    };
    let resource_b = opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![kv("host", any_value::Value::StringValue("b".into()))],
        dropped_attributes_count: 3,
        ..Default::default()
    };
    let mut span_bytes = span("first").encode_to_vec();
    prost::encoding::string::encode(5, &"second".to_string(), &mut span_bytes);
    // Unknown fields: varint, 64-bit, length-delimited, 32-bit.
    span_bytes.extend([0xa8, 0x06, 0x05]);
    span_bytes.extend([0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
    span_bytes.extend([0xba, 0x06, 0x02, 0xff, 0xfe]);
    span_bytes.extend([0xc5, 0x06, 1, 2, 3, 4]);
    // kind = 2 as a two-byte varint.
    span_bytes.extend([0x30, 0x82, 0x00]);
    let scope_spans = field(2, &span_bytes);
    let mut rs = field(2, &scope_spans);
    rs.extend(field(1, &resource_a.encode_to_vec()));
    rs.extend(field(1, &resource_b.encode_to_vec()));
    let body = field(1, &rs);

    let decoded = ExportTraceServiceRequest::decode(body.as_slice()).expect("prost decodes it");
    let resource = decoded.resource_spans[0]
        .resource
        .as_ref()
        .expect("a resource");
    assert_eq!(resource.attributes.len(), 2, "prost merged the resources");
    assert_eq!(
        decoded.resource_spans[0].scope_spans[0].spans[0].name,
        "second"
    );
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans[0].kind, 2);
    assert!(agrees(&body).expect("agrees"), "left to prost");
}

/// Guarantees: a log record's body given twice (prost merges the two) is
/// left to prost, and so is an invalid UTF-8 string in a body.
#[test]
fn log_bodies_prost_merges_are_left_to_it() {
    let record = LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("one".into())),
        }),
        ..Default::default()
    };
    let mut record_bytes = record.encode_to_vec();
    let second = AnyValue {
        value: Some(any_value::Value::IntValue(2)),
    };
    record_bytes.extend(field(5, &second.encode_to_vec()));
    let body = field(1, &field(2, &field(2, &record_bytes)));
    assert!(LogsProto::scan(&body).expect("scanned").read().is_none());
    let decoded = ExportLogsServiceRequest::decode(body.as_slice()).expect("prost decodes it");
    let expected = convert::logs_to_batch(&decoded).expect("converts");
    let read = LogsProto::scan(&body)
        .expect("scanned")
        .to_batch()
        .expect("converts");
    assert_eq!(read.batch, expected.batch);

    let bad = field(1, &field(2, &field(2, &field(5, &field(1, &[0xff])))));
    assert!(LogsProto::scan(&bad).expect("scanned").read().is_none());
    assert!(ExportLogsServiceRequest::decode(bad.as_slice()).is_err());
}

/// Guarantees: what prost merges and the direct reader does not (a span's
/// status given twice) is left to prost, and `spans_proto_to_batch` still
/// makes prost's rows of it; a body prost refuses is refused with its
/// reason.
#[test]
fn what_prost_merges_is_left_to_it() {
    let mut span_bytes = span("s").encode_to_vec();
    let status = Status {
        message: "m".into(),
        code: 2,
    };
    span_bytes.extend(field(15, &status.encode_to_vec()));
    span_bytes.extend(field(
        15,
        &Status {
            message: String::new(),
            code: 1,
        }
        .encode_to_vec(),
    ));
    let body = field(1, &field(2, &field(2, &span_bytes)));
    assert!(direct(&body).is_none());
    let decoded = ExportTraceServiceRequest::decode(body.as_slice()).expect("prost decodes it");
    let expected = convert::spans_to_batch(&decoded).expect("converts");
    let read = convert::spans_proto_to_batch(&body).expect("converts");
    assert_eq!(read.batch, expected.batch);

    let err = convert::spans_proto_to_batch(&body[..body.len() - 1]).expect_err("truncated");
    assert!(
        err.to_string().contains("not a trace export request"),
        "{err}"
    );
}

/// Guarantees: an attribute nested as deep as prost allows in a whole
/// request is read, one level deeper is left to prost (which refuses it),
/// though the attribute alone would decode.
#[test]
fn nesting_is_bounded_as_in_a_whole_request() {
    let mut deepest_read = 0;
    for depth in 30..60 {
        let mut value = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        for _ in 0..depth {
            value = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let mut s = span("deep");
        s.attributes.push(KeyValue {
            key: "deep".into(),
            value: Some(value),
            ..Default::default()
        });
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![s],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = req.encode_to_vec();
        let prost_ok = ExportTraceServiceRequest::decode(body.as_slice()).is_ok();
        let read = agrees(&body).expect("agrees");
        assert_eq!(read, prost_ok, "depth {depth}");
        if read {
            deepest_read = depth;
        }
    }
    assert!(
        (30..59).contains(&deepest_read),
        "the limit was not reached: {deepest_read}"
    );
}
