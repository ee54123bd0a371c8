//! weir-query's integration tests, one binary: each former test file is a
//! module, and `common` holds the realistic fixtures and the server.
//!
//! * [`client`]: `weir sql`'s client against a real server.
//! * [`flight`]: the Flight SQL endpoint against ADBC and pyarrow.flight.
//! * [`golden`]: golden SQL cases and the documented examples.
//! * [`http`]: `POST /api/v1/sql` and `GET /api/v1/tables` end to end.
//! * [`postgres`]: the Postgres wire endpoint against psql and psycopg.

mod client;
mod common;
mod flight;
mod golden;
mod http;
mod postgres;
