#!/usr/bin/env bash
# Talks to the sidecar with plain curl, over HTTP/1.1 and over HTTP/2 with prior
# knowledge (h2c), as a component that uses no SDK would.
# Run it under `kar run -app APP -- bash checks.sh SERVICE`, SERVICE running one of the
# greeter services (../js/service.js, ../python/service_*.py).
# Prints one line per check; on a mismatch prints "FAIL <check>: ..." and exits 1.
set -uo pipefail

service="${1:?usage: checks.sh SERVICE}"
base="http://127.0.0.1:${KAR_RUNTIME_PORT:?KAR_RUNTIME_PORT is not set}/kar/v1"
body_file="$(mktemp)"
trap 'rm -f "$body_file"' EXIT
passed=0

# expect NAME VERSION STATUS BODY CURL_ARGS...
# Runs curl and compares the HTTP version, the status and the body (trailing newlines
# ignored; BODY ending in '*' is a prefix). Sets $got_body and $got_type.
expect() {
    local name="$1" want_version="$2" want_status="$3" want_body="$4"
    shift 4
    local meta
    if ! meta="$(curl -sS --max-time 30 -o "$body_file" -w '%{http_version} %{http_code} %{content_type}' "$@")"; then
        echo "FAIL $name: curl $* failed"
        exit 1
    fi
    local version status
    read -r version status got_type <<<"$meta"
    got_body="$(cat "$body_file")"
    if [[ "$version" != "$want_version" || "$status" != "$want_status" ]]; then
        echo "FAIL $name: expected HTTP/$want_version $want_status, got HTTP/$version $status (body: $got_body)"
        exit 1
    fi
    if [[ "$want_body" == *'*' ]]; then
        if [[ "$got_body" != "${want_body%\*}"* ]]; then
            echo "FAIL $name: expected a body starting with '${want_body%\*}', got '$got_body'"
            exit 1
        fi
    elif [[ "$got_body" != "$want_body" ]]; then
        echo "FAIL $name: expected body '$want_body', got '$got_body'"
        exit 1
    fi
    passed=$((passed + 1))
    echo "ok $name"
}

expect_type() {
    local name="$1" want="$2"
    if [[ "$got_type" != "$want"* ]]; then
        echo "FAIL $name: expected Content-Type $want, got '$got_type'"
        exit 1
    fi
}

for proto in http1.1 http2-prior-knowledge; do
    case "$proto" in
    http1.1) v=1.1 ;;
    *) v=2 ;;
    esac
    p="--$proto"

    expect "$proto health" "$v" 200 "OK" "$p" "$base/system/health"

    expect "$proto call helloJson" "$v" 200 '{"greetings":"Hello X"}' "$p" \
        -X POST -H 'Content-Type: application/json' -d '{"name":"X"}' "$base/service/$service/call/helloJson"
    expect_type "$proto call helloJson" application/json

    expect "$proto call helloText" "$v" 200 'Hello Y' "$p" \
        -X POST -H 'Content-Type: text/plain' -d 'Y' "$base/service/$service/call/helloText"
    expect_type "$proto call helloText" text/plain

    expect "$proto GET item" "$v" 200 '{"id":"5","method":"GET"}' "$p" "$base/service/$service/call/item/5"
    expect "$proto DELETE item" "$v" 204 '' "$p" -X DELETE "$base/service/$service/call/item/5"
    expect "$proto relayed 404" "$v" 404 'status 404' "$p" "$base/service/$service/call/status/404"

    expect "$proto tell" "$v" 202 'OK' "$p" -X POST -H 'Pragma: async' \
        -H 'Content-Type: text/plain' -d "told over $proto" "$base/service/$service/call/record/curl-$proto"
    expect "$proto told body arrived" "$v" 200 "told over $proto" "$p" "$base/service/$service/call/recorded/curl-$proto"

    expect "$proto promise" "$v" 202 'req-*' "$p" -X POST -H 'Pragma: promise' \
        -H 'Content-Type: application/json' -d '41' "$base/service/$service/call/incr"
    id="$got_body"
    expect "$proto await" "$v" 200 '42' "$p" -X POST -H 'Content-Type: text/plain' -d "$id" "$base/await"

    expect "$proto unknown route" "$v" 404 '404 page not found' "$p" "$base/no/such/route"
done

echo "all $passed checks passed"
