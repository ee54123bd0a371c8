#!/usr/bin/env bash
# What the enrich plugin costs per span in a running Weir, host included
# (reading the columns out of Arrow, the lookup calls, writing the
# attribute maps back): the CPU time of `weir run` while weir-loadgen sends
# the same spans at the same rate, once without the plugin and once per
# plugin config. The difference over the spans sent is the plugin's cost
# per span; its inverse is spans/s per core.
#
#     cd plugins && cargo build --release --target wasm32-wasip2 -p enrich
#     WEIR=target/release/weir LOADGEN=target/release/weir-loadgen \
#         plugins/enrich/bench/cpu.sh [BATCH] [RATE] [SECONDS]
#
# WEIR and LOADGEN are release builds of the engine's `weir` and of
# `weir-loadgen` (benches/). PLUGIN is the component (default: the
# plugins workspace's release build under CARGO_TARGET_DIR or
# plugins/target). BATCH spans per request (default 1024), RATE spans/s
# (default 100000, well under what one core handles, so that the run is
# not limited by the machine), SECONDS (default 10). Ports 24317, 24318 and
# 28888 must be free.
#
# Cases, one instance each: `base` (no plugin), `lookup` (each span's
# service looked up in a CSV table of 1,000 services, three columns to
# resource attributes), `actions` (insert a constant, rename and delete a
# record attribute, upsert a template of two resource attributes), `issue`
# (both, the README's example), `one` (one constant upserted on the
# resource: the host's cost of one attribute write a batch), `noop` (an
# action for logs only: the plugin is called and changes nothing). CASES
# picks some (default "base noop one lookup actions issue"; `base` first).
set -euo pipefail

batch=${1:-1024}
rate=${2:-100000}
seconds=${3:-10}
: "${WEIR:?set WEIR to a release build of weir}"
: "${LOADGEN:?set LOADGEN to a release build of weir-loadgen}"
here=$(cd "$(dirname "$0")" && pwd)
plugin=${PLUGIN:-${CARGO_TARGET_DIR:-$here/../../target}/wasm32-wasip2/release/enrich.wasm}
[[ -f $plugin ]] || { echo "no component at $plugin; build it first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$plugin" "$work/enrich.wasm"
{
    echo "service,team,owner,tier"
    for i in $(seq 0 999); do echo "loadgen-service-$i,team-$((i % 40)),owner-$i,$((i % 3))"; done
} >"$work/teams.csv"

head='[api]
address = "127.0.0.1:28888"

[sources.otlp]
type = "otlp"
grpc_address = "127.0.0.1:24317"
http_address = "127.0.0.1:24318"
'
lookup='{ table = "teams", from = "resource.service.name", columns = { team = "team.name", owner = "team.owner", tier = "team.tier" } }'
actions='{ set = "resource", key = "deployment.environment", value = "prod", action = "insert" },
    { set = "record", key = "http.route", action = "rename", to = "route" },
    { set = "record", key = "enduser.id", action = "delete" },
    { set = "resource", key = "service.ns_name", action = "upsert", value = "{resource.host.name}/{resource.service.name}" }'
processor() { # plugin config
    printf '[processors.enrich]\ntype = "wasm"\ninputs = ["otlp"]\npath = "enrich.wasm"\ninstances = 1\nlookups = { teams = { file = "teams.csv", key = "service" } }\nconfig = %s\n\n[sinks.null]\ntype = "blackhole"\ninputs = ["enrich"]\n' "$1"
}
printf '%s\n[sinks.null]\ntype = "blackhole"\ninputs = ["otlp"]\n' "$head" >"$work/base.toml"
printf '%s\n%s' "$head" "$(processor "{ lookups = [$lookup] }")" >"$work/lookup.toml"
printf '%s\n%s' "$head" "$(processor "{ actions = [$actions] }")" >"$work/actions.toml"
printf '%s\n%s' "$head" "$(processor "{ lookups = [$lookup], actions = [$actions] }")" >"$work/issue.toml"
printf '%s\n%s' "$head" "$(processor '{ actions = [{ set = "resource", key = "deployment.environment", value = "prod", action = "upsert" }] }')" >"$work/one.toml"
printf '%s\n%s' "$head" "$(processor '{ actions = [{ key = "x", value = "y", action = "upsert", signals = ["logs"] }] }')" >"$work/noop.toml"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
base_seconds=

for case in ${CASES:-base noop one lookup actions issue}; do
    (cd "$work" && exec "$WEIR" run "$case.toml" >"$case.log" 2>&1) &
    pid=$!
    sleep 3
    before=$(cpu_ticks "$pid")
    report=$("$LOADGEN" --endpoint http://127.0.0.1:24317 --batch-size "$batch" \
        --rate "$rate" --duration "${seconds}s" 2>/dev/null)
    sleep 1
    after=$(cpu_ticks "$pid")
    kill -INT "$pid"
    wait "$pid" || true
    spans=$(sed -n 's/.* \([0-9]*\) accepted.*/\1/p' <<<"$report" | head -1)
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
    if [[ $case == base ]]; then
        base_seconds=$cpu
        printf '%-8s %8s CPU s for %s spans\n' "$case" "$cpu" "$spans"
    else
        awk -v c="$case" -v cpu="$cpu" -v base="$base_seconds" -v n="$spans" 'BEGIN {
            per = (cpu - base) / n * 1e6
            printf "%-8s %8s CPU s for %s spans: +%.2f us per span, %.0f spans/s per core\n",
                c, cpu, n, per, (per > 0 ? 1e6 / per : 0)
        }'
    fi
done
