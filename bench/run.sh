#!/usr/bin/env bash
# The side-by-side benchmark, in one command from a clean clone:
#   - installs the Restate side (npm: restate-server, restate-sdk, Node 22) into
#     bench/restate/node_modules and the npm kar-sdk into bench/js/node_modules
#     (git-ignored; skipped when the lock file is unchanged),
#   - installs matplotlib into <repo>/.venv for the chart (skipped when present),
#   - builds kar and kar-bench in release,
#   - runs kar (embedded store and Redis), the direct HTTP baseline and Restate,
#     plus reminder firings/s, event latency and sustained event throughput (1 and 8
#     subscribers) on both kar stores, and recovery after
#     kill -9 (20 trials per store; Redis with its default 3 s lease and with 1 s),
#   - runs the stateful counter side by side with Restate (Rust SDK against Restate's
#     Rust SDK, npm kar-sdk against Restate's TypeScript SDK; kar on each store with
#     and without fsync), with CPU per call, sidecar memory, and calls/s from 1 to 256
#     clients,
#   - runs the cost-as-the-work-grows workloads on both kar stores, each at a tenth
#     and at full size: 1,000,000 actors with a little state, a backlog of 100,000
#     tells drained, 200,000 periodic reminders (tens of minutes; `--growth 0,0,0`
#     on the command line skips them),
#   - writes bench/results/latest.md and bench/results/latest.png, and a copy of both
#     named by the date.
# Every process it starts is stopped at the end, also on failure or Ctrl-C.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$bench")"
results="$bench/results"
step() { printf '== %s\n' "$*"; }

# --- Restate side --------------------------------------------------------------
restate="$bench/restate"
stamp="$restate/node_modules/.kar-bench-stamp"
lock_hash="$(sha256sum "$restate/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
    step "restate: npm packages up to date"
else
    step "restate: npm ci (restate-server 1.7.12, restate-sdk 1.17.2, node 22.23.3)"
    (cd "$restate" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$lock_hash" >"$stamp"
fi

# --- kar's Node side (npm kar-sdk) --------------------------------------------
js="$bench/js"
js_stamp="$js/node_modules/.kar-bench-stamp"
js_hash="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$js_stamp" && "$(cat "$js_stamp")" == "$js_hash" ]]; then
    step "js: npm packages up to date"
else
    step "js: npm ci (kar-sdk 1.3.10)"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$js_hash" >"$js_stamp"
fi

# --- chart dependency ----------------------------------------------------------
venv="$root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    step "python: creating $venv"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    step "python: pip install matplotlib"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'matplotlib==3.11.2'
fi

command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }

# --- build ---------------------------------------------------------------------
step "cargo build --release -p kar -p kar-bench --features kar-bench/restate"
(cd "$root" && cargo build --release --quiet -p kar -p kar-bench --features kar-bench/restate)
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

# --- run -----------------------------------------------------------------------
# kar-bench owns every child (kill_on_drop) and stops them on SIGTERM/SIGINT; the trap
# makes sure it gets that signal if this script is interrupted.
bench_pid=""
cleanup() { if [[ -n "$bench_pid" ]]; then kill -TERM "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

step "kar-bench"
mkdir -p "$results"
# Reminders: 50,000 periodic (1 s) reminders, i.e. 50,000 firings/s demanded; events:
# 200 sequential publish-to-delivery round trips, then 10 s of sustained publishing
# with 1 and 8 subscribers; recovery: 20 kill -9 trials per store
# and Redis lease; scaling: 2 s per client count; growth: full sizes (see above).
# Later options on the command line win.
"$target/release/kar-bench" --kar "$target/release/kar" --restate "$restate" --kar-js "$js" \
    --out "$results" --reminders 50000 --events 200 --event-rate 10 --recovery 20 \
    --scaling 1,2,4,8,16,32,64,128,256 --growth full "$@" &
bench_pid=$!
wait "$bench_pid"
bench_pid=""

step "chart"
"$venv/bin/python" "$bench/chart.py" "$results/latest-samples.tmp" "$results/latest.png"
cp "$results/latest.png" "$results/$(date -u +%F).png"
step "wrote ${results#"$root"/}/latest.md and ${results#"$root"/}/latest.png"
