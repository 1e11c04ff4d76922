"""confluent-kafka (librdkafka) compatibility cases for the broker core, and consumer groups.

Core cases: every consumer uses assign() with explicit offsets and never commits (confluent-kafka
insists on a group.id, so a throw-away one is set; no offsets are stored).
group_* cases (subscribe, commit, resume, AdminClient group calls; group.protocol=classic) run
only when the broker advertises FindCoordinator + JoinGroup, else they SKIP.
No idempotence: enable.idempotence=false (librdkafka's default) is set explicitly, except in
idempotent_producer (InitProducerId; librdkafka has no DescribeProducers admin call).
"""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import case, check, check_eq, Skip  # noqa: E402

SETUP_ERROR = None
try:
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
except Exception as e:  # ImportError, or a broken native library
    SETUP_ERROR = "confluent-kafka not importable (%s: %s); run scripts/compat-setup.sh" % (
        type(e).__name__, e)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def client_version():
    return "confluent-kafka %s (librdkafka %s)" % (confluent_kafka.__version__, confluent_kafka.libversion()[0])


# ----------------------------------------------------------------------------- helpers

def admin(ctx):
    # keep one client per case alive: futures of a garbage-collected AdminClient fail with _DESTROY
    if getattr(ctx, "_admin", None) is None:
        ctx._admin = AdminClient({"bootstrap.servers": ctx.bootstrap})
    return ctx._admin


def create_topic(ctx, topic, partitions=1):
    fs = admin(ctx).create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=15, request_timeout=15)
    fs[topic].result(timeout=20)
    wait_partitions(ctx, topic, partitions)
    return topic


def wait_partitions(ctx, topic, partitions, timeout=10):
    a = admin(ctx)
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        md = a.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return md
        last = t.error if t is not None else "absent"
        time.sleep(0.1)
    raise harness.CaseFailure("topic %s never showed %d partitions in metadata (last: %s)" % (topic, partitions, last))


def produce(ctx, topic, records, conf=None, flush_every=None, debug_lines=None):
    """records: list of dicts with value/key/headers/timestamp/partition. Returns [(partition, offset)].
    debug_lines: a list that receives librdkafka's debug lines (conf "debug", default "msg")."""
    pconf = {"bootstrap.servers": ctx.bootstrap, "enable.idempotence": False, "linger.ms": 50,
             "message.timeout.ms": 30000}
    pconf.update(conf or {})
    codec = pconf.get("compression.type", "none")
    wire_log = None
    if codec != "none" or debug_lines is not None:
        # librdkafka silently sends uncompressed batches when it thinks the broker lacks the codec
        # (feature checks on ApiVersions: Produce v0-v2 for gzip/snappy before librdkafka 2.10,
        # FindCoordinator v0 for lz4): watch its per-batch debug lines to see the codec on the wire
        wire_log = _LogCapture()
        pconf.setdefault("debug", "msg")
        p = Producer(pconf, logger=wire_log.logger)
    else:
        p = Producer(pconf)
    reports = [None] * len(records)

    def cb(i):
        def _cb(err, msg):
            reports[i] = (err, msg.partition(), msg.offset())
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
        if flush_every and (i + 1) % flush_every == 0:
            p.flush(30)
    left = p.flush(30)
    check(left == 0, "%d records still undelivered after flush(30)" % left)
    out = []
    for i, rep in enumerate(reports):
        check(rep is not None, "no delivery report for record %d" % i)
        err, part, off = rep
        check(err is None, "delivery of record %d failed: %s" % (i, err))
        out.append((part, off))
    if wire_log is not None and codec != "none":
        check_wire_codec(wire_log.lines, codec)
    if debug_lines is not None:
        debug_lines.extend(wire_log.lines)
    return out


class _LogCapture:
    def __init__(self):
        import logging
        self.lines = []
        cap = self

        class H(logging.Handler):
            def emit(self, record):
                cap.lines.append(record.getMessage())

        self.logger = logging.getLogger("rdkafka-%s" % uuid.uuid4().hex[:8])
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(H())


def check_wire_codec(lines, codec):
    """From librdkafka's `debug=msg` lines: every produced batch must carry the requested codec."""
    refused = [l for l in lines if "does not support compression type" in l]
    check(not refused, "librdkafka sent the batches uncompressed: %s" % (refused[0].split("]: ")[-1] if refused else ""))
    sent = [l.rstrip(")").rsplit(", ", 1)[-1] for l in lines if "Produce MessageSet with" in l]
    check(sent, "no 'Produce MessageSet' debug line from librdkafka: cannot tell the codec on the wire")
    check(all(c == codec for c in sent), "codecs of the produced batches %s, want all %s" % (sorted(set(sent)), codec))


def consume(ctx, topic, partition, offset, count, timeout=20.0, extra_wait=0.3, conf=None):
    cconf = {"bootstrap.servers": ctx.bootstrap, "group.id": "compat-unused-" + uuid.uuid4().hex[:8],
             "enable.auto.commit": False, "enable.auto.offset.store": False,
             "auto.offset.reset": "error", "enable.partition.eof": False}
    cconf.update(conf or {})
    c = Consumer(cconf)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        got = []
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                raise harness.CaseFailure("consumer error at %d/%d records: %s" % (len(got), count, m.error()))
            got.append(m)
        if len(got) == count and extra_wait:
            end = time.time() + extra_wait
            while time.time() < end:
                m = c.poll(0.1)
                if m is not None and not m.error():
                    got.append(m)
        return [{"partition": m.partition(), "offset": m.offset(), "key": m.key(), "value": m.value(),
                 "headers": m.headers() or [], "timestamp": m.timestamp()[1], "topic": m.topic()}
                for m in got]
    finally:
        c.close()


