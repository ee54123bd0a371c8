//! What a plugin instance's store holds, and the host side of every
//! interface the `processor` world of `weir:plugin@0.2.0` imports. (The
//! 0.1.0 world's imports delegate here: [`crate::v01`].)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use wasmtime::StoreLimits;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weir_core::Signal;
use weir_core::convert;

use crate::attributes::{self, AttributeColumn};
use crate::columns::{self, AttributeSet, ColumnError};
use crate::hold::{Hold, HoldError, HoldTotals};

/// The generated bindings of the `weir:plugin@0.2.0` `processor` world.
#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "processor",
        with: {
            "weir:plugin/batch.batch": crate::host::BatchRes,
        },
    });
}

use bindings::weir::plugin::types::{
    AttributeSet as WitAttributeSet, Error as WitError, Signal as WitSignal,
};
use bindings::weir::plugin::{batch, clock, emit, hold, log, lookup, metrics, state, types};

/// The host's side of a `batch` handle: the rows as they now are.
pub struct BatchRes {
    pub(crate) signal: Signal,
    pub(crate) data: RecordBatch,
}

/// The bounds of a plugin's key-value state.
const STATE_MAX_ENTRIES: usize = 10_000;
const STATE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The longest log line a plugin may write.
const LOG_MAX_BYTES: usize = 4096;

/// Per-plugin `state`: shared by all instances, kept across replacements.
#[derive(Debug, Default)]
pub(crate) struct StateStore {
    entries: HashMap<String, Vec<u8>>,
    bytes: usize,
}

/// What all instances of one plugin share.
#[derive(Debug)]
pub(crate) struct PluginShared {
    /// The component's name in the pipeline.
    pub component: Arc<str>,
    pub state: Mutex<StateStore>,
    pub lookups: crate::lookup::Tables,
    pub allow_clock: bool,
    pub max_emitted_records: usize,
    /// What the instances hold (`hold`), and its bound.
    pub held: Arc<HoldTotals>,
}

/// Why the host refused something during a call so badly that the whole
/// call fails, whatever the plugin does next.
#[derive(Debug, Clone)]
pub(crate) enum Poison {
    /// A write or emit with data the host cannot accept.
    InvalidOutput(String),
    /// More output than the plugin may produce.
    OutputLimit(String),
}

/// The state of one call into the plugin.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    pub emitted: Vec<(Signal, RecordBatch)>,
    pub emitted_rows: usize,
    pub poison: Option<Poison>,
}

/// An instance's resource limits, and how much linear memory it holds now
/// (over all its memories), so that a leaking plugin can be replaced
/// between batches before it reaches its cap.
pub(crate) struct Budget {
    pub inner: StoreLimits,
    pub memory_bytes: usize,
}

impl wasmtime::ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The cap applies to all memories together, as a plugin's author
        // would expect of `max_memory`.
        let total = self.memory_bytes - current.min(self.memory_bytes) + desired;
        let granted = self.inner.memory_growing(current, total, maximum)?;
        if granted {
            self.memory_bytes = total;
        }
        Ok(granted)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The data of one instance's store.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: Budget,
    pub plugin: Arc<PluginShared>,
    pub call: CallState,
    /// The rows this instance holds.
    pub hold: Hold,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    fn poison(&mut self, poison: Poison) {
        if self.call.poison.is_none() {
            self.call.poison = Some(poison);
        }
    }

    fn batch(&self, handle: &Resource<BatchRes>) -> Result<&BatchRes, WitError> {
        self.table
            .get(handle)
            .map_err(|e| WitError::InvalidArgument(format!("not a live batch handle: {e}")))
    }

    /// Applies a write to the batch behind `handle`; a refused write poisons
    /// the call.
    fn write(
        &mut self,
        handle: &Resource<BatchRes>,
        f: impl FnOnce(&RecordBatch) -> Result<RecordBatch, ColumnError>,
    ) -> Result<(), WitError> {
        let result = {
            let batch = self.batch(handle)?;
            f(&batch.data)
        };
        match result {
            Ok(data) => {
                let batch = self
                    .table
                    .get_mut(handle)
                    .map_err(|e| WitError::InvalidArgument(e.to_string()))?;
                batch.data = data;
                Ok(())
            }
            Err(e) => {
                self.poison(Poison::InvalidOutput(e.to_string()));
                Err(wit_error(e))
            }
        }
    }
}

fn wit_error(e: ColumnError) -> WitError {
    match e {
        ColumnError::NoSuchColumn(c) => WitError::NoSuchColumn(c),
        ColumnError::TypeMismatch(m) => WitError::TypeMismatch(m),
        ColumnError::InvalidArgument(m) => WitError::InvalidArgument(m),
    }
}

