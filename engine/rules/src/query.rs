//! Planning and running a rule's SQL, and reading its result.
//!
//! The query runs in a DataFusion session of its own, with Weir's SQL helper
//! functions (`histogram_quantile`, `duration_ms`, ...) and the three signal
//! tables registered as in-memory tables holding just the rows of the window
//! being evaluated. Statements other than queries (DDL, DML, `SET`) are
//! refused.
//!
//! The result must have a rule's shape ([`QueryShape`]): a numeric column
//! `value` and any number of string label columns. Each row is one
//! [`Sample`]: a label set (null or empty labels are left out, as in
//! Prometheus) and a value (rows whose value is null are skipped).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use weir_core::schema::{col, schema_for};
use weir_core::{Signal, SignalSet};

use crate::error::RuleError;
use crate::template::is_label_name;

/// One row of a rule's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The row's label columns that are not null nor empty.
    pub labels: BTreeMap<String, String>,
    /// The row's `value`.
    pub value: f64,
}

/// What validation learnt about a rule's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryShape {
    /// The label columns of the result, in SELECT order.
    pub label_columns: Vec<String>,
    /// The tables the query reads.
    pub inputs: SignalSet,
}

/// A session to run rule queries in: one partition (rules are many and
/// small; the runtime runs them side by side), at most `memory_limit` bytes
/// for the query's operators (hash tables, sorts; the window's rows are
/// bounded by the buffers), Weir's functions registered.
pub fn session(memory_limit: usize) -> Result<SessionContext, DataFusionError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_information_schema(false);
    // A rule's plan is kept and run again and again (see `crate::plan`): no
    // dynamic filters, which bind a plan to one run.
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit, 1.0)
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    weir_query::functions::register(&ctx);
    Ok(ctx)
}

/// Registers `tables` (missing signals as empty tables) into `ctx`,
/// replacing what was there.
pub fn register_tables(
    ctx: &SessionContext,
    mut tables: BTreeMap<Signal, Vec<RecordBatch>>,
) -> Result<(), DataFusionError> {
    for signal in Signal::TELEMETRY {
        let batches = tables.remove(&signal).unwrap_or_default();
        let table = MemTable::try_new(schema_for(signal), vec![batches])?;
        ctx.deregister_table(signal.as_str())?;
        ctx.register_table(signal.as_str(), Arc::new(table))?;
    }
    Ok(())
}

/// Plans `sql` in `ctx`, refusing anything but a query.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<DataFrame, DataFusionError> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options).await
}

/// Plans rule `rule`'s `sql` against empty tables and checks the shape of its
/// result.
pub async fn validate(rule: &str, sql: &str) -> Result<QueryShape, RuleError> {
    let sql_error = |e: DataFusionError| RuleError::Sql {
        rule: rule.to_string(),
        message: e.strip_backtrace().to_string(),
    };
    let ctx = session(usize::MAX).map_err(sql_error)?;
    register_tables(&ctx, BTreeMap::new()).map_err(sql_error)?;
    let df = plan(&ctx, sql).await.map_err(sql_error)?;
    if let Some(function) = wall_clock_function(df.logical_plan()) {
        return Err(RuleError::Sql {
            rule: rule.to_string(),
            message: format!(
                "`{function}()` reads the wall clock, but rules run in the data's time \
                 (and a rule's plan is made once, so it would never change): compare the \
                 rows' own `time` columns instead"
            ),
        });
    }
    let label_columns = check_shape(rule, df.schema().as_arrow())?;
    let inputs = tables_read(df.logical_plan());
    Ok(QueryShape {
        label_columns,
        inputs,
    })
}

/// The label columns of a result schema, or why it is not a rule's shape.
fn check_shape(rule: &str, schema: &Schema) -> Result<Vec<String>, RuleError> {
    let shape_error = |column: &str, message: String| RuleError::Shape {
        rule: rule.to_string(),
        column: column.to_string(),
        message,
    };
    let mut seen = BTreeSet::new();
    let mut labels = Vec::new();
    let mut has_value = false;
    for field in schema.fields() {
        let name = field.name();
        if !seen.insert(name.as_str()) {
            return Err(shape_error(
                name,
                "appears twice in the result; give each column its own name with `AS`".into(),
            ));
        }
        if name == col::VALUE {
            if !is_numeric(field.data_type()) {
                return Err(shape_error(
                    name,
                    format!(
                        "has type {}, but `value` must be a number; compute a number, or cast \
                         it: `CAST(... AS DOUBLE) AS value`",
                        field.data_type()
                    ),
                ));
            }
            has_value = true;
            continue;
        }
        if !is_label_name(name) {
            return Err(shape_error(
                name,
                "is not a valid label name (letters, digits and `_`, not starting with a \
                 digit); name it with `AS`, e.g. `count(*) AS value` or `attributes['http.route'] \
                 AS route`"
                    .into(),
            ));
        }
        if !is_string(field.data_type()) {
            return Err(shape_error(
                name,
                format!(
                    "has type {}, but every column other than `value` is a label and must be a \
                     string; cast it with `CAST({name} AS VARCHAR) AS {name}`, or leave it out \
                     of the SELECT",
                    field.data_type()
                ),
            ));
        }
        labels.push(name.clone());
    }
    if !has_value {
        return Err(shape_error(
            col::VALUE,
            "is missing: a rule's query returns the number to alert on or record in a column \
             named `value`, e.g. `SELECT service_name, count(*) AS value FROM spans GROUP BY \
             service_name`"
                .into(),
        ));
    }
    Ok(labels)
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Null)
}

fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