def check_records(got, records, first_offset=0, partition=0, check_ts=False):
    check_eq(len(got), len(records), "number of consumed records")
    for i, (g, r) in enumerate(zip(got, records)):
        where = "record %d" % i
        check_eq(g["partition"], partition, where + " partition")
        check_eq(g["offset"], first_offset + i, where + " offset")
        check_eq(g["key"], r.get("key"), where + " key")
        check_eq(g["value"], r.get("value"), where + " value")
        check_eq(g["headers"], list(r.get("headers") or []), where + " headers")
        if check_ts and r.get("timestamp") is not None:
            check_eq(g["timestamp"], r["timestamp"], where + " timestamp")


def check_offsets(reports, partition, first=0):
    want = [(partition, first + i) for i in range(len(reports))]
    check_eq(reports, want, "delivery reports (partition, offset)")


def watermarks(ctx, topic, partition):
    c = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": "compat-unused-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def simple_records(n, tag="v", key=True, size=0):
    pad = (b" lorem ipsum dolor sit amet" * (size // 27 + 1))[:size]
    return [{"key": (b"key-%d" % i) if key else None, "value": b"%s-%06d" % (tag.encode(), i) + pad,
             "headers": [("idx", b"%d" % i)]} for i in range(n)]


# ----------------------------------------------------------------------------- cases

@case("admin_create_describe_delete")
def _(ctx):
    a = admin(ctx)
    topic = ctx.topic()
    fs = a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], operation_timeout=15)
    fs[topic].result(timeout=20)
    md = wait_partitions(ctx, topic, 2)
    t = md.topics[topic]
    check_eq(sorted(t.partitions), [0, 1], "partition ids")
    broker_ids = set(md.brokers)
    for pid, pm in t.partitions.items():
        check(pm.leader in broker_ids, "partition %d leader %s not among brokers %s" % (pid, pm.leader, broker_ids))
        check_eq(list(pm.replicas), [pm.leader], "partition %d replicas" % pid)
    # describe_topics (Metadata / DescribeTopicPartitions underneath)
    from confluent_kafka import TopicCollection
    desc = a.describe_topics(TopicCollection([topic]), request_timeout=15)[topic].result(timeout=20)
    check_eq(desc.name, topic, "describe_topics name")
    check_eq(len(desc.partitions), 2, "describe_topics partition count")
    # creating it again is TOPIC_ALREADY_EXISTS
    fs = a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], operation_timeout=15)
    try:
        fs[topic].result(timeout=20)
        raise harness.CaseFailure("second create_topics of %s succeeded, want TOPIC_ALREADY_EXISTS" % topic)
    except KafkaException as e:
        check_eq(e.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS, "second create error code")
    # delete
    a.delete_topics([topic], operation_timeout=15)[topic].result(timeout=20)
    deadline = time.time() + 10
    while time.time() < deadline:
        if topic not in a.list_topics(timeout=5).topics:
            break
        time.sleep(0.2)
    else:
        raise harness.CaseFailure("deleted topic still listed after 10 s")


@case("admin_create_invalid")
def _(ctx):
    a = admin(ctx)
    bad = "compat-bad/name-" + uuid.uuid4().hex[:6]
    try:
        a.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1)], operation_timeout=10)[bad].result(timeout=20)
        raise harness.CaseFailure("create_topics(%r) succeeded, want INVALID_TOPIC_EXCEPTION" % bad)
    except KafkaException as e:
        check_eq(e.args[0].code(), KafkaError.TOPIC_EXCEPTION, "invalid topic name error code")
    topic = ctx.topic()
    try:
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)], operation_timeout=10)[topic].result(timeout=20)
        raise harness.CaseFailure("replication_factor=3 on one broker succeeded, want INVALID_REPLICATION_FACTOR")
    except KafkaException as e:
        check_eq(e.args[0].code(), KafkaError.INVALID_REPLICATION_FACTOR, "replication factor error code")


@case("admin_create_partitions")
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 1)
    a = admin(ctx)
    a.create_partitions([NewPartitions(topic, 3)], operation_timeout=15)[topic].result(timeout=20)
    wait_partitions(ctx, topic, 3)
    # the new partition is usable
    recs = simple_records(3)
    for r in recs:
        r["partition"] = 2
    check_offsets(produce(ctx, topic, recs), 2)
    check_records(consume(ctx, topic, 2, 0, 3), recs, partition=2)


@case("admin_create_partitions_same_count")
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 2)
    a = admin(ctx)
    for count, what in [(1, "fewer partitions"), (2, "the current count")]:
        # Kafka: "The topic T currently has 2 partition(s); 1 would not be an increase." and
        # "Topic already has 2 partition(s)." (ReplicationControlManager), both INVALID_PARTITIONS
        try:
            a.create_partitions([NewPartitions(topic, count)], operation_timeout=15)[topic].result(timeout=20)
            raise harness.CaseFailure("create_partitions to %s succeeded, want INVALID_PARTITIONS" % what)
        except KafkaException as e:
            check_eq(e.args[0].code(), KafkaError.INVALID_PARTITIONS, "create_partitions to %s: error code" % what)


@case("admin_describe_cluster")
def _(ctx):
    a = admin(ctx)
    desc = a.describe_cluster(request_timeout=15).result(timeout=20)
    check(desc.cluster_id, "empty cluster_id")
    check_eq(len(desc.nodes), 1, "number of nodes")
    host, port = ctx.bootstrap.rsplit(":", 1)
    n = desc.nodes[0]
    check_eq((n.host, n.port), (host, int(port)), "advertised node address")
    check(desc.controller is not None, "no controller")


