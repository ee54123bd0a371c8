//! Weir's sinks: where telemetry leaves the engine.
//!
//! * [`blackhole`]: counts and discards (benchmarks, dry runs).
//! * [`file`]: OTLP/JSON lines, one export request per line (debugging,
//!   tests, hand-off to other tools).
//! * [`alerts`]: alert notifications to Alertmanager (API v2) and to
//!   webhooks (Alertmanager's webhook JSON).
//!
//! A sink drops each batch, and with it the batch's acknowledgement, only
//! once the data is written as far as the sink promises (flushed to the
//! file, or fsynced when configured); when it cannot write, it fails the
//! batch so that the source tells its client to retry.

pub mod alerts;
pub mod blackhole;
pub mod file;

pub use alerts::{AlertmanagerSink, WebhookSink};
pub use blackhole::BlackholeSink;
pub use file::FileSink;
