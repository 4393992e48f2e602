"""A KAR actor client for the integration tests, written with the published Python SDK
(kar 1.3.5). Run it under `kar run -app APP -- <venv>/bin/python actors/client.py SCENARIO ARGS...`.

The actors are served by ./server.py (PyCounter, PyOther) and ../../js/actors/server.js
(JsCounter, JsOther); ids of Py* types are integers.

Scenarios (see ../../js/actors/client.js, which checks the same things with the JS SDK):
  invocations ID SERVICE   call, root call, async call, re-entrancy, errors, unknown
                           methods, tail calls, removal
  state ID                 every state and submap function of the SDK and its result
  deact-before TYPE ID     state and an in-memory field set, first activation
  deact-after TYPE ID      after a deactivation: state kept, memo gone, second activation
  deadlock TYPE ID         a method's root call to its own instance fails with the busy timeout

Prints one line per check; on a mismatch prints "FAIL <check>: ..." and exits 1.
"""

import asyncio
import contextlib
import io
import sys
import time
import traceback

import httpx
import kar

passed = 0

TYPES = ["JsCounter", "PyCounter"]


class Mismatch(Exception):
    pass


def equal(actual, expected, what):
    if actual != expected or type(actual) is not type(expected):
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


def includes(text, part, what):
    if not isinstance(text, str) or part not in text:
        raise Mismatch(f"{what}: expected a string containing {part!r}, got {text!r}")


def empty_response(value, status, what):
    """The SDK answers the raw httpx.Response for replies without a Content-Type."""
    if not isinstance(value, httpx.Response):
        raise Mismatch(f"{what}: expected the raw httpx.Response, got {value!r}")
    equal((value.status_code, value.content), (status, b""), f"{what} (status, body)")


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


async def eventually(probe, expected, what, timeout=20.0):
    """Waits until `await probe()` answers `expected` (state written by a removal shows up
    some time after the request was accepted)."""
    deadline = time.monotonic() + timeout
    while True:
        last = await probe()
        if last == expected:
            return
        if time.monotonic() > deadline:
            raise Mismatch(f"{what}: still {last!r} after {timeout} s, expected {expected!r}")
        await asyncio.sleep(0.02)


async def status_error(coro, what):
    """Awaits a call that must raise httpx.HTTPStatusError; answers its response."""
    try:
        value = await coro
    except httpx.HTTPStatusError as err:
        return err.response
    raise Mismatch(f"{what}: expected an HTTPStatusError, got {value!r}")


def ident(type_, n):
    # Python actors take integer ids; the JS ones get the same digits as a string.
    return n if type_.startswith("Py") else str(n)


