//! weir-wasm's integration tests, one binary: each former test file is a
//! module, and `common` builds the guest plugins (`tests/plugins/`,
//! `plugins/`) they load.
//!
//! * [`cache`]: the compile cache is used, and refused when others could
//!   have written it.
//! * [`containment`]: hostile plugins are stopped, replaced and counted.
//! * [`contract`]: what `weir:plugin@0.2.0` adds (hold, attribute keys,
//!   partitioning, ticks on every instance), and 0.1.0 plugins still run.
//! * [`lookup`]: lookup tables from CSV and JSON, reloaded on change, as
//!   the `enrich` plugin reads them.
//! * [`pipeline`]: the plugin host inside a pipeline: acknowledgements,
//!   hot reload, the example plugin in three languages.

mod cache;
mod common;
mod containment;
mod contract;
mod lookup;
mod pipeline;
