//! Weir's pipeline files: TOML in, a validated [`Plan`] out.
//!
//! A pipeline file names its components in three tables keyed by the
//! component's name — `[sources.NAME]`, `[processors.NAME]`,
//! `[sinks.NAME]` — each with a `type`. Processors and sinks list the
//! components they read from in `inputs`. Two optional tables tune the
//! engine: `[api]` and `[runtime]`.
//!
//! ```toml
//! [api]                            # HTTP server for /metrics, /healthz, /readyz
//! address = "127.0.0.1:8888"       # default "127.0.0.1:8888"
//! enabled = true                   # default true
//!
//! [runtime]
//! shutdown_timeout = "30s"         # graceful shutdown drains this long at most
//! worker_threads = 0               # 0 = one per CPU core
//!
//! [sources.otlp]
//! type = "otlp"
//! grpc_address = "0.0.0.0:4317"    # `grpc = false` turns the gRPC listener off
//! http_address = "0.0.0.0:4318"    # `http = false` turns the HTTP listener off
//! max_request_size = "8MiB"        # "8MiB", "4MB" or a number of bytes
//! max_in_flight_bytes = "512MiB"   # memory of all requests in flight, counted by their converted size
//! read_timeout = "10s"             # a client must send headers, then body, this fast
//! queue_wait = "200ms"             # wait for room this long, then 503 / UNAVAILABLE
//!
//! [sinks.archive]
//! type = "file"
//! inputs = ["otlp"]                # every signal `otlp` emits
//! path = "telemetry.jsonl"
//! queue_capacity = 32              # input channel capacity, in batches
//!
//! [sinks.null]
//! type = "blackhole"
//! inputs = ["otlp.spans", "otlp.logs"]   # `NAME.SIGNAL` picks one signal
//! ```
//!
//! Names are unique across all three tables and use letters, digits, `_`
//! and `-`. An input is `"NAME"` (every signal the component emits) or
//! `"NAME.logs"`, `"NAME.spans"`, `"NAME.metrics"`. Durations are human
//! strings (`"200ms"`, `"30s"`, `"5m"`); sizes are `"8MiB"`, `"4MB"` or an
//! integer number of bytes. Every table refuses keys it does not know.
//! The engine-wide settings are documented on their structs ([`ApiConfig`],
//! [`RuntimeConfig`], [`StoreConfig`], [`QueryConfig`]); each component
//! type's settings on its own config struct, in the folder of that
//! component (`weir-cli`'s registry lists them all).
//!
//! # Components
//!
//! This crate knows no component type itself. A [`Registry`] names the
//! types a file may use, each configured by a struct that implements
//! [`ComponentConfig`]; the decoder reads `type`, refuses unknown keys with
//! the struct's own field list, and decodes the rest into it.
//!
//! ```
//! use weir_config::{BuildContext, ComponentConfig, Registry};
//! use weir_core::{Built, ComponentError, SignalSet};
//!
//! /// `type = "null"`: a sink that drops everything (example).
//! #[derive(Debug, PartialEq, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct NullSinkConfig {
//!     /// Whether to log what arrives. Default `false`.
//!     #[serde(default)]
//!     verbose: bool,
//! }
//!
//! #[async_trait::async_trait]
//! impl ComponentConfig for NullSinkConfig {
//!     fn accepts(&self) -> SignalSet { SignalSet::ALL }
//!     fn outputs(&self, _: SignalSet) -> SignalSet { SignalSet::NONE }
//!     async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
//!         Err(ComponentError::internal(cx.name(), "an example only"))
//!     }
//! }
//!
//! # #[derive(Debug, PartialEq, serde::Deserialize)]
//! # struct TickSourceConfig {}
//! # #[async_trait::async_trait]
//! # impl ComponentConfig for TickSourceConfig {
//! #     fn accepts(&self) -> SignalSet { SignalSet::NONE }
//! #     fn outputs(&self, _: SignalSet) -> SignalSet { SignalSet::TELEMETRY }
//! #     async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
//! #         Err(ComponentError::internal(cx.name(), "an example only"))
//! #     }
//! # }
//! let registry = Registry::new()
//!     .source::<TickSourceConfig>("tick")
//!     .sink::<NullSinkConfig>("null");
//! let plan = weir_config::parse_str(
//!     r#"
//! [sources.in]
//! type = "tick"
//!
//! [sinks.out]
//! type = "null"
//! inputs = ["in.logs"]
//! verbose = true
//! "#,
//!     "example.toml",
//!     &registry,
//! )?;
//! let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
//! assert_eq!(names, ["in", "out"]); // every component after its inputs
//! assert_eq!(plan.warnings.len(), 1); // in's spans and metrics go nowhere
//! let out = plan.component("out").and_then(|c| c.config_as::<NullSinkConfig>());
//! assert_eq!(out, Some(&NullSinkConfig { verbose: true }));
//!
//! let err = weir_config::parse_str("[sources.in]\ntype = \"tock\"\n", "bad.toml", &registry)
//!     .expect_err("misspelt type");
//! assert!(err.to_string().contains("bad.toml:2:8"));
//! # Ok::<(), weir_config::ConfigError>(())
//! ```
//!
//! # How a file is read
//!
//! 1. The TOML is parsed with every key and value keeping its position.
//! 2. The raw stage checks each table on its own and decodes it into its typed
//!    config (serde structs with `deny_unknown_fields`).
//! 3. The resolve stage links the tables: names, inputs, signals, cycles, and
//!    produces the components in topological order.
//!
//! Neither stage stops at the first problem. Every problem becomes a
//! [`Diagnostic`] naming the file, line, column and key, with a
//! suggestion; a [`ConfigError`] holds them all and renders them the way
//! rustc does:
//!
//! ```text
//! error: unknown field `grpc_adress` in source `otlp`
//!  --> pipelines/default.toml:7:1
//!   |
//! 7 | grpc_adress = "0.0.0.0:4317"
//!   | ^^^^^^^^^^^
//!   = help: did you mean `grpc_address`? valid fields: `grpc`, `grpc_address`, …
//! ```

