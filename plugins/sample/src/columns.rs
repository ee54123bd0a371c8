//! The columns of a batch the plugin reads, each once per batch
//! (`docs/schema.md` names them).

use weir_plugin::{AttributeSet, Batch, Error, Text};

use crate::config::HeadPlan;
use crate::head::LogColumns;
use crate::policy::Needs;

/// What tail sampling reads of a batch of spans: row `i` of each is span
/// `i`; the optional ones only when a policy needs them.
#[derive(Debug, Clone, Default)]
pub struct TailColumns {
    /// `trace_id`, 32 lowercase hex digits.
    pub trace_ids: Text,
    /// `trace_state` (for `rv`), with a probabilistic policy.
    pub trace_states: Option<Text>,
    /// `status_code`, with a status policy.
    pub status: Option<Vec<Option<i64>>>,
    /// `start_time` (ns since the epoch), with a latency policy.
    pub start: Option<Vec<Option<i64>>>,
    /// `end_time`, with a latency policy.
    pub end: Option<Vec<Option<i64>>>,
    /// Per attribute key of [`Needs::attributes`]: the span's value, else
    /// its resource's.
    pub attributes: Vec<Vec<Option<String>>>,
}

impl TailColumns {
    /// The number of spans.
    pub fn len(&self) -> usize {
        self.trace_ids.len()
    }

    /// Whether there is no span.
    pub fn is_empty(&self) -> bool {
        self.trace_ids.is_empty()
    }

    /// Reads what `needs` asks for: `trace_id`, and per attribute key one
    /// read of the spans' attributes (two when a span lacks it).
    pub fn read(batch: &Batch<'_>, needs: &Needs) -> Result<Self, Error> {
        let attributes = needs
            .attributes
            .iter()
            .map(|key| span_or_resource(batch, key))
            .collect::<Result<_, _>>()?;
        Ok(TailColumns {
            trace_ids: batch.text("trace_id")?,
            trace_states: needs
                .trace_state
                .then(|| batch.text("trace_state"))
                .transpose()?,
            status: needs
                .status
                .then(|| batch.ints("status_code"))
                .transpose()?,
            start: needs.times.then(|| batch.ints("start_time")).transpose()?,
            end: needs.times.then(|| batch.ints("end_time")).transpose()?,
            attributes,
        })
    }
}

/// Attribute `key` of every row: the record's, else its resource's (read
/// only when some row lacks the record's).
fn span_or_resource(batch: &Batch<'_>, key: &str) -> Result<Vec<Option<String>>, Error> {
    let mut values = batch.attribute(AttributeSet::Record, key)?;
    if values.iter().any(Option::is_none) {
        let resource = batch.attribute(AttributeSet::Resource, key)?;
        for (v, r) in values.iter_mut().zip(resource) {
            if v.is_none() {
                *v = r;
            }
        }
    }
    Ok(values)
}

/// Reads what head sampling of logs needs.
pub fn read_logs(batch: &Batch<'_>, plan: &HeadPlan) -> Result<LogColumns, Error> {
    let trace_ids = batch.text("trace_id")?;
    let hashed = match &plan.logs_hash_attribute {
        Some(key) if trace_ids.iter().any(|t| t.is_none()) => Some(span_or_resource(batch, key)?),
        _ => None,
    };
    Ok(LogColumns {
        trace_ids,
        threshold: batch.attribute(AttributeSet::Record, crate::LOG_THRESHOLD)?,
        randomness: batch.attribute(AttributeSet::Record, crate::LOG_RANDOMNESS)?,
        hashed,
    })
}
