//! Prometheus remote write 1.0: [`RemoteWriteExporter`] sends `metrics`
//! rows to Prometheus, Mimir, Cortex, Thanos or VictoriaMetrics.
//!
//! A batch goes out in four steps:
//!
//! 1. [`translate`]: the rows become series the way Prometheus' own OTLP
//!    receiver makes them (names with unit and `_total` suffixes, `job` /
//!    `instance` / `target_info`, histograms as `_bucket{le}` or native
//!    histograms); points that cannot be sent (delta temporality, no time)
//!    are counted in [`Exported::rejected`];
//! 2. [`stale`]: series sent before and not seen for `stale_after` get a
//!    staleness marker;
//! 3. the series are cut into `WriteRequest`s of at most
//!    `max_samples_per_request` samples and `max_request_bytes` bytes,
//!    each snappy-compressed (block format);
//! 4. [`http`](crate::http): each is posted with the protocol's headers. A refusal (4xx
//!    but 429) drops that request's points and the others still go; a
//!    failure that may pass (5xx, 429, no connection, timeout) ends the
//!    export with [`ExportError::Retryable`], and the sink sends the whole
//!    batch again (requests taken before may then arrive twice, which
//!    Prometheus takes as duplicates of the same samples).
//!
//! Not sent: exemplars, and metric metadata (`MetricMetadata`).

pub mod config;
mod histogram;
mod names;
pub mod proto;
mod stale;
mod translate;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use prost::Message as _;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use weir_core::{ComponentError, Signal};

use crate::exporter::{ExportError, Exported, Exporter, Tally};
use crate::http::{self, Failure, RetryOn};
use proto::{TimeSeries, WriteRequest};
use stale::{MAX_TRACKED_SERIES, Staleness};
use translate::{STALE_NAN, Series, Settings, Value};

pub use config::{HistogramMode, PrometheusRemoteWriteConfig};

/// The remote-write protocol version Weir speaks.
const PROTOCOL_VERSION: &str = "0.1.0";

/// Sends `metrics` rows with Prometheus remote write 1.0.
#[derive(Debug)]
pub struct RemoteWriteExporter {
    url: String,
    /// `url` as logs and errors show it: scheme, host and port.
    shown: String,
    client: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
    settings: Settings,
    max_request_bytes: usize,
    max_samples: usize,
    stale_after: Duration,
    staleness: Mutex<Staleness>,
}

impl RemoteWriteExporter {
    /// The exporter of component `component` configured by `config`: the
    /// headers are resolved now (environment variables, files), so a
    /// missing secret stops the start.
    pub fn new(
        component: &str,
        config: &PrometheusRemoteWriteConfig,
    ) -> Result<Self, ComponentError> {
        let url = config.url.resolve_http_url(component, "url")?;
        let headers = request_headers(component, config)?;
        let client = crate::http::client_builder().build().map_err(|e| {
            ComponentError::internal(component, format!("cannot make an HTTP client: {e}"))
        })?;
        Ok(RemoteWriteExporter {
            shown: weir_core::redact::url(&url),
            url,
            client,
            headers,
            timeout: config.timeout,
            settings: Settings {
                resource_to_labels: config.resource_to_labels.clone(),
                histograms: config.histograms,
            },
            max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
            max_samples: config.max_samples_per_request.max(1),
            stale_after: config.stale_after,
            staleness: Mutex::new(Staleness::new(MAX_TRACKED_SERIES)),
        })
    }

    /// Remembers the series of `series` as sent now, and adds a staleness
    /// marker for each series gone for `stale_after`; returns those.
    fn staleness_markers(
        &self,
        series: &mut Vec<Series>,
        now: Instant,
    ) -> Vec<(Vec<proto::Label>, bool)> {
        let mut staleness = self
            .staleness
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for s in series.iter() {
            staleness.seen(&s.labels, matches!(s.value, Value::Histogram(_)), now);
        }
        let expired = staleness.expired(now, self.stale_after);
        drop(staleness);
        let timestamp = unix_millis(SystemTime::now());
        for (labels, histogram) in &expired {
            let value = if *histogram {
                Value::Histogram(Box::new(histogram::stale(timestamp)))
            } else {
                Value::Float(proto::Sample {
                    value: f64::from_bits(STALE_NAN),
                    timestamp,
                })
            };
            series.push(Series {
                labels: labels.clone(),
                value,
                point: None,
            });
        }
        expired
    }
}

#[async_trait]
impl Exporter for RemoteWriteExporter {
    async fn preflight(&self) -> Result<(), String> {
        crate::http::preflight(&self.client, &self.url).await
    }

