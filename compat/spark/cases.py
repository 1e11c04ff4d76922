"""Spark Structured Streaming (pyspark 4.0.1 + spark-sql-kafka-0-10 4.0.1) against the broker.

Run by runner.py in the spark venv: `cases.py --bootstrap H:P --cases a,b,c` starts ONE
SparkSession and runs the named cases in order, printing `START <case>` before each and
`PASS/FAIL/SKIP <case>[: reason]` after (the runner enforces time limits and the allowlist).
`cases.py --list` prints `<case> <timeout seconds>`.

Records are produced and read back with confluent-kafka (librdkafka) wherever Spark is the thing
under test on the other side, so each check compares Spark with an independent client: exact
topic, partition, offset, key (null vs empty), value (null vs empty), timestamp and its type,
headers (order, repeats, null values). Codecs on the wire are checked with a raw Fetch (below):
a client that silently sent uncompressed batches would otherwise pass a "compression" case.
Every case uses fresh topics; streaming queries are stopped after each case.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import CaseFailure, Skip, check, check_eq  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

CASES = []  # (name, fn, timeout)
CHILDREN = {}  # --child NAME: helper Spark applications started by cases
# parametrised case names, also read (as a literal) by runner.py to SKIP them without the venv
CASE_FAMILIES = {"batch_read_compression_": ["none", "gzip", "snappy", "lz4", "zstd"],
                 "batch_write_compression_": ["none", "gzip", "snappy", "lz4", "zstd"]}


def case(name, timeout=60):
    def deco(fn):
        CASES.append((name, fn, timeout))
        return fn
    return deco


class Ctx:
    """What a case gets: the broker, the SparkSession, a scratch directory."""

    def __init__(self, bootstrap, spark, name):
        self.bootstrap = bootstrap
        self.spark = spark
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="rivulet-spark-%s-" % name)
        self._admin = None

    def topic(self, tag=None):
        return harness.unique_topic(tag or self.name)

    def log(self, *a):
        print("[%s]" % self.name, *a, file=sys.stderr, flush=True)

    # --------------------------------------------------------------- Spark readers and writers
    def read(self, **opts):
        r = self.spark.read.format("kafka").option("kafka.bootstrap.servers", self.bootstrap)
        for k, v in opts.items():
            r = r.option(k, v)
        return r.load()

    def read_stream(self, **opts):
        r = self.spark.readStream.format("kafka").option("kafka.bootstrap.servers", self.bootstrap)
        for k, v in opts.items():
            r = r.option(k, v)
        return r.load()

    # --------------------------------------------------------------- admin (confluent-kafka)
    def admin(self):
        # one client per case: futures of a garbage-collected AdminClient fail with _DESTROY
        if self._admin is None:
            from confluent_kafka.admin import AdminClient
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create(self, topic, partitions=1, config=None):
        from confluent_kafka.admin import NewTopic
        fs = self.admin().create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                                  config=config or {})], operation_timeout=15, request_timeout=15)
        fs[topic].result(timeout=20)
        self.wait_partitions(topic, partitions)
        return topic

    def add_partitions(self, topic, total):
        from confluent_kafka.admin import NewPartitions
        fs = self.admin().create_partitions([NewPartitions(topic, total)], operation_timeout=15, request_timeout=15)
        fs[topic].result(timeout=20)
        self.wait_partitions(topic, total)

    def wait_partitions(self, topic, partitions, timeout=15):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            t = self.admin().list_topics(topic=topic, timeout=5).topics.get(topic)
            if t is not None and t.error is None and len(t.partitions) == partitions:
                return
            last = t.error if t is not None else "absent"
            time.sleep(0.1)
        raise CaseFailure("topic %s never showed %d partitions (last: %s)" % (topic, partitions, last))

    # --------------------------------------------------------------- produce / consume
    def produce(self, topic, records, conf=None):
        """records: dicts with value, key, headers, timestamp (ms), partition. Returns the stored
        records as Rec tuples, taking partition/offset/timestamp from the delivery reports."""
        from confluent_kafka import Producer
        pconf = {"bootstrap.servers": self.bootstrap, "enable.idempotence": False, "linger.ms": 20,
                 "message.timeout.ms": 30000}
        pconf.update(conf or {})
        p = Producer(pconf)
        out = [None] * len(records)
        errors = []

        def cb(i):
            def _cb(err, msg):
                if err is not None:
                    errors.append("record %d: %s" % (i, err))
                    return
                tstype, ts = msg.timestamp()
                # headers from the input: librdkafka's delivery reports do not always carry them
                out[i] = Rec(topic, msg.partition(), msg.offset(), msg.key(), msg.value(), ts,
                             1 if tstype == 2 else 0, _norm_headers(records[i].get("headers")))
            return _cb
        for i, r in enumerate(records):
            kw = {"value": r.get("value"), "key": r.get("key"), "on_delivery": cb(i)}
            if r.get("headers") is not None:
                kw["headers"] = r["headers"]
            if r.get("timestamp") is not None:
                kw["timestamp"] = r["timestamp"]
            if r.get("partition") is not None:
                kw["partition"] = r["partition"]
            p.produce(topic, **kw)
            p.poll(0)
        left = p.flush(30)
        check(left == 0, "%d records not delivered within 30 s" % left)
        check(not errors, "delivery errors: %s" % errors[:3])
        return out

    def consume_all(self, topic, timeout=20):
        """Every record of every partition up to its high watermark, read with librdkafka."""
        from confluent_kafka import Consumer, TopicPartition
        md = self.admin().list_topics(topic=topic, timeout=10).topics[topic]
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "spark-compat-check",
                      "enable.auto.commit": False, "enable.auto.offset.store": False,
                      "enable.partition.eof": False, "isolation.level": "read_uncommitted"})
        try:
            ends = {}
            for p in md.partitions:
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends[p] = (lo, hi)
            want = {p: hi for p, (lo, hi) in ends.items() if hi > lo}
            if not want:
                return []
            c.assign([TopicPartition(topic, p, ends[p][0]) for p in want])
            got = []
            pos = {p: ends[p][0] for p in want}
            deadline = time.time() + timeout
            while any(pos[p] < want[p] for p in want) and time.time() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    raise CaseFailure("consume %s: %s" % (topic, m.error()))
                tstype, ts = m.timestamp()
                got.append(Rec(topic, m.partition(), m.offset(), m.key(), m.value(), ts,
                               1 if tstype == 2 else 0, _norm_headers(m.headers())))
                pos[m.partition()] = m.offset() + 1
            check(all(pos[p] >= want[p] for p in want),
                  "librdkafka read of %s stopped at %s, high watermarks %s" % (topic, pos, want))
            return sorted(got, key=lambda r: (r.partition, r.offset))
        finally:
            c.close()

    def end_offsets(self, topic, partitions):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "spark-compat-check"})
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)]
        finally:
            c.close()

    def cleanup(self):
        for q in self.spark.streams.active:
            try:
                q.stop()
            except Exception:  # noqa: BLE001 - stopping a failed query may rethrow its error
                pass
        # a task still blocked in a Kafka poll (e.g. against a broker a case killed) would hold one
        # of the two executor slots and starve the next case's queries
        sc = self.spark.sparkContext
        sc.cancelAllJobs()
        deadline = time.time() + 15
        while sc.statusTracker().getActiveJobsIds() and time.time() < deadline:
            time.sleep(0.2)
        if sc.statusTracker().getActiveJobsIds():
            self.log("jobs still active after the case: %s" % sc.statusTracker().getActiveJobsIds())
        shutil.rmtree(self.tmp, ignore_errors=True)


class Rec(tuple):
    """(topic, partition, offset, key, value, ts, tstype, headers): one record as stored.
    tstype uses Spark's numbering (0 CreateTime, 1 LogAppendTime); headers is a tuple of
    (key, value-or-None) pairs in order."""

    def __new__(cls, topic, partition, offset, key, value, ts, tstype, headers):
        return tuple.__new__(cls, (topic, partition, offset, _b(key), _b(value), ts, tstype, headers))

    topic = property(lambda s: s[0])
    partition = property(lambda s: s[1])
    offset = property(lambda s: s[2])
    key = property(lambda s: s[3])
    value = property(lambda s: s[4])
    ts = property(lambda s: s[5])
    tstype = property(lambda s: s[6])
    headers = property(lambda s: s[7])

    def without_headers(self):
        return Rec(*self[:7], None)


def _b(v):
    return None if v is None else bytes(v)


def _norm_headers(h):
    if h is None:
        return ()
    return tuple((k, _b(v)) for k, v in h)


SPARK_COLUMNS = ["topic", "partition", "offset", "key", "value", "unix_millis(timestamp) AS ts", "timestampType"]


def spark_recs(df, headers=True):
    """Rows of a Kafka-source DataFrame as Rec tuples, sorted by topic, partition, offset."""
    cols = SPARK_COLUMNS + (["headers"] if headers else [])
    out = []
    for r in df.selectExpr(*cols).collect():
        h = tuple((x["key"], _b(x["value"])) for x in (r["headers"] or [])) if headers else None
        out.append(Rec(r["topic"], r["partition"], r["offset"], r["key"], r["value"], r["ts"], r["timestampType"], h))
    return sorted(out, key=lambda r: (r.topic, r.partition, r.offset))


def check_recs(got, want, what):
    """Exact equality with a readable first difference."""
    got, want = sorted(got, key=repr), sorted(want, key=repr)   # repr: None and bytes do not compare
    if got == want:
        return
    gs, ws = set(got), set(want)
    extra = sorted(gs - ws, key=repr)[:3]
    missing = sorted(ws - gs, key=repr)[:3]
    dups = len(got) - len(gs)
    raise CaseFailure("%s: %d records, want %d; %sunexpected %s; missing %s" % (
        what, len(got), len(want), ("%d duplicates; " % dups) if dups else "", harness._short(extra, 400),
        harness._short(missing, 400)))


def wait_until(fn, timeout, what, query=None, interval=0.25, show=None):
    """Poll fn() until truthy; fail with `what` and the last value. A streaming query that died
    fails the case at once with its exception."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if query is not None and not query.isActive:
            raise CaseFailure("query terminated while waiting for %s: %s" % (what, _qerr(query)))
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise CaseFailure("timed out after %.0f s waiting for %s (last: %s)" % (
        timeout, what, show() if show else harness._short(last, 300)))


