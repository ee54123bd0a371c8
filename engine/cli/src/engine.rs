//! Starting and stopping a whole Weir: components, topology, API server.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tracing::info;
use weir_config::{BuildContext, Component, Plan, Shared};
use weir_core::{ComponentError, Shutdown};
use weir_query::{Credentials, FlightServer, PostgresServer, SqlService};
use weir_runtime::{ExitReport, Node, Running, Topology};
use weir_store::Store;

use crate::reload::Reloader;
use crate::telemetry::metrics_handle;

/// Addresses components listen on, by `component/what` (e.g. `otlp/grpc`),
/// known once they are bound.
pub type Listeners = BTreeMap<String, SocketAddr>;

/// Starts Weir from a plan.
pub struct Engine;

/// A running Weir.
pub struct Started {
    running: Running,
    reloader: Reloader,
    /// Where each listening component is bound (`otlp/grpc`, `otlp/http`).
    pub listeners: Listeners,
    /// Where the API server (`/metrics`, `/healthz`, `/readyz`) listens.
    pub api_addr: Option<SocketAddr>,
    /// The embedded store, when the pipeline has a `store` sink.
    pub store: Option<Arc<Store>>,
    api_stop: Shutdown,
    /// The API server and the SQL protocol servers, stopped by `api_stop`.
    api: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl Engine {
    /// Builds every component of `plan` (binding listeners), wires them and
    /// starts them, then the API server.
    pub async fn start(plan: &Plan) -> anyhow::Result<Started> {
        let metrics = metrics_handle();
        // Bound first, so that the links in alerts name the address really
        // bound (a port 0 becomes the port chosen).
        let api_listener = if plan.api.enabled {
            let listener = tokio::net::TcpListener::bind(plan.api.address)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen for the API on {}: choose a free `[api] address`",
                        plan.api.address
                    )
                })?;
            Some(listener)
        } else {
            None
        };
        let api_tls = match &plan.api.tls {
            Some(tls) if plan.api.enabled => Some(
                weir_query::tls::acceptor(tls, "[api] tls", &[b"h2", b"http/1.1"])
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            _ => None,
        };
        let external_url = match (&plan.api.external_url, &api_listener) {
            (Some(url), _) => url.clone(),
            (None, Some(listener)) => {
                format!("{}://{}", plan.api.scheme(), listener.local_addr()?)
            }
            (None, None) => plan.api.external_url(),
        };
        let mut shared = Shared {
            state_dir: Some(plan.store.path.clone()),
            external_url,
            ..Shared::default()
        };
        let mut nodes = Vec::with_capacity(plan.components.len());
        for component in &plan.components {
            nodes.push(build(plan, component, &mut shared).await?);
        }
        let store = shared.resources.get::<Store>();
        let Shared {
            mut listeners,
            api_routes,
            hooks,
            ..
        } = shared;
        let api_stop = Shutdown::new();
        let mut background = Vec::new();
        let sql = match &store {
            Some(store) => {
                let http = match &api_listener {
                    Some(listener) => Some(listener.local_addr()?),
                    None => None,
                };
                let problems = plan.query.exposure_problems(http);
                if let Some(first) = problems.first() {
                    anyhow::bail!("{first}");
                }
                let credentials = Credentials::from_config(&plan.query.auth)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let store = store.clone();
                let service = Arc::new(SqlService::new(
                    Arc::new(move |ctx| store.register(ctx)),
                    &plan.query,
                ));
                if let Some(config) = &plan.query.postgres {
                    let server = PostgresServer::bind(config, service.clone(), credentials.clone())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    listeners.insert("query/postgres".to_string(), server.local_addr()?);
                    let stop = api_stop.clone();
                    background.push(tokio::spawn(server.serve(async move { stop.wait().await })));
                }
                if let Some(config) = &plan.query.flight {
                    let server = FlightServer::bind(config, service.clone(), credentials.clone())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    listeners.insert("query/flight".to_string(), server.local_addr()?);
                    let stop = api_stop.clone();
                    background.push(tokio::spawn(server.serve(async move { stop.wait().await })));
                }
                Some((service, credentials))
            }
            None => {
                if plan.query.postgres.is_some() || plan.query.flight.is_some() {
                    anyhow::bail!(
                        "`[query.postgres]` and `[query.flight]` serve the embedded store, but \
                         this pipeline has no `store` sink: add one, or remove those tables"
                    );
                }
                None
            }
        };
        let reloader = Reloader::new(plan.clone(), hooks);
        let topology = Topology::new(nodes).context("wiring the pipeline")?;
        let running = topology.start();
        let (api_addr, api) = if let Some(listener) = api_listener {
            let addr = listener.local_addr()?;
            let mut routes = api_routes;
            if let Some((service, credentials)) = &sql {
                routes.push(service.clone().router(credentials.clone()));
            }
            let app = crate::api::router(metrics, running.readiness(), routes);
            let stop = api_stop.clone();
            let task = match api_tls {
                Some(acceptor) => {
                    tokio::spawn(crate::api::serve_tls(listener, app, acceptor, async move {
                        stop.wait().await
                    }))
                }
                None => tokio::spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.wait().await })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "the API server failed");
                    }
                }),
            };
            info!(address = %addr, sql = store.is_some(), "API listening (/metrics, /healthz, /readyz, /api/v1/rules, /api/v1/alerts, /rules/NAME, /api/v1/sql)");
            background.push(task);
            (Some(addr), background)
        } else {
            (None, background)
        };
        for (what, addr) in &listeners {
            info!(listener = %what, address = %addr, "listening");
        }
        Ok(Started {
            running,
            reloader,
            listeners,
            store,
            api_addr,
            api_stop,
            api,
            shutdown_timeout: plan.runtime.shutdown_timeout,
        })
    }
}

