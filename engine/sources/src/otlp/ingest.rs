//! The ingest path shared by gRPC and HTTP: admission, conversion, sending,
//! and waiting for the acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use super::OtlpSourceConfig;
use super::budget::{Budget, Held, Short};
use super::metrics;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;
use weir_core::convert::{self, ConvertError, Converted, WireError};
use weir_core::{Ack, AckStatus, Batch, Output, Refused, SendError, Settled, Signal};

/// What [`Ingest::ingest`] turns into rows: a decoded request, or a
/// protobuf body read directly.
pub(crate) trait ToRows: Sync {
    /// The signal the request carries.
    fn signal(&self) -> Signal;
    /// Converts the request to Arrow rows.
    fn convert(&self) -> Result<Converted, ConvertError>;
    /// The bytes the request and its rows take once converted, estimated
    /// from its lengths.
    fn expanded_size(&self) -> usize;
}

/// An OTLP export request of one signal.
pub(crate) trait ExportRequest: prost::Message + Default + Send + Sync + 'static {
    /// The signal the request carries.
    const SIGNAL: Signal;
    /// Converts the request to Arrow rows.
    fn convert(&self) -> Result<Converted, ConvertError>;
    /// The bytes the request and its rows take once converted, estimated
    /// from its lengths.
    fn expanded_size(&self) -> usize;
    /// A protobuf body scanned to be read into rows directly, without
    /// prost's structs, for the signals that have a direct reader; `None`:
    /// decode it with prost.
    fn scan(_body: &[u8]) -> Option<Direct<'_>> {
        None
    }
    /// The bytes decoding a protobuf body takes at most, walked from its
    /// tags and lengths before decoding it.
    fn decoded_size(body: &[u8]) -> Result<usize, WireError>;
    /// Decodes an OTLP/JSON body.
    fn decode_json(body: &[u8]) -> Result<Self, ConvertError>;
}

impl<R: ExportRequest> ToRows for R {
    fn signal(&self) -> Signal {
        R::SIGNAL
    }
    fn convert(&self) -> Result<Converted, ConvertError> {
        ExportRequest::convert(self)
    }
    fn expanded_size(&self) -> usize {
        ExportRequest::expanded_size(self)
    }
}

/// A protobuf body read into rows directly ([`ExportRequest::scan`]).
pub(crate) enum Direct<'a> {
    Spans(convert::SpansProto<'a>),
    Logs(convert::LogsProto<'a>),
}

impl ToRows for Direct<'_> {
    fn signal(&self) -> Signal {
        match self {
            Direct::Spans(_) => Signal::Spans,
            Direct::Logs(_) => Signal::Logs,
        }
    }
    fn convert(&self) -> Result<Converted, ConvertError> {
        match self {
            Direct::Spans(scan) => scan.to_batch(),
            Direct::Logs(scan) => scan.to_batch(),
        }
    }
    fn expanded_size(&self) -> usize {
        match self {
            Direct::Spans(scan) => scan.expanded_size(),
            Direct::Logs(scan) => scan.expanded_size(),
        }
    }
}

impl ExportRequest for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Spans;
    fn scan(body: &[u8]) -> Option<Direct<'_>> {
        convert::SpansProto::scan(body).map(Direct::Spans)
    }
    fn convert(&self) -> Result<Converted, ConvertError> {
        convert::spans_to_batch(self)
    }
    fn expanded_size(&self) -> usize {
        convert::spans_expanded_size(self)
    }
    fn decoded_size(body: &[u8]) -> Result<usize, WireError> {
        convert::spans_decoded_size(body)
    }
    fn decode_json(body: &[u8]) -> Result<Self, ConvertError> {
        convert::json::decode_spans(body)
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    fn scan(body: &[u8]) -> Option<Direct<'_>> {
        convert::LogsProto::scan(body).map(Direct::Logs)
    }
    fn convert(&self) -> Result<Converted, ConvertError> {
        convert::logs_to_batch(self)
    }
    fn expanded_size(&self) -> usize {
        convert::logs_expanded_size(self)
    }
    fn decoded_size(body: &[u8]) -> Result<usize, WireError> {
        convert::logs_decoded_size(body)
    }
    fn decode_json(body: &[u8]) -> Result<Self, ConvertError> {
        convert::json::decode_logs(body)
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    fn convert(&self) -> Result<Converted, ConvertError> {
        convert::metrics_to_batch(self)
    }
    fn expanded_size(&self) -> usize {
        convert::metrics_expanded_size(self)
    }
    fn decoded_size(body: &[u8]) -> Result<usize, WireError> {
        convert::metrics_decoded_size(body)
    }
    fn decode_json(body: &[u8]) -> Result<Self, ConvertError> {
        convert::json::decode_metrics(body)
    }
}

