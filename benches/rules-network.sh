#!/usr/bin/env bash
# rules-network.sh - alert rules through `weir run`, over OTLP, against the
# same Weir without rules, in one run.
#
# Two servers, one after the other, on free loopback ports: Weir with
# `otlp -> blackhole` (benches/pipelines/blackhole.toml), and Weir with
# `otlp -> rules (N alert rules of weir-rulesbench's mix) -> blackhole`
# (`weir-rulesbench --print-pipeline`). weir-loadgen sends spans over
# OTLP/gRPC flat out with `--live-time`: its requests (8 services, as
# weir-rulesbench's) are stamped again every second from the clock, so event
# time moves with the wall clock and the rules evaluate every 30 s as in
# production. Prints spans/s of each, the
# ratio (target: >= 70 % with 100 rules), the rules' evaluation latency
# (p50/p99 from weir_rule_group_evaluation_seconds), their evaluations and
# failures, and peak RSS. Exits 1 if any evaluation failed.
#
#   benches/rules-network.sh [--rules N] [--duration D] [--warmup D] [--no-build]
#
# Binaries come from $CARGO_TARGET_DIR/release (or target/release), built
# with `cargo build --profile bench -p weir-cli -p weir-benches` unless
# --no-build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/release"
RULES=100
DURATION=60s
WARMUP=10s
BUILD=1
CONCURRENCY=16
KEEP_WORK=0

die() {
    echo "rules-network: $*" >&2
    exit 2
}
note() { echo "rules-network: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
    --rules) RULES="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

if ((BUILD)); then
    note "building (cargo build --profile bench -p weir-cli -p weir-benches)"
    (cd "$ROOT" && cargo build --quiet --profile bench -p weir-cli -p weir-benches) ||
        die "the build failed (see the cargo output above)"
fi
need_bins "$BIN_DIR" weir weir-loadgen weir-rulesbench

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if ((KEEP_WORK)); then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Runs one server on pipeline file $2 (with the ports of blackhole.toml)
# under name $1: the load, then /metrics and peak RSS into $WORK/$1.*.
run_one() {
    local name="$1" template="$2" grpc http api
    grpc="$(free_port)"; http="$(free_port)"; api="$(free_port)"
    sed -e "s/127.0.0.1:14317/127.0.0.1:$grpc/" -e "s/127.0.0.1:14318/127.0.0.1:$http/" \
        -e "s/127.0.0.1:18888/127.0.0.1:$api/" "$template" >"$WORK/$name.toml"
    mkdir -p "$WORK/$name.dir"
    (cd "$WORK/$name.dir" && exec "$BIN_DIR/weir" run "$WORK/$name.toml") >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$grpc" "$SERVER_PID" "$WORK/$name.log"
    wait_port "$api" "$SERVER_PID" "$WORK/$name.log"
    local load=("$BIN_DIR/weir-loadgen" --endpoint "http://127.0.0.1:$grpc" --live-time
        --concurrency "$CONCURRENCY" --services 8 --rate 0 --output json)
    note "$name: warm-up $WARMUP, then $DURATION measured"
    "${load[@]}" --duration "$WARMUP" >/dev/null 2>>"$WORK/$name.loadgen.log" ||
        { KEEP_WORK=1; die "$name: the warm-up failed (log: $WORK/$name.loadgen.log)"; }
    "${load[@]}" --duration "$DURATION" >"$WORK/$name.json" 2>>"$WORK/$name.loadgen.log" &
    local load_pid=$!
    # The tick latency is a summary over the last minute or so: sample it
    # every 10 s of the run.
    : >"$WORK/$name.metrics"
    while kill -0 "$load_pid" 2>/dev/null; do
        sleep 10
        curl -sf "http://127.0.0.1:$api/metrics" >>"$WORK/$name.metrics" || true
    done
    wait "$load_pid" ||
        { KEEP_WORK=1; die "$name: the measured run failed (log: $WORK/$name.loadgen.log)"; }
    curl -sf "http://127.0.0.1:$api/metrics" >"$WORK/$name.final" ||
        { KEEP_WORK=1; die "$name: /metrics did not answer"; }
    awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status" >"$WORK/$name.rss"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

"$BIN_DIR/weir-rulesbench" --rules "$RULES" --print-pipeline >"$WORK/rules-template.toml"
run_one blackhole "$ROOT/benches/pipelines/blackhole.toml"
run_one rules "$WORK/rules-template.toml"

python3 - "$WORK" "$RULES" "$DURATION" <<'PY'
import json, re, sys
work, rules, duration = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def summary(name):
    with open(f"{work}/{name}.json") as f:
        s = json.load(f)
    rss = int(open(f"{work}/{name}.rss").read().strip() or 0) / 1024
    return s, rss

def samples(name, metric, file="final"):
    out = []
    for line in open(f"{work}/{name}.{file}"):
        if line.startswith(metric):
            m = re.match(r'([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|\+Inf)', line)
            if m:
                out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out

def worst(name, q):
    """The largest quantile q of the tick latency over the samples taken."""
    values = [v for m, labels, v in samples(name, "weir_rule_group_evaluation_seconds", "metrics")
              if m == "weir_rule_group_evaluation_seconds" and f'quantile="{q}"' in labels and v == v]
    return max(values) if values else float("nan")

def total(name, metric):
    return sum(v for m, _, v in samples(name, metric) if m == metric)

base, base_rss = summary("blackhole")
with_rules, rules_rss = summary("rules")
rate = lambda s: s["records_per_sec"]
print(f"rules-network: {rules} alert rules, {duration} measured, OTLP/gRPC flat out, times following the clock")
print(f"  without rules: {rate(base):,.0f} spans/s, peak RSS {base_rss:.0f} MiB")
print(f"  with rules:    {rate(with_rules):,.0f} spans/s, peak RSS {rules_rss:.0f} MiB "
      f"({100 * rate(with_rules) / rate(base):.0f} % of without; target >= 70 %)")
evaluations = total("rules", "weir_rule_evaluations_total")
failures = total("rules", "weir_rule_evaluation_failures_total")
ticks = total("rules", "weir_rule_group_evaluation_seconds_count")
mean = total("rules", "weir_rule_group_evaluation_seconds_sum") / max(ticks, 1)
print(f"  evaluations: {ticks:.0f} ticks, {evaluations:.0f} rule evaluations, {failures:.0f} failed; "
      f"tick latency mean {1000 * mean:.1f} ms, worst sampled p99 {1000 * worst('rules', 0.99):.1f} ms, "
      f"max {1000 * worst('rules', 1):.1f} ms")
if ticks == 0:
    print("rules-network: the rules never evaluated (is event time moving?)", file=sys.stderr)
    sys.exit(1)
if failures > 0:
    print("rules-network: some evaluations failed", file=sys.stderr)
    sys.exit(1)
PY
