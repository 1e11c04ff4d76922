"""kafka-python compatibility cases for the broker core, and consumer groups.

Core cases: consumers use group_id=None + assign() + seek() and never commit.
group_* cases (subscribe, commit, resume; KafkaAdminClient list_groups / describe_groups /
list_group_offsets / delete_groups / delete_group_offsets) run only when the broker advertises
FindCoordinator + JoinGroup, else they SKIP.
No idempotence: kafka-python 3.x defaults to enable_idempotence=True (InitProducerId), so every
producer here sets enable_idempotence=False explicitly, except idempotent_producer
(InitProducerId + DescribeProducers).
admin_* cases beyond create/delete (IncrementalAlterConfigs, AlterConfigs, DescribeConfigs,
DescribeLogDirs, DescribeTopicPartitions, Metadata by topic id, ElectLeaders, partition
reassignments, ApiVersions features) SKIP when the broker advertises no version kafka-python can
send; compaction_read_back reads a compacted topic back after the broker's cleaner ran.
"""

import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import case, check, check_eq  # noqa: E402

SETUP_ERROR = None
try:
    import kafka
    import kafka.errors as Errors
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import codec as _codec
except Exception as e:
    SETUP_ERROR = "kafka-python not importable (%s: %s); run scripts/compat-setup.sh" % (type(e).__name__, e)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def client_version():
    libs = []
    for mod in ("snappy", "lz4", "zstandard", "crc32c"):
        try:
            m = __import__(mod)
            libs.append("%s %s" % (mod, getattr(m, "__version__", "?")))
        except Exception:
            libs.append("%s missing" % mod)
    return "kafka-python %s (%s)" % (kafka.__version__, ", ".join(libs))


# ----------------------------------------------------------------------------- helpers

def admin(ctx):
    if getattr(ctx, "_admin", None) is None:
        ctx._admin = KafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=20000)
    return ctx._admin


def create_topic(ctx, topic, partitions=1):
    admin(ctx).create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                             timeout_ms=15000)
    wait_partitions(ctx, topic, partitions)
    return topic


def describe(ctx, topic):
    ts = [t for t in admin(ctx).describe_topics([topic]) if t["name"] == topic]
    return ts[0] if ts else None


def wait_partitions(ctx, topic, partitions, timeout=10):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        t = describe(ctx, topic)
        if t is not None and t.get("error_code", 0) == 0 and len(t["partitions"]) == partitions \
                and all(p["leader_id"] >= 0 for p in t["partitions"]):
            return t
        last = t
        time.sleep(0.1)
    raise harness.CaseFailure("topic %s never showed %d partitions with leaders (last: %s)" % (
        topic, partitions, harness._short(last)))


def producer(ctx, **conf):
    cfg = dict(bootstrap_servers=ctx.bootstrap, enable_idempotence=False, linger_ms=50,
               request_timeout_ms=20000, max_block_ms=20000)
    cfg.update(conf)
    return KafkaProducer(**cfg)


def produce(ctx, topic, records, flush_every=None, **conf):
    p = producer(ctx, **conf)
    try:
        futs = []
        for i, r in enumerate(records):
            futs.append(p.send(topic, value=r.get("value"), key=r.get("key"),
                               headers=list(r.get("headers") or []),
                               partition=r.get("partition"), timestamp_ms=r.get("timestamp")))
            if flush_every and (i + 1) % flush_every == 0:
                p.flush(30)
        p.flush(30)
        out = []
        for i, f in enumerate(futs):
            try:
                md = f.get(timeout=30)
            except Exception as e:
                raise harness.CaseFailure("delivery of record %d failed: %s: %s" % (i, type(e).__name__, e))
            out.append((md.partition, md.offset))
        return out
    finally:
        p.close(timeout=10)


def consumer(ctx, **conf):
    cfg = dict(bootstrap_servers=ctx.bootstrap, group_id=None, enable_auto_commit=False,
               auto_offset_reset="none", request_timeout_ms=30000)
    cfg.update(conf)
    return KafkaConsumer(**cfg)


def consume(ctx, topic, partition, offset, count, timeout=20.0, extra_wait=0.3):
    c = consumer(ctx)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        got = []
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            for _tp, recs in c.poll(timeout_ms=200).items():
                got.extend(recs)
        if len(got) == count and extra_wait:
            end = time.time() + extra_wait
            while time.time() < end:
                for _tp, recs in c.poll(timeout_ms=100).items():
                    got.extend(recs)
        return [{"partition": r.partition, "offset": r.offset, "key": r.key, "value": r.value,
                 "headers": [(k, v) for k, v in (r.headers or [])], "timestamp": r.timestamp}
                for r in got]
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
    check_eq(reports, [(partition, first + i) for i in range(len(reports))], "delivery (partition, offset)")


def begin_end(ctx, topic, partition):
    c = consumer(ctx)
    try:
        tp = TopicPartition(topic, partition)
        return c.beginning_offsets([tp], timeout_ms=10000)[tp], c.end_offsets([tp], timeout_ms=10000)[tp]
    finally:
        c.close()


def simple_records(n, tag="v", key=True, size=0):
    pad = (b" lorem ipsum dolor sit amet" * (size // 27 + 1))[:size]
    return [{"key": (b"key-%d" % i) if key else None, "value": b"%s-%06d" % (tag.encode(), i) + pad,
             "headers": [("idx", b"%d" % i)]} for i in range(n)]


def expect_error(fn, err_cls, what):
    try:
        fn()
    except err_cls:
        return
    except Exception as e:
        raise harness.CaseFailure("%s: got %s: %s, want %s" % (what, type(e).__name__, e, err_cls.__name__))
    raise harness.CaseFailure("%s: succeeded, want %s" % (what, err_cls.__name__))


# ----------------------------------------------------------------------------- cases

@case("admin_create_describe_delete")
def _(ctx):
    a = admin(ctx)
    topic = ctx.topic()
    res = a.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}}, timeout_ms=15000)
    check_eq([t["error_code"] for t in res["topics"]], [0], "create_topics error codes")
    t = wait_partitions(ctx, topic, 2)
    check_eq(sorted(p["partition_index"] for p in t["partitions"]), [0, 1], "partition ids")
    brokers = {b["broker_id"] for b in a.describe_cluster()["brokers"]}
    for p in t["partitions"]:
        check(p["leader_id"] in brokers, "partition %d leader %s not in %s" % (p["partition_index"], p["leader_id"], brokers))
        check_eq(list(p["replica_nodes"]), [p["leader_id"]], "replicas of partition %d" % p["partition_index"])
    check(topic in a.list_topics(), "list_topics does not show %s" % topic)
    expect_error(lambda: a.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}}),
                 Errors.TopicAlreadyExistsError, "second create_topics")
    a.delete_topics([topic], timeout_ms=15000)
    deadline = time.time() + 10
    while time.time() < deadline:
        if topic not in a.list_topics():
            break
        time.sleep(0.2)
    else:
        raise harness.CaseFailure("deleted topic still listed after 10 s")
    expect_error(lambda: a.delete_topics([topic], timeout_ms=15000),
                 Errors.UnknownTopicOrPartitionError, "deleting a deleted topic")


