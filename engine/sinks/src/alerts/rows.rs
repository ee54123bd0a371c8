//! Alert events read back from the rows of an `alerts` batch.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, MapArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;

/// One alert to send: a `notification` row of the `alerts` table whose
/// state is `firing` or `resolved`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// Whether it is resolved (else it fires).
    pub resolved: bool,
    /// The labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// `startsAt`, nanoseconds since the epoch.
    pub starts_at: i64,
    /// `endsAt`: the resolution time, or until when a firing alert holds.
    pub ends_at: Option<i64>,
    /// The link back to the rule.
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    pub fingerprint: String,
}

/// One row of an `alerts` batch: an alert event of either kind.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// `transition` or `notification`.
    pub kind: String,
    /// `pending`, `firing`, `resolved` or `inactive`.
    pub state: String,
    /// The rule that made it.
    pub rule: String,
    /// When it happened, nanoseconds since the epoch.
    pub time: i64,
    /// The value of the rule's expression, if it has one.
    pub value: Option<f64>,
    /// The labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// `startsAt`, nanoseconds since the epoch (0 if unset).
    pub starts_at: i64,
    /// `endsAt`, if set.
    pub ends_at: Option<i64>,
    /// The link back to the rule.
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    pub fingerprint: String,
}

/// The notifications among the rows of `batch` (a batch of the `alerts`
/// schema): rows of kind `notification` in state `firing` or `resolved`.
/// Transitions (`pending`, `inactive`, and the state changes themselves)
/// are for the store, not for Alertmanager.
pub fn notifications(batch: &RecordBatch) -> Result<Vec<AlertRow>, String> {
    Ok(events(batch)?
        .into_iter()
        .filter(|e| e.kind == "notification")
        .filter_map(|e| {
            let resolved = match e.state.as_str() {
                "firing" => false,
                "resolved" => true,
                _ => return None,
            };
            Some(AlertRow {
                resolved,
                labels: e.labels,
                annotations: e.annotations,
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                generator_url: e.generator_url,
                fingerprint: e.fingerprint,
            })
        })
        .collect())
}

/// Every row of `batch` (a batch of the `alerts` schema), transitions and
/// notifications, in order. Rows without a kind or state are left out.
pub fn events(batch: &RecordBatch) -> Result<Vec<AlertEvent>, String> {
    let text = |name: &str| -> Result<StringArray, String> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| format!("the alerts batch has no `{name}` column"))?;
        let utf8 = cast(column, &DataType::Utf8).map_err(|e| format!("column `{name}`: {e}"))?;
        Ok(utf8.as_string::<i32>().clone())
    };
    let map = |name: &str| -> Result<MapArray, String> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_map_opt())
            .cloned()
            .ok_or_else(|| format!("the alerts batch has no map column `{name}`"))
    };
    let time = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
            .cloned()
            .ok_or_else(|| format!("the alerts batch has no timestamp column `{name}`"))
    };
    let (kind, state, rule, fingerprint, url) = (
        text("kind")?,
        text("state")?,
        text("rule")?,
        text("fingerprint")?,
        text("generator_url")?,
    );
    let value = batch
        .column_by_name("value")
        .and_then(|c| c.as_primitive_opt::<Float64Type>())
        .cloned()
        .ok_or("the alerts batch has no float column `value`")?;
    let (labels, annotations) = (map("labels")?, map("annotations")?);
    let (at, starts_at, ends_at) = (time("time")?, time("starts_at")?, time("ends_at")?);
    let string = |a: &StringArray, row: usize| {
        if a.is_null(row) {
            String::new()
        } else {
            a.value(row).to_string()
        }
    };
    let mut rows = Vec::new();
    for row in 0..batch.num_rows() {
        if kind.is_null(row) || state.is_null(row) {
            continue;
        }
        rows.push(AlertEvent {
            kind: kind.value(row).to_string(),
            state: state.value(row).to_string(),
            rule: string(&rule, row),
            time: if at.is_null(row) { 0 } else { at.value(row) },
            value: (!value.is_null(row)).then(|| value.value(row)),
            labels: entries(&labels, row)?,
            annotations: entries(&annotations, row)?,
            starts_at: if starts_at.is_null(row) {
                0
            } else {
                starts_at.value(row)
            },
            ends_at: (!ends_at.is_null(row)).then(|| ends_at.value(row)),
            generator_url: string(&url, row),
            fingerprint: string(&fingerprint, row),
        });
    }
    Ok(rows)
}

fn entries(map: &MapArray, row: usize) -> Result<BTreeMap<String, String>, String> {
    if map.is_null(row) {
        return Ok(BTreeMap::new());
    }
    let entry = map.value(row);
    let keys = cast(entry.column(0), &DataType::Utf8).map_err(|e| e.to_string())?;
    let values = cast(entry.column(1), &DataType::Utf8).map_err(|e| e.to_string())?;
    let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
    Ok((0..keys.len())
        .filter(|&i| !keys.is_null(i))
        .map(|i| {
            let value = if values.is_null(i) {
                ""
            } else {
                values.value(i)
            };
            (keys.value(i).to_string(), value.to_string())
        })
        .collect())
}
