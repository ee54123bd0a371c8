//! A rule's query, planned once and run many times.
//!
//! Planning SQL (parsing, the logical optimizer, the physical planner) costs
//! far more than running a rule's query over a pane of rows, so a rule plans
//! its query once, when it is built, and keeps the physical plan. The
//! tables the plan reads are [`SlotTable`]s: each scan reads, when it is
//! *executed*, whatever batches its [`Slot`] holds then. Before a run the
//! rule fills the slots; after it, it empties them.
//!
//! Slot tables report no statistics, so no optimizer rule can fold a result
//! from the row counts seen at planning time (`count(*)` of an empty table
//! planned as the literal 0), and the session turns dynamic filters off (a
//! plan carrying one cannot be run twice). Plans that hold state between
//! runs (a hash join's build side, a top-k heap) are reset before each run
//! with [`reset_plan_states`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::memory::{LazyBatchGenerator, LazyMemoryExec};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use parking_lot::{Mutex, RwLock};
use weir_core::Signal;
use weir_core::schema::schema_for;

/// The batches a [`SlotTable`] (or a states scan) reads at its next run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot(Arc<Mutex<Vec<RecordBatch>>>);

impl Slot {
    /// What the next run reads.
    pub(crate) fn set(&self, batches: Vec<RecordBatch>) {
        *self.0.lock() = batches;
    }

    /// Frees what the slot holds.
    pub(crate) fn clear(&self) {
        self.0.lock().clear();
    }

    fn get(&self) -> Vec<RecordBatch> {
        self.0.lock().clone()
    }
}

/// The stream of one run of a scan: the slot's batches as they stood when
/// the run started.
#[derive(Debug)]
struct SlotBatches {
    slot: Slot,
    batches: Vec<RecordBatch>,
    next: usize,
}

impl fmt::Display for SlotBatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot")
    }
}

impl LazyBatchGenerator for SlotBatches {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn generate_next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let batch = self.batches.get(self.next).cloned();
        self.next += 1;
        Ok(batch)
    }

    fn reset_state(&self) -> Arc<RwLock<dyn LazyBatchGenerator>> {
        Arc::new(RwLock::new(SlotBatches {
            slot: self.slot.clone(),
            batches: self.slot.get(),
            next: 0,
        }))
    }
}

/// A scan of `slot`'s batches (of `schema`), projected to `projection`.
pub(crate) fn slot_scan(
    schema: SchemaRef,
    slot: &Slot,
    projection: Option<Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let generator: Arc<RwLock<dyn LazyBatchGenerator>> = Arc::new(RwLock::new(SlotBatches {
        slot: slot.clone(),
        batches: Vec::new(),
        next: 0,
    }));
    let exec = LazyMemoryExec::try_new(schema, vec![generator])?.with_projection(projection);
    Ok(Arc::new(exec))
}

/// A signal table whose rows are those of a [`Slot`] at each run.
#[derive(Debug)]
pub(crate) struct SlotTable {
    schema: SchemaRef,
    slot: Slot,
}

#[async_trait]
impl TableProvider for SlotTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        slot_scan(Arc::clone(&self.schema), &self.slot, projection.cloned())
    }
}

/// The three signal tables of a rule's session, one slot each.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tables {
    slots: [Slot; 3],
}

impl Tables {
    /// Registers `logs`, `spans` and `metrics` in `ctx`, read from these
    /// slots.
    pub(crate) fn register(&self, ctx: &SessionContext) -> Result<()> {
        for (signal, slot) in Signal::TELEMETRY.into_iter().zip(&self.slots) {
            let table = SlotTable {
                schema: schema_for(signal),
                slot: slot.clone(),
            };
            ctx.deregister_table(signal.as_str())?;
            ctx.register_table(signal.as_str(), Arc::new(table))?;
        }
        Ok(())
    }

    /// The slot of `signal`'s table.
    pub(crate) fn slot(&self, signal: Signal) -> &Slot {
        let i = Signal::TELEMETRY
            .iter()
            .position(|s| *s == signal)
            .unwrap_or_else(|| unreachable!("rules read only the telemetry tables"));
        &self.slots[i]
    }

    /// `plan`, planned in another session, reading these slots: each scan
    /// of a telemetry table is pointed at this one's.
    pub(crate) fn rebind(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        plan.transform_up(|node| {
            let LogicalPlan::TableScan(mut scan) = node else {
                return Ok(Transformed::no(node));
            };
            let table = scan.table_name.table();
            let Some(signal) = Signal::TELEMETRY.into_iter().find(|s| s.as_str() == table) else {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            };
            scan.source = provider_as_source(Arc::new(SlotTable {
                schema: schema_for(signal),
                slot: self.slot(signal).clone(),
            }));
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        })
        .map(|t| t.data)
    }

    /// Frees every slot.
    pub(crate) fn clear(&self) {
        for slot in &self.slots {
            slot.clear();
        }
    }
}

/// Runs a kept plan once over `batches` put in `slot`, and empties the slot
/// after, whatever happened.
pub(crate) async fn run_over(
    task: &Arc<TaskContext>,
    plan: &Arc<dyn ExecutionPlan>,
    slot: &Slot,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    slot.set(batches);
    let out = run(task, plan).await;
    slot.clear();
    out
}

/// Runs a kept plan once (resetting what its operators hold from a previous
/// run).
///
/// `task` is the rule's, made once: a task context copies every function
/// registered in the session.
pub(crate) async fn run(
    task: &Arc<TaskContext>,
    plan: &Arc<dyn ExecutionPlan>,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let plan = reset_plan_states(Arc::clone(plan))?;
    collect(plan, Arc::clone(task)).await
}
