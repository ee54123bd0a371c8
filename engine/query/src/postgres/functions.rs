//! What Postgres clients ask the server about itself: `version()` and
//! `current_setting(name)`, registered in every Postgres session beside the
//! `pg_catalog` tables of `datafusion-pg-catalog`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// The Postgres version Weir answers as: the protocol and catalog it
/// speaks are those of Postgres 16.
pub const SERVER_VERSION: &str = "16.6";
/// [`SERVER_VERSION`] as `server_version_num`.
pub const SERVER_VERSION_NUM: &str = "160006";

/// The settings `current_setting` answers, as a fresh Postgres session
/// would.
const SETTINGS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_version_num", SERVER_VERSION_NUM),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("max_identifier_length", "63"),
    ("statement_timeout", "0"),
    ("transaction_read_only", "on"),
    ("default_transaction_read_only", "on"),
    ("is_superuser", "off"),
    ("application_name", ""),
];

/// Registers `version()` and `current_setting(name)` in `ctx`.
pub fn register(ctx: &SessionContext) {
    let version = format!(
        "PostgreSQL {SERVER_VERSION} (Weir {}, DataFusion SQL; read-only)",
        env!("CARGO_PKG_VERSION")
    );
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                version.clone(),
            ))))
        }),
    ));
    ctx.register_udf(create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(current_setting),
    ));
}

fn setting(name: &str) -> Result<&'static str> {
    let lower = name.to_ascii_lowercase();
    match SETTINGS.iter().find(|(key, _)| *key == lower) {
        Some((_, value)) => Ok(value),
        None => exec_err!("unrecognized configuration parameter \"{name}\""),
    }
}

fn current_setting(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let [arg] = args else {
        return exec_err!("current_setting takes one argument, the setting's name");
    };
    match arg {
        ColumnarValue::Scalar(scalar) => match scalar {
            ScalarValue::Utf8(name)
            | ScalarValue::LargeUtf8(name)
            | ScalarValue::Utf8View(name) => {
                let value = name.as_deref().map(setting).transpose()?;
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                    value.map(str::to_string),
                )))
            }
            other => exec_err!("current_setting takes a text name, not {other:?}"),
        },
        ColumnarValue::Array(array) => {
            let names = arrow::compute::cast(array, &DataType::Utf8)?;
            let Some(names) = names.as_any().downcast_ref::<StringArray>() else {
                return exec_err!("current_setting takes a text name");
            };
            let mut values = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                values.push(if names.is_null(i) {
                    None
                } else {
                    Some(setting(names.value(i))?)
                });
            }
            Ok(ColumnarValue::Array(
                Arc::new(StringArray::from(values)) as ArrayRef
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    async fn one(ctx: &SessionContext, sql: &str) -> String {
        let batches: Vec<_> = ctx
            .sql(sql)
            .await
            .expect("plans")
            .execute_stream()
            .await
            .expect("runs")
            .try_collect()
            .await
            .expect("rows");
        let column = arrow::compute::cast(batches[0].column(0), &DataType::Utf8).expect("text");
        column
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings")
            .value(0)
            .to_string()
    }

    /// The settings tools ask for answer as Postgres 16 would; an unknown
    /// one is an error, as in Postgres.
    #[tokio::test]
    async fn settings_answer_like_postgres() {
        let ctx = SessionContext::new();
        register(&ctx);
        assert_eq!(
            one(&ctx, "SELECT current_setting('server_version_num')").await,
            "160006"
        );
        assert_eq!(
            one(&ctx, "SELECT current_setting('search_path')").await,
            "\"$user\", public"
        );
        assert!(
            one(&ctx, "SELECT version()")
                .await
                .starts_with("PostgreSQL 16.6")
        );
        let unknown = ctx
            .sql("SELECT current_setting('no_such_thing')")
            .await
            .expect("plans")
            .collect()
            .await
            .expect_err("unknown setting");
        assert!(unknown.to_string().contains("no_such_thing"), "{unknown}");
    }
}
