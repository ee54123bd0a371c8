//! Weir's SQL endpoint over the store.
//!
//! Users query the signal tables (`logs`, `spans`, `metrics`; see
//! `docs/schema.md`) with DataFusion SQL. A query flows:
//!
//! ```text
//!  POST /api/v1/sql ──http──▶ SqlService::execute ──▶ fresh SessionContext
//!      (format, SQL)            read-only check,        (own memory pool,
//!                               deadline                 Weir functions,
//!                                                        Register's tables)
//!  SendableRecordBatchStream ──encode (JSON | CSV | Arrow IPC)──▶ chunked body
//! ```
//!
//! * [`service`]: [`SqlService`], which gives each query its own session
//!   with a memory pool of `[query] memory_limit` bytes (no spilling) and a
//!   deadline of `[query] timeout` covering planning and streaming, and
//!   refuses anything but queries.
//! * [`http`]: the axum routes; results stream batch by batch, never held
//!   whole.
//! * [`encode`]: the result formats and the JSON document's shape.
//! * [`functions`]: `histogram_quantile`, `sum_buckets`, `hex_id`,
//!   `duration_ms` and the code-name helpers, in every session.
//! * [`client`]: what `weir sql` uses to ask a running Weir.
//! * [`error`]: [`QueryError`], split into the user's errors (HTTP 400) and
//!   Weir's (HTTP 500).
//! * [`metrics`]: what the endpoint counts (`weir_sql_*`).
//!
//! The user documentation is `docs/sql.md`.

pub mod auth;
pub mod client;
pub mod encode;
pub mod error;
pub mod flight;
pub mod functions;
pub mod http;
mod memory;
pub mod metrics;
pub mod postgres;
pub mod service;
pub mod tls;

pub use auth::Credentials;
pub use client::{ClientError, OutputFormat};
pub use encode::Format;
pub use error::QueryError;
pub use flight::FlightServer;
pub use postgres::PostgresServer;
pub use service::{Register, SqlService};
