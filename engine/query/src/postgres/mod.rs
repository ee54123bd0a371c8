//! The Postgres wire protocol endpoint (`[query.postgres]`), for psql,
//! Grafana's PostgreSQL data source, psycopg, JDBC and anything on libpq.
//!
//! ```text
//!  client ──TCP (TLS)──▶ PostgresServer::serve ── a task per connection ──▶
//!    startup: open, or SCRAM-SHA-256 against [query.auth] users
//!    session: SqlService::context() + pg_catalog + version()/current_setting()
//!    statements: gate (queries / session statements / refused)
//!      query ──▶ SqlService::execute_plan (limits, slots) ──▶ rows, streamed
//! ```
//!
//! The protocol itself is `pgwire`; `datafusion-pg-catalog` provides the
//! `pg_catalog` tables and the query rewrites that let psql's `\d` and
//! Grafana's schema look-ups plan, and `datafusion-postgres` the answers to
//! `SET` / `SHOW` / transactions. Each connection has its own session (its
//! own memory pool), which runs one query at a time.

mod connection;
pub mod functions;
mod gate;
mod information_schema;
mod rewrite;
mod text;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, ScramAuth, gen_salted_password};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password};
use pgwire::error::PgWireResult;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use weir_config::PostgresConfig;

use crate::auth::Credentials;
use crate::service::SqlService;
use crate::tls;
use connection::{Connection, Open, Startup};

/// A bound Postgres endpoint, ready to serve.
pub struct PostgresServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: Arc<SqlService>,
    credentials: Arc<Credentials>,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("address", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresServer {
    /// Binds `config.address` and loads the TLS certificate, if any. The
    /// error says what to fix.
    pub async fn bind(
        config: &PostgresConfig,
        service: Arc<SqlService>,
        credentials: Arc<Credentials>,
    ) -> Result<Self, String> {
        let tls = match &config.tls {
            Some(tls) => Some(tls::acceptor(tls, "[query.postgres] tls", &[])?),
            None => None,
        };
        let listener = TcpListener::bind(config.address).await.map_err(|e| {
            format!(
                "cannot listen for Postgres clients on {}: {e}; choose a free \
                 `[query.postgres] address`",
                config.address
            )
        })?;
        Ok(PostgresServer {
            listener,
            tls,
            service,
            credentials,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            max_connections: config.max_connections,
        })
    }

    /// The address bound (the port chosen, for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts clients until `stop` resolves; each connection runs on its
    /// own task (and ends with the process).
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let accepted = tokio::select! {
                () = &mut stop => return,
                accepted = self.listener.accept() => accepted,
            };
            let (socket, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a Postgres client failed");
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max = self.max_connections, "Postgres client refused: `[query.postgres] max_connections` are open");
                drop(socket);
                continue;
            };
            let handlers = match self.handlers().await {
                Ok(handlers) => handlers,
                Err(error) => {
                    tracing::warn!(%peer, %error, "cannot open a session for a Postgres client");
                    continue;
                }
            };
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(error) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                    tracing::debug!(%peer, %error, "Postgres connection ended with an error");
                }
            });
        }
    }

    /// The handlers of a new connection: its session, and how it signs in.
    async fn handlers(&self) -> Result<impl PgWireServerHandlers + use<>, String> {
        let ctx = self.service.postgres_context().map_err(|e| e.to_string())?;
        information_schema::register(&ctx)
            .await
            .map_err(|e| format!("cannot set up information_schema: {e}"))?;
        setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider)
            .map_err(|e| format!("cannot set up pg_catalog: {e}"))?;
        functions::register(&ctx);
        let startup = if self.credentials.required() {
            let source = Arc::new(Passwords(self.credentials.clone()));
            let provider = Arc::new(parameters());
            Startup::Scram(Box::new(
                SASLAuthStartupHandler::new(provider).with_scram(ScramAuth::new(source)),
            ))
        } else {
            Startup::Open(Open)
        };
        Ok(Connection::new(self.service.clone(), ctx, startup))
    }
}

/// What the server tells a client on connecting.
fn parameters() -> DefaultServerParameterProvider {
    let mut provider = DefaultServerParameterProvider::default();
    provider.server_version = functions::SERVER_VERSION.to_string();
    provider.is_superuser = false;
    provider.default_transaction_read_only = true;
    provider
}

/// The users' passwords, salted for SCRAM as Postgres stores them.
struct Passwords(Arc<Credentials>);

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

#[async_trait::async_trait]
impl AuthSource for Passwords {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let salt: [u8; 16] = rand::random();
        // An unknown user gets a random password, so that the exchange
        // fails the same way as a wrong password does.
        let password = login
            .user()
            .and_then(|user| self.0.password(user))
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:x}", rand::random::<u128>()));
        let salted = gen_salted_password(&password, &salt, SCRAM_ITERATIONS);
        Ok(Password::new(Some(salt.to_vec()), salted))
    }
}
