//! What the user writes ([`RuleConfig`]) and what runs ([`Rule`]).
//!
//! A [`RuleConfig`] is plain data, easy to build from the pipeline TOML.
//! [`RuleConfig::validate`] checks everything that can be checked before
//! data arrives: durations, names, templates, and the SQL itself (planned
//! against empty tables with the real schemas, its result shape checked).
//! [`Rule::new`] validates and builds the running rule: a DataFusion
//! session with the query planned once (pane by pane where it can be, see
//! [`crate::incremental`]), and for alert rules an [`AlertLifecycle`].
//!
//! A rule runs in a [`crate::RuleGroup`], which holds the window buffers,
//! decides the evaluation times and evaluates each of its rules in turn.
//! A rule's state is saved with [`RulesState::capture`] and restored with
//! [`RulesState::restore`]; state is kept only for rules whose definition
//! is unchanged ([`RuleId`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use weir_core::{Signal, SignalSet};

use crate::alert::{Alert, AlertEvent, AlertLifecycle, AlertSettings, Instance, label_set_text};
use crate::error::{EvalError, RuleError};
use crate::incremental::{PanePlans, Panes};
use crate::plan::{self, Tables};
use crate::query::{self, QueryShape, Sample};
use crate::record;
use crate::template::{Template, is_label_name};
use crate::time::{UnixNanos, nanos};
use crate::window::{BufferLimits, WindowBuffer};

/// The label that names an alert.
pub const ALERTNAME: &str = "alertname";

/// Whether a rule alerts or records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// Each result row is an alert instance.
    Alert,
    /// Each result row is a metric point named after the rule.
    Record,
}

impl RuleKind {
    /// `alert` or `record`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Alert => "alert",
            RuleKind::Record => "record",
        }
    }
}

/// A rule as the user defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// The rule's name: the `alertname` label of its alerts, or the name of
    /// the metric it records.
    pub name: String,
    /// Alert or record.
    pub kind: RuleKind,
    /// The query over `logs`, `spans` and `metrics`; it returns a numeric
    /// column `value` and string label columns.
    pub sql: String,
    /// How much event time the query sees.
    pub window: Duration,
    /// How often it is evaluated.
    pub every: Duration,
    /// Alerts: how long an instance stays pending before it fires (0: fire
    /// at once).
    pub for_duration: Duration,
    /// Alerts: how long a firing instance keeps firing after the query stops
    /// returning it.
    pub keep_firing_for: Duration,
    /// Labels added to each alert or recorded point (they replace result
    /// labels of the same name). Alert labels may be templates.
    pub labels: BTreeMap<String, String>,
    /// Alerts: annotations, templates over `$labels` and `$value`.
    pub annotations: BTreeMap<String, String>,
    /// How late, in event time, a record may arrive and still be counted.
    pub allowed_lateness: Duration,
    /// How far behind the evaluation time the window ends.
    pub query_offset: Duration,
    /// The most each of the rule's window buffers may hold.
    pub buffer_limits: BufferLimits,
    /// The most memory, in bytes, the query's operators (hash tables,
    /// sorts) may take in one evaluation; past it the evaluation fails.
    pub max_query_memory: usize,
}

