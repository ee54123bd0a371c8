//! `metrics` rows -> Prometheus series, as Prometheus' OTLP receiver and
//! the collector's `prometheusremotewrite` exporter make them.
//!
//! The rows are read back into OTLP with weir-core's converter (the one
//! reader of the `metrics` schema, so rows a processor or the `rules`
//! processor made go out like those of the OTLP source), then each data
//! point becomes one or more samples:
//!
//! * a gauge, or a cumulative sum: one sample (`_total` for a monotonic
//!   sum); delta and unspecified temporalities cannot be sent with remote
//!   write and are refused, as Prometheus' receiver refuses them;
//! * a cumulative histogram: `_bucket{le}` (cumulative, up to `+Inf`),
//!   `_sum` (when the point has one) and `_count`;
//! * a cumulative exponential histogram: one native histogram sample, or
//!   classic buckets ([`HistogramMode`]);
//! * a summary: `{quantile}` per quantile, `_sum` and `_count`.
//!
//! Labels: the point's attributes, `otel_scope_name` / `otel_scope_version`,
//! `job` (`service.namespace/service.name`, or `service.name`) and
//! `instance` (`service.instance.id`), the resource attributes of
//! `resource_to_labels`, and `__name__`; sorted by name, one of each (two
//! attributes that become the same name have their values joined with `;`
//! in the order of their keys). Empty values are left out. The other
//! resource attributes go into one `target_info` sample (value 1, at the
//! resource's latest time) per resource, as Prometheus does.
//!
//! A point flagged "no recorded value" becomes Prometheus' staleness NaN.
//! A point without a time (or before 1970) is refused and counted.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint, metric, number_data_point,
};
use weir_core::ConvertError;

use super::config::HistogramMode;
use super::histogram;
use super::names::{Kind, float_label, label_name, metric_name};
use super::proto::{Histogram, Label, Sample};

/// Prometheus' staleness marker: a NaN with this bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The resource attributes that become `job` and `instance`.
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// How rows become series.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Resource attributes promoted to labels.
    pub resource_to_labels: Vec<String>,
    /// How exponential histograms are sent.
    pub histograms: HistogramMode,
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A float sample.
    Float(Sample),
    /// A native histogram sample (boxed: it is large, and rare).
    Histogram(Box<Histogram>),
}

/// A series' labels (sorted by name) and one of its samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The labels, sorted, `__name__` among them.
    pub labels: Vec<Label>,
    /// The sample.
    pub value: Value,
    /// The data point it comes from (an ordinal within the batch), or
    /// `None` (`target_info`, staleness markers).
    pub point: Option<usize>,
}

/// What a batch of rows came to.
#[derive(Debug, Default)]
pub(crate) struct Translation {
    /// The samples, in row order.
    pub series: Vec<Series>,
    /// Data points that cannot be sent.
    pub rejected: u64,
    /// Why the first of them cannot.
    pub rejection: Option<String>,
    /// The data points read so far.
    points: usize,
}

impl Translation {
    fn reject(&mut self, why: String) {
        self.rejected += 1;
        if self.rejection.is_none() {
            self.rejection = Some(why);
        }
    }
}

/// The series of `rows` (of the `metrics` schema).
pub(crate) fn translate(
    rows: &RecordBatch,
    settings: &Settings,
) -> Result<Translation, ConvertError> {
    let request = weir_core::convert::batch_to_metrics(rows)?;
    let mut out = Translation::default();
    for resource_metrics in &request.resource_metrics {
        let attributes = resource_metrics
            .resource
            .as_ref()
            .map_or(&[][..], |r| &r.attributes[..]);
        let resource = ResourceLabels::new(attributes, settings);
        let mut latest: Option<i64> = None;
        for scope_metrics in &resource_metrics.scope_metrics {
            let mut base = resource.promoted.clone();
            if let Some(scope) = &scope_metrics.scope {
                insert_nonempty(&mut base, "otel_scope_name", &scope.name);
                insert_nonempty(&mut base, "otel_scope_version", &scope.version);
            }
            for m in &scope_metrics.metrics {
                let mut cx = MetricContext {
                    base: &base,
                    resource: &resource,
                    settings,
                    out: &mut out,
                    latest: &mut latest,
                };
                cx.metric(m);
            }
        }
        if let Some(at) = latest {
            resource.target_info(at, &mut out.series);
        }
    }
    Ok(out)
}

