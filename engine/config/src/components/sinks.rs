//! Sink types.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use weir_core::SignalSet;

use crate::values;

/// A sink's configuration, chosen by its `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkConfig {
    /// `type = "blackhole"`: acknowledges and drops everything.
    Blackhole(BlackholeSinkConfig),
    /// `type = "file"`: appends OTLP/JSON lines to a file.
    File(FileSinkConfig),
    /// `type = "store"`: writes to the embedded store (`[store]`).
    Store(StoreSinkConfig),
}

impl SinkConfig {
    /// The sink's `type` as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Blackhole(_) => "blackhole",
            SinkConfig::File(_) => "file",
            SinkConfig::Store(_) => "store",
        }
    }

    /// The signals the sink can take in.
    pub fn accepts(&self) -> SignalSet {
        match self {
            SinkConfig::Blackhole(_) | SinkConfig::File(_) | SinkConfig::Store(_) => SignalSet::ALL,
        }
    }
}

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

/// `type = "store"`: writes every batch to the embedded store configured
/// in `[store]`, acknowledging it once the write-ahead log holds it. The
/// SQL endpoints read the same store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct StoreSinkConfig {}
