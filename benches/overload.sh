#!/usr/bin/env bash
# overload.sh - Weir under twice the load it can take, with its sink slow,
# for minutes: does its memory stay under `[runtime] memory_limit`, do
# clients get retryable refusals, and is nothing acknowledged lost?
#
# 1. A slow backend: weir-otlp-blackhole answering each request after
#    --delay-ms (default 100 ms), on free loopback ports.
# 2. Weir: OTLP/gRPC in -> `otlp` sink with a disk queue (each request
#    answered once its records are fsynced in the queue) -> the backend,
#    with `memory_limit` (default 512MiB).
# 3. Capacity: weir-loadgen flat out for 15 s; what Weir answered per
#    second is what this machine takes.
# 4. Overload: weir-loadgen at twice that rate for --seconds (default 300),
#    Weir's resident memory sampled every 0.5 s.
# 5. Drain: the load stops; once Weir's queue is empty, the backend stops
#    and says how many spans it got.
#
# The report: the rates, Weir's peak resident memory beside the limit, the
# requests refused (UNAVAILABLE: retryable, with a retry hint), and the
# spans answered OK beside the spans the backend received (lost = answered
# but never received; the backend may get more, from requests retried
# after a timeout).
#
#   benches/overload.sh [--seconds N] [--memory-limit SIZE] [--delay-ms N] [--bin-dir DIR]
#
# The binaries come from --bin-dir (default $CARGO_TARGET_DIR/release, as
# `cargo build --profile bench -p weir-cli -p weir-benches --bins` writes
# them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/release"
SECONDS_LOAD=300
MEMORY_LIMIT=512MiB
DELAY_MS=100
KEEP_WORK=0

die() { echo "overload.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_LOAD="$2"; shift 2 ;;
        --memory-limit) MEMORY_LIMIT="$2"; shift 2 ;;
        --delay-ms) DELAY_MS="$2"; shift 2 ;;
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done

need_bins "$BIN_DIR" weir weir-loadgen weir-otlp-blackhole

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP_WORK == 0 ]]; then rm -rf "$WORK"; else echo "work kept in $WORK" >&2; fi
}
trap cleanup EXIT

BACK_GRPC="$(free_port)"; BACK_HTTP="$(free_port)"
"$BIN_DIR/weir-otlp-blackhole" --grpc "127.0.0.1:$BACK_GRPC" --http "127.0.0.1:$BACK_HTTP" \
    --delay-ms "$DELAY_MS" > "$WORK/backend.log" 2>&1 &
BACK_PID=$!; PIDS+=("$BACK_PID")
wait_port "$BACK_GRPC" "$BACK_PID" "$WORK/backend.log"

API="$(free_port)"; GRPC="$(free_port)"
cat > "$WORK/pipeline.toml" <<EOF
[api]
address = "127.0.0.1:$API"

[runtime]
memory_limit = "$MEMORY_LIMIT"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:$GRPC"
http = false

[sinks.backend]
type = "otlp"
inputs = ["otlp"]
endpoint = "http://127.0.0.1:$BACK_GRPC"
max_in_flight = 4
queue = { max_size = "8GiB", dir = "$WORK/queue" }
EOF
"$BIN_DIR/weir" run "$WORK/pipeline.toml" > "$WORK/weir.log" 2>&1 &
WEIR_PID=$!; PIDS+=("$WEIR_PID")
wait_port "$GRPC" "$WEIR_PID" "$WORK/weir.log"

load() { # rate seconds -> JSON report
    "$BIN_DIR/weir-loadgen" --endpoint "http://127.0.0.1:$GRPC" --signal spans \
        --batch-size 512 --concurrency 16 --connections 4 --timeout 30s \
        --rate "$1" --duration "$2" --output json 2> "$WORK/loadgen.log"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "== capacity: flat out for 15 s"
CAPACITY_JSON="$(load 0 15s)"
CAPACITY="$(echo "$CAPACITY_JSON" | field "['records_per_sec']")"
RATE="$(python3 -c "print(int(2 * $CAPACITY))")"
echo "Weir took $(printf '%.0f' "$CAPACITY") spans/s; the overload sends $RATE spans/s for ${SECONDS_LOAD} s"

echo "== overload"
PEAK=0
(
    while kill -0 "$WEIR_PID" 2>/dev/null; do
        awk '/VmRSS/ { print $2 * 1024 }' "/proc/$WEIR_PID/status" >> "$WORK/rss"
        sleep 0.5
    done
) & PIDS+=("$!")
OVER_JSON="$(load "$RATE" "${SECONDS_LOAD}s")"
PEAK="$(sort -n "$WORK/rss" | tail -1)"
echo "$OVER_JSON" > "$WORK/overload.json"

echo "== drain"
queue_records() {
    curl -s "http://127.0.0.1:$API/metrics" \
        | awk '/^weir_export_queue_records/ { s += $2 } END { print s + 0 }'
}
for ((i = 0; i < 3000; i++)); do
    [[ "$(queue_records)" == "0" ]] && break
    sleep 0.2
done
sleep 1
kill -TERM "$BACK_PID"; wait "$BACK_PID" 2>/dev/null || true
RECEIVED="$(awk '/weir-otlp-blackhole: .* requests/ { print $4 }' "$WORK/backend.log")"

CAPACITY_OK="$(echo "$CAPACITY_JSON" | field "['records_ok']")"
python3 - "$WORK/overload.json" "$PEAK" "$MEMORY_LIMIT" "$RECEIVED" "$CAPACITY" "$RATE" "$CAPACITY_OK" <<'EOF'
import json, re, sys
report = json.load(open(sys.argv[1]))
peak, limit_text, received = int(float(sys.argv[2])), sys.argv[3], int(sys.argv[4] or 0)
units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)", limit_text)
limit = int(m.group(1)) * units[m.group(2)] if m else None
ok = report["records_ok"]
errors = report.get("errors", {})
unavailable = sum(v.get("count", 0) for k, v in errors.items() if "unavailable" in k.lower() or "503" in k)
print(f"capacity            {float(sys.argv[5]):,.0f} spans/s (flat out, 15 s)")
print(f"offered             {int(sys.argv[6]):,} spans/s for {report['elapsed_secs']:.0f} s")
print(f"answered OK         {report['records_per_sec']:,.0f} spans/s, {ok:,} spans in {report['requests_ok']:,} requests")
print(f"refused             {report['requests_failed']:,} requests ({unavailable:,} UNAVAILABLE, retryable); errors: {json.dumps(errors)}")
print(f"peak resident       {peak / 2**20:,.0f} MiB" + (f" of memory_limit {limit / 2**20:,.0f} MiB: {'under' if peak <= limit else 'OVER'}" if limit else ""))
answered = ok + int(sys.argv[7])
print(f"backend received    {received:,} spans; answered OK over both runs {answered:,}; answered OK but not received: {max(0, answered - received):,}")
EOF
