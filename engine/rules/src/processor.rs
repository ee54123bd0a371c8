//! The `rules` processor: a [`RuleGroup`] in a pipeline.
//!
//! Every batch of a table the rules read is pushed into the group's
//! event-time buffers, and the input is then acknowledged: the rules have
//! taken what they need. Each time the data's watermark passes a due time,
//! every rule is evaluated; the recorded series (recording rules, and the
//! `ALERTS` series of alert rules) go on to the processor's readers as
//! `metrics` batches, and the alert events (each transition and each
//! notification due, Prometheus' re-sends included) as `alerts` batches.
//!
//! [`RulesProcessor::status`] is what the API shows of the rules (see
//! [`crate::status`]), published after each evaluation and reload.
//!
//! With [`RulesProcessor::with_state_file`] the alert state survives a
//! restart, as Prometheus' `ALERTS_FOR_STATE` makes it. When nothing has
//! arrived for `idle_timeout`, event time moves on with the wall clock
//! ([`RulesProcessor::advance_idle`]).
//!
//! What the processor counts in `/metrics` (evaluations, reloads, buffers,
//! panes) is declared in [`crate::metrics`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{RuleSpec, RulesConfig};
use async_trait::async_trait;
use weir_core::{Ack, Batch, ComponentError, Processor, Signal};

use crate::alert::AlertSettings;
use crate::error::RuleError;
use crate::group::{ReloadReport, RuleGroup};
use crate::metrics::RuleMetrics;
use crate::output::alerts_batch;
use crate::rule::{RuleConfig, RulesState};
use crate::status::RulesStatus;
use crate::time::nanos;
use crate::window::BufferStats;

/// The `rules` processor. See the [module docs](self).
pub struct RulesProcessor {
    name: String,
    metrics: RuleMetrics,
    group: RuleGroup,
    /// The counters last reported, per table, so that only increases are
    /// added to `/metrics`.
    reported: Vec<(Signal, BufferStats)>,
    /// Where the alert state is kept across restarts, if anywhere.
    state_file: Option<PathBuf>,
    /// See [`RulesConfig::idle_timeout`]; `None` when off.
    idle_timeout: Option<Duration>,
    /// See [`RulesConfig::max_future`].
    max_future: Duration,
    /// When the last batch of each input table arrived (wall clock).
    last_input: Vec<(Signal, Instant)>,
    /// The evaluation interval, in nanoseconds.
    every: i64,
    /// The longest `window + query_offset` of the rules, in nanoseconds.
    reach: i64,
    settings: AlertSettings,
    /// New definitions sent by a config reload, taken before the next batch
    /// or tick.
    reloads: Reloads,
    /// What the API shows of the rules, published after each evaluation
    /// and reload.
    status: RulesStatus,
    /// How long the last evaluation of the whole group took.
    last_tick: Option<Duration>,
}

/// Where a config reload leaves new definitions for a [`RulesProcessor`]
/// (see [`RulesProcessor::reloads`]): the processor takes the latest before
/// its next batch or tick.
#[derive(Debug, Clone, Default)]
pub struct Reloads(Arc<Mutex<Option<RulesConfig>>>);

impl weir_config::Reload for Reloads {
    /// Leaves the new rules for the processor, which takes them before its
    /// next batch or tick.
    fn reload(&self, new: &dyn weir_config::ComponentConfig) -> Result<(), String> {
        match new.downcast_ref::<RulesConfig>() {
            Some(config) => {
                self.send(config.clone());
                Ok(())
            }
            None => Err("the component is no longer a `rules` processor".to_string()),
        }
    }
}

impl Reloads {
    /// Leaves `config` for the processor (replacing one not taken yet).
    pub fn send(&self, config: RulesConfig) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(config);
    }

    fn take(&self) -> Option<RulesConfig> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The weir-rules form of every rule of `config`.
fn rule_configs(config: &RulesConfig) -> Vec<RuleConfig> {
    config
        .rules
        .iter()
        .map(|spec| rule_config(spec, config))
        .collect()
}

/// The longest `window + query_offset` of `configs`, in nanoseconds.
fn reach_of(configs: &[RuleConfig]) -> i64 {
    configs
        .iter()
        .map(|c| nanos(c.window).saturating_add(nanos(c.query_offset)))
        .max()
        .unwrap_or(0)
}

