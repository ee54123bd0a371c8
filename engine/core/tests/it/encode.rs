//! The direct protobuf encoders, `spans_to_proto` and `logs_to_proto`,
//! against the request path they replace: for any batch `batch_to_*`
//! accepts, the bytes are those of `batch_to_*(batch)?.encode_to_vec()`,
//! and for any batch it refuses, the error is the same. The batches are
//! made from generated requests, then sliced, nulled and rewritten the
//! ways a processor could.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, MapArray, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use prost::Message as _;
use weir_core::convert::{self, ConvertError};

use crate::common::generate::{logs_request, trace_request};

/// A signal's two ways from rows to bytes.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    /// `spans_to_proto` and `batch_to_spans`.
    Spans,
    /// `logs_to_proto` and `batch_to_logs`.
    Logs,
}

impl Way {
    /// The bytes of the request path, or its error.
    pub fn reference(self, batch: &RecordBatch) -> Result<Vec<u8>, ConvertError> {
        match self {
            Way::Spans => convert::batch_to_spans(batch).map(|r| r.encode_to_vec()),
            Way::Logs => convert::batch_to_logs(batch).map(|r| r.encode_to_vec()),
        }
    }

    /// The bytes of the direct encoder, or its error.
    pub fn direct(self, batch: &RecordBatch) -> Result<Vec<u8>, ConvertError> {
        match self {
            Way::Spans => convert::spans_to_proto(batch),
            Way::Logs => convert::logs_to_proto(batch),
        }
    }
}

/// Asserts both ways agree on `batch`: the same bytes or the same error;
/// returns whether it was accepted.
pub fn agree(way: Way, batch: &RecordBatch) -> bool {
    match (way.reference(batch), way.direct(batch)) {
        (Ok(want), Ok(got)) => {
            if want != got {
                let at = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
                panic!(
                    "{way:?}: the bytes differ from offset {at} (lengths {} and {}):\n\
                     want ..{:02x?}\ngot  ..{:02x?}",
                    want.len(),
                    got.len(),
                    &want[at.saturating_sub(8)..want.len().min(at + 24)],
                    &got[at.saturating_sub(8)..got.len().min(at + 24)],
                );
            }
            true
        }
        (Err(want), Err(got)) => {
            assert_eq!(want.to_string(), got.to_string(), "{way:?}: errors differ");
            false
        }
        (want, got) => panic!("{way:?}: the request path gave {want:?}, the direct one {got:?}"),
    }
}

/// Also agree appending to a buffer that already holds bytes.
fn agree_appended(way: Way, batch: &RecordBatch) {
    let mut buf = b"before".to_vec();
    let result = match way {
        Way::Spans => convert::spans_to_proto_into(batch, &mut buf),
        Way::Logs => convert::logs_to_proto_into(batch, &mut buf),
    };
    match (result, way.reference(batch)) {
        (Ok(()), Ok(want)) => assert_eq!(&buf[6..], &want[..]),
        (Err(_), Err(_)) => assert_eq!(buf, b"before"),
        (got, want) => panic!("{way:?}: appended {got:?}, the request path {want:?}"),
    }
}

/// `field` made nullable, and the fields of its lists' structs too.
fn nullable(field: &Field) -> Field {
    let data_type = match field.data_type() {
        DataType::List(item) => match item.data_type() {
            DataType::Struct(fields) => DataType::List(Arc::new(
                item.as_ref()
                    .clone()
                    .with_data_type(DataType::Struct(nullable_fields(fields))),
            )),
            _ => field.data_type().clone(),
        },
        other => other.clone(),
    };
    Field::new(field.name(), data_type, true)
}

fn nullable_fields(fields: &Fields) -> Fields {
    fields.iter().map(|f| nullable(f)).collect()
}

/// `batch` with `columns` in place of its own, every field nullable and
/// typed as its new column.
fn rebuild(batch: &RecordBatch, columns: Vec<ArrayRef>) -> RecordBatch {
    let fields: Vec<FieldRef> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| Arc::new(nullable(f).with_data_type(c.data_type().clone())))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("a valid batch")
}

/// Whether item `i` of column `c` is nulled under `seed`.
fn nulled(seed: u64, c: usize, i: usize) -> bool {
    (seed.rotate_left((c * 7 + i * 3) as u32 % 64) ^ (i as u64 * 0x9e37)) & 3 == 0
}

