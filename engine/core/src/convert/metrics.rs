//! Metrics request <-> `metrics` rows, one per data point.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int32Array,
    Int32Builder, Int64Array, Int64Builder, ListArray, ListBuilder, PrimitiveArray,
    PrimitiveBuilder, UInt32Array, UInt32Builder, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, TimestampNanosecondType, UInt32Type,
    UInt64Type,
};
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use prost::Message as _;

use super::build::{
    AttrColumns, CommonBuilder, IdBuilder, NestedAttrColumns, RepeatDict, RepeatedAttrs,
    StructList, make_batch, nanos, non_empty, timestamp_builder,
};
use super::check::{Rejections, check_id, check_size, check_time, key_bytes};
use super::read::{
    Columns, CommonReader, IdCol, MapCol, PrimitiveList, StrCol, list_range, opt, runs, unix_nanos,
};
use super::{ConvertError, Converted};
use crate::schema::{self, col, metric_type};

const TABLE: &str = "metrics";

/// One data point of any kind.
#[derive(Clone, Copy)]
enum Point<'a> {
    Number(&'a NumberDataPoint),
    Histogram(&'a HistogramDataPoint),
    Exponential(&'a ExponentialHistogramDataPoint),
    Summary(&'a SummaryDataPoint),
}

impl<'a> Point<'a> {
    fn attributes(self) -> &'a [KeyValue] {
        match self {
            Point::Number(p) => &p.attributes,
            Point::Histogram(p) => &p.attributes,
            Point::Exponential(p) => &p.attributes,
            Point::Summary(p) => &p.attributes,
        }
    }

    fn times(self) -> (u64, u64) {
        match self {
            Point::Number(p) => (p.start_time_unix_nano, p.time_unix_nano),
            Point::Histogram(p) => (p.start_time_unix_nano, p.time_unix_nano),
            Point::Exponential(p) => (p.start_time_unix_nano, p.time_unix_nano),
            Point::Summary(p) => (p.start_time_unix_nano, p.time_unix_nano),
        }
    }

    fn flags(self) -> u32 {
        match self {
            Point::Number(p) => p.flags,
            Point::Histogram(p) => p.flags,
            Point::Exponential(p) => p.flags,
            Point::Summary(p) => p.flags,
        }
    }

    fn exemplars(self) -> &'a [Exemplar] {
        match self {
            Point::Number(p) => &p.exemplars,
            Point::Histogram(p) => &p.exemplars,
            Point::Exponential(p) => &p.exemplars,
            Point::Summary(_) => &[],
        }
    }
}

/// The data points of `m`, in order.
fn points(m: &Metric) -> Box<dyn Iterator<Item = Point<'_>> + '_> {
    match &m.data {
        None => Box::new(std::iter::empty()),
        Some(metric::Data::Gauge(g)) => Box::new(g.data_points.iter().map(Point::Number)),
        Some(metric::Data::Sum(s)) => Box::new(s.data_points.iter().map(Point::Number)),
        Some(metric::Data::Histogram(h)) => Box::new(h.data_points.iter().map(Point::Histogram)),
        Some(metric::Data::ExponentialHistogram(h)) => {
            Box::new(h.data_points.iter().map(Point::Exponential))
        }
        Some(metric::Data::Summary(s)) => Box::new(s.data_points.iter().map(Point::Summary)),
    }
}

/// How many data points `m` holds: the rows it makes.
pub fn point_count(m: &Metric) -> usize {
    match &m.data {
        None => 0,
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
    }
}

/// Why `point` cannot be a row, if it cannot.
fn check(point: Point<'_>) -> Result<(), String> {
    let (start, time) = point.times();
    check_time("start_time_unix_nano", start)?;
    check_time("time_unix_nano", time)?;
    for (i, e) in point.exemplars().iter().enumerate() {
        check_time(&format!("exemplars[{i}].time_unix_nano"), e.time_unix_nano)?;
        check_id(&format!("exemplars[{i}].span_id"), &e.span_id, 8, true)?;
        check_id(&format!("exemplars[{i}].trace_id"), &e.trace_id, 16, true)?;
    }
    Ok(())
}

/// The columns that describe the metric (repeated on each of its points).
struct MetricColumns<'a> {
    pending: Option<&'a Metric>,
    name: RepeatDict,
    description: RepeatDict,
    unit: RepeatDict,
    kind: RepeatDict,
    metadata: RepeatedAttrs<'a>,
    temporality: Int32Builder,
    temporality_now: Option<i32>,
    is_monotonic: BooleanBuilder,
    is_monotonic_now: Option<bool>,
    scratch: String,
}

