//! Explicit-bucket histograms: `histogram_quantile` and `sum_buckets`.
//!
//! A row of the `metrics` table with `metric_type = 'histogram'` holds
//! `bucket_counts` (`List<UInt64>`, the count of each bucket, not
//! cumulative) and `explicit_bounds` (`List<Float64>`, the upper bound of
//! each bucket but the last, whose upper bound is +Inf). That is the same
//! information as Prometheus' `_bucket{le=...}` series, so the quantile
//! follows Prometheus' `histogram_quantile` exactly.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::map_rows;

/// The φ-quantile of one explicit-bucket histogram, with Prometheus'
/// semantics (`bucketQuantile` in Prometheus' `promql/quantile.go`):
///
/// * `counts[i]` observations fell in bucket `i`, whose upper bound is
///   `bounds[i]`, and `+Inf` for the last bucket; so `counts` has one more
///   entry than `bounds`. Anything else is not a histogram: `None`.
/// * `q` NaN gives NaN, `q < 0` gives -Inf, `q > 1` gives +Inf.
/// * No observations, or only the +Inf bucket: NaN.
/// * The rank `q * total` is located in the cumulative counts; inside a
///   bucket the value is interpolated linearly between its lower bound
///   (the previous bound, or 0 for the first bucket) and its upper bound.
/// * In the +Inf bucket, the result is the largest finite bound.
/// * In the first bucket, when its upper bound is <= 0, that bound.
pub fn bucket_quantile(q: f64, counts: &[f64], bounds: &[f64]) -> Option<f64> {
    if counts.is_empty() || counts.len() != bounds.len() + 1 {
        return None;
    }
    if q.is_nan() {
        return Some(f64::NAN);
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    // Prometheus' buckets: (upper bound, cumulative count).
    let mut cumulative = 0.0;
    let mut buckets: Vec<(f64, f64)> = bounds
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(counts.iter().copied())
        .map(|(upper, count)| {
            cumulative += count;
            (upper, cumulative)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
        return Some(f64::NAN);
    }
    // Merge buckets of equal upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (upper, count) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == upper => last.1 += count,
            _ => merged.push((upper, count)),
        }
    }
    // Cumulative counts never decrease.
    let mut max = f64::NEG_INFINITY;
    for bucket in &mut merged {
        max = max.max(bucket.1);
        bucket.1 = max;
    }
    let buckets = merged;
    if buckets.len() < 2 {
        return Some(f64::NAN);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return Some(f64::NAN);
    }
    let mut rank = q * observations;
    let last = buckets.len() - 1;
    let b = buckets[..last].partition_point(|bucket| bucket.1 < rank);
    if b == last {
        return Some(buckets[last - 1].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    Some(bucket_start + (bucket_end - bucket_start) * (rank / count))
}

/// The type lists of numbers are coerced to.
fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

/// Whether `t` is a list (of any kind) of numbers, or a NULL.
fn is_number_list(t: &DataType) -> bool {
    match t {
        DataType::Null => true,
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => {
            item.data_type().is_numeric() || item.data_type().is_null()
        }
        _ => false,
    }
}

/// `histogram_quantile(q, bucket_counts, explicit_bounds)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct HistogramQuantile {
    signature: Signature,
}

impl HistogramQuantile {
    pub(super) fn new() -> Self {
        HistogramQuantile {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HistogramQuantile {
    fn name(&self) -> &str {
        "histogram_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [q, counts, bounds] = arg_types else {
            return plan_err!(
                "histogram_quantile takes three arguments, got {}: write \
                 histogram_quantile(0.95, bucket_counts, explicit_bounds)",
                arg_types.len()
            );
        };
        if !(q.is_numeric() || q.is_null()) {
            return plan_err!(
                "histogram_quantile's first argument is the quantile, a number between 0 and 1; got {q}"
            );
        }
        if !is_number_list(counts) {
            return plan_err!(
                "histogram_quantile's second argument is the bucket counts, a list of numbers \
                 such as the bucket_counts column; got {counts}"
            );
        }
        if !is_number_list(bounds) {
            return plan_err!(
                "histogram_quantile's third argument is the bucket bounds, a list of numbers \
                 such as the explicit_bounds column; got {bounds}"
            );
        }
        Ok(vec![
            DataType::Float64,
            list_of(DataType::Float64),
            list_of(DataType::Float64),
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_rows(&args.args, args.number_rows, |arrays| {
            let q = cast(&arrays[0], &DataType::Float64)?;
            let q = q.as_primitive::<Float64Type>();
            let counts = cast(&arrays[1], &list_of(DataType::Float64))?;
            let counts = counts.as_list::<i32>();
            let bounds = cast(&arrays[2], &list_of(DataType::Float64))?;
            let bounds = bounds.as_list::<i32>();
            let mut counts_row = Vec::new();
            let mut bounds_row = Vec::new();
            let out: Float64Array = (0..q.len())
                .map(|row| {
                    if q.is_null(row) || counts.is_null(row) || bounds.is_null(row) {
                        return None;
                    }
                    if !floats(&counts.value(row), &mut counts_row)
                        || !floats(&bounds.value(row), &mut bounds_row)
                    {
                        return None;
                    }
                    bucket_quantile(q.value(row), &counts_row, &bounds_row)
                })
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// Copies a list's doubles into `out`; false when one is null.
fn floats(values: &ArrayRef, out: &mut Vec<f64>) -> bool {
    out.clear();
    if values.null_count() > 0 {
        return false;
    }
    out.extend(values.as_primitive::<Float64Type>().values().iter());
    true
}

/// `sum_buckets(bucket_counts)`: the element-wise sum of the bucket counts
/// of many histogram points of one layout, i.e. the histogram of all their
/// observations together. Nulls are skipped; counts of different lengths
/// are an error (the points have different bounds).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct SumBuckets {
    signature: Signature,
}

impl SumBuckets {
    pub(super) fn new() -> Self {
        SumBuckets {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for SumBuckets {
    fn name(&self) -> &str {
        "sum_buckets"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if is_number_list(t) => Ok(vec![list_of(DataType::UInt64)]),
            [other] => plan_err!(
                "sum_buckets expects bucket counts, a list of integers such as the bucket_counts \
                 column; got {other}"
            ),
            _ => plan_err!(
                "sum_buckets takes one argument, got {}: write sum_buckets(bucket_counts)",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(DataType::UInt64))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SumBucketsAccumulator::default()))
    }
}

/// The running element-wise sum; `None` until a non-null list arrives.
#[derive(Debug, Default)]
struct SumBucketsAccumulator {
    sums: Option<Vec<u64>>,
}

impl Accumulator for SumBucketsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(input) = values.first() else {
            return Ok(());
        };
        let lists = cast(input, &list_of(DataType::UInt64))?;
        let lists = lists.as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let counts = lists.value(row);
            let counts = counts.as_primitive::<UInt64Type>();
            match &mut self.sums {
                None => {
                    self.sums = Some(counts.iter().map(|c| c.unwrap_or(0)).collect());
                }
                Some(sums) if sums.len() == counts.len() => {
                    for (sum, count) in sums.iter_mut().zip(counts.iter()) {
                        *sum = sum.saturating_add(count.unwrap_or(0));
                    }
                }
                Some(sums) => {
                    return exec_err!(
                        "sum_buckets: bucket counts of different lengths ({} and {}): these points \
                         have different bucket bounds; add explicit_bounds to the GROUP BY",
                        sums.len(),
                        counts.len()
                    );
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let field = Arc::new(Field::new_list_field(DataType::UInt64, true));
        let list = match &self.sums {
            None => ListArray::new_null(field, 1),
            Some(sums) => ListArray::from_iter_primitive::<UInt64Type, _, _>(std::iter::once(
                Some(sums.iter().copied().map(Some)),
            )),
        };
        Ok(ScalarValue::List(Arc::new(list)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .sums
                .as_ref()
                .map_or(0, |s| s.capacity() * std::mem::size_of::<u64>())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_quantile;

    const BOUNDS: [f64; 3] = [0.1, 0.5, 1.0];

    /// Interpolation inside a bucket, as Prometheus does it.
    #[test]
    fn interpolates_linearly_inside_a_bucket() {
        // 10 observations in (0, 0.1], 10 in (0.1, 0.5], none above.
        let counts = [10.0, 10.0, 0.0, 0.0];
        assert_eq!(bucket_quantile(0.5, &counts, &BOUNDS), Some(0.1));
        assert_eq!(bucket_quantile(0.25, &counts, &BOUNDS), Some(0.05));
        let p75 = bucket_quantile(0.75, &counts, &BOUNDS).unwrap_or(f64::NAN);
        assert!((p75 - 0.3).abs() < 1e-12, "{p75}");
    }

    /// A quantile in the +Inf bucket is the largest finite bound.
    #[test]
    fn the_inf_bucket_answers_the_largest_bound() {
        let counts = [1.0, 0.0, 0.0, 9.0];
        assert_eq!(bucket_quantile(0.99, &counts, &BOUNDS), Some(1.0));
    }

    /// Out-of-range quantiles and empty histograms follow Prometheus.
    #[test]
    fn special_cases_follow_prometheus() {
        let counts = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            bucket_quantile(-0.1, &counts, &BOUNDS),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(bucket_quantile(1.5, &counts, &BOUNDS), Some(f64::INFINITY));
        assert!(bucket_quantile(f64::NAN, &counts, &BOUNDS).is_some_and(f64::is_nan));
        assert!(bucket_quantile(0.5, &[0.0; 4], &BOUNDS).is_some_and(f64::is_nan));
        // Only the +Inf bucket: fewer than two buckets.
        assert!(bucket_quantile(0.5, &[3.0], &[]).is_some_and(f64::is_nan));
    }

    /// A first bucket with a bound <= 0 answers its bound.
    #[test]
    fn non_positive_first_bound_is_returned_as_is() {
        assert_eq!(bucket_quantile(0.1, &[5.0, 5.0], &[-1.0]), Some(-1.0));
    }

    /// Counts and bounds of mismatched lengths are not a histogram.
    #[test]
    fn malformed_histograms_give_none() {
        assert_eq!(bucket_quantile(0.5, &[1.0, 2.0], &BOUNDS), None);
        assert_eq!(bucket_quantile(0.5, &[], &[]), None);
    }
}