/// The weir-rules form of one `[[processors.NAME.rules]]` table.
pub fn rule_config(spec: &RuleSpec, group: &RulesConfig) -> RuleConfig {
    let base = if spec.is_alert() {
        RuleConfig::alert(spec.name(), spec.sql.clone())
    } else {
        RuleConfig::record(spec.name(), spec.sql.clone())
    };
    RuleConfig {
        window: spec.window,
        every: group.every,
        for_duration: spec.for_duration,
        keep_firing_for: spec.keep_firing_for,
        labels: spec.labels.clone(),
        annotations: spec.annotations.clone(),
        allowed_lateness: group.allowed_lateness,
        query_offset: spec.query_offset,
        ..base
    }
}

impl RulesProcessor {
    /// Builds the processor `name`: validates every rule (its SQL parses,
    /// names known tables and columns, and returns a `value`).
    pub fn new(
        name: &str,
        config: &RulesConfig,
        settings: &AlertSettings,
    ) -> Result<RulesProcessor, RuleError> {
        let configs = rule_configs(config);
        let reach = reach_of(&configs);
        let mut group = RuleGroup::new(name, configs, settings)?;
        // A batch is acknowledged once its rows are in the group, without
        // waiting for the aggregation they complete.
        group.aggregate_in_background(true);
        let started = Instant::now();
        let status = RulesStatus::default();
        status.publish(&group, None);
        Ok(RulesProcessor {
            name: name.to_string(),
            metrics: RuleMetrics::new(name),
            last_input: group.inputs().iter().map(|s| (s, started)).collect(),
            group,
            reported: Vec::new(),
            state_file: None,
            idle_timeout: Some(config.idle_timeout).filter(|d| !d.is_zero()),
            max_future: config.max_future,
            every: nanos(config.every).max(1),
            reach,
            settings: settings.clone(),
            reloads: Reloads::default(),
            status,
            last_tick: None,
        })
    }

    /// Where a config reload leaves new definitions for this processor.
    pub fn reloads(&self) -> Reloads {
        self.reloads.clone()
    }

    /// What the API shows of the rules: kept up to date by the processor.
    pub fn status(&self) -> RulesStatus {
        self.status.clone()
    }

    /// Takes new definitions of the rules (see [`RuleGroup::reload`]):
    /// unchanged rules keep their state, changed and new ones start afresh.
    /// On error the rules run on unchanged.
    pub async fn reload(&mut self, config: &RulesConfig) -> Result<ReloadReport, RuleError> {
        let configs = rule_configs(config);
        let reach = reach_of(&configs);
        let report = self.group.reload(configs, &self.settings).await?;
        self.reach = reach;
        self.every = nanos(config.every).max(1);
        self.idle_timeout = Some(config.idle_timeout).filter(|d| !d.is_zero());
        self.max_future = config.max_future;
        let now = Instant::now();
        let inputs = self.group.inputs();
        self.last_input.retain(|(s, _)| inputs.contains(*s));
        for signal in inputs.iter() {
            if !self.last_input.iter().any(|(s, _)| *s == signal) {
                self.last_input.push((signal, now));
            }
        }
        self.save_state();
        self.status.publish(&self.group, self.last_tick);
        Ok(report)
    }

    /// Applies the definitions a reload left, if any.
    async fn take_reload(&mut self) {
        let Some(config) = self.reloads.take() else {
            return;
        };
        match self.reload(&config).await {
            Ok(report) => {
                self.metrics.reloads("ok").increment(1);
                tracing::info!(component = %self.name, kept = ?report.kept,
                    changed = ?report.changed, added = ?report.added,
                    removed = ?report.removed, "rules reloaded");
                for rule in self.group.rules() {
                    if let Some(from) = rule.complete_from()
                        && self.group.last_evaluation().is_none_or(|t| t < from)
                    {
                        tracing::warn!(component = %self.name, rule = %rule.config().name,
                            whole_from = %crate::time::rfc3339(from),
                            "the rule's windows reach back before the data the group still holds; \
                             they are partial until this evaluation time");
                    }
                }
            }
            Err(e) => {
                self.metrics.reloads("invalid").increment(1);
                tracing::error!(component = %self.name, error = %e,
                    "the new rules are invalid; the previous ones keep running");
            }
        }
    }

