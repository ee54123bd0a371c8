//! `type = "file"`: what a user writes, and how it is built.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;
use weir_config::{BuildContext, ComponentConfig, values};
use weir_core::{Built, ComponentError, SignalSet};

use super::FileSink;

/// `type = "file"`: appends each export request as one line of OTLP/JSON
/// (the protobuf JSON mapping), a format other OTLP tools read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileSinkConfig {
    /// The file to append to; created if missing. Required. A relative path
    /// is taken from the directory Weir runs in.
    #[serde(deserialize_with = "values::path")]
    pub path: PathBuf,
    /// Whether to `fsync` after each write before acknowledging it, so that
    /// acknowledged data survives a power cut. Default `false` (data is
    /// handed to the operating system only).
    #[serde(default)]
    pub fsync: bool,
}

#[async_trait]
impl ComponentConfig for FileSinkConfig {
    /// OTLP/JSON has no form for alert events.
    fn accepts(&self) -> SignalSet {
        SignalSet::TELEMETRY
    }

    fn outputs(&self, _input: SignalSet) -> SignalSet {
        SignalSet::NONE
    }

    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        Ok(Built::Sink(Box::new(
            FileSink::open(cx.name(), self).await?,
        )))
    }
}