impl RuleConfig {
    /// The default `window`: 5 minutes.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
    /// The default `every`: 1 minute (Prometheus' evaluation interval).
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);
    /// The default `max_query_memory`: 256 MiB.
    pub const DEFAULT_MAX_QUERY_MEMORY: usize = 256 << 20;

    /// An alert rule with the defaults: 5 m window, every 1 m, `for` 0.
    pub fn alert(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Self::new(name.into(), RuleKind::Alert, sql.into())
    }

    /// A recording rule with the defaults: 5 m window, every 1 m.
    pub fn record(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Self::new(name.into(), RuleKind::Record, sql.into())
    }

    fn new(name: String, kind: RuleKind, sql: String) -> Self {
        RuleConfig {
            name,
            kind,
            sql,
            window: Self::DEFAULT_WINDOW,
            every: Self::DEFAULT_EVERY,
            for_duration: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            allowed_lateness: Duration::ZERO,
            query_offset: Duration::ZERO,
            buffer_limits: BufferLimits::default(),
            max_query_memory: Self::DEFAULT_MAX_QUERY_MEMORY,
        }
    }

    /// The rule's identity: a hash of its definition. A rule whose identity
    /// is unchanged across a reload or restart keeps its alert state.
    pub fn id(&self) -> RuleId {
        // FNV-1a 64 over the fields, each preceded by its length so that no
        // two definitions write the same bytes.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut field = |bytes: &[u8]| {
            let len = (bytes.len() as u64).to_le_bytes();
            for b in len.iter().chain(bytes) {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        field(self.name.as_bytes());
        field(self.kind.as_str().as_bytes());
        field(self.sql.as_bytes());
        for d in [
            self.window,
            self.every,
            self.for_duration,
            self.keep_firing_for,
            self.allowed_lateness,
            self.query_offset,
        ] {
            field(&d.as_nanos().to_le_bytes());
        }
        for map in [&self.labels, &self.annotations] {
            field(&(map.len() as u64).to_le_bytes());
            for (k, v) in map {
                field(k.as_bytes());
                field(v.as_bytes());
            }
        }
        RuleId(format!("{hash:016x}"))
    }

    fn field_error(&self, field: impl Into<String>, message: impl Into<String>) -> RuleError {
        RuleError::Field {
            rule: self.name.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Checks the rule without running it: fields, templates, and the SQL,
    /// planned against empty tables. Returns what planning learnt.
    ///
    /// Planning needs no I/O (the tables are in memory), so this blocks only
    /// for the time it takes DataFusion to plan.
    pub fn validate(&self) -> Result<QueryShape, RuleError> {
        futures::executor::block_on(self.validate_async())
    }

    /// [`RuleConfig::validate`], for async callers.
    pub async fn validate_async(&self) -> Result<QueryShape, RuleError> {
        self.check_fields()?;
        let shape = query::validate(&self.name, &self.sql).await?;
        self.compile_templates(&shape)?;
        Ok(shape)
    }

    fn check_fields(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(self.field_error("name", "is empty; give the rule a name"));
        }
        if self.kind == RuleKind::Record && !is_metric_name(&self.name) {
            return Err(self.field_error(
                "name",
                "is the name of the recorded metric and must match [a-zA-Z_:][a-zA-Z0-9_:.]*, \
                 e.g. `service:errors:rate5m`",
            ));
        }
        if self.sql.trim().is_empty() {
            return Err(self.field_error("sql", "is empty; write the query the rule evaluates"));
        }
        for (field, d) in [("window", self.window), ("every", self.every)] {
            if d.is_zero() {
                return Err(self.field_error(field, "must be longer than 0, e.g. \"5m\""));
            }
        }
        if self.kind == RuleKind::Record {
            for (field, d) in [
                ("for", self.for_duration),
                ("keep_firing_for", self.keep_firing_for),
            ] {
                if !d.is_zero() {
                    return Err(self.field_error(
                        field,
                        "applies to alert rules only; remove it from this recording rule",
                    ));
                }
            }
            if let Some(name) = self.annotations.keys().next() {
                return Err(self.field_error(
                    format!("annotations.{name}"),
                    "annotations apply to alert rules only; remove them from this recording rule",
                ));
            }
        }
        for name in self.labels.keys() {
            if !is_label_name(name) {
                return Err(self.field_error(
                    format!("labels.{name}"),
                    "is not a label name: use letters, digits and `_`, not starting with a digit",
                ));
            }
            if name == ALERTNAME || name == "__name__" {
                return Err(self.field_error(
                    format!("labels.{name}"),
                    "is set from the rule's name; rename the rule instead",
                ));
            }
        }
        for name in self.annotations.keys() {
            if !is_label_name(name) {
                return Err(self.field_error(
                    format!("annotations.{name}"),
                    "is not an annotation name: use letters, digits and `_`, not starting with a digit",
                ));
            }
        }
        if self.buffer_limits.max_rows == 0 || self.buffer_limits.max_bytes == 0 {
            return Err(self.field_error("buffer limits", "must be greater than 0"));
        }
        if self.max_query_memory == 0 {
            return Err(self.field_error("max_query_memory", "must be greater than 0"));
        }
        Ok(())
    }

    /// Parses the label and annotation templates and checks that they read
    /// only labels the query returns.
    fn compile_templates(&self, shape: &QueryShape) -> Result<Templates, RuleError> {
        let compile = |kind: &str, name: &str, text: &str| -> Result<Template, RuleError> {
            let field = format!("{kind}.{name}");
            let template_error = |message: String| RuleError::Template {
                field: field.clone(),
                rule: self.name.clone(),
                message,
            };
            let template = Template::parse(text).map_err(|e| template_error(e.to_string()))?;
            if self.kind == RuleKind::Record && !template.is_literal() {
                return Err(template_error(
                    "labels of recording rules are plain text; move the computed part into the \
                     SQL as a label column"
                        .into(),
                ));
            }
            for used in template.labels_used() {
                if !shape.label_columns.iter().any(|c| c == used) {
                    let known = if shape.label_columns.is_empty() {
                        "the query returns no label column".to_string()
                    } else {
                        format!("its label columns are {}", shape.label_columns.join(", "))
                    };
                    return Err(template_error(format!(
                        "`$labels.{used}` names a label the query does not return ({known}); \
                         add `{used}` to the SELECT (and GROUP BY), or fix the name"
                    )));
                }
            }
            Ok(template)
        };
        let mut templates = Templates::default();
        for (name, text) in &self.labels {
            templates
                .labels
                .push((name.clone(), compile("labels", name, text)?));
        }
        for (name, text) in &self.annotations {
            templates
                .annotations
                .push((name.clone(), compile("annotations", name, text)?));
        }
        Ok(templates)
    }
}

/// Whether `name` can name a recorded metric: `[a-zA-Z_:][a-zA-Z0-9_:.]*`
/// (Prometheus' metric names, plus the dots of OpenTelemetry's).
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.'))
}

#[derive(Debug, Clone, Default)]
struct Templates {
    labels: Vec<(String, Template)>,
    annotations: Vec<(String, Template)>,
}

/// A rule's identity: the hex of a hash of its whole definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(String);

impl RuleId {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one evaluation produced.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The evaluation time.
    pub time: UnixNanos,
    /// How many rows the query returned.
    pub rows: usize,
    /// Alert rules: the transitions of this evaluation (rows of the
    /// `alerts` table).
    pub transitions: Vec<AlertEvent>,
    /// Alert rules: what to send to Alertmanager and webhooks now.
    pub notifications: Vec<AlertEvent>,
    /// Recording rules: the recorded samples (labels and value), as in
    /// `recorded`.
    pub samples: Vec<Sample>,
    /// The recorded points, in the `metrics` schema: for recording rules
    /// the rule's series, for alert rules Prometheus' `ALERTS` series of the
    /// pending and firing instances; `None` when there is none.
    pub recorded: Option<RecordBatch>,
}

