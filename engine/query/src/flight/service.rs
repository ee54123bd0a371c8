//! [`FlightSql`]: the Flight SQL calls, over [`SqlService`].

use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::frames::Batches;
use super::handle::Prepared;
use crate::auth::Credentials;
use crate::error::QueryError;
use crate::service::SqlService;

/// The catalog and schema Weir's tables are in.
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "Weir");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder
        .build()
        .unwrap_or_else(|_| SqlInfoDataBuilder::new().build().expect("an empty SqlInfo"))
});

/// The Flight SQL service.
#[derive(Clone)]
pub(crate) struct FlightSql {
    service: Arc<SqlService>,
    credentials: Arc<Credentials>,
}

type DoGetStream = <FlightSql as FlightService>::DoGetStream;

impl FlightSql {
    pub(crate) fn new(service: Arc<SqlService>, credentials: Arc<Credentials>) -> Self {
        FlightSql {
            service,
            credentials,
        }
    }

    /// Refuses a call without valid credentials.
    #[allow(clippy::result_large_err)]
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.authorize_header(presented)
    }

    /// Refuses an `authorization` header that is not valid credentials.
    #[allow(clippy::result_large_err)]
    pub(crate) fn authorize_header(&self, presented: Option<&str>) -> Result<(), Status> {
        if self.credentials.admits_header(presented) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "Weir's Flight SQL endpoint needs credentials: sign in with a `[query.auth] \
                 users` entry (basic authentication) or send `authorization: Bearer TOKEN`",
            ))
        }
    }

    fn limit(&self) -> u64 {
        self.service.memory_limit()
    }

    /// Plans `prepared` in a fresh session: the read-only check, then the
    /// parameters bound.
    async fn plan(&self, prepared: &Prepared) -> Result<(SessionContext, LogicalPlan), Status> {
        let ctx = self.service.context().map_err(|e| status(&e))?;
        let plan = ctx
            .state()
            .create_logical_plan(&prepared.sql)
            .await
            .map_err(|e| status(&QueryError::from_datafusion(&e, self.limit())))?;
        SqlService::check_read_only(&plan).map_err(|e| status(&e))?;
        let plan = match &prepared.parameters {
            Some(parameters) => plan
                .replace_params_with_values(&parameter_values(parameters)?)
                .map_err(|e| status(&QueryError::from_datafusion(&e, self.limit())))?,
            None => plan,
        };
        Ok((ctx, plan))
    }

    /// The FlightInfo of a query: its schema, and a ticket to fetch it.
    async fn info(
        &self,
        prepared: &Prepared,
        ticket: Ticket,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let (_, plan) = self.plan(prepared).await?;
        let schema = plan.schema().as_arrow().clone();
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    /// Runs `prepared`: the result's schema and its batches (a query's
    /// `DoGet`, answered by [`super::do_get::FlightRouter`]).
    pub(crate) async fn execute(
        &self,
        prepared: &Prepared,
    ) -> Result<(SchemaRef, Batches), Status> {
        let (ctx, plan) = self.plan(prepared).await?;
        let stream = self
            .service
            .execute_plan(&ctx, plan)
            .await
            .map_err(|e| status(&e))?;
        let limit = self.limit();
        let schema = stream.schema();
        let batches = stream.map_err(move |e| status(&QueryError::from_datafusion(&e, limit)));
        Ok((schema, Box::pin(batches)))
    }

    /// The FlightInfo of a catalog call answered by `batch`'s schema.
    fn metadata_info(
        command: impl ProstMessageExt,
        schema: &arrow::datatypes::Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(command.as_any().encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// Weir's tables and their schemas.
    async fn tables(&self) -> Result<Vec<(String, arrow::datatypes::SchemaRef)>, Status> {
        let ctx = self.service.context().map_err(|e| status(&e))?;
        let schema = ctx
            .catalog(CATALOG)
            .and_then(|c| c.schema(SCHEMA))
            .ok_or_else(|| Status::internal("Weir's tables are not registered"))?;
        let mut names = schema.table_names();
        names.sort();
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            if let Some(table) = schema
                .table(&name)
                .await
                .map_err(|e| Status::internal(e.to_string()))?
            {
                tables.push((name, table.schema()));
            }
        }
        Ok(tables)
    }
}

/// One batch as a DoGet stream.
fn one_batch(
    schema: arrow::datatypes::SchemaRef,
    batch: Result<RecordBatch, FlightError>,
) -> Response<DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { batch }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// The first row of `parameters` as positional values (`$1`, `$2`, ...).
#[allow(clippy::result_large_err)]
fn parameter_values(parameters: &RecordBatch) -> Result<ParamValues, Status> {
    if parameters.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "bind one row of parameters to a query, not {}",
            parameters.num_rows()
        )));
    }
    let values = parameters
        .columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, 0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Status::invalid_argument(format!("unreadable parameter: {e}")))?;
    Ok(ParamValues::List(
        values.into_iter().map(Into::into).collect(),
    ))
}

