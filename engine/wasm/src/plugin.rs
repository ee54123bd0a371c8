//! One loaded plugin: its pre-instantiated component, and instances that
//! each own a store with its limits.

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use wasmtime::component::{Component, Linker, Resource};
use wasmtime::{Store, StoreLimitsBuilder, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use weir_core::Signal;

use crate::host::bindings::{Processor as Bindings, ProcessorPre};
use crate::host::{BatchRes, Budget, CallState, FrozenClock, HostState, PluginShared, Poison};
use crate::runtime::{EPOCH_TICK, Runtime};
use crate::{FailureKind, PluginError};

/// The limits every instance of a plugin runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most linear memory an instance may have, in bytes.
    pub max_memory: u64,
    /// The longest a call may run (checked every [`EPOCH_TICK`]).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: 64 * 1024 * 1024,
            timeout: Duration::from_secs(1),
        }
    }
}

/// Why one call into a plugin failed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

/// A component ready to be instantiated any number of times.
pub(crate) struct Plugin {
    runtime: Arc<Runtime>,
    pre: ProcessorPre<HostState>,
    shared: Arc<PluginShared>,
    limits: Limits,
    config: String,
}

/// One live instance: its store and its exports.
pub(crate) struct Instance {
    store: Store<HostState>,
    bindings: Bindings,
    /// What `init` asked for.
    pub tick_every: Option<Duration>,
}

impl Instance {
    /// The linear memory the instance holds now, all memories together.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.store.data().limits.memory_bytes
    }
}

/// What a successful `process` call left.
pub(crate) struct Processed {
    /// The input batch as the plugin left it.
    pub data: RecordBatch,
    /// Records the plugin emitted.
    pub emitted: Vec<(Signal, RecordBatch)>,
}

impl Plugin {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        component: &Component,
        shared: Arc<PluginShared>,
        limits: Limits,
        config: String,
    ) -> Result<Plugin, PluginError> {
        let mut linker = Linker::<HostState>::new(runtime.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        Bindings::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        let instance_pre = linker.instantiate_pre(component).map_err(|e| {
            PluginError::Invalid(format!(
                "the component does not fit the weir:plugin `processor` world: {e:#}"
            ))
        })?;
        let pre = ProcessorPre::new(instance_pre).map_err(|e| {
            PluginError::Invalid(format!(
                "the component does not export the weir:plugin `processor` world: {e:#}"
            ))
        })?;
        Ok(Plugin {
            runtime,
            pre,
            shared,
            limits,
            config,
        })
    }

    fn deadline_ticks(&self) -> u64 {
        let ticks = self.limits.timeout.as_nanos() / EPOCH_TICK.as_nanos();
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }

    /// A new instance, initialised with the plugin's config.
    pub(crate) fn instantiate(&self) -> Result<Instance, Failure> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if !self.shared.allow_clock {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(self.limits.max_memory).unwrap_or(usize::MAX))
            .trap_on_grow_failure(true)
            .build();
        let state = HostState {
            wasi: wasi.build(),
            table: wasmtime::component::ResourceTable::new(),
            limits: Budget {
                inner: limits,
                memory_bytes: 0,
            },
            plugin: self.shared.clone(),
            call: CallState::default(),
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(&e, "instantiating the plugin"))?;
        store.set_epoch_deadline(self.deadline_ticks());
        let settings = bindings
            .call_init(&mut store, &self.config)
            .map_err(|e| classify(&e, "in `init`"))?
            .map_err(|e| Failure {
                kind: FailureKind::Init,
                message: format!("the plugin refused its config: {}", describe(&e)),
            })?;
        Ok(Instance {
            store,
            bindings,
            tick_every: settings
                .tick_every_ms
                .filter(|ms| *ms > 0)
                .map(|ms| Duration::from_millis(u64::from(ms))),
        })
    }

    /// Whether `instance` holds so much memory that it should be replaced
    /// now, between batches, rather than fail a batch at its cap: past
    /// three quarters of `max_memory`. Plugins whose toolchain never frees
    /// some buffers (ComponentizeJS leaks what imports return) keep working
    /// this way.
    pub(crate) fn worn_out(&self, instance: &Instance) -> bool {
        let cap = usize::try_from(self.limits.max_memory).unwrap_or(usize::MAX);
        instance.memory_bytes() > cap / 4 * 3
    }

    /// The component's name in the pipeline.
    pub(crate) fn component(&self) -> &str {
        &self.shared.component
    }

    /// Runs `process` on `data` in `instance`.
    pub(crate) fn process(
        &self,
        instance: &mut Instance,
        signal: Signal,
        data: RecordBatch,
    ) -> Result<Processed, Failure> {
        let store = &mut instance.store;
        store.data_mut().call = CallState::default();
        let handle = store
            .data_mut()
            .table
            .push(BatchRes { signal, data })
            .map_err(|e| Failure {
                kind: FailureKind::Trap,
                message: e.to_string(),
            })?;
        store.set_epoch_deadline(self.deadline_ticks());
        let borrowed = Resource::<BatchRes>::new_borrow(handle.rep());
        let result = instance.bindings.call_process(&mut *store, borrowed);
        let batch = store.data_mut().table.delete(handle);
        let call = std::mem::take(&mut store.data_mut().call);
        let returned = result.map_err(|e| classify(&e, "in `process`"))?;
        check_call(&call, returned)?;
        let batch = batch.map_err(|e| Failure {
            kind: FailureKind::Trap,
            message: format!("the batch handle was lost: {e}"),
        })?;
        Ok(Processed {
            data: batch.data,
            emitted: call.emitted,
        })
    }

    /// Runs `tick` in `instance`.
    pub(crate) fn tick(
        &self,
        instance: &mut Instance,
        now: u64,
    ) -> Result<Vec<(Signal, RecordBatch)>, Failure> {
        let store = &mut instance.store;
        store.data_mut().call = CallState::default();
        store.set_epoch_deadline(self.deadline_ticks());
        let result = instance.bindings.call_tick(&mut *store, now);
        let call = std::mem::take(&mut store.data_mut().call);
        let returned = result.map_err(|e| classify(&e, "in `tick`"))?;
        check_call(&call, returned)?;
        Ok(call.emitted)
    }
}

