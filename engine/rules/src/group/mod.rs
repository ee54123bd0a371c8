//! Rule groups: rules that share an interval and their input buffers.
//!
//! A [`RuleGroup`] holds one [`WindowBuffer`] per table any of its rules
//! reads; a batch is pushed once, whatever the number of rules. The buffer
//! keeps rows, back to the group's largest `window + query_offset`, only if
//! a rule that rescans its window reads the table. For the rules evaluated
//! pane by pane the group gathers each pane's rows once and aggregates them
//! once per distinct shape (table, filters and grouping: a [`PaneStore`]
//! computing every aggregate the rules of that shape need), however many
//! rules share it, whatever aggregates, thresholds and windows they differ
//! in (see [`crate::shape`] and [`crate::incremental`]).
//! At each due
//! time (the multiples of the group's `every`) every rule is evaluated in
//! turn, then the buffers are evicted behind the largest window. The rules
//! of a group have the same `every`, `allowed_lateness` and buffer limits:
//! they are the group's.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use weir_core::{Signal, SignalSet};

use crate::alert::AlertSettings;
use crate::error::{EvalError, RuleError, WindowError};
use crate::incremental::{PaneStore, Pending, Window};
use crate::rule::{Evaluation, Rule, RuleConfig};
use crate::shape::{self, PaneShape};
use crate::time::{UnixNanos, multiple_before, multiple_from, nanos};
use crate::window::{BufferLimits, BufferStats, Inputs, WindowBuffer};

mod background;

/// A group of rules evaluated together. See the [module docs](self).
#[derive(Debug)]
pub struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
    /// The partial aggregates of the pane-by-pane rules, one store per
    /// distinct shape; empty while an aggregation in the background holds
    /// them (see [`background`]): take them back with
    /// [`RuleGroup::stores_back`] before reading them.
    stores: Vec<PaneStore>,
    /// The aggregation running in the background, if any.
    aggregating: Option<background::Done>,
    /// Whether full panes are aggregated in the background (see
    /// [`background`]) rather than before `push` returns.
    in_background: bool,
    /// How many stores there are, and the bytes they held when last seen.
    store_count: usize,
    store_bytes: usize,
    inputs: Inputs,
    /// The tables some rule aggregates pane by pane.
    pane_inputs: SignalSet,
    pending: Pending,
    every: i64,
    reach: i64,
    last_eval: Option<UnixNanos>,
    /// Whether the window of the last evaluation held data.
    last_held_data: bool,
    /// How many threads the rules' work may spread over, and the fewest
    /// rules worth a thread.
    threads: usize,
    rules_per_thread: usize,
}

/// The fewest rules worth a thread of their own.
const RULES_PER_THREAD: usize = 8;

/// Runs `work` on each of `parts` on the rules' worker threads (rayon's
/// pool: they live as long as the process, so no thread is made per call,
/// nor an allocator heap per thread), and returns what they gave in order.
/// On a multi-threaded runtime the calling worker is handed back to it
/// meanwhile.
fn on_threads<P: Send, T: Send>(parts: Vec<P>, work: impl Fn(P) -> T + Sync) -> Vec<T> {
    use rayon::iter::{IntoParallelIterator, ParallelIterator};
    let run = || parts.into_par_iter().map(&work).collect();
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// Runs `future` to completion on this thread, in the thread's own
/// runtime (made once per thread): a rule's plans run over rows in memory
/// and never wait on anything.
fn block_here<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().build().ok();
    }
    RUNTIME.with(|runtime| match runtime {
        Some(runtime) => runtime.block_on(future),
        None => futures::executor::block_on(future),
    })
}

/// The tables `rules` read, those whose rows a buffer keeps (read by a rule
/// that rescans its window) and those aggregated pane by pane.
fn tables_of(rules: &[Rule]) -> (SignalSet, SignalSet, SignalSet) {
    let (mut read, mut keep, mut panes) = (SignalSet::NONE, SignalSet::NONE, SignalSet::NONE);
    for rule in rules {
        read = read.union(rule.inputs());
        match rule.pane_input() {
            Some(signal) => panes = panes.union(SignalSet::only(signal)),
            None => keep = keep.union(rule.inputs()),
        }
    }
    (read, keep, panes)
}

