"""confluent-kafka (librdkafka) compatibility cases for the broker core.

No consumer groups: every consumer uses assign() with explicit offsets and never commits
(confluent-kafka insists on a group.id, so a throw-away one is set; no offsets are stored).
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


if __name__ == "__main__":
    sys.exit(harness.main("confluent-kafka", __file__, client_version, SETUP_ERROR))