mod component;
mod decode;
mod diagnostic;
mod introspect;
mod plan;
mod raw;
mod resolve;
mod rule_tests;
mod secret;
mod settings;
mod suggest;
pub mod values;

use std::path::Path;

use toml::de::DeTable;

pub use component::{
    BuildContext, ComponentConfig, ComponentKind, ComponentType, DynConfig, Hooks, Problem,
    Registry, Reload, Resources, Shared,
};
pub use diagnostic::{ConfigError, Diagnostic, Location, Severity};
pub use plan::{Component, Input, Plan};
pub use rule_tests::{
    ExpectedAlert, ExpectedAlerts, ExpectedOutput, ExpectedPoint, ExpectedRecorded, ExpectedState,
    OtlpInput, OutputSignal, PipelineTest, SeriesInput, SeriesKind, TestSpec,
};
pub use secret::{Secret, Sensitive};
pub use settings::{
    ApiConfig, FlightConfig, FsyncPolicy, MaxFutureConfig, PostgresConfig, QueryAuthConfig,
    QueryConfig, QueryUser, RetentionConfig, RuntimeConfig, ServerTlsConfig, StoreConfig,
};

use diagnostic::Report;

/// Reads and checks the pipeline file at `path`, whose components are of
/// the types in `registry`. Messages name the file as `path` is written.
pub fn load(path: &Path, registry: &Registry) -> Result<Plan, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => parse_str(&source, &file, registry),
        Err(e) => Err(ConfigError::new(vec![Diagnostic {
            severity: Severity::Error,
            message: format!("cannot read pipeline file `{file}`: {e}"),
            file: file.clone(),
            location: None,
            key: None,
            label: None,
            help: vec!["check the path and that the file is readable".to_string()],
        }])),
    }
}

/// Checks a pipeline given as text, whose components are of the types in
/// `registry`. `file` is only used in messages.
pub fn parse_str(source: &str, file: &str, registry: &Registry) -> Result<Plan, ConfigError> {
    let mut report = Report::new(source, file);
    let (root, syntax) = DeTable::parse_recoverable(source);
    for e in &syntax {
        report
            .error(e.span(), format!("invalid TOML: {}", e.message()))
            .help("fix the syntax first; the rest of the file is checked once it parses");
    }
    let parts = if syntax.is_empty() {
        let raw = raw::read(root.into_inner(), registry, &mut report);
        let components = resolve::resolve(&raw, &mut report);
        let tests = resolve::tests(&raw, &mut report);
        Some((
            raw.api,
            raw.runtime,
            raw.store,
            raw.query,
            components,
            tests,
        ))
    } else {
        None
    };
    let warnings = report.finish()?;
    // Without syntax errors, `parts` is set; with them, `finish` failed.
    let (api, runtime, store, query, components, tests) = parts.unwrap_or_default();
    Ok(Plan {
        api,
        runtime,
        store,
        query,
        components,
        tests,
        warnings,
    })
}
