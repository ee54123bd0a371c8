//! OTLP receiver behaviour at the protocol level: what the specification
//! says a server answers, over HTTP and gRPC, against a running Weir.

use std::io::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use weir_testkit::engine::{self, Weir};
use weir_testkit::otlp::{self, Group};
use weir_testkit::{kv, prometheus};

use crate::common::otlp_example;
use crate::python_sdk::sql;

fn span(i: u8, trace_id: Vec<u8>) -> Span {
    Span {
        attributes: vec![kv::string("http.route", "/api")],
        ..otlp::span(
            &trace_id,
            &[i + 1; 8],
            &format!("op-{i}"),
            1_700_000_000_000_000_000 + u64::from(i),
            1_700_000_000_000_100_000 + u64::from(i),
        )
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    Group::new(spans).service("checkout").spans()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Scenario: valid protobuf, JSON (the specification's example) and gzip bodies over HTTP.
/// Guarantees: each is answered 200 in the request's encoding, and every span reaches the sink.
#[tokio::test(flavor = "multi_thread")]
async fn http_accepts_protobuf_json_and_gzip() {
    let weir = Weir::start("").await;
    let url = format!("{}/v1/traces", weir.http());

    let body = traces((0..3).map(|i| span(i, vec![7; 16])).collect()).encode_to_vec();
    let r = client()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(r.bytes().await.expect("body"))
        .expect("a response message");
    assert_eq!(answer.partial_success, None);

    let r = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(otlp_example("trace.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(r.headers()["content-type"], "application/json");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).expect("gzip");
    let r = client()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);

    let got = weir.stop().await;
    let example =
        weir_core::convert::json::decode_spans(&otlp_example("trace.json")).expect("example");
    assert_eq!(got.spans().len(), 3 + otlp::count_spans(&example) + 3);
}

/// Scenario: malformed bodies, unknown content types, oversize bodies, wrong methods.
/// Guarantees: 400 with a google.rpc.Status message, 415, 413 and 405 as the specification says.
#[tokio::test(flavor = "multi_thread")]
async fn http_refuses_bad_requests_with_the_right_status() {
    let weir = Weir::start("max_request_size = \"2KiB\"").await;
    let url = format!("{}/v1/traces", weir.http());

    let r = client()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff, 0x01])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let text = r.text().await.expect("body");
    assert!(
        text.contains("not a valid OTLP spans protobuf request"),
        "{text}"
    );

    let r = client()
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"resourceSpans\": 7}")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    let v: serde_json::Value =
        serde_json::from_str(&r.text().await.expect("body")).expect("JSON status");
    assert_eq!(v["code"], 3);
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("JSON")),
        "{v}"
    );

    let r = client()
        .post(&url)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 415);

    let big = traces((0..60).map(|i| span(i, vec![7; 16])).collect()).encode_to_vec();
    assert!(big.len() > 2048);
    let r = client()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 413);

    let r = client().get(&url).send().await.expect("request");
    assert_eq!(r.status(), 405);

    let got = weir.stop().await;
    assert_eq!(
        got.spans().len(),
        0,
        "nothing from refused requests is kept"
    );
}

/// Scenario: a request where one span has an invalid trace id, over HTTP and gRPC.
/// Guarantees: the valid spans are kept and the answer is 200 / OK with
/// partial_success counting the rejected one and saying why.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_records_are_reported_in_partial_success() {
    let weir = Weir::start("").await;
    let request = traces(vec![
        span(0, vec![7; 16]),
        span(1, vec![1, 2, 3]),
        span(2, vec![9; 16]),
    ]);

    let r = client()
        .post(format!("{}/v1/traces", weir.http()))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let answer =
        ExportTraceServiceResponse::decode(r.bytes().await.expect("body")).expect("response");
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace"),
        "{}",
        partial.error_message
    );

    let mut grpc = TraceServiceClient::connect(weir.grpc())
        .await
        .expect("connect");
    let answer = grpc.export(request).await.expect("export").into_inner();
    assert_eq!(
        answer
            .partial_success
            .expect("partial success")
            .rejected_spans,
        1
    );

    let got = weir.stop().await;
    assert_eq!(got.spans().len(), 4);
}