fn set_of(set: WitAttributeSet) -> AttributeSet {
    match set {
        WitAttributeSet::Record => AttributeSet::Record,
        WitAttributeSet::Resource => AttributeSet::Resource,
        WitAttributeSet::Scope => AttributeSet::Scope,
    }
}

/// The WIT name of a telemetry signal; `None` for alert events, which
/// plugins never see (the `wasm` processor accepts telemetry only).
pub(crate) fn signal_to_wit(signal: Signal) -> Option<WitSignal> {
    match signal {
        Signal::Logs => Some(WitSignal::Logs),
        Signal::Spans => Some(WitSignal::Spans),
        Signal::Metrics => Some(WitSignal::Metrics),
        Signal::Alerts => None,
    }
}

fn signal_from_wit(signal: WitSignal) -> Signal {
    match signal {
        WitSignal::Logs => Signal::Logs,
        WitSignal::Spans => Signal::Spans,
        WitSignal::Metrics => Signal::Metrics,
    }
}

impl types::Host for HostState {}

impl batch::Host for HostState {}

impl batch::HostBatch for HostState {
    fn signal(&mut self, handle: Resource<BatchRes>) -> WitSignal {
        self.batch(&handle)
            .ok()
            .and_then(|b| signal_to_wit(b.signal))
            .unwrap_or(WitSignal::Logs)
    }

    fn num_rows(&mut self, handle: Resource<BatchRes>) -> u32 {
        self.batch(&handle)
            .map(|b| u32::try_from(b.data.num_rows()).unwrap_or(u32::MAX))
            .unwrap_or(0)
    }

