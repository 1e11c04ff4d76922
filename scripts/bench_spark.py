#!/usr/bin/env python3
"""Spark against one broker: batch-read throughput and produce -> memory-sink latency.

Runs in the spark venv (scripts/compat-setup.sh: pyspark 4.0.1 + confluent-kafka), with the
connector jars compat/spark/runner.py finds ($RIVULET_SPARK_CONNECTOR_DIR, ../shared/spark-connector).

  read:    1 GiB of 1 KiB records in a 6-partition topic (produced by librdkafka first), then a
           Spark batch read summing length(value) (every record fetched and decoded), twice: the
           first run includes JIT warm-up, the second is reported as well.
  latency: one record every 20 ms into a 1-partition topic, read by a streaming query with a
           0-second processing-time trigger into a memory sink. A record's latency is the end of
           the micro-batch that carried it (progress timestamp + triggerExecution duration, from
           the batch's offset range) minus its CreateTime (set by librdkafka at produce()).
Usage: bench_spark.py --bootstrap HOST:PORT --label NAME [--gib 1.0] [--latency-records 500]
Prints one line per measurement and a JSON summary line.
"""
import argparse
import datetime
import json
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "compat", "spark"))
import runner  # noqa: E402  (jar lookup, standard library only)

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

RECORD = os.urandom(1024)


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})   # kept alive: a destroyed client fails its futures
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
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
                p.produce(topic, RECORD, partition=i % 6,
                          on_delivery=lambda err, _m: errors.append(err) if err else None)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    if errors or left:
        raise SystemExit("produce: %d errors, %d undelivered: %s" % (len(errors), left, errors[:3]))
    return time.perf_counter() - start


def session():
    from pyspark.sql import SparkSession
    jars, packages, _ = runner.resolve_jars()
    b = (SparkSession.builder.master("local[2]").appName("rivulet-bench-spark")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "4g"))
    b = b.config("spark.jars", ",".join(jars)) if jars else b.config("spark.jars.packages", packages)
    s = b.getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    return s


def batch_read(spark, bootstrap, topic, expect_bytes):
    start = time.perf_counter()
    row = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
           .load().selectExpr("count(*) AS n", "sum(length(value)) AS bytes").collect()[0])
    took = time.perf_counter() - start
    # a short read is reported, not fatal: the MB/s then counts only what was read
    short = None if row["bytes"] == expect_bytes else "INCOMPLETE: %s bytes in %s rows, want %d bytes" % (
        row["bytes"], row["n"], expect_bytes)
    return took, row["bytes"] or 0, short


def _ms(iso):
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000


def latency(spark, bootstrap, n):
    topic = "bench-spark-lat-" + uuid.uuid4().hex[:8]
    create_topic(bootstrap, topic, 1)
    df = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
          .option("startingOffsets", "earliest").load())
    name = "lat_" + uuid.uuid4().hex[:8]
    q = (df.selectExpr("offset", "unix_millis(timestamp) AS ts").writeStream.format("memory").queryName(name)
         .trigger(processingTime="0 seconds").start())
    # let the query settle (first micro-batches compile code) before measuring
    deadline = time.time() + 60
    while q.lastProgress is None and time.time() < deadline:
        time.sleep(0.2)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0, "enable.idempotence": False})
    for _ in range(n):
        p.produce(topic, b"x")
        p.poll(0)
        time.sleep(0.02)
    p.flush(30)
    deadline = time.time() + 60
    while spark.table(name).count() < n and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    q.stop()
    ends = []   # (first offset, end offset exclusive, batch end ms)
    for pr in q.recentProgress:
        src = pr["sources"][0]
        if pr["numInputRows"] == 0 or not src.get("endOffset"):
            continue
        start = json.loads(src["startOffset"])[topic]["0"] if src.get("startOffset") else 0
        end = json.loads(src["endOffset"])[topic]["0"]
        ends.append((start, end, _ms(pr["timestamp"]) + pr["durationMs"]["triggerExecution"]))
    lat = []
    for r in spark.table(name).collect():
        for s, e, t_end in ends:
            if s <= r["offset"] < e:
                lat.append(t_end - r["ts"])
                break
    if len(lat) != n:
        raise SystemExit("latency: %d of %d records matched to a micro-batch" % (len(lat), n))
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], len(ends)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--label", default="broker")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--latency-records", type=int, default=500)
    args = ap.parse_args()
    n = int(args.gib * (1 << 30)) // len(RECORD)
    total = n * len(RECORD)
    out = {"label": args.label, "records": n, "bytes": total}

    topic = "bench-spark-read-" + uuid.uuid4().hex[:8]
    create_topic(args.bootstrap, topic, 6)
    t = produce_bulk(args.bootstrap, topic, n)
    print("%s: produced %.2f GiB in %.1f s (librdkafka, %.0f MB/s)" % (args.label, total / (1 << 30), t, total / 1e6 / t),
          flush=True)
    spark = session()
    for run in (1, 2):
        t, got, short = batch_read(spark, args.bootstrap, topic, total)
        out["read_run%d_mbps" % run] = round(got / 1e6 / t, 1)
        if short:
            out["read_run%d_incomplete" % run] = short
        print("%s: spark batch read run %d: %.1f s, %.1f MB/s%s" % (args.label, run, t, got / 1e6 / t,
                                                                  " " + short if short else ""), flush=True)
    p50, p99, batches = latency(spark, args.bootstrap, args.latency_records)
    out.update({"latency_p50_ms": round(p50), "latency_p99_ms": round(p99), "latency_batches": batches})
    print("%s: produce -> memory sink latency (trigger 0 s, %d records, %d micro-batches): p50 %.0f ms, p99 %.0f ms"
          % (args.label, args.latency_records, batches, p50, p99), flush=True)
    spark.stop()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