    /// Keeps the alert state in `path` (JSON, rewritten after each
    /// evaluation and at shutdown), and takes the state saved there now:
    /// a firing alert stays firing and a pending one keeps its `for`
    /// clock, for every rule whose definition is unchanged, and evaluation
    /// resumes after the last time evaluated before. A file that
    /// cannot be read is set aside as `<path>.unreadable` with a warning,
    /// and the rules start without state.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        match load_state(&path) {
            Ok(Some(state)) => {
                let report = state.restore(self.group.rules_mut());
                if let Some(t) = state.last_evaluation {
                    self.group.resume_after(t);
                }
                tracing::info!(component = %self.name, file = %path.display(),
                    restored = ?report.restored, discarded = ?report.discarded,
                    "alert state restored");
            }
            Ok(None) => {}
            Err(e) => {
                let aside = path.with_extension("json.unreadable");
                let moved = std::fs::rename(&path, &aside).is_ok();
                tracing::warn!(component = %self.name, file = %path.display(), error = %e,
                    set_aside = moved, "the saved alert state cannot be read; starting without it");
            }
        }
        self.state_file = Some(path);
        self.status.publish(&self.group, self.last_tick);
        self
    }

    /// Writes the alert state to the state file, if there is one.
    fn save_state(&self) {
        let Some(path) = &self.state_file else {
            return;
        };
        let state = RulesState {
            last_evaluation: self.group.last_evaluation(),
            ..RulesState::capture(self.group.rules())
        };
        if let Err(e) = save_state(path, &state) {
            self.metrics.state_save_failures().increment(1);
            tracing::warn!(component = %self.name, file = %path.display(), error = %e,
                "cannot save the alert state; a restart would lose it");
        }
    }

    /// The group the processor runs.
    pub fn group(&self) -> &RuleGroup {
        &self.group
    }

    /// Evaluates what is due and pushes the recorded series into `out`.
    async fn evaluate_due(&mut self, out: &mut Vec<Batch>) {
        let mut due = Vec::new();
        while let Some(t) = self.group.next_due() {
            let started = Instant::now();
            let evaluations = self.group.evaluate(t).await;
            let took = started.elapsed();
            self.last_tick = Some(took);
            self.metrics
                .group_evaluation_seconds()
                .record(took.as_secs_f64());
            due.push((t, evaluations));
            let skipped = self.group.skip_empty_windows();
            self.metrics.skipped_evaluations().increment(skipped);
        }
        let evaluated = !due.is_empty();
        for (_, evaluations) in due {
            for evaluation in evaluations {
                match evaluation.result {
                    Ok(done) => {
                        self.metrics.evaluations(&evaluation.rule).increment(1);
                        if let Some(recorded) = done.recorded.filter(|b| b.num_rows() > 0) {
                            out.push(Batch::new(Signal::Metrics, recorded, Ack::none()));
                        }
                        if !(done.transitions.is_empty() && done.notifications.is_empty()) {
                            match alerts_batch(&done.transitions, &done.notifications) {
                                Ok(events) => {
                                    out.push(Batch::new(Signal::Alerts, events, Ack::none()));
                                }
                                Err(e) => tracing::error!(component = %self.name,
                                    rule = %evaluation.rule, error = %e,
                                    "cannot build the alert events (this is a bug in Weir)"),
                            }
                        }
                    }
                    Err(e) => {
                        self.metrics
                            .evaluation_failures(&evaluation.rule)
                            .increment(1);
                        tracing::warn!(component = %self.name, rule = %evaluation.rule,
                            error = %e, "rule evaluation failed; the next one tries again");
                    }
                }
            }
        }
        self.report_buffers();
        if evaluated {
            self.report_panes();
            self.save_state();
            self.status.publish(&self.group, self.last_tick);
        }
    }

    /// No input for `idle_timeout`: moves event time on to `target`. The
    /// evaluations that can still see the last data run one by one; past
    /// them every window is empty, so the rules jump to the last due time
    /// before `target` instead of evaluating each empty one between.
    pub async fn advance_idle(&mut self, target: i64, out: &mut Vec<Batch>) {
        let Some(current) = self.group.newest_watermark() else {
            // No data yet: nothing to move on from.
            return;
        };
        if self.group.watermark().is_some_and(|w| w >= target) {
            return;
        }
        self.metrics.idle_advances().increment(1);
        let tail = current
            .saturating_add(self.reach)
            .saturating_add(self.every)
            .max(self.group.watermark().unwrap_or(i64::MIN))
            .min(target);
        self.group.advance_watermark(tail);
        self.evaluate_due(out).await;
        if tail < target {
            // The last evaluation the watermark at `target` allows.
            let due = crate::time::multiple_before(target, self.every);
            self.group.resume_after(due.saturating_sub(self.every));
            self.group.advance_watermark(target);
            self.evaluate_due(out).await;
        }
    }

    /// The gauges of the panes: they change only when the rules evaluate.
    fn report_panes(&self) {
        self.metrics
            .pane_bytes()
            .set(self.group.pane_bytes() as f64);
        let (_, pending) = self.group.pending_size();
        self.metrics.pending_bytes().set(pending as f64);
        for rule in self.group.rules() {
            self.metrics
                .incremental(&rule.config().name)
                .set(if rule.is_incremental() { 1.0 } else { 0.0 });
        }
    }

    fn report_buffers(&mut self) {
        for (signal, stats) in self.group.buffer_stats() {
            self.metrics.buffer_rows(signal).set(stats.rows as f64);
            self.metrics.buffer_bytes(signal).set(stats.bytes as f64);
            let before = self
                .reported
                .iter()
                .find(|(s, _)| *s == signal)
                .map(|(_, b)| *b)
                .unwrap_or_default();
            self.metrics
                .late_records(signal)
                .increment(stats.late_rows.saturating_sub(before.late_rows));
            self.metrics
                .rejected_records(signal)
                .increment(stats.rejected_rows.saturating_sub(before.rejected_rows));
            self.metrics
                .future_records(signal)
                .increment(stats.future_rows.saturating_sub(before.future_rows));
            self.reported.retain(|(s, _)| *s != signal);
            self.reported.push((signal, stats));
        }
    }
}

