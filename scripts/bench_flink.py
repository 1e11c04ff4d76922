#!/usr/bin/env python3
"""Flink SQL kafka -> kafka throughput against one broker.

Runs in the flink venv (scripts/compat-setup.sh: apache-flink 2.0.2 + confluent-kafka), with the
connector jars compat/flink/runner.py finds ($RIVULET_FLINK_CONNECTOR_DIR, ../shared/flink-connector).

  N records of 1 KiB (random bytes) in a 6-partition topic, produced by librdkafka first; then a
  Flink SQL job `INSERT INTO out SELECT v FROM in` ('format' = 'raw', 'scan.bounded.mode' =
  'latest-offset', parallelism 2) into a 6-partition topic created with
  message.timestamp.type=LogAppendTime. Reported: records/s over the job's wall time (submit to
  finished, including the job's start-up), and records/s over the span of the output's append
  times (first to last record the broker appended: the steady state). The output's high
  watermarks must sum to N, else the run is reported INCOMPLETE.
Usage: bench_flink.py --bootstrap HOST:PORT --label NAME [--records 200000] [--parallelism 2]
Prints one line per measurement and a JSON summary line.
"""
import argparse
import json
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "compat", "flink"))
import runner  # noqa: E402  (jar lookup, standard library only)

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

RECORD = os.urandom(1024)
PARTITIONS = 6


def create_topic(admin, topic, config=None):
    fs = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1, config=config or {})])
    for f in fs.values():
        f.result(30)
    time.sleep(0.5)


def produce_bulk(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
                  "enable.idempotence": False})
    errors = []
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                p.produce(topic, RECORD, partition=i % PARTITIONS,
                          on_delivery=lambda err, _m: errors.append(err) if err else None)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    if errors or left:
        raise SystemExit("produce failed: %d errors, %d undelivered (%s)" % (len(errors), left, errors[:3]))
    return time.perf_counter() - start


def high_watermarks(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-flink", "isolation.level": "read_uncommitted"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)]
    finally:
        c.close()


def append_span(bootstrap, topic, hws):
    """(min, max) LogAppendTime of the output: the first and last record of each partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-flink", "enable.auto.commit": False})
    ts = []
    try:
        for p, hw in enumerate(hws):
            for off in ([0, hw - 1] if hw > 0 else []):
                c.assign([TopicPartition(topic, p, off)])
                deadline = time.time() + 20
                while time.time() < deadline:
                    m = c.poll(1)
                    if m is not None and not m.error():
                        ts.append(m.timestamp()[1])
                        break
        return min(ts), max(ts)
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--parallelism", type=int, default=2)
    args = ap.parse_args()
    jars, _ = runner.resolve_jars()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    run = uuid.uuid4().hex[:8]
    src, dst = "bench-flink-in-" + run, "bench-flink-out-" + run
    create_topic(admin, src)
    create_topic(admin, dst, {"message.timestamp.type": "LogAppendTime"})
    secs = produce_bulk(args.bootstrap, src, args.records)
    print("[%s] produced %d x 1 KiB into %d partitions in %.1f s" % (args.label, args.records, PARTITIONS, secs),
          flush=True)

    src_hws = high_watermarks(args.bootstrap, src)   # ListOffsets latest: where the bounded source stops
    if sum(src_hws) != args.records:
        print("[%s] input high watermarks (ListOffsets latest) sum to %d, not %d: %s" % (
            args.label, sum(src_hws), args.records, src_hws), flush=True)

    from pyflink.table import EnvironmentSettings, TableEnvironment
    t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t.get_config().set("pipeline.jars", ";".join("file://" + j for j in jars))
    t.get_config().set("parallelism.default", str(args.parallelism))
    t.execute_sql("CREATE TABLE src (v BYTES) WITH ('connector' = 'kafka', 'topic' = '%s', "
                  "'properties.bootstrap.servers' = '%s', 'scan.startup.mode' = 'earliest-offset', "
                  "'scan.bounded.mode' = 'latest-offset', 'format' = 'raw')" % (src, args.bootstrap))
    t.execute_sql("CREATE TABLE dst (v BYTES) WITH ('connector' = 'kafka', 'topic' = '%s', "
                  "'properties.bootstrap.servers' = '%s', 'format' = 'raw')" % (dst, args.bootstrap))
    start = time.perf_counter()
    t.execute_sql("INSERT INTO dst SELECT v FROM src").wait()
    wall = time.perf_counter() - start
    hws = high_watermarks(args.bootstrap, dst)
    total = sum(hws)
    lo, hi = append_span(args.bootstrap, dst, hws) if total else (0, 0)
    span = max(hi - lo, 1) / 1000.0
    status = "ok" if total == args.records else "INCOMPLETE (%d of %d records in the output)" % (total, args.records)
    print("[%s] Flink SQL kafka->kafka, parallelism %d: %.1f s wall (%.0f records/s, %.1f MiB/s); output appended "
          "over %.1f s (%.0f records/s); %s" % (args.label, args.parallelism, wall, args.records / wall,
                                                args.records / 1024 / wall, span, total / span, status), flush=True)
    print(json.dumps({"label": args.label, "records": args.records, "parallelism": args.parallelism,
                      "wall_s": round(wall, 2), "records_per_s_wall": round(args.records / wall),
                      "append_span_s": round(span, 2), "records_per_s_append_span": round(total / span),
                      "output_records": total, "status": status}), flush=True)
    return 0 if total == args.records else 1


if __name__ == "__main__":
    sys.exit(main())
