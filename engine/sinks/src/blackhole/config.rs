//! `type = "blackhole"`: what a user writes, and how it is built.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use weir_config::{BuildContext, ComponentConfig, values};
use weir_core::{Built, ComponentError, SignalSet};

use super::BlackholeSink;

/// `type = "blackhole"`: acknowledges every batch at once and drops it.
/// For benchmarks and for trying a pipeline out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BlackholeSinkConfig {
    /// When set, log how many records arrived every this often: a duration
    /// above zero such as `"10s"`. Default: no logging.
    #[serde(default, deserialize_with = "values::optional_positive_duration")]
    pub log_interval: Option<Duration>,
}

#[async_trait]
impl ComponentConfig for BlackholeSinkConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::ALL
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::NONE
    }

    async fn build(&self, _cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        Ok(Built::Sink(Box::new(BlackholeSink::new(self))))
    }
}
