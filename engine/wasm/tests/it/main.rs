//! weir-wasm's integration tests, one binary: each former test file is a
//! module, and `common` builds the guest plugins (`tests/plugins/`,
//! `plugins/`) they load.
//!
//! * [`cache`]: the compile cache is used, and refused when others could
//!   have written it.
//! * [`containment`]: hostile plugins are stopped, replaced and counted.
//! * [`pipeline`]: the plugin host inside a pipeline: acknowledgements,
//!   hot reload, the example plugin in three languages.

mod cache;
mod common;
mod containment;
mod pipeline;
