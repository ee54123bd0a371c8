//! Alert events -> Kafka messages.
//!
//! * `alert_event`: one JSON object per row of the `alerts` table
//!   (transitions and notifications), keyed by the alert's fingerprint, so
//!   that a compacted topic keeps each alert's latest state.
//! * `alertmanager_webhook`: Alertmanager's webhook message (version 4),
//!   one per group of notifications, keyed by its group key: what tools
//!   that bridge Alertmanager to Kafka already read.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use serde::Serialize;
use weir_sinks::alerts::payload::{WebhookGrouping, ZERO_TIME, rfc3339, webhook_messages};
use weir_sinks::alerts::rows::{self, AlertEvent};

use super::config::AlertsEncoding;
use super::encode::Outbound;

/// One alert event as written with `alert_event`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    /// `transition` (the alert changed state) or `notification` (what is
    /// sent to Alertmanager: firing and resolved, re-sent while it lasts).
    pub kind: String,
    /// `pending`, `firing`, `resolved` or `inactive`.
    pub status: String,
    /// The labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// When the alert started (RFC 3339).
    pub starts_at: String,
    /// When it ended, or Go's zero time while it lasts.
    pub ends_at: String,
    /// The link back to the rule.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    pub fingerprint: String,
    /// The rule that made it.
    pub rule: String,
    /// When the event happened (RFC 3339).
    pub time: String,
    /// The value of the rule's expression, if it has one.
    pub value: Option<f64>,
}

impl From<AlertEvent> for EventMessage {
    fn from(e: AlertEvent) -> Self {
        let ends_at = match (e.state.as_str(), e.ends_at) {
            ("resolved" | "inactive", Some(t)) => rfc3339(t),
            _ => ZERO_TIME.to_string(),
        };
        EventMessage {
            kind: e.kind,
            status: e.state,
            labels: e.labels,
            annotations: e.annotations,
            starts_at: if e.starts_at > 0 {
                rfc3339(e.starts_at)
            } else {
                ZERO_TIME.to_string()
            },
            ends_at,
            generator_url: e.generator_url,
            fingerprint: e.fingerprint,
            rule: e.rule,
            time: rfc3339(e.time),
            // JSON has no NaN or infinities.
            value: e.value.filter(|v| v.is_finite()),
        }
    }
}

/// The messages for an `alerts` batch.
pub(crate) fn messages(
    batch: &RecordBatch,
    encoding: AlertsEncoding,
    grouping: &WebhookGrouping,
) -> Result<Vec<Outbound>, String> {
    match encoding {
        AlertsEncoding::AlertEvent => rows::events(batch)?
            .into_iter()
            .map(|e| {
                let key = e.fingerprint.clone().into_bytes();
                let m = EventMessage::from(e);
                Ok(Outbound {
                    key: Some(key),
                    value: serde_json::to_vec(&m).map_err(|e| e.to_string())?,
                })
            })
            .collect(),
        AlertsEncoding::AlertmanagerWebhook => {
            let alerts = rows::notifications(batch)?;
            webhook_messages(grouping, &alerts)
                .into_iter()
                .map(|m| {
                    Ok(Outbound {
                        key: Some(m.group_key.clone().into_bytes()),
                        value: serde_json::to_vec(&m).map_err(|e| e.to_string())?,
                    })
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a resolved event carries its end time; a firing one
    /// Go's zero time, as Alertmanager writes them; NaN values become null.
    #[test]
    fn event_json() {
        let event = |state: &str| AlertEvent {
            kind: "transition".into(),
            state: state.into(),
            rule: "HighErrors".into(),
            time: 60_000_000_000,
            value: Some(f64::NAN),
            labels: BTreeMap::from([("alertname".into(), "HighErrors".into())]),
            annotations: BTreeMap::new(),
            starts_at: 60_000_000_000,
            ends_at: Some(120_000_000_000),
            generator_url: "http://weir/rules".into(),
            fingerprint: "abc".into(),
        };
        let firing = serde_json::to_value(EventMessage::from(event("firing"))).expect("json");
        assert_eq!(firing["status"], "firing");
        assert_eq!(firing["endsAt"], ZERO_TIME);
        assert_eq!(firing["startsAt"], "1970-01-01T00:01:00.000000000Z");
        assert_eq!(firing["generatorURL"], "http://weir/rules");
        assert!(firing["value"].is_null());
        let resolved = serde_json::to_value(EventMessage::from(event("resolved"))).expect("json");
        assert_eq!(resolved["endsAt"], "1970-01-01T00:02:00.000000000Z");
    }
}