/// `array` with some items nulled (and, in a list of structs, some items
/// of the structs' fields).
fn with_nulls(array: &ArrayRef, seed: u64, c: usize) -> ArrayRef {
    let array = match array.data_type() {
        DataType::List(item) if matches!(item.data_type(), DataType::Struct(_)) => {
            let list = array.as_list::<i32>();
            let items = list.values().as_struct();
            let columns: Vec<ArrayRef> = items
                .columns()
                .iter()
                .enumerate()
                .map(|(k, a)| with_nulls(a, seed, c * 31 + k + 1))
                .collect();
            let fields = nullable_fields(items.fields());
            let items = StructArray::new(fields.clone(), columns, items.nulls().cloned());
            let item = Arc::new(
                item.as_ref()
                    .clone()
                    .with_data_type(DataType::Struct(fields)),
            );
            Arc::new(arrow::array::ListArray::new(
                item,
                list.offsets().clone(),
                Arc::new(items),
                list.nulls().cloned(),
            )) as ArrayRef
        }
        _ => array.clone(),
    };
    let mask: BooleanArray = (0..array.len()).map(|i| Some(nulled(seed, c, i))).collect();
    arrow::compute::nullif(&array, &mask).expect("nullif")
}

/// Texts a processor might leave in an attribute value: some parse as the
/// recorded type, some as another, some as none.
fn rewritten_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        prop_oneof![
            Just("true"),
            Just("false"),
            Just("True"),
            Just("0"),
            Just("-1"),
            Just("+7"),
            Just("9223372036854775807"),
            Just("9223372036854775808"),
            Just("-2147483649"),
            Just("1.5"),
            Just("-0"),
            Just("1e300"),
            Just("NaN"),
            Just("inf"),
            Just("-infinity"),
            Just("AAEC"),
            Just("AAE="),
            Just("AAE"),
            Just("not base64!"),
            Just(r#"{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"x"}]}}"#),
            Just(r#"{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":true}}]}}"#),
            Just(r#"{"stringValue":"plain"}"#),
            Just("[1, 2"),
        ]
        .prop_map(|s| Some(s.to_string())),
        "\\PC{0,8}".prop_map(Some),
    ]
}

/// `map` with its values replaced by `texts`, in turn.
fn with_values(map: &MapArray, texts: &[Option<String>]) -> ArrayRef {
    let entries = map.entries();
    let values: StringArray = (0..entries.len())
        .map(|e| texts.get(e % texts.len().max(1)).cloned().flatten())
        .collect();
    let (fields, mut columns, nulls) = entries.clone().into_parts();
    columns[1] = Arc::new(values);
    let fields: Fields = vec![
        fields[0].as_ref().clone(),
        Field::new(fields[1].name(), DataType::Utf8, true),
    ]
    .into();
    let entries = StructArray::new(fields.clone(), columns, nulls);
    let field = Arc::new(Field::new("entries", DataType::Struct(fields), false));
    Arc::new(MapArray::new(
        field,
        map.offsets().clone(),
        entries,
        map.nulls().cloned(),
        false,
    ))
}

/// A column of type strings, `types` in turn.
fn types_column(rows: usize, types: &[Option<String>]) -> ArrayRef {
    Arc::new(
        (0..rows)
            .map(|i| types.get(i % types.len().max(1)).cloned().flatten())
            .collect::<StringArray>(),
    )
}

/// `batch` with the values of every top-level attribute map replaced by
/// `texts` and every types column by `types`.
fn rewritten(
    batch: &RecordBatch,
    texts: &[Option<String>],
    types: &[Option<String>],
) -> RecordBatch {
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if let Some(map) = c.as_map_opt() {
                with_values(map, texts)
            } else if f.name().ends_with("attributes_types") || f.name() == "body_type" {
                types_column(c.len(), types)
            } else if f.name() == "body" {
                Arc::new(
                    (0..c.len())
                        .map(|i| texts.get(i % texts.len().max(1)).cloned().flatten())
                        .collect::<StringArray>(),
                )
            } else {
                c.clone()
            }
        })
        .collect();
    rebuild(batch, columns)
}

