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
use weir_config::{BuildContext, ComponentConfig, Registry, Secret, Sensitive};
use weir_core::{Ack, Batch, Built, ComponentError, Input, Signal, SignalSet, Sink, SinkContext};
use weir_rules::output::alerts_batch;
use weir_rules::{AlertEvent, EventState};
use weir_sinks::alerts::rows;
use weir_sinks::{AlertmanagerSink, WebhookSink};
use weir_sinks::{AlertmanagerSinkConfig, RetryConfig, WebhookSinkConfig};

const S: i64 = 1_000_000_000;

/// The tests of this binary run one at a time. One of them reads the log
/// through a subscriber of its own, and tracing caches whether a callsite
/// is of interest to anyone when the callsite is first hit: another test
/// hitting a sink's callsite while that subscriber was being set could
/// leave it cached as of no interest, and the events would be lost
/// (seen: 10 runs in 60 with the tests in parallel, none alone).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
/// 200, and keeps (path and any `X-Team` and `Authorization` headers, body)
/// of every request.
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
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        path.push_str(&format!(" authorization={auth}"));
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
        url: url.into(),
        receiver: None,
        group_by: vec!["alertname".into()],
        max_alerts: 0,
        timeout: Duration::from_secs(5),
        headers: BTreeMap::from([("X-Team".to_string(), "sre".into())]),
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
    let _serial = SERIAL.blocking_lock();
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
    let _serial = SERIAL.lock().await;
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
    let _serial = SERIAL.lock().await;
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
    let _serial = SERIAL.lock().await;
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
    let _serial = SERIAL.lock().await;
    let (first, a) = Recorder::start(&[]).await;
    let (second, b) = Recorder::start(&[StatusCode::INTERNAL_SERVER_ERROR]).await;
    let config = AlertmanagerSinkConfig {
        urls: vec![
            format!("http://{a}").into(),
            format!("http://{b}/am/").into(),
        ],
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

/// `type = "alerts"`: stands in for a `rules` processor, so that a
/// pipeline file with an alert sink can be checked here.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsSourceConfig {}

#[async_trait::async_trait]
impl ComponentConfig for AlertsSourceConfig {
    fn accepts(&self) -> SignalSet {
        SignalSet::NONE
    }
    fn outputs(&self, _: SignalSet) -> SignalSet {
        SignalSet::only(Signal::Alerts)
    }
    async fn build(&self, cx: &mut BuildContext<'_>) -> Result<Built, ComponentError> {
        Err(ComponentError::internal(cx.name(), "a stand-in only"))
    }
}

/// The config of webhook sink `hook` of the pipeline whose sink table
/// holds `settings`, checked as Weir checks pipeline files.
fn webhook_from_pipeline(settings: &str) -> WebhookSinkConfig {
    let registry = Registry::new()
        .source::<AlertsSourceConfig>("alerts")
        .sink::<WebhookSinkConfig>("webhook");
    let pipeline = format!(
        "[sources.rules]\ntype = \"alerts\"\n\n\
         [sinks.hook]\ntype = \"webhook\"\ninputs = [\"rules\"]\n{settings}\n"
    );
    let plan = weir_config::parse_str(&pipeline, "pipeline.toml", &registry)
        .unwrap_or_else(|e| panic!("the pipeline is valid: {e}"));
    plan.component("hook")
        .and_then(|c| c.config_as::<WebhookSinkConfig>())
        .expect("a webhook sink")
        .clone()
}

/// Scenario: a pipeline file whose webhook URL (holding a token) is read
/// from a file and whose headers are read from a file and from the
/// environment. Guarantees: the file is accepted, and the values read
/// reach the receiver: the request goes to the URL in the file, with the
/// headers' values.
#[tokio::test]
async fn webhook_url_and_headers_from_files_and_the_environment_reach_the_receiver() {
    let _serial = SERIAL.lock().await;
    let (recorder, addr) = Recorder::start(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url_file = dir.path().join("hook-url");
    std::fs::write(
        &url_file,
        format!("http://{addr}/services/T0/B0/s3cretToken\n"),
    )
    .expect("write");
    let auth_file = dir.path().join("hook-auth");
    std::fs::write(&auth_file, "Bearer s3cretHeader").expect("write");
    // Setting a variable races with other threads reading the environment,
    // so the test reads one Cargo sets for every test process.
    let from_env = std::env::var("CARGO_PKG_NAME").expect("cargo sets it");

    let config = webhook_from_pipeline(&format!(
        "url = {{ file = {url_file:?} }}\n\
         headers = {{ Authorization = {{ file = {auth_file:?} }}, \
                      X-Team = {{ env = \"CARGO_PKG_NAME\" }} }}\n\
         retry = {{ attempts = 1 }}",
    ));
    let sink = WebhookSink::new("hook", &config, "").expect("the secrets are read");
    run(Box::new(sink), vec![batch()]).await;
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].0,
        format!("/services/T0/B0/s3cretToken x-team={from_env} authorization=Bearer s3cretHeader")
    );
    assert_eq!(requests[0].1["receiver"], "hook");
}