def _qerr(q):
    e = q.exception()
    return "no exception" if e is None else str(e).splitlines()[0][:400]


def now_ms():
    return int(time.time() * 1000)


def base_ts():
    """A fixed, whole-minute CreateTime an hour ago: far from the broker's clock, so a timestamp
    the broker replaced (or lost) shows up."""
    return (now_ms() // 60000) * 60000 - 3600 * 1000


# --------------------------------------------------------------------------------------------
# raw Fetch v4: the codec of every stored batch (attributes & 7), independently of any client

def batch_codecs(bootstrap, topic, partition, timeout=10):
    """[(base_offset, record_count, codec)] for the whole partition, from Fetch v4 responses."""
    host, port = bootstrap.rsplit(":", 1)
    out = []
    offset = 0
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        for corr in range(1, 1000):
            tb = topic.encode()
            client = b"spark-compat-codec"
            body = (struct.pack(">hhih", 1, 4, corr, len(client)) + client +
                    struct.pack(">iiiib", -1, 100, 1, 32 << 20, 0) +
                    struct.pack(">ih", 1, len(tb)) + tb + struct.pack(">iiqi", 1, partition, offset, 32 << 20))
            s.sendall(struct.pack(">i", len(body)) + body)
            buf = _recv_frame(s)
            pos = 4 + 4 + 4  # frame size, correlation id, throttle time
            pos += 4                                            # one topic (the one asked for)
            (tl,) = struct.unpack_from(">h", buf, pos); pos += 2 + tl
            pos += 4                                            # one partition
            _, err, hw, _lso = struct.unpack_from(">ihqq", buf, pos); pos += 22
            if err:
                raise CaseFailure("raw Fetch v4 of %s/%d at %d: error code %d" % (topic, partition, offset, err))
            (na,) = struct.unpack_from(">i", buf, pos); pos += 4
            pos += max(na, 0) * 16
            (rl,) = struct.unpack_from(">i", buf, pos); pos += 4
            recs = buf[pos:pos + max(rl, 0)]
            p = 0
            progressed = False
            while p + 61 <= len(recs):
                base, blen = struct.unpack_from(">qi", recs, p)
                if p + 12 + blen > len(recs):
                    break   # partial batch at the end of the response
                (attrs,) = struct.unpack_from(">h", recs, p + 21)
                (last_delta,) = struct.unpack_from(">i", recs, p + 23)
                (count,) = struct.unpack_from(">i", recs, p + 57)
                if base + last_delta >= offset:
                    out.append((base, count, CODEC_IDS.get(attrs & 7, "codec%d" % (attrs & 7))))
                    offset = base + last_delta + 1
                    progressed = True
                p += 12 + blen
            if offset >= hw or not progressed:
                break
    return out


def _recv_frame(s):
    hdr = b""
    while len(hdr) < 4:
        c = s.recv(4 - len(hdr))
        if not c:
            raise CaseFailure("raw Fetch: connection closed")
        hdr += c
    (n,) = struct.unpack(">i", hdr)
    buf = bytearray()
    while len(buf) < n:
        c = s.recv(min(1 << 20, n - len(buf)))
        if not c:
            raise CaseFailure("raw Fetch: connection closed")
        buf += c
    return bytes(hdr + buf)


def check_codec(ctx, topic, partitions, codec, min_batch=2):
    """Every stored batch carries `codec`, and at least one batch holds several records (so the
    case exercised a real compressed batch, not one record per batch)."""
    batches = [b for p in partitions for b in batch_codecs(ctx.bootstrap, topic, p)]
    check(batches, "no batches stored in %s" % topic)
    wrong = [b for b in batches if b[2] != codec]
    check(not wrong, "batches stored with another codec than %s: %s" % (codec, wrong[:5]))
    check(max(b[1] for b in batches) >= min_batch,
          "every batch holds fewer than %d records (%s): nothing was batched" % (min_batch, batches[:5]))
    return batches


# ============================================================================================
# batch reads

def mixed_records(base, partitions, per_partition):
    """Records with every shape Spark has to map: null/empty keys and values, repeated and
    null-valued headers, explicit CreateTimes a second apart."""
    recs = []
    for p in range(partitions):
        for i in range(per_partition):
            n = p * per_partition + i
            key = None if i % 4 == 1 else (b"" if i % 4 == 2 else b"k%d" % n)
            value = None if i % 5 == 3 else (b"" if i % 5 == 4 else b"value-%d" % n)
            headers = [("h", b"1"), ("h", b"2"), ("null", None), ("empty", b"")] if i % 3 == 0 else (
                [("only", b"x%d" % n)] if i % 3 == 1 else [])
            recs.append({"partition": p, "key": key, "value": value, "headers": headers, "timestamp": base + n * 1000})
    return recs


@case("batch_read_subscribe_all_columns")
def _(ctx):
    t = ctx.create(ctx.topic(), 3)
    want = ctx.produce(t, mixed_records(base_ts(), 3, 7))
    check_eq(sorted((r.partition, r.offset) for r in want), sorted((p, o) for p in range(3) for o in range(7)),
             "delivery reports (partition, offset)")
    df = ctx.read(subscribe=t, includeHeaders="true")
    check_eq([f.name for f in df.schema.fields],
             ["key", "value", "topic", "partition", "offset", "timestamp", "timestampType", "headers"], "columns")
    check_recs(spark_recs(df), want, "spark batch read with headers")
    # without includeHeaders the column is absent, the rest identical
    df2 = ctx.read(subscribe=t)
    check("headers" not in df2.columns, "headers column present without includeHeaders")
    check_recs(spark_recs(df2, headers=False), [r.without_headers() for r in want], "spark batch read")
    check_recs(ctx.consume_all(t), want, "librdkafka read")


@case("batch_read_subscribe_pattern")
def _(ctx):
    prefix = ctx.topic("pattern")
    a = ctx.create(prefix + "-a", 2)
    b = ctx.create(prefix + "-b", 1)
    other = ctx.create(prefix + "x-c", 1)   # shares the prefix but does not match the pattern
    want = ctx.produce(a, [{"partition": i % 2, "value": b"a%d" % i, "key": b"k"} for i in range(6)])
    want += ctx.produce(b, [{"value": b"b%d" % i} for i in range(3)])
    ctx.produce(other, [{"value": b"other"}])
    df = ctx.read(subscribePattern=prefix.replace(".", "\\.") + "-(a|b)", includeHeaders="true")
    check_recs(spark_recs(df), want, "subscribePattern read")


@case("batch_read_assign")
def _(ctx):
    t = ctx.create(ctx.topic(), 3)
    recs = ctx.produce(t, [{"partition": p, "value": b"p%d-%d" % (p, i)} for p in range(3) for i in range(4)])
    df = ctx.read(assign=json.dumps({t: [0, 2]}), includeHeaders="true")
    check_recs(spark_recs(df), [r for r in recs if r.partition in (0, 2)], "assign [0, 2]")


@case("batch_read_offsets_json")
def _(ctx):
    t = ctx.create(ctx.topic(), 3)
    recs = ctx.produce(t, [{"partition": p, "value": b"p%d-%d" % (p, i)} for p in range(3) for i in range(10)])
    # -2 = earliest, -1 = latest inside the per-partition JSON
    df = ctx.read(subscribe=t, includeHeaders="true",
                  startingOffsets=json.dumps({t: {"0": 3, "1": -2, "2": -2}}),
                  endingOffsets=json.dumps({t: {"0": 7, "1": -1, "2": 0}}))
    want = [r for r in recs if (r.partition == 0 and 3 <= r.offset < 7) or r.partition == 1]
    check_recs(spark_recs(df), want, "per-partition starting/ending offsets")
    df = ctx.read(subscribe=t, includeHeaders="true", startingOffsets="earliest", endingOffsets="latest")
    check_recs(spark_recs(df), recs, "earliest..latest")
    # "latest" is resolved when the query runs: a new read sees a record produced since
    more = ctx.produce(t, [{"partition": 2, "value": b"late"}])
    check_recs(spark_recs(ctx.read(subscribe=t, includeHeaders="true")), recs + more, "after one more record")


@case("batch_read_empty_partitions")
def _(ctx):
    t = ctx.create(ctx.topic(), 4)
    empty = ctx.create(ctx.topic("empty"), 2)
    recs = ctx.produce(t, [{"partition": p, "value": b"v%d-%d" % (p, i)} for p in (1, 3) for i in range(3)])
    check_recs(spark_recs(ctx.read(subscribe=t, includeHeaders="true")), recs, "topic with empty partitions 0 and 2")
    check_eq(ctx.read(subscribe=empty).count(), 0, "rows of an empty topic")
    df = ctx.read(assign=json.dumps({t: [0, 2]}), startingOffsets=json.dumps({t: {"0": -2, "2": -2}}),
                  endingOffsets=json.dumps({t: {"0": -1, "2": -1}}))
    check_eq(df.count(), 0, "rows of the empty partitions 0 and 2")


def _ts_topic(ctx, partitions=2, n=10):
    """n records per partition, CreateTime base + i s, each partition's records in one batch
    (linger) so that offset lookups by timestamp must find the record inside the batch."""
    t = ctx.create(ctx.topic(), partitions)
    base = base_ts()
    recs = ctx.produce(t, [{"partition": p, "value": b"p%d-%d" % (p, i), "timestamp": base + i * 1000}
                           for p in range(partitions) for i in range(n)], conf={"linger.ms": 200})
    return t, base, recs


@case("batch_read_starting_offsets_by_timestamp")
def _(ctx):
    t, base, recs = _ts_topic(ctx)
    df = ctx.read(subscribe=t, includeHeaders="true",
                  startingOffsetsByTimestamp=json.dumps({t: {"0": base + 3500, "1": base}}))
    want = [r for r in recs if (r.partition == 0 and r.offset >= 4) or r.partition == 1]
    check_recs(spark_recs(df), want, "startingOffsetsByTimestamp p0 >= +3.5 s, p1 >= +0 s")
    # no record at or after the timestamp: the default strategy ("error") fails the query ...
    try:
        n = ctx.read(subscribe=t, startingOffsetsByTimestamp=json.dumps({t: {"0": base + 60000, "1": base}})).count()
        raise CaseFailure("startingOffsetsByTimestamp past the end with strategy 'error' read %d rows" % n)
    except CaseFailure:
        raise
    except Exception as e:  # noqa: BLE001 - Spark raises an IllegalArgumentException-like error
        check("No offset matched" in str(e) or "offset" in str(e).lower(),
              "unexpected error for a timestamp past the end: %s" % str(e)[:300])
    # ... and "latest" reads nothing from that partition
    df = ctx.read(subscribe=t, includeHeaders="true", startingOffsetsByTimestampStrategy="latest",
                  startingOffsetsByTimestamp=json.dumps({t: {"0": base + 60000, "1": base + 9000}}))
    check_recs(spark_recs(df), [r for r in recs if r.partition == 1 and r.offset == 9], "strategy latest")


@case("batch_read_ending_offsets_by_timestamp")
def _(ctx):
    t, base, recs = _ts_topic(ctx)
    # ending offset = first record with ts >= the timestamp (exclusive); none -> latest
    df = ctx.read(subscribe=t, includeHeaders="true",
                  endingOffsetsByTimestamp=json.dumps({t: {"0": base + 7000, "1": base + 60000}}))
    want = [r for r in recs if (r.partition == 0 and r.offset < 7) or r.partition == 1]
    check_recs(spark_recs(df), want, "endingOffsetsByTimestamp p0 < +7 s, p1 none (latest)")
    df = ctx.read(subscribe=t, includeHeaders="true",
                  startingOffsetsByTimestamp=json.dumps({t: {"0": base + 2000, "1": base + 2001}}),
                  endingOffsetsByTimestamp=json.dumps({t: {"0": base + 5000, "1": base + 5001}}))
    want = [r for r in recs if (r.partition == 0 and 2 <= r.offset < 5) or (r.partition == 1 and 3 <= r.offset < 6)]
    check_recs(spark_recs(df), want, "starting and ending by timestamp")


@case("batch_read_starting_timestamp")
def _(ctx):
    t, base, recs = _ts_topic(ctx)
    df = ctx.read(subscribe=t, includeHeaders="true", startingTimestamp=str(base + 5000))
    check_recs(spark_recs(df), [r for r in recs if r.offset >= 5], "startingTimestamp +5 s on both partitions")
    df = ctx.read(subscribe=t, includeHeaders="true", startingTimestamp=str(base + 4500),
                  endingTimestamp=str(base + 8000))
    check_recs(spark_recs(df), [r for r in recs if 5 <= r.offset < 8], "startingTimestamp +4.5 s .. +8 s")


@case("batch_read_log_append_time")
def _(ctx):
    t = ctx.create(ctx.topic(), 1, config={"message.timestamp.type": "LogAppendTime"})
    old = base_ts()
    t0 = now_ms()
    recs = ctx.produce(t, [{"value": b"v%d" % i, "timestamp": old + i} for i in range(5)], conf={"linger.ms": 100})
    t1 = now_ms()
    got = spark_recs(ctx.read(subscribe=t, includeHeaders="true"))
    check_eq([r.tstype for r in got], [1] * 5, "timestampType (1 = LogAppendTime)")
    check(all(t0 - 1000 <= r.ts <= t1 + 1000 for r in got),
          "LogAppendTime timestamps %s outside the produce window %d..%d (producer set %d)" % (
              [r.ts for r in got], t0, t1, old))
    check_recs(got, ctx.consume_all(t), "spark vs librdkafka (timestamps included)")
    check_eq([r.value for r in got], [r.value for r in recs], "values")
    # offsets by timestamp use the broker's append time on such a topic
    target = got[3].ts
    first = min(r.offset for r in got if r.ts >= target)
    df = ctx.read(subscribe=t, includeHeaders="true", startingOffsetsByTimestamp=json.dumps({t: {"0": target}}))
    check_recs(spark_recs(df), [r for r in got if r.offset >= first], "startingOffsetsByTimestamp on append times")
    check_eq(ctx.read(subscribe=t, startingOffsetsByTimestampStrategy="latest",
                      startingOffsetsByTimestamp=json.dumps({t: {"0": old + 10}})).count(), 5,
             "rows from the producer's (replaced) CreateTime: all of them")


@case("batch_read_log_append_time_compressed")
def _(ctx):
    """LogAppendTime on compressed batches: the broker stamps the batch header (timestamp-type bit,
    max timestamp, CRC) without recompressing; kafka-clients checks the CRC (check.crcs) and takes
    every record's timestamp from the header."""
    t = ctx.create(ctx.topic(), 1, config={"message.timestamp.type": "LogAppendTime"})
    old = base_ts()
    t0 = now_ms()
    recs = ctx.produce(t, [{"value": b"z%d" % i * 20, "timestamp": old + i} for i in range(30)],
                       conf={"compression.type": "zstd", "linger.ms": 100})
    t1 = now_ms()
    check_codec(ctx, t, [0], "zstd")
    got = spark_recs(ctx.read(subscribe=t, includeHeaders="true", **{"kafka.check.crcs": "true"}))
    check_eq([r.value for r in got], [r.value for r in recs], "values")
    check_eq({r.tstype for r in got}, {1}, "timestampType")
    check(all(t0 - 1000 <= r.ts <= t1 + 1000 for r in got), "append times %s outside %d..%d" % (
        sorted({r.ts for r in got}), t0, t1))
    check_recs(got, ctx.consume_all(t), "spark vs librdkafka")
    df = ctx.read(subscribe=t, startingOffsets=json.dumps({t: {"0": 11}}), endingOffsets=json.dumps({t: {"0": 19}}))
    check_eq([r.offset for r in spark_recs(df, headers=False)], list(range(11, 19)), "offsets inside the batch")


def _compression_read_case(codec):
    def run(ctx):
        t = ctx.create(ctx.topic(), 1)
        recs = ctx.produce(t, [{"key": b"k%d" % i, "value": (b"%s-%d-" % (codec.encode(), i)) * 20,
                                "headers": [("i", b"%d" % i)], "timestamp": base_ts() + i} for i in range(50)],
                           conf={"compression.type": codec, "linger.ms": 200, "batch.num.messages": 1000})
        check_codec(ctx, t, [0], codec)
        check_recs(spark_recs(ctx.read(subscribe=t, includeHeaders="true")), recs, "whole topic")
        # offsets inside a compressed batch: Spark must drop the batch's records before 17
        df = ctx.read(subscribe=t, includeHeaders="true", startingOffsets=json.dumps({t: {"0": 17}}),
                      endingOffsets=json.dumps({t: {"0": 41}}))
        check_recs(spark_recs(df), [r for r in recs if 17 <= r.offset < 41], "offsets 17..40 (mid-batch)")
    return run


for _codec in CODECS:
    case("batch_read_compression_" + _codec)(_compression_read_case(_codec))


@case("batch_read_min_partitions_compressed")
def _(ctx):
    """minPartitions splits one Kafka partition into several Spark tasks: each consumer starts
    inside a compressed batch and stops inside another."""
    t = ctx.create(ctx.topic(), 1)
    recs = []
    for b in range(4):   # 4 lz4 batches of 25 records
        recs += ctx.produce(t, [{"key": b"k%d" % (b * 25 + i), "value": b"v%d" % (b * 25 + i) * 10}
                                for i in range(25)], conf={"compression.type": "lz4", "linger.ms": 100})
    check_eq(len(check_codec(ctx, t, [0], "lz4")), 4, "stored lz4 batches")
    df = ctx.read(subscribe=t, includeHeaders="true", minPartitions="7")
    check_eq(df.rdd.getNumPartitions(), 7, "Spark partitions for one Kafka partition with minPartitions=7")
    check_recs(spark_recs(df), recs, "7 offset ranges of one partition")


@case("batch_read_small_fetch_limits")
def _(ctx):
    """Fetch limits below the batch size: the broker must still return the first batch whole
    (KIP-74), or the consumer never advances."""
    t = ctx.create(ctx.topic(), 2)
    big = [{"partition": i % 2, "key": b"big%d" % i, "value": bytes([65 + i]) * (300 * 1024)} for i in range(6)]
    recs = ctx.produce(t, big, conf={"linger.ms": 50, "compression.type": "none"})
    df = ctx.read(subscribe=t, includeHeaders="true", **{"kafka.max.partition.fetch.bytes": "1024",
                                                         "kafka.fetch.max.bytes": "2048"})
    check_recs(spark_recs(df), recs, "300 KiB records read with 1 KiB fetch limits")


@case("batch_read_read_committed_no_transactions")
def _(ctx):
    """read_committed without any transaction: ListOffsets with isolation level 1 (the last stable
    offset) and Fetch's last_stable_offset must equal the high watermark, or Spark stops early."""
    t = ctx.create(ctx.topic(), 2)
    recs = ctx.produce(t, [{"partition": i % 2, "value": b"v%d" % i, "headers": [("i", b"%d" % i)]} for i in range(20)],
                       conf={"compression.type": "gzip", "linger.ms": 50})
    opts = {"kafka.isolation.level": "read_committed"}
    check_recs(spark_recs(ctx.read(subscribe=t, includeHeaders="true", **opts)), recs, "read_committed batch read")
    q, name = memory_query(ctx, ctx.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true", **opts),
                           trigger={"availableNow": True})
    check(q.awaitTermination(60), "AvailableNow query did not finish")
    check(q.exception() is None, "query failed: %s" % _qerr(q))
    check_recs(table_recs(ctx, name), recs, "read_committed streaming read")


# ============================================================================================
# batch writes

def _write_df(ctx, rows, with_partition=False, with_headers=False, with_topic=True):
    from pyspark.sql.types import (ArrayType, BinaryType, IntegerType, StringType, StructField, StructType)
    fields = []
    if with_topic:
        fields.append(StructField("topic", StringType()))
    fields += [StructField("key", BinaryType()), StructField("value", BinaryType())]
    if with_partition:
        fields.append(StructField("partition", IntegerType()))
    if with_headers:
        fields.append(StructField("headers", ArrayType(StructType([StructField("key", StringType()),
                                                                   StructField("value", BinaryType())]))))
    return ctx.spark.createDataFrame(rows, StructType(fields)).coalesce(1)  # one task keeps row order


def _write(df, ctx, **opts):
    w = df.write.format("kafka").option("kafka.bootstrap.servers", ctx.bootstrap)
    for k, v in opts.items():
        w = w.option(k, v)
    w.save()


@case("batch_write_topic_column")
def _(ctx):
    a, b = ctx.create(ctx.topic("a"), 1), ctx.create(ctx.topic("b"), 1)
    rows = [(a if i % 3 else b, b"k%d" % i, b"v%d" % i) for i in range(12)]
    _write(_write_df(ctx, rows), ctx)
    for t in (a, b):
        got = ctx.consume_all(t)
        check_eq([(r.offset, r.key, r.value) for r in got],
                 [(o, k, v) for o, (_, k, v) in enumerate(x for x in rows if x[0] == t)], "records in %s" % t)


@case("batch_write_topic_option")
def _(ctx):
    target, column = ctx.create(ctx.topic("opt"), 1), ctx.create(ctx.topic("col"), 1)
    rows = [(column, b"k%d" % i, b"v%d" % i) for i in range(5)]
    _write(_write_df(ctx, rows), ctx, topic=target)   # the option overrides the topic column
    check_eq([(r.key, r.value) for r in ctx.consume_all(target)], [(k, v) for _, k, v in rows], "records in the option's topic")
    check_eq(ctx.end_offsets(column, 1), [0], "end offset of the column's topic")
    # without a topic column the option is required and enough
    _write(_write_df(ctx, [(None, b"x")], with_topic=False), ctx, topic=target)
    check_eq([r.value for r in ctx.consume_all(target)][-1], b"x", "last record written without a topic column")


@case("batch_write_key_value_nulls")
def _(ctx):
    t = ctx.create(ctx.topic(), 1)
    rows = [(t, None, b"no-key"), (t, b"", b"empty-key"), (t, b"k", None), (t, b"k2", b""), (t, None, None)]
    before = now_ms()
    _write(_write_df(ctx, rows), ctx)
    got = ctx.consume_all(t)
    check_eq([(r.offset, r.key, r.value, r.headers) for r in got],
             [(i, k, v, ()) for i, (_, k, v) in enumerate(rows)], "offset, key, value, headers")
    check(all(r.tstype == 0 and before - 1000 <= r.ts <= now_ms() + 1000 for r in got),
          "CreateTime set by Spark's producer at write time: %s" % [(r.tstype, r.ts) for r in got])
    # string columns are accepted and written as UTF-8
    t2 = ctx.create(ctx.topic("str"), 1)
    ctx.spark.createDataFrame([("ké", "välue")], "key string, value string").write.format("kafka") \
        .option("kafka.bootstrap.servers", ctx.bootstrap).option("topic", t2).save()
    check_eq([(r.key, r.value) for r in ctx.consume_all(t2)], [("ké".encode(), "välue".encode())], "string key/value")


@case("batch_write_partition_column")
def _(ctx):
    t = ctx.create(ctx.topic(), 3)
    rows = [(t, b"k", b"v%d" % i, [2, 0, 1, 2][i % 4]) for i in range(12)]
    _write(_write_df(ctx, rows, with_partition=True), ctx)
    got = ctx.consume_all(t)
    for p in range(3):
        check_eq([(r.offset, r.value) for r in got if r.partition == p],
                 list(enumerate(v for _, _, v, pp in rows if pp == p)), "partition %d" % p)


@case("batch_write_headers")
def _(ctx):
    t = ctx.create(ctx.topic(), 1)
    hs = [[("a", b"1"), ("a", b"2"), ("n", None), ("e", b"")], [], None, [("ü", b"\x00\xff")]]
    rows = [(t, b"k%d" % i, b"v%d" % i, h) for i, h in enumerate(hs)]
    _write(_write_df(ctx, rows, with_headers=True), ctx)
    got = ctx.consume_all(t)
    check_eq([r.headers for r in got], [tuple(h or ()) for h in hs], "headers in order (repeats, null values)")
    # and Spark reads back what it wrote
    check_recs(spark_recs(ctx.read(subscribe=t, includeHeaders="true")), got, "spark read of the written records")


def _compression_write_case(codec):
    def run(ctx):
        t = ctx.create(ctx.topic(), 2)
        rows = [(t, b"k%d" % i, (b"%s-%d-" % (codec.encode(), i)) * 30, i % 2) for i in range(300)]
        _write(_write_df(ctx, rows, with_partition=True), ctx, **{
            "kafka.compression.type": codec, "kafka.linger.ms": "100", "kafka.batch.size": str(1 << 20)})
        check_codec(ctx, t, [0, 1], codec)
        got = ctx.consume_all(t)
        for p in range(2):
            check_eq([(r.offset, r.key, r.value) for r in got if r.partition == p],
                     [(o, k, v) for o, (_, k, v, _) in enumerate(x for x in rows if x[3] == p)], "partition %d" % p)
    return run


for _codec in CODECS:
    case("batch_write_compression_" + _codec)(_compression_write_case(_codec))


# ============================================================================================
# streaming

def memory_query(ctx, df, name=None, trigger=None, **opts):
    """Start df into a memory sink named after the case; returns (query, table name)."""
    name = name or ("mem_" + ctx.name + "_" + str(int(time.time() * 1000)))
    w = df.writeStream.format("memory").queryName(name).outputMode(opts.pop("outputMode", "append"))
    w = w.trigger(**(trigger or {"processingTime": "500 milliseconds"}))
    for k, v in opts.items():
        w = w.option(k, v)
    return w.start(), name


def table_recs(ctx, name, headers=True):
    return spark_recs(ctx.spark.table(name), headers=headers)


def wait_rows(ctx, q, name, n, timeout=45):
    """Until the memory table has at least n rows; then a short pause so that extra (duplicate or
    unexpected) rows would show up before the exact check."""
    wait_until(lambda: ctx.spark.table(name).count() >= n, timeout, "%d rows in %s" % (n, name), query=q)
    time.sleep(1.0)
    check(q.isActive, "query stopped: %s" % _qerr(q))


def input_rows_per_batch(q):
    return [p["numInputRows"] for p in q.recentProgress if p["numInputRows"] > 0]


@case("stream_available_now_checkpoint")
def _(ctx):
    t = ctx.create(ctx.topic(), 2)
    first = ctx.produce(t, [{"partition": i % 2, "key": b"k%d" % i, "value": b"a%d" % i, "headers": [("n", b"%d" % i)]}
                            for i in range(20)])
    out, ck = os.path.join(ctx.tmp, "out"), os.path.join(ctx.tmp, "ck")

    def run_once():
        df = ctx.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true")
        q = (df.selectExpr(*SPARK_COLUMNS, "headers").writeStream.format("parquet").option("path", out)
             .option("checkpointLocation", ck).trigger(availableNow=True).start())
        check(q.awaitTermination(60), "AvailableNow query did not finish within 60 s")
        check(q.exception() is None, "AvailableNow query failed: %s" % _qerr(q))
        return q

    run_once()
    got = [Rec(*r[:7], tuple((h["key"], _b(h["value"])) for h in r[7] or [])) for r in
           ctx.spark.read.parquet(out).selectExpr("topic", "partition", "offset", "key", "value", "ts",
                                                  "timestampType", "headers").collect()]
    check_recs(got, first, "first AvailableNow run")
    second = ctx.produce(t, [{"partition": i % 2, "value": b"b%d" % i} for i in range(7)])
    q = run_once()
    got = [Rec(*r[:7], tuple((h["key"], _b(h["value"])) for h in r[7] or [])) for r in
           ctx.spark.read.parquet(out).selectExpr("topic", "partition", "offset", "key", "value", "ts",
                                                  "timestampType", "headers").collect()]
    check_recs(got, first + second, "after the second run from the checkpoint (each record once)")
    check_eq(sum(input_rows_per_batch(q)), 7, "rows read by the second run")


@case("stream_processing_time_trigger")
def _(ctx):
    t = ctx.create(ctx.topic(), 2)
    before = ctx.produce(t, [{"partition": i % 2, "value": b"before%d" % i, "timestamp": base_ts() + i} for i in range(10)])
    q, name = memory_query(ctx, ctx.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true"))
    wait_rows(ctx, q, name, 10)
    after = ctx.produce(t, [{"partition": i % 2, "key": b"x", "value": b"after%d" % i, "headers": [("h", None)]}
                            for i in range(10)])
    wait_rows(ctx, q, name, 20)
    check_recs(table_recs(ctx, name), before + after, "memory sink")
    check(len(input_rows_per_batch(q)) >= 2, "records arrived in one micro-batch only: %s" % input_rows_per_batch(q))


@case("stream_max_offsets_per_trigger")
def _(ctx):
    t = ctx.create(ctx.topic(), 3)
    recs = ctx.produce(t, [{"partition": p, "value": b"p%d-%d" % (p, i)} for p in range(3) for i in range(10)])
    df = ctx.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true", maxOffsetsPerTrigger="10")
    q, name = memory_query(ctx, df, trigger={"availableNow": True})
    check(q.awaitTermination(60), "AvailableNow query did not finish")
    check(q.exception() is None, "query failed: %s" % _qerr(q))
    # Spark splits the limit over the partitions by their share of the backlog and rounds down
    # (10 * 10/30 -> 3 each): 9, 9, 9, then the remaining 3. Wrong end offsets change this list.
    check_eq(input_rows_per_batch(q), [9, 9, 9, 3], "input rows per micro-batch (maxOffsetsPerTrigger=10)")
    check_recs(table_recs(ctx, name), recs, "memory sink")


@case("stream_starting_offsets_latest")
def _(ctx):
    t = ctx.create(ctx.topic(), 2)
    ctx.produce(t, [{"partition": i % 2, "value": b"old%d" % i} for i in range(6)])
    q, name = memory_query(ctx, ctx.read_stream(subscribe=t, startingOffsets="latest", includeHeaders="true"))
    # the starting offsets are fixed by the first trigger: wait for it before producing
    wait_until(lambda: q.lastProgress is not None, 30, "the first trigger", query=q)
    new = ctx.produce(t, [{"partition": i % 2, "value": b"new%d" % i} for i in range(6)])
    wait_rows(ctx, q, name, 6)
    check_recs(table_recs(ctx, name), new, "only records produced after the start")


@case("stream_pattern_topic_created_while_running")
def _(ctx):
    prefix = ctx.topic("pat")
    a = ctx.create(prefix + "-a", 1)
    recs = ctx.produce(a, [{"value": b"a%d" % i} for i in range(3)])
    df = ctx.read_stream(subscribePattern=prefix.replace(".", "\\.") + "-.*", startingOffsets="earliest",
                         includeHeaders="true", **{"kafka.metadata.max.age.ms": "1000"})
    q, name = memory_query(ctx, df)
    wait_rows(ctx, q, name, 3)
    b = ctx.create(prefix + "-b", 2)
    recs += ctx.produce(b, [{"partition": i % 2, "value": b"b%d" % i} for i in range(4)])
    recs += ctx.produce(a, [{"value": b"a-more"}])
    wait_rows(ctx, q, name, 8, timeout=60)
    check_recs(table_recs(ctx, name), recs, "both topics, the new one from its first offset")


@case("stream_partitions_added_while_running")
def _(ctx):
    t = ctx.create(ctx.topic(), 1)
    recs = ctx.produce(t, [{"value": b"p0-%d" % i} for i in range(3)])
    df = ctx.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true",
                         **{"kafka.metadata.max.age.ms": "1000"})
    q, name = memory_query(ctx, df)
    wait_rows(ctx, q, name, 3)
    ctx.add_partitions(t, 3)
    recs += ctx.produce(t, [{"partition": p, "value": b"p%d-new%d" % (p, i)} for p in range(3) for i in range(2)])
    wait_rows(ctx, q, name, 9, timeout=60)
    check_recs(table_recs(ctx, name), recs, "records of the old and the 2 new partitions")


def _pipeline_source(ctx, partitions):
    src = ctx.create(ctx.topic("src"), partitions)
    dst = ctx.create(ctx.topic("dst"), partitions)
    return src, dst


@case("stream_kafka_to_kafka_microbatch", timeout=90)
def _(ctx):
    src, dst = _pipeline_source(ctx, 2)
    recs = ctx.produce(src, [{"partition": i % 2, "key": None if i % 5 == 0 else b"k%d" % i,
                              "value": None if i % 7 == 3 else b"v%d" % i,
                              "headers": [("n", b"%d" % i), ("n", None)]} for i in range(20)])
    df = ctx.read_stream(subscribe=src, startingOffsets="earliest", includeHeaders="true")
    # route by partition, uppercase the value, keep key and headers, add one header
    # a record without headers has headers = NULL (and concat with NULL is NULL)
    extra = "array(named_struct('key', 'src-offset', 'value', CAST(CAST(offset AS STRING) AS BINARY)))"
    out = df.selectExpr("key", "upper(CAST(value AS STRING)) AS value", "partition",
                        "IF(headers IS NULL, %s, concat(headers, %s)) AS headers" % (extra, extra))
    q = (out.writeStream.format("kafka").option("kafka.bootstrap.servers", ctx.bootstrap).option("topic", dst)
         .option("checkpointLocation", os.path.join(ctx.tmp, "ck")).trigger(processingTime="500 milliseconds").start())

    def stored_at_least(n):
        return sum(ctx.end_offsets(dst, 2)) >= n
    wait_until(lambda: stored_at_least(20), 45, "20 records in the destination", query=q)
    more = ctx.produce(src, [{"partition": 1, "key": b"late", "value": b"late"}])
    wait_until(lambda: stored_at_least(21), 30, "21 records in the destination", query=q)
    time.sleep(1.0)
    got = ctx.consume_all(dst)
    want = sorted(((r.partition, r.key, None if r.value is None else r.value.upper(),
                    r.headers + (("src-offset", b"%d" % r.offset),)) for r in recs + more), key=repr)
    have = sorted(((r.partition, r.key, r.value, r.headers) for r in got), key=repr)
    check(have == want, "destination records (partition, key, value, headers): unexpected %s, missing %s" % (
        [x for x in have if x not in want][:3], [x for x in want if x not in have][:3]))
    for p in range(2):
        check_eq([r.offset for r in got if r.partition == p], list(range(len([r for r in got if r.partition == p]))),
                 "destination offsets in partition %d" % p)


@case("stream_kafka_to_kafka_continuous", timeout=90)
def _(ctx):
    # continuous processing runs one long-lived task per source partition: 1 partition on local[2]
    src, dst = _pipeline_source(ctx, 1)
    recs = ctx.produce(src, [{"key": b"k%d" % i, "value": b"v%d" % i, "headers": [("i", b"%d" % i)]} for i in range(10)])
    df = ctx.read_stream(subscribe=src, startingOffsets="earliest", includeHeaders="true")
    q = (df.selectExpr("key", "concat(value, CAST('!' AS BINARY)) AS value", "headers").writeStream.format("kafka")
         .option("kafka.bootstrap.servers", ctx.bootstrap).option("topic", dst)
         .option("checkpointLocation", os.path.join(ctx.tmp, "ck")).trigger(continuous="1 second").start())
    wait_until(lambda: ctx.end_offsets(dst, 1)[0] >= 10, 60, "10 records in the destination", query=q)
    more = ctx.produce(src, [{"key": b"k-late", "value": b"late", "headers": [("i", b"late")]}])
    wait_until(lambda: ctx.end_offsets(dst, 1)[0] >= 11, 30, "11 records in the destination", query=q)
    time.sleep(1.5)
    got = ctx.consume_all(dst)
    check_eq([(r.offset, r.key, r.value, r.headers) for r in got],
             [(i, r.key, r.value + b"!", r.headers) for i, r in enumerate(recs + more)], "destination records")


@case("stream_write_columns_compression", timeout=90)
def _(ctx):
    """Streaming sink: topic column (routing), partition column, null values, headers, zstd."""
    src = ctx.create(ctx.topic("src"), 1)
    even, odd = ctx.create(ctx.topic("even"), 2), ctx.create(ctx.topic("odd"), 2)
    recs = ctx.produce(src, [{"key": b"%d" % i, "value": None if i % 4 == 1 else b"x%d" % i,
                              "headers": [("i", b"%d" % i)]} for i in range(40)])
    df = ctx.read_stream(subscribe=src, startingOffsets="earliest", includeHeaders="true")
    out = df.selectExpr("IF(offset %% 2 = 0, '%s', '%s') AS topic" % (even, odd), "key", "value", "headers",
                        "CAST(offset % 4 DIV 2 AS INT) AS partition")
    q = (out.writeStream.format("kafka").option("kafka.bootstrap.servers", ctx.bootstrap)
         .option("kafka.compression.type", "zstd").option("kafka.linger.ms", "50")
         .option("checkpointLocation", os.path.join(ctx.tmp, "ck")).trigger(availableNow=True).start())
    check(q.awaitTermination(60), "query did not finish")
    check(q.exception() is None, "query failed: %s" % _qerr(q))
    for t, parity in ((even, 0), (odd, 1)):
        got = ctx.consume_all(t)
        for p in range(2):
            want = [(r.key, r.value, r.headers) for r in recs if r.offset % 2 == parity and (r.offset % 4) // 2 == p]
            check_eq([(r.key, r.value, r.headers) for r in got if r.partition == p], want, "%s partition %d" % (t, p))
        check_codec(ctx, t, [0, 1], "zstd")


@case("stream_starting_offsets_by_timestamp")
def _(ctx):
    t, base, recs = _ts_topic(ctx)
    df = ctx.read_stream(subscribe=t, includeHeaders="true",
                         startingOffsetsByTimestamp=json.dumps({t: {"0": base + 6500, "1": base + 2000}}))
    q, name = memory_query(ctx, df, trigger={"availableNow": True})
    check(q.awaitTermination(60), "AvailableNow query did not finish")
    check(q.exception() is None, "query failed: %s" % _qerr(q))
    check_recs(table_recs(ctx, name), [r for r in recs if (r.partition == 0 and r.offset >= 7) or
                                       (r.partition == 1 and r.offset >= 2)], "streaming from timestamps")


def _topic_deleted_case(fail_on_loss):
    def run(ctx):
        prefix = ctx.topic("del")
        keep, gone = ctx.create(prefix + "-keep", 1), ctx.create(prefix + "-gone", 2)
        recs = ctx.produce(keep, [{"value": b"keep%d" % i} for i in range(3)])
        recs += ctx.produce(gone, [{"partition": i % 2, "value": b"gone%d" % i} for i in range(4)])
        df = ctx.read_stream(subscribePattern=prefix.replace(".", "\\.") + "-.*", startingOffsets="earliest",
                             includeHeaders="true", failOnDataLoss=str(fail_on_loss).lower())
        q, name = memory_query(ctx, df)
        wait_rows(ctx, q, name, 7)
        ctx.admin().delete_topics([gone], operation_timeout=15, request_timeout=15)[gone].result(timeout=20)
        wait_until(lambda: gone not in ctx.admin().list_topics(timeout=5).topics, 15, "%s gone from metadata" % gone)
        if fail_on_loss:
            # Spark reports the vanished partitions as data loss: the query stops
            wait_until(lambda: not q.isActive, 40, "the query to fail on the deleted topic")
            err = _qerr(q)
            check("lost" in err.lower() or "deleted" in err.lower(), "unexpected error: %s" % err)
        else:
            recs += ctx.produce(keep, [{"value": b"keep-after"}])
            wait_rows(ctx, q, name, 8)
            check_recs(table_recs(ctx, name), recs, "rows: the deleted topic's earlier rows plus the new one")
    return run


case("stream_topic_deleted_fail_on_data_loss_true", timeout=90)(_topic_deleted_case(True))
case("stream_topic_deleted_fail_on_data_loss_false", timeout=90)(_topic_deleted_case(False))


# ============================================================================================
# checkpoints: the Spark driver SIGKILLed, the broker kill -9'd

def child_file_sink(bootstrap, a):
    """A separate Spark application (its own JVM), so that the case can SIGKILL a whole driver:
    Kafka -> parquet file sink with a checkpoint, small micro-batches, runs until killed."""
    spark = build_session("rivulet-compat-spark-child")
    df = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
          .option("subscribe", a["topic"]).option("startingOffsets", "earliest")
          .option("maxOffsetsPerTrigger", str(a["max"])).load())
    q = (df.selectExpr("partition", "offset", "value").writeStream.format("parquet").option("path", a["out"])
         .option("checkpointLocation", a["ck"]).trigger(processingTime="200 milliseconds").start())
    print("child query started", flush=True)
    q.awaitTermination()
    return 0


CHILDREN["file_sink"] = child_file_sink


def _spawn_child(ctx, kind, args, log_name):
    log = open(os.path.join(os.environ.get("RIVULET_SPARK_LOG_DIR", ctx.tmp), log_name), "w")
    cmd = [sys.executable, os.path.abspath(__file__), "--bootstrap", ctx.bootstrap, "--child", kind,
           "--child-args", json.dumps(args)]
    return track_child(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))


