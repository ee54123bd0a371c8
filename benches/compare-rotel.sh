#!/usr/bin/env bash
# compare-rotel.sh - the same OTLP load against Weir and against Rotel, side by side.
#
# Each server runs alone on this machine with a blackhole output (Weir:
# benches/pipelines/blackhole.toml; Rotel: --exporter blackhole) on free
# loopback ports. weir-loadgen sends spans over OTLP/gRPC flat out: a warm-up
# run, then the measured run. The script prints spans/s, latency, server CPU
# and peak RSS for each, and the ratio Weir/Rotel (target: >= 1.5 with the
# blackhole pipeline, >= 1.0 with `--pipeline store`, >= 1.5 with
# `--pipeline forward`, where both forward over OTLP/gRPC to a downstream
# Weir with a blackhole and are judged by what reaches it).
#
# Run `benches/compare-rotel.sh --help` for the options.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Cargo's `bench` profile writes its binaries to the `release` directory.
BIN_DIR="$TARGET_DIR/release"

DURATION=40s
WARMUP=10s
ONLY=both
CONCURRENCY=16
CONNECTIONS=4
BATCH=512
PIN=""
RECORD=""
WEIR_BIN=""
ROTEL_BIN=""
ROTEL_VERSION="0.0.1a15"
VENV="$TARGET_DIR/bench-venv"
BUILD=1
PIPELINE=blackhole
LOADGEN_EXTRA=()

usage() {
    cat <<'EOF'
Usage: benches/compare-rotel.sh [OPTIONS] [-- EXTRA-LOADGEN-ARGS...]

Runs the same OTLP/gRPC span load against Weir (otlp -> blackhole) and Rotel
(blackhole exporter), one after the other on this machine, and prints spans/s,
latency, server CPU, peak RSS and the ratio Weir/Rotel. Writes nothing outside
a temporary directory unless --record is given. About 2 minutes with defaults.

Options:
  --duration D        measured run per server (default 40s)
  --warmup D          warm-up run per server, not counted (default 10s)
  --only weir|rotel   run one server only
  --pipeline P        Weir's pipeline: `blackhole` (default; otlp -> blackhole,
                      like Rotel's) or `store` (otlp -> the embedded store,
                      answered once the WAL is fsynced) or `forward` (otlp ->
                      the otlp sink with a disk queue -> a downstream Weir;
                      Rotel: --exporter otlp to the same downstream; judged
                      by the spans that reach it), from benches/pipelines/
  --concurrency N     requests in flight (default 16)
  --connections N     HTTP/2 connections (default 4)
  --batch-size N      spans per request (default 512)
  --pin S:L           pin the server to CPUs S and the load generator to CPUs L
                      with taskset, e.g. --pin 0:1 (default: no pinning)
  --weir-bin PATH     weir binary (default: target/release/weir, built with
                      `cargo build --profile bench -p weir-cli` if missing)
  --rotel-bin PATH    rotel agent binary (default: installed from PyPI into
                      target/bench-venv)
  --rotel-version V   PyPI version of rotel to install (default 0.0.1a15;
                      only pre-releases exist)
  --no-build          do not run cargo; use the binaries as they are
  --record [FILE]     append one tab-separated line of results to FILE
                      (default benches/results/compare-rotel.tsv)
  -h, --help          this help

Anything after `--` is passed to weir-loadgen for both servers, e.g.
  benches/compare-rotel.sh -- --attributes 20 --services 8
EOF
}

die() {
    echo "compare-rotel: $*" >&2
    exit 1
}

note() {
    echo "compare-rotel: $*" >&2
}

