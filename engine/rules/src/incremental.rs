//! Incremental evaluation: partial aggregates per pane.
//!
//! A rule whose query is one aggregation over one table's rows (`SELECT
//! labels, agg(...) FROM t WHERE ... GROUP BY labels HAVING ...`, the shape
//! of nearly every alert) need not rescan its whole window at each
//! evaluation. Its window is cut into panes of `every`; each pane's rows go
//! once through the aggregation's *partial* phase (DataFusion's
//! `AggregateMode::Partial`: running sums, counts, t-digests, ...), and the
//! small partial states are kept. An evaluation combines the states of the
//! panes in its window with the *final* phase and runs the rest of the plan
//! (`HAVING`, projection) over the result, as Arroyo does with DataFusion's
//! partial and final aggregate plans. The pane's rows can then be freed: a
//! 5-minute window evaluated every 30 s keeps 10 panes of states, not 5
//! minutes of records.
//!
//! Queries of another shape (joins, subqueries, several aggregations, a
//! window that is not a multiple of `every`) run over the buffered window
//! as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;

use crate::time::UnixNanos;

/// Operators that only filter or reshape rows, one by one: what may stand
/// between the table and the aggregation.
const ROW_WISE: [&str; 8] = [
    "FilterExec",
    "ProjectionExec",
    "CoalesceBatchesExec",
    "DataSourceExec",
    "RepartitionExec",
    "CoalescePartitionsExec",
    "CooperativeExec",
    "EmptyExec",
];

/// The aggregation of a plan that can run pane by pane.
struct Split {
    /// The node that takes raw rows: `Single`, or the `Partial` of a pair.
    first: Arc<AggregateExec>,
}

/// The one aggregation of `plan`, if the plan can be evaluated pane by
/// pane: exactly one `AggregateExec` (or one Partial/Final pair), fed
/// only by row-wise operators, with no other data source above it.
fn split(plan: &Arc<dyn ExecutionPlan>) -> Option<Split> {
    let mut aggregates = Vec::new();
    let mut sources = 0usize;
    plan.apply(|node| {
        if let Some(agg) = node.downcast_ref::<AggregateExec>() {
            aggregates.push((*agg.mode(), Arc::clone(node)));
        }
        if node.children().is_empty() {
            sources += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .ok()?;
    if sources != 1 {
        return None;
    }
    let first = match aggregates.as_slice() {
        [(AggregateMode::Single, node)] => Arc::clone(node),
        [
            (AggregateMode::Final | AggregateMode::FinalPartitioned, _),
            (AggregateMode::Partial, partial),
        ] => Arc::clone(partial),
        _ => return None,
    };
    let first_exec = first.downcast_ref::<AggregateExec>()?;
    if first_exec.group_expr().has_grouping_set() {
        return None;
    }
    let mut row_wise = true;
    first_exec
        .input()
        .apply(|node| {
            row_wise &= ROW_WISE.contains(&node.name());
            Ok(TreeNodeRecursion::Continue)
        })
        .ok()?;
    if !row_wise {
        return None;
    }
    let first = Arc::new(
        AggregateExec::try_new(
            *first_exec.mode(),
            first_exec.group_expr().clone(),
            first_exec.aggr_expr().to_vec(),
            first_exec.filter_expr().to_vec(),
            Arc::clone(first_exec.input()),
            first_exec.input_schema(),
        )
        .ok()?,
    );
    Some(Split { first })
}

/// Whether `plan` (planned over empty tables) can be evaluated pane by pane.
pub(crate) fn is_incremental(plan: &Arc<dyn ExecutionPlan>) -> bool {
    split(plan).is_some()
}

/// The partial phase of `plan`'s aggregation over the rows `plan` reads:
/// the states to keep for one pane.
pub(crate) async fn partial_states(
    ctx: &SessionContext,
    plan: &Arc<dyn ExecutionPlan>,
) -> Result<(SchemaRef, Vec<RecordBatch>), DataFusionError> {
    let split = split(plan).ok_or_else(|| {
        DataFusionError::Internal("the query is not incremental any more".to_string())
    })?;
    let first = &split.first;
    let partial: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::try_new(
        AggregateMode::Partial,
        first.group_expr().clone(),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        Arc::clone(first.input()),
        first.input_schema(),
    )?);
    let schema = partial.schema();
    let states = collect(partial, ctx.task_ctx()).await?;
    Ok((schema, states))
}

/// Runs `plan` with its aggregation's input replaced by the partial
/// `states` of several panes, combined by the final phase.
pub(crate) async fn run_final(
    ctx: &SessionContext,
    plan: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    states: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let split = split(&plan).ok_or_else(|| {
        DataFusionError::Internal("the query is not incremental any more".to_string())
    })?;
    let first = split.first;
    let source = MemorySourceConfig::try_new_exec(&[states], Arc::clone(&schema), None)?;
    let final_agg: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::try_new(
        AggregateMode::Final,
        first.group_expr().as_final(),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        source,
        first.input_schema(),
    )?);
    // Replace the top aggregation (Single, or the Final of the pair) and
    // everything under it.
    let replaced = plan
        .transform_down(|node| {
            let top = node
                .downcast_ref::<AggregateExec>()
                .is_some_and(|a| *a.mode() != AggregateMode::Partial);
            if top {
                Ok(Transformed::new(
                    Arc::clone(&final_agg),
                    true,
                    TreeNodeRecursion::Jump,
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })?
        .data;
    collect(replaced, ctx.task_ctx()).await
}

/// The partial states of one rule, per pane start.
#[derive(Debug, Default)]
pub(crate) struct Panes {
    panes: BTreeMap<UnixNanos, Vec<RecordBatch>>,
    schema: Option<SchemaRef>,
}

impl Panes {
    /// Whether the pane starting at `start` is held.
    pub(crate) fn has(&self, start: UnixNanos) -> bool {
        self.panes.contains_key(&start)
    }

    /// Keeps the states of the pane starting at `start`.
    pub(crate) fn insert(&mut self, start: UnixNanos, schema: SchemaRef, states: Vec<RecordBatch>) {
        self.schema = Some(schema);
        self.panes.insert(start, states);
    }

    /// Marks the pane at `start` as holding no rows.
    pub(crate) fn insert_empty(&mut self, start: UnixNanos) {
        self.panes.insert(start, Vec::new());
    }

    /// The states of the panes starting in `[start, end)`, and their schema
    /// (`None` while no pane held a row).
    pub(crate) fn states(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> (Option<SchemaRef>, Vec<RecordBatch>) {
        let states = self
            .panes
            .range(start..end)
            .flat_map(|(_, b)| b.iter().cloned())
            .collect();
        (self.schema.clone(), states)
    }

    /// Frees the panes starting before `t`.
    pub(crate) fn evict_before(&mut self, t: UnixNanos) {
        self.panes = self.panes.split_off(&t);
    }

    /// The bytes the states hold.
    pub(crate) fn bytes(&self) -> usize {
        self.panes
            .values()
            .flatten()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}
