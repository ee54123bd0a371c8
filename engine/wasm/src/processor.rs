//! [`WasmProcessor`]: a plugin as a `weir_core::Processor`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use weir_core::{Ack, Batch, ComponentError, Processor, SignalSet};

use crate::PluginError;
use crate::config::{OnError, WasmConfig};
use crate::host::{PluginShared, StateStore, now_nanos};
use crate::metrics;
use crate::plugin::{Failure, Instance, Limits, Plugin};
use crate::runtime::{CacheOutcome, Runtime};

/// Below this many rows per instance a batch is not split.
const MIN_ROWS_PER_SPLIT: usize = 1024;

/// How often the component file is checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A WebAssembly component plugin run as a processor.
///
/// It holds a pool of instances of one component (`instances`, default one
/// per CPU core). A batch goes to one instance; a large batch is cut into
/// slices of at least 1,024 rows that run on several instances at once, on
/// blocking threads, and their outputs are sent on in order. Every output
/// carries the input's acknowledgement ([`Batch::with_data`] /
/// [`Batch::derive`]): the source hears back once all parts are delivered;
/// a batch the plugin empties is acknowledged at once.
///
/// When a call fails (see [`FailureKind`]) the instance is thrown away and
/// a fresh one takes its place, `weir_plugin_errors_total{component,kind}`
/// goes up, and the whole input batch follows `on_error`.
///
/// Hot reload: before a batch (at most once a second) the component file's
/// modification time and size are checked; a changed file is loaded and
/// initialised and takes over from the next batch, so nothing in flight is
/// lost; one that does not load leaves the running version in place. The
/// plugin's `state` carries over. (A new `tick-every-ms` takes effect at the
/// next start.)
pub struct WasmProcessor {
    name: Arc<str>,
    config: WasmConfig,
    runtime: Arc<Runtime>,
    shared: Arc<PluginShared>,
    plugin: Arc<Plugin>,
    slots: Vec<Option<Instance>>,
    on_error: OnError,
    tick_every: Option<Duration>,
    cache: CacheOutcome,
    watch: Watch,
}

/// How the component file is watched for changes (hot reload).
struct Watch {
    every: Duration,
    last_check: Instant,
    stamp: Option<FileStamp>,
}

/// What tells a changed file: its modification time and length.
type FileStamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<FileStamp> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// A component loaded and its instances started.
struct Loaded {
    plugin: Plugin,
    slots: Vec<Option<Instance>>,
    tick_every: Option<Duration>,
    cache: CacheOutcome,
}

