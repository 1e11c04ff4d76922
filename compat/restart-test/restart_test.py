"""Durability across kill -9: acknowledged acks=all records survive, at their acknowledged offsets.

    restart_test.py --broker-bin PATH [--kills 1] [--kill-after 3000] [--after-restart-s 3]

Starts the broker itself (free port on 127.0.0.1, fresh data dir), creates one topic with 3
partitions, runs 3 confluent-kafka producers (acks=all, enable.idempotence=false, explicit
round-robin partitions) that produce numbered records, kill -9s the broker after --kill-after
acknowledgements, restarts it on the same data dir and port, keeps producing for a while, then
reads every partition back from offset 0 and checks:

  restart_ok              the broker came back on the same data dir and answered again
  produce_after_restart   producers got acknowledgements after the restart
  no_offset_reuse         no (partition, offset) was acknowledged for two different records
  acked_records_present   every acknowledged record is at exactly its acknowledged
                          partition/offset with the same key and value
  offsets_contiguous      each partition reads back as 0..high_watermark-1 with no gap, and
                          every acknowledged offset is below the high watermark

Records that were never acknowledged may be absent or present, even twice (the producer retries
without idempotence). A broker binary named kfake* is started with kfake's flags
(-data-dir DIR -sync-writes) instead of Rivulet's.
"""

import argparse
import os
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
import harness  # noqa: E402

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    IMPORT_ERROR = None
except Exception as e:  # pragma: no cover
    IMPORT_ERROR = "%s: %s" % (type(e).__name__, e)

CHECKS = ["restart_ok", "produce_after_restart", "no_offset_reuse", "acked_records_present", "offsets_contiguous"]
PARTITIONS = 3


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

    def ack(self, partition, offset, key, value):
        with self.lock:
            prev = self.acked.get((partition, offset))
            if prev is not None and prev != (key, value):
                self.reuse.append((partition, offset, prev, (key, value)))
            self.acked[(partition, offset)] = (key, value)
            self.total += 1
            if self.restarted:
                self.after_restart += 1