impl<'a> MetricColumns<'a> {
    fn with_capacity(rows: usize) -> Self {
        MetricColumns {
            pending: None,
            name: RepeatDict::with_capacity(rows),
            description: RepeatDict::with_capacity(rows),
            unit: RepeatDict::with_capacity(rows),
            kind: RepeatDict::with_capacity(rows),
            metadata: RepeatedAttrs::with_capacity(rows),
            temporality: Int32Builder::with_capacity(rows),
            temporality_now: None,
            is_monotonic: BooleanBuilder::with_capacity(rows),
            is_monotonic_now: None,
            scratch: String::new(),
        }
    }

    fn apply(&mut self, m: &'a Metric) {
        self.name.set(non_empty(&m.name));
        self.description.set(non_empty(&m.description));
        self.unit.set(non_empty(&m.unit));
        self.metadata.set(Some(&m.metadata), &mut self.scratch);
        let (kind, temporality, monotonic) = match &m.data {
            Some(metric::Data::Gauge(_)) | None => (metric_type::GAUGE, None, None),
            Some(metric::Data::Sum(s)) => (
                metric_type::SUM,
                Some(s.aggregation_temporality),
                Some(s.is_monotonic),
            ),
            Some(metric::Data::Histogram(h)) => (
                metric_type::HISTOGRAM,
                Some(h.aggregation_temporality),
                None,
            ),
            Some(metric::Data::ExponentialHistogram(h)) => (
                metric_type::EXPONENTIAL_HISTOGRAM,
                Some(h.aggregation_temporality),
                None,
            ),
            Some(metric::Data::Summary(_)) => (metric_type::SUMMARY, None, None),
        };
        self.kind.set(Some(kind));
        self.temporality_now = temporality;
        self.is_monotonic_now = monotonic;
    }

    fn push(&mut self) {
        if let Some(m) = self.pending.take() {
            self.apply(m);
        }
        self.name.push();
        self.description.push();
        self.unit.push();
        self.kind.push();
        self.metadata.push();
        self.temporality.append_option(self.temporality_now);
        self.is_monotonic.append_option(self.is_monotonic_now);
    }
}

fn u64_list() -> ListBuilder<UInt64Builder> {
    ListBuilder::new(UInt64Builder::new()).with_field(Field::new(
        col::LIST_ITEM,
        DataType::UInt64,
        false,
    ))
}

/// The `exemplars` column.
struct ExemplarsBuilder {
    list: StructList,
    time: PrimitiveBuilder<TimestampNanosecondType>,
    value: Float64Builder,
    int_value: Int64Builder,
    span_id: IdBuilder,
    trace_id: IdBuilder,
    filtered_attributes: NestedAttrColumns,
}

impl ExemplarsBuilder {
    fn with_capacity(rows: usize) -> Self {
        ExemplarsBuilder {
            list: StructList::with_capacity(rows),
            time: timestamp_builder(0),
            value: Float64Builder::new(),
            int_value: Int64Builder::new(),
            span_id: IdBuilder::with_capacity(8, 0),
            trace_id: IdBuilder::with_capacity(16, 0),
            filtered_attributes: NestedAttrColumns::with_capacity(0),
        }
    }

