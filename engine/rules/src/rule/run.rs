//! The running rule: its compiled plan and, for alert rules, the alert
//! lifecycle.
//!
//! A [`Rule`] holds no rows of its own: it runs in a [`crate::RuleGroup`],
//! which holds the window buffers, decides the evaluation times, hands the
//! rows of each pane to the rules evaluated pane by pane
//! ([`Rule::absorb`]) and evaluates each rule in turn over its buffers
//! ([`Rule::evaluate`]). An evaluation runs the query over the window,
//! then turns the rows into recorded points (recording rules) or alert
//! instances, whose lifecycle yields transitions, notifications and the
//! `ALERTS` series (alert rules).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use weir_core::{Signal, SignalSet};

use super::compile::{Compiled, Planned};
use super::config::{ALERTNAME, RuleConfig, RuleId, RuleKind};
use super::link::generator_url;
use crate::alert::{
    Alert, AlertEvent, AlertLifecycle, AlertSettings, AlertState, Instance, label_set_text,
};
use crate::error::{EvalError, RuleError};
use crate::incremental::PaneStore;
use crate::plan;
use crate::query::{self, Sample};
use crate::record;
use crate::shape::PaneShape;
use crate::time::{UnixNanos, nanos};
use crate::window::WindowBuffer;

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

