#!/usr/bin/env bash
# fuzz.sh - runs each of Weir's fuzz targets for a given time on inputs
# mutated from its corpus (engine/fuzz/corpus/<target>/) and prints, per
# target, the executions, executions per second and findings (inputs that
# made it panic, kept under findings/<target>/ with the panic message).
#
#   benches/fuzz.sh [--seconds N] [--seed S] [--no-build] [TARGET ...]
#   benches/fuzz.sh --coverage [--seconds N] [--no-build] [TARGET ...]
#
# --coverage: coverage-guided fuzzing with libFuzzer instead, of the targets
# that need no engine (otlp_proto, otlp_json, wal_replay; all three when
# none is named). `weir-libfuzzer` is built on stable Rust with LLVM's
# sanitizer coverage (the flags `cargo fuzz` passes, without
# AddressSanitizer: the code under test is safe Rust) into
# $CARGO_TARGET_DIR/libfuzzer; each target starts from a copy of its corpus
# and libFuzzer keeps the inputs that reach new code there. Crashes,
# timeouts and out-of-memory inputs go to findings/<target>/.
#
# Targets: otlp_proto, otlp_json, pipeline_toml, wal_replay, sql (all when
# none is named). The binary comes from $CARGO_TARGET_DIR/release (or
# target/release), built with `cargo build --profile bench -p weir-fuzz`
# unless --no-build. CI does not fuzz: it runs every corpus file through
# its target (`cargo test -p weir-fuzz`). A finding, once fixed, goes into
# the corpus so that it stays fixed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SECONDS_EACH=60
BUILD=1
SEED=()
TARGETS=()
COVERAGE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --seed) SEED=(--seed "$2"); shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --coverage) COVERAGE=1; shift ;;
        -*) echo "unknown argument $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done

if [[ $COVERAGE == 1 ]]; then
    [[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(otlp_proto otlp_json wal_replay)
    HOST="$(rustc -vV | sed -n 's/^host: //p')"
    FUZZ_DIR="$TARGET_DIR/libfuzzer"
    BIN="$FUZZ_DIR/$HOST/release/weir-libfuzzer"
    if [[ $BUILD == 1 ]]; then
        # --target keeps the coverage flags off build scripts and proc macros.
        (cd "$ROOT" && CARGO_TARGET_DIR="$FUZZ_DIR" RUSTFLAGS="-Cpasses=sancov-module \
            -Cllvm-args=-sanitizer-coverage-level=4 \
            -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
            -Cllvm-args=-sanitizer-coverage-pc-table \
            -Cllvm-args=-sanitizer-coverage-trace-compares \
            --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
            cargo build --release --target "$HOST" -p weir-fuzz --no-default-features \
            --features libfuzzer --bin weir-libfuzzer)
    fi
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    printf '%-14s %12s %10s %8s %9s\n' target execs execs/s corpus findings
    for t in "${TARGETS[@]}"; do
        mkdir -p "$WORK/$t" "$ROOT/findings/$t"
        cp "$ROOT/engine/fuzz/corpus/$t"/* "$WORK/$t/"
        before=$(ls "$ROOT/findings/$t" | wc -l)
        log="$WORK/$t.log"
        WEIR_FUZZ_TARGET="$t" "$BIN" -max_total_time="$SECONDS_EACH" -timeout=10 \
            -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
            -artifact_prefix="$ROOT/findings/$t/" "$WORK/$t" >"$log" 2>&1 || true
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        found=$(( $(ls "$ROOT/findings/$t" | wc -l) - before ))
        printf '%-14s %12s %10s %8s %9s\n' "$t" "${execs:-?}" "${rate:-?}" \
            "$(ls "$WORK/$t" | wc -l)" "$found"
        if [[ $found -gt 0 || -z $execs ]]; then
            echo "  libFuzzer's log ($t):" >&2
            grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 >&2 || tail -20 "$log" >&2
        fi
    done
    exit 0
fi

if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --profile bench -p weir-fuzz --bin weir-fuzz)
fi

cd "$ROOT"
"$TARGET_DIR/release/weir-fuzz" run "${TARGETS[@]}" --seconds "$SECONDS_EACH" \
    --findings "$ROOT/findings" "${SEED[@]}"