@case("admin_create_invalid")
def _(ctx):
    a = admin(ctx)
    expect_error(lambda: a.create_topics({"compat-bad/name": {"num_partitions": 1, "replication_factor": 1}}),
                 Errors.InvalidTopicError, "create_topics with '/' in the name")
    expect_error(lambda: a.create_topics({ctx.topic(): {"num_partitions": 1, "replication_factor": 3}}),
                 Errors.InvalidReplicationFactorError, "replication_factor=3 on one broker")


@case("admin_create_partitions")
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 1)
    a = admin(ctx)
    a.create_partitions({topic: 3}, timeout_ms=15000)
    wait_partitions(ctx, topic, 3)
    recs = simple_records(3)
    for r in recs:
        r["partition"] = 2
    check_offsets(produce(ctx, topic, recs), 2)
    check_records(consume(ctx, topic, 2, 0, 3), recs, partition=2)


@case("admin_create_partitions_same_count")
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 2)
    a = admin(ctx)
    # Kafka answers INVALID_PARTITIONS both for a decrease and for the current count
    expect_error(lambda: a.create_partitions({topic: 1}), Errors.InvalidPartitionsError,
                 "create_partitions to fewer partitions")
    expect_error(lambda: a.create_partitions({topic: 2}), Errors.InvalidPartitionsError,
                 "create_partitions to the current count")


@case("admin_describe_cluster")
def _(ctx):
    d = admin(ctx).describe_cluster()
    check(d.get("cluster_id"), "empty cluster_id")
    check_eq(len(d["brokers"]), 1, "number of brokers")
    host, port = ctx.bootstrap.rsplit(":", 1)
    b = d["brokers"][0]
    check_eq((b["host"], b["port"]), (host, int(port)), "advertised broker address")


# ----------------------------------------------------------------------------- admin: configs, log dirs, topic ids, ...
# KafkaAdminClient beyond create/delete: IncrementalAlterConfigs / AlterConfigs / DescribeConfigs,
# DescribeLogDirs, DescribeTopicPartitions (cursor paging), Metadata by topic id, ElectLeaders,
# partition reassignments, ApiVersions features. A call whose API the broker does not advertise
# in a version kafka-python can send makes the case SKIP (need_api).

def need_api(ctx, request_cls, what, min_version=0):
    """The version kafka-python will use for request_cls; SKIP when broker and client share none."""
    try:
        return admin(ctx)._manager.broker_version_data.api_version(request_cls, min_version=min_version)
    except Errors.IncompatibleBrokerVersion as e:
        raise harness.Skip("%s: %s" % (what, e))


def node_id(ctx):
    return str(admin(ctx).describe_cluster()["brokers"][0]["broker_id"])


def config_entries(ctx, rtype, name):
    """describe_configs of one resource, every key (config_filter='all'): {key: (value, source name)}.
    kafka-python routes BROKER resources by int(name) and so cannot name the cluster default "":
    that one goes through kafka-python's own request builder and response parser."""
    from kafka.admin import ConfigResource
    a = admin(ctx)
    if rtype == "BROKER" and name == "":
        resp = a._manager.run(a._manager.send, a._describe_configs_request([ConfigResource(rtype, name)]))
        check_eq([(r.error_code, r.error_message or None) for r in resp.results], [(0, None)],
                 "DescribeConfigs of the cluster default (error code, message)")
        d = a._describe_configs_process_responses([resp], "all")
    else:
        d = a.describe_configs([ConfigResource(rtype, name)], config_filter="all")
    entries = d.get(rtype.lower(), {}).get(name)
    check(entries is not None, "describe_configs(%s %r) answered nothing for it: %s" % (rtype, name, harness._short(d)))
    return {k: (v["value"], v["config_source"]) for k, v in entries.items()}


def alter(ctx, rtype, name, configs, incremental=True, validate_only=False, raise_on_unknown=True, direct=False):
    """alter_configs of one resource; kafka-python's answer for it: 'OK' or '[Error N] Class: message'.
    configs: {key: (AlterConfigOp, value)} (incremental) or {key: value}. direct=True (and the
    cluster default "", see config_entries) sends kafka-python's request as built, without
    alter_configs' client-side steps (the key check and, for AlterConfigs, re-sending the other
    overrides)."""
    from kafka.admin import ConfigResource
    a = admin(ctx)
    res = ConfigResource(rtype, name, dict(configs))
    if direct or (rtype == "BROKER" and name == ""):
        resp = a._manager.run(a._manager.send, a._alter_configs_request([res], validate_only, incremental))
        out = a._alter_configs_process_responses(resp.responses)
    else:
        out = a.alter_configs([res], validate_only=validate_only, raise_on_unknown=raise_on_unknown,
                              incremental=incremental)
    return out.get(rtype.lower(), {}).get(name, "no answer for the resource: %s" % (out,))


def _config_resource(rtype, name, configs=None):
    from kafka.admin import ConfigResource
    return ConfigResource(rtype, name, configs)


def check_error(result, err_cls, what):
    want = "[Error %d] %s" % (err_cls.errno, err_cls.__name__)
    check(isinstance(result, str) and result.startswith(want), "%s: got %r, want %s" % (what, result, want))


DEFAULT, TOPIC_CONF = "DEFAULT_CONFIG", "DYNAMIC_TOPIC_CONFIG"
BROKER_CONF, CLUSTER_CONF = "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG"


