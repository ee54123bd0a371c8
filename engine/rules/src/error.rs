//! The errors of rules, split by phase and blame: a rule the user wrote
//! wrong ([`RuleError`], found before anything runs), data a buffer cannot
//! take ([`WindowError`]), and an evaluation that failed ([`EvalError`]).

use weir_core::Signal;

/// A rule definition is wrong. Found by [`crate::RuleConfig::validate`],
/// before the rule runs; the message names the rule and the field and says
/// how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A field has a value the rule cannot run with.
    #[error("rule `{rule}`: `{field}` {message}")]
    Field {
        /// The rule's name.
        rule: String,
        /// The field (`window`, `labels.severity`, ...).
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The SQL does not parse or plan (unknown table or column, syntax).
    #[error(
        "rule `{rule}`: the SQL does not plan: {message}; a rule's query reads the tables \
         `logs`, `spans` and `metrics` (their columns are listed in docs/schema.md)"
    )]
    Sql {
        /// The rule's name.
        rule: String,
        /// DataFusion's message.
        message: String,
    },
    /// The query plans, but its result does not have a rule's shape: a
    /// numeric `value` column and string label columns.
    #[error("rule `{rule}`: column `{column}` {message}")]
    Shape {
        /// The rule's name.
        rule: String,
        /// The offending column.
        column: String,
        /// What is wrong and how to fix the SELECT.
        message: String,
    },
    /// A label or annotation template does not parse or names a label the
    /// query does not return.
    #[error("rule `{rule}`: template `{field}`: {message}")]
    Template {
        /// `labels.<name>` or `annotations.<name>`.
        field: String,
        /// The rule's name.
        rule: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl RuleError {
    /// The name of the rule at fault.
    pub fn rule(&self) -> &str {
        match self {
            RuleError::Field { rule, .. }
            | RuleError::Sql { rule, .. }
            | RuleError::Shape { rule, .. }
            | RuleError::Template { rule, .. } => rule,
        }
    }
}

/// A window buffer refused a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Taking the batch would pass the buffer's limits. The rows are counted
    /// in [`crate::BufferStats::rejected_rows`] and not kept.
    #[error(
        "the `{signal}` window buffer is full: it holds {rows} rows / {bytes} bytes and the batch \
         adds {batch_rows} rows / {batch_bytes} bytes, over the limit of {max_rows} rows / \
         {max_bytes} bytes; raise the rule's buffer limits or shorten its `window`"
    )]
    Full {
        /// The buffer's table.
        signal: Signal,
        /// Rows held.
        rows: usize,
        /// Bytes held.
        bytes: usize,
        /// Rows of the refused batch.
        batch_rows: usize,
        /// Bytes of the refused batch.
        batch_bytes: usize,
        /// The row limit.
        max_rows: usize,
        /// The byte limit.
        max_bytes: usize,
    },
    /// The batch does not have the table's schema (a bug upstream: batches
    /// come from weir-core's converters).
    #[error(
        "a batch pushed to the `{signal}` window does not have the `{signal}` schema: {message}"
    )]
    Schema {
        /// The buffer's table.
        signal: Signal,
        /// What differs.
        message: String,
    },
}

/// An evaluation failed. The rule keeps its state; the next tick tries again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// DataFusion could not run the query over this window's data.
    #[error("rule `{rule}`: the query failed at evaluation: {message}")]
    Query {
        /// The rule's name.
        rule: String,
        /// DataFusion's message.
        message: String,
    },
    /// Two result rows have the same labels once the rule's labels are
    /// applied (Prometheus' "vector contains metrics with the same labelset
    /// after applying alert labels").
    #[error(
        "rule `{rule}`: two rows have the same labels {labels} after the rule's labels were \
         applied; add the column that tells them apart to the SELECT and GROUP BY"
    )]
    DuplicateLabels {
        /// The rule's name.
        rule: String,
        /// The label set, `{a="x", b="y"}`.
        labels: String,
    },
    /// The recorded points could not be converted to the `metrics` table (a
    /// bug in Weir).
    #[error("rule `{rule}`: internal error (this is a bug in Weir, please report it): {message}")]
    Internal {
        /// The rule's name.
        rule: String,
        /// What failed.
        message: String,
    },
}
