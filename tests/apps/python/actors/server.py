"""A KAR actor server for the integration tests, written with the published Python SDK
(kar 1.3.5): `actor_runtime` (FastAPI) served by hypercorn (HTTP/1.1 and h2c).

Run it under `kar run -h2c -actors PyCounter,PyOther ... -- <venv>/bin/python actors/server.py`.

The methods mirror ../../js/actors/server.js (same names, same results) so the clients
exercise both languages with one list of checks. The SDK declares actor ids as `int`:
ids of these types must be decimal integers.

Prints `activated T/I (activation N)` and `deactivated T/I` lines: tests wait for them.
"""

import asyncio
import os
import time

import httpx
import kar
from hypercorn.asyncio import serve
from hypercorn.config import Config


def say(line):
    print(line, flush=True)


async def count_activation(actor):
    # actor_state_get answers the raw (empty) httpx.Response for an absent key.
    previous = await kar.actor_state_get(actor, "activations")
    actor.activations = (previous if isinstance(previous, int) else 0) + 1
    await kar.actor_state_set(actor, "activations", actor.activations)
    say(f"activated {actor.type}/{actor.id} (activation {actor.activations})")


class PyCounter(kar.KarActor):
    def __init__(self):
        super().__init__()
        self.activations = 0
        self.memo = None

    async def activate(self):
        await count_activation(self)

    # The SDK calls deactivate without awaiting it, after deleting `self.session`.
    def deactivate(self):
        say(f"deactivated {self.type}/{self.id}")

    def incr(self, v):
        return v + 1

    def add(self, a, b):
        return a + b

    def echo(self, x):
        return x

    def nothing(self):
        return None

    def whoami(self):
        return f"{self.type}/{self.id}"

    def activationCount(self):
        return self.activations

    def setMemo(self, x):
        self.memo = x
        return "ok"

    def getMemo(self):
        return "none" if self.memo is None else self.memo

    async def setField(self, key, value):
        await kar.actor_state_set(self, key, value)
        return "ok"

    async def getField(self, key):
        value = await kar.actor_state_get(self, key)
        return "absent" if isinstance(value, httpx.Response) else value

    async def record(self, key, value):
        await kar.actor_state_set(self, key, value)
        say(f"recorded {self.type}/{self.id} {key}")

    def fail(self, message):
        raise ValueError(message)

    def chain(self, v, n):
        if n == 0:
            return v
        return kar.actor_encode_tail_call(self, "chain", v + 1, n - 1)

    def chainRecord(self, key, v, n):
        if n == 0:
            return kar.actor_encode_tail_call(self, "record", key, v)
        return kar.actor_encode_tail_call(self, "chainRecord", key, v + 1, n - 1)

    def incrReleasing(self, v):
        return kar.actor_encode_tail_call_releasing_lock(self, "incr", v)

    def tailToActor(self, actor_type, actor_id, v):
        return kar.actor_encode_tail_call(kar.actor_proxy(actor_type, actor_id), "incr", v)

    def tailToService(self, service, v):
        # The Python SDK has no encoder for a tail call to a service: this is the JS
        # SDK's `tailCall(service, path, body)` envelope.
        return {
            "tailCall": True,
            "value": {"serviceName": service, "path": "/incr", "payload": str(v), "method": "POST"},
        }

    async def ping(self, other_type, other_id, tag):
        return await kar.actor_call(self, kar.actor_proxy(other_type, other_id), "pong",
                                    self.type, self.id, tag)

    async def pong(self, caller_type, caller_id, tag):
        return await kar.actor_call(self, kar.actor_proxy(caller_type, caller_id), "reenter",
                                    f"{tag}>{self.type}")

    def reenter(self, tag):
        return f"{tag}>{self.type}/{self.id}"

    async def selfRootCall(self):
        started = time.monotonic()
        try:
            value = await kar.actor_root_call(self, "incr", 1)
            return {"ok": True, "value": value, "ms": int((time.monotonic() - started) * 1000)}
        except httpx.HTTPStatusError as err:
            return {"ok": False, "status": err.response.status_code, "message": err.response.text,
                    "ms": int((time.monotonic() - started) * 1000)}


class PyOther(kar.KarActor):
    async def activate(self):
        await count_activation(self)

    def incr(self, v):
        return {"by": f"{self.type}/{self.id}", "v": v + 1}


app = kar.actor_runtime([PyCounter, PyOther])

if __name__ == "__main__":
    config = Config()
    host = os.environ.get("KAR_APP_HOST", "127.0.0.1")
    port = int(os.environ["KAR_APP_PORT"])
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    say(f"actor server listening on {host}:{port} (hypercorn, HTTP/1.1 + h2c)")
    asyncio.run(serve(app, config))
