//! The alert lifecycle, faithful to Prometheus' `rules/alerting.go`.
//!
//! Each evaluation of an alert rule yields instances: one per result row,
//! identified by its final label set (the row's labels, the rule's labels,
//! and `alertname`). [`AlertLifecycle::update`] applies Prometheus' rules:
//!
//! * a new instance starts **pending**, with `active_at` = the evaluation
//!   time; an instance that is already pending or firing keeps its
//!   `active_at` and takes the new value and annotations;
//! * a pending instance whose `active_at` is at least `for` ago turns
//!   **firing** (`fired_at` = now); with `for = 0` that happens in the
//!   evaluation that created it (and only the firing transition is reported);
//! * an instance missing from the result: if pending, it is dropped
//!   (reported as `inactive`); if firing, it is **resolved** (`resolved_at`
//!   = now), unless `keep_firing_for` is set, in which case it keeps firing
//!   until it has been missing for that long;
//! * a resolved instance is kept for 15 minutes ([`RESOLVED_RETENTION`]) so
//!   that its resolution keeps being sent; if it comes back it starts over
//!   as a new pending instance.
//!
//! [`AlertLifecycle::notifications`] is Prometheus' `sendAlerts`: firing and
//! resolved instances are sent when never sent, when resolved since last
//! sent, or when the last send is older than the resend delay. A firing
//! alert is sent with `endsAt` = now + 4 × max(resend delay, interval) so
//! that Alertmanager resolves it by itself if Weir stops; a resolved one
//! with `endsAt` = its resolution time. `startsAt` is `fired_at`.
//!
//! The whole state ([`Alert`]) is serialisable: restoring it after a restart
//! keeps a firing alert firing and a pending one on its `for` clock (like
//! Prometheus' `ALERTS_FOR_STATE`, but exact: in event time there is no
//! downtime to forgive, so `active_at` is kept as is).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::template::format_value;
use crate::time::{UnixNanos, nanos};

/// How long a resolved alert is kept, and re-sent, after it resolved
/// (Prometheus' `resolvedRetention`).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The state of an alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Not active; a resolved instance kept for [`RESOLVED_RETENTION`].
    Inactive,
    /// Active, waiting for `for` to elapse.
    Pending,
    /// Active for at least `for`.
    Firing,
}

/// One alert instance and its clocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The identifying labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The annotations, as rendered at the last evaluation that returned the
    /// instance.
    pub annotations: BTreeMap<String, String>,
    /// The state.
    pub state: AlertState,
    /// The value at the last evaluation that returned the instance.
    #[serde(with = "value_text")]
    pub value: f64,
    /// When it became pending.
    pub active_at: UnixNanos,
    /// When it started firing.
    pub fired_at: Option<UnixNanos>,
    /// When it resolved.
    pub resolved_at: Option<UnixNanos>,
    /// When it was last sent to Alertmanager.
    pub last_sent_at: Option<UnixNanos>,
    /// The `endsAt` of the last send of a firing alert.
    pub valid_until: Option<UnixNanos>,
    /// Since when it has been missing from the results while kept firing.
    pub keep_firing_since: Option<UnixNanos>,
}

impl Alert {
    /// The Alertmanager fingerprint of the labels, as 16 hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint_hex(&self.labels)
    }
}

/// Values travel as text in the saved state, so that `NaN` and infinities
/// survive JSON.
mod value_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_value(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            other => other.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Alertmanager's fingerprint of a label set: FNV-1a 64 over the labels
/// sorted by name, each name and value followed by the byte 0xff
/// (`model.LabelSet.Fingerprint`).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    hash
}

/// [`fingerprint`] as 16 lowercase hex digits, as Alertmanager shows it.
pub fn fingerprint_hex(labels: &BTreeMap<String, String>) -> String {
    format!("{:016x}", fingerprint(labels))
}

/// How alert notifications are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// The URL Weir is reached at; generator URLs start with it.
    pub external_url: String,
    /// How often a still-firing (or resolved) alert is sent again
    /// (Prometheus' `--rules.alert.resend-delay`, 1 minute by default).
    pub resend_delay: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            external_url: String::new(),
            resend_delay: Duration::from_secs(60),
        }
    }
}

