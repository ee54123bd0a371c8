//! Component type -> implementation: the table of built-ins.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use weir_config::{Component, ComponentConfig, SinkConfig, SourceConfig};
use weir_core::ComponentError;
use weir_runtime::{Built, Node};
use weir_sinks::{BlackholeSink, FileSink};
use weir_sources::OtlpSource;

/// Addresses components listen on, by `component/what` (e.g. `otlp/grpc`),
/// known once they are bound.
pub type Listeners = BTreeMap<String, SocketAddr>;

/// Builds the component of `component`, binding any listener it has.
pub async fn build(component: &Component, listeners: &mut Listeners) -> Result<Node, ComponentError> {
    let name = component.name.as_str();
    let built = match &component.config {
        ComponentConfig::Source(SourceConfig::Otlp(config)) => {
            let source = OtlpSource::bind(name, config.clone()).await?;
            if let Some(addr) = source.grpc_addr() {
                listeners.insert(format!("{name}/grpc"), addr);
            }
            if let Some(addr) = source.http_addr() {
                listeners.insert(format!("{name}/http"), addr);
            }
            Built::Source(Box::new(source))
        }
        ComponentConfig::Processor(p) => match *p {},
        ComponentConfig::Sink(SinkConfig::Blackhole(config)) => {
            Built::Sink(Box::new(BlackholeSink::new(config)))
        }
        ComponentConfig::Sink(SinkConfig::File(config)) => {
            Built::Sink(Box::new(FileSink::open(name, config).await?))
        }
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
