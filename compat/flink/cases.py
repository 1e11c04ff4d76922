"""Apache Flink 2.0.2 (PyFlink, local mini-cluster) with the stock Kafka connector against the broker.

Run by runner.py in the flink venv: `cases.py --bootstrap H:P --cases a,b,c` starts ONE Python
process (one py4j gateway JVM, in which every job's mini-cluster runs) and runs the named cases in
order, printing `START <case>` before each and `PASS/FAIL/SKIP <case>[: reason]` after (the runner
enforces time limits and the allowlist). `cases.py --list` prints `<case> <timeout seconds>`.

The jobs use only Flink's own Java operators (SQL, KafkaSource, KafkaSink, the collect sink): no
Python UDF, so no Python worker is started. Records are produced and read back with confluent-kafka
(librdkafka) on the other side of Flink, and compared exactly. Every case uses fresh topics.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import broker_apis  # noqa: E402
import harness  # noqa: E402
from harness import CaseFailure, Skip, check, check_eq  # noqa: E402

CASES = []  # (name, fn, timeout)
CHILDREN = {}  # --child NAME: helper Flink jobs in their own process (kill/restore case)


def case(name, timeout=60):
    def deco(fn):
        CASES.append((name, fn, timeout))
        return fn
    return deco


def jar_urls():
    jars = [j for j in os.environ.get("RIVULET_FLINK_JARS", "").split(",") if j]
    if not jars:
        raise Skip("no connector jars (RIVULET_FLINK_JARS is empty; run through compat/flink/run)")
    return ["file://" + os.path.abspath(j) for j in jars]


def groups_enabled():
    return os.environ.get("COMPAT_GROUPS", "1") != "0"


# ============================================================================================
# Flink environments

def stream_env(checkpoint_ms=None, parallelism=1, conf=None):
    """A DataStream environment on the local mini-cluster with the connector jars."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    c = Configuration()
    c.set_string("pipeline.jars", ";".join(jar_urls()))
    c.set_string("parallelism.default", str(parallelism))
    if checkpoint_ms:
        c.set_string("execution.checkpointing.interval", "%d ms" % checkpoint_ms)
    for k, v in (conf or {}).items():
        c.set_string(k, str(v))
    env = StreamExecutionEnvironment.get_execution_environment(c)
    env.set_parallelism(parallelism)
    return env


def table_env(parallelism=1):
    from pyflink.table import EnvironmentSettings, TableEnvironment
    t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    cfg = t.get_config()
    cfg.set("pipeline.jars", ";".join(jar_urls()))
    cfg.set("parallelism.default", str(parallelism))
    cfg.set("table.local-time-zone", "UTC")
    return t


def source_builder(ctx, *topics):
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kafka import KafkaSource
    return (KafkaSource.builder().set_bootstrap_servers(ctx.bootstrap).set_topics(*topics)
            .set_value_only_deserializer(SimpleStringSchema()))


def from_source(env, source, name="kafka"):
    from pyflink.common import WatermarkStrategy
    return env.from_source(source, WatermarkStrategy.no_watermarks(), name)


def collect_values(ds, name):
    """Run a bounded job and collect its values (strings)."""
    with ds.execute_and_collect(name) as it:
        return [v for v in it]


# PyFlink's KafkaTopicPartition and KafkaOffsetResetStrategy name the classes of the *shaded*
# flink-sql-connector-kafka jar (org.apache.flink.kafka.shaded.org.apache.kafka...), which fail
# with "Could not found the Java class" next to the thin connector and a plain kafka-clients jar.
# So the two initializers that take them are built here with the unshaded kafka-clients classes
# (see FINDINGS.md). Call after stream_env(): it puts the jars on the gateway's class loader.

def offsets_initializer(offsets, reset="EARLIEST"):
    """KafkaOffsetsInitializer.offsets({(topic, partition): offset}, reset strategy)."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import get_java_class
    jvm = get_gateway().jvm
    m = jvm.org.apache.flink.python.util.HashMapWrapper(None, get_java_class(jvm.Long))
    for (topic, partition), offset in offsets.items():
        m.put(jvm.org.apache.kafka.common.TopicPartition(topic, partition), offset)
    j = jvm.org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer.offsets(
        m.asMap(), getattr(jvm.org.apache.kafka.clients.consumer.OffsetResetStrategy, reset))
    return KafkaOffsetsInitializer(j)


def committed_initializer(reset="NONE"):
    """KafkaOffsetsInitializer.committed_offsets(reset strategy)."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    from pyflink.java_gateway import get_gateway
    jvm = get_gateway().jvm
    j = jvm.org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer.committedOffsets(
        getattr(jvm.org.apache.kafka.clients.consumer.OffsetResetStrategy, reset))
    return KafkaOffsetsInitializer(j)


# ============================================================================================
# context: topics, produce and consume with confluent-kafka

