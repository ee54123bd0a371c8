//! One DataFusion [`TableProvider`] per table: the rows in memory and the
//! Parquet files, read together.
//!
//! A scan takes a [`Snapshot`](crate::state::Snapshot) under the store's
//! lock, so a row moving from memory to Parquet is read exactly once, then
//! plans a union of a memory scan and a Parquet scan:
//!
//! * **time filters** (`time >= ..`, `<`, `=`, `BETWEEN` on the table's time
//!   column, literals in any timestamp unit) skip whole hours, files and
//!   memory batches that cannot match. Every filter is also handed to the
//!   Parquet scan as its predicate, which prunes row groups and pages by
//!   their statistics. Filters are answered `Inexact`: DataFusion still
//!   checks each row.
//! * **projection** is passed to both scans: only the columns asked for are
//!   read from Parquet.
//! * **limit** (when there is no filter) stops adding memory batches and
//!   files once they hold enough rows, and is passed to both scans.
//!
//! The Parquet scan is watched ([`crate::guard`]): a file found damaged
//! while a query reads it is quarantined, that query fails saying so, and
//! the next ones run without it ([`crate::quarantine`]).

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, ScalarValue, project_schema};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use weir_core::Signal;

use crate::guard::GuardExec;
use crate::inner::Inner;
use crate::state::TimeFilter;

/// The [`TableProvider`] of one table of a [`crate::Store`].
pub struct StoreTable {
    table: Signal,
    inner: Arc<Inner>,
}

impl StoreTable {
    pub(crate) fn new(table: Signal, inner: Arc<Inner>) -> Self {
        StoreTable { table, inner }
    }
}

impl fmt::Debug for StoreTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreTable")
            .field("table", &self.table)
            .field("location", &self.inner.location.display)
            .finish()
    }
}

#[async_trait]
impl TableProvider for StoreTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Time filters prune hours, files and memory batches; every filter
        // prunes row groups. None is applied exactly: DataFusion filters rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.table.schema();
        let time = time_filter(filters, self.table.time_column());
        if time.is_some_and(|t| t.lo > t.hi) {
            return Ok(Arc::new(EmptyExec::new(project_schema(
                &schema, projection,
            )?)));
        }
        let mut snapshot = self.inner.snapshot(self.table, time);
        // Without filters, a limit needs only enough rows.
        let limit = if filters.is_empty() { limit } else { None };
        if let Some(limit) = limit {
            let mut rows = 0usize;
            snapshot.mem.retain(|b| {
                let keep = rows < limit;
                rows += b.num_rows();
                keep
            });
            let mut rows = rows as u64;
            snapshot.files.retain(|f| {
                let keep = rows < limit as u64;
                rows += f.rows;
                keep
            });
        }
        let partitions = state.config().target_partitions().max(1);
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if !snapshot.mem.is_empty() {
            let n = partitions.min(snapshot.mem.len());
            let mut parts = vec![Vec::new(); n];
            for (i, b) in snapshot.mem.into_iter().enumerate() {
                parts[i % n].push(b);
            }
            let source = MemorySourceConfig::try_new(&parts, schema.clone(), projection.cloned())?
                .with_limit(limit);
            plans.push(DataSourceExec::from_data_source(source));
        }
        if !snapshot.files.is_empty() {
            let location = &self.inner.location;
            let runtime = state.runtime_env();
            runtime.register_object_store(location.url.as_ref(), location.store.clone());
            let cache = self.inner.metadata_cache.clone();
            let mut source = ParquetSource::new(schema.clone())
                .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                    location.store.clone(),
                    cache,
                )))
                .with_enable_page_index(true);
            if let Some(predicate) = predicate(state, filters, &schema) {
                source = source.with_predicate(predicate);
            }
            let n = partitions.min(snapshot.files.len());
            let mut groups = vec![Vec::new(); n];
            let mut sizes = vec![0u64; n];
            // Largest first into the lightest group.
            snapshot.files.sort_by_key(|f| std::cmp::Reverse(f.size));
            for f in &snapshot.files {
                let (i, _) = sizes
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| **s)
                    .unwrap_or((0, &0));
                sizes[i] += f.size;
                groups[i].push(PartitionedFile::new(f.path().to_string(), f.size));
            }
            let config = FileScanConfigBuilder::new(location.url.clone(), Arc::new(source))
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            let scan = DataSourceExec::from_data_source(config);
            let guarded = GuardExec::new(scan, self.table, self.inner.clone(), &snapshot.files);
            plans.push(Arc::new(guarded));
        }
        match plans.len() {
            0 => Ok(Arc::new(EmptyExec::new(project_schema(
                &schema, projection,
            )?))),
            1 => Ok(plans.remove(0)),
            _ => UnionExec::try_new(plans),
        }
    }
}