    fn append(&mut self, exemplars: &[Exemplar], scratch: &mut String) {
        for e in exemplars {
            self.time.append_option(nanos(e.time_unix_nano));
            let (value, int_value) = match e.value {
                None => (None, None),
                Some(exemplar::Value::AsDouble(d)) => (Some(d), None),
                Some(exemplar::Value::AsInt(i)) => (Some(i as f64), Some(i)),
            };
            self.value.append_option(value);
            self.int_value.append_option(int_value);
            self.span_id.append(&e.span_id);
            self.trace_id.append(&e.trace_id);
            self.filtered_attributes
                .append(&e.filtered_attributes, scratch);
        }
        self.list.close_row(exemplars.len(), true);
    }

    fn finish(mut self) -> Result<ListArray, ConvertError> {
        let [attributes, types] = self.filtered_attributes.finish()?;
        self.list.finish(
            schema::exemplar_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.value.finish()),
                Arc::new(self.int_value.finish()),
                Arc::new(self.span_id.finish()?),
                Arc::new(self.trace_id.finish()?),
                attributes,
                types,
            ],
        )
    }
}

/// The columns of the `metrics` table before the common ones.
struct MetricsBuilder<'a> {
    time: PrimitiveBuilder<TimestampNanosecondType>,
    start_time: PrimitiveBuilder<TimestampNanosecondType>,
    metric: MetricColumns<'a>,
    value: Float64Builder,
    int_value: Int64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    zero_threshold: Float64Builder,
    positive_offset: Int32Builder,
    positive_bucket_counts: ListBuilder<UInt64Builder>,
    negative_offset: Int32Builder,
    negative_bucket_counts: ListBuilder<UInt64Builder>,
    quantiles: StructList,
    quantile: Float64Builder,
    quantile_value: Float64Builder,
    exemplars: ExemplarsBuilder,
    flags: UInt32Builder,
    attributes: AttrColumns,
    scratch: String,
}

impl<'a> MetricsBuilder<'a> {
    fn with_capacity(rows: usize) -> Self {
        MetricsBuilder {
            time: timestamp_builder(rows),
            start_time: timestamp_builder(rows),
            metric: MetricColumns::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            int_value: Int64Builder::with_capacity(rows),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            bucket_counts: u64_list(),
            explicit_bounds: ListBuilder::new(Float64Builder::new()).with_field(Field::new(
                col::LIST_ITEM,
                DataType::Float64,
                false,
            )),
            scale: Int32Builder::with_capacity(rows),
            zero_count: UInt64Builder::with_capacity(rows),
            zero_threshold: Float64Builder::with_capacity(rows),
            positive_offset: Int32Builder::with_capacity(rows),
            positive_bucket_counts: u64_list(),
            negative_offset: Int32Builder::with_capacity(rows),
            negative_bucket_counts: u64_list(),
            quantiles: StructList::with_capacity(rows),
            quantile: Float64Builder::new(),
            quantile_value: Float64Builder::new(),
            exemplars: ExemplarsBuilder::with_capacity(rows),
            flags: UInt32Builder::with_capacity(rows),
            attributes: AttrColumns::with_capacity(rows),
            scratch: String::new(),
        }
    }

    fn buckets(
        offset: &mut Int32Builder,
        counts: &mut ListBuilder<UInt64Builder>,
        buckets: Option<&Buckets>,
    ) {
        match buckets {
            Some(b) => {
                offset.append_value(b.offset);
                counts.values().append_slice(&b.bucket_counts);
                counts.append(true);
            }
            None => {
                offset.append_null();
                counts.append(false);
            }
        }
    }

