"""Producer of the Kafka tests (kafka-python): `produce.py BROKER TOPIC KIND ARGS...`.

  seq FROM TO PARTITIONS [PACE]
                           JSON records {"p": p, "seq": n} for n in FROM..TO, record n
                           to partition n % PARTITIONS (p = that partition), PACE
                           seconds apart (default 0)
  timed COUNT PACE         records {"seq": n, "t": <ms since the epoch at sending>},
                           PACE seconds apart, each flushed (bench/kafka.py)
  cloudevents              one structured-mode CloudEvent (content type
                           application/cloudevents+json) then one binary-mode one
                           (ce_* headers, the data as the value), as Camel-K's Kafka
                           sinks produce them, then a record that is not JSON,
                           then {"mode": "after"}
Prints `produced <count>` once every record was acknowledged.
"""

import json
import sys
import time

from kafka import KafkaProducer

broker, topic, kind = sys.argv[1:4]
producer = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
count = 0
if kind == "seq":
    start, end, partitions = (int(a) for a in sys.argv[4:7])
    pace = float(sys.argv[7]) if len(sys.argv) > 7 else 0
    for n in range(start, end + 1):
        if pace:
            time.sleep(pace)
        p = n % partitions
        producer.send(topic, json.dumps({"p": p, "seq": n}).encode(), partition=p)
        count += 1
elif kind == "timed":
    total, pace = int(sys.argv[4]), float(sys.argv[5])
    for n in range(total):
        producer.send(topic, json.dumps({"seq": n, "t": int(time.time() * 1000)}).encode())
        if pace:
            producer.flush()
            time.sleep(pace)
    count = total
elif kind == "cloudevents":
    structured = {
        "specversion": "1.0",
        "type": "kar.test.structured",
        "source": "produce.py",
        "id": "ce-1",
        "datacontenttype": "application/json",
        "data": {"mode": "structured"},
    }
    producer.send(
        topic,
        json.dumps(structured).encode(),
        headers=[("content-type", b"application/cloudevents+json")],
    )
    producer.send(
        topic,
        json.dumps({"mode": "binary"}).encode(),
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_type", b"kar.test.binary"),
            ("ce_source", b"produce.py"),
            ("ce_id", b"ce-2"),
            ("content-type", b"application/json"),
        ],
    )
    producer.send(topic, b"not json {")
    producer.send(topic, json.dumps({"mode": "after"}).encode())
    count = 4
else:
    raise SystemExit(f"unknown kind {kind}")
producer.flush()
producer.close()
print(f"produced {count}", flush=True)
