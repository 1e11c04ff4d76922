"""kcat (librdkafka CLI) compatibility cases for the broker core.

kcat's -C mode without -G is librdkafka's simple (group-less) consumer, and its producer is not
idempotent by default, so the core cases need neither consumer groups nor InitProducerId. Topics are
created by auto-creation (kcat has no CreateTopics): the broker must run with
auto.create.topics.enable=true and num.partitions=1.

group_* cases (`kcat -G`, librdkafka's balanced consumer) run only when the broker advertises
FindCoordinator + JoinGroup, else they SKIP; their 4-partition topic is created with a raw
CreateTopics v2 request (standard library).
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import case, check, check_eq  # noqa: E402

KCAT = os.environ.get("KCAT") or shutil.which("kcat") or shutil.which("kafkacat")
SETUP_ERROR = None if KCAT and os.access(KCAT, os.X_OK) else \
    "kcat not installed (apt-get install kcat; see scripts/compat-setup.sh)"
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
FMT = r"%p\t%o\t%K\t%k\t%S\t%s\t%h\t%T\n"


def client_version():
    out = subprocess.run([KCAT, "-V"], capture_output=True, text=True, timeout=10).stdout
    import re
    m = re.search(r"Version (\S+) .*librdkafka (\S+)", out)
    return "kcat %s (librdkafka %s)" % (m.group(1), m.group(2)) if m else "kcat ?"


def check_wire_codec(stderr, codec):
    """librdkafka silently sends uncompressed batches when its ApiVersions-based feature checks say
    the broker lacks the codec (gzip/snappy: Produce v0-v2 advertised, before librdkafka 2.10, see
    KAFKA-18659 / librdkafka#4956; lz4: FindCoordinator v0 advertised). Its `-d msg` debug lines
    show the codec of every produced batch."""
    lines = stderr.splitlines()
    refused = [l for l in lines if "does not support compression type" in l]
    check(not refused, "librdkafka sent the batches uncompressed: %s" % (refused[0].split("]: ")[-1] if refused else ""))
    sent = [l.rstrip(")").rsplit(", ", 1)[-1] for l in lines if "Produce MessageSet with" in l]
    check(sent, "no 'Produce MessageSet' debug line from kcat -d msg: cannot tell the codec on the wire")
    check(all(c == codec for c in sent), "codecs of the produced batches %s, want all %s" % (sorted(set(sent)), codec))


def kcat(ctx, args, stdin=None, timeout=30, check_rc=True, with_stderr=False):
    cmd = [KCAT, "-b", ctx.bootstrap] + args
    ctx.log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    ctx.log(p.stderr.decode(errors="replace")[-3000:])
    if check_rc and p.returncode != 0:
        raise harness.CaseFailure("kcat %s exited %d: %s" % (" ".join(args[:2]), p.returncode,
                                                             p.stderr.decode(errors="replace").strip()[-300:]))
    out = p.stdout.decode(errors="replace")
    return (out, p.stderr.decode(errors="replace")) if with_stderr else out


def produce_lines(ctx, topic, lines, extra=(), line_delay=None):
    """Produce newline-separated lines with kcat -P; extra flags e.g. -K: -H a=1 -z gzip."""
    args = ["-P", "-t", topic, "-p", "0", "-X", "linger.ms=300", "-X", "batch.num.messages=100000"] + list(extra)
    codec = extra[list(extra).index("-z") + 1] if "-z" in extra else "none"
    if codec != "none":
        args += ["-d", "msg"]  # to see the codec librdkafka really used (see check_wire_codec)
    if line_delay is None:
        out, err = kcat(ctx, args, stdin=("".join(l + "\n" for l in lines)).encode(), with_stderr=True)
        if codec != "none":
            check_wire_codec(err, codec)
        return
    cmd = [KCAT, "-b", ctx.bootstrap] + args
    ctx.log("$ " + " ".join(cmd) + "  (lines fed with %.3f s delay)" % line_delay)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    for l in lines:
        p.stdin.write((l + "\n").encode())
        p.stdin.flush()
        time.sleep(line_delay)
    p.stdin.close()
    err = p.stderr.read().decode(errors="replace")
    rc = p.wait(timeout=30)
    ctx.log(err[-3000:])
    check(rc == 0, "kcat -P exited %d: %s" % (rc, err.strip()[-300:]))


def consume(ctx, topic, offset="beginning", extra=(), expect=None):
    out = kcat(ctx, ["-C", "-t", topic, "-p", "0", "-o", str(offset), "-e", "-q", "-f", FMT] + list(extra))
    recs = []
    for line in out.split("\n"):
        if not line:
            continue
        f = line.split("\t")
        check(len(f) == 8, "unparsable kcat -f output line %r" % line)
        p, o, klen, k, vlen, v, h, ts = f
        recs.append({"partition": int(p), "offset": int(o),
                     "key": None if klen == "-1" else k, "value": None if vlen == "-1" else v,
                     "headers": h, "timestamp": int(ts)})
    if expect is not None:
        check_eq(len(recs), expect, "number of records kcat -C -e printed")
    return recs


def check_records(got, want, first_offset=0, headers=None):
    """want: list of (key, value)"""
    check_eq(len(got), len(want), "number of consumed records")
    for i, (g, (k, v)) in enumerate(zip(got, want)):
        check_eq(g["partition"], 0, "record %d partition" % i)
        check_eq(g["offset"], first_offset + i, "record %d offset" % i)
        check_eq(g["key"], k, "record %d key" % i)
        check_eq(g["value"], v, "record %d value" % i)
        if headers is not None:
            check_eq(g["headers"], headers, "record %d headers" % i)


def query(ctx, topic, ts):
    out = kcat(ctx, ["-Q", "-t", "%s:0:%d" % (topic, ts)]).strip()
    # "<topic> [0] offset N"
    check(out.startswith(topic + " [0] offset "), "unexpected kcat -Q output %r" % out)
    return int(out.rsplit(" ", 1)[1])


# ----------------------------------------------------------------------------- cases

@case("metadata_list")
def _(ctx):
    topic = ctx.topic()
    produce_lines(ctx, topic, ["hello"])
    md = json.loads(kcat(ctx, ["-L", "-t", topic, "-J"]))
    check_eq(len(md["brokers"]), 1, "broker count")
    host, port = ctx.bootstrap.rsplit(":", 1)
    broker = md["brokers"][0]
    check_eq(broker["name"], "%s:%s" % (host, port), "advertised broker address")
    topics = [t for t in md["topics"] if t["topic"] == topic]
    check_eq(len(topics), 1, "topic entries for %s" % topic)
    t = topics[0]
    check("error" not in t, "topic error %s" % t.get("error"))
    check_eq([p["partition"] for p in t["partitions"]], [0], "partitions")
    p = t["partitions"][0]
    check_eq(p["leader"], broker["id"], "partition 0 leader")
    check_eq([r["id"] for r in p["replicas"]], [broker["id"]], "partition 0 replicas")
    check_eq([r["id"] for r in p["isrs"]], [broker["id"]], "partition 0 isrs")
    text = kcat(ctx, ["-L"])
    check('topic "%s" with 1 partitions:' % topic in text, "plain kcat -L does not list %s" % topic)


@case("produce_key_headers")
def _(ctx):
    topic = ctx.topic()
    lines = ["k%d:value %d" % (i, i) for i in range(5)]
    produce_lines(ctx, topic, lines, ["-K", ":", "-H", "a=1", "-H", "b=two", "-H", "a=3"])
    got = consume(ctx, topic, expect=5)
    check_records(got, [("k%d" % i, "value %d" % i) for i in range(5)], headers="a=1,b=two,a=3")
    # the JSON envelope carries the same, with headers in order (repeated keys kept)
    js = [json.loads(l) for l in kcat(ctx, ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-J"]).splitlines() if l]
    check_eq([(j["offset"], j["key"], j["payload"]) for j in js],
             [(i, "k%d" % i, "value %d" % i) for i in range(5)], "JSON (offset, key, payload)")
    check_eq(js[0].get("headers"), ["a", "1", "b", "two", "a", "3"], "JSON headers")


@case("null_key")
def _(ctx):
    topic = ctx.topic()
    produce_lines(ctx, topic, ["no key %d" % i for i in range(3)] + ["k:keyed"], ["-K", ":"])
    got = consume(ctx, topic, expect=4)
    check_records(got, [(None, "no key 0"), (None, "no key 1"), (None, "no key 2"), ("k", "keyed")], headers="")


@case("null_value_tombstone")
def _(ctx):
    topic = ctx.topic()
    produce_lines(ctx, topic, ["k1:live", "k1:", "k2:x", "k3:"], ["-K", ":", "-Z"])
    got = consume(ctx, topic, expect=4)
    check_records(got, [("k1", "live"), ("k1", None), ("k2", "x"), ("k3", None)])
    # -Z on the consumer prints NULL for null payloads
    out = kcat(ctx, ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-Z", "-f", r"%o=%s\n"])
    check_eq(out.split(), ["0=live", "1=NULL", "2=x", "3=NULL"], "kcat -Z output")


def _compression_case(codec):
    def run(ctx):
        topic = ctx.topic("comp-" + codec)
        pad = " lorem ipsum dolor sit amet" * 4
        lines = ["key-%d:%s-%06d%s" % (i, codec, i, pad) for i in range(200)]
        produce_lines(ctx, topic, lines, ["-K", ":", "-z", codec])
        got = consume(ctx, topic, expect=200)
        check_records(got, [("key-%d" % i, "%s-%06d%s" % (codec, i, pad)) for i in range(200)])
        check_eq(query(ctx, topic, -1), 200, "latest offset (kcat -Q ts=-1)")
    return run


for _c in CODECS:
    case("compression_" + _c)(_compression_case(_c))


def _acks_case(acks):
    def run(ctx):
        topic = ctx.topic()
        produce_lines(ctx, topic, ["k%d:v%d" % (i, i) for i in range(100)],
                      ["-K", ":", "-X", "acks=%s" % acks, "-X", "linger.ms=5"])
        check_records(consume(ctx, topic, expect=100), [("k%d" % i, "v%d" % i) for i in range(100)])
    return run


case("acks_1")(_acks_case("1"))
case("acks_all")(_acks_case("all"))


@case("consume_mid_batch_offset")
def _(ctx):
    topic = ctx.topic()
    produce_lines(ctx, topic, ["k%d:v%d" % (i, i) for i in range(10)], ["-K", ":"])
    got = consume(ctx, topic, offset=4, expect=6)
    check_eq(got[0]["offset"], 4, "first offset returned for -o 4")
    check_records(got, [("k%d" % i, "v%d" % i) for i in range(4, 10)], first_offset=4)


@case("consume_mid_batch_offset_compressed")
def _(ctx):
    topic = ctx.topic()
    produce_lines(ctx, topic, ["k%d:v%d %s" % (i, i, "lorem ipsum " * 8) for i in range(10)], ["-K", ":", "-z", "zstd"])
    got = consume(ctx, topic, offset=7, expect=3)
    check_records(got, [("k%d" % i, "v%d %s" % (i, "lorem ipsum " * 8)) for i in range(7, 10)], first_offset=7)


@case("consume_relative_from_end")
def _(ctx):
    topic = ctx.topic()
    # two batches: 12 then 8 records; -o -3 needs the high watermark to count records (20)
    produce_lines(ctx, topic, ["a%d" % i for i in range(12)])
    produce_lines(ctx, topic, ["b%d" % i for i in range(8)])
    check_eq(query(ctx, topic, -2), 0, "earliest offset (kcat -Q ts=-2)")
    check_eq(query(ctx, topic, -1), 20, "latest offset (kcat -Q ts=-1)")
    got = consume(ctx, topic, offset=-3, expect=3)
    check_records(got, [(None, "b5"), (None, "b6"), (None, "b7")], first_offset=17)


@case("query_offsets_for_times")
def _(ctx):
    topic = ctx.topic()
    # one batch whose records carry increasing timestamps (lines fed 15 ms apart, linger 300 ms)
    produce_lines(ctx, topic, ["r%d" % i for i in range(8)], line_delay=0.015)
    got = consume(ctx, topic, expect=8)
    ts = [g["timestamp"] for g in got]
    check(ts == sorted(ts), "timestamps not monotonic: %s" % ts)
    for i in [0, 3, 7]:
        want = min(j for j in range(8) if ts[j] >= ts[i])
        check_eq(query(ctx, topic, ts[i]), want, "kcat -Q at timestamp of record %d" % i)
    check_eq(query(ctx, topic, ts[0] - 1000), 0, "kcat -Q before the first record")
    check_eq(query(ctx, topic, ts[-1] + 1), -1, "kcat -Q after the last record")
    # -o s@TS starts consuming at the first record with timestamp >= TS
    start = min(j for j in range(8) if ts[j] >= ts[4])
    got2 = consume(ctx, topic, offset="s@%d" % ts[4])
    check(got2, "kcat -o s@ts printed nothing")
    check_eq(got2[0]["offset"], start, "first offset for -o s@<ts of record 4>")


# ----------------------------------------------------------------------------- consumer groups
# group_* cases: run only when the broker advertises FindCoordinator + JoinGroup (lib/harness.py).

GROUP_TIMEOUT = 90   # seconds per group case (fresh groups wait out the 3 s initial rebalance delay)

GROUP_FMT = r"%p\t%o\t%k\t%s\n"
REBALANCED = re.compile(r"% Group \S+ rebalanced \(memberid [^)]*\): (assigned|revoked): ?(.*)$")


def create_topic_raw(ctx, topic, partitions):
    """CreateTopics v2 with the standard library (kcat cannot create topics; auto-creation gives 1
    partition). Then waits until kcat -L shows the partitions."""
    host, port = ctx.bootstrap.rsplit(":", 1)
    client = b"rivulet-compat-kcat"
    name = topic.encode()
    body = struct.pack(">hhih", 19, 2, 1, len(client)) + client
    body += struct.pack(">ih", 1, len(name)) + name + struct.pack(">ihii", partitions, 1, 0, 0)
    body += struct.pack(">ib", 15000, 0)
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            check(chunk, "CreateTopics: connection closed")
            buf += chunk
    pos = 4 + 4 + 4   # size, correlation id, throttle
    n = struct.unpack(">i", buf[pos:pos + 4])[0]
    pos += 4
    check_eq(n, 1, "CreateTopics v2: topics in the response")
    nlen = struct.unpack(">h", buf[pos:pos + 2])[0]
    pos += 2 + nlen
    err = struct.unpack(">h", buf[pos:pos + 2])[0]
    check_eq(err, 0, "CreateTopics v2 error code for %s" % topic)
    deadline = time.time() + 10
    while time.time() < deadline:
        md = json.loads(kcat(ctx, ["-L", "-t", topic, "-J"]))
        ts = [t for t in md["topics"] if t["topic"] == topic]
        if ts and "error" not in ts[0] and len(ts[0]["partitions"]) == partitions:
            return
        time.sleep(0.2)
    raise harness.CaseFailure("topic %s never showed %d partitions in kcat -L" % (topic, partitions))


def produce_keyed(ctx, topic, partitions, per_partition, phase):
    """per_partition records to each partition (kcat -P -p N -K:), key '<phase>-<p>-<i>'; returns
    {key: (partition, value)} (kcat prints no offsets for produced records)."""
    want = {}
    for p in range(partitions):
        lines = ["%s-%d-%d:value-%s-%d-%d" % (phase, p, i, phase, p, i) for i in range(per_partition)]
        kcat(ctx, ["-P", "-t", topic, "-p", str(p), "-K", ":", "-X", "linger.ms=5"],
             stdin=("".join(l + "\n" for l in lines)).encode())
        for l in lines:
            k, v = l.split(":", 1)
            want[k] = (p, v)
    return want


class BalancedKcat:
    """`kcat -G group topic` (librdkafka's balanced consumer) as a subprocess; its stdout lines are
    records, its stderr carries the rebalance notices."""

    def __init__(self, ctx, group, topic, name, extra=()):
        self.name = name
        cmd = [KCAT, "-b", ctx.bootstrap, "-G", group, "-u", "-f", GROUP_FMT, "-X", "client.id=" + name,
               "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000",
               "-X", "heartbeat.interval.ms=500", "-X", "enable.auto.commit=true",
               "-X", "auto.commit.interval.ms=200"] + list(extra) + [topic]
        ctx.log("$ " + " ".join(cmd))
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.records = []        # (name, partition, offset, key, value)
        self.assignment = set()
        self.notices = []
        self.ctx = ctx
        self.t_out = threading.Thread(target=self._out, daemon=True)
        self.t_err = threading.Thread(target=self._err, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _out(self):
        for line in self.p.stdout:
            f = line.rstrip("\n").split("\t")
            if len(f) == 4:
                self.records.append((self.name, int(f[0]), int(f[1]), f[2], f[3]))
            else:
                self.notices.append("unparsable stdout line %r" % line)

    def _err(self):
        for line in self.p.stderr:
            line = line.rstrip("\n")
            self.notices.append(line)
            m = REBALANCED.search(line)
            if m:
                parts = {int(x) for x in re.findall(r"\[(\d+)\]", m.group(2))}
                if m.group(1) == "assigned":
                    self.assignment = parts
                else:
                    self.assignment = self.assignment - parts

    def stop(self, timeout=20):
        """SIGTERM: kcat closes the consumer (final commit of the stored offsets, LeaveGroup)."""
        t0 = time.time()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
            self.ctx.log("[%s] exited %.1f s after SIGTERM" % (self.name, time.time() - t0))
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.t_out.join(5)
        self.t_err.join(5)
        self.ctx.log("[%s] exit %s\n%s" % (self.name, rc, "\n".join(self.notices[-40:])))
        return rc


def check_exactly_once(got, want):
    """got: [(name, partition, offset, key, value)], want: {key: (partition, value)}: every wanted
    record consumed once, in its partition, offsets contiguous per partition; nothing else."""
    by_key, unexpected = {}, []
    for g in got:
        (by_key.setdefault(g[3], []) if g[3] in want else unexpected).append(g)
    missing = [k for k in want if k not in by_key]
    dups = [(k, v) for k, v in by_key.items() if len(v) > 1]
    wrong = [(v[0], want[k]) for k, v in by_key.items() if (v[0][1], v[0][4]) != want[k]]
    check(not (missing or dups or wrong or unexpected),
          "%d records: %d never consumed %s; %d consumed more than once %s; %d with other partition/value %s; "
          "%d unexpected %s" % (len(want), len(missing), missing[:3], len(dups), dups[:2], len(wrong), wrong[:3],
                                len(unexpected), unexpected[:3]))
    for p in {w[0] for w in want.values()}:
        keys = sorted((k for k in want if want[k][0] == p), key=lambda k: int(k.rsplit("-", 1)[1]))
        offs = [by_key[k][0][2] for k in keys]
        check_eq(offs, list(range(offs[0], offs[0] + len(offs))), "offsets of partition %d in produce order" % p)


@case("group_balanced_consumer", timeout=GROUP_TIMEOUT)
def _(ctx):
    # two `kcat -G` processes share a 4-partition topic; a third run of the group resumes at the
    # offsets they committed
    t_case = time.time()
    topic = ctx.topic()
    create_topic_raw(ctx, topic, 4)
    group = harness.unique_topic("group-kcat")
    ctx.log("# %.1f s: topic created" % (time.time() - t_case))
    ks = [BalancedKcat(ctx, group, topic, "kcat-g%d" % i) for i in (1, 2)]
    try:
        deadline = time.time() + 30
        last, since = None, None
        while True:
            for k in ks:
                check(k.p.poll() is None, "%s exited early (%s): %s" % (k.name, k.p.returncode, k.notices[-5:]))
            asg = [sorted(k.assignment) for k in ks]
            ok = all(asg) and sorted(sum(asg, [])) == [0, 1, 2, 3]
            if not ok:
                since = None
            elif asg != last or since is None:
                since = time.time()
            elif time.time() - since >= 1.0:
                ctx.log("# %.1f s: kcat -G assignments settled: %s" % (time.time() - t_case, asg))
                break
            last = asg
            check(time.time() < deadline, "the two kcat -G did not settle on disjoint non-empty assignments "
                  "covering 4 partitions within 30 s (last: %s)" % last)
            time.sleep(0.05)
        want = produce_keyed(ctx, topic, 4, 5, "a")
        deadline = time.time() + 20
        while sum(len(k.records) for k in ks) < len(want) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)
        ctx.log("# %.1f s: %d records consumed" % (time.time() - t_case, sum(len(k.records) for k in ks)))
    finally:
        rcs = [k.stop() for k in ks]
    got = ks[0].records + ks[1].records
    check_exactly_once(got, want)
    for k, a in zip(ks, asg):
        for g in k.records:
            check(g[1] in a, "%s consumed %s of partition %d, assigned %s" % (k.name, g[3], g[1], a))
    check_eq(sorted(len(a) for a in asg), [2, 2], "partitions per kcat (range assignor, 4 over 2)")
    check_eq(sorted((g[1], g[2]) for g in got if g[3].endswith("-0")), [(p, 0) for p in range(4)],
             "(partition, offset) of the first record produced to each partition")
    check_eq(rcs, [0, 0], "exit status of the two kcat -G after SIGTERM")
    # resume: one kcat -G -e in the same group reads only what was produced since, from offset 5
    more = produce_keyed(ctx, topic, 4, 2, "b")
    ctx.log("# %.1f s: resuming" % (time.time() - t_case))
    k = BalancedKcat(ctx, group, topic, "kcat-g3", extra=["-e"])
    try:
        k.p.wait(30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        rc = k.stop()
    check_eq(rc, 0, "exit status of kcat -G -e")
    check_exactly_once(k.records, more)
    first = {}
    for g in k.records:
        first.setdefault(g[1], g[2])
    check_eq(first, {0: 5, 1: 5, 2: 5, 3: 5}, "first offset per partition of the resumed kcat -G (committed offsets)")


if __name__ == "__main__":
    sys.exit(harness.main("kcat", __file__, client_version, SETUP_ERROR))