/// The next multiple of `every` after `last` (or the latest one the
/// watermark allows, first) whose window, ending `offset` before it, is
/// complete: the watermark has passed the window's end, which the window
/// includes.
fn next_due(
    watermark: UnixNanos,
    last: Option<UnixNanos>,
    every: i64,
    offset: i64,
) -> Option<UnixNanos> {
    let every = every.max(1);
    let next = match last {
        Some(last) => last.saturating_add(every),
        None => multiple_before(watermark.saturating_add(offset), every),
    };
    (next.saturating_sub(offset) < watermark).then_some(next)
}

/// Hands the rows of `pane` to each of `stores` that aggregates its table.
async fn absorb_all(stores: &mut [PaneStore], pane: (Signal, UnixNanos), rows: &[RecordBatch]) {
    for store in stores {
        if store.input() == pane.0 {
            store.absorb(pane.1, rows.to_vec()).await;
        }
    }
}

/// Evaluates each of `rules` at `t` over `buffers` and `stores`, in order.
async fn evaluate_all(
    rules: &mut [Rule],
    t: UnixNanos,
    buffers: &[WindowBuffer],
    stores: &[PaneStore],
) -> Vec<GroupEvaluation> {
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        out.push(GroupEvaluation {
            rule: rule.config().name.clone(),
            result: rule.evaluate(t, buffers, stores).await,
        });
    }
    out
}

/// Settles `store`'s panes before `t` and makes the final rows of
/// `windows` for the evaluation at `t`.
async fn prepare_store(store: &mut PaneStore, t: UnixNanos, windows: &[Window]) {
    store.settle(t).await;
    store.prepare(windows).await;
}

/// Points each pane-by-pane rule of `rules` at a store that serves it (see
/// [`crate::shape`]): one already linked, else one of `old` (it keeps its
/// partial aggregates), else a new one, planned for all the rules of its
/// shape no store serves, with every aggregate they need. Returns the
/// stores and the indices of the new ones.
fn link_stores(rules: &mut [Rule], mut old: Vec<PaneStore>) -> (Vec<PaneStore>, Vec<usize>) {
    let mut stores: Vec<PaneStore> = Vec::new();
    let mut unserved = Vec::new();
    for (i, rule) in rules.iter_mut().enumerate() {
        if rule.pane_shape().is_none() {
            rule.use_store(None);
            continue;
        }
        let linked = stores
            .iter()
            .enumerate()
            .find_map(|(s, store)| Some((s, rule.served_by(store)?)));
        let kept = || {
            let (o, columns) = old
                .iter()
                .enumerate()
                .find_map(|(o, store)| Some((o, rule.served_by(store)?)))?;
            stores.push(old.swap_remove(o));
            Some((stores.len() - 1, columns))
        };
        match linked.or_else(kept) {
            Some(link) => rule.use_store(Some(link)),
            None => unserved.push(i),
        }
    }
    let mut fresh = Vec::new();
    while let Some(&first) = unserved.first() {
        let key = rules[first].pane_shape().map(|s| s.key().to_string());
        let (same, rest): (Vec<usize>, Vec<usize>) = unserved
            .iter()
            .partition(|&&i| rules[i].pane_shape().map(PaneShape::key) == key.as_deref());
        unserved = rest;
        let shapes: Vec<&PaneShape> = same.iter().filter_map(|&i| rules[i].pane_shape()).collect();
        let mut alone = same.clone();
        match shape::plan_shared(&shapes) {
            Ok(store) => {
                stores.push(store);
                fresh.push(stores.len() - 1);
                alone.retain(|&i| {
                    let columns = stores.last().and_then(|s| rules[i].served_by(s));
                    let served = columns.is_some();
                    rules[i].use_store(columns.map(|c| (stores.len() - 1, c)));
                    !served
                });
            }
            Err(e) => tracing::debug!(
                error = %e.strip_backtrace(),
                "rules of one shape could not share an aggregation; each gets its own"
            ),
        }
        // What the shared plan does not serve gets a store of its own.
        for i in alone {
            let Some(store) = rules[i].pane_shape().map(shape::plan_own) else {
                continue;
            };
            let planned = store
                .map_err(|e| e.strip_backtrace().to_string())
                .and_then(|store| match rules[i].served_by(&store) {
                    Some(columns) => Ok((store, columns)),
                    None => Err("its final rows lack a column of the query's".to_string()),
                });
            match planned {
                Ok((store, columns)) => {
                    stores.push(store);
                    fresh.push(stores.len() - 1);
                    rules[i].use_store(Some((stores.len() - 1, columns)));
                }
                Err(error) => {
                    tracing::error!(
                        rule = %rules[i].config().name,
                        %error,
                        "the rule's aggregation could not be planned; its evaluations fail"
                    );
                    rules[i].use_store(None);
                }
            }
        }
    }
    for store in &mut stores {
        store.reach = 0;
    }
    for rule in rules.iter() {
        if let Some(store) = rule.store().and_then(|i| stores.get_mut(i)) {
            let reach =
                nanos(rule.config().window).saturating_add(nanos(rule.config().query_offset));
            store.reach = store.reach.max(reach);
        }
    }
    (stores, fresh)
}

