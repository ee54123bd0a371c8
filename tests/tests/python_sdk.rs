//! The OpenTelemetry Python SDK, with its real OTLP gRPC and HTTP exporters,
//! sending to a running Weir. `scripts/test` installs the SDK into a venv and
//! sets `WEIR_TEST_PYTHON`.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::Weir;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

const COUNT: usize = 250;

fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "WEIR_TEST_PYTHON is not set: run the suite with `scripts/test`, which installs \
             the OpenTelemetry Python SDK into target/test-venv and sets it"
        )
    })
}

fn send(transport: &str, endpoint: &str, tag: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/send.py");
    let out = Command::new(python())
        .args([script, transport, endpoint, &COUNT.to_string(), tag])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the Python SDK reported failed exports over {transport}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scenario: the Python SDK sends 250 spans, 250 logs and 250 metric points
/// over gRPC and again over HTTP/protobuf.
/// Guarantees: every record arrives exactly once, with its attribute values
/// and types, ids and resource intact.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_over_grpc_and_http_loses_nothing() {
    let weir = Weir::start("").await;
    let (grpc, http) = (weir.grpc(), weir.http());
    tokio::task::spawn_blocking(move || {
        send("grpc", &grpc, "via-grpc");
        send("http", &http, "via-http");
    })
    .await
    .expect("senders");
    let got = weir.stop().await;

    let spans = got.spans();
    assert_eq!(spans.len(), 2 * COUNT);
    for tag in ["via-grpc", "via-http"] {
        let mine: Vec<_> = spans
            .iter()
            .filter(|s| s.attributes.iter().any(|kv| kv.key == "test.tag"
                && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(Value::StringValue(t)) if t == tag)))
            .collect();
        assert_eq!(mine.len(), COUNT, "{tag}");
        let is: BTreeSet<i64> = mine
            .iter()
            .filter_map(|s| {
                s.attributes.iter().find(|kv| kv.key == "i").and_then(|kv| {
                    match kv.value.as_ref()?.value.as_ref()? {
                        Value::IntValue(i) => Some(*i),
                        _ => None,
                    }
                })
            })
            .collect();
        assert_eq!(
            is.len(),
            COUNT,
            "every span's int attribute `i` is back, as an int"
        );
    }
    let s = spans[0];
    assert_eq!(s.trace_id.len(), 16);
    assert_eq!(s.span_id.len(), 8);
    assert!(s.end_time_unix_nano >= s.start_time_unix_nano && s.start_time_unix_nano > 0);
    assert_eq!(s.events.len(), 1);
    let types: BTreeSet<&str> = s
        .attributes
        .iter()
        .filter_map(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(_) => "string",
            Value::IntValue(_) => "int",
            Value::DoubleValue(_) => "double",
            Value::BoolValue(_) => "bool",
            Value::ArrayValue(_) => "array",
            Value::KvlistValue(_) => "kvlist",
            Value::BytesValue(_) => "bytes",
            Value::StringValueStrindex(_) => "strindex",
        })
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["string", "int", "double", "bool", "array"])
    );
    let services: BTreeSet<String> = got
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter_map(|r| r.resource.as_ref())
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["py-grpc".to_string(), "py-http".to_string()])
    );

    let logs = got.log_records();
    assert_eq!(logs.len(), 2 * COUNT);
    assert!(
        logs.iter().all(|l| l.severity_number == 13),
        "WARNING maps to severity 13"
    );
    let bodies: BTreeSet<String> = logs
        .iter()
        .filter_map(|l| match l.body.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), COUNT, "log bodies `log line N` for every N");

    assert_eq!(got.data_points(), 2 * COUNT);
    assert!(got.metric_names().iter().all(|n| n == "e2e.requests"));
}
