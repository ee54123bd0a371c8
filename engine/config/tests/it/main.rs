//! weir-config's integration tests, one binary: each former test file is a
//! module.
//!
//! * [`errors`]: each kind of mistake in a pipeline file, diagnostic by
//!   diagnostic.
//! * [`golden`]: every `tests/pipelines/NAME.toml` against its `.out`.
//! * [`plan`]: what the plan of a valid pipeline holds.

mod errors;
mod golden;
mod plan;
