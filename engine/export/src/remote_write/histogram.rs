//! OpenTelemetry exponential histograms -> Prometheus native histograms,
//! or classic buckets.
//!
//! Both use the same buckets: at scale `s` the bucket of OTLP index `i`
//! holds the values in `(b^i, b^(i+1)]` with `b = 2^(2^-s)`. Prometheus'
//! schema is the scale, and its bucket of index `i + 1` is that bucket.
//! Schemas go up to 8: a finer histogram is downscaled (`2^(s-8)`
//! neighbours merged) as Prometheus' OTLP receiver does; one coarser than
//! -4 cannot be represented.

use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

use super::proto::{BucketSpan, Histogram, histogram};

/// The finest schema Prometheus takes.
const MAX_SCHEMA: i32 = 8;
/// The coarsest schema Prometheus takes.
const MIN_SCHEMA: i32 = -4;

/// `point` as a native histogram sample at `timestamp` (ms).
pub(crate) fn native(
    point: &ExponentialHistogramDataPoint,
    timestamp: i64,
) -> Result<Histogram, String> {
    if point.scale < MIN_SCHEMA {
        return Err(format!(
            "scale {} is coarser than the coarsest Prometheus takes ({MIN_SCHEMA})",
            point.scale
        ));
    }
    let scale_down = (point.scale - MAX_SCHEMA).max(0);
    let (positive_spans, positive_deltas) = spans_and_deltas(point.positive.as_ref(), scale_down);
    let (negative_spans, negative_deltas) = spans_and_deltas(point.negative.as_ref(), scale_down);
    Ok(Histogram {
        count: Some(histogram::Count::CountInt(point.count)),
        sum: point.sum.unwrap_or(0.0),
        schema: point.scale.min(MAX_SCHEMA),
        zero_threshold: point.zero_threshold,
        zero_count: Some(histogram::ZeroCount::ZeroCountInt(point.zero_count)),
        negative_spans,
        negative_deltas,
        positive_spans,
        positive_deltas,
        reset_hint: histogram::ResetHint::Unknown as i32,
        timestamp,
        ..Histogram::default()
    })
}

/// The native histogram that marks its series stale.
pub(crate) fn stale(timestamp: i64) -> Histogram {
    Histogram {
        sum: f64::from_bits(super::translate::STALE_NAN),
        timestamp,
        ..Histogram::default()
    }
}

/// The buckets as one span of Prometheus indexes and their counts as
/// deltas, `scale_down` times halved in resolution.
fn spans_and_deltas(buckets: Option<&Buckets>, scale_down: i32) -> (Vec<BucketSpan>, Vec<i64>) {
    let Some(buckets) = buckets else {
        return (Vec::new(), Vec::new());
    };
    let mut first: Option<i32> = None;
    let mut counts: Vec<u64> = Vec::with_capacity(buckets.bucket_counts.len());
    let mut last = i32::MIN;
    for (i, &count) in buckets.bucket_counts.iter().enumerate() {
        let Some(otlp_index) = i32::try_from(i)
            .ok()
            .and_then(|i| buckets.offset.checked_add(i))
        else {
            break;
        };
        let index = (otlp_index >> scale_down) + 1;
        if first.is_none() {
            first = Some(index);
        }
        if index == last {
            if let Some(c) = counts.last_mut() {
                *c = c.saturating_add(count);
            }
        } else {
            counts.push(count);
            last = index;
        }
    }
    let Some(offset) = first else {
        return (Vec::new(), Vec::new());
    };
    let mut previous = 0i64;
    let deltas = counts
        .iter()
        .map(|&c| {
            let c = i64::try_from(c).unwrap_or(i64::MAX);
            let delta = c.wrapping_sub(previous);
            previous = c;
            delta
        })
        .collect();
    let length = u32::try_from(counts.len()).unwrap_or(u32::MAX);
    (vec![BucketSpan { offset, length }], deltas)
}