def track_child(p):
    """Record the process group of a process started in its own session (child drivers, own
    brokers), so that runner.py can kill it when it has to kill this driver mid-case."""
    path = os.environ.get("RIVULET_SPARK_CHILD_PIDS")
    if path:
        with open(path, "a") as f:
            f.write("%d\n" % p.pid)
    return p


def _sigkill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    p.wait()


def _commits(ck):
    d = os.path.join(ck, "commits")
    return len([f for f in os.listdir(d) if f.isdigit()]) if os.path.isdir(d) else 0


@case("checkpoint_driver_sigkill_file_sink", timeout=300)
def _(ctx):
    t = ctx.create(ctx.topic(), 2)
    recs = ctx.produce(t, [{"partition": i % 2, "value": b"a%05d" % i} for i in range(400)])
    out, ck = os.path.join(ctx.tmp, "out"), os.path.join(ctx.tmp, "ck")
    args = {"topic": t, "out": out, "ck": ck, "max": 20}   # 20 micro-batches for the first 400 records
    child = _spawn_child(ctx, "file_sink", args, "checkpoint-driver-1.log")
    try:
        wait_until(lambda: _commits(ck) >= 3 or child.poll() is not None, 150, "3 committed micro-batches")
        check(child.poll() is None, "the child driver exited with %s (log checkpoint-driver-1.log)" % child.poll())
    finally:
        _sigkill_group(child)   # SIGKILL: no shutdown hook, files of an uncommitted batch may stay behind
    done = _commits(ck)
    check(done < 20, "all %d micro-batches were committed before the kill: the restart was not exercised" % done)
    ctx.log("driver killed after %d committed micro-batches" % done)
    recs += ctx.produce(t, [{"partition": i % 2, "value": b"b%05d" % i} for i in range(200)])
    child = _spawn_child(ctx, "file_sink", args, "checkpoint-driver-2.log")
    try:
        # the sink's _spark_metadata log lists committed files only: what a reader sees
        wait_until(lambda: child.poll() is not None or _commits(ck) > done and
                   ctx.spark.read.parquet(out).count() >= len(recs), 180, "%d rows in the file sink" % len(recs),
                   interval=1.0)
        check(child.poll() is None, "the restarted driver exited with %s (log checkpoint-driver-2.log)" % child.poll())
        time.sleep(2)
    finally:
        _sigkill_group(child)
    got = sorted((r["partition"], r["offset"], bytes(r["value"])) for r in ctx.spark.read.parquet(out).collect())
    want = sorted((r.partition, r.offset, r.value) for r in recs)
    check(len(got) == len(set(got)), "%d duplicate rows in the file sink" % (len(got) - len(set(got))))
    check_eq(got, want, "file sink rows (partition, offset, value)")