/// The state an [`AlertEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// The instance became pending.
    Pending,
    /// The instance fires (a transition, or a re-send).
    Firing,
    /// The instance resolved (a transition, or a re-send).
    Resolved,
    /// A pending instance went away before `for` elapsed; never sent to
    /// Alertmanager.
    Inactive,
}

impl EventState {
    /// `pending`, `firing`, `resolved` or `inactive`: the `state` column of
    /// the `alerts` table, and Alertmanager's `status` for the two it knows.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Firing => "firing",
            EventState::Resolved => "resolved",
            EventState::Inactive => "inactive",
        }
    }
}

/// An alert event with Alertmanager's fields: a transition of an instance,
/// or a notification to send.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// The rule's name.
    pub rule: String,
    /// The evaluation time that produced it.
    pub time: UnixNanos,
    /// What happened.
    pub state: EventState,
    /// The labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// The value of the last evaluation that returned the instance.
    pub value: f64,
    /// `startsAt`: when it fired (when it became active, for pending and
    /// inactive events).
    pub starts_at: UnixNanos,
    /// `endsAt`: the resolution time, or for a firing alert the time after
    /// which Alertmanager may consider it resolved; none for pending.
    pub ends_at: Option<UnixNanos>,
    /// A link back to the rule.
    pub generator_url: String,
    /// The Alertmanager fingerprint of `labels`.
    pub fingerprint: String,
}

/// The alert instances of one rule. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct AlertLifecycle {
    rule: String,
    hold: i64,
    keep_firing_for: i64,
    interval: i64,
    resend_delay: i64,
    generator_url: String,
    active: BTreeMap<u64, Alert>,
}

/// One instance an evaluation returned: its final labels (`alertname`
/// included), rendered annotations and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The identifying labels.
    pub labels: BTreeMap<String, String>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

impl AlertLifecycle {
    /// The lifecycle of rule `rule`, evaluated every `interval`.
    pub fn new(
        rule: &str,
        hold: Duration,
        keep_firing_for: Duration,
        interval: Duration,
        settings: &AlertSettings,
        generator_url: String,
    ) -> Self {
        AlertLifecycle {
            rule: rule.to_string(),
            hold: nanos(hold),
            keep_firing_for: nanos(keep_firing_for),
            interval: nanos(interval),
            resend_delay: nanos(settings.resend_delay),
            generator_url,
            active: BTreeMap::new(),
        }
    }

    /// The instances held (pending, firing, and resolved within the
    /// retention), in fingerprint order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// The instances to save.
    pub fn snapshot(&self) -> Vec<Alert> {
        self.active.values().cloned().collect()
    }

    /// Replaces the instances by saved ones.
    pub fn restore(&mut self, alerts: Vec<Alert>) {
        self.active = alerts
            .into_iter()
            .map(|a| (fingerprint(&a.labels), a))
            .collect();
    }

