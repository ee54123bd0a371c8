//! OTLP/HTTP: one POST per request to `/v1/traces`, `/v1/logs` or
//! `/v1/metrics`, protobuf or JSON, and its `partial_success`.

use std::io::Write as _;
use std::time::Duration;

use prost::Message as _;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use weir_core::ComponentError;

use super::Export;
use super::config::{Compression, OtlpConfig, Protocol};
use crate::http::{self as post, Failure, RetryOn};

/// An OTLP/HTTP receiver.
#[derive(Debug)]
pub(crate) struct Http {
    base: String,
    client: reqwest::Client,
    headers: HeaderMap,
    timeout: Duration,
    json: bool,
    compression: Compression,
}

impl Http {
    /// The start-time check (see [`crate::Exporter::preflight`]).
    pub(crate) async fn preflight(&self) -> Result<(), String> {
        crate::http::preflight(&self.client, &self.base).await
    }

    /// The receiver of `config`, with the resolved `headers` and `ca`
    /// (PEM) trusted besides the system's roots.
    pub(crate) fn new(
        component: &str,
        config: &OtlpConfig,
        endpoint: &str,
        mut headers: HeaderMap,
        ca: Option<Vec<u8>>,
    ) -> Result<Self, ComponentError> {
        let json = config.protocol == Protocol::HttpJson;
        let content_type = if json {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        match config.compression {
            Compression::None => {}
            Compression::Gzip => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            Compression::Zstd => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
            }
        }
        let mut client = crate::http::client_builder();
        if let Some(pem) = ca {
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ComponentError::config(component, format!("`tls.ca_file` holds no PEM: {e}"))
            })? {
                client = client.add_root_certificate(cert);
            }
        }
        let client = client.build().map_err(|e| {
            ComponentError::internal(component, format!("cannot make an HTTP client: {e}"))
        })?;
        Ok(Http {
            base: endpoint.trim_end_matches('/').to_string(),
            client,
            headers,
            timeout: config.timeout,
            json,
            compression: config.compression,
        })
    }

    /// Sends one request; `Ok` carries its `partial_success`.
    pub(crate) async fn send<R: Export>(
        &self,
        request: R,
    ) -> Result<Option<(u64, String)>, Failure> {
        let body = if self.json {
            request
                .json()
                .map_err(|e| Failure::Refused(format!("cannot write OTLP/JSON: {e}")))?
        } else {
            request.encode_to_vec()
        };
        self.post::<R>(body).await
    }

    /// Whether requests go as protobuf (not JSON).
    pub(crate) fn protobuf(&self) -> bool {
        !self.json
    }

    /// Sends one request already encoded as protobuf (`R` in bytes; only
    /// when [`Http::protobuf`]), as [`Http::send`] sends it; `Ok`
    /// carries its `partial_success`.
    pub(crate) async fn send_encoded<R: Export>(
        &self,
        body: Vec<u8>,
    ) -> Result<Option<(u64, String)>, Failure> {
        self.post::<R>(body).await
    }

    /// Compresses and posts a request's `body`.
    async fn post<R: Export>(&self, body: Vec<u8>) -> Result<Option<(u64, String)>, Failure> {
        let url = format!("{}{}", self.base, R::PATH);
        let body = compress(self.compression, body)
            .map_err(|e| Failure::Refused(format!("cannot compress a request: {e}")))?;
        let answer = post::post(
            &self.client,
            &url,
            &self.headers,
            self.timeout,
            body,
            RetryOn::Unavailable,
        )
        .await?;
        Ok(self.partial_success::<R>(&answer))
    }

    /// The `partial_success` of an answer's body, if it says any record
    /// was rejected (an empty or unreadable body says none).
    fn partial_success<R: Export>(&self, body: &[u8]) -> Option<(u64, String)> {
        if body.is_empty() {
            return None;
        }
        if self.json {
            let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
            let partial = answer.get("partialSuccess")?;
            let rejected = match partial.get(R::REJECTED_JSON)? {
                serde_json::Value::Number(n) => n.as_u64()?,
                serde_json::Value::String(s) => s.parse().ok()?,
                _ => return None,
            };
            let message = partial
                .get("errorMessage")
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            (rejected > 0).then(|| (rejected, message.to_string()))
        } else {
            R::partial_success(&R::Response::decode(body).ok()?)
        }
    }
}

/// A body as it goes on the wire.
fn compress(compression: Compression, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(body),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&body)?;
            gz.finish()
        }
        Compression::Zstd => zstd::bulk::compress(&body, 0),
    }
}
