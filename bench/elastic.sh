#!/usr/bin/env bash
# How long a graceful leave takes with N activated actors (default 10,000), on each
# store: replica A (tests/apps/js/elastic/server.js, `-actor_rebalance_rate 0` so that
# it keeps every actor) activates Counter c0..c<N-1> (one call each, 50 at a time, from
# a client sidecar), replica B joins, then A gets SIGTERM and the script times it until
# `kar run` exited: its graceful leave (N deactivations, 16 at once, each a call to
# the component that appends a line to a file) and the store transition that leaves.
# The mesh is otherwise idle. A's own `left the mesh in ...` line is printed too.
# (That every call still counts once across such a leave is what tests/tests/elastic.rs
# checks.)
#
#   bench/elastic.sh [N]         PROFILE=debug bench/elastic.sh [N]  (no release build)
#   STORES=redis bench/elastic.sh [N]                                (one store only)
#
# Needs node and the npm packages of tests/apps/js (scripts/setup-test-deps.sh) and
# redis-server. Everything it starts (a redis-server on a free loopback port, the kar
# processes, temporary directories) goes when it ends.
set -euo pipefail

n="${1:-10000}"
profile="${PROFILE:-release}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ "$profile" == release ]]; then
    cargo build --release -q -p kar
else
    cargo build -q -p kar
fi
kar="$root/target/$profile/kar"
apps="$root/tests/apps/js"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done

# Waits until file $1 contains $2.
await() { until grep -q "$2" "$1" 2>/dev/null; do sleep 0.1; done; }

# Starts a replica in its own process group; $1 names its log, then kar run flags.
replica() {
    local name="$1"; shift
    (cd "$apps" && exec setsid env ELASTIC_LOG_DIR="$work/$store" "$kar" run -app bench \
        -v info -actors Counter -h2c -app_port "$(free_port)" -actor_collector_interval 1h "$@" \
        -- node elastic/server.js >"$work/$store/$name.log" 2>&1) &
    pids+=($!)
    await "$work/$store/$name.log" "elastic server listening"
}

client() { # scenario args...
    (cd "$apps" && "$kar" run -app bench -app_port "$(free_port)" -- node elastic/client.js "$@") \
        >"$work/$store/client.log" 2>&1 || { tail -20 "$work/$store/client.log"; exit 1; }
}

run() { # store name, then the environment for kar
    store="$1"; shift
    mkdir -p "$work/$store"
    export -n REDIS_HOST REDIS_PORT KAR_HOME 2>/dev/null || true
    for assignment in "$@"; do export "${assignment?}"; done
    replica a -actor_rebalance_rate 0
    local a_pid="${pids[-1]}"
    client load "$n" 0 "$work/none" /dev/null
    grep -q "done calls=$n failures=0" "$work/$store/client.log" || { cat "$work/$store/client.log"; exit 1; }
    replica b
    # `exec setsid env kar`: the process started is kar itself.
    local a_kar="$a_pid"
    local began ended
    began="$(date +%s%N)"
    kill -TERM "$a_kar"
    while kill -0 "$a_kar" 2>/dev/null; do sleep 0.01; done
    ended="$(date +%s%N)"
    local left
    left="$(grep -o 'left the mesh in [^ ]* .*' "$work/$store/a.log" | sed 's/node=[^ ]* //' || true)"
    printf '| %s | %d | %d ms | %s |\n' "$store" "$n" "$(((ended - began) / 1000000))" "$left"
    for pid in "${pids[@]:1}"; do kill -- "-$pid" 2>/dev/null || true; done
    pids=("${pids[0]}")
}

echo "graceful leave of a replica with $n activated actors ($profile build, $(nproc) cores, idle mesh)"
echo "| store | actors | SIGTERM to exit | the sidecar's own line |"
echo "|---|---:|---:|---|"
stores="${STORES:-embedded redis}"
if [[ "$stores" == *embedded* ]]; then run embedded KAR_HOME="$work/home"; fi
if [[ "$stores" == *redis* ]]; then
    run redis KAR_HOME="$work/empty" REDIS_HOST=127.0.0.1 REDIS_PORT="$port"
fi