@case("auto_create_on_metadata")
def _(ctx):
    topic = ctx.topic()
    recs = simple_records(3)
    check_offsets(produce(ctx, topic, recs), 0)
    md = admin(ctx).list_topics(topic=topic, timeout=10)
    check(topic in md.topics and md.topics[topic].error is None, "auto-created topic not in metadata")
    check_records(consume(ctx, topic, 0, 0, 3), recs)


@case("headers_roundtrip")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [
        {"key": b"k0", "value": b"one header", "headers": [("a", b"1")]},
        {"key": b"k1", "value": b"repeated + empty", "headers": [("a", b"1"), ("a", b"2"), ("b", b"")]},
        {"key": b"k2", "value": b"no headers", "headers": []},
        {"key": b"k3", "value": b"null header value", "headers": [("n", None)]},
        {"key": b"k4", "value": b"binary", "headers": [("\u043a\u043b\u044e\u0447", b"\x00\xff\x01 bin"), ("z", b"x" * 1000)]},
    ]
    check_offsets(produce(ctx, topic, recs), 0)
    check_records(consume(ctx, topic, 0, 0, len(recs)), recs)


@case("null_key")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [{"key": None, "value": b"null key 0"}, {"key": b"", "value": b"empty key"},
            {"key": None, "value": b"null key 2"}, {"key": b"k", "value": b"key k"}]
    check_offsets(produce(ctx, topic, recs), 0)
    check_records(consume(ctx, topic, 0, 0, len(recs)), recs)


@case("null_value_tombstone")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [{"key": b"k", "value": b"live"}, {"key": b"k", "value": None},
            {"key": b"e", "value": b""}, {"key": b"k2", "value": None, "headers": [("h", b"v")]}]
    check_offsets(produce(ctx, topic, recs), 0)
    check_records(consume(ctx, topic, 0, 0, len(recs)), recs)


def _compression_case(codec):
    def run(ctx):
        topic = create_topic(ctx, ctx.topic("comp-" + codec))
        recs = simple_records(200, tag=codec, size=100)
        reps = produce(ctx, topic, recs, conf={"compression.type": codec, "linger.ms": 200,
                                               "batch.num.messages": 10000})
        check_offsets(reps, 0)
        check_records(consume(ctx, topic, 0, 0, len(recs)), recs)
        check_eq(watermarks(ctx, topic, 0), (0, 200), "watermarks (low, high)")
    return run


for _codec in CODECS:
    case("compression_" + _codec)(_compression_case(_codec))


def _acks_case(acks):
    def run(ctx):
        topic = create_topic(ctx, ctx.topic())
        recs = simple_records(100)
        check_offsets(produce(ctx, topic, recs, conf={"acks": acks, "linger.ms": 5}, flush_every=25), 0)
        check_records(consume(ctx, topic, 0, 0, len(recs)), recs)
    return run


case("acks_1")(_acks_case("1"))
case("acks_all")(_acks_case("all"))


@case("multi_partition_explicit")
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 3)
    counts = {0: 3, 1: 5, 2: 7}
    recs = []
    for p, n in counts.items():
        for i in range(n):
            recs.append({"key": b"k%d" % i, "value": b"p%d-%d" % (p, i), "partition": p})
    reps = produce(ctx, topic, recs)
    for p, n in counts.items():
        got = [rep for rep, r in zip(reps, recs) if r["partition"] == p]
        check_eq(got, [(p, i) for i in range(n)], "delivery reports for partition %d" % p)
        want = [r for r in recs if r["partition"] == p]
        check_records(consume(ctx, topic, p, 0, n), want, partition=p)
        check_eq(watermarks(ctx, topic, p), (0, n), "watermarks of partition %d" % p)


def _mid_batch_case(codec):
    def run(ctx):
        topic = create_topic(ctx, ctx.topic())
        recs = simple_records(10)
        check_offsets(produce(ctx, topic, recs, conf={"linger.ms": 200, "compression.type": codec}), 0)
        got = consume(ctx, topic, 0, 4, 6)
        check(got, "nothing consumed from offset 4")
        check_eq(got[0]["offset"], 4, "first offset returned when assigned at 4")
        check_records(got, recs[4:], first_offset=4)
    return run


case("fetch_mid_batch")(_mid_batch_case("none"))
case("fetch_mid_batch_compressed")(_mid_batch_case("zstd"))


@case("many_batches_contiguous")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = simple_records(3000, size=20)
    check_offsets(produce(ctx, topic, recs, conf={"linger.ms": 2, "batch.size": 4096}), 0)
    got = consume(ctx, topic, 0, 0, 3000, timeout=40)
    check_records(got, recs)
    check_eq(watermarks(ctx, topic, 0), (0, 3000), "watermarks")


@case("list_offsets_earliest_latest")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    check_eq(watermarks(ctx, topic, 0), (0, 0), "watermarks of an empty partition")
    recs = simple_records(20)
    check_offsets(produce(ctx, topic, recs, conf={"linger.ms": 100}, flush_every=10), 0)
    check_eq(watermarks(ctx, topic, 0), (0, 20), "watermarks (low, high) after 20 records")
    from confluent_kafka.admin import OffsetSpec
    a = admin(ctx)
    tp = TopicPartition(topic, 0)
    res = a.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=15)[tp].result(timeout=20)
    check_eq(res.offset, 0, "list_offsets earliest")
    res = a.list_offsets({tp: OffsetSpec.latest()}, request_timeout=15)[tp].result(timeout=20)
    check_eq(res.offset, 20, "list_offsets latest")


