//! Write Weir processor plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`] and one [`export_plugin!`]
//! line; built with `cargo build --target wasm32-wasip2 --release` (crate
//! type `cdylib`) it is a WebAssembly component for Weir's `wasm`
//! processor.
//!
//! The plugin works on a [`Batch`] that stays in the host: it reads the
//! columns it needs ([`Batch::text`], [`Batch::ints`],
//! [`Batch::attribute`]), writes back only what it changes, drops rows by
//! mask and emits new records. Each call moves one whole column across the
//! boundary, so a plugin touching two columns of a 1,024-row batch makes a
//! handful of calls, not thousands. Text columns cross as one [`Text`]
//! (Arrow's layout: one buffer of bytes, one of offsets), which is what
//! [`Batch::map_strings`] and [`Batch::retain_by_strings`] use;
//! [`Batch::strings`] gives a `Vec<Option<String>>` at the cost of an
//! allocation per row on each side.
//!
//! ```no_run
//! use weir_plugin::{Batch, Error, Plugin, export_plugin};
//!
//! /// Drops DEBUG and lower logs, masks digits in the body.
//! struct Redact;
//!
//! impl Plugin for Redact {
//!     fn init(_config: &str) -> Result<Self, Error> {
//!         Ok(Redact)
//!     }
//!
//!     fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
//!         // severity_number 1-8 is TRACE and DEBUG; 0 is "unspecified".
//!         batch.retain_by_ints("severity_number", |s| !matches!(s, Some(1..=8)))?;
//!         batch.map_strings("body", |body| {
//!             body.contains(|c: char| c.is_ascii_digit())
//!                 .then(|| body.replace(|c: char| c.is_ascii_digit(), "#"))
//!         })?;
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Redact);
//! ```
//!
//! With the `harness` feature, [`harness`] runs the same plugin natively,
//! in plain `cargo test`, on records given as OTLP/JSON: one `process`
//! ([`harness::run`]), or a [`harness::Session`] of `process` and `tick`
//! calls on one instance, with the host's [`hold`] simulated.
//!
//! [`config`] reads the JSON text `init` receives into a settings type,
//! an error naming the key at fault ([`config::parse_json`], feature
//! `config`, on by default), and the durations and sizes written in it
//! ([`config::duration_ns`], [`config::byte_size`]).
//!
//! The SDK speaks `weir:plugin@0.2.0` (`wit/`). Besides 0.1.0's services it
//! offers [`Batch::attribute_keys`], the [`hold`] (rows kept in the host
//! across calls: [`Batch::hold`], [`hold::release`], [`hold::discard`],
//! [`hold::holding`]), [`Plugin::partition_by`] (rows of one value always
//! meet the same instance), and `tick` on every instance.

extern crate self as weir_plugin;

use std::time::Duration;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The bindings generated from the `weir:plugin` WIT package.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "processor",
        pub_export_macro: true,
        export_macro_name: "__export",
        default_bindings_module: "::weir_plugin::bindings",
        runtime_path: "::weir_plugin::__wit_bindgen::rt",
    });
}

pub mod config;
#[cfg(feature = "harness")]
pub mod harness;
pub mod hold;
// Without the harness nothing builds a native table.
#[cfg_attr(not(feature = "harness"), allow(dead_code))]
mod native;
pub mod services;
mod text;
mod units;

pub use hold::Held;

pub use text::Text;

pub use bindings::weir::plugin::batch::{AttributeColumn, AttributeWrite};
pub use bindings::weir::plugin::types::{AttributeSet, Error, Signal};

use bindings::weir::plugin::batch::Batch as WitBatch;

/// A processor plugin. One value lives per instance: `init` makes it,
/// `process` and `tick` use it.
pub trait Plugin: Sized + 'static {
    /// Builds the plugin from its `config` table of the pipeline file,
    /// given as JSON text (`{}` when there is none). An error stops the
    /// pipeline from starting and shows the message.
    fn init(config: &str) -> Result<Self, Error>;

    /// Processes one batch in place.
    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error>;

    /// How often [`Plugin::tick`] should run; `None` (the default) for
    /// never. The first instance's answer counts.
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// A column (`trace_id`, `service_name`, ...) by whose value the host
    /// routes rows to instances: every row with the same value always goes
    /// to the same instance, so what an instance keeps per value (in its
    /// own memory or its [`hold`]) sees all of it. `None` (the default)
    /// lets the host split large batches across idle instances by
    /// position. The first instance's answer counts; a batch without the
    /// column goes whole to one instance.
    fn partition_by(&self) -> Option<&str> {
        None
    }

    /// Called every [`Plugin::tick_every`] on every instance (one after
    /// the other, never during a `process`) with the time in nanoseconds
    /// since the Unix epoch; emit records with [`services::emit`], release
    /// held rows with [`hold::release`].
    fn tick(&mut self, now: u64) -> Result<(), Error> {
        let _ = now;
        Ok(())
    }
}

