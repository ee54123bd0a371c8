//! Applying a changed pipeline file to a running Weir (`SIGHUP`).
//!
//! A component whose config changed, with the same inputs and queue, is
//! handed its new config through the reload hook it registered when it was
//! built ([`weir_config::Reload`]). Today the `rules` processors have one:
//! the rules whose definition is unchanged keep their alert state, partial
//! aggregates and buffered rows (see `weir_rules::RuleGroup::reload`).
//! Every other difference (a component without the hook or that refuses
//! the change, a processor's inputs, a component added or removed, the
//! `[api]`, `[store]`, `[query]` or `[runtime]` settings) is reported as
//! needing a restart and left as it runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use weir_config::{Hooks, Plan};

/// What one reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The components that took their new config.
    pub applied: Vec<String>,
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
    hooks: BTreeMap<String, Hooks>,
}

impl Reloader {
    /// A reloader for `plan`, running, whose components registered `hooks`
    /// (by component name) when they were built.
    pub fn new(plan: Plan, hooks: BTreeMap<String, Hooks>) -> Self {
        Reloader {
            inner: Arc::new(Mutex::new(Inner { plan, hooks })),
        }
    }

    /// Applies `new` (a validated plan of the changed file): hands each
    /// changed component that can take a new config its new config, and
    /// reports the rest of what differs as needing a restart.
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
            let hook = inner
                .hooks
                .get(&component.name)
                .and_then(|h| h.reload.as_ref());
            let refused = match hook {
                Some(_) if !same_wiring => {
                    Some("its inputs or queue changed, which a reload cannot apply".to_string())
                }
                Some(hook) => hook.reload(component.config.as_ref()).err(),
                None => Some(format!(
                    "a `{}` {} takes changes only on a restart",
                    component.type_name,
                    component.kind.noun()
                )),
            };
            match refused {
                None => {
                    outcome.applied.push(component.name.clone());
                    applied.push(component.clone());
                }
                Some(why) => outcome.needs_restart.push(format!(
                    "component `{}` changed; restart to apply it ({why})",
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
