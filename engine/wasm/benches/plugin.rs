//! What a WebAssembly plugin costs per record, against the same work done
//! natively in the host.
//!
//! The work is the example redaction (`plugins/examples/redact-*`): drop the
//! TRACE and DEBUG records (severity 1 to 8), then mask the digits of every
//! remaining log body. The batch is 1,024 log records with 5 attributes and
//! a 120-byte body (one in eight DEBUG, half the bodies with digits), the
//! size the runtime hands a processor.
//!
//! - `redact/native`: the host does it on the Arrow batch itself (a filter
//!   kernel and one pass over the body column): the floor.
//! - `redact/wasm-rust`, `redact/wasm-js`, `redact/wasm-python`: the same
//!   plugin in three languages, one instance, through
//!   `WasmProcessor::process` exactly as a pipeline calls it. The Rust one
//!   is built with cargo; the JavaScript and Python ones with
//!   `plugins/examples/build.sh` (componentize-js, componentize-py), and are
//!   skipped with a note when their tools cannot be installed.
//! - `load/cold`, `load/warm`: starting the Rust plugin with an empty
//!   compile cache (compilation included) and with a filled one.
//!
//! Run: `cargo bench -p weir-wasm --bench plugin -- --quick`
//! (`WEIR_BENCH_LANGS=rust` to build and load only some plugins). Criterion
//! reports time per batch and records/s; per-record cost is the time per
//! batch / 1,024.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, StringArray, StringBuilder};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_main};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use weir_core::{Ack, Batch, Processor, Signal};
use weir_testkit::kv;
use weir_testkit::otlp::{self, Group};
use weir_wasm::{Runtime, WasmConfig, WasmProcessor};

/// Records per batch.
const ROWS: usize = 1024;

/// The benched batch: 1,024 records, 5 attributes, 120-byte bodies.
fn batch() -> RecordBatch {
    let records = (0..ROWS).map(|i| {
        let mut body = if i % 2 == 0 {
            format!(
                "user {i} paid order {} with card 4111 1111 1111 {i:04}",
                i * 7
            )
        } else {
            "request served from the edge cache without touching the origin server".into()
        };
        while body.len() < 120 {
            body.push_str(" lorem ipsum");
        }
        body.truncate(120);
        LogRecord {
            attributes: vec![
                kv::string("http.route", "/api/cart"),
                kv::string("http.method", "POST"),
                kv::string("user.tier", if i % 3 == 0 { "gold" } else { "free" }),
                kv::string("region", "eu-west-1"),
                kv::string("thread", format!("worker-{}", i % 16)),
            ],
            ..otlp::log(
                1_700_000_000_000_000_000 + i as u64,
                if i % 8 == 0 { 5 } else { 9 },
                &body,
            )
        }
    });
    let request = Group::new(records).service("checkout").logs();
    weir_core::convert::logs_to_batch(&request)
        .expect("the bench's logs convert")
        .batch
}

/// The redaction done in the host: the floor a plugin is measured against.
/// It takes the plugin's two paths: with an ASCII `mask` one pass over the
/// body column's bytes, keeping its offsets; otherwise value by value.
fn redact_native(batch: &RecordBatch, mask: char) -> RecordBatch {
    let severity = batch
        .column_by_name("severity_number")
        .expect("severity_number")
        .as_primitive::<Int32Type>();
    let keep: BooleanArray = severity
        .iter()
        .map(|s| Some(!matches!(s, Some(1..=8))))
        .collect();
    let kept = filter_record_batch(batch, &keep).expect("filter");
    let index = kept.schema().index_of("body").expect("body");
    let bodies = kept.column(index).as_string::<i32>();
    let masked: StringArray = if mask.is_ascii() {
        let with = mask as u8;
        let bytes: Vec<u8> = bodies
            .value_data()
            .iter()
            .map(|&b| if b.is_ascii_digit() { with } else { b })
            .collect();
        StringArray::try_new(
            bodies.offsets().clone(),
            bytes.into(),
            bodies.nulls().cloned(),
        )
        .expect("ASCII for ASCII stays UTF-8")
    } else {
        let mut out = StringBuilder::with_capacity(bodies.len(), bodies.value_data().len());
        for body in bodies.iter() {
            match body.map(|b| (b, mask_digits(b, mask))) {
                Some((_, Some(masked))) => out.append_value(&masked),
                Some((b, None)) => out.append_value(b),
                None => out.append_null(),
            }
        }
        out.finish()
    };
    let mut columns = kept.columns().to_vec();
    columns[index] = Arc::new(masked);
    RecordBatch::try_new(kept.schema(), columns).expect("same schema")
}

/// The example plugin's `mask_digits`, line for line, so that both sides do
/// the same work.
fn mask_digits(body: &str, mask: char) -> Option<String> {
    let first = body.bytes().position(|b| b.is_ascii_digit())?;
    let mut out = String::with_capacity(body.len() + 8);
    out.push_str(&body[..first]);
    let mut run = first;
    for (i, b) in body.bytes().enumerate().skip(first) {
        if b.is_ascii_digit() {
            out.push_str(&body[run..i]);
            out.push(mask);
            run = i + 1;
        }
    }
    out.push_str(&body[run..]);
    Some(out)
}

