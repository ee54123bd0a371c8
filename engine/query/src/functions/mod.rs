//! Weir's SQL helper functions, registered in every query's session.
//!
//! | function | does |
//! |---|---|
//! | `histogram_quantile(q, bucket_counts, explicit_bounds)` | the φ-quantile of an explicit-bucket histogram, Prometheus' linear interpolation |
//! | `sum_buckets(bucket_counts)` (aggregate) | element-wise sum of bucket counts, to merge histogram points |
//! | `hex_id(trace_id)` | a binary id as lowercase hex |
//! | `duration_ms(duration_ns)` | nanoseconds (or an interval `end_time - start_time`) as milliseconds |
//! | `severity_name(severity_number)` | `TRACE` .. `FATAL` |
//! | `span_kind_name(kind)` | `internal`, `server`, `client`, `producer`, `consumer` |
//! | `status_name(status_code)` | `unset`, `ok`, `error` |
//!
//! They are documented for users in `docs/sql.md`.

pub mod caps;
mod histogram;
mod names;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{AggregateUDF, ColumnarValue, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use histogram::bucket_quantile;

/// The scalar functions Weir adds.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(histogram::HistogramQuantile::new()),
        ScalarUDF::from(names::HexId::new()),
        ScalarUDF::from(names::DurationMs::new()),
        ScalarUDF::from(names::CodeName::severity()),
        ScalarUDF::from(names::CodeName::span_kind()),
        ScalarUDF::from(names::CodeName::status()),
    ]
}

/// The aggregate functions Weir adds.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(histogram::SumBuckets::new())]
}

/// Registers every Weir function into `ctx`, and caps DataFusion's
/// functions that could allocate without bound ([`caps`]).
pub fn register(ctx: &SessionContext) {
    caps::register(ctx);
    for udf in scalar_functions() {
        ctx.register_udf(udf);
    }
    for udaf in aggregate_functions() {
        ctx.register_udaf(udaf);
    }
}

/// Runs `f` over the arguments as arrays: one row when every argument is a
/// constant (and the answer is a constant), `rows` rows otherwise.
fn map_rows(
    args: &[ColumnarValue],
    rows: usize,
    f: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let all_scalars = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    if all_scalars {
        let arrays = args
            .iter()
            .map(|a| a.to_array(1))
            .collect::<Result<Vec<_>>>()?;
        let out = f(&arrays)?;
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
    }
    let arrays = args
        .iter()
        .map(|a| a.to_array(rows))
        .collect::<Result<Vec<_>>>()?;
    let out = f(&arrays)?;
    debug_assert_eq!(out.len(), rows);
    Ok(ColumnarValue::Array(Arc::clone(&out)))
}
