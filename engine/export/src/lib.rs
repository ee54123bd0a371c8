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

/// Implements `weir_config::ComponentConfig` for the config of an external
/// sink: it takes `$accepts`, emits nothing, adds the shared keys'
/// problems to its own, and builds `$exporter` behind an [`ExportSink`].
/// The config has the shared keys (see [`settings`]) and a `send()`
/// returning them.
macro_rules! export_sink_config {
    ($config:ty, $exporter:ty, $accepts:expr) => {
        #[async_trait::async_trait]
        impl weir_config::ComponentConfig for $config {
            fn accepts(&self) -> weir_core::SignalSet {
                $accepts
            }

            fn outputs(&self, _input: weir_core::SignalSet) -> weir_core::SignalSet {
                weir_core::SignalSet::NONE
            }

            fn problems(&self) -> Vec<weir_config::Problem> {
                let mut problems = <$config>::problems(self);
                problems.extend(self.send().problems());
                problems
            }

            fn warnings(&self) -> Vec<weir_config::Problem> {
                self.user_headers().deprecations()
            }

            async fn build(
                &self,
                cx: &mut weir_config::BuildContext<'_>,
            ) -> Result<weir_core::Built, weir_core::ComponentError> {
                let exporter = <$exporter>::new(cx.name(), self)?;
                $crate::Exporter::preflight(&exporter)
                    .await
                    .map_err(|e| weir_core::ComponentError::config(cx.name(), e))?;
                let sink = $crate::ExportSink::new(
                    cx.name(),
                    std::sync::Arc::new(exporter),
                    self.send(),
                    cx.state_dir(),
                )?;
                Ok(weir_core::Built::Sink(Box::new(sink)))
            }
        }
    };
}
pub(crate) use export_sink_config;

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