@case("list_offsets_max_timestamp")
def _(ctx):
    from confluent_kafka.admin import OffsetSpec
    topic = create_topic(ctx, ctx.topic())
    base = int(time.time() * 1000) - 60000
    recs = [{"key": b"k%d" % i, "value": b"v%d" % i, "timestamp": base + i} for i in range(10)]
    recs[6]["timestamp"] = base + 50000
    check_offsets(produce(ctx, topic, recs, conf={"linger.ms": 200}), 0)
    tp = TopicPartition(topic, 0)
    res = admin(ctx).list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=15)[tp].result(timeout=20)
    check_eq((res.offset, res.timestamp), (6, base + 50000), "max_timestamp (offset, timestamp)")


@case("offsets_for_times")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    base = int(time.time() * 1000) - 600000
    recs = [{"key": b"k%d" % i, "value": b"v%d" % i, "timestamp": base + 1000 * i} for i in range(10)]
    check_offsets(produce(ctx, topic, recs, conf={"linger.ms": 200}), 0)
    check_records(consume(ctx, topic, 0, 0, 10), recs, check_ts=True)
    c = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": "compat-unused-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False})
    try:
        for target, want in [(base - 5, 0), (base, 0), (base + 3500, 4), (base + 9000, 9), (base + 9001, -1)]:
            res = c.offsets_for_times([TopicPartition(topic, 0, target)], timeout=10)
            check(res[0].error is None, "offsets_for_times(%d) error %s" % (target - base, res[0].error))
            check_eq(res[0].offset, want, "offsets_for_times(base+%d)" % (target - base))
    finally:
        c.close()


@case("idempotent_producer")
def _(ctx):
    # enable.idempotence=true: librdkafka sends InitProducerId, forces acks=all and numbers each
    # batch (PID, epoch, BaseSeq). 3 partitions, zstd, several batches per partition.
    topic = create_topic(ctx, ctx.topic(), 3)
    counts = {0: 40, 1: 25, 2: 55}
    recs = []
    for i in range(max(counts.values())):
        for p, n in counts.items():
            if i < n:
                recs.append({"key": b"k%d-%d" % (p, i), "value": b"idem-p%d-%06d" % (p, i),
                             "headers": [("idx", b"%d" % i)], "partition": p})
    lines = []
    try:
        reps = produce(ctx, topic, recs, conf={"enable.idempotence": True, "compression.type": "zstd",
                                               "linger.ms": 20, "batch.num.messages": 15,
                                               "debug": "eos,msg"},
                       flush_every=40, debug_lines=lines)
    except Exception as e:
        # e.g. without InitProducerId: confluent-kafka raises librdkafka's fatal _UNSUPPORTED_FEATURE
        # ("Idempotent producer not supported by any of the 1 connected broker(s)") out of
        # flush(), chained under a SystemError from the delivery callback
        cause = e
        while cause is not None and not isinstance(cause, KafkaException):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise harness.CaseFailure("producer error: %s" % cause)
    for p, n in counts.items():
        check_eq([rep for rep, r in zip(reps, recs) if r["partition"] == p], [(p, i) for i in range(n)],
                 "delivery reports for partition %d" % p)
        check_records(consume(ctx, topic, p, 0, n), [r for r in recs if r["partition"] == p], partition=p)
        check_eq(watermarks(ctx, topic, p), (0, n), "watermarks of partition %d" % p)
    # the batches really went out idempotent: one PID acquired, every batch carries it, and each
    # partition's batches number its records 0..n-1 (librdkafka's debug=eos,msg lines)
    import re
    pids = [m.group(1) for m in (re.search(r"Acquired (PID\{Id:\d+,Epoch:\d+\})", l) for l in lines) if m]
    check_eq(len(pids), 1, "InitProducerId results ('Acquired PID{...}' debug lines: %s)" % pids)
    check(pids[0].endswith(",Epoch:0}"), "acquired %s, want epoch 0" % pids[0])
    sets = [re.search(r"\[(\d+)\]: Produce MessageSet with (\d+) message.*BaseSeq (-?\d+), (PID\{[^}]*\})", l)
            for l in lines if "Produce MessageSet with" in l]
    check(sets and all(sets), "cannot parse librdkafka's 'Produce MessageSet' lines: %s" % [
        l for l in lines if "Produce MessageSet with" in l][:2])
    check_eq(sorted({m.group(4) for m in sets}), pids, "PIDs on the produced batches")
    for p, n in counts.items():
        seqs = sorted({(int(m.group(3)), int(m.group(2))) for m in sets if int(m.group(1)) == p})
        covered = []
        for base, cnt in seqs:
            covered.extend(range(base, base + cnt))
        check(len(seqs) > 1, "partition %d: only %d batch(es), want several" % (p, len(seqs)))
        check_eq(covered, list(range(n)), "partition %d: sequence numbers of the batches" % p)


@case("large_record")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [{"key": b"big", "value": os.urandom(700 * 1024)}, {"key": b"small", "value": b"after"}]
    check_offsets(produce(ctx, topic, recs), 0)
    check_records(consume(ctx, topic, 0, 0, 2), recs)


# ----------------------------------------------------------------------------- consumer groups
# group_* cases: run only when the broker advertises FindCoordinator + JoinGroup (lib/harness.py).

GROUP_TIMEOUT = 90   # seconds per group case (fresh groups wait out the 3 s initial rebalance delay)

def group_id(ctx, tag=None):
    return harness.unique_topic("group-" + (tag or ctx.case_name))


