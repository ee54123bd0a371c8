//! What the user writes: [`RuleConfig`], plain data easy to build from the
//! pipeline TOML, its [`RuleKind`], and its identity, [`RuleId`], a hash of
//! the whole definition (a rule whose identity is unchanged keeps its state
//! across a reload or restart).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RuleError;
use crate::window::BufferLimits;

/// The label that names an alert.
pub const ALERTNAME: &str = "alertname";

/// Whether a rule alerts or records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// Each result row is an alert instance.
    Alert,
    /// Each result row is a metric point named after the rule.
    Record,
}

impl RuleKind {
    /// `alert` or `record`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Alert => "alert",
            RuleKind::Record => "record",
        }
    }
}

/// A rule as the user defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// The rule's name: the `alertname` label of its alerts, or the name of
    /// the metric it records.
    pub name: String,
    /// Alert or record.
    pub kind: RuleKind,
    /// The query over `logs`, `spans` and `metrics`; it returns a numeric
    /// column `value` and string label columns.
    pub sql: String,
    /// How much event time the query sees.
    pub window: Duration,
    /// How often it is evaluated.
    pub every: Duration,
    /// Alerts: how long an instance stays pending before it fires (0: fire
    /// at once).
    pub for_duration: Duration,
    /// Alerts: how long a firing instance keeps firing after the query stops
    /// returning it.
    pub keep_firing_for: Duration,
    /// Labels added to each alert or recorded point (they replace result
    /// labels of the same name). Alert labels may be templates.
    pub labels: BTreeMap<String, String>,
    /// Alerts: annotations, templates over `$labels` and `$value`.
    pub annotations: BTreeMap<String, String>,
    /// How late, in event time, a record may arrive and still be counted.
    pub allowed_lateness: Duration,
    /// How far behind the evaluation time the window ends.
    pub query_offset: Duration,
    /// The most each of the rule's window buffers may hold.
    pub buffer_limits: BufferLimits,
    /// The most memory, in bytes, the query's operators (hash tables,
    /// sorts) may take in one evaluation; past it the evaluation fails.
    pub max_query_memory: usize,
}

impl RuleConfig {
    /// The default `window`: 5 minutes.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
    /// The default `every`: 1 minute (Prometheus' evaluation interval).
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);
    /// The default `max_query_memory`: 256 MiB.
    pub const DEFAULT_MAX_QUERY_MEMORY: usize = 256 << 20;

    /// An alert rule with the defaults: 5 m window, every 1 m, `for` 0.
    pub fn alert(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Self::new(name.into(), RuleKind::Alert, sql.into())
    }

    /// A recording rule with the defaults: 5 m window, every 1 m.
    pub fn record(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Self::new(name.into(), RuleKind::Record, sql.into())
    }

    fn new(name: String, kind: RuleKind, sql: String) -> Self {
        RuleConfig {
            name,
            kind,
            sql,
            window: Self::DEFAULT_WINDOW,
            every: Self::DEFAULT_EVERY,
            for_duration: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            allowed_lateness: Duration::ZERO,
            query_offset: Duration::ZERO,
            buffer_limits: BufferLimits::default(),
            max_query_memory: Self::DEFAULT_MAX_QUERY_MEMORY,
        }
    }

    /// The rule's identity: a hash of its definition. A rule whose identity
    /// is unchanged across a reload or restart keeps its alert state.
    pub fn id(&self) -> RuleId {
        // FNV-1a 64 over the fields, each preceded by its length so that no
        // two definitions write the same bytes.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut field = |bytes: &[u8]| {
            let len = (bytes.len() as u64).to_le_bytes();
            for b in len.iter().chain(bytes) {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        field(self.name.as_bytes());
        field(self.kind.as_str().as_bytes());
        field(self.sql.as_bytes());
        for d in [
            self.window,
            self.every,
            self.for_duration,
            self.keep_firing_for,
            self.allowed_lateness,
            self.query_offset,
        ] {
            field(&d.as_nanos().to_le_bytes());
        }
        for map in [&self.labels, &self.annotations] {
            field(&(map.len() as u64).to_le_bytes());
            for (k, v) in map {
                field(k.as_bytes());
                field(v.as_bytes());
            }
        }
        RuleId(format!("{hash:016x}"))
    }

    /// A [`RuleError::Field`] naming this rule, `field` and what to do.
    pub(super) fn field_error(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> RuleError {
        RuleError::Field {
            rule: self.name.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A rule's identity: the hex of a hash of its whole definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(String);

impl RuleId {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::tests::{error_rule, secs};

    /// Guarantees: the identity changes with any part of the definition and
    /// not otherwise.
    #[test]
    fn identity_follows_the_definition() {
        let a = error_rule();
        assert_eq!(a.id(), error_rule().id());
        assert_eq!(a.id().as_str().len(), 16);
        let variants = [
            RuleConfig {
                sql: format!("{} ", a.sql),
                ..a.clone()
            },
            RuleConfig {
                keep_firing_for: secs(1),
                ..a.clone()
            },
            RuleConfig {
                annotations: BTreeMap::new(),
                ..a.clone()
            },
            RuleConfig {
                kind: RuleKind::Record,
                ..a.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.id(), a.id());
        }
    }
}
