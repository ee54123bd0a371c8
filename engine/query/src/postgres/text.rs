//! Results as Postgres clients can read them. Columns without a Postgres
//! form — maps (attributes), structs and lists of them (span events and
//! links) — are sent as `text` holding Arrow's display form
//! (`{http.method: GET, ...}`), so that `SELECT *` works from any client;
//! fixed-size binary (trace and span ids) as `bytea`; every other type
//! keeps its Postgres type. A column named after its table
//! (`spans.service_name`, as DataFusion names `service_name::text`) is
//! named as Postgres would (`service_name`).

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Whether a column of `data_type` goes out as text.
pub(crate) fn as_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Map(..) | DataType::Struct(_) | DataType::Union(..) => true,
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::FixedSizeList(field, _)
        | DataType::ListView(field)
        | DataType::LargeListView(field) => {
            as_text(field.data_type())
                || matches!(
                    field.data_type(),
                    DataType::List(_) | DataType::LargeList(_) | DataType::Dictionary(..)
                )
        }
        DataType::Dictionary(_, value) => as_text(value),
        other => arrow_pg::datatypes::into_pg_type(other).is_err(),
    }
}

/// Rewrites batches of one schema so that every column has a Postgres
/// type.
#[derive(Debug, Clone)]
pub(crate) struct Textify {
    schema: SchemaRef,
    /// Columns sent as text.
    columns: Arc<[usize]>,
    /// Columns cast to binary.
    binary: Arc<[usize]>,
}

impl Textify {
    /// For results of `schema`; `tables` are the names a column name may
    /// be qualified with.
    pub(crate) fn new(schema: &SchemaRef, tables: &[String]) -> Self {
        let mut columns = Vec::new();
        let mut binary = Vec::new();
        let fields: Vec<Arc<Field>> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = match f.name().split_once('.') {
                    Some((table, column))
                        if tables.iter().any(|t| t == table) && !column.contains('.') =>
                    {
                        column.to_string()
                    }
                    _ => f.name().clone(),
                };
                if matches!(f.data_type(), DataType::FixedSizeBinary(_)) {
                    binary.push(i);
                    Arc::new(Field::new(name, DataType::Binary, f.is_nullable()))
                } else if as_text(f.data_type()) {
                    columns.push(i);
                    Arc::new(Field::new(name, DataType::Utf8, true))
                } else {
                    Arc::new(f.as_ref().clone().with_name(name))
                }
            })
            .collect();
        Textify {
            schema: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
            columns: columns.into(),
            binary: binary.into(),
        }
    }

    /// The schema the client is told of.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `batch` with its unreadable columns as text.
    pub(crate) fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for &i in self.binary.iter() {
            columns[i] = arrow::compute::cast(&columns[i], &DataType::Binary)?;
        }
        let options = FormatOptions::default().with_null("");
        for &i in self.columns.iter() {
            let column = columns[i].clone();
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let mut text = StringBuilder::with_capacity(column.len(), column.len() * 16);
            for row in 0..column.len() {
                if column.is_null(row) {
                    text.append_null();
                } else {
                    text.append_value(formatter.value(row).to_string());
                }
            }
            columns[i] = Arc::new(text.finish());
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, MapBuilder, StringArray};

    /// A map column becomes readable text; other columns are untouched.
    #[test]
    fn maps_become_text() {
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        map.keys().append_value("http.method");
        map.values().append_value("GET");
        map.append(true).expect("entry");
        map.append(false).expect("null");
        let map = map.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("attributes", map.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(map)],
        )
        .expect("batch");
        let textify = Textify::new(&schema, &["spans".to_string()]);
        assert_eq!(textify.schema().field(0).data_type(), &DataType::Int64);
        assert_eq!(textify.schema().field(1).data_type(), &DataType::Utf8);
        let out = textify.apply(batch).expect("applies");
        let text = out
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        assert_eq!(text.value(0), "{http.method: GET}");
        assert!(text.is_null(1));
    }
}
