//! The HTTP endpoint: `POST /api/v1/sql` and `GET /api/v1/tables`.
//!
//! A request flows: pick the format (`format=` parameter, else `Accept`),
//! read the SQL (JSON `{"sql": ...}` or plain text), plan it
//! ([`SqlService::execute`]), wait for the first batch so that errors found
//! before any row (most of them: planning, memory, an early timeout) get a
//! proper status, then stream the rest, encoding batch by batch
//! ([`crate::encode`]). An error after the first bytes ends the body as
//! described in [`crate::encode`] and aborts the transfer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::auth::Credentials;
use crate::encode::{Encoder, Format};
use crate::error::QueryError;
use crate::metrics;
use crate::service::SqlService;

/// The path of the query endpoint.
pub const SQL_PATH: &str = "/api/v1/sql";
/// The path of the table listing.
pub const TABLES_PATH: &str = "/api/v1/tables";

impl SqlService {
    /// `POST /api/v1/sql` and `GET /api/v1/tables`, to merge into Weir's API
    /// server, behind [`guard`]: the credentials of `[query.auth]` when
    /// there are any, and the browser checks always.
    pub fn router(self: Arc<Self>, credentials: Arc<Credentials>) -> Router {
        Router::new()
            .route(SQL_PATH, post(sql))
            .route(TABLES_PATH, get(tables))
            .with_state(self)
            .layer(axum::middleware::from_fn_with_state(credentials, guard))
    }
}

/// What every SQL request passes before it is read:
///
/// - a request a browser sends from another site (`Sec-Fetch-Site:
///   cross-site`, or an `Origin` whose host is not the `Host` asked for) is
///   refused, so a web page cannot make its visitor's browser query Weir;
/// - without credentials (loopback only), the `Host` must be a loopback
///   name or address, so a DNS-rebinding page cannot pose as Weir's origin;
/// - with credentials, `Authorization: Bearer TOKEN` or `Basic` (a
///   `[query.auth]` user) is required.
async fn guard(
    State(credentials): State<Arc<Credentials>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    if let Some(reason) = cross_site(headers) {
        return error_response(&QueryError::Refused(reason));
    }
    if credentials.required() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !credentials.admits_header(presented) {
            let mut response = error_response(&QueryError::Unauthorized(
                "the SQL endpoint needs credentials: send `Authorization: Bearer TOKEN` (a \
                 `[query.auth] tokens` entry) or `Authorization: Basic` with a `[query.auth] \
                 users` entry"
                    .to_string(),
            ));
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"weir\", Basic realm=\"weir\""),
            );
            return response;
        }
    } else if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok())
        && !is_loopback_host(host)
    {
        return error_response(&QueryError::Refused(format!(
            "Host `{host}` is not this Weir's: without `[query.auth]` the SQL endpoint answers \
             only requests to a loopback address (localhost, 127.0.0.1, [::1])"
        )));
    }
    next.run(request).await
}

/// Why the request looks like a browser's from another site, if it does.
fn cross_site(headers: &HeaderMap) -> Option<String> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if value("sec-fetch-site") == Some("cross-site") {
        return Some("cross-site requests from a browser are refused".to_string());
    }
    let origin = value("origin")?;
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    match value("host") {
        Some(host) if host.eq_ignore_ascii_case(origin_host) => None,
        _ => Some(format!(
            "a request from the page at `{origin}` is refused: browsers may query Weir only from \
             its own origin"
        )),
    }
}

/// Whether `host` (a `Host` header: a name or address, maybe with a port)
/// is a loopback one.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The JSON form of a query request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    /// The query.
    sql: String,
}

fn error_response(error: &QueryError) -> Response {
    if error.is_user_error() {
        tracing::debug!(kind = error.kind(), %error, "query refused or failed");
    } else {
        tracing::warn!(kind = error.kind(), %error, "query failed on Weir's side");
    }
    metrics::queries(error.kind()).increment(1);
    let mut response = (error.status(), error.to_json().to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The result format: the `format` parameter wins over `Accept`; JSON when
/// neither says.
fn choose_format(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Format, QueryError> {
    if let Some(name) = params.get("format") {
        return Format::from_name(name).ok_or_else(|| {
            QueryError::BadRequest(format!(
                "unknown format {name:?}: use format=json, format=csv or format=arrow"
            ))
        });
    }
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(Format::Json);
    };
    let accept = accept.to_str().unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    Format::from_accept(accept).ok_or_else(|| {
        QueryError::NotAcceptable(format!(
            "cannot answer with any of Accept: {accept}; Weir answers application/json, text/csv \
             or application/vnd.apache.arrow.stream (or pass format=json|csv|arrow)"
        ))
    })
}

/// The SQL of the request: JSON `{"sql": "..."}` when the body is declared
/// JSON, the body as text otherwise.
fn read_sql(headers: &HeaderMap, body: &Bytes) -> Result<String, QueryError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let sql = if content_type == "application/json" {
        let request: SqlRequest = serde_json::from_slice(body).map_err(|e| {
            QueryError::BadRequest(format!(
                "the body is not the expected JSON {{\"sql\": \"SELECT ...\"}}: {e}"
            ))
        })?;
        request.sql
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| {
            QueryError::BadRequest(
                "the body is not UTF-8 text: send the SQL as text, or as JSON {\"sql\": \"...\"}"
                    .to_string(),
            )
        })?
    };
    if sql.trim().is_empty() {
        return Err(QueryError::BadRequest(
            "empty query: send the SQL as the request body, as text or as JSON {\"sql\": \"...\"}"
                .to_string(),
        ));
    }
    Ok(sql)
}

