//! The `wasm` processor's metrics (`weir_plugin_*`), labelled by component:
//! reloads, failures, instances replaced, the rows plugins hold (`hold`)
//! and lookup tables reloaded; and the names of the metrics
//! a plugin records itself through the WIT `metrics` interface.

use metrics::{Counter, Gauge, Unit};
use weir_core::metrics::{CounterDef, GaugeDef};

use crate::FailureKind;

const RELOADS: CounterDef<1> = CounterDef {
    name: "weir_plugin_reloads_total",
    help: "Times the plugin file changed and the new version was loaded.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const ERRORS: CounterDef<2> = CounterDef {
    name: "weir_plugin_errors_total",
    help: "Failed calls into the plugin, by kind (timeout, memory, panic, trap, plugin_error, invalid_output, output_limit, init).",
    unit: Some(Unit::Count),
    labels: ["component", "kind"],
};

const INSTANCES_REPLACED: CounterDef<1> = CounterDef {
    name: "weir_plugin_instances_replaced_total",
    help: "Instances discarded after a failed call and replaced by a fresh one.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const INSTANCES_RECYCLED: CounterDef<1> = CounterDef {
    name: "weir_plugin_instances_recycled_total",
    help: "Instances replaced between batches because they held most of their max_memory.",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const HELD_ROWS: GaugeDef<1> = GaugeDef {
    name: "weir_plugin_held_rows",
    help: "Rows the plugin's instances hold now (the hold interface of weir:plugin@0.2.0).",
    unit: Some(Unit::Count),
    labels: ["component"],
};

const HELD_BYTES: GaugeDef<1> = GaugeDef {
    name: "weir_plugin_held_bytes",
    help: "Bytes of Arrow buffers the plugin's instances hold now; bounded by max_held_bytes.",
    unit: Some(Unit::Bytes),
    labels: ["component"],
};

const LOOKUP_RELOADS: CounterDef<2> = CounterDef {
    name: "weir_plugin_lookup_reloads_total",
    help: "Times a lookup file changed and the table was loaded again.",
    unit: Some(Unit::Count),
    labels: ["component", "table"],
};

const LOOKUP_RELOAD_ERRORS: CounterDef<2> = CounterDef {
    name: "weir_plugin_lookup_reload_errors_total",
    help: "Times a lookup file changed but did not load (or was gone); the table as last loaded stays in use.",
    unit: Some(Unit::Count),
    labels: ["component", "table"],
};

/// What the name a plugin gives a metric of its own is prefixed with; such
/// a metric is labelled with `component` and the plugin's labels.
const PLUGIN_METRIC_PREFIX: &str = "weir_plugin_";

/// Gives the recorder the help text of the `wasm` processor's metrics.
pub fn describe() {
    RELOADS.describe();
    ERRORS.describe();
    INSTANCES_REPLACED.describe();
    INSTANCES_RECYCLED.describe();
    HELD_ROWS.describe();
    HELD_BYTES.describe();
    LOOKUP_RELOADS.describe();
    LOOKUP_RELOAD_ERRORS.describe();
}

/// `weir_plugin_reloads_total{component}`.
pub(crate) fn reloads(component: &str) -> Counter {
    RELOADS.with([component.to_string().into()])
}

/// `weir_plugin_errors_total{component, kind}`.
pub(crate) fn errors(component: &str, kind: FailureKind) -> Counter {
    ERRORS.with([component.to_string().into(), kind.as_str().into()])
}

/// `weir_plugin_instances_replaced_total{component}`.
pub(crate) fn instances_replaced(component: &str) -> Counter {
    INSTANCES_REPLACED.with([component.to_string().into()])
}

/// `weir_plugin_instances_recycled_total{component}`.
pub(crate) fn instances_recycled(component: &str) -> Counter {
    INSTANCES_RECYCLED.with([component.to_string().into()])
}

/// `weir_plugin_held_rows{component}`.
pub(crate) fn held_rows(component: &str) -> Gauge {
    HELD_ROWS.with([component.to_string().into()])
}

/// `weir_plugin_held_bytes{component}`.
pub(crate) fn held_bytes(component: &str) -> Gauge {
    HELD_BYTES.with([component.to_string().into()])
}

/// `weir_plugin_lookup_reloads_total{component, table}`.
pub(crate) fn lookup_reloads(component: &str, table: &str) -> Counter {
    LOOKUP_RELOADS.with([component.to_string().into(), table.to_string().into()])
}

/// `weir_plugin_lookup_reload_errors_total{component, table}`.
pub(crate) fn lookup_reload_errors(component: &str, table: &str) -> Counter {
    LOOKUP_RELOAD_ERRORS.with([component.to_string().into(), table.to_string().into()])
}

/// The name in `/metrics` of the metric a plugin calls `name`.
pub(crate) fn plugin_metric_name(name: &str) -> String {
    format!("{PLUGIN_METRIC_PREFIX}{name}")
}
