//! Weir's sinks: where telemetry leaves the engine. One folder per sink
//! type, holding its config (`config.rs`, what users write) and the sink
//! that runs:
//!
//! * [`blackhole`]: counts and discards (benchmarks, dry runs).
//! * [`file`]: OTLP/JSON lines, one export request per line (debugging,
//!   tests, hand-off to other tools).
//! * [`alertmanager`]: alert notifications to Alertmanager (API v2);
//! * [`webhook`]: alert notifications to any URL as Alertmanager's
//!   webhook JSON. Both share [`alerts`]: the bounded queue per receiver,
//!   retries and the payloads.
//!
//! A sink delivers each batch (its acknowledgement) only once the data is
//! written as far as the sink promises (flushed to the file, fsynced when
//! configured, queued for an alert receiver); when it cannot write, it fails
//! the batch so that the source tells its client to retry. A batch it drops
//! without a verdict fails too.

pub mod alertmanager;
pub mod alerts;
pub mod blackhole;
pub mod file;
pub mod webhook;

pub use alertmanager::{AlertmanagerSink, AlertmanagerSinkConfig};
pub use alerts::RetryConfig;
pub use blackhole::{BlackholeSink, BlackholeSinkConfig};
pub use file::{FileSink, FileSinkConfig};
pub use webhook::{WebhookSink, WebhookSinkConfig};
