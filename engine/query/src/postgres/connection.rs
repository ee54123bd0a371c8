//! [`Connection`]: one client's handlers. Statements are parsed with
//! `datafusion-pg-catalog`'s Postgres-compatible parser (which rewrites the
//! catalog queries psql and Grafana send) and judged by [`gate`]; queries
//! run through [`SqlService`] with its limits and stream back as rows
//! (text, or binary where the client asks), session statements are answered
//! by `datafusion-postgres`' handlers.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow_pg::datatypes::df::deserialize_parameters_with_server_types;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::{DfSessionService, Parser};
use futures::{Sink, StreamExt, stream};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::types::format::FormatOptions;

use super::gate::{Verdict, judge};
use super::text::Textify;
use crate::error::QueryError;
use crate::service::SqlService;

/// A parsed statement as `datafusion-postgres` keeps it: the SQL, and the
/// statement with its plan.
type Prepared = (String, Option<(Statement, LogicalPlan)>);

/// The handlers of one client connection.
pub(crate) struct Connection {
    simple: Arc<Simple>,
    extended: Arc<Extended>,
    startup: Arc<Startup>,
}

/// What the handlers of a connection share.
struct Session {
    service: Arc<SqlService>,
    ctx: Arc<SessionContext>,
    /// Answers session statements (`SET`, `SHOW`, transactions).
    session: Arc<DfSessionService>,
    parser: Arc<GateParser>,
}

impl Connection {
    /// The handlers for a client of `service`, whose session is `ctx`
    /// (with the `pg_catalog` schema), signing in through `startup`.
    pub(crate) fn new(service: Arc<SqlService>, ctx: SessionContext, startup: Startup) -> Self {
        let ctx = Arc::new(ctx);
        let session = Arc::new(DfSessionService::new(ctx.clone()));
        let parser = Arc::new(GateParser {
            inner: session.query_parser(),
            sql: PostgresCompatibilityParser::new(),
        });
        let shared = Arc::new(Session {
            service,
            ctx,
            session,
            parser,
        });
        Connection {
            simple: Arc::new(Simple(shared.clone())),
            extended: Arc::new(Extended(shared)),
            startup: Arc::new(startup),
        }
    }
}

impl Session {
    /// Plans, checks and starts `statement` (a query) with the service's
    /// limits, encoding rows in `format`.
    async fn query(
        &self,
        plan: LogicalPlan,
        format: &Format,
        options: Arc<FormatOptions>,
    ) -> PgWireResult<Response> {
        let stream = self
            .service
            .execute_plan(&self.ctx, plan)
            .await
            .map_err(|e| user_error(&e))?;
        let tables = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        let textify = Textify::new(&stream.schema(), &tables);
        let fields = Arc::new(arrow_schema_to_pg_fields(
            textify.schema().as_ref(),
            format,
            Some(options),
        )?);
        let memory_limit = self.service.memory_limit();
        let row_fields = fields.clone();
        let rows = stream
            .map(move |batch| {
                let batch = batch.and_then(|b| textify.apply(b).map_err(Into::into));
                let rows: Box<dyn Iterator<Item = PgWireResult<_>> + Send + Sync> = match batch {
                    Ok(batch) => encode_recordbatch(row_fields.clone(), batch),
                    Err(e) => Box::new(std::iter::once(Err(user_error(
                        &QueryError::from_datafusion(&e, memory_limit),
                    )))),
                };
                stream::iter(rows)
            })
            .flatten();
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }

    fn plan_error(&self, e: datafusion::error::DataFusionError) -> PgWireError {
        user_error(&QueryError::from_datafusion(
            &e,
            self.service.memory_limit(),
        ))
    }
}

/// A query error as Postgres reports it: `ERROR`, a SQLSTATE code, the
/// message.
pub(crate) fn user_error(error: &QueryError) -> PgWireError {
    let code = match error {
        QueryError::Syntax(_) => "42601",
        QueryError::Plan(_) => "42P01",
        QueryError::Refused(_) => "42501",
        QueryError::Unsupported(_) => "0A000",
        QueryError::Execution(_) => "22000",
        QueryError::ResourcesExhausted { .. } => "53200",
        QueryError::Timeout(_) => "57014",
        QueryError::Overloaded(_) => "53000",
        QueryError::Unauthorized(_) => "28P01",
        QueryError::BadRequest(_) | QueryError::NotAcceptable(_) => "08P01",
        QueryError::Tables(_) | QueryError::Internal(_) => "XX000",
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        error.to_string(),
    )))
}

