//! The `prometheus_remote_write` exporter against Debian's Prometheus
//! (2.42, remote-write receiver and native histograms on) and
//! VictoriaMetrics (1.79), read back through their query APIs; and against
//! small axum servers for the answers a receiver may give.
//!
//! The binaries come from `WEIR_TEST_PROMETHEUS` and
//! `WEIR_TEST_VICTORIA_METRICS` (`scripts/test` sets them), else `PATH`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogram, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint, Summary, SummaryDataPoint,
    exponential_histogram_data_point, metric, summary_data_point::ValueAtQuantile,
};
use prost::Message as _;
use serde_json::Value as Json;
use weir_core::Signal;
use weir_export::remote_write::proto::WriteRequest;
use weir_export::remote_write::{HistogramMode, PrometheusRemoteWriteConfig, RemoteWriteExporter};
use weir_export::{ExportError, Exporter};
use weir_testkit::backends::{free_port, prometheus, victoria_metrics};
use weir_testkit::{kv, otlp};

// ---- servers ----

/// A receiver that answers every request with `status`, `headers` and
/// `body`, and keeps the requests' headers and bodies.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver(
    status: StatusCode,
    retry_after: Option<&'static str>,
    body: &'static str,
) -> (String, Received) {
    let received: Received = Arc::default();
    let kept = received.clone();
    let app = Router::new().route(
        "/api/v1/write",
        post(move |headers: HeaderMap, bytes: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().expect("lock").push((headers, bytes));
                let mut answer = axum::http::Response::builder().status(status);
                if let Some(after) = retry_after {
                    answer = answer.header("Retry-After", after);
                }
                answer.body(axum::body::Body::from(body)).expect("response")
            }
        }),
    );
    (serve(app).await, received)
}