    fn append(&mut self, point: Point<'_>) {
        let (start, time) = point.times();
        self.time.append_option(nanos(time));
        self.start_time.append_option(nanos(start));
        self.metric.push();

        // Number point columns.
        let (value, int_value) = match point {
            Point::Number(p) => match p.value {
                None => (None, None),
                Some(number_data_point::Value::AsDouble(d)) => (Some(d), None),
                Some(number_data_point::Value::AsInt(i)) => (Some(i as f64), Some(i)),
            },
            _ => (None, None),
        };
        self.value.append_option(value);
        self.int_value.append_option(int_value);

        // Count, sum, min, max.
        let (count, sum, min, max) = match point {
            Point::Number(_) => (None, None, None, None),
            Point::Histogram(p) => (Some(p.count), p.sum, p.min, p.max),
            Point::Exponential(p) => (Some(p.count), p.sum, p.min, p.max),
            Point::Summary(p) => (Some(p.count), Some(p.sum), None, None),
        };
        self.count.append_option(count);
        self.sum.append_option(sum);
        self.min.append_option(min);
        self.max.append_option(max);

        // Explicit buckets.
        if let Point::Histogram(p) = point {
            self.bucket_counts.values().append_slice(&p.bucket_counts);
            self.bucket_counts.append(true);
            self.explicit_bounds
                .values()
                .append_slice(&p.explicit_bounds);
            self.explicit_bounds.append(true);
        } else {
            self.bucket_counts.append(false);
            self.explicit_bounds.append(false);
        }

        // Exponential buckets.
        if let Point::Exponential(p) = point {
            self.scale.append_value(p.scale);
            self.zero_count.append_value(p.zero_count);
            self.zero_threshold.append_value(p.zero_threshold);
            Self::buckets(
                &mut self.positive_offset,
                &mut self.positive_bucket_counts,
                p.positive.as_ref(),
            );
            Self::buckets(
                &mut self.negative_offset,
                &mut self.negative_bucket_counts,
                p.negative.as_ref(),
            );
        } else {
            self.scale.append_null();
            self.zero_count.append_null();
            self.zero_threshold.append_null();
            Self::buckets(
                &mut self.positive_offset,
                &mut self.positive_bucket_counts,
                None,
            );
            Self::buckets(
                &mut self.negative_offset,
                &mut self.negative_bucket_counts,
                None,
            );
        }

        // Quantiles.
        if let Point::Summary(p) = point {
            for q in &p.quantile_values {
                self.quantile.append_value(q.quantile);
                self.quantile_value.append_value(q.value);
            }
            self.quantiles.close_row(p.quantile_values.len(), true);
        } else {
            self.quantiles.close_row(0, false);
        }

        self.exemplars.append(point.exemplars(), &mut self.scratch);
        self.flags.append_value(point.flags());
        self.attributes
            .append(point.attributes(), &mut self.scratch);
    }

    fn finish(mut self, common: CommonBuilder<'_>) -> Result<RecordBatch, ConvertError> {
        let (service_name, resource_and_scope) = common.finish()?;
        let m = self.metric;
        let [metadata, metadata_types] = m.metadata.finish()?;
        let [attributes, attributes_types] = self.attributes.finish()?;
        let quantile_values = self.quantiles.finish(
            schema::quantile_fields(),
            vec![
                Arc::new(self.quantile.finish()),
                Arc::new(self.quantile_value.finish()),
            ],
        )?;
        let mut temporality = m.temporality;
        let mut is_monotonic = m.is_monotonic;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.start_time.finish()),
            service_name,
            Arc::new(m.name.finish()?),
            Arc::new(m.description.finish()?),
            Arc::new(m.unit.finish()?),
            Arc::new(m.kind.finish()?),
            metadata,
            metadata_types,
            Arc::new(temporality.finish()),
            Arc::new(is_monotonic.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.int_value.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.explicit_bounds.finish()),
            Arc::new(self.scale.finish()),
            Arc::new(self.zero_count.finish()),
            Arc::new(self.zero_threshold.finish()),
            Arc::new(self.positive_offset.finish()),
            Arc::new(self.positive_bucket_counts.finish()),
            Arc::new(self.negative_offset.finish()),
            Arc::new(self.negative_bucket_counts.finish()),
            Arc::new(quantile_values),
            Arc::new(self.exemplars.finish()?),
            Arc::new(self.flags.finish()),
            attributes,
            attributes_types,
        ];
        columns.extend(resource_and_scope);
        make_batch(schema::metrics_schema(), columns)
    }
}

