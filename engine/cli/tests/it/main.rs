//! weir-cli's integration tests, one binary: each former test file is a
//! module, and `common` starts the `weir` binary as a user would.
//!
//! * [`alerts`]: an alert rule firing and resolving at a real Alertmanager,
//!   a webhook and the store.
//! * [`compliance`]: every registered component type reports the
//!   standard `weir_component_*` metrics.
//! * [`cli`]: `weir validate`, `weir run`, `--help` and exit codes.
//! * [`durability`]: `kill -9` under load, and a full disk.
//! * [`export`]: the external sinks against real backends: an outage and a
//!   `kill -9` with the disk queue.
//! * [`kafka`]: the Kafka source and sink against a real broker (tansu) and
//!   real clients (confluent-kafka): interop, at least once, bad input.
//! * [`plugin`]: `weir plugin new` / `build` in every language, run.
//! * [`prometheus_parity`]: alert rules change state at the same
//!   evaluations as in promtool, case by case.
//! * [`rules`]: a `rules` processor in `weir run`, `weir test`, reloads.
//! * [`sql_protocols`]: Postgres, Flight SQL and HTTP over a running Weir,
//!   behind `[query.auth]`.

mod alerts;
mod cli;
mod common;
mod compliance;
mod durability;
mod export;
mod kafka;
mod memory;
mod plugin;
mod prometheus_parity;
mod rules;
mod sql_protocols;
