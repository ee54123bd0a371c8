//! [`WasmProcessor`]: a plugin as a `weir_core::Processor`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use weir_core::{Ack, Batch, ComponentError, Processor, Signal, SignalSet};

use crate::config::{OnError, WasmConfig};
use crate::hold::HoldTotals;
use crate::host::{PluginShared, StateStore, now_nanos};
use crate::lookup::Tables;
use crate::plugin::{Contract, Failure, Instance, Limits, Plugin, Processed};
use crate::runtime::{CacheOutcome, Runtime};
use crate::{PluginError, columns, metrics};

/// Below this many rows per instance a batch is not split.
const MIN_ROWS_PER_SPLIT: usize = 1024;

/// How often the component file is checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A WebAssembly component plugin run as a processor.
///
/// It holds a pool of instances of one component (`instances`, default one
/// per CPU core), built against `weir:plugin@0.1.0` or `@0.2.0`
/// ([`Contract`]). A batch goes to one instance; a large batch is cut into
/// slices of at least 1,024 rows that run on several instances at once, on
/// blocking threads, and their outputs are sent on in order. A 0.2.0
/// plugin that asks for `partition-by` instead has every batch split by a
/// hash of that column's value modulo the number of instances, so that one
/// value always meets the same instance. Every output carries the input's
/// acknowledgement ([`Batch::with_data`] / [`Batch::derive`]), rows
/// released from the hold included: the source hears back once all parts
/// are delivered; a batch the plugin empties (or holds) is acknowledged at
/// once.
///
/// `tick` runs on every instance of a 0.2.0 plugin, one after the other,
/// and on the first instance only of a 0.1.0 plugin (which plugins of that
/// version rely on). What a tick emits or releases belongs to no request.
///
/// Held rows (`hold`) are sent on, with no acknowledgement to wait for,
/// when their instance is replaced (a failure, or most of `max_memory`
/// used), on reload and at [`Processor::close`]; after a failed batch that
/// is returned as an error they go with the next output.
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
    partition_by: Option<String>,
    cache: CacheOutcome,
    watch: Watch,
    /// Rows instances gave up (held rows of an instance replaced or
    /// reloaded, released rows of a call that failed), waiting to go out
    /// with the next output.
    orphans: Vec<Batch>,
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
    partition_by: Option<String>,
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
        tracing::info!(component = name, instances = loaded.slots.len(), cache = ?loaded.cache,
            contract = loaded.plugin.contract().as_str(), "plugin loaded");
        Ok(WasmProcessor {
            name: name.into(),
            config: config.clone(),
            runtime,
            shared,
            plugin: Arc::new(loaded.plugin),
            slots: loaded.slots,
            on_error: config.on_error,
            tick_every: loaded.tick_every,
            partition_by: loaded.partition_by,
            cache: loaded.cache,
            watch: Watch {
                every: RELOAD_CHECK,
                last_check: Instant::now(),
                stamp: file_stamp,
            },
            orphans: Vec::new(),
        })
    }

    /// How often the component file is checked for changes (default 1s).
    pub fn set_reload_check(&mut self, every: Duration) {
        self.watch.every = every;
    }

    /// Swaps in the component file if it changed since it was loaded.
    /// Batches are processed one at a time, so the swap falls between two
    /// batches and nothing in flight is lost; what the old instances hold
    /// is sent on. A file that does not load leaves the running version in
    /// place.
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
                let old = std::mem::replace(&mut self.slots, loaded.slots);
                for mut instance in old.into_iter().flatten() {
                    let held = instance.drain();
                    self.orphan(held);
                }
                self.plugin = Arc::new(loaded.plugin);
                self.tick_every = loaded.tick_every;
                self.partition_by = loaded.partition_by;
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

    /// Ticks the plugin as [`Processor::tick`] does, with `now`
    /// (nanoseconds since the Unix epoch) as the time of day: benchmarks
    /// and tests run plugins on a clock of their own.
    pub async fn tick_at(&mut self, now: u64, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.maybe_reload().await;
        let slots = match self.plugin.contract() {
            // Plugins of 0.1.0 rely on only the first instance ticking.
            Contract::V0_1 => self.slots.len().min(1),
            Contract::V0_2 => self.slots.len(),
        };
        let plugin = self.plugin.clone();
        let taken: Vec<Option<Instance>> =
            self.slots[..slots].iter_mut().map(Option::take).collect();
        // One after the other, in slot order: plugins that elect one
        // instance through `state` see a stable order.
        let ticked = tokio::task::spawn_blocking(move || {
            taken
                .into_iter()
                .map(|instance| run_tick(&plugin, instance, now))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| {
            ComponentError::internal(&*self.name, format!("a plugin tick was lost: {e}"))
        })?;
        let mut first_failure = None;
        for (slot, (instance, output, failure)) in ticked.into_iter().enumerate() {
            self.slots[slot] = instance;
            for (signal, data) in output {
                out.push(Batch::new(signal, data, Ack::none()));
            }
            if let Some(failure) = failure {
                self.count_failure(&failure, true);
                first_failure.get_or_insert(failure);
            }
        }
        out.append(&mut self.orphans);
        match first_failure {
            None => Ok(()),
            Some(failure) => Err(ComponentError::External {
                component: self.name.to_string(),
                message: format!(
                    "plugin tick failed ({}): {}",
                    failure.kind.as_str(),
                    failure.message
                ),
                source: None,
            }),
        }
    }

    /// The rows and bytes all instances hold now (`weir:plugin` 0.2
    /// `hold`), as `weir_plugin_held_rows` and `weir_plugin_held_bytes`
    /// report them.
    pub fn held(&self) -> (u64, u64) {
        let held = self.shared.held.now();
        (held.rows as u64, held.bytes)
    }

    /// Where the compiled component came from when this processor was made.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// The number of instances in the pool.
    pub fn instances(&self) -> usize {
        self.slots.len()
    }

    /// The version of the `weir:plugin` contract the running component
    /// was built against.
    pub fn contract(&self) -> Contract {
        self.plugin.contract()
    }

    /// Counts a failure; `replaced`: whether an instance was replaced.
    fn count_failure(&self, failure: &Failure, replaced: bool) {
        metrics::errors(&self.name, failure.kind).increment(1);
        if replaced {
            metrics::instances_replaced(&self.name).increment(1);
        }
    }

    /// Queues rows an instance gave up, to go out with the next output.
    fn orphan(&mut self, rows: Vec<(Signal, RecordBatch)>) {
        self.orphans.extend(
            rows.into_iter()
                .map(|(signal, data)| Batch::new(signal, data, Ack::none())),
        );
    }

    /// Which instance takes which rows of `batch`: by the hash of the
    /// `partition-by` column, or in slices across idle instances.
    fn assign(&self, batch: &Batch) -> Result<Vec<(usize, RecordBatch)>, Failure> {
        let data = batch.data();
        let n = self.slots.len().max(1);
        let Some(column) = &self.partition_by else {
            let rows = data.num_rows();
            let parts = (rows / MIN_ROWS_PER_SPLIT).clamp(1, n);
            let per = rows.div_ceil(parts);
            return Ok((0..parts)
                .map(|i| {
                    let (offset, len) = (i * per, per.min(rows.saturating_sub(i * per)));
                    (i, data.slice(offset, len))
                })
                .collect());
        };
        let parts = match columns::partitions(data, column, n) {
            Ok(parts) => parts,
            // A batch without the column: every row's value is null.
            Err(columns::ColumnError::NoSuchColumn(_)) => {
                vec![columns::null_partition(n); data.num_rows()]
            }
            Err(e) => {
                return Err(Failure {
                    kind: crate::FailureKind::InvalidOutput,
                    message: format!("partitioning by `{column}`: {e}"),
                });
            }
        };
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (row, part) in parts.iter().enumerate() {
            rows[*part].push(row as u32);
        }
        let used = rows.iter().filter(|r| !r.is_empty()).count();
        let mut out = Vec::with_capacity(used);
        for (slot, rows) in rows.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            if used == 1 {
                out.push((slot, data.clone()));
                continue;
            }
            let taken = take_record_batch(data, &UInt32Array::from(rows)).map_err(|e| Failure {
                kind: crate::FailureKind::InvalidOutput,
                message: format!("partitioning by `{column}`: {e}"),
            })?;
            out.push((slot, taken));
        }
        if out.is_empty() {
            // No rows: the first instance sees the empty batch, as before.
            out.push((0, data.clone()));
        }
        Ok(out)
    }
}