class Ctx:
    def __init__(self, bootstrap, name):
        self.bootstrap = bootstrap
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="rivulet-flink-%s-" % name)
        self._admin = None
        self.children = []

    def topic(self, tag=None):
        return harness.unique_topic(tag or self.name)

    def log(self, *a):
        print("[%s]" % self.name, *a, file=sys.stderr, flush=True)

    def admin(self):
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

    def produce(self, topic, records, conf=None):
        """records: dicts with value, key, timestamp (ms), partition. Returns [(partition, offset,
        key, value, timestamp)] from the delivery reports, in input order."""
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
                out[i] = (msg.partition(), msg.offset(), msg.key(), msg.value(), msg.timestamp()[1])
            return _cb
        for i, r in enumerate(records):
            kw = {"value": _enc(r.get("value")), "key": _enc(r.get("key")), "on_delivery": cb(i)}
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

    def watermarks(self, topic, isolation="read_uncommitted"):
        """{partition: (low, high)}; with read_committed, high is the last stable offset"""
        from confluent_kafka import Consumer, TopicPartition
        md = self.admin().list_topics(topic=topic, timeout=10).topics[topic]
        # librdkafka's default isolation is read_committed, where the "high" offset of
        # get_watermark_offsets is the last stable offset
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "flink-compat-check",
                      "isolation.level": isolation})
        try:
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in md.partitions}
        finally:
            c.close()

    def consume(self, topic, isolation="read_uncommitted", want=None, timeout=20, grace=1.5):
        """Every record of every partition: (partition, offset, key, value, timestamp), sorted.
        read_uncommitted reads up to each high watermark. read_committed cannot know where the
        last stable offset is, so it reads until `want` records arrived, then `grace` seconds more
        (anything past them shows up as extra records)."""
        from confluent_kafka import Consumer, TopicPartition
        wm = self.watermarks(topic)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "flink-compat-check",
                      "enable.auto.commit": False, "enable.auto.offset.store": False,
                      "isolation.level": isolation})
        got = []
        try:
            c.assign([TopicPartition(topic, p, lo) for p, (lo, hi) in wm.items()])
            pos = {p: lo for p, (lo, hi) in wm.items()}
            deadline = time.time() + timeout
            quiet_until = None
            while time.time() < deadline:
                if isolation == "read_uncommitted":
                    # positions, not the last record's offset + 1: a transaction marker takes the
                    # last offset of a partition and is never returned as a record
                    for t in c.position([TopicPartition(topic, p) for p in wm]):
                        if t.offset >= 0:
                            pos[t.partition] = max(pos[t.partition], t.offset)
                    if all(pos[p] >= hi for p, (lo, hi) in wm.items()):
                        break
                elif want is not None and len(got) >= want:
                    if quiet_until is None:
                        quiet_until = time.time() + grace
                    elif time.time() > quiet_until:
                        break
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    raise CaseFailure("consume %s: %s" % (topic, m.error()))
                got.append((m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1]))
                pos[m.partition()] = m.offset() + 1
            if isolation == "read_uncommitted":
                check(all(pos[p] >= hi for p, (lo, hi) in wm.items()),
                      "librdkafka read of %s stopped at %s, high watermarks %s" % (topic, pos, wm))
            return sorted(got)
        finally:
            c.close()

    def committed(self, group, topic, partitions):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            return {t.partition: t.offset for t in
                    c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
        finally:
            c.close()

    def spawn_child(self, kind, args, log_name):
        log = open(os.path.join(os.environ.get("RIVULET_FLINK_LOG_DIR", self.tmp), log_name), "w")
        cmd = [sys.executable, os.path.abspath(__file__), "--bootstrap", self.bootstrap, "--child", kind,
               "--child-args", json.dumps(args)]
        # Flink's own log of that JVM: flink-<ident>-python-<host>.log in $FLINK_LOG_DIR
        env = dict(os.environ, FLINK_IDENT_STRING=log_name[:-len(".log")])
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        path = os.environ.get("RIVULET_FLINK_CHILD_PIDS")
        if path:   # runner.py kills these process groups when it kills this driver mid-case
            with open(path, "a") as f:
                f.write("%d\n" % p.pid)
        self.children.append(p)
        return p

    def cleanup(self):
        for p in self.children:
            sigkill_group(p)
        shutil.rmtree(self.tmp, ignore_errors=True)


def sigkill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        p.wait(timeout=10)
    except Exception:  # noqa: BLE001
        pass


def _enc(v):
    return v.encode() if isinstance(v, str) else v


def _s(v):
    return None if v is None else bytes(v).decode()


def wait_until(fn, timeout, what, interval=0.25):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise CaseFailure("timed out after %.0f s waiting for %s (last: %s)" % (timeout, what, harness._short(last, 300)))


def check_multiset(got, want, what):
    got, want = sorted(got, key=repr), sorted(want, key=repr)
    if got == want:
        return
    from collections import Counter
    g, w = Counter(map(repr, got)), Counter(map(repr, want))
    extra = list((g - w).elements())[:4]
    missing = list((w - g).elements())[:4]
    raise CaseFailure("%s: %d records, want %d; unexpected %s; missing %s" % (
        what, len(got), len(want), harness._short(extra, 400), harness._short(missing, 400)))


TS_FMT = "yyyy-MM-dd HH:mm:ss.SSS"   # Flink's DATE_FORMAT, in the session time zone (UTC)


def utc(ms):
    """Epoch milliseconds as DATE_FORMAT(ts, TS_FMT) prints them in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)) + ".%03d" % (ms % 1000)


def base_ts():
    """A whole-minute CreateTime an hour ago: far from the broker's clock, so a timestamp the
    broker replaced (or lost) shows up."""
    return (int(time.time() * 1000) // 60000) * 60000 - 3600 * 1000


# ============================================================================================
# SQL / Table API

def kafka_table_ddl(name, columns, topic, bootstrap, **opts):
    o = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap, "format": "json"}
    o.update(opts)
    return "CREATE TABLE %s (%s) WITH (%s)" % (name, columns, ", ".join("'%s' = '%s'" % kv for kv in o.items()))


@case("sql_kafka_to_kafka_json")
def _(ctx):
    """kafka table -> kafka table, JSON, bounded by the latest offsets at start: a projection, a
    filter and the source's partition/offset/timestamp metadata columns, exact output."""
    src = ctx.create(ctx.topic("src"), 2)
    dst = ctx.create(ctx.topic("dst"), 1)
    base = base_ts()
    recs = [{"key": "k%d" % i, "value": json.dumps({"id": i, "name": "n%d" % i, "amount": i * 1.5,
                                                    "tag": None if i % 4 == 0 else "t%d" % (i % 3)}),
             "partition": i % 2, "timestamp": base + i * 1000} for i in range(40)]
    stored = ctx.produce(src, recs)
    t = table_env()
    t.execute_sql(kafka_table_ddl(
        "src", "id INT, name STRING, amount DOUBLE, tag STRING, "
        "p INT METADATA FROM 'partition' VIRTUAL, o BIGINT METADATA FROM 'offset' VIRTUAL, "
        "ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'", src, ctx.bootstrap,
        **{"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset",
           "properties.group.id": "unused-" + src}))
    t.execute_sql(kafka_table_ddl("dst", "id INT, name STRING, amount DOUBLE, tag STRING, p INT, o BIGINT, "
                                  "ts STRING", dst, ctx.bootstrap))
    t.execute_sql("INSERT INTO dst SELECT id, UPPER(name), amount * 2, tag, p, o, DATE_FORMAT(ts, '%s') "
                  "FROM src WHERE MOD(id, 5) <> 3" % TS_FMT).wait()
    want = []
    for r, (part, off, _k, _v, ts) in zip(recs, stored):
        d = json.loads(r["value"])
        if d["id"] % 5 == 3:
            continue
        want.append({"id": d["id"], "name": d["name"].upper(), "amount": d["amount"] * 2, "tag": d["tag"],
                     "p": part, "o": off, "ts": utc(ts)})
    got = ctx.consume(dst)
    rows = [json.loads(v) for (_p, _o, _k, v, _t) in got]
    check_multiset(rows, want, "output rows")
    check(all(k is None for (_p, _o, k, _v, _t) in got), "the kafka sink without key.fields wrote keys")


@case("sql_event_time_tumbling_windows")
def _(ctx):
    """Event time from the Kafka timestamp (CreateTime set by the producer, an hour in the past),
    watermarks `ts - 2 s`, 10 s TUMBLE windows per key over 2 partitions: exact counts per window."""
    src = ctx.create(ctx.topic("src"), 2)
    dst = ctx.create(ctx.topic("dst"), 1)
    base = base_ts()
    # offsets (s) inside three windows [0,10) [10,20) [20,30), slightly out of order within 2 s
    plan = [("a", 1), ("b", 2), ("a", 4), ("a", 3), ("b", 9.5), ("a", 11), ("b", 12), ("b", 14), ("b", 13),
            ("a", 19.9), ("a", 20), ("a", 25), ("b", 21), ("a", 28), ("b", 29.999)]
    recs = [{"key": k, "value": json.dumps({"k": k, "i": i}), "partition": i % 2,
             "timestamp": base + int(s * 1000)} for i, (k, s) in enumerate(plan)]
    ctx.produce(src, recs)
    t = table_env()
    t.execute_sql(kafka_table_ddl(
        "src", "k STRING, i INT, ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp', "
        "WATERMARK FOR ts AS ts - INTERVAL '2' SECOND", src, ctx.bootstrap,
        **{"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset"}))
    t.execute_sql(kafka_table_ddl("dst", "k STRING, window_start STRING, window_end STRING, n BIGINT",
                                  dst, ctx.bootstrap))
    t.execute_sql("INSERT INTO dst SELECT k, DATE_FORMAT(window_start, '%s'), DATE_FORMAT(window_end, '%s'), "
                  "COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)) "
                  "GROUP BY k, window_start, window_end" % (TS_FMT, TS_FMT)).wait()
    counts = {}
    for k, s in plan:
        w = base + int(s * 1000) // 10000 * 10000
        counts[(k, w)] = counts.get((k, w), 0) + 1
    want = [{"k": k, "window_start": utc(w), "window_end": utc(w + 10000), "n": n} for (k, w), n in counts.items()]
    rows = [json.loads(v) for (_p, _o, _k, v, _t) in ctx.consume(dst)]
    check_multiset(rows, want, "window counts")


@case("sql_event_time_late_record_dropped")
def _(ctx):
    """One partition, watermarks `ts - 2 s` emitted on every event (`scan.watermark.emit.strategy`
    = 'on-event'): a record for a window the watermark has passed is dropped, one inside the
    2 s bound is counted. Kafka timestamps drive it all: the records arrive within milliseconds."""
    src = ctx.create(ctx.topic("src"), 1)
    dst = ctx.create(ctx.topic("dst"), 1)
    base = base_ts()
    # (seconds, note): after 15.0 the watermark is 13.0, so window [0,10) has fired; 3.0 is late.
    # After 21.0 (watermark 19.0) 18.5 still lands in [10,20).
    plan = [1, 5, 15, 3, 12, 21, 18.5, 35]
    ctx.produce(src, [{"value": json.dumps({"i": i}), "partition": 0, "timestamp": base + int(sec * 1000)}
                      for i, sec in enumerate(plan)])
    t = table_env()
    t.execute_sql(kafka_table_ddl(
        "src", "i INT, ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp', WATERMARK FOR ts AS ts - INTERVAL '2' SECOND",
        src, ctx.bootstrap, **{"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset",
                               "scan.watermark.emit.strategy": "on-event"}))
    t.execute_sql(kafka_table_ddl("dst", "window_start STRING, n BIGINT, ids STRING", dst, ctx.bootstrap))
    t.execute_sql("INSERT INTO dst SELECT DATE_FORMAT(window_start, '%s'), COUNT(*), LISTAGG(CAST(i AS STRING)) "
                  "FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)) "
                  "GROUP BY window_start, window_end" % TS_FMT).wait()
    rows = [json.loads(v) for (_p, _o, _k, v, _t) in ctx.consume(dst)]
    got = sorted((r["window_start"], r["n"], sorted(int(x) for x in r["ids"].split(","))) for r in rows)
    want = [(utc(base), 2, [0, 1]), (utc(base + 10000), 3, [2, 4, 6]), (utc(base + 20000), 1, [5]),
            (utc(base + 30000), 1, [7])]
    check_eq(got, want, "windows (start, count, record indexes); record 3 (at 3 s) is late")


@case("sql_event_time_windows_log_append_time")
def _(ctx):
    """A `message.timestamp.type=LogAppendTime` topic, producer CreateTimes a day old: the `timestamp`
    metadata column and the windows follow the broker's append times (read back with librdkafka)."""
    src = ctx.create(ctx.topic("src"), 1, {"message.timestamp.type": "LogAppendTime"})
    dst = ctx.create(ctx.topic("dst"), 1)
    old = base_ts() - 86400 * 1000
    for i in range(3):   # three batches a little apart in broker time
        ctx.produce(src, [{"value": json.dumps({"i": i * 4 + j}), "partition": 0, "timestamp": old + j}
                          for j in range(4)])
        time.sleep(0.3)
    stored = ctx.consume(src)
    check(all(abs(ts - time.time() * 1000) < 120000 for (_p, _o, _k, _v, ts) in stored),
          "LogAppendTime not applied: %s" % [ts for (_p, _o, _k, _v, ts) in stored][:4])
    t = table_env()
    t.execute_sql(kafka_table_ddl(
        "src", "i INT, ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp', WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
        src, ctx.bootstrap, **{"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset"}))
    t.execute_sql(kafka_table_ddl("dst", "window_start STRING, n BIGINT", dst, ctx.bootstrap))
    t.execute_sql("INSERT INTO dst SELECT DATE_FORMAT(window_start, '%s'), COUNT(*) "
                  "FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) "
                  "GROUP BY window_start, window_end" % TS_FMT).wait()
    counts = {}
    for (_p, _o, _k, _v, ts) in stored:
        w = ts // 1000 * 1000
        counts[utc(w)] = counts.get(utc(w), 0) + 1
    rows = [json.loads(v) for (_p, _o, _k, v, _t) in ctx.consume(dst)]
    check_multiset(rows, [{"window_start": w, "n": n} for w, n in counts.items()], "1 s windows on append times")


@case("sql_upsert_kafka_compacted")
def _(ctx):
    """A two-level aggregation (events per user, then users per event count) into an `upsert-kafka`
    table on a compacted topic: updates are upserts by key and retracted groups tombstones. Read
    back with librdkafka and reduced to the latest value per key, and read by Flink's own
    upsert-kafka source (bounded) and materialised: both equal the final aggregate."""
    src = ctx.create(ctx.topic("src"), 2)
    dst = ctx.create(ctx.topic("dst"), 1, {"cleanup.policy": "compact", "segment.bytes": "4096",
                                          "min.cleanable.dirty.ratio": "0.01"})
    events = ["u1", "u2", "u1", "u3", "u1", "u2", "u4", "u1", "u5", "u3"]   # u1:4 u2:2 u3:2 u4:1 u5:1
    ctx.produce(src, [{"key": u, "value": json.dumps({"user": u, "i": i}), "partition": i % 2}
                      for i, u in enumerate(events)])
    t = table_env()
    t.execute_sql(kafka_table_ddl("src", "`user` STRING, i INT", src, ctx.bootstrap,
                                  **{"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset"}))
    up = {"connector": "upsert-kafka", "topic": dst, "properties.bootstrap.servers": ctx.bootstrap,
          "key.format": "json", "value.format": "json"}
    t.execute_sql("CREATE TABLE by_count (cnt BIGINT, users BIGINT, PRIMARY KEY (cnt) NOT ENFORCED) WITH (%s)"
                  % ", ".join("'%s' = '%s'" % kv for kv in up.items()))
    t.execute_sql("INSERT INTO by_count SELECT cnt, COUNT(*) FROM "
                  "(SELECT `user`, COUNT(*) AS cnt FROM src GROUP BY `user`) GROUP BY cnt").wait()
    per_user = {}
    for u in events:
        per_user[u] = per_user.get(u, 0) + 1
    final = {}
    for n in per_user.values():
        final[n] = final.get(n, 0) + 1                     # {4: 1, 2: 2, 1: 2}
    ever = set(range(1, max(per_user.values()) + 1))        # u1 passed through 1..4
    got = ctx.consume(dst)
    check(all(k is not None for (_p, _o, k, _v, _t) in got), "an upsert-kafka record without a key")
    latest = {}
    for (_p, _o, k, v, _t) in got:
        latest[json.loads(k)["cnt"]] = None if v is None else json.loads(v)
    want = {n: ({"cnt": n, "users": final[n]} if n in final else None) for n in ever}
    check_eq(latest, want, "latest value per key (None = tombstone)")
    check(any(v is None for (_p, _o, _k, v, _t) in got), "no tombstone written for the retracted count 3")
    # Flink reads its own changelog back: upsert-kafka source, bounded by the latest offsets
    t2 = table_env()
    up_src = dict(up, **{"scan.bounded.mode": "latest-offset"})
    t2.execute_sql("CREATE TABLE by_count (cnt BIGINT, users BIGINT, PRIMARY KEY (cnt) NOT ENFORCED) WITH (%s)"
                   % ", ".join("'%s' = '%s'" % kv for kv in up_src.items()))
    view = {}
    with t2.execute_sql("SELECT cnt, users FROM by_count").collect() as rows:
        for row in rows:
            kind = str(row.get_row_kind())
            if kind in ("+I", "+U", "INSERT", "UPDATE_AFTER", "RowKind.INSERT", "RowKind.UPDATE_AFTER"):
                view[row[0]] = row[1]
            elif kind in ("-D", "DELETE", "RowKind.DELETE"):
                view.pop(row[0], None)
    check_eq(view, final, "Flink's upsert-kafka source, materialised")


# ============================================================================================
# DataStream KafkaSource

def _numbered(topic_partitions, per_partition, base=None, step_ms=1000):
    """Records "p<P>-<i>" for each partition, CreateTime base + i * step_ms."""
    base = base or base_ts()
    return [{"key": "k%d" % i, "value": "p%d-%d" % (p, i), "partition": p, "timestamp": base + i * step_ms}
            for p in range(topic_partitions) for i in range(per_partition)]


@case("datastream_source_explicit_offsets")
def _(ctx):
    """KafkaSource from explicit per-partition offsets, bounded by explicit stopping offsets
    (exclusive) on one run and by the latest offsets on another."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    t = ctx.create(ctx.topic(), 3)
    ctx.produce(t, _numbered(3, 10))
    start = {0: 3, 1: 0, 2: 9}
    stop = {0: 8, 1: 1, 2: 10}
    env = stream_env()
    src = (source_builder(ctx, t)
           .set_starting_offsets(offsets_initializer({(t, p): o for p, o in start.items()}))
           .set_bounded(offsets_initializer({(t, p): o for p, o in stop.items()})).build())
    got = collect_values(from_source(env, src), "explicit-offsets")
    check_multiset(got, ["p%d-%d" % (p, i) for p in range(3) for i in range(start[p], stop[p])],
                   "explicit start and stop offsets")
    env = stream_env()
    src = (source_builder(ctx, t)
           .set_starting_offsets(offsets_initializer({(t, p): o for p, o in start.items()}))
           .set_bounded(KafkaOffsetsInitializer.latest()).build())
    got = collect_values(from_source(env, src), "explicit-offsets-to-latest")
    check_multiset(got, ["p%d-%d" % (p, i) for p in range(3) for i in range(start[p], 10)],
                   "explicit start offsets to latest")


@case("datastream_source_from_timestamp")
def _(ctx):
    """KafkaSource starting at a timestamp (ListOffsets by timestamp: the first record at or after it,
    inside a batch); a partition with no record that late starts at its end; records after the
    start offset with earlier timestamps are read too (offsets, not timestamps, bound the read)."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    t = ctx.create(ctx.topic(), 3)
    base = base_ts()
    recs = []
    for i in range(12):   # partition 0: one record per second
        recs.append({"value": "p0-%d" % i, "partition": 0, "timestamp": base + i * 1000})
    for i in range(12):   # partition 1: out of order after the target
        recs.append({"value": "p1-%d" % i, "partition": 1,
                     "timestamp": base + (i * 1000 if i != 9 else 1000)})
    for i in range(5):    # partition 2: everything before the target
        recs.append({"value": "p2-%d" % i, "partition": 2, "timestamp": base + i * 100})
    ctx.produce(t, recs)
    target = base + 6500
    env = stream_env()
    src = (source_builder(ctx, t).set_starting_offsets(KafkaOffsetsInitializer.timestamp(target))
           .set_bounded(KafkaOffsetsInitializer.latest()).build())
    got = collect_values(from_source(env, src), "from-timestamp")
    want = ["p0-%d" % i for i in range(7, 12)] + ["p1-%d" % i for i in range(7, 12)]
    check_multiset(got, want, "records from timestamp base+6.5 s")


@case("group_datastream_source_committed_offsets", timeout=120)
def _(ctx):
    """KafkaSource with a group id commits its offsets when a checkpoint completes (OffsetCommit
    outside a group generation); a new job starting from the committed offsets (reset strategy
    NONE: no fallback) reads exactly the records produced after them."""
    if not groups_enabled():
        raise Skip(broker_apis.NO_GROUPS_REASON)
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    t = ctx.create(ctx.topic(), 2)
    group = "flink-compat-" + t
    ctx.produce(t, _numbered(2, 6))
    env = stream_env(checkpoint_ms=500)
    src = (source_builder(ctx, t).set_group_id(group)
           .set_starting_offsets(KafkaOffsetsInitializer.earliest()).build())   # unbounded
    first = []
    t0 = time.time()
    with from_source(env, src).execute_and_collect("committed-offsets-1") as it:
        for v in it:
            first.append(v)
            if len(first) == 12:
                break
        ctx.log("first job: %d records after %.1f s" % (len(first), time.time() - t0))
        check_multiset(first, ["p%d-%d" % (p, i) for p in range(2) for i in range(6)], "first job")
        wait_until(lambda: ctx.committed(group, t, 2) == {0: 6, 1: 6}, 30,
                   "offsets 6/6 committed on checkpoint", interval=0.5)
        ctx.log("offsets committed after %.1f s" % (time.time() - t0))
    # the iterator's close cancelled the job; the committed offsets stay
    ctx.log("first job cancelled after %.1f s" % (time.time() - t0))
    check_eq(ctx.committed(group, t, 2), {0: 6, 1: 6}, "committed offsets after the job ended")
    ctx.produce(t, [{"value": "p%d-%d" % (p, i), "partition": p} for p in range(2) for i in range(6, 9)])
    env = stream_env()
    src = (source_builder(ctx, t).set_group_id(group)
           .set_starting_offsets(committed_initializer("NONE"))
           .set_bounded(KafkaOffsetsInitializer.latest()).build())
    got = collect_values(from_source(env, src), "committed-offsets-2")
    check_multiset(got, ["p%d-%d" % (p, i) for p in range(2) for i in range(6, 9)], "second job from committed offsets")


@case("datastream_partition_discovery", timeout=90)
def _(ctx):
    """An unbounded KafkaSource with `partition.discovery.interval.ms=1000`: partitions added with
    CreatePartitions while the job runs are discovered and read from their first offset."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    t = ctx.create(ctx.topic(), 1)
    ctx.produce(t, [{"value": "p0-%d" % i, "partition": 0} for i in range(5)])
    env = stream_env()
    src = (source_builder(ctx, t).set_starting_offsets(KafkaOffsetsInitializer.earliest())
           .set_property("partition.discovery.interval.ms", "1000").build())
    got = []
    want = ["p0-%d" % i for i in range(5)]
    with from_source(env, src).execute_and_collect("partition-discovery") as it:
        for v in it:
            got.append(v)
            if len(got) == 5:
                break
        check_multiset(got, want, "before the new partitions")
        ctx.add_partitions(t, 3)
        # produced before Flink can have seen the partitions: read from offset 0 once discovered
        new = [{"value": "p%d-%d" % (p, i), "partition": p} for p in (1, 2) for i in range(4)]
        new += [{"value": "p0-%d" % i, "partition": 0} for i in range(5, 7)]
        ctx.produce(t, new)
        want += [r["value"] for r in new]
        deadline = time.time() + 30
        for v in it:
            got.append(v)
            if len(got) >= len(want) or time.time() > deadline:
                break
    check_multiset(got, want, "records of the original and the added partitions")


# ============================================================================================
# KafkaSink, exactly once

def eos_sink(ctx_bootstrap, out_topic, prefix):
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink
    return (KafkaSink.builder().set_bootstrap_servers(ctx_bootstrap)
            .set_record_serializer(KafkaRecordSerializationSchema.builder().set_topic(out_topic)
                                   .set_value_serialization_schema(SimpleStringSchema()).build())
            .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
            .set_transactional_id_prefix(prefix)
            # Flink's default (1 h) is above Kafka's transaction.max.timeout.ms (15 min)
            .set_property("transaction.timeout.ms", "60000")
            .build())


@case("datastream_sink_exactly_once", timeout=90)
def _(ctx):
    """KafkaSource (bounded) -> KafkaSink with DeliveryGuarantee.EXACTLY_ONCE, checkpoints every
    300 ms: read_committed sees every input record exactly once; the output log holds transaction
    markers (its high watermark is above the record count)."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer
    src_t = ctx.create(ctx.topic("in"), 3)
    out_t = ctx.create(ctx.topic("out"), 1)
    ctx.produce(src_t, _numbered(3, 100))
    want = ["p%d-%d" % (p, i) for p in range(3) for i in range(100)]
    env = stream_env(checkpoint_ms=300)
    src = (source_builder(ctx, src_t).set_starting_offsets(KafkaOffsetsInitializer.earliest())
           .set_bounded(KafkaOffsetsInitializer.latest()).build())
    from_source(env, src).sink_to(eos_sink(ctx.bootstrap, out_t, "flink-compat-" + out_t))
    env.execute("eos-sink")
    rc = ctx.consume(out_t, "read_committed", want=len(want), timeout=30)
    check_multiset([_s(v) for (_p, _o, _k, v, _t) in rc], want, "read_committed output")
    ru = ctx.consume(out_t)
    check_multiset([_s(v) for (_p, _o, _k, v, _t) in ru], want, "read_uncommitted output (nothing aborted)")
    hi = ctx.watermarks(out_t)[0][1]
    check(hi > len(want), "high watermark %d not above %d records: no transaction markers" % (hi, len(want)))


def child_eos_job(bootstrap, a):
    """Child process: unbounded KafkaSource -> exactly-once KafkaSink, checkpoints retained in
    a['ckpt'], optionally restored from a['restore']; runs until killed."""
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer

    class C:
        pass
    c = C()
    c.bootstrap = bootstrap
    conf = {"execution.checkpointing.dir": "file://" + a["ckpt"],
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            "execution.checkpointing.num-retained": "2"}
    if a.get("restore"):
        conf["execution.state-recovery.path"] = "file://" + a["restore"]
    env = stream_env(checkpoint_ms=a.get("checkpoint_ms", 3000), conf=conf)
    src = (source_builder(c, a["input"]).set_starting_offsets(KafkaOffsetsInitializer.earliest())
           .set_property("partition.discovery.interval.ms", "0").build())
    from_source(env, src).uid("kafka-source").sink_to(eos_sink(bootstrap, a["output"], a["prefix"])).uid("kafka-sink")
    print("child job starting (restore: %s)" % a.get("restore"), flush=True)
    env.execute("eos-kill-restore")
    return 0


CHILDREN["eos_job"] = child_eos_job


def latest_checkpoint(ckpt_dir):
    """The newest completed checkpoint directory (chk-N with a _metadata file) or None."""
    best = None
    for root, dirs, files in os.walk(ckpt_dir):
        b = os.path.basename(root)
        if b.startswith("chk-") and "_metadata" in files:
            n = int(b[4:])
            if best is None or n > best[0]:
                best = (n, root)
    return best


@case("datastream_sink_exactly_once_kill_restore", timeout=180)
def _(ctx):
    """An exactly-once job (own process and JVM) is SIGKILLed mid-stream with a transaction open;
    a new process restores it from its last retained checkpoint: Flink commits the transactions
    of that checkpoint and aborts the lingering ones of its transactional id prefix (InitProducerId
    fencing). read_committed sees every input record exactly once."""
    src_t = ctx.create(ctx.topic("in"), 2)
    out_t = ctx.create(ctx.topic("out"), 1)
    ckpt = os.path.join(ctx.tmp, "ckpt")
    os.makedirs(ckpt)
    args = {"input": src_t, "output": out_t, "prefix": "flink-compat-" + out_t, "ckpt": ckpt}
    want = []
    batch = 0

    def produce_batch(n=20):
        nonlocal batch
        recs = [{"value": "b%d-p%d-%d" % (batch, p, i), "partition": p} for p in range(2) for i in range(n // 2)]
        ctx.produce(src_t, recs)
        want.extend(r["value"] for r in recs)
        batch += 1

    produce_batch()
    child = ctx.spawn_child("eos_job", args, "eos-child-1.log")
    # let it complete checkpoints with data flowing in between (one every 3 s)
    n = 0
    for _ in range(3):
        wait_until(lambda: (latest_checkpoint(ckpt) or (0,))[0] > n or child.poll() is not None,
                   90, "checkpoint %d of the child job" % (n + 1))
        check(child.poll() is None, "child job exited %s (log eos-child-1.log)" % child.poll())
        n = latest_checkpoint(ckpt)[0]
        produce_batch()
    # kill the job while a transaction holds records: a batch visible read_uncommitted in the
    # output but not yet committed (checkpoints every 3 s leave a wide window; retried if missed)
    from confluent_kafka import Consumer, TopicPartition
    watch = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": "flink-compat-check",
                      "enable.auto.commit": False, "isolation.level": "read_uncommitted", "fetch.wait.max.ms": 20})
    watch.assign([TopicPartition(out_t, 0, 0)])
    seen = set()
    for attempt in range(4):
        produce_batch()
        last = set(want[-20:])
        t_produced = time.time()
        while not last <= seen and time.time() < t_produced + 20:
            m = watch.poll(0.02)
            if m is not None and not m.error():
                seen.add(_s(m.value()))
        check(last <= seen, "the last batch did not reach the output within 20 s, read_uncommitted")
        t_seen = time.time()
        committed = {_s(v) for (_p, _o, _k, v, _t) in ctx.consume(out_t, "read_committed", want=0, grace=0.05)}
        ctx.log("attempt %d: last batch seen read_uncommitted after %.2f s, read_committed check %.2f s later: "
                "%d of it committed" % (attempt, t_seen - t_produced, time.time() - t_seen, len(last & committed)))
        if not last <= committed:
            sigkill_group(child)
            break
        ctx.log("attempt %d: the batch was committed before the kill; again" % attempt)
    else:
        raise CaseFailure("could not kill the job while a transaction was open (4 attempts)")
    watch.close()
    ckpt_n, ckpt_path = latest_checkpoint(ckpt)
    ru = ctx.consume(out_t)
    rc = ctx.consume(out_t, "read_committed", want=0, grace=1.5)
    open_txn = {_s(v) for (_p, _o, _k, v, _t) in ru} - {_s(v) for (_p, _o, _k, v, _t) in rc}
    ctx.log("killed after checkpoint %d (%s): output %d records read_uncommitted, %d read_committed; "
            "high watermark %s, last stable offset %s" % (ckpt_n, ckpt_path, len(ru), len(rc),
                                                          ctx.watermarks(out_t)[0][1],
                                                          ctx.watermarks(out_t, "read_committed")[0][1]))
    check(open_txn, "no records in an open transaction after the kill")
    produce_batch()
    child2 = ctx.spawn_child("eos_job", dict(args, restore=ckpt_path), "eos-child-2.log")
    produce_batch()

    def all_committed():
        check(child2.poll() is None, "restored job exited %s (log eos-child-2.log)" % child2.poll())
        return len(ctx.consume(out_t, "read_committed", want=len(want), timeout=5, grace=0.1)) >= len(want)
    wait_until(all_committed, 90, "every input record committed by the restored job", interval=1)
    time.sleep(6.5)   # two more checkpoints (3 s apart): nothing may be committed twice
    rc = ctx.consume(out_t, "read_committed", want=len(want), timeout=30, grace=2)
    ru = ctx.consume(out_t)
    sigkill_group(child2)
    check_multiset([_s(v) for (_p, _o, _k, v, _t) in rc], want, "read_committed output after kill and restore")
    # the lingering transaction's records were aborted and written again by the restored job
    again = [v for v in (_s(v) for (_p, _o, _k, v, _t) in ru) if v in open_txn]
    check(len(again) >= 2 * len(open_txn), "records of the killed job's open transaction: %d copies of %d "
          "read_uncommitted, want the aborted copy and the committed one" % (len(again), len(open_txn)))


# ============================================================================================
# the README example, as a user runs it

@case("readme_example", timeout=120)
def _(ctx):
    """compat/flink/example_sql_kafka_to_kafka.py, run as a user runs it (its own Python process
    and JVM, the jars passed with --jars): JSON orders -> per-order totals, exact output."""
    src = ctx.create(ctx.topic("orders"), 2)
    dst = ctx.create(ctx.topic("totals"), 1)
    orders = [{"order_id": i, "item": "item-%d" % (i % 3), "quantity": i % 4 + 1, "price": 2.5 * (i % 5 + 1)}
              for i in range(25)]
    ctx.produce(src, [{"key": str(o["order_id"]), "value": json.dumps(o), "partition": o["order_id"] % 2}
                      for o in orders])
    jars = os.environ.get("RIVULET_FLINK_JARS", "").split(",")
    cmd = [sys.executable, os.path.join(HERE, "example_sql_kafka_to_kafka.py"), "--bootstrap", ctx.bootstrap,
           "--input", src, "--output", dst, "--jars"] + jars
    log_path = os.path.join(os.environ.get("RIVULET_FLINK_LOG_DIR", ctx.tmp), "readme-example.log")
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             env=dict(os.environ, FLINK_IDENT_STRING="readme-example"))
        ctx.children.append(p)
        rc = p.wait(timeout=100)
    check(rc == 0, "example exited %s (log %s)" % (rc, log_path))
    want = [{"order_id": o["order_id"], "item": o["item"], "total": o["quantity"] * o["price"]}
            for o in orders if o["quantity"] >= 2]
    rows = [json.loads(v) for (_p, _o, _k, v, _t) in ctx.consume(dst)]
    check_multiset(rows, want, "totals")