fn check_call(
    call: &CallState,
    returned: Result<(), crate::host::bindings::weir::plugin::types::Error>,
) -> Result<(), Failure> {
    if let Some(poison) = &call.poison {
        return Err(match poison {
            Poison::InvalidOutput(m) => Failure {
                kind: FailureKind::InvalidOutput,
                message: m.clone(),
            },
            Poison::OutputLimit(m) => Failure {
                kind: FailureKind::OutputLimit,
                message: m.clone(),
            },
        });
    }
    returned.map_err(|e| Failure {
        kind: FailureKind::PluginError,
        message: describe(&e),
    })
}

fn describe(e: &crate::host::bindings::weir::plugin::types::Error) -> String {
    use crate::host::bindings::weir::plugin::types::Error as E;
    match e {
        E::InvalidArgument(m) => format!("invalid argument: {m}"),
        E::NoSuchColumn(c) => format!("no such column `{c}`"),
        E::TypeMismatch(m) => format!("type mismatch: {m}"),
        E::Denied(m) => format!("denied: {m}"),
        E::LimitExceeded(m) => format!("limit exceeded: {m}"),
        E::Failed(m) => m.clone(),
    }
}

/// Sorts a trap into a [`FailureKind`].
fn classify(e: &wasmtime::Error, during: &str) -> Failure {
    let message = format!("{during}: {e:#}");
    let kind = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) | Some(Trap::OutOfFuel) => FailureKind::Timeout,
        Some(Trap::UnreachableCodeReached) => FailureKind::Panic,
        Some(_) => FailureKind::Trap,
        None if message.contains("when growing memory")
            || message.contains("memory growth failure") =>
        {
            FailureKind::Memory
        }
        None => FailureKind::Trap,
    };
    Failure { kind, message }
}