pub(super) fn to_batch(req: &ExportMetricsServiceRequest) -> Result<Converted, ConvertError> {
    let mut rows = 0usize;
    let mut repeated = 0usize;
    for rm in &req.resource_metrics {
        let resource_keys = rm.resource.as_ref().map_or(0, |r| key_bytes(&r.attributes));
        for sm in &rm.scope_metrics {
            let scope_keys = sm.scope.as_ref().map_or(0, |s| key_bytes(&s.attributes));
            for m in &sm.metrics {
                let n = point_count(m);
                rows += n;
                let per_row = resource_keys + scope_keys + key_bytes(&m.metadata);
                repeated = repeated.saturating_add(n.saturating_mul(per_row));
            }
        }
    }
    check_size(req.encoded_len(), repeated)?;

    let mut out = MetricsBuilder::with_capacity(rows);
    let mut common = CommonBuilder::with_capacity(rows);
    let mut rejections = Rejections::default();
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        common.set_resource(rm.resource.as_ref(), &rm.schema_url);
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            common.set_scope(sm.scope.as_ref(), &sm.schema_url);
            for (mi, m) in sm.metrics.iter().enumerate() {
                out.metric.pending = Some(m);
                for (pi, point) in points(m).enumerate() {
                    if let Err(why) = check(point) {
                        rejections.add(
                            || {
                                format!(
                                    "resource_metrics[{ri}].scope_metrics[{si}].metrics[{mi}] \
                                     (`{}`).data_points[{pi}]",
                                    m.name
                                )
                            },
                            why,
                        );
                        continue;
                    }
                    out.append(point);
                    common.push_row();
                }
            }
        }
    }
    Ok(Converted {
        batch: out.finish(common)?,
        rejected: rejections.count,
        rejection: rejections.first,
    })
}

/// The `exemplars` column read back.
struct ExemplarsReader {
    list: ListArray,
    time: PrimitiveArray<TimestampNanosecondType>,
    value: Float64Array,
    int_value: Int64Array,
    span_id: IdCol,
    trace_id: IdCol,
    filtered_attributes: MapCol,
    filtered_attributes_types: StrCol,
}

impl ExemplarsReader {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        let (list, items) = cols.struct_list(col::EXEMPLARS)?;
        Ok(ExemplarsReader {
            list,
            time: items.timestamp(col::TIME)?,
            value: items.primitive::<Float64Type>(col::VALUE)?,
            int_value: items.primitive::<Int64Type>(col::INT_VALUE)?,
            span_id: items.id(col::SPAN_ID, 8)?,
            trace_id: items.id(col::TRACE_ID, 16)?,
            filtered_attributes: items.map(col::FILTERED_ATTRIBUTES)?,
            filtered_attributes_types: items.string(col::FILTERED_ATTRIBUTES_TYPES)?,
        })
    }

    fn exemplars(&self, i: usize) -> Vec<Exemplar> {
        list_range(&self.list, i)
            .unwrap_or_default()
            .map(|j| Exemplar {
                filtered_attributes: self
                    .filtered_attributes
                    .attributes(j, self.filtered_attributes_types.get(j))
                    .unwrap_or_default(),
                time_unix_nano: unix_nanos(opt(&self.time, j)),
                span_id: self.span_id.get(j),
                trace_id: self.trace_id.get(j),
                value: match (opt(&self.int_value, j), opt(&self.value, j)) {
                    (Some(i), _) => Some(exemplar::Value::AsInt(i)),
                    (None, Some(d)) => Some(exemplar::Value::AsDouble(d)),
                    (None, None) => None,
                },
            })
            .collect()
    }
}

