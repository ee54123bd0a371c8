//! weir-libfuzzer: coverage-guided fuzzing of a target that needs no
//! engine (`otlp_proto`, `otlp_json`, `wal_replay`) with libFuzzer. The
//! target is named by `WEIR_FUZZ_TARGET`; every other argument is
//! libFuzzer's (corpus folders, `-max_total_time=N`,
//! `-artifact_prefix=DIR/`). Built with sanitizer coverage by
//! `benches/fuzz.sh --coverage`:
//!
//! ```sh
//! WEIR_FUZZ_TARGET=otlp_proto weir-libfuzzer -max_total_time=60 new/ engine/fuzz/corpus/otlp_proto
//! ```

#![no_main]
// libFuzzer calls in through an exported C function: the macro declares it.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use weir_fuzz::Target;

/// The target, read from `WEIR_FUZZ_TARGET` at the first input.
fn target() -> Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let name = std::env::var("WEIR_FUZZ_TARGET").unwrap_or_default();
        match Target::from_name(&name) {
            Some(t @ (Target::OtlpProto | Target::OtlpJson | Target::WalReplay)) => t,
            _ => {
                eprintln!(
                    "WEIR_FUZZ_TARGET must name otlp_proto, otlp_json or wal_replay (got {name:?})"
                );
                std::process::exit(2);
            }
        }
    })
}

/// Makes a panic that leaves the target a crash, and only such a panic.
/// libFuzzer's hook aborts on every panic, even one the code under test
/// catches on purpose (WAL replay catches the Arrow IPC decoder's panics
/// on damaged records and counts the record as damaged); here a panic is
/// silent where it happens and aborts once it has left the target.
fn quiet_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| std::panic::set_hook(Box::new(|_| {})));
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = target();
    quiet_panics();
    let run = std::panic::catch_unwind(|| weir_fuzz::targets::run_light(target, data));
    if let Err(payload) = run {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("panicked: {} panicked: {message}", target.name());
        std::process::abort();
    }
});
