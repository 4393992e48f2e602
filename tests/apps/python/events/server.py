"""A KAR actor server for the event tests, written with the published Python SDK
(kar 1.3.5), served by hypercorn (HTTP/1.1 and h2c).

Run it under `kar run -h2c -actors PySub ... -- <venv>/bin/python events/server.py`.

PySub.on_event(event) receives one structured-mode CloudEvent (parsed JSON) and prints
`py <id> got <event.data.seq>`: tests wait for these lines.
"""

import asyncio
import os

import kar
from hypercorn.asyncio import serve
from hypercorn.config import Config


class PySub(kar.KarActor):
    def on_event(self, event):
        print(f"py {self.id} got {event['data']['seq']}", flush=True)


app = kar.actor_runtime([PySub])

if __name__ == "__main__":
    config = Config()
    host = os.environ.get("KAR_APP_HOST", "127.0.0.1")
    port = os.environ["KAR_APP_PORT"]
    config.bind = [f"{host}:{port}"]
    print(f"event server listening on {host}:{port}", flush=True)
    asyncio.run(serve(app, config))