/// A validated rule, running. See the [module docs](self).
pub struct Rule {
    config: RuleConfig,
    id: RuleId,
    shape: QueryShape,
    templates: Templates,
    /// The context the kept plans run in (the rule's session: its
    /// functions and memory limit), made once.
    task: Arc<datafusion::execution::TaskContext>,
    lifecycle: Option<AlertLifecycle>,
    /// The tables the kept plans read (see [`crate::plan`]).
    tables: Tables,
    /// The query, planned once.
    compiled: Compiled,
    /// The partial aggregates of the panes, when incremental.
    panes: Panes,
    /// How the last evaluation went.
    last_run: Option<LastRun>,
}

/// How the last evaluation of a rule went: what the API reports as the
/// rule's health.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    /// The evaluation time (event time).
    pub at: UnixNanos,
    /// How long the evaluation took (wall clock).
    pub took: Duration,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// How a rule's query runs, planned once.
#[derive(Debug)]
enum Compiled {
    /// Over the rows of the whole window, each evaluation.
    Rescan(Arc<dyn datafusion::physical_plan::ExecutionPlan>),
    /// Pane by pane (see [`crate::incremental`]).
    Panes(PanePlans),
}

/// Plans `config`'s query in `ctx` over `tables`: pane by pane when its
/// shape and durations allow it.
async fn compile(
    config: &RuleConfig,
    shape: &QueryShape,
    ctx: &SessionContext,
    tables: &Tables,
) -> Result<Compiled, datafusion::error::DataFusionError> {
    tables.register(ctx)?;
    let df = query::plan(ctx, &config.sql).await?;
    let plan = df.create_physical_plan().await?;
    let every = nanos(config.every);
    let aligned =
        every > 0 && nanos(config.window) % every == 0 && nanos(config.query_offset) % every == 0;
    let mut inputs = shape.inputs.iter();
    if let (true, Some(input), None) = (aligned, inputs.next(), inputs.next())
        && let Some(panes) = PanePlans::new(&plan, input)?
    {
        return Ok(Compiled::Panes(panes));
    }
    Ok(Compiled::Rescan(plan))
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.config.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// Validates `config` and builds the rule.
    pub fn new(config: RuleConfig, settings: &AlertSettings) -> Result<Rule, RuleError> {
        let shape = config.validate()?;
        let ctx = query::session(config.max_query_memory).map_err(|e| RuleError::Field {
            rule: config.name.clone(),
            field: "max_query_memory".into(),
            message: e.strip_backtrace().to_string(),
        })?;
        let templates = config.compile_templates(&shape)?;
        let tables = Tables::default();
        // Planning needs no I/O: the tables are slots in memory.
        let compiled = futures::executor::block_on(compile(&config, &shape, &ctx, &tables))
            .map_err(|e| RuleError::Sql {
                rule: config.name.clone(),
                message: e.strip_backtrace().to_string(),
            })?;
        let task = ctx.task_ctx();
        let lifecycle = (config.kind == RuleKind::Alert).then(|| {
            AlertLifecycle::new(
                &config.name,
                config.for_duration,
                config.keep_firing_for,
                config.every,
                settings,
                generator_url(&settings.external_url, &config.name),
            )
        });
        Ok(Rule {
            id: config.id(),
            config,
            shape,
            templates,
            task,
            lifecycle,
            tables,
            compiled,
            panes: Panes::default(),
            last_run: None,
        })
    }

    /// How far back from an evaluation's time its window reaches:
    /// `window + query_offset`, or just `every + query_offset` when the
    /// rule runs pane by pane (older panes are kept as partial states).
    /// Rows before `t + every - reach` are late once `t` is evaluated.
    pub fn reach(&self) -> i64 {
        let offset = nanos(self.config.query_offset);
        if self.is_incremental() {
            nanos(self.config.every).saturating_add(offset)
        } else {
            nanos(self.config.window).saturating_add(offset)
        }
    }

    /// Whether the rule is evaluated pane by pane (see
    /// [`crate::incremental`]): known once the rule is built.
    pub fn is_incremental(&self) -> bool {
        matches!(self.compiled, Compiled::Panes(_))
    }

    /// The table whose rows the rule aggregates pane by pane, if it does.
    pub(crate) fn pane_input(&self) -> Option<Signal> {
        match &self.compiled {
            Compiled::Panes(plans) => Some(plans.input),
            Compiled::Rescan(_) => None,
        }
    }

    /// The bytes of the partial aggregates the rule keeps.
    pub fn pane_bytes(&self) -> usize {
        self.panes.bytes()
    }

    /// Aggregates `rows` of `signal`'s table, stamped in the pane starting
    /// at `start`, into that pane (pane-by-pane rules reading `signal`;
    /// others ignore them). A failure is kept with the pane and reported by
    /// the evaluations whose window holds it.
    pub(crate) async fn absorb(
        &mut self,
        signal: Signal,
        start: UnixNanos,
        rows: Vec<RecordBatch>,
    ) {
        if let Compiled::Panes(plans) = &self.compiled
            && plans.input == signal
        {
            let slot = self.tables.slot(signal);
            self.panes
                .absorb(plans, &self.task, slot, start, rows)
                .await;
        }
    }

    /// The definition.
    pub fn config(&self) -> &RuleConfig {
        &self.config
    }

    /// The identity.
    pub fn id(&self) -> &RuleId {
        &self.id
    }

    /// The tables the query reads.
    pub fn inputs(&self) -> SignalSet {
        self.shape.inputs
    }

    /// The label columns of the query's result.
    pub fn label_columns(&self) -> &[String] {
        &self.shape.label_columns
    }

    /// The alert instances held (alert rules).
    pub fn alerts(&self) -> Vec<&Alert> {
        self.lifecycle.iter().flat_map(|l| l.alerts()).collect()
    }

    /// Evaluates the rule at `t` over `[t - window - offset, t - offset)`:
    /// the rows of `buffers` (its group's) or its panes. Touches neither the
    /// buffers nor the due time (the group moves both on, whether this
    /// succeeds or fails); a failed evaluation leaves the alert state as it
    /// was. Keeps how it went as [`Rule::last_run`].
    pub(crate) async fn evaluate(
        &mut self,
        t: UnixNanos,
        buffers: &[WindowBuffer],
    ) -> Result<Evaluation, EvalError> {
        let started = std::time::Instant::now();
        let result = self.evaluate_window(t, buffers).await;
        self.last_run = Some(LastRun {
            at: t,
            took: started.elapsed(),
            error: result.as_ref().err().map(ToString::to_string),
        });
        result
    }

    /// How the last evaluation went; `None` before the first.
    pub fn last_run(&self) -> Option<&LastRun> {
        self.last_run.as_ref()
    }

    async fn evaluate_window(
        &mut self,
        t: UnixNanos,
        buffers: &[WindowBuffer],
    ) -> Result<Evaluation, EvalError> {
        let end = t.saturating_sub(nanos(self.config.query_offset));
        let start = end.saturating_sub(nanos(self.config.window));
        let samples = match &self.compiled {
            Compiled::Panes(_) => self.run_panes(start, end).await,
            Compiled::Rescan(_) => {
                for b in buffers {
                    if self.shape.inputs.contains(b.signal()) {
                        self.tables.slot(b.signal()).set(b.snapshot(start, end));
                    }
                }
                let samples = self.run_query().await;
                // Free the window's rows whatever happened.
                self.tables.clear();
                samples
            }
        };
        let samples = samples?;
        let mut evaluation = Evaluation {
            time: t,
            rows: samples.len(),
            transitions: Vec::new(),
            notifications: Vec::new(),
            samples: Vec::new(),
            recorded: None,
        };
        let internal = |e: weir_core::ConvertError| EvalError::Internal {
            rule: self.config.name.clone(),
            message: e.to_string(),
        };
        match self.config.kind {
            RuleKind::Record => {
                let samples = self.apply_record_labels(samples)?;
                if !samples.is_empty() {
                    let batch = record::metrics_batch(&self.config.name, end, &samples);
                    evaluation.recorded = Some(batch.map_err(internal)?);
                }
                evaluation.samples = samples;
            }
            RuleKind::Alert => {
                let instances = self.instances(samples);
                if let Some(lifecycle) = &mut self.lifecycle {
                    evaluation.transitions = lifecycle.update(t, instances)?;
                    evaluation.notifications = lifecycle.notifications(t);
                    let active = lifecycle
                        .alerts()
                        .any(|a| a.state != crate::alert::AlertState::Inactive);
                    if active {
                        let series = record::alerts_series(end, lifecycle.alerts());
                        evaluation.recorded = Some(series.map_err(internal)?);
                    }
                }
            }
        }
        Ok(evaluation)
    }

    fn query_error(&self, e: datafusion::error::DataFusionError) -> EvalError {
        EvalError::Query {
            rule: self.config.name.clone(),
            message: e.strip_backtrace().to_string(),
        }
    }

    /// The query over `[start, end)` from the panes' partial aggregates.
    async fn run_panes(
        &mut self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<Sample>, EvalError> {
        let Compiled::Panes(plans) = &self.compiled else {
            return Err(EvalError::Internal {
                rule: self.config.name.clone(),
                message: "not a pane-by-pane rule".to_string(),
            });
        };
        let states = self.panes.window(plans, &self.task, start, end).await;
        let states = states.map_err(|message| EvalError::Query {
            rule: self.config.name.clone(),
            message,
        })?;
        let batches = plans.finish(&self.task, states).await;
        let every = nanos(self.config.every).max(1);
        self.panes.evict_before(start.saturating_add(every));
        let batches = batches.map_err(|e| self.query_error(e))?;
        query::samples(&batches).map_err(|e| self.query_error(e))
    }

    /// The kept plan over the rows in the table slots.
    async fn run_query(&self) -> Result<Vec<Sample>, EvalError> {
        let Compiled::Rescan(plan) = &self.compiled else {
            return Err(EvalError::Internal {
                rule: self.config.name.clone(),
                message: "a pane-by-pane rule".to_string(),
            });
        };
        let batches = plan::run(&self.task, plan)
            .await
            .map_err(|e| self.query_error(e))?;
        query::samples(&batches).map_err(|e| self.query_error(e))
    }

    /// Recording rules: the rule's labels replace the row's.
    fn apply_record_labels(&self, samples: Vec<Sample>) -> Result<Vec<Sample>, EvalError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(samples.len());
        for mut sample in samples {
            for (name, value) in &self.config.labels {
                sample.labels.insert(name.clone(), value.clone());
            }
            if !seen.insert(sample.labels.clone()) {
                return Err(EvalError::DuplicateLabels {
                    rule: self.config.name.clone(),
                    labels: label_set_text(&sample.labels),
                });
            }
            out.push(sample);
        }
        Ok(out)
    }

    /// Alert rules: the instance of each row, as Prometheus builds it: the
    /// row's labels, then the rule's (templated; one rendered empty is
    /// removed), then `alertname`; annotations rendered from the row.
    fn instances(&self, samples: Vec<Sample>) -> Vec<Instance> {
        samples
            .into_iter()
            .map(|sample| {
                let mut labels = sample.labels.clone();
                for (name, template) in &self.templates.labels {
                    let value = template.render(&sample.labels, sample.value);
                    if value.is_empty() {
                        labels.remove(name);
                    } else {
                        labels.insert(name.clone(), value);
                    }
                }
                labels.insert(ALERTNAME.to_string(), self.config.name.clone());
                let annotations = self
                    .templates
                    .annotations
                    .iter()
                    .map(|(name, t)| (name.clone(), t.render(&sample.labels, sample.value)))
                    .collect();
                Instance {
                    labels,
                    annotations,
                    value: sample.value,
                }
            })
            .collect()
    }

    /// The rule's saved state.
    pub fn snapshot(&self) -> RuleSnapshot {
        RuleSnapshot {
            name: self.config.name.clone(),
            id: self.id.clone(),
            alerts: self
                .lifecycle
                .as_ref()
                .map(AlertLifecycle::snapshot)
                .unwrap_or_default(),
        }
    }

    /// Restores saved state if it belongs to this very definition; returns
    /// whether it did.
    pub fn restore(&mut self, snapshot: &RuleSnapshot) -> bool {
        if snapshot.id != self.id {
            return false;
        }
        if let Some(lifecycle) = &mut self.lifecycle {
            lifecycle.restore(snapshot.alerts.clone());
        }
        true
    }
}