def group_consumer(ctx, group, client_id, **over):
    conf = {"bootstrap.servers": ctx.bootstrap, "group.id": group, "group.protocol": "classic",
            "client.id": client_id, "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 500}
    conf.update(over)
    return Consumer(conf)


def produce_keyed(ctx, topic, partitions, per_partition, phase):
    """per_partition records to each partition, key '<phase>-<p>-<i>'; returns
    {key: (partition, offset, value)} from the delivery reports."""
    recs = [{"key": b"%s-%d-%d" % (phase.encode(), p, i), "value": b"value-%s-%d-%d" % (phase.encode(), p, i),
             "partition": p} for i in range(per_partition) for p in range(partitions)]
    reps = produce(ctx, topic, recs, conf={"linger.ms": 5})
    out = {}
    for r, (part, off) in zip(recs, reps):
        check_eq(part, r["partition"], "delivery report partition of %s" % r["key"])
        out[r["key"]] = (part, off, r["value"])
    return out


def check_exactly_once(got, want):
    """got: [(member, partition, offset, key, value)]; every wanted record consumed exactly once, at its
    acknowledged partition/offset with its value; nothing else."""
    by_key = {}
    unexpected = []
    for g in got:
        if g[3] in want:
            by_key.setdefault(g[3], []).append(g)
        else:
            unexpected.append(g)
    missing = [k for k in want if k not in by_key]
    dups = [(k, v) for k, v in by_key.items() if len(v) > 1]
    wrong = [(v[0], want[k]) for k, v in by_key.items() if (v[0][1], v[0][2], v[0][4]) != want[k]]
    check(not (missing or dups or wrong or unexpected),
          "%d records: %d never consumed %s; %d consumed more than once %s; %d with other partition/offset/value %s; "
          "%d unexpected %s" % (len(want), len(missing), missing[:3], len(dups), dups[:2], len(wrong), wrong[:3],
                                len(unexpected), unexpected[:3]))


class Pump:
    """Polls a set of consumers in turn (one thread; librdkafka runs the group protocol in its own
    threads and serves rebalances from poll)."""

    def __init__(self, consumers):
        self.cs = consumers
        self.got = []

    def run(self, seconds, until=None):
        end = time.time() + seconds
        while time.time() < end:
            for i, c in enumerate(self.cs):
                m = c.poll(0.05)
                if m is None:
                    continue
                if m.error():
                    raise harness.CaseFailure("consumer %d error: %s" % (i, m.error()))
                self.got.append((i, m.partition(), m.offset(), m.key(), m.value()))
            if until is not None and until():
                return True
        return until is None

    def assignments(self):
        return [sorted(tp.partition for tp in c.assignment()) for c in self.cs]

    def wait_split(self, partitions, timeout=30):
        """Until the assignments are non-empty, disjoint, cover every partition and hold for 1 s."""
        deadline = time.time() + timeout
        last, since = None, None
        while time.time() < deadline:
            self.run(0.1)
            asg = self.assignments()
            ok = all(asg) and sorted(sum(asg, [])) == list(range(partitions))
            if not ok:
                since = None
            elif asg != last or since is None:
                since = time.time()
            elif time.time() - since >= 1.0:
                return asg
            last = asg
        raise harness.CaseFailure("the group did not settle on disjoint non-empty assignments covering %d partitions "
                                  "within %d s (last: %s)" % (partitions, timeout, last))

    def distinct(self):
        return len({g[3] for g in self.got})


def committed_view(tps):
    return {tp.partition: (tp.offset, tp.metadata, tp.leader_epoch) for tp in tps}


@case("group_two_consumers_split", timeout=GROUP_TIMEOUT)
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 4)
    group = group_id(ctx)
    cs = [group_consumer(ctx, group, "split-%d" % i) for i in range(2)]
    try:
        for c in cs:
            c.subscribe([topic])
        pump = Pump(cs)
        asg = pump.wait_split(4)
        want = produce_keyed(ctx, topic, 4, 5, "a")
        pump.run(20, until=lambda: pump.distinct() >= len(want))
        pump.run(0.6)
        check_exactly_once(pump.got, want)
        for g in pump.got:
            check(g[1] in asg[g[0]], "consumer %d consumed %s of partition %d, assigned %s" % (g[0], g[3], g[1], asg[g[0]]))
        check_eq(sorted(len(a) for a in asg), [2, 2], "partitions per consumer (range assignor, 4 over 2)")
    finally:
        for c in cs:
            c.close()