impl std::fmt::Debug for WasmProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmProcessor")
            .field("name", &self.name)
            .field("instances", &self.slots.len())
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl WasmProcessor {
    /// Loads the plugin of `config` (compiling it or taking it from the
    /// cache), loads its lookup tables, and starts and initialises its
    /// instances. Errors are the user's to fix (a missing file, a component
    /// that does not fit the contract, a config the plugin refuses).
    pub async fn new(
        name: &str,
        config: &WasmConfig,
        runtime: Arc<Runtime>,
    ) -> Result<WasmProcessor, ComponentError> {
        let name_owned = name.to_string();
        let config = config.clone();
        tokio::task::spawn_blocking(move || Self::new_blocking(&name_owned, &config, runtime))
            .await
            .map_err(|e| ComponentError::internal(name, format!("loading the plugin: {e}")))?
    }

    fn new_blocking(
        name: &str,
        config: &WasmConfig,
        runtime: Arc<Runtime>,
    ) -> Result<WasmProcessor, ComponentError> {
        let shared = shared_for(name, config)?;
        let file_stamp = config.path.as_deref().and_then(stamp);
        let loaded = load(name, config, &runtime, &shared)?;
        tracing::info!(component = name, instances = loaded.slots.len(), cache = ?loaded.cache, "plugin loaded");
        Ok(WasmProcessor {
            name: name.into(),
            config: config.clone(),
            runtime,
            shared,
            plugin: Arc::new(loaded.plugin),
            slots: loaded.slots,
            on_error: config.on_error,
            tick_every: loaded.tick_every,
            cache: loaded.cache,
            watch: Watch {
                every: RELOAD_CHECK,
                last_check: Instant::now(),
                stamp: file_stamp,
            },
        })
    }

    /// How often the component file is checked for changes (default 1s).
    pub fn set_reload_check(&mut self, every: Duration) {
        self.watch.every = every;
    }

    /// Swaps in the component file if it changed since it was loaded.
    /// Batches are processed one at a time, so the swap falls between two
    /// batches and nothing in flight is lost. A file that does not load
    /// leaves the running version in place.
    async fn maybe_reload(&mut self) {
        if self.watch.last_check.elapsed() < self.watch.every {
            return;
        }
        self.watch.last_check = Instant::now();
        // A first-party plugin has no file: it changes with Weir.
        let Some(path) = &self.config.path else {
            return;
        };
        let now = stamp(path);
        if now.is_none() || now == self.watch.stamp {
            return;
        }
        self.watch.stamp = now;
        let (name, config, runtime, shared) = (
            self.name.clone(),
            self.config.clone(),
            self.runtime.clone(),
            self.shared.clone(),
        );
        let loaded =
            tokio::task::spawn_blocking(move || load(&name, &config, &runtime, &shared)).await;
        match loaded {
            Ok(Ok(loaded)) => {
                tracing::info!(component = %self.name, cache = ?loaded.cache, "plugin file changed; reloaded");
                metrics::reloads(&self.name).increment(1);
                self.plugin = Arc::new(loaded.plugin);
                self.slots = loaded.slots;
                self.tick_every = loaded.tick_every;
                self.cache = loaded.cache;
            }
            Ok(Err(e)) => {
                tracing::warn!(component = %self.name, error = %e, "plugin file changed but does not load; keeping the running version");
            }
            Err(e) => {
                tracing::warn!(component = %self.name, error = %e, "reloading the plugin was lost");
            }
        }
    }

    /// Where the compiled component came from when this processor was made.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// The number of instances in the pool.
    pub fn instances(&self) -> usize {
        self.slots.len()
    }

    fn count_failure(&self, failure: &Failure) {
        metrics::errors(&self.name, failure.kind).increment(1);
        metrics::instances_replaced(&self.name).increment(1);
    }
}

/// What the instances of the plugin `name` of `config` share: its lookup
/// tables loaded, its state empty.
fn shared_for(name: &str, config: &WasmConfig) -> Result<Arc<PluginShared>, ComponentError> {
    let mut lookups = BTreeMap::new();
    for (table, path) in &config.lookups {
        lookups.insert(
            table.clone(),
            load_lookup(path).map_err(|m| {
                ComponentError::config(name, format!("lookup table `{table}`: {m}"))
            })?,
        );
    }
    Ok(Arc::new(PluginShared {
        component: name.into(),
        state: Mutex::new(StateStore::default()),
        lookups,
        allow_clock: config.allow_clock,
        max_emitted_records: config.max_emitted_records,
    }))
}

/// The plugin of `config` with one instance, for `weir test`.
pub(crate) fn load_one(
    name: &str,
    config: &WasmConfig,
    runtime: &Arc<Runtime>,
) -> Result<(Plugin, Instance), ComponentError> {
    let shared = shared_for(name, config)?;
    let config = WasmConfig {
        instances: Some(1),
        ..config.clone()
    };
    let mut loaded = load(name, &config, runtime, &shared)?;
    let instance = loaded
        .slots
        .pop()
        .flatten()
        .ok_or_else(|| ComponentError::internal(name, "the plugin started no instance"))?;
    Ok((loaded.plugin, instance))
}

