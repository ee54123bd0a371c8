//! Alert events as the outside world reads them.
//!
//! * [`alerts_batch`]: rows of the store's `alerts` table (its schema is
//!   weir-store's [`Table::Alerts`]), one per event;
//! * [`postable_alerts`]: the body of Alertmanager's `POST /api/v2/alerts`
//!   (`postableAlerts`), as Prometheus sends it;
//! * [`webhook_message`]: Alertmanager's webhook payload (version 4), for
//!   receivers that expect what Alertmanager would have sent them.
//!
//! Times are RFC 3339 in UTC.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, MapBuilder, MapFieldNames, StringArray, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::Serialize;
use weir_core::schema::TIME_ZONE;
use weir_store::Table;

use crate::alert::{AlertEvent, EventState, label_set_text};
use crate::time::rfc3339;

/// Go's zero time, which Alertmanager puts in the `endsAt` of firing alerts
/// in webhook payloads.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The rows of the `alerts` table for `events`, one per event.
pub fn alerts_batch(events: &[AlertEvent]) -> Result<RecordBatch, ArrowError> {
    let tz = TIME_ZONE;
    let time =
        TimestampNanosecondArray::from_iter_values(events.iter().map(|e| e.time)).with_timezone(tz);
    let mut rule = StringDictionaryBuilder::<Int32Type>::new();
    let mut state = StringDictionaryBuilder::<Int32Type>::new();
    for e in events {
        rule.append_value(&e.rule);
        state.append_value(e.state.as_str());
    }
    let labels = string_map(events.iter().map(|e| &e.labels))?;
    let annotations = string_map(events.iter().map(|e| &e.annotations))?;
    let value = Float64Array::from_iter_values(events.iter().map(|e| e.value));
    let starts_at = TimestampNanosecondArray::from_iter(events.iter().map(|e| Some(e.starts_at)))
        .with_timezone(tz);
    let ends_at =
        TimestampNanosecondArray::from_iter(events.iter().map(|e| e.ends_at)).with_timezone(tz);
    let fingerprint = StringArray::from_iter_values(events.iter().map(|e| &e.fingerprint));
    let generator_url = StringArray::from_iter_values(events.iter().map(|e| &e.generator_url));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time),
        Arc::new(rule.finish()),
        Arc::new(state.finish()),
        labels,
        annotations,
        Arc::new(value),
        Arc::new(starts_at),
        Arc::new(ends_at),
        Arc::new(fingerprint),
        Arc::new(generator_url),
    ];
    RecordBatch::try_new(Table::Alerts.schema(), columns)
}

fn string_map<'a>(
    maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> Result<ArrayRef, ArrowError> {
    let names = MapFieldNames {
        entry: "entries".to_string(),
        key: "keys".to_string(),
        value: "values".to_string(),
    };
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for map in maps {
        for (k, v) in map {
            builder.keys().append_value(k);
            builder.values().append_value(v);
        }
        builder.append(true)?;
    }
    Ok(Arc::new(builder.finish()))
}

/// One alert of Alertmanager's `postableAlerts` (API v2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// The identifying labels.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it fired.
    pub starts_at: String,
    /// When it resolved, or until when a firing alert is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// The link back to the rule.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// The body of `POST /api/v2/alerts` for the firing and resolved events
/// among `events` (pending and inactive ones are not Alertmanager's
/// business).
pub fn postable_alerts(events: &[AlertEvent]) -> Vec<PostableAlert> {
    events
        .iter()
        .filter(|e| matches!(e.state, EventState::Firing | EventState::Resolved))
        .map(|e| PostableAlert {
            labels: e.labels.clone(),
            annotations: e.annotations.clone(),
            starts_at: rfc3339(e.starts_at),
            ends_at: e.ends_at.map(rfc3339),
            generator_url: e.generator_url.clone(),
        })
        .collect()
}