/// The labels one resource gives its series.
struct ResourceLabels {
    /// `resource_to_labels` attributes (point attributes win over them).
    promoted: BTreeMap<String, String>,
    /// `job` and `instance` (they win over point attributes).
    identity: Vec<(&'static str, String)>,
    /// The other attributes, for `target_info`.
    info: BTreeMap<String, String>,
}

impl ResourceLabels {
    fn new(attributes: &[KeyValue], settings: &Settings) -> Self {
        let text = |key: &str| {
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| value_text(kv.value.as_ref()))
                .filter(|v| !v.is_empty())
        };
        let mut identity = Vec::new();
        if let Some(name) = text(SERVICE_NAME) {
            let job = match text(SERVICE_NAMESPACE) {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name,
            };
            identity.push(("job", job));
        }
        if let Some(instance) = text(SERVICE_INSTANCE_ID) {
            identity.push(("instance", instance));
        }
        let promoted_keys = &settings.resource_to_labels;
        let (promoted, info): (Vec<&KeyValue>, Vec<&KeyValue>) = attributes
            .iter()
            .filter(|kv| {
                ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID].contains(&kv.key.as_str())
            })
            .partition(|kv| promoted_keys.contains(&kv.key));
        ResourceLabels {
            promoted: attribute_labels(promoted),
            identity,
            info: attribute_labels(info),
        }
    }

    /// The resource's `target_info` sample, when it has attributes besides
    /// those of `job` and `instance`.
    fn target_info(&self, timestamp: i64, out: &mut Vec<Series>) {
        if self.info.is_empty() {
            return;
        }
        let mut labels = self.info.clone();
        for (name, value) in &self.identity {
            labels.insert((*name).to_string(), value.clone());
        }
        labels.insert("__name__".to_string(), "target_info".to_string());
        out.push(Series {
            labels: sorted(labels),
            value: Value::Float(Sample {
                value: 1.0,
                timestamp,
            }),
            point: None,
        });
    }
}

/// Turns the points of one metric into series.
struct MetricContext<'a> {
    base: &'a BTreeMap<String, String>,
    resource: &'a ResourceLabels,
    settings: &'a Settings,
    out: &'a mut Translation,
    latest: &'a mut Option<i64>,
}

/// Whether a point's flags say it has no recorded value.
fn no_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

fn stale_or(flags: u32, value: f64) -> f64 {
    if no_value(flags) {
        f64::from_bits(STALE_NAN)
    } else {
        value
    }
}