while (($#)); do
    case "$1" in
    --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
    --warmup) WARMUP="${2:?--warmup needs a value}"; shift 2 ;;
    --only) ONLY="${2:?--only needs weir or rotel}"; shift 2 ;;
    --pipeline) PIPELINE="${2:?--pipeline needs blackhole, store or forward}"; shift 2 ;;
    --concurrency) CONCURRENCY="${2:?--concurrency needs a value}"; shift 2 ;;
    --connections) CONNECTIONS="${2:?--connections needs a value}"; shift 2 ;;
    --batch-size) BATCH="${2:?--batch-size needs a value}"; shift 2 ;;
    --pin) PIN="${2:?--pin needs SERVER_CPUS:LOADGEN_CPUS}"; shift 2 ;;
    --weir-bin) WEIR_BIN="${2:?--weir-bin needs a path}"; shift 2 ;;
    --rotel-bin) ROTEL_BIN="${2:?--rotel-bin needs a path}"; shift 2 ;;
    --rotel-version) ROTEL_VERSION="${2:?--rotel-version needs a version}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --record)
        if [[ $# -ge 2 && "$2" != --* ]]; then
            RECORD="$2"; shift 2
        else
            RECORD="$ROOT/benches/results/compare-rotel.tsv"; shift
        fi
        ;;
    -h | --help) usage; exit 0 ;;
    --) shift; LOADGEN_EXTRA=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

