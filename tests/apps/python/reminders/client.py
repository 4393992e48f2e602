"""Reminder client for the integration tests, written with the published Python SDK
(kar 1.3.5). Run it under `kar run -app APP -- <venv>/bin/python reminders/client.py ID`;
the actor type JsTimer is served by ../../js/reminders/server.js.

Checks what actor_schedule_reminder, actor_get_reminder and actor_cancel_reminder return
(spec §6.3). The reminder is far in the future: the SDK double-encodes `data` (spec
§8.9), so only the shapes are checked. Prints "FAIL ..." and exits 1 on a mismatch.
"""

import asyncio
import sys

import kar


def equal(actual, expected, what):
    if actual != expected or type(actual) is not type(expected):
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


async def main(actor_id):
    a = kar.actor_proxy("JsTimer", actor_id)
    options = {"id": "py", "target_time": "2999-01-02T03:04:05.25+01:00", "period": "1h"}
    equal(await kar.actor_schedule_reminder(a, "tick", options, "x", 1), "", "schedule new")
    equal(await kar.actor_schedule_reminder(a, "tick", options, "x", 1), "OK", "schedule again")
    one = await kar.actor_get_reminder(a, "py")
    equal(one["Actor"], {"ID": actor_id, "Type": "JsTimer"}, "Actor")
    equal(one["id"], "py", "id")
    equal(one["path"], "/tick", "path")
    equal(one["targetTime"], "2999-01-02T03:04:05.25+01:00", "targetTime")
    equal(one["period"], 3600 * 10**9, "period")
    equal(type(one["encodedData"]), str, "encodedData")
    equal([r["id"] for r in await kar.actor_get_reminder(a)], ["py"], "get all")
    equal(await kar.actor_get_reminder(a, "nope"), None, "get absent")
    equal(await kar.actor_cancel_reminder(a, "py"), "1", "cancel one")
    equal(await kar.actor_cancel_reminder(a, "py"), "0", "cancel absent")
    equal(await kar.actor_cancel_reminder(a), "0", "cancel all")
    print("python reminders ok")


try:
    asyncio.run(main(sys.argv[1]))
except Exception as e:  # noqa: BLE001 - any failure is reported the same way
    print(f"FAIL {e!r}")
    sys.exit(1)
