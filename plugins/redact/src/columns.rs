//! A whole column through the [`Redactor`]: a text column (`body`) in and a
//! new one out, or one attribute key's values in and the edits out. Nothing
//! is allocated for a clean value, nothing is built while every value so
//! far is clean, and a value equal to the one before (a resource attribute
//! repeats on every row) reuses that one's outcome.

use weir_plugin::Text;

use crate::redactor::{Outcome, Redactor};

/// The replacement text of an outcome, `None` when the value stays:
/// a `drop` of a body leaves the dropping rule's mask.
fn replacement<'a>(redactor: &'a Redactor, outcome: &'a Outcome) -> Option<&'a str> {
    match outcome {
        Outcome::Clean => None,
        Outcome::Rewritten(text) => Some(text),
        Outcome::Dropped(rule) => Some(&redactor.rules()[*rule].mask),
    }
}

/// Redacts `value`, or reuses `last` when `value` equals the value it was
/// made for (counting its findings again).
fn redact_memo<'a>(redactor: &mut Redactor, last: &mut Option<(&'a str, Outcome)>, value: &'a str) {
    match last {
        Some((previous, _)) if *previous == value => redactor.count_last_again(),
        _ => *last = Some((value, redactor.redact(value))),
    }
}

/// Redacts every value of a text column (log bodies). Returns the new
/// column when a value changed, `None` when the column is clean. A body a
/// `drop` rule matched becomes that rule's mask text.
pub fn redact_text(redactor: &mut Redactor, column: &Text) -> Option<Text> {
    let mut out: Option<Text> = None;
    let mut last: Option<(&str, Outcome)> = None;
    for (row, value) in column.iter().enumerate() {
        let Some(value) = value else {
            if let Some(out) = &mut out {
                out.push(None);
            }
            continue;
        };
        redact_memo(redactor, &mut last, value);
        let outcome = last.as_ref().map_or(&Outcome::Clean, |(_, o)| o);
        match (replacement(redactor, outcome), &mut out) {
            (None, None) => {}
            (None, Some(out)) => out.push(Some(value)),
            (Some(new), out) => {
                let out = out.get_or_insert_with(|| {
                    // The rows before were clean: copy them as they are.
                    let mut text = Text::with_capacity(column.len(), column.as_bytes().len());
                    (0..row).for_each(|r| text.push(column.get(r)));
                    text
                });
                out.push(Some(new));
            }
        }
    }
    out
}

/// What redaction does to one attribute key's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeEdit {
    /// The new value of each row whose value was masked or hashed (`None`
    /// elsewhere): what `set-attribute` takes.
    pub rewritten: Vec<Option<String>>,
    /// The rows whose attribute a `drop` rule matched.
    pub dropped: Vec<bool>,
}

impl AttributeEdit {
    /// Whether any row's attribute is dropped.
    pub fn drops(&self) -> bool {
        self.dropped.contains(&true)
    }

    /// What to set after the key was removed from every row: each row that
    /// had it and keeps it gets its value back, rewritten or as it was.
    pub fn restored(&self, original: &[Option<String>]) -> Vec<Option<String>> {
        original
            .iter()
            .zip(&self.rewritten)
            .zip(&self.dropped)
            .map(|((old, new), dropped)| match dropped {
                true => None,
                false => new.clone().or_else(|| old.clone()),
            })
            .collect()
    }
}

/// Redacts the values of one attribute key (`None` where a row lacks it).
/// Returns the edit when a value changed, `None` when all are clean.
pub fn redact_values(redactor: &mut Redactor, values: &[Option<String>]) -> Option<AttributeEdit> {
    let mut edit: Option<AttributeEdit> = None;
    let mut last: Option<(&str, Outcome)> = None;
    for (row, value) in values.iter().enumerate() {
        let Some(value) = value else { continue };
        redact_memo(redactor, &mut last, value);
        let outcome = last.as_ref().map_or(&Outcome::Clean, |(_, o)| o);
        if *outcome == Outcome::Clean {
            continue;
        }
        let edit = edit.get_or_insert_with(|| AttributeEdit {
            rewritten: vec![None; values.len()],
            dropped: vec![false; values.len()],
        });
        match outcome {
            Outcome::Rewritten(text) => edit.rewritten[row] = Some(text.clone()),
            Outcome::Dropped(_) => edit.dropped[row] = true,
            Outcome::Clean => {}
        }
    }
    edit
}
