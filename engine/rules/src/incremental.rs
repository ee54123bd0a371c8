//! Incremental evaluation: partial aggregates per pane.
//!
//! A rule whose query is one aggregation over one table's rows (`SELECT
//! labels, agg(...) FROM t WHERE ... GROUP BY labels HAVING ...`, the shape
//! of nearly every alert) need not rescan its whole window at each
//! evaluation. Event time is cut into panes of `every`, each open at its
//! start and closed at its end (`(s, s + every]`, as a window is: see
//! [`crate::window`]). Rows are aggregated
//! as they arrive: the rows of a pane are gathered (shared by every rule of
//! a group) and, every [`FLUSH_ROWS`] rows and at the evaluation that first
//! needs the pane, go once through the aggregation's *partial* phase
//! (DataFusion's `AggregateMode::Partial`: running sums, counts, t-digests,
//! ...); only the small partial states are kept, merged now and then by the
//! `PartialReduce` phase. An evaluation combines the states of the panes in
//! its window with the *final* phase and runs the rest of the plan
//! (`HAVING`, projection) over the result, as Arroyo does with DataFusion's
//! partial and final aggregate plans. A 5-minute window evaluated every 30 s
//! keeps 10 panes of states and at most a few thousand raw rows, not 5
//! minutes of records.
//!
//! The three phases are planned once, with the rule (see [`crate::plan`]).
//! Queries of another shape (joins, subqueries, several aggregations, a
//! window that is not a multiple of `every`) run over the buffered window.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, TimestampNanosecondArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{ExecutionPlan, displayable};
use weir_core::Signal;

use crate::plan::{self, Slot, slot_scan};
use crate::time::UnixNanos;

