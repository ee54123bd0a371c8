//! Weir's fuzz targets: the places where bytes from anyone reach the
//! engine, each as a function of one input that must never panic, hang or
//! take the process down, whatever the bytes.
//!
//! ```text
//! otlp_proto    first byte picks the signal; the decode-size walk (never stricter than the decoder), protobuf decode, conversion to Arrow, and back
//! otlp_json     first byte picks the signal; OTLP/JSON decode, conversion to Arrow, and back
//! pipeline_toml a pipeline file through the loader with every built-in component
//! wal_replay    a write-ahead-log segment opened and replayed (raw, or framed with valid CRCs)
//! sql           a query through the SQL service, with its limits, over small tables
//! ```
//!
//! [`Runner`] runs any target on an input. `weir-fuzz` (the binary) runs
//! each target for a given time on inputs mutated from its corpus
//! (`engine/fuzz/corpus/<target>/`), keeps every input that panics under
//! `findings/`, and prints executions per second; `benches/fuzz.sh` runs it.
//! The corpus test (`tests/corpus.rs`) runs every corpus file through its
//! target in CI: a finding, once fixed, is added to the corpus so it stays
//! fixed. This is a mutation fuzzer without coverage feedback, on stable
//! Rust, so that it builds with the rest of the workspace; the targets are
//! plain functions of bytes and fit `cargo fuzz` as they are.
//!
//! Coverage-guided fuzzing: `weir-libfuzzer` (feature `libfuzzer`, without
//! the default features) runs the targets that need no engine
//! (`otlp_proto`, `otlp_json`, `wal_replay`, see [`targets::run_light`])
//! under libFuzzer, which keeps the inputs that reach new code. It is
//! built on stable Rust with LLVM's sanitizer coverage
//! (`-Cpasses=sancov-module` and its options, as `cargo fuzz` passes them,
//! without AddressSanitizer: the code under test is safe Rust);
//! `benches/fuzz.sh --coverage` builds and runs it.

pub mod mutate;
pub mod targets;

use std::path::{Path, PathBuf};

#[cfg(feature = "all-targets")]
pub use targets::Runner;

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// OTLP protobuf decode and conversion.
    OtlpProto,
    /// OTLP/JSON decode and conversion.
    OtlpJson,
    /// The pipeline TOML loader.
    PipelineToml,
    /// Write-ahead-log replay.
    WalReplay,
    /// SQL through the query service.
    Sql,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::OtlpProto,
        Target::OtlpJson,
        Target::PipelineToml,
        Target::WalReplay,
        Target::Sql,
    ];

    /// Its name: the folder of its corpus and findings.
    pub fn name(self) -> &'static str {
        match self {
            Target::OtlpProto => "otlp_proto",
            Target::OtlpJson => "otlp_json",
            Target::PipelineToml => "pipeline_toml",
            Target::WalReplay => "wal_replay",
            Target::Sql => "sql",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The tokens of its input language the mutator splices in (none for
    /// binary inputs).
    pub fn tokens(self) -> &'static [&'static str] {
        match self {
            Target::OtlpProto | Target::WalReplay => &[],
            Target::OtlpJson => &[
                "{",
                "}",
                "[",
                "]",
                "\"",
                ":",
                ",",
                "null",
                "true",
                "-1",
                "1e308",
                "18446744073709551616",
                "\"timeUnixNano\"",
                "\"attributes\"",
                "\"stringValue\"",
                "\"intValue\"",
                "\"kvlistValue\"",
                "\"arrayValue\"",
                "\"traceId\"",
                "\"spanId\"",
                "\"resource\"",
                "\"scopeLogs\"",
                "\"resourceSpans\"",
                "\"dataPoints\"",
                "\"bucketCounts\"",
                "\"\\u0000\"",
                "\"\\ud800\"",
            ],
            Target::PipelineToml => &[
                "[sources.a]",
                "[processors.p]",
                "[sinks.s]",
                "type = ",
                "inputs = [\"a\"]",
                "\"otlp\"",
                "\"rules\"",
                "\"wasm\"",
                "\"store\"",
                "\"kafka\"",
                "=",
                "\n",
                "[[tests]]",
                "{ env = \"HOME\" }",
                "\"0s\"",
                "\"1e99h\"",
                "-1",
                "9223372036854775807",
                "\"*\"",
                "[[x]]",
                "'''",
            ],
            Target::Sql => &[
                "SELECT ",
                " FROM logs",
                " FROM spans",
                " FROM metrics",
                " WHERE ",
                " GROUP BY ",
                " ORDER BY ",
                " JOIN ",
                " UNION ALL ",
                "count(*)",
                "repeat('x', 100000000)",
                "generate_series(1, 100000000)",
                "array_repeat(1, 100000000)",
                "string_agg(",
                "attributes['k']",
                "CAST(",
                " AS BIGINT)",
                "unnest(",
                "(",
                ")",
                ",",
                "'",
                "9223372036854775807",
                "1e308",
                "WITH RECURSIVE r AS (",
                "date_bin(",
                "interval '1000000 years'",
                "to_timestamp(",
                ";",
            ],
        }
    }
}

/// The corpus folder of `target` under `root`.
pub fn corpus_dir(root: &Path, target: Target) -> PathBuf {
    root.join(target.name())
}

/// The corpus files of `target` under `root`, sorted by name.
pub fn corpus_files(root: &Path, target: Target) -> std::io::Result<Vec<PathBuf>> {
    let dir = corpus_dir(root, target);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The corpus shipped with the source (`engine/fuzz/corpus`).
pub fn shipped_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}