/// The first function of `plan` (subqueries included) that reads the wall
/// clock, if any.
fn wall_clock_function(plan: &LogicalPlan) -> Option<String> {
    const CLOCK: [&str; 4] = ["now", "current_timestamp", "current_date", "current_time"];
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && CLOCK.contains(&f.func.name())
                {
                    found = Some(f.func.name().to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// The signal tables `plan` scans, subqueries included.
fn tables_read(plan: &LogicalPlan) -> SignalSet {
    let mut set = SignalSet::NONE;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(signal) = scan.table_name.table().parse::<Signal>()
        {
            set = set.union(SignalSet::only(signal));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    set
}

/// Reads the samples of a result. The batches have the shape `validate`
/// checked.
pub fn samples(batches: &[RecordBatch]) -> Result<Vec<Sample>, DataFusionError> {
    let mut out = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let value_index = schema.index_of(col::VALUE)?;
        let values = cast(batch.column(value_index), &DataType::Float64)?;
        let values = values.as_primitive::<Float64Type>();
        let mut labels = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            if i == value_index {
                continue;
            }
            let column = cast(batch.column(i), &DataType::Utf8)?;
            labels.push((field.name().clone(), column));
        }
        for row in 0..batch.num_rows() {
            if values.is_null(row) {
                continue;
            }
            let mut set = BTreeMap::new();
            for (name, column) in &labels {
                let column = column.as_string::<i32>();
                if column.is_valid(row) && !column.value(row).is_empty() {
                    set.insert(name.clone(), column.value(row).to_string());
                }
            }
            out.push(Sample {
                labels: set,
                value: values.value(row),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::tests::{S, logs};

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    /// Guarantees: a well-shaped query validates; its label columns and the
    /// tables it reads (through subqueries too) are found.
    #[test]
    fn validates_shape_and_finds_inputs() {
        let shape = block(validate(
            "r",
            "SELECT service_name, severity_name(severity_number) AS severity, count(*) AS value \
             FROM logs WHERE service_name IN (SELECT service_name FROM spans) \
             GROUP BY 1, 2",
        ))
        .unwrap();
        assert_eq!(shape.label_columns, ["service_name", "severity"]);
        assert!(shape.inputs.contains(Signal::Logs));
        assert!(shape.inputs.contains(Signal::Spans));
        assert!(!shape.inputs.contains(Signal::Metrics));
    }

    /// Guarantees: each wrong shape is refused with a message naming the
    /// column and saying how to fix it; SQL errors carry DataFusion's message.
    #[test]
    fn refuses_wrong_shapes() {
        let cases = [
            ("SELECT count(*) FROM logs", "count(*)", "AS"),
            ("SELECT service_name FROM logs", "value", "is missing"),
            (
                "SELECT body AS value FROM logs",
                "value",
                "must be a number",
            ),
            (
                "SELECT severity_number AS sev, 1 AS value FROM logs",
                "sev",
                "CAST(sev AS VARCHAR)",
            ),
            (
                "SELECT * FROM (SELECT 'a' AS x, 1 AS value) a JOIN (SELECT 'a' AS x) b ON a.x = b.x",
                "x",
                "twice",
            ),
        ];
        for (sql, column, hint) in cases {
            match block(validate("r", sql)) {
                Err(RuleError::Shape {
                    column: c, message, ..
                }) => {
                    assert_eq!(c, column, "{sql}");
                    assert!(message.contains(hint), "{sql}: {message}");
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        let err = block(validate("r", "SELECT nope AS value FROM logs")).unwrap_err();
        assert!(
            matches!(&err, RuleError::Sql { message, .. } if message.contains("nope")),
            "{err}"
        );
        let err = block(validate("r", "SELECT 1 AS value FROM tracez")).unwrap_err();
        assert!(err.to_string().contains("tracez"), "{err}");
        let err = block(validate("r", "DROP TABLE logs")).unwrap_err();
        assert!(matches!(err, RuleError::Sql { .. }), "{err}");
        for sql in [
            "SELECT CAST(count(*) AS DOUBLE) AS value FROM logs WHERE time > now() - INTERVAL '5 minutes'",
            "SELECT 1 AS value FROM (SELECT * FROM spans WHERE start_time < current_timestamp())",
        ] {
            let err = block(validate("r", sql)).unwrap_err();
            assert!(err.to_string().contains("wall clock"), "{sql}: {err}");
        }
    }

    /// Guarantees: a query runs over registered batches; rows become samples
    /// with integer values cast to doubles, null labels left out and null
    /// values skipped.
    #[tokio::test]
    async fn runs_and_reads_samples() {
        let ctx = session(64 << 20).unwrap();
        let batch = logs(&[(1, "a"), (2, "a"), (3, "b")]);
        register_tables(&ctx, BTreeMap::from([(Signal::Logs, vec![batch])])).unwrap();
        let df = plan(
            &ctx,
            "SELECT service_name, CASE WHEN service_name = 'b' THEN NULL ELSE service_name END AS other, \
             count(*) AS value FROM logs GROUP BY service_name \
             UNION ALL SELECT 'c', 'c', NULL",
        )
        .await
        .unwrap();
        let mut got = samples(&df.collect().await.unwrap()).unwrap();
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].labels,
            BTreeMap::from([
                ("other".into(), "a".into()),
                ("service_name".into(), "a".into())
            ])
        );
        assert_eq!(got[0].value, 2.0);
        assert_eq!(
            got[1].labels,
            BTreeMap::from([("service_name".into(), "b".into())])
        );
        assert_eq!(got[1].value, 1.0);
        let _ = S;
    }
}
