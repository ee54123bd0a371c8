//! An OTLP source on port 0 in front of a sink that delivers every batch,
//! and the clients the tests share.

#![allow(dead_code)] // each test binary uses a part

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weir_core::{Batch, Edge, Output, Shutdown, SignalSet, Source, SourceContext};
use weir_sources::{OtlpSource, OtlpSourceConfig};
use weir_testkit::otlp::Group;

/// A running OTLP source; stops when dropped.
pub struct Running {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    shutdown: Shutdown,
    source: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.source.abort();
    }
}

/// Starts `config` (its addresses replaced by port 0) with a sink that
/// delivers every batch at once.
pub async fn start(name: &str, config: OtlpSourceConfig) -> Running {
    let config = OtlpSourceConfig {
        grpc_address: "127.0.0.1:0".parse().expect("address"),
        http_address: "127.0.0.1:0".parse().expect("address"),
        ..config
    };
    let source = OtlpSource::bind(name, config).await.expect("binds");
    let grpc = source.grpc_addr().expect("grpc on");
    let http = source.http_addr().expect("http on");
    let (sender, mut receiver) = mpsc::channel::<Batch>(16);
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            batch.deliver();
        }
    });
    let output = Output::new(
        name,
        vec![Edge {
            to: "sink".into(),
            signals: SignalSet::TELEMETRY,
            sender,
        }],
    );
    let shutdown = Shutdown::new();
    let cx = SourceContext {
        name: name.into(),
        output,
        shutdown: shutdown.clone(),
    };
    let source = tokio::spawn(async move {
        Box::new(source).run(cx).await.expect("source runs");
    });
    Running {
        grpc,
        http,
        shutdown,
        source,
    }
}

/// A small ordinary logs request.
pub fn normal_logs() -> ExportLogsServiceRequest {
    Group::new((0..10u64).map(|i| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        severity_number: 9,
        ..Default::default()
    }))
    .service("normal")
    .logs()
}

/// POSTs `request` as protobuf to `/v1/logs`: the status and body.
pub async fn post_logs(
    client: &reqwest::Client,
    http: SocketAddr,
    request: &ExportLogsServiceRequest,
) -> (u16, String) {
    let response = client
        .post(format!("http://{http}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A gRPC logs client of `grpc`.
pub async fn grpc_logs(grpc: SocketAddr) -> LogsServiceClient<tonic::transport::Channel> {
    LogsServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects")
}
