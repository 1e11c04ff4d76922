#!/usr/bin/env python3
"""Client side and broker-log side of scripts/bench-compaction (confluent-kafka / librdkafka).

Subcommands (each prints one human line and/or one JSON object on the last line):
  create   --bootstrap B --topic T [--config k=v ...]         a 1-partition topic
  fill     --bootstrap B --topic T --records N --keys K        keyed 1 KiB records to partition 0,
           [--order random|cyclic]                             acks=all, lingering producer
  latency  --bootstrap B --topic T --seconds S --rate R --keys K
                                                               one record at a time at a steady
                                                               rate, linger.ms=0, --acks (all):
                                                               produce() -> delivery latency
  wait-clean --log FILE --topic T --dir PARTITION_DIR          until the cleaner has caught up
           [--quiet S] [--timeout S]                           with the last rolled segment
  rounds   --log FILE --topic T [--start EPOCH --end EPOCH]    the `cleaned log` rounds (all, or
                                                               those overlapping the window)
  report   --dir D                                             the markdown table of the JSON
                                                               files the script saved in D
The broker log is Rivulet's tracing output (RUST_LOG=info, NO_COLOR=1), one line per round:
  <rfc3339> INFO rivulet::cleaner: cleaned log topic=T partition=0 segments=.. read=.. written=..
  records_read=.. records_kept=.. end_offset=.. elapsed_ms=..
"""
import argparse
import json
import os
import random
import re
import sys
import time
from datetime import datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

MIB = 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIELD = re.compile(r"(\w+)=(\S+)")
SEGMENT = re.compile(r"^(\d{20})\.log$")
# Broker log lines that stop the benchmark: the brief is to report broker bugs, not step over them.
FATAL = re.compile(r"\bERROR\b|panicked|cleaning failed")


def key_of(i):
    return b"key-%09d" % i


def cmd_create(args):
    config = dict(kv.split("=", 1) for kv in args.config)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    fs = admin.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=1, config=config)])
    for f in fs.values():
        f.result(30)
    time.sleep(0.5)


def cmd_fill(args):
    value = os.urandom(args.value_bytes)
    errors = []
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "enable.idempotence": False,
        **({"batch.num.messages": args.batch_records} if args.batch_records else {}),
    })

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    rng = random.Random(1)
    n, k = args.records, args.keys
    start = time.perf_counter()
    for i in range(n):
        key = key_of(rng.randrange(k) if args.order == "random" else i % k)
        while True:
            try:
                p.produce(args.topic, value, key=key, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    remaining = p.flush(300)
    elapsed = time.perf_counter() - start
    if errors or remaining:
        raise SystemExit(f"fill {args.topic}: {len(errors)} errors, {remaining} undelivered: {errors[:3]}")
    mib = n * args.value_bytes / MIB
    batches = f", <= {args.batch_records} records per batch" if args.batch_records else ""
    print(f"  filled {args.topic}: {n:,} records ({mib:,.0f} MiB of values, {k:,} keys, {args.order}{batches}) "
          f"in {elapsed:.1f} s ({mib / elapsed:,.0f} MiB/s)", flush=True)


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values))) - 1))
    return sorted_values[i]


def cmd_latency(args):
    value = os.urandom(args.value_bytes)
    lat = []
    errors = []
    trace = [] if args.trace else None
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": 0,
        "enable.idempotence": False,
    })

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            lat.append(msg.latency())  # seconds from produce() to the delivery report (librdkafka)
            if trace is not None:
                trace.append((time.time() - msg.latency(), msg.latency()))

    # Warm-up: connection and metadata outside the window.
    p.produce(args.topic, value, key=key_of(0), partition=0)
    if p.flush(30):
        raise SystemExit("latency: warm-up record not delivered")
    rng = random.Random(2)
    interval = 1.0 / args.rate
    wall_start = time.time()
    start = time.perf_counter()
    end = start + args.seconds
    next_send = start
    sent = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while next_send <= now:
            try:
                p.produce(args.topic, value, key=key_of(rng.randrange(args.keys)), partition=0,
                          on_delivery=on_delivery)
                sent += 1
            except BufferError:
                pass  # queue full (broker stalled): skip this slot, the backlog shows in latencies
            next_send += interval
        p.poll(max(0.0, min(next_send, end) - time.perf_counter()))
    remaining = p.flush(120)
    wall_end = time.time()
    if errors or remaining:
        raise SystemExit(f"latency: {len(errors)} errors, {remaining} undelivered: {errors[:3]}")
    if trace is not None:
        with open(args.trace, "w") as f:
            f.writelines(f"{t:.6f} {l * 1000:.3f}\n" for t, l in trace)
    lat.sort()
    ms = lambda s: round(s * 1000, 2)
    out = {
        "records": len(lat), "sent": sent, "seconds": args.seconds, "rate": args.rate, "acks": args.acks,
        "p50_ms": ms(percentile(lat, 0.50)), "p99_ms": ms(percentile(lat, 0.99)),
        "p999_ms": ms(percentile(lat, 0.999)), "max_ms": ms(lat[-1] if lat else float("nan")),
        "start": wall_start, "end": wall_end,
    }
    print(f"  latency {args.label}: {len(lat):,} records at {args.rate:.0f}/s, acks={args.acks}, over {args.seconds:.0f} s: "
          f"p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, p99.9 {out['p999_ms']} ms, "
          f"max {out['max_ms']} ms", flush=True)
    print(json.dumps(out))


