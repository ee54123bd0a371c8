//! A slow sink behind the real OTLP receiver: the pressure must reach the
//! client as a retryable refusal, never as an unbounded queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use tokio::sync::Semaphore;
use tonic_types::StatusExt;
use weir_core::{ComponentError, SignalSet, Sink, SinkContext};
use weir_runtime::{Built, Node, Topology};
use weir_sources::OtlpSource;
use weir_testkit::engine::metrics_text;
use weir_testkit::otlp::Group;
use weir_testkit::prometheus;

/// The source's name: no other test's component has it, so the records it
/// has sent, in the process-wide metrics, are this test's.
const SOURCE: &str = "backpressure_otlp";

/// Holds every batch until the test opens the gate.
struct GatedSink {
    gate: Arc<Semaphore>,
    written: Arc<AtomicUsize>,
}

#[async_trait]
impl Sink for GatedSink {
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        while let Some(batch) = cx.input.recv().await {
            self.gate.acquire().await.expect("gate").forget();
            self.written.fetch_add(batch.num_rows(), Ordering::SeqCst);
            batch.deliver();
        }
        Ok(())
    }
}

fn logs(n: usize) -> ExportLogsServiceRequest {
    Group::new((0..n).map(|i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
        severity_number: 9,
        ..Default::default()
    }))
    .logs()
}

/// The records the source has sent on (into the sink's channel or hands).
fn sent() -> f64 {
    let series =
        format!(r#"weir_component_sent_records_total{{component="{SOURCE}",signal="logs"}}"#);
    prometheus::value(&metrics_text(), &series).unwrap_or(0.0)
}

/// Scenario: a sink that stops writing while clients keep sending over HTTP and gRPC.
/// Guarantees: at most channel capacity + the sink's batch are accepted and
/// held; every further request is refused at once with 503 + Retry-After
/// (HTTP) or UNAVAILABLE + RetryInfo (gRPC); once the sink moves again every
/// accepted request is answered 200 and its records are written.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_sink_makes_the_receiver_refuse_with_a_retry_hint() {
    let plan = weir_cli::parse_str(
        r#"
[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:0"
http_address = "127.0.0.1:0"
queue_wait = "50ms"
retry_after = "2s"

[sinks.out]
type = "blackhole"
inputs = ["otlp"]
"#,
        "backpressure.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = plan
        .components
        .iter()
        .find_map(|c| c.config_as::<weir_sources::OtlpSourceConfig>().cloned())
        .expect("otlp config");
    // The recorder must be in place before anything is counted.
    metrics_text();
    let source = OtlpSource::bind(SOURCE, config).await.expect("bind");
    let http = format!("http://{}/v1/logs", source.http_addr().expect("http"));
    let grpc = format!("http://{}", source.grpc_addr().expect("grpc"));
    let gate = Arc::new(Semaphore::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let running = Topology::new(vec![
        Node {
            name: SOURCE.into(),
            built: Built::Source(Box::new(source)),
            inputs: vec![],
            queue_capacity: 1,
        },
        Node {
            name: "out".into(),
            built: Built::Sink(Box::new(GatedSink {
                gate: gate.clone(),
                written: written.clone(),
            })),
            inputs: vec![(SOURCE.into(), SignalSet::ALL)],
            queue_capacity: 2,
        },
    ])
    .expect("graph")
    .start();

    let client = reqwest::Client::new();
    let mut pending = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let req = client
            .post(&http)
            .header("content-type", "application/x-protobuf")
            .body(logs(10).encode_to_vec())
            .send();
        let handle = tokio::spawn(req);
        // Wait until the request is refused (answered) or accepted (its
        // records sent on, its answer held until the sink moves).
        let accepted = 10.0 * (pending.len() + 1) as f64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !handle.is_finished() && sent() < accepted {
            assert!(
                Instant::now() < deadline,
                "the request was neither accepted nor refused"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if handle.is_finished() {
            let r = handle.await.expect("join").expect("response");
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()["retry-after"], "2");
            refused += 1;
        } else {
            pending.push(handle);
        }
    }
    assert_eq!(
        pending.len(),
        3,
        "capacity 2 + the batch in the sink's hands"
    );
    assert_eq!(refused, 5);

    let mut grpc_client = LogsServiceClient::connect(grpc).await.expect("connect");
    let status = grpc_client.export(logs(10)).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let retry = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo detail");
    assert_eq!(retry, Duration::from_secs(2));

    gate.add_permits(1000);
    for handle in pending {
        let r = handle.await.expect("join").expect("response");
        assert_eq!(r.status(), 200);
    }
    assert_eq!(written.load(Ordering::SeqCst), 30);
    let report = running.drain(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
}
