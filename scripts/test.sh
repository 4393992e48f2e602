#!/usr/bin/env bash
# The whole test suite: installs what the tests need (npm packages, a Python venv with
# the published KAR SDK, redis-server), builds kar, and runs every test on both stores.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
echo "== building"
cargo build --workspace --all-targets
echo "== testing"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
