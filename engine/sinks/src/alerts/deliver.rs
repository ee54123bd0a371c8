//! Getting alerts to one receiver: a bounded queue, and a sender task that
//! posts what the queue holds, trying again with backoff when that may help.
//!
//! What is sent, dropped, retried and waiting is counted in `/metrics`,
//! labelled by component and receiver URL (see [`super::metrics`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::RetryConfig;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::sync::Notify;
use tracing::{debug, warn};
use weir_config::Sensitive;
use weir_core::redact::error_chain;

use super::metrics;
use super::rows::AlertRow;

/// Turns the alerts of one send into request bodies, each with the number
/// of alerts it carries.
pub(crate) type Encode = Arc<dyn Fn(&[AlertRow]) -> Vec<(Vec<u8>, usize)> + Send + Sync>;

/// The most bytes of a refusal's body quoted in its reason.
const QUOTE_BYTES: usize = 512;

/// Where and how to send.
#[derive(Clone)]
pub(crate) struct Receiver {
    /// The sink's name, for logs and metrics.
    pub component: Arc<str>,
    /// The URL to `POST` to.
    pub url: String,
    /// The URL as logs and metric labels show it (scheme, host and port:
    /// its path or query may hold a token): `weir_core::redact::url(url)`.
    pub shown: String,
    pub client: reqwest::Client,
    pub headers: HeaderMap,
    pub timeout: Duration,
    pub retry: RetryConfig,
    /// The most alerts taken from the queue for one send.
    pub max_batch: usize,
    pub encode: Encode,
}

/// The request headers: JSON, and the user's `headers`, those given as
/// secrets read now. A message never quotes a value.
pub(crate) fn headers(
    component: &str,
    extra: &std::collections::BTreeMap<String, Sensitive>,
) -> Result<HeaderMap, weir_core::ComponentError> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        let bad = |what: &str| {
            weir_core::ComponentError::config(
                component,
                format!("`headers`: `{name}` is not a valid HTTP header {what}"),
            )
        };
        let name_ok = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
        let value = value.resolve(component, &format!("headers.{name}"))?;
        let mut value_ok = HeaderValue::from_str(&value).map_err(|_| bad("value"))?;
        value_ok.set_sensitive(true);
        map.insert(name_ok, value_ok);
    }
    Ok(map)
}

/// The alerts waiting for one receiver.
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    alerts: VecDeque<AlertRow>,
    closed: bool,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::default(),
            ready: Notify::new(),
            capacity,
        })
    }

    /// Adds `alerts`; when full, drops the oldest and returns how many.
    pub(crate) fn push(&self, alerts: &[AlertRow]) -> (usize, usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.alerts.extend(alerts.iter().cloned());
        let dropped = state.alerts.len().saturating_sub(self.capacity);
        state.alerts.drain(..dropped);
        let len = state.alerts.len();
        drop(state);
        self.ready.notify_one();
        (dropped, len)
    }

    /// No more alerts will come; the sender stops once the queue is empty.
    pub(crate) fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.ready.notify_one();
    }

    /// The alerts still waiting, taken out.
    pub(crate) fn take_all(&self) -> Vec<AlertRow> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.alerts.drain(..).collect()
    }

    /// Waits for up to `max` alerts; `None` once closed and empty.
    async fn next(&self, max: usize) -> Option<Vec<AlertRow>> {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if !state.alerts.is_empty() {
                    let n = max.min(state.alerts.len());
                    return Some(state.alerts.drain(..n).collect());
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .alerts
            .len()
    }
}

/// Sends what `queue` holds to `receiver` until the queue is closed and
/// empty.
pub(crate) async fn run(receiver: Receiver, queue: Arc<Queue>) {
    while let Some(alerts) = queue.next(receiver.max_batch).await {
        gauge(&receiver, queue.len());
        for (body, count) in (receiver.encode)(&alerts) {
            send(&receiver, body, count).await;
        }
    }
    gauge(&receiver, 0);
}

fn gauge(receiver: &Receiver, len: usize) {
    metrics::queue_length(&receiver.component, &receiver.shown).set(len as f64);
}

/// Counts `count` alerts dropped for `reason`.
pub(crate) fn dropped(component: &Arc<str>, url: &str, reason: &'static str, count: usize) {
    if count == 0 {
        return;
    }
    metrics::dropped(component, url, reason).increment(count as u64);
}

/// What one try came to.
enum Outcome {
    Sent,
    /// Worth another try, after at least this long if the receiver said.
    Retry(String, Option<Duration>),
    Refused(String),
}