#[async_trait]
impl Processor for RulesProcessor {
    async fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.take_reload().await;
        if let Some((_, at)) = self
            .last_input
            .iter_mut()
            .find(|(s, _)| *s == batch.signal())
        {
            *at = Instant::now();
        }
        // A record may be at most `max_future` ahead of the clock.
        let not_after = now_nanos().saturating_add(nanos(self.max_future));
        if let Err(e) = self
            .group
            .push_bounded(batch.signal(), batch.data(), Some(not_after))
            .await
        {
            // A full buffer: refuse upstream, the client retries later.
            return Err(ComponentError::External {
                component: self.name.clone(),
                message: e.to_string(),
                source: None,
            });
        }
        // The rules hold what they need; the input is acknowledged here.
        batch.deliver();
        self.evaluate_due(out).await;
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        let every = Duration::from_nanos(u64::try_from(self.every).unwrap_or(u64::MAX));
        self.idle_timeout
            .map(|_| every.clamp(Duration::from_secs(1), Duration::from_secs(15)))
    }

    async fn tick(&mut self, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.take_reload().await;
        let Some(idle) = self.idle_timeout else {
            return Ok(());
        };
        // One quiet table holds every evaluation back (a window is complete
        // once each input has passed it), so any idle input moves time on.
        if self.last_input.iter().all(|(_, at)| at.elapsed() < idle) {
            return Ok(());
        }
        self.advance_idle(now_nanos().saturating_sub(nanos(idle)), out)
            .await;
        Ok(())
    }

    async fn close(&mut self, _out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.save_state();
        Ok(())
    }
}

/// The wall clock, in nanoseconds since the Unix epoch.
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The state saved in `path`; `None` when there is no file.
fn load_state(path: &Path) -> Result<Option<RulesState>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let state: RulesState = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if state.version != RulesState::VERSION {
        return Err(format!(
            "format version {} is not {}",
            state.version,
            RulesState::VERSION
        ));
    }
    Ok(Some(state))
}

/// Writes `state` to `path` whole or not at all (a temporary file, synced,
/// then renamed over the old one).
fn save_state(path: &Path, state: &RulesState) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
