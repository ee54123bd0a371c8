# benches/lib.sh - shell helpers the comparison scripts share; sourced, not
# run. A script that sources it defines `die` (and `KEEP_WORK`, kept set to
# 1 when a server fails, so that its logs stay).

# Fails unless each of the binaries "${@:2}" is in directory $1.
need_bins() {
    local dir="$1" bin
    shift
    for bin in "$@"; do
        [[ -x "$dir/$bin" ]] || die "$dir/$bin is missing; build it: cargo build --profile bench -p weir-cli -p weir-benches --bins"
    done
}

# A free TCP port on 127.0.0.1 (bound, then released).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until 127.0.0.1:$1 accepts connections, or fails if process $2 dies
# or 30 s pass; $3 is the process's log, shown on failure.
wait_port() {
    local port="$1" pid="$2" log="$3" i
    for ((i = 0; i < 300; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            KEEP_WORK=1
            tail -n 20 "$log" >&2 || true
            die "a server exited before listening on port $port (log: $log)"
        fi
        sleep 0.1
    done
    KEEP_WORK=1
    tail -n 20 "$log" >&2 || true
    die "nothing listens on 127.0.0.1:$port after 30 s (log: $log)"
}

# CPU ticks (user + system) used so far by process $1.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# CPU ticks all processes of the machine have used so far (user, nice, system, irq, softirq, steal).
busy_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Runs the command "$@" (which prints a count) every 0.2 s until the count
# has not moved for 2 s; prints the count and the seconds it kept growing.
settle() {
    local start last now since grew
    start="$(date +%s.%N)"; last="$("$@")"; since="$start"; grew="$start"
    while :; do
        sleep 0.2
        now="$("$@")"
        if [[ "$now" != "$last" ]]; then
            last="$now"; since="$(date +%s.%N)"; grew="$since"
        elif awk -v a="$since" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a >= 2) }'; then
            break
        fi
    done
    awk -v n="$last" -v a="$start" -v b="$grew" 'BEGIN { printf "%s %.3f", n, b - a }'
}