/// What happened to one export request; each transport maps it to its own
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted and acknowledged by every sink; `rejected` records were
    /// refused individually, by the conversion or by a sink (OTLP
    /// `partial_success`).
    Accepted {
        /// Records refused individually.
        rejected: u64,
        /// Why: the conversion's first reason and the sinks' first, joined
        /// by `; `.
        message: Option<String>,
    },
    /// The request is malformed (400 / INVALID_ARGUMENT); do not retry.
    Invalid(String),
    /// The request is larger than `max_request_size`, or would take more
    /// than `max_expanded_request_size` once converted (413 /
    /// RESOURCE_EXHAUSTED).
    TooLarge(String),
    /// The client did not send its request within `read_timeout` (408 /
    /// DEADLINE_EXCEEDED).
    TimedOut(String),
    /// The pipeline is full, shutting down, or a sink could not make the
    /// data durable: retry after the hint (503 / UNAVAILABLE).
    Unavailable(String),
}

/// State shared by the gRPC and HTTP servers of one OTLP source.
pub(crate) struct Ingest {
    pub(crate) name: Arc<str>,
    output: Output,
    permits: Arc<Semaphore>,
    pub(crate) budget: Budget,
    max_expanded: u64,
    queue_wait: Duration,
    ack_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) max_request_size: usize,
}

impl Ingest {
    pub(crate) fn new(name: Arc<str>, output: Output, config: &OtlpSourceConfig) -> Self {
        Ingest {
            name,
            output,
            permits: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            budget: Budget::new(config.max_in_flight_bytes),
            max_expanded: config.max_expanded_request_size,
            queue_wait: config.queue_wait,
            ack_timeout: config.ack_timeout,
            read_timeout: config.read_timeout,
            retry_after: config.retry_after,
            max_request_size: usize::try_from(config.max_request_size).unwrap_or(usize::MAX),
        }
    }

    /// A slot for one request in flight, taken once the body has arrived
    /// and before it is decoded; refused while `max_concurrent_requests`
    /// are being served or Weir is over its memory limit
    /// ([`weir_core::memory`]).
    pub(crate) fn admit(&self, protocol: &'static str) -> Result<OwnedSemaphorePermit, Outcome> {
        if let Some(pressure) = weir_core::memory::pressure() {
            self.count_request(protocol, "memory_limit");
            return Err(Outcome::Unavailable(format!(
                "{pressure}; retry after {}s",
                self.retry_after.as_secs_f64()
            )));
        }
        self.permits.clone().try_acquire_owned().map_err(|_| {
            self.count_request(protocol, "too_many_requests");
            Outcome::Unavailable(format!(
                "`{}` is serving its maximum number of concurrent requests; retry later",
                self.name
            ))
        })
    }

    /// Counts a request that ended before [`Ingest::ingest`] (bad body, size).
    pub(crate) fn count_request(&self, protocol: &'static str, outcome: &'static str) {
        metrics::requests(&self.name, protocol, outcome).increment(1);
    }

    /// The refusal of a request that cannot hold more memory: `Never` is
    /// too large, `Now` is retryable. Counts it.
    pub(crate) fn short(&self, protocol: &'static str, short: Short, bytes: u64) -> Outcome {
        let total = self.budget.total();
        match short {
            Short::Never => {
                self.count_request(protocol, "too_large");
                Outcome::TooLarge(format!(
                    "the request would take about {bytes} bytes in memory, more than all of \
                     `max_in_flight_bytes` ({total} bytes) of `{}`: send fewer records per request",
                    self.name
                ))
            }
            Short::Now => {
                self.count_request(protocol, "in_flight_full");
                Outcome::Unavailable(format!(
                    "`{}` holds its maximum of request memory in flight (`max_in_flight_bytes`, \
                     {total} bytes); retry after {}s",
                    self.name,
                    self.retry_after.as_secs_f64()
                ))
            }
        }
    }

    /// Holds the memory decoding a body takes before it is decoded:
    /// `bound` is what its walk found (protobuf: from its tags and lengths;
    /// JSON: from its objects), or why it is malformed. A body over
    /// `max_expanded_request_size` once decoded is refused as too large, a
    /// malformed one as invalid, and `held` grows by the bound within
    /// `queue_wait` or the request is refused for now.
    pub(crate) async fn hold_decoded(
        &self,
        protocol: &'static str,
        signal: Signal,
        bound: Result<usize, WireError>,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let decoded = bound.map_err(|e| {
            self.count_request(protocol, "invalid");
            Outcome::Invalid(format!(
                "the body is not a valid OTLP {signal} protobuf request: {e}"
            ))
        })? as u64;
        if decoded > self.max_expanded {
            self.count_request(protocol, "too_large");
            return Err(Outcome::TooLarge(format!(
                "decoding the request would take about {decoded} bytes, more than \
                 `max_expanded_request_size` ({} bytes) of `{}`: send fewer records or \
                 attributes per request",
                self.max_expanded, self.name
            )));
        }
        let need = held.bytes().saturating_add(decoded);
        self.budget
            .grow_within(held, need, self.queue_wait)
            .await
            .map_err(|short| self.short(protocol, short, need))
    }

