#!/usr/bin/env bash
# Context switches and CPU time of each sidecar per sequential actor call: the number
# of times a call puts a sidecar thread to sleep and wakes it again, which on a small
# or virtual host costs more than the work itself. Steadier than latencies on a shared
# host (the counts do not depend on the load; the CPU time does, a little).
#   bench/wakeups.sh [kar binary] [calls]
# Two sidecars of one application on the embedded store (a fresh KAR_HOME): a server
# sidecar beside a minimal Node component hosting actor `Bench`, and a client sidecar
# without one. h2load (Debian: nghttp2-client) makes the calls over h2c, one at a time,
# to the client sidecar; `perf stat` counts each sidecar's context switches and CPU
# time over them. A sidecar's floor is 2 per call: woken by the call (client: the
# request; server: the letter) and by its answer (client: the letter; server: the
# component's reply). With REDIS_HOST (and REDIS_PORT) in the environment the sidecars
# use that Redis instead: each store command then adds the wake-up of its reply.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$bench")"
kar="${1:-$root/target/release/kar}"
calls="${2:-5000}"
for tool in h2load perf node curl; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found (h2load: apt-get install nghttp2-client; perf: linux-perf)" >&2
        exit 1
    }
done
[[ -x "$kar" ]] || { echo "no kar binary at $kar (cargo build --release -p kar)" >&2; exit 1; }

home="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$home"
}
trap cleanup EXIT
export KAR_HOME="$home"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
app_port=$(free_port)
server_port=$(free_port)
client_port=$(free_port)

cat >"$home/component.js" <<'EOF'
// Actor `Bench`: every method returns its argument.
require('http').createServer((req, res) => {
  const body = [];
  req.on('data', (chunk) => body.push(chunk));
  req.on('end', () => {
    if (req.method === 'POST') {
      res.writeHead(200, { 'content-type': 'application/kar+json' });
      res.end('{"value":' + (Buffer.concat(body).toString() || 'null') + '}');
    } else {
      res.writeHead(req.method === 'GET' ? 201 : 200);
      res.end();
    }
  });
}).listen(parseInt(process.env.KAR_APP_PORT, 10), '127.0.0.1');
EOF

"$kar" run -app wakeups -actors Bench -app_port "$app_port" -runtime_port "$server_port" \
    -- node "$home/component.js" >"$home/server.log" 2>&1 &
server=$!
pids+=("$server")
"$kar" run -app wakeups -runtime_port "$client_port" >"$home/client.log" 2>&1 &
client=$!
pids+=("$client")

url="http://127.0.0.1:$client_port/kar/v1/actor/Bench/a/call/echo"
echo '[1]' >"$home/body"
call() { curl -sf -XPOST -H 'content-type: application/kar+json' -d '[1]' "$url" >/dev/null; }
for _ in $(seq 1 150); do call && break; sleep 0.2; done
call || { echo "the mesh did not answer; logs in $home" >&2; trap - EXIT; exit 1; }
h2load_calls() {
    h2load -n "$1" -c 1 -m 1 -d "$home/body" -H 'content-type: application/kar+json' "$url"
}
h2load_calls 1000 >/dev/null # warm-up

perf stat -e context-switches,task-clock -p "$server" -o "$home/server.perf" &
perf_server=$!
perf stat -e context-switches,task-clock -p "$client" -o "$home/client.perf" &
perf_client=$!
sleep 0.5 # perf attached
h2load_calls "$calls" | grep -E '^(requests|time for request):' | sed 's/^/h2load: /'
kill -INT "$perf_server" "$perf_client"
wait "$perf_server" "$perf_client" 2>/dev/null || true

for side in server client; do
    python3 - "$home/$side.perf" "$calls" "$side" <<'EOF'
import re, sys
path, calls, side = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path).read()
def count(event):
    match = re.search(r'^\s*([\d.,]+)\s+(?:msec\s+)?' + event, text, re.M)
    return float(match.group(1).replace(',', '')) if match else float('nan')
print(f"{side} sidecar: {count('context-switches') / calls:.2f} context switches per call, "
      f"{count('task-clock') * 1000 / calls:.0f} µs CPU per call")
EOF
done
