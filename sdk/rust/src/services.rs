//! The host's services: emitting records, logging, metrics, state, lookup
//! tables and the clock (the rows held across calls are in
//! [`hold`](crate::hold)). Outside a Weir host (in native tests) these are
//! inert: logs and metrics go nowhere, state and lookups are empty, the
//! clock is denied, emitted records are collected by the
//! [`harness`](crate::harness).

use crate::bindings::weir::plugin as wit;
use crate::{Error, Signal};

#[cfg(target_family = "wasm")]
use wit::{
    clock, emit as wit_emit, log as wit_log, lookup as wit_lookup, metrics as wit_metrics,
    state as wit_state,
};

pub use wit::log::Level;
pub use wit::metrics::Label;

/// Emits the records of one OTLP export request given as OTLP/JSON
/// (`{"resourceLogs": [...]}` for logs, `resourceSpans` for spans,
/// `resourceMetrics` for metrics). Returns the number of records added.
pub fn emit(signal: Signal, otlp_json: &str) -> Result<u32, Error> {
    #[cfg(target_family = "wasm")]
    {
        wit_emit::emit(signal, otlp_json)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        crate::native::emit(signal, otlp_json)
    }
}

/// Writes `message` into Weir's logs at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    wit_log::log(level, message);
    #[cfg(not(target_family = "wasm"))]
    let _ = (level, message);
}

/// Adds `value` to counter `weir_plugin_<name>` in Weir's `/metrics`.
pub fn counter_add(name: &str, value: u64, labels: &[Label]) -> Result<(), Error> {
    #[cfg(target_family = "wasm")]
    {
        wit_metrics::counter_add(name, value, labels)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (name, value, labels);
        Ok(())
    }
}

/// Sets gauge `weir_plugin_<name>` to `value`.
pub fn gauge_set(name: &str, value: f64, labels: &[Label]) -> Result<(), Error> {
    #[cfg(target_family = "wasm")]
    {
        wit_metrics::gauge_set(name, value, labels)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (name, value, labels);
        Ok(())
    }
}

/// Records `value` in histogram `weir_plugin_<name>`.
pub fn histogram_record(name: &str, value: f64, labels: &[Label]) -> Result<(), Error> {
    #[cfg(target_family = "wasm")]
    {
        wit_metrics::histogram_record(name, value, labels)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (name, value, labels);
        Ok(())
    }
}

/// The value stored under `key` in the plugin's state.
pub fn state_get(key: &str) -> Option<Vec<u8>> {
    #[cfg(target_family = "wasm")]
    {
        wit_state::get(key)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = key;
        None
    }
}

/// Stores `value` under `key` in the plugin's state.
pub fn state_set(key: &str, value: &[u8]) -> Result<(), Error> {
    #[cfg(target_family = "wasm")]
    {
        wit_state::set(key, value)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (key, value);
        Ok(())
    }
}

/// The values of `keys` in lookup table `table`.
pub fn lookup_many(table: &str, keys: &[String]) -> Result<Vec<Option<String>>, Error> {
    #[cfg(target_family = "wasm")]
    {
        wit_lookup::get_many(table, keys)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = keys;
        Err(Error::Denied(format!(
            "no lookup table `{table}` outside a Weir host"
        )))
    }
}

/// Nanoseconds since the Unix epoch, if the pipeline grants the clock.
pub fn now() -> Result<u64, Error> {
    #[cfg(target_family = "wasm")]
    {
        clock::now()
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Err(Error::Denied("no clock outside a Weir host".to_string()))
    }
}