async fn sql(
    State(service): State<Arc<SqlService>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let format = match choose_format(&params, &headers) {
        Ok(format) => format,
        Err(error) => return error_response(&error),
    };
    let sql = match read_sql(&headers, &body) {
        Ok(sql) => sql,
        Err(error) => return error_response(&error),
    };
    let mut stream = match service.execute(&sql).await {
        Ok(stream) => stream,
        Err(error) => return error_response(&error),
    };
    let limit = service.memory_limit();
    let first = match stream.next().await {
        Some(Ok(batch)) => Some(batch),
        Some(Err(error)) => return error_response(&QueryError::from_datafusion(&error, limit)),
        None => None,
    };
    let schema = stream.schema();
    let encoder = match Encoder::new(format, &schema) {
        Ok(encoder) => encoder,
        Err(error) => {
            let error = QueryError::Internal(format!("cannot encode the result: {error}"));
            return error_response(&error);
        }
    };
    let body = Body::from_stream(body_stream(Streaming {
        encoder,
        first,
        stream,
        memory_limit: limit,
        started,
        phase: Phase::Start,
    }));
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// How long a failed body waits between its closing bytes and the abort.
const ABORT_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Where a streaming body is.
enum Phase {
    /// Nothing sent yet: the header and the first batch go next.
    Start,
    /// Batches are flowing.
    Rows,
    /// The query failed mid-stream; the body is aborted with this message.
    Abort(String),
    /// Nothing more to send.
    Done,
}

struct Streaming {
    encoder: Encoder,
    first: Option<RecordBatch>,
    stream: SendableRecordBatchStream,
    memory_limit: u64,
    started: Instant,
    phase: Phase,
}

impl Streaming {
    /// The next chunk of the body, `Ok(None)` at the end, `Err` to abort.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Start => {
                    let mut chunk = BytesMut::from(self.encoder.header().as_ref());
                    self.phase = Phase::Rows;
                    if let Some(batch) = self.first.take() {
                        match self.encoder.batch(&batch) {
                            Ok(bytes) => chunk.extend_from_slice(&bytes),
                            Err(error) => {
                                let error = QueryError::Internal(format!(
                                    "cannot encode the result: {error}"
                                ));
                                chunk.extend_from_slice(&self.fail(&error));
                            }
                        }
                    }
                    return Ok(Some(chunk.freeze()));
                }
                Phase::Rows => match self.stream.next().await {
                    Some(Ok(batch)) => {
                        self.phase = Phase::Rows;
                        match self.encoder.batch(&batch) {
                            Ok(bytes) if bytes.is_empty() => continue,
                            Ok(bytes) => return Ok(Some(bytes)),
                            Err(error) => {
                                let error = QueryError::Internal(format!(
                                    "cannot encode the result: {error}"
                                ));
                                return Ok(Some(self.fail(&error)));
                            }
                        }
                    }
                    Some(Err(error)) => {
                        let error = QueryError::from_datafusion(&error, self.memory_limit);
                        return Ok(Some(self.fail(&error)));
                    }
                    None => match self.encoder.finish() {
                        Ok(bytes) => {
                            metrics::queries("ok").increment(1);
                            metrics::query_duration().record(self.started.elapsed().as_secs_f64());
                            return Ok(Some(bytes));
                        }
                        Err(error) => {
                            let error =
                                QueryError::Internal(format!("cannot encode the result: {error}"));
                            return Ok(Some(self.fail(&error)));
                        }
                    },
                },
                Phase::Abort(message) => {
                    // Give the server a moment to flush the closing bytes
                    // (the error object) before the abort discards its
                    // buffer; the abort itself is what every client notices.
                    tokio::time::sleep(ABORT_GRACE).await;
                    return Err(std::io::Error::other(message));
                }
                Phase::Done => return Ok(None),
            }
        }
    }

    /// The query failed after the response started: the format's closing
    /// bytes now, then an aborted body.
    fn fail(&mut self, error: &QueryError) -> Bytes {
        tracing::warn!(kind = error.kind(), %error, "query failed while streaming its result");
        metrics::queries(error.kind()).increment(1);
        self.phase = Phase::Abort(error.to_string());
        self.encoder.fail(&error.to_json())
    }
}

