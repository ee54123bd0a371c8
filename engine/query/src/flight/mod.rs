//! The Arrow Flight SQL endpoint (`[query.flight]`), for the ADBC Flight
//! SQL driver, pyarrow.flight, JDBC's Flight SQL driver and DBeaver: query
//! results travel as Arrow record batches, with no conversion to rows.
//!
//! ```text
//!  client ──gRPC (TLS)──▶ Handshake: Basic user:password ──▶ Bearer token
//!    GetFlightInfo(statement | prepared) ── plan, read-only check ──▶ schema + ticket
//!    DoGet(ticket) ──▶ SqlService::execute_plan (limits, slots) ──▶ Arrow IPC stream
//!    CreatePreparedStatement / DoPut(parameters) ──▶ a handle carrying SQL and parameters
//!    GetCatalogs / GetDbSchemas / GetTables / GetTableTypes / GetSqlInfo
//! ```
//!
//! Every call but the handshake needs credentials when `[query.auth]` has
//! any: a bearer token (configured, or handed out by the handshake) or
//! basic authentication.

mod do_get;
mod frames;
mod handle;
mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use weir_config::FlightConfig;

use crate::auth::Credentials;
use crate::service::SqlService;
use do_get::FlightRouter;
use service::FlightSql;

/// The largest message a client may send (a prepared statement's
/// parameters, a query): 16 MiB.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// A bound Flight SQL endpoint, ready to serve.
pub struct FlightServer {
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    service: FlightSql,
}

impl std::fmt::Debug for FlightServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightServer")
            .field("address", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl FlightServer {
    /// Binds `config.address` and reads the TLS certificate, if any. The
    /// error says what to fix.
    pub async fn bind(
        config: &FlightConfig,
        service: Arc<SqlService>,
        credentials: Arc<Credentials>,
    ) -> Result<Self, String> {
        let tls = match &config.tls {
            Some(tls) => {
                let key = "[query.flight] tls";
                // Read and checked as the Postgres endpoint does, so that a
                // bad file is reported at start, naming the key.
                crate::tls::load(tls, key)?;
                let read = |path: &std::path::Path| {
                    std::fs::read(path)
                        .map_err(|e| format!("`{key}`: cannot read `{}`: {e}", path.display()))
                };
                let identity = Identity::from_pem(read(&tls.cert_file)?, read(&tls.key_file)?);
                Some(ServerTlsConfig::new().identity(identity))
            }
            None => None,
        };
        let listener = TcpListener::bind(config.address).await.map_err(|e| {
            format!(
                "cannot listen for Flight SQL clients on {}: {e}; choose a free \
                 `[query.flight] address`",
                config.address
            )
        })?;
        Ok(FlightServer {
            listener,
            tls,
            service: FlightSql::new(service, credentials),
        })
    }

    /// The address bound (the port chosen, for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = match builder.tls_config(tls) {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::error!(%error, "Flight SQL: the TLS configuration was refused; not serving");
                    return;
                }
            };
        }
        let service = FlightRouter::new(self.service, MAX_REQUEST_BYTES);
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        if let Err(error) = builder
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop)
            .await
        {
            tracing::error!(%error, "the Flight SQL server failed");
        }
    }
}
