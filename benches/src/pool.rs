//! The pool of ready request bodies, built before the timed phase.
//!
//! Generating and encoding OTLP costs far more CPU than sending it, so the
//! load generator does that work up front: [`Pool::build`] encodes a fixed
//! number of requests per signal (protobuf or OTLP/JSON, gzipped when asked)
//! and the workers cycle through them. Bodies are [`Bytes`], so handing one
//! to a request is a reference count, not a copy.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Serialize;
use weir_testkit::otlp::{count_data_points, count_log_records, count_spans};

use crate::generate::{Generator, Shape};

/// One of the OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Traces: records are spans.
    Spans,
    /// Logs: records are log records.
    Logs,
    /// Metrics: records are data points.
    Metrics,
}

impl Signal {
    /// All signals, in the order `--mix` weights name them.
    pub const ALL: [Signal; 3] = [Signal::Spans, Signal::Logs, Signal::Metrics];

    /// The OTLP/HTTP path of this signal.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Spans => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The gRPC method path of this signal's export call.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Spans => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

/// How request bodies are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// Binary protobuf (gRPC and OTLP/HTTP protobuf).
    Protobuf,
    /// OTLP/JSON (OTLP/HTTP only).
    Json,
}

/// A decoded export request, kept for clients that encode per request.
#[derive(Debug, Clone)]
pub enum ExportRequest {
    /// A traces request.
    Spans(ExportTraceServiceRequest),
    /// A logs request.
    Logs(ExportLogsServiceRequest),
    /// A metrics request.
    Metrics(ExportMetricsServiceRequest),
}

/// One ready request.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Its signal.
    pub signal: Signal,
    /// Records it holds (spans, log records or data points).
    pub records: u64,
    /// The encoded body before compression.
    pub body: Bytes,
    /// What goes on the wire: `body`, gzipped when gzip is on.
    pub wire: Bytes,
    /// The request as a message, when the client encodes per request.
    pub message: Option<Arc<ExportRequest>>,
}

/// What [`Pool::build`] needs to know.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Shape of every request.
    pub shape: Shape,
    /// Signals to build bodies for.
    pub signals: Vec<Signal>,
    /// Bodies per signal.
    pub per_signal: usize,
    /// Body encoding.
    pub encoding: BodyEncoding,
    /// Gzip the wire bytes.
    pub gzip: bool,
    /// Keep the decoded messages too (for per-request encoding).
    pub keep_messages: bool,
    /// RNG seed.
    pub seed: u64,
}

/// Why building the pool failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Serialising a request to OTLP/JSON failed.
    #[error("could not encode a {signal} request as OTLP/JSON: {source}")]
    Json {
        /// The signal.
        signal: &'static str,
        /// The serde error.
        source: serde_json::Error,
    },
    /// Gzipping a body failed.
    #[error("could not gzip a request body: {0}")]
    Gzip(#[from] std::io::Error),
}

/// Ready request bodies, grouped by signal.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    by_signal: Vec<(Signal, Vec<Payload>)>,
}

impl Pool {
    /// Generates and encodes `per_signal` requests for each signal.
    pub fn build(options: &PoolOptions) -> Result<Self, PoolError> {
        let mut generator = Generator::new(options.shape.clone(), options.seed);
        let mut by_signal = Vec::new();
        for &signal in &options.signals {
            let mut payloads = Vec::with_capacity(options.per_signal);
            for _ in 0..options.per_signal.max(1) {
                let (records, body, message) = match signal {
                    Signal::Spans => {
                        let m = generator.spans();
                        (
                            count_spans(&m),
                            encode(&m, options.encoding, signal)?,
                            ExportRequest::Spans(m),
                        )
                    }
                    Signal::Logs => {
                        let m = generator.logs();
                        (
                            count_log_records(&m),
                            encode(&m, options.encoding, signal)?,
                            ExportRequest::Logs(m),
                        )
                    }
                    Signal::Metrics => {
                        let m = generator.metrics();
                        (
                            count_data_points(&m),
                            encode(&m, options.encoding, signal)?,
                            ExportRequest::Metrics(m),
                        )
                    }
                };
                let wire = if options.gzip {
                    gzip(&body)?
                } else {
                    body.clone()
                };
                payloads.push(Payload {
                    signal,
                    records: records as u64,
                    body,
                    wire,
                    message: options.keep_messages.then(|| Arc::new(message)),
                });
            }
            by_signal.push((signal, payloads));
        }
        Ok(Self { by_signal })
    }

