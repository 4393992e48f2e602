#!/usr/bin/env bash
# Runs one of the Rust SDK examples under kar sidecars on the embedded store.
#   scripts/example.sh hello          a greeter service and a client calling it
#   scripts/example.sh bank           transfers as tail-call chains, with an invariant check
#   scripts/example.sh philosophers   dining philosophers: tells, tail calls, state, removal
# Each example checks its own result and exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/example.sh hello|bank|philosophers}

cargo build -q -p kar -p kar-examples
bin=target/debug
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
case "$name" in
hello)
    "$bin/kar" run -app example-hello -service greeter -app_port "$port" -- "$bin/hello-server" &
    server=$!
    trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
    "$bin/kar" run -app example-hello -- "$bin/hello-client"
    ;;
bank)
    "$bin/kar" run -app example-bank -actors Account -app_port "$port" -- "$bin/bank"
    ;;
philosophers)
    "$bin/kar" run -app example-philosophers -actors Fork,Philosopher -app_port "$port" -- "$bin/philosophers"
    ;;
*)
    echo "unknown example $name (hello, bank or philosophers)" >&2
    exit 2
    ;;
esac