@case("group_commit_resume", timeout=GROUP_TIMEOUT)
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 3)
    group = group_id(ctx)
    want = produce_keyed(ctx, topic, 3, 10, "a")
    tps = [TopicPartition(topic, p) for p in range(3)]
    a = group_consumer(ctx, group, "commit-a")
    try:
        a.subscribe([topic])
        pump = Pump([a])
        pump.run(30, until=lambda: pump.distinct() >= 30)
        check_exactly_once(pump.got, want)
        # synchronous commits: explicit offsets (with metadata), then a message (offset + 1, its leader epoch)
        res = a.commit(offsets=[TopicPartition(topic, 0, 4, metadata="meta-p0"), TopicPartition(topic, 1, 10)],
                       asynchronous=False)
        check_eq(sorted((tp.partition, tp.offset, tp.error) for tp in res), [(0, 4, None), (1, 10, None)],
                 "commit(offsets) result (partition, offset, error)")
        msgs = {}
        c2 = group_consumer(ctx, "compat-unused-" + uuid.uuid4().hex[:8], "fetch-p2")
        try:   # the Message object of partition 2 offset 6, for commit(message=...)
            c2.assign([TopicPartition(topic, 2, 6)])
            deadline = time.time() + 15
            while 6 not in msgs and time.time() < deadline:
                m = c2.poll(0.2)
                if m is not None and not m.error():
                    msgs[m.offset()] = m
            check(6 in msgs, "could not fetch partition 2 offset 6")
            res = a.commit(message=msgs[6], asynchronous=False)
        finally:
            c2.close()
        check_eq([(tp.partition, tp.offset, tp.error) for tp in res], [(2, 7, None)], "commit(message) result")
        epoch = msgs[6].leader_epoch()
        check_eq(committed_view(a.committed(tps, timeout=15)),
                 {0: (4, "meta-p0", None), 1: (10, None, None), 2: (7, None, epoch)},
                 "committed() (offset, metadata (confluent-kafka: None when empty), leader epoch)")
    finally:
        a.close()
    # a new member of the group resumes at exactly the committed offsets
    b = group_consumer(ctx, group, "commit-b")
    try:
        b.subscribe([topic])
        pump = Pump([b])
        old = {k: v for k, v in want.items() if (v[0] == 0 and v[1] >= 4) or (v[0] == 2 and v[1] >= 7)}
        pump.run(30, until=lambda: pump.distinct() >= len(old))
        more = produce_keyed(ctx, topic, 3, 2, "b")
        pump.run(20, until=lambda: pump.distinct() >= len(old) + len(more))
        pump.run(0.6)
        check_exactly_once(pump.got, {**old, **more})
        first = {}
        for g in pump.got:
            first.setdefault(g[1], g[2])
        check_eq(first, {0: 4, 1: 10, 2: 7}, "first offset consumed per partition after resuming")
        res = b.commit(asynchronous=False)   # the current positions
        check_eq(sorted((tp.partition, tp.offset, tp.error) for tp in res), [(p, 12, None) for p in range(3)],
                 "commit() of the positions")
    finally:
        b.close()
    c = group_consumer(ctx, group, "commit-check")
    try:   # committed() without joining the group (OffsetFetch only)
        check_eq({p: v[0] for p, v in committed_view(c.committed(tps, timeout=15)).items()}, {0: 12, 1: 12, 2: 12},
                 "committed offsets after the second member's commit()")
    finally:
        c.close()


@case("group_admin", timeout=GROUP_TIMEOUT)
def _(ctx):
    from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions
    topic = create_topic(ctx, ctx.topic(), 2)
    group = group_id(ctx)
    a = admin(ctx)
    names = ["compat-admin-a", "compat-admin-b"]
    cs = [group_consumer(ctx, group, n) for n in names]
    closed = False
    try:
        for c in cs:
            c.subscribe([topic])
        pump = Pump(cs)
        asg = pump.wait_split(2)
        want = produce_keyed(ctx, topic, 2, 5, "a")
        pump.run(20, until=lambda: pump.distinct() >= 10)
        check_exactly_once(pump.got, want)
        for c in cs:
            c.commit(asynchronous=False)

        res = a.list_consumer_groups(request_timeout=15).result(timeout=20)
        check_eq(res.errors, [], "list_consumer_groups errors")
        mine = [g for g in res.valid if g.group_id == group]
        check_eq(len(mine), 1, "list_consumer_groups entries for the group")
        check_eq(mine[0].state, ConsumerGroupState.STABLE, "list_consumer_groups state")
        check_eq(mine[0].is_simple_consumer_group, False, "list_consumer_groups is_simple_consumer_group")
        for states, listed in [({ConsumerGroupState.STABLE}, True), ({ConsumerGroupState.EMPTY}, False)]:
            r = a.list_consumer_groups(states=states, request_timeout=15).result(timeout=20)
            check_eq(any(g.group_id == group for g in r.valid), listed, "listed with states=%s" % states)

        d = a.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
        check_eq((d.group_id, d.state, d.partition_assignor, d.is_simple_consumer_group),
                 (group, ConsumerGroupState.STABLE, "range", False), "describe (group, state, assignor, simple)")
        node_id = list(a.list_topics(timeout=10).brokers)[0]
        check_eq(d.coordinator.id, node_id, "describe: coordinator id")
        by_id = {c.memberid(): (n, c) for n, c in zip(names, cs)}
        check_eq(sorted(m.member_id for m in d.members), sorted(by_id), "describe: member ids")
        for m in d.members:
            n, c = by_id[m.member_id]
            check_eq(m.client_id, n, "describe: client id of %s" % n)
            check("127.0.0.1" in (m.host or ""), "describe: host of %s is %r" % (n, m.host))
            check_eq(m.group_instance_id, None, "describe: instance id of %s" % n)
            check_eq(sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions),
                     sorted((tp.topic, tp.partition) for tp in c.assignment()), "describe: assignment of %s" % n)

        r = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=15)[group].result(timeout=20)
        check_eq(sorted((tp.topic, tp.partition, tp.offset, tp.error) for tp in r.topic_partitions),
                 [(topic, 0, 5, None), (topic, 1, 5, None)], "list_consumer_group_offsets")

        try:
            a.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
            raise harness.CaseFailure("delete_consumer_groups of a group with active members succeeded, want NON_EMPTY_GROUP")
        except KafkaException as e:
            check_eq(e.args[0].code(), KafkaError.NON_EMPTY_GROUP, "delete_consumer_groups while members are active")

        for c in cs:
            c.close()   # LeaveGroup
        closed = True
        deadline = time.time() + 15
        while True:
            d = a.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
            if d.state == ConsumerGroupState.EMPTY or time.time() > deadline:
                break
            time.sleep(0.1)
        check_eq((d.state, len(d.members)), (ConsumerGroupState.EMPTY, 0), "describe after both members left")
        a.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
        res = a.list_consumer_groups(request_timeout=15).result(timeout=20)
        check(all(g.group_id != group for g in res.valid), "list_consumer_groups still lists the deleted group")
        try:
            a.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
            raise harness.CaseFailure("deleting the deleted group again succeeded, want GROUP_ID_NOT_FOUND")
        except KafkaException as e:
            check_eq(e.args[0].code(), KafkaError.GROUP_ID_NOT_FOUND, "delete_consumer_groups of a deleted group")
    finally:
        if not closed:
            for c in cs:
                c.close()


