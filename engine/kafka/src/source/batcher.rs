//! Messages -> batches: the records of consecutive messages of one signal
//! are gathered until they hold `max_batch_records` records or 32 MiB of
//! message bytes, or the first message has waited `batch_timeout`. Logs and
//! metrics are merged into one OTLP request, converted when the batch goes;
//! trace messages arrive as rows (converted on the threads that decoded
//! them) and their batches are put together. A plain line is one record;
//! lines are gathered under one resource.

use std::time::Duration;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tokio::time::Instant;
use weir_core::Signal;
use weir_core::convert::{self, ConvertError, Converted};

use super::decode::Decoded;
use super::offsets::Token;

/// The most message bytes merged into one batch, well below what one
/// conversion takes ([`convert::MAX_REQUEST_BYTES`]).
const MAX_BATCH_BYTES: usize = 32 << 20;

/// The merged request of one batch, or the rows of a message converted
/// on its own.
#[derive(Debug)]
pub(crate) enum Request {
    /// Logs.
    Logs(ExportLogsServiceRequest),
    /// The rows of trace messages, converted one by one, to be put
    /// together.
    Spans(Vec<Converted>),
    /// Metric points.
    Metrics(ExportMetricsServiceRequest),
    /// A message large enough to be a batch alone, converted on the thread
    /// that decoded it.
    Rows(Signal, Result<Converted, ConvertError>),
}

impl Request {
    /// The request as rows.
    pub(crate) fn convert(self) -> Result<Converted, ConvertError> {
        match self {
            Request::Logs(r) => convert::logs_to_batch(&r),
            Request::Spans(parts) => concat(Signal::Spans, parts),
            Request::Metrics(r) => convert::metrics_to_batch(&r),
            Request::Rows(_, converted) => converted,
        }
    }

    /// The signal.
    pub(crate) fn signal(&self) -> Signal {
        match self {
            Request::Logs(_) => Signal::Logs,
            Request::Spans(_) => Signal::Spans,
            Request::Metrics(_) => Signal::Metrics,
            Request::Rows(signal, _) => *signal,
        }
    }
}

/// The rows of several conversions as one: their batches put together,
/// their refused records added up (the first reason kept).
fn concat(signal: Signal, parts: Vec<Converted>) -> Result<Converted, ConvertError> {
    let mut rejected = 0;
    let mut rejection = None;
    let mut batches = Vec::with_capacity(parts.len());
    for part in parts {
        rejected += part.rejected;
        rejection = rejection.or(part.rejection);
        batches.push(part.batch);
    }
    let batch = match batches.as_slice() {
        [] => RecordBatch::new_empty(weir_core::schema::schema_for(signal)),
        [one] => one.clone(),
        [first, ..] => concat_batches(&first.schema(), &batches).map_err(|e| {
            ConvertError::Internal(format!(
                "putting the rows of several messages together: {e}"
            ))
        })?,
    };
    Ok(Converted {
        batch,
        rejected,
        rejection,
    })
}

/// A batch ready to go: its request, the messages it was made of, and
/// their bytes.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The merged request.
    pub request: Request,
    /// The messages whose records it holds.
    pub tokens: Vec<Token>,
    /// Their value bytes.
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Pending {
    logs: ExportLogsServiceRequest,
    lines: Vec<LogRecord>,
    spans: Vec<Converted>,
    metrics: ExportMetricsServiceRequest,
    records: usize,
    bytes: usize,
    tokens: Vec<Token>,
    since: Option<Instant>,
}

impl Pending {
    fn take(&mut self, signal: Signal) -> Option<Outgoing> {
        self.since?;
        let p = std::mem::take(self);
        let request = match signal {
            Signal::Spans => Request::Spans(p.spans),
            Signal::Metrics => Request::Metrics(p.metrics),
            _ => {
                let mut logs = p.logs;
                if !p.lines.is_empty() {
                    logs.resource_logs.push(ResourceLogs {
                        scope_logs: vec![ScopeLogs {
                            scope: Some(InstrumentationScope {
                                name: "weir.kafka".into(),
                                ..InstrumentationScope::default()
                            }),
                            log_records: p.lines,
                            ..ScopeLogs::default()
                        }],
                        ..ResourceLogs::default()
                    });
                }
                Request::Logs(logs)
            }
        };
        Some(Outgoing {
            request,
            tokens: p.tokens,
            bytes: p.bytes,
        })
    }
}

/// The batches being filled, one per signal.
#[derive(Debug)]
pub(crate) struct Batcher {
    logs: Pending,
    spans: Pending,
    metrics: Pending,
    max_records: usize,
    timeout: Duration,
}

impl Batcher {
    pub(crate) fn new(max_records: usize, timeout: Duration) -> Self {
        Batcher {
            logs: Pending::default(),
            spans: Pending::default(),
            metrics: Pending::default(),
            max_records: max_records.max(1),
            timeout,
        }
    }