def parse_ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_log(path):
    """(rounds, fatal lines, warn lines) of the broker log so far."""
    rounds, fatal, warns = [], [], []
    with open(path, errors="replace") as f:
        for raw in f:
            line = ANSI.sub("", raw.rstrip("\n"))
            if FATAL.search(line):
                fatal.append(line)
            elif " WARN " in line:
                warns.append(line)
            if "cleaned log" not in line:
                continue
            fields = dict(FIELD.findall(line))
            r = {k: fields[k] for k in ("topic",)}
            for k in ("partition", "segments", "read", "written", "records_read", "records_kept",
                      "end_offset", "elapsed_ms"):
                r[k] = int(fields[k])
            r["ts"] = parse_ts(line.split()[0])
            rounds.append(r)
    return rounds, fatal, warns


def summarize(rounds):
    read = sum(r["read"] for r in rounds)
    written = sum(r["written"] for r in rounds)
    ms = sum(r["elapsed_ms"] for r in rounds)
    return {
        "rounds": len(rounds), "read_bytes": read, "written_bytes": written, "elapsed_ms": ms,
        "records_read": sum(r["records_read"] for r in rounds),
        "records_kept": sum(r["records_kept"] for r in rounds),
        "mib_per_s": round(read / MIB / (ms / 1000), 1) if ms else None,
        "end_offset": rounds[-1]["end_offset"] if rounds else None,
    }


def check_fatal(fatal):
    if fatal:
        print("BROKER ERROR (stopping; see the broker log excerpt):", file=sys.stderr)
        for line in fatal[:20]:
            print("  " + line, file=sys.stderr)
        raise SystemExit(3)


def active_base(partition_dir):
    bases = [int(m.group(1)) for m in map(SEGMENT.match, os.listdir(partition_dir)) if m]
    return max(bases) if bases else 0


def cmd_wait_clean(args):
    """Until the last `cleaned log` round of the topic ends at the active segment's base offset
    (everything rolled is clean), or no new round for --quiet seconds, or --timeout."""
    start = time.time()
    last_count, last_change = -1, start
    while True:
        rounds, fatal, _ = read_log(args.log)
        check_fatal(fatal)
        rounds = [r for r in rounds if r["topic"] == args.topic]
        base = active_base(args.dir)
        now = time.time()
        if len(rounds) != last_count:
            last_count, last_change = len(rounds), now
        caught_up = bool(rounds) and rounds[-1]["end_offset"] >= base
        if caught_up or now - last_change > args.quiet or now - start > args.timeout:
            break
        time.sleep(0.2)
    out = summarize(rounds)
    out["caught_up"] = caught_up
    out["active_segment_base"] = base
    out["waited_s"] = round(time.time() - start, 1)
    if not caught_up:
        print(f"  WARNING: {args.topic}: the cleaner did not reach the active segment (base {base}); "
              f"last round end_offset {out['end_offset']}, {out['rounds']} rounds", flush=True)
    print(json.dumps(out))


def cmd_rounds(args):
    rounds, fatal, _ = read_log(args.log)
    check_fatal(fatal)
    rounds = [r for r in rounds if r["topic"] == args.topic]
    out = summarize(rounds)
    if args.start is not None:
        # A round logged at ts ran over [ts - elapsed, ts].
        busy_ms, hits = 0.0, []
        for r in rounds:
            lo, hi = r["ts"] - r["elapsed_ms"] / 1000, r["ts"]
            overlap = min(hi, args.end) - max(lo, args.start)
            if overlap > 0:
                busy_ms += overlap * 1000
                hits.append(r)
        out["window_s"] = round(args.end - args.start, 1)
        out["rounds_in_window"] = len(hits)
        out["busy_ms_in_window"] = round(busy_ms)
        out["read_bytes_in_window"] = sum(r["read"] for r in hits)
    print(json.dumps(out))