/// One alert of a webhook payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// The identifying labels.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it fired.
    pub starts_at: String,
    /// When it resolved; [`ZERO_TIME`] while it fires, as Alertmanager
    /// sends.
    pub ends_at: String,
    /// The link back to the rule.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// The Alertmanager fingerprint of the labels.
    pub fingerprint: String,
}

/// Alertmanager's webhook payload, version 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// Always `"4"`.
    pub version: String,
    /// Identifies the group (`{}:{alertname="..."}`).
    pub group_key: String,
    /// How many alerts were left out by `max_alerts`.
    pub truncated_alerts: usize,
    /// `firing` if any alert of the group fires, else `resolved`.
    pub status: String,
    /// The receiver's name.
    pub receiver: String,
    /// The labels the group is keyed by.
    pub group_labels: BTreeMap<String, String>,
    /// The labels all alerts share.
    pub common_labels: BTreeMap<String, String>,
    /// The annotations all alerts share.
    pub common_annotations: BTreeMap<String, String>,
    /// The URL of the sender.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// Who a webhook message is for and how its alerts are grouped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookGroup {
    /// The receiver's name.
    pub receiver: String,
    /// The labels the group is keyed by (e.g. `alertname`).
    pub group_labels: BTreeMap<String, String>,
    /// The URL of the sender.
    pub external_url: String,
    /// The most alerts in one message; 0 means no limit.
    pub max_alerts: usize,
}

/// The webhook payload for the firing and resolved events among `events`.
pub fn webhook_message(group: &WebhookGroup, events: &[AlertEvent]) -> WebhookMessage {
    let sendable: Vec<&AlertEvent> = events
        .iter()
        .filter(|e| matches!(e.state, EventState::Firing | EventState::Resolved))
        .collect();
    let firing = sendable.iter().any(|e| e.state == EventState::Firing);
    let common = |field: fn(&AlertEvent) -> &BTreeMap<String, String>| {
        let mut iter = sendable.iter();
        let mut common = iter.next().map(|e| field(e).clone()).unwrap_or_default();
        for e in iter {
            common.retain(|k, v| field(e).get(k) == Some(v));
        }
        common
    };
    let common_labels = common(|e| &e.labels);
    let common_annotations = common(|e| &e.annotations);
    let limit = if group.max_alerts == 0 {
        sendable.len()
    } else {
        group.max_alerts.min(sendable.len())
    };
    let alerts = sendable[..limit]
        .iter()
        .map(|e| WebhookAlert {
            status: status(e.state).to_string(),
            labels: e.labels.clone(),
            annotations: e.annotations.clone(),
            starts_at: rfc3339(e.starts_at),
            ends_at: match (e.state, e.ends_at) {
                (EventState::Resolved, Some(t)) => rfc3339(t),
                _ => ZERO_TIME.to_string(),
            },
            generator_url: e.generator_url.clone(),
            fingerprint: e.fingerprint.clone(),
        })
        .collect();
    WebhookMessage {
        version: "4".to_string(),
        group_key: format!("{{}}:{}", label_set_text(&group.group_labels)),
        truncated_alerts: sendable.len() - limit,
        status: if firing { "firing" } else { "resolved" }.to_string(),
        receiver: group.receiver.clone(),
        group_labels: group.group_labels.clone(),
        common_labels,
        common_annotations,
        external_url: group.external_url.clone(),
        alerts,
    }
}

