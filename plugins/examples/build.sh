#!/usr/bin/env bash
# Builds the JavaScript or Python redact example into a WebAssembly
# component of the `weir:plugin@0.1.0` world `processor` (wit/v0.1: the
# JavaScript and Python examples and templates stay on 0.1.0, which Weir
# still runs).
#
#     plugins/examples/build.sh js     OUT_DIR   # -> OUT_DIR/redact_js.wasm
#     plugins/examples/build.sh python OUT_DIR   # -> OUT_DIR/redact_py.wasm
#
# Installs the tools it needs when they are missing or not the pinned
# version: for js, `npm ci` in redact-js (ComponentizeJS and jco, from its
# package-lock.json); for python, a virtual environment at
# OUT_DIR/../plugin-venv (or $WEIR_PLUGIN_VENV) with redact-py's
# requirements.txt (componentize-py). A second run installs nothing, and
# rebuilds only when a source, the WIT package, the pinned tools or this
# script are newer than the component (WEIR_PLUGIN_REBUILD=1 always
# rebuilds).
#
# Tool output goes to stderr; stdout's last line is the component's path.
set -euo pipefail

usage() {
    echo "usage: $0 js|python OUT_DIR" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
lang=$1
case "$lang" in
js | python | py) ;;
*) usage ;;
esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wit=$(cd "$here/../../wit/v0.1" && pwd)
mkdir -p "$2"
out_dir=$(cd "$2" && pwd)

say() { echo "build.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# True when `out` is missing or older than any of the other paths (files,
# or folders whose files count).
stale() {
    local out=$1
    shift
    [[ "${WEIR_PLUGIN_REBUILD:-}" == 1 || ! -f "$out" ]] && return 0
    [[ -n "$(find "$@" -newer "$out" -type f -print -quit)" ]]
}

# Writes the component to a temporary name first and renames it, so that a
# running Weir watching the file never sees half of it.
finish() {
    local tmp=$1 out=$2
    [[ -s "$tmp" ]] || die "no component was written"
    mv -f "$tmp" "$out"
}

build_js() {
    local dir="$here/redact-js"
    local bin="$dir/node_modules/.bin"
    local out="$out_dir/redact_js.wasm"
    command -v node >/dev/null || die "node is needed (20 or later)"

    # The pinned versions (package.json) against the installed ones.
    local pinned installed
    pinned=$(cd "$dir" && node -p '
        const d = require("./package.json").devDependencies;
        ["@bytecodealliance/componentize-js", "@bytecodealliance/jco"]
            .map((n) => n + "@" + d[n]).join(" ")')
    installed=$(cd "$dir" && node -p '
        ["@bytecodealliance/componentize-js", "@bytecodealliance/jco"]
            .map((n) => { try { return n + "@" + require("./node_modules/" + n + "/package.json").version; }
                          catch { return n + "@none"; } }).join(" ")')
    if [[ "$pinned" != "$installed" || ! -x "$bin/componentize-js" || ! -x "$bin/jco" ]]; then
        command -v npm >/dev/null || die "npm is needed"
        say "installing $pinned (npm ci)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi

    if stale "$out" "$dir/redact.js" "$dir/package-lock.json" "$wit" "$here/build.sh"; then
        say "building $out"
        local tmp="$out_dir/.redact_js.wasm.tmp"
        rm -f "$tmp"
        (cd "$dir" && "$bin/componentize-js" redact.js \
            --wit "$wit" --world-name processor \
            --disable http --disable fetch-event \
            --out "$tmp") >&2
        finish "$tmp" "$out"
    else
        say "$out is up to date"
    fi
    echo "$out"
}

build_python() {
    local dir="$here/redact-py"
    local out="$out_dir/redact_py.wasm"
    local venv=${WEIR_PLUGIN_VENV:-$(dirname "$out_dir")/plugin-venv}
    local cpy="$venv/bin/componentize-py"

    local pinned installed=none
    pinned=$(sed -n 's/^componentize-py==\([^ ;#]*\).*/\1/p' "$dir/requirements.txt")
    [[ -n "$pinned" ]] || die "requirements.txt pins no componentize-py==VERSION"
    if [[ -x "$cpy" ]]; then
        installed=$("$cpy" --version 2>/dev/null | awk '{print $2}') || installed=none
    fi
    if [[ "$installed" != "$pinned" ]]; then
        if [[ ! -x "$venv/bin/python" ]]; then
            local python=${PYTHON:-python3}
            command -v "$python" >/dev/null || die "$python is needed (3.10 or later)"
            "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
                die "$python is older than 3.10"
            say "creating $venv"
            "$python" -m venv "$venv" >&2
        fi
        say "installing componentize-py $pinned into $venv"
        "$venv/bin/python" -m pip install --disable-pip-version-check -q \
            -r "$dir/requirements.txt" >&2
    fi

    if stale "$out" "$dir/app.py" "$dir/requirements.txt" "$wit" "$here/build.sh"; then
        say "building $out"
        # The bindings are generated, with a copy of the app, into the
        # git-ignored build/ folder; building from there keeps the
        # componentizer's byte-code caches out of the sources.
        local stage="$dir/build"
        rm -rf "$stage"
        mkdir -p "$stage"
        "$cpy" -q -d "$wit" -w processor bindings "$stage" >&2
        cp "$dir/app.py" "$stage/app.py"
        local tmp="$out_dir/.redact_py.wasm.tmp"
        rm -f "$tmp"
        # Only the venv's site-packages (which holds no app dependency) may
        # join the app's path, not that of a caller's active environment.
        (cd "$stage" && env -u VIRTUAL_ENV PATH="$venv/bin:$PATH" \
            "$cpy" -q -d "$wit" -w processor componentize -p "$stage" app -o "$tmp") >&2
        finish "$tmp" "$out"
    else
        say "$out is up to date"
    fi
    echo "$out"
}

case "$lang" in
js) build_js ;;
*) build_python ;;
esac
