//! Weir's rules: SQL over event-time windows, recording rules, and alerts
//! with Prometheus' lifecycle.
//!
//! A rule is a DataFusion SQL query over the signal tables (`logs`, `spans`,
//! `metrics`, with weir-core's schemas) as they stand in a window of event
//! time. Rules run in a [`RuleGroup`] (a single rule as a group of one).
//! Data moves through a group's rules like this:
//!
//! ```text
//!  RecordBatch ──RuleGroup::push──▶ WindowBuffer (one per table the rules read;
//!                                    watermark, late rows counted, bounded)
//!  RuleGroup::next_due ──▶ t ──RuleGroup::evaluate(t)──▶ each rule: SQL over
//!        │                          (t - window - offset, t - offset]
//!        │                          rows: label columns + `value`
//!        ├─ recording rule ──▶ one gauge point per row ──▶ a `metrics` RecordBatch
//!        └─ alert rule ──▶ templating ──▶ AlertLifecycle (inactive → pending →
//!              firing → resolved) ──▶ AlertEvents: transitions + notifications
//!                 ──▶ `alerts` table rows, Alertmanager API v2 / webhook JSON
//!              (and the `ALERTS` series, as a `metrics` RecordBatch)
//! ```
//!
//! * [`rule`] holds what the user writes ([`RuleConfig`]) and what runs
//!   ([`Rule`]): validation, the query planned once, the alert lifecycle,
//!   state snapshots.
//! * [`group`] runs rules that share an interval over shared buffers
//!   ([`RuleGroup`]): the due times, the panes, the evaluations.
//! * [`window`] is the event-time buffer of one input table.
//! * [`query`] plans and runs the SQL and checks the shape of its result.
//! * [`template`] is the small `{{ $labels.x }}` / `{{ $value }}` syntax of
//!   alert labels and annotations.
//! * [`alert`] is the alert lifecycle, faithful to Prometheus'
//!   `rules/alerting.go`, and its serialisable state.
//! * [`record`] turns the rows of a recording rule into metric points.
//! * [`status`] is what the API shows of the rules (Prometheus'
//!   `/api/v1/rules` and `/api/v1/alerts`).
//! * [`metrics`] declares what the `rules` processor counts in `/metrics`.
//! * [`output`] encodes alert events: rows of the store's `alerts` table,
//!   Alertmanager API v2 `postableAlerts` and the Alertmanager webhook
//!   payload (version 4).
//!
//! Time is event time throughout, in nanoseconds since the Unix epoch
//! ([`UnixNanos`]); the caller (the runtime, or `weir test`) decides when to
//! evaluate, usually by asking [`RuleGroup::next_due`] after each push.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use weir_rules::{AlertSettings, RuleConfig, RuleGroup};
//!
//! let config = RuleConfig {
//!     window: Duration::from_secs(300),
//!     every: Duration::from_secs(30),
//!     for_duration: Duration::from_secs(300),
//!     annotations: [(
//!         "summary".to_string(),
//!         "{{ $labels.service_name }}: {{ $value | printf \"%.1f\" }} % of spans fail".to_string(),
//!     )]
//!     .into(),
//!     ..RuleConfig::alert(
//!         "HighErrorRate",
//!         "SELECT service_name, 100.0 * avg(CASE WHEN status_code = 2 THEN 1 ELSE 0 END) AS value \
//!          FROM spans GROUP BY service_name HAVING avg(CASE WHEN status_code = 2 THEN 1 ELSE 0 END) > 0.05",
//!     )
//! };
//! let group = RuleGroup::new("errors", vec![config], &AlertSettings::default())?;
//! let rule = &group.rules()[0];
//! assert_eq!(rule.label_columns(), ["service_name"]);
//! assert!(rule.is_incremental(), "one aggregation over one table");
//! // The runtime then pushes `spans` batches (`group.push(..).await`) and evaluates
//! // each due time: `while let Some(t) = group.next_due() { group.evaluate(t).await; }`.
//! # Ok::<(), weir_rules::RuleError>(())
//! ```
//!
//! # Where Weir differs from Prometheus, and why
//!
//! * Evaluation times are the multiples of `every` since the epoch, in event
//!   time, rather than wall-clock ticks offset by a hash of the group: every
//!   instance and every `weir test` run then evaluate at the same times.
//! * Restored state is exact (`active_at` is kept as saved). Prometheus
//!   shifts `active_at` by the downtime and applies `for_grace_period`,
//!   because its clock is the wall clock; Weir's is the data's.
//! * A result row whose `value` is null is no sample; a null or empty label
//!   column is no label (Prometheus has neither nulls nor empty labels).
//! * `{{ $value }}` prints the shortest exact decimal (`1000000`, not Go's
//!   `1e+06`); `{{ $value | printf "%.2f" }}` rounds.
//! * Alert rules record Prometheus' `ALERTS` series; `ALERTS_FOR_STATE` is
//!   replaced by the serialisable [`RulesState`].

// In tests a panic is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod alert;
pub mod api;
mod config;
pub mod error;
pub mod group;
mod incremental;
pub mod metrics;
pub mod output;
mod plan;
pub mod processor;
pub mod query;
pub mod record;
pub mod rule;
mod shape;
pub mod status;
pub mod template;
pub mod testing;
pub mod window;

mod time;

pub use alert::{Alert, AlertEvent, AlertLifecycle, AlertSettings, AlertState, EventState};
pub use config::{RuleSpec, RulesConfig};
pub use error::{EvalError, RuleError, WindowError};
pub use group::{GroupEvaluation, ReloadReport, RuleGroup};
pub use processor::{Reloads, RulesProcessor};
pub use rule::{Evaluation, LastRun, Rule, RuleConfig, RuleId, RuleKind, RuleSnapshot, RulesState};
pub use status::{GroupStatus, RuleFilter, RulesStatus};
pub use time::{UnixNanos, rfc3339};
pub use window::{BufferLimits, BufferStats, WindowBuffer};
