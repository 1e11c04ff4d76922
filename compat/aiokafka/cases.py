"""aiokafka compatibility cases (asyncio client, pure Python + cramjam codecs).

Core cases: consumers use group_id=None + assign() + seek() and never commit; producers set
enable_idempotence=False explicitly (except idempotent_producer).
group_consume (subscribe, commit, a second member resumes at the committed offset) runs only when
the broker advertises FindCoordinator + JoinGroup, else it SKIPs.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import case, check, check_eq  # noqa: E402

SETUP_ERROR = None
try:
    import aiokafka
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka import codec as _codec
except Exception as e:
    SETUP_ERROR = "aiokafka not importable (%s: %s); run scripts/compat-setup.sh" % (type(e).__name__, e)


def client_version():
    try:
        import cramjam
        cj = "cramjam %s" % cramjam.__version__
    except Exception:
        cj = "cramjam missing"
    return "aiokafka %s (%s)" % (aiokafka.__version__, cj)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 55))


async def create_topic(ctx, topic, partitions=1):
    adm = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=20000)
    await adm.start()
    try:
        await adm.create_topics([NewTopic(topic, partitions, 1)])
        deadline = time.time() + 10
        while time.time() < deadline:
            md = await adm.describe_topics([topic])
            t = [x for x in md if x["topic"] == topic]
            if t and t[0]["error_code"] == 0 and len(t[0]["partitions"]) == partitions \
                    and all(p["leader"] >= 0 for p in t[0]["partitions"]):
                return topic
            await asyncio.sleep(0.1)
        raise harness.CaseFailure("topic %s never showed %d partitions" % (topic, partitions))
    finally:
        await adm.close()


def producer(ctx, **conf):
    cfg = dict(bootstrap_servers=ctx.bootstrap, enable_idempotence=False, linger_ms=20,
               request_timeout_ms=20000)
    cfg.update(conf)
    return AIOKafkaProducer(**cfg)


async def produce_all(ctx, records, **conf):
    """records: list of (topic, partition, key, value, headers). Returns RecordMetadata list."""
    p = producer(ctx, **conf)
    await p.start()
    try:
        futs = [await p.send(t, value=v, key=k, partition=part, headers=h) for t, part, k, v, h in records]
        return [await f for f in futs]
    finally:
        await p.stop()


async def consume_assigned(ctx, topic, partition, start, want, extra_wait=1.0):
    """assign + seek, read `want` records, then keep polling extra_wait s: more is a failure."""
    c = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="none", request_timeout_ms=20000)
    await c.start()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, start)
        out = []
        deadline = time.time() + 30
        while len(out) < want and time.time() < deadline:
            res = await c.getmany(tp, timeout_ms=500)
            out.extend(res.get(tp, []))
        end = time.time() + extra_wait
        while time.time() < end:
            res = await c.getmany(tp, timeout_ms=200)
            out.extend(res.get(tp, []))
        return out
    finally:
        await c.stop()


def check_records(got, want, topic, partition, first_offset=0):
    """want: list of (key, value, headers)."""
    check_eq(len(got), len(want), "number of records consumed")
    for i, (r, (k, v, h)) in enumerate(zip(got, want)):
        check_eq((r.topic, r.partition, r.offset), (topic, partition, first_offset + i), "record %d position" % i)
        check_eq(r.key, k, "record %d key" % i)
        check_eq(r.value, v, "record %d value" % i)
        check_eq(list(r.headers), list(h or []), "record %d headers" % i)


async def roundtrip(ctx, want, partitions=1, **conf):
    topic = await create_topic(ctx, ctx.topic(), partitions)
    md = await produce_all(ctx, [(topic, 0, k, v, h) for k, v, h in want], **conf)
    check_eq([(m.topic, m.partition, m.offset) for m in md], [(topic, 0, i) for i in range(len(want))],
             "delivery reports (topic, partition, offset)")
    got = await consume_assigned(ctx, topic, 0, 0, len(want))
    check_records(got, want, topic, 0)
    return topic


# ----------------------------------------------------------------------------- cases

@case("admin_create_describe_delete")
def _admin(ctx):
    async def go():
        topic = ctx.topic()
        await create_topic(ctx, topic, 3)
        adm = AIOKafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=20000)
        await adm.start()
        try:
            check(topic in await adm.list_topics(), "created topic not listed")
            await adm.delete_topics([topic])
            deadline = time.time() + 10
            while topic in await adm.list_topics():
                check(time.time() < deadline, "deleted topic still listed after 10 s")
                await asyncio.sleep(0.2)
        finally:
            await adm.close()
    run(go())


@case("headers_roundtrip")
def _headers(ctx):
    want = [(b"k0", b"v0", [("a", b"1"), ("b", b""), ("a", b"2")]),
            (b"k1", b"v1", []),
            (b"", b"", [("only", b"x" * 100)])]
    run(roundtrip(ctx, want))


@case("null_key")
def _null_key(ctx):
    run(roundtrip(ctx, [(None, b"v%d" % i, None) for i in range(5)] + [(b"", b"empty-key", None)]))


@case("null_value_tombstone")
def _tombstone(ctx):
    run(roundtrip(ctx, [(b"k", b"v", None), (b"k", None, None), (b"k2", b"", None)]))


def _compression(codec):
    def fn(ctx):
        has = {"none": True, "gzip": True, "snappy": _codec.has_snappy(), "lz4": _codec.has_lz4(),
               "zstd": _codec.has_zstd()}[codec]
        if not has:
            raise harness.Skip("aiokafka has no %s codec installed" % codec)
        want = [(b"k%d" % i, (b"value-%d-" % i) * 50, [("i", b"%d" % i)]) for i in range(200)]
        run(roundtrip(ctx, want, compression_type=None if codec == "none" else codec, linger_ms=200,
                      max_batch_size=64 * 1024))
    return fn


for _c in ("none", "gzip", "snappy", "lz4", "zstd"):
    case("compression_" + _c)(_compression(_c))


@case("acks_1")
def _acks1(ctx):
    run(roundtrip(ctx, [(b"k%d" % i, b"v%d" % i, None) for i in range(10)], acks=1))


@case("acks_all")
def _acksall(ctx):
    run(roundtrip(ctx, [(b"k%d" % i, b"v%d" % i, None) for i in range(10)], acks="all"))


@case("fetch_mid_batch")
def _mid(ctx):
    async def go():
        topic = await create_topic(ctx, ctx.topic())
        want = [(b"k%d" % i, b"v%d" % i, None) for i in range(20)]
        md = await produce_all(ctx, [(topic, 0, k, v, h) for k, v, h in want], linger_ms=200,
                               compression_type="gzip")
        check_eq([m.offset for m in md], list(range(20)), "delivery offsets")
        got = await consume_assigned(ctx, topic, 0, 7, 13)
        check_records(got, want[7:], topic, 0, first_offset=7)
    run(go())


@case("list_offsets_earliest_latest")
def _lo(ctx):
    async def go():
        topic = await create_topic(ctx, ctx.topic())
        await produce_all(ctx, [(topic, 0, None, b"v%d" % i, None) for i in range(7)])
        c = AIOKafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            tp = TopicPartition(topic, 0)
            check_eq(await c.beginning_offsets([tp]), {tp: 0}, "earliest")
            check_eq(await c.end_offsets([tp]), {tp: 7}, "latest")
        finally:
            await c.stop()
    run(go())


@case("multi_partition_explicit")
def _multi(ctx):
    async def go():
        topic = await create_topic(ctx, ctx.topic(), 3)
        recs = [(topic, i % 3, b"k%d" % i, b"v%d" % i, None) for i in range(12)]
        md = await produce_all(ctx, recs)
        for p in range(3):
            check_eq([m.offset for m in md if m.partition == p], list(range(4)), "offsets of partition %d" % p)
            got = await consume_assigned(ctx, topic, p, 0, 4, extra_wait=0.5)
            check_records(got, [(k, v, None) for _, pp, k, v, _ in recs if pp == p], topic, p)
    run(go())


@case("idempotent_producer")
def _idem(ctx):
    async def go():
        topic = await create_topic(ctx, ctx.topic(), 3)
        recs = [(topic, i % 3, b"k%d" % i, b"idem-%d" % i, [("n", b"%d" % i)]) for i in range(30)]
        md = await produce_all(ctx, recs, enable_idempotence=True, acks="all", compression_type="gzip")
        for p in range(3):
            check_eq([m.offset for m in md if m.partition == p], list(range(10)), "offsets of partition %d" % p)
            got = await consume_assigned(ctx, topic, p, 0, 10, extra_wait=0.5)
            check_records(got, [(k, v, h) for _, pp, k, v, h in recs if pp == p], topic, p)
    run(go())


@case("group_consume", timeout=90)
def _group(ctx):
    async def go():
        topic = await create_topic(ctx, ctx.topic(), 2)
        group = "compat-group-" + topic
        recs = [(topic, i % 2, b"k%d" % i, b"g%d" % i, None) for i in range(10)]
        md = await produce_all(ctx, recs)
        acked = {(m.partition, m.offset): r[3] for m, r in zip(md, recs)}
        check_eq(sorted(acked), sorted((p, o) for p in range(2) for o in range(5)), "acked positions")

        async def member(expect):
            c = AIOKafkaConsumer(topic, bootstrap_servers=ctx.bootstrap, group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 heartbeat_interval_ms=500, session_timeout_ms=10000)
            await c.start()
            try:
                seen = {}
                deadline = time.time() + 40
                while len(seen) < len(expect) and time.time() < deadline:
                    res = await c.getmany(timeout_ms=500)
                    for tp, msgs in res.items():
                        for m in msgs:
                            key = (m.partition, m.offset)
                            check(key not in seen, "record %s consumed twice" % (key,))
                            seen[key] = m.value
                end = time.time() + 1.0
                while time.time() < end:
                    res = await c.getmany(timeout_ms=200)
                    for tp, msgs in res.items():
                        for m in msgs:
                            raise harness.CaseFailure("unexpected extra record p%d@%d" % (m.partition, m.offset))
                check_eq(seen, expect, "records consumed (partition, offset) -> value")
                await c.commit()
                for p in range(2):
                    tp = TopicPartition(topic, p)
                    check_eq(await c.committed(tp), max(o for pp, o in acked if pp == p) + 1,
                             "committed offset of partition %d" % p)
            finally:
                await c.stop()

        await member(acked)
        # second run: only the records produced after the commit
        recs2 = [(topic, i % 2, b"k%d" % i, b"h%d" % i, None) for i in range(4)]
        md2 = await produce_all(ctx, recs2)
        acked2 = {(m.partition, m.offset): r[3] for m, r in zip(md2, recs2)}
        check_eq(sorted(acked2), [(0, 5), (0, 6), (1, 5), (1, 6)], "acked positions (second batch)")
        acked = {**acked, **acked2}
        await member(acked2)
    run(go())


if __name__ == "__main__":
    sys.exit(harness.main("aiokafka", __file__, client_version, SETUP_ERROR))
