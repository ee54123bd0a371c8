//! The JSON Alertmanager and its webhook receivers read.
//!
//! * [`postable_alerts`]: the body of Alertmanager's `POST /api/v2/alerts`
//!   (`postableAlerts`), as Prometheus sends it;
//! * [`webhook_messages`]: Alertmanager's webhook payload (version 4), one
//!   message per group, for receivers that expect what Alertmanager would
//!   have sent them.
//!
//! Times are RFC 3339 in UTC.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::rows::AlertRow;

/// Go's zero time, which Alertmanager puts in the `endsAt` of firing alerts
/// in webhook payloads.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `t` (nanoseconds since the epoch) as RFC 3339 in UTC.
pub fn rfc3339(t: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_nanos(u64::try_from(t).unwrap_or(0));
    humantime::format_rfc3339_nanos(at).to_string()
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

/// The body of `POST /api/v2/alerts` for `alerts`.
pub fn postable_alerts(alerts: &[AlertRow]) -> Vec<PostableAlert> {
    alerts
        .iter()
        .map(|a| PostableAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.starts_at),
            ends_at: a.ends_at.map(rfc3339),
            generator_url: a.generator_url.clone(),
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

/// Who webhook messages are for and how alerts are grouped into them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookGrouping {
    /// The receiver's name.
    pub receiver: String,
    /// The labels alerts are grouped by; an alert without one of them
    /// groups with those that lack it too, as in Alertmanager.
    pub group_by: Vec<String>,
    /// The URL of the sender.
    pub external_url: String,
    /// The most alerts in one message; 0 means no limit.
    pub max_alerts: usize,
}

/// The webhook messages for `alerts`: one per group, in group order.
pub fn webhook_messages(grouping: &WebhookGrouping, alerts: &[AlertRow]) -> Vec<WebhookMessage> {
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<&AlertRow>> = BTreeMap::new();
    for alert in alerts {
        let key = grouping
            .group_by
            .iter()
            .filter_map(|l| Some((l.clone(), alert.labels.get(l)?.clone())))
            .collect();
        groups.entry(key).or_default().push(alert);
    }
    groups
        .into_iter()
        .map(|(group_labels, alerts)| message(grouping, group_labels, &alerts))
        .collect()
}

fn message(
    grouping: &WebhookGrouping,
    group_labels: BTreeMap<String, String>,
    alerts: &[&AlertRow],
) -> WebhookMessage {
    let firing = alerts.iter().any(|a| !a.resolved);
    let common = |field: fn(&AlertRow) -> &BTreeMap<String, String>| {
        let mut iter = alerts.iter();
        let mut common = iter.next().map(|a| field(a).clone()).unwrap_or_default();
        for a in iter {
            common.retain(|k, v| field(a).get(k) == Some(v));
        }
        common
    };
    let limit = match grouping.max_alerts {
        0 => alerts.len(),
        max => max.min(alerts.len()),
    };
    WebhookMessage {
        version: "4".to_string(),
        group_key: format!("{{}}:{}", label_set_text(&group_labels)),
        truncated_alerts: alerts.len() - limit,
        status: if firing { "firing" } else { "resolved" }.to_string(),
        receiver: grouping.receiver.clone(),
        group_labels,
        common_labels: common(|a| &a.labels),
        common_annotations: common(|a| &a.annotations),
        external_url: grouping.external_url.clone(),
        alerts: alerts[..limit]
            .iter()
            .map(|a| WebhookAlert {
                status: if a.resolved { "resolved" } else { "firing" }.to_string(),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.starts_at),
                ends_at: match (a.resolved, a.ends_at) {
                    (true, Some(t)) => rfc3339(t),
                    _ => ZERO_TIME.to_string(),
                },
                generator_url: a.generator_url.clone(),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
    }
}

/// `{a="1", b="2"}`, as Alertmanager prints a label set.
fn label_set_text(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: i64 = 1_000_000_000;

    fn alert(resolved: bool, service: &str) -> AlertRow {
        AlertRow {
            resolved,
            labels: BTreeMap::from([
                ("alertname".to_string(), "HighErrorRate".to_string()),
                ("service".to_string(), service.to_string()),
            ]),
            annotations: BTreeMap::from([("summary".to_string(), format!("{service} fails"))]),
            starts_at: 60 * S,
            ends_at: Some(if resolved { 120 * S } else { 360 * S }),
            generator_url: "http://weir:8080/rules/HighErrorRate".into(),
            fingerprint: format!("fp-{service}"),
        }
    }

    /// Guarantees: `postableAlerts` carries exactly Alertmanager v2's
    /// fields, with RFC 3339 times.
    #[test]
    fn postable_alerts_json() {
        let body = serde_json::to_value(postable_alerts(&[alert(false, "pay")])).expect("JSON");
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
    /// fingerprints, one message per group, and `truncatedAlerts` under
    /// `max_alerts`.
    #[test]
    fn webhook_payload_v4() {
        let alerts = [alert(false, "cart"), alert(true, "pay")];
        let grouping = WebhookGrouping {
            receiver: "team".into(),
            group_by: vec!["alertname".into()],
            external_url: "http://weir:8080".into(),
            max_alerts: 0,
        };
        let messages = webhook_messages(&grouping, &alerts);
        assert_eq!(messages.len(), 1);
        let msg = serde_json::to_value(&messages[0]).expect("JSON");
        assert_eq!(msg["version"], "4");
        assert_eq!(msg["status"], "firing");
        assert_eq!(msg["receiver"], "team");
        assert_eq!(msg["groupKey"], "{}:{alertname=\"HighErrorRate\"}");
        assert_eq!(msg["groupLabels"], json!({"alertname": "HighErrorRate"}));
        assert_eq!(msg["commonLabels"], json!({"alertname": "HighErrorRate"}));
        assert_eq!(msg["commonAnnotations"], json!({}));
        assert_eq!(msg["externalURL"], "http://weir:8080");
        assert_eq!(msg["truncatedAlerts"], 0);
        assert_eq!(msg["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(msg["alerts"][1]["status"], "resolved");
        assert_eq!(msg["alerts"][1]["endsAt"], "1970-01-01T00:02:00.000000000Z");
        assert_eq!(msg["alerts"][1]["fingerprint"], "fp-pay");

        let by_service = WebhookGrouping {
            group_by: vec!["service".into()],
            ..grouping.clone()
        };
        let split = webhook_messages(&by_service, &alerts);
        let statuses: Vec<_> = split.iter().map(|m| m.status.as_str()).collect();
        assert_eq!(statuses, ["firing", "resolved"]);
        assert_eq!(split[1].group_key, "{}:{service=\"pay\"}");

        let truncated = webhook_messages(
            &WebhookGrouping {
                max_alerts: 1,
                ..grouping
            },
            &alerts,
        );
        let m = &truncated[0];
        assert_eq!((m.alerts.len(), m.truncated_alerts), (1, 1));
    }
}