@case("admin_incremental_alter_configs")
def _(ctx):
    """IncrementalAlterConfigs (alter_configs(incremental=True)) on a topic: SET with validate_only,
    SET + APPEND, SUBTRACT + DELETE, APPEND to a non-list key (INVALID_CONFIG); on the broker (its
    node id and the cluster default ""): SET and DELETE of log.retention.ms, which the topic follows,
    and a read-only key (INVALID_REQUEST). Every step read back with describe_configs."""
    from kafka.admin import AlterConfigOp as Op
    from kafka.protocol.admin import DescribeConfigsRequest, IncrementalAlterConfigsRequest
    need_api(ctx, IncrementalAlterConfigsRequest, "alter_configs(incremental=True)")
    need_api(ctx, DescribeConfigsRequest, "describe_configs")
    topic = create_topic(ctx, ctx.topic())

    def view(*keys):
        e = config_entries(ctx, "TOPIC", topic)
        return tuple(e.get(k) for k in keys)

    check_eq(alter(ctx, "TOPIC", topic, {"retention.ms": (Op.SET, "1000")}, validate_only=True), "OK",
             "SET retention.ms=1000 with validate_only")
    check_eq(view("retention.ms", "cleanup.policy"), (("604800000", DEFAULT), ("delete", DEFAULT)),
             "(retention.ms, cleanup.policy) after validate_only")
    check_eq(alter(ctx, "TOPIC", topic, {"retention.ms": (Op.SET, "3600000"), "cleanup.policy": (Op.APPEND, "compact")}),
             "OK", "SET retention.ms + APPEND cleanup.policy compact")
    check_eq(view("retention.ms", "cleanup.policy"), (("3600000", TOPIC_CONF), ("delete,compact", TOPIC_CONF)),
             "(retention.ms, cleanup.policy) after SET and APPEND")
    check_eq(alter(ctx, "TOPIC", topic, {"cleanup.policy": (Op.SUBTRACT, "delete"), "retention.ms": (Op.DELETE, None)}),
             "OK", "SUBTRACT cleanup.policy delete + DELETE retention.ms")
    check_eq(view("retention.ms", "cleanup.policy"), (("604800000", DEFAULT), ("compact", TOPIC_CONF)),
             "(retention.ms, cleanup.policy) after SUBTRACT and DELETE")
    check_error(alter(ctx, "TOPIC", topic, {"retention.ms": (Op.APPEND, "5")}), Errors.InvalidConfigurationError,
                "APPEND to retention.ms (a LONG, not a list)")
    check_eq(view("retention.ms", "cleanup.policy"), (("604800000", DEFAULT), ("compact", TOPIC_CONF)),
             "(retention.ms, cleanup.policy) after the refused APPEND")

    # The broker: log.retention.ms per broker (DYNAMIC_BROKER_CONFIG) over the cluster-wide default
    # (DYNAMIC_DEFAULT_BROKER_CONFIG); the topic (no override left) follows whichever applies.
    node = node_id(ctx)

    def broker_view():
        return (config_entries(ctx, "BROKER", node).get("log.retention.ms"),
                config_entries(ctx, "BROKER", "").get("log.retention.ms"), view("retention.ms")[0])

    what = "log.retention.ms of (broker %s, cluster default, topic's retention.ms) " % node
    try:
        check_eq(alter(ctx, "BROKER", node, {"log.retention.ms": (Op.SET, "86400000")}), "OK",
                 "SET log.retention.ms on broker %s" % node)
        check_eq(broker_view(), (("86400000", BROKER_CONF), None, ("86400000", BROKER_CONF)), what + "set per broker")
        check_eq(alter(ctx, "BROKER", "", {"log.retention.ms": (Op.SET, "172800000")}), "OK",
                 "SET log.retention.ms on the cluster default")
        check_eq(broker_view(), (("86400000", BROKER_CONF), ("172800000", CLUSTER_CONF), ("86400000", BROKER_CONF)),
                 what + "set per broker and as the cluster default")
        # reset_configs: IncrementalAlterConfigs DELETE
        check_eq(admin(ctx).reset_configs([_config_resource("BROKER", node, ["log.retention.ms"])]),
                 {"broker": {node: "OK"}}, "reset_configs(log.retention.ms) on broker %s" % node)
        check_eq(broker_view(), (("172800000", CLUSTER_CONF), ("172800000", CLUSTER_CONF), ("172800000", CLUSTER_CONF)),
                 what + "after the per-broker value was deleted")
        check_eq(alter(ctx, "BROKER", "", {"log.retention.ms": (Op.DELETE, None)}), "OK",
                 "DELETE log.retention.ms on the cluster default")
        b, c, t = broker_view()
        # Kafka describes an unset log.retention.ms with value null (log.retention.hours applies):
        # only its source is checked
        check_eq((b and b[1], c, t), (DEFAULT, None, ("604800000", DEFAULT)), what + "after both were deleted")
        # A read-only broker key: Kafka answers INVALID_REQUEST "Cannot update these configs dynamically"
        # (raise_on_unknown=False: kafka-python would refuse a key describe_configs lists as read-only)
        for name in (node, ""):
            check_error(alter(ctx, "BROKER", name, {"log.dirs": (Op.SET, "/nonexistent")}, raise_on_unknown=False),
                        Errors.InvalidRequestError, "SET log.dirs (read-only) on broker %r" % name)
    finally:
        for name in (node, ""):
            try:
                alter(ctx, "BROKER", name, {"log.retention.ms": (Op.DELETE, None)}, raise_on_unknown=False)
            except Exception as e:  # noqa: BLE001
                ctx.log("cleanup of log.retention.ms on %r failed: %s" % (name, e))


@case("admin_alter_configs_legacy")
def _(ctx):
    """Legacy AlterConfigs (incremental=False) replaces a topic's overrides: keys left out go back
    to their defaults. kafka-python's alter_configs(incremental=False) / reset_configs first read
    the topic's other overrides and send them along (a client-side merge); the replacement itself
    is checked with the request sent as built."""
    from kafka.protocol.admin import AlterConfigsRequest, DescribeConfigsRequest
    need_api(ctx, AlterConfigsRequest, "alter_configs(incremental=False)")
    need_api(ctx, DescribeConfigsRequest, "describe_configs")
    topic = create_topic(ctx, ctx.topic())
    a = admin(ctx)

    def view():
        e = config_entries(ctx, "TOPIC", topic)
        return e.get("retention.ms"), e.get("max.message.bytes")

    check_eq(alter(ctx, "TOPIC", topic, {"retention.ms": "3600000", "max.message.bytes": "200000"}, incremental=False),
             "OK", "AlterConfigs retention.ms + max.message.bytes")
    check_eq(view(), (("3600000", TOPIC_CONF), ("200000", TOPIC_CONF)), "(retention.ms, max.message.bytes) after setting both")
    check_eq(alter(ctx, "TOPIC", topic, {"retention.ms": "1000"}, incremental=False, validate_only=True, direct=True),
             "OK", "AlterConfigs retention.ms=1000 alone with validate_only")
    check_eq(view(), (("3600000", TOPIC_CONF), ("200000", TOPIC_CONF)), "(retention.ms, max.message.bytes) after validate_only")
    check_eq(alter(ctx, "TOPIC", topic, {"retention.ms": "7200000"}, incremental=False, direct=True), "OK",
             "AlterConfigs retention.ms alone")
    check_eq(view(), (("7200000", TOPIC_CONF), ("1048588", DEFAULT)),
             "(retention.ms, max.message.bytes) after AlterConfigs without max.message.bytes")
    # the client-side merge: kafka-python re-sends retention.ms=7200000 with the new key
    check_eq(alter(ctx, "TOPIC", topic, {"max.message.bytes": "300000"}, incremental=False), "OK",
             "alter_configs(incremental=False) of max.message.bytes")
    check_eq(view(), (("7200000", TOPIC_CONF), ("300000", TOPIC_CONF)),
             "(retention.ms, max.message.bytes) after kafka-python's merged AlterConfigs")
    check_eq(a.reset_configs([_config_resource("TOPIC", topic, ["retention.ms"])], incremental=False),
             {"topic": {topic: "OK"}}, "reset_configs(retention.ms, incremental=False)")
    check_eq(view(), (("604800000", DEFAULT), ("300000", TOPIC_CONF)),
             "(retention.ms, max.message.bytes) after reset_configs(retention.ms)")
    check_error(alter(ctx, "TOPIC", topic, {"retention.ms": "soon"}, incremental=False, direct=True),
                Errors.InvalidConfigurationError, "AlterConfigs retention.ms=soon")
    check_eq(view(), (("604800000", DEFAULT), ("300000", TOPIC_CONF)),
             "(retention.ms, max.message.bytes) after the refused AlterConfigs")


