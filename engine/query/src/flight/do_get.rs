//! The Flight service as served: `DoGet` of a query (a statement or a
//! prepared statement) is answered by [`DoGetBody`], from the result's own
//! buffers; every other call, and `DoGet` of a catalog listing, goes to the
//! arrow-flight server over [`FlightSql`].

use std::convert::Infallible;
use std::task::{Context, Poll};

use arrow_flight::Ticket;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::{Any, CommandPreparedStatementQuery, TicketStatementQuery};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;

use super::frames::DoGetBody;
use super::handle::Prepared;
use super::service::{FlightSql, decode_handle};

const DO_GET: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// Routes the calls of the Flight service.
#[derive(Clone)]
pub(crate) struct FlightRouter {
    sql: FlightSql,
    server: FlightServiceServer<FlightSql>,
    max_request: usize,
}

impl FlightRouter {
    pub(crate) fn new(sql: FlightSql, max_request: usize) -> Self {
        let server = FlightServiceServer::new(sql.clone()).max_decoding_message_size(max_request);
        FlightRouter {
            sql,
            server,
            max_request,
        }
    }
}

impl NamedService for FlightRouter {
    const NAME: &'static str = <FlightServiceServer<FlightSql> as NamedService>::NAME;
}

impl tower::Service<http::Request<Body>> for FlightRouter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut server = self.server.clone();
        if request.uri().path() != DO_GET {
            return Box::pin(async move { server.call(request).await });
        }
        let sql = self.sql.clone();
        let max_request = self.max_request;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, max_request).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let status = Status::invalid_argument(format!(
                        "cannot read the DoGet request (at most {max_request} bytes): {e}"
                    ));
                    return Ok(status.into_http());
                }
            };
            let Some(prepared) = query_ticket(&bytes) else {
                // Not a query: arrow-flight's server reads it again.
                let request = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
                return server.call(request).await;
            };
            let presented = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let answer = async {
                sql.authorize_header(presented)?;
                let prepared = prepared?;
                let (schema, batches) = sql.execute(&prepared).await?;
                DoGetBody::new(&schema, batches)
            };
            Ok(match answer.await {
                Ok(body) => {
                    let mut response = http::Response::new(Body::new(body));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/grpc"),
                    );
                    response
                }
                Err(status) => status.into_http(),
            })
        })
    }
}

/// The query a `DoGet` request's ticket runs, if it is a statement or a
/// prepared statement (an unreadable handle is an error of the call);
/// `None` for any other ticket, or a request this cannot read.
#[allow(clippy::result_large_err)]
fn query_ticket(request: &Bytes) -> Option<Result<Prepared, Status>> {
    // One uncompressed gRPC message: flag 0, its length, the Ticket.
    let (&[0, a, b, c, d], message) = request.split_first_chunk::<5>()? else {
        return None;
    };
    if usize::try_from(u32::from_be_bytes([a, b, c, d])).ok()? != message.len() {
        return None;
    }
    let ticket = Ticket::decode(message).ok()?;
    let any = Any::decode(ticket.ticket).ok()?;
    let handle = if let Ok(Some(statement)) = any.unpack::<TicketStatementQuery>() {
        statement.statement_handle
    } else if let Ok(Some(prepared)) = any.unpack::<CommandPreparedStatementQuery>() {
        prepared.prepared_statement_handle
    } else {
        return None;
    };
    Some(decode_handle(&handle))
}