/// Builds `component` of `plan` through its config, binding any listener
/// it has.
async fn build(
    plan: &Plan,
    component: &Component,
    shared: &mut Shared,
) -> Result<Node, ComponentError> {
    let mut cx = BuildContext::new(&component.name, plan, shared);
    let built = component.config.build(&mut cx).await?;
    Ok(Node {
        name: component.name.clone(),
        built,
        inputs: component
            .inputs
            .iter()
            .map(|i| (i.from.clone(), i.signals))
            .collect(),
        queue_capacity: component.queue_capacity,
    })
}

impl Started {
    /// What applies a changed pipeline file to this Weir (see
    /// [`crate::reload`]).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The address `listener` (e.g. `otlp/grpc`) is bound to.
    pub fn listener(&self, listener: &str) -> Option<SocketAddr> {
        self.listeners.get(listener).copied()
    }

    /// Runs until `stop` resolves or a component fails, then drains and stops.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> ExitReport {
        let Started {
            running,
            store,
            api_stop,
            api,
            shutdown_timeout,
            ..
        } = self;
        let report = running.run_until(stop, shutdown_timeout).await;
        finish(store, api_stop, api, report).await
    }

    /// Stops now: sources stop taking data, in-flight data drains.
    pub async fn stop(self) -> ExitReport {
        let report = self.running.drain(self.shutdown_timeout).await;
        finish(self.store, self.api_stop, self.api, report).await
    }
}

/// After the pipeline has drained: stop the API, then flush the store.
async fn finish(
    store: Option<Arc<Store>>,
    api_stop: Shutdown,
    api: Vec<JoinHandle<()>>,
    mut report: ExitReport,
) -> ExitReport {
    stop_api(api_stop, api).await;
    if let Some(store) = store
        && let Err(e) = store.close().await
    {
        tracing::error!(error = %e, "flushing the store at shutdown failed; the write-ahead log still holds the data");
        report.errors.push(("store".into(), e.to_string()));
    }
    report
}

async fn stop_api(stop: Shutdown, api: Vec<JoinHandle<()>>) {
    stop.trigger();
    for task in api {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}
