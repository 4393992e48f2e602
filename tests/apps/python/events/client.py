"""Event client for the integration tests, written with the published Python SDK
(kar 1.3.5). Run it under `kar run -app APP -- <venv>/bin/python events/client.py TOPIC`;
the actor type PySub is served by ./server.py (its application may differ from the
publisher's: topics are global).

Subscribes PySub 1 to TOPIC (method on_event) with events_create_subscription and checks
the shapes events_get_subscription returns. Prints "FAIL ..." and exits 1 on a mismatch.
"""

import asyncio
import sys

import kar


def equal(actual, expected, what):
    if actual != expected or type(actual) is not type(expected):
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


async def main(topic):
    a = kar.actor_proxy("PySub", "1")
    await kar.events_create_subscription(a, "on_event", topic)
    one = await kar.events_get_subscription(a, topic)
    equal(one["actor"], {"Type": "PySub", "ID": "1"}, "actor")
    equal(one["id"], topic, "id")
    equal(one["path"], "/on_event", "path")
    equal(one["topic"], topic, "topic")
    equal(one["group"], "", "group")
    equal(one["oldestoffset"], False, "oldestoffset")
    equal("contenttype" in one, False, "contenttype omitted")
    equal([s["id"] for s in await kar.events_get_subscription(a)], [topic], "get all")
    # Subscribing again replaces it (200 OK).
    equal(await kar.events_create_subscription(a, "on_event", topic), "OK", "replace")
    print(f"python subscribed to {topic}", flush=True)


try:
    asyncio.run(main(sys.argv[1]))
except Exception as e:  # noqa: BLE001 - any failure is reported the same way
    print(f"FAIL {e!r}")
    sys.exit(1)
