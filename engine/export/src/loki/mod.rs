//! Grafana Loki's push API: [`LokiExporter`] sends `logs` rows to Loki
//! (`POST /loki/api/v1/push`).
//!
//! A batch goes out in three steps:
//!
//! 1. [`streams`]: the rows become streams the way Loki's own OTLP
//!    ingestion makes them: the resource attributes named in `labels`
//!    (`service.name` -> `service_name`) and `level` (from the severity)
//!    are the stream's labels; every other resource attribute, the scope,
//!    the record's attributes, trace and span ids are Loki 3's structured
//!    metadata of the entry (or logfmt pairs after the line); the line is
//!    the body (a string as is, anything else as JSON). Entries are in time
//!    order within each stream. A record with neither a time nor an
//!    observed time is counted in [`Exported::rejected`];
//! 2. [`request`]: the streams are cut into requests of at most
//!    `max_request_bytes`: a snappy-compressed (block format)
//!    `logproto.PushRequest` ([`proto`]), or JSON, gzipped if asked;
//! 3. each is posted with `X-Scope-OrgID` for the tenant. A refusal (4xx
//!    but 429; Loki answers 400 for entries out of order or too old, with
//!    its reason) drops that request's entries and the others still go,
//!    counting the whole request as refused (Loki may have kept some of
//!    it); a failure that may pass (5xx, 429 with `Retry-After`, no
//!    connection, timeout) ends the export with
//!    [`ExportError::Retryable`], and the sink sends the whole batch again
//!    (Loki drops an entry it already has, same stream, time and line).
//!
//! Only `logs` are taken. The tests (`tests/it/loki.rs`) run a test double
//! of Loki's push endpoint that decodes requests with [`proto`]'s
//! messages, since no Loki server can be installed where they run (it is
//! not packaged for Debian); the messages follow Loki's vendored
//! `push.proto` field by field.

pub mod config;
pub mod proto;
mod request;
mod streams;

use std::io::Write as _;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use weir_core::{ComponentError, Signal};

use crate::exporter::{ExportError, Exported, Exporter, Tally};
use crate::http::{self, Failure, RetryOn};
use request::{Json, Protobuf};
use streams::Settings;

pub use config::{Compression, Encoding, LokiConfig};

/// Sends `logs` rows to Loki's push API.
#[derive(Debug)]
pub struct LokiExporter {
    url: String,
    /// `url` as logs and errors show it: scheme, host and port.
    shown: String,
    client: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
    settings: Settings,
    encoding: Encoding,
    compression: Compression,
    max_request_bytes: usize,
}

impl LokiExporter {
    /// The exporter of component `component` configured by `config`: the
    /// headers are resolved now (environment variables, files), so a
    /// missing secret stops the start.
    pub fn new(component: &str, config: &LokiConfig) -> Result<Self, ComponentError> {
        let url = LokiConfig::push_url(&config.url.resolve_http_url(component, "url")?);
        let mut headers = config.user_headers().resolve(component)?;
        let content_type = match config.encoding {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if config.encoding == Encoding::Json && config.compression == Compression::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let client = crate::http::client_builder().build().map_err(|e| {
            ComponentError::internal(component, format!("cannot make an HTTP client: {e}"))
        })?;
        Ok(LokiExporter {
            shown: weir_core::redact::url(&url),
            url,
            client,
            headers,
            timeout: config.timeout,
            settings: Settings {
                labels: config.labels.clone(),
                structured_metadata: config.structured_metadata,
            },
            encoding: config.encoding,
            compression: config.compression,
            max_request_bytes: usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX),
        })
    }

    /// A body as it goes on the wire: snappy for protobuf, gzip for JSON
    /// if asked.
    fn compress(&self, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
        match (self.encoding, self.compression) {
            (Encoding::Protobuf, _) => snap::raw::Encoder::new()
                .compress_vec(&body)
                .map_err(std::io::Error::other),
            (Encoding::Json, Compression::None) => Ok(body),
            (Encoding::Json, Compression::Gzip) => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&body)?;
                gz.finish()
            }
        }
    }
}

#[async_trait]
impl Exporter for LokiExporter {
    async fn preflight(&self) -> Result<(), String> {
        crate::http::preflight(&self.client, &self.url).await
    }

    async fn export(&self, signal: Signal, rows: &RecordBatch) -> Result<Exported, ExportError> {
        let all_rows = rows.num_rows() as u64;
        if signal != Signal::Logs {
            return Err(ExportError::Permanent {
                reason: format!("{}: Loki takes logs, not {signal}", self.shown),
                records: all_rows,
            });
        }
        let request =
            weir_core::convert::batch_to_logs(rows).map_err(|e| ExportError::Permanent {
                reason: format!("{}: the rows cannot be read: {e}", self.shown),
                records: all_rows,
            })?;
        let streams = streams::streams(&request, &self.settings);
        let mut tally = Tally::new(
            streams.rejected,
            streams.rejection.map(|r| format!("{}: {r}", self.shown)),
        );
        let cut = match self.encoding {
            Encoding::Protobuf => request::cut::<Protobuf>(streams.streams, self.max_request_bytes),
            Encoding::Json => request::cut::<Json>(streams.streams, self.max_request_bytes),
        };
        if cut.too_large > 0 {
            tally.reject(cut.too_large, || {
                format!(
                    "{}: a log entry is larger than max_request_bytes ({} bytes) on its own",
                    self.shown, self.max_request_bytes
                )
            });
        }
        for request in cut.requests {
            let body = self
                .compress(request.body)
                .map_err(|e| ExportError::Permanent {
                    reason: format!("{}: cannot compress a request: {e}", self.shown),
                    records: request.entries,
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
                Err(Failure::Refused(reason)) => tally.refused(request.entries, reason),
            }
        }
        tally.finish()
    }
}
