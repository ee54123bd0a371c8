//! One loaded plugin: its pre-instantiated component, and instances that
//! each own a store with its limits.

use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use wasmtime::component::{Component, Linker, Resource};
use wasmtime::{Store, StoreLimitsBuilder, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use weir_core::Signal;

use crate::hold::Hold;
use crate::host::bindings::weir::plugin::types::Error as WitError;
use crate::host::{BatchRes, Budget, CallState, FrozenClock, HostState, PluginShared, Poison};
use crate::runtime::{EPOCH_TICK, Runtime};
use crate::{FailureKind, PluginError, host, v01};

/// The versions of the `weir:plugin` package a component may be built
/// against; the host serves them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `weir:plugin@0.1.0` (`wit/v0.1/`): no `hold`, no `partition-by`,
    /// `tick` reaches the first instance only.
    V0_1,
    /// `weir:plugin@0.2.0` (`wit/`): `hold`, `attribute-keys`,
    /// `partition-by`, `tick` on every instance.
    V0_2,
}

impl Contract {
    /// The package version, as in the component's imports.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// The pre-instantiated component, for the world it was built against.
enum Pre {
    V0_1(v01::bindings::ProcessorPre<HostState>),
    V0_2(host::bindings::ProcessorPre<HostState>),
}

/// An instance's exports, for the world it was built against.
enum Exports {
    V0_1(v01::bindings::Processor),
    V0_2(host::bindings::Processor),
}

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
    pre: Pre,
    shared: Arc<PluginShared>,
    limits: Limits,
    config: String,
}

/// One live instance: its store and its exports.
pub(crate) struct Instance {
    store: Store<HostState>,
    exports: Exports,
    /// What `init` asked for.
    pub tick_every: Option<Duration>,
    /// The column `init` asked to partition rows by (0.2.0).
    pub partition_by: Option<String>,
}

