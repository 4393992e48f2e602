"""Consumer of the Kafka tests (kafka-python): `consume.py BROKER TOPIC COUNT`.

Reads the topic from its oldest record (no consumer group) until COUNT records came,
then prints `consumed <values as a JSON list of strings> ids <distinct kar-publish-id
headers>`. Exits 1 if they do not come within 60 s.
"""

import json
import sys

from kafka import KafkaConsumer, TopicPartition

broker, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, group_id=None)
partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
consumer.assign(partitions)
consumer.seek_to_beginning()
values, ids = [], set()
for batch in iter(lambda: consumer.poll(timeout_ms=60_000), None):
    if not batch:
        raise SystemExit(f"only {len(values)} of {count} records within 60 s")
    for records in batch.values():
        for record in records:
            values.append(record.value.decode())
            ids.update(v.decode() for k, v in record.headers if k == "kar-publish-id")
    if len(values) >= count:
        break
print(f"consumed {json.dumps(values)} ids {len(ids)}", flush=True)