def producer_loop(idx, bootstrap, topic, ledger, stop, errors, rate):
    p = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
        "linger.ms": 5, "message.timeout.ms": 45000, "queue.buffering.max.messages": 2000,
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500, "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 500, "socket.connection.setup.timeout.ms": 3000,
        "client.id": "restart-producer-%d" % idx,
    })

    def on_delivery(err, msg):
        if err is not None:
            with ledger.lock:
                ledger.failed += 1
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
            value = b"p%d-%09d" % (idx, seq)
            try:
                p.produce(topic, key=key, value=value, partition=seq % PARTITIONS, on_delivery=on_delivery)
                seq += 1
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--broker-arg", action="append", default=[], help="extra broker argument (repeatable)")
    ap.add_argument("--kills", type=int, default=1, help="how many kill -9 / restart rounds")
    ap.add_argument("--kill-after", type=int, default=3000, help="acks (per round) before each kill -9")
    ap.add_argument("--after-restart-s", type=float, default=3.0, help="seconds of producing after the last restart")
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--rate", type=float, default=4000, help="records per second per producer (0: unthrottled)")
    ap.add_argument("--keep-data", action="store_true", help="keep the data dir and broker log")
    ap.add_argument("--log-dir", default=os.environ.get("COMPAT_LOG_DIR",
                                                         os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "logs")))
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    summary = harness.Summary(harness.load_allowlist(os.path.join(here, "allowlist.txt")),
                              harness.load_quirks("restart-test"))

    def report(name, ok, reason=""):
        summary.emit("PASS" if ok else "FAIL", name, reason)

    def finish():
        return summary.finish()

    if IMPORT_ERROR:
        print("# client: confluent-kafka (unavailable)")
        for c in CHECKS:
            summary.emit("SKIP", c, "confluent-kafka not importable (%s); run scripts/compat-setup.sh" % IMPORT_ERROR)
        return finish()
    if not os.access(args.broker_bin, os.X_OK):
        for c in CHECKS:
            report(c, False, "broker binary %s not found or not executable" % args.broker_bin)
        return finish()

    log_dir = os.path.join(args.log_dir, "restart-test")
    os.makedirs(log_dir, exist_ok=True)
    broker_log = os.path.join(log_dir, "broker.log")
    open(broker_log, "w").close()
    data_dir = tempfile.mkdtemp(prefix="rivulet-restart-")
    port = free_port()
    bootstrap = "127.0.0.1:%d" % port
    broker = Broker(os.path.abspath(args.broker_bin), data_dir, port, broker_log, args.broker_arg)
    topic = "restart-%d-%s" % (int(time.time()), uuid.uuid4().hex[:8])
    import confluent_kafka
    print("# client: confluent-kafka %s (librdkafka %s): %d producers, acks=all, %d x kill -9" % (
        confluent_kafka.__version__, confluent_kafka.libversion()[0], args.producers, args.kills), flush=True)
    print("# broker: %s  data: %s  bootstrap: %s  topic: %s" % (args.broker_bin, data_dir, bootstrap, topic), flush=True)

    ledger = Ledger()
    stop = threading.Event()
    errors = []
    threads = []
    restart_ok, restart_reason = True, ""
    try:
        if not broker.start():
            for c in CHECKS:
                report(c, False, "broker did not start listening on %s (log: %s)" % (bootstrap, broker_log))
            return finish()
        a = AdminClient({"bootstrap.servers": bootstrap})
        a.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=15)[topic].result(timeout=30)

        for i in range(args.producers):
            t = threading.Thread(target=producer_loop, args=(i, bootstrap, topic, ledger, stop, errors, args.rate), daemon=True)
            t.start()
            threads.append(t)

        t_start = time.time()
        for rnd in range(args.kills):
            target = ledger.total + args.kill_after
            deadline = time.time() + 60
            while ledger.total < target and time.time() < deadline:
                time.sleep(0.01)
            if ledger.total < target:
                restart_ok, restart_reason = False, "round %d: only %d acks within 60 s before the kill" % (rnd, ledger.total)
                break
            acks_at_kill = ledger.total
            broker.kill9()
            log("round %d: kill -9 after %d acks (%.1f s)" % (rnd, acks_at_kill, time.time() - t_start))
            time.sleep(0.5)
            with ledger.lock:
                ledger.restarted = True
                ledger.after_restart = 0
            if not broker.start(timeout=60):
                restart_ok = False
                restart_reason = "round %d: broker did not come back on %s after kill -9 (exit %s; log: %s)" % (
                    rnd, bootstrap, broker.proc.poll(), broker_log)
                break
            log("round %d: restarted (%.1f s)" % (rnd, time.time() - t_start))
        if restart_ok:
            time.sleep(args.after_restart_s)
            deadline = time.time() + 30
            while ledger.after_restart < 100 and time.time() < deadline:
                time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=90)
        log("producers done: %d acks (%d after the last restart), %d delivery failures, %d produce() errors%s" % (
            ledger.total, ledger.after_restart, ledger.failed, ledger.produce_errors,
            (" (last: %s)" % ledger.last_produce_error) if ledger.last_produce_error else ""))

        report("restart_ok", restart_ok, restart_reason)
        report("produce_after_restart", restart_ok and ledger.after_restart > 0,
               "no acknowledgement after the restart" if restart_ok else "broker did not restart")
        if errors:
            log("producer errors: %s" % "; ".join(errors))
        report("no_offset_reuse", not ledger.reuse,
               "%d offsets acked twice for different records, e.g. %s" % (len(ledger.reuse), ledger.reuse[:3]))

        if broker.proc is None or broker.proc.poll() is not None:
            report("acked_records_present", False, "broker not running for verification")
            report("offsets_contiguous", False, "broker not running for verification")
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
            report("acked_records_present", False, why)
            report("offsets_contiguous", False, why)
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
        report("acked_records_present", not missing and not wrong,
               "%d acked records missing (e.g. %s), %d at their offset with other content (e.g. %s)" % (
                   len(missing), missing[:3], len(wrong), wrong[:3]))
        report("offsets_contiguous", not gaps, "; ".join(gaps[:5]))
        log("verified %d acknowledged records across %d partitions" % (len(ledger.acked), PARTITIONS))
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