fn body_stream(
    state: Streaming,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next_chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(state))),
            Ok(None) => None,
            // Dropping the state here cancels the query.
            Err(error) => Some((Err(error), None)),
        }
    })
}

/// `GET /api/v1/tables`: the tables a query can read and their columns:
/// `{"tables":[{"name":"logs","columns":[{"name":"time","type":"...","nullable":true}]}]}`.
async fn tables(State(service): State<Arc<SqlService>>) -> Response {
    match list_tables(&service).await {
        Ok(json) => {
            let mut response = (StatusCode::OK, json.to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => error_response(&error),
    }
}

async fn list_tables(service: &SqlService) -> Result<serde_json::Value, QueryError> {
    let ctx = service.context()?;
    let state = ctx.state();
    let options = &state.config().options().catalog;
    let schema = ctx
        .catalog(&options.default_catalog)
        .and_then(|catalog| catalog.schema(&options.default_schema));
    let Some(schema) = schema else {
        return Ok(serde_json::json!({ "tables": [] }));
    };
    let mut names = schema.table_names();
    names.sort();
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let provider = schema
            .table(&name)
            .await
            .map_err(|e| QueryError::Tables(e.strip_backtrace()))?;
        let Some(provider) = provider else { continue };
        let columns: Vec<_> = provider
            .schema()
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                })
            })
            .collect();
        tables.push(serde_json::json!({ "name": name, "columns": columns }));
    }
    Ok(serde_json::json!({ "tables": tables }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback names and addresses, with or without a port, are loopback;
    /// a rebinding page's name is not.
    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8888",
            "127.0.0.1:8888",
            "[::1]:8888",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:8888", "10.0.0.1", "127.0.0.1.evil.example"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    /// A browser's request from another origin is refused; one from Weir's
    /// own page or from a tool without `Origin` is not.
    #[test]
    fn cross_site_requests_are_seen() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        assert!(cross_site(&headers(&[("host", "127.0.0.1:8888")])).is_none());
        assert!(
            cross_site(&headers(&[
                ("host", "127.0.0.1:8888"),
                ("origin", "http://127.0.0.1:8888")
            ]))
            .is_none()
        );
        assert!(
            cross_site(&headers(&[
                ("host", "127.0.0.1:8888"),
                ("origin", "https://evil.example")
            ]))
            .is_some()
        );
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
    }

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    /// The `format` parameter wins over `Accept`; JSON is the default.
    #[test]
    fn format_parameter_wins_over_accept() {
        let mut params = HashMap::new();
        let csv = headers(&[(header::ACCEPT, "text/csv")]);
        assert_eq!(choose_format(&params, &HeaderMap::new()), Ok(Format::Json));
        assert_eq!(choose_format(&params, &csv), Ok(Format::Csv));
        params.insert("format".to_string(), "arrow".to_string());
        assert_eq!(choose_format(&params, &csv), Ok(Format::Arrow));
        params.insert("format".to_string(), "xml".to_string());
        assert_eq!(
            choose_format(&params, &csv).map_err(|e| e.kind()),
            Err("bad_request")
        );
        let png = headers(&[(header::ACCEPT, "image/png")]);
        assert_eq!(
            choose_format(&HashMap::new(), &png).map_err(|e| e.kind()),
            Err("not_acceptable")
        );
    }

    /// SQL comes as JSON or text; a JSON body with the wrong field is
    /// refused with a hint.
    #[test]
    fn sql_from_json_or_text() {
        let json = headers(&[(header::CONTENT_TYPE, "application/json; charset=utf-8")]);
        let body = Bytes::from_static(br#"{"sql": "SELECT 1"}"#);
        assert_eq!(read_sql(&json, &body), Ok("SELECT 1".to_string()));
        let text = Bytes::from_static(b"SELECT 2");
        assert_eq!(
            read_sql(&HeaderMap::new(), &text),
            Ok("SELECT 2".to_string())
        );
        let wrong = Bytes::from_static(br#"{"query": "SELECT 1"}"#);
        let error = read_sql(&json, &wrong)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("unknown field `query`"), "{error}");
        let empty = Bytes::from_static(b"  ");
        assert_eq!(
            read_sql(&HeaderMap::new(), &empty).map_err(|e| e.kind()),
            Err("bad_request")
        );
    }
}