async def invocations(first_id, service):
    counter = iter(range(int(first_id), int(first_id) + 1000))

    def fresh(type_):
        return kar.actor_proxy(type_, ident(type_, next(counter)))

    for type_ in TYPES:
        a = fresh(type_)

        async def calls():
            equal(await kar.actor_call(a, "incr", 41), 42, "incr")
            equal(await kar.actor_call(a, "add", 2, 3), 5, "add")
            value = {"s": "h\u00e9llo", "n": [1, 2.5, None], "t": True, "o": {"k": "v"}}
            equal(await kar.actor_call(a, "echo", value), value, "echo")
            equal(await kar.actor_call(a, "nothing"), "", "a method returning nothing (204)")
            equal(await kar.actor_call(a, "whoami"), f"{type_}/{a.id}", "whoami")
            equal(await kar.actor_call(a, "activationCount"), 1, "activations")

        async def root_call():
            equal(await kar.actor_root_call(a, "incr", 1), 2, "incr")

        async def async_call():
            equal(await kar.actor_async_call(a, "add", 20, 22), 42, "awaited reply")
            equal(await kar.actor_async_call(a, "nothing"), "", "awaited reply of nothing (204)")

        await check(f"{type_}: actor_call", calls)
        await check(f"{type_}: actor_root_call", root_call)
        await check(f"{type_}: actor_async_call", async_call)

        for other in TYPES:
            async def reentrancy(other=other):
                b = fresh(other)
                equal(await kar.actor_call(a, "ping", other, b.id, "py"),
                      f"py>{other}>{type_}/{a.id}", "reply")

            await check(f"{type_}: re-entrancy {type_} -> {other} -> {type_}", reentrancy)

        async def unknown_method():
            response = await status_error(kar.actor_call(a, "nosuch", 1), "unknown method")
            equal(response.status_code, 404, "status")
            equal(response.text, f"no nosuch in actor with type {type_} and id {a.id}", "body")

        async def chain():
            equal(await kar.actor_call(a, "chain", 5, 10), 15, "chain(5, 10)")
            equal(await kar.actor_async_call(a, "chain", 1, 10), 11, "awaited chain(1, 10)")
            equal(await kar.actor_call(a, "incrReleasing", 7), 8, "tail call releasing the lock")

        await check(f"{type_}: unknown method is relayed as 404", unknown_method)
        await check(f"{type_}: self tail calls (chain of 10)", chain)

        for target in ["JsOther", "PyOther"]:
            async def tail_to_actor(target=target):
                b = fresh(target)
                equal(await kar.actor_call(a, "tailToActor", target, b.id, 41),
                      {"by": f"{target}/{b.id}", "v": 42}, "reply")

            await check(f"{type_}: tail call to {target}", tail_to_actor)

        async def tail_to_service():
            equal(await kar.actor_call(a, "tailToService", service, 41), 42, "reply")

        async def removal():
            r = fresh(type_)
            equal(await kar.actor_call(r, "setField", "doomed", "yes"), "ok", "setField")
            equal(await kar.actor_state_get_all(r), {"activations": 1, "doomed": "yes"},
                  "state before removal")
            equal(await kar.actor_remove(r), "OK", "remove")
            await eventually(lambda: kar.actor_state_get_all(r), {}, "state after removal")
            equal(await kar.actor_call(r, "getField", "doomed"), "absent", "state of the new instance")
            equal(await kar.actor_call(r, "activationCount"), 1, "activations of the new instance")

        await check(f"{type_}: tail call to service {service}", tail_to_service)
        await check(f"{type_}: removal", removal)

    async def kwargs():
        a = fresh("PyCounter")
        equal(await kar.actor_call(a, "add", 2, b=3), 5, "add(2, b=3)")
        equal(await kar.actor_call(a, "add", a=4, b=5), 9, "add(a=4, b=5)")

    async def python_method_raises():
        # The Python SDK answers 200 {"error":true,"stack":...}; the calling SDK prints the
        # stack and returns it.
        a = fresh("PyCounter")
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            stack = await kar.actor_call(a, "fail", "boom")
            awaited = await kar.actor_async_call(a, "fail", "async boom")
        includes(stack, "Traceback", "returned stack")
        includes(stack, "ValueError: boom", "returned stack")
        includes(awaited, "ValueError: async boom", "awaited stack")
        includes(stderr.getvalue(), "ValueError: boom", "printed stack")

    async def js_method_raises():
        # kar-sdk 1.3.10 turns exceptions of methods into express's 404 HTML page.
        a = fresh("JsCounter")
        response = await status_error(kar.actor_call(a, "fail", "boom"), "failing JS method")
        equal(response.status_code, 404, "status")
        includes(response.text, f"Cannot POST /kar/impl/v1/actor/JsCounter/{a.id}/fail", "body")

    async def failed_activation():
        # The Python SDK declares ids as int: FastAPI answers 422 to the activation, which
        # the runtime relays as the call's result (and retries on the next call).
        a = kar.actor_proxy("PyCounter", "not-an-int")
        for _ in range(2):
            response = await status_error(kar.actor_call(a, "incr", 1), "call")
            equal(response.status_code, 422, "status")
            includes(response.text, '"loc":["path","id"]', "body")

    await check("PyCounter: keyword arguments", kwargs)
    await check("PyCounter: a failed activation (422) is the call result", failed_activation)
    await check("PyCounter: a method that raises returns the stack", python_method_raises)
    await check("JsCounter: a method that throws is an express 404", js_method_raises)


