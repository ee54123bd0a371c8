//! `[runtime] memory_limit`: over it, the sources refuse new data as
//! retryable while what was accepted goes on.

use std::time::{Duration, Instant};

use crate::common::{otlp_spans, post_spans, start, stop};

fn pipeline(dir: &std::path::Path, memory: &str) -> std::path::PathBuf {
    let file = dir.join(format!("memory-{}.toml", memory.len()));
    std::fs::write(
        &file,
        format!(
            r#"
[api]
address = "127.0.0.1:0"

[runtime]
{memory}

[sources.otlp]
type = "otlp"
grpc = false
http_address = "127.0.0.1:0"
retry_after = "2s"

[sinks.out]
type = "blackhole"
inputs = ["otlp"]
"#
        ),
    )
    .expect("write pipeline");
    file
}

/// The value of the unlabelled metric `name` in a `/metrics` page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scenario: Weir runs with a memory limit under what it uses at rest,
/// then with one well above it.
/// Guarantees: over its limit, an OTLP request is refused with 503, a
/// `Retry-After` hint and a reason naming `memory_limit`, and `/metrics`
/// shows the resident memory, the soft limit and the limited flag; under
/// it, the same request is taken.
#[test]
fn over_its_memory_limit_weir_refuses_data_as_retryable() {
    let dir = tempfile::tempdir().expect("tmp");
    let client = reqwest::blocking::Client::new();
    let body = otlp_spans(1_700_000_000, "shop", &[0, 1, 2]);

    let weir = start(&pipeline(
        dir.path(),
        "memory_limit = \"4MiB\"\nmemory_spike_limit = \"1MiB\"",
    ));
    let response = client
        .post(format!("http://{}/v1/traces", weir.http))
        .header("content-type", "application/json")
        .body(body.clone())
        .timeout(Duration::from_secs(30))
        .send()
        .expect("weir answers");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let text = response.text().expect("body");
    assert!(text.contains("memory_limit"), "{text}");
    // The gauges are set by the sampler, at once and then every 100 ms.
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = client
            .get(format!("http://{}/metrics", weir.api))
            .send()
            .and_then(|r| r.text())
            .expect("metrics");
        if metric(&page, "weir_memory_limited") == Some(1.0) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(metric(&page, "weir_memory_limited"), Some(1.0), "{page}");
    assert_eq!(
        metric(&page, "weir_memory_soft_limit_bytes"),
        Some(3.0 * 1024.0 * 1024.0)
    );
    assert!(metric(&page, "weir_memory_resident_bytes").is_some_and(|r| r > 4.0 * 1024.0 * 1024.0));
    stop(weir);

    let weir = start(&pipeline(dir.path(), "memory_limit = \"16GiB\""));
    post_spans(&client, &weir.http, body);
    stop(weir);
}
