//! `weir test`: runs a pipeline file's `[[tests]]`, each against the
//! processor it names: a `rules` processor's tests check alerts and
//! recorded series (`weir_rules::testing`), a `wasm` processor's check the
//! records the plugin sends on (`weir_wasm::testing`).

use arrow::record_batch::RecordBatch;
use weir_config::{PipelineTest, Plan};
use weir_core::Signal;
use weir_rules::RulesConfig;
use weir_rules::testing::{Inputs, TestOutcome};
use weir_wasm::WasmConfig;

/// Runs every `[[tests]]` of `plan`, in file order.
pub async fn run_plan_tests(plan: &Plan) -> Vec<TestOutcome> {
    let mut outcomes = Vec::with_capacity(plan.tests.len());
    for (i, test) in plan.tests.iter().enumerate() {
        let Some(component) = plan.component(&test.processor) else {
            continue;
        };
        if let Some(rules) = component.config_as::<RulesConfig>() {
            outcomes.push(weir_rules::testing::run_test(i, test, rules).await);
        } else if let Some(wasm) = component.config_as::<WasmConfig>() {
            outcomes.push(run_plugin_test(i, test, wasm));
        }
    }
    outcomes
}

/// Runs `test` (the `index`-th of its file) through the plugin of
/// `config`.
fn run_plugin_test(index: usize, test: &PipelineTest, config: &WasmConfig) -> TestOutcome {
    let name = test
        .spec
        .name
        .clone()
        .unwrap_or_else(|| format!("test {}", index + 1));
    let interval = i64::try_from(test.spec.interval.as_nanos()).unwrap_or(i64::MAX);
    let failures = match Inputs::new(&test.spec.series, &test.spec.otlp, interval) {
        Ok(inputs) => weir_wasm::testing::run_test(test, config, &mut Feed(inputs)),
        Err(problem) => vec![problem],
    };
    TestOutcome {
        name,
        line: test.line,
        failures,
    }
}

/// A test's input as a plugin test reads it.
struct Feed(Inputs);

impl weir_wasm::testing::Feed for Feed {
    fn next_time(&self) -> Option<i64> {
        self.0.next_time()
    }

    fn last_time(&self) -> Option<i64> {
        self.0.last_time()
    }

    fn up_to(&mut self, t: i64) -> Vec<(Signal, RecordBatch)> {
        self.0.up_to(t)
    }
}