class OwnBroker:
    """A broker this case starts, kill -9s and restarts on the same port and data directory."""

    def __init__(self, binary, data_dir, log_path):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        if os.path.basename(self.binary).startswith("kfake"):
            cmd = [self.binary, "-port", str(self.port), "-auto-create", "-partitions", "1",
                   "-data-dir", self.data_dir, "-sync-writes"]
        else:
            listener = "PLAINTEXT://127.0.0.1:%d" % self.port
            cmd = [self.binary, "--listeners", listener, "--advertised-listeners", listener, "--log-dirs",
                   self.data_dir, "--override", "auto.create.topics.enable=true", "--override", "num.partitions=1"]
        log = open(self.log_path, "a")
        self.proc = track_child(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.time() + 30
        while time.time() < deadline:
            check(self.proc.poll() is None, "broker exited with %s (log %s)" % (self.proc.poll(), self.log_path))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise CaseFailure("broker did not listen on %s within 30 s" % self.bootstrap)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()


@case("checkpoint_broker_kill9_restart", timeout=180)
def _(ctx):
    binary = os.environ.get("RIVULET_BROKER_BIN")
    if not binary:
        raise Skip("needs a broker binary to start, kill -9 and restart (compat/run passes RIVULET_BROKER_BIN; "
                   "compat/spark/run --broker-bin PATH); only --bootstrap was given")
    broker = OwnBroker(binary, os.path.join(ctx.tmp, "broker-data"),
                       os.path.join(os.environ.get("RIVULET_SPARK_LOG_DIR", ctx.tmp), "broker-kill9.log"))
    broker.start()
    b = Ctx(broker.bootstrap, ctx.spark, ctx.name + "_own")
    try:
        t = b.create(b.topic(ctx.name), 2)
        df = b.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true")
        q, name = memory_query(b, df)
        acked, errors = [], []
        from confluent_kafka import Producer
        # idempotent, so that retries across the outage cannot store a record twice: the check
        # below is then "Spark's rows == the log", each stored record exactly once
        p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all",
                      "linger.ms": 5, "message.timeout.ms": 60000})

        def cb(err, msg):
            (errors if err else acked).append(err or msg.value())
        stop = threading.Event()

        def pump():
            for i in range(300):
                if stop.is_set():
                    return
                p.produce(t, value=b"r%05d" % i, partition=i % 2, on_delivery=cb)
                p.poll(0)
                time.sleep(0.02)
        th = threading.Thread(target=pump, daemon=True)
        th.start()
        wait_until(lambda: b.spark.table(name).count() >= 50, 60, "50 rows before the kill", query=q)
        # no Spark job while the broker is down: the query's tasks hold both executor slots while
        # they retry, so a job here would wait for them (~60 s) and delay the restart
        rows_at_kill = b.spark.table(name).count()
        broker.kill9()
        t_kill = time.time()
        time.sleep(2)
        broker.start()
        ctx.log("broker kill -9 with %d rows in the sink; restarted after %.1f s" % (rows_at_kill, time.time() - t_kill))
        th.join(60)
        stop.set()
        left = p.flush(60)
        check(left == 0 and not errors, "producer: %d not delivered, errors %s" % (left, errors[:3]))
        log = b.consume_all(t)
        check_eq(sorted(r.value for r in log), sorted(acked), "log contents vs acknowledged values")
        wait_rows(b, q, name, len(log), timeout=90)
        got = table_recs(b, name)
        check_recs(got, log, "memory sink vs the log after kill -9 and restart")
        check(rows_at_kill < len(log), "all rows were read before the kill")
    finally:
        for q in b.spark.streams.active:
            try:
                q.stop()
            except Exception:  # noqa: BLE001
                pass
        broker.stop()
        shutil.rmtree(b.tmp, ignore_errors=True)   # b is a second Ctx: its scratch dir is not ctx's