/// Scenario: a webhook whose URL, or one of whose headers, is read from an
/// environment variable that is not set, or from a file that is missing.
/// Guarantees: the sink is not made; the error is the user's config's,
/// naming the component, the key and the variable or file, and says what
/// to do.
#[test]
fn a_secret_that_cannot_be_read_is_a_clear_config_error() {
    let _serial = SERIAL.blocking_lock();
    let unset = "url = { env = \"WEIR_TEST_HOOK_URL_NEVER_SET\" }";
    let err = WebhookSink::new("hook", &webhook_from_pipeline(unset), "")
        .err()
        .expect("refused");
    assert!(matches!(err, ComponentError::Config { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "configuration of `hook`: `url`: the environment variable \
         `WEIR_TEST_HOOK_URL_NEVER_SET` is not set (or not UTF-8); set it before starting Weir"
    );

    let mut config = webhook("http://127.0.0.1:9/hook".into(), 1);
    config.headers.insert(
        "Authorization".into(),
        Sensitive::Secret(Secret::File("/nonexistent/weir-hook-token".into())),
    );
    let err = WebhookSink::new("hook", &config, "")
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with(
            "configuration of `hook`: `headers.Authorization`: cannot read \
             `/nonexistent/weir-hook-token`"
        ),
        "{err}"
    );

    let not_a_url = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(not_a_url.path(), "hooks.example.com/s3cretToken").expect("write");
    config.url = Sensitive::Secret(Secret::File(not_a_url.path().into()));
    let err = WebhookSink::new("hook", &config, "")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("is not an http:// or https:// URL"), "{err}");
    assert!(
        !err.contains("s3cretToken"),
        "the value is not quoted: {err}"
    );
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
/// that refuses with a 1 MB body; then the same URL and an `Authorization`
/// header read from files, at the redirecting receiver.
/// Guarantees: the redirect is not followed (the other receiver gets
/// nothing: neither the alerts nor the credentials leave for a place the
/// pipeline does not name) and the alerts are refused; neither the
/// password, the token nor the header appear in a metric label or in the
/// log, which show the receiver's scheme, host and port; at most 512 bytes
/// of the refusal's body are quoted.
#[tokio::test]
async fn secrets_in_a_url_stay_out_of_metrics_and_logs() {
    let _serial = SERIAL.lock().await;
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
    let sink = WebhookSink::new("hook", &webhook(secret.clone(), 3), "").expect("sink");
    run(Box::new(sink), vec![batch()]).await;
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect is not followed"
    );
    let big = WebhookSink::new("big", &webhook(format!("http://{addr}/big"), 3), "").expect("sink");
    run(Box::new(big), vec![batch()]).await;
    // The same URL, and a token header, read from files.
    let dir = tempfile::tempdir().expect("tempdir");
    let (url_file, auth_file) = (dir.path().join("url"), dir.path().join("auth"));
    std::fs::write(&url_file, &secret).expect("write");
    std::fs::write(&auth_file, "Bearer s3cretHeader").expect("write");
    let mut filed = webhook(String::new(), 3);
    filed.url = Sensitive::Secret(Secret::File(url_file));
    filed.headers.insert(
        "Authorization".into(),
        Sensitive::Secret(Secret::File(auth_file)),
    );
    let filed = WebhookSink::new("filed", &filed, "").expect("sink");
    run(Box::new(filed), vec![batch()]).await;
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect is not followed"
    );

    let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).to_string();
    let rendered = handle.render();
    for shown in [&text, &rendered] {
        for secret in ["hunter2", "s3cretToken", "s3cretHeader"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
    }
    assert!(text.contains("302"), "the refusal is logged: {text}");
    for component in ["hook", "filed"] {
        assert!(
            rendered.contains(&format!(
                "component=\"{component}\",url=\"http://{addr}/…\""
            )),
            "{component} labelled by scheme, host and port: {rendered}"
        );
    }
    let longest_x_run = text.split(|c| c != 'x').map(str::len).max().unwrap_or(0);
    assert!(
        longest_x_run <= 512,
        "at most 512 bytes quoted, got {longest_x_run}"
    );
    assert!(longest_x_run >= 100, "the body is quoted: {text}");
}
