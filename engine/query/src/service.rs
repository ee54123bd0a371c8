//! [`SqlService`]: one fresh, limited, read-only DataFusion session per query.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::RecordBatchStream;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::{QueryError, TimedOut};
use crate::functions;
use crate::memory::QueryPool;

/// Registers tables into a fresh per-query [`SessionContext`] (the store
/// implements it with a closure). It may register functions too.
pub type Register = Arc<dyn Fn(&SessionContext) -> datafusion::error::Result<()> + Send + Sync>;

/// The SQL service: plans and runs read-only queries over the tables that
/// [`Register`] provides, each in its own session with its own memory pool
/// and deadline, and serves them over HTTP ([`SqlService::router`]), the
/// Postgres wire protocol ([`crate::postgres`]) and Arrow Flight SQL
/// ([`crate::flight`]). Every endpoint shares the limits: each query's own
/// memory and time, and across queries a total memory pool and a number of
/// query slots.
pub struct SqlService {
    register: Register,
    timeout: Duration,
    memory_limit: u64,
    total_memory_limit: u64,
    max_concurrent: usize,
    queue_timeout: Duration,
    /// The memory every running query draws on.
    total_memory: Arc<GreedyMemoryPool>,
    /// A permit per running query.
    slots: Arc<Semaphore>,
    /// Shared by every query: the object stores and the file caches. Each
    /// query gets its own memory pool on top.
    runtime: Arc<RuntimeEnv>,
}

impl std::fmt::Debug for SqlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlService")
            .field("timeout", &self.timeout)
            .field("memory_limit", &self.memory_limit)
            .finish_non_exhaustive()
    }
}