def load(d, name):
    path = os.path.join(d, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def cmd_report(args):
    d = args.dir
    params = load(d, "params")
    rows = []
    t = load(d, "throughput")
    if t:
        batches = f", <= {params['tput_batch']} records per batch" if params.get("tput_batch") else ""
        rows.append((f"Cleaner throughput ({params['tput_records']:,} x {params['value_bytes']} B, "
                     f"{params['tput_keys']:,} keys{batches}, produced while cleaning)",
                     f"{t['mib_per_s']} MiB/s ({t['read_bytes'] / MIB:,.0f} MiB cleaned in {t['rounds']} rounds, "
                     f"{t['elapsed_ms'] / 1000:.1f} s busy{'' if t['caught_up'] else '; NOT caught up'})"))
    off, on, w = load(d, "latency-off"), load(d, "latency-on"), load(d, "rounds-on")
    fmt = lambda x: f"{x['p50_ms']} / {x['p99_ms']} / {x['max_ms']} ms"
    if off:
        rows.append((f"Produce latency p50 / p99 / max, cleaner off ({off['rate']:.0f} rec/s, "
                     f"{off['seconds']:.0f} s, acks={off.get('acks', 'all')})", fmt(off)))
    if on:
        rows.append((f"Produce latency p50 / p99 / max, cleaner cleaning a {params['fill_mib']} MiB backlog",
                     fmt(on)))
    if off and on:
        rows.append(("p99 ratio (cleaner on / off)", f"{on['p99_ms'] / off['p99_ms']:.2f}x"))
    if w:
        rows.append(("Cleaning during the latency window",
                     f"{w['rounds_in_window']} rounds, busy {w['busy_ms_in_window'] / 1000:.1f} s of "
                     f"{w['window_s']:.0f} s, {w['read_bytes_in_window'] / MIB:,.0f} MiB read"))
        if w.get("mib_per_s"):
            rows.append((f"Cleaner throughput, {params['fill_mib']} MiB backlog after restart (latency run)",
                         f"{w['mib_per_s']} MiB/s ({w['read_bytes'] / MIB:,.0f} MiB in {w['rounds']} rounds)"))
    disk = load(d, "disk")
    if disk:
        c, dl = disk["compact_bytes"] / MIB, disk["delete_bytes"] / MIB
        what = f"{params['disk_keys']:,} keys x {params['disk_rewrites']} writes"
        rows.append((f"Disk, cleanup.policy=compact ({what}, du -sb)", f"{c:,.1f} MiB"))
        rows.append((f"Disk, cleanup.policy=delete ({what}, du -sb)", f"{dl:,.1f} MiB"))
        rows.append(("Disk ratio (compact / delete)", f"{c / dl:.3f} ({dl / c:.1f}x smaller)"))
    print("| Figure | Value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--config", action="append", default=[])
    f = sub.add_parser("fill")
    f.add_argument("--bootstrap", required=True)
    f.add_argument("--topic", required=True)
    f.add_argument("--records", type=int, required=True)
    f.add_argument("--keys", type=int, required=True)
    f.add_argument("--order", choices=("random", "cyclic"), default="random")
    f.add_argument("--value-bytes", type=int, default=1024)
    f.add_argument("--batch-records", type=int, help="records per batch at most (batch.num.messages)")
    l = sub.add_parser("latency")
    l.add_argument("--bootstrap", required=True)
    l.add_argument("--topic", required=True)
    l.add_argument("--seconds", type=float, default=20)
    l.add_argument("--rate", type=float, default=2000)
    l.add_argument("--keys", type=int, required=True)
    l.add_argument("--value-bytes", type=int, default=1024)
    l.add_argument("--label", default="")
    l.add_argument("--acks", default="all")
    l.add_argument("--trace", help="write '<produce epoch s> <latency ms>' per record to this file")
    w = sub.add_parser("wait-clean")
    w.add_argument("--log", required=True)
    w.add_argument("--topic", required=True)
    w.add_argument("--dir", required=True)
    w.add_argument("--quiet", type=float, default=10)
    w.add_argument("--timeout", type=float, default=600)
    r = sub.add_parser("rounds")
    r.add_argument("--log", required=True)
    r.add_argument("--topic", required=True)
    r.add_argument("--start", type=float)
    r.add_argument("--end", type=float)
    rp = sub.add_parser("report")
    rp.add_argument("--dir", required=True)
    args = ap.parse_args()
    {"report": cmd_report, "create": cmd_create, "fill": cmd_fill, "latency": cmd_latency,
     "wait-clean": cmd_wait_clean, "rounds": cmd_rounds}[args.cmd](args)


if __name__ == "__main__":
    main()