# ============================================================================================
# event time

def _progress_watermark_ms(q):
    """The watermark of the last progress report, in ms (None before the first)."""
    p = q.lastProgress
    wm = p and p.get("eventTime", {}).get("watermark")
    if not wm:
        return None
    import datetime
    return int(datetime.datetime.strptime(wm, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000)


def _window_rows(ctx, name):
    return sorted((r["start_ms"], r["end_ms"], r["count"]) for r in ctx.spark.sql(
        "SELECT unix_millis(window.start) AS start_ms, unix_millis(window.end) AS end_ms, count FROM %s" % name).collect())


def _windowed_query(ctx, t, window, delay):
    from pyspark.sql.functions import window as window_of
    df = ctx.read_stream(subscribe=t, startingOffsets="earliest")
    agg = df.withWatermark("timestamp", delay).groupBy(window_of("timestamp", window)).count()
    return memory_query(ctx, agg, outputMode="append")


def _dropped_by_watermark(q):
    return sum(op.get("numRowsDroppedByWatermark", 0) for p in q.recentProgress for op in p.get("stateOperators", []))


@case("event_time_window_watermark_create_time", timeout=90)
def _(ctx):
    t = ctx.create(ctx.topic(), 1)
    base = base_ts()   # whole minute: 10 s windows start at base
    q, name = _windowed_query(ctx, t, "10 seconds", "5 seconds")

    def send(offsets_s):
        ctx.produce(t, [{"value": b"%d" % s, "timestamp": base + s * 1000} for s in offsets_s])

    send([1, 2, 3, 12, 15])            # [0,10): 3, [10,20): 2; max event time 15 -> watermark 10
    wait_until(lambda: _progress_watermark_ms(q) == base + 10000, 40, "watermark base+10 s", query=q,
               show=lambda: "watermark base%+d ms, progress %s" % ((_progress_watermark_ms(q) or base) - base,
                                                                  [(p["batchId"], p["numInputRows"], p.get("eventTime")) for p in q.recentProgress][-4:]))
    send([4, 11])                      # 4 s is behind the watermark: dropped; 11 s counts
    wait_until(lambda: _dropped_by_watermark(q) >= 1, 30, "a row dropped by the watermark", query=q)
    send([35])                         # watermark 30: [10,20) is final
    wait_until(lambda: len(_window_rows(ctx, name)) >= 2, 40, "2 windows emitted", query=q)
    time.sleep(2)
    check_eq(_window_rows(ctx, name), [(base, base + 10000, 3), (base + 10000, base + 20000, 3)],
             "emitted windows (start, end, count); the late record at +4 s is dropped, [30,40) still open")
    check_eq(_dropped_by_watermark(q), 1, "rows dropped by the watermark")


@case("event_time_window_log_append_time", timeout=90)
def _(ctx):
    """LogAppendTime: the broker's append time is the event time. The producer's CreateTimes are a
    day old; had they been kept, every record would land in day-old windows (or be dropped)."""
    t = ctx.create(ctx.topic(), 1, config={"message.timestamp.type": "LogAppendTime"})
    old = base_ts() - 86400 * 1000
    q, name = _windowed_query(ctx, t, "2 seconds", "0 seconds")
    for burst in range(3):
        ctx.produce(t, [{"value": b"%d-%d" % (burst, i), "timestamp": old} for i in range(4)])
        time.sleep(1.1)
    # a last record closes the earlier windows (watermark = its append time, delay 0)
    time.sleep(1.0)
    ctx.produce(t, [{"value": b"closer", "timestamp": old}])
    log = ctx.consume_all(t)
    check_eq({r.tstype for r in log}, {1}, "timestamp types in the log (LogAppendTime)")
    wm = max(r.ts for r in log)
    want = {}
    for r in log:
        start = r.ts - r.ts % 2000
        if start + 2000 <= wm:   # closed by the watermark: emitted in append mode
            want[start] = want.get(start, 0) + 1
    want = sorted((s, s + 2000, n) for s, n in want.items())
    check(sum(n for _, _, n in want) >= 8, "too few records in closed windows to test anything: %s" % want)
    wait_until(lambda: _window_rows(ctx, name) == want, 40, "windows %s" % want, query=q)
    time.sleep(1.5)
    check_eq(_window_rows(ctx, name), want, "emitted windows from the broker's append times")
    check_eq(_dropped_by_watermark(q), 0, "rows dropped by the watermark")


@case("readme_example", timeout=180)
def _(ctx):
    """The README's example, run as a user runs it: `spark-submit` of
    compat/spark/example_windowed_counts.py with the connector jars, AvailableNow (`--once`)."""
    src, dst = ctx.create(ctx.topic("events"), 2), ctx.create(ctx.topic("counts"), 1)
    base = base_ts() - 10 * 60 * 1000   # a whole minute, ten minutes ago
    events = [("a", 1), ("a", 20), ("b", 5), ("a", 59), ("a", 61), ("b", 119), ("c", 130)]
    ctx.produce(src, [{"key": k.encode(), "value": b"x", "timestamp": base + s * 1000, "partition": i % 2}
                      for i, (k, s) in enumerate(events)])
    submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    check(os.path.exists(submit), "no spark-submit beside %s" % sys.executable)
    cmd = [submit, "--master", "local[2]", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.sql.shuffle.partitions=2"]
    if os.environ.get("RIVULET_SPARK_JARS"):
        cmd += ["--jars", os.environ["RIVULET_SPARK_JARS"]]
    if os.environ.get("RIVULET_SPARK_PACKAGES"):
        cmd += ["--packages", os.environ["RIVULET_SPARK_PACKAGES"]]
    cmd += [os.path.join(HERE, "example_windowed_counts.py"), "--bootstrap", ctx.bootstrap,
            "--input", src, "--output", dst, "--checkpoint", os.path.join(ctx.tmp, "ck"), "--once"]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    log_path = os.path.join(os.environ.get("RIVULET_SPARK_LOG_DIR", ctx.tmp), "readme-example.log")
    with open(log_path, "w") as log:
        p = track_child(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True))
        try:
            rc = p.wait(timeout=150)
        except subprocess.TimeoutExpired:
            _sigkill_group(p)
            raise CaseFailure("spark-submit of the example did not finish within 150 s (log %s)" % log_path)
    check_eq(rc, 0, "spark-submit exit status (log %s)" % log_path)
    # update mode: a (key, window) may be written more than once; its last record is its count
    last = {}
    for r in ctx.consume_all(dst):
        v = json.loads(r.value)
        last[(r.key.decode(), v["window_start"])] = v["count"]
    m = base // 1000
    check_eq(last, {("a", m): 3, ("b", m): 1, ("a", m + 60): 1, ("b", m + 60): 1, ("c", m + 120): 1},
             "last count per (key, window start) in the output topic")


# ============================================================================================
# need broker features that do not exist yet (allowlist.txt, FINDINGS.md)

def _fail_on_data_loss_case(fail_on_loss):
    def run(ctx):
        from confluent_kafka import TopicPartition
        t = ctx.create(ctx.topic(), 1)
        recs = ctx.produce(t, [{"value": b"v%d" % i} for i in range(5)])
        df = ctx.read_stream(subscribe=t, startingOffsets="earliest", includeHeaders="true",
                             failOnDataLoss=str(fail_on_loss).lower())
        q, name = memory_query(ctx, df, trigger={"processingTime": "6 seconds"})
        wait_rows(ctx, q, name, 5, timeout=30)
        # Spark's executor-side consumer keeps what it fetched: the records to be deleted are
        # produced only after its last long poll (fetch.max.wait.ms 500) has returned, and
        # deleted before the next trigger, so the next micro-batch must fetch offset 5 from the broker.
        time.sleep(1.0)
        recs += ctx.produce(t, [{"value": b"v%d" % i} for i in range(5, 20)])
        # DeleteRecords (what retention does, deterministically): offsets 0..14 go away under the query
        fs = ctx.admin().delete_records([TopicPartition(t, 0, 15)], request_timeout=15)
        for f in fs.values():
            f.result(timeout=20)
        if fail_on_loss:
            # the next micro-batch asks for offset 5, now below the log start: the query must stop
            wait_until(lambda: not q.isActive, 30, "the query to fail on data loss")
            err = _qerr(q)
            check("lost" in err.lower() or "OffsetOutOfRange" in err,
                  "query stopped with an unexpected error: %s" % err)
            check_eq(len(table_recs(ctx, name)), 5, "rows before the failure")
        else:
            # the lost offsets are skipped: 0..4 from the first batch, then 15..19
            wait_rows(ctx, q, name, 10, timeout=40)
            check_recs(table_recs(ctx, name), [r for r in recs if r.offset < 5 or r.offset >= 15],
                       "rows after the deletion (5..14 lost, skipped)")
    return run


case("fail_on_data_loss_true_delete_records", timeout=90)(_fail_on_data_loss_case(True))
case("fail_on_data_loss_false_delete_records", timeout=90)(_fail_on_data_loss_case(False))


@case("read_committed_transactions", timeout=90)
def _(ctx):
    from confluent_kafka import Producer
    t = ctx.create(ctx.topic(), 1)
    p = Producer({"bootstrap.servers": ctx.bootstrap, "transactional.id": "spark-compat-" + t,
                  "transaction.timeout.ms": 30000})
    p.init_transactions(20)
    plan = [("commit", 3), ("abort", 2), ("commit", 2)]
    committed, aborted = [], []
    for n, (outcome, count) in enumerate(plan):
        p.begin_transaction()
        vals = [b"txn%d-%d" % (n, i) for i in range(count)]
        for v in vals:
            p.produce(t, value=v, partition=0)
        p.flush(20)
        if outcome == "commit":
            p.commit_transaction(20)
            committed += vals
        else:
            p.abort_transaction(20)
            aborted += vals
    # each transaction ends with a control record taking one offset: data at 0-2, 4-5, 7-8
    rc = spark_recs(ctx.read(subscribe=t, **{"kafka.isolation.level": "read_committed"}), headers=False)
    check_eq([(r.offset, r.value) for r in rc], list(zip([0, 1, 2, 7, 8], committed)), "read_committed batch read")
    ru = spark_recs(ctx.read(subscribe=t), headers=False)
    check_eq(sorted(r.value for r in ru), sorted(committed + aborted), "read_uncommitted batch read")
    df = ctx.read_stream(subscribe=t, startingOffsets="earliest", **{"kafka.isolation.level": "read_committed"})
    q, name = memory_query(ctx, df, trigger={"availableNow": True})
    check(q.awaitTermination(60), "AvailableNow query did not finish")
    check_eq([r.value for r in table_recs(ctx, name, headers=False)], committed, "read_committed streaming read")


# ============================================================================================
# driver

def build_session(app):
    from pyspark.sql import SparkSession
    b = (SparkSession.builder.master("local[2]").appName(app)
         .config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.memory", "2g")
         .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true"))
    jars = os.environ.get("RIVULET_SPARK_JARS", "")
    pkgs = os.environ.get("RIVULET_SPARK_PACKAGES", "")
    if jars:
        b = b.config("spark.jars", jars)
    if pkgs:
        b = b.config("spark.jars.packages", pkgs)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_cases(bootstrap, names):
    by_name = {n: (fn, t) for n, fn, t in CASES}
    t0 = time.time()
    spark = build_session("rivulet-compat-spark")
    print("# SparkSession up in %.1f s (Spark %s)" % (time.time() - t0, spark.version), flush=True)
    for name in names:
        if name not in by_name:
            print("FAIL %s: no such case" % name, flush=True)
            continue
        fn, _ = by_name[name]
        print("START %s" % name, flush=True)
        print("=== %s" % name, file=sys.stderr, flush=True)
        ctx = Ctx(bootstrap, spark, name)
        status, reason = "PASS", None
        try:
            fn(ctx)
        except Skip as e:
            status, reason = "SKIP", str(e)
        except CaseFailure as e:
            traceback.print_exc(file=sys.stderr)
            status, reason = "FAIL", str(e)
        except Exception as e:  # noqa: BLE001 - Spark/py4j/client errors are case failures
            traceback.print_exc(file=sys.stderr)
            status, reason = "FAIL", "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0][:300] if str(e).strip() else "")
        finally:
            try:
                ctx.cleanup()
            except Exception:  # noqa: BLE001
                traceback.print_exc(file=sys.stderr)
        if os.environ.get("RIVULET_SPARK_CHILD_PIDS"):
            open(os.environ["RIVULET_SPARK_CHILD_PIDS"], "w").close()   # the case reaped its children
        print("%s %s%s" % (status, name, (": " + reason.replace("\n", " | ")) if reason else ""), flush=True)
    spark.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--cases", help="comma-separated case names, in order")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)   # a child Spark application (see checkpoint cases)
    ap.add_argument("--child-args", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.list:
        for n, _, t in CASES:
            print(n, t)
        return 0
    if args.child:
        return CHILDREN[args.child](args.bootstrap, json.loads(args.child_args))
    run_cases(args.bootstrap, [n for n in (args.cases or "").split(",") if n] or [n for n, _, _ in CASES])
    return 0


if __name__ == "__main__":
    sys.exit(main())