    async fn export(&self, signal: Signal, rows: &RecordBatch) -> Result<Exported, ExportError> {
        let all_rows = rows.num_rows() as u64;
        if signal != Signal::Metrics {
            return Err(ExportError::Permanent {
                reason: format!("{}: remote write takes metrics, not {signal}", self.shown),
                records: all_rows,
            });
        }
        let translation =
            translate::translate(rows, &self.settings).map_err(|e| ExportError::Permanent {
                reason: format!("{}: the rows cannot be read: {e}", self.shown),
                records: all_rows,
            })?;
        let mut tally = Tally::new(translation.rejected, translation.rejection);
        let mut series = translation.series;
        let now = Instant::now();
        let expired = self.staleness_markers(&mut series, now);

        let cut = cut(series, self.max_samples, self.max_request_bytes);
        if cut.too_large > 0 {
            tally.reject(cut.too_large, || {
                format!(
                    "{}: a series is larger than max_request_bytes ({} bytes) on its own",
                    self.shown, self.max_request_bytes
                )
            });
        }
        for request in cut.requests {
            let body = snap::raw::Encoder::new()
                .compress_vec(&request.body)
                .map_err(|e| ExportError::Permanent {
                    reason: format!("{}: cannot compress a request: {e}", self.shown),
                    records: request.points,
                })?;
            let sent = http::post(
                &self.client,
                &self.url,
                &self.headers,
                self.timeout,
                body,
                RetryOn::ServerErrors,
            );
            match sent.await {
                Ok(_) => tally.taken(),
                Err(Failure::Retryable(reason, after)) => {
                    return Err(ExportError::Retryable { reason, after });
                }
                Err(Failure::Refused(reason)) => tally.refused(request.points, reason),
            }
        }
        self.staleness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(&expired, now);
        tally.finish()
    }
}

/// One request body (before snappy) and the data points it carries.
#[derive(Debug)]
struct Request {
    body: Vec<u8>,
    points: u64,
}

/// The requests of a batch, and the series too large for any request.
#[derive(Debug)]
struct Cut {
    requests: Vec<Request>,
    too_large: u64,
}

/// Cuts `series` into requests of at most `max_samples` samples and
/// `max_bytes` bytes of protobuf, in order.
fn cut(series: Vec<Series>, max_samples: usize, max_bytes: usize) -> Cut {
    let mut requests = Vec::new();
    let mut too_large = 0u64;
    let mut current = WriteRequest::default();
    let mut bytes = 0usize;
    let mut points = PointCounter::default();
    for s in series {
        let point = s.point;
        let ts = time_series(s);
        let len = ts.encoded_len();
        // One byte of tag and the length's varint before each series.
        let size = 1 + prost::length_delimiter_len(len) + len;
        if size > max_bytes {
            if points.would_count(point) {
                too_large += 1;
            }
            continue;
        }
        if !current.timeseries.is_empty()
            && (current.timeseries.len() >= max_samples || bytes + size > max_bytes)
        {
            requests.push(Request {
                body: std::mem::take(&mut current).encode_to_vec(),
                points: points.take(),
            });
            bytes = 0;
        }
        points.add(point);
        current.timeseries.push(ts);
        bytes += size;
    }
    if !current.timeseries.is_empty() {
        requests.push(Request {
            body: current.encode_to_vec(),
            points: points.take(),
        });
    }
    Cut {
        requests,
        too_large,
    }
}

/// Counts the data points behind the series of a request: a histogram's
/// `_bucket`, `_sum` and `_count` series are one point.
#[derive(Debug, Default)]
struct PointCounter {
    last: Option<usize>,
    count: u64,
}

impl PointCounter {
    fn would_count(&self, point: Option<usize>) -> bool {
        point.is_some() && point != self.last
    }

    fn add(&mut self, point: Option<usize>) {
        if self.would_count(point) {
            self.count += 1;
            self.last = point;
        }
    }

    /// The count so far, starting again at 0 (a point cut across two
    /// requests counts in both).
    fn take(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.count)
    }
}

fn time_series(s: Series) -> TimeSeries {
    let (samples, histograms) = match s.value {
        Value::Float(sample) => (vec![sample], Vec::new()),
        Value::Histogram(h) => (Vec::new(), vec![*h]),
    };
    TimeSeries {
        labels: s.labels,
        samples,
        exemplars: Vec::new(),
        histograms,
    }
}

fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The headers of every request: the protocol's, the tenant's, and the
/// user's (given, from the environment, from files).
fn request_headers(
    component: &str,
    config: &PrometheusRemoteWriteConfig,
) -> Result<HeaderMap, ComponentError> {
    let mut map = config.user_headers().resolve(component)?;
    map.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    map.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    map.insert(
        HeaderName::from_static("x-prometheus-remote-write-version"),
        HeaderValue::from_static(PROTOCOL_VERSION),
    );
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Label, Sample};
    use weir_config::{Secret, Sensitive};

    fn series(point: Option<usize>, name: &str) -> Series {
        Series {
            labels: vec![Label {
                name: "__name__".to_string(),
                value: name.to_string(),
            }],
            value: Value::Float(Sample {
                value: 1.0,
                timestamp: 1,
            }),
            point,
        }
    }

    /// Guarantees: no request holds more than `max_samples` samples or
    /// `max_bytes` bytes, none is empty, the order is kept, and a series
    /// too large alone is counted, not sent.
    #[test]
    fn requests_respect_both_limits() {
        let all: Vec<Series> = (0..10).map(|i| series(Some(i / 2), "m")).collect();
        let cut3 = cut(all.clone(), 3, usize::MAX);
        assert_eq!(cut3.requests.len(), 4);
        let points: Vec<u64> = cut3.requests.iter().map(|r| r.points).collect();
        assert_eq!(points, [2, 2, 2, 1], "point 1 is cut across two requests");

        let one = time_series(series(Some(0), "m"));
        let size = 1 + prost::length_delimiter_len(one.encoded_len()) + one.encoded_len();
        let by_bytes = cut(all, 1000, size * 4);
        assert_eq!(by_bytes.requests.len(), 3);
        for r in &by_bytes.requests {
            assert!(r.body.len() <= size * 4);
            let decoded = WriteRequest::decode(&r.body[..]).expect("valid protobuf");
            assert!(!decoded.timeseries.is_empty());
        }

        let big = series(Some(0), &"x".repeat(200));
        let cut_big = cut(vec![big, series(Some(1), "m")], 10, 100);
        assert_eq!(cut_big.too_large, 1);
        assert_eq!(cut_big.requests.len(), 1);
    }

    /// Guarantees: the protocol's headers are set, the tenant is
    /// `X-Scope-OrgID`, and header values come from the environment and
    /// from files, through `headers` (`{ env }`, `{ file }`) as through
    /// `headers_from_env` and `headers_from_file`; a missing variable is a
    /// config error naming the component, the header and the variable.
    #[test]
    fn headers_from_everywhere() {
        let dir = tempfile::tempdir().expect("temp dir");
        let secret = dir.path().join("token");
        std::fs::write(&secret, "Bearer from-file\n").expect("write secret");
        let mut config = PrometheusRemoteWriteConfig::new("http://p/api/v1/write");
        config.tenant = Some("team-a".to_string());
        config
            .headers
            .insert("X-Team".to_string(), "checkout".into());
        config
            .headers_from_file
            .insert("Authorization".to_string(), secret.clone());
        config.headers.insert(
            "X-Key".to_string(),
            Sensitive::Secret(Secret::File(secret.clone())),
        );
        config.headers.insert(
            "X-Path-Too".to_string(),
            Sensitive::Secret(Secret::Env("PATH".to_string())),
        );
        config
            .headers_from_env
            .insert("X-Path".to_string(), "PATH".to_string());
        let headers = request_headers("prom", &config).expect("headers resolve");
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(get("content-encoding"), Some("snappy"));
        assert_eq!(get("content-type"), Some("application/x-protobuf"));
        assert_eq!(get("x-prometheus-remote-write-version"), Some("0.1.0"));
        assert_eq!(get("x-scope-orgid"), Some("team-a"));
        assert_eq!(get("x-team"), Some("checkout"));
        assert_eq!(get("authorization"), Some("Bearer from-file"));
        assert!(get("x-path").is_some_and(|v| !v.is_empty()));
        assert_eq!(get("x-key"), Some("Bearer from-file"));
        assert_eq!(get("x-path-too"), get("x-path"));

        let mut unset = PrometheusRemoteWriteConfig::new("http://p/api/v1/write");
        unset.headers.insert(
            "Authorization".to_string(),
            Sensitive::Secret(Secret::Env("WEIR_TEST_SURELY_UNSET_VARIABLE".to_string())),
        );
        let error = request_headers("prom", &unset).expect_err("unset variable");
        assert_eq!(
            error.to_string(),
            "configuration of `prom`: `headers.Authorization`: the environment variable \
             `WEIR_TEST_SURELY_UNSET_VARIABLE` is not set (or not UTF-8); set it before \
             starting Weir"
        );

        config.headers_from_env.insert(
            "X-Missing".to_string(),
            "WEIR_TEST_SURELY_UNSET_VARIABLE".to_string(),
        );
        let error = request_headers("prom", &config).expect_err("unset variable");
        assert!(
            error
                .to_string()
                .contains("WEIR_TEST_SURELY_UNSET_VARIABLE")
        );
    }
}
