"""Durability across kill -9: acknowledged acks=all records survive, at their acknowledged offsets.

    restart_test.py --broker-bin PATH [--mode plain|idempotent|groups] [--kills N] [--kill-after 3000]
                    [--after-restart-s 3] [--hold-ms 300] [--extra-kills 3]

Starts the broker itself (free port on 127.0.0.1, fresh data dir), creates one topic with 3
partitions, runs 3 confluent-kafka producers (acks=all, explicit round-robin partitions) that
produce numbered records, kill -9s the broker after --kill-after acknowledgements, restarts it on
the same data dir and port (--kills times), keeps producing for a while, then reads every
partition back from offset 0 and checks.

--mode plain (default; 1 kill): enable.idempotence=false.

  restart_ok              the broker came back on the same data dir and answered again
  produce_after_restart   producers got acknowledgements after the restart
  no_offset_reuse         no (partition, offset) was acknowledged for two different records
  acked_records_present   every acknowledged record is at exactly its acknowledged
                          partition/offset with the same key and value
  offsets_contiguous      each partition reads back as 0..high_watermark-1 with no gap, and
                          every acknowledged offset is below the high watermark

  Records that were never acknowledged may be absent or present, even twice (the producer retries
  without idempotence).

--mode idempotent (default; 2 kills): enable.idempotence=true (librdkafka: InitProducerId, batches
numbered per partition, in-flight batches retried with their sequence numbers after the kill).
Against a bare kill, few runs catch a batch between "appended" and "acknowledged" (Rivulet
answers within a millisecond), so every client connects through lib/api_proxy.py, which
withholds Produce responses for --hold-ms (300) right before each kill -9: the broker appends
those batches, the producers never hear of it and re-send them after the restart with the same
producer id, epoch and sequence numbers, which the restarted broker must recognise as
duplicates (answering with the original offsets). --hold-ms 0: no proxy, bare kills, and up to
--extra-kills (3) more rounds while no batch was re-sent. The run prints how many responses were
withheld and how many batches re-sent (librdkafka's debug=msg lines; RESTART_FULL_LOG=1 keeps
those lines in the eos log). Every value is "idem-p<producer>-<sequence>", unique per record, so
duplicates are detectable:

  idempotent_restart_ok, idempotent_produce_after_restart, idempotent_no_offset_reuse,
  idempotent_offsets_contiguous      as above
  idempotent_all_delivered        every produced record was acknowledged: no delivery failure,
                                  no fatal producer error, nothing left after flush
  idempotent_acked_exactly_once   every acknowledged record is at exactly its acknowledged
                                  partition/offset and its value is stored nowhere else
  idempotent_no_duplicates        no value is stored twice (acknowledged or not) and every stored
                                  value is one a producer sent, to that partition
  idempotent_producer_order       per producer and partition, sequence numbers increase strictly
                                  with the offset (retries did not reorder)
  idempotent_producer_state_kept  each producer kept the producer id and epoch of its first
                                  InitProducerId, and no produce was answered with
                                  OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID /
                                  INVALID_PRODUCER_EPOCH (librdkafka's debug=eos log): the broker
                                  restored the producer state after kill -9

--mode groups (result row `restart-groups`; run by compat/run only when the broker advertises
FindCoordinator + JoinGroup, else every check is SKIP): one confluent-kafka group member reads 3
partitions and commits synchronously (explicit offsets with and without metadata, a later commit
superseding an earlier one, commit(message) with its leader epoch); the broker is kill -9'd right
after the last acknowledgement (the member still in the group) and restarted; a new member resumes
and commits again with metadata; kill -9 again; a third member resumes on records produced after
the restart:

  group_restart_ok            the broker came back twice and every step completed
  group_commits_acknowledged  every synchronous commit was answered without error
  group_offsets_kept          after each restart, OffsetFetch (Consumer.committed without joining,
                              and AdminClient.list_consumer_group_offsets) returns exactly the last
                              acknowledged (offset, metadata, leader epoch) of every partition
  group_resume_at_committed   after each restart, a new member of the group starts each partition
                              at exactly its committed offset and reads exactly the stored records
                              from there (nothing before, nothing missing)

A broker binary named kfake* is started with kfake's flags (-data-dir DIR -sync-writes) instead of
Rivulet's.
"""

import argparse
import collections
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import api_proxy  # noqa: E402
import broker_apis  # noqa: E402
import harness  # noqa: E402

try:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    IMPORT_ERROR = None
except Exception as e:  # pragma: no cover
    IMPORT_ERROR = "%s: %s" % (type(e).__name__, e)