# ============================================================================================
# driver

def run_cases(bootstrap, names):
    by_name = {n: (fn, t) for n, fn, t in CASES}
    t0 = time.time()
    from pyflink.java_gateway import get_gateway
    gw = get_gateway()
    print("# PyFlink gateway up in %.1f s (Flink %s)" % (
        time.time() - t0, gw.jvm.org.apache.flink.runtime.util.EnvironmentInformation.getVersion()), flush=True)
    for name in names:
        if name not in by_name:
            print("FAIL %s: no such case" % name, flush=True)
            continue
        fn, _ = by_name[name]
        print("START %s" % name, flush=True)
        print("=== %s" % name, file=sys.stderr, flush=True)
        ctx = Ctx(bootstrap, name)
        status, reason = "PASS", None
        try:
            fn(ctx)
        except Skip as e:
            status, reason = "SKIP", str(e)
        except CaseFailure as e:
            traceback.print_exc(file=sys.stderr)
            status, reason = "FAIL", str(e)
        except Exception as e:  # noqa: BLE001 - Flink/py4j/client errors are case failures
            traceback.print_exc(file=sys.stderr)
            status, reason = "FAIL", "%s: %s" % (type(e).__name__, _first_line(e))
        finally:
            try:
                ctx.cleanup()
            except Exception:  # noqa: BLE001
                traceback.print_exc(file=sys.stderr)
        if os.environ.get("RIVULET_FLINK_CHILD_PIDS"):
            open(os.environ["RIVULET_FLINK_CHILD_PIDS"], "w").close()   # the case reaped its children
        print("%s %s%s" % (status, name, (": " + reason.replace("\n", " | ")) if reason else ""), flush=True)


def _first_line(e):
    s = str(e).strip()
    if not s:
        return ""
    lines = s.splitlines()
    # py4j errors: the Java exception and its deepest "Caused by" say what happened
    causes = [ln.strip() for ln in lines if ln.strip().startswith("Caused by:")]
    out = lines[0][:300]
    if causes:
        out += " ... " + causes[-1][:300]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--cases", help="comma-separated case names, in order")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
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