/// The link from an alert back to its rule: `<external_url>/rules/<name>`
/// (the name percent-encoded as a path segment: every byte but letters,
/// digits and `-._~:` as `%XX`, so that the API reads the name back whole).
pub fn generator_url(external_url: &str, rule: &str) -> String {
    use std::fmt::Write as _;
    let mut name = String::with_capacity(rule.len());
    for b in rule.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "%{b:02X}");
        }
    }
    format!("{}/rules/{name}", external_url.trim_end_matches('/'))
}

/// The saved state of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSnapshot {
    /// The rule's name (for people reading the file).
    pub name: String,
    /// The identity of the definition the state belongs to.
    pub id: RuleId,
    /// The alert instances.
    pub alerts: Vec<Alert>,
}

/// The saved state of a set of rules, serialisable (e.g. as JSON in the
/// store's state directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesState {
    /// The format version, [`RulesState::VERSION`].
    pub version: u32,
    /// One entry per rule.
    pub rules: Vec<RuleSnapshot>,
    /// The group's last evaluation time, when saved by a group: after a
    /// restart evaluation resumes after it, instead of evaluating an
    /// earlier time over buffers that no longer hold its data.
    #[serde(default)]
    pub last_evaluation: Option<UnixNanos>,
}

/// What [`RulesState::restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Rules that took their saved state.
    pub restored: Vec<String>,
    /// Saved states left unused: the rule is gone or its definition changed.
    pub discarded: Vec<String>,
}

