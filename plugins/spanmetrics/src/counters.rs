//! The plugin's own metrics in Weir's `/metrics`, declared here (the host
//! prefixes `weir_plugin_` and adds the label `component`):
//!
//! - `spanmetrics_overflow_spans`: spans counted in the overflow series
//!   because `max_series` series existed already;
//! - `spanmetrics_skipped_spans`: spans not counted because their resource
//!   has no `service.name` (the connector skips them too);
//! - `spanmetrics_handoff_failures`: writes of an instance's counts to the
//!   plugin's state that the host refused (see [`crate::handoff`]).
//!
//! Each is added once per batch or tick, and only when not zero.

use weir_plugin::services::{self, Level};

/// Spans counted in the overflow series.
pub const OVERFLOW_SPANS: &str = "spanmetrics_overflow_spans";

/// Spans without `service.name`, not counted.
pub const SKIPPED_SPANS: &str = "spanmetrics_skipped_spans";

/// Refused writes to the plugin's state.
pub const HANDOFF_FAILURES: &str = "spanmetrics_handoff_failures";

/// Adds `value` to counter `name` when it is not zero. A counter the host
/// refuses is logged, not returned: the spans are counted already.
pub fn add(name: &'static str, value: u64) {
    if value == 0 {
        return;
    }
    #[cfg(test)]
    recorded::push(name, value);
    if let Err(e) = services::counter_add(name, value, &[]) {
        services::log(
            Level::Warn,
            &format!("spanmetrics: counter `{name}` refused: {e:?}"),
        );
    }
}

/// The calls [`add`] made in this thread, for tests: the SDK's metrics are
/// inert outside a host.
#[cfg(test)]
pub mod recorded {
    use std::cell::RefCell;

    thread_local! {
        static CALLS: RefCell<Vec<(&'static str, u64)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn push(name: &'static str, n: u64) {
        CALLS.with(|c| c.borrow_mut().push((name, n)));
    }

    /// The calls since the last `take`: counter and value added.
    pub fn take() -> Vec<(&'static str, u64)> {
        CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }

    /// The sum added to `name` since the last `take`, leaving the rest.
    pub fn total(name: &str) -> u64 {
        CALLS.with(|c| {
            c.borrow()
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v)
                .sum()
        })
    }
}
