"""A KAR client for the integration tests, written with the published Python SDK (kar 1.3.5).

Run it under `kar run -app APP -- <venv>/bin/python client.py SCENARIO SERVICE ARGS...`.

Scenarios (SERVICE runs ../js/service.js or one of the Python twins):
  sdk SERVICE TAG [PROTOCOL]
                      call, tell, async_call and invoke (GET/POST/PUT/DELETE/HEAD) against
                      every route; /whoami must answer TAG, and /protocol PROTOCOL ("1.1"
                      or "2": how the sidecar reached the service)
  whoami SERVICE TAG  /whoami must answer TAG

Prints one line per check; on a mismatch prints "FAIL <check>: ..." and exits 1.
The SDK returns the raw httpx.Response when a reply has no Content-Type, the text for
text/plain, the parsed JSON for application/json, and raises httpx.HTTPStatusError on
non-2xx replies (spec §6.1).
"""

import asyncio
import json
import sys
import traceback

import httpx
import kar

passed = 0


class Mismatch(Exception):
    pass


def equal(actual, expected, what):
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


def is_response(value, what):
    if not isinstance(value, httpx.Response):
        raise Mismatch(f"{what}: expected the raw httpx.Response (no Content-Type), got {value!r}")


def no_content_type(response, what):
    # The runtime relays the app's Content-Type; absent and empty are equivalent (spec §1.2).
    value = response.headers.get("content-type")
    if value not in (None, ""):
        raise Mismatch(f"{what}: expected no Content-Type, got {value!r}")


async def check(name, coro_fn):
    global passed
    try:
        await coro_fn()
    except Exception as err:  # any failure of a check is a test failure, reported once
        detail = str(err) if isinstance(err, Mismatch) else traceback.format_exc()
        print(f"FAIL {name}: {detail}", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok {name}", flush=True)


async def sdk(service, tag, protocol=None):
    async def sidecar_protocol():
        equal(await kar.invoke(service, "protocol", {"method": "GET"}), protocol, "reply")

    if protocol:
        await check(f"sidecar reaches {service} over HTTP/{protocol}", sidecar_protocol)

    async def call_hello_json():
        equal(await kar.call(service, "helloJson", json.dumps({"name": "X"})),
              {"greetings": "Hello X"}, "reply")

    async def call_incr():
        equal(await kar.call(service, "incr", "41"), 42, "reply")

    async def call_404_raises():
        try:
            reply = await kar.call(service, "no/such/route", "{}")
        except httpx.HTTPStatusError as err:
            equal(err.response.status_code, 404, "status of the raised error")
            return
        raise Mismatch(f"call of a missing route must raise, got {reply!r}")

    async def tell_record():
        equal(await kar.tell(service, "record/told-py", json.dumps({"v": "py"})), "OK", "reply")
        equal(await kar.invoke(service, "recorded/told-py", {"method": "GET"}),
              '{"v": "py"}', "recorded body")

    async def async_call_incr():
        equal(await kar.async_call(service, "incr", "1"), 2, "awaited reply")

    async def async_call_hello_json():
        equal(await kar.async_call(service, "helloJson", json.dumps({"name": "Y"})),
              {"greetings": "Hello Y"}, "awaited reply")

    async def invoke_whoami():
        equal(await kar.invoke(service, "whoami", {"method": "GET"}), tag, "reply")

    async def invoke_hello_text():
        equal(await kar.invoke(service, "helloText", {"method": "POST", "body": "Z"}),
              "Hello Z", "reply")

    async def invoke_get_item():
        equal(await kar.invoke(service, "item/7", {"method": "GET"}),
              {"id": "7", "method": "GET"}, "reply")

    async def invoke_head_item():
        reply = await kar.invoke(service, "item/7", {"method": "HEAD"})
        is_response(reply, "reply")
        equal(reply.status_code, 200, "status")
        equal(reply.content, b"", "body")

    async def invoke_put_item():
        equal(await kar.invoke(service, "item/8", {"method": "PUT", "body": "payload"}),
              {"id": "8", "method": "PUT", "body": "payload"}, "reply")

    async def invoke_delete_item():
        reply = await kar.invoke(service, "item/9", {"method": "DELETE"})
        is_response(reply, "reply")
        equal(reply.status_code, 204, "status")
        equal(reply.content, b"", "body")
        no_content_type(reply, "Content-Type")

    async def invoke_raw():
        reply = await kar.invoke(service, "raw", {"method": "POST", "body": "abc"})
        is_response(reply, "reply")
        equal(reply.status_code, 200, "status")
        equal(reply.content, b"raw:abc", "body")

    async def invoke_empty():
        reply = await kar.invoke(service, "empty", {"method": "POST"})
        is_response(reply, "reply")
        equal(reply.status_code, 200, "status")
        equal(reply.content, b"", "body")

    async def invoke_echo():
        body = 'h\u00e9llo \u2713 {"not":"parsed"}'
        reply = await kar.invoke(service, "echo", {
            "method": "POST", "body": body.encode(),
            "headers": {"Content-Type": "application/x-kar-test"}})
        is_response(reply, "reply (other Content-Type)")
        equal(reply.headers.get("content-type"), "application/x-kar-test", "Content-Type")
        equal(reply.text, body, "body")

    async def invoke_status_404():
        try:
            reply = await kar.invoke(service, "status/404", {"method": "GET"})
        except httpx.HTTPStatusError as err:
            equal(err.response.status_code, 404, "status")
            equal(err.response.text, "status 404", "body")
            return
        raise Mismatch(f"a 404 reply must raise, got {reply!r}")

    async def invoke_query():
        equal(await kar.invoke(service, "query?a=1&b=two", {"method": "GET"}),
              {"query": "a=1&b=two"}, "reply")

    await check("call helloJson", call_hello_json)
    await check("call incr", call_incr)
    await check("call of a route answering 404 raises", call_404_raises)
    await check("tell record", tell_record)
    await check("async_call incr", async_call_incr)
    await check("async_call helloJson", async_call_hello_json)
    await check("invoke GET whoami", invoke_whoami)
    await check("invoke POST helloText", invoke_hello_text)
    await check("invoke GET item", invoke_get_item)
    await check("invoke HEAD item", invoke_head_item)
    await check("invoke PUT item", invoke_put_item)
    await check("invoke DELETE item (204)", invoke_delete_item)
    await check("invoke POST raw (reply without Content-Type)", invoke_raw)
    await check("invoke POST empty (empty reply)", invoke_empty)
    await check("invoke POST echo (custom Content-Type, UTF-8 body)", invoke_echo)
    await check("invoke GET status/404 is relayed", invoke_status_404)
    await check("invoke GET query string is forwarded", invoke_query)


async def whoami(service, tag):
    async def run():
        equal(await kar.invoke(service, "whoami", {"method": "GET"}), tag, "reply")

    await check(f"whoami is {tag}", run)


async def main(argv):
    if len(argv) < 3:
        print("FAIL usage: client.py SCENARIO SERVICE ARGS...", flush=True)
        sys.exit(2)
    scenario, service, args = argv[1], argv[2], argv[3:]
    if scenario == "sdk":
        await sdk(service, *args[:2])
    elif scenario == "whoami":
        await whoami(service, args[0])
    else:
        print(f"FAIL unknown scenario {scenario!r}", flush=True)
        sys.exit(2)
    print(f"all {passed} checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