    /// Adds one message's records; returns the batch it filled, if any.
    pub(crate) fn add(&mut self, decoded: Decoded, token: Token, bytes: usize) -> Option<Outgoing> {
        let records = decoded.records();
        let (signal, pending) = match &decoded {
            Decoded::Logs(_) | Decoded::Line(_) => (Signal::Logs, &mut self.logs),
            Decoded::Spans(_) => (Signal::Spans, &mut self.spans),
            Decoded::Metrics(_) => (Signal::Metrics, &mut self.metrics),
        };
        match decoded {
            Decoded::Logs(r) => pending.logs.resource_logs.extend(r.resource_logs),
            Decoded::Line(r) => pending.lines.push(r),
            Decoded::Spans(c) => pending.spans.push(c),
            Decoded::Metrics(r) => pending.metrics.resource_metrics.extend(r.resource_metrics),
        }
        pending.records += records;
        pending.bytes += bytes;
        pending.tokens.push(token);
        pending.since.get_or_insert_with(Instant::now);
        if pending.records >= self.max_records
            || pending.bytes >= MAX_BATCH_BYTES
            || self.timeout.is_zero()
        {
            return pending.take(signal);
        }
        None
    }

    /// When the oldest waiting batch is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [&self.logs, &self.spans, &self.metrics]
            .into_iter()
            .filter_map(|p| p.since)
            .min()
            .map(|since| since + self.timeout)
    }

    /// The batches due at `now`.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Outgoing> {
        let timeout = self.timeout;
        let due = |p: &Pending| p.since.is_some_and(|s| s + timeout <= now);
        let mut out = Vec::new();
        for (signal, pending) in [
            (Signal::Logs, &mut self.logs),
            (Signal::Spans, &mut self.spans),
            (Signal::Metrics, &mut self.metrics),
        ] {
            if due(pending) {
                out.extend(pending.take(signal));
            }
        }
        out
    }

    /// The batch of `signal` being filled, if any.
    pub(crate) fn take(&mut self, signal: Signal) -> Option<Outgoing> {
        match signal {
            Signal::Spans => self.spans.take(signal),
            Signal::Metrics => self.metrics.take(signal),
            _ => self.logs.take(Signal::Logs),
        }
    }

    /// Every batch being filled.
    pub(crate) fn take_all(&mut self) -> Vec<Outgoing> {
        [
            self.logs.take(Signal::Logs),
            self.spans.take(Signal::Spans),
            self.metrics.take(Signal::Metrics),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;

    use super::super::offsets::Offsets;
    use super::*;

    /// Guarantees: the rows of trace messages, converted one by one, come
    /// out as one batch holding each message's rows in order, the same
    /// rows as converting the messages' spans together, with the refused
    /// spans added up.
    #[tokio::test]
    async fn span_rows_are_put_together_in_order() {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let request = |names: &[&str]| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: names
                        .iter()
                        .map(|name| Span {
                            // "bad" has no span id: refused.
                            trace_id: vec![1; 16],
                            span_id: if *name == "bad" { vec![] } else { vec![2; 8] },
                            name: (*name).into(),
                            ..Span::default()
                        })
                        .collect(),
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let parts = [vec!["a", "b"], vec!["bad", "c"], vec!["d"]];
        let mut offsets = Offsets::default();
        let topic: Arc<str> = Arc::from("t");
        let mut b = Batcher::new(4, Duration::from_secs(60));
        let mut full = None;
        for (i, names) in parts.iter().enumerate() {
            let converted = convert::spans_to_batch(&request(names)).expect("converts");
            full = b.add(
                Decoded::Spans(converted),
                offsets.read(&topic, 0, i as i64),
                1,
            );
        }
        let full = full.expect("4 rows fill the batch");
        assert_eq!(full.tokens.len(), 3);
        let together = full.request.convert().expect("put together");
        let all: Vec<&str> = parts.iter().flatten().copied().collect();
        let expected = convert::spans_to_batch(&request(&all)).expect("converts");
        assert_eq!(together.batch, expected.batch);
        assert_eq!(together.batch.num_rows(), 4);
        assert_eq!(together.rejected, 1);
        assert!(together.rejection.is_some());
    }

    /// Guarantees: lines are gathered into one batch of `max_batch_records`
    /// records carrying every message's token, and a partial batch comes
    /// out once due.
    #[tokio::test(start_paused = true)]
    async fn fills_then_times_out() {
        let mut offsets = Offsets::default();
        let topic: Arc<str> = Arc::from("t");
        let mut b = Batcher::new(3, Duration::from_millis(100));
        let line = || Decoded::Line(LogRecord::default());
        assert!(b.add(line(), offsets.read(&topic, 0, 1), 10).is_none());
        assert!(b.add(line(), offsets.read(&topic, 0, 2), 10).is_none());
        let full = b.add(line(), offsets.read(&topic, 0, 3), 10).expect("full");
        assert_eq!((full.tokens.len(), full.bytes), (3, 30));
        let Request::Logs(r) = &full.request else {
            panic!("logs expected")
        };
        assert_eq!(r.resource_logs[0].scope_logs[0].log_records.len(), 3);
        assert_eq!(
            full.request.convert().expect("converts").batch.num_rows(),
            3
        );

        assert!(b.add(line(), offsets.read(&topic, 0, 4), 10).is_none());
        let due = b.deadline().expect("a batch waits");
        assert!(b.take_due(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(Instant::now() >= due);
        assert_eq!(b.take_due(Instant::now()).len(), 1);
        assert!(b.deadline().is_none());
    }
}
