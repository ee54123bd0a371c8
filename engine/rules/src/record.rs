//! Recording rules: result rows become metric points.
//!
//! Each row of a recording rule's result becomes one gauge data point of the
//! metric named after the rule, at the evaluation's time (`t - query_offset`,
//! as Prometheus stamps recorded samples), with the row's labels as the
//! point's attributes. A `service_name` label becomes the resource's
//! `service.name`, so that the recorded series has a `service_name` column
//! like any other metric. The points are converted with weir-core's OTLP
//! converter, so the batch has exactly the `metrics` schema and flows back
//! into the pipeline like any other metric.
//!
//! Alert rules record too, as Prometheus does: [`alerts_series`] is the
//! `ALERTS` series of their pending and firing instances.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use weir_core::ConvertError;
use weir_core::schema::col;

use crate::alert::{Alert, AlertState};
use crate::query::Sample;
use crate::time::UnixNanos;

/// The instrumentation scope of recorded points.
pub const SCOPE_NAME: &str = "weir.rules";

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The OTLP request holding one gauge point of metric `name` per sample.
pub fn metrics_request(
    name: &str,
    time: UnixNanos,
    samples: &[Sample],
) -> ExportMetricsServiceRequest {
    let time_unix_nano = u64::try_from(time).unwrap_or(0);
    let mut by_service: BTreeMap<Option<&str>, Vec<NumberDataPoint>> = BTreeMap::new();
    for sample in samples {
        let service = sample.labels.get(col::SERVICE_NAME).map(String::as_str);
        let attributes = sample
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != col::SERVICE_NAME)
            .map(|(k, v)| string_kv(k, v))
            .collect();
        by_service
            .entry(service)
            .or_default()
            .push(NumberDataPoint {
                attributes,
                time_unix_nano,
                value: Some(number_data_point::Value::AsDouble(sample.value)),
                ..Default::default()
            });
    }
    let resource_metrics = by_service
        .into_iter()
        .map(|(service, data_points)| ResourceMetrics {
            resource: service.map(|s| Resource {
                attributes: vec![string_kv("service.name", s)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_string(),
                    ..Default::default()
                }),
                metrics: vec![Metric {
                    name: name.to_string(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}

/// The name of the series of active alerts (Prometheus' `ALERTS`).
pub const ALERTS_METRIC: &str = "ALERTS";

/// Prometheus' `ALERTS` series for the pending and firing alerts among
/// `alerts`: one point of value 1 per alert, with its labels and
/// `alertstate` = `pending` or `firing`, at `time`.
pub fn alerts_series<'a>(
    time: UnixNanos,
    alerts: impl IntoIterator<Item = &'a Alert>,
) -> Result<RecordBatch, ConvertError> {
    let samples: Vec<Sample> = alerts
        .into_iter()
        .filter_map(|a| {
            let state = match a.state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
                AlertState::Inactive => return None,
            };
            let mut labels = a.labels.clone();
            labels.insert("alertstate".to_string(), state.to_string());
            Some(Sample { labels, value: 1.0 })
        })
        .collect();
    metrics_batch(ALERTS_METRIC, time, &samples)
}

/// The `metrics` rows of the samples.
pub fn metrics_batch(
    name: &str,
    time: UnixNanos,
    samples: &[Sample],
) -> Result<RecordBatch, ConvertError> {
    let converted = weir_core::convert::metrics_to_batch(&metrics_request(name, time, samples))?;
    match converted.rejection {
        Some(why) => Err(ConvertError::Internal(why)),
        None => Ok(converted.batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Float64Type;
    use weir_core::schema::metrics_schema;

    /// Guarantees: one gauge point per sample, in the `metrics` schema, named
    /// after the rule, at the given time, `service_name` on the resource and
    /// the other labels as attributes (and back through OTLP unchanged).
    #[test]
    fn samples_become_gauge_points() {
        let samples = vec![
            Sample {
                labels: BTreeMap::from([
                    ("service_name".into(), "cart".into()),
                    ("route".into(), "/pay".into()),
                ]),
                value: 0.25,
            },
            Sample {
                labels: BTreeMap::new(),
                value: 3.0,
            },
        ];
        let batch = metrics_batch("job:errors:ratio5m", 42_000, &samples).unwrap();
        assert_eq!(batch.schema().fields(), metrics_schema().fields());
        assert_eq!(batch.num_rows(), 2);
        let values = batch
            .column_by_name(col::VALUE)
            .unwrap()
            .as_primitive::<Float64Type>();
        let mut got: Vec<f64> = values.iter().flatten().collect();
        got.sort_by(f64::total_cmp);
        assert_eq!(got, [0.25, 3.0]);
        let back = weir_core::convert::batch_to_metrics(&batch).unwrap();
        let mut names = Vec::new();
        for rm in &back.resource_metrics {
            for sm in &rm.scope_metrics {
                assert_eq!(sm.scope.as_ref().map(|s| s.name.as_str()), Some(SCOPE_NAME));
                for m in &sm.metrics {
                    names.push(m.name.clone());
                    let Some(metric::Data::Gauge(g)) = &m.data else {
                        panic!("not a gauge")
                    };
                    for p in &g.data_points {
                        assert_eq!(p.time_unix_nano, 42_000);
                        if rm.resource.is_some() {
                            assert_eq!(p.attributes, vec![string_kv("route", "/pay")]);
                        }
                    }
                }
            }
        }
        assert_eq!(names, ["job:errors:ratio5m", "job:errors:ratio5m"]);
        let services = batch.column_by_name(col::SERVICE_NAME).unwrap();
        assert_eq!(services.null_count(), 1);
    }

    /// Guarantees: `ALERTS` holds one point of value 1 per pending or
    /// firing alert, with `alertstate`, and none for resolved ones.
    #[test]
    fn alerts_series_like_prometheus() {
        let alert = |state| Alert {
            labels: BTreeMap::from([("alertname".into(), "X".into())]),
            annotations: BTreeMap::new(),
            state,
            value: 7.0,
            active_at: 0,
            fired_at: None,
            resolved_at: None,
            last_sent_at: None,
            valid_until: None,
            keep_firing_since: None,
        };
        let alerts = [
            alert(AlertState::Pending),
            alert(AlertState::Firing),
            alert(AlertState::Inactive),
        ];
        let batch = alerts_series(5, &alerts).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let back = weir_core::convert::batch_to_metrics(&batch).unwrap();
        let metric = &back.resource_metrics[0].scope_metrics[0].metrics[0];
        assert_eq!(metric.name, ALERTS_METRIC);
        let Some(metric::Data::Gauge(g)) = &metric.data else {
            panic!("not a gauge")
        };
        let states: Vec<&KeyValue> = g
            .data_points
            .iter()
            .flat_map(|p| p.attributes.iter().filter(|kv| kv.key == "alertstate"))
            .collect();
        assert_eq!(
            states,
            [
                &string_kv("alertstate", "pending"),
                &string_kv("alertstate", "firing")
            ]
        );
        assert!(
            g.data_points
                .iter()
                .all(|p| p.value == Some(number_data_point::Value::AsDouble(1.0)))
        );
    }
}
