//! `weir:plugin@0.1.0`: the world plugins built before 0.2.0 were made
//! for (`wit/v0.1/`, frozen). Its imports are served by the 0.2.0
//! implementation in [`crate::host`]: every function here converts its
//! arguments, calls the 0.2.0 one and converts the answer back, so both
//! versions behave the same by construction.

use wasmtime::component::Resource;

use crate::host::BatchRes;
use crate::host::HostState;
use crate::host::bindings::weir::plugin as now;

/// The generated bindings of the `weir:plugin@0.1.0` `processor` world.
#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "processor",
        with: {
            "weir:plugin/batch.batch": crate::host::BatchRes,
        },
    });
}

use bindings::weir::plugin::{batch, clock, emit, log, lookup, metrics, state, types};

/// A 0.2.0 error as 0.1.0 has it (the same cases).
pub(crate) fn error(e: now::types::Error) -> types::Error {
    use now::types::Error as E;
    match e {
        E::InvalidArgument(m) => types::Error::InvalidArgument(m),
        E::NoSuchColumn(m) => types::Error::NoSuchColumn(m),
        E::TypeMismatch(m) => types::Error::TypeMismatch(m),
        E::Denied(m) => types::Error::Denied(m),
        E::LimitExceeded(m) => types::Error::LimitExceeded(m),
        E::Failed(m) => types::Error::Failed(m),
    }
}

/// A 0.1.0 error (a plugin's own) as 0.2.0 has it.
pub(crate) fn error_now(e: types::Error) -> now::types::Error {
    use types::Error as E;
    match e {
        E::InvalidArgument(m) => now::types::Error::InvalidArgument(m),
        E::NoSuchColumn(m) => now::types::Error::NoSuchColumn(m),
        E::TypeMismatch(m) => now::types::Error::TypeMismatch(m),
        E::Denied(m) => now::types::Error::Denied(m),
        E::LimitExceeded(m) => now::types::Error::LimitExceeded(m),
        E::Failed(m) => now::types::Error::Failed(m),
    }
}

fn signal(s: now::types::Signal) -> types::Signal {
    match s {
        now::types::Signal::Logs => types::Signal::Logs,
        now::types::Signal::Spans => types::Signal::Spans,
        now::types::Signal::Metrics => types::Signal::Metrics,
    }
}

fn signal_now(s: types::Signal) -> now::types::Signal {
    match s {
        types::Signal::Logs => now::types::Signal::Logs,
        types::Signal::Spans => now::types::Signal::Spans,
        types::Signal::Metrics => now::types::Signal::Metrics,
    }
}

fn set_now(s: types::AttributeSet) -> now::types::AttributeSet {
    match s {
        types::AttributeSet::Record => now::types::AttributeSet::Record,
        types::AttributeSet::Resource => now::types::AttributeSet::Resource,
        types::AttributeSet::Scope => now::types::AttributeSet::Scope,
    }
}

fn labels_now(labels: Vec<metrics::Label>) -> Vec<now::metrics::Label> {
    labels
        .into_iter()
        .map(|l| now::metrics::Label {
            name: l.name,
            value: l.value,
        })
        .collect()
}

type Res<T> = Result<T, types::Error>;

impl types::Host for HostState {}

impl batch::Host for HostState {}

impl batch::HostBatch for HostState {
    fn signal(&mut self, h: Resource<BatchRes>) -> types::Signal {
        signal(now::batch::HostBatch::signal(self, h))
    }

    fn num_rows(&mut self, h: Resource<BatchRes>) -> u32 {
        now::batch::HostBatch::num_rows(self, h)
    }

    fn column_names(&mut self, h: Resource<BatchRes>) -> Vec<String> {
        now::batch::HostBatch::column_names(self, h)
    }

    fn read_strings(&mut self, h: Resource<BatchRes>, column: String) -> Res<Vec<Option<String>>> {
        now::batch::HostBatch::read_strings(self, h, column).map_err(error)
    }

    fn read_text(&mut self, h: Resource<BatchRes>, column: String) -> Res<batch::TextColumn> {
        let t = now::batch::HostBatch::read_text(self, h, column).map_err(error)?;
        Ok(batch::TextColumn {
            data: t.data,
            offsets: t.offsets,
            nulls: t.nulls,
        })
    }

    fn read_ints(&mut self, h: Resource<BatchRes>, column: String) -> Res<Vec<Option<i64>>> {
        now::batch::HostBatch::read_ints(self, h, column).map_err(error)
    }