    /// Applies the result of the evaluation at `ts`; returns the
    /// transitions, in fingerprint order.
    pub fn update(
        &mut self,
        ts: UnixNanos,
        instances: Vec<Instance>,
    ) -> Result<Vec<AlertEvent>, EvalError> {
        let mut results = BTreeMap::new();
        for inst in instances {
            let fp = fingerprint(&inst.labels);
            if results.contains_key(&fp) {
                return Err(EvalError::DuplicateLabels {
                    rule: self.rule.clone(),
                    labels: label_set_text(&inst.labels),
                });
            }
            results.insert(fp, inst);
        }
        let mut created = BTreeSet::new();
        for (fp, inst) in &results {
            match self.active.get_mut(fp) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = inst.value;
                    alert.annotations = inst.annotations.clone();
                }
                _ => {
                    created.insert(*fp);
                    self.active.insert(
                        *fp,
                        Alert {
                            labels: inst.labels.clone(),
                            annotations: inst.annotations.clone(),
                            state: AlertState::Pending,
                            value: inst.value,
                            active_at: ts,
                            fired_at: None,
                            resolved_at: None,
                            last_sent_at: None,
                            valid_until: None,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        let mut events = Vec::new();
        let mut dropped = Vec::new();
        let resend_window = self.resend_window();
        for (fp, alert) in self.active.iter_mut() {
            if results.contains_key(fp) {
                alert.keep_firing_since = None;
            } else {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && self.keep_firing_for > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.keep_firing_for;
                }
                let expired = alert
                    .resolved_at
                    .is_some_and(|r| ts - r > nanos(RESOLVED_RETENTION));
                if alert.state == AlertState::Pending || expired {
                    dropped.push(*fp);
                }
                if alert.state != AlertState::Inactive && !keep_firing {
                    let state = match alert.state {
                        AlertState::Firing => EventState::Resolved,
                        _ => EventState::Inactive,
                    };
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                    events.push(event(
                        &self.rule,
                        &self.generator_url,
                        ts,
                        state,
                        alert,
                        Some(ts),
                    ));
                }
                if !keep_firing {
                    continue;
                }
            }
            if alert.state == AlertState::Pending && ts - alert.active_at >= self.hold {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
                let ends_at = ts.saturating_add(resend_window);
                events.push(event(
                    &self.rule,
                    &self.generator_url,
                    ts,
                    EventState::Firing,
                    alert,
                    Some(ends_at),
                ));
            } else if created.contains(fp) {
                events.push(event(
                    &self.rule,
                    &self.generator_url,
                    ts,
                    EventState::Pending,
                    alert,
                    None,
                ));
            }
        }
        for fp in dropped {
            self.active.remove(&fp);
        }
        Ok(events)
    }

    /// 4 × max(resend delay, interval): how long Alertmanager may go without
    /// hearing of a firing alert before resolving it itself.
    fn resend_window(&self) -> i64 {
        self.resend_delay.max(self.interval).saturating_mul(4)
    }

    /// The alerts to send to Alertmanager at `ts` (Prometheus' `sendAlerts`),
    /// marking them sent.
    pub fn notifications(&mut self, ts: UnixNanos) -> Vec<AlertEvent> {
        let valid_until = ts.saturating_add(self.resend_window());
        let mut out = Vec::new();
        for alert in self.active.values_mut() {
            let needs_sending = match alert.state {
                AlertState::Pending => false,
                _ if alert
                    .resolved_at
                    .is_some_and(|r| alert.last_sent_at.is_none_or(|s| r > s)) =>
                {
                    true
                }
                _ => alert
                    .last_sent_at
                    .is_none_or(|s| s.saturating_add(self.resend_delay) < ts),
            };
            if !needs_sending {
                continue;
            }
            alert.last_sent_at = Some(ts);
            alert.valid_until = Some(valid_until);
            let (state, ends_at) = match alert.resolved_at {
                Some(r) => (EventState::Resolved, r),
                None => (EventState::Firing, valid_until),
            };
            out.push(event(
                &self.rule,
                &self.generator_url,
                ts,
                state,
                alert,
                Some(ends_at),
            ));
        }
        out
    }
}

fn event(
    rule: &str,
    generator_url: &str,
    ts: UnixNanos,
    state: EventState,
    alert: &Alert,
    ends_at: Option<UnixNanos>,
) -> AlertEvent {
    let starts_at = match state {
        EventState::Firing | EventState::Resolved => alert.fired_at.unwrap_or(alert.active_at),
        EventState::Pending | EventState::Inactive => alert.active_at,
    };
    AlertEvent {
        rule: rule.to_string(),
        time: ts,
        state,
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        value: alert.value,
        starts_at,
        ends_at,
        generator_url: generator_url.to_string(),
        fingerprint: alert.fingerprint(),
    }
}

/// `{a="x", b="y"}`.
pub(crate) fn label_set_text(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60 * 1_000_000_000;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn inst(pairs: &[(&str, &str)], value: f64) -> Instance {
        let mut labels = labels(pairs);
        labels.insert("alertname".into(), "HTTPRequestRateLow".into());
        Instance {
            labels,
            annotations: BTreeMap::new(),
            value,
        }
    }

    fn lifecycle(hold_m: u64, keep_m: u64) -> AlertLifecycle {
        AlertLifecycle::new(
            "HTTPRequestRateLow",
            Duration::from_secs(hold_m * 60),
            Duration::from_secs(keep_m * 60),
            Duration::from_secs(60),
            &AlertSettings::default(),
            "/rules/HTTPRequestRateLow".into(),
        )
    }

    /// (instance label, state, active_at) of every held alert.
    fn states(lc: &AlertLifecycle) -> Vec<(String, AlertState, i64)> {
        let mut out: Vec<_> = lc
            .alerts()
            .map(|a| {
                (
                    a.labels.get("instance").cloned().unwrap_or_default(),
                    a.state,
                    a.active_at,
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// (instance label, state) of each event, by instance.
    fn kinds(events: &[AlertEvent]) -> Vec<(String, EventState)> {
        let mut out: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.labels.get("instance").cloned().unwrap_or_default(),
                    e.state,
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Scenario: Prometheus' `TestAlertingRule` (rule
    /// `http_requests{group="canary"} < 100`, `for: 10m`, samples every 5m:
    /// instance 0 = 75 85 95 105 105 95 85, instance 1 = 80 90 100 110 ...).
    /// Guarantees: pending until `for` elapses, then firing with `active_at`
    /// kept; a pending instance that goes away is dropped; a firing one
    /// resolves; one that comes back starts over with a new `active_at`.
    #[test]
    fn prometheus_alerting_rule_for() {
        let mut lc = lifecycle(10, 0);
        let series0 = [75.0, 85.0, 95.0, 105.0, 105.0, 95.0, 85.0];
        let series1 = [80.0, 90.0, 100.0, 110.0, 120.0, 130.0, 140.0];
        let mut all_events = Vec::new();
        for step in 0..7 {
            let ts = step as i64 * 5 * M;
            let mut res = Vec::new();
            if series0[step] < 100.0 {
                res.push(inst(&[("instance", "0")], series0[step]));
            }
            if series1[step] < 100.0 {
                res.push(inst(&[("instance", "1")], series1[step]));
            }
            all_events.push(kinds(&lc.update(ts, res).unwrap()));
            let want: Vec<(String, AlertState, i64)> = match step {
                0 | 1 => vec![
                    ("0".into(), AlertState::Pending, 0),
                    ("1".into(), AlertState::Pending, 0),
                ],
                2 => vec![("0".into(), AlertState::Firing, 0)],
                3 | 4 => vec![("0".into(), AlertState::Inactive, 0)],
                _ => vec![("0".into(), AlertState::Pending, 25 * M)],
            };
            assert_eq!(states(&lc), want, "step {step}");
        }
        assert_eq!(
            all_events,
            vec![
                vec![
                    ("0".into(), EventState::Pending),
                    ("1".into(), EventState::Pending)
                ],
                vec![],
                vec![
                    ("0".into(), EventState::Firing),
                    ("1".into(), EventState::Inactive)
                ],
                vec![("0".into(), EventState::Resolved)],
                vec![],
                vec![("0".into(), EventState::Pending)],
                vec![],
            ]
        );
    }

    /// Scenario: Prometheus' `TestKeepFiringFor` (`for: 0`,
    /// `keep_firing_for: 1m`; the condition holds at 0, 1m, 2m, then stops).
    /// Guarantees: `for: 0` fires at the first evaluation; the alert keeps
    /// firing while missing for less than `keep_firing_for`, then resolves;
    /// a return during the grace resets it.
    #[test]
    fn prometheus_keep_firing_for() {
        let mut lc = lifecycle(0, 1);
        let a = || vec![inst(&[("instance", "0")], 1.0)];
        let ev = lc.update(0, a()).unwrap();
        assert_eq!(kinds(&ev), [("0".to_string(), EventState::Firing)]);
        assert_eq!(lc.alerts().next().map(|a| a.fired_at), Some(Some(0)));
        lc.update(M, a()).unwrap();
        // Missing at 2m: kept firing (0 < 1m since).
        assert!(lc.update(2 * M, vec![]).unwrap().is_empty());
        assert_eq!(
            lc.alerts().next().map(|a| a.state),
            Some(AlertState::Firing)
        );
        // Back at 2m30: the grace is reset.
        lc.update(2 * M + M / 2, a()).unwrap();
        assert_eq!(lc.alerts().next().and_then(|a| a.keep_firing_since), None);
        assert!(lc.update(3 * M, vec![]).unwrap().is_empty());
        assert!(lc.update(3 * M + M / 2, vec![]).unwrap().is_empty());
        // 1m after it went missing: resolved.
        let ev = lc.update(4 * M, vec![]).unwrap();
        assert_eq!(kinds(&ev), [("0".to_string(), EventState::Resolved)]);
        let alert = lc.alerts().next().unwrap();
        assert_eq!(
            (alert.state, alert.resolved_at, alert.active_at),
            (AlertState::Inactive, Some(4 * M), 0)
        );
    }

    /// Scenario: Prometheus' `TestPendingAndKeepFiringFor`.
    /// Guarantees: `keep_firing_for` does not apply to pending alerts, which
    /// go away at once.
    #[test]
    fn prometheus_pending_and_keep_firing_for() {
        let mut lc = lifecycle(10, 1);
        lc.update(0, vec![inst(&[("instance", "0")], 1.0)]).unwrap();
        let ev = lc.update(M, vec![]).unwrap();
        assert_eq!(kinds(&ev), [("0".to_string(), EventState::Inactive)]);
        assert_eq!(lc.alerts().count(), 0);
    }

    /// Scenario: Prometheus' `TestAlertingRuleDuplicate`.
    /// Guarantees: two rows with one label set are an error naming it.
    #[test]
    fn duplicate_label_sets_are_an_error() {
        let mut lc = lifecycle(0, 0);
        let err = lc
            .update(
                0,
                vec![
                    inst(&[("instance", "0")], 1.0),
                    inst(&[("instance", "0")], 2.0),
                ],
            )
            .unwrap_err();
        assert!(err.to_string().contains("instance=\"0\""), "{err}");
    }

    /// Scenario: Prometheus' `sendAlerts` / `needsSending` with a resend
    /// delay of 1m and an interval of 1m.
    /// Guarantees: a firing alert is sent at once, then again only after the
    /// resend delay, with startsAt = firedAt and endsAt = now + 4m; its
    /// resolution is sent at once with endsAt = resolvedAt, re-sent every
    /// resend delay, until 15m after resolution when the alert is dropped;
    /// pending alerts are never sent.
    #[test]
    fn notifications_follow_send_alerts() {
        let mut lc = lifecycle(1, 0);
        let a = || vec![inst(&[("instance", "0")], 1.0)];
        lc.update(0, a()).unwrap();
        assert!(lc.notifications(0).is_empty(), "pending is not sent");
        lc.update(M, a()).unwrap();
        let sent = lc.notifications(M);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].state, sent[0].starts_at, sent[0].ends_at),
            (EventState::Firing, M, Some(5 * M))
        );
        lc.update(M + M / 2, a()).unwrap();
        assert!(
            lc.notifications(M + M / 2).is_empty(),
            "within the resend delay"
        );
        lc.update(2 * M + 1, a()).unwrap();
        assert_eq!(
            lc.notifications(2 * M + 1).len(),
            1,
            "after the resend delay"
        );
        lc.update(2 * M + M / 2, vec![]).unwrap();
        let sent = lc.notifications(2 * M + M / 2);
        assert_eq!(sent.len(), 1, "a resolution is sent at once");
        assert_eq!(
            (sent[0].state, sent[0].starts_at, sent[0].ends_at),
            (EventState::Resolved, M, Some(2 * M + M / 2))
        );
        let mut resent = 0;
        let mut t = 3 * M;
        while t <= 2 * M + M / 2 + 15 * M {
            lc.update(t, vec![]).unwrap();
            resent += lc.notifications(t).len();
            t += M;
        }
        // Sent when the last send is strictly older than the resend delay:
        // at 4m, 6m, ..., 16m (Prometheus' `LastSentAt.Add(resendDelay).Before(ts)`).
        assert_eq!(resent, 7, "re-sent every resend delay during retention");
        lc.update(t + M, vec![]).unwrap();
        assert_eq!(lc.alerts().count(), 0, "dropped after the retention");
        assert!(lc.notifications(t + M).is_empty());
    }

    /// Scenario: restart with saved state (Prometheus' `ALERTS_FOR_STATE`).
    /// Guarantees: the state survives a JSON round trip (NaN included); a
    /// restored pending alert fires when its original `for` elapses, and a
    /// restored firing alert stays firing without a new transition.
    #[test]
    fn state_survives_restore() {
        let mut lc = lifecycle(10, 0);
        lc.update(0, vec![inst(&[("instance", "0")], f64::NAN)])
            .unwrap();
        lc.update(
            0,
            vec![
                inst(&[("instance", "0")], f64::NAN),
                inst(&[("instance", "1")], 2.0),
            ],
        )
        .map(|_| ())
        .unwrap();
        let json = serde_json::to_string(&lc.snapshot()).unwrap();
        let saved: Vec<Alert> = serde_json::from_str(&json).unwrap();
        assert!(saved[0].value.is_nan() || saved[1].value.is_nan());
        let mut restored = lifecycle(10, 0);
        restored.restore(saved);
        let both = || {
            vec![
                inst(&[("instance", "0")], 1.0),
                inst(&[("instance", "1")], 1.0),
            ]
        };
        assert!(
            restored.update(5 * M, both()).unwrap().is_empty(),
            "still pending"
        );
        let ev = restored.update(10 * M, both()).unwrap();
        assert_eq!(
            kinds(&ev),
            [
                ("0".to_string(), EventState::Firing),
                ("1".to_string(), EventState::Firing)
            ]
        );
        let mut again = lifecycle(10, 0);
        again.restore(restored.snapshot());
        assert!(
            again.update(11 * M, both()).unwrap().is_empty(),
            "firing stays firing"
        );
        assert!(
            again
                .alerts()
                .all(|a| a.state == AlertState::Firing && a.fired_at == Some(10 * M))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Laws, for any presence pattern of one instance, evaluated every
        /// minute with `for` = `hold` minutes and `keep_firing_for` =
        /// `keep` minutes: it fires exactly when it has been returned by
        /// every evaluation since `active_at` and `for` has elapsed, or
        /// while kept firing; transitions alternate sensibly; pending
        /// instances are never sent; every resolution is sent at once.
        #[test]
        fn lifecycle_laws(
            present in proptest::collection::vec(proptest::bool::ANY, 1..40),
            hold in 0u64..4,
            keep in 0u64..3,
        ) {
            let mut lc = lifecycle(hold, keep);
            let (hold, keep) = (hold as i64 * M, keep as i64 * M);
            let mut streak_start: Option<i64> = None;
            let mut firing = false;
            let mut missing_since: Option<i64> = None;
            for (i, p) in present.iter().enumerate() {
                let ts = i as i64 * M;
                let res = if *p { vec![inst(&[("instance", "0")], 1.0)] } else { vec![] };
                let events = lc.update(ts, res).unwrap();
                // The model.
                if *p {
                    missing_since = None;
                    if streak_start.is_none() {
                        streak_start = Some(ts);
                    }
                    if !firing && ts - streak_start.unwrap_or(ts) >= hold {
                        firing = true;
                    }
                } else if firing {
                    let since = *missing_since.get_or_insert(ts);
                    if ts - since >= keep || keep == 0 {
                        firing = false;
                        streak_start = None;
                        missing_since = None;
                    }
                } else {
                    streak_start = None;
                }
                let state = lc
                    .alerts()
                    .next()
                    .map(|a| a.state)
                    .unwrap_or(AlertState::Inactive);
                proptest::prop_assert_eq!(state == AlertState::Firing, firing, "at {}", i);
                let pending = !firing && streak_start.is_some();
                proptest::prop_assert_eq!(state == AlertState::Pending, pending, "at {}", i);
                proptest::prop_assert!(events.len() <= 1);
                let sent = lc.notifications(ts);
                proptest::prop_assert!(sent.iter().all(|e| e.state != EventState::Pending));
                if events.iter().any(|e| e.state == EventState::Resolved) {
                    proptest::prop_assert!(sent.iter().any(|e| e.state == EventState::Resolved));
                }
                if events.iter().any(|e| e.state == EventState::Firing) {
                    proptest::prop_assert!(sent.iter().any(|e| e.state == EventState::Firing));
                }
            }
        }
    }

    /// Guarantees: the fingerprint is Alertmanager's (FNV-1a 64 of the
    /// sorted label set), independent of insertion order.
    #[test]
    fn fingerprint_is_alertmanagers() {
        // FNV-1a 64 of nothing is the offset basis.
        assert_eq!(fingerprint_hex(&BTreeMap::new()), "cbf29ce484222325");
        let a = labels(&[("alertname", "x"), ("job", "api")]);
        let b = labels(&[("job", "api"), ("alertname", "x")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&labels(&[("alertname", "x"), ("job", "apj")]))
        );
        // Name/value boundaries matter: {ab="c"} differs from {a="bc"}.
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")])),
            fingerprint(&labels(&[("a", "bc")]))
        );
        assert_eq!(fingerprint_hex(&a).len(), 16);
    }
}