/// The `metrics` columns read back.
struct MetricsReader {
    time: PrimitiveArray<TimestampNanosecondType>,
    start_time: PrimitiveArray<TimestampNanosecondType>,
    name: StrCol,
    description: StrCol,
    unit: StrCol,
    kind: StrCol,
    metadata: MapCol,
    metadata_types: StrCol,
    temporality: Int32Array,
    is_monotonic: BooleanArray,
    value: Float64Array,
    int_value: Int64Array,
    count: UInt64Array,
    sum: Float64Array,
    min: Float64Array,
    max: Float64Array,
    bucket_counts: PrimitiveList<UInt64Type>,
    explicit_bounds: PrimitiveList<Float64Type>,
    scale: Int32Array,
    zero_count: UInt64Array,
    zero_threshold: Float64Array,
    positive_offset: Int32Array,
    positive_bucket_counts: PrimitiveList<UInt64Type>,
    negative_offset: Int32Array,
    negative_bucket_counts: PrimitiveList<UInt64Type>,
    quantiles: ListArray,
    quantile: Float64Array,
    quantile_value: Float64Array,
    exemplars: ExemplarsReader,
    flags: UInt32Array,
    attributes: MapCol,
    attributes_types: StrCol,
}

impl MetricsReader {
    fn new(cols: &Columns) -> Result<Self, ConvertError> {
        let (quantiles, quantile_items) = cols.struct_list(col::QUANTILE_VALUES)?;
        Ok(MetricsReader {
            time: cols.timestamp(col::TIME)?,
            start_time: cols.timestamp(col::START_TIME)?,
            name: cols.string(col::METRIC_NAME)?,
            description: cols.string(col::METRIC_DESCRIPTION)?,
            unit: cols.string(col::METRIC_UNIT)?,
            kind: cols.string(col::METRIC_TYPE)?,
            metadata: cols.map(col::METRIC_METADATA)?,
            metadata_types: cols.string(col::METRIC_METADATA_TYPES)?,
            temporality: cols.primitive::<Int32Type>(col::AGGREGATION_TEMPORALITY)?,
            is_monotonic: cols.boolean(col::IS_MONOTONIC)?,
            value: cols.primitive::<Float64Type>(col::VALUE)?,
            int_value: cols.primitive::<Int64Type>(col::INT_VALUE)?,
            count: cols.primitive::<UInt64Type>(col::COUNT)?,
            sum: cols.primitive::<Float64Type>(col::SUM)?,
            min: cols.primitive::<Float64Type>(col::MIN)?,
            max: cols.primitive::<Float64Type>(col::MAX)?,
            bucket_counts: cols.primitive_list(col::BUCKET_COUNTS)?,
            explicit_bounds: cols.primitive_list(col::EXPLICIT_BOUNDS)?,
            scale: cols.primitive::<Int32Type>(col::SCALE)?,
            zero_count: cols.primitive::<UInt64Type>(col::ZERO_COUNT)?,
            zero_threshold: cols.primitive::<Float64Type>(col::ZERO_THRESHOLD)?,
            positive_offset: cols.primitive::<Int32Type>(col::POSITIVE_OFFSET)?,
            positive_bucket_counts: cols.primitive_list(col::POSITIVE_BUCKET_COUNTS)?,
            negative_offset: cols.primitive::<Int32Type>(col::NEGATIVE_OFFSET)?,
            negative_bucket_counts: cols.primitive_list(col::NEGATIVE_BUCKET_COUNTS)?,
            quantiles,
            quantile: quantile_items.primitive::<Float64Type>(col::QUANTILE)?,
            quantile_value: quantile_items.primitive::<Float64Type>(col::VALUE)?,
            exemplars: ExemplarsReader::new(cols)?,
            flags: cols.primitive::<UInt32Type>(col::FLAGS)?,
            attributes: cols.map(col::ATTRIBUTES)?,
            attributes_types: cols.string(col::ATTRIBUTES_TYPES)?,
        })
    }

