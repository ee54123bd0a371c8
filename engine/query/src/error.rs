//! The errors of a query, split by blame: the user's SQL or limits (HTTP 400)
//! or Weir itself (HTTP 500).

use std::time::Duration;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use http::StatusCode;

/// Why a query failed.
///
/// Every variant but [`QueryError::Internal`] and [`QueryError::Tables`] is
/// the user's to fix (answered with HTTP 400); the message is DataFusion's
/// own, with a hint where Weir knows one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The request itself is malformed: an empty query, a body that is not
    /// UTF-8 or not the expected JSON, an unknown `format`.
    #[error("{0}")]
    BadRequest(String),
    /// None of the formats the client accepts can be produced.
    #[error("{0}")]
    NotAcceptable(String),
    /// The SQL does not parse.
    #[error("{0}")]
    Syntax(String),
    /// The SQL parses but cannot be planned: an unknown table, column or
    /// function, a type mismatch.
    #[error("{0}")]
    Plan(String),
    /// The statement would change something (DDL, DML, `COPY`, `SET`, ...):
    /// the SQL endpoint is read-only.
    #[error("{0}")]
    Refused(String),
    /// DataFusion does not implement this SQL feature.
    #[error("{0}")]
    Unsupported(String),
    /// The query failed while running because of the data or the SQL: a
    /// cast that does not apply to a value, a division by zero.
    #[error("{0}")]
    Execution(String),
    /// The query needed more memory than `[query] memory_limit` allows.
    #[error("{message} (the per-query memory limit is {}, `[query] memory_limit`: narrow the time range, filter earlier, or raise the limit)", bytes(*.limit))]
    ResourcesExhausted {
        /// DataFusion's message, naming the operator that asked for memory.
        message: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The query ran longer than `[query] timeout` and was cancelled.
    #[error("query cancelled: it ran longer than the {} timeout (`[query] timeout`): narrow the time range, add a LIMIT, or raise the timeout", humanize(*.0))]
    Timeout(Duration),
    /// Weir is busy: every query slot (`[query] max_concurrent`) stayed
    /// taken until the query's deadline, or the queries running together
    /// hold all of `[query] total_memory_limit`. Worth trying again later
    /// (HTTP 503).
    #[error("{0}")]
    Overloaded(String),
    /// The credentials are missing or wrong (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The tables could not be registered for the query (the store failed):
    /// Weir's side, not the query's.
    #[error("could not open the tables for this query: {0}")]
    Tables(String),
    /// Weir or DataFusion failed on its own: a bug, or I/O on the store.
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// The stable, machine-readable name of the error's kind, sent as
    /// `"kind"` next to the message: `bad_request`, `not_acceptable`,
    /// `syntax`, `plan`, `refused`, `unsupported`, `execution`,
    /// `resources_exhausted`, `timeout`, `overloaded`, `unauthorized`,
    /// `tables`, `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::BadRequest(_) => "bad_request",
            QueryError::NotAcceptable(_) => "not_acceptable",
            QueryError::Syntax(_) => "syntax",
            QueryError::Plan(_) => "plan",
            QueryError::Refused(_) => "refused",
            QueryError::Unsupported(_) => "unsupported",
            QueryError::Execution(_) => "execution",
            QueryError::ResourcesExhausted { .. } => "resources_exhausted",
            QueryError::Timeout(_) => "timeout",
            QueryError::Overloaded(_) => "overloaded",
            QueryError::Unauthorized(_) => "unauthorized",
            QueryError::Tables(_) => "tables",
            QueryError::Internal(_) => "internal",
        }
    }

    /// Whether the user can fix it (their SQL, their limits), as opposed to
    /// a failure on Weir's side.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, QueryError::Tables(_) | QueryError::Internal(_))
    }

    /// The HTTP status the error is answered with: 400 for the user's
    /// errors, 406 when no acceptable format exists, 500 for Weir's.
    pub fn status(&self) -> StatusCode {
        match self {
            QueryError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            QueryError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            e if e.is_user_error() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON error document: `{"error": "<message>", "kind": "<kind>"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.to_string(), "kind": self.kind() })
    }

    /// Classifies a DataFusion error raised while planning or running a
    /// query; `memory_limit` is quoted in the resources message.
    pub fn from_datafusion(error: &DataFusionError, memory_limit: u64) -> QueryError {
        let message = error.strip_backtrace();
        let root = root(error);
        match root {
            DataFusionError::SQL(..) => QueryError::Syntax(message),
            DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::Configuration(_) => QueryError::Plan(message),
            DataFusionError::NotImplemented(_) => QueryError::Unsupported(message),
            DataFusionError::Execution(_) => QueryError::Execution(message),
            DataFusionError::ResourcesExhausted(inner) if inner.contains(TOTAL_MEMORY_KEY) => {
                QueryError::Overloaded(message)
            }
            DataFusionError::ResourcesExhausted(_) => QueryError::ResourcesExhausted {
                message,
                limit: memory_limit,
            },
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                ArrowError::DivideByZero
                | ArrowError::CastError(_)
                | ArrowError::ComputeError(_)
                | ArrowError::InvalidArgumentError(_)
                | ArrowError::ParseError(_)
                | ArrowError::ArithmeticOverflow(_)
                | ArrowError::NotYetImplemented(_) => QueryError::Execution(message),
                _ => QueryError::Internal(message),
            },
            DataFusionError::External(inner) => match inner.downcast_ref::<TimedOut>() {
                Some(TimedOut(limit)) => QueryError::Timeout(*limit),
                None => QueryError::Internal(message),
            },
            _ => QueryError::Internal(message),
        }
    }
}

/// What the error of the memory shared by all queries names, to tell it
/// from one query's own limit.
pub(crate) const TOTAL_MEMORY_KEY: &str = "`[query] total_memory_limit`";

/// The deepest DataFusion error of a chain: wrappers (context, diagnostics,
/// shared, collections) and errors carried through Arrow are looked through.
fn root(error: &DataFusionError) -> &DataFusionError {
    let mut current = error;
    loop {
        let next = match current {
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                inner.as_ref()
            }
            DataFusionError::Shared(inner) => inner.as_ref(),
            DataFusionError::Collection(errors) => match errors.first() {
                Some(first) => first,
                None => return current,
            },
            other => {
                let deeper = other.find_root();
                if std::ptr::eq(deeper, other) {
                    return other;
                }
                deeper
            }
        };
        current = next;
    }
}

/// The error a query's stream ends with when it outlives the timeout;
/// carried inside [`DataFusionError::External`] so that it travels through
/// DataFusion's `Result`s, and turned into [`QueryError::Timeout`].
#[derive(Debug, thiserror::Error)]
#[error("query cancelled: it ran longer than the {} timeout (`[query] timeout`)", humanize(*.0))]
pub(crate) struct TimedOut(pub(crate) Duration);

/// `4 MiB`, `1 GiB`, `1000 bytes`: a size as users write it in the config.
pub(crate) fn bytes(size: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if size >= unit && size.is_multiple_of(unit) {
            return format!("{} {name}", size / unit);
        }
    }
    format!("{size} bytes")
}

/// `1.5s`, `30s`, `2m`: a duration as users write it in the config.
pub(crate) fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(60_000) && millis > 0 {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{}ms", millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors wrapped in context keep the kind of the error inside.
    #[test]
    fn wrapped_errors_keep_their_kind() {
        let inner = DataFusionError::ResourcesExhausted("no memory".into());
        let wrapped = inner.context("while sorting");
        let err = QueryError::from_datafusion(&wrapped, 1024);
        assert_eq!(err.kind(), "resources_exhausted");
        assert!(err.to_string().contains("no memory"), "{err}");
        assert!(err.to_string().contains("limit is 1 KiB"), "{err}");
    }

    /// A timeout raised inside a stream is recognised as a timeout.
    #[test]
    fn timeouts_are_recognised() {
        let err = DataFusionError::External(Box::new(TimedOut(Duration::from_millis(1500))));
        let err = QueryError::from_datafusion(&err, 0);
        assert_eq!(err, QueryError::Timeout(Duration::from_millis(1500)));
        assert!(err.to_string().contains("1500ms timeout"), "{err}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    /// Internal errors are Weir's: HTTP 500.
    #[test]
    fn internal_errors_are_500() {
        let err = QueryError::from_datafusion(&DataFusionError::Internal("bug".into()), 0);
        assert_eq!(err.kind(), "internal");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let json = err.to_json();
        assert_eq!(json["kind"], "internal");
    }

    /// Durations and sizes print the way the config spells them.
    #[test]
    fn durations_print_like_the_config() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_secs(120)), "2m");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(bytes(4 << 20), "4 MiB");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(1000), "1000 bytes");
    }
}