/// A validated rule: its query planned once and, for alert rules, its
/// alert lifecycle. It runs in a [`crate::RuleGroup`].
pub struct Rule {
    config: RuleConfig,
    id: RuleId,
    /// The query, planned once, and the templates.
    compiled: Compiled,
    lifecycle: Option<AlertLifecycle>,
    /// When incremental: which of its group's [`PaneStore`]s holds its
    /// partial aggregates, and which columns of the store's final rows are
    /// its own (set by the group).
    store: Option<(usize, Vec<usize>)>,
    /// The rule has every row stamped after this time; `None`: every row
    /// its group has taken. Set when a reload adds or changes the rule and
    /// the rows before were no longer held.
    held_after: Option<UnixNanos>,
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
        let compiled = Compiled::new(&config)?;
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
            compiled,
            lifecycle,
            store: None,
            held_after: None,
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
        matches!(self.compiled.plan, Planned::Panes { .. })
    }

    /// The table whose rows the rule aggregates pane by pane, if it does.
    pub(crate) fn pane_input(&self) -> Option<Signal> {
        match &self.compiled.plan {
            Planned::Panes { plans, .. } => Some(plans.input),
            Planned::Rescan(_) => None,
        }
    }

    /// The shape of the aggregation it runs pane by pane, if it does (see
    /// [`crate::shape`]).
    pub(crate) fn pane_shape(&self) -> Option<&PaneShape> {
        match &self.compiled.plan {
            Planned::Panes { shape, .. } => Some(shape),
            Planned::Rescan(_) => None,
        }
    }

    /// The columns of `store`'s final rows that are the rule's, if the
    /// store serves it.
    pub(crate) fn served_by(&self, store: &PaneStore) -> Option<Vec<usize>> {
        match &self.compiled.plan {
            Planned::Panes { plans, shape } => shape.served_by(store, &plans.final_schema()),
            Planned::Rescan(_) => None,
        }
    }

    /// Its window at evaluation time `t`: `(start, end]`.
    pub(crate) fn window_at(&self, t: UnixNanos) -> (UnixNanos, UnixNanos) {
        let end = t.saturating_sub(nanos(self.config.query_offset));
        (end.saturating_sub(nanos(self.config.window)), end)
    }

    /// Points the rule at its group's store `index`, whose final rows'
    /// `columns` are its own (see [`Rule::served_by`]).
    pub(crate) fn use_store(&mut self, store: Option<(usize, Vec<usize>)>) {
        self.store = store;
    }

    /// The store of its partial aggregates in its group, if incremental.
    pub(crate) fn store(&self) -> Option<usize> {
        self.store.as_ref().map(|(i, _)| *i)
    }

    /// Records that the rule misses the rows stamped up to `t` (included):
    /// its windows are whole only from [`Rule::complete_from`].
    pub(crate) fn missing_through(&mut self, t: Option<UnixNanos>) {
        self.held_after = t;
    }

    /// The first evaluation time whose window holds every row, when the
    /// rule misses rows a window needs (it was added or changed by a reload
    /// after they had gone); `None` when its windows are whole.
    pub fn complete_from(&self) -> Option<UnixNanos> {
        let held_after = self.held_after?;
        let from = held_after
            .saturating_add(nanos(self.config.window))
            .saturating_add(nanos(self.config.query_offset));
        Some(crate::time::multiple_from(from, nanos(self.config.every)))
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
        self.compiled.shape.inputs
    }

    /// The label columns of the query's result.
    pub fn label_columns(&self) -> &[String] {
        &self.compiled.shape.label_columns
    }

    /// The alert instances held (alert rules).
    pub fn alerts(&self) -> Vec<&Alert> {
        self.lifecycle.iter().flat_map(|l| l.alerts()).collect()
    }

    /// The alert lifecycle (alert rules).
    pub(super) fn lifecycle(&self) -> Option<&AlertLifecycle> {
        self.lifecycle.as_ref()
    }

    /// The alert lifecycle (alert rules), to restore its state.
    pub(super) fn lifecycle_mut(&mut self) -> Option<&mut AlertLifecycle> {
        self.lifecycle.as_mut()
    }

    /// Evaluates the rule at `t` over `(t - window - offset, t - offset]`:
    /// the rows of `buffers` (its group's) or its panes. Touches neither the
    /// buffers nor the due time (the group moves both on, whether this
    /// succeeds or fails); a failed evaluation leaves the alert state as it
    /// was. Keeps how it went as [`Rule::last_run`].
    pub(crate) async fn evaluate(
        &mut self,
        t: UnixNanos,
        buffers: &[WindowBuffer],
        stores: &[PaneStore],
    ) -> Result<Evaluation, EvalError> {
        let started = std::time::Instant::now();
        let result = self.evaluate_window(t, buffers, stores).await;
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
        stores: &[PaneStore],
    ) -> Result<Evaluation, EvalError> {
        let (start, end) = self.window_at(t);
        let samples = match &self.compiled.plan {
            Planned::Panes { .. } => self.run_panes(stores, start, end).await,
            Planned::Rescan(_) => {
                for b in buffers {
                    if self.compiled.shape.inputs.contains(b.signal()) {
                        self.compiled
                            .tables
                            .slot(b.signal())
                            .set(b.snapshot(start, end));
                    }
                }
                let samples = self.run_query().await;
                // Free the window's rows whatever happened.
                self.compiled.tables.clear();
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
                    let active = lifecycle.alerts().any(|a| a.state != AlertState::Inactive);
                    if active {
                        let series = record::alerts_series(end, lifecycle.alerts());
                        evaluation.recorded = Some(series.map_err(internal)?);
                    }
                }
            }
        }
        Ok(evaluation)
    }

    fn query_error(&self, e: DataFusionError) -> EvalError {
        EvalError::Query {
            rule: self.config.name.clone(),
            message: e.strip_backtrace().to_string(),
        }
    }

    /// The query over `(start, end]` from the final rows of its store's
    /// aggregation over that window (prepared by the group).
    async fn run_panes(
        &self,
        stores: &[PaneStore],
        start: UnixNanos,
        end: UnixNanos,
    ) -> Result<Vec<Sample>, EvalError> {
        let internal = |message: &str| EvalError::Internal {
            rule: self.config.name.clone(),
            message: message.to_string(),
        };
        let Planned::Panes { plans, .. } = &self.compiled.plan else {
            return Err(internal("not a pane-by-pane rule"));
        };
        let (store, columns) = self
            .store
            .as_ref()
            .and_then(|(i, columns)| Some((stores.get(*i)?, columns)))
            .ok_or_else(|| {
                internal("its aggregation could not be planned (see the log at its group's start)")
            })?;
        let finals = store
            .finals(start, end)
            .map_err(|message| EvalError::Query {
                rule: self.config.name.clone(),
                message,
            })?;
        // The store's final rows hold the aggregates of every rule it
        // serves: the rule reads its own columns.
        let schema = plans.final_schema();
        let finals = finals
            .iter()
            .map(|b| {
                let own = columns.iter().map(|&i| Arc::clone(b.column(i))).collect();
                RecordBatch::try_new(Arc::clone(&schema), own)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.query_error(e.into()))?;
        let batches = plans.finish(&self.compiled.task, finals).await;
        let batches = batches.map_err(|e| self.query_error(e))?;
        query::samples(&batches).map_err(|e| self.query_error(e))
    }

    /// The kept plan over the rows in the table slots.
    async fn run_query(&self) -> Result<Vec<Sample>, EvalError> {
        let Planned::Rescan(plan) = &self.compiled.plan else {
            return Err(EvalError::Internal {
                rule: self.config.name.clone(),
                message: "a pane-by-pane rule".to_string(),
            });
        };
        let batches = plan::run(&self.compiled.task, plan)
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
                for (name, template) in &self.compiled.templates.labels {
                    let value = template.render(&sample.labels, sample.value);
                    if value.is_empty() {
                        labels.remove(name);
                    } else {
                        labels.insert(name.clone(), value);
                    }
                }
                labels.insert(ALERTNAME.to_string(), self.config.name.clone());
                let annotations = self
                    .compiled
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
}