/// Serves `app` on a free loopback port; its remote-write URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/v1/write",
        listener.local_addr().expect("address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// ---- the data ----

const NANOS_PER_MS: u64 = 1_000_000;

/// A time in the recent past, whole milliseconds (in ns).
fn recent(seconds_ago: u64) -> u64 {
    let now_ms = weir_testkit::time::now_ns() / NANOS_PER_MS;
    (now_ms - seconds_ago * 1000) * NANOS_PER_MS
}

/// One metric of each kind under one resource, as the OTLP source
/// receives them.
fn every_kind(t: u64) -> ExportMetricsServiceRequest {
    let route = || vec![kv::string("http.route", "/cart")];
    let memory = Metric {
        unit: "By".to_string(),
        ..otlp::gauge(
            "memory.usage",
            vec![NumberDataPoint {
                attributes: vec![kv::string("pool", "heap")],
                ..otlp::int_point(t, 1024)
            }],
        )
    };
    let reads = Metric {
        unit: "By".to_string(),
        ..otlp::sum(
            "io.read",
            vec![otlp::double_point(t, 4096.5)],
            AggregationTemporality::Cumulative,
            true,
        )
    };
    let duration = Metric {
        unit: "s".to_string(),
        ..otlp::histogram(
            "http.server.duration",
            vec![HistogramDataPoint {
                time_unix_nano: t,
                attributes: route(),
                count: 10,
                sum: Some(5.5),
                explicit_bounds: vec![0.1, 0.5, 1.0],
                bucket_counts: vec![2, 3, 4, 1],
                ..Default::default()
            }],
            AggregationTemporality::Cumulative,
        )
    };
    let latency = Metric {
        name: "rpc.latency".to_string(),
        unit: "ms".to_string(),
        data: Some(metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: t,
                count: 50,
                sum: 1000.0,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 12.0,
                    },
                    ValueAtQuantile {
                        quantile: 0.99,
                        value: 80.0,
                    },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let payload = Metric {
        name: "payload.size".to_string(),
        unit: "By".to_string(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            data_points: vec![ExponentialHistogramDataPoint {
                time_unix_nano: t,
                scale: 0,
                count: 7,
                sum: Some(30.0),
                zero_count: 1,
                positive: Some(exponential_histogram_data_point::Buckets {
                    offset: 0,
                    bucket_counts: vec![1, 2, 3],
                }),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    otlp::Group::new([memory, reads, duration, latency, payload])
        .resource(vec![
            kv::string("service.name", "checkout"),
            kv::string("service.namespace", "shop"),
            kv::string("service.instance.id", "pod-1"),
            kv::string("deployment.environment", "prod"),
            kv::string("host.name", "node-7"),
        ])
        .scope("weir.test", "1.0")
        .metrics()
}

fn rows(request: &ExportMetricsServiceRequest) -> RecordBatch {
    let converted = weir_core::convert::metrics_to_batch(request).expect("converts");
    assert_eq!(converted.rejected, 0);
    converted.batch
}

fn config(url: &str, histograms: HistogramMode) -> PrometheusRemoteWriteConfig {
    PrometheusRemoteWriteConfig {
        resource_to_labels: vec!["deployment.environment".to_string()],
        histograms,
        ..PrometheusRemoteWriteConfig::new(url)
    }
}

/// The labels every series of [`every_kind`] carries, besides `__name__`.
fn common_labels() -> BTreeMap<String, String> {
    [
        ("job", "shop/checkout"),
        ("instance", "pod-1"),
        ("deployment_environment", "prod"),
        ("otel_scope_name", "weir.test"),
        ("otel_scope_version", "1.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The float series of [`every_kind`] with classic histograms (exponential
/// ones too), as name + labels -> value.
fn expected_classic(with_exponential: bool) -> BTreeMap<BTreeMap<String, String>, f64> {
    let series = |name: &str, extra: &[(&str, &str)], value: f64| {
        let mut labels = common_labels();
        labels.insert("__name__".to_string(), name.to_string());
        for (k, v) in extra {
            labels.insert((*k).to_string(), (*v).to_string());
        }
        (labels, value)
    };
    let route = ("http_route", "/cart");
    let mut all = vec![
        series("memory_usage_bytes", &[("pool", "heap")], 1024.0),
        series("io_read_bytes_total", &[], 4096.5),
        series(
            "http_server_duration_seconds_bucket",
            &[route, ("le", "0.1")],
            2.0,
        ),
        series(
            "http_server_duration_seconds_bucket",
            &[route, ("le", "0.5")],
            5.0,
        ),
        series(
            "http_server_duration_seconds_bucket",
            &[route, ("le", "1")],
            9.0,
        ),
        series(
            "http_server_duration_seconds_bucket",
            &[route, ("le", "+Inf")],
            10.0,
        ),
        series("http_server_duration_seconds_sum", &[route], 5.5),
        series("http_server_duration_seconds_count", &[route], 10.0),
        series("rpc_latency_milliseconds", &[("quantile", "0.5")], 12.0),
        series("rpc_latency_milliseconds", &[("quantile", "0.99")], 80.0),
        series("rpc_latency_milliseconds_sum", &[], 1000.0),
        series("rpc_latency_milliseconds_count", &[], 50.0),
    ];
    if with_exponential {
        all.extend([
            series("payload_size_bytes_bucket", &[("le", "0")], 1.0),
            series("payload_size_bytes_bucket", &[("le", "2")], 2.0),
            series("payload_size_bytes_bucket", &[("le", "4")], 4.0),
            series("payload_size_bytes_bucket", &[("le", "8")], 7.0),
            series("payload_size_bytes_bucket", &[("le", "+Inf")], 7.0),
            series("payload_size_bytes_sum", &[], 30.0),
            series("payload_size_bytes_count", &[], 7.0),
        ]);
    }
    // target_info: the resource's other attributes, with job and instance.
    let mut info = BTreeMap::new();
    for (k, v) in [
        ("__name__", "target_info"),
        ("job", "shop/checkout"),
        ("instance", "pod-1"),
        ("host_name", "node-7"),
    ] {
        info.insert(k.to_string(), v.to_string());
    }
    all.push((info, 1.0));
    all.into_iter().collect()
}

fn labels_of(metric: &Json) -> BTreeMap<String, String> {
    metric
        .as_object()
        .expect("labels object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
        .collect()
}

async fn get_json(url: &str, query: &[(&str, &str)]) -> Json {
    reqwest::Client::new()
        .get(url)
        .query(query)
        .send()
        .await
        .expect("query answered")
        .json()
        .await
        .expect("JSON answer")
}

/// Prometheus' instant query at `at_ms`: labels -> the answer's value.
async fn prom_query(base: &str, query: &str, at_ms: i64) -> Vec<(BTreeMap<String, String>, Json)> {
    let time = format!("{}.{:03}", at_ms / 1000, at_ms % 1000);
    let answer = get_json(
        &format!("{base}/api/v1/query"),
        &[("query", query), ("time", &time)],
    )
    .await;
    assert_eq!(answer["status"], "success", "{query}: {answer}");
    answer["data"]["result"]
        .as_array()
        .expect("result list")
        .iter()
        .map(|r| {
            let value = r
                .get("value")
                .or_else(|| r.get("histogram"))
                .cloned()
                .unwrap_or(Json::Null);
            (labels_of(&r["metric"]), value)
        })
        .collect()
}

fn float_of(value: &Json) -> f64 {
    value[1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a float sample: {value}"))
}

// ---- the tests ----

/// Guarantees: every kind of OTLP metric reaches Prometheus with the names,
/// labels and values Prometheus' own OTLP receiver gives them: classic
/// histograms per `le`, summaries per quantile, `target_info`, and
/// exponential histograms as native histograms (count, sum, quantile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_back_every_kind() {
    let prom = prometheus();
    let t = recent(60);
    let at_ms = (t / NANOS_PER_MS) as i64;
    let exporter = RemoteWriteExporter::new(
        "prom",
        &config(
            &format!("{}/api/v1/write", prom.base()),
            HistogramMode::Native,
        ),
    )
    .expect("exporter");
    let exported = exporter
        .export(Signal::Metrics, &rows(&every_kind(t)))
        .await
        .unwrap_or_else(|e| panic!("export failed: {e}\n{}", prom.log()));
    assert_eq!(exported.rejected, 0, "{:?}", exported.rejection);

    let mut got = BTreeMap::new();
    for (labels, value) in prom_query(
        &prom.base(),
        r#"{__name__=~".+", __name__!="payload_size_bytes"}"#,
        at_ms,
    )
    .await
    {
        got.insert(labels, float_of(&value));
    }
    assert_eq!(got, expected_classic(false));

    // The exponential histogram is one native histogram series.
    let native = prom_query(&prom.base(), "payload_size_bytes", at_ms).await;
    let mut labels = common_labels();
    labels.insert("__name__".to_string(), "payload_size_bytes".to_string());
    assert_eq!(native.len(), 1, "{native:?}");
    assert_eq!(native[0].0, labels);
    assert_eq!(native[0].1[1]["count"], "7");
    assert_eq!(native[0].1[1]["sum"], "30");
    let count = prom_query(&prom.base(), "histogram_count(payload_size_bytes)", at_ms).await;
    assert_eq!(float_of(&count[0].1), 7.0);
    let sum = prom_query(&prom.base(), "histogram_sum(payload_size_bytes)", at_ms).await;
    assert_eq!(float_of(&sum[0].1), 30.0);
    // The median (rank 3.5 of 7) is in bucket (2, 4] holding ranks 3..4.
    let median = prom_query(
        &prom.base(),
        "histogram_quantile(0.5, payload_size_bytes)",
        at_ms,
    )
    .await;
    let median = float_of(&median[0].1);
    assert!(median > 2.0 && median <= 4.0, "median {median}");

    // The classic histogram answers histogram_quantile as Prometheus
    // interpolates: rank 2.5 of 10 is in (0.1, 0.5] holding ranks 3..5.
    let q = prom_query(
        &prom.base(),
        "histogram_quantile(0.25, http_server_duration_seconds_bucket)",
        at_ms,
    )
    .await;
    let want = 0.1 + (0.5 - 0.1) * (2.5 - 2.0) / 3.0;
    assert!((float_of(&q[0].1) - want).abs() < 1e-9, "{q:?}");
}

/// Guarantees: a point flagged "no recorded value" becomes a staleness
/// marker: Prometheus stops returning the series at once, and returns the
/// value before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_recorded_value_marks_the_series_stale() {
    let prom = prometheus();
    let t = recent(60);
    let later = t + 10_000 * NANOS_PER_MS;
    let exporter = RemoteWriteExporter::new(
        "prom",
        &config(
            &format!("{}/api/v1/write", prom.base()),
            HistogramMode::Native,
        ),
    )
    .expect("exporter");
    let request = otlp::Group::new([otlp::gauge(
        "queue.depth",
        vec![
            otlp::int_point(t, 5),
            NumberDataPoint {
                flags: DataPointFlags::NoRecordedValueMask as u32,
                ..NumberDataPoint {
                    time_unix_nano: later,
                    ..Default::default()
                }
            },
        ],
    )])
    .service("worker")
    .metrics();
    exporter
        .export(Signal::Metrics, &rows(&request))
        .await
        .expect("export");
    let before = prom_query(
        &prom.base(),
        "queue_depth",
        (t / NANOS_PER_MS) as i64 + 5000,
    )
    .await;
    assert_eq!(before.len(), 1);
    assert_eq!(float_of(&before[0].1), 5.0);
    assert_eq!(before[0].0.get("job").map(String::as_str), Some("worker"));
    let after = prom_query(
        &prom.base(),
        "queue_depth",
        (later / NANOS_PER_MS) as i64 + 1000,
    )
    .await;
    assert!(after.is_empty(), "still there after the marker: {after:?}");
}

/// Guarantees: VictoriaMetrics stores every series with the same names,
/// labels and values, exponential histograms as classic buckets when so
/// configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_reads_back_every_kind_as_classic() {
    let vm = victoria_metrics();
    let t = recent(120);
    let exporter = RemoteWriteExporter::new(
        "vm",
        &config(
            &format!("{}/api/v1/write", vm.base()),
            HistogramMode::Classic,
        ),
    )
    .expect("exporter");
    let exported = exporter
        .export(Signal::Metrics, &rows(&every_kind(t)))
        .await
        .unwrap_or_else(|e| panic!("export failed: {e}\n{}", vm.log()));
    assert_eq!(exported.rejected, 0, "{:?}", exported.rejection);

    let want = expected_classic(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        // VictoriaMetrics makes ingested rows searchable within a second or
        // so: poll its raw export until every series is there.
        let text = reqwest::Client::new()
            .get(format!("{}/api/v1/export", vm.base()))
            .query(&[("match[]", r#"{__name__=~".+"}"#)])
            .send()
            .await
            .expect("export answered")
            .text()
            .await
            .expect("export body");
        let mut got = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let series: Json = serde_json::from_str(line).expect("JSON line");
            let values = series["values"].as_array().expect("values");
            let timestamps = series["timestamps"].as_array().expect("timestamps");
            assert_eq!(values.len(), 1, "{line}");
            assert_eq!(timestamps[0].as_u64(), Some(t / NANOS_PER_MS), "{line}");
            got.insert(
                labels_of(&series["metric"]),
                values[0].as_f64().expect("value"),
            );
        }
        if got.len() >= want.len() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(got, want);
}

/// Guarantees: a receiver's 400 is a permanent error carrying its status,
/// the start of its body and the URL, counting every point of the batch;
/// and the request carries the protocol's headers and a snappy body.
#[tokio::test]
async fn bad_request_is_permanent_with_the_reason() {
    let (url, received) = receiver(StatusCode::BAD_REQUEST, None, "out of order sample").await;
    let exporter =
        RemoteWriteExporter::new("prom", &config(&url, HistogramMode::Native)).expect("exporter");
    let batch = rows(&every_kind(recent(10)));
    let error = exporter
        .export(Signal::Metrics, &batch)
        .await
        .expect_err("refused");
    let ExportError::Permanent { reason, records } = &error else {
        panic!("not permanent: {error:?}");
    };
    assert!(
        reason.contains("400")
            && reason.contains("out of order sample")
            && reason.contains(&weir_core::redact::url(&url)),
        "{reason}"
    );
    assert_eq!(*records, batch.num_rows() as u64);

    let received = received.lock().expect("lock");
    let (headers, body) = &received[0];
    assert_eq!(headers["content-encoding"], "snappy");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["x-prometheus-remote-write-version"], "0.1.0");
    assert!(
        headers["user-agent"]
            .to_str()
            .is_ok_and(|v| v.starts_with("weir/"))
    );
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("snappy block");
    let request = WriteRequest::decode(&raw[..]).expect("a WriteRequest");
    assert!(!request.timeseries.is_empty());
}

/// Guarantees: 503 with `Retry-After: 2` is retryable after 2 s, naming the
/// URL.
#[tokio::test]
async fn unavailable_is_retryable_after_what_the_receiver_asks() {
    let (url, _) = receiver(StatusCode::SERVICE_UNAVAILABLE, Some("2"), "busy").await;
    let exporter =
        RemoteWriteExporter::new("prom", &config(&url, HistogramMode::Native)).expect("exporter");
    let error = exporter
        .export(Signal::Metrics, &rows(&every_kind(recent(10))))
        .await
        .expect_err("unavailable");
    let ExportError::Retryable { reason, after } = &error else {
        panic!("not retryable: {error:?}");
    };
    assert_eq!(*after, Some(Duration::from_secs(2)));
    assert!(
        reason.contains(&weir_core::redact::url(&url)) && reason.contains("503"),
        "{reason}"
    );
}

/// Guarantees: a receiver nobody answers at is retryable, naming the URL.
#[tokio::test]
async fn unreachable_receiver_is_retryable() {
    let url = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let exporter =
        RemoteWriteExporter::new("prom", &config(&url, HistogramMode::Native)).expect("exporter");
    let error = exporter
        .export(Signal::Metrics, &rows(&every_kind(recent(10))))
        .await
        .expect_err("unreachable");
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        error.to_string().contains(&weir_core::redact::url(&url)),
        "{error}"
    );
}

/// Guarantees: a receiver that takes the request and never answers ends
/// the export at `timeout` with a retryable error naming the URL and the
/// wait, instead of holding the sink forever.
#[tokio::test]
async fn a_receiver_that_never_answers_times_out_retryably() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/v1/write",
        listener.local_addr().expect("address")
    );
    let app = Router::new().route(
        "/api/v1/write",
        post(|| async { std::future::pending::<StatusCode>().await }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let exporter = RemoteWriteExporter::new(
        "prom",
        &PrometheusRemoteWriteConfig {
            timeout: Duration::from_millis(300),
            ..config(&url, HistogramMode::Native)
        },
    )
    .expect("exporter");
    let started = std::time::Instant::now();
    let error = exporter
        .export(Signal::Metrics, &rows(&every_kind(recent(10))))
        .await
        .expect_err("no answer");
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        error.to_string().contains(&weir_core::redact::url(&url))
            && error.to_string().contains("300ms"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Guarantees: a batch larger than `max_request_bytes` goes out in several
/// requests, none over the limit, together holding every series once; a
/// delta sum is not sent but counted with its reason.
#[tokio::test]
async fn large_batches_are_split_and_delta_sums_counted() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let limit = 1500;
    let exporter = RemoteWriteExporter::new(
        "prom",
        &PrometheusRemoteWriteConfig {
            max_request_bytes: limit,
            ..config(&url, HistogramMode::Classic)
        },
    )
    .expect("exporter");
    let t = recent(10);
    let mut request = every_kind(t);
    let metrics = &mut request.resource_metrics[0].scope_metrics[0].metrics;
    metrics.push(otlp::gauge(
        "many",
        (0..100)
            .map(|i| NumberDataPoint {
                attributes: vec![kv::int("n", i)],
                ..otlp::int_point(t, i)
            })
            .collect(),
    ));
    metrics.push(otlp::sum(
        "delta",
        vec![otlp::int_point(t, 1)],
        AggregationTemporality::Delta,
        true,
    ));
    let exported = exporter
        .export(Signal::Metrics, &rows(&request))
        .await
        .expect("export");
    assert_eq!(exported.rejected, 1);
    assert!(
        exported
            .rejection
            .as_deref()
            .is_some_and(|r| r.contains("delta")),
        "{:?}",
        exported.rejection
    );

    let received = received.lock().expect("lock");
    assert!(received.len() > 1, "one request only");
    let mut names = Vec::new();
    for (_, body) in received.iter() {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .expect("snappy block");
        assert!(raw.len() <= limit as usize, "{} bytes", raw.len());
        let request = WriteRequest::decode(&raw[..]).expect("a WriteRequest");
        names.extend(request.timeseries.into_iter().map(|ts| ts.labels));
    }
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total, "a series was sent twice");
    // 12 + 7 classic series of every_kind, target_info, and 100 gauges.
    assert_eq!(total, 12 + 7 + 1 + 100);
}

/// Guarantees: a series sent once and then not seen for `stale_after` gets
/// one staleness marker (Prometheus' NaN) with the next batch, and only
/// one.
#[tokio::test]
async fn series_gone_for_stale_after_get_one_marker() {
    let (url, received) = receiver(StatusCode::NO_CONTENT, None, "").await;
    let exporter = RemoteWriteExporter::new(
        "prom",
        &PrometheusRemoteWriteConfig {
            stale_after: Duration::from_millis(50),
            ..config(&url, HistogramMode::Native)
        },
    )
    .expect("exporter");
    let batch = |name: &str| {
        rows(
            &otlp::Group::new([otlp::gauge(name, vec![otlp::int_point(recent(1), 1)])])
                .service("worker")
                .metrics(),
        )
    };
    exporter
        .export(Signal::Metrics, &batch("old"))
        .await
        .expect("export");
    // The scenario is time passing beyond stale_after.
    tokio::time::sleep(Duration::from_millis(100)).await;
    exporter
        .export(Signal::Metrics, &batch("new"))
        .await
        .expect("export");
    exporter
        .export(Signal::Metrics, &batch("new"))
        .await
        .expect("export");

    let received = received.lock().expect("lock");
    let decoded: Vec<WriteRequest> = received
        .iter()
        .map(|(_, body)| {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(body)
                .expect("snappy");
            WriteRequest::decode(&raw[..]).expect("a WriteRequest")
        })
        .collect();
    let markers = |request: &WriteRequest| -> Vec<String> {
        request
            .timeseries
            .iter()
            .filter(|ts| {
                ts.samples
                    .iter()
                    .any(|s| s.value.to_bits() == 0x7ff0_0000_0000_0002)
            })
            .map(|ts| {
                ts.labels
                    .iter()
                    .find(|l| l.name == "__name__")
                    .map(|l| l.value.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(decoded.len(), 3);
    assert!(markers(&decoded[0]).is_empty());
    assert_eq!(markers(&decoded[1]), ["old"]);
    assert!(markers(&decoded[2]).is_empty(), "a second marker");
}

/// Scenario: a receiver that answers with a redirect to another receiver,
/// then one that refuses with a 1 MB body.
/// Guarantees: the redirect is not followed (the export is refused naming
/// the 302, and the other receiver gets nothing: neither the samples nor
/// the headers leave for a place the pipeline does not name); a refusal's
/// reason quotes at most 512 bytes of its body.
#[tokio::test]
async fn redirects_are_refused_and_bodies_are_read_capped() {
    let (elsewhere, received) = receiver(StatusCode::OK, None, "").await;
    let app = Router::new().route(
        "/api/v1/write",
        post(move || {
            let to = elsewhere.clone();
            async move { (StatusCode::FOUND, [(axum::http::header::LOCATION, to)]) }
        }),
    );
    let url = serve(app).await;
    let exporter =
        RemoteWriteExporter::new("prom", &config(&url, HistogramMode::Native)).expect("exporter");
    let error = exporter
        .export(Signal::Metrics, &rows(&every_kind(recent(10))))
        .await
        .expect_err("a redirect is a refusal");
    assert!(
        matches!(&error, ExportError::Permanent { reason, .. } if reason.contains("302")),
        "{error:?}"
    );
    assert!(received.lock().expect("lock").is_empty(), "not followed");

    let big: &'static str = "x".repeat(1 << 20).leak();
    let (url, _) = receiver(StatusCode::BAD_REQUEST, None, big).await;
    let exporter =
        RemoteWriteExporter::new("prom", &config(&url, HistogramMode::Native)).expect("exporter");
    let error = exporter
        .export(Signal::Metrics, &rows(&every_kind(recent(10))))
        .await
        .expect_err("refused");
    let ExportError::Permanent { reason, .. } = &error else {
        panic!("not permanent: {error:?}");
    };
    let quoted = reason.matches('x').count();
    assert!((100..=512).contains(&quoted), "{quoted} bytes quoted");
}

/// Scenario: the remote-write URL, with a user and password in it, is read
/// from a file (`url = { file = ... }`); the receiver refuses the request.
/// Guarantees: the request reaches the URL in the file, with its
/// credentials as basic authentication; the refusal's reason names the
/// receiver by scheme, host and port only, never the password; a URL that
/// cannot be read stops the start with an error naming the component and
/// the key.
#[tokio::test]
async fn a_url_read_from_a_file_is_used_and_never_shown() {
    let (url, received) = receiver(StatusCode::BAD_REQUEST, None, "no").await;
    let with_password = url.replacen("http://", "http://weir:s3cr3t-pw@", 1);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("prom-url");
    std::fs::write(&file, format!("{with_password}\n")).expect("write");
    let text = format!("url = {{ file = {:?} }}\n", file.display().to_string());
    let config: PrometheusRemoteWriteConfig = toml::from_str(&text).expect("parses");
    let exporter = RemoteWriteExporter::new("prom", &config).expect("exporter");
    let error = exporter
        .export(Signal::Metrics, &rows(&every_kind(recent(10))))
        .await
        .expect_err("refused");
    let reason = format!("{error:?}");
    assert!(!reason.contains("s3cr3t-pw"), "{reason}");
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host");
    assert!(reason.contains(&format!("http://{authority}")), "{reason}");
    let headers = received.lock().expect("lock")[0].0.clone();
    let basic = headers.get("authorization").expect("credentials sent");
    assert_eq!(basic, "Basic d2VpcjpzM2NyM3QtcHc=", "weir:s3cr3t-pw");

    let missing = toml::from_str::<PrometheusRemoteWriteConfig>(
        "url = { file = \"/nonexistent/prom-url\" }\n",
    )
    .expect("parses");
    let error = RemoteWriteExporter::new("prom", &missing).expect_err("unreadable");
    let message = error.to_string();
    assert!(
        message.contains("prom") && message.contains("`url`"),
        "{message}"
    );
}