/// The filters as one physical predicate for the Parquet scan's pruning;
/// filters that cannot be turned into one are left out (DataFusion still
/// applies them above the scan).
fn predicate(
    state: &dyn Session,
    filters: &[Expr],
    schema: &SchemaRef,
) -> Option<Arc<dyn datafusion::physical_plan::PhysicalExpr>> {
    let df_schema = DFSchema::try_from(schema.clone()).ok()?;
    let usable: Vec<Expr> = filters
        .iter()
        .filter(|f| state.create_physical_expr((*f).clone(), &df_schema).is_ok())
        .cloned()
        .collect();
    let all = conjunction(usable)?;
    state.create_physical_expr(all, &df_schema).ok()
}

/// The range of event times `filters` (a conjunction) admit, if they
/// restrict column `column` at all. An empty range has `lo > hi`.
pub(crate) fn time_filter(filters: &[Expr], column: &str) -> Option<TimeFilter> {
    let mut range = TimeFilter {
        lo: i64::MIN,
        hi: i64::MAX,
    };
    let mut found = false;
    for f in filters {
        found |= narrow(f, column, &mut range);
    }
    found.then_some(range)
}

/// Narrows `range` by `expr`; `true` if it said something about `column`.
fn narrow(expr: &Expr, column: &str, range: &mut TimeFilter) -> bool {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if *op == Operator::And {
                let l = narrow(left, column, range);
                let r = narrow(right, column, range);
                return l || r;
            }
            let (op, value) = if is_column(left, column) {
                match literal_ns(right) {
                    Some(v) => (*op, v),
                    None => return false,
                }
            } else if is_column(right, column) {
                match (literal_ns(left), op.swap()) {
                    (Some(v), Some(op)) => (op, v),
                    _ => return false,
                }
            } else {
                return false;
            };
            match op {
                Operator::Eq => {
                    range.lo = range.lo.max(value);
                    range.hi = range.hi.min(value);
                }
                Operator::Gt => range.lo = range.lo.max(value.saturating_add(1)),
                Operator::GtEq => range.lo = range.lo.max(value),
                Operator::Lt => range.hi = range.hi.min(value.saturating_sub(1)),
                Operator::LtEq => range.hi = range.hi.min(value),
                _ => return false,
            }
            true
        }
        Expr::Between(b) if !b.negated && is_column(&b.expr, column) => {
            match (literal_ns(&b.low), literal_ns(&b.high)) {
                (Some(lo), Some(hi)) => {
                    range.lo = range.lo.max(lo);
                    range.hi = range.hi.min(hi);
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether `expr` is column `column` (or a cast of it that keeps its
/// nanosecond values, such as a change of time zone).
fn is_column(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Column(c) => c.name == column,
        Expr::Cast(c) => {
            matches!(
                c.field.data_type(),
                DataType::Timestamp(TimeUnit::Nanosecond, _)
            ) && is_column(&c.expr, column)
        }
        _ => false,
    }
}

/// A timestamp literal in nanoseconds.
fn literal_ns(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(v),
            Some("+00:00".into()),
        ))
    }

    /// Guarantees: comparisons, `BETWEEN`, conjunctions and reversed
    /// operands on the time column narrow the range; other columns and
    /// disjunctions do not.
    #[test]
    fn time_filters_are_understood() {
        let f = time_filter(&[col("time").gt_eq(ts(10)), ts(20).gt(col("time"))], "time");
        assert_eq!(f, Some(TimeFilter { lo: 10, hi: 19 }));
        let f = time_filter(&[col("time").between(ts(5), ts(7))], "time");
        assert_eq!(f, Some(TimeFilter { lo: 5, hi: 7 }));
        let f = time_filter(
            &[col("time").gt(ts(10)).and(col("time").lt_eq(ts(10)))],
            "time",
        );
        assert!(f.is_some_and(|f| f.lo > f.hi));
        let secs = lit(ScalarValue::TimestampSecond(Some(2), None));
        assert_eq!(
            time_filter(&[col("time").eq(secs)], "time"),
            Some(TimeFilter {
                lo: 2_000_000_000,
                hi: 2_000_000_000
            })
        );
        assert_eq!(time_filter(&[col("other").gt(ts(1))], "time"), None);
        assert_eq!(
            time_filter(&[col("time").gt(ts(1)).or(col("time").lt(ts(0)))], "time"),
            None
        );
    }
}