/// What the instances of the plugin `name` of `config` share: its lookup
/// tables loaded, its state empty.
fn shared_for(name: &str, config: &WasmConfig) -> Result<Arc<PluginShared>, ComponentError> {
    let lookups = Tables::load(name, &config.lookups)
        .map_err(|e| ComponentError::config(name, e.to_string()))?;
    Ok(Arc::new(PluginShared {
        component: name.into(),
        state: Mutex::new(StateStore::default()),
        lookups,
        allow_clock: config.allow_clock,
        max_emitted_records: config.max_emitted_records,
        held: Arc::new(HoldTotals::new(name.into(), config.max_held_bytes)),
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
    let mut slots: Vec<Option<Instance>> = Vec::with_capacity(count);
    for _ in 0..count {
        let instance = plugin.instantiate().map_err(|f| {
            ComponentError::config(name, format!("the plugin did not start: {}", f.message))
        })?;
        slots.push(Some(instance));
    }
    let tick_every = slots.iter().flatten().find_map(|i| i.tick_every);
    // The first instance's answer counts.
    let partition_by = slots
        .first()
        .and_then(Option::as_ref)
        .and_then(|i| i.partition_by.clone());
    Ok(Loaded {
        plugin,
        slots,
        tick_every,
        partition_by,
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

/// What one part of a batch came back as.
struct Part {
    /// The slot it ran in, and the instance now in that slot.
    slot: usize,
    instance: Option<Instance>,
    result: Result<Processed, Failure>,
    /// What a failed instance held (it was replaced).
    orphans: Vec<(Signal, RecordBatch)>,
}

fn run_part(
    plugin: &Plugin,
    slot: usize,
    mut instance: Option<Instance>,
    signal: Signal,
    data: RecordBatch,
) -> Part {
    let mut instance = match take_instance(plugin, &mut instance) {
        Ok(i) => i,
        Err(f) => {
            return Part {
                slot,
                instance: None,
                result: Err(f),
                orphans: Vec::new(),
            };
        }
    };
    match plugin.process(&mut instance, signal, data) {
        Ok(p) => Part {
            slot,
            instance: Some(instance),
            result: Ok(p),
            orphans: Vec::new(),
        },
        Err(f) => {
            // The instance may be in any state: replace it, sending on
            // what it held.
            let mut orphans = instance.abort_call();
            orphans.extend(instance.drain());
            drop(instance);
            Part {
                slot,
                instance: plugin.instantiate().ok(),
                result: Err(f),
                orphans,
            }
        }
    }
}

/// What one tick of one instance came back as: the instance now in its
/// slot, and the records emitted and rows released (or, after a failure,
/// given up).
type Ticked = (
    Option<Instance>,
    Vec<(Signal, RecordBatch)>,
    Option<Failure>,
);

fn run_tick(plugin: &Plugin, mut instance: Option<Instance>, now: u64) -> Ticked {
    let mut instance = match take_instance(plugin, &mut instance) {
        Ok(i) => i,
        Err(f) => return (None, Vec::new(), Some(f)),
    };
    match plugin.tick(&mut instance, now) {
        Ok(mut emitted) => {
            emitted.extend(instance.commit());
            (Some(instance), emitted, None)
        }
        Err(f) => {
            let mut orphans = instance.abort_call();
            orphans.extend(instance.drain());
            drop(instance);
            (plugin.instantiate().ok(), orphans, Some(f))
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
            out.append(&mut self.orphans);
            out.push(batch);
            return Ok(());
        }
        // A batch that cannot be partitioned fails before any instance runs.
        let (parts, failure) = match self.assign(&batch) {
            Ok(assigned) => (self.run_parts(&batch, assigned).await?, None),
            Err(f) => (Vec::new(), Some(f)),
        };
        let replaced = failure.is_none();
        let mut failure = failure;
        for part in &parts {
            if let Err(f) = &part.result {
                failure.get_or_insert_with(|| f.clone());
            }
        }
        let ok = failure.is_none();
        let mut outputs = Vec::new();
        for part in parts {
            let Part {
                slot,
                mut instance,
                result,
                orphans,
            } = part;
            self.orphan(orphans);
            if let (Some(i), Ok(p)) = (instance.as_mut(), result) {
                if ok {
                    if p.data.num_rows() > 0 {
                        outputs.push(batch.with_data(p.data));
                    }
                    for (signal, data) in p.emitted {
                        outputs.push(batch.derive(signal, data));
                    }
                    for (signal, data) in i.commit() {
                        outputs.push(batch.derive(signal, data));
                    }
                } else {
                    let released = i.abort_call();
                    self.orphan(released);
                }
            }
            if let Some(i) = instance.as_mut()
                && self.plugin.worn_out(i)
            {
                // The batch is done; its successor gets a fresh instance.
                metrics::instances_recycled(&self.name).increment(1);
                tracing::debug!(
                    component = %self.name,
                    memory = i.memory_bytes(),
                    "plugin instance replaced: it holds most of its max_memory"
                );
                let held = i.drain();
                self.orphan(held);
                instance = None;
            }
            self.slots[slot] = instance;
        }
        let Some(failure) = failure else {
            out.extend(outputs);
            out.append(&mut self.orphans);
            // The outputs carry the acknowledgement on.
            batch.deliver();
            return Ok(());
        };
        self.count_failure(&failure, replaced);
        tracing::warn!(component = %self.name, kind = failure.kind.as_str(),
            on_error = self.on_error.as_str(), error = %failure.message,
            "plugin failed on a batch; its instance was replaced");
        match self.on_error {
            OnError::Drop => {
                // Dropped on purpose, as configured: acknowledged.
                outputs.into_iter().for_each(Batch::deliver);
                out.append(&mut self.orphans);
                batch.deliver();
                Ok(())
            }
            OnError::Pass => {
                // The partial outputs are discarded; the input goes on.
                outputs.into_iter().for_each(Batch::deliver);
                out.append(&mut self.orphans);
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
                // The orphans wait for the next output: what is in `out`
                // now is failed with the input.
                batch.fail(reason);
                Err(error)
            }
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.tick_every
    }

    async fn tick(&mut self, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        self.tick_at(now_nanos(), out).await
    }

    /// The input has ended: what the instances hold is sent on.
    async fn close(&mut self, out: &mut Vec<Batch>) -> Result<(), ComponentError> {
        for slot in 0..self.slots.len() {
            if let Some(instance) = self.slots[slot].as_mut() {
                let held = instance.drain();
                self.orphan(held);
            }
        }
        out.append(&mut self.orphans);
        Ok(())
    }
}

impl WasmProcessor {
    /// Runs each assigned part in its slot's instance: the first on this
    /// thread, the others beside it on blocking threads.
    async fn run_parts(
        &mut self,
        batch: &Batch,
        assigned: Vec<(usize, RecordBatch)>,
    ) -> Result<Vec<Part>, ComponentError> {
        // `block_in_place` needs a multi-threaded runtime.
        let in_place = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let signal = batch.signal();
        let mut tasks = Vec::with_capacity(assigned.len());
        let mut first = None;
        for (i, (slot, data)) in assigned.into_iter().enumerate() {
            let plugin = self.plugin.clone();
            let instance = self.slots[slot].take();
            if i == 0 && in_place {
                first = Some((plugin, slot, instance, data));
                continue;
            }
            tasks.push(tokio::task::spawn_blocking(move || {
                run_part(&plugin, slot, instance, signal, data)
            }));
        }
        let mut done = Vec::with_capacity(tasks.len() + 1);
        if let Some((plugin, slot, instance, data)) = first {
            // No hand-off to the blocking pool and back for the common
            // single-part batch. `block_in_place` moves this worker's
            // other tasks elsewhere while the plugin runs.
            done.push(tokio::task::block_in_place(|| {
                run_part(&plugin, slot, instance, signal, data)
            }));
        }
        for task in tasks {
            done.push(task.await.map_err(|e| {
                ComponentError::internal(&*self.name, format!("a plugin call was lost: {e}"))
            })?);
        }
        Ok(done)
    }
}
