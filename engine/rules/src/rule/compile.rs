//! From what the user writes to what runs: [`RuleConfig::validate`] checks
//! everything that can be checked before data arrives (durations, names,
//! templates, and the SQL itself, planned against empty tables with the
//! real schemas, its result shape checked), and [`Compiled::new`] keeps
//! what an evaluation needs: the parsed templates and the query planned
//! once, in a session of its own, pane by pane where it can be (see
//! [`crate::incremental`]).

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use super::config::{ALERTNAME, RuleConfig, RuleKind};
use crate::error::RuleError;
use crate::incremental::PanePlans;
use crate::plan::Tables;
use crate::query::{self, QueryShape};
use crate::shape::PaneShape;
use crate::template::{Template, is_label_name};
use crate::time::nanos;

impl RuleConfig {
    /// Checks the rule without running it: fields, templates, and the SQL,
    /// planned against empty tables. Returns what planning learnt.
    ///
    /// Planning needs no I/O (the tables are in memory), so this blocks only
    /// for the time it takes DataFusion to plan.
    pub fn validate(&self) -> Result<QueryShape, RuleError> {
        futures::executor::block_on(self.validate_async())
    }

    /// [`RuleConfig::validate`], for async callers.
    pub async fn validate_async(&self) -> Result<QueryShape, RuleError> {
        self.check_fields()?;
        let shape = query::validate(&self.name, &self.sql).await?;
        self.compile_templates(&shape)?;
        Ok(shape)
    }

    fn check_fields(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(self.field_error("name", "is empty; give the rule a name"));
        }
        if self.kind == RuleKind::Record && !is_metric_name(&self.name) {
            return Err(self.field_error(
                "name",
                "is the name of the recorded metric and must match [a-zA-Z_:][a-zA-Z0-9_:.]*, \
                 e.g. `service:errors:rate5m`",
            ));
        }
        if self.sql.trim().is_empty() {
            return Err(self.field_error("sql", "is empty; write the query the rule evaluates"));
        }
        for (field, d) in [("window", self.window), ("every", self.every)] {
            if d.is_zero() {
                return Err(self.field_error(field, "must be longer than 0, e.g. \"5m\""));
            }
        }
        if self.kind == RuleKind::Record {
            for (field, d) in [
                ("for", self.for_duration),
                ("keep_firing_for", self.keep_firing_for),
            ] {
                if !d.is_zero() {
                    return Err(self.field_error(
                        field,
                        "applies to alert rules only; remove it from this recording rule",
                    ));
                }
            }
            if let Some(name) = self.annotations.keys().next() {
                return Err(self.field_error(
                    format!("annotations.{name}"),
                    "annotations apply to alert rules only; remove them from this recording rule",
                ));
            }
        }
        for name in self.labels.keys() {
            if !is_label_name(name) {
                return Err(self.field_error(
                    format!("labels.{name}"),
                    "is not a label name: use letters, digits and `_`, not starting with a digit",
                ));
            }
            if name == ALERTNAME || name == "__name__" {
                return Err(self.field_error(
                    format!("labels.{name}"),
                    "is set from the rule's name; rename the rule instead",
                ));
            }
        }
        for name in self.annotations.keys() {
            if !is_label_name(name) {
                return Err(self.field_error(
                    format!("annotations.{name}"),
                    "is not an annotation name: use letters, digits and `_`, not starting with a digit",
                ));
            }
        }
        if self.buffer_limits.max_rows == 0 || self.buffer_limits.max_bytes == 0 {
            return Err(self.field_error("buffer limits", "must be greater than 0"));
        }
        if self.max_query_memory == 0 {
            return Err(self.field_error("max_query_memory", "must be greater than 0"));
        }
        Ok(())
    }

    /// Parses the label and annotation templates and checks that they read
    /// only labels the query returns.
    fn compile_templates(&self, shape: &QueryShape) -> Result<Templates, RuleError> {
        let compile = |kind: &str, name: &str, text: &str| -> Result<Template, RuleError> {
            let field = format!("{kind}.{name}");
            let template_error = |message: String| RuleError::Template {
                field: field.clone(),
                rule: self.name.clone(),
                message,
            };
            let template = Template::parse(text).map_err(|e| template_error(e.to_string()))?;
            if self.kind == RuleKind::Record && !template.is_literal() {
                return Err(template_error(
                    "labels of recording rules are plain text; move the computed part into the \
                     SQL as a label column"
                        .into(),
                ));
            }
            for used in template.labels_used() {
                if !shape.label_columns.iter().any(|c| c == used) {
                    let known = if shape.label_columns.is_empty() {
                        "the query returns no label column".to_string()
                    } else {
                        format!("its label columns are {}", shape.label_columns.join(", "))
                    };
                    return Err(template_error(format!(
                        "`$labels.{used}` names a label the query does not return ({known}); \
                         add `{used}` to the SELECT (and GROUP BY), or fix the name"
                    )));
                }
            }
            Ok(template)
        };
        let mut templates = Templates::default();
        for (name, text) in &self.labels {
            templates
                .labels
                .push((name.clone(), compile("labels", name, text)?));
        }
        for (name, text) in &self.annotations {
            templates
                .annotations
                .push((name.clone(), compile("annotations", name, text)?));
        }
        Ok(templates)
    }
}

