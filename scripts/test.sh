#!/usr/bin/env bash
# The whole test suite: installs what the tests need (npm packages, a Python venv with
# the published KAR SDK, redis-server), builds kar, and runs every test on both stores.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-deps.sh
echo "== building"
cargo build --workspace --all-targets
echo "== testing"
cargo test --workspace --no-fail-fast "$@"
