//! The client side of `weir sql "SELECT ..."`: sends the query to a running
//! Weir's API server and renders the answer.

use std::fmt;
use std::str::FromStr;

use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;

use crate::http::SQL_PATH;

/// How [`query`] renders the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// A table for the terminal (Arrow's pretty printer); fetched as Arrow
    /// IPC so that the types survive the trip.
    #[default]
    Table,
    /// CSV with a header row, as the server writes it.
    Csv,
    /// The server's JSON document (`{"columns": [...], "rows": [...]}`).
    Json,
}

impl OutputFormat {
    /// The `format=` parameter asked of the server.
    fn wire_name(self) -> &'static str {
        match self {
            OutputFormat::Table => "arrow",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!(
                "unknown output format {other:?}: use table, csv or json"
            )),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
        })
    }
}

/// Why `weir sql` could not show a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Weir could not be reached, or the answer was cut off.
    #[error(
        "could not query Weir at {url}: {source}. Is `weir run` running, with its API server ([api] address) at that address?"
    )]
    Transport {
        /// The URL asked.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server refused or failed the query.
    #[error("{message} ({kind}, HTTP {status})")]
    Query {
        /// The HTTP status.
        status: u16,
        /// The error's kind (`syntax`, `plan`, `timeout`, ...).
        kind: String,
        /// The server's message.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("could not read Weir's answer: {0}")]
    Decode(String),
}

/// POSTs `sql` to the Weir API server at `api_base` (`http://host:port` or
/// just `host:port`) and returns the result rendered as `format`.
pub async fn query(api_base: &str, sql: &str, format: OutputFormat) -> Result<String, ClientError> {
    let base = api_base.trim_end_matches('/');
    let url = if base.contains("://") {
        format!("{base}{SQL_PATH}?format={}", format.wire_name())
    } else {
        format!("http://{base}{SQL_PATH}?format={}", format.wire_name())
    };
    let transport = |source| ClientError::Transport {
        url: url.clone(),
        source,
    };
    let response = reqwest::Client::new()
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(sql.to_string())
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    if !status.is_success() {
        return Err(query_error(status.as_u16(), &body));
    }
    match format {
        OutputFormat::Table => render_table(&body),
        OutputFormat::Csv | OutputFormat::Json => String::from_utf8(body.to_vec())
            .map_err(|e| ClientError::Decode(format!("the answer is not UTF-8: {e}"))),
    }
}

/// The server's `{"error": ..., "kind": ...}`, or the raw body when it is
/// something else (a proxy's page).
fn query_error(status: u16, body: &[u8]) -> ClientError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    ClientError::Query {
        status,
        kind: field("kind").unwrap_or_else(|| "http".to_string()),
        message: field("error").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    }
}

fn render_table(body: &[u8]) -> Result<String, ClientError> {
    let reader = StreamReader::try_new(body, None)
        .map_err(|e| ClientError::Decode(format!("not an Arrow IPC stream: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<RecordBatch>, _>>()
        .map_err(|e| ClientError::Decode(format!("bad Arrow IPC stream: {e}")))?;
    let table = arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)
        .map_err(|e| ClientError::Decode(e.to_string()))?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let noun = if rows == 1 { "row" } else { "rows" };
    Ok(format!("{table}\n{rows} {noun}\n"))
}