impl AttributeColumn {
    /// The column of one value (or none) per row.
    pub fn from_options(values: Vec<Option<String>>) -> Self {
        let mut column = AttributeColumn {
            values: Vec::new(),
            rows: Vec::with_capacity(values.len()),
        };
        for value in values {
            match value {
                Some(v) => {
                    column.values.push(v);
                    column
                        .rows
                        .push(u32::try_from(column.values.len()).unwrap_or(u32::MAX));
                }
                None => column.rows.push(0),
            }
        }
        column
    }

    /// The value of `row`, `None` where it has none (or `row` is past the
    /// rows, or its index past the values).
    pub fn get(&self, row: usize) -> Option<&str> {
        let at = *self.rows.get(row)?;
        let at = usize::try_from(at).ok()?.checked_sub(1)?;
        self.values.get(at).map(String::as_str)
    }

    /// The value of every row.
    pub fn to_options(&self) -> Vec<Option<String>> {
        (0..self.rows.len())
            .map(|row| self.get(row).map(str::to_owned))
            .collect()
    }
}

/// The rows a plugin works on, held by the host (or, in tests, by the
/// [`harness`]).
pub struct Batch<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Wit(&'a WitBatch),
    #[cfg_attr(not(feature = "harness"), allow(dead_code))]
    Native(&'a mut native::Table),
}

impl<'a> Batch<'a> {
    #[doc(hidden)]
    pub fn from_wit(batch: &'a WitBatch) -> Self {
        Batch {
            inner: Inner::Wit(batch),
        }
    }

    #[cfg(feature = "harness")]
    pub(crate) fn from_native(table: &'a mut native::Table) -> Self {
        Batch {
            inner: Inner::Native(table),
        }
    }

    /// The signal of the rows.
    pub fn signal(&self) -> Signal {
        match &self.inner {
            Inner::Wit(b) => b.signal(),
            Inner::Native(t) => t.signal,
        }
    }

    /// The number of rows now.
    pub fn num_rows(&self) -> usize {
        match &self.inner {
            Inner::Wit(b) => b.num_rows() as usize,
            Inner::Native(t) => t.num_rows(),
        }
    }

    /// The column names, in schema order.
    pub fn column_names(&self) -> Vec<String> {
        match &self.inner {
            Inner::Wit(b) => b.column_names(),
            Inner::Native(t) => t.column_names(),
        }
    }

    /// Every row's value of `column` as text (`None` is null).
    pub fn strings(&self, column: &str) -> Result<Vec<Option<String>>, Error> {
        match &self.inner {
            Inner::Wit(b) => b.read_strings(column),
            Inner::Native(t) => t.read_strings(column),
        }
    }

    /// Every row's value of `column` as text, in one [`Text`]: the cheap
    /// read for long values such as `body` (three copies in all, not one
    /// allocation per row).
    pub fn text(&self, column: &str) -> Result<Text, Error> {
        match &self.inner {
            Inner::Wit(b) => Text::from_wit(b.read_text(column)?),
            Inner::Native(t) => Ok(t
                .read_strings(column)?
                .iter()
                .map(Option::as_deref)
                .collect()),
        }
    }

    /// Every row's value of an integer or time column (times in
    /// nanoseconds since the epoch).
    pub fn ints(&self, column: &str) -> Result<Vec<Option<i64>>, Error> {
        match &self.inner {
            Inner::Wit(b) => b.read_ints(column),
            Inner::Native(t) => t.read_ints(column),
        }
    }

    /// Every row's value of a numeric column as a double.
    pub fn floats(&self, column: &str) -> Result<Vec<Option<f64>>, Error> {
        match &self.inner {
            Inner::Wit(b) => b.read_floats(column),
            Inner::Native(t) => t.read_floats(column),
        }
    }

    /// The value of attribute `key` in every row.
    pub fn attribute(&self, set: AttributeSet, key: &str) -> Result<Vec<Option<String>>, Error> {
        match &self.inner {
            Inner::Wit(b) => b.read_attribute(set, key),
            Inner::Native(t) => t.read_attribute(set, key),
        }
    }

    /// The value of attribute `key` in every row, each distinct value
    /// once ([`AttributeColumn::get`] gives a row's): the cheap read for
    /// values that repeat from row to row, such as resource attributes.
    pub fn attribute_column(&self, set: AttributeSet, key: &str) -> Result<AttributeColumn, Error> {
        match &self.inner {
            Inner::Wit(b) => b.read_attribute_column(set, key),
            Inner::Native(t) => t.read_attribute_column(set, key),
        }
    }

    /// Changes several attributes of `set` in one pass over the batch:
    /// every key of `remove` leaves every row, then each write sets its
    /// key in the rows its column gives a value for (as
    /// [`Batch::set_attribute`] does). One call per attribute set is the
    /// cheap way to write many keys: a call per key rebuilds the set once
    /// per key. Nothing is changed if any write is refused.
    pub fn write_attributes(
        &mut self,
        set: AttributeSet,
        remove: &[String],
        writes: &[AttributeWrite],
    ) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.write_attributes(set, remove, writes),
            Inner::Native(t) => t.write_attributes(set, remove, writes),
        }
    }

    /// Replaces a text column, one value per row.
    pub fn set_strings(&mut self, column: &str, values: &[Option<String>]) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.write_strings(column, values),
            Inner::Native(t) => t.write_strings(column, values),
        }
    }

    /// Replaces a text column with `values`, one per row: the cheap write
    /// for long values.
    pub fn set_text(&mut self, column: &str, values: Text) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.write_text(column, &values.into_wit()),
            Inner::Native(t) => {
                let values: Vec<Option<String>> =
                    values.iter().map(|v| v.map(str::to_owned)).collect();
                t.write_strings(column, &values)
            }
        }
    }

    /// Replaces an integer or time column, one value per row.
    pub fn set_ints(&mut self, column: &str, values: &[Option<i64>]) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.write_ints(column, values),
            Inner::Native(t) => t.write_ints(column, values),
        }
    }

    /// Replaces a floating-point column, one value per row.
    pub fn set_floats(&mut self, column: &str, values: &[Option<f64>]) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.write_floats(column, values),
            Inner::Native(t) => t.write_floats(column, values),
        }
    }

    /// Sets attribute `key` to `values[i]` in row `i` where it is `Some`.
    pub fn set_attribute(
        &mut self,
        set: AttributeSet,
        key: &str,
        values: &[Option<String>],
    ) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.set_attribute(set, key, values),
            Inner::Native(t) => t.set_attribute(set, key, values),
        }
    }

    /// Sets attribute `key` to the same `value` in every row.
    pub fn set_attribute_all(
        &mut self,
        set: AttributeSet,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        let write = AttributeWrite {
            key: key.to_string(),
            column: AttributeColumn {
                values: vec![value.to_string()],
                rows: vec![1; self.num_rows()],
            },
        };
        self.write_attributes(set, &[], &[write])
    }

    /// Removes attribute `key` from every row.
    pub fn remove_attribute(&mut self, set: AttributeSet, key: &str) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.remove_attribute(set, key),
            Inner::Native(t) => t.remove_attribute(set, key),
        }
    }

    /// The distinct keys of attribute set `set` present in any row, each
    /// once, in the order they are first seen: what a plugin that works on
    /// every attribute reads before [`Batch::attribute`].
    pub fn attribute_keys(&self, set: AttributeSet) -> Result<Vec<String>, Error> {
        match &self.inner {
            Inner::Wit(b) => b.attribute_keys(set),
            Inner::Native(t) => t.attribute_keys(set),
        }
    }

    /// Moves every row whose key is `Some` out of the batch into this
    /// instance's [`hold`], under that key (`keys`: one entry per row;
    /// `String`s, as the host takes them, so nothing is copied to call).
    /// The rows leave the batch at once, as with [`Batch::drop_rows`], and
    /// count as handled. Returns the rows moved and the bytes the instance
    /// now holds in all. [`Error::LimitExceeded`] (nothing moved) past the
    /// pipeline's `max_held_bytes`. Get them back with [`hold::release`]
    /// or drop them with [`hold::discard`], in this call or a later one.
    pub fn hold(&mut self, keys: &[Option<String>]) -> Result<Held, Error> {
        match &mut self.inner {
            Inner::Wit(b) => bindings::weir::plugin::hold::hold(b, keys).map(Held::from),
            Inner::Native(t) => t.hold(keys),
        }
    }

    /// Drops the rows where `mask` is true; returns how many are left.
    pub fn drop_rows(&mut self, mask: &[bool]) -> Result<usize, Error> {
        match &mut self.inner {
            Inner::Wit(b) => b.drop_rows(mask).map(|n| n as usize),
            Inner::Native(t) => t.drop_rows(mask),
        }
    }

    /// Keeps the rows whose value of the integer column satisfies `keep`
    /// (one read, at most one drop). Returns how many are left.
    pub fn retain_by_ints(
        &mut self,
        column: &str,
        keep: impl Fn(Option<i64>) -> bool,
    ) -> Result<usize, Error> {
        let mask: Vec<bool> = self.ints(column)?.into_iter().map(|v| !keep(v)).collect();
        self.drop_where(&mask)
    }

    /// Keeps the rows whose value of the text column satisfies `keep`.
    pub fn retain_by_strings(
        &mut self,
        column: &str,
        keep: impl Fn(Option<&str>) -> bool,
    ) -> Result<usize, Error> {
        let mask: Vec<bool> = self.text(column)?.iter().map(|v| !keep(v)).collect();
        self.drop_where(&mask)
    }

    fn drop_where(&mut self, mask: &[bool]) -> Result<usize, Error> {
        if mask.iter().any(|d| *d) {
            self.drop_rows(mask)
        } else {
            Ok(mask.len())
        }
    }

    /// Rewrites the non-null values of a text column: `f` returns the new
    /// text, or `None` to leave a value as it is. The column is written
    /// back only if something changed. Returns how many values changed.
    pub fn map_strings(
        &mut self,
        column: &str,
        f: impl Fn(&str) -> Option<String>,
    ) -> Result<usize, Error> {
        let values = self.text(column)?;
        let mut out = Text::with_capacity(values.len(), values.as_bytes().len());
        let mut changed = 0;
        for value in values.iter() {
            match value.map(|v| (v, f(v))) {
                Some((_, Some(new))) => {
                    out.push(Some(&new));
                    changed += 1;
                }
                Some((v, None)) => out.push(Some(v)),
                None => out.push(None),
            }
        }
        if changed > 0 {
            self.set_text(column, out)?;
        }
        Ok(changed)
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

    pub use bindings::Settings;

    pub fn init<P: Plugin>(cell: &RefCell<Option<P>>, config: String) -> Result<Settings, Error> {
        let plugin = P::init(&config)?;
        let tick_every_ms = plugin
            .tick_every()
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1));
        let partition_by = plugin.partition_by().map(str::to_owned);
        *cell.borrow_mut() = Some(plugin);
        Ok(Settings {
            tick_every_ms,
            partition_by,
        })
    }

    fn not_initialised() -> Error {
        Error::Failed("the plugin was called before `init`".to_string())
    }

    pub fn process<P: Plugin>(cell: &RefCell<Option<P>>, input: &WitBatch) -> Result<(), Error> {
        let mut plugin = cell.borrow_mut();
        let plugin = plugin.as_mut().ok_or_else(not_initialised)?;
        plugin.process(&mut Batch::from_wit(input))
    }

    pub fn tick<P: Plugin>(cell: &RefCell<Option<P>>, now: u64) -> Result<(), Error> {
        let mut plugin = cell.borrow_mut();
        let plugin = plugin.as_mut().ok_or_else(not_initialised)?;
        plugin.tick(now)
    }
}

/// Exports a [`Plugin`] type as the component's `processor` world.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        struct __WeirPluginExport;

        ::std::thread_local! {
            static __WEIR_PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                const { ::std::cell::RefCell::new(::std::option::Option::None) };
        }

        impl $crate::bindings::Guest for __WeirPluginExport {
            fn init(
                config: ::std::string::String,
            ) -> ::std::result::Result<$crate::__private::Settings, $crate::Error> {
                __WEIR_PLUGIN.with(|cell| $crate::__private::init::<$plugin>(cell, config))
            }

            fn process(
                input: &$crate::bindings::weir::plugin::batch::Batch,
            ) -> ::std::result::Result<(), $crate::Error> {
                __WEIR_PLUGIN.with(|cell| $crate::__private::process::<$plugin>(cell, input))
            }

            fn tick(now: u64) -> ::std::result::Result<(), $crate::Error> {
                __WEIR_PLUGIN.with(|cell| $crate::__private::tick::<$plugin>(cell, now))
            }
        }

        $crate::bindings::__export!(__WeirPluginExport with_types_in $crate::bindings);
    };
}