impl SqlService {
    /// A service over the tables `register` provides, with the per-query
    /// limits of `config`.
    pub fn new(register: Register, config: &weir_config::QueryConfig) -> Self {
        // Spilling is off: a query over its memory limit fails rather than
        // filling the disk, which is what `[query] memory_limit` promises.
        let disk = DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled);
        let runtime = match RuntimeEnvBuilder::new()
            .with_disk_manager_builder(disk)
            .build_arc()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                // Building a runtime without a disk manager does no I/O, so
                // this does not happen; fall back to the default runtime.
                tracing::warn!(%error, "could not build the query runtime; using DataFusion's default");
                Arc::new(RuntimeEnv::default())
            }
        };
        let total_memory_limit = config.total_memory_limit;
        let max_concurrent = config.max_concurrent.max(1);
        SqlService {
            register,
            timeout: config.timeout,
            memory_limit: config.memory_limit,
            total_memory_limit,
            max_concurrent,
            queue_timeout: config.queue_timeout,
            total_memory: Arc::new(GreedyMemoryPool::new(
                usize::try_from(total_memory_limit).unwrap_or(usize::MAX),
            )),
            slots: Arc::new(Semaphore::new(max_concurrent)),
            runtime,
        }
    }

    /// The per-query timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The per-query memory limit, in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit
    }

    /// A fresh session for one query (or one Postgres connection, which
    /// runs one query at a time): its own memory pool of `memory_limit`
    /// bytes drawing on the total, Weir's functions, and the tables of
    /// [`Register`].
    pub fn context(&self) -> Result<SessionContext, QueryError> {
        self.session(true)
    }

    /// A session as [`SqlService::context`] makes, without DataFusion's
    /// `information_schema` (the Postgres endpoint registers its own, with
    /// Postgres' type names).
    pub fn postgres_context(&self) -> Result<SessionContext, QueryError> {
        self.session(false)
    }

    fn session(&self, information_schema: bool) -> Result<SessionContext, QueryError> {
        let pool = Arc::new(QueryPool::new(
            self.memory_limit,
            self.total_memory.clone(),
            self.total_memory_limit,
        ));
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.runtime)
            .with_memory_pool(pool)
            .build_arc()
            .map_err(|e| QueryError::Internal(e.strip_backtrace()))?;
        let config = SessionConfig::new().with_information_schema(information_schema);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        let ctx = SessionContext::new_with_state(state);
        functions::register(&ctx);
        (self.register)(&ctx).map_err(|e| QueryError::Tables(e.strip_backtrace()))?;
        Ok(ctx)
    }

    /// Plans and starts a read-only query with the limits, in a fresh
    /// session; the stream yields batches.
    ///
    /// The timeout covers waiting for a query slot, planning and the whole
    /// stream: once it passes, the stream ends with an error that
    /// [`QueryError::from_datafusion`] turns into [`QueryError::Timeout`].
    /// Dropping the stream cancels the query and frees its slot.
    pub async fn execute(&self, sql: &str) -> Result<SendableRecordBatchStream, QueryError> {
        let deadline = self.deadline();
        let ctx = self.context()?;
        let classify = |e: DataFusionError| QueryError::from_datafusion(&e, self.memory_limit);
        let planned = tokio::time::timeout_at(deadline, ctx.state().create_logical_plan(sql)).await;
        let plan = match planned {
            Ok(plan) => plan.map_err(classify)?,
            Err(_) => return Err(QueryError::Timeout(self.timeout)),
        };
        self.run(&ctx, plan, deadline).await
    }

    /// Runs `plan`, planned in `ctx` (a session from [`SqlService::context`]),
    /// with the same checks and limits as [`SqlService::execute`]: what the
    /// Postgres and Flight SQL endpoints use once they have planned a
    /// statement themselves (with their parameters bound).
    pub async fn execute_plan(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        self.run(ctx, plan, self.deadline()).await
    }

    /// Refuses anything but a query: what every endpoint answers to DDL,
    /// DML, `COPY` and statements.
    pub fn check_read_only(plan: &LogicalPlan) -> Result<(), QueryError> {
        read_only().verify_plan(plan).map_err(|e| {
            QueryError::Refused(format!(
                "{} (Weir's SQL endpoints are read-only: only queries are allowed)",
                e.strip_backtrace()
            ))
        })
    }

    fn deadline(&self) -> Instant {
        let now = Instant::now();
        // A timeout too large to add (a config of centuries) means no limit.
        now.checked_add(self.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 24 * 3600))
    }

    async fn run(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
        deadline: Instant,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        Self::check_read_only(&plan)?;
        let queue_deadline = Instant::now()
            .checked_add(self.queue_timeout)
            .map_or(deadline, |d| d.min(deadline));
        let waited = tokio::time::timeout_at(queue_deadline, self.slots.clone().acquire_owned());
        let slot = match waited.await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err(QueryError::Internal("the query service is closed".into())),
            Err(_) if queue_deadline < deadline => {
                return Err(QueryError::Overloaded(format!(
                    "all {} query slots (`[query] max_concurrent`) stayed taken for {:?} \
                     (`[query] queue_timeout`): try again when fewer queries run",
                    self.max_concurrent, self.queue_timeout
                )));
            }
            Err(_) => return Err(QueryError::Timeout(self.timeout)),
        };
        let classify = |e: DataFusionError| QueryError::from_datafusion(&e, self.memory_limit);
        let started = async {
            let frame = ctx.execute_logical_plan(plan).await.map_err(classify)?;
            frame.execute_stream().await.map_err(classify)
        };
        let stream = match tokio::time::timeout_at(deadline, started).await {
            Ok(stream) => stream?,
            Err(_) => return Err(QueryError::Timeout(self.timeout)),
        };
        Ok(pump(stream, deadline, self.timeout, slot))
    }
}

/// What a query may do: read. No DDL (`CREATE`, `DROP`), no DML (`INSERT`,
/// `COPY`, `DELETE`), no statements (`SET`, `START TRANSACTION`, `PREPARE`).
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// How many batches a query may run ahead of its client.
const AHEAD: usize = 2;

/// Runs the query's stream on a task of its own, a few batches ahead of
/// the client, so that the deadline is the engine's to enforce: once it
/// passes, the task drops the query (cancelling its work and freeing its
/// memory and slot) whether or not the client is still reading — a client
/// that stopped reading does not hold a query open. The client's stream
/// ends with the timeout error after the batches already produced.
fn pump(
    stream: SendableRecordBatchStream,
    deadline: Instant,
    timeout: Duration,
    slot: OwnedSemaphorePermit,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = timed_out.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let mut stream = stream;
        loop {
            let next = match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(next)) => next,
                Ok(None) => return,
                Err(_) => {
                    flag.store(true, std::sync::atomic::Ordering::Release);
                    return;
                }
            };
            let failed = next.is_err();
            match tokio::time::timeout_at(deadline, tx.send(next)).await {
                Ok(Ok(())) if !failed => {}
                // Failed, or the client went away: the query ends.
                Ok(_) => return,
                // The client did not take the batch before the deadline.
                Err(_) => {
                    flag.store(true, std::sync::atomic::Ordering::Release);
                    return;
                }
            }
        }
    });
    Box::pin(Pumped {
        schema,
        rx: Some(rx),
        timed_out,
        timeout,
    })
}