/// Loads the component of `config` and starts its instances.
fn load(
    name: &str,
    config: &WasmConfig,
    runtime: &Arc<Runtime>,
    shared: &Arc<PluginShared>,
) -> Result<Loaded, ComponentError> {
    let (bytes, what): (Cow<'static, [u8]>, String) = match (&config.plugin, &config.path) {
        (Some(plugin), _) => {
            let found = weir_bundled::find(plugin).ok_or_else(|| {
                ComponentError::config(
                    name,
                    format!("there is no first-party plugin `{plugin}`; see `weir plugin list`"),
                )
            })?;
            (
                Cow::Borrowed(found.wasm),
                format!("the first-party plugin `{plugin}`"),
            )
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| {
                ComponentError::config(
                    name,
                    format!(
                        "cannot read the plugin `{}`: {e}; check `path`",
                        path.display()
                    ),
                )
            })?;
            (Cow::Owned(bytes), format!("`{}`", path.display()))
        }
        (None, None) => {
            return Err(ComponentError::config(
                name,
                "the processor names no plugin: give `plugin` or `path`",
            ));
        }
    };
    let (component, cache) = runtime.load(&bytes).map_err(|e| match e {
        PluginError::Invalid(m) => ComponentError::config(
            name,
            format!("{what} is not a usable WebAssembly component: {m}"),
        ),
        other => ComponentError::config(name, other.to_string()),
    })?;
    let limits = Limits {
        max_memory: config.max_memory,
        timeout: config.timeout,
    };
    let plugin = Plugin::new(
        runtime.clone(),
        &component,
        shared.clone(),
        limits,
        config.config.clone(),
    )
    .map_err(|e| ComponentError::config(name, e.to_string()))?;
    let count = config
        .instances
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let mut slots = Vec::with_capacity(count);
    let mut tick_every = None;
    for _ in 0..count {
        let instance = plugin.instantiate().map_err(|f| {
            ComponentError::config(name, format!("the plugin did not start: {}", f.message))
        })?;
        tick_every = tick_every.or(instance.tick_every);
        slots.push(Some(instance));
    }
    Ok(Loaded {
        plugin,
        slots,
        tick_every,
        cache,
    })
}

/// Takes an instance out of `slot`, making a new one if the slot is empty
/// (its last instance failed and could not be replaced then).
fn take_instance(plugin: &Plugin, slot: &mut Option<Instance>) -> Result<Instance, Failure> {
    match slot.take() {
        Some(i) => Ok(i),
        None => plugin.instantiate(),
    }
}

type SliceResult = Result<crate::plugin::Processed, Failure>;

fn run_slice(
    plugin: &Plugin,
    mut slot: Option<Instance>,
    signal: weir_core::Signal,
    data: arrow::record_batch::RecordBatch,
) -> (Option<Instance>, SliceResult) {
    let mut instance = match take_instance(plugin, &mut slot) {
        Ok(i) => i,
        Err(f) => return (None, Err(f)),
    };
    match plugin.process(&mut instance, signal, data) {
        Ok(p) if plugin.worn_out(&instance) => {
            // The batch is done; its successor gets a fresh instance.
            metrics::instances_recycled(plugin.component()).increment(1);
            tracing::debug!(
                component = plugin.component(),
                memory = instance.memory_bytes(),
                "plugin instance replaced: it holds most of its max_memory"
            );
            (None, Ok(p))
        }
        Ok(p) => (Some(instance), Ok(p)),
        Err(f) => {
            // The instance may be in any state: replace it.
            drop(instance);
            (plugin.instantiate().ok(), Err(f))
        }
    }
}

