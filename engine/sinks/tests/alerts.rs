//! The `webhook` and `alertmanager` sinks against HTTP receivers started
//! here: what they send, and how they behave when the receiver fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use tokio::sync::mpsc;
use weir_core::{Ack, Batch, Input, Signal, Sink, SinkContext};
use weir_rules::output::alerts_batch;
use weir_rules::{AlertEvent, EventState};
use weir_sinks::alerts::rows;
use weir_sinks::{AlertmanagerSink, WebhookSink};
use weir_sinks::{AlertmanagerSinkConfig, RetryConfig, WebhookSinkConfig};

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
        fingerprint: format!("fp-{service}"),
        labels,
        annotations: BTreeMap::from([("summary".to_string(), format!("{service} fails"))]),
        value: 0.5,
        starts_at: 60 * S,
        ends_at: (state != EventState::Pending).then_some(360 * S),
        generator_url: "http://weir:8888/rules/HighErrorRate".into(),
    }
}

/// An `alerts` batch: a pending and a firing transition, and the firing
/// alert's notification.
fn batch() -> Batch {
    let transitions = [
        event(EventState::Pending, "cart"),
        event(EventState::Firing, "pay"),
    ];
    let notifications = [event(EventState::Firing, "pay")];
    let data = alerts_batch(&transitions, &notifications).expect("alerts rows");
    Batch::new(Signal::Alerts, data, Ack::none())
}

/// A receiver that answers each request with the next of `replies`, then
/// 200, and keeps (path and any `X-Team` header, body) of every request.
#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    replies: Arc<Mutex<Vec<StatusCode>>>,
}

