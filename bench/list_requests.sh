#!/usr/bin/env bash
# Time and peak memory of `kar get -s requests -o json` over N pending requests (default
# 100,000) on each store: the store is filled with parked tells by
# crates/store/examples/fill_pending.rs (no sidecar runs, so the listing is a pure
# read of the store, page by page), then listed under /usr/bin/time -v.
#
#   bench/list_requests.sh [N]
#
# Prints one line per store; everything it starts (a redis-server on a free loopback
# port, temporary directories) goes when it ends.
set -euo pipefail

n="${1:-100000}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release -q -p kar
cargo build --release -q -p kar-store --example fill_pending
kar="$root/target/release/kar"
fill="$root/target/release/examples/fill_pending"

work="$(mktemp -d)"
redis_pid=""
cleanup() {
    if [[ -n "$redis_pid" ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done

measure() { # store-name, then the environment for kar
    local name="$1"; shift
    env "$@" /usr/bin/time -v "$kar" get -app bench -s requests -o json >"$work/out.json" 2>"$work/time.txt"
    local listed wall rss
    listed="$(grep -c '"id"' "$work/out.json")"
    wall="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")"
    rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")"
    printf '| %s | %s | %s | %s MiB |\n' "$name" "$listed" "$wall" "$((rss / 1024))"
}

"$fill" embedded "$work/home" bench "$n"
"$fill" redis "$port" bench "$n"
echo "kar get -s requests -o json, $n pending requests, $(nproc) cores"
echo "| store | listed | wall (m:ss) | peak RSS |"
echo "|---|---:|---:|---:|"
measure embedded -u REDIS_HOST -u REDIS_PORT KAR_HOME="$work/home"
measure redis KAR_HOME="$work/empty" REDIS_HOST=127.0.0.1 REDIS_PORT="$port"
