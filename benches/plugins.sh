#!/usr/bin/env bash
# plugins.sh - the first-party plugins' cost, inside Weir and natively, in
# one run.
#
# 1. The physical-limit anchor: each plugin's logic compiled for the host
#    (`cargo run --release --example throughput` in `plugins/`), on batches
#    of 1,024 records with the host's reads and writes stood in for by
#    in-memory copies: what the logic costs with no WebAssembly boundary and
#    no Arrow.
# 2. Inside Weir: `weir-pluginbench`, each plugin as a pipeline names it
#    (`plugin = NAME`), one instance in Weir's WebAssembly host, on
#    1,024-record batches converted from OTLP, records/s per core from the
#    process's CPU time (host and guest together).
#
# Targets (issue 15): enrich >= 1M records/s per core; redact (every
# preset, 120-byte bodies and 5 attributes) >= 500k; spanmetrics >= 1M
# spans/s; tail sampling >= 300k spans/s with 100k traces in flight, its
# memory within max_memory.
#
#   benches/plugins.sh [--seconds N] [--no-build]
#
# The bench comes from $CARGO_TARGET_DIR/release (or target/release), built
# with `cargo build --profile bench -p weir-benches --bin weir-pluginbench`
# unless --no-build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SECONDS_EACH=10
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --profile bench -p weir-benches --bin weir-pluginbench)
fi

echo "== native anchor (the plugins' logic compiled for the host)"
cd "$ROOT/plugins"
# The native builds get a target directory of their own: the plugins'
# workspace builds for wasm32-wasip2 elsewhere.
export CARGO_TARGET_DIR="$TARGET_DIR/plugins-native"
cargo run --quiet --release -p enrich --example throughput -- lookup issue
cargo run --quiet --release -p redact --example throughput -- mixed
cargo run --quiet --release -p spanmetrics --example throughput
cargo run --quiet --release -p sample --example throughput
unset CARGO_TARGET_DIR

echo
echo "== inside Weir (one instance, records/s per core)"
"$TARGET_DIR/release/weir-pluginbench" --seconds "$SECONDS_EACH"