@case("admin_describe_log_dirs")
def _(ctx):
    """describe_log_dirs after 20 records of 100+ bytes: one log dir without error, holding the
    topic's partitions with their sizes; total/usable bytes (DescribeLogDirs v4+)."""
    from kafka.protocol.admin import DescribeLogDirsRequest
    version = need_api(ctx, DescribeLogDirsRequest, "describe_log_dirs")
    topic = create_topic(ctx, ctx.topic(), 2)
    recs = simple_records(20, size=100)
    for i, r in enumerate(recs):
        r["partition"] = i % 2
    produce(ctx, topic, recs)
    node = int(node_id(ctx))
    a = admin(ctx)
    for asked in ({topic: [0, 1]}, None):
        res = a.describe_log_dirs(asked)
        check_eq([r["broker"] for r in res], [node], "brokers answering describe_log_dirs(%s)" % asked)
        dirs = res[0]["log_dirs"]
        check_eq(len(dirs), 1, "log dirs of broker %d (%s)" % (node, [d.get("log_dir") for d in dirs]))
        d = dirs[0]
        check_eq(d["error_code"], 0, "log dir error code")
        check(d["log_dir"], "empty log dir path")
        mine = [t for t in d["topics"] if t["name"] == topic]
        if asked is not None:
            check_eq([t["name"] for t in d["topics"]], [topic], "topics listed for describe_log_dirs({topic: [0, 1]})")
        check_eq(len(mine), 1, "entries for the topic in describe_log_dirs(%s)" % asked)
        parts = sorted(mine[0]["partitions"], key=lambda p: p["partition_index"])
        check_eq([(p["partition_index"], p["offset_lag"], p["is_future_key"]) for p in parts],
                 [(0, 0, False), (1, 0, False)], "(partition, offset lag, future) of the topic's replicas")
        for p in parts:
            check(p["partition_size"] > 10 * 100, "partition %d holds %d bytes for 10 records of 100+ bytes"
                  % (p["partition_index"], p["partition_size"]))
        if version >= 4:
            total, usable = d.get("total_bytes"), d.get("usable_bytes")
            check(isinstance(total, int) and isinstance(usable, int) and 0 < usable <= total,
                  "DescribeLogDirs v%d total/usable bytes: %s / %s" % (version, total, usable))


@case("admin_describe_topic_partitions")
def _(ctx):
    """DescribeTopicPartitions with a partition limit per response: following next_cursor yields
    every partition of both topics exactly once, topics in name order, partitions in order; a page
    that ends with a topic points the cursor at the next topic's partition 0."""
    from kafka.protocol.admin import DescribeTopicPartitionsRequest
    need_api(ctx, DescribeTopicPartitionsRequest, "describe_topic_partitions")
    base = ctx.topic()
    t5, t3 = create_topic(ctx, base + "-b", 5), create_topic(ctx, base + "-a", 3)
    want = [(t3, p) for p in range(3)] + [(t5, p) for p in range(5)]
    ids = {t: describe(ctx, t)["topic_id"] for t in (t3, t5)}
    a = admin(ctx)
    for limit, cursors in [(4, [(t5, 1)]), (3, [(t5, 0), (t5, 3)]), (8, []), (2000, [])]:
        got, seen, cursor = [], [], None
        for _ in range(20):
            r = a.describe_topic_partitions([t5, t3], response_partition_limit=limit, cursor=cursor)
            page = [(t["name"], p["partition_index"]) for t in r["topics"] for p in t["partitions"]]
            check(len(page) <= limit, "limit %d: a page of %d partitions: %s" % (limit, len(page), page))
            for t in r["topics"]:
                check_eq((t["error_code"], str(t["topic_id"])), (0, ids[t["name"]]), "limit %d: (error, id) of %s" % (limit, t["name"]))
                for p in t["partitions"]:
                    check_eq((p["error_code"], p["replica_nodes"], p["isr_nodes"]), (0, [p["leader_id"]], [p["leader_id"]]),
                             "limit %d: %s-%d (error, replicas, isr)" % (limit, t["name"], p["partition_index"]))
            got.extend(page)
            cursor = r["next_cursor"]
            if cursor is None:
                break
            seen.append((cursor["topic_name"], cursor["partition_index"]))
        check_eq(got, want, "limit %d: (topic, partition) over all pages" % limit)
        check_eq(seen, cursors, "limit %d: the cursors returned" % limit)


@case("admin_describe_topics_by_id")
def _(ctx):
    """describe_topics by uuid.UUID (Metadata v12+ by topic id): the topic's name and partitions;
    an unknown id: error UNKNOWN_TOPIC_ID in the topic's entry, no name."""
    import uuid
    from kafka.protocol.metadata import MetadataRequest
    need_api(ctx, MetadataRequest, "describe_topics by topic id", min_version=12)
    topic = create_topic(ctx, ctx.topic(), 3)
    by_name = describe(ctx, topic)
    tid = uuid.UUID(str(by_name["topic_id"]))
    check(tid.int != 0, "describe_topics by name gave the zero topic id")
    res = admin(ctx).describe_topics([tid])
    check_eq([(t["error_code"], t["name"], str(t["topic_id"])) for t in res], [(0, topic, str(tid))],
             "describe_topics([id]) (error, name, id)")
    parts = lambda t: sorted((p["partition_index"], p["leader_id"], list(p["replica_nodes"])) for p in t["partitions"])  # noqa: E731
    check_eq(parts(res[0]), parts(by_name), "partitions described by id vs by name")
    check_eq([p[0] for p in parts(res[0])], [0, 1, 2], "partition ids described by id")
    unknown = uuid.uuid4()
    res = admin(ctx).describe_topics([unknown])
    check_eq([(t["error_code"], t["name"], str(t["topic_id"])) for t in res],
             [(Errors.UnknownTopicIdError.errno, None, str(unknown))], "describe_topics([unknown id]) (error, name, id)")


