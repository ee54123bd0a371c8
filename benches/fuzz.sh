#!/usr/bin/env bash
# fuzz.sh - runs each of Weir's fuzz targets for a given time on inputs
# mutated from its corpus (engine/fuzz/corpus/<target>/) and prints, per
# target, the executions, executions per second and findings (inputs that
# made it panic, kept under findings/<target>/ with the panic message).
#
#   benches/fuzz.sh [--seconds N] [--seed S] [--no-build] [TARGET ...]
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
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --seed) SEED=(--seed "$2"); shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -*) echo "unknown argument $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done

if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --profile bench -p weir-fuzz --bin weir-fuzz)
fi

cd "$ROOT"
"$TARGET_DIR/release/weir-fuzz" run "${TARGETS[@]}" --seconds "$SECONDS_EACH" \
    --findings "$ROOT/findings" "${SEED[@]}"
