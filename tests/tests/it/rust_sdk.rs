//! The Rust `opentelemetry-otlp` exporter, over gRPC (tonic) and HTTP
//! (protobuf), sending spans, logs and metrics to a running Weir.

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use weir_testkit::engine::Weir;
use weir_testkit::otlp;

const COUNT: usize = 120;

fn resource(transport: &str) -> Resource {
    Resource::builder()
        .with_service_name(format!("rust-{transport}"))
        .build()
}

/// Builds the three exporters for `transport` and sends COUNT of each signal.
fn send(transport: &'static str, endpoint: String) {
    let (spans, logs, metrics) = match transport {
        "grpc" => (
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&endpoint)
                .build(),
            LogExporter::builder()
                .with_tonic()
                .with_endpoint(&endpoint)
                .build(),
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(&endpoint)
                .build(),
        ),
        _ => (
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/traces"))
                .build(),
            LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/logs"))
                .build(),
            MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/metrics"))
                .build(),
        ),
    };
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource(transport))
        .with_span_processor(
            BatchSpanProcessor::builder(spans.expect("span exporter"), Tokio).build(),
        )
        .build();
    let tracer = tracer_provider.tracer("weir.e2e");
    for i in 0..COUNT {
        let mut span = tracer.start(format!("op-{}", i % 5));
        span.set_attribute(KeyValue::new("i", i as i64));
        span.set_attribute(KeyValue::new("transport", transport));
        span.end();
    }
    tracer_provider.force_flush().expect("spans flushed");
    tracer_provider.shutdown().expect("tracer shutdown");

    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource(transport))
        .with_log_processor(BatchLogProcessor::builder(logs.expect("log exporter"), Tokio).build())
        .build();
    let logger = logger_provider.logger("weir.e2e");
    for i in 0..COUNT {
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Error);
        record.set_body(AnyValue::from(format!("failure {i}")));
        record.add_attribute("i", i as i64);
        logger.emit(record);
    }
    logger_provider.force_flush().expect("logs flushed");
    logger_provider.shutdown().expect("logger shutdown");

    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource(transport))
        .with_reader(PeriodicReader::builder(metrics.expect("metric exporter"), Tokio).build())
        .build();
    let histogram = meter_provider
        .meter("weir.e2e")
        .f64_histogram("e2e.latency")
        .build();
    for i in 0..COUNT {
        histogram.record(i as f64 / 10.0, &[KeyValue::new("i", i as i64)]);
    }
    // Shutdown collects and exports once.
    meter_provider.shutdown().expect("meter shutdown");
}

/// Scenario: opentelemetry-otlp sends 120 spans, logs and histogram points
/// over gRPC and again over HTTP/protobuf.
/// Guarantees: every record arrives, histograms keep their buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_exporter_over_grpc_and_http_loses_nothing() {
    let weir = Weir::start("").await;
    let (grpc, http) = (weir.grpc(), weir.http());
    // The SDK's tokio-runtime processors export on this runtime; their
    // flush and shutdown calls block, so they run on a blocking thread.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _guard = handle.enter();
        send("grpc", grpc);
        send("http", http);
    })
    .await
    .expect("senders");
    let got = weir.stop().await;

    assert_eq!(got.spans().len(), 2 * COUNT);
    let logs = got.log_records();
    assert_eq!(logs.len(), 2 * COUNT);
    assert!(logs.iter().all(|l| l.severity_number == 17));
    assert_eq!(got.data_points(), 2 * COUNT);
    let histograms: Vec<_> = otlp::histogram_points_of(got.metrics()).collect();
    assert_eq!(
        histograms.len(),
        2 * COUNT,
        "every metric point is a histogram point"
    );
    assert!(
        histograms.iter().all(|p| p.count == 1
            && !p.explicit_bounds.is_empty()
            && p.bucket_counts.iter().sum::<u64>() == 1),
        "every histogram point has its buckets"
    );
}
