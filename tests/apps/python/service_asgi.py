"""A KAR service for the integration tests: FastAPI served by hypercorn, which speaks
HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port, so the sidecar can reach it
with `-h2c`.

Run it under `kar run -service NAME [-h2c] ... -- <venv>/bin/python service_asgi.py`.
Same routes as ../js/service.js (see the table there); /whoami answers $GREETER_TAG or
"python-asgi".
"""

import asyncio
import json
import os

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from hypercorn.asyncio import serve
from hypercorn.config import Config

tag = os.environ.get("GREETER_TAG", "python-asgi")
app = FastAPI()


@app.post("/helloJson")
async def hello_json(request: Request):
    body = json.loads(await request.body())
    return JSONResponse({"greetings": f"Hello {body['name']}"})


@app.post("/helloText")
async def hello_text(request: Request):
    return PlainTextResponse(f"Hello {(await request.body()).decode()}")


@app.post("/incr")
async def incr(request: Request):
    return JSONResponse(json.loads(await request.body()) + 1)


@app.get("/whoami")
async def whoami():
    return PlainTextResponse(tag)


@app.get("/protocol")
async def protocol(request: Request):
    return PlainTextResponse(request.scope["http_version"])


@app.get("/item/{item}")
async def get_item(item: str):
    return JSONResponse({"id": item, "method": "GET"})


@app.head("/item/{item}")
async def head_item(item: str):
    # No media type: Starlette then sends no Content-Type header.
    return Response(status_code=200)


@app.put("/item/{item}")
async def put_item(item: str, request: Request):
    body = (await request.body()).decode()
    return JSONResponse({"id": item, "method": "PUT", "body": body}, status_code=201)


@app.delete("/item/{item}")
async def delete_item(item: str):
    return Response(status_code=204)


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type=request.headers.get("content-type"))


@app.post("/raw")
async def raw(request: Request):
    return Response(b"raw:" + await request.body())


@app.post("/empty")
async def empty():
    return Response(status_code=200)


@app.get("/status/{code}")
async def status(code: int):
    return PlainTextResponse(f"status {code}", status_code=code)


@app.get("/query")
async def query(request: Request):
    return JSONResponse({"query": request.url.query})


# Tells leave no reply: they record what they got, and callers wait for it here.
recorded = {}
recorded_changed = asyncio.Condition()


@app.post("/record/{key}")
async def record(key: str, request: Request):
    body = (await request.body()).decode()
    async with recorded_changed:
        recorded[key] = body
        recorded_changed.notify_all()
    return PlainTextResponse("recorded")


@app.get("/recorded")
async def recorded_keys():
    return JSONResponse(list(recorded))


@app.get("/recorded/{key}")
async def recorded_value(key: str, timeout_ms: int = 20000):
    async with recorded_changed:
        try:
            await asyncio.wait_for(
                recorded_changed.wait_for(lambda: key in recorded), timeout_ms / 1000
            )
        except asyncio.TimeoutError:
            return PlainTextResponse("not recorded", status_code=404)
        return PlainTextResponse(recorded[key])


if __name__ == "__main__":
    config = Config()
    host = os.environ.get("KAR_APP_HOST", "127.0.0.1")
    port = int(os.environ["KAR_APP_PORT"])
    config.bind = [f"{host}:{port}"]
    # Quiet access log; errors still go to stderr.
    config.accesslog = None
    print(f"service {tag} listening on {host}:{port} (hypercorn, HTTP/1.1 + h2c)", flush=True)
    asyncio.run(serve(app, config))
