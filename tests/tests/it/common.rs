//! The sample data the end-to-end tests send: files in `tests/data/`
//! (where they come from is in `tests/data/README.md`).

use std::path::Path;

/// The OTLP/JSON example `name` of the OpenTelemetry specification
/// (`trace.json`, `logs.json`, `metrics.json`, `events.json`).
pub fn otlp_example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/otlp-json")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the OTLP/JSON example is missing at {}: {e}",
            path.display()
        )
    })
}
