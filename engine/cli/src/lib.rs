//! The `weir` binary's library half: turns a validated pipeline [`Plan`]
//! into running components and serves Weir's own HTTP API.
//!
//! * [`build`] is the one explicit table that maps each component type in a
//!   pipeline file to the code that runs it.
//! * [`engine`] starts the topology and the API server and stops them.
//! * [`api`] serves `/metrics` (Prometheus text), `/healthz` and `/readyz`.
//! * [`reload`] applies a changed pipeline file to a running Weir.
//! * [`plugin`] is `weir plugin new` / `weir plugin build`: plugin projects
//!   from templates, built into components.
//!
//! End-to-end tests start an [`engine::Engine`] in-process the same way the
//! binary does.

pub mod api;
pub mod build;
pub mod engine;
pub mod plugin;
pub mod reload;
pub mod rules;
pub mod telemetry;

pub use engine::{Engine, Started};
pub use weir_config::Plan;
