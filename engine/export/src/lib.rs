//! Weir's sinks to external backends. Each sink type is one folder with its
//! config beside it; what they share is here:
//!
//! * [`exporter`]: the [`Exporter`] trait a backend implements (send one
//!   batch of rows, and say whether a failure may pass), and its errors.
//! * `http`: one request over HTTP and what its answer means (taken, may
//!   pass, refused), for the exporters that speak HTTP; `headers`: the
//!   user's headers, given, from the environment or from files.
//! * [`remote_write`]: the Prometheus remote-write 1.0 exporter (Prometheus,
//!   Mimir, VictoriaMetrics): rows -> series as Prometheus' OTLP receiver
//!   makes them, snappy-compressed requests within the receiver's limits.
//! * [`loki`]: the Grafana Loki push exporter: log records -> streams
//!   labelled as Loki's own OTLP ingestion labels them, structured
//!   metadata, snappy protobuf or JSON requests.
//! * [`otlp`]: the OTLP exporter over gRPC or HTTP (protobuf or JSON),
//!   requests cut to the receiver's limit, the specification's retry
//!   rules and `partial_success`.
//! * [`settings`]: the keys every external sink shares (batching,
//!   `max_in_flight`, `retry`, `queue`).
//! * [`ExportSink`] (`sink.rs`): the sink an exporter runs in: the queue
//!   (`queue.rs`: in memory, or on disk in the store's WAL format),
//!   requests gathered from batches, retries with backoff and jitter.
//! * The `weir_export_*` metrics ([`metrics`]).
//!
//! A batch's acknowledgement is released only once the backend answered
//! (or, with a disk queue, once the batch is fsynced in the queue); a
//! failure that may pass is retried with backoff, one that cannot (the
//! backend refused the data) is dropped and counted, never silently.

pub mod exporter;
mod headers;
mod http;
pub mod loki;
pub mod metrics;
pub mod otlp;
mod queue;
pub mod remote_write;
pub mod settings;
mod sink;

#[cfg(test)]
mod tests;

pub use exporter::{ExportError, Exported, Exporter};
pub use loki::LokiConfig;
pub use otlp::OtlpConfig;
pub use queue::QueueError;
pub use remote_write::PrometheusRemoteWriteConfig;
pub use settings::{AckMode, QueueConfig, RetryConfig, SendSettings};
pub use sink::ExportSink;
