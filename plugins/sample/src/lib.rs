//! `sample`: head sampling consistent with OpenTelemetry's TraceState
//! probability sampling (OTEP 235), so that Weir, SDKs and Collectors
//! keep the same traces; and tail sampling of whole traces by policies,
//! with memory bounded in bytes.
//!
//! ```toml
//! [processors.sample]
//! type = "wasm"
//! inputs = ["otlp"]
//! plugin = "sample"     # embedded in Weir
//!
//! [processors.sample.config]
//! head = { sampling_percentage = 25 }
//! ```
//!
//! How a batch goes through [`Sample`]'s `process`:
//!
//! - **head** ([`head`]): for spans, `trace_id` and `trace_state` are read
//!   once; each span's randomness (`rv`, else the trace id's last 7 bytes)
//!   is compared with the effective threshold ([`threshold`]); kept spans
//!   whose threshold changed get `ot=th:...` written into their tracestate
//!   ([`tracestate`]); the rest are dropped. Log records likewise, by
//!   their trace id, with the threshold in attribute `sampling.threshold`.
//! - **tail** ([`tail`]), spans only, after head: spans of decided traces
//!   go their trace's way ([`cache`]); the others are handed to the host's
//!   hold under their trace id ([`holder`], [`host`]) and their trace's
//!   fixed-size summary is updated; `tick` decides traces `decision_wait`
//!   after their last span by the [`policy`]s and releases or discards
//!   them; above `max_memory` the oldest are decided early.
//!
//! The modules: [`config`] (what the user writes, checked into a
//! [`Plan`]; its durations and sizes are read by
//! [`weir_plugin::config`]), [`columns`], [`counters`].

pub mod cache;
pub mod columns;
pub mod config;
pub mod counters;
pub mod head;
pub mod holder;
pub mod host;
pub mod policy;
pub mod tail;
pub mod threshold;
pub mod tracestate;

#[cfg(test)]
mod tests;

use std::time::Duration;

use weir_plugin::{AttributeSet, Batch, Error, Plugin, Signal, export_plugin};

pub use columns::TailColumns;
pub use config::{ConfigError, HeadPlan, Plan, SampleConfig, TailPlan};
pub use holder::{Held, Holder};
pub use tail::TailSampler;

/// The log record attribute carrying the threshold (the Collector's).
pub const LOG_THRESHOLD: &str = "sampling.threshold";

/// The log record attribute carrying explicit randomness (the
/// Collector's).
pub const LOG_RANDOMNESS: &str = "sampling.randomness";

/// The plugin: head sampling, tail sampling, or both.
#[derive(Debug)]
pub struct Sample {
    head: Option<HeadPlan>,
    tail: Option<TailSampler>,
}

impl Sample {
    /// The plugin for a checked [`Plan`].
    pub fn new(plan: Plan) -> Sample {
        Sample {
            head: plan.head,
            tail: plan.tail.map(TailSampler::new),
        }
    }

    /// The tail sampler, if configured.
    pub fn tail(&self) -> Option<&TailSampler> {
        self.tail.as_ref()
    }

    /// The tail sampler, if configured.
    pub fn tail_mut(&mut self) -> Option<&mut TailSampler> {
        self.tail.as_mut()
    }

    /// Runs one batch through head sampling, then (spans) tail sampling
    /// on the host's hold.
    fn run(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match batch.signal() {
            Signal::Spans => {
                if let Some(plan) = &self.head {
                    head_spans(plan, batch)?;
                }
                if let Some(tail) = &mut self.tail
                    && batch.num_rows() > 0
                {
                    let cols = TailColumns::read(batch, &tail.plan().needs)?;
                    let result = tail.process(&cols, &mut host::HostHolder::new(batch));
                    counters::tail(&tail.take_stats(), &policy_names(tail));
                    result?;
                }
            }
            Signal::Logs => {
                if let Some(plan) = &self.head {
                    head_logs(plan, batch)?;
                }
            }
            Signal::Metrics => {}
        }
        Ok(())
    }
}

/// Head sampling of a batch of spans, in place.
fn head_spans(plan: &HeadPlan, batch: &mut Batch<'_>) -> Result<(), Error> {
    let v = head::spans(plan, &batch.text("trace_id")?, &batch.text("trace_state")?);
    if let Some(states) = v.trace_state.clone() {
        batch.set_text("trace_state", states)?;
    }
    if v.drops_any() {
        batch.drop_rows(&v.drop)?;
    }
    counters::head("spans", &v.tally);
    Ok(())
}

/// Head sampling of a batch of log records, in place.
fn head_logs(plan: &HeadPlan, batch: &mut Batch<'_>) -> Result<(), Error> {
    let v = head::logs(plan, &columns::read_logs(batch, plan)?);
    if let Some(values) = &v.threshold_attribute {
        batch.set_attribute(AttributeSet::Record, LOG_THRESHOLD, values)?;
    }
    if let Some(values) = &v.randomness_attribute {
        batch.set_attribute(AttributeSet::Record, LOG_RANDOMNESS, values)?;
    }
    if v.drops_any() {
        batch.drop_rows(&v.drop)?;
    }
    counters::head("logs", &v.tally);
    Ok(())
}

impl Plugin for Sample {
    fn init(config: &str) -> Result<Self, Error> {
        Ok(Sample::new(Plan::from_json(config)?))
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        self.run(batch)
    }

    /// Every span of a trace must meet the same instance (and its hold)
    /// for the trace to be decided whole.
    fn partition_by(&self) -> Option<&str> {
        self.tail.as_ref().map(|_| host::PARTITION_BY)
    }

    fn tick_every(&self) -> Option<Duration> {
        self.tail
            .as_ref()
            .map(|t| Duration::from_nanos(t.plan().check_interval_ns))
    }

    fn tick(&mut self, now: u64) -> Result<(), Error> {
        let Some(tail) = &mut self.tail else {
            return Ok(());
        };
        let result = tail.tick(now, &mut host::HostHolder::without_batch());
        counters::tail(&tail.take_stats(), &policy_names(tail));
        result
    }
}

fn policy_names(tail: &TailSampler) -> Vec<String> {
    tail.plan()
        .policies
        .iter()
        .map(|p| p.name.clone())
        .collect()
}

export_plugin!(Sample);
