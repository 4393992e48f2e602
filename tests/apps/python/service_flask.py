"""A KAR service for the integration tests, served by Flask (HTTP/1.1 only).

Run it under `kar run -service NAME ... -- <venv>/bin/python service_flask.py`.
Same routes as ../js/service.js (see the table there); /whoami answers $GREETER_TAG or
"python".
"""

import logging
import os
import threading

from flask import Flask, Response, jsonify, request

tag = os.environ.get("GREETER_TAG", "python")
app = Flask(__name__)


def text(body, status=200):
    return Response(body, status=status, mimetype="text/plain")


def without_content_type(body=b"", status=200):
    resp = Response(body, status=status)
    # Flask always sets a default Content-Type; these routes test replies without one.
    del resp.headers["Content-Type"]
    return resp


@app.post("/helloJson")
def hello_json():
    return jsonify(greetings=f"Hello {request.get_json(force=True)['name']}")


@app.post("/helloText")
def hello_text():
    return text(f"Hello {request.get_data(as_text=True)}")


@app.post("/incr")
def incr():
    return jsonify(request.get_json(force=True) + 1)


@app.get("/whoami")
def whoami():
    return text(tag)


@app.get("/protocol")
def protocol():
    return text(request.environ["SERVER_PROTOCOL"].removeprefix("HTTP/"))


@app.route("/item/<item>", methods=["GET", "HEAD"])
def get_item(item):
    if request.method == "HEAD":
        return without_content_type()
    return jsonify(id=item, method="GET")


@app.put("/item/<item>")
def put_item(item):
    return jsonify(id=item, method="PUT", body=request.get_data(as_text=True)), 201


@app.delete("/item/<item>")
def delete_item(item):
    return without_content_type(status=204)


@app.post("/echo")
def echo():
    if request.content_type:
        return Response(request.get_data(), content_type=request.content_type)
    return without_content_type(request.get_data())


@app.post("/raw")
def raw():
    return without_content_type(b"raw:" + request.get_data())


@app.post("/empty")
def empty():
    return without_content_type()


@app.get("/status/<int:code>")
def status(code):
    return text(f"status {code}", status=code)


@app.get("/query")
def query():
    return jsonify(query=request.query_string.decode())


# Tells leave no reply: they record what they got, and callers wait for it here.
recorded = {}
recorded_changed = threading.Condition()


@app.post("/record/<key>")
def record(key):
    with recorded_changed:
        recorded[key] = request.get_data(as_text=True)
        recorded_changed.notify_all()
    return text("recorded")


@app.get("/recorded")
def recorded_keys():
    with recorded_changed:
        return jsonify(list(recorded))


@app.get("/recorded/<key>")
def recorded_value(key):
    timeout = int(request.args.get("timeout_ms", "20000")) / 1000
    with recorded_changed:
        if recorded_changed.wait_for(lambda: key in recorded, timeout=timeout):
            return text(recorded[key])
    return text("not recorded", status=404)


if __name__ == "__main__":
    # One line per request on stderr would drown the test logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    host = os.environ.get("KAR_APP_HOST", "127.0.0.1")
    port = int(os.environ["KAR_APP_PORT"])
    print(f"service {tag} listening on {host}:{port} (Flask, HTTP/1.1)", flush=True)
    app.run(host=host, port=port, threaded=True)
