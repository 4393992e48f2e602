#!/usr/bin/env bash
# CPU profile of both kar sidecars under the 64-client load on 64 keys (actor calls to
# the minimal Rust component `Bench.echo`), on one store:
#   bench/profile.sh [embedded|redis] [out-dir]
# Builds kar and kar-bench in release (debug info on: symbols), starts kar-bench with
# 20 s per throughput figure, attaches `perf record` (software clock sampling: this
# machine kind has no hardware counters) to the two sidecars from 2 s into the
# distinct-keys load for 15 s, and prints the top entries by self time, per sidecar.
# The samples stay in <out-dir>/perf-<store>.data (default: a temporary directory).
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$bench")"
store="${1:-embedded}"
out="${2:-$(mktemp -d)}"
mkdir -p "$out"
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }

(cd "$root" && cargo build --release --quiet -p kar -p kar-bench)
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

log="$out/kar-bench-$store.log"
"$target/release/kar-bench" --kar "$target/release/kar" --stores "$store" --stateful none \
    --calls 200 --seconds 20 >"$log" 2>&1 &
bench_pid=$!
trap 'kill -TERM "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true' EXIT

# The mesh line names the sidecars' pids; the sequential calls take well under 2 s.
for _ in $(seq 600); do
    grep -q "mesh on the" "$log" && break
    sleep 0.1
done
server=$(grep -o 'server sidecar=[0-9]*' "$log" | head -1 | cut -d= -f2)
client=$(grep -o 'client sidecar=[0-9]*' "$log" | head -1 | cut -d= -f2)
[[ -n "$server" && -n "$client" ]] || { echo "no sidecar pids in $log" >&2; exit 1; }
sleep 2
data="$out/perf-$store.data"
perf record -q -e cpu-clock -F 999 -g -p "$server,$client" -o "$data" -- sleep 15 2>/dev/null
wait "$bench_pid" || true
trap - EXIT

# perf's --pid filter keeps the main thread only: report by thread and by thread kind.
report() { perf report -i "$data" --no-children --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ *$//'; }
echo "== $store store: share of the samples by thread (pid:name; server sidecar $server, client sidecar $client)"
report --sort pid | head -12
echo "== $store store, both sidecars: top entries by self time"
report --sort dso,sym --percent-limit 0.6 | head -40
for comm in tokio-rt-worker kar-sqlite; do
    echo "== $store store, threads $comm only: top entries by self time (% of all samples)"
    report --comm "$comm" --sort dso,sym --percent-limit 0.4 | head -25
done
echo "== $store store, both sidecars: self time by shared object"
report --sort dso | head -8
echo "samples: $data; kar-bench output: $log"
