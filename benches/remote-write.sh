#!/usr/bin/env bash
# remote-write.sh - OTLP metrics in, Prometheus remote-write out to
# VictoriaMetrics: samples/s that reach it, and Weir's CPU per million
# samples.
#
# VictoriaMetrics (Debian's `victoria-metrics`, or --vm-bin) and Weir
# (benches/pipelines/remote-write.toml) run on free loopback ports;
# weir-loadgen sends OTLP/gRPC metric requests (monotonic sums, gauges and
# histograms, 512 points each) flat out: a warm-up, then the measured run.
# Samples are counted by VictoriaMetrics (`vm_rows_inserted_total` of type
# promremotewrite), over the run and the time Weir kept sending after it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/release"
DURATION=20s
WARMUP=5s
CONCURRENCY=16
BATCH=512
VM_BIN="${WEIR_TEST_VICTORIA_METRICS:-$(command -v victoria-metrics || true)}"

usage() {
    cat <<'USAGE'
Usage: benches/remote-write.sh [--duration D] [--warmup D] [--concurrency N] [--batch-size N] [--vm-bin PATH]

Needs target/release/weir and weir-loadgen (cargo build --profile bench -p
weir-cli -p weir-benches --bins) and VictoriaMetrics (apt-get install
victoria-metrics). Prints the samples per second VictoriaMetrics took, Weir's
and VictoriaMetrics' CPU, and Weir's CPU seconds per million samples.
USAGE
}

while (($#)); do
    case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --batch-size) BATCH="$2"; shift 2 ;;
    --vm-bin) VM_BIN="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "remote-write: unknown option '$1'" >&2; exit 1 ;;
    esac
done

die() { echo "remote-write: $*" >&2; exit 1; }
note() { echo "remote-write: $*" >&2; }
[[ -x "$BIN_DIR/weir" && -x "$BIN_DIR/weir-loadgen" ]] ||
    die "build first: cargo build --profile bench -p weir-cli -p weir-benches --bins"
[[ -n "$VM_BIN" && -x "$VM_BIN" ]] || die "no VictoriaMetrics: apt-get install victoria-metrics, or --vm-bin PATH"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-remote-write.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# free_port, cpu_ticks, settle
source "$ROOT/benches/lib.sh"
wait_http() {
    local url="$1" i
    for ((i = 0; i < 300; i++)); do
        curl -sf "$url" >/dev/null && return 0
        sleep 0.1
    done
    die "$url does not answer"
}
samples() {
    curl -s "http://127.0.0.1:$VM_PORT/metrics" |
        awk '/^vm_rows_inserted_total\{type="promremotewrite"\}/ { print $2 }'
}

VM_PORT="$(free_port)"
"$VM_BIN" -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$WORK/vm" >"$WORK/vm.log" 2>&1 &
VM_PID=$!; PIDS+=("$VM_PID")
wait_http "http://127.0.0.1:$VM_PORT/health"

GRPC="$(free_port)"; HTTP="$(free_port)"; API="$(free_port)"
sed -e "s/127\.0\.0\.1:14317/127.0.0.1:$GRPC/" -e "s/127\.0\.0\.1:14318/127.0.0.1:$HTTP/" \
    -e "s/127\.0\.0\.1:18888/127.0.0.1:$API/" -e "s/127\.0\.0\.1:18428/127.0.0.1:$VM_PORT/" \
    "$ROOT/benches/pipelines/remote-write.toml" >"$WORK/weir.toml"
"$BIN_DIR/weir" run "$WORK/weir.toml" >"$WORK/weir.log" 2>&1 &
WEIR_PID=$!; PIDS+=("$WEIR_PID")
wait_http "http://127.0.0.1:$API/healthz"

load=("$BIN_DIR/weir-loadgen" --endpoint "http://127.0.0.1:$GRPC" --protocol grpc --signal metrics
    --batch-size "$BATCH" --concurrency "$CONCURRENCY" --rate 0 --output json)
note "warm-up for $WARMUP"
"${load[@]}" --duration "$WARMUP" >"$WORK/warmup.json" 2>>"$WORK/loadgen.log"
read -r before _ <<<"$(settle samples)"
weir0="$(cpu_ticks "$WEIR_PID")"; vm0="$(cpu_ticks "$VM_PID")"
note "measuring for $DURATION"
"${load[@]}" --duration "$DURATION" >"$WORK/run.json" 2>>"$WORK/loadgen.log"
read -r after drain <<<"$(settle samples)"
weir1="$(cpu_ticks "$WEIR_PID")"; vm1="$(cpu_ticks "$VM_PID")"
python3 - "$WORK/run.json" "$before" "$after" "$drain" "$((weir1 - weir0))" "$((vm1 - vm0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
before, after, drain = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
weir_ticks, vm_ticks, tck = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
elapsed = run["elapsed_secs"] + drain
samples = after - before
print(f"OTLP metric points answered: {run['records_per_sec']:,.0f}/s ({run['requests_failed']} requests failed)")
print(f"samples VictoriaMetrics took: {samples / elapsed:,.0f}/s ({samples:,.0f} in {elapsed:.1f} s, "
      f"{drain:.1f} s of it after the load)")
print(f"Weir: {weir_ticks / tck / elapsed:.2f} cores, {weir_ticks / tck / (samples / 1e6):.2f} CPU-s per million samples; "
      f"VictoriaMetrics: {vm_ticks / tck / elapsed:.2f} cores")
PY
