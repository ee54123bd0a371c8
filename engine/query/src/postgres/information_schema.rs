//! `information_schema` as Postgres answers it: `tables`, `columns`,
//! `schemata` and `views`, with Postgres type names in `columns.data_type`
//! (`timestamp with time zone`, `bigint`, `text`). DataFusion's own names
//! the Arrow types (`Timestamp(ns, "+00:00")`), which tools such as
//! Grafana's query builder do not recognise as time or number columns.
//! Built when a connection opens (Weir's tables do not change while it
//! runs); columns that go out as text ([`super::text`]) are `text` here.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use pgwire::api::Type;

use super::text;

/// The catalog Weir's tables are in.
const CATALOG: &str = "datafusion";

/// Registers the schema in `ctx` (whose own `information_schema` is off).
pub(crate) async fn register(ctx: &SessionContext) -> Result<()> {
    let Some(catalog) = ctx.catalog(CATALOG) else {
        return Ok(());
    };
    let mut tables: Vec<[String; 3]> = Vec::new();
    let mut columns: Vec<(String, String, String, String, i32, bool, String)> = Vec::new();
    let mut schemata = Vec::new();
    for schema_name in catalog.schema_names() {
        let Some(schema) = catalog.schema(&schema_name) else {
            continue;
        };
        schemata.push(schema_name.clone());
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            let Some(table) = schema.table(&name).await? else {
                continue;
            };
            let kind = match table.table_type() {
                datafusion::datasource::TableType::View => "VIEW",
                _ => "BASE TABLE",
            };
            tables.push([schema_name.clone(), name.clone(), kind.to_string()]);
            for (i, field) in table.schema().fields().iter().enumerate() {
                let (data_type, udt) = postgres_type(field.data_type());
                columns.push((
                    schema_name.clone(),
                    name.clone(),
                    field.name().clone(),
                    data_type,
                    i32::try_from(i + 1).unwrap_or(i32::MAX),
                    field.is_nullable(),
                    udt,
                ));
            }
        }
    }
    schemata.push("information_schema".to_string());

    let info = Arc::new(MemorySchemaProvider::new());
    let text_column = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);

    let tables_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            utf8("table_catalog"),
            utf8("table_schema"),
            utf8("table_name"),
            utf8("table_type"),
        ])),
        vec![
            text_column(vec![CATALOG; tables.len()]),
            text_column(tables.iter().map(|t| t[0].as_str()).collect()),
            text_column(tables.iter().map(|t| t[1].as_str()).collect()),
            text_column(tables.iter().map(|t| t[2].as_str()).collect()),
        ],
    )?;
    let columns_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            utf8("table_catalog"),
            utf8("table_schema"),
            utf8("table_name"),
            utf8("column_name"),
            Field::new("ordinal_position", DataType::Int32, false),
            Field::new("column_default", DataType::Utf8, true),
            utf8("is_nullable"),
            utf8("data_type"),
            utf8("udt_name"),
        ])),
        vec![
            text_column(vec![CATALOG; columns.len()]),
            text_column(columns.iter().map(|c| c.0.as_str()).collect()),
            text_column(columns.iter().map(|c| c.1.as_str()).collect()),
            text_column(columns.iter().map(|c| c.2.as_str()).collect()),
            Arc::new(Int32Array::from(
                columns.iter().map(|c| c.4).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(vec![None::<&str>; columns.len()])),
            text_column(
                columns
                    .iter()
                    .map(|c| if c.5 { "YES" } else { "NO" })
                    .collect(),
            ),
            text_column(columns.iter().map(|c| c.3.as_str()).collect()),
            text_column(columns.iter().map(|c| c.6.as_str()).collect()),
        ],
    )?;
    let schemata_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            utf8("catalog_name"),
            utf8("schema_name"),
            utf8("schema_owner"),
        ])),
        vec![
            text_column(vec![CATALOG; schemata.len()]),
            text_column(schemata.iter().map(String::as_str).collect()),
            text_column(vec!["weir"; schemata.len()]),
        ],
    )?;
    let views = tables.iter().filter(|t| t[2] == "VIEW").collect::<Vec<_>>();
    let views_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            utf8("table_catalog"),
            utf8("table_schema"),
            utf8("table_name"),
        ])),
        vec![
            text_column(vec![CATALOG; views.len()]),
            text_column(views.iter().map(|t| t[0].as_str()).collect()),
            text_column(views.iter().map(|t| t[1].as_str()).collect()),
        ],
    )?;
    for (name, batch) in [
        ("tables", tables_batch),
        ("columns", columns_batch),
        ("schemata", schemata_batch),
        ("views", views_batch),
    ] {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        info.register_table(name.to_string(), Arc::new(table))?;
    }
    catalog.register_schema("information_schema", info)?;
    Ok(())
}

/// The SQL-standard type name Postgres shows in `data_type`, and its
/// `udt_name`, for a column of `data_type` as the client receives it.
fn postgres_type(data_type: &DataType) -> (String, String) {
    if text::as_text(data_type) {
        return ("text".to_string(), "text".to_string());
    }
    let pg = arrow_pg::datatypes::into_pg_type(data_type).unwrap_or(Type::TEXT);
    let standard = match pg {
        Type::BOOL => "boolean",
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::NUMERIC => "numeric",
        Type::TEXT | Type::VARCHAR => "text",
        Type::BYTEA => "bytea",
        Type::TIMESTAMPTZ => "timestamp with time zone",
        Type::TIMESTAMP => "timestamp without time zone",
        Type::DATE => "date",
        Type::TIME => "time without time zone",
        Type::INTERVAL => "interval",
        ref other if other.name().starts_with('_') => "ARRAY",
        _ => "USER-DEFINED",
    };
    (standard.to_string(), pg.name().to_string())
}