    /// Converts `request` to rows, sends them into the pipeline, and waits
    /// until every sink has acknowledged them; records the conversion or a
    /// sink refused one by one are answered as `partial_success`.
    ///
    /// First the request's size once converted is estimated: over
    /// `max_expanded_request_size` it is refused as too large, and `held`
    /// (the bytes its body took) grows to the estimate within `queue_wait`
    /// or the request is refused for now. The bytes stay held until the
    /// request is answered.
    pub(crate) async fn ingest<R: ToRows>(
        &self,
        protocol: &'static str,
        request: &R,
        wire_bytes: usize,
        mut held: Held,
    ) -> Outcome {
        let expanded = request.expanded_size() as u64;
        if expanded > self.max_expanded {
            self.count_request(protocol, "too_large");
            return Outcome::TooLarge(format!(
                "the request would take about {expanded} bytes once converted (every record \
                 carries a copy of its resource and scope attributes), more than \
                 `max_expanded_request_size` ({} bytes) of `{}`: send fewer records per \
                 request, or fewer or shorter resource attributes",
                self.max_expanded, self.name
            ));
        }
        if let Err(short) = self
            .budget
            .grow_within(&mut held, expanded, self.queue_wait)
            .await
        {
            return self.short(protocol, short, expanded);
        }
        let outcome = self.ingest_inner(request, wire_bytes).await;
        drop(held);
        let label = match &outcome {
            Outcome::Accepted { rejected: 0, .. } => "accepted",
            Outcome::Accepted { .. } => "partially_accepted",
            Outcome::Invalid(_) => "invalid",
            Outcome::TooLarge(_) => "too_large",
            Outcome::TimedOut(_) => "read_timeout",
            Outcome::Unavailable(_) => "unavailable",
        };
        self.count_request(protocol, label);
        outcome
    }

    /// [`Ingest::ingest`] of a protobuf body of `R`: read into rows
    /// directly when `R` has a direct reader that takes it, decoded by
    /// prost otherwise. A body prost cannot decode is invalid.
    pub(crate) async fn ingest_protobuf<R: ExportRequest>(
        &self,
        protocol: &'static str,
        body: &[u8],
        held: Held,
    ) -> Outcome {
        if let Some(direct) = R::scan(body) {
            return self.ingest(protocol, &direct, body.len(), held).await;
        }
        match R::decode(body) {
            Ok(request) => self.ingest(protocol, &request, body.len(), held).await,
            Err(e) => {
                self.count_request(protocol, "invalid");
                Outcome::Invalid(format!(
                    "the body is not a valid OTLP {} protobuf request: {e}",
                    R::SIGNAL
                ))
            }
        }
    }

    async fn ingest_inner<R: ToRows>(&self, request: &R, wire_bytes: usize) -> Outcome {
        let signal = request.signal();
        let converted = match request.convert() {
            Ok(c) => c,
            Err(e @ ConvertError::TooLarge(_)) => return Outcome::TooLarge(e.to_string()),
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        let rows = converted.batch.num_rows() as u64;
        metrics::received_bytes(&self.name, signal).increment(wire_bytes as u64);
        if converted.rejected > 0 {
            metrics::rejected_records(&self.name, signal).increment(converted.rejected);
        }
        let accepted = Outcome::Accepted {
            rejected: converted.rejected,
            message: converted.rejection.clone(),
        };
        if rows == 0 {
            return accepted;
        }
        if !self.output.wants(signal) {
            debug!(component = %self.name, %signal, rows, "no component reads this signal; discarded");
            metrics::discarded_records(&self.name, signal).increment(rows);
            return accepted;
        }
        let (ack, waiter) = Ack::new();
        let batch = Batch::new(signal, converted.batch, ack);
        match self.output.send_within(batch, self.queue_wait).await {
            Ok(()) => {}
            Err(SendError::Full(downstream)) => {
                return Outcome::Unavailable(format!(
                    "the pipeline is full (`{downstream}` has no room); retry after {}s",
                    self.retry_after.as_secs_f64()
                ));
            }
            Err(SendError::Closed(_)) => {
                return Outcome::Unavailable("Weir is shutting down; retry".into());
            }
        }
        match tokio::time::timeout(self.ack_timeout, waiter.settled()).await {
            Ok(Settled {
                status: AckStatus::Delivered,
                refused,
            }) => {
                let refused = Refused {
                    // A record fanned out to several sinks may be refused
                    // by each: never count more than were sent.
                    records: refused.records.min(rows),
                    ..refused
                };
                if refused.records > 0 {
                    metrics::rejected_records(&self.name, signal).increment(refused.records);
                }
                Outcome::Accepted {
                    rejected: converted.rejected.saturating_add(refused.records),
                    message: join_reasons(converted.rejection, refused.reason),
                }
            }
            Ok(Settled {
                status: AckStatus::Failed(reason),
                ..
            }) => Outcome::Unavailable(format!("the data could not be stored: {reason}; retry")),
            Ok(Settled {
                status: AckStatus::Rejected(reason),
                ..
            }) => Outcome::Invalid(reason),
            Err(_) => Outcome::Unavailable(format!(
                "sinks did not acknowledge within {}s; retry (the data may arrive twice)",
                self.ack_timeout.as_secs_f64()
            )),
        }
    }
}

/// The reasons of the records the conversion refused and of those the
/// sinks refused, for `partial_success`'s one message.
fn join_reasons(converted: Option<String>, sinks: Option<String>) -> Option<String> {
    match (converted, sinks) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}