impl MetricContext<'_> {
    fn metric(&mut self, m: &Metric) {
        let Some(data) = &m.data else { return };
        let points = weir_core::convert::point_count(m) as u64;
        let kind = match data {
            metric::Data::Gauge(_) => Kind::Gauge,
            metric::Data::Sum(s) if s.is_monotonic => Kind::MonotonicCounter,
            metric::Data::Sum(_) => Kind::NonMonotonicCounter,
            metric::Data::Histogram(_) | metric::Data::ExponentialHistogram(_) => Kind::Histogram,
            metric::Data::Summary(_) => Kind::Summary,
        };
        let temporality = match data {
            metric::Data::Sum(s) => Some(s.aggregation_temporality),
            metric::Data::Histogram(h) => Some(h.aggregation_temporality),
            metric::Data::ExponentialHistogram(h) => Some(h.aggregation_temporality),
            metric::Data::Gauge(_) | metric::Data::Summary(_) => None,
        };
        if let Some(t) = temporality
            && t != AggregationTemporality::Cumulative as i32
        {
            let which = if t == AggregationTemporality::Delta as i32 {
                "delta"
            } else {
                "unspecified"
            };
            self.reject_all(
                points,
                format!(
                    "metric `{}` has {which} temporality: remote write takes cumulative \
                     values only; convert it to cumulative before this sink (or send it \
                     with OTLP)",
                    m.name
                ),
            );
            return;
        }
        let Some(name) = metric_name(&m.name, &m.unit, kind) else {
            self.reject_all(
                points,
                format!("metric name `{}` has nothing Prometheus can name", m.name),
            );
            return;
        };
        match data {
            metric::Data::Gauge(g) => g.data_points.iter().for_each(|p| self.number(&name, p)),
            metric::Data::Sum(s) => s.data_points.iter().for_each(|p| self.number(&name, p)),
            metric::Data::Histogram(h) => {
                h.data_points.iter().for_each(|p| self.histogram(&name, p));
            }
            metric::Data::ExponentialHistogram(h) => h
                .data_points
                .iter()
                .for_each(|p| self.exponential(&name, p)),
            metric::Data::Summary(s) => s.data_points.iter().for_each(|p| self.summary(&name, p)),
        }
    }

    fn reject_all(&mut self, points: u64, why: String) {
        self.out.rejected += points;
        self.out.points += points as usize;
        if self.out.rejection.is_none() {
            self.out.rejection = Some(why);
        }
    }

    /// Starts the next data point: its time in ms, or `None` (counted)
    /// when it has none.
    fn time(&mut self, name: &str, time_unix_nano: u64) -> Option<i64> {
        self.out.points += 1;
        let ms = i64::try_from(time_unix_nano / 1_000_000)
            .ok()
            .filter(|&ms| ms > 0);
        match ms {
            Some(ms) => {
                *self.latest = Some(self.latest.map_or(ms, |l| l.max(ms)));
                Some(ms)
            }
            None => {
                self.out.reject(format!(
                    "a point of `{name}` has no time, or one before 1970 or after 2262"
                ));
                None
            }
        }
    }

    /// The labels of a point: the scope's and promoted ones, then the
    /// point's attributes, then `job` / `instance`.
    fn labels(&self, attributes: &[KeyValue]) -> BTreeMap<String, String> {
        let mut labels = self.base.clone();
        labels.extend(attribute_labels(attributes.iter()));
        for (name, value) in &self.resource.identity {
            labels.insert((*name).to_string(), value.clone());
        }
        labels
    }

    fn push(
        &mut self,
        labels: &BTreeMap<String, String>,
        name: String,
        extra: Option<(&str, String)>,
        value: Value,
    ) {
        let mut labels = labels.clone();
        labels.insert("__name__".to_string(), name);
        if let Some((k, v)) = extra {
            labels.insert(k.to_string(), v);
        }
        self.out.series.push(Series {
            labels: sorted(labels),
            value,
            point: Some(self.out.points),
        });
    }

    fn float(
        &mut self,
        labels: &BTreeMap<String, String>,
        name: String,
        extra: Option<(&str, String)>,
        value: f64,
        timestamp: i64,
    ) {
        self.push(
            labels,
            name,
            extra,
            Value::Float(Sample { value, timestamp }),
        );
    }

    fn number(&mut self, name: &str, p: &NumberDataPoint) {
        let Some(timestamp) = self.time(name, p.time_unix_nano) else {
            return;
        };
        let value = match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None if no_value(p.flags) => 0.0,
            None => {
                self.out.reject(format!("a point of `{name}` has no value"));
                return;
            }
        };
        let labels = self.labels(&p.attributes);
        self.float(
            &labels,
            name.to_string(),
            None,
            stale_or(p.flags, value),
            timestamp,
        );
    }

    /// `_sum` (when there is one) and `_count`.
    fn sum_and_count(
        &mut self,
        labels: &BTreeMap<String, String>,
        name: &str,
        sum: Option<f64>,
        count: u64,
        flags: u32,
        timestamp: i64,
    ) {
        if let Some(sum) = sum {
            self.float(
                labels,
                format!("{name}_sum"),
                None,
                stale_or(flags, sum),
                timestamp,
            );
        }
        self.float(
            labels,
            format!("{name}_count"),
            None,
            stale_or(flags, count as f64),
            timestamp,
        );
    }

    fn buckets(
        &mut self,
        labels: &BTreeMap<String, String>,
        name: &str,
        buckets: Vec<(f64, u64)>,
        flags: u32,
        timestamp: i64,
    ) {
        let bucket = format!("{name}_bucket");
        for (le, count) in buckets {
            self.float(
                labels,
                bucket.clone(),
                Some(("le", float_label(le))),
                stale_or(flags, count as f64),
                timestamp,
            );
        }
    }

    fn histogram(&mut self, name: &str, p: &HistogramDataPoint) {
        let Some(timestamp) = self.time(name, p.time_unix_nano) else {
            return;
        };
        let labels = self.labels(&p.attributes);
        let mut cumulative = 0u64;
        let mut buckets: Vec<(f64, u64)> = p
            .explicit_bounds
            .iter()
            .zip(&p.bucket_counts)
            .map(|(&bound, &count)| {
                cumulative = cumulative.saturating_add(count);
                (bound, cumulative)
            })
            .collect();
        buckets.push((f64::INFINITY, p.count));
        self.buckets(&labels, name, buckets, p.flags, timestamp);
        self.sum_and_count(&labels, name, p.sum, p.count, p.flags, timestamp);
    }

    fn exponential(&mut self, name: &str, p: &ExponentialHistogramDataPoint) {
        let Some(timestamp) = self.time(name, p.time_unix_nano) else {
            return;
        };
        let labels = self.labels(&p.attributes);
        match self.settings.histograms {
            HistogramMode::Classic => {
                self.buckets(
                    &labels,
                    name,
                    histogram::classic_buckets(p),
                    p.flags,
                    timestamp,
                );
                self.sum_and_count(&labels, name, p.sum, p.count, p.flags, timestamp);
            }
            HistogramMode::Native => {
                let value = if no_value(p.flags) {
                    Ok(histogram::stale(timestamp))
                } else {
                    histogram::native(p, timestamp)
                };
                match value {
                    Ok(h) => self.push(
                        &labels,
                        name.to_string(),
                        None,
                        Value::Histogram(Box::new(h)),
                    ),
                    Err(why) => self.out.reject(format!("a point of `{name}`: {why}")),
                }
            }
        }
    }

    fn summary(&mut self, name: &str, p: &SummaryDataPoint) {
        let Some(timestamp) = self.time(name, p.time_unix_nano) else {
            return;
        };
        let labels = self.labels(&p.attributes);
        for q in &p.quantile_values {
            self.float(
                &labels,
                name.to_string(),
                Some(("quantile", float_label(q.quantile))),
                stale_or(p.flags, q.value),
                timestamp,
            );
        }
        self.sum_and_count(&labels, name, Some(p.sum), p.count, p.flags, timestamp);
    }
}