    /// Whether rows `a` and `b` are points of the same metric.
    fn same_metric(&self, a: usize, b: usize) -> bool {
        self.name.get(a) == self.name.get(b)
            && self.description.get(a) == self.description.get(b)
            && self.unit.get(a) == self.unit.get(b)
            && self.kind.get(a) == self.kind.get(b)
            && self.metadata.same(a, b)
            && self.metadata_types.get(a) == self.metadata_types.get(b)
            && opt(&self.temporality, a) == opt(&self.temporality, b)
            && self.monotonic(a) == self.monotonic(b)
    }

    fn monotonic(&self, i: usize) -> Option<bool> {
        if self.is_monotonic.is_null(i) {
            None
        } else {
            Some(self.is_monotonic.value(i))
        }
    }

    fn attributes(&self, i: usize) -> Vec<KeyValue> {
        self.attributes
            .attributes(i, self.attributes_types.get(i))
            .unwrap_or_default()
    }

    fn times(&self, i: usize) -> (u64, u64) {
        (
            unix_nanos(opt(&self.start_time, i)),
            unix_nanos(opt(&self.time, i)),
        )
    }

    fn number_point(&self, i: usize) -> NumberDataPoint {
        let (start_time_unix_nano, time_unix_nano) = self.times(i);
        NumberDataPoint {
            attributes: self.attributes(i),
            start_time_unix_nano,
            time_unix_nano,
            exemplars: self.exemplars.exemplars(i),
            flags: opt(&self.flags, i).unwrap_or(0),
            value: match (opt(&self.int_value, i), opt(&self.value, i)) {
                (Some(v), _) => Some(number_data_point::Value::AsInt(v)),
                (None, Some(d)) => Some(number_data_point::Value::AsDouble(d)),
                (None, None) => None,
            },
        }
    }

    fn histogram_point(&self, i: usize) -> HistogramDataPoint {
        let (start_time_unix_nano, time_unix_nano) = self.times(i);
        HistogramDataPoint {
            attributes: self.attributes(i),
            start_time_unix_nano,
            time_unix_nano,
            count: opt(&self.count, i).unwrap_or(0),
            sum: opt(&self.sum, i),
            bucket_counts: self.bucket_counts.get(i).unwrap_or_default(),
            explicit_bounds: self.explicit_bounds.get(i).unwrap_or_default(),
            exemplars: self.exemplars.exemplars(i),
            flags: opt(&self.flags, i).unwrap_or(0),
            min: opt(&self.min, i),
            max: opt(&self.max, i),
        }
    }

    fn buckets(
        offset: &Int32Array,
        counts: &PrimitiveList<UInt64Type>,
        i: usize,
    ) -> Option<Buckets> {
        let bucket_counts = counts.get(i)?;
        Some(Buckets {
            offset: opt(offset, i).unwrap_or(0),
            bucket_counts,
        })
    }

    fn exp_histogram_point(&self, i: usize) -> ExponentialHistogramDataPoint {
        let (start_time_unix_nano, time_unix_nano) = self.times(i);
        ExponentialHistogramDataPoint {
            attributes: self.attributes(i),
            start_time_unix_nano,
            time_unix_nano,
            count: opt(&self.count, i).unwrap_or(0),
            sum: opt(&self.sum, i),
            scale: opt(&self.scale, i).unwrap_or(0),
            zero_count: opt(&self.zero_count, i).unwrap_or(0),
            positive: Self::buckets(&self.positive_offset, &self.positive_bucket_counts, i),
            negative: Self::buckets(&self.negative_offset, &self.negative_bucket_counts, i),
            flags: opt(&self.flags, i).unwrap_or(0),
            exemplars: self.exemplars.exemplars(i),
            min: opt(&self.min, i),
            max: opt(&self.max, i),
            zero_threshold: opt(&self.zero_threshold, i).unwrap_or(0.0),
        }
    }

