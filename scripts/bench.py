#!/usr/bin/env python3
"""Produce and consume throughput with confluent-kafka (librdkafka) against one broker.

1 KiB records to a 6-partition topic, once with acks=1 and once with acks=all, then a consumer
reading everything back from the start (catch-up). Prints one line per phase and a JSON summary.
Usage: bench.py --bootstrap HOST:PORT [--records N] [--label NAME]
"""
import argparse
import json
import os
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

RECORD = os.urandom(1024)


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for f in fs.values():
        f.result(30)
    time.sleep(0.5)


def produce(bootstrap, topic, n, acks):
    errors = []
    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "enable.idempotence": False,
    })

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                p.produce(topic, RECORD, partition=i % 6, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    remaining = p.flush(120)
    elapsed = time.perf_counter() - start
    if errors or remaining:
        raise SystemExit(f"produce acks={acks}: {len(errors)} errors, {remaining} undelivered: {errors[:3]}")
    return elapsed


def consume(bootstrap, topic, n):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "bench-unused",
        "enable.auto.commit": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
    })
    c.assign([TopicPartition(topic, p, 0) for p in range(6)])
    got = 0
    start = time.perf_counter()
    deadline = start + 300
    while got < n and time.perf_counter() < deadline:
        for m in c.consume(10_000, 1.0):
            if m.error() is None:
                got += 1
    elapsed = time.perf_counter() - start
    c.close()
    if got < n:
        raise SystemExit(f"consumed only {got} of {n}")
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--label", default="broker")
    args = ap.parse_args()
    n = args.records
    mb = n * len(RECORD) / 1e6
    summary = {"label": args.label, "records": n}
    for acks in ("1", "all"):
        topic = f"bench-{acks}-{uuid.uuid4().hex[:8]}"
        create_topic(args.bootstrap, topic, 6)
        t = produce(args.bootstrap, topic, n, acks)
        summary[f"produce_acks_{acks}_rps"] = round(n / t)
        summary[f"produce_acks_{acks}_mbps"] = round(mb / t, 1)
        print(f"{args.label}: produce acks={acks}: {n / t:,.0f} records/s, {mb / t:,.1f} MB/s", flush=True)
        if acks == "1":
            t = consume(args.bootstrap, topic, n)
            summary["consume_mbps"] = round(mb / t, 1)
            print(f"{args.label}: consumer catch-up: {n / t:,.0f} records/s, {mb / t:,.1f} MB/s", flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
