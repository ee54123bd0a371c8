//! Weir's sources: where telemetry enters the engine.
//!
//! * [`otlp`]: the OpenTelemetry protocol receiver, gRPC (default port 4317)
//!   and HTTP (4318, protobuf and JSON bodies, gzip).
//!
//! A source decodes what arrives into Arrow rows ([`weir_core::convert`]),
//! wraps them in a [`weir_core::Batch`] with a fresh acknowledgement, sends
//! the batch into the pipeline, and answers its client only once every sink
//! has acknowledged it, or refuses with a retryable error when the pipeline
//! is full.

pub mod otlp;

pub use otlp::{OtlpSource, OtlpSourceConfig};