fn status(state: EventState) -> &'static str {
    match state {
        EventState::Resolved => "resolved",
        _ => "firing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::fingerprint_hex;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampNanosecondType;
    use serde_json::json;

    const S: i64 = 1_000_000_000;

    fn event(state: EventState, service: &str) -> AlertEvent {
        let labels = BTreeMap::from([
            ("alertname".to_string(), "HighErrorRate".to_string()),
            ("service".to_string(), service.to_string()),
        ]);
        AlertEvent {
            rule: "HighErrorRate".into(),
            time: 120 * S,
            state,
            fingerprint: fingerprint_hex(&labels),
            labels,
            annotations: BTreeMap::from([("summary".to_string(), format!("{service} fails"))]),
            value: 0.5,
            starts_at: 60 * S,
            ends_at: match state {
                EventState::Pending => None,
                EventState::Firing => Some(360 * S),
                _ => Some(120 * S),
            },
            generator_url: "http://weir:8080/rules/HighErrorRate".into(),
        }
    }

    /// Guarantees: events become rows of exactly the store's `alerts`
    /// schema, with their state, labels and times.
    #[test]
    fn alerts_table_rows() {
        let events = [
            event(EventState::Pending, "cart"),
            event(EventState::Resolved, "pay"),
        ];
        let batch = alerts_batch(&events).unwrap();
        assert_eq!(batch.schema(), Table::Alerts.schema());
        assert_eq!(batch.num_rows(), 2);
        let ends = batch.column_by_name("ends_at").unwrap();
        assert!(ends.is_null(0));
        assert_eq!(
            ends.as_primitive::<TimestampNanosecondType>().value(1),
            120 * S
        );
        let labels = batch.column_by_name("labels").unwrap().as_map();
        assert_eq!(labels.value(1).len(), 2);
        let keys = labels.keys().as_string::<i32>();
        assert_eq!(keys.value(2), "alertname");
        assert!(alerts_batch(&[]).unwrap().num_rows() == 0);
    }

    /// Guarantees: `postableAlerts` carries exactly Alertmanager v2's fields,
    /// RFC 3339 times, and leaves pending events out.
    #[test]
    fn postable_alerts_json() {
        let events = [
            event(EventState::Pending, "cart"),
            event(EventState::Firing, "pay"),
        ];
        let body = serde_json::to_value(postable_alerts(&events)).unwrap();
        assert_eq!(
            body,
            json!([{
                "labels": {"alertname": "HighErrorRate", "service": "pay"},
                "annotations": {"summary": "pay fails"},
                "startsAt": "1970-01-01T00:01:00.000000000Z",
                "endsAt": "1970-01-01T00:06:00.000000000Z",
                "generatorURL": "http://weir:8080/rules/HighErrorRate"
            }])
        );
    }

    /// Guarantees: the webhook payload is Alertmanager's version 4: group
    /// status, common labels and annotations, zero `endsAt` while firing,
    /// fingerprints, and `truncatedAlerts` under `max_alerts`.
    #[test]
    fn webhook_payload_v4() {
        let events = [
            event(EventState::Firing, "cart"),
            event(EventState::Resolved, "pay"),
        ];
        let group = WebhookGroup {
            receiver: "team".into(),
            group_labels: BTreeMap::from([("alertname".into(), "HighErrorRate".into())]),
            external_url: "http://weir:8080".into(),
            max_alerts: 0,
        };
        let msg = serde_json::to_value(webhook_message(&group, &events)).unwrap();
        assert_eq!(msg["version"], "4");
        assert_eq!(msg["status"], "firing");
        assert_eq!(msg["groupKey"], "{}:{alertname=\"HighErrorRate\"}");
        assert_eq!(msg["commonLabels"], json!({"alertname": "HighErrorRate"}));
        assert_eq!(msg["commonAnnotations"], json!({}));
        assert_eq!(msg["externalURL"], "http://weir:8080");
        assert_eq!(msg["truncatedAlerts"], 0);
        assert_eq!(msg["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(msg["alerts"][1]["status"], "resolved");
        assert_eq!(msg["alerts"][1]["endsAt"], "1970-01-01T00:02:00.000000000Z");
        assert_eq!(msg["alerts"][1]["fingerprint"], events[1].fingerprint);
        let resolved = webhook_message(
            &WebhookGroup {
                max_alerts: 1,
                ..group
            },
            &events[1..],
        );
        assert_eq!(
            (resolved.status.as_str(), resolved.truncated_alerts),
            ("resolved", 0)
        );
        let truncated = webhook_message(
            &WebhookGroup {
                max_alerts: 1,
                ..Default::default()
            },
            &events,
        );
        assert_eq!((truncated.alerts.len(), truncated.truncated_alerts), (1, 1));
    }
}