/// Whether `name` can name a recorded metric: `[a-zA-Z_:][a-zA-Z0-9_:.]*`
/// (Prometheus' metric names, plus the dots of OpenTelemetry's).
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.'))
}

/// A rule's label and annotation templates, parsed.
#[derive(Debug, Clone, Default)]
pub(super) struct Templates {
    /// The rule's labels, by name.
    pub(super) labels: Vec<(String, Template)>,
    /// The annotations of an alert rule, by name.
    pub(super) annotations: Vec<(String, Template)>,
}

/// A rule's definition, checked and planned: what its evaluations run.
pub(super) struct Compiled {
    /// What planning learnt: the tables the query reads and its label
    /// columns.
    pub(super) shape: QueryShape,
    /// The label and annotation templates, parsed.
    pub(super) templates: Templates,
    /// The context the kept plans run in (the rule's session: its
    /// functions and memory limit), made once.
    pub(super) task: Arc<TaskContext>,
    /// The tables the kept plans read (see [`crate::plan`]).
    pub(super) tables: Tables,
    /// The query, planned once.
    pub(super) plan: Planned,
}

impl Compiled {
    /// Validates `config` and plans its query.
    pub(super) fn new(config: &RuleConfig) -> Result<Compiled, RuleError> {
        let shape = config.validate()?;
        let ctx = query::session(config.max_query_memory).map_err(|e| RuleError::Field {
            rule: config.name.clone(),
            field: "max_query_memory".into(),
            message: e.strip_backtrace().to_string(),
        })?;
        let templates = config.compile_templates(&shape)?;
        let tables = Tables::default();
        // Planning needs no I/O: the tables are slots in memory.
        let plan = futures::executor::block_on(plan_query(config, &shape, &ctx, &tables)).map_err(
            |e| RuleError::Sql {
                rule: config.name.clone(),
                message: e.strip_backtrace().to_string(),
            },
        )?;
        Ok(Compiled {
            shape,
            templates,
            task: ctx.task_ctx(),
            tables,
            plan,
        })
    }
}

/// How a rule's query runs, planned once.
#[derive(Debug)]
pub(super) enum Planned {
    /// Over the rows of the whole window, each evaluation.
    Rescan(Arc<dyn ExecutionPlan>),
    /// Pane by pane (see [`crate::incremental`]), from the final rows of a
    /// store its group links it to (see [`crate::shape`]).
    Panes {
        /// The rest of the query over the final rows (and their schema).
        plans: Arc<PanePlans>,
        /// Which stores can serve it, and how to plan one.
        shape: Box<PaneShape>,
    },
}

