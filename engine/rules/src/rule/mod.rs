//! A rule: what the user writes ([`RuleConfig`]) and what runs ([`Rule`]).
//!
//! * `config`: [`RuleConfig`], [`RuleKind`] and the rule's identity,
//!   [`RuleId`].
//! * `compile`: [`RuleConfig::validate`], which checks everything that can
//!   be checked before data arrives (durations, names, templates, and the
//!   SQL itself, planned against empty tables with the real schemas, its
//!   result shape checked), and the query planned once, pane by pane where
//!   it can be (see [`crate::incremental`]).
//! * `run`: the running [`Rule`], its compiled plan and, for alert rules,
//!   its [`AlertLifecycle`](crate::AlertLifecycle); an evaluation gives an
//!   [`Evaluation`].
//! * `state`: the saved state, [`RulesState`] (the state file's format),
//!   taken with [`RulesState::capture`] and given back with
//!   [`RulesState::restore`] to the rules whose definition is unchanged.
//! * `link`: [`generator_url`], the link from an alert back to its rule.
//!
//! A rule runs in a [`RuleGroup`](crate::RuleGroup), which holds the window
//! buffers, decides the evaluation times (the multiples of `every` since
//! the epoch, so that every instance and every `weir test` run agree) and
//! evaluates each of its rules in turn.

mod compile;
mod config;
mod link;
mod run;
mod state;
#[cfg(test)]
pub(crate) mod tests;

pub use config::{ALERTNAME, RuleConfig, RuleId, RuleKind};
pub use link::generator_url;
pub use run::{Evaluation, LastRun, Rule};
pub use state::{RestoreReport, RuleSnapshot, RulesState};
