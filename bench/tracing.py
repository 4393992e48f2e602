#!/usr/bin/env python3
"""The latency cost of tracing (README "Traces and metrics"): service calls through a
`kar run` sidecar with traces exported (OTLP/HTTP to a sink in this script that
accepts and discards them) and through one without, side by side in one run.

Both sidecars (apps `trace-on` and `trace-off`, embedded store in a temporary
KAR_HOME) serve the same Node component (tests/apps/js/service.js, `GET /whoami`).
Sequential calls on one keep-alive HTTP/1.1 connection per sidecar, in alternating
batches so that both modes see the same machine load; prints p50/p90/p99 per mode.

Usage: bench/tracing.py [--kar target/release/kar] [--calls 2000] [--batch 100]
(needs tests/apps/js/node_modules: scripts/setup-test-deps.sh). Every process it
starts is stopped at the end.
"""

import argparse
import http.client
import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Sink(http.server.BaseHTTPRequestHandler):
    """Accepts OTLP exports and counts them."""

    exports = 0
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Sink.exports += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sidecar(kar, app, home, env_extra):
    port = free_port()
    env = dict(os.environ, KAR_HOME=home, **env_extra)
    command = [
        kar, "run", "-app", app, "-service", "whoami", "-runtime_port", str(port),
        "-app_port", str(free_port()), "-v", "warning", "--",
        "node", os.path.join(ROOT, "tests/apps/js/service.js"),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if call(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) is not None:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the {app} sidecar did not answer")


def call(conn):
    conn.request("GET", "/kar/v1/service/whoami/call/whoami")
    reply = conn.getresponse()
    reply.read()
    return reply.status if reply.status == 200 else None


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kar", default=os.path.join(ROOT, "target/release/kar"))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"

    processes = []
    with tempfile.TemporaryDirectory() as home:
        try:
            off, off_port = start_sidecar(args.kar, "trace-off", home, {})
            processes.append(off)
            on, on_port = start_sidecar(args.kar, "trace-on", home, {
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_SERVICE_NAME": "bench",
            })
            processes.append(on)
            conns = {
                "off": http.client.HTTPConnection("127.0.0.1", off_port, timeout=30),
                "on": http.client.HTTPConnection("127.0.0.1", on_port, timeout=30),
            }
            times = {"off": [], "on": []}
            for mode in conns:  # warm-up
                for _ in range(args.batch):
                    call(conns[mode])
            while len(times["on"]) < args.calls:
                for mode in ("off", "on"):
                    for _ in range(args.batch):
                        started = time.perf_counter()
                        if call(conns[mode]) is None:
                            raise SystemExit(f"a call with tracing {mode} failed")
                        times[mode].append(time.perf_counter() - started)
            print(f"tracing cost, {args.calls} sequential service calls per mode "
                  f"(kar {args.kar}, embedded store, alternating batches of {args.batch}):")
            print("| tracing | p50 ms | p90 ms | p99 ms |")
            print("|---|---|---|---|")
            for mode in ("off", "on"):
                values = sorted(times[mode])
                row = " | ".join(f"{percentile(values, p) * 1000:.3f}" for p in (50, 90, 99))
                print(f"| {mode} | {row} |")
            print(f"(OTLP exports received by the sink: {Sink.exports})")
        finally:
            for process in processes:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(process.pid, signal.SIGKILL)
            sink.shutdown()


if __name__ == "__main__":
    sys.exit(main())