/// The client's side of [`pump`].
struct Pumped {
    schema: SchemaRef,
    rx: Option<tokio::sync::mpsc::Receiver<datafusion::error::Result<RecordBatch>>>,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
    timeout: Duration,
}

impl Stream for Pumped {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(rx) = this.rx.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                this.rx = None;
                if this.timed_out.load(std::sync::atomic::Ordering::Acquire) {
                    let error = DataFusionError::External(Box::new(TimedOut(this.timeout)));
                    Poll::Ready(Some(Err(error)))
                } else {
                    Poll::Ready(None)
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl RecordBatchStream for Pumped {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn service(timeout: Duration) -> SqlService {
        let config = weir_config::QueryConfig {
            timeout,
            memory_limit: 64 << 20,
            ..Default::default()
        };
        SqlService::new(Arc::new(|_| Ok(())), &config)
    }

    /// A timeout too large to add to the clock means no limit, not a panic.
    #[tokio::test]
    async fn huge_timeouts_do_not_overflow() {
        let batches: Vec<RecordBatch> = service(Duration::MAX)
            .execute("SELECT 1 AS one")
            .await
            .expect("plans")
            .try_collect()
            .await
            .expect("runs");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }

    /// Each query gets its own session: a table one query sees is not left
    /// for the next, and Weir's functions are in every session.
    #[tokio::test]
    async fn sessions_are_fresh_and_have_the_functions() {
        let service = service(Duration::from_secs(30));
        let first = service.context().expect("context");
        first
            .register_batch(
                "scratch",
                RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty())),
            )
            .expect("register");
        let second = service.context().expect("context");
        assert!(!second.table_exist("scratch").expect("lookup"));
        assert!(
            second
                .state()
                .scalar_functions()
                .contains_key("histogram_quantile")
        );
        assert!(
            second
                .state()
                .aggregate_functions()
                .contains_key("sum_buckets")
        );
    }

    /// A client that stops reading does not hold its query: at the
    /// deadline the query is dropped and its slot freed (the next query
    /// runs with `max_concurrent = 1`), and the stalled client, if it reads
    /// again, gets the batches already made and then the timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_is_cancelled_at_the_deadline() {
        let config = weir_config::QueryConfig {
            timeout: Duration::from_millis(400),
            max_concurrent: 1,
            ..Default::default()
        };
        let service = SqlService::new(Arc::new(|_| Ok(())), &config);
        let mut stalled = service
            .execute("SELECT x FROM generate_series(1, 1000000000) AS t(x)")
            .await
            .expect("plans");
        let first = stalled.next().await.expect("a batch").expect("rows");
        assert!(first.num_rows() > 0);
        // The client stops reading; its query still holds the only slot.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let next: Vec<RecordBatch> = service
            .execute("SELECT 1 AS one")
            .await
            .expect("the slot was freed at the deadline")
            .try_collect()
            .await
            .expect("runs");
        assert_eq!(next[0].num_rows(), 1);
        let mut ended = None;
        while let Some(item) = stalled.next().await {
            if let Err(e) = item {
                ended = Some(e);
                break;
            }
        }
        let error = ended.expect("the stalled stream ends with an error");
        assert_eq!(
            QueryError::from_datafusion(&error, 0),
            QueryError::Timeout(Duration::from_millis(400))
        );
    }

    /// Query slots: with one slot taken, a query waits `queue_timeout`
    /// for it, then fails with `overloaded`, naming the setting; once the
    /// slot is free, queries run again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_beyond_the_slots_are_overloaded() {
        let config = weir_config::QueryConfig {
            timeout: Duration::from_secs(30),
            max_concurrent: 1,
            queue_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let service = SqlService::new(Arc::new(|_| Ok(())), &config);
        let endless = "SELECT x FROM generate_series(1, 1000000000) AS t(x)";
        let holder = service.execute(endless).await.expect("runs");
        let started = std::time::Instant::now();
        let c = service.execute("SELECT 1").await.map(drop);
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(holder);
        tokio::time::sleep(Duration::from_millis(100)).await;
        service
            .execute("SELECT 1")
            .await
            .expect("the slot is free once the holder is dropped");
        match c {
            Err(QueryError::Overloaded(message)) => {
                assert!(message.contains("max_concurrent"), "{message}")
            }
            other => panic!("c: {other:?}"),
        }
    }
}
