//! Processor types. There are none built in yet: the WASM plugin host adds
//! `wasm` (one variant here plus its config struct).

use serde::Deserialize;
use weir_core::SignalSet;

use super::Problem;

/// A processor's configuration, chosen by its `type`. No processor type is
/// built in yet, so every `[processors.NAME]` table is refused with
/// "unknown processor type".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorConfig {}

impl ProcessorConfig {
    /// The processor's `type` as written in the file.
    pub fn type_name(&self) -> &'static str {
        match *self {}
    }

    /// The signals the processor can take in.
    pub fn accepts(&self) -> SignalSet {
        match *self {}
    }

    /// The signals the processor emits when it receives `input`.
    pub fn outputs(&self, input: SignalSet) -> SignalSet {
        let _ = input;
        match *self {}
    }

    pub(crate) fn problems(&self) -> Vec<Problem> {
        match *self {}
    }
}