    /// The bodies of `signal` (empty if it was not built).
    pub fn payloads(&self, signal: Signal) -> &[Payload] {
        self.by_signal
            .iter()
            .find(|(s, _)| *s == signal)
            .map_or(&[], |(_, p)| p.as_slice())
    }

    /// Total bytes the pool holds (encoded bodies plus wire bodies when they differ).
    pub fn memory_bytes(&self) -> usize {
        self.by_signal
            .iter()
            .flat_map(|(_, p)| p)
            .map(|p| p.body.len() + if p.wire == p.body { 0 } else { p.wire.len() })
            .sum()
    }

    /// Mean wire size of one request of `signal`, in bytes.
    pub fn mean_wire_bytes(&self, signal: Signal) -> usize {
        let p = self.payloads(signal);
        if p.is_empty() {
            return 0;
        }
        p.iter().map(|p| p.wire.len()).sum::<usize>() / p.len()
    }
}

fn encode<M: Message + Serialize>(
    message: &M,
    encoding: BodyEncoding,
    signal: Signal,
) -> Result<Bytes, PoolError> {
    match encoding {
        BodyEncoding::Protobuf => Ok(Bytes::from(message.encode_to_vec())),
        BodyEncoding::Json => serde_json::to_vec(message)
            .map(Bytes::from)
            .map_err(|source| PoolError::Json {
                signal: signal.name(),
                source,
            }),
    }
}

/// Gzips `body` at the default level.
pub fn gzip(body: &[u8]) -> Result<Bytes, std::io::Error> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
    encoder.write_all(body)?;
    Ok(Bytes::from(encoder.finish()?))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    fn options(encoding: BodyEncoding, gzip: bool) -> PoolOptions {
        PoolOptions {
            shape: Shape {
                batch_size: 20,
                ..Shape::default()
            },
            signals: Signal::ALL.to_vec(),
            per_signal: 3,
            encoding,
            gzip,
            keep_messages: false,
            seed: 1,
        }
    }

    /// Protobuf bodies decode back to requests of `batch_size` records; gzip wire bytes inflate to the body.
    #[test]
    fn protobuf_bodies_decode_and_gzip_round_trips() {
        let pool = Pool::build(&options(BodyEncoding::Protobuf, true)).expect("pool builds");
        for signal in Signal::ALL {
            let payloads = pool.payloads(signal);
            assert_eq!(payloads.len(), 3);
            for p in payloads {
                assert_eq!(p.records, 20);
                let mut inflated = Vec::new();
                GzDecoder::new(&p.wire[..])
                    .read_to_end(&mut inflated)
                    .expect("wire bytes are gzip");
                assert_eq!(inflated, p.body);
                assert!(p.message.is_none());
            }
        }
        let spans = ExportTraceServiceRequest::decode(pool.payloads(Signal::Spans)[0].body.clone())
            .expect("spans body is protobuf");
        assert_eq!(count_spans(&spans), 20);
        let logs = ExportLogsServiceRequest::decode(pool.payloads(Signal::Logs)[0].body.clone())
            .expect("logs body is protobuf");
        assert_eq!(count_log_records(&logs), 20);
        let metrics =
            ExportMetricsServiceRequest::decode(pool.payloads(Signal::Metrics)[0].body.clone())
                .expect("metrics body is protobuf");
        assert_eq!(count_data_points(&metrics), 20);
    }

    /// JSON bodies are OTLP/JSON: camelCase fields and hex ids, readable back as requests.
    #[test]
    fn json_bodies_are_otlp_json() {
        let pool = Pool::build(&options(BodyEncoding::Json, false)).expect("pool builds");
        let body = &pool.payloads(Signal::Spans)[0].body;
        let text = std::str::from_utf8(body).expect("json is utf-8");
        assert!(text.contains("\"resourceSpans\""));
        let value: serde_json::Value = serde_json::from_str(text).expect("valid json");
        let trace_id = value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
            .as_str()
            .expect("traceId is a string");
        assert_eq!(trace_id.len(), 32);
        assert!(trace_id.chars().all(|c| c.is_ascii_hexdigit()));
        let back: ExportTraceServiceRequest = serde_json::from_str(text).expect("reads back");
        assert_eq!(count_spans(&back), 20);
        assert_eq!(pool.payloads(Signal::Spans)[0].wire, *body);
    }
}
