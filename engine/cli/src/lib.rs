//! The `weir` binary's library half: turns a validated pipeline [`Plan`]
//! into running components and serves Weir's own HTTP API.
//!
//! * [`registry`] is the one explicit table of built-in component types:
//!   each type's config, constructor and runtime live in its own folder.
//! * [`engine`] builds every component through its config, starts the
//!   topology and the API server, and stops them.
//! * [`api`] serves `/metrics` (Prometheus text), `/healthz` and `/readyz`,
//!   plus the routes components add (the rules' status, SQL).
//! * [`reload`] applies a changed pipeline file to a running Weir.
//! * [`plugin`] is `weir plugin new` / `weir plugin build`: plugin projects
//!   from templates, built into components.
//! * [`tests`] is `weir test`: a file's `[[tests]]` against its rules
//!   and plugins.
//! * [`telemetry`] installs the recorder `/metrics` renders and gives it
//!   the help text of every metric set; [`metrics`] is the binary's own.
//!
//! End-to-end tests start an [`engine::Engine`] in-process the same way the
//! binary does.

pub mod api;
pub mod engine;
pub mod metrics;
pub mod plugin;
pub mod registry;
pub mod reload;
pub mod telemetry;
pub mod tests;

pub use engine::{Engine, Started};
pub use registry::{builtins, load, parse_str};
pub use weir_config::Plan;