impl Instance {
    /// The linear memory the instance holds now, all memories together.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.store.data().limits.memory_bytes
    }

    fn hold(&mut self) -> &mut Hold {
        &mut self.store.data_mut().hold
    }

    /// Ends the last call as a success: the rows it released, one batch
    /// per signal.
    pub(crate) fn commit(&mut self) -> Vec<(Signal, RecordBatch)> {
        self.hold().commit()
    }

    /// Ends the last call as if it had not changed the hold: the rows it
    /// held are forgotten (its input has them), those it released that
    /// were held before are returned, to be sent on.
    pub(crate) fn abort_call(&mut self) -> Vec<(Signal, RecordBatch)> {
        self.hold().abort_call()
    }

    /// Everything the instance holds, given up because it is replaced or
    /// stopped (after [`Instance::commit`] or [`Instance::abort_call`]).
    pub(crate) fn drain(&mut self) -> Vec<(Signal, RecordBatch)> {
        self.hold().drain()
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
        host::bindings::Processor::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| PluginError::Internal(e.to_string()))?;
        v01::bindings::Processor::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| PluginError::Internal(e.to_string()))?;
        let instance_pre = linker.instantiate_pre(component).map_err(|e| {
            PluginError::Invalid(format!(
                "the component does not fit the weir:plugin `processor` world \
                 (0.1.0 or 0.2.0): {e:#}"
            ))
        })?;
        let contract = contract_of(component, runtime.engine())?;
        let pre = match contract {
            Contract::V0_2 => host::bindings::ProcessorPre::new(instance_pre).map(Pre::V0_2),
            Contract::V0_1 => v01::bindings::ProcessorPre::new(instance_pre).map(Pre::V0_1),
        }
        .map_err(|e| {
            PluginError::Invalid(format!(
                "the component imports weir:plugin@{} but does not export its `processor` \
                 world: {e:#}",
                contract.as_str()
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
            hold: Hold::new(self.shared.held.clone()),
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let exports = match &self.pre {
            Pre::V0_1(pre) => pre.instantiate(&mut store).map(Exports::V0_1),
            Pre::V0_2(pre) => pre.instantiate(&mut store).map(Exports::V0_2),
        }
        .map_err(|e| classify(&e, "instantiating the plugin"))?;
        store.set_epoch_deadline(self.deadline_ticks());
        let settings = match &exports {
            Exports::V0_1(b) => b
                .call_init(&mut store, &self.config)
                .map(|r| r.map(|s| (s.tick_every_ms, None)).map_err(v01::error_now)),
            Exports::V0_2(b) => b
                .call_init(&mut store, &self.config)
                .map(|r| r.map(|s| (s.tick_every_ms, s.partition_by))),
        }
        .map_err(|e| classify(&e, "in `init`"))?
        .map_err(|e| Failure {
            kind: FailureKind::Init,
            message: format!("the plugin refused its config: {}", describe(&e)),
        })?;
        let (tick_every_ms, partition_by) = settings;
        Ok(Instance {
            store,
            exports,
            tick_every: tick_every_ms
                .filter(|ms| *ms > 0)
                .map(|ms| Duration::from_millis(u64::from(ms))),
            partition_by: partition_by.filter(|c| !c.is_empty()),
        })
    }

    /// The version of the contract the component was built against.
    pub(crate) fn contract(&self) -> Contract {
        match self.pre {
            Pre::V0_1(_) => Contract::V0_1,
            Pre::V0_2(_) => Contract::V0_2,
        }
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

    /// Runs `process` on `data` in `instance`.
    pub(crate) fn process(
        &self,
        instance: &mut Instance,
        signal: Signal,
        data: RecordBatch,
    ) -> Result<Processed, Failure> {
        let store = &mut instance.store;
        store.data_mut().call = CallState::default();
        store.data_mut().hold.begin_call();
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
        let result = match &instance.exports {
            Exports::V0_1(b) => b
                .call_process(&mut *store, borrowed)
                .map(|r| r.map_err(v01::error_now)),
            Exports::V0_2(b) => b.call_process(&mut *store, borrowed),
        };
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
        store.data_mut().hold.begin_call();
        store.set_epoch_deadline(self.deadline_ticks());
        let result = match &instance.exports {
            Exports::V0_1(b) => b
                .call_tick(&mut *store, now)
                .map(|r| r.map_err(v01::error_now)),
            Exports::V0_2(b) => b.call_tick(&mut *store, now),
        };
        let call = std::mem::take(&mut store.data_mut().call);
        let returned = result.map_err(|e| classify(&e, "in `tick`"))?;
        check_call(&call, returned)?;
        Ok(call.emitted)
    }
}

/// The version of `weir:plugin` the component imports (every processor
/// imports `batch`, the type of its `process` argument).
fn contract_of(component: &Component, engine: &wasmtime::Engine) -> Result<Contract, PluginError> {
    let ty = component.component_type();
    let versions: Vec<String> = ty
        .imports(engine)
        .filter_map(|(name, _)| name.strip_prefix("weir:plugin/"))
        .filter_map(|name| name.split_once('@').map(|(_, v)| v.to_string()))
        .collect();
    if versions.iter().any(|v| v.starts_with("0.2.")) {
        Ok(Contract::V0_2)
    } else if versions.iter().any(|v| v.starts_with("0.1.")) {
        Ok(Contract::V0_1)
    } else if let Some(v) = versions.first() {
        Err(PluginError::Invalid(format!(
            "the component is built against weir:plugin@{v}; this Weir serves 0.1.0 and \
             0.2.0: build it with the SDK or WIT package of this Weir"
        )))
    } else {
        Err(PluginError::Invalid(
            "the component imports nothing of weir:plugin: it is not a Weir processor plugin \
             (build it against the `processor` world of wit/)"
                .to_string(),
        ))
    }
}

fn check_call(call: &CallState, returned: Result<(), WitError>) -> Result<(), Failure> {
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

fn describe(e: &WitError) -> String {
    use WitError as E;
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
