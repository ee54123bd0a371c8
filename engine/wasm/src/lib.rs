//! Weir's WebAssembly plugin host: runs processor plugins written against
//! the `weir:plugin` WIT package (`wit/` at the repository root).
//!
//! ```text
//!  .wasm ──Runtime::load──▶ Component (compiled once; cached in memory
//!        and on disk by content hash)
//!        ──Plugin::new──▶ InstancePre (imports linked once)
//!        ──instantiate + init(config)──▶ Instance × N (one Store each,
//!        memory cap, epoch deadline per call)
//!  Batch ──WasmProcessor::process──▶ slices ─▶ instances (blocking threads)
//!        ──▶ the batch as the plugin left it + emitted records
//! ```
//!
//! * [`runtime`] holds the process-wide wasmtime [`wasmtime::Engine`], the
//!   epoch clock that interrupts long calls, and the compile cache;
//!   [`cache`] decides whether its disk copy may be trusted and writes it.
//! * `host` implements what the plugin imports: the host-owned `batch`
//!   resource (bulk column reads and writes, see [`columns`]), `emit`,
//!   `log`, `metrics`, `state`, `lookup`, `clock`; and a WASI context that
//!   grants nothing (no files, network, environment; frozen clocks unless
//!   `allow_clock`).
//! * [`lookup`] loads the lookup tables a pipeline names (CSV or JSON;
//!   exact, prefix or CIDR match) and reloads a file that changes.
//! * `plugin` instantiates, calls and classifies failures.
//! * [`WasmProcessor`] is the `weir_core::Processor`: the pool of
//!   instances, replacement after a failure, the `on_error` policy and the
//!   `weir_plugin_errors_total{component,kind}` counter.
//! * [`metrics`] declares what the processor counts in `/metrics`.
//!
//! # Containment
//!
//! A plugin cannot take the engine down. A call that runs past `timeout`
//! is interrupted ([`FailureKind::Timeout`]); memory growth past
//! `max_memory` traps ([`FailureKind::Memory`]); a trap or a panic
//! ([`FailureKind::Trap`], [`FailureKind::Panic`]) ends the call; emitting
//! more than `max_emitted_records` ([`FailureKind::OutputLimit`]) or data
//! the host cannot take ([`FailureKind::InvalidOutput`]) fails the call
//! even if the plugin ignores the refusal. In every case the instance is
//! discarded and replaced, and the batch follows `on_error`.

pub mod attributes;
pub mod cache;
pub mod columns;
mod config;
mod hold;
mod host;
pub mod lookup;
pub mod metrics;
mod plugin;
mod processor;
pub mod runtime;
pub mod testing;
mod v01;

pub use cache::{CachePart, Distrust, Untrusted};
pub use config::{OnError, WasmConfig};
pub use lookup::{Format, LookupFile, MatchMode};
pub use plugin::{Contract, Limits};
pub use processor::WasmProcessor;
pub use runtime::{CacheOutcome, Runtime};

/// A plugin that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file is not a component that fits the `processor` world.
    #[error("{0}")]
    Invalid(String),
    /// The host itself failed (a bug, or the machine refused resources).
    #[error("internal error in the plugin host: {0}")]
    Internal(String),
}

/// Why a call into a plugin failed: the `kind` label of
/// `weir_plugin_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The call ran past its `timeout` (an endless loop, say).
    Timeout,
    /// The plugin tried to grow its memory past `max_memory`.
    Memory,
    /// The plugin panicked (Rust: `unreachable` after the panic message).
    Panic,
    /// Any other trap: out-of-bounds access, stack overflow, ...
    Trap,
    /// The plugin returned an `error`.
    PluginError,
    /// The plugin wrote or emitted data the host refused.
    InvalidOutput,
    /// The plugin emitted more records than `max_emitted_records`.
    OutputLimit,
    /// A replacement instance refused its config in `init`.
    Init,
}

impl FailureKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::Panic => "panic",
            FailureKind::Trap => "trap",
            FailureKind::PluginError => "plugin_error",
            FailureKind::InvalidOutput => "invalid_output",
            FailureKind::OutputLimit => "output_limit",
            FailureKind::Init => "init",
        }
    }
}
