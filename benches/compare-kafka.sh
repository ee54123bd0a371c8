#!/usr/bin/env bash
# compare-kafka.sh - Weir's Kafka source and sink, the OTLP path and Rotel's
# Kafka exporter, measured in one run on this machine.
#
# The broker is tansu (a Kafka-compatible broker, one process; topics in
# memory, or in SQLite), started in a temporary directory on a free loopback
# port. In turn:
#
#   otlp        weir-loadgen -> Weir otlp -> blackhole: the reference
#               throughput of the OTLP/gRPC path (as compare-rotel.sh).
#   otlp-store  weir-loadgen -> Weir otlp -> the embedded store (WAL fsynced
#               before the client is answered): the reference for `store`.
#   weir-sink   weir-loadgen -> Weir otlp -> kafka sink (acks=all), one
#               message of 512 spans per request. This also fills the topic
#               the reading runs consume.
#   source      the pre-filled topic -> Weir kafka source -> blackhole, a
#               fresh consumer group from the earliest offset, until every
#               span is through; spans/s and Weir's CPU.
#   store       the same topic -> kafka source -> the embedded store (WAL
#               fsynced before the offset is committed).
#   raw         a plain confluent-kafka consumer reading the topic and a
#               plain producer (acks=all) writing copies of its messages:
#               how fast the broker goes with nothing but a client.
#   rotel       weir-loadgen -> Rotel --exporter kafka (acks all), to a
#               fresh broker.
#
# The writers are judged by what lands in the topic: after each run the
# script waits until the topic stops growing and decodes every message the
# run wrote to count its spans, so a server that accepts spans and drops
# them does not look fast. Targets: kafka -> blackhole and kafka -> store
# at least the OTLP path's spans/s into the same sink; Weir's sink at least
# 1.5x Rotel's exporter.
#
# Run `benches/compare-kafka.sh --help` for the options.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Cargo's `bench` profile writes its binaries to the `release` directory.
BIN_DIR="$TARGET_DIR/release"
WEIR_CACHE="${WEIR_CACHE:-$HOME/.cache/weir}"

DURATION=30s
WARMUP=5s
RAW_DURATION=15
CONCURRENCY=16
CONNECTIONS=4
BATCH=512
PARTITIONS=4
STORAGE=memory
SKIP=""
PIN=""
RECORD=""
WEIR_BIN=""
LOADGEN_BIN=""
ROTEL_BIN=""
TANSU_BIN=""
PYTHON=""
ROTEL_VERSION="0.0.1a15"
CONFLUENT_KAFKA_VERSION="2.16.2"
OTLP_PROTO_VERSION="1.45.2"
VENV="$TARGET_DIR/bench-venv"
BUILD=1
LOADGEN_EXTRA=()

usage() {
    cat <<'EOF'
Usage: benches/compare-kafka.sh [OPTIONS] [-- EXTRA-LOADGEN-ARGS...]

Measures, one after the other on this machine: the OTLP/gRPC path (otlp ->
blackhole), Weir's kafka sink (acks=all), Weir's kafka source reading a
pre-filled topic into a blackhole and into the store, a plain confluent-kafka
client against the same broker, and Rotel's Kafka exporter fed the same load.
The broker is tansu. Prints spans/s, CPU and peak RSS of each, and the
ratios against the targets. Writes nothing outside a temporary directory
unless --record is given. About 5 minutes with defaults; the broker holds
about 0.5 GB per million spans written (in memory, or in the temporary
directory with --storage sqlite).

Options:
  --duration D         measured run of each OTLP load (default 30s)
  --warmup D           warm-up run before it, not counted (default 5s)
  --raw-duration S     seconds of the plain producer's run (default 15)
  --skip LIST          leave out some of: otlp, store, raw, rotel (store
                       leaves out both runs into the store)
                       (comma-separated; the weir sink and the kafka ->
                       blackhole runs always run)
  --partitions N       partitions of each topic (default 4)
  --storage S          tansu's storage: memory (default) or sqlite (a file
                       in the temporary directory; on 2 cores it caps any
                       reader near 66k spans/s, and the run takes ~25 min)
  --concurrency N      load generator: requests in flight (default 16)
  --connections N      load generator: HTTP/2 connections (default 4)
  --batch-size N       spans per request, so per message of Weir's sink
                       (default 512)
  --pin S:L            pin Weir or Rotel to CPUs S and the load generator to
                       CPUs L with taskset, e.g. --pin 0:1 (the broker is
                       not pinned)
  --weir-bin PATH      weir binary (default: target/release/weir, built with
                       `cargo build --profile bench -p weir-cli` if missing)
  --loadgen-bin PATH   weir-loadgen binary (default: target/release/weir-loadgen)
  --rotel-bin PATH     rotel agent binary (default: installed from PyPI into
                       target/bench-venv)
  --rotel-version V    PyPI version of rotel (default 0.0.1a15)
  --tansu-bin PATH     tansu binary (default: $WEIR_CACHE/tools/bin/tansu,
                       WEIR_CACHE defaulting to ~/.cache/weir, else on PATH)
  --python PATH        a Python with confluent-kafka and opentelemetry-proto
                       (default: target/bench-venv, installed from PyPI)
  --no-build           do not run cargo; use the binaries as they are
  --record [FILE]      append one tab-separated line of results to FILE
                       (default benches/results/compare-kafka.tsv)
  -h, --help           this help