/// Parses `sql` (already through [`super::rewrite`]) as Postgres does
/// (with the catalog rewrites). SQL only
/// DataFusion's own dialect reads (`CREATE EXTERNAL TABLE`, `COPY ... TO`)
/// is recognised too, to be refused as a statement rather than reported
/// as a syntax error.
fn parse(parser: &PostgresCompatibilityParser, sql: &str) -> PgWireResult<Vec<Statement>> {
    parser.parse(sql).map_err(|error| {
        let dialect_only = datafusion::sql::parser::DFParser::parse_sql(sql)
            .ok()
            .and_then(|statements| {
                statements
                    .into_iter()
                    .find(|s| !matches!(s, DfStatement::Statement(_)))
            });
        match dialect_only {
            Some(statement) => refused(super::gate::read_only_refusal(&statement.to_string(), 3)),
            None => syntax(error),
        }
    })
}

fn refused(reason: String) -> PgWireError {
    user_error(&QueryError::Refused(reason))
}

fn syntax(e: impl std::fmt::Display) -> PgWireError {
    user_error(&QueryError::Syntax(e.to_string()))
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.simple.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}

/// The simple query protocol.
struct Simple(Arc<Session>);

#[async_trait]
impl SimpleQueryHandler for Simple {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let this = &self.0;
        let query = super::rewrite::rewrite(query);
        let statements = parse(&this.parser.sql, &query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            match judge(&statement) {
                Verdict::Refused(reason) => return Err(refused(reason)),
                Verdict::Session => {
                    let mut answered = SimpleQueryHandler::do_query(
                        &*this.session,
                        client,
                        &statement.to_string(),
                    )
                    .await?;
                    responses.append(&mut answered);
                }
                Verdict::Query => {
                    let plan = this
                        .ctx
                        .state()
                        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
                        .await
                        .map_err(|e| this.plan_error(e))?;
                    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
                    responses.push(this.query(plan, &Format::UnifiedText, options).await?);
                }
            }
        }
        Ok(responses)
    }
}

/// The extended query protocol (parse, bind, execute), with parameters and
/// binary results.
struct Extended(Arc<Session>);

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = Prepared;
    type QueryParser = GateParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.0.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let this = &self.0;
        let (_, Some((statement, plan))) = &portal.statement.statement else {
            return Ok(Response::EmptyQuery);
        };
        match judge(statement) {
            Verdict::Refused(reason) => Err(refused(reason)),
            Verdict::Session => {
                ExtendedQueryHandler::do_query(&*this.session, client, portal, max_rows).await
            }
            Verdict::Query => {
                let wire_types = this
                    .parser
                    .inner
                    .get_parameter_types(&portal.statement.statement)?;
                let inferred = parameter_types(plan)?;
                let inferred: Vec<Option<&DataType>> =
                    inferred.iter().map(Option::as_ref).collect();
                let wire: Vec<Option<&Type>> = wire_types.iter().map(Some).collect();
                let params = deserialize_parameters_with_server_types(portal, &inferred, &wire)?;
                let plan = plan
                    .clone()
                    .replace_params_with_values(&params)
                    .map_err(|e| this.plan_error(e))?;
                let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
                this.query(plan, &portal.result_column_format, options)
                    .await
            }
        }
    }
}

/// The plan's parameters' types in order (`$1`, `$2`, ...), as DataFusion
/// infers them.
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| syntax(e.strip_backtrace()))?;
    let mut numbered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, datatype)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, datatype))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    Ok(numbered.into_iter().map(|(_, t)| t).collect())
}

/// Parses for the extended protocol: refuses what [`gate`] refuses before
/// planning it, then plans as `datafusion-postgres` does.
pub(crate) struct GateParser {
    inner: Arc<Parser>,
    sql: PostgresCompatibilityParser,
}

#[async_trait]
impl QueryParser for GateParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let rewritten = super::rewrite::rewrite(sql);
        let sql = rewritten.as_ref();
        let statements = parse(&self.sql, sql)?;
        if statements.len() > 1 {
            return Err(syntax(
                "a prepared statement holds one statement; send the others separately",
            ));
        }
        if let Some(statement) = statements.first()
            && let Verdict::Refused(reason) = judge(statement)
        {
            return Err(refused(reason));
        }
        self.inner.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(statement, column_format)
    }
}

/// How a client signs in: openly, or with SCRAM-SHA-256 against
/// `[query.auth] users`.
pub(crate) enum Startup {
    /// No credentials are configured.
    Open(Open),
    /// SCRAM-SHA-256.
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
}

/// The handler for a server without credentials.
pub(crate) struct Open;

impl pgwire::api::auth::noop::NoopStartupHandler for Open {}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Open(open) => open.on_startup(client, message).await,
            Startup::Scram(scram) => scram.on_startup(client, message).await,
        }
    }
}