/// A query error as a gRPC status.
pub(crate) fn status(error: &QueryError) -> Status {
    let message = error.to_string();
    match error {
        QueryError::BadRequest(_)
        | QueryError::NotAcceptable(_)
        | QueryError::Syntax(_)
        | QueryError::Plan(_)
        | QueryError::Execution(_) => Status::invalid_argument(message),
        QueryError::Refused(_) => Status::permission_denied(message),
        QueryError::Unsupported(_) => Status::unimplemented(message),
        QueryError::ResourcesExhausted { .. } | QueryError::Overloaded(_) => {
            Status::resource_exhausted(message)
        }
        QueryError::Timeout(_) => Status::deadline_exceeded(message),
        QueryError::Unauthorized(_) => Status::unauthenticated(message),
        QueryError::Tables(_) | QueryError::Internal(_) => Status::internal(message),
    }
}

fn read_only() -> Status {
    Status::permission_denied(
        "Weir's SQL endpoints are read-only: updates and ingestion are refused; send telemetry \
         over OTLP or Kafka instead",
    )
}

/// What the `DoGet` of a query would answer if it reached arrow-flight's
/// server: [`super::do_get::FlightRouter`] answers every request with such
/// a ticket before, and any other request fails to decode before.
fn answered_by_the_router() -> Status {
    Status::internal("a query's DoGet is answered by Weir's Flight router, which this one missed")
}

#[allow(clippy::result_large_err)]
pub(crate) fn decode_handle(handle: &[u8]) -> Result<Prepared, Status> {
    Prepared::decode(handle).map_err(Status::invalid_argument)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        self.authorize(&request)?;
        let token = self.credentials.new_session();
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| Status::internal(format!("cannot write the token: {e}")))?;
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(answer)])));
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let prepared = Prepared {
            sql: query.query,
            parameters: None,
        };
        let handle = prepared.encode().map_err(Status::invalid_argument)?;
        let ticket = Ticket::new(
            TicketStatementQuery {
                statement_handle: handle,
            }
            .as_any()
            .encode_to_vec(),
        );
        self.info(&prepared, ticket, request.into_inner()).await
    }

    async fn do_get_statement(
        &self,
        _: TicketStatementQuery,
        _: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Err(answered_by_the_router())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let prepared = decode_handle(&query.prepared_statement_handle)?;
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        self.info(&prepared, ticket, request.into_inner()).await
    }

    async fn do_get_prepared_statement(
        &self,
        _: CommandPreparedStatementQuery,
        _: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Err(answered_by_the_router())
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.authorize(&request)?;
        let prepared = Prepared {
            sql: query.query,
            parameters: None,
        };
        let (_, plan) = self.plan(&prepared).await?;
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let schema_bytes = |schema: &arrow::datatypes::Schema| -> Result<_, Status> {
            let IpcMessage(bytes) = SchemaAsIpc::new(schema, &options)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
            Ok(bytes)
        };
        let dataset_schema = schema_bytes(plan.schema().as_arrow())?;
        let parameters = parameter_schema(&plan)?;
        let parameter_schema = if parameters.fields().is_empty() {
            Default::default()
        } else {
            schema_bytes(&parameters)?
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: prepared.encode().map_err(Status::invalid_argument)?,
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.authorize(&request)?;
        let mut prepared = decode_handle(&query.prepared_statement_handle)?;
        let stream = request.into_inner().map_err(FlightError::from);
        let mut batches =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream);
        let mut parameters = None;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| Status::invalid_argument(e.to_string()))?;
            if batch.num_rows() > 0 {
                if parameters.is_some() {
                    return Err(Status::invalid_argument(
                        "bind one row of parameters to a query",
                    ));
                }
                parameters = Some(batch);
            }
        }
        if let Some(parameters) = &parameters {
            parameter_values(parameters)?;
        }
        prepared.parameters = parameters;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(prepared.encode().map_err(Status::invalid_argument)?),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Nothing is held per prepared statement.
        self.authorize(&request)
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.authorize(&request)?;
        Err(read_only())
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.authorize(&request)?;
        Err(read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.authorize(&request)?;
        Err(read_only())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        Self::metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authorize(&request)?;
        let builder = query.into_builder(&SQL_INFO);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.into_builder().schema();
        Self::metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authorize(&request)?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.clone().into_builder().schema();
        Self::metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authorize(&request)?;
        let mut builder = query.into_builder();
        builder.append(CATALOG, SCHEMA);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.clone().into_builder().schema();
        Self::metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authorize(&request)?;
        let tables = self.tables().await?;
        let mut builder = query.into_builder();
        for (name, schema) in &tables {
            builder
                .append(CATALOG, SCHEMA, name, "TABLE", schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request)?;
        let schema = query.into_builder().schema();
        Self::metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authorize(&request)?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The parameters of `plan` as a schema of fields `$1`, `$2`, ... (typed
/// where DataFusion infers a type, else text).
#[allow(clippy::result_large_err)]
fn parameter_schema(plan: &LogicalPlan) -> Result<arrow::datatypes::Schema, Status> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| Status::invalid_argument(e.strip_backtrace()))?;
    let mut numbered: Vec<(usize, String, arrow::datatypes::DataType)> = types
        .into_iter()
        .filter_map(|(name, datatype)| {
            let n = name.trim_start_matches('$').parse::<usize>().ok()?;
            Some((
                n,
                name,
                datatype.unwrap_or(arrow::datatypes::DataType::Utf8),
            ))
        })
        .collect();
    numbered.sort_by_key(|(n, _, _)| *n);
    Ok(arrow::datatypes::Schema::new(
        numbered
            .into_iter()
            .map(|(_, name, datatype)| arrow::datatypes::Field::new(name, datatype, true))
            .collect::<Vec<_>>(),
    ))
}
