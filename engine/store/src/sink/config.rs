//! `type = "store"`: what a user writes, and how it is built.

use async_trait::async_trait;
use serde::Deserialize;
use weir_config::{BuildContext, ComponentConfig};
use weir_core::{Built, ComponentError, SignalSet};

use super::StoreSink;
use crate::Store;

/// `type = "store"`: writes every batch to the embedded store configured
/// in `[store]`, acknowledging it once the write-ahead log holds it. The
/// SQL endpoints read the same store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StoreSinkConfig {}

#[async_trait]
impl ComponentConfig for StoreSinkConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::NONE
    }

    /// Opens the store of `[store]` the first time a `store` sink is built;
    /// every `store` sink, and the SQL endpoints, share it (it is left in
    /// the build's resources as `Store`).
    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        let store = match cx.resources().get::<Store>() {
            Some(store) => store,
            None => {
                let config = &cx.plan().store;
                let store = Store::open(config).await.map_err(|e| {
                    ComponentError::external(
                        cx.name(),
                        format!("opening the store at {}", config.path.display()),
                        e,
                    )
                })?;
                cx.resources().insert(store.clone());
                store
            }
        };
        Ok(Built::Sink(Box::new(StoreSink::new(store))))
    }
}
