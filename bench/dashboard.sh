#!/usr/bin/env bash
# How fast `kar dashboard` answers with N pending requests (default 100,000) in the
# store, on each store: the store is filled with parked tells by
# crates/store/examples/fill_pending.rs, `kar dashboard -port 0` serves it, and curl
# times what the page fetches on each refresh: the page itself, the first page of
# requests (50, what the page asks), a page 1,000 requests deep (following cursors), a
# status filter, and the other lists. Every answer must be one page (the script checks
# the count), never the whole table. Prints a table of times (no assertion on them).
#
#   bench/dashboard.sh [N]        PROFILE=debug bench/dashboard.sh [N] (skips the release build)
#
# Everything it starts (a redis-server on a free loopback port, the dashboards,
# temporary directories) goes when it ends.
set -euo pipefail

n="${1:-100000}"
profile="${PROFILE:-release}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ "$profile" == release ]]; then
    cargo build --release -q -p kar
    cargo build --release -q -p kar-store --example fill_pending
else
    cargo build -q -p kar
    cargo build -q -p kar-store --example fill_pending
fi
kar="$root/target/$profile/kar"
fill="$root/target/$profile/examples/fill_pending"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done

"$fill" embedded "$work/home" bench "$n" >/dev/null
"$fill" redis "$port" bench "$n" >/dev/null

# fetch URL EXPECTED_COUNT_FIELD: prints "seconds bytes items" of one GET.
fetch() {
    local url="$1" list="$2"
    local timing
    timing="$(curl -sS -o "$work/body" -w '%{time_total} %{size_download}' "$url")"
    local items="-"
    if [[ -n "$list" ]]; then
        items="$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))[sys.argv[2]]))" "$work/body" "$list")"
    fi
    echo "$timing $items"
}

# deep URL: the cursor after following 20 pages of 50 (1,000 requests in).
deep_cursor() {
    local base="$1" cursor=""
    for _ in $(seq 20); do
        curl -sS -o "$work/body" "$base/kar/admin/v1/requests?limit=50${cursor:+&cursor=$cursor}"
        cursor="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('next_cursor',''))" "$work/body")"
    done
    echo "$cursor"
}

measure() { # store-name, then the environment for kar
    local name="$1"; shift
    env "$@" "$kar" dashboard -app bench -port 0 >"$work/dash.out" 2>"$work/dash.err" &
    local pid=$!
    pids+=("$pid")
    until grep -q 'http://' "$work/dash.out" 2>/dev/null; do sleep 0.05; done
    local base
    base="$(sed -n 's|.* at \(http://[^/]*\)/.*|\1|p' "$work/dash.out")"
    local cursor
    cursor="$(deep_cursor "$base")"
    row() { # label url list
        local out
        out="$(fetch "$2" "$3")"
        read -r secs bytes items <<<"$out"
        printf '| %s | %s | %s ms | %s | %s |\n' "$name" "$1" "$(python3 -c "print(round($secs*1000, 1))")" "$bytes" "$items"
    }
    row "page (HTML)" "$base/" ""
    row "requests, first 50" "$base/kar/admin/v1/requests?limit=50" requests
    row "requests, 50 after 1,000" "$base/kar/admin/v1/requests?limit=50&cursor=$cursor" requests
    row "requests?status=parked, first 50" "$base/kar/admin/v1/requests?limit=50&status=parked" requests
    row "requests?status=paused (none)" "$base/kar/admin/v1/requests?limit=50&status=paused" requests
    row "requests?service=nobody, first 500" "$base/kar/admin/v1/requests?limit=500&service=nobody" requests
    row "actors" "$base/kar/admin/v1/actors?limit=50" actors
    row "sidecars" "$base/kar/admin/v1/sidecars" sidecars
    row "latency" "$base/kar/admin/v1/latency" methods
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "kar dashboard over $n pending requests ($profile build, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "| store | fetch | time | bytes | items |"
echo "|---|---|---:|---:|---:|"
measure embedded -u REDIS_HOST -u REDIS_PORT KAR_HOME="$work/home"
measure redis KAR_HOME="$work/empty" REDIS_HOST=127.0.0.1 REDIS_PORT="$port"