impl Recorder {
    async fn start(replies: &[StatusCode]) -> (Recorder, SocketAddr) {
        let recorder = Recorder {
            replies: Arc::new(Mutex::new(replies.iter().rev().copied().collect())),
            ..Recorder::default()
        };
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (recorder, addr)
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn record(
    State(r): State<Recorder>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut path = uri.path().to_string();
    if let Some(team) = headers.get("x-team").and_then(|v| v.to_str().ok()) {
        path.push_str(&format!(" x-team={team}"));
    }
    r.requests.lock().expect("lock").push((path, json));
    r.replies
        .lock()
        .expect("lock")
        .pop()
        .unwrap_or(StatusCode::OK)
}

fn quick_retry(attempts: u32) -> RetryConfig {
    RetryConfig {
        attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

fn webhook(url: String, attempts: u32) -> WebhookSinkConfig {
    WebhookSinkConfig {
        url,
        receiver: None,
        group_by: vec!["alertname".into()],
        max_alerts: 0,
        timeout: Duration::from_secs(5),
        headers: BTreeMap::from([("X-Team".to_string(), "sre".to_string())]),
        queue_capacity: 100,
        retry: quick_retry(attempts),
    }
}

/// Runs `sink` over `batches`, then closes its input and waits for it.
async fn run(sink: Box<dyn Sink>, batches: Vec<Batch>) {
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(sink.run(SinkContext {
        name: "alerts".into(),
        input: Input::new("alerts", rx),
    }));
    for b in batches {
        tokio::time::timeout(Duration::from_secs(2), tx.send(b))
            .await
            .expect("the sink keeps taking batches")
            .expect("the sink is running");
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the sink stops")
        .expect("no panic")
        .expect("no error");
}

/// Guarantees: of an `alerts` batch, only notifications of firing and
/// resolved alerts are to be sent; transitions are not.
#[test]
fn only_notifications_are_sent() {
    let got = rows::notifications(batch().data()).expect("decodes");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels["service"], "pay");
    assert!(!got[0].resolved);
    assert_eq!(got[0].ends_at, Some(360 * S));
    assert_eq!(got[0].fingerprint, "fp-pay");
}

/// Scenario: the receiver answers 503 twice, then 200.
/// Guarantees: the webhook sink tries again until it is taken, sending
/// Alertmanager's webhook payload (version 4) with the user's headers;
/// the pending transition is not sent.
#[tokio::test]
async fn webhook_retries_until_taken() {
    let (recorder, addr) =
        Recorder::start(&[StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_GATEWAY]).await;
    let config = webhook(format!("http://{addr}/hook"), 5);
    let sink = WebhookSink::new("hook", &config, "http://weir:8888").expect("sink");
    run(Box::new(sink), vec![batch()]).await;
    let requests = recorder.requests();
    assert_eq!(requests.len(), 3, "two failures, then taken");
    let (path, body) = &requests[2];
    assert_eq!(path, "/hook x-team=sre");
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["externalURL"], "http://weir:8888");
    assert_eq!(body["groupKey"], "{}:{alertname=\"HighErrorRate\"}");
    let alerts = body["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "{body}");
    assert_eq!(alerts[0]["labels"]["service"], "pay");
    assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(requests[0].1, requests[2].1, "the same body each try");
}

/// Scenario: the receiver answers 400. Guarantees: a refusal is not
/// tried again (the alerts are dropped and counted, not resent forever).
#[tokio::test]
async fn refused_alerts_are_not_retried() {
    let (recorder, addr) = Recorder::start(&[StatusCode::BAD_REQUEST]).await;
    let config = webhook(format!("http://{addr}/hook"), 5);
    let sink = WebhookSink::new("hook", &config, "").expect("sink");
    run(Box::new(sink), vec![batch()]).await;
    assert_eq!(recorder.requests().len(), 1);
}

/// Scenario: nothing listens at the receiver's address, and batches keep
/// coming. Guarantees: the sink keeps taking batches (the pipeline is
/// never held up by a dead receiver) and stops when asked.
#[tokio::test]
async fn a_dead_receiver_does_not_hold_the_pipeline() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let config = webhook(format!("http://{addr}/hook"), 2);
    let sink = WebhookSink::new("hook", &config, "").expect("sink");
    run(Box::new(sink), (0..20).map(|_| batch()).collect()).await;
}

/// Guarantees: the alertmanager sink posts `postableAlerts` to
/// `/api/v2/alerts` of every Alertmanager named.
#[tokio::test]
async fn alertmanager_gets_postable_alerts_at_each_url() {
    let (first, a) = Recorder::start(&[]).await;
    let (second, b) = Recorder::start(&[StatusCode::INTERNAL_SERVER_ERROR]).await;
    let config = AlertmanagerSinkConfig {
        urls: vec![format!("http://{a}"), format!("http://{b}/am/")],
        timeout: Duration::from_secs(5),
        headers: BTreeMap::new(),
        queue_capacity: 100,
        max_batch: 256,
        retry: quick_retry(3),
    };
    let sink = AlertmanagerSink::new("am", &config).expect("sink");
    run(Box::new(sink), vec![batch()]).await;
    let (path, body) = first.requests().pop().expect("a request");
    assert_eq!(path, "/api/v2/alerts");
    assert_eq!(
        body,
        serde_json::json!([{
            "labels": {"alertname": "HighErrorRate", "service": "pay"},
            "annotations": {"summary": "pay fails"},
            "startsAt": "1970-01-01T00:01:00.000000000Z",
            "endsAt": "1970-01-01T00:06:00.000000000Z",
            "generatorURL": "http://weir:8888/rules/HighErrorRate"
        }])
    );
    let second = second.requests();
    assert_eq!(second.len(), 2, "retried after the 500");
    assert_eq!(second[1].0, "/am/api/v2/alerts");
    assert_eq!(second[1].1, body);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Scenario: a webhook URL with a password in its user information and a
/// token as its path (as chat webhooks are), at a receiver that answers
/// with a redirect to another receiver; then the same sink at a receiver
/// that refuses with a 1 MB body.
/// Guarantees: the redirect is not followed (the other receiver gets
/// nothing: neither the alerts nor the credentials leave for a place the
/// pipeline does not name) and the alerts are refused; neither the
/// password nor the token appear in a metric label or in the log, which
/// show the receiver's scheme, host and port; at most 512 bytes of the
/// refusal's body are quoted.
#[tokio::test]
async fn secrets_in_a_url_stay_out_of_metrics_and_logs() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (elsewhere, other) = Recorder::start(&[]).await;
    let moved = format!("http://{other}/stolen");
    let app = Router::new()
        .route(
            "/{*path}",
            post(move || {
                let to = moved.clone();
                async move { (StatusCode::FOUND, [(axum::http::header::LOCATION, to)]) }
            }),
        )
        .route(
            "/big",
            post(|| async { (StatusCode::BAD_REQUEST, "x".repeat(1 << 20)) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let secret = format!("http://weir:hunter2@{addr}/services/T0/B0/s3cretToken");
    let sink = WebhookSink::new("hook", &webhook(secret, 3), "").expect("sink");
    run(Box::new(sink), vec![batch()]).await;
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect is not followed"
    );
    let big = WebhookSink::new("big", &webhook(format!("http://{addr}/big"), 3), "").expect("sink");
    run(Box::new(big), vec![batch()]).await;

    let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).to_string();
    let rendered = handle.render();
    for shown in [&text, &rendered] {
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cretToken"),
            "{shown}"
        );
    }
    assert!(text.contains("302"), "the refusal is logged: {text}");
    assert!(
        rendered.contains(&format!("url=\"http://{addr}/…\"")),
        "labelled by scheme, host and port: {rendered}"
    );
    let longest_x_run = text.split(|c| c != 'x').map(str::len).max().unwrap_or(0);
    assert!(
        longest_x_run <= 512,
        "at most 512 bytes quoted, got {longest_x_run}"
    );
    assert!(longest_x_run >= 100, "the body is quoted: {text}");
}