/// Posts one body, trying again as `retry` allows.
async fn send(receiver: &Receiver, body: Vec<u8>, count: usize) {
    let body = bytes::Bytes::from(body);
    let mut attempt = 0u32;
    loop {
        let outcome = try_once(receiver, body.clone()).await;
        let (why, after) = match outcome {
            Outcome::Sent => {
                metrics::sent(&receiver.component, &receiver.shown).increment(count as u64);
                debug!(component = %receiver.component, url = %receiver.shown, alerts = count, "alerts sent");
                return;
            }
            Outcome::Refused(why) => {
                warn!(component = %receiver.component, url = %receiver.shown, alerts = count,
                    error = %why, "the receiver refused the alerts; they are dropped");
                dropped(&receiver.component, &receiver.shown, "refused", count);
                return;
            }
            Outcome::Retry(why, after) => (why, after),
        };
        if attempt >= receiver.retry.attempts {
            warn!(component = %receiver.component, url = %receiver.shown, alerts = count,
                error = %why, attempts = attempt + 1, "cannot send the alerts; they are dropped");
            dropped(
                &receiver.component,
                &receiver.shown,
                "retries_exhausted",
                count,
            );
            return;
        }
        let wait = backoff(&receiver.retry, attempt, after);
        debug!(component = %receiver.component, url = %receiver.shown, error = %why,
            wait = ?wait, "sending alerts failed; trying again");
        metrics::send_retries(&receiver.component, &receiver.shown).increment(1);
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

async fn try_once(receiver: &Receiver, body: bytes::Bytes) -> Outcome {
    let request = receiver
        .client
        .post(&receiver.url)
        .headers(receiver.headers.clone())
        .timeout(receiver.timeout)
        .body(body);
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(error_chain(&e.without_url()), None),
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    let after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // The first bytes of the body, quoted; no more are read.
    let mut body = Vec::new();
    let mut response = response;
    while body.len() < QUOTE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(QUOTE_BYTES - body.len())])
            }
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    let why = format!("HTTP {status}: {text}");
    let retryable = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if retryable {
        Outcome::Retry(why, after)
    } else {
        Outcome::Refused(why)
    }
}

/// `initial_backoff` × 2^attempt, capped at `max_backoff`, less up to a
/// fifth at random so that many senders do not retry in step; at least
/// what the receiver asked for with `Retry-After`, up to `max_backoff`.
fn backoff(retry: &RetryConfig, attempt: u32, after: Option<Duration>) -> Duration {
    let exp = retry
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(attempt.min(30)))
        .min(retry.max_backoff);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jittered = exp.mul_f64(1.0 - f64::from(seed % 1000) / 5000.0);
    after
        .map(|a| a.min(retry.max_backoff))
        .map_or(jittered, |a| a.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the backoff doubles from `initial_backoff`, never goes
    /// past `max_backoff`, loses at most a fifth to jitter, and honours a
    /// `Retry-After` up to `max_backoff`.
    #[test]
    fn backoff_doubles_within_bounds() {
        let retry = RetryConfig {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let within = |d: Duration, full: Duration| d <= full && d >= full.mul_f64(0.8);
        assert!(within(backoff(&retry, 0, None), Duration::from_millis(100)));
        assert!(within(backoff(&retry, 2, None), Duration::from_millis(400)));
        assert!(within(backoff(&retry, 9, None), Duration::from_secs(1)));
        assert_eq!(
            backoff(&retry, 0, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            backoff(&retry, 0, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    fn row(n: usize) -> AlertRow {
        AlertRow {
            resolved: false,
            labels: [("n".to_string(), n.to_string())].into(),
            annotations: Default::default(),
            starts_at: 0,
            ends_at: None,
            generator_url: String::new(),
            fingerprint: String::new(),
        }
    }

    /// Guarantees: a full queue drops its oldest alerts and says how many;
    /// a closed queue hands out what it holds, then ends.
    #[tokio::test]
    async fn queue_drops_oldest_and_drains_after_close() {
        let q = Queue::new(3);
        assert_eq!(q.push(&[row(1), row(2)]), (0, 2));
        assert_eq!(q.push(&[row(3), row(4), row(5)]), (2, 3));
        q.close();
        let got = q.next(2).await.expect("held");
        assert_eq!(got, [row(3), row(4)]);
        assert_eq!(q.next(2).await.expect("held"), [row(5)]);
        assert!(q.next(2).await.is_none());
    }
}