/// `<target>`: the bench binary is `<target>/<profile>/deps/<name>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench binary has a path");
    exe.ancestors()
        .nth(3)
        .expect("the bench binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the example plugin in `lang`; `None` (with a note) if it cannot.
fn build_plugin(lang: &str) -> Option<PathBuf> {
    let out = target_dir().join("wasm-guests");
    let status = if lang == "rust" {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args(["-p", "redact-rust", "--manifest-path"])
            .arg(repo_root().join("plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&out)
            // The plugins' own `.cargo/config.toml` (SIMD) applies.
            .current_dir(repo_root().join("plugins"))
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
    } else {
        Command::new("bash")
            .arg(repo_root().join("plugins/examples/build.sh"))
            .arg(lang)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
    };
    let path = match lang {
        "rust" => out.join("wasm32-wasip2/release/redact_rust.wasm"),
        "js" => out.join("redact_js.wasm"),
        _ => out.join("redact_py.wasm"),
    };
    match status {
        Ok(s) if s.success() && path.is_file() => Some(path),
        other => {
            eprintln!("plugin bench: skipping the {lang} plugin, its build failed: {other:?}");
            None
        }
    }
}

fn processor(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    runtime: Arc<Runtime>,
    config: Option<&str>,
) -> WasmProcessor {
    let mut wasm = WasmConfig::new(path);
    wasm.instances = Some(1);
    if let Some(config) = config {
        wasm.config = config.to_string();
    }
    rt.block_on(WasmProcessor::new("redact", &wasm, runtime))
        .expect("the plugin loads")
}

fn bench_redact(c: &mut Criterion, rt: &tokio::runtime::Runtime, plugins: &[(&str, PathBuf)]) {
    let input = batch();
    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Elements(ROWS as u64));
    // `#` masks the body column in one pass; `•` (three bytes in UTF-8)
    // takes the value-by-value path, a new string per masked value.
    for (mask, suffix) in [('#', ""), ('•', "-per-value")] {
        // The plugins and the host must agree before their speed means
        // anything.
        let expected = redact_native(&input, mask);
        group.bench_function(format!("native{suffix}"), |b| {
            b.iter(|| redact_native(black_box(&input), mask))
        });
        for (lang, path) in plugins {
            if !suffix.is_empty() && *lang != "rust" {
                continue;
            }
            let config = format!("{{\"mask\":\"{mask}\"}}");
            let runtime = Runtime::new(None).expect("runtime");
            let mut p = processor(rt, path, runtime, Some(&config));
            let run = |p: &mut WasmProcessor| {
                let (ack, _waiter) = Ack::new();
                let mut out = Vec::new();
                rt.block_on(p.process(Batch::new(Signal::Logs, input.clone(), ack), &mut out))
                    .expect("the plugin processes the batch");
                out
            };
            let out = run(&mut p);
            assert_eq!(out.len(), 1, "{lang}: one batch out");
            assert_eq!(out[0].data(), &expected, "{lang}: output equals the host's");
            group.bench_function(format!("wasm-{lang}{suffix}"), |b| {
                b.iter(|| black_box(run(&mut p)))
            });
        }
    }
    group.finish();
}

fn bench_load(c: &mut Criterion, rt: &tokio::runtime::Runtime, rust: &Path) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter(|| {
            let cache = tempfile::tempdir().expect("tmp");
            let runtime = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
            black_box(processor(rt, rust, runtime, None))
        })
    });
    let cache = tempfile::tempdir().expect("tmp");
    drop(processor(
        rt,
        rust,
        Runtime::new(Some(cache.path().to_path_buf())).expect("runtime"),
        None,
    ));
    group.bench_function("warm", |b| {
        b.iter(|| {
            // A new runtime each time: only the on-disk cache can help.
            let runtime = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
            black_box(processor(rt, rust, runtime, None))
        })
    });
    group.finish();
}

fn benches() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    // `WEIR_BENCH_LANGS=rust,js` limits the plugins built and loaded.
    let langs = std::env::var("WEIR_BENCH_LANGS").unwrap_or_else(|_| "rust,js,python".into());
    let plugins: Vec<(&str, PathBuf)> = ["rust", "js", "python"]
        .into_iter()
        .filter(|lang| langs.split(',').any(|l| l.trim() == *lang))
        .filter_map(|lang| build_plugin(lang).map(|p| (lang, p)))
        .collect();
    let mut c = Criterion::default().configure_from_args();
    bench_redact(&mut c, &rt, &plugins);
    if let Some((_, rust)) = plugins.iter().find(|(l, _)| *l == "rust") {
        bench_load(&mut c, &rt, rust);
    }
}

criterion_main!(benches);
