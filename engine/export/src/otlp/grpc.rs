//! OTLP/gRPC: one export call per request over a tonic channel, and what
//! its status means under the OTLP specification's retry rules.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use tonic::GrpcMethod;
use tonic::codec::CompressionEncoding;
use tonic::codegen::StdError;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use weir_core::ComponentError;

use super::Export;
use super::codec::PreEncoded;
use super::config::{Compression, OtlpConfig};
use crate::http::Failure;

/// A gRPC receiver.
#[derive(Debug)]
pub(crate) struct Grpc {
    url: String,
    endpoint: Endpoint,
    /// Connected lazily at the first call (a channel needs the runtime).
    channel: OnceLock<Channel>,
    headers: HeaderMap,
    compression: Option<CompressionEncoding>,
}

impl Grpc {
    /// The receiver at `url` (resolved from `config`), with the resolved `headers` as metadata
    /// and `ca` (PEM) trusted besides the system's roots.
    pub(crate) fn new(
        component: &str,
        config: &OtlpConfig,
        url: &str,
        headers: HeaderMap,
        ca: Option<Vec<u8>>,
    ) -> Result<Self, ComponentError> {
        let url = url.to_string();
        let shown = weir_core::redact::url(&url);
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| ComponentError::config(component, format!("`endpoint` `{shown}`: {e}")))?
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| ComponentError::internal(component, format!("user agent: {e}")))?;
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = ca {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| {
                ComponentError::config(component, format!("TLS towards `{shown}`: {e}"))
            })?;
        }
        let compression = match config.compression {
            Compression::None => None,
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
        };
        Ok(Grpc {
            url,
            endpoint,
            channel: OnceLock::new(),
            headers,
            compression,
        })
    }

    /// The start-time check (see [`crate::Exporter::preflight`]): over
    /// TLS, a connection whose handshake fails on the certificate is an
    /// error; one that cannot be made now is not.
    pub(crate) async fn preflight(&self) -> Result<(), String> {
        if !self.url.starts_with("https://") {
            return Ok(());
        }
        let connected =
            tokio::time::timeout(crate::http::PREFLIGHT_TIMEOUT, self.endpoint.connect()).await;
        match connected {
            Ok(Ok(_)) | Err(_) => Ok(()),
            Ok(Err(e)) => crate::http::judge_preflight(&self.url, &e),
        }
    }

    /// The channel, connected at the first call.
    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone()
    }

    /// `message` with the user's headers as metadata.
    fn request<M>(&self, message: M) -> tonic::Request<M> {
        tonic::Request::from_parts(
            MetadataMap::from_headers(self.headers.clone()),
            tonic::Extensions::default(),
            message,
        )
    }

    /// Sends one request; `Ok` carries its `partial_success`.
    pub(crate) async fn send<R: Export>(
        &self,
        request: R,
    ) -> Result<Option<(u64, String)>, Failure> {
        let answer = R::call(self.channel(), self.compression, self.request(request)).await;
        self.judge::<R>(answer)
    }

    /// Sends one request already encoded as protobuf (`R` in bytes), as
    /// [`Grpc::send`] sends it: the same method, compression and
    /// metadata; `Ok` carries its `partial_success`.
    pub(crate) async fn send_encoded<R: Export>(
        &self,
        body: Bytes,
    ) -> Result<Option<(u64, String)>, Failure> {
        let mut client = tonic::client::Grpc::new(self.channel())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        if let Some(encoding) = self.compression {
            client = client.send_compressed(encoding);
        }
        let mut request = self.request(body);
        request
            .extensions_mut()
            .insert(GrpcMethod::new(R::GRPC_SERVICE, "Export"));
        let answer = async {
            client.ready().await.map_err(|e| {
                Status::unknown(format!("Service was not ready: {}", StdError::from(e)))
            })?;
            client
                .unary(
                    request,
                    PathAndQuery::from_static(R::GRPC_PATH),
                    PreEncoded::<R::Response>::default(),
                )
                .await
        }
        .await;
        self.judge::<R>(answer)
    }

    /// What an answer means: its `partial_success`, or the failure its
    /// status says.
    fn judge<R: Export>(
        &self,
        answer: Result<tonic::Response<R::Response>, Status>,
    ) -> Result<Option<(u64, String)>, Failure> {
        match answer {
            Ok(response) => Ok(R::partial_success(response.get_ref())),
            Err(status) => Err(failure(&self.url, &status)),
        }
    }
}

/// What a status means: the codes the OTLP specification lists as
/// retryable may pass (`RESOURCE_EXHAUSTED` only when the receiver says
/// when to retry), after the receiver's `RetryInfo`; others are refused.
pub(crate) fn failure(url: &str, status: &Status) -> Failure {
    let after: Option<Duration> = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let reason = format!(
        "{} answered gRPC {:?}: {}",
        weir_core::redact::url(url),
        status.code(),
        status.message()
    );
    let may_pass = match status.code() {
        Code::Unavailable
        | Code::Cancelled
        | Code::Aborted
        | Code::DeadlineExceeded
        | Code::OutOfRange
        | Code::DataLoss => true,
        Code::ResourceExhausted => after.is_some(),
        _ => false,
    };
    if may_pass {
        Failure::Retryable(reason, after)
    } else {
        Failure::Refused(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    /// Guarantees: the OTLP specification's retryable codes may pass with
    /// the receiver's delay, `RESOURCE_EXHAUSTED` only with `RetryInfo`,
    /// and every other code is refused.
    #[test]
    fn codes_as_the_specification_says() {
        let url = "http://c:4317";
        let plain = |code| failure(url, &Status::new(code, "x"));
        for code in [
            Code::Unavailable,
            Code::Cancelled,
            Code::Aborted,
            Code::DeadlineExceeded,
            Code::OutOfRange,
            Code::DataLoss,
        ] {
            assert!(
                matches!(plain(code), Failure::Retryable(_, None)),
                "{code:?}"
            );
        }
        for code in [
            Code::ResourceExhausted,
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Unimplemented,
            Code::Internal,
        ] {
            assert!(matches!(plain(code), Failure::Refused(_)), "{code:?}");
        }
        let exhausted = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(4))),
        );
        let Failure::Retryable(reason, after) = failure(url, &exhausted) else {
            panic!("not retryable");
        };
        assert_eq!(after, Some(Duration::from_secs(4)));
        assert!(
            reason.contains(url) && reason.contains("slow down"),
            "{reason}"
        );
    }
}