CHECKS = ["restart_ok", "produce_after_restart", "no_offset_reuse", "acked_records_present", "offsets_contiguous"]
IDEM_CHECKS = ["idempotent_restart_ok", "idempotent_produce_after_restart", "idempotent_all_delivered",
               "idempotent_no_offset_reuse", "idempotent_acked_exactly_once", "idempotent_no_duplicates",
               "idempotent_producer_order", "idempotent_offsets_contiguous", "idempotent_producer_state_kept"]
PARTITIONS = 3
IDEM_VALUE = re.compile(rb"^idem-p(\d+)-(\d{9})$")
# librdkafka debug=eos / warning lines that mean the broker did not recognise the producer's state
# (or the producer had to re-initialise): any of them fails idempotent_producer_state_kept
EOS_TROUBLE = re.compile(r"(?i)out.of.order|unknown.producer|invalid.producer.epoch|producer.fenced|"
                         r"duplicate.sequence|drain for .*(epoch bump|reset)|epoch bump|fatal")
EOS_ACQUIRED = re.compile(r"Acquired (PID\{[^}]*\})")
EOS_SENT = re.compile(r"\[(\d+)\]: Produce MessageSet with (\d+) message.*BaseSeq (-?\d+), (PID\{[^}]*\})")


def log(*a):
    print("#", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Broker:
    def __init__(self, binary, data_dir, port, log_path, extra_args):
        self.binary, self.data_dir, self.port, self.log_path = binary, data_dir, port, log_path
        self.extra = extra_args
        self.proc = None

    def cmd(self):
        if os.path.basename(self.binary).startswith("kfake"):
            return [self.binary, "-port", str(self.port), "-data-dir", self.data_dir, "-sync-writes"] + self.extra
        listener = "PLAINTEXT://127.0.0.1:%d" % self.port
        return [self.binary, "--listeners", listener, "--advertised-listeners", listener,
                "--log-dirs", self.data_dir] + self.extra

    def start(self, timeout=30):
        logf = open(self.log_path, "ab")
        logf.write(("\n==== start %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(self.cmd()))).encode())
        logf.flush()
        self.proc = subprocess.Popen(self.cmd(), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        return wait_port(self.port, timeout, self.proc)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


class HoldProxy:
    """lib/api_proxy.py's Proxy in a thread, forwarding every API, with a switch that withholds
    Produce responses: the broker appends the batches, the producers never hear of it."""

    def __init__(self, listen_port, broker_port, log_path):
        import asyncio
        self.log = open(log_path, "w")
        self.proxy = api_proxy.Proxy(listen_port, "127.0.0.1", broker_port, None, self.log)
        self.proxy.log_requests = False
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import asyncio
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.proxy.serve())
        except Exception as e:  # pragma: no cover
            self.proxy.note("proxy stopped: %s: %s" % (type(e).__name__, e))

    def hold_produce(self, on):
        self.proxy.hold_keys = {0} if on else set()

    @property
    def held(self):
        return self.proxy.held


class Ledger:
    """Every acknowledgement, checked for offset reuse as it arrives."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}           # (partition, offset) -> (key, value)
        self.reuse = []           # [(partition, offset, first, second)]
        self.total = 0
        self.failed = 0
        self.produce_errors = 0
        self.last_produce_error = None
        self.after_restart = 0
        self.restarted = False
        self.sent = collections.Counter()             # producer idx -> records handed to produce()
        self.eos = collections.defaultdict(list)      # producer idx -> librdkafka eos/error log lines
        self.client_errors = collections.defaultdict(list)  # producer idx -> error_cb errors
        self.failures = []                            # (idx, value, error) of failed deliveries

    def ack(self, partition, offset, key, value):
        with self.lock:
            prev = self.acked.get((partition, offset))
            if prev is not None and prev != (key, value):
                self.reuse.append((partition, offset, prev, (key, value)))
            self.acked[(partition, offset)] = (key, value)
            self.total += 1
            if self.restarted:
                self.after_restart += 1


class _Lines(logging.Handler):
    def __init__(self, sink):
        super().__init__()
        self.sink = sink

    def emit(self, record):
        self.sink.append("%.3f %s" % (record.created, record.getMessage()))


def producer_loop(idx, bootstrap, topic, ledger, stop, errors, rate, idempotent=False):
    conf = {
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": idempotent,
        "linger.ms": 5, "message.timeout.ms": 45000, "queue.buffering.max.messages": 2000,
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500, "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 500, "socket.connection.setup.timeout.ms": 3000,
        "client.id": "restart-producer-%d" % idx,
    }
    extra = {}
    if idempotent:
        # librdkafka's idempotence debug lines (PID acquisition, drains, epoch bumps), its per-batch
        # lines and its error callback, for idempotent_producer_state_kept and the re-send count
        lg = logging.getLogger("restart-producer-%d" % idx)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
        lg.addHandler(_Lines(ledger.eos[idx]))
        conf["debug"] = "eos,msg"   # msg: one line per batch sent / delivered (BaseSeq), to count re-sends
        extra = {"logger": lg, "error_cb": lambda err: ledger.client_errors[idx].append(err)}
    p = Producer(conf, **extra)

    def on_delivery(err, msg):
        if err is not None:
            with ledger.lock:
                ledger.failed += 1
                if len(ledger.failures) < 20:
                    ledger.failures.append((idx, msg.value(), str(err)))
            return
        ledger.ack(msg.partition(), msg.offset(), msg.key(), msg.value())

    seq = 0
    t0 = time.time()
    try:
        while not stop.is_set():
            if rate and seq % 100 == 0:
                ahead = seq / rate - (time.time() - t0)
                if ahead > 0:
                    p.poll(min(ahead, 0.1))
                    continue
            key = b"producer-%d" % idx
            value = (b"idem-p%d-%09d" if idempotent else b"p%d-%09d") % (idx, seq)
            try:
                p.produce(topic, key=key, value=value, partition=seq % PARTITIONS, on_delivery=on_delivery)
                seq += 1
                ledger.sent[idx] = seq
            except BufferError:
                p.poll(0.05)
                continue
            except Exception as e:  # e.g. _UNKNOWN_TOPIC while metadata is missing: retry shortly
                with ledger.lock:
                    ledger.produce_errors += 1
                    ledger.last_produce_error = str(e)
                p.poll(0.1)
                continue
            p.poll(0)
        left = p.flush(60)
        if left:
            errors.append("producer %d: %d records neither acked nor failed after flush(60)" % (idx, left))
    except Exception as e:  # pragma: no cover
        errors.append("producer %d crashed: %s: %s" % (idx, type(e).__name__, e))


def resent_batches(ledger, producers):
    """Per producer: batches sent more than once (in flight at a kill, retried with the same
    partition, BaseSeq and PID), from librdkafka's debug=msg lines."""
    out = {}
    for idx in range(producers):
        sends = collections.Counter(m.group(1, 3, 4) for m in (EOS_SENT.search(l) for l in list(ledger.eos[idx])) if m)
        out[idx] = sum(n - 1 for n in sends.values())
    return out


def read_partition(bootstrap, topic, partition, high, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart-verify-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "auto.offset.reset": "error", "enable.partition.eof": True})
    got = {}
    order = []
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = c.consume(num_messages=5000, timeout=0.5)
            done = False
            for m in msgs:
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        if m.offset() >= high:
                            done = True
                        continue
                    raise RuntimeError("consumer error on partition %d: %s" % (partition, m.error()))
                order.append(m.offset())
                got[m.offset()] = (m.key(), m.value())
            if done or (order and order[-1] >= high - 1):
                break
        return got, order
    finally:
        c.close()


# ------------------------------------------------------------------------------------- --mode groups

GROUP_CHECKS = ["group_restart_ok", "group_commits_acknowledged", "group_offsets_kept", "group_resume_at_committed"]
GROUP_RECORDS = 40          # per partition before the first kill; GROUP_MORE more after each restart
GROUP_MORE = 5


def group_consumer_conf(bootstrap, group, client_id):
    return {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "classic", "client.id": client_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500}


def group_produce(bootstrap, topic, phase, per_partition):
    """per_partition records to each partition, acks=all; returns {(partition, offset): (key, value)}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False, "linger.ms": 5,
                  "message.timeout.ms": 30000})
    acked, failed = {}, []

    def cb(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    for i in range(per_partition):
        for part in range(PARTITIONS):
            p.produce(topic, key=b"%s-%d-%d" % (phase.encode(), part, i), value=b"value-%s-%d-%d" % (phase.encode(), part, i),
                      partition=part, on_delivery=cb)
    left = p.flush(30)
    if left or failed or len(acked) != per_partition * PARTITIONS:
        raise RuntimeError("producing %s: %d acked, %d left after flush, failures %s" % (phase, len(acked), left, failed[:3]))
    return acked


def group_consume(c, count, timeout=30.0, extra=0.6):
    """count records from a subscribed consumer (then `extra` seconds more, to see anything past the
    end); returns [(partition, offset, key, value)] and the Message objects by (partition, offset)."""
    got, msgs = [], {}
    deadline = time.time() + timeout
    end = None
    while True:
        now = time.time()
        if end is None and (len(got) >= count or now > deadline):
            end = now + extra
        if end is not None and now > end:
            break
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            raise RuntimeError("consumer error: %s" % m.error())
        got.append((m.partition(), m.offset(), m.key(), m.value()))
        msgs[(m.partition(), m.offset())] = m
    return got, msgs


def group_committed(bootstrap, group, topic, timeout=45.0):
    """{partition: (offset, metadata, leader_epoch)} from OffsetFetch (Consumer.committed without
    joining) and from AdminClient.list_consumer_group_offsets; retried while the restarted broker
    is not ready (connection refused, coordinator loading)."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        c = Consumer(group_consumer_conf(bootstrap, group, "restart-group-check"))
        try:
            res = c.committed(tps, timeout=10)
            errs = [tp.error for tp in res if tp.error is not None]
            if not errs:
                a = AdminClient({"bootstrap.servers": bootstrap})
                r = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                                  request_timeout=10)[group].result(timeout=15)
                return ({tp.partition: (tp.offset, tp.metadata, tp.leader_epoch) for tp in res},
                        {tp.partition: (tp.offset, tp.metadata, tp.leader_epoch) for tp in r.topic_partitions})
            last = errs
        except Exception as e:  # noqa: BLE001  broker still coming up
            last = "%s: %s" % (type(e).__name__, e)
        finally:
            c.close()
        time.sleep(0.5)
    raise RuntimeError("OffsetFetch did not answer within %.0f s after the restart (last: %s)" % (timeout, last))


def run_groups(args, summary, report, finish):
    """--mode groups: committed offsets survive kill -9 (see the module docstring)."""
    checks = GROUP_CHECKS
    import confluent_kafka
    print("# client: confluent-kafka %s (librdkafka %s): group members, sync commits, 2 x kill -9" % (
        confluent_kafka.__version__, confluent_kafka.libversion()[0]), flush=True)
    if args.groups == "no":
        for c in checks:
            summary.emit("SKIP", c, broker_apis.NO_GROUPS_REASON)
        return finish()
    log_dir = os.path.join(args.log_dir, "restart-test")
    os.makedirs(log_dir, exist_ok=True)
    broker_log = os.path.join(log_dir, "broker-groups.log")
    open(broker_log, "w").close()
    data_dir = tempfile.mkdtemp(prefix="rivulet-restart-groups-")
    port = free_port()
    bootstrap = "127.0.0.1:%d" % port
    broker = Broker(os.path.abspath(args.broker_bin), data_dir, port, broker_log, args.broker_arg)
    topic = "restart-groups-%d-%s" % (int(time.time()), uuid.uuid4().hex[:8])
    group = "restart-group-%d-%s" % (int(time.time()), uuid.uuid4().hex[:8])
    print("# broker: %s  data: %s  bootstrap: %s  topic: %s  group: %s" % (
        args.broker_bin, data_dir, bootstrap, topic, group), flush=True)
    consumers = []
    state = {"restart": (True, ""), "acked": (True, ""), "kept": [], "resume": []}

    def kill_restart(rnd):
        broker.kill9()
        log("round %d: kill -9 right after the last commit was acknowledged" % rnd)
        time.sleep(0.3)
        if not broker.start(timeout=60):
            raise RestartFailed("round %d: broker did not come back on %s after kill -9 (exit %s; log: %s)" % (
                rnd, bootstrap, broker.proc.poll(), broker_log))
        log("round %d: restarted" % rnd)

    def verify_kept(rnd, want):
        fetched, listed = group_committed(bootstrap, group, topic)
        log("round %d: committed after restart: %s (admin: %s); acknowledged before the kill: %s" % (
            rnd, fetched, listed, want))
        for what, got in (("Consumer.committed", fetched), ("AdminClient.list_consumer_group_offsets", listed)):
            if got != want:
                state["kept"].append("round %d: %s %s, want the acknowledged %s" % (rnd, what, got, want))

    def resume(rnd, committed, records, name):
        """A new member of the group must start at exactly the committed offsets."""
        c = Consumer(group_consumer_conf(bootstrap, group, name))
        consumers.append(c)
        c.subscribe([topic])
        want = sorted((p, o, k, v) for (p, o), (k, v) in records.items() if o >= committed[p][0])
        got, msgs = group_consume(c, len(want))
        if sorted(got) != want:
            have = set(got)
            state["resume"].append("round %d: resumed consumer read %d records, want %d (first missing %s, first extra %s)" % (
                rnd, len(got), len(want), [w[:2] for w in want if w not in have][:3],
                [g[:2] for g in got if g not in set(want)][:3]))
        first = {}
        for p, o, _k, _v in got:
            first.setdefault(p, o)
        want_first = {p: committed[p][0] for p in range(PARTITIONS) if any(w[0] == p for w in want)}
        if first != want_first:
            state["resume"].append("round %d: first offset per partition %s, want the committed %s" % (rnd, first, want_first))
        return c, msgs

    try:
        if not broker.start():
            for c in checks:
                report(c, False, "broker did not start listening on %s (log: %s)" % (bootstrap, broker_log))
            return finish()
        if args.groups != "yes" and not broker_apis.groups_enabled(bootstrap, args.groups):
            for c in checks:
                summary.emit("SKIP", c, broker_apis.NO_GROUPS_REASON)
            return finish()
        a = AdminClient({"bootstrap.servers": bootstrap})
        a.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=15)[topic].result(timeout=30)
        records = group_produce(bootstrap, topic, "a", GROUP_RECORDS)

        # round 0: a member consumes everything and commits synchronously (several commits per
        # partition; the last one counts), stays in the group, and the broker is killed at once
        c = Consumer(group_consumer_conf(bootstrap, group, "restart-group-a"))
        consumers.append(c)
        c.subscribe([topic])
        got, msgs = group_consume(c, len(records), extra=0.2)
        if sorted((p, o) for p, o, _k, _v in got) != sorted(records):
            raise RestartFailed("before any kill: the first member read %d records, want %d" % (len(got), len(records)))
        commits = [
            ("offsets", [TopicPartition(topic, 0, 10, metadata="r0-first"), TopicPartition(topic, 1, 20),
                         TopicPartition(topic, 2, 30)]),
            ("offsets", [TopicPartition(topic, 0, 15, metadata="r0-p0")]),
            ("message", msgs[(1, 24)]),
        ]
        for kind, arg in commits:
            res = c.commit(offsets=arg, asynchronous=False) if kind == "offsets" else c.commit(message=arg, asynchronous=False)
            bad = [(tp.partition, tp.error) for tp in res if tp.error is not None]
            if bad:
                state["acked"] = (False, "commit(%s) answered %s" % (kind, bad))
                raise RestartFailed("a commit was not acknowledged: %s" % bad)
        want = {0: (15, "r0-p0", None), 1: (25, None, msgs[(1, 24)].leader_epoch()), 2: (30, None, None)}
        kill_restart(1)
        verify_kept(1, want)
        c.close()   # the member of round 0 leaves (after the broker came back)
        consumers.remove(c)

        # round 1: a new member resumes at the committed offsets, reads to the end, commits its
        # positions plus metadata; kill -9 again at once
        records.update(group_produce(bootstrap, topic, "b", GROUP_MORE))
        c, msgs = resume(1, want, records, "restart-group-b")
        end = GROUP_RECORDS + GROUP_MORE
        res = c.commit(offsets=[TopicPartition(topic, p, end, metadata="r1-p%d" % p) for p in range(PARTITIONS)],
                       asynchronous=False)
        bad = [(tp.partition, tp.error) for tp in res if tp.error is not None]
        if bad:
            state["acked"] = (False, "round 1 commit answered %s" % bad)
            raise RestartFailed("a commit was not acknowledged: %s" % bad)
        want = {p: (end, "r1-p%d" % p, None) for p in range(PARTITIONS)}
        kill_restart(2)
        verify_kept(2, want)
        c.close()
        consumers.remove(c)

        # round 2: the group resumes once more, on records produced after the last restart
        records.update(group_produce(bootstrap, topic, "c", GROUP_MORE))
        c, _ = resume(2, want, records, "restart-group-c")
    except RestartFailed as e:
        state["restart"] = (False, str(e))
        log(str(e))
    except Exception as e:  # noqa: BLE001
        state["restart"] = (False, "%s: %s" % (type(e).__name__, e))
        log("error: %s: %s" % (type(e).__name__, e))
    finally:
        for c in consumers:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        broker.stop()
        if args.keep_data:
            log("kept data dir %s" % data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    ok, why = state["restart"]
    report("group_restart_ok", ok, why)
    report("group_commits_acknowledged", state["acked"][0], state["acked"][1])
    kept_why = "; ".join(state["kept"]) or ("" if ok else "not verified: " + why)
    report("group_offsets_kept", ok and not state["kept"], kept_why)
    resume_why = "; ".join(state["resume"]) or ("" if ok else "not verified: " + why)
    report("group_resume_at_committed", ok and not state["resume"], resume_why)
    return finish()


class RestartFailed(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--broker-arg", action="append", default=[], help="extra broker argument (repeatable)")
    ap.add_argument("--mode", choices=["plain", "idempotent", "groups"], default="plain",
                    help="plain: enable.idempotence=false; idempotent: enable.idempotence=true, exactly-once "
                         "checks; groups: committed consumer-group offsets survive kill -9")
    ap.add_argument("--groups", choices=["auto", "yes", "no"], default="auto",
                    help="--mode groups: run (yes), SKIP every check (no), or ask the started broker whether "
                         "it advertises FindCoordinator + JoinGroup (auto)")
    ap.add_argument("--kills", type=int, default=None,
                    help="how many kill -9 / restart rounds (default: 1 plain, 2 idempotent)")
    ap.add_argument("--kill-after", type=int, default=3000, help="acks (per round) before each kill -9")
    ap.add_argument("--extra-kills", type=int, default=3,
                    help="idempotent mode: up to this many more kills while no batch was re-sent after one")
    ap.add_argument("--hold-ms", type=float, default=300,
                    help="idempotent mode: before each kill, withhold Produce responses for this long (producers "
                         "connect through lib/api_proxy.py), so that appended batches are in flight at the kill "
                         "(0: no proxy, plain kill)")
    ap.add_argument("--after-restart-s", type=float, default=3.0, help="seconds of producing after the last restart")
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--rate", type=float, default=4000, help="records per second per producer (0: unthrottled)")
    ap.add_argument("--keep-data", action="store_true", help="keep the data dir and broker log")
    ap.add_argument("--log-dir", default=os.environ.get("COMPAT_LOG_DIR",
                                                         os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "logs")))
    args = ap.parse_args()
    idem = args.mode == "idempotent"
    if args.kills is None:
        args.kills = 2 if idem else 1
    checks = GROUP_CHECKS if args.mode == "groups" else IDEM_CHECKS if idem else CHECKS
    pre = "idempotent_" if idem else ""

    here = os.path.dirname(os.path.abspath(__file__))
    summary = harness.Summary(harness.load_allowlist(os.path.join(here, "allowlist.txt")),
                              harness.load_quirks("restart-test"))

    def report(name, ok, reason=""):
        summary.emit("PASS" if ok else "FAIL", name, reason)

    def finish():
        return summary.finish()

    if IMPORT_ERROR:
        print("# client: confluent-kafka (unavailable)")
        for c in checks:
            summary.emit("SKIP", c, "confluent-kafka not importable (%s); run scripts/compat-setup.sh" % IMPORT_ERROR)
        return finish()
    if not os.access(args.broker_bin, os.X_OK):
        for c in checks:
            report(c, False, "broker binary %s not found or not executable" % args.broker_bin)
        return finish()
    if args.mode == "groups":
        return run_groups(args, summary, report, finish)

    log_dir = os.path.join(args.log_dir, "restart-test")
    os.makedirs(log_dir, exist_ok=True)
    broker_log = os.path.join(log_dir, "broker%s.log" % ("-idempotent" if idem else ""))
    open(broker_log, "w").close()
    data_dir = tempfile.mkdtemp(prefix="rivulet-restart-")
    port = free_port()
    bootstrap = "127.0.0.1:%d" % port
    broker = Broker(os.path.abspath(args.broker_bin), data_dir, port, broker_log, args.broker_arg)
    topic = "restart-%s%d-%s" % ("idem-" if idem else "", int(time.time()), uuid.uuid4().hex[:8])
    import confluent_kafka
    print("# client: confluent-kafka %s (librdkafka %s): %d producers, acks=all, %s, %d x kill -9" % (
        confluent_kafka.__version__, confluent_kafka.libversion()[0], args.producers,
        "enable.idempotence=true" if idem else "enable.idempotence=false", args.kills), flush=True)
    print("# broker: %s  data: %s  bootstrap: %s  topic: %s" % (args.broker_bin, data_dir, bootstrap, topic), flush=True)

    ledger = Ledger()
    stop = threading.Event()
    errors = []
    threads = []
    restart_ok, restart_reason = True, ""
    try:
        if not broker.start():
            for c in checks:
                report(c, False, "broker did not start listening on %s (log: %s)" % (bootstrap, broker_log))
            return finish()
        proxy = None
        if idem and args.hold_ms > 0:
            # every client goes through the proxy (it rewrites the advertised port in Metadata)
            proxy_port = free_port()
            proxy = HoldProxy(proxy_port, port, os.path.join(log_dir, "proxy-idempotent.log"))
            if not wait_port(proxy_port, 10):
                for c in checks:
                    report(c, False, "the response-holding proxy did not listen on %d" % proxy_port)
                return finish()
            bootstrap = "127.0.0.1:%d" % proxy_port
            print("# clients connect through lib/api_proxy.py on %s; Produce responses are withheld for %.0f ms "
                  "before each kill -9" % (bootstrap, args.hold_ms), flush=True)
        a = AdminClient({"bootstrap.servers": bootstrap})
        a.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=15)[topic].result(timeout=30)

        for i in range(args.producers):
            t = threading.Thread(target=producer_loop, args=(i, bootstrap, topic, ledger, stop, errors, args.rate, idem),
                                 daemon=True)
            t.start()
            threads.append(t)

        t_start = time.time()
        rnd = 0
        while True:
            if rnd >= args.kills:
                # idempotent: the kills are only worth something when batches were in flight (and
                # then re-sent with their sequence numbers): up to --extra-kills more rounds until one was
                if not idem or proxy is not None or rnd >= args.kills + args.extra_kills:
                    break
                time.sleep(0.5)
                if sum(resent_batches(ledger, args.producers).values()) > 0:
                    break
                log("round %d: no batch was in flight at the kills so far: one more kill" % rnd)
            target = ledger.total + args.kill_after
            deadline = time.time() + 60
            while ledger.total < target and time.time() < deadline:
                time.sleep(0.01)
            if ledger.total < target:
                restart_ok, restart_reason = False, "round %d: only %d acks within 60 s before the kill" % (rnd, ledger.total)
                break
            acks_at_kill = ledger.total
            held = ""
            if proxy is not None:
                # the broker keeps appending, the producers get no answer (at most 5 requests in
                # flight per connection), then it dies: those batches are appended, never acked
                held_before = proxy.held
                proxy.hold_produce(True)
                time.sleep(args.hold_ms / 1000.0)
            broker.kill9()
            if proxy is not None:
                proxy.hold_produce(False)
                held = ", %d Produce responses withheld before it" % (proxy.held - held_before)
            log("round %d: kill -9 after %d acks (%.1f s)%s" % (rnd, acks_at_kill, time.time() - t_start, held))
            time.sleep(0.5)
            with ledger.lock:
                ledger.restarted = True
                ledger.after_restart = 0
            if not broker.start(timeout=60):
                restart_ok = False
                restart_reason = "round %d: broker did not come back on 127.0.0.1:%d after kill -9 (exit %s; log: %s)" % (
                    rnd, port, broker.proc.poll(), broker_log)
                break
            log("round %d: restarted (%.1f s)" % (rnd, time.time() - t_start))
            rnd += 1
        if restart_ok:
            time.sleep(args.after_restart_s)
            deadline = time.time() + 30
            while ledger.after_restart < 100 and time.time() < deadline:
                time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=90)
        log("producers done: %d sent, %d acks (%d after the last restart), %d delivery failures, %d produce() errors%s" % (
            sum(ledger.sent.values()), ledger.total, ledger.after_restart, ledger.failed, ledger.produce_errors,
            (" (last: %s)" % ledger.last_produce_error) if ledger.last_produce_error else ""))
        if ledger.failures:
            log("first delivery failures: %s" % ledger.failures[:5])

        report(pre + "restart_ok", restart_ok, restart_reason)
        report(pre + "produce_after_restart", restart_ok and ledger.after_restart > 0,
               "no acknowledgement after the restart" if restart_ok else "broker did not restart")
        if errors:
            log("producer errors: %s" % "; ".join(errors))
        if idem:
            fatal = ["producer %d: %s" % (i, e) for i, errs in sorted(ledger.client_errors.items())
                     for e in errs if e.fatal()]
            unacked = sum(ledger.sent.values()) - ledger.total
            report("idempotent_all_delivered", not errors and not ledger.failed and not fatal and unacked == 0,
                   "%d produced, %d acknowledged, %d delivery failures (e.g. %s), fatal errors %s, %s" % (
                       sum(ledger.sent.values()), ledger.total, ledger.failed, ledger.failures[:2], fatal[:2],
                       "; ".join(errors) or "no producer error"))
        report(pre + "no_offset_reuse", not ledger.reuse,
               "%d offsets acked twice for different records, e.g. %s" % (len(ledger.reuse), ledger.reuse[:3]))

        if broker.proc is None or broker.proc.poll() is not None:
            for c in checks[checks.index(pre + "no_offset_reuse") + 1:]:
                report(c, False, "broker not running for verification")
            return finish()

        missing, wrong, gaps = [], [], []
        try:
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart-wm-" + uuid.uuid4().hex[:8],
                          "enable.auto.commit": False})
            marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15, cached=False)
                     for p in range(PARTITIONS)}
            c.close()
            log("watermarks: %s" % marks)
            reads = {p: read_partition(bootstrap, topic, p, marks[p][1]) for p in range(PARTITIONS)}
        except Exception as e:
            why = "reading the topic back failed: %s: %s" % (type(e).__name__, e)
            for c in checks[checks.index(pre + "no_offset_reuse") + 1:]:
                report(c, False, why)
            return finish()
        for p in range(PARTITIONS):
            low, high = marks[p]
            if low != 0:
                gaps.append("partition %d log start %d, want 0" % (p, low))
            got, order = reads[p]
            if order != list(range(high)):
                have = set(order)
                holes = [o for o in range(high) if o not in have][:5]
                dup = len(order) - len(have)
                gaps.append("partition %d: read %d records for high watermark %d (first holes %s, %d re-reads)" % (
                    p, len(order), high, holes, dup))
            for (ap_, off), kv in ledger.acked.items():
                if ap_ != p:
                    continue
                if off >= high:
                    gaps.append("partition %d: acked offset %d >= high watermark %d" % (p, off, high))
                if off not in got:
                    missing.append((p, off, kv[1]))
                elif got[off] != kv:
                    wrong.append((p, off, kv[1], got[off][1]))
        if not idem:
            stored = collections.Counter(v for p in range(PARTITIONS) for _k, v in reads[p][0].values())
            log("values stored more than once: %d (allowed without idempotence: retries of batches appended "
                "before the kill)" % sum(1 for n in stored.values() if n > 1))
            report("acked_records_present", not missing and not wrong,
                   "%d acked records missing (e.g. %s), %d at their offset with other content (e.g. %s)" % (
                       len(missing), missing[:3], len(wrong), wrong[:3]))
            report("offsets_contiguous", not gaps, "; ".join(gaps[:5]))
            log("verified %d acknowledged records across %d partitions" % (len(ledger.acked), PARTITIONS))
            return finish()

        # ---- idempotent: every stored value once, in producer order, in the partition it was sent to
        where = collections.defaultdict(list)           # value -> [(partition, offset)]
        strays, disorder = [], []
        for p in range(PARTITIONS):
            got, _ = reads[p]
            last = {}                                   # producer idx -> (sequence, offset)
            for off in sorted(got):
                key, value = got[off]
                where[value].append((p, off))
                m = IDEM_VALUE.match(value or b"")
                if not m or key != b"producer-%s" % m.group(1):
                    strays.append((p, off, key, value))
                    continue
                idx, seq = int(m.group(1)), int(m.group(2))
                if seq >= ledger.sent.get(idx, 0) or seq % PARTITIONS != p:
                    strays.append((p, off, key, value))
                if idx in last and seq <= last[idx][0]:
                    disorder.append("partition %d: producer %d sequence %d at offset %d after %d at offset %d" % (
                        p, idx, seq, off, last[idx][0], last[idx][1]))
                last[idx] = (seq, off)
        acked_values = {kv[1]: po for po, kv in ledger.acked.items()}
        dups = sorted((v, locs) for v, locs in where.items() if len(locs) > 1)
        acked_dups = [(v, locs) for v, locs in dups if v in acked_values]
        report("idempotent_acked_exactly_once", not missing and not wrong and not acked_dups,
               "%d acked records missing (e.g. %s), %d at their offset with other content (e.g. %s), "
               "%d acked records stored more than once (e.g. %s)" % (
                   len(missing), missing[:3], len(wrong), wrong[:3], len(acked_dups), acked_dups[:3]))
        report("idempotent_no_duplicates", not dups and not strays,
               "%d values stored more than once (%d of them acknowledged; e.g. %s), %d stored records no "
               "producer sent to that partition (e.g. %s)" % (len(dups), len(acked_dups), dups[:3], len(strays), strays[:3]))
        report("idempotent_producer_order", not disorder, "; ".join(disorder[:3]))
        report("idempotent_offsets_contiguous", not gaps, "; ".join(gaps[:5]))

        # ---- producer state across the restarts, from librdkafka's eos debug lines
        trouble, pids = [], {}
        resent = resent_batches(ledger, args.producers)
        eos_log = os.path.join(log_dir, "producers-idempotent-eos.log")
        with open(eos_log, "w") as f:
            for idx in range(args.producers):
                lines = list(ledger.eos[idx])
                f.write("==== producer %d\n" % idx + "\n".join(l for l in lines if os.environ.get("RESTART_FULL_LOG") or "MessageSet" not in l) + "\n")
                pids[idx] = [m.group(1) for m in (EOS_ACQUIRED.search(l) for l in lines) if m]
                trouble += ["producer %d: %s" % (idx, l.split("]: ", 1)[-1][:200]) for l in lines if EOS_TROUBLE.search(l)]
                trouble += ["producer %d error_cb: %s" % (idx, e) for e in ledger.client_errors[idx]
                            if e.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)]
        log("producer ids (InitProducerId answers per producer): %s; batches re-sent after a kill per producer: %s; "
            "eos log: %s" % (pids, resent, eos_log))
        print("# %d kills; %sbatches in flight at a kill and re-sent with their sequence numbers: %d %s "
              "(each either not appended before the kill or deduplicated after the restart)%s" % (
                  rnd, ("%d Produce responses withheld before them; " % proxy.held) if proxy is not None else "",
                  sum(resent.values()), resent,
                  "" if sum(resent.values()) else ": NOTE the kills did not exercise retries"), flush=True)
        bad_pids = {i: v for i, v in pids.items() if len(v) != 1}
        report("idempotent_producer_state_kept", not bad_pids and not trouble,
               "InitProducerId answers per producer %s (want exactly one each); %d trouble lines, e.g. %s (%s)" % (
                   pids, len(trouble), trouble[:3], eos_log))
        log("verified %d acknowledged records (%d stored) across %d partitions" % (
            len(ledger.acked), sum(len(r[0]) for r in reads.values()), PARTITIONS))
        return finish()
    finally:
        stop.set()
        broker.stop()
        if args.keep_data:
            log("kept data dir %s" % data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