/// Scenario: into the embedded store with the default `logs` range (7
/// days back, 1 hour ahead), a logs request of one record 1 ns after the
/// epoch, one now and one at the last instant of 2262, over HTTP and then
/// gRPC.
/// Guarantees: each answer is 200 / OK with partial_success counting the
/// two refused records and saying why (the count, the table's range and
/// its settings); only the records of now are stored (SQL reads them);
/// the source and the store count the refusals.
#[tokio::test(flavor = "multi_thread")]
async fn records_outside_the_store_range_are_reported_in_partial_success() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weir = engine::start(&format!(
        r#"
[api]
address = "127.0.0.1:0"

[store]
path = "{}"

[sources.range_otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"

[sinks.range_store]
type = "store"
inputs = ["range_otlp"]
"#,
        dir.path().join("data").display()
    ))
    .await;
    let now = weir_testkit::time::now_ns();
    let request = |via: &str| {
        Group::new(vec![
            otlp::log(1, 9, "at the epoch"),
            otlp::log(now, 9, via),
            otlp::log(i64::MAX as u64, 9, "in 2262"),
        ])
        .service("range")
        .logs()
    };
    let check = |partial: Option<_>| {
        let partial: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess =
            partial.expect("partial success");
        assert_eq!(partial.rejected_log_records, 2);
        for part in [
            "2 `logs` records refused by the store",
            "1 before it, 1 after it",
            "`[store.retention] logs` (7days)",
            "`[store.max_future] logs` (1h)",
        ] {
            assert!(
                partial.error_message.contains(part),
                "{part}: {}",
                partial.error_message
            );
        }
    };

    let http = format!("http://{}", weir.listener("range_otlp/http").expect("http"));
    let r = client()
        .post(format!("{http}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(request("over http").encode_to_vec())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let answer =
        ExportLogsServiceResponse::decode(r.bytes().await.expect("body")).expect("response");
    check(answer.partial_success);

    let grpc = format!("http://{}", weir.listener("range_otlp/grpc").expect("grpc"));
    let mut client = LogsServiceClient::connect(grpc).await.expect("connect");
    let answer = client
        .export(request("over grpc"))
        .await
        .expect("export")
        .into_inner();
    check(answer.partial_success);

    let api = weir.api_addr.expect("api bound");
    let rows = sql(
        api,
        "SELECT body FROM logs WHERE service_name = 'range' ORDER BY body",
    )
    .await;
    let bodies: Vec<&str> = rows.iter().filter_map(|r| r["body"].as_str()).collect();
    assert_eq!(bodies, ["over grpc", "over http"]);

    let metrics = weir_testkit::engine::metrics_text();
    for (series, expected) in [
        (
            r#"weir_otlp_rejected_records_total{component="range_otlp",signal="logs"}"#,
            4.0,
        ),
        (
            r#"weir_otlp_requests_total{component="range_otlp",protocol="http",outcome="partially_accepted"}"#,
            1.0,
        ),
        (
            r#"weir_store_refused_rows_total{table="logs",reason="before_retention"}"#,
            2.0,
        ),
        (
            r#"weir_store_refused_rows_total{table="logs",reason="after_max_future"}"#,
            2.0,
        ),
    ] {
        assert_eq!(
            prometheus::value(&metrics, series),
            Some(expected),
            "{series}"
        );
    }
    let report = weir.stop().await;
    assert!(report.is_clean(), "weir stopped with errors: {report:?}");
}

/// Scenario: gRPC export with and without gzip, and an oversize message.
/// Guarantees: OK for valid requests; RESOURCE_EXHAUSTED without a retry
/// hint (not retryable) over `max_request_size`.
#[tokio::test(flavor = "multi_thread")]
async fn grpc_accepts_gzip_and_enforces_the_size_limit() {
    let weir = Weir::start("max_request_size = \"4KiB\"").await;
    let mut grpc = TraceServiceClient::connect(weir.grpc())
        .await
        .expect("connect")
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    grpc.export(traces(vec![span(0, vec![5; 16])]))
        .await
        .expect("gzip export");
    let err = grpc
        .export(traces((0..100).map(|i| span(i, vec![5; 16])).collect()))
        .await;
    // Compressed, the large request may fit; uncompressed it must not.
    let mut plain = TraceServiceClient::connect(weir.grpc())
        .await
        .expect("connect");
    let err2 = plain
        .export(traces((0..100).map(|i| span(i, vec![5; 16])).collect()))
        .await
        .expect_err("too large");
    // Refused while its body arrives, before tonic decodes it.
    assert_eq!(err2.code(), tonic::Code::ResourceExhausted, "{err2:?}");
    assert!(err2.message().contains("max_request_size"), "{err2:?}");
    let got = weir.stop().await;
    assert_eq!(got.spans().len(), 1 + if err.is_ok() { 100 } else { 0 });
}

/// Scenario: the API server while data flows: one request of four spans
/// through a Weir whose source and sink have names no other test uses.
/// Guarantees: /healthz and /readyz answer 200, and /metrics reports, in
/// Prometheus text format, exactly this Weir's records in and out per
/// component, its OTLP request and its sink's queue, and the build.
#[tokio::test(flavor = "multi_thread")]
async fn self_metrics_and_health() {
    // Every Weir of this test binary counts into one process-wide recorder:
    // this test's series are told apart by its components' names.
    let weir = Weir::start_named("self_metrics_otlp", "self_metrics_out", "").await;
    let r = client()
        .post(format!("{}/v1/traces", weir.http()))
        .header("content-type", "application/x-protobuf")
        .body(traces((0..4).map(|i| span(i, vec![3; 16])).collect()).encode_to_vec())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let api = weir.api();
    assert_eq!(
        client()
            .get(format!("{api}/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(format!("{api}/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    let metrics = client()
        .get(format!("{api}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for (series, expected) in [
        (
            r#"weir_component_sent_records_total{component="self_metrics_otlp",signal="spans"}"#,
            4.0,
        ),
        (
            r#"weir_component_received_records_total{component="self_metrics_out",signal="spans"}"#,
            4.0,
        ),
        (
            r#"weir_otlp_requests_total{component="self_metrics_otlp",protocol="http",outcome="accepted"}"#,
            1.0,
        ),
    ] {
        assert_eq!(
            prometheus::value(&metrics, series),
            Some(expected),
            "/metrics: {series}:\n{metrics}"
        );
    }
    // The queue's fill at the moment of reading is not fixed; that it is
    // reported is.
    let queue = r#"weir_component_input_queue_batches{component="self_metrics_out"}"#;
    assert!(
        prometheus::value(&metrics, queue).is_some(),
        "/metrics lacks {queue}:\n{metrics}"
    );
    assert!(
        metrics.contains("weir_build_info{"),
        "/metrics lacks weir_build_info:\n{metrics}"
    );
    weir.stop().await;
}
