//! Applying a changed pipeline file to a running Weir (`SIGHUP`).
//!
//! What a reload changes today is the rules: each `rules` processor takes
//! its new definitions; the rules whose definition is unchanged keep their
//! alert state, partial aggregates and buffered rows (see
//! `weir_rules::RuleGroup::reload`). Every other difference (a source, sink
//! or plugin, a processor's inputs, the `[api]`, `[store]`, `[query]` or
//! `[runtime]` settings) is reported as needing a restart and left as it
//! runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use weir_config::{ComponentConfig, Plan, ProcessorConfig, RulesConfig};
use weir_rules::Reloads;

/// What one reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The `rules` processors that were sent new rules.
    pub rules: Vec<String>,
    /// What changed that only a restart applies, one line each.
    pub needs_restart: Vec<String>,
}

/// Hands the changes of a pipeline file to the running components. Cheap
/// to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// The plan as it now runs.
    plan: Plan,
    reloads: BTreeMap<String, Reloads>,
}

/// The rules of a `rules` processor component, if it is one.
fn rules_of(config: &ComponentConfig) -> Option<&RulesConfig> {
    match config {
        ComponentConfig::Processor(ProcessorConfig::Rules(rules)) => Some(rules),
        _ => None,
    }
}

impl Reloader {
    /// A reloader for `plan`, running, whose `rules` processors take new
    /// definitions through `reloads` (by component name).
    pub fn new(plan: Plan, reloads: BTreeMap<String, Reloads>) -> Self {
        Reloader {
            inner: Arc::new(Mutex::new(Inner { plan, reloads })),
        }
    }

    /// Applies `new` (a validated plan of the changed file): sends each
    /// `rules` processor whose rules changed its new rules, and reports the
    /// rest of what differs as needing a restart.
    pub fn reload(&self, new: &Plan) -> ReloadOutcome {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut outcome = ReloadOutcome::default();
        let sections = [
            ("[api]", inner.plan.api != new.api),
            ("[runtime]", inner.plan.runtime != new.runtime),
            ("[store]", inner.plan.store != new.store),
            ("[query]", inner.plan.query != new.query),
        ];
        for (section, changed) in sections {
            if changed {
                outcome
                    .needs_restart
                    .push(format!("{section} changed; restart to apply it"));
            }
        }
        for old in &inner.plan.components {
            if new.component(&old.name).is_none() {
                outcome.needs_restart.push(format!(
                    "component `{}` was removed; restart to apply it",
                    old.name
                ));
            }
        }
        let mut applied = Vec::new();
        for component in &new.components {
            let Some(old) = inner.plan.component(&component.name) else {
                outcome.needs_restart.push(format!(
                    "component `{}` is new; restart to start it",
                    component.name
                ));
                continue;
            };
            if old == component {
                continue;
            }
            let same_wiring =
                old.inputs == component.inputs && old.queue_capacity == component.queue_capacity;
            match (rules_of(&old.config), rules_of(&component.config)) {
                (Some(_), Some(rules)) if same_wiring => {
                    if let Some(reloads) = inner.reloads.get(&component.name) {
                        reloads.send(rules.clone());
                        outcome.rules.push(component.name.clone());
                        applied.push(component.clone());
                    }
                }
                _ => outcome.needs_restart.push(format!(
                    "component `{}` changed; restart to apply it (a reload changes only \
                     the rules of `rules` processors)",
                    component.name
                )),
            }
        }
        for component in applied {
            if let Some(slot) = inner
                .plan
                .components
                .iter_mut()
                .find(|c| c.name == component.name)
            {
                *slot = component;
            }
        }
        outcome
    }
}
