//! `weir validate` for rules: what the config crate cannot check alone
//! (the SQL of each rule plans against the signal tables, returns a
//! `value`, its templates name labels it has), reported at the rule's line.

use weir_config::{ComponentConfig, Plan, ProcessorConfig};
use weir_rules::{AlertSettings, RulesProcessor};

/// One rule that does not hold up, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The `rules` processor.
    pub processor: String,
    /// 1-based line of the rule's `alert` / `record` key, when found.
    pub line: Option<usize>,
    /// What is wrong and what to do (names the rule).
    pub message: String,
}

/// Checks every rule of every `rules` processor of `plan`, whose file
/// text is `source`.
pub fn check(plan: &Plan, source: &str) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    for component in &plan.components {
        let ComponentConfig::Processor(ProcessorConfig::Rules(config)) = &component.config else {
            continue;
        };
        if let Err(e) = RulesProcessor::new(&component.name, config, &AlertSettings::default()) {
            problems.push(RuleProblem {
                processor: component.name.clone(),
                line: rule_line(source, e.rule()),
                message: e.to_string(),
            });
        }
    }
    problems
}

/// Runs every `[[tests]]` of `plan` against the rules processor it names.
pub async fn run_tests(plan: &Plan) -> Vec<weir_rules::testing::TestOutcome> {
    let mut outcomes = Vec::with_capacity(plan.tests.len());
    for (i, test) in plan.tests.iter().enumerate() {
        let config = plan
            .component(&test.processor)
            .and_then(|c| match &c.config {
                ComponentConfig::Processor(ProcessorConfig::Rules(config)) => Some(config),
                _ => None,
            });
        // The config crate has checked that the processor is a rules one.
        let Some(config) = config else { continue };
        outcomes.push(weir_rules::testing::run_test(i, test, config).await);
    }
    outcomes
}

/// The line of `alert = "NAME"` or `record = "NAME"` in `source`.
fn rule_line(source: &str, rule: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| {
            let Some((key, value)) = line.split_once('=') else {
                return false;
            };
            matches!(key.trim(), "alert" | "record")
                && value.trim().trim_matches(|c| c == '"' || c == '\'') == rule
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"[sources.otlp]
type = "otlp"

[processors.r]
type = "rules"
inputs = ["otlp"]

[[processors.r.rules]]
record = "ok_rule"
sql = "SELECT service_name, count(*) AS value FROM spans GROUP BY service_name"

[[processors.r.rules]]
alert = "Broken"
sql = "SELECT service_name, count(*) AS value FROM spans WHERE no_such_column = 1 GROUP BY service_name"

[sinks.s]
type = "blackhole"
inputs = ["r"]
"#;

    /// Guarantees: a rule whose SQL names an unknown column is reported at
    /// its own line, naming the rule; a good rule passes.
    #[test]
    fn bad_sql_is_reported_at_its_rule() {
        let plan = weir_config::parse_str(PIPELINE, "p.toml").expect("the file itself is valid");
        let problems = check(&plan, PIPELINE);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].processor, "r");
        assert_eq!(problems[0].line, Some(13));
        assert!(
            problems[0].message.contains("rule `Broken`"),
            "{problems:?}"
        );
        assert!(
            problems[0].message.contains("no_such_column"),
            "{problems:?}"
        );
        let good = PIPELINE.replace("WHERE no_such_column = 1 ", "");
        let plan = weir_config::parse_str(&good, "p.toml").expect("valid");
        assert!(check(&plan, &good).is_empty());
    }
}
