//! Component type -> implementation: the table of built-ins.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use weir_config::{Component, ComponentConfig, ProcessorConfig, SinkConfig, SourceConfig};
use weir_core::ComponentError;
use weir_runtime::{Built, Node};
use weir_sinks::{AlertmanagerSink, BlackholeSink, FileSink, WebhookSink};
use weir_sources::OtlpSource;
use weir_store::{Store, StoreSink};

/// Addresses components listen on, by `component/what` (e.g. `otlp/grpc`),
/// known once they are bound.
pub type Listeners = BTreeMap<String, SocketAddr>;

/// What components share: the listeners they bound, the store.
#[derive(Default)]
pub struct Shared {
    /// Addresses bound so far.
    pub listeners: Listeners,
    /// The embedded store, opened when a `store` sink exists.
    pub store: Option<Arc<Store>>,
    /// Where `rules` processors keep their alert state (`NAME.json`).
    pub rules_state_dir: Option<std::path::PathBuf>,
    /// The URL Weir is reached at, for the links in alerts.
    pub external_url: String,
    /// Where each `rules` processor takes new rules on a reload.
    pub rules_reloads: std::collections::BTreeMap<String, weir_rules::Reloads>,
    /// What each `rules` processor publishes of its rules, for the API.
    pub rules_status: std::collections::BTreeMap<String, weir_rules::RulesStatus>,
}

/// Builds the component of `component`, binding any listener it has.
pub async fn build(component: &Component, shared: &mut Shared) -> Result<Node, ComponentError> {
    let name = component.name.as_str();
    let built = match &component.config {
        ComponentConfig::Source(SourceConfig::Otlp(config)) => {
            let source = OtlpSource::bind(name, config.clone()).await?;
            if let Some(addr) = source.grpc_addr() {
                shared.listeners.insert(format!("{name}/grpc"), addr);
            }
            if let Some(addr) = source.http_addr() {
                shared.listeners.insert(format!("{name}/http"), addr);
            }
            Built::Source(Box::new(source))
        }
        ComponentConfig::Processor(ProcessorConfig::Wasm(config)) => {
            let runtime = weir_wasm::Runtime::shared()
                .map_err(|e| ComponentError::internal(name, e.to_string()))?;
            Built::Processor(Box::new(
                weir_wasm::WasmProcessor::new(name, config, runtime).await?,
            ))
        }
        ComponentConfig::Processor(ProcessorConfig::Rules(config)) => {
            let settings = weir_rules::AlertSettings {
                external_url: shared.external_url.clone(),
                ..weir_rules::AlertSettings::default()
            };
            let mut processor = weir_rules::RulesProcessor::new(name, config, &settings)
                .map_err(|e| ComponentError::internal(name, e.to_string()))?;
            if let Some(dir) = &shared.rules_state_dir {
                processor = processor.with_state_file(dir.join(format!("{name}.json")));
            }
            shared
                .rules_reloads
                .insert(name.to_string(), processor.reloads());
            shared
                .rules_status
                .insert(name.to_string(), processor.status());
            Built::Processor(Box::new(processor))
        }
        ComponentConfig::Sink(SinkConfig::Blackhole(config)) => {
            Built::Sink(Box::new(BlackholeSink::new(config)))
        }
        ComponentConfig::Sink(SinkConfig::File(config)) => {
            Built::Sink(Box::new(FileSink::open(name, config).await?))
        }
        ComponentConfig::Sink(SinkConfig::Store(_)) => {
            let store = shared.store.clone().ok_or_else(|| {
                ComponentError::internal(name, "the store was not opened before its sink was built")
            })?;
            Built::Sink(Box::new(StoreSink::new(store)))
        }
        ComponentConfig::Sink(SinkConfig::Alertmanager(config)) => {
            Built::Sink(Box::new(AlertmanagerSink::new(name, config)?))
        }
        ComponentConfig::Sink(SinkConfig::Webhook(config)) => Built::Sink(Box::new(
            WebhookSink::new(name, config, &shared.external_url)?,
        )),
    };
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

/// Whether `plan` writes to the embedded store.
pub fn uses_store(plan: &weir_config::Plan) -> bool {
    plan.components
        .iter()
        .any(|c| matches!(c.config, ComponentConfig::Sink(SinkConfig::Store(_))))
}