#[async_trait]
impl Processor for WasmProcessor {
    async fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.maybe_reload().await;
        if !SignalSet::TELEMETRY.contains(batch.signal()) {
            // Alert events are not telemetry: plugins do not see them
            // (pipelines never route them here; pass them on if one does).
            out.push(batch);
            return Ok(());
        }
        let rows = batch.num_rows();
        let parts = (rows / MIN_ROWS_PER_SPLIT).clamp(1, self.slots.len().max(1));
        let per = rows.div_ceil(parts);
        // `block_in_place` needs a multi-threaded runtime.
        let in_place = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let mut tasks = Vec::with_capacity(parts);
        let mut first = None;
        for (i, slot) in self.slots.iter_mut().take(parts).enumerate() {
            let (offset, len) = (i * per, per.min(rows.saturating_sub(i * per)));
            let data = batch.data().slice(offset, len);
            let plugin = self.plugin.clone();
            let instance = slot.take();
            let signal = batch.signal();
            if i == 0 && in_place {
                first = Some((plugin, instance, signal, data));
                continue;
            }
            tasks.push(tokio::task::spawn_blocking(move || {
                run_slice(&plugin, instance, signal, data)
            }));
        }
        let mut done = Vec::with_capacity(parts);
        if let Some((plugin, instance, signal, data)) = first {
            // The first part runs on this thread, the others beside it:
            // no hand-off to the blocking pool and back for the common
            // single-part batch. `block_in_place` moves this worker's
            // other tasks elsewhere while the plugin runs.
            done.push(tokio::task::block_in_place(|| {
                run_slice(&plugin, instance, signal, data)
            }));
        }
        for task in tasks {
            done.push(task.await.map_err(|e| {
                ComponentError::internal(&*self.name, format!("a plugin call was lost: {e}"))
            })?);
        }
        let mut results = Vec::with_capacity(parts);
        for (slot, (instance, result)) in self.slots.iter_mut().zip(done) {
            *slot = instance;
            results.push(result);
        }
        let mut outputs = Vec::new();
        let mut failure = None;
        for result in results {
            match result {
                Ok(p) => {
                    if p.data.num_rows() > 0 {
                        outputs.push(batch.with_data(p.data));
                    }
                    for (signal, data) in p.emitted {
                        outputs.push(batch.derive(signal, data));
                    }
                }
                Err(f) => {
                    failure.get_or_insert(f);
                }
            }
        }
        let Some(failure) = failure else {
            out.extend(outputs);
            // The outputs carry the acknowledgement on.
            batch.deliver();
            return Ok(());
        };
        self.count_failure(&failure);
        tracing::warn!(component = %self.name, kind = failure.kind.as_str(),
            on_error = self.on_error.as_str(), error = %failure.message,
            "plugin failed on a batch; its instance was replaced");
        match self.on_error {
            OnError::Drop => {
                // Dropped on purpose, as configured: acknowledged.
                outputs.into_iter().for_each(Batch::deliver);
                batch.deliver();
                Ok(())
            }
            OnError::Pass => {
                // The partial outputs are discarded; the input goes on.
                outputs.into_iter().for_each(Batch::deliver);
                out.push(batch);
                Ok(())
            }
            OnError::Fail => {
                let error = ComponentError::External {
                    component: self.name.to_string(),
                    message: format!(
                        "plugin failed ({}): {}",
                        failure.kind.as_str(),
                        failure.message
                    ),
                    source: None,
                };
                let reason = error.to_string();
                for output in outputs {
                    output.fail(reason.clone());
                }
                batch.fail(reason);
                Err(error)
            }
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.tick_every
    }

    async fn tick(&mut self, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.maybe_reload().await;
        let Some(slot) = self.slots.first_mut() else {
            return Ok(());
        };
        let plugin = self.plugin.clone();
        let instance = slot.take();
        let (instance, result) = tokio::task::spawn_blocking(move || {
            let mut instance = instance;
            let mut inst = match take_instance(&plugin, &mut instance) {
                Ok(i) => i,
                Err(f) => return (None, Err(f)),
            };
            match plugin.tick(&mut inst, now_nanos()) {
                Ok(e) => (Some(inst), Ok(e)),
                Err(f) => (plugin.instantiate().ok(), Err(f)),
            }
        })
        .await
        .map_err(|e| {
            ComponentError::internal(&*self.name, format!("a plugin tick was lost: {e}"))
        })?;
        *slot = instance;
        match result {
            Ok(emitted) => {
                for (signal, data) in emitted {
                    out.push(Batch::new(signal, data, Ack::none()));
                }
                Ok(())
            }
            Err(failure) => {
                self.count_failure(&failure);
                Err(ComponentError::External {
                    component: self.name.to_string(),
                    message: format!(
                        "plugin tick failed ({}): {}",
                        failure.kind.as_str(),
                        failure.message
                    ),
                    source: None,
                })
            }
        }
    }
}

/// Reads a lookup table: one JSON object whose values are strings (other
/// values are kept as their JSON text).
fn load_lookup(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not JSON: {e}", path.display()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!(
            "`{}` must hold one JSON object mapping keys to values",
            path.display()
        ));
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}