Anything after `--` is passed to weir-loadgen for every OTLP run.
EOF
}

die() {
    echo "compare-kafka: $*" >&2
    exit 1
}

note() {
    echo "compare-kafka: $*" >&2
}

while (($#)); do
    case "$1" in
    --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
    --warmup) WARMUP="${2:?--warmup needs a value}"; shift 2 ;;
    --raw-duration) RAW_DURATION="${2:?--raw-duration needs seconds}"; shift 2 ;;
    --skip) SKIP="${2:?--skip needs a list}"; shift 2 ;;
    --partitions) PARTITIONS="${2:?--partitions needs a value}"; shift 2 ;;
    --storage) STORAGE="${2:?--storage needs sqlite or memory}"; shift 2 ;;
    --concurrency) CONCURRENCY="${2:?--concurrency needs a value}"; shift 2 ;;
    --connections) CONNECTIONS="${2:?--connections needs a value}"; shift 2 ;;
    --batch-size) BATCH="${2:?--batch-size needs a value}"; shift 2 ;;
    --pin) PIN="${2:?--pin needs SERVER_CPUS:LOADGEN_CPUS}"; shift 2 ;;
    --weir-bin) WEIR_BIN="${2:?--weir-bin needs a path}"; shift 2 ;;
    --loadgen-bin) LOADGEN_BIN="${2:?--loadgen-bin needs a path}"; shift 2 ;;
    --rotel-bin) ROTEL_BIN="${2:?--rotel-bin needs a path}"; shift 2 ;;
    --rotel-version) ROTEL_VERSION="${2:?--rotel-version needs a version}"; shift 2 ;;
    --tansu-bin) TANSU_BIN="${2:?--tansu-bin needs a path}"; shift 2 ;;
    --python) PYTHON="${2:?--python needs a path}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --record)
        if [[ $# -ge 2 && "$2" != --* ]]; then
            RECORD="$2"; shift 2
        else
            RECORD="$ROOT/benches/results/compare-kafka.tsv"; shift
        fi
        ;;
    -h | --help) usage; exit 0 ;;
    --) shift; LOADGEN_EXTRA=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

for s in ${SKIP//,/ }; do
    case "$s" in
    otlp | store | raw | rotel) ;;
    *) die "--skip takes otlp, store, raw or rotel, not '$s'" ;;
    esac
