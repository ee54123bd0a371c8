//! The plugin's one metric, declared here: the counter
//! `weir_plugin_redacted{component, rule}`, the findings redacted per rule. It is added once
//! per rule and batch (not per finding), and only for rules that found
//! something.

use weir_plugin::services::{self, Label, Level};

/// The counter's name as the host takes it (the host prefixes
/// `weir_plugin_`).
pub const REDACTED: &str = "redacted";

/// The label that names the rule.
pub const RULE_LABEL: &str = "rule";

/// Adds each rule's count of one batch to the counter. A counter the host
/// refuses is logged, not returned: the batch is already redacted, and
/// failing it would let `on_error = "pass"` send it on unredacted.
pub fn report<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) {
    for (rule, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
        let labels = [Label {
            name: RULE_LABEL.to_string(),
            value: rule.to_string(),
        }];
        #[cfg(test)]
        recorded::push(rule, n);
        if let Err(e) = services::counter_add(REDACTED, n, &labels) {
            services::log(
                Level::Warn,
                &format!("redact: counter `{REDACTED}` for rule `{rule}` refused: {e:?}"),
            );
        }
    }
}

/// The calls [`report`] made in this thread, for tests: the SDK's metrics
/// are inert outside a host.
#[cfg(test)]
pub mod recorded {
    use std::cell::RefCell;

    thread_local! {
        static CALLS: RefCell<Vec<(String, u64)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn push(rule: &str, n: u64) {
        CALLS.with(|c| c.borrow_mut().push((rule.to_string(), n)));
    }

    /// The calls since the last `take`: rule and value added.
    pub fn take() -> Vec<(String, u64)> {
        CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }
}