    fn column_names(&mut self, handle: Resource<BatchRes>) -> Vec<String> {
        self.batch(&handle)
            .map(|b| {
                b.data
                    .schema_ref()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn read_strings(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
    ) -> Result<Vec<Option<String>>, WitError> {
        columns::read_strings(&self.batch(&handle)?.data, &column).map_err(wit_error)
    }

    fn read_text(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
    ) -> Result<batch::TextColumn, WitError> {
        let text = columns::read_text(&self.batch(&handle)?.data, &column).map_err(wit_error)?;
        Ok(batch::TextColumn {
            data: text.data,
            offsets: text.offsets,
            nulls: text.nulls,
        })
    }

    fn read_ints(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
    ) -> Result<Vec<Option<i64>>, WitError> {
        columns::read_ints(&self.batch(&handle)?.data, &column).map_err(wit_error)
    }

    fn read_floats(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
    ) -> Result<Vec<Option<f64>>, WitError> {
        columns::read_floats(&self.batch(&handle)?.data, &column).map_err(wit_error)
    }

    fn read_attribute(
        &mut self,
        handle: Resource<BatchRes>,
        set: WitAttributeSet,
        key: String,
    ) -> Result<Vec<Option<String>>, WitError> {
        columns::read_attribute(&self.batch(&handle)?.data, set_of(set), &key).map_err(wit_error)
    }

    fn read_attribute_column(
        &mut self,
        handle: Resource<BatchRes>,
        set: WitAttributeSet,
        key: String,
    ) -> Result<batch::AttributeColumn, WitError> {
        let column =
            attributes::read_attribute_column(&self.batch(&handle)?.data, set_of(set), &key)
                .map_err(wit_error)?;
        Ok(batch::AttributeColumn {
            values: column.values,
            rows: column.rows,
        })
    }

    fn write_strings(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
        values: Vec<Option<String>>,
    ) -> Result<(), WitError> {
        self.write(&handle, |b| columns::write_strings(b, &column, values))
    }

    fn write_text(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
        values: batch::TextColumn,
    ) -> Result<(), WitError> {
        let values = columns::TextColumn {
            data: values.data,
            offsets: values.offsets,
            nulls: values.nulls,
        };
        self.write(&handle, |b| columns::write_text(b, &column, values))
    }

    fn write_ints(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
        values: Vec<Option<i64>>,
    ) -> Result<(), WitError> {
        self.write(&handle, |b| columns::write_ints(b, &column, values))
    }

    fn write_floats(
        &mut self,
        handle: Resource<BatchRes>,
        column: String,
        values: Vec<Option<f64>>,
    ) -> Result<(), WitError> {
        self.write(&handle, |b| columns::write_floats(b, &column, values))
    }

    fn set_attribute(
        &mut self,
        handle: Resource<BatchRes>,
        set: WitAttributeSet,
        key: String,
        values: Vec<Option<String>>,
    ) -> Result<(), WitError> {
        self.write(&handle, |b| {
            columns::update_attribute(b, set_of(set), &key, Some(values))
        })
    }

    fn remove_attribute(
        &mut self,
        handle: Resource<BatchRes>,
        set: WitAttributeSet,
        key: String,
    ) -> Result<(), WitError> {
        self.write(&handle, |b| {
            columns::update_attribute(b, set_of(set), &key, None)
        })
    }

    fn write_attributes(
        &mut self,
        handle: Resource<BatchRes>,
        set: WitAttributeSet,
        remove: Vec<String>,
        writes: Vec<batch::AttributeWrite>,
    ) -> Result<(), WitError> {
        let writes = writes
            .into_iter()
            .map(|w| {
                let column = AttributeColumn {
                    values: w.column.values,
                    rows: w.column.rows,
                };
                (w.key, column)
            })
            .collect();
        self.write(&handle, |b| {
            attributes::write_attributes(b, set_of(set), &remove, writes)
        })
    }

    fn attribute_keys(
        &mut self,
        handle: Resource<BatchRes>,
        set: WitAttributeSet,
    ) -> Result<Vec<String>, WitError> {
        columns::attribute_keys(&self.batch(&handle)?.data, set_of(set)).map_err(wit_error)
    }

    fn drop_rows(&mut self, handle: Resource<BatchRes>, mask: Vec<bool>) -> Result<u32, WitError> {
        self.write(&handle, |b| columns::drop_rows(b, mask))?;
        Ok(self.num_rows(handle))
    }

    fn drop(&mut self, handle: Resource<BatchRes>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl emit::Host for HostState {
    fn emit(&mut self, signal: WitSignal, otlp_json: String) -> Result<u32, WitError> {
        if let Some(Poison::OutputLimit(m) | Poison::InvalidOutput(m)) = &self.call.poison {
            // The call has failed already: refuse at once, decode nothing.
            return Err(WitError::LimitExceeded(m.clone()));
        }
        let body = otlp_json.as_bytes();
        let converted = match signal {
            WitSignal::Logs => {
                convert::json::decode_logs(body).and_then(|r| convert::logs_to_batch(&r))
            }
            WitSignal::Spans => {
                convert::json::decode_spans(body).and_then(|r| convert::spans_to_batch(&r))
            }
            WitSignal::Metrics => {
                convert::json::decode_metrics(body).and_then(|r| convert::metrics_to_batch(&r))
            }
        };
        let signal = signal_from_wit(signal);
        let converted = match converted {
            Ok(c) => c,
            Err(e) => {
                let message = format!("emitted {signal} are not valid OTLP/JSON: {e}");
                self.poison(Poison::InvalidOutput(message.clone()));
                return Err(WitError::InvalidArgument(message));
            }
        };
        let rows = converted.batch.num_rows();
        let limit = self.plugin.max_emitted_records;
        if self.call.emitted_rows + rows > limit {
            let message = format!(
                "the plugin emitted more than {limit} records in one call (max_emitted_records)"
            );
            self.poison(Poison::OutputLimit(message.clone()));
            return Err(WitError::LimitExceeded(message));
        }
        self.call.emitted_rows += rows;
        if rows > 0 {
            self.call.emitted.push((signal, converted.batch));
        }
        Ok(u32::try_from(rows).unwrap_or(u32::MAX))
    }
}

fn held(h: crate::hold::Held) -> hold::Held {
    hold::Held {
        rows: u32::try_from(h.rows).unwrap_or(u32::MAX),
        bytes: h.bytes,
    }
}

impl hold::Host for HostState {
    fn hold(
        &mut self,
        input: Resource<BatchRes>,
        keys: Vec<Option<String>>,
    ) -> Result<hold::Held, WitError> {
        let batch = self
            .table
            .get(&input)
            .map_err(|e| WitError::InvalidArgument(format!("not a live batch handle: {e}")))?;
        match self.hold.hold(batch.signal, &batch.data, keys) {
            Ok((left, moved)) => {
                let batch = self
                    .table
                    .get_mut(&input)
                    .map_err(|e| WitError::InvalidArgument(e.to_string()))?;
                batch.data = left;
                Ok(held(moved))
            }
            // The plugin may release or discard and try again.
            Err(HoldError::LimitExceeded(m)) => Err(WitError::LimitExceeded(m)),
            // A list of the wrong shape, like a write of one: the call fails.
            Err(HoldError::InvalidArgument(m)) => {
                self.poison(Poison::InvalidOutput(m.clone()));
                Err(WitError::InvalidArgument(m))
            }
        }
    }

    fn release(&mut self, keys: Vec<String>) -> Result<hold::Held, WitError> {
        Ok(held(self.hold.release(&keys)))
    }

    fn discard(&mut self, keys: Vec<String>) -> Result<hold::Held, WitError> {
        Ok(held(self.hold.discard(&keys)))
    }

    fn holding(&mut self) -> hold::Held {
        held(self.hold.holding())
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let mut message = message;
        if message.len() > LOG_MAX_BYTES {
            let mut cut = LOG_MAX_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let component = &*self.plugin.component;
        match level {
            log::Level::Trace => tracing::trace!(component, plugin = true, "{message}"),
            log::Level::Debug => tracing::debug!(component, plugin = true, "{message}"),
            log::Level::Info => tracing::info!(component, plugin = true, "{message}"),
            log::Level::Warn => tracing::warn!(component, plugin = true, "{message}"),
            log::Level::Error => tracing::error!(component, plugin = true, "{message}"),
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl HostState {
    fn series(
        &self,
        name: &str,
        labels: Vec<metrics::Label>,
    ) -> Result<(String, Vec<::metrics::Label>), WitError> {
        if !valid_name(name) {
            return Err(WitError::InvalidArgument(format!(
                "`{name}` is not a metric name: use letters, digits and `_`, not starting with a digit"
            )));
        }
        let mut out = vec![::metrics::Label::new(
            "component",
            self.plugin.component.to_string(),
        )];
        for label in labels {
            if !valid_name(&label.name) || label.name == "component" {
                return Err(WitError::InvalidArgument(format!(
                    "`{}` is not a label name a plugin may use",
                    label.name
                )));
            }
            out.push(::metrics::Label::new(label.name, label.value));
        }
        Ok((crate::metrics::plugin_metric_name(name), out))
    }
}

impl metrics::Host for HostState {
    fn counter_add(
        &mut self,
        name: String,
        value: u64,
        labels: Vec<metrics::Label>,
    ) -> Result<(), WitError> {
        let (name, labels) = self.series(&name, labels)?;
        ::metrics::counter!(name, labels).increment(value);
        Ok(())
    }

    fn gauge_set(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<metrics::Label>,
    ) -> Result<(), WitError> {
        let (name, labels) = self.series(&name, labels)?;
        ::metrics::gauge!(name, labels).set(value);
        Ok(())
    }

    fn histogram_record(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<metrics::Label>,
    ) -> Result<(), WitError> {
        let (name, labels) = self.series(&name, labels)?;
        ::metrics::histogram!(name, labels).record(value);
        Ok(())
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        let state = self.plugin.state.lock().unwrap_or_else(|e| e.into_inner());
        state.entries.get(&key).cloned()
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), WitError> {
        let mut state = self.plugin.state.lock().unwrap_or_else(|e| e.into_inner());
        let old = state
            .entries
            .get(&key)
            .map(|v| key.len() + v.len())
            .unwrap_or(0);
        let bytes = state.bytes - old + key.len() + value.len();
        let entries =
            state.entries.len() + usize::from(old == 0 && !state.entries.contains_key(&key));
        if bytes > STATE_MAX_BYTES || entries > STATE_MAX_ENTRIES {
            return Err(WitError::LimitExceeded(format!(
                "the plugin's state may hold {STATE_MAX_ENTRIES} entries and {STATE_MAX_BYTES} bytes"
            )));
        }
        state.bytes = bytes;
        state.entries.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: String) -> bool {
        let mut state = self.plugin.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.entries.remove(&key) {
            Some(v) => {
                state.bytes -= key.len() + v.len();
                true
            }
            None => false,
        }
    }
}

impl HostState {
    fn table_of(&self, table: &str) -> Result<Arc<crate::lookup::Index>, WitError> {
        self.plugin.lookups.get(table).ok_or_else(|| {
            WitError::Denied(format!(
                "the pipeline gives this plugin no lookup table `{table}` (`lookups`)"
            ))
        })
    }
}

impl lookup::Host for HostState {
    fn get(&mut self, table: String, key: String) -> Result<Option<String>, WitError> {
        Ok(self.table_of(&table)?.get(&key).map(str::to_owned))
    }

    fn get_many(
        &mut self,
        table: String,
        keys: Vec<String>,
    ) -> Result<Vec<Option<String>>, WitError> {
        let table = self.table_of(&table)?;
        Ok(keys
            .iter()
            .map(|k| table.get(k).map(str::to_owned))
            .collect())
    }
}

impl clock::Host for HostState {
    fn now(&mut self) -> Result<u64, WitError> {
        if !self.plugin.allow_clock {
            return Err(WitError::Denied(
                "the pipeline does not let this plugin read the clock (`allow_clock = true`)"
                    .to_string(),
            ));
        }
        Ok(now_nanos())
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The WASI clocks of a plugin without `allow_clock`: the epoch, forever.
pub(crate) struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