case "$ONLY" in
both | weir | rotel) ;;
*) die "--only takes weir or rotel, not '$ONLY'" ;;
esac
case "$PIPELINE" in
blackhole | store | forward) ;;
*) die "--pipeline takes blackhole, store or forward, not '$PIPELINE'" ;;
esac
[[ "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || die "--concurrency must be a positive integer, got '$CONCURRENCY'"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer, got '$CONNECTIONS'"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "--batch-size must be a positive integer, got '$BATCH'"
command -v python3 >/dev/null || die "python3 is needed (to install rotel and read the load generator's JSON)"

SERVER_PIN=()
LOADGEN_PIN=()
if [[ -n "$PIN" ]]; then
    [[ "$PIN" == *:* ]] || die "--pin takes SERVER_CPUS:LOADGEN_CPUS such as 0:1, got '$PIN'"
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux), which is not installed"
    SERVER_PIN=(taskset -c "${PIN%%:*}")
    LOADGEN_PIN=(taskset -c "${PIN#*:}")
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-compare.XXXXXX")"
SERVER_PID=""
KEEP_WORK=0

cleanup() {
    if [[ -n "${DOWN_PID:-}" ]]; then
        kill -TERM "$DOWN_PID" 2>/dev/null || true
    fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        sleep 1
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if ((KEEP_WORK)); then
        note "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries ---------------------------------------------------------------

LOADGEN="$BIN_DIR/weir-loadgen"
if ((BUILD)); then
    note "building weir-loadgen (cargo build --profile bench -p weir-benches --bin weir-loadgen)"
    (cd "$ROOT" && cargo build --quiet --profile bench -p weir-benches --bin weir-loadgen) ||
        die "building weir-loadgen failed (see the cargo output above)"
fi
[[ -x "$LOADGEN" ]] || die "no load generator at $LOADGEN; build it with: cargo build --profile bench -p weir-benches --bin weir-loadgen"

if [[ "$ONLY" != rotel ]]; then
    if [[ -z "$WEIR_BIN" ]]; then
        WEIR_BIN="$BIN_DIR/weir"
        if [[ ! -x "$WEIR_BIN" ]] && ((BUILD)); then
            note "building weir (cargo build --profile bench -p weir-cli)"
            (cd "$ROOT" && cargo build --quiet --profile bench -p weir-cli) ||
                die "building weir failed (see the cargo output above); fix the build, pass --weir-bin PATH, or run with --only rotel"
        fi
    fi
    [[ -x "$WEIR_BIN" ]] || die "no weir binary at $WEIR_BIN; build it with: cargo build --profile bench -p weir-cli (or pass --weir-bin PATH, or run with --only rotel)"
fi

ROTEL_LABEL="rotel"
if [[ "$ONLY" != weir ]]; then
    if [[ -z "$ROTEL_BIN" ]]; then
        find_rotel() {
            "$VENV/bin/python" - <<'PY' 2>/dev/null
import pathlib, rotel
print(pathlib.Path(rotel.__file__).parent / "rotel-agent")
PY
        }
        installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("rotel"))' 2>/dev/null || true)"
        if [[ "$installed" != "$ROTEL_VERSION" ]]; then
            note "installing rotel==$ROTEL_VERSION into $VENV"
            [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" || die "could not create a Python venv at $VENV (is python3-venv installed?)"
            "$VENV/bin/pip" install --quiet --disable-pip-version-check --pre "rotel==$ROTEL_VERSION" ||
                die "pip could not install rotel==$ROTEL_VERSION; try another --rotel-version or pass --rotel-bin PATH"
        fi
        ROTEL_BIN="$(find_rotel)" || die "rotel is installed in $VENV but its agent binary was not found"
        ROTEL_LABEL="rotel $ROTEL_VERSION"
    fi
    [[ -x "$ROTEL_BIN" ]] || die "no rotel agent binary at $ROTEL_BIN"
fi

# --- helpers ----------------------------------------------------------------

# free_port, wait_port, cpu_ticks, busy_ticks, settle
source "$ROOT/benches/lib.sh"

stop_server() {
    local pid="$SERVER_PID" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    SERVER_PID=""
}

TICKS="$(getconf CLK_TCK 2>/dev/null || echo 100)"

# With --pipeline forward: the downstream receiver both servers forward to
# (a Weir, otlp -> blackhole), started once, and what it has received.
DOWN_PID=""
DOWN_GRPC=""
DOWN_API=""
start_downstream() {
    DOWN_GRPC="$(free_port)"; DOWN_API="$(free_port)"
    local http
    http="$(free_port)"
    sed -e "s/127\.0\.0\.1:14317/127.0.0.1:$DOWN_GRPC/" \
        -e "s/127\.0\.0\.1:14318/127.0.0.1:$http/" \
        -e "s/127\.0\.0\.1:18888/127.0.0.1:$DOWN_API/" \
        "$ROOT/benches/pipelines/blackhole.toml" >"$WORK/downstream.toml"
    note "downstream: a Weir with a blackhole on 127.0.0.1:$DOWN_GRPC"
    "$WEIR_BIN" run "$WORK/downstream.toml" >"$WORK/downstream.log" 2>&1 &
    DOWN_PID=$!
    wait_port "$DOWN_GRPC" "$DOWN_PID" "$WORK/downstream.log"
    wait_port "$DOWN_API" "$DOWN_PID" "$WORK/downstream.log"
}
down_received() {
    curl -s "http://127.0.0.1:$DOWN_API/metrics" |
        awk '/^weir_component_received_records_total\{/ && /component="null"/ { n += $2 } END { printf "%.0f", n }'
}

# run_server NAME GRPC_PORT LOG -- COMMAND...: starts the server, warms it up, measures it, stops it.
# Writes the measured run's summary to $WORK/NAME.json and "server-CPU-ticks peak-RSS-kB
# machine-busy-ticks" to $WORK/NAME.server.
run_server() {
    local name="$1" port="$2" log="$3"
    shift 4
    note "$name: starting ($*)"
    "${SERVER_PIN[@]}" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_port "$port" "$SERVER_PID" "$log"
    local load=("${LOADGEN_PIN[@]}" "$LOADGEN" --endpoint "http://127.0.0.1:$port" --protocol grpc
        --signal spans --batch-size "$BATCH" --concurrency "$CONCURRENCY" --connections "$CONNECTIONS"
        --rate 0 --output json "${LOADGEN_EXTRA[@]}")
    note "$name: warm-up for $WARMUP"
    "${load[@]}" --duration "$WARMUP" >"$WORK/$name.warmup.json" 2>>"$WORK/$name.loadgen.log" ||
        { KEEP_WORK=1; die "$name: the warm-up run failed (log: $WORK/$name.loadgen.log)"; }
    local cpu_before cpu_after busy_before busy_after landed_before landed_after
    if [[ -n "$DOWN_PID" ]]; then
        landed_before="$(settle down_received)"
    fi
    cpu_before="$(cpu_ticks "$SERVER_PID")"
    busy_before="$(busy_ticks)"
    note "$name: measuring for $DURATION"
    "${load[@]}" --duration "$DURATION" >"$WORK/$name.json" 2>>"$WORK/$name.loadgen.log" ||
        { KEEP_WORK=1; die "$name: the measured run failed (log: $WORK/$name.loadgen.log)"; }
    cpu_after="$(cpu_ticks "$SERVER_PID")"
    busy_after="$(busy_ticks)"
    kill -0 "$SERVER_PID" 2>/dev/null || { KEEP_WORK=1; die "$name: the server died during the run (log: $log)"; }
    if [[ -n "$DOWN_PID" ]]; then
        # What reached the downstream receiver during the run and while
        # the server kept forwarding after it (that time counts).
        landed_after="$(settle down_received)"
        echo "${landed_before%% *} $landed_after" >"$WORK/$name.landed"
        cpu_after="$(cpu_ticks "$SERVER_PID")"
    fi
    local hwm
    hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")"
    stop_server
    echo "$((cpu_after - cpu_before)) $hwm $((busy_after - busy_before))" >"$WORK/$name.server"
}

if [[ "$PIPELINE" == forward ]]; then
    [[ -x "${WEIR_BIN:-}" ]] || WEIR_BIN="$BIN_DIR/weir"
    [[ -x "$WEIR_BIN" ]] || die "--pipeline forward runs a downstream Weir: build it with cargo build --profile bench -p weir-cli"
    command -v curl >/dev/null || die "--pipeline forward reads the downstream Weir's /metrics with curl"
    start_downstream
fi

if [[ "$ONLY" != rotel ]]; then
    grpc="$(free_port)"; http="$(free_port)"; api="$(free_port)"
    sed -e "s/127\.0\.0\.1:14317/127.0.0.1:$grpc/" \
        -e "s/127\.0\.0\.1:19317/127.0.0.1:${DOWN_GRPC:-19317}/" \
        -e "s/127\.0\.0\.1:14318/127.0.0.1:$http/" \
        -e "s/127\.0\.0\.1:18888/127.0.0.1:$api/" \
        -e "s|\"weir-bench-data\"|\"$WORK/weir-data\"|" \
        -e "s|\"weir-bench-data/queue\"|\"$WORK/weir-queue\"|" \
        "$ROOT/benches/pipelines/$PIPELINE.toml" >"$WORK/weir.toml"
    run_server weir "$grpc" "$WORK/weir.log" -- "$WEIR_BIN" run "$WORK/weir.toml"
fi

if [[ "$ONLY" != weir ]]; then
    grpc="$(free_port)"; http="$(free_port)"
    exporter=(--exporter blackhole)
    if [[ "$PIPELINE" == forward ]]; then
        exporter=(--exporter otlp --otlp-exporter-endpoint "http://127.0.0.1:$DOWN_GRPC")
    fi
    run_server rotel "$grpc" "$WORK/rotel.log" -- "$ROTEL_BIN" start "${exporter[@]}" \
        --otlp-grpc-endpoint "127.0.0.1:$grpc" --otlp-http-endpoint "127.0.0.1:$http" \
        --pid-file "$WORK/rotel.pid" --log-file "$WORK/rotel-agent.log"
fi

# --- report -----------------------------------------------------------------

WEIR_LABEL="weir/$PIPELINE" python3 - "$WORK" "$ONLY" "$TICKS" "$ROTEL_LABEL" "$RECORD" "$DURATION" "$CONCURRENCY" "$CONNECTIONS" "$BATCH" "$PIN" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, os, sys, time

work, only, ticks, rotel_label, record, duration, concurrency, connections, batch, pin, rev = sys.argv[1:]
ticks = float(ticks)
names = [n for n in ("weir", "rotel") if only in ("both", n)]
rows = {}
for name in names:
    with open(os.path.join(work, name + ".json")) as f:
        s = json.load(f)
    with open(os.path.join(work, name + ".server")) as f:
        cpu_ticks, hwm_kb, busy_ticks = (float(x) for x in f.read().split())
    elapsed = max(s["elapsed_secs"], 1e-9)
    landed_path = os.path.join(work, name + ".landed")
    # Forwarding: the server's CPU is read after it stopped forwarding, so
    # it is spread over the run and that drain.
    busy_secs = elapsed
    if os.path.exists(landed_path):
        with open(landed_path) as f:
            busy_secs = elapsed + float(f.read().split()[2])
    cores = cpu_ticks / ticks / busy_secs
    loadgen_cores = (s.get("loadgen_cpu_secs") or 0) / elapsed
    # Whatever else ran on the machine meanwhile (other builds, tests): it skews the numbers.
    other_cores = max(busy_ticks / ticks / elapsed - cores - loadgen_cores, 0.0)
    answered = s["records_per_sec"]
    spans = answered
    drain = None
    if os.path.exists(landed_path):
        with open(landed_path) as f:
            before, after, drain = (float(x) for x in f.read().split())
        # Forwarding: judged by what reached the downstream receiver, over
        # the run and the time the server kept forwarding after it.
        spans = (after - before) / (elapsed + drain)
    rows[name] = {
        "label": os.environ.get("WEIR_LABEL", "weir") if name == "weir" else rotel_label,
        "spans": spans,
        "answered": answered,
        "drain": drain,
        "p50": s["latency_ms"]["p50"],
        "p99": s["latency_ms"]["p99"],
        "errors": s["requests_failed"],
        "error_kinds": ", ".join(f"{k}: {v['count']}" for k, v in s["errors"].items()),
        "cores": cores,
        "per_core": spans / cores if cores > 0 else float("nan"),
        "rss_mb": hwm_kb / 1024,
        "loadgen_cores": loadgen_cores,
        "other_cores": other_cores,
    }

print()
print(f"OTLP/gRPC spans, batch {batch}, {concurrency} in flight over {connections} connections, "
      f"{duration} measured per server" + (f", pinned server:loadgen = {pin}" if pin else ""))
header = f"{'server':<16} {'spans/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'server cores':>13} {'spans/core-s':>13} {'peak RSS MB':>12} {'loadgen cores':>14}"
print(header)
print("-" * len(header))
for r in rows.values():
    print(f"{r['label']:<16} {r['spans']:>12,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7} "
          f"{r['cores']:>13.2f} {r['per_core']:>13,.0f} {r['rss_mb']:>12.1f} {r['loadgen_cores']:>14.2f}")
for r in rows.values():
    if r["drain"] is not None:
        print(f"  {r['label']}: {r['spans']:,.0f} spans/s reached the downstream receiver "
              f"(answered {r['answered']:,.0f}/s; it kept forwarding {r['drain']:.1f} s after the load)")
for r in rows.values():
    if r["error_kinds"]:
        print(f"  {r['label']} errors: {r['error_kinds']}")
for r in rows.values():
    if r["drain"] is not None:
        print(f"  other processes (the downstream receiver among them) used {r['other_cores']:.2f} cores "
              f"during the {r['label']} run")
    elif r["other_cores"] > 0.2:
        print(f"  warning: other processes used {r['other_cores']:.2f} cores during the {r['label']} run; "
              "its numbers are skewed, run again on a quiet machine")
ratio = None
if "weir" in rows and "rotel" in rows and rows["rotel"]["spans"] > 0:
    ratio = rows["weir"]["spans"] / rows["rotel"]["spans"]
    # Forwarding to a blackhole, Weir should be 1.5x Rotel; storing durably
    # (WAL fsynced before the answer) it should at least match Rotel's
    # pass-through.
    # Forwarding with a disk queue, 1.5x Rotel's forwarding.
    target = 1.0 if rows["weir"]["label"].endswith("/store") else 1.5
    verdict = "meets" if ratio >= target else "below"
    print(f"\nweir / rotel: {ratio:.2f}x spans/s ({verdict} the {target:.1f}x target); "
          f"per server core: {rows['weir']['per_core'] / rows['rotel']['per_core']:.2f}x")

if record:
    os.makedirs(os.path.dirname(os.path.abspath(record)), exist_ok=True)
    new = not os.path.exists(record)
    with open(record, "a") as f:
        if new:
            f.write("\t".join(["date", "rev", "duration", "batch", "concurrency", "connections", "pin",
                               "weir_spans_s", "rotel", "rotel_spans_s", "ratio",
                               "weir_cores", "rotel_cores", "weir_rss_mb", "rotel_rss_mb",
                               "weir_other_cores", "rotel_other_cores"]) + "\n")
        g = lambda n, k, fmt: (fmt % rows[n][k]) if n in rows else ""
        f.write("\t".join([time.strftime("%Y-%m-%dT%H:%M:%S"), rev, duration, batch, concurrency, connections,
                           pin or "-", g("weir", "spans", "%.0f"), rotel_label if "rotel" in rows else "",
                           g("rotel", "spans", "%.0f"), "%.3f" % ratio if ratio else "",
                           g("weir", "cores", "%.2f"), g("rotel", "cores", "%.2f"),
                           g("weir", "rss_mb", "%.1f"), g("rotel", "rss_mb", "%.1f"),
                           g("weir", "other_cores", "%.2f"), g("rotel", "other_cores", "%.2f")]) + "\n")
    print(f"\nrecorded in {record}")
PY
