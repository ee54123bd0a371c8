//! weir-wasm's integration tests, one binary: each former test file is a
//! module, and `common` builds the guest plugins (`tests/plugins/`,
//! `plugins/`) they load.
//!
//! * [`containment`]: hostile plugins are stopped, replaced and counted.
//! * [`pipeline`]: the plugin host inside a pipeline: acknowledgements,
//!   the compile cache, hot reload, the example plugin in three languages.

mod common;
mod containment;
mod pipeline;