/// Plans `config`'s query in `ctx` over `tables`: pane by pane when its
/// shape and durations allow it.
async fn plan_query(
    config: &RuleConfig,
    shape: &QueryShape,
    ctx: &SessionContext,
    tables: &Tables,
) -> Result<Planned, DataFusionError> {
    tables.register(ctx)?;
    let df = query::plan(ctx, &config.sql).await?;
    let logical = df.logical_plan().clone();
    let plan = df.create_physical_plan().await?;
    let every = nanos(config.every);
    let aligned =
        every > 0 && nanos(config.window) % every == 0 && nanos(config.query_offset) % every == 0;
    let mut inputs = shape.inputs.iter();
    if let (true, Some(input), None) = (aligned, inputs.next(), inputs.next())
        && let Some(panes) = PanePlans::new(&plan, input)?
    {
        let shape = PaneShape::new(logical, &panes, config.max_query_memory);
        return Ok(Planned::Panes {
            plans: Arc::new(panes),
            shape: Box::new(shape),
        });
    }
    Ok(Planned::Rescan(plan))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rule::tests::{error_rule, map, secs};
    use crate::window::BufferLimits;

    /// Guarantees: each mistake in a definition is a validation error naming
    /// the rule and field and saying what to do.
    #[test]
    fn validation_errors_are_clear() {
        let base = error_rule();
        let cases: Vec<(RuleConfig, &str)> = vec![
            (
                RuleConfig {
                    window: Duration::ZERO,
                    ..base.clone()
                },
                "`window` must be longer than 0",
            ),
            (
                RuleConfig {
                    name: " ".into(),
                    ..base.clone()
                },
                "`name` is empty",
            ),
            (
                RuleConfig {
                    sql: "".into(),
                    ..base.clone()
                },
                "`sql` is empty",
            ),
            (
                RuleConfig {
                    labels: map(&[("bad-name", "x")]),
                    ..base.clone()
                },
                "`labels.bad-name` is not a label name",
            ),
            (
                RuleConfig {
                    labels: map(&[("alertname", "x")]),
                    ..base.clone()
                },
                "rename the rule",
            ),
            (
                RuleConfig {
                    annotations: map(&[("summary", "{{ $labels.servce }}")]),
                    ..base.clone()
                },
                "`$labels.servce` names a label the query does not return (its label columns are service_name)",
            ),
            (
                RuleConfig {
                    annotations: map(&[("summary", "{{ $labels.service_name ")]),
                    ..base.clone()
                },
                "template `annotations.summary`: at byte 0: `{{` is not closed",
            ),
            (
                RuleConfig {
                    sql: "SELECT service AS value FROM logs".into(),
                    ..base.clone()
                },
                "the SQL does not plan",
            ),
            (
                RuleConfig {
                    for_duration: secs(60),
                    ..RuleConfig::record("r", "SELECT 1 AS value")
                },
                "`for` applies to alert rules only",
            ),
            (
                RuleConfig {
                    annotations: map(&[("a", "b")]),
                    ..RuleConfig::record("r", "SELECT 1 AS value")
                },
                "annotations apply to alert rules only",
            ),
            (
                RuleConfig {
                    labels: map(&[("a", "{{ $value }}")]),
                    ..RuleConfig::record("r", "SELECT 1 AS value")
                },
                "labels of recording rules are plain text",
            ),
            (
                RuleConfig::record("1bad name", "SELECT 1 AS value"),
                "`name` is the name of the recorded metric",
            ),
            (
                RuleConfig {
                    buffer_limits: BufferLimits {
                        max_rows: 0,
                        max_bytes: 1,
                    },
                    ..base.clone()
                },
                "must be greater than 0",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in: {err}");
            assert!(err.starts_with(&format!("rule `{}`", config.name)), "{err}");
        }
        assert!(base.validate().is_ok());
        assert!(
            RuleConfig::record("service:errors:rate5m", "SELECT 1 AS value")
                .validate()
                .is_ok()
        );
    }
}