    fn read_floats(&mut self, h: Resource<BatchRes>, column: String) -> Res<Vec<Option<f64>>> {
        now::batch::HostBatch::read_floats(self, h, column).map_err(error)
    }

    fn read_attribute(
        &mut self,
        h: Resource<BatchRes>,
        set: types::AttributeSet,
        key: String,
    ) -> Res<Vec<Option<String>>> {
        now::batch::HostBatch::read_attribute(self, h, set_now(set), key).map_err(error)
    }

    fn write_strings(
        &mut self,
        h: Resource<BatchRes>,
        column: String,
        values: Vec<Option<String>>,
    ) -> Res<()> {
        now::batch::HostBatch::write_strings(self, h, column, values).map_err(error)
    }

    fn write_text(
        &mut self,
        h: Resource<BatchRes>,
        column: String,
        values: batch::TextColumn,
    ) -> Res<()> {
        let values = now::batch::TextColumn {
            data: values.data,
            offsets: values.offsets,
            nulls: values.nulls,
        };
        now::batch::HostBatch::write_text(self, h, column, values).map_err(error)
    }

    fn write_ints(
        &mut self,
        h: Resource<BatchRes>,
        column: String,
        values: Vec<Option<i64>>,
    ) -> Res<()> {
        now::batch::HostBatch::write_ints(self, h, column, values).map_err(error)
    }

    fn write_floats(
        &mut self,
        h: Resource<BatchRes>,
        column: String,
        values: Vec<Option<f64>>,
    ) -> Res<()> {
        now::batch::HostBatch::write_floats(self, h, column, values).map_err(error)
    }

    fn set_attribute(
        &mut self,
        h: Resource<BatchRes>,
        set: types::AttributeSet,
        key: String,
        values: Vec<Option<String>>,
    ) -> Res<()> {
        now::batch::HostBatch::set_attribute(self, h, set_now(set), key, values).map_err(error)
    }

    fn remove_attribute(
        &mut self,
        h: Resource<BatchRes>,
        set: types::AttributeSet,
        key: String,
    ) -> Res<()> {
        now::batch::HostBatch::remove_attribute(self, h, set_now(set), key).map_err(error)
    }

    fn drop_rows(&mut self, h: Resource<BatchRes>, mask: Vec<bool>) -> Res<u32> {
        now::batch::HostBatch::drop_rows(self, h, mask).map_err(error)
    }

    fn drop(&mut self, h: Resource<BatchRes>) -> wasmtime::Result<()> {
        now::batch::HostBatch::drop(self, h)
    }
}

impl emit::Host for HostState {
    fn emit(&mut self, s: types::Signal, otlp_json: String) -> Res<u32> {
        now::emit::Host::emit(self, signal_now(s), otlp_json).map_err(error)
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => now::log::Level::Trace,
            log::Level::Debug => now::log::Level::Debug,
            log::Level::Info => now::log::Level::Info,
            log::Level::Warn => now::log::Level::Warn,
            log::Level::Error => now::log::Level::Error,
        };
        now::log::Host::log(self, level, message);
    }
}

impl metrics::Host for HostState {
    fn counter_add(&mut self, name: String, value: u64, labels: Vec<metrics::Label>) -> Res<()> {
        now::metrics::Host::counter_add(self, name, value, labels_now(labels)).map_err(error)
    }

    fn gauge_set(&mut self, name: String, value: f64, labels: Vec<metrics::Label>) -> Res<()> {
        now::metrics::Host::gauge_set(self, name, value, labels_now(labels)).map_err(error)
    }

    fn histogram_record(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<metrics::Label>,
    ) -> Res<()> {
        now::metrics::Host::histogram_record(self, name, value, labels_now(labels)).map_err(error)
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        now::state::Host::get(self, key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Res<()> {
        now::state::Host::set(self, key, value).map_err(error)
    }

    fn delete(&mut self, key: String) -> bool {
        now::state::Host::delete(self, key)
    }
}

impl lookup::Host for HostState {
    fn get(&mut self, table: String, key: String) -> Res<Option<String>> {
        now::lookup::Host::get(self, table, key).map_err(error)
    }

    fn get_many(&mut self, table: String, keys: Vec<String>) -> Res<Vec<Option<String>>> {
        now::lookup::Host::get_many(self, table, keys).map_err(error)
    }
}

impl clock::Host for HostState {
    fn now(&mut self) -> Res<u64> {
        now::clock::Host::now(self).map_err(error)
    }
}