# ----------------------------------------------------------------------------- transactions

@case("txn_commit_abort")
def _(ctx):
    topic = create_topic(ctx, harness.unique_topic("txn"))
    p = Producer({"bootstrap.servers": ctx.bootstrap, "transactional.id": "compat-ck-txn-" + topic,
                  "linger.ms": 5})
    p.init_transactions(15)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=b"commit-%d" % i, key=b"k", partition=0)
    p.commit_transaction(15)
    p.begin_transaction()
    for i in range(2):
        p.produce(topic, value=b"abort-%d" % i, key=b"k", partition=0)
    check_eq(p.flush(15), 0, "records left after flush")   # written, then aborted (not purged unsent)
    p.abort_transaction(15)
    p.begin_transaction()
    p.produce(topic, value=b"commit-3", key=b"k", partition=0)
    p.commit_transaction(15)
    # 3 records, commit marker (3), 2 aborted (4, 5), abort marker (6), 1 record (7), marker (8)
    got = consume(ctx, topic, 0, 0, 4, conf={"isolation.level": "read_committed"}, extra_wait=0.5)
    check_eq([(g["offset"], g["value"]) for g in got],
             [(0, b"commit-0"), (1, b"commit-1"), (2, b"commit-2"), (7, b"commit-3")], "read_committed records")
    got = consume(ctx, topic, 0, 0, 6, conf={"isolation.level": "read_uncommitted"}, extra_wait=0.5)
    check_eq([g["offset"] for g in got], [0, 1, 2, 4, 5, 7], "read_uncommitted offsets")
    check_eq(watermarks(ctx, topic, 0), (0, 9), "watermarks")


@case("txn_send_offsets", timeout=GROUP_TIMEOUT)
def _(ctx):
    """Consume-transform-produce: output and the group's input offsets commit together; an
    aborted round leaves neither output nor offsets, and a read_committed consumer sees each
    input record transformed exactly once."""
    src = create_topic(ctx, harness.unique_topic("ctp-in"))
    dst = create_topic(ctx, harness.unique_topic("ctp-out"))
    check_offsets(produce(ctx, src, simple_records(30, "in")), 0)
    group = group_id(ctx, "ctp")
    c = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    p = Producer({"bootstrap.servers": ctx.bootstrap, "transactional.id": "compat-ck-ctp-" + src,
                  "linger.ms": 5})
    try:
        p.init_transactions(15)
        c.subscribe([src])
        done, rounds, deadline = 0, 0, time.time() + 40
        while done < 30 and time.time() < deadline:
            msgs = c.consume(10, 1.0)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            rounds += 1
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, value=b"out-" + m.value(), key=m.key(), partition=0)
            offsets = [TopicPartition(src, 0, msgs[-1].offset() + 1)]
            p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), 15)
            if rounds == 2:
                # Aborted: the output disappears, the offsets stay where they were; rewind.
                p.abort_transaction(15)
                c.seek(TopicPartition(src, 0, msgs[0].offset()))
                continue
            p.commit_transaction(15)
            done = msgs[-1].offset() + 1
        check_eq(done, 30, "input records processed")
        committed = c.committed([TopicPartition(src, 0)], timeout=15)[0].offset
        check_eq(committed, 30, "the group's committed offset")
    finally:
        c.close()
    got = consume(ctx, dst, 0, 0, 30, conf={"isolation.level": "read_committed"}, extra_wait=1.0)
    want = [b"out-" + r["value"] for r in simple_records(30, "in")]
    check_eq([g["value"] for g in got], want, "read_committed output, each input once, in order")


@case("txn_zombie_fenced")
def _(ctx):
    """A second producer with the same transactional.id fences the first and aborts its
    open transaction."""
    topic = create_topic(ctx, harness.unique_topic("zombie"))
    conf = {"bootstrap.servers": ctx.bootstrap, "transactional.id": "compat-ck-zombie-" + topic,
            "linger.ms": 5}
    zombie = Producer(conf)
    zombie.init_transactions(15)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie-0", key=b"k", partition=0)
    check_eq(zombie.flush(15), 0, "records left after flush")
    live = Producer(conf)
    live.init_transactions(30)
    live.begin_transaction()
    live.produce(topic, value=b"live-0", key=b"k", partition=0)
    live.commit_transaction(15)
    try:
        zombie.produce(topic, value=b"zombie-1", key=b"k", partition=0)
        zombie.commit_transaction(15)
        raise harness.CaseFailure("the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        check(err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                            KafkaError.INVALID_PRODUCER_EPOCH),
              "the zombie's commit failed with %s, want a fencing error" % err)
    got = consume(ctx, topic, 0, 0, 1, conf={"isolation.level": "read_committed"}, extra_wait=0.5)
    check_eq([(g["offset"], g["value"]) for g in got], [(2, b"live-0")], "read_committed records")