fn insert_nonempty(labels: &mut BTreeMap<String, String>, name: &str, value: &str) {
    if !value.is_empty() {
        labels.insert(name.to_string(), value.to_string());
    }
}

/// Attributes as labels: names sanitized, empty values left out, the
/// values of attributes that end up with the same name joined with `;` in
/// the order of their keys.
fn attribute_labels<'a>(
    attributes: impl IntoIterator<Item = &'a KeyValue>,
) -> BTreeMap<String, String> {
    let mut by_name: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for kv in attributes {
        let value = value_text(kv.value.as_ref());
        if value.is_empty() {
            continue;
        }
        if let Some(name) = label_name(&kv.key) {
            by_name.entry(name).or_default().push((&kv.key, value));
        }
    }
    by_name
        .into_iter()
        .map(|(name, mut values)| {
            values.sort_by(|a, b| a.0.cmp(b.0));
            let joined = values
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(";");
            (name, joined)
        })
        .collect()
}

fn sorted(labels: BTreeMap<String, String>) -> Vec<Label> {
    labels
        .into_iter()
        .map(|(name, value)| Label { name, value })
        .collect()
}

/// An attribute value as a label value: strings as they are, numbers and
/// booleans in their usual text, bytes in base64, arrays and maps as JSON.
fn value_text(value: Option<&AnyValue>) -> String {
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return String::new();
    };
    match value {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BytesValue(b) => base64::engine::general_purpose::STANDARD.encode(b),
        any_value::Value::ArrayValue(a) => {
            let items: Vec<serde_json::Value> =
                a.values.iter().map(|v| json(v.value.as_ref())).collect();
            serde_json::Value::Array(items).to_string()
        }
        any_value::Value::KvlistValue(kv) => {
            let map: serde_json::Map<String, serde_json::Value> = kv
                .values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect();
            serde_json::Value::Object(map).to_string()
        }
        any_value::Value::StringValueStrindex(i) => i.to_string(),
    }
}