/// What a reload did to each rule of a group, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Rules whose definition is unchanged: they kept everything (alert
    /// state, partial aggregates, buffered rows).
    pub kept: Vec<String>,
    /// Rules whose definition changed: they start again, without state.
    pub changed: Vec<String>,
    /// Rules that are new.
    pub added: Vec<String>,
    /// Rules that are gone, with their state.
    pub removed: Vec<String>,
}

/// The evaluation of one rule of a group.
#[derive(Debug)]
pub struct GroupEvaluation {
    /// The rule's name.
    pub rule: String,
    /// What it produced, or why it failed.
    pub result: Result<Evaluation, EvalError>,
}

impl RuleGroup {
    /// Validates the rules and builds the group. The first rule sets the
    /// group's `every`, `allowed_lateness` and buffer limits; a rule that
    /// differs is an error.
    pub fn new(
        name: impl Into<String>,
        configs: Vec<RuleConfig>,
        settings: &AlertSettings,
    ) -> Result<RuleGroup, RuleError> {
        let mut group = RuleGroup::unlinked(name.into(), configs, settings)?;
        let (stores, _) = link_stores(&mut group.rules, Vec::new());
        group.set_stores(stores);
        Ok(group)
    }

    /// [`RuleGroup::new`] without stores: a reload links the rules to the
    /// stores it keeps itself.
    fn unlinked(
        name: String,
        configs: Vec<RuleConfig>,
        settings: &AlertSettings,
    ) -> Result<RuleGroup, RuleError> {
        let Some(first) = configs.first() else {
            return Err(RuleError::Field {
                rule: name,
                field: "rules".into(),
                message: "is empty; a rule group holds at least one rule".into(),
            });
        };
        let (every, lateness, limits): (Duration, Duration, BufferLimits) =
            (first.every, first.allowed_lateness, first.buffer_limits);
        let mut rules = Vec::with_capacity(configs.len());
        let mut reach = 0i64;
        for config in configs {
            let differs = |field: &str, theirs: String, ours: String| RuleError::Field {
                rule: config.name.clone(),
                field: field.into(),
                message: format!(
                    "is {theirs} but the other rules of group `{name}` have {ours}; rules of a \
                     group share it: set it once on the group"
                ),
            };
            if config.every != every {
                return Err(differs(
                    "every",
                    format!("{:?}", config.every),
                    format!("{every:?}"),
                ));
            }
            if config.allowed_lateness != lateness {
                return Err(differs(
                    "allowed_lateness",
                    format!("{:?}", config.allowed_lateness),
                    format!("{lateness:?}"),
                ));
            }
            if config.buffer_limits != limits {
                return Err(differs(
                    "buffer_limits",
                    format!("{:?}", config.buffer_limits),
                    format!("{limits:?}"),
                ));
            }
            if let Some(other) = rules
                .iter()
                .find(|r: &&Rule| r.config().name == config.name)
            {
                return Err(RuleError::Field {
                    rule: other.config().name.clone(),
                    field: "name".into(),
                    message: format!(
                        "is used twice in group `{name}`; give each rule its own name"
                    ),
                });
            }
            reach = reach.max(nanos(config.window).saturating_add(nanos(config.query_offset)));
            rules.push(Rule::new(config, settings)?);
        }
        let (inputs, keep, pane_inputs) = tables_of(&rules);
        Ok(RuleGroup {
            name,
            rules,
            store_count: 0,
            store_bytes: 0,
            stores: Vec::new(),
            aggregating: None,
            in_background: false,
            inputs: Inputs::new(inputs, keep, lateness, limits),
            pane_inputs,
            pending: Pending::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            rules_per_thread: RULES_PER_THREAD,
            every: nanos(every),
            reach,
            last_eval: None,
            last_held_data: false,
        })
    }