    fn summary_point(&self, i: usize) -> SummaryDataPoint {
        let (start_time_unix_nano, time_unix_nano) = self.times(i);
        SummaryDataPoint {
            attributes: self.attributes(i),
            start_time_unix_nano,
            time_unix_nano,
            count: opt(&self.count, i).unwrap_or(0),
            sum: opt(&self.sum, i).unwrap_or(0.0),
            quantile_values: list_range(&self.quantiles, i)
                .unwrap_or_default()
                .map(|j| ValueAtQuantile {
                    quantile: opt(&self.quantile, j).unwrap_or(0.0),
                    value: opt(&self.quantile_value, j).unwrap_or(0.0),
                })
                .collect(),
            flags: opt(&self.flags, i).unwrap_or(0),
        }
    }

    /// The metric whose points are `rows`.
    fn metric(&self, rows: std::ops::Range<usize>) -> Result<Metric, ConvertError> {
        let first = rows.start;
        let temporality = opt(&self.temporality, first).unwrap_or(0);
        let data = match self.kind.get(first) {
            Some(metric_type::GAUGE) => metric::Data::Gauge(Gauge {
                data_points: rows.map(|i| self.number_point(i)).collect(),
            }),
            Some(metric_type::SUM) => metric::Data::Sum(Sum {
                data_points: rows.map(|i| self.number_point(i)).collect(),
                aggregation_temporality: temporality,
                is_monotonic: self.monotonic(first).unwrap_or(false),
            }),
            Some(metric_type::HISTOGRAM) => metric::Data::Histogram(Histogram {
                data_points: rows.map(|i| self.histogram_point(i)).collect(),
                aggregation_temporality: temporality,
            }),
            Some(metric_type::EXPONENTIAL_HISTOGRAM) => {
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: rows.map(|i| self.exp_histogram_point(i)).collect(),
                    aggregation_temporality: temporality,
                })
            }
            Some(metric_type::SUMMARY) => metric::Data::Summary(Summary {
                data_points: rows.map(|i| self.summary_point(i)).collect(),
            }),
            other => {
                return Err(ConvertError::InvalidBatch {
                    table: TABLE,
                    message: format!(
                        "row {first}: `{}` is {other:?}, expected one of `gauge`, `sum`, \
                         `histogram`, `exponential_histogram`, `summary`",
                        col::METRIC_TYPE
                    ),
                });
            }
        };
        Ok(Metric {
            name: self.name.text(first),
            description: self.description.text(first),
            unit: self.unit.text(first),
            metadata: self
                .metadata
                .attributes(first, self.metadata_types.get(first))
                .unwrap_or_default(),
            data: Some(data),
        })
    }
}

pub(super) fn from_batch(batch: &RecordBatch) -> Result<ExportMetricsServiceRequest, ConvertError> {
    let cols = Columns::of_batch(batch, TABLE);
    let common = CommonReader::new(&cols)?;
    let points = MetricsReader::new(&cols)?;
    let resource_metrics = runs(0..batch.num_rows(), |a, b| common.same_resource(a, b))
        .map(|res| {
            let first = res.start;
            let scope_metrics = runs(res, |a, b| common.same_scope(a, b))
                .map(|scope| {
                    let start = scope.start;
                    Ok(ScopeMetrics {
                        scope: common.scope(start),
                        schema_url: common.scope_schema_url(start),
                        metrics: runs(scope, |a, b| points.same_metric(a, b))
                            .map(|rows| points.metric(rows))
                            .collect::<Result<_, ConvertError>>()?,
                    })
                })
                .collect::<Result<_, ConvertError>>()?;
            Ok(ResourceMetrics {
                resource: common.resource(first)?,
                scope_metrics,
                schema_url: common.resource_schema_url(first),
            })
        })
        .collect::<Result<_, ConvertError>>()?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}