async def state(first_id):
    n = int(first_id)
    for type_ in TYPES:
        a = kar.actor_proxy(type_, ident(type_, n))
        n += 1
        obj = {"x": [1, "two", None], "y": {"z": True}, "w": "h\u00e9llo \u2713"}

        async def flat():
            empty_response(await kar.actor_state_get(a, "a"), 200, "get of an absent key")
            empty_response(await kar.actor_state_set(a, "a", 1), 201, "set (new key)")
            equal(await kar.actor_state_get(a, "a"), 1, "get")
            empty_response(await kar.actor_state_set(a, "a", 2), 204, "set (existing key)")
            equal(await kar.actor_state_get(a, "a"), 2, "get after update")
            empty_response(await kar.actor_state_set(a, "obj", obj), 201, "set object")
            equal(await kar.actor_state_get(a, "obj"), obj, "get object")
            empty_response(await kar.actor_state_set(a, "s", "text"), 201, "set string")
            equal(await kar.actor_state_get(a, "s"), "text", "get string")
            empty_response(await kar.actor_state_set(a, "empty"), 201, "set with the default value")
            equal(await kar.actor_state_get(a, "empty"), {}, "get of the default value")
            equal(await kar.actor_state_contains(a, "a"), True, "contains a present key")
            equal(await kar.actor_state_contains(a, "zz"), False, "contains an absent key")
            equal(await kar.actor_state_get_all(a), {"a": 2, "obj": obj, "s": "text", "empty": {}},
                  "get_all")
            equal(await kar.actor_state_remove(a, "a"), "1", "remove of a present key")
            equal(await kar.actor_state_remove(a, "a"), "0", "remove of an absent key")
            equal(await kar.actor_state_contains(a, "a"), False, "contains after remove")

        async def multiple():
            equal(await kar.actor_state_set_multiple(a, {"m1": 1, "m2": "two", "s": "new"}), 2,
                  "set_multiple (added)")
            equal(await kar.actor_state_get(a, "s"), "new", "get after set_multiple")
            equal(await kar.actor_state_remove_some(a, ["m1", "m2", "missing"]), 2,
                  "remove_some (removed)")
            equal(await kar.actor_state_update(a, {
                "removals": ["s", "missing"],
                "updates": {"u1": 1, "u2": [2]},
                "submapupdates": {"sm": {"k1": "v1"}},
            }), {"removed": 1, "added": 3}, "update")
            equal(await kar.actor_state_update(a, {"field1": 43}), {"removed": 0, "added": 0},
                  "update with unknown members")
            equal(await kar.actor_state_get_all(a),
                  {"obj": obj, "empty": {}, "u1": 1, "u2": [2], "sm": {"k1": "v1"}}, "get_all")

        async def submap():
            empty_response(await kar.actor_state_submap_get(a, "map", "b"), 200,
                           "get of an absent subkey")
            equal(await kar.actor_state_submap_contains(a, "map", "b"), False, "contains b")
            empty_response(await kar.actor_state_submap_set(a, "map", "b", 2), 201, "set b")
            empty_response(await kar.actor_state_submap_set(a, "map", "a", 1), 201, "set a")
            empty_response(await kar.actor_state_submap_set(a, "map", "c", {"three": 3}), 201, "set c")
            empty_response(await kar.actor_state_submap_set(a, "map", "b", 20), 204, "set b again")
            equal(await kar.actor_state_submap_get(a, "map", "b"), 20, "get b")
            equal(await kar.actor_state_submap_contains(a, "map", "a"), True, "contains a")
            equal(await kar.actor_state_submap_keys(a, "map"), ["b", "a", "c"],
                  "keys (insertion order)")
            equal(await kar.actor_state_submap_size(a, "map"), 3, "size")
            equal(await kar.actor_state_submap_get_all(a, "map"), {"a": 1, "b": 20, "c": {"three": 3}},
                  "get_all")
            equal(await kar.actor_state_submap_set_multiple(a, "map", {"d": 4, "a": 10}), 1,
                  "set_multiple (added)")
            equal(await kar.actor_state_submap_keys(a, "map"), ["b", "a", "c", "d"],
                  "keys after set_multiple")
            equal(await kar.actor_state_submap_remove(a, "map", "b"), "1", "remove b")
            equal(await kar.actor_state_submap_remove(a, "map", "b"), "0", "remove b again")
            equal(await kar.actor_state_submap_remove_some(a, "map", ["c", "zz"]), 1,
                  "remove_some (removed)")
            equal(await kar.actor_state_submap_keys(a, "map"), ["a", "d"], "keys after removals")
            equal((await kar.actor_state_get_all(a))["map"], {"a": 10, "d": 4}, "the submap in get_all")
            equal(await kar.actor_state_submap_remove_all(a, "map"), 2, "remove_all")
            equal(await kar.actor_state_submap_size(a, "map"), 0, "size after remove_all")
            equal(await kar.actor_state_submap_keys(a, "map"), [], "keys after remove_all")
            equal(await kar.actor_state_submap_get_all(a, "map"), {}, "get_all after remove_all")
            equal(await kar.actor_state_submap_remove_all(a, "map"), 0,
                  "remove_all of an empty submap")

        async def collisions():
            empty_response(await kar.actor_state_set(a, "dual", "flat"), 201, "set flat dual")
            empty_response(await kar.actor_state_submap_set(a, "dual", "x", 1), 201, "set submap dual")
            equal(await kar.actor_state_submap_keys(a, "dual"), ["x"], "keys of submap dual")
            equal(await kar.actor_state_submap_remove_all(a, "dual"), 1, "remove_all of submap dual")
            equal(await kar.actor_state_get(a, "dual"), "flat", "flat dual after the submap was cleared")
            empty_response(await kar.actor_state_set(a, "with_under_score", 1), 201,
                           "set a key with underscores")
            empty_response(await kar.actor_state_submap_set(a, "sub_map", "k_1", 2), 201,
                           "set a subkey with underscores")
            every = await kar.actor_state_get_all(a)
            equal([every.get("dual"), every.get("with_under_score"), every.get("sub_map")],
                  ["flat", 1, {"k_1": 2}], "get_all")

        async def remove_all():
            equal(await kar.actor_state_remove_all(a), "1", "remove_all")
            equal(await kar.actor_state_remove_all(a), "0", "remove_all without state")
            equal(await kar.actor_state_get_all(a), {}, "get_all after remove_all")

        await check(f"{type_}: state get/set/contains/remove", flat)
        await check(f"{type_}: state set_multiple/remove_some/update", multiple)
        await check(f"{type_}: submap operations", submap)
        await check(f"{type_}: flat keys and submaps do not collide; any character in keys", collisions)
        await check(f"{type_}: remove_all", remove_all)


