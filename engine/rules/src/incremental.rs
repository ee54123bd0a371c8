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

/// The node of `plan` whose aggregation takes the raw rows (`Single`, or
/// the `Partial` of a pair), if the plan can be evaluated pane by pane:
/// exactly one `AggregateExec` (or one Partial/Final pair), fed only by
/// row-wise operators, with no other data source.
fn first_aggregate(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
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
    let exec = first.downcast_ref::<AggregateExec>()?;
    if exec.group_expr().has_grouping_set() {
        return None;
    }
    let mut row_wise = true;
    exec.input()
        .apply(|node| {
            row_wise &= ROW_WISE.contains(&node.name());
            Ok(TreeNodeRecursion::Continue)
        })
        .ok()?;
    row_wise.then_some(first)
}

/// [`first_aggregate`] as an `AggregateExec`, or an error saying the plan
/// changed shape.
fn first_exec(plan: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    first_aggregate(plan).ok_or_else(|| {
        DataFusionError::Internal("the query is not incremental any more".to_string())
    })
}

/// Whether `plan` (planned over empty tables) can be evaluated pane by pane.
pub(crate) fn is_incremental(plan: &Arc<dyn ExecutionPlan>) -> bool {
    first_aggregate(plan).is_some()
}

/// The partial phase of `plan`'s aggregation over the rows `plan` reads:
/// the states to keep for one pane.
pub(crate) async fn partial_states(
    ctx: &SessionContext,
    plan: &Arc<dyn ExecutionPlan>,
) -> Result<(SchemaRef, Vec<RecordBatch>), DataFusionError> {
    let node = first_exec(plan)?;
    let Some(first) = node.downcast_ref::<AggregateExec>() else {
        return Err(DataFusionError::Internal("not an aggregation".to_string()));
    };
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
    let node = first_exec(&plan)?;
    let Some(first) = node.downcast_ref::<AggregateExec>() else {
        return Err(DataFusionError::Internal("not an aggregation".to_string()));
    };
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