fn type_strings() -> impl Strategy<Value = Vec<Option<String>>> {
    proptest::collection::vec(
        proptest::option::weighted(0.8, "[sbidyaknexz#0-9-]{0,8}"),
        1..5,
    )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Guarantees: for any trace request, its `spans` batch, any slice of
    /// it, and the batch with nulls where the converter writes values,
    /// encode to the bytes of the request path.
    #[test]
    fn spans_bytes_match_prost(
        a in trace_request(),
        b in trace_request(),
        cut in (0usize..64, 0usize..64),
        seed in any::<u64>(),
    ) {
        let batches: Vec<RecordBatch> = [a, b]
            .iter()
            .map(|r| convert::spans_to_batch(r).expect("converts").batch)
            .collect();
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches)
            .expect("concatenates");
        prop_assert!(agree(Way::Spans, &batch));
        agree_appended(Way::Spans, &batch);
        let start = cut.0.min(batch.num_rows());
        let len = cut.1.min(batch.num_rows() - start);
        prop_assert!(agree(Way::Spans, &batch.slice(start, len)));
        let nulled: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(c, a)| if seed & (1 << (c % 64)) != 0 { with_nulls(a, seed, c) } else { a.clone() })
            .collect();
        let nulled = rebuild(&batch, nulled);
        prop_assert!(agree(Way::Spans, &nulled));
        prop_assert!(agree(Way::Spans, &nulled.slice(start, len)));
    }

    /// Guarantees: attribute texts and type strings a processor rewrote
    /// (texts that no longer parse as their type, types strings shorter
    /// or longer than the map, stray key string indexes) encode as the
    /// request path reads them.
    #[test]
    fn rewritten_span_attributes_match_prost(
        req in trace_request(),
        texts in proptest::collection::vec(rewritten_text(), 1..7),
        types in type_strings(),
    ) {
        let batch = convert::spans_to_batch(&req).expect("converts").batch;
        prop_assert!(agree(Way::Spans, &rewritten(&batch, &texts, &types)));
    }

    /// Guarantees: the same for logs, bodies included.
    #[test]
    fn logs_bytes_match_prost(
        a in logs_request(),
        b in logs_request(),
        cut in (0usize..64, 0usize..64),
        seed in any::<u64>(),
        texts in proptest::collection::vec(rewritten_text(), 1..7),
        types in type_strings(),
    ) {
        let batches: Vec<RecordBatch> = [a, b]
            .iter()
            .map(|r| convert::logs_to_batch(r).expect("converts").batch)
            .collect();
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches)
            .expect("concatenates");
        prop_assert!(agree(Way::Logs, &batch));
        agree_appended(Way::Logs, &batch);
        let start = cut.0.min(batch.num_rows());
        let len = cut.1.min(batch.num_rows() - start);
        prop_assert!(agree(Way::Logs, &batch.slice(start, len)));
        let nulled: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(c, a)| if seed & (1 << (c % 64)) != 0 { with_nulls(a, seed, c) } else { a.clone() })
            .collect();
        prop_assert!(agree(Way::Logs, &rebuild(&batch, nulled)));
        prop_assert!(agree(Way::Logs, &rewritten(&batch, &texts, &types)));
    }
}

/// A spans batch with a few rows of every kind.
fn some_spans() -> RecordBatch {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let batches: Vec<RecordBatch> = (0..8)
        .map(|_| {
            let req = trace_request()
                .new_tree(&mut runner)
                .expect("a request")
                .current();
            convert::spans_to_batch(&req).expect("converts").batch
        })
        .collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concatenates")
}

/// Guarantees: a batch without one of the columns, or with one of them of
/// another type, or with resource entity refs that do not parse, is
/// refused with the request path's error; an empty batch is no bytes.
#[test]
fn refused_batches_give_the_same_error() {
    let batch = some_spans();
    assert!(batch.num_rows() > 0);
    let mut refused = 0;
    for c in 0..batch.num_columns() {
        // Columns the request is not made of (`duration_ns`, `service_name`)
        // may go.
        let keep: Vec<usize> = (0..batch.num_columns()).filter(|k| *k != c).collect();
        if !agree(Way::Spans, &batch.project(&keep).expect("projects")) {
            refused += 1;
        }
        let mut columns = batch.columns().to_vec();
        columns[c] = Arc::new(arrow::array::Int8Array::from(vec![1i8; batch.num_rows()]));
        let wrong = rebuild(&batch, columns);
        // A column read as text (`StrCol` casts numbers) may still pass.
        agree(Way::Spans, &wrong);
    }
    assert!(
        refused + 2 >= batch.num_columns(),
        "only {refused} columns needed"
    );
    let refs = batch
        .schema()
        .index_of("resource_entity_refs")
        .expect("a column");
    let mut columns = batch.columns().to_vec();
    columns[refs] = Arc::new(StringArray::from(vec![Some("[{]"); batch.num_rows()]));
    assert!(!agree(Way::Spans, &rebuild(&batch, columns)));
    agree_appended(Way::Spans, &batch.slice(0, 0));
    assert_eq!(
        convert::spans_to_proto(&batch.slice(0, 0)).expect("encodes"),
        b""
    );
    // A logs batch is not a spans batch.
    let logs = convert::logs_to_batch(&Default::default())
        .expect("converts")
        .batch;
    assert!(!agree(Way::Spans, &logs));
}