@case("admin_elect_leaders_and_reassignments")
def _(ctx):
    """elect_leaders (preferred) on a single node: ELECTION_NOT_NEEDED for every partition (which
    kafka-python does not raise); a reassignment to the current replica is accepted, one to a
    broker not in the cluster gets INVALID_REPLICA_ASSIGNMENT; none is left in progress."""
    from kafka.protocol.admin import (AlterPartitionReassignmentsRequest, ElectLeadersRequest,
                                      ListPartitionReassignmentsRequest)
    need_api(ctx, ElectLeadersRequest, "elect_leaders")
    topic = create_topic(ctx, ctx.topic(), 2)
    a = admin(ctx)
    r = a.elect_leaders(0, {topic: [0, 1]}, raise_errors=False)
    check_eq(r.error_code, 0, "ElectLeaders top-level error code")
    got = sorted((t.topic, p.partition_id, p.error_code) for t in r.replica_election_results for p in t.partition_result)
    check_eq(got, [(topic, 0, Errors.ElectionNotNeededError.errno), (topic, 1, Errors.ElectionNotNeededError.errno)],
             "elect_leaders(PREFERRED) (topic, partition, error code)")
    a.elect_leaders(0, {topic: [0]})   # raise_errors=True: ELECTION_NOT_NEEDED is not an error
    need_api(ctx, ListPartitionReassignmentsRequest, "list_partition_reassignments")
    check_eq(a.list_partition_reassignments(), {}, "list_partition_reassignments() before")
    need_api(ctx, AlterPartitionReassignmentsRequest, "alter_partition_reassignments")
    node = int(node_id(ctx))
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    check_eq(a.alter_partition_reassignments({tp0: [node]}), {tp0: None}, "reassignment of partition 0 to [%d]" % node)
    check_eq(a.alter_partition_reassignments({tp1: [node + 1]}), {tp1: Errors.for_code(39)},
             "reassignment of partition 1 to [%d] (no such broker)" % (node + 1))
    check_eq(a.list_partition_reassignments(), {}, "list_partition_reassignments() after")
    check_eq(a.list_partition_reassignments({topic: [0, 1]}), {}, "list_partition_reassignments({topic: [0, 1]})")
    check_eq(sorted((p["partition_index"], p["leader_id"], p["replica_nodes"]) for p in describe(ctx, topic)["partitions"]),
             [(0, node, [node]), (1, node, [node])], "(partition, leader, replicas) afterwards")


@case("admin_describe_features")
def _(ctx):
    """describe_features (ApiVersions v3+ features): transaction.version supported up to >= 2 and
    finalized at level 2."""
    from kafka.protocol.metadata import ApiVersionsRequest
    need_api(ctx, ApiVersionsRequest, "describe_features", min_version=3)
    f = admin(ctx).describe_features()
    tv = f.get("transaction.version")
    check(tv is not None, "transaction.version not in the features: %s" % f)
    check("supported" in tv and tv["supported"][0] <= 2 <= tv["supported"][1],
          "transaction.version supported (min, max) = %s, want a range including 2" % (tv.get("supported"),))
    check("finalized" in tv, "transaction.version is not finalized: %s" % tv)
    # Kafka answers min_version_level = max_version_level = the finalized level
    check_eq(tv["finalized"][1], 2, "finalized transaction.version level (max_version_level)")
    check(tv["finalized"][0] <= 2, "finalized transaction.version min level %s > 2" % (tv["finalized"][0],))
    check(tv.get("finalized_epoch") is not None, "no finalized features epoch: %s" % tv)


@case("auto_create_on_metadata")
def _(ctx):
    topic = ctx.topic()
    recs = simple_records(3)
    check_offsets(produce(ctx, topic, recs), 0)
    check_records(consume(ctx, topic, 0, 0, 3), recs)


@case("headers_roundtrip")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [
        {"key": b"k0", "value": b"one header", "headers": [("a", b"1")]},
        {"key": b"k1", "value": b"repeated + empty", "headers": [("a", b"1"), ("a", b"2"), ("b", b"")]},
        {"key": b"k2", "value": b"no headers", "headers": []},
        # kafka-python's producer rejects a None header value (Kafka allows null header values)
        {"key": b"k3", "value": b"empty header value", "headers": [("n", b"")]},
        {"key": b"k4", "value": b"binary", "headers": [("\u043a\u043b\u044e\u0447", b"\x00\xff\x01 bin"), ("z", b"x" * 1000)]},
    ]
    check_offsets(produce(ctx, topic, recs), 0)
    check_records(consume(ctx, topic, 0, 0, len(recs)), recs)


@case("null_key")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [{"key": None, "value": b"null key 0"}, {"key": b"", "value": b"empty key"},
            {"key": None, "value": b"null key 2"}, {"key": b"k", "value": b"key k"}]
    for r in recs:
        r["partition"] = 0
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
        if codec == "snappy" and not _codec.has_snappy():
            raise harness.Skip("python-snappy not installed")
        if codec == "lz4" and not _codec.has_lz4():
            raise harness.Skip("lz4 not installed")
        if codec == "zstd" and not _codec.has_zstd():
            raise harness.Skip("zstandard not installed")
        topic = create_topic(ctx, ctx.topic("comp-" + codec))
        recs = simple_records(200, tag=codec, size=100)
        reps = produce(ctx, topic, recs, compression_type=None if codec == "none" else codec,
                       linger_ms=200, batch_size=1 << 20)
        check_offsets(reps, 0)
        check_records(consume(ctx, topic, 0, 0, len(recs)), recs)
        check_eq(begin_end(ctx, topic, 0), (0, 200), "beginning/end offsets")
    return run


for _c in CODECS:
    case("compression_" + _c)(_compression_case(_c))


def _acks_case(acks):
    def run(ctx):
        topic = create_topic(ctx, ctx.topic())
        recs = simple_records(100)
        check_offsets(produce(ctx, topic, recs, flush_every=25, acks=acks, linger_ms=5), 0)
        check_records(consume(ctx, topic, 0, 0, len(recs)), recs)
    return run


case("acks_1")(_acks_case(1))
case("acks_all")(_acks_case("all"))


@case("multi_partition_explicit")
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 3)
    counts = {0: 3, 1: 5, 2: 7}
    recs = [{"key": b"k%d" % i, "value": b"p%d-%d" % (p, i), "partition": p}
            for p, n in counts.items() for i in range(n)]
    reps = produce(ctx, topic, recs)
    for p, n in counts.items():
        check_eq([rep for rep, r in zip(reps, recs) if r["partition"] == p], [(p, i) for i in range(n)],
                 "delivery reports for partition %d" % p)
        check_records(consume(ctx, topic, p, 0, n), [r for r in recs if r["partition"] == p], partition=p)
        check_eq(begin_end(ctx, topic, p), (0, n), "beginning/end offsets of partition %d" % p)


