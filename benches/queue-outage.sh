#!/usr/bin/env bash
# queue-outage.sh - a disk queue filled through an outage, then Weir killed
# with SIGKILL and started again: does memory stay near the queue's
# `max_memory` while the log grows to gigabytes, and does every
# acknowledged span arrive after the restart?
#
# 1. Weir: OTLP/gRPC in -> `otlp` sink with a disk queue (max_size 8GiB,
#    max_memory 64MiB, the default) -> a backend that is not running.
# 2. Outage: weir-loadgen flat out for --seconds (default 15); every
#    request is answered once fsynced in the queue. Weir's resident memory
#    is sampled every 0.2 s.
# 3. Weir is killed with SIGKILL; the queue's size on disk is read.
# 4. The backend (weir-otlp-blackhole) starts, then Weir again on the same
#    queue; memory is sampled while it reopens the log and drains it.
# 5. Once Weir sent all it acknowledged (or nothing moved for 10 s), the
#    backend stops and says what it got.
#
# The report: spans acknowledged, the queue's bytes on disk, the peak
# resident memory of each Weir, the spans received (lost = acknowledged
# but never received).
#
#   benches/queue-outage.sh [--seconds N] [--bin-dir DIR]
#
# The binaries come from --bin-dir (default $CARGO_TARGET_DIR/release, as
# `cargo build --profile bench -p weir-cli -p weir-benches --bins` writes
# them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/release"
SECONDS_LOAD=15
KEEP_WORK=0

die() { echo "queue-outage.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_LOAD="$2"; shift 2 ;;
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
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
API="$(free_port)"; GRPC="$(free_port)"
cat > "$WORK/pipeline.toml" <<EOF
[api]
address = "127.0.0.1:$API"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:$GRPC"
http = false

[sinks.backend]
type = "otlp"
inputs = ["otlp"]
endpoint = "http://127.0.0.1:$BACK_GRPC"
queue = { max_size = "8GiB", dir = "$WORK/queue" }
EOF

# Starts Weir; its resident memory goes to $WORK/$1 every 0.2 s.
start_weir() {
    "$BIN_DIR/weir" run "$WORK/pipeline.toml" >> "$WORK/weir.log" 2>&1 &
    WEIR_PID=$!; PIDS+=("$WEIR_PID")
    (
        while kill -0 "$WEIR_PID" 2>/dev/null; do
            awk '/VmRSS/ { print $2 * 1024 }' "/proc/$WEIR_PID/status" >> "$WORK/$1" 2>/dev/null || true
            sleep 0.2
        done
    ) & PIDS+=("$!")
}
peak_mb() { sort -n "$WORK/$1" | tail -1 | awk '{ printf "%.0f", $1 / 1048576 }'; }

echo "== outage: the backend is down, load for ${SECONDS_LOAD} s"
start_weir rss-fill
wait_port "$GRPC" "$WEIR_PID" "$WORK/weir.log"
"$BIN_DIR/weir-loadgen" --endpoint "http://127.0.0.1:$GRPC" --signal spans \
    --batch-size 512 --concurrency 16 --connections 4 --timeout 30s \
    --rate 0 --duration "${SECONDS_LOAD}s" --output json > "$WORK/load.json" 2> "$WORK/loadgen.log"
ACKED="$(python3 -c "import json; print(json.load(open('$WORK/load.json'))['records_ok'])")"
kill -KILL "$WEIR_PID"; wait "$WEIR_PID" 2>/dev/null || true
QUEUE_BYTES="$(du -sb "$WORK/queue" | cut -f1)"
echo "acknowledged $ACKED spans; Weir killed with SIGKILL; the queue holds $((QUEUE_BYTES / 1048576)) MiB"

echo "== restart: the backend is up"
"$BIN_DIR/weir-otlp-blackhole" --grpc "127.0.0.1:$BACK_GRPC" --http "127.0.0.1:$BACK_HTTP" \
    > "$WORK/backend.log" 2>&1 &
BACK_PID=$!; PIDS+=("$BACK_PID")
wait_port "$BACK_GRPC" "$BACK_PID" "$WORK/backend.log"
STARTED="$(date +%s.%N)"
start_weir rss-drain
wait_port "$GRPC" "$WEIR_PID" "$WORK/weir.log"
sent() {
    curl -s "http://127.0.0.1:$API/metrics" \
        | awk '/^weir_export_sent_records_total/ { s += $2 } END { printf "%d", s + 0 }'
}
# Until everything acknowledged was sent, or nothing moved for 10 s.
LAST=0; STILL=0
while (( STILL < 100 )); do
    NOW="$(sent)"
    (( NOW >= ACKED )) && break
    if (( NOW == LAST )); then STILL=$((STILL + 1)); else STILL=0; LAST=$NOW; fi
    sleep 0.1
done
DRAINED="$(python3 -c "print(f'{$(date +%s.%N) - $STARTED:.1f}')")"
sleep 1
kill -TERM "$BACK_PID"; wait "$BACK_PID" 2>/dev/null || true
RECEIVED="$(awk '/weir-otlp-blackhole: .* requests/ { print $4 }' "$WORK/backend.log")"
RECEIVED="${RECEIVED:-0}"

echo
echo "acknowledged during the outage: $ACKED spans; queue on disk: $((QUEUE_BYTES / 1048576)) MiB"
echo "peak RSS filling: $(peak_mb rss-fill) MB; reopening and draining: $(peak_mb rss-drain) MB"
echo "received after the restart: $RECEIVED spans in ${DRAINED} s; lost: $((ACKED > RECEIVED ? ACKED - RECEIVED : 0))"