/// `point`'s buckets as classic cumulative buckets: `(le, count)` in
/// ascending `le`, negative buckets first, then the zero bucket (`le` =
/// its threshold), the positive buckets, and `+Inf` with the total count.
pub(crate) fn classic_buckets(point: &ExponentialHistogramDataPoint) -> Vec<(f64, u64)> {
    let factor = (-f64::from(point.scale)).exp2();
    let bound = |index: i64| (index as f64 * factor).exp2();
    let mut out = Vec::new();
    let mut cumulative = 0u64;
    if let Some(negative) = &point.negative {
        for (i, &count) in negative.bucket_counts.iter().enumerate().rev() {
            cumulative = cumulative.saturating_add(count);
            out.push((-bound(i64::from(negative.offset) + i as i64), cumulative));
        }
    }
    cumulative = cumulative.saturating_add(point.zero_count);
    out.push((point.zero_threshold, cumulative));
    if let Some(positive) = &point.positive {
        for (i, &count) in positive.bucket_counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(count);
            out.push((bound(i64::from(positive.offset) + i as i64 + 1), cumulative));
        }
    }
    out.push((f64::INFINITY, point.count));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scale: i32, offset: i32, counts: Vec<u64>) -> ExponentialHistogramDataPoint {
        let count = counts.iter().sum::<u64>() + 1;
        ExponentialHistogramDataPoint {
            scale,
            count,
            sum: Some(10.0),
            zero_count: 1,
            positive: Some(Buckets {
                offset,
                bucket_counts: counts,
            }),
            ..Default::default()
        }
    }

    /// Guarantees: OTLP index `i` becomes Prometheus index `i + 1`, counts
    /// become deltas, and the schema is the scale.
    #[test]
    fn native_indexes_and_deltas() {
        let h = native(&point(0, -1, vec![2, 5, 0, 1]), 1000).expect("valid scale");
        assert_eq!(h.schema, 0);
        assert_eq!(
            h.positive_spans,
            [BucketSpan {
                offset: 0,
                length: 4
            }]
        );
        assert_eq!(h.positive_deltas, [2, 3, -5, 1]);
        assert_eq!(h.count, Some(histogram::Count::CountInt(9)));
        assert_eq!(h.zero_count, Some(histogram::ZeroCount::ZeroCountInt(1)));
        assert_eq!(h.sum, 10.0);
        assert_eq!(h.timestamp, 1000);
    }

    /// Guarantees: a scale above 8 is merged down to schema 8 (pairs of
    /// neighbours at scale 9), as Prometheus does; below -4 is refused.
    #[test]
    fn fine_scales_are_downscaled() {
        // Scale 9, OTLP indexes 3..=6 -> schema 8 indexes 1,2,2,3 -> +1.
        let h = native(&point(9, 3, vec![1, 2, 3, 4]), 0).expect("valid scale");
        assert_eq!(h.schema, 8);
        assert_eq!(
            h.positive_spans,
            [BucketSpan {
                offset: 2,
                length: 3
            }]
        );
        assert_eq!(h.positive_deltas, [1, 4, -1]);
        // Negative indexes floor: -3 >> 1 = -2, -2 >> 1 = -1.
        let h = native(&point(9, -3, vec![1, 1]), 0).expect("valid scale");
        assert_eq!(
            h.positive_spans,
            [BucketSpan {
                offset: -1,
                length: 2
            }]
        );
        assert!(native(&point(-5, 0, vec![1]), 0).is_err());
    }

    /// Guarantees: classic buckets are cumulative, with bounds `2^(i+1)` at
    /// scale 0 and `+Inf` holding the count.
    #[test]
    fn classic_bounds_are_cumulative() {
        let buckets = classic_buckets(&point(0, 0, vec![2, 3]));
        assert_eq!(buckets, [(0.0, 1), (2.0, 3), (4.0, 6), (f64::INFINITY, 6)]);
    }
}
