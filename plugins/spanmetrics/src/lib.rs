//! `spanmetrics`: RED metrics from spans, a recording rule as a plugin.
//! Every span adds one to a call counter and its duration to a histogram
//! of its series (service, span name, kind, status code and the
//! configured dimensions); every `interval` the series are emitted as
//! OTLP metrics with the names and attributes of the OpenTelemetry
//! Collector's `spanmetrics` connector, so dashboards made for it work.
//!
//! ```toml
//! [processors.spanmetrics]
//! type = "wasm"
//! inputs = ["otlp"]
//! # cargo build --release --target wasm32-wasip2 -p spanmetrics (in plugins/)
//! path = "spanmetrics.wasm"
//!
//! [processors.spanmetrics.config]
//! dimensions = [{ name = "http.request.method", default = "GET" },
//!               { name = "http.response.status_code" }]
//! interval = "15s"
//! ```
//!
//! How spans go through: [`SpanMetrics`]'s `process` reads the columns it
//! needs once per batch ([`SpanColumns`]); the [`Aggregator`] writes each
//! span's series key into a reused buffer ([`key`]) and finds its series
//! in a [`SeriesTable`] (a hash table of indices into arrays of counts;
//! past `max_series`, the overflow series). The spans go on unchanged
//! (or are dropped, with `drop_spans`). At each `tick`, [`export`] turns
//! the series into OTLP/JSON for the host's `emit`, a thousand series per
//! request.
//!
//! Every instance is ticked, but one emits (the first to tick claims the
//! role through the host's `state`); the others hand their counts to it
//! there ([`handoff`], [`wire`]).
//!
//! The modules: [`config`] (what the user writes, checked into a
//! [`Plan`]; its durations are read by [`weir_plugin::config`]), [`columns`],
//! [`key`], [`series`], [`aggregate`], [`export`], [`handoff`], [`wire`],
//! [`counters`] (the plugin's own metrics).

pub mod aggregate;
pub mod columns;
pub mod config;
pub mod counters;
pub mod export;
pub mod handoff;
pub mod key;
pub mod series;
pub mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use weir_plugin::services::{self, Level};
use weir_plugin::{Batch, Error, Plugin, Signal, export_plugin};

pub use aggregate::{Aggregator, BatchOutcome};
pub use columns::SpanColumns;
pub use config::{ConfigError, Plan, SpanMetricsConfig, Temporality};
pub use handoff::{HostStore, Store};
pub use series::SeriesTable;

use handoff::Handoff;

/// The plugin: the series counted so far and how to emit them.
#[derive(Debug)]
pub struct SpanMetrics<S: Store = HostStore> {
    aggregator: Aggregator,
    /// What is emitted at each tick; counted into directly once this
    /// instance has ticked.
    master: SeriesTable,
    /// Counts of an instance that has not ticked, handed on through
    /// `state` after each batch.
    pending: SeriesTable,
    handoff: Handoff<S>,
    /// Whether this instance has been ticked: it is the emitter.
    ticked: bool,
    /// Where the current interval started: the last emission, or for the
    /// first one, one interval before the first export.
    interval_start: Option<u64>,
    /// Whether the last write to `state` failed (logged once per run of
    /// failures).
    handoff_failing: bool,
}

impl SpanMetrics<HostStore> {
    /// The plugin for the config's JSON text, handing counts on through
    /// the host's `state`.
    pub fn from_json(config: &str) -> Result<Self, ConfigError> {
        Ok(SpanMetrics::new(Plan::from_json(config)?, HostStore))
    }
}

impl<S: Store> SpanMetrics<S> {
    /// The plugin for a checked [`Plan`], sharing counts through `store`.
    pub fn new(plan: Plan, store: S) -> Self {
        let handoff = Handoff::join(store, plan.fingerprint());
        let aggregator = Aggregator::new(plan);
        SpanMetrics {
            master: aggregator.table(),
            pending: aggregator.table(),
            aggregator,
            handoff,
            ticked: false,
            interval_start: None,
            handoff_failing: false,
        }
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        self.aggregator.plan()
    }

    /// Counts one batch of spans; reports the plugin's counters.
    pub fn observe(&mut self, spans: &SpanColumns) -> BatchOutcome {
        let outcome = if self.ticked {
            self.aggregator.observe(spans, &mut self.master)
        } else {
            self.handoff.before_batch(&mut self.pending);
            let outcome = self.aggregator.observe(spans, &mut self.pending);
            if outcome.counted > 0 {
                self.write_pending();
            }
            outcome
        };
        counters::add(counters::OVERFLOW_SPANS, outcome.overflowed);
        counters::add(counters::SKIPPED_SPANS, outcome.skipped);
        outcome
    }

