//! [`Redactor`]: finds what the rules match in one string and says what
//! becomes of it.
//!
//! One pass of a lazy DFA over every rule's pattern at once tells which
//! rules may match; a clean string costs that pass and nothing else (no
//! allocation). For the rules that may, each rule's own regex finds the
//! candidates and the preset's check keeps the real ones. Findings that
//! overlap are settled (the earliest wins, then the longest, then the rule
//! listed first), and the string is rebuilt once.

use regex_automata::meta;
use regex_automata::{Input, MatchKind, PatternSet};

use crate::config::{Action, ConfigError, RuleSpec};
use crate::hash::{HEX_LEN, KeyedHash};

/// What became of one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing found: keep it.
    Clean,
    /// Findings masked or hashed: the new text.
    Rewritten(String),
    /// A finding of a `drop` rule: drop the value. The index is the rule's.
    Dropped(usize),
}

/// One finding: a byte range of the string and the rule that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Finding {
    start: usize,
    end: usize,
    rule: usize,
}

/// The rules, compiled, with the scratch space of a search and the count
/// of findings per rule since [`Redactor::take_counts`].
#[derive(Debug)]
pub struct Redactor {
    rules: Vec<RuleSpec>,
    /// Every rule's pattern, one pattern id per rule.
    any: meta::Regex,
    hits: PatternSet,
    findings: Vec<Finding>,
    counts: Vec<u64>,
    hash: Option<KeyedHash>,
    /// `[HASH:<rule>:` per rule.
    hash_prefixes: Vec<String>,
}

impl Redactor {
    /// Compiles the prefilter over `rules`; `hash` is the key of rules that
    /// hash (the config checked that it is there when one does).
    pub fn new(rules: Vec<RuleSpec>, hash: Option<KeyedHash>) -> Result<Self, ConfigError> {
        let patterns: Vec<&str> = rules.iter().map(|r| r.regex.as_str()).collect();
        let any = meta::Regex::builder()
            .configure(meta::Regex::config().match_kind(MatchKind::All))
            .build_many(&patterns)
            .map_err(|e| ConfigError::TooLarge(e.to_string()))?;
        let hits = PatternSet::new(any.pattern_len());
        let hash_prefixes = rules.iter().map(|r| format!("[HASH:{}:", r.name)).collect();
        Ok(Redactor {
            counts: vec![0; rules.len()],
            rules,
            any,
            hits,
            findings: Vec::new(),
            hash,
            hash_prefixes,
        })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    /// The findings per rule (in [`Redactor::rules`]' order) since the last
    /// call, and starts counting again from zero.
    pub fn take_counts(&mut self) -> Vec<u64> {
        std::mem::replace(&mut self.counts, vec![0; self.rules.len()])
    }

    /// Counts the findings of the last [`Redactor::redact`] once more: for
    /// a value equal to the one before, whose outcome is reused.
    pub fn count_last_again(&mut self) {
        for f in &self.findings {
            self.counts[f.rule] += 1;
        }
    }

    /// Finds and settles the findings in `text` and says what becomes of
    /// it. Counts the findings.
    pub fn redact(&mut self, text: &str) -> Outcome {
        self.findings.clear();
        self.hits.clear();
        self.any
            .which_overlapping_matches(&Input::new(text), &mut self.hits);
        if self.hits.is_empty() {
            return Outcome::Clean;
        }
        for rule in self.hits.iter() {
            find(
                &self.rules[rule.as_usize()],
                rule.as_usize(),
                text,
                &mut self.findings,
            );
        }
        if self.findings.is_empty() {
            return Outcome::Clean;
        }
        settle(&mut self.findings);
        let mut dropped = None;
        for f in &self.findings {
            self.counts[f.rule] += 1;
            if dropped.is_none() && self.rules[f.rule].action == Action::Drop {
                dropped = Some(f.rule);
            }
        }
        match dropped {
            Some(rule) => Outcome::Dropped(rule),
            None => Outcome::Rewritten(self.rewrite(text)),
        }
    }

    /// `text` with every finding replaced by its rule's mask or hash.
    fn rewrite(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 24 * self.findings.len());
        let mut at = 0;
        for f in &self.findings {
            out.push_str(&text[at..f.start]);
            let rule = &self.rules[f.rule];
            match (rule.action, &self.hash) {
                (Action::Hash, Some(hash)) => {
                    out.reserve(HEX_LEN + 1);
                    out.push_str(&self.hash_prefixes[f.rule]);
                    hash.push_hex(&text.as_bytes()[f.start..f.end], &mut out);
                    out.push(']');
                }
                // Without a key the config is refused; mask rather than
                // leak should it ever get here.
                _ => out.push_str(&rule.mask),
            }
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// Pushes `rule`'s findings in `text` onto `out`. A candidate its check
/// rejects is skipped by one character only, so that a real finding
/// starting inside it is still found.
fn find(rule: &RuleSpec, index: usize, text: &str, out: &mut Vec<Finding>) {
    let mut at = 0;
    while at <= text.len() {
        let Some(m) = rule.regex.find_at(text, at) else {
            break;
        };
        let span = match rule.preset {
            Some(preset) => preset.check(text, m.range()),
            None => Some(m.range()),
        };
        match span {
            Some(span) if !span.is_empty() => {
                out.push(Finding {
                    start: span.start,
                    end: span.end,
                    rule: index,
                });
                at = m.end().max(span.end);
            }
            _ => at = next_char(text, m.start()),
        }
    }
}

/// The byte index of the character after the one at `at`.
fn next_char(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(at + 1, |c| at + c.len_utf8())
}

/// Sorts findings by position and keeps those that overlap none kept
/// before: the earliest start wins, then the longest, then the first rule.
fn settle(findings: &mut Vec<Finding>) {
    if findings.len() < 2 {
        return;
    }
    findings.sort_unstable_by_key(|f| (f.start, std::cmp::Reverse(f.end), f.rule));
    let mut end = 0;
    findings.retain(|f| {
        let keep = f.start >= end;
        if keep {
            end = f.end;
        }
        keep
    });
}
