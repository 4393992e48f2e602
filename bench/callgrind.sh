#!/usr/bin/env bash
# Instructions executed by both kar sidecars for a fixed number of calls, counted by
# valgrind's callgrind: the same on every run whatever the machine's load, so two
# builds compare on a shared machine where timings do not (before/after a change).
#   bench/callgrind.sh [embedded|redis] [calls] [kar binary] [out-dir]
# Runs kar-bench with throughput windows of 0 s, so the workload is a fixed count:
# 200 warm-up + `calls` sequential actor calls (`Bench.echo`), the same for service
# calls (`bench/echo`), and the idempotency-key calls; each sidecar runs under
# callgrind from its start to its stop (joining and leaving included, the same in
# every run). Prints the instructions of each sidecar and their sum.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$bench")"
store="${1:-embedded}"
calls="${2:-500}"
out="${4:-$(mktemp -d)}"
mkdir -p "$out"
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
kar="${3:-$target/release/kar}"
[[ -x "$kar" ]] || { echo "no kar binary at $kar (cargo build --release -p kar)" >&2; exit 1; }
bench_bin="${KAR_BENCH:-$target/release/kar-bench}"
[[ -x "$bench_bin" ]] || (cd "$root" && cargo build --release --quiet -p kar-bench)

# kar-bench starts `kar` through this wrapper: each sidecar under callgrind.
wrapper="$out/kar-under-callgrind"
cat >"$wrapper" <<EOF
#!/usr/bin/env bash
exec valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" "$kar" "\$@"
EOF
chmod +x "$wrapper"

log="$out/kar-bench-$store.log"
"$bench_bin" --kar "$wrapper" --stores "$store" --stateful none \
    --calls "$calls" --seconds 0 >"$log" 2>&1
server=$(grep -o 'server sidecar=[0-9]*' "$log" | head -1 | cut -d= -f2)
client=$(grep -o 'client sidecar=[0-9]*' "$log" | head -1 | cut -d= -f2)
total() { grep -m1 '^summary:' "$out/callgrind.out.$1" | awk '{print $2}'; }
s=$(total "$server")
c=$(total "$client")
echo "$store store, $calls calls per kind: instructions server sidecar $s, client sidecar $c, both $((s + c))"
echo "profiles: $out/callgrind.out.{$server,$client} (callgrind_annotate); kar-bench output: $log"