    fn write_pending(&mut self) {
        match self.handoff.after_batch(&self.pending) {
            Ok(()) => self.handoff_failing = false,
            Err(e) => {
                counters::add(counters::HANDOFF_FAILURES, 1);
                if !self.handoff_failing {
                    services::log(
                        Level::Warn,
                        &format!(
                            "spanmetrics: instance {} could not hand its counts to the \
                             emitting instance ({e:?}); they are kept and sent with the next \
                             batch. With many instances and series the plugin's state fills \
                             up: lower `instances` or `max_series`",
                            self.handoff.id()
                        ),
                    );
                }
                self.handoff_failing = true;
            }
        }
    }

    /// Emits the metrics at `now` (nanoseconds since the epoch) through
    /// `emit`, one OTLP/JSON request per [`export::CHUNK`] series; nothing
    /// when there is no series. Takes in the other instances' counts and
    /// drops expired series first. When `emit` fails the counts stay for
    /// the next call, except (with delta temporality) those of the
    /// requests that went out before the failure.
    pub fn flush(
        &mut self,
        now: u64,
        mut emit: impl FnMut(&str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.take_in();
        let plan = self.aggregator.plan();
        if let Some(expiration) = plan.expiration {
            let cutoff = now.saturating_sub(nanos(expiration));
            let (touched, seen) = (&self.master.touched, &self.master.seen);
            let keep: Vec<bool> = (0..self.master.len())
                .map(|i| touched[i] || seen[i] > cutoff)
                .collect();
            self.master.retain(|i| keep[i]);
        }
        let interval_start = *self
            .interval_start
            .get_or_insert_with(|| now.saturating_sub(nanos(plan.interval)));
        for start in &mut self.master.start {
            if *start == 0 {
                *start = interval_start;
            }
        }
        let delta = plan.temporality == Temporality::Delta;
        let times = export::Times {
            start: &self.master.start,
            delta_start: delta.then_some(interval_start),
            now,
        };
        let order = self.master.sorted();
        let mut json = String::new();
        for (n, chunk) in order.chunks(export::CHUNK).enumerate() {
            export::otlp_json(&mut json, plan, &self.master, chunk, times);
            if let Err(e) = emit(&json) {
                if delta {
                    let sent: Vec<bool> = {
                        let mut sent = vec![false; self.master.len()];
                        for &i in &order[..n * export::CHUNK] {
                            sent[i] = true;
                        }
                        sent
                    };
                    self.master.retain(|i| !sent[i]);
                }
                return Err(e);
            }
        }
        let m = &mut self.master;
        for i in 0..m.len() {
            if m.touched[i] {
                m.seen[i] = now;
                m.touched[i] = false;
            }
        }
        if delta {
            m.clear();
        }
        self.interval_start = Some(now);
        Ok(())
    }

    /// This instance's tick at `now`: when it is the emitter
    /// ([`Handoff::claim`]), a [`SpanMetrics::flush`] through `emit`;
    /// otherwise nothing (its counts are in `state` already).
    pub fn tick_with(
        &mut self,
        now: u64,
        emit: impl FnMut(&str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if !self.handoff.claim(now, nanos(self.plan().interval)) {
            return Ok(());
        }
        self.flush(now, emit)
    }

    /// Makes this instance the emitter, if it was not yet: adds its own
    /// pending counts to what it emits; then adds the other instances'.
    fn take_in(&mut self) {
        if !self.ticked {
            self.ticked = true;
            for i in 0..self.pending.len() {
                let slot = self.master.add(
                    self.pending.key(i),
                    self.pending.calls(i),
                    self.pending.sum(i),
                    self.pending.buckets(i),
                );
                if slot.overflowed {
                    counters::add(counters::OVERFLOW_SPANS, self.pending.calls(i));
                }
            }
            self.pending.clear();
        }
        let collected = self.handoff.collect(&mut self.master);
        counters::add(counters::OVERFLOW_SPANS, collected.overflowed);
    }

    /// The series this instance emits (for tests and benchmarks).
    pub fn series(&self) -> &SeriesTable {
        &self.master
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Plugin for SpanMetrics<HostStore> {
    fn init(config: &str) -> Result<Self, Error> {
        Ok(SpanMetrics::from_json(config)?)
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        if batch.signal() != Signal::Spans || batch.num_rows() == 0 {
            return Ok(());
        }
        let spans = SpanColumns::read(batch, self.plan())?;
        self.observe(&spans);
        if self.plan().drop_spans {
            batch.drop_rows(&vec![true; spans.len()])?;
        }
        Ok(())
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(self.plan().interval)
    }

    fn tick(&mut self, now: u64) -> Result<(), Error> {
        self.tick_with(now, |json| {
            services::emit(Signal::Metrics, json).map(|_| ())
        })
    }
}

export_plugin!(SpanMetrics);
