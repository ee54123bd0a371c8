//! Which pane-by-pane rules share one aggregation, and the aggregation
//! they share.
//!
//! Real rule sets read a few tables through a few filters, group the rows by
//! a handful of keys, and differ in the aggregate they compute and the
//! threshold they compare it with. Rules of one group whose aggregation
//! reads the same table through the same operators (filters, projections)
//! and groups by the same expressions have one *shape* ([`PaneShape::key`]).
//! They are given one [`PaneStore`] whose partial aggregate holds every
//! aggregate those rules need, each once: the rows of a pane go through one
//! partial aggregation whatever the number of rules, the final rows of a
//! window are made once, and each rule reads its group and aggregate
//! columns from them ([`PaneStore::columns_for`]) and runs only the rest of
//! its query (`HAVING`, the projection). The cost grows with the distinct
//! shapes, not with the rules.
//!
//! The shape is read from the query's logical plan as the SQL planner made
//! it, before optimization, when the query holds exactly one aggregation fed
//! by row-wise operators; the shared aggregation is planned from it in a
//! session of the store's own. A query the shape cannot be read from (or
//! whose shared plan does not give back its columns) gets a store of its
//! own, planned from its whole query and shared only by rules whose partial
//! aggregation is identical.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use weir_core::Signal;

use crate::incremental::{PanePlans, PaneStore};
use crate::plan::Tables;
use crate::query;

/// What decides which store a pane-by-pane rule reads, and how to plan one.
#[derive(Debug)]
pub(crate) struct PaneShape {
    /// The table the aggregation reads.
    input: Signal,
    /// The rule's whole query, as planned from its SQL.
    query: LogicalPlan,
    /// The aggregation, when rules of the same shape may share it.
    aggregation: Option<Aggregation>,
    /// The rule's own partial aggregation, written out
    /// ([`PanePlans::key`]): the key of a store planned from its whole
    /// query.
    own_key: String,
    /// The memory limit of the rule's queries.
    memory_limit: usize,
}

/// One aggregation of a query: what it reads, how it groups, what it
/// computes.
#[derive(Debug)]
struct Aggregation {
    /// The rows it aggregates: the table and the row-wise operators over
    /// it.
    input: Arc<LogicalPlan>,
    group: Vec<Expr>,
    aggregates: Vec<Expr>,
    /// The table, `input` and `group`, written out.
    key: String,
}

/// The operators of a logical plan that take rows one by one.
fn row_wise(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Filter(_)
            | LogicalPlan::Projection(_)
            | LogicalPlan::TableScan(_)
            | LogicalPlan::SubqueryAlias(_)
    )
}

impl Aggregation {
    /// The one aggregation of `query`, if it has exactly one, fed only by
    /// row-wise operators.
    fn of(query: &LogicalPlan, input: Signal) -> Option<Aggregation> {
        let mut found = Vec::new();
        query
            .apply(|node| {
                if let LogicalPlan::Aggregate(aggregate) = node {
                    found.push(aggregate.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .ok()?;
        let [aggregate] = found.as_slice() else {
            return None;
        };
        let mut plain = true;
        aggregate
            .input
            .apply(|node| {
                plain &= row_wise(node);
                Ok(TreeNodeRecursion::Continue)
            })
            .ok()?;
        if !plain
            || aggregate
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return None;
        }
        let group: Vec<String> = aggregate.group_expr.iter().map(Expr::to_string).collect();
        let key = format!(
            "shared\n{input}\n{}\ngroup by {}",
            aggregate.input.display_indent(),
            group.join(", ")
        );
        Some(Aggregation {
            input: Arc::clone(&aggregate.input),
            group: aggregate.group_expr.clone(),
            aggregates: aggregate.aggr_expr.clone(),
            key,
        })
    }
}

impl PaneShape {
    /// The shape of a rule's `query` (planned from its SQL, not optimized),
    /// which runs pane by pane as `plans`.
    pub(crate) fn new(query: LogicalPlan, plans: &PanePlans, memory_limit: usize) -> PaneShape {
        PaneShape {
            input: plans.input,
            aggregation: Aggregation::of(&query, plans.input),
            query,
            own_key: format!("whole\n{}", plans.key()),
            memory_limit,
        }
    }

    /// Rules whose keys are equal aggregate the same rows, grouped the same
    /// way; a store planned for one of them serves any other that needs
    /// only the aggregates it holds.
    pub(crate) fn key(&self) -> &str {
        self.aggregation.as_ref().map_or(&self.own_key, |a| &a.key)
    }

    /// Whether `store` serves the rule whose final rows (before `HAVING`
    /// and the projection) have `schema`: the columns of its rows it reads,
    /// in order.
    pub(crate) fn served_by(&self, store: &PaneStore, schema: &SchemaRef) -> Option<Vec<usize>> {
        (store.key() == self.key() || store.key() == self.own_key)
            .then(|| store.columns_for(schema))
            .flatten()
    }
}

/// Plans the store of rules of one shape (`shapes`, all of one
/// [`PaneShape::key`]): one aggregation computing each aggregate any of
/// them needs, once, in a session of its own.
pub(crate) fn plan_shared(shapes: &[&PaneShape]) -> Result<PaneStore, DataFusionError> {
    let Some(first) = shapes.first() else {
        return Err(DataFusionError::Internal(
            "no rule to plan a store for".into(),
        ));
    };
    let Some(aggregation) = &first.aggregation else {
        return plan_own(first);
    };
    let mut names = BTreeSet::new();
    let mut aggregates = Vec::new();
    for shape in shapes {
        let Some(a) = &shape.aggregation else {
            continue;
        };
        for e in &a.aggregates {
            if names.insert(e.schema_name().to_string()) {
                aggregates.push(e.clone());
            }
        }
    }
    let memory = shapes.iter().map(|s| s.memory_limit).max().unwrap_or(0);
    plan_store(
        LogicalPlan::Aggregate(Aggregate::try_new(
            Arc::clone(&aggregation.input),
            aggregation.group.clone(),
            aggregates,
        )?),
        first.input,
        aggregation.key.clone(),
        memory,
    )
}

/// Plans a store for the rule of `shape` from its whole query.
pub(crate) fn plan_own(shape: &PaneShape) -> Result<PaneStore, DataFusionError> {
    plan_store(
        shape.query.clone(),
        shape.input,
        shape.own_key.clone(),
        shape.memory_limit,
    )
}

/// Plans `query` (its aggregation the first, `input` the table it reads)
/// over tables of a new session, and makes the store of its aggregation.
fn plan_store(
    query: LogicalPlan,
    input: Signal,
    key: String,
    memory_limit: usize,
) -> Result<PaneStore, DataFusionError> {
    let ctx = query::session(memory_limit)?;
    let tables = Tables::default();
    tables.register(&ctx)?;
    let query = tables.rebind(query)?;
    // Planning needs no I/O: the tables are slots in memory.
    let plan = futures::executor::block_on(ctx.state().create_physical_plan(&query))?;
    let Some(plans) = PanePlans::new(&plan, input)? else {
        return Err(DataFusionError::Plan(
            "the shared aggregation does not plan pane by pane".into(),
        ));
    };
    Ok(PaneStore::new(
        Arc::new(plans),
        key,
        ctx.task_ctx(),
        tables.slot(input).clone(),
    ))
}