done
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }
case "$STORAGE" in
sqlite | memory) ;;
*) die "--storage takes sqlite or memory, not '$STORAGE'" ;;
esac
[[ "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || die "--concurrency must be a positive integer, got '$CONCURRENCY'"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive integer, got '$CONNECTIONS'"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "--batch-size must be a positive integer, got '$BATCH'"
[[ "$PARTITIONS" =~ ^[1-9][0-9]*$ ]] || die "--partitions must be a positive integer, got '$PARTITIONS'"
[[ "$RAW_DURATION" =~ ^[1-9][0-9]*$ ]] || die "--raw-duration must be whole seconds, got '$RAW_DURATION'"
command -v python3 >/dev/null || die "python3 is needed (for the Kafka client, and to read the load generator's JSON)"

SERVER_PIN=()
LOADGEN_PIN=()
if [[ -n "$PIN" ]]; then
    [[ "$PIN" == *:* ]] || die "--pin takes SERVER_CPUS:LOADGEN_CPUS such as 0:1, got '$PIN'"
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux), which is not installed"
    SERVER_PIN=(taskset -c "${PIN%%:*}")
    LOADGEN_PIN=(taskset -c "${PIN#*:}")
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-compare-kafka.XXXXXX")"
SERVER_PID=""
BROKER=""
BROKER_PID=""
BROKER_PIDS=()
KEEP_WORK=0

cleanup() {
    local pid
    for pid in "$SERVER_PID" "${BROKER_PIDS[@]}"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if ((KEEP_WORK)); then
        note "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------

if [[ -z "$TANSU_BIN" ]]; then
    if [[ -x "$WEIR_CACHE/tools/bin/tansu" ]]; then
        TANSU_BIN="$WEIR_CACHE/tools/bin/tansu"
    else
        TANSU_BIN="$(command -v tansu || true)"
    fi
fi
[[ -n "$TANSU_BIN" && -x "$TANSU_BIN" ]] ||
    die "no tansu broker: scripts/test installs it into \$WEIR_CACHE/tools/bin when missing, or install tansu 0.6 (cargo install tansu-cli) and pass --tansu-bin PATH"

if ((BUILD)) && [[ -z "$LOADGEN_BIN" || -z "$WEIR_BIN" ]]; then
    if [[ ! -x "$BIN_DIR/weir-loadgen" || ! -x "$BIN_DIR/weir" ]]; then
        note "building weir and weir-loadgen (cargo build --profile bench -p weir-cli -p weir-benches --bins)"
        (cd "$ROOT" && cargo build --quiet --profile bench -p weir-cli -p weir-benches --bins) ||
            die "the build failed (see the cargo output above); fix it, or pass --weir-bin and --loadgen-bin"
    fi
fi
LOADGEN="${LOADGEN_BIN:-$BIN_DIR/weir-loadgen}"
WEIR_BIN="${WEIR_BIN:-$BIN_DIR/weir}"
[[ -x "$LOADGEN" ]] || die "no load generator at $LOADGEN; build it with: cargo build --profile bench -p weir-benches --bin weir-loadgen"
[[ -x "$WEIR_BIN" ]] || die "no weir binary at $WEIR_BIN; build it with: cargo build --profile bench -p weir-cli (or pass --weir-bin PATH)"

# The Python side: confluent-kafka (and the librdkafka it bundles) for the
# topic's offsets, the span count and the plain client; rotel's agent binary.
pip_install() {
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" || die "could not create a Python venv at $VENV (is python3-venv installed?)"
    note "installing $* into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" ||
        die "pip could not install $*; pass --python PATH (and --rotel-bin PATH) to use what is installed"
}
if [[ -z "$PYTHON" ]]; then
    PYTHON="$VENV/bin/python"
    "$PYTHON" -c 'import confluent_kafka, opentelemetry.proto' 2>/dev/null ||
        pip_install "confluent-kafka==$CONFLUENT_KAFKA_VERSION" "opentelemetry-proto==$OTLP_PROTO_VERSION"
fi
"$PYTHON" -c 'import confluent_kafka, opentelemetry.proto' 2>/dev/null ||
    die "$PYTHON lacks confluent-kafka or opentelemetry-proto"
KB=("$PYTHON" "$ROOT/benches/kafka_bench.py")

ROTEL_LABEL="rotel"
if ! skipped rotel; then
    if [[ -z "$ROTEL_BIN" ]]; then
        installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("rotel"))' 2>/dev/null || true)"
        [[ "$installed" == "$ROTEL_VERSION" ]] || pip_install --pre "rotel==$ROTEL_VERSION"
        ROTEL_BIN="$("$VENV/bin/python" -c 'import pathlib, rotel; print(pathlib.Path(rotel.__file__).parent / "rotel-agent")' 2>/dev/null)" ||
            die "rotel is installed in $VENV but its agent binary was not found"
        ROTEL_LABEL="rotel $ROTEL_VERSION"
    fi
    [[ -x "$ROTEL_BIN" ]] || die "no rotel agent binary at $ROTEL_BIN"
fi

# --- helpers ----------------------------------------------------------------

# free_port, wait_port, cpu_ticks, busy_ticks
source "$ROOT/benches/lib.sh"

TICKS="$(getconf CLK_TCK 2>/dev/null || echo 100)"

# start_broker NAME: a fresh tansu in $WORK/NAME with one topic per
# writer; sets BROKER (HOST:PORT) and BROKER_PID.
start_broker() {
    local name="$1" port storage t
    port="$(free_port)"
    mkdir -p "$WORK/$name"
    if [[ "$STORAGE" == sqlite ]]; then storage="sqlite://tansu.db"; else storage="memory://tansu/"; fi
    note "broker $name: tansu on 127.0.0.1:$port ($storage)"
    (cd "$WORK/$name" && exec "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$storage") \
        >"$WORK/$name/broker.log" 2>&1 &
    BROKER_PID=$!
    BROKER_PIDS+=("$BROKER_PID")
    BROKER="127.0.0.1:$port"
    wait_port "$port" "$BROKER_PID" "$WORK/$name/broker.log"
    for t in weir-bench-spans rotel-bench-spans raw-bench-spans; do
        "$TANSU_BIN" topic create --broker "tcp://$BROKER" --partitions "$PARTITIONS" "$t" \
            >>"$WORK/$name/broker.log" 2>&1 || { KEEP_WORK=1; die "could not create topic $t (log: $WORK/$name/broker.log)"; }
    done
}

# stop_broker NAME: stops the current broker and removes its files.
stop_broker() {
    local name="$1" i
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    ((KEEP_WORK)) || rm -f "$WORK/$name"/tansu.db*
}

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

# weir_config TEMPLATE OUT [SED-ARGS...]: a copy of benches/pipelines/TEMPLATE
# with free ports (sets API), the broker's address and the given substitutions.
weir_config() {
    local template="$1" out="$2"
    shift 2
    GRPC="$(free_port)"; API="$(free_port)"
    sed -e "s/127\.0\.0\.1:14317/127.0.0.1:$GRPC/" \
        -e "s/127\.0\.0\.1:14318/127.0.0.1:$(free_port)/" \
        -e "s/127\.0\.0\.1:18888/127.0.0.1:$API/" \
        -e "s/127\.0\.0\.1:19092/${BROKER:-127.0.0.1:19092}/" \
        "$@" "$ROOT/benches/pipelines/$template" >"$out"
}

start_server() {
    local name="$1" log="$2"
    shift 3
    note "$name: starting ($*)"
    "${SERVER_PIN[@]}" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
}

# load NAME WHAT DURATION: runs weir-loadgen against port $GRPC, writing its JSON to $WORK/NAME.WHAT.json.
load() {
    local name="$1" what="$2" duration="$3"
    note "$name: $what for $duration"
    "${LOADGEN_PIN[@]}" "$LOADGEN" --endpoint "http://127.0.0.1:$GRPC" --protocol grpc \
        --signal spans --batch-size "$BATCH" --concurrency "$CONCURRENCY" --connections "$CONNECTIONS" \
        --rate 0 --output json "${LOADGEN_EXTRA[@]}" --duration "$duration" \
        >"$WORK/$name.$what.json" 2>>"$WORK/$name.loadgen.log" ||
        { KEEP_WORK=1; die "$name: the $what run failed (log: $WORK/$name.loadgen.log)"; }
}

# measure_load NAME [TOPIC]: warm-up, then the measured run with the CPU of
# the server and the broker around it. With TOPIC, waits for the topic to
# stop growing after each run and keeps its offsets ($WORK/NAME.start.json,
# $WORK/NAME.end.json, with the seconds it kept growing after the load).
# Writes "server-ticks peak-RSS-kB machine-busy-ticks broker-ticks" and the
# wall clock (seconds) at both ends of that count to $WORK/NAME.server.
measure_load() {
    local name="$1" topic="${2:-}" cpu0 cpu1 busy0 busy1 wall0 wall1 broker0=0 broker1=0 hwm
    load "$name" warmup "$WARMUP"
    if [[ -n "$topic" ]]; then
        "${KB[@]}" drain "$BROKER" "$topic" >"$WORK/$name.start.json" ||
            { KEEP_WORK=1; die "$name: could not read the offsets of $topic"; }
        broker0="$(cpu_ticks "$BROKER_PID")"
    fi
    cpu0="$(cpu_ticks "$SERVER_PID")"
    busy0="$(busy_ticks)"
    wall0="$(date +%s.%N)"
    load "$name" measured "$DURATION"
    if [[ -n "$topic" ]]; then
        "${KB[@]}" drain "$BROKER" "$topic" >"$WORK/$name.end.json" ||
            { KEEP_WORK=1; die "$name: could not read the offsets of $topic"; }
        broker1="$(cpu_ticks "$BROKER_PID")"
    fi
    cpu1="$(cpu_ticks "$SERVER_PID")"
    busy1="$(busy_ticks)"
    wall1="$(date +%s.%N)"
    kill -0 "$SERVER_PID" 2>/dev/null || { KEEP_WORK=1; die "$name: the server died during the run"; }
    hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")"
    stop_server
    echo "$((cpu1 - cpu0)) $hwm $((busy1 - busy0)) $((broker1 - broker0)) $wall0 $wall1" >"$WORK/$name.server"
}

# count NAME TOPIC FROM TO: decodes the messages between two offset snapshots; writes $WORK/NAME.count.json.
count() {
    local name="$1" topic="$2" from="$3" to="$4"
    note "$name: counting the spans that landed in $topic"
    "${KB[@]}" count "$BROKER" "$topic" "$from" "$to" >"$WORK/$name.count.json" ||
        { KEEP_WORK=1; die "$name: could not count the messages in $topic"; }
}

# read_topic NAME TEMPLATE SINK: Weir reads the whole pre-filled topic with a new group; writes $WORK/NAME.json.
read_topic() {
    local name="$1" template="$2" sink="$3"
    weir_config "$template" "$WORK/$name.toml" \
        -e "s/group_id = \"weir-bench\"/group_id = \"weir-bench-$name-$$\"/" \
        -e "s|\"weir-bench-data\"|\"$WORK/$name-data\"|"
    start_server "$name" "$WORK/$name.log" -- "$WEIR_BIN" run "$WORK/$name.toml"
    note "$name: reading $TOPIC_SPANS spans from the topic"
    "${KB[@]}" watch --api "127.0.0.1:$API" --pid "$SERVER_PID" --broker-pid "$BROKER_PID" \
        --spans "$TOPIC_SPANS" --sink "$sink" >"$WORK/$name.json" ||
        { KEEP_WORK=1; tail -n 20 "$WORK/$name.log" >&2; die "$name: Weir did not read the topic through (log: $WORK/$name.log)"; }
    stop_server
    rm -rf "$WORK/$name-data"
}

# --- runs -------------------------------------------------------------------

if ! skipped otlp; then
    weir_config blackhole.toml "$WORK/otlp.toml"
    start_server otlp "$WORK/otlp.log" -- "$WEIR_BIN" run "$WORK/otlp.toml"
    wait_port "$GRPC" "$SERVER_PID" "$WORK/otlp.log"
    measure_load otlp
fi
if ! skipped store; then
    weir_config store.toml "$WORK/otlp-store.toml" -e "s|\"weir-bench-data\"|\"$WORK/otlp-store-data\"|"
    start_server otlp-store "$WORK/otlp-store.log" -- "$WEIR_BIN" run "$WORK/otlp-store.toml"
    wait_port "$GRPC" "$SERVER_PID" "$WORK/otlp-store.log"
    measure_load otlp-store
    rm -rf "$WORK/otlp-store-data"
fi

start_broker broker-weir
weir_config otlp-kafka.toml "$WORK/weir-sink.toml"
start_server weir-sink "$WORK/weir-sink.log" -- "$WEIR_BIN" run "$WORK/weir-sink.toml"
wait_port "$GRPC" "$SERVER_PID" "$WORK/weir-sink.log"
measure_load weir-sink weir-bench-spans
count weir-sink weir-bench-spans "$WORK/weir-sink.start.json" "$WORK/weir-sink.end.json"
count weir-fill weir-bench-spans - "$WORK/weir-sink.start.json"
TOPIC_SPANS="$(python3 -c 'import json, sys; print(sum(json.load(open(f))["spans"] for f in sys.argv[1:]))' \
    "$WORK/weir-sink.count.json" "$WORK/weir-fill.count.json")"
((TOPIC_SPANS > 0)) || { KEEP_WORK=1; die "nothing landed in the topic (logs: $WORK)"; }

read_topic source kafka-blackhole.toml null
skipped store || read_topic store kafka-store.toml store

if ! skipped raw; then
    note "raw: a plain consumer reads the topic"
    "${KB[@]}" raw-consume "$BROKER" weir-bench-spans --broker-pid "$BROKER_PID" >"$WORK/raw-consume.json" ||
        { KEEP_WORK=1; die "raw: the plain consumer failed"; }
    note "raw: a plain producer writes for ${RAW_DURATION}s"
    "${KB[@]}" raw-produce "$BROKER" weir-bench-spans raw-bench-spans --duration "$RAW_DURATION" \
        --broker-pid "$BROKER_PID" >"$WORK/raw-produce.json" ||
        { KEEP_WORK=1; die "raw: the plain producer failed"; }
fi
stop_broker broker-weir

if ! skipped rotel; then
    start_broker broker-rotel
    GRPC="$(free_port)"
    start_server rotel "$WORK/rotel.log" -- "$ROTEL_BIN" start --exporter kafka \
        --kafka-exporter-brokers "$BROKER" --kafka-exporter-traces-topic rotel-bench-spans \
        --kafka-exporter-acks all --kafka-exporter-format protobuf --traces-batch-max-size "$BATCH" \
        --otlp-grpc-endpoint "127.0.0.1:$GRPC" --otlp-http-endpoint "127.0.0.1:$(free_port)" \
        --pid-file "$WORK/rotel.pid" --log-file "$WORK/rotel-agent.log"
    wait_port "$GRPC" "$SERVER_PID" "$WORK/rotel.log"
    measure_load rotel rotel-bench-spans
    count rotel rotel-bench-spans "$WORK/rotel.start.json" "$WORK/rotel.end.json"
    stop_broker broker-rotel
fi

# --- report -----------------------------------------------------------------

python3 - "$WORK" "$TICKS" "$ROTEL_LABEL" "$RECORD" "$DURATION" "$CONCURRENCY" "$CONNECTIONS" "$BATCH" \
    "$PARTITIONS" "$STORAGE" "$PIN" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, os, sys, time

work, ticks, rotel_label, record, duration, concurrency, connections, batch, partitions, storage, pin, rev = sys.argv[1:]
ticks = float(ticks)


def load(name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def server(name):
    with open(os.path.join(work, name + ".server")) as f:
        cpu, hwm, busy, broker, wall0, wall1 = (float(x) for x in f.read().split())
    return cpu / ticks, hwm / 1024, busy / ticks, broker / ticks, wall1 - wall0


warnings = []


def other(label, busy, *used, elapsed):
    """Cores that other processes of the machine used meanwhile: they skew the numbers."""
    o = max(busy - sum(used), 0.0) / elapsed
    if o > 0.2:
        warnings.append(f"other processes used {o:.2f} cores during the {label} run; its numbers are skewed")
    return o


fill = load("weir-fill.count.json")
window = load("weir-sink.count.json")
topic_spans = fill["spans"] + window["spans"]
topic_messages = fill["messages"] + window["messages"]
topic_bytes = fill["value_bytes"] + window["value_bytes"]
spans_per_message = topic_spans / max(topic_messages, 1)

# OTLP references: into a blackhole, and into the store.
def reference(name):
    o = load(name + ".measured.json")
    if not o:
        return None
    cpu, hwm, busy, _, wall = server(name)
    e = max(o["elapsed_secs"], 1e-9)
    lg = (o.get("loadgen_cpu_secs") or 0)
    return {"spans": o["records_per_sec"], "cores": cpu / e, "rss": hwm, "p99": o["latency_ms"]["p99"],
            "failed": o["requests_failed"], "other": other(name, busy, cpu, lg, elapsed=wall)}


otlp_row = reference("otlp")
otlp_store_row = reference("otlp-store")

# Reading.
reads = {}
for name, label in (("source", "weir kafka -> blackhole"), ("store", "weir kafka -> store")):
    r = load(name + ".json")
    if not r:
        continue
    e = max(r["elapsed_secs"], 1e-9)
    reads[name] = {"label": label, "spans": r["spans_per_sec"], "cores": r["cpu_secs"] / e,
                   "broker": r["broker_cpu_secs"] / e, "rss": r["hwm_kb"] / 1024, "secs": e,
                   "startup": r["startup_secs"], "total": r["spans_total"],
                   "other": other(name, r["busy_secs"], r["cpu_secs"], r["broker_cpu_secs"], elapsed=e)}
raw_c = load("raw-consume.json")
if raw_c:
    e = max(raw_c["elapsed_secs"], 1e-9)
    reads["raw"] = {"label": "plain consumer (no decode)", "spans": raw_c["messages_per_sec"] * spans_per_message,
                    "cores": raw_c["client_cpu_secs"] / e, "broker": raw_c["broker_cpu_secs"] / e, "rss": float("nan"),
                    "secs": e, "startup": 0.0, "total": raw_c["messages"] * spans_per_message,
                    "other": other("plain consumer", raw_c["busy_secs"], raw_c["client_cpu_secs"], raw_c["broker_cpu_secs"], elapsed=e)}

# Writing.
writes = {}
for name, label in (("weir-sink", "weir kafka sink"), ("rotel", rotel_label + " kafka exporter")):
    s = load(name + ".measured.json")
    if not s:
        continue
    c = load(name + ".count.json")
    end = load(name + ".end.json")
    cpu, hwm, busy, broker, wall = server(name)
    e = max(s["elapsed_secs"], 1e-9)
    # The clock runs until the last span landed, drain included.
    e_landed = e + end["drain_secs"]
    lg = (s.get("loadgen_cpu_secs") or 0)
    writes[name] = {"label": label, "accepted": s["records_per_sec"], "accepted_n": s["records_ok"],
                    "landed": c["spans"] / e_landed, "landed_n": c["spans"], "messages": c["messages"],
                    "undecodable": c["undecodable"], "drain": end["drain_secs"], "p99": s["latency_ms"]["p99"],
                    "failed": s["requests_failed"], "cores": cpu / e_landed, "broker": broker / e_landed, "rss": hwm,
                    "other": other(name, busy, cpu, broker, lg, elapsed=wall)}
raw_p = load("raw-produce.json")
if raw_p:
    e = max(raw_p["elapsed_secs"], 1e-9)
    writes["raw"] = {"label": "plain producer, acks=all", "accepted": raw_p["spans_per_sec"], "accepted_n": raw_p["spans"],
                     "landed": raw_p["spans_per_sec"], "landed_n": raw_p["spans"], "messages": raw_p["messages"],
                     "undecodable": 0, "drain": 0.0, "p99": float("nan"), "failed": raw_p["failed"],
                     "cores": raw_p["client_cpu_secs"] / e, "broker": raw_p["broker_cpu_secs"] / e, "rss": float("nan"),
                     "other": other("plain producer", raw_p["busy_secs"], raw_p["client_cpu_secs"], raw_p["broker_cpu_secs"], elapsed=e)}

print()
print(f"tansu broker ({storage}), {partitions} partitions; OTLP/gRPC load: batch {batch}, {concurrency} in flight over "
      f"{connections} connections, {duration} measured" + (f", pinned server:loadgen = {pin}" if pin else ""))
if otlp_row:
    print(f"\nreference, weir otlp -> blackhole: {otlp_row['spans']:,.0f} spans/s (p99 {otlp_row['p99']:.1f} ms, "
          f"{otlp_row['cores']:.2f} cores, {otlp_row['rss']:.1f} MB peak RSS)")
if otlp_store_row:
    print(f"reference, weir otlp -> store: {otlp_store_row['spans']:,.0f} spans/s (p99 {otlp_store_row['p99']:.1f} ms, "
          f"{otlp_store_row['cores']:.2f} cores, {otlp_store_row['rss']:.1f} MB peak RSS, "
          f"{otlp_store_row['failed']:,} requests refused while the store caught up)")

print(f"\nreading: the topic holds {topic_spans:,} spans in {topic_messages:,} messages "
      f"({spans_per_message:.0f} spans, {topic_bytes / max(topic_messages, 1) / 1024:.0f} KiB each), written by Weir's sink")
h = f"{'reader':<28} {'spans/s':>10} {'seconds':>8} {'reader cores':>13} {'spans/core-s':>13} {'broker cores':>13} {'peak RSS MB':>12}"
print(h)
print("-" * len(h))
for r in reads.values():
    per_core = r["spans"] / r["cores"] if r["cores"] > 0 else float("nan")
    print(f"{r['label']:<28} {r['spans']:>10,.0f} {r['secs']:>8.1f} {r['cores']:>13.2f} {per_core:>13,.0f} "
          f"{r['broker']:>13.2f} {r['rss']:>12.1f}")
for name in ("source", "store"):
    if name in reads:
        print(f"  {reads[name]['label']}: first message after {reads[name]['startup']:.1f} s "
              "(start and group join, not counted)")

print(f"\nwriting: spans that landed in the topic per second, acks=all (accepted = what the load generator was answered OK)")
h = (f"{'writer':<34} {'landed/s':>10} {'accepted/s':>11} {'landed':>11} {'messages':>9} {'drain s':>8} "
     f"{'p99 ms':>8} {'server cores':>13} {'broker cores':>13} {'peak RSS MB':>12}")
print(h)
print("-" * len(h))
for w in writes.values():
    print(f"{w['label']:<34} {w['landed']:>10,.0f} {w['accepted']:>11,.0f} {w['landed_n']:>11,} {w['messages']:>9,} "
          f"{w['drain']:>8.1f} {w['p99']:>8.1f} {w['cores']:>13.2f} {w['broker']:>13.2f} {w['rss']:>12.1f}")
for w in writes.values():
    if w["undecodable"]:
        print(f"  {w['label']}: {w['undecodable']} messages were not OTLP protobuf span requests")
    if w["failed"]:
        print(f"  {w['label']}: {w['failed']} failed requests/messages")
    if w["label"] != "plain producer, acks=all" and w["landed_n"] < w["accepted_n"]:
        lost = w["accepted_n"] - w["landed_n"]
        # A few messages a run (well under 1%) go missing for every writer between tansu's
        # watermarks and the count; more than that is a writer dropping what it accepted.
        print(f"  {w['label']}: {lost:,} of {w['accepted_n']:,} accepted spans ({lost / w['accepted_n']:.2%}) "
              "not counted in the topic" + ("" if lost > w["accepted_n"] / 100 else " (within the broker's watermark noise)"))

print()
for w in warnings:
    print("  warning: " + w)
verdicts = {}
if otlp_row and "source" in reads:
    r = reads["source"]["spans"] / otlp_row["spans"]
    verdicts["read_vs_otlp"] = r
    print(f"kafka -> blackhole / otlp -> blackhole: {r:.2f}x spans/s ({'meets' if r >= 1.0 else 'below'} the 1.0x target)")
if otlp_store_row and "store" in reads:
    r = reads["store"]["spans"] / otlp_store_row["spans"]
    verdicts["store_vs_otlp"] = r
    print(f"kafka -> store / otlp -> store: {r:.2f}x spans/s ({'meets' if r >= 1.0 else 'below'} the 1.0x target)")
if "weir-sink" in writes and "rotel" in writes and writes["rotel"]["landed"] > 0:
    r = writes["weir-sink"]["landed"] / writes["rotel"]["landed"]
    verdicts["sink_vs_rotel"] = r
    print(f"weir kafka sink / rotel kafka exporter: {r:.2f}x spans landed/s ({'meets' if r >= 1.5 else 'below'} the 1.5x target)")
if "raw" in writes and "weir-sink" in writes:
    print(f"weir kafka sink / plain producer: {writes['weir-sink']['landed'] / writes['raw']['landed']:.2f}x "
          "(near 1: the broker is the ceiling)")
if "raw" in reads and "source" in reads:
    print(f"weir kafka -> blackhole / plain consumer: {reads['source']['spans'] / reads['raw']['spans']:.2f}x")

if record:
    os.makedirs(os.path.dirname(os.path.abspath(record)), exist_ok=True)
    new = not os.path.exists(record)
    cols = ["date", "rev", "duration", "batch", "concurrency", "connections", "partitions", "storage", "pin",
            "otlp_spans_s", "source_spans_s", "source_cores", "store_spans_s", "store_cores", "raw_consume_spans_s",
            "weir_sink_spans_s", "weir_sink_cores", "rotel", "rotel_spans_s", "rotel_cores", "rotel_lost_spans",
            "raw_produce_spans_s", "read_vs_otlp", "sink_vs_rotel", "otlp_store_spans_s", "store_vs_otlp"]
    g = lambda d, n, k, fmt: (fmt % d[n][k]) if d and n in d else ""
    vals = [time.strftime("%Y-%m-%dT%H:%M:%S"), rev, duration, batch, concurrency, connections, partitions, storage,
            pin or "-", "%.0f" % otlp_row["spans"] if otlp_row else "",
            g(reads, "source", "spans", "%.0f"), g(reads, "source", "cores", "%.2f"),
            g(reads, "store", "spans", "%.0f"), g(reads, "store", "cores", "%.2f"), g(reads, "raw", "spans", "%.0f"),
            g(writes, "weir-sink", "landed", "%.0f"), g(writes, "weir-sink", "cores", "%.2f"),
            rotel_label if "rotel" in writes else "", g(writes, "rotel", "landed", "%.0f"), g(writes, "rotel", "cores", "%.2f"),
            str(writes["rotel"]["accepted_n"] - writes["rotel"]["landed_n"]) if "rotel" in writes else "",
            g(writes, "raw", "landed", "%.0f"),
            "%.3f" % verdicts["read_vs_otlp"] if "read_vs_otlp" in verdicts else "",
            "%.3f" % verdicts["sink_vs_rotel"] if "sink_vs_rotel" in verdicts else "",
            "%.0f" % otlp_store_row["spans"] if otlp_store_row else "",
            "%.3f" % verdicts["store_vs_otlp"] if "store_vs_otlp" in verdicts else ""]
    with open(record, "a") as f:
        if new:
            f.write("\t".join(cols) + "\n")
        f.write("\t".join(vals) + "\n")
    print(f"\nrecorded in {record}")
PY
