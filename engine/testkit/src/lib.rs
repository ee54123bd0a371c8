//! What Weir's tests and benches share, so that no test folder keeps its
//! own copy.
//!
//! * [`guest`]: guest plugins (WebAssembly components) built for the tests.
//! * [`kv`]: attributes (`KeyValue`s) of each value type, and reading them
//!   back.
//! * [`otlp`]: OTLP export requests for the three signals (logs, spans,
//!   metrics) built from records, written as OTLP/JSON, and walked back
//!   record by record.
//! * [`rng`]: a small seeded random number generator (SplitMix64), the
//!   same on every platform, for data that must not change between runs.
//! * [`time`]: the wall clock in the units OTLP uses.
//! * [`prometheus`]: values read from Prometheus' text format (what
//!   `/metrics` serves).
//! * `engine` (cargo feature `engine`): a whole Weir started in-process with
//!   its listeners on `127.0.0.1:0`, and what its file sink wrote. The
//!   feature pulls in the engine (`weir-cli`); without it the kit depends on
//!   `opentelemetry-proto` and `serde_json` only, so the engine's own crates
//!   can use the builders in their tests.
//! * `backends` (cargo feature `backends`): Debian's Prometheus and
//!   VictoriaMetrics started on `127.0.0.1`, stopped and restarted with
//!   their data.
//! * `kafka` (cargo feature `kafka`): a real Kafka-compatible broker
//!   (tansu) started on `127.0.0.1`, stopped and restarted with its data.
//!
//! Helpers here panic with a message on anything unexpected: they are for
//! tests and benches, where a panic is the report.

pub mod guest;
pub mod kv;
pub mod otlp;
pub mod prometheus;
pub mod rng;
pub mod time;

#[cfg(feature = "engine")]
pub mod engine;

#[cfg(feature = "kafka")]
pub mod kafka;

#[cfg(feature = "backends")]
pub mod backends;