def _mid_batch_case(codec):
    def run(ctx):
        topic = create_topic(ctx, ctx.topic())
        recs = simple_records(10)
        check_offsets(produce(ctx, topic, recs, linger_ms=200, compression_type=codec), 0)
        got = consume(ctx, topic, 0, 4, 6)
        check(got, "nothing consumed from offset 4")
        check_eq(got[0]["offset"], 4, "first offset returned when assigned at 4")
        check_records(got, recs[4:], first_offset=4)
    return run


case("fetch_mid_batch")(_mid_batch_case(None))
case("fetch_mid_batch_compressed")(_mid_batch_case("gzip"))


@case("many_batches_contiguous")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = simple_records(3000, size=20)
    check_offsets(produce(ctx, topic, recs, linger_ms=2, batch_size=4096), 0)
    check_records(consume(ctx, topic, 0, 0, 3000, timeout=40), recs)
    check_eq(begin_end(ctx, topic, 0), (0, 3000), "beginning/end offsets")


@case("list_offsets_earliest_latest")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    check_eq(begin_end(ctx, topic, 0), (0, 0), "beginning/end offsets of an empty partition")
    recs = simple_records(20)
    check_offsets(produce(ctx, topic, recs, flush_every=10, linger_ms=100), 0)
    check_eq(begin_end(ctx, topic, 0), (0, 20), "beginning/end offsets after 20 records")
    from kafka.admin import OffsetSpec
    tp = TopicPartition(topic, 0)
    res = admin(ctx).list_partition_offsets({tp: OffsetSpec.EARLIEST})
    check_eq(res[tp].offset, 0, "admin list_partition_offsets EARLIEST")
    res = admin(ctx).list_partition_offsets({tp: OffsetSpec.LATEST})
    check_eq(res[tp].offset, 20, "admin list_partition_offsets LATEST")


@case("list_offsets_max_timestamp")
def _(ctx):
    from kafka.admin import OffsetSpec
    topic = create_topic(ctx, ctx.topic())
    base = int(time.time() * 1000) - 60000
    recs = [{"key": b"k%d" % i, "value": b"v%d" % i, "timestamp": base + i} for i in range(10)]
    recs[6]["timestamp"] = base + 50000
    check_offsets(produce(ctx, topic, recs, linger_ms=200), 0)
    tp = TopicPartition(topic, 0)
    res = admin(ctx).list_partition_offsets({tp: OffsetSpec.MAX_TIMESTAMP})[tp]
    check_eq((res.offset, res.timestamp), (6, base + 50000), "MAX_TIMESTAMP (offset, timestamp)")


@case("offsets_for_times")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    base = int(time.time() * 1000) - 600000
    recs = [{"key": b"k%d" % i, "value": b"v%d" % i, "timestamp": base + 1000 * i} for i in range(10)]
    check_offsets(produce(ctx, topic, recs, linger_ms=200), 0)
    check_records(consume(ctx, topic, 0, 0, 10), recs, check_ts=True)
    c = consumer(ctx)
    try:
        tp = TopicPartition(topic, 0)
        for target, want in [(base - 5, 0), (base, 0), (base + 3500, 4), (base + 9000, 9), (base + 9001, None)]:
            res = c.offsets_for_times({tp: target}, timeout_ms=10000)[tp]
            if want is None:
                check(res is None, "offsets_for_times(base+%d): got %s, want None" % (target - base, res))
            else:
                check(res is not None, "offsets_for_times(base+%d): got None, want offset %d" % (target - base, want))
                check_eq(res.offset, want, "offsets_for_times(base+%d) offset" % (target - base))
                check_eq(res.timestamp, base + 1000 * want, "offsets_for_times(base+%d) timestamp" % (target - base))
    finally:
        c.close()


@case("idempotent_producer")
def _(ctx):
    # enable_idempotence=True (also the 3.x default): InitProducerId, acks=all, numbered batches.
    # 3 partitions, gzip, several batches per partition; then DescribeProducers on each partition.
    topic = create_topic(ctx, ctx.topic(), 3)
    counts = {0: 30, 1: 12, 2: 45}
    recs = []
    for i in range(max(counts.values())):
        for p, n in counts.items():
            if i < n:
                recs.append({"key": b"k%d-%d" % (p, i), "value": b"idem-p%d-%06d" % (p, i),
                             "headers": [("idx", b"%d" % i)], "partition": p})
    t_send = int(time.time() * 1000)
    p = producer(ctx, enable_idempotence=True, compression_type="gzip", linger_ms=20)
    try:
        futs = []
        for i, r in enumerate(recs):
            futs.append(p.send(topic, value=r["value"], key=r["key"], headers=r["headers"], partition=r["partition"]))
            if (i + 1) % 30 == 0:
                p.flush(30)
        p.flush(30)
        reps = []
        for i, f in enumerate(futs):
            try:
                md = f.get(timeout=30)
            except Exception as e:
                raise harness.CaseFailure("delivery of record %d failed: %s: %s" % (i, type(e).__name__, e))
            reps.append((md.partition, md.offset))
        pid_epoch = p._transaction_manager.producer_id_and_epoch  # internal: the InitProducerId answer
        pid, epoch = pid_epoch.producer_id, pid_epoch.epoch
    finally:
        p.close(timeout=10)
    t_done = int(time.time() * 1000)
    check(pid >= 0, "the producer holds producer id %s: no InitProducerId answer" % pid)
    check_eq(epoch, 0, "epoch from InitProducerId")
    for part, n in counts.items():
        check_eq([rep for rep, r in zip(reps, recs) if r["partition"] == part], [(part, i) for i in range(n)],
                 "delivery reports for partition %d" % part)
        check_records(consume(ctx, topic, part, 0, n), [r for r in recs if r["partition"] == part], partition=part)
        check_eq(begin_end(ctx, topic, part), (0, n), "beginning/end offsets of partition %d" % part)
    tps = [TopicPartition(topic, part) for part in counts]
    states = admin(ctx).describe_producers(tps)
    for tp in tps:
        active = states[tp].active_producers
        check_eq(len(active), 1, "describe_producers(%d): number of active producers (%s)" % (tp.partition, active))
        st = active[0]
        check_eq((st.producer_id, st.producer_epoch), (pid, 0), "partition %d: producer id, epoch" % tp.partition)
        check_eq(st.last_sequence, counts[tp.partition] - 1, "partition %d: last sequence" % tp.partition)
        check_eq(st.current_transaction_start_offset, -1, "partition %d: current transaction start offset" % tp.partition)
    # Kafka: the max timestamp of the producer's last batch (CreateTime); kfake answers -1
    # (kfake-quirks.txt), so this comes last
    for tp in tps:
        ts = states[tp].active_producers[0].last_timestamp
        check(t_send <= ts <= t_done, "partition %d: last timestamp %d, want the last batch's CreateTime within [%d, %d]"
              % (tp.partition, ts, t_send, t_done))