@case("admin_describe_configs")
def _(ctx):
    from confluent_kafka.admin import ConfigResource, ConfigSource
    topic = harness.unique_topic("configs")
    fs = admin(ctx).create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                            config={"retention.ms": "3600000"})], request_timeout=15)
    fs[topic].result(timeout=20)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin(ctx).describe_configs([res], request_timeout=15)[res].result(timeout=20)
    check("retention.ms" in entries and "cleanup.policy" in entries, "entries: %s" % sorted(entries)[:20])

    def source(e):  # an int from the C layer, or the enum
        return getattr(e.source, "value", e.source)
    check_eq((entries["retention.ms"].value, source(entries["retention.ms"])),
             ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), "retention.ms (value, source)")
    check_eq((entries["cleanup.policy"].value, source(entries["cleanup.policy"])),
             ("delete", ConfigSource.DEFAULT_CONFIG.value), "cleanup.policy (value, source)")


@case("admin_incremental_alter_configs")
def _(ctx):
    """incremental_alter_configs on a topic: SET, APPEND, SUBTRACT, DELETE, validate_only, and
    INVALID_CONFIG for APPEND to a setting that is not a list."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    topic = create_topic(ctx, harness.unique_topic("alterconf"))
    res = lambda *entries: ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=list(entries))  # noqa: E731

    def alter(*entries, validate_only=False):
        fs = admin(ctx).incremental_alter_configs([res(*entries)], validate_only=validate_only, request_timeout=15)
        list(fs.values())[0].result(timeout=20)

    def value(key):
        r = ConfigResource(ConfigResource.Type.TOPIC, topic)
        return admin(ctx).describe_configs([r], request_timeout=15)[r].result(timeout=20)[key].value

    alter(ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET), validate_only=True)
    check_eq(value("retention.ms"), "604800000", "retention.ms after validate_only")
    alter(ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
          ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND))
    check_eq((value("retention.ms"), value("cleanup.policy")), ("3600000", "delete,compact"), "after SET and APPEND")
    alter(ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
          ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    check_eq((value("retention.ms"), value("cleanup.policy")), ("604800000", "compact"), "after SUBTRACT and DELETE")
    try:
        alter(ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.APPEND))
        raise harness.CaseFailure("APPEND to retention.ms (not a list) succeeded")
    except KafkaException as e:
        check_eq(e.args[0].code(), KafkaError.INVALID_CONFIG, "APPEND to a non-list setting")


@case("admin_elect_leaders")
def _(ctx):
    """elect_leaders on a single node: ELECTION_NOT_NEEDED for every partition."""
    from confluent_kafka import ElectionType
    topic = create_topic(ctx, harness.unique_topic("elect"), partitions=2)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    result = admin(ctx).elect_leaders(ElectionType.PREFERRED, tps).result(timeout=20)
    codes = sorted((tp.partition, err.code() if err else 0) for tp, err in result.items())
    check_eq(codes, [(0, KafkaError.ELECTION_NOT_NEEDED), (1, KafkaError.ELECTION_NOT_NEEDED)],
             "elect_leaders (partition, error)")


@case("admin_delete_records")
def _(ctx):
    from confluent_kafka import TopicPartition as TP
    topic = create_topic(ctx, harness.unique_topic("delrec"))
    records = simple_records(5, "del")
    check_offsets(produce(ctx, topic, records), 0)
    fs = admin(ctx).delete_records([TP(topic, 0, 2)], request_timeout=15)
    low = list(fs.values())[0].result(timeout=20)
    check_eq(low.low_watermark, 2, "low watermark after delete_records(before 2)")
    check_eq(watermarks(ctx, topic, 0), (2, 5), "watermarks")
    check_records(consume(ctx, topic, 0, 2, 3), records[2:], first_offset=2)


@case("compaction_read_by_kafka_python")
def _(ctx):
    """A compacted topic written by librdkafka (five keys rewritten 30 times, a tombstone for one
    of them, then unique-key filler to roll the segments) is read back after the broker's
    cleaner ran by another client, kafka-python: exactly the latest record of every key (the
    tombstone too, within delete.retention.ms) at its original offset, and every filler record."""
    try:
        import kafka
    except Exception as e:  # noqa: BLE001
        raise Skip("kafka-python not importable (%s)" % e)
    topic = harness.unique_topic("compacted")
    fs = admin(ctx).create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config={
        "cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"})],
        request_timeout=15)
    fs[topic].result(timeout=20)
    wait_partitions(ctx, topic, 1)
    records = []
    for rnd in range(30):
        for k in range(5):
            value = None if (k == 2 and rnd == 20) else ("v%d-%d" % (rnd, k)).encode()
            if k == 2 and rnd > 20:
                continue
            records.append({"key": b"k%d" % k, "value": value})
    records += [{"key": b"filler-%d" % i, "value": b"f" * 400} for i in range(30)]
    offsets = [off for _, off in produce(ctx, topic, records, flush_every=5)]
    latest = {}
    for r, off in zip(records, offsets):
        latest[r["key"]] = (off, r["key"], r["value"])
    want = sorted(latest.values())

    c = kafka.KafkaConsumer(bootstrap_servers=ctx.bootstrap, enable_auto_commit=False,
                            group_id=None, consumer_timeout_ms=2000)
    tp = kafka.TopicPartition(topic, 0)
    c.assign([tp])
    got = None
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            c.seek(tp, 0)
            got = sorted((m.offset, m.key, m.value) for m in c)
            if got == want:
                return
            time.sleep(1)
    finally:
        c.close()
    check_eq(got, want, "records after cleaning (offset, key, value)")


if __name__ == "__main__":
    sys.exit(harness.main("confluent-kafka", __file__, client_version, SETUP_ERROR))
