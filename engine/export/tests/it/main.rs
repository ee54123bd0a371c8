//! weir-export's end-to-end tests: each exporter against real backends and
//! small HTTP servers that answer as a backend may. One test binary for the
//! crate, a module per exporter.

mod loki;
mod otlp;
mod remote_write;