/// A value inside an array or map, as JSON.
fn json(value: Option<&any_value::Value>) -> serde_json::Value {
    match value {
        None => serde_json::Value::Null,
        Some(any_value::Value::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => serde_json::Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Value::from(*d),
        Some(any_value::Value::BytesValue(b)) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(other) => {
            let wrapped = AnyValue {
                value: Some(other.clone()),
            };
            serde_json::from_str(&value_text(Some(&wrapped))).unwrap_or(serde_json::Value::Null)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, ResourceMetrics, ScopeMetrics, number_data_point,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_string())),
            }),
            ..Default::default()
        }
    }

    /// One gauge `name` of `points`, under a resource and scope.
    fn gauge_rows(
        resource: Vec<KeyValue>,
        scope: &str,
        name: &str,
        points: Vec<NumberDataPoint>,
    ) -> RecordBatch {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: scope.to_string(),
                        ..Default::default()
                    }),
                    metrics: vec![Metric {
                        name: name.to_string(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: points,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        weir_core::convert::metrics_to_batch(&request)
            .expect("converts")
            .batch
    }

    fn point(time_unix_nano: u64, value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            time_unix_nano,
            attributes,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        }
    }

    fn labels(series: &Series) -> Vec<(&str, &str)> {
        series
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    /// Guarantees: the `ALERTS` series the `rules` processor records (a
    /// gauge of scope `weir.rules`, the rule's labels as attributes, its
    /// `service_name` as the resource's `service.name`) goes out as
    /// `ALERTS{alertname, alertstate, job, ...}` with its labels sorted.
    #[test]
    fn recorded_alerts_series() {
        let rows = gauge_rows(
            vec![string("service.name", "checkout")],
            "weir.rules",
            "ALERTS",
            vec![point(
                1_700_000_000_000_000_000,
                1.0,
                vec![
                    string("alertname", "HighLatency"),
                    string("alertstate", "firing"),
                    string("severity", "page"),
                ],
            )],
        );
        let out = translate(&rows, &Settings::default()).expect("translates");
        assert_eq!(out.rejected, 0);
        assert_eq!(out.series.len(), 1, "no target_info for service.name alone");
        assert_eq!(
            labels(&out.series[0]),
            [
                ("__name__", "ALERTS"),
                ("alertname", "HighLatency"),
                ("alertstate", "firing"),
                ("job", "checkout"),
                ("otel_scope_name", "weir.rules"),
                ("severity", "page"),
            ]
        );
        assert_eq!(
            out.series[0].value,
            Value::Float(Sample {
                value: 1.0,
                timestamp: 1_700_000_000_000
            })
        );
    }

    /// Guarantees: attributes that become the same label name are joined
    /// with `;` in key order; a point attribute wins over a promoted
    /// resource attribute; `job` and `instance` win over point attributes;
    /// empty values are left out.
    #[test]
    fn label_collisions_and_precedence() {
        let rows = gauge_rows(
            vec![
                string("service.name", "api"),
                string("service.instance.id", "i-1"),
                string("region", "eu"),
                string("zone", "eu-1a"),
            ],
            "",
            "m",
            vec![point(
                1_000_000_000,
                2.0,
                vec![
                    string("a.b", "dot"),
                    string("a_b", "underscore"),
                    string("zone", "point-zone"),
                    string("job", "spoofed"),
                    string("empty", ""),
                ],
            )],
        );
        let settings = Settings {
            resource_to_labels: vec!["region".to_string(), "zone".to_string()],
            ..Settings::default()
        };
        let out = translate(&rows, &settings).expect("translates");
        assert_eq!(
            labels(&out.series[0]),
            [
                ("__name__", "m"),
                ("a_b", "dot;underscore"),
                ("instance", "i-1"),
                ("job", "api"),
                ("region", "eu"),
                ("zone", "point-zone"),
            ]
        );
    }

    /// Guarantees: a point without a time is refused and counted, the
    /// others of the batch still go.
    #[test]
    fn points_without_time_are_counted() {
        let rows = gauge_rows(
            vec![],
            "",
            "m",
            vec![point(0, 1.0, vec![]), point(2_000_000, 3.0, vec![])],
        );
        let out = translate(&rows, &Settings::default()).expect("translates");
        assert_eq!(out.rejected, 1);
        assert!(out.rejection.is_some_and(|r| r.contains("no time")));
        assert_eq!(out.series.len(), 1);
        assert_eq!(
            out.series[0].value,
            Value::Float(Sample {
                value: 3.0,
                timestamp: 2
            })
        );
    }
}
