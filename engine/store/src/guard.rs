//! [`GuardExec`]: the Parquet scan of a query, watched for damaged files.
//!
//! DataFusion's errors from decoding a Parquet file do not say which file
//! failed. The guard sits right above the scan: when a partition's stream
//! fails, it checks the files that partition was reading (see
//! [`crate::quarantine`]), quarantines the damaged ones and turns the error
//! into [`crate::StoreError::Damaged`], naming them. Errors that no damaged
//! file explains pass through unchanged. A partition whose stream never
//! fails costs nothing.
//!
//! It is transparent to the optimizer where that matters: it keeps its
//! input's properties (partitioning, ordering), lets filters and limits
//! through to the scan, and passes statistics on.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream, Statistics, StatisticsArgs,
};
use futures::StreamExt;
use weir_core::Signal;

use crate::inner::Inner;
use crate::layout::FileEntry;

/// The Parquet scan of one query of `table`, watched for damaged files.
#[derive(Debug, Clone)]
pub(crate) struct GuardExec {
    /// The scan (a `DataSourceExec` over the files, as planned).
    input: Arc<dyn ExecutionPlan>,
    table: Signal,
    inner: Arc<Inner>,
    /// The files of the query's snapshot, by object store path.
    files: Arc<HashMap<String, Arc<FileEntry>>>,
    properties: Arc<PlanProperties>,
}

impl GuardExec {
    /// Watches `input`, a scan of `files` of `table`.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        table: Signal,
        inner: Arc<Inner>,
        files: &[Arc<FileEntry>],
    ) -> Self {
        let files = files
            .iter()
            .map(|f| (f.path().to_string(), f.clone()))
            .collect();
        GuardExec {
            properties: input.properties().clone(),
            input,
            table,
            inner,
            files: Arc::new(files),
        }
    }

    /// The files partition `partition` of the scan reads: its file group
    /// when the input is still a file scan, else every file of the query.
    fn files_of(&self, partition: usize) -> Vec<Arc<FileEntry>> {
        let group = self
            .input
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
            .and_then(|config| config.file_groups.get(partition));
        match group {
            Some(group) => group
                .files()
                .iter()
                .filter_map(|f| self.files.get(&f.object_meta.location.to_string()))
                .cloned()
                .collect(),
            None => self.files.values().cloned().collect(),
        }
    }
}

impl DisplayAs for GuardExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StoreDamageGuardExec: table={}", self.table)
    }
}

impl ExecutionPlan for GuardExec {
    fn name(&self) -> &str {
        "StoreDamageGuardExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "StoreDamageGuardExec takes one input, not {}",
                children.len()
            )));
        }
        let input = children.swap_remove(0);
        let properties = match options.children_properties {
            ChildrenPropertiesMode::Keep => self.properties.clone(),
            ChildrenPropertiesMode::Recompute => input.properties().clone(),
        };
        Ok(Arc::new(GuardExec {
            input,
            properties,
            ..GuardExec::clone(&self)
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        let schema = stream.schema();
        let (inner, table) = (self.inner.clone(), self.table);
        let files = Arc::new(self.files_of(partition));
        let guarded = stream.then(move |item| {
            let (inner, files) = (inner.clone(), files.clone());
            async move {
                match item {
                    Ok(batch) => Ok(batch),
                    Err(e) => match inner.quarantine_damaged(table, &files).await {
                        Some(damaged) => Err(DataFusionError::External(Box::new(damaged))),
                        None => Err(e),
                    },
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, guarded)))
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        input_stats.first().cloned().ok_or_else(|| {
            DataFusionError::Internal("StoreDamageGuardExec has no input statistics".into())
        })
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}