impl RulesState {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// The state of `rules`.
    pub fn capture<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Self {
        RulesState {
            version: Self::VERSION,
            rules: rules.into_iter().map(Rule::snapshot).collect(),
            last_evaluation: None,
        }
    }

    /// Gives each rule the saved state of the same definition.
    pub fn restore<'a>(&self, rules: impl IntoIterator<Item = &'a mut Rule>) -> RestoreReport {
        let mut saved: BTreeMap<&RuleId, &RuleSnapshot> =
            self.rules.iter().map(|s| (&s.id, s)).collect();
        let mut report = RestoreReport::default();
        for rule in rules {
            if let Some(snapshot) = saved.remove(&rule.id)
                && rule.restore(snapshot)
            {
                report.restored.push(rule.config.name.clone());
            }
        }
        report.discarded = saved.values().map(|s| s.name.clone()).collect();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertState, EventState};
    use crate::group::RuleGroup;
    use crate::window::tests::{S, logs};
    use arrow::array::{AsArray, MapArray};
    use arrow::datatypes::{Float64Type, TimestampNanosecondType};
    use weir_core::schema::{col, metrics_schema};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error_rule() -> RuleConfig {
        RuleConfig {
            window: secs(60),
            every: secs(30),
            for_duration: secs(30),
            labels: map(&[
                ("severity", "page"),
                ("team", "{{ $labels.service_name }}-team"),
            ]),
            annotations: map(&[(
                "summary",
                "{{ $labels.service_name }} logged {{ $value }} errors",
            )]),
            ..RuleConfig::alert(
                "ServiceErrors",
                "SELECT service_name, count(*) AS value FROM logs \
                 WHERE severity_number >= 17 GROUP BY service_name HAVING count(*) >= 2",
            )
        }
    }

    fn settings() -> AlertSettings {
        AlertSettings {
            external_url: "http://weir:8080/".into(),
            ..AlertSettings::default()
        }
    }

    /// The group of the one rule `config`: how a rule runs.
    fn group_of(config: RuleConfig) -> RuleGroup {
        RuleGroup::new("g", vec![config], &settings()).unwrap()
    }

    /// The one rule of `group`.
    fn rule(group: &RuleGroup) -> &Rule {
        &group.rules()[0]
    }

    /// Evaluates the one rule of `group` at `t`, as the group does.
    async fn evaluate(group: &mut RuleGroup, t: UnixNanos) -> Result<Evaluation, EvalError> {
        let mut done = group.evaluate(t).await;
        assert_eq!(done.len(), 1, "a group of one rule");
        done.remove(0).result
    }

    /// Evaluates every due tick; returns (time, transitions) per tick.
    async fn run_due(group: &mut RuleGroup) -> Vec<(i64, Vec<(String, EventState)>)> {
        let mut out = Vec::new();
        for (t, mut done) in group.evaluate_due().await {
            assert_eq!(done.len(), 1, "a group of one rule");
            let kinds = done
                .remove(0)
                .result
                .unwrap()
                .transitions
                .iter()
                .map(|e| (e.labels["service_name"].clone(), e.state))
                .collect();
            out.push((t / S, kinds));
        }
        out
    }

    /// Scenario: error logs per service over a 1m window every 30s, `for:
    /// 30s`, data pushed in event time. Guarantees: evaluation times follow
    /// the watermark; the service over the threshold goes pending, fires
    /// after `for`, and resolves when the window no longer holds enough
    /// errors; labels and annotations are templated; notifications carry
    /// Alertmanager's times; buffers are evicted behind the windows.
    #[tokio::test]
    async fn alert_rule_lifecycle_over_event_time_windows() {
        let mut group = group_of(error_rule());
        assert_eq!(rule(&group).inputs(), SignalSet::only(Signal::Logs));
        assert_eq!(rule(&group).label_columns(), ["service_name"]);
        assert_eq!(group.next_due(), None, "no watermark yet");
        assert_eq!(
            group.push(Signal::Spans, &logs(&[(1, "x")])).await.unwrap(),
            0,
            "unread table"
        );
        group
            .push(
                Signal::Logs,
                &logs(&[(100, "cart"), (101, "cart"), (102, "pay")]),
            )
            .await
            .unwrap();
        // Watermark 102: the first tick is 90, over [30, 90): empty.
        assert_eq!(run_due(&mut group).await, vec![(90, vec![])]);
        group
            .push(Signal::Logs, &logs(&[(125, "cart")]))
            .await
            .unwrap();
        assert_eq!(
            run_due(&mut group).await,
            vec![(120, vec![("cart".into(), EventState::Pending)])]
        );
        group
            .push(Signal::Logs, &logs(&[(151, "cart")]))
            .await
            .unwrap();
        let t = group.next_due().unwrap();
        assert_eq!(t, 150 * S);
        let ev = evaluate(&mut group, t).await.unwrap();
        assert_eq!(ev.rows, 1);
        let fired = &ev.transitions[0];
        assert_eq!(fired.state, EventState::Firing);
        assert_eq!(
            fired.labels,
            map(&[
                ("alertname", "ServiceErrors"),
                ("service_name", "cart"),
                ("severity", "page"),
                ("team", "cart-team"),
            ])
        );
        assert_eq!(
            fired.annotations,
            map(&[("summary", "cart logged 3 errors")])
        );
        assert_eq!(fired.generator_url, "http://weir:8080/rules/ServiceErrors");
        assert_eq!(ev.notifications.len(), 1);
        let sent = &ev.notifications[0];
        // startsAt = firedAt; endsAt = now + 4 × max(resend delay 1m, every 30s).
        assert_eq!((sent.starts_at, sent.ends_at), (150 * S, Some(390 * S)));
        assert_eq!(
            ev.recorded.map(|b| b.num_rows()),
            Some(1),
            "one ALERTS series, for the firing alert"
        );
        let alert = rule(&group).alerts()[0].clone();
        assert_eq!(
            (alert.state, alert.active_at, alert.fired_at),
            (AlertState::Firing, 120 * S, Some(150 * S))
        );
        // No more data: the source is idle and the runtime advances time.
        group.advance_watermark(240 * S);
        assert_eq!(
            run_due(&mut group).await,
            vec![
                (180, vec![]),
                (210, vec![("cart".into(), EventState::Resolved)]),
                (240, vec![]),
            ]
        );
        assert_eq!(rule(&group).alerts()[0].resolved_at, Some(210 * S));
        let stats = group.buffer_stats();
        assert_eq!(stats[0].1.rows, 0, "everything is behind the next window");
        assert_eq!(stats[0].1.accepted_rows, 5);
    }

    /// Scenario: a recording rule with `query_offset: 10s` and an allowed
    /// lateness of 15s. Guarantees: the window ends `query_offset` before
    /// the evaluation time; each row becomes a gauge point at that end time
    /// with the rule's labels; rows later than allowed are counted, not used.
    #[tokio::test]
    async fn recording_rule_emits_metric_points() {
        let config = RuleConfig {
            window: secs(60),
            every: secs(60),
            query_offset: secs(10),
            allowed_lateness: secs(15),
            labels: map(&[("source", "weir")]),
            ..RuleConfig::record(
                "service:logs:count1m",
                "SELECT service_name, count(*) AS value FROM logs GROUP BY service_name",
            )
        };
        let mut group = group_of(config);
        group
            .push(
                Signal::Logs,
                &logs(&[(55, "a"), (65, "a"), (69, "b"), (130, "c")]),
            )
            .await
            .unwrap();
        // Watermark 130 - 15 = 115: 116 is on time, 90 is too late.
        assert_eq!(
            group
                .push(Signal::Logs, &logs(&[(116, "b"), (90, "b")]))
                .await
                .unwrap(),
            1
        );
        assert_eq!(group.buffer_stats()[0].1.late_rows, 1);
        let t = group.next_due().unwrap();
        assert_eq!(t, 120 * S);
        let ev = evaluate(&mut group, t).await.unwrap();
        assert!(ev.transitions.is_empty() && ev.notifications.is_empty());
        let batch = ev.recorded.unwrap();
        assert_eq!(batch.schema().fields(), metrics_schema().fields());
        assert_eq!(batch.num_rows(), 2);
        let times = batch
            .column_by_name(col::TIME)
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        assert!(times.iter().all(|t| t == Some(110 * S)));
        let values: Vec<f64> = batch
            .column_by_name(col::VALUE)
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .collect();
        // a: 55, 65; b: 69 (116 is past the window's end, 110).
        assert_eq!(values, [2.0, 1.0]);
        let attrs: &MapArray = batch.column_by_name(col::ATTRIBUTES).unwrap().as_map();
        assert_eq!(attrs.keys().as_string::<i32>().value(0), "source");
        assert_eq!(attrs.values().as_string::<i32>().value(0), "weir");
    }

    /// Scenario: restart, then a reload that changes one rule. Guarantees:
    /// the saved state (as JSON) goes back to the rule of the same
    /// definition, whose pending alert keeps its `for` clock and fires at
    /// the original time; the changed rule starts empty and is reported.
    #[tokio::test]
    async fn state_restores_to_unchanged_rules_only() {
        let mut group = group_of(error_rule());
        group
            .push(Signal::Logs, &logs(&[(100, "cart"), (101, "cart")]))
            .await
            .unwrap();
        group.advance_watermark(120 * S);
        while let Some(t) = group.next_due() {
            evaluate(&mut group, t).await.unwrap();
        }
        assert_eq!(rule(&group).alerts()[0].state, AlertState::Pending);
        let json = serde_json::to_string(&RulesState::capture(group.rules())).unwrap();
        let saved: RulesState = serde_json::from_str(&json).unwrap();

        let mut same = group_of(error_rule());
        let changed_config = RuleConfig {
            for_duration: secs(60),
            ..error_rule()
        };
        assert_ne!(changed_config.id(), error_rule().id());
        let mut changed = group_of(changed_config);
        let report = saved.restore(same.rules_mut().iter_mut().chain(changed.rules_mut()));
        assert_eq!(report.restored, ["ServiceErrors"]);
        assert!(report.discarded.is_empty());
        assert!(rule(&changed).alerts().is_empty());
        assert_eq!(rule(&same).alerts()[0].active_at, 120 * S);

        // After the restart the data comes again (at-least-once replay) and
        // the alert fires at 150, 30s after its original active_at.
        same.push(
            Signal::Logs,
            &logs(&[(100, "cart"), (101, "cart"), (125, "cart")]),
        )
        .await
        .unwrap();
        same.advance_watermark(150 * S);
        let t = same.next_due().unwrap();
        assert_eq!(t, 150 * S);
        let ev = evaluate(&mut same, t).await.unwrap();
        assert_eq!(ev.transitions[0].state, EventState::Firing);
        assert_eq!(ev.transitions[0].starts_at, 150 * S);

        let gone = RulesState::capture(changed.rules()).restore(same.rules_mut());
        assert_eq!(gone.discarded, ["ServiceErrors"]);
    }

    /// Scenario: Prometheus' `TestAlertingRuleEmptyLabelFromTemplate` and
    /// `TestAlertingRuleDuplicate`, over SQL. Guarantees: a rule label that
    /// renders empty is removed; rows that collide once the rule's labels
    /// are applied are an evaluation error; a query with no table runs on
    /// the advanced watermark.
    #[tokio::test]
    async fn templated_labels_and_duplicates() {
        let config = RuleConfig {
            labels: map(&[("owner", "{{ $labels.who }}")]),
            ..RuleConfig::alert("Always", "SELECT CAST(NULL AS VARCHAR) AS who, 1 AS value")
        };
        let mut group = group_of(config);
        assert_eq!(group.next_due(), None);
        group.advance_watermark(60 * S);
        let t = group.next_due().unwrap();
        let ev = evaluate(&mut group, t).await.unwrap();
        assert_eq!(ev.transitions[0].labels, map(&[("alertname", "Always")]));
        assert_eq!(
            ev.transitions[0].state,
            EventState::Firing,
            "for: 0 fires at once"
        );

        let config = RuleConfig {
            labels: map(&[("who", "everyone")]),
            ..RuleConfig::alert(
                "Dup",
                "SELECT who, 1 AS value FROM (VALUES ('a'), ('b')) AS t(who)",
            )
        };
        let mut group = group_of(config);
        let err = evaluate(&mut group, 60 * S).await.unwrap_err();
        assert!(
            matches!(&err, EvalError::DuplicateLabels { labels, .. } if labels.contains("everyone")),
            "{err}"
        );
    }

    /// Scenario: a query whose hash table outgrows `max_query_memory`.
    /// Guarantees: the evaluation fails with DataFusion's resources error
    /// instead of taking the memory; the rule stays usable.
    #[tokio::test]
    async fn query_memory_is_bounded() {
        let config = RuleConfig {
            max_query_memory: 64 << 10,
            ..RuleConfig::alert(
                "Big",
                "SELECT CAST(v AS VARCHAR) AS k, count(*) AS value \
                 FROM (SELECT unnest(range(1, 200000)) AS v) GROUP BY 1",
            )
        };
        let mut group = group_of(config);
        let err = evaluate(&mut group, 60 * S).await.unwrap_err();
        assert!(
            matches!(&err, EvalError::Query { message, .. } if message.contains("esources exhausted")),
            "{err}"
        );
        assert!(rule(&group).alerts().is_empty());
    }

    /// Scenario: the query fails at execution (division by zero once rows
    /// arrive). Guarantees: the error names the rule and carries
    /// DataFusion's message; the alert state is untouched; the rule moves on
    /// to the next tick instead of retrying the same one forever.
    #[tokio::test]
    async fn failed_evaluation_moves_on() {
        let config = RuleConfig {
            window: secs(60),
            every: secs(60),
            ..RuleConfig::alert(
                "Broken",
                "SELECT service_name, count(*) / 0 AS value FROM logs GROUP BY service_name",
            )
        };
        let mut group = group_of(config);
        group.push(Signal::Logs, &logs(&[(30, "a")])).await.unwrap();
        group.push(Signal::Logs, &logs(&[(61, "a")])).await.unwrap();
        let t = group.next_due().unwrap();
        assert_eq!(t, 60 * S);
        let err = evaluate(&mut group, t).await.unwrap_err();
        assert!(
            matches!(&err, EvalError::Query { rule, message } if rule == "Broken" && message.contains("zero")),
            "{err}"
        );
        assert!(rule(&group).alerts().is_empty());
        assert_eq!(
            group.next_due(),
            None,
            "60 is done; 120 is not complete yet"
        );
        assert!(rule(&group).is_incremental());
        assert_eq!(
            group.buffer_stats()[0].1.rows,
            0,
            "a pane-by-pane rule keeps no rows in its buffer"
        );
        // The failed pane [0, 60) is gone with its evaluation; the next
        // window fails on its own rows, not on the old pane's error.
        group.advance_watermark(120 * S);
        let err = evaluate(&mut group, 120 * S).await.unwrap_err();
        assert!(matches!(&err, EvalError::Query { message, .. } if message.contains("zero")));
        group.advance_watermark(180 * S);
        let quiet = evaluate(&mut group, 180 * S).await.unwrap();
        assert_eq!(quiet.rows, 0, "an empty window runs again");
    }

    /// Guarantees: each mistake in a definition is a validation error naming
    /// the rule and field and saying what to do.
    #[test]
    fn validation_errors_are_clear() {
        let base = error_rule();
        let cases: Vec<(RuleConfig, &str)> = vec![
            (
                RuleConfig {
                    window: Duration::ZERO,
                    ..base.clone()
                },
                "`window` must be longer than 0",
            ),
            (
                RuleConfig {
                    name: " ".into(),
                    ..base.clone()
                },
                "`name` is empty",
            ),
            (
                RuleConfig {
                    sql: "".into(),
                    ..base.clone()
                },
                "`sql` is empty",
            ),
            (
                RuleConfig {
                    labels: map(&[("bad-name", "x")]),
                    ..base.clone()
                },
                "`labels.bad-name` is not a label name",
            ),
            (
                RuleConfig {
                    labels: map(&[("alertname", "x")]),
                    ..base.clone()
                },
                "rename the rule",
            ),
            (
                RuleConfig {
                    annotations: map(&[("summary", "{{ $labels.servce }}")]),
                    ..base.clone()
                },
                "`$labels.servce` names a label the query does not return (its label columns are service_name)",
            ),
            (
                RuleConfig {
                    annotations: map(&[("summary", "{{ $labels.service_name ")]),
                    ..base.clone()
                },
                "template `annotations.summary`: at byte 0: `{{` is not closed",
            ),
            (
                RuleConfig {
                    sql: "SELECT service AS value FROM logs".into(),
                    ..base.clone()
                },
                "the SQL does not plan",
            ),
            (
                RuleConfig {
                    for_duration: secs(60),
                    ..RuleConfig::record("r", "SELECT 1 AS value")
                },
                "`for` applies to alert rules only",
            ),
            (
                RuleConfig {
                    annotations: map(&[("a", "b")]),
                    ..RuleConfig::record("r", "SELECT 1 AS value")
                },
                "annotations apply to alert rules only",
            ),
            (
                RuleConfig {
                    labels: map(&[("a", "{{ $value }}")]),
                    ..RuleConfig::record("r", "SELECT 1 AS value")
                },
                "labels of recording rules are plain text",
            ),
            (
                RuleConfig::record("1bad name", "SELECT 1 AS value"),
                "`name` is the name of the recorded metric",
            ),
            (
                RuleConfig {
                    buffer_limits: BufferLimits {
                        max_rows: 0,
                        max_bytes: 1,
                    },
                    ..base.clone()
                },
                "must be greater than 0",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in: {err}");
            assert!(err.starts_with(&format!("rule `{}`", config.name)), "{err}");
        }
        assert!(base.validate().is_ok());
        assert!(
            RuleConfig::record("service:errors:rate5m", "SELECT 1 AS value")
                .validate()
                .is_ok()
        );
    }

    /// Guarantees: the identity changes with any part of the definition and
    /// not otherwise; generator URLs are escaped.
    #[test]
    fn identity_and_generator_url() {
        let a = error_rule();
        assert_eq!(a.id(), error_rule().id());
        assert_eq!(a.id().as_str().len(), 16);
        let variants = [
            RuleConfig {
                sql: format!("{} ", a.sql),
                ..a.clone()
            },
            RuleConfig {
                keep_firing_for: secs(1),
                ..a.clone()
            },
            RuleConfig {
                annotations: BTreeMap::new(),
                ..a.clone()
            },
            RuleConfig {
                kind: RuleKind::Record,
                ..a.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.id(), a.id());
        }
        assert_eq!(
            generator_url("", "High rate/5m é"),
            "/rules/High%20rate%2F5m%20%C3%A9"
        );
    }
}
