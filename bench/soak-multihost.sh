#!/usr/bin/env bash
# The long form of the multi-host fault tests (tests/tests/multihost.rs), as root:
#   - the bank across three simulated hosts under random cuts, delays of one host's link
#     to Redis, a Redis freeze and a Redis kill + AOF restart, for
#     $SOAK_SECONDS (default 600) of faults;
#   - $TRIALS (default 20) partitions of a host running a long handler, reporting the
#     time from the cut to the retry elsewhere and the fencing gap.
# Usage: bench/soak-multihost.sh [SOAK_SECONDS] [TRIALS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup-test-deps.sh
cargo build -p kar --features fault-injection
KAR_MULTIHOST_FAULTS="${1:-600}" KAR_MULTIHOST_TRIALS="${2:-20}" \
    cargo test -p kar-tests --test multihost -- --nocapture --test-threads 1 2>&1 |
    grep -E '^\[multihost|^death|^transfers|^kills|^test |^test result|panicked'
