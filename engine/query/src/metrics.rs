//! The SQL endpoint's metrics (`weir_sql_*`): queries by outcome, and how
//! long the successful ones took.

use metrics::{Counter, Histogram, Unit};
use weir_core::metrics::{CounterDef, HistogramDef};

const QUERIES: CounterDef<1> = CounterDef {
    name: "weir_sql_queries_total",
    help: "SQL queries answered, by outcome (ok, or the error's kind: syntax, plan, timeout, ...).",
    unit: Some(Unit::Count),
    labels: ["outcome"],
};

const QUERY_DURATION_SECONDS: HistogramDef<0> = HistogramDef {
    name: "weir_sql_query_duration_seconds",
    help: "How long a successful SQL query took, from its request to its last byte.",
    unit: Some(Unit::Seconds),
    labels: [],
};

/// Gives the recorder the help text of the SQL endpoint's metrics.
pub fn describe() {
    QUERIES.describe();
    QUERY_DURATION_SECONDS.describe();
}

/// `weir_sql_queries_total{outcome}`.
pub(crate) fn queries(outcome: &'static str) -> Counter {
    QUERIES.with([outcome.into()])
}

/// `weir_sql_query_duration_seconds`.
pub(crate) fn query_duration() -> Histogram {
    QUERY_DURATION_SECONDS.with([])
}
