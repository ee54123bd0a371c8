//! End-to-end tests across Weir's crates, one binary: each former test file
//! is a module; Weir itself is started in-process by the test kit
//! (`weir_testkit::engine`), and `common` reads the sample data.
//!
//! * [`backpressure`]: a stalled sink reaches the client as a retryable
//!   refusal.
//! * [`otlp_protocol`]: what the OTLP specification says a server answers,
//!   over HTTP and gRPC; self-metrics and health.
//! * [`plugins`]: the first-party plugins by name, fed by the Python SDK,
//!   read back with SQL.
//! * [`python_sdk`]: the OpenTelemetry Python SDK's real exporters.
//! * [`rust_sdk`]: the Rust `opentelemetry-otlp` exporters.

mod backpressure;
mod common;
mod otlp_protocol;
mod plugins;
mod python_sdk;
mod rust_sdk;