    /// Takes new definitions for the group's rules (a config reload). Every
    /// rule whose definition is unchanged ([`crate::RuleId`]) keeps running
    /// as it was, with its alert state, partial aggregates and rows; removed
    /// ones are dropped; nothing changes if a definition is invalid.
    ///
    /// Changed and new rules start without alert state, over the data the
    /// group still holds: the partial aggregates of a rule that runs the
    /// same aggregation (a changed threshold keeps its history), or else
    /// the rows a buffer holds, or else the rows gathered for the panes in
    /// progress; then every row from now on. When that does
    /// not reach back a whole window, the rule says from when its windows
    /// are whole ([`Rule::complete_from`], in its status).
    ///
    /// A new `every` or `allowed_lateness` changes every rule's identity:
    /// the group starts again as a whole, and its rules' windows are whole
    /// again only once they have seen a window of new data.
    pub async fn reload(
        &mut self,
        configs: Vec<RuleConfig>,
        settings: &AlertSettings,
    ) -> Result<ReloadReport, RuleError> {
        let mut new = RuleGroup::unlinked(self.name.clone(), configs, settings)?;
        let mut report = ReloadReport::default();
        let mut old: Vec<Rule> = std::mem::take(&mut self.rules);
        let restart = new.every != self.every
            || new.inputs.allowed_lateness() != self.inputs.allowed_lateness();
        let mut rules = Vec::with_capacity(new.rules.len());
        let mut fresh_rules = Vec::new();
        for rule in std::mem::take(&mut new.rules) {
            let name = rule.config().name.clone();
            match old.iter().position(|o| o.id() == rule.id()) {
                Some(i) if !restart => {
                    report.kept.push(name);
                    rules.push(old.swap_remove(i));
                }
                _ => {
                    if old.iter().any(|o| o.config().name == name) {
                        report.changed.push(name.clone());
                    } else {
                        report.added.push(name.clone());
                    }
                    old.retain(|o| o.config().name != name);
                    fresh_rules.push(rules.len());
                    rules.push(rule);
                }
            }
        }
        report.removed = old.into_iter().map(|r| r.config().name.clone()).collect();
        if restart {
            let newest = self
                .inputs
                .buffers()
                .iter()
                .filter_map(WindowBuffer::max_event_time)
                .max();
            for rule in &mut rules {
                rule.missing_through(newest);
            }
            let (stores, _) = link_stores(&mut rules, Vec::new());
            new.rules = rules;
            new.set_stores(stores);
            new.in_background = self.in_background;
            *self = new;
            return Ok(report);
        }
        let (lateness, limits) = (new.inputs.allowed_lateness(), new.inputs.limits());
        let (signals, keep, panes) = tables_of(&rules);
        // What each table's buffer held before the reload: a new
        // aggregation starts from its rows.
        let held: Vec<(Signal, bool)> = self
            .inputs
            .buffers()
            .iter()
            .map(|b| (b.signal(), b.keeps_rows()))
            .collect();
        self.inputs.reshape(signals, keep, lateness, limits);
        self.pending.retain(panes);
        self.pane_inputs = panes;
        self.reach = new.reach;
        self.stores_back().await;
        let (stores, fresh) = link_stores(&mut rules, std::mem::take(&mut self.stores));
        self.set_stores(stores);
        // A new aggregation over a table whose buffer holds rows starts from
        // those rows, which include the ones gathered for panes: those go to
        // every other store first, so that no store counts a row twice.
        let from_buffer: Vec<usize> = fresh
            .iter()
            .copied()
            .filter(|&i| {
                let input = self.stores[i].input();
                held.iter().any(|&(s, keep)| s == input && keep)
            })
            .collect();
        if !from_buffer.is_empty() {
            for pane in self.pending.before(UnixNanos::MAX) {
                let rows = self.pending.take(pane);
                for (i, store) in self.stores.iter_mut().enumerate() {
                    if store.input() == pane.0 && !from_buffer.contains(&i) {
                        store.absorb(pane.1, rows.clone()).await;
                    }
                }
            }
        }
        for i in fresh {
            let input = self.stores[i].input();
            let Some(buffer) = self.inputs.buffer(input) else {
                continue;
            };
            let missing = if from_buffer.contains(&i) {
                let rows = buffer.snapshot(UnixNanos::MIN, UnixNanos::MAX);
                let time = buffer.time_column();
                self.stores[i].absorb_any(&rows, time, self.every).await;
                buffer.held_after()
            } else {
                // It takes the rows still gathered for panes and those to
                // come; those already aggregated are gone for it.
                self.pending
                    .taken_through(input)
                    .map(|start| start.saturating_add(self.every))
            };
            self.stores[i].missing_through(missing);
        }
        for i in fresh_rules {
            let missing = match rules[i].store() {
                Some(store) => self.stores[store].held_after(),
                None => rules[i]
                    .inputs()
                    .iter()
                    .filter_map(|s| self.inputs.buffer(s).and_then(WindowBuffer::held_after))
                    .max(),
            };
            rules[i].missing_through(missing);
        }
        self.rules = rules;
        Ok(report)
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules, to restore their state.
    pub fn rules_mut(&mut self) -> &mut [Rule] {
        &mut self.rules
    }

    /// The tables the rules read.
    pub fn inputs(&self) -> SignalSet {
        self.inputs.buffers().iter().map(|b| b.signal()).collect()
    }

    /// The counters of the shared buffers.
    pub fn buffer_stats(&self) -> Vec<(Signal, BufferStats)> {
        self.inputs.stats()
    }

    /// The rows, and their bytes, gathered for panes and not aggregated
    /// yet.
    pub fn pending_size(&self) -> (usize, usize) {
        self.pending.size()
    }

    /// Takes a batch of `signal`'s table, once for all the rules; a table no
    /// rule reads is ignored (0 rows taken).
    pub async fn push(
        &mut self,
        signal: Signal,
        batch: &RecordBatch,
    ) -> Result<usize, WindowError> {
        self.push_bounded(signal, batch, None).await
    }

    /// [`Self::push`], dropping rows stamped after `not_after` (see
    /// [`WindowBuffer::push_bounded`]).
    pub async fn push_bounded(
        &mut self,
        signal: Signal,
        batch: &RecordBatch,
        not_after: Option<UnixNanos>,
    ) -> Result<usize, WindowError> {
        let Some((kept, time_column)) = self.inputs.take(signal, batch, not_after)? else {
            return Ok(0);
        };
        let rows = kept.num_rows();
        if self.pane_inputs.contains(signal) {
            let full = self.pending.add(signal, &kept, time_column, self.every);
            self.flush(full, self.in_background).await;
        }
        Ok(rows)
    }

    /// Aggregates gathered rows once a pane holds `rows` of them.
    #[cfg(test)]
    pub(crate) fn flush_at(&mut self, rows: usize) {
        self.pending.flush_at(rows);
    }

    /// Spreads the rules over threads from now on (tests).
    #[cfg(test)]
    pub(crate) fn spread_over(&mut self, threads: usize) {
        self.threads = threads;
        self.rules_per_thread = 1;
    }

    /// How many threads the rules' work is spread over: one per
    /// [`RULES_PER_THREAD`] rules, at most one per core.
    fn parts(&self) -> usize {
        (self.rules.len() / self.rules_per_thread.max(1)).clamp(1, self.threads.max(1))
    }

    /// Aggregates full panes in the background from now on (see
    /// [`background`]): a rules processor's batches are then acknowledged
    /// without waiting for the aggregation their rows complete.
    pub fn aggregate_in_background(&mut self, on: bool) {
        self.in_background = on;
    }

    /// Waits for the aggregation running in the background, if any, and
    /// takes the stores back.
    async fn stores_back(&mut self) {
        let Some(done) = self.aggregating.take() else {
            return;
        };
        match done.await {
            Ok((stores, bytes)) => {
                self.stores = stores;
                self.store_bytes = bytes;
            }
            Err(_) => {
                // Unreachable: the job sends the stores back even after a
                // panic. Were they lost, the rules would say so at each
                // evaluation (no store).
                tracing::error!(group = %self.name, "the rules' partial aggregates were lost (a bug in Weir)");
            }
        }
    }

    /// The group's stores from now on.
    fn set_stores(&mut self, stores: Vec<PaneStore>) {
        self.store_count = stores.len();
        self.stores = stores;
    }

    /// Aggregates the rows gathered for `panes` into every store of their
    /// table, once per store, the stores spread over the threads: in the
    /// background if `in_background` (see [`background`]), else before it
    /// returns.
    async fn flush(&mut self, panes: Vec<(Signal, UnixNanos)>, in_background: bool) {
        if panes.is_empty() {
            return;
        }
        self.stores_back().await;
        let work: Vec<background::PaneRows> = panes
            .into_iter()
            .map(|pane| (pane, self.pending.take(pane)))
            .collect();
        if in_background && !self.stores.is_empty() {
            let stores = std::mem::take(&mut self.stores);
            self.aggregating = Some(background::spawn(stores, work, self.threads));
            return;
        }
        for (pane, rows) in work {
            if self.stores.len() > 1 && self.threads > 1 {
                background::absorb_spread(&mut self.stores, pane, &rows, self.threads);
            } else {
                // One store: here, on this task (no thread to hand it to).
                absorb_all(&mut self.stores, pane, &rows).await;
            }
        }
        self.store_bytes = self.stores.iter().map(PaneStore::bytes).sum();
    }

    /// The bytes of the partial aggregates the group keeps (as of the last
    /// aggregation or evaluation).
    pub fn pane_bytes(&self) -> usize {
        if self.aggregating.is_some() {
            self.store_bytes
        } else {
            self.stores.iter().map(PaneStore::bytes).sum()
        }
    }

    /// How many distinct aggregations the pane-by-pane rules run (each
    /// aggregates the rows once, for all the rules that share it).
    pub fn aggregations(&self) -> usize {
        self.store_count
    }

    /// Moves the watermark of every input to at least `to` (idle inputs).
    pub fn advance_watermark(&mut self, to: UnixNanos) {
        self.inputs.advance_watermark(to);
    }

    /// The least watermark of the inputs; `None` until each has one.
    pub fn watermark(&self) -> Option<UnixNanos> {
        self.inputs.watermark()
    }

    /// The greatest watermark of the inputs; `None` while none has one.
    pub fn newest_watermark(&self) -> Option<UnixNanos> {
        self.inputs.newest_watermark()
    }

    /// The time of the last evaluation, if any.
    pub fn last_evaluation(&self) -> Option<UnixNanos> {
        self.last_eval
    }

    /// Resumes after a restart: the next evaluation is the one after `t`.
    pub fn resume_after(&mut self, t: UnixNanos) {
        self.last_eval = Some(self.last_eval.map_or(t, |l| l.max(t)));
    }

    /// The smallest `query_offset` of the rules: that rule needs the most
    /// data.
    fn least_offset(&self) -> i64 {
        self.rules
            .iter()
            .map(|r| nanos(r.config().query_offset))
            .min()
            .unwrap_or(0)
    }

    /// The next evaluation time at which every rule's window is complete.
    pub fn next_due(&self) -> Option<UnixNanos> {
        let watermark = self.watermark()?;
        let offset = self.least_offset();
        next_due(watermark, self.last_eval, self.every, offset)
    }

    /// Evaluates every due time in turn, oldest first, skipping the runs of
    /// empty windows (see [`RuleGroup::skip_empty_windows`]).
    pub async fn evaluate_due(&mut self) -> Vec<(UnixNanos, Vec<GroupEvaluation>)> {
        let mut out = Vec::new();
        while let Some(t) = self.next_due() {
            out.push((t, self.evaluate(t).await));
            self.skip_empty_windows();
        }
        out
    }

    /// The earliest event time after `t` of the data the group holds:
    /// buffered rows, partial aggregates, rows gathered for panes.
    fn earliest_after(&self, t: UnixNanos) -> Option<UnixNanos> {
        let buffers = self
            .inputs
            .buffers()
            .iter()
            .filter_map(|b| b.earliest_after(t));
        let stores = self
            .stores
            .iter()
            .filter_map(|s| s.earliest_after(t, self.every));
        let pending = self.pending.earliest_after(t, self.every);
        buffers.chain(stores).chain(pending).min()
    }

    /// After an evaluation whose window held no data: when the windows of
    /// the next due times hold none either (a gap in the data, or a record
    /// stamped long before the others), evaluating each would only repeat
    /// the empty result, and a gap of a day at `every = "10s"` would hold
    /// the group up for thousands of evaluations. So the group skips to the
    /// last due time before the next data (or the watermark) and evaluates
    /// that one, so that `for` clocks and resolutions move on to it, then
    /// the window that holds the data. Returns how many due times it
    /// skipped.
    pub fn skip_empty_windows(&mut self) -> u64 {
        let (Some(last), Some(watermark)) = (self.last_eval, self.watermark()) else {
            return 0;
        };
        let every = self.every.max(1);
        let offset = self.least_offset();
        // The last window held data (the next, empty or not, is evaluated),
        // or the next one does: evaluate on.
        if self.last_held_data
            || self
                .earliest_after(last.saturating_add(every).saturating_sub(self.reach))
                .is_some_and(|d| d <= last.saturating_add(every))
        {
            return 0;
        }
        // The first due time whose window holds the next data, and the
        // latest whose window the watermark has completed.
        let data = self
            .earliest_after(last)
            .map_or(UnixNanos::MAX, |d| multiple_from(d, every));
        let complete = multiple_before(watermark.saturating_add(offset), every);
        let target = data.saturating_sub(every).min(complete);
        // Evaluate `target` (empty) next: skip the ones before it.
        let resume = target.saturating_sub(every);
        if resume <= last {
            return 0;
        }
        self.last_eval = Some(resume);
        u64::try_from((resume - last) / every).unwrap_or(0)
    }

    /// Evaluates every rule at `t`, in order, then evicts the rows no later
    /// evaluation needs.
    pub async fn evaluate(&mut self, t: UnixNanos) -> Vec<GroupEvaluation> {
        let before = self.pending.before(t);
        self.flush(before, false).await;
        self.stores_back().await;
        // Each store settles its panes and makes the final rows of every
        // window its rules read, once for all of them.
        let mut windows: Vec<Vec<Window>> = vec![Vec::new(); self.stores.len()];
        for rule in &self.rules {
            if let Some(needed) = rule.store().and_then(|i| windows.get_mut(i)) {
                let window = rule.window_at(t);
                if !needed.contains(&window) {
                    needed.push(window);
                }
            }
        }
        let work: Vec<_> = self.stores.iter_mut().zip(windows).collect();
        if work.len() > 1 && self.threads > 1 {
            on_threads(work, |(store, windows)| {
                block_here(prepare_store(store, t, &windows));
            });
        } else {
            for (store, windows) in work {
                prepare_store(store, t, &windows).await;
            }
        }
        let parts = self.parts();
        let buffers = self.inputs.buffers();
        let stores = &self.stores;
        let out = if parts > 1 {
            let chunk = self.rules.len().div_ceil(parts);
            let done = on_threads(self.rules.chunks_mut(chunk).collect(), |part| {
                block_here(evaluate_all(part, t, buffers, stores))
            });
            done.into_iter().flatten().collect()
        } else {
            evaluate_all(&mut self.rules, t, buffers, stores).await
        };
        self.last_eval = Some(t);
        self.last_held_data = self
            .earliest_after(t.saturating_sub(self.reach))
            .is_some_and(|d| d <= t);
        // A store's next window is `(t + every - reach, ...]`: its panes
        // start at or after `t + every - reach`.
        for store in &mut self.stores {
            store.clear_finals();
            store.evict_before(t.saturating_add(self.every).saturating_sub(store.reach));
        }
        // Pane-by-pane rules need only the rows of panes still to come.
        let reach = self
            .rules
            .iter()
            .map(Rule::reach)
            .max()
            .unwrap_or(self.reach);
        // The next window is `(t + every - reach, ...]`.
        let horizon = t.saturating_add(self.every).saturating_sub(reach);
        self.inputs.evict_before(horizon.saturating_add(1));
        out
    }
}

#[cfg(test)]
mod tests;
