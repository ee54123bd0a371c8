//! The `weir` binary's own metrics: its version, and the reloads of the
//! pipeline file.

use metrics::{Counter, Gauge, Unit};
use weir_core::metrics::{CounterDef, GaugeDef};

const BUILD_INFO: GaugeDef<1> = GaugeDef {
    name: "weir_build_info",
    help: "Always 1, labelled with the version of Weir that runs.",
    unit: None,
    labels: ["version"],
};

const PIPELINE_RELOADS: CounterDef<1> = CounterDef {
    name: "weir_pipeline_reloads_total",
    help: "Reloads of the pipeline file on SIGHUP, by result (applied, invalid).",
    unit: Some(Unit::Count),
    labels: ["result"],
};

/// Gives the recorder the help text of the binary's metrics.
pub fn describe() {
    BUILD_INFO.describe();
    PIPELINE_RELOADS.describe();
}

/// `weir_build_info{version}`.
pub fn build_info() -> Gauge {
    BUILD_INFO.with([env!("CARGO_PKG_VERSION").into()])
}

/// `weir_pipeline_reloads_total{result}`.
pub fn pipeline_reloads(result: &'static str) -> Counter {
    PIPELINE_RELOADS.with([result.into()])
}