async def deact_before(type_, n):
    a = kar.actor_proxy(type_, ident(type_, n))

    async def run():
        equal(await kar.actor_call(a, "setField", "kept", {"v": "kept"}), "ok", "setField")
        equal(await kar.actor_call(a, "setMemo", "in memory"), "ok", "setMemo")
        equal(await kar.actor_call(a, "getMemo"), "in memory", "getMemo")
        equal(await kar.actor_call(a, "activationCount"), 1, "activations")

    await check(f"{type_}/{n}: state and memo before the deactivation", run)


async def deact_after(type_, n):
    a = kar.actor_proxy(type_, ident(type_, n))

    async def run():
        equal(await kar.actor_call(a, "getField", "kept"), {"v": "kept"}, "getField")
        equal(await kar.actor_call(a, "getMemo"), "none", "getMemo of the new instance")
        equal(await kar.actor_call(a, "activationCount"), 2, "activations")

    await check(f"{type_}/{n}: state kept across the deactivation", run)


async def deadlock(type_, n):
    a = kar.actor_proxy(type_, ident(type_, n))

    async def run():
        r = await kar.actor_call(a, "selfRootCall")
        print(f"selfRootCall answered {r!r}", flush=True)
        equal(r["ok"], False, "the self call must fail")
        if "status" in r:
            equal(r["status"], 500, "status")
        includes(r["message"],
                 "failed to send message: Possible deadlock: timed out waiting in instance queue",
                 "message")
        if not 1900 <= r["ms"] <= 30000:
            raise Mismatch(f"failed after {r['ms']} ms, expected about 2 s")
        equal(await kar.actor_call(a, "incr", 1), 2, "the instance still answers afterwards")

    await check(f"{type_}/{n}: root call to itself fails with the busy timeout", run)


async def main(argv):
    if len(argv) < 2:
        print("FAIL usage: client.py SCENARIO ARGS...", flush=True)
        sys.exit(2)
    scenario, args = argv[1], argv[2:]
    print(f"client starting: {' '.join(argv[1:])}", flush=True)
    if scenario == "invocations":
        await invocations(args[0], args[1])
    elif scenario == "state":
        await state(args[0])
    elif scenario == "deact-before":
        await deact_before(args[0], int(args[1]))
    elif scenario == "deact-after":
        await deact_after(args[0], int(args[1]))
    elif scenario == "deadlock":
        await deadlock(args[0], int(args[1]))
    else:
        print(f"FAIL unknown scenario {scenario!r}", flush=True)
        sys.exit(2)
    print(f"all {passed} checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
