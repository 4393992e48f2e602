#!/usr/bin/env bash
# Runs a real two-component application (a JavaScript greeter service and a client,
# both written with the published npm kar-sdk) on the embedded store: no set-up needed.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building kar"
cargo build -q -p kar
KAR=target/debug/kar

echo "== installing the example's npm packages"
(cd examples/greeter-js && npm install --silent --no-audit --no-fund >/dev/null)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "== starting the greeter service (app port $port) and the client, at the same time"
"$KAR" run -app greeter-demo -service greeter -app_port "$port" -v info -- node examples/greeter-js/server.js &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
"$KAR" run -app greeter-demo -v info -- node examples/greeter-js/client.js
echo "== done: the client got its replies through two kar sidecars"