/// Operators that only filter or reshape rows, one by one: what may stand
/// between the table and the aggregation.
const ROW_WISE: [&str; 8] = [
    "FilterExec",
    "ProjectionExec",
    "CoalesceBatchesExec",
    "LazyMemoryExec",
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

/// Rows gathered for a pane are aggregated once this many have arrived
/// (and at the evaluation that first needs the pane): few enough that an
/// evaluation has little left to aggregate, enough that the cost of a run
/// is spread over many rows.
pub(crate) const FLUSH_ROWS: usize = 8192;

/// A pane's partial states are merged into one batch once it holds this
/// many.
const REDUCE_AT: usize = 16;

/// The three phases of a pane-by-pane query, planned once.
#[derive(Debug)]
pub(crate) struct PanePlans {
    /// The table the aggregation reads.
    pub(crate) input: Signal,
    /// Rows (from the table's slot) to partial states.
    partial: Arc<dyn ExecutionPlan>,
    /// Partial states (from `states`) to fewer partial states.
    reduce: Arc<dyn ExecutionPlan>,
    /// Partial states (from `states`) to the aggregation's final rows.
    final_agg: Arc<dyn ExecutionPlan>,
    /// The aggregation's final rows (from `finals`) to the query's result:
    /// the rest of the query (`HAVING`, the projection).
    rest: Arc<dyn ExecutionPlan>,
    /// What `reduce` and `final_agg` read.
    states: Slot,
    /// What `rest` reads.
    finals: Slot,
    /// What the partial phase computes, written out: the table, the row-wise
    /// operators (filters, projections), the grouping and the aggregates,
    /// and the schema of the states. Rules whose keys are equal aggregate
    /// the same rows into the same states, whatever they do with them
    /// after (`HAVING`, the projection, names).
    key: String,
}

impl PanePlans {
    /// The phases of `plan` (planned over slot tables), if it has the shape
    /// of an incremental query; `input` is the one table it reads.
    pub(crate) fn new(
        plan: &Arc<dyn ExecutionPlan>,
        input: Signal,
    ) -> Result<Option<PanePlans>, DataFusionError> {
        let Some(node) = first_aggregate(plan) else {
            return Ok(None);
        };
        let Some(first) = node.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        let phase = |mode, group, input: Arc<dyn ExecutionPlan>| {
            AggregateExec::try_new(
                mode,
                group,
                first.aggr_expr().to_vec(),
                first.filter_expr().to_vec(),
                input,
                first.input_schema(),
            )
            .map(|a| Arc::new(a) as Arc<dyn ExecutionPlan>)
        };
        let partial = phase(
            AggregateMode::Partial,
            first.group_expr().clone(),
            Arc::clone(first.input()),
        )?;
        let states = Slot::default();
        let schema = partial.schema();
        let reduce = phase(
            AggregateMode::PartialReduce,
            first.group_expr().as_final(),
            slot_scan(Arc::clone(&schema), &states, None)?,
        )?;
        let final_agg = phase(
            AggregateMode::Final,
            first.group_expr().as_final(),
            slot_scan(schema, &states, None)?,
        )?;
        // The rest of the query reads the final rows in place of the top
        // aggregation (Single, or the Final of the pair) and everything
        // under it.
        let finals = Slot::default();
        let final_rows = slot_scan(final_agg.schema(), &finals, None)?;
        let rest = Arc::clone(plan)
            .transform_down(|node| {
                let top = node
                    .downcast_ref::<AggregateExec>()
                    .is_some_and(|a| *a.mode() != AggregateMode::Partial);
                if top {
                    Ok(Transformed::new(
                        Arc::clone(&final_rows),
                        true,
                        TreeNodeRecursion::Jump,
                    ))
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        let key = format!(
            "{input}\n{}\n{:?}",
            displayable(partial.as_ref()).indent(true),
            partial.schema()
        );
        Ok(Some(PanePlans {
            input,
            partial,
            reduce,
            final_agg,
            rest,
            states,
            finals,
            key,
        }))
    }

    /// See the `key` field.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The schema of the aggregation's final rows: its group columns, then
    /// its aggregates.
    pub(crate) fn final_schema(&self) -> SchemaRef {
        self.final_agg.schema()
    }

    /// The partial states of `rows` (the rows of one pane), read through
    /// `slot`, the input table's.
    pub(crate) async fn partial(
        &self,
        task: &Arc<TaskContext>,
        slot: &Slot,
        rows: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        plan::run_over(task, &self.partial, slot, rows).await
    }

    /// `states` merged into (usually) one batch.
    async fn reduce(
        &self,
        task: &Arc<TaskContext>,
        states: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        plan::run_over(task, &self.reduce, &self.states, states).await
    }

    /// The aggregation's final rows from the partial `states` of the panes
    /// of a window.
    async fn finalize(
        &self,
        task: &Arc<TaskContext>,
        states: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        plan::run_over(task, &self.final_agg, &self.states, states).await
    }

    /// The query's result from the aggregation's final rows.
    pub(crate) async fn finish(
        &self,
        task: &Arc<TaskContext>,
        finals: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        plan::run_over(task, &self.rest, &self.finals, finals).await
    }
}

/// What a rule keeps of one pane.
#[derive(Debug, Default)]
struct Pane {
    states: Vec<RecordBatch>,
    /// Why aggregating some of its rows failed; the evaluations whose
    /// window holds the pane report it.
    failed: Option<String>,
}

/// The partial states of one aggregation, per pane start.
#[derive(Debug, Default)]
pub(crate) struct Panes {
    panes: BTreeMap<UnixNanos, Pane>,
}

impl Panes {
    /// Aggregates `rows`, stamped in the pane starting at `start`, into that
    /// pane's states.
    pub(crate) async fn absorb(
        &mut self,
        plans: &PanePlans,
        task: &Arc<TaskContext>,
        slot: &Slot,
        start: UnixNanos,
        rows: Vec<RecordBatch>,
    ) {
        let states = plans.partial(task, slot, rows).await;
        // The panes before this one are complete (rows come in time order,
        // give or take the allowed lateness): merge their states now rather
        // than in the evaluation that first reads them.
        for (_, older) in self.panes.range_mut(..start) {
            if older.states.len() > 1 {
                Self::reduce(older, plans, task).await;
            }
        }
        let pane = self.panes.entry(start).or_default();
        match states {
            Ok(states) => {
                pane.states
                    .extend(states.into_iter().filter(|b| b.num_rows() > 0));
                if pane.states.len() >= REDUCE_AT {
                    Self::reduce(pane, plans, task).await;
                }
            }
            Err(e) => pane.failed = Some(e.strip_backtrace().to_string()),
        }
    }

    async fn reduce(pane: &mut Pane, plans: &PanePlans, task: &Arc<TaskContext>) {
        let states = std::mem::take(&mut pane.states);
        match plans.reduce(task, states.clone()).await {
            Ok(reduced) => pane.states = reduced,
            Err(e) => {
                pane.states = states;
                pane.failed = Some(e.strip_backtrace().to_string());
            }
        }
    }

    /// Merges the states of every pane starting before `end` into one
    /// batch each (those panes are complete: every later window reuses the
    /// merged states).
    pub(crate) async fn settle(
        &mut self,
        plans: &PanePlans,
        task: &Arc<TaskContext>,
        end: UnixNanos,
    ) {
        for pane in self.panes.range_mut(..end).map(|(_, p)| p) {
            if pane.states.len() > 1 {
                Self::reduce(pane, plans, task).await;
            }
        }
    }

    /// The states of the panes starting in `[start, end)` (the rows of
    /// `(start, end]`), or the first failure among them.
    pub(crate) fn states(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<RecordBatch>, String> {
        let mut out = Vec::new();
        for pane in self.panes.range(start..end).map(|(_, p)| p) {
            if let Some(why) = &pane.failed {
                return Err(why.clone());
            }
            out.extend(pane.states.iter().cloned());
        }
        Ok(out)
    }

    /// Frees the panes starting before `t`.
    pub(crate) fn evict_before(&mut self, t: UnixNanos) {
        self.panes = self.panes.split_off(&t);
    }

    /// The earliest event time after `t` its panes may hold rows of.
    fn earliest_after(&self, t: UnixNanos, every: i64) -> Option<UnixNanos> {
        self.panes
            .keys()
            .find_map(|&start| pane_after(start, t, every))
    }

    /// The bytes the states hold.
    pub(crate) fn bytes(&self) -> usize {
        self.panes
            .values()
            .flat_map(|p| &p.states)
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}

/// The partial aggregates of one aggregation, pane by pane, shared by the
/// rules of a group that need its aggregates (see [`crate::shape`]): its
/// rows are aggregated once, whatever the number of rules, and the final
/// rows of each window are made once; each rule reads its columns of them
/// and runs only the rest of its query.
#[derive(Debug)]
pub(crate) struct PaneStore {
    /// The partial, reduce and final phases.
    plans: Arc<PanePlans>,
    /// What it aggregates (see [`crate::shape::PaneShape::key`]).
    key: String,
    /// The context and table slot the phases run with.
    task: Arc<TaskContext>,
    slot: Slot,
    panes: Panes,
    /// The store holds every row stamped after this time; `None`: every
    /// row the group has taken.
    held_after: Option<UnixNanos>,
    /// The largest `window + query_offset` of the rules that read it.
    pub(crate) reach: i64,
    /// The final rows of each window `(start, end]` the evaluation in
    /// progress needs, made once for all the rules that read the store
    /// (see [`PaneStore::prepare`]).
    finals: Vec<(Window, Result<Vec<RecordBatch>, String>)>,
}

/// A window `(start, end]` of event time.
pub(crate) type Window = (UnixNanos, UnixNanos);

impl PaneStore {
    /// An empty store for the aggregation of `plans` (`key`: what it
    /// aggregates), run with `task` over `slot`.
    pub(crate) fn new(
        plans: Arc<PanePlans>,
        key: String,
        task: Arc<TaskContext>,
        slot: Slot,
    ) -> PaneStore {
        PaneStore {
            plans,
            key,
            task,
            slot,
            panes: Panes::default(),
            held_after: None,
            reach: 0,
            finals: Vec::new(),
        }
    }

    /// Makes the final rows of each of `windows` (`(start, end]`), once,
    /// for the rules about to be evaluated: they differ only in what they
    /// do with them.
    pub(crate) async fn prepare(&mut self, windows: &[Window]) {
        self.finals.clear();
        for &(start, end) in windows {
            let rows = match self.panes.states(start, end) {
                Ok(states) => self
                    .plans
                    .finalize(&self.task, states)
                    .await
                    .map_err(|e| e.strip_backtrace().to_string()),
                Err(why) => Err(why),
            };
            self.finals.push(((start, end), rows));
        }
    }

    /// The final rows of window `(start, end]`, made by
    /// [`PaneStore::prepare`], or why they could not be made.
    pub(crate) fn finals(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<RecordBatch>, String> {
        self.finals
            .iter()
            .find(|(window, _)| *window == (start, end))
            .map_or_else(
                || Err("the window's aggregates were not prepared (a bug in Weir)".to_string()),
                |(_, rows)| rows.clone(),
            )
    }

    /// Frees the final rows of the last evaluation.
    pub(crate) fn clear_finals(&mut self) {
        self.finals.clear();
    }

    /// See the field.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The columns of its final rows that make final rows of `schema` (a
    /// rule's: its group columns, then its aggregates), by name and type;
    /// `None` if it lacks one.
    pub(crate) fn columns_for(&self, schema: &SchemaRef) -> Option<Vec<usize>> {
        let held = self.plans.final_schema();
        schema
            .fields()
            .iter()
            .map(|field| {
                let i = held.index_of(field.name()).ok()?;
                (held.field(i).data_type() == field.data_type()).then_some(i)
            })
            .collect()
    }

    /// The table it aggregates.
    pub(crate) fn input(&self) -> Signal {
        self.plans.input
    }

    /// Since when it holds every row (see the field).
    pub(crate) fn held_after(&self) -> Option<UnixNanos> {
        self.held_after
    }

    /// Records that the rows up to `t` (included) are not all in it.
    pub(crate) fn missing_through(&mut self, t: Option<UnixNanos>) {
        self.held_after = self.held_after.max(t);
    }

    /// Aggregates `rows`, all stamped in the pane starting at `start`.
    pub(crate) async fn absorb(&mut self, start: UnixNanos, rows: Vec<RecordBatch>) {
        self.panes
            .absorb(&self.plans, &self.task, &self.slot, start, rows)
            .await;
    }

    /// Aggregates `rows` (event time in column `time`), whatever their
    /// panes of `every`.
    pub(crate) async fn absorb_any(&mut self, rows: &[RecordBatch], time: usize, every: i64) {
        let mut by_pane: BTreeMap<UnixNanos, Vec<RecordBatch>> = BTreeMap::new();
        for batch in rows {
            for (start, rows) in split_by_pane(batch, time, every) {
                by_pane.entry(start).or_default().push(rows);
            }
        }
        for (start, rows) in by_pane {
            self.absorb(start, rows).await;
        }
    }

    /// See [`Panes::settle`].
    pub(crate) async fn settle(&mut self, end: UnixNanos) {
        self.panes.settle(&self.plans, &self.task, end).await;
    }

    /// Frees the panes starting before `t`.
    pub(crate) fn evict_before(&mut self, t: UnixNanos) {
        self.panes.evict_before(t);
    }

    /// The bytes the states hold.
    pub(crate) fn bytes(&self) -> usize {
        self.panes.bytes()
    }

    /// The earliest event time after `t` its panes of `every` may hold
    /// rows of.
    pub(crate) fn earliest_after(&self, t: UnixNanos, every: i64) -> Option<UnixNanos> {
        self.panes.earliest_after(t, every)
    }
}

/// Rows gathered per (table, pane), not yet aggregated: shared by the
/// pane-by-pane rules of a group.
#[derive(Debug)]
pub(crate) struct Pending {
    panes: BTreeMap<(Signal, UnixNanos), (Vec<RecordBatch>, usize)>,
    flush_rows: usize,
    /// The newest pane a row of each table was stamped in.
    newest: BTreeMap<Signal, UnixNanos>,
    /// The newest pane of each table whose rows (some or all) were taken.
    taken: BTreeMap<Signal, UnixNanos>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            panes: BTreeMap::new(),
            flush_rows: FLUSH_ROWS,
            newest: BTreeMap::new(),
            taken: BTreeMap::new(),
        }
    }
}

impl Pending {
    /// Flushes a pane once it holds `rows` (tests: every batch at once).
    #[cfg(test)]
    pub(crate) fn flush_at(&mut self, rows: usize) {
        self.flush_rows = rows;
    }

    /// Gathers the rows of `batch` (`time_column` its event time), cut into
    /// panes of `every`; returns the panes to aggregate now: those that hold
    /// [`FLUSH_ROWS`] rows or more, and, when the table's rows reach a newer
    /// pane, every pane before it (its rows are in, but for stragglers
    /// within the allowed lateness), so that the evaluation that needs them
    /// has next to nothing left to aggregate.
    pub(crate) fn add(
        &mut self,
        signal: Signal,
        batch: &RecordBatch,
        time_column: usize,
        every: i64,
    ) -> Vec<(Signal, UnixNanos)> {
        let mut flush = Vec::new();
        let mut newest = self.newest.get(&signal).copied();
        for (start, rows) in split_by_pane(batch, time_column, every) {
            let entry = self.panes.entry((signal, start)).or_default();
            entry.1 += rows.num_rows();
            entry.0.push(rows);
            if entry.1 >= self.flush_rows {
                flush.push((signal, start));
            }
            newest = newest.max(Some(start));
        }
        if let Some(newest) = newest
            && self.newest.insert(signal, newest) != Some(newest)
        {
            for &(s, start) in self.panes.keys() {
                if s == signal && start < newest && !flush.contains(&(s, start)) {
                    flush.push((s, start));
                }
            }
        }
        flush
    }

    /// Takes the rows gathered for `pane`.
    pub(crate) fn take(&mut self, pane: (Signal, UnixNanos)) -> Vec<RecordBatch> {
        let taken = self.taken.entry(pane.0).or_insert(pane.1);
        *taken = (*taken).max(pane.1);
        self.panes.remove(&pane).map(|(b, _)| b).unwrap_or_default()
    }

    /// The start of the newest pane of `signal`'s table whose rows (some or
    /// all) were taken, if any: rows up to its end may have been
    /// aggregated already.
    pub(crate) fn taken_through(&self, signal: Signal) -> Option<UnixNanos> {
        self.taken.get(&signal).copied()
    }

    /// Drops the rows gathered for tables not in `keep`.
    pub(crate) fn retain(&mut self, keep: weir_core::SignalSet) {
        self.panes.retain(|(signal, _), _| keep.contains(*signal));
    }

    /// The panes holding rows that start before `t`.
    pub(crate) fn before(&self, t: UnixNanos) -> Vec<(Signal, UnixNanos)> {
        self.panes
            .keys()
            .filter(|(_, start)| *start < t)
            .copied()
            .collect()
    }

    /// The earliest event time after `t` of the rows gathered in panes of
    /// `every`.
    pub(crate) fn earliest_after(&self, t: UnixNanos, every: i64) -> Option<UnixNanos> {
        self.panes
            .keys()
            .filter_map(|&(_, start)| pane_after(start, t, every))
            .min()
    }

    /// The rows and bytes gathered.
    pub(crate) fn size(&self) -> (usize, usize) {
        self.panes.values().fold((0, 0), |(rows, bytes), (b, n)| {
            let held: usize = b.iter().map(RecordBatch::get_array_memory_size).sum();
            (rows + n, bytes + held)
        })
    }
}

/// The earliest event time after `t` the pane `(start, start + every]`
/// may hold rows of, if it reaches past `t`.
fn pane_after(start: UnixNanos, t: UnixNanos, every: i64) -> Option<UnixNanos> {
    (start.saturating_add(every) > t).then(|| start.saturating_add(1).max(t.saturating_add(1)))
}

/// The start `s` of the pane `(s, s + every]` that holds `t`: a row
/// stamped exactly at a multiple of `every` belongs to the pane that ends
/// there, as it belongs to the window that ends there.
pub(crate) fn pane_of(t: UnixNanos, every: i64) -> UnixNanos {
    crate::time::multiple_before(t, every)
}

/// The rows of `batch` by the pane of `every` their event time (column
/// `time_column`, never null here: the window buffer dropped those) falls
/// in; a batch within one pane is passed whole.
fn split_by_pane(
    batch: &RecordBatch,
    time_column: usize,
    every: i64,
) -> Vec<(UnixNanos, RecordBatch)> {
    let Some(times) = batch
        .column(time_column)
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
    else {
        return Vec::new();
    };
    let values = times.values();
    let Some(&first) = values.first() else {
        return Vec::new();
    };
    let first = pane_of(first, every);
    if values.iter().all(|&t| pane_of(t, every) == first) {
        return vec![(first, batch.clone())];
    }
    let mut rows: BTreeMap<UnixNanos, Vec<u32>> = BTreeMap::new();
    for (i, &t) in values.iter().enumerate() {
        if times.is_valid(i) {
            rows.entry(pane_of(t, every)).or_default().push(i as u32);
        }
    }
    rows.into_iter()
        .filter_map(|(start, indices)| {
            take_record_batch(batch, &UInt32Array::from(indices))
                .ok()
                .map(|b| (start, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::tests::{S, logs};

    #[test]
    fn batches_are_cut_by_pane() {
        let batch = logs(&[(1, "a"), (31, "b"), (2, "c"), (65, "d"), (30, "e")]);
        let time = batch.schema().index_of("time").unwrap();
        let panes = split_by_pane(&batch, time, 30 * S);
        let starts: Vec<_> = panes.iter().map(|(s, b)| (*s / S, b.num_rows())).collect();
        // (0, 30] holds 1, 2 and 30; (30, 60] holds 31; (60, 90] holds 65.
        assert_eq!(starts, [(0, 3), (30, 1), (60, 1)]);
        // One pane: the batch itself, not a copy.
        let whole = split_by_pane(&logs(&[(1, "a"), (2, "b")]), time, 30 * S);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].1.num_rows(), 2);
        assert_eq!(pane_of(-1, 30), -30);
        assert_eq!(pane_of(0, 30), -30);
        assert_eq!(pane_of(30, 30), 0);
        assert_eq!(pane_of(31, 30), 30);
    }
}
