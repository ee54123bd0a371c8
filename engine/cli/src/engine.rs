//! Starting and stopping a whole Weir: components, topology, API server.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tracing::info;
use weir_config::Plan;
use weir_core::Shutdown;
use weir_query::SqlService;
use weir_runtime::{ExitReport, Running, Topology};
use weir_store::Store;

use crate::build::{Listeners, Shared, build, uses_store};
use crate::reload::Reloader;
use crate::telemetry::metrics_handle;

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
    api: Option<JoinHandle<()>>,
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
        let external_url = match (&plan.api.external_url, &api_listener) {
            (Some(url), _) => url.clone(),
            (None, Some(listener)) => format!("http://{}", listener.local_addr()?),
            (None, None) => plan.api.external_url(),
        };
        let mut shared = Shared {
            rules_state_dir: Some(plan.store.path.join("rules")),
            external_url,
            ..Shared::default()
        };
        if uses_store(plan) {
            let store = Store::open(&plan.store)
                .await
                .with_context(|| format!("opening the store at {}", plan.store.path.display()))?;
            shared.store = Some(store);
        }
        let mut nodes = Vec::with_capacity(plan.components.len());
        for component in &plan.components {
            nodes.push(build(component, &mut shared).await?);
        }
        let Shared {
            listeners,
            store,
            rules_reloads,
            rules_status,
            ..
        } = shared;
        let reloader = Reloader::new(plan.clone(), rules_reloads);
        let topology = Topology::new(nodes).context("wiring the pipeline")?;
        let running = topology.start();
        let api_stop = Shutdown::new();
        let (api_addr, api) = if let Some(listener) = api_listener {
            let addr = listener.local_addr()?;
            let mut app = crate::api::router(metrics, running.readiness(), rules_status);
            if let Some(store) = &store {
                let store = store.clone();
                let sql = SqlService::new(Arc::new(move |ctx| store.register(ctx)), &plan.query);
                app = app.merge(Arc::new(sql).router());
            }
            let stop = api_stop.clone();
            let task = tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.wait().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the API server failed");
                }
            });
            info!(address = %addr, sql = store.is_some(), "API listening (/metrics, /healthz, /readyz, /api/v1/rules, /api/v1/alerts, /rules/NAME, /api/v1/sql)");
            (Some(addr), Some(task))
        } else {
            (None, None)
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
    api: Option<JoinHandle<()>>,
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

async fn stop_api(stop: Shutdown, api: Option<JoinHandle<()>>) {
    stop.trigger();
    if let Some(task) = api {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}