@case("large_record")
def _(ctx):
    topic = create_topic(ctx, ctx.topic())
    recs = [{"key": b"big", "value": os.urandom(700 * 1024)}, {"key": b"small", "value": b"after"}]
    check_offsets(produce(ctx, topic, recs, max_request_size=2 << 20), 0)
    check_records(consume(ctx, topic, 0, 0, 2), recs)


@case("compaction_read_back", timeout=90)
def _(ctx):
    """A compacted topic (segment.bytes=4096, min.cleanable.dirty.ratio=0.01) written by kafka-python:
    five keys rewritten 30 times, a tombstone for one of them, then 30 unique 400-byte filler keys
    to roll the segments. Once the broker's cleaner ran (compat/run: log.cleaner.backoff.ms=1000),
    reading from offset 0 (assign + seek) returns exactly the latest record of every key at its
    original offset, the tombstone (value None, within delete.retention.ms) included."""
    topic = ctx.topic()
    admin(ctx).create_topics({topic: {"num_partitions": 1, "replication_factor": 1, "configs": {
        "cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}}},
        timeout_ms=15000)
    wait_partitions(ctx, topic, 1)
    records = []
    for rnd in range(30):
        for k in range(5):
            if k == 2 and rnd > 20:
                continue
            value = None if (k == 2 and rnd == 20) else b"v%d-%d" % (rnd, k)
            records.append({"key": b"k%d" % k, "value": value})
    records += [{"key": b"filler-%d" % i, "value": b"f" * 400} for i in range(30)]
    reps = produce(ctx, topic, records, flush_every=5)
    check_offsets(reps, 0)
    latest = {}
    for r, (_p, off) in zip(records, reps):
        latest[r["key"]] = (off, r["key"], r["value"])
    want = sorted(latest.values())
    end = len(records)

    c = consumer(ctx)
    tp = TopicPartition(topic, 0)
    got, attempts = None, 0
    try:
        c.assign([tp])
        deadline = time.time() + 60
        while time.time() < deadline:
            attempts += 1
            c.seek(tp, 0)
            got = []
            read_until = time.time() + 10
            while c.position(tp) < end and time.time() < read_until:
                try:
                    polled = c.poll(timeout_ms=200)
                except Errors.OffsetOutOfRangeError as e:
                    # Kafka's cleaner never moves the log start offset: offset 0 stays readable
                    raise harness.CaseFailure("fetch from offset 0 after %d reads: %s (beginning, end offsets now %s)"
                                              % (attempts, e, begin_end(ctx, topic, 0)))
                for _tp, recs in polled.items():
                    got.extend((m.offset, m.key, m.value) for m in recs)
            if sorted(got) == want:
                check_eq(got, sorted(got), "offsets in read order")
                ctx.log("compacted read-back matched after %d attempts" % attempts)
                return
            time.sleep(1)
    finally:
        c.close()
    check_eq(sorted(got or []), want, "records after cleaning (offset, key, value), %d reads from offset 0" % attempts)


# ----------------------------------------------------------------------------- consumer groups
# group_* cases: run only when the broker advertises FindCoordinator + JoinGroup (lib/harness.py).

GROUP_TIMEOUT = 90   # seconds per group case (fresh groups wait out the 3 s initial rebalance delay)

def group_id(ctx, tag=None):
    return harness.unique_topic("group-" + (tag or ctx.case_name))


def group_consumer(ctx, group, client_id, **conf):
    cfg = dict(bootstrap_servers=ctx.bootstrap, group_id=group, client_id=client_id, enable_auto_commit=False,
               auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=500,
               request_timeout_ms=30000)
    cfg.update(conf)
    return KafkaConsumer(**cfg)


def produce_keyed(ctx, topic, partitions, per_partition, phase):
    """per_partition records to each partition, key '<phase>-<p>-<i>'; returns
    {key: (partition, offset, value)} from the acknowledgements."""
    recs = [{"key": b"%s-%d-%d" % (phase.encode(), p, i), "value": b"value-%s-%d-%d" % (phase.encode(), p, i),
             "partition": p} for i in range(per_partition) for p in range(partitions)]
    reps = produce(ctx, topic, recs, linger_ms=5)
    out = {}
    for r, (part, off) in zip(recs, reps):
        check_eq(part, r["partition"], "acknowledged partition of %s" % r["key"])
        out[r["key"]] = (part, off, r["value"])
    return out


def check_exactly_once(got, want):
    """got: [(member, partition, offset, key, value)]: every wanted record consumed exactly once, at its
    acknowledged partition/offset with its value; nothing else."""
    by_key, unexpected = {}, []
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


def poll_into(c, got, name, seconds, until=None):
    end = time.time() + seconds
    while time.time() < end:
        for _tp, recs in c.poll(timeout_ms=100).items():
            got.extend((name, r.partition, r.offset, r.key, r.value) for r in recs)
        if until is not None and until():
            return


class Member(threading.Thread):
    """A group member polling in its own thread (kafka-python joins the group inside poll(), so two
    members polled from one thread would wait for each other). call(fn) runs fn(consumer) in that
    thread (e.g. a commit) and returns its result."""

    def __init__(self, ctx, group, topic, name, got, **conf):
        super().__init__(daemon=True)
        self.c = group_consumer(ctx, group, name, **conf)
        self.topic, self.name, self.got = topic, name, got
        self.assignment = []
        self.stop_evt = threading.Event()
        self.calls = queue.Queue()
        self.error = None
        self.start()

    def run(self):
        try:
            self.c.subscribe([self.topic])
            while not self.stop_evt.is_set():
                for _tp, recs in self.c.poll(timeout_ms=100).items():
                    self.got.extend((self.name, r.partition, r.offset, r.key, r.value) for r in recs)
                self.assignment = sorted(tp.partition for tp in self.c.assignment())
                while not self.calls.empty():
                    fn, box, done = self.calls.get()
                    try:
                        box.append(fn(self.c))
                    except Exception as e:  # handed to the caller
                        box.append(e)
                    done.set()
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.c.close(autocommit=False)   # LeaveGroup

    def call(self, fn, timeout=20):
        box, done = [], threading.Event()
        self.calls.put((fn, box, done))
        check(done.wait(timeout), "member %s: call not served within %d s (error: %s)" % (self.name, timeout, self.error))
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def close(self):
        self.stop_evt.set()
        self.join(20)


def wait_split(members, partitions, timeout=30):
    deadline = time.time() + timeout
    last, since = None, None
    while time.time() < deadline:
        for m in members:
            check(m.error is None, "member %s: %s" % (m.name, m.error))
        asg = [list(m.assignment) for m in members]
        ok = all(asg) and sorted(sum(asg, [])) == list(range(partitions))
        if not ok:
            since = None
        elif asg != last or since is None:
            since = time.time()
        elif time.time() - since >= 1.0:
            return asg
        last = asg
        time.sleep(0.05)
    raise harness.CaseFailure("the group did not settle on disjoint non-empty assignments covering %d partitions "
                              "within %d s (last: %s)" % (partitions, timeout, last))


def committed_view(c, tps):
    out = {}
    for tp in tps:
        om = c.committed(tp, metadata=True)
        out[tp.partition] = None if om is None else (om.offset, om.metadata, om.leader_epoch)
    return out


@case("group_commit_resume", timeout=GROUP_TIMEOUT)
def _(ctx):
    from kafka.structs import OffsetAndMetadata
    topic = create_topic(ctx, ctx.topic(), 3)
    group = group_id(ctx)
    want = produce_keyed(ctx, topic, 3, 10, "a")
    tps = [TopicPartition(topic, p) for p in range(3)]
    a = group_consumer(ctx, group, "commit-a")
    try:
        a.subscribe([topic])
        got = []
        recs = {}
        end = time.time() + 30
        while len(recs) < 30 and time.time() < end:
            for _tp, rs in a.poll(timeout_ms=100).items():
                for r in rs:
                    got.append(("a", r.partition, r.offset, r.key, r.value))
                    recs[(r.partition, r.offset)] = r
        check_exactly_once(got, want)
        epoch = recs[(1, 6)].leader_epoch
        # a synchronous commit of explicit offsets: metadata, and the leader epoch of the last record read
        a.commit({tps[0]: OffsetAndMetadata(4, "meta-p0", -1), tps[1]: OffsetAndMetadata(7, "", epoch)})
        check_eq(committed_view(a, tps), {0: (4, "meta-p0", -1), 1: (7, "", epoch), 2: None},
                 "committed() (offset, metadata, leader epoch)")
    finally:
        a.close(autocommit=False)
    b = group_consumer(ctx, group, "commit-b")
    try:
        b.subscribe([topic])
        got = []
        old = {k: v for k, v in want.items() if v[1] >= {0: 4, 1: 7, 2: 0}[v[0]]}
        poll_into(b, got, "b", 30, until=lambda: len(got) >= len(old))
        more = produce_keyed(ctx, topic, 3, 2, "b")
        poll_into(b, got, "b", 20, until=lambda: len(got) >= len(old) + len(more))
        poll_into(b, got, "b", 0.6)
        check_exactly_once(got, {**old, **more})
        first = {}
        for g in got:
            first.setdefault(g[1], g[2])
        check_eq(first, {0: 4, 1: 7, 2: 0}, "first offset consumed per partition after resuming")
        b.commit()   # the consumed positions
    finally:
        b.close(autocommit=False)
    r = admin(ctx).list_group_offsets(group)[group]
    check_eq({tp.partition: om.offset for tp, om in r.items()}, {0: 12, 1: 12, 2: 12},
             "committed offsets (list_group_offsets) after the second member's commit()")


@case("group_admin", timeout=GROUP_TIMEOUT)
def _(ctx):
    topic = create_topic(ctx, ctx.topic(), 2)
    group = group_id(ctx)
    a = admin(ctx)
    got = []
    ms = [Member(ctx, group, topic, n, got) for n in ("compat-admin-a", "compat-admin-b")]
    try:
        wait_split(ms, 2)
        want = produce_keyed(ctx, topic, 2, 5, "a")
        deadline = time.time() + 20
        while len(got) < 10 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        check_exactly_once(got, want)
        for m in ms:
            m.call(lambda c: c.commit())

        mine = [g for g in a.list_groups() if g["group_id"] == group]
        check_eq(len(mine), 1, "list_groups entries for the group")
        check_eq((mine[0]["group_state"], mine[0]["protocol_type"], mine[0].get("group_type", "classic")),
                 ("Stable", "consumer", "classic"), "list_groups (state, protocol type, type)")
        for states, listed in [(["Stable"], True), (["Empty"], False)]:
            check_eq(any(g["group_id"] == group for g in a.list_groups(states_filter=states)), listed,
                     "listed with states_filter=%s" % states)

        d = a.describe_groups([group])[group]
        check_eq((d["error"], d["group_state"], d["protocol_type"], d["protocol_data"]),
                 (None, "Stable", "consumer", "range"), "describe_groups (error, state, protocol type, assignor)")
        by_client = {m.name: m for m in ms}
        check_eq(sorted(x["client_id"] for x in d["members"]), sorted(by_client), "describe_groups member client ids")
        for x in d["members"]:
            m = by_client[x["client_id"]]
            check_eq(x["group_instance_id"], None, "instance id of %s" % m.name)
            check("127.0.0.1" in (x["client_host"] or ""), "client host of %s is %r" % (m.name, x["client_host"]))
            check_eq(x["member_metadata"]["topics"], [topic], "subscription (member_metadata) of %s" % m.name)
            parts = [(t["topic"], sorted(t["partitions"])) for t in x["member_assignment"]["assigned_partitions"]]
            check_eq(parts, [(topic, m.assignment)], "assignment (member_assignment) of %s" % m.name)

        offs = a.list_group_offsets(group)[group]
        check_eq(sorted((tp.partition, om.offset, om.metadata) for tp, om in offs.items()), [(0, 5, ""), (1, 5, "")],
                 "list_group_offsets (partition, offset, metadata)")
        check_eq(a.delete_groups([group]), {group: "NonEmptyGroupError"}, "delete_groups while members are active")

        for m in ms:
            m.close()   # LeaveGroup
        for m in ms:
            check(m.error is None, "member %s: %s" % (m.name, m.error))
        deadline = time.time() + 15
        while True:
            d = a.describe_groups([group])[group]
            if d["group_state"] == "Empty" or time.time() > deadline:
                break
            time.sleep(0.1)
        check_eq((d["group_state"], len(d["members"])), ("Empty", 0), "describe_groups after both members left")
        a.delete_group_offsets(group, [TopicPartition(topic, 0)])
        offs = a.list_group_offsets(group)[group]
        check_eq(sorted((tp.partition, om.offset) for tp, om in offs.items()), [(1, 5)],
                 "list_group_offsets after delete_group_offsets(partition 0)")
        check_eq(a.delete_groups([group]), {group: "OK"}, "delete_groups of the empty group")
        check(all(g["group_id"] != group for g in a.list_groups()), "list_groups still lists the deleted group")
        check_eq(a.delete_groups([group]), {group: "GroupIdNotFoundError"}, "delete_groups of the deleted group")
    finally:
        for m in ms:
            m.close()


if __name__ == "__main__":
    sys.exit(harness.main("kafka-python", __file__, client_version, SETUP_ERROR))
