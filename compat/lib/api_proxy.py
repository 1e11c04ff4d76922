#!/usr/bin/env python3
"""A Kafka-protocol proxy that narrows a broker's API surface (development tool, stdlib only).

    python3 compat/lib/api_proxy.py --listen 19094 --upstream 127.0.0.1:19092 [--allow 0,1,2,...]
    compat/run --bootstrap 127.0.0.1:19094

Forwards to an upstream broker (e.g. the reference kfake) but
  * removes every API key not in --allow from ApiVersions responses (default `rivulet`: the APIs
    Rivulet serves, read from its one API table with `<--rivulet-bin> --api-versions`, so this list
    never drifts from the broker; --allow 0,1,2,3,18,19,20,37,60 is the broker core without
    idempotence or groups),
  * advertises Produce from v0 (--produce-min), as Kafka 4 does (KAFKA-18659),
  * closes the connection on a request for any other API key, as a broker does for an API it
    does not serve, and logs it ("REJECT ..."); `--allow all` keeps every upstream API (to see what
    a client sends, e.g. its group APIs),
  * rewrites the upstream's advertised 127.0.0.1:<upstream port> to the proxy's port in Metadata
    and DescribeCluster responses (and FindCoordinator's, for the group coordinator), so that
    clients stay on the proxy.
It shows whether a client suite depends on APIs the broker under test lacks (consumer groups,
InitProducerId, DescribeConfigs, telemetry, ...). Every request is logged as "REQ key vN client".

Used as a library by restart-test/restart_test.py (`Proxy(..., allow=None)` forwards every API
unchanged; `hold_keys` drops the responses of those API keys, logged as "HELD", to make "appended
by the broker, never acknowledged to the client" happen on purpose).
"""

import argparse
import asyncio
import os
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_RIVULET_BIN = os.path.join(REPO, "target", "release", "rivulet")
API_NAMES = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
             10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
             15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
             20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
             32: "DescribeConfigs", 33: "AlterConfigs", 36: "SaslAuthenticate",
             37: "CreatePartitions", 42: "DeleteGroups", 44: "IncrementalAlterConfigs", 47: "OffsetDelete",
             60: "DescribeCluster",
             61: "DescribeProducers", 68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
             71: "GetTelemetrySubscriptions", 72: "PushTelemetry", 75: "DescribeTopicPartitions"}


def parse_api_table(text):
    """`rivulet --api-versions` output (`key name min served_min max` per line) as
    {key: (name, min, served_min, max)}."""
    table = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        key, name, lo, served, hi = parts
        table[int(key)] = (name, int(lo), int(served), int(hi))
    return table


def rivulet_apis(binary=DEFAULT_RIVULET_BIN):
    """The API keys a Rivulet binary serves, from its API table; their names join API_NAMES."""
    out = subprocess.run([binary, "--api-versions"], check=True, capture_output=True, text=True).stdout
    table = parse_api_table(out)
    if not table:
        raise SystemExit("%s --api-versions printed no API table" % binary)
    for key, (name, _, _, _) in table.items():
        API_NAMES.setdefault(key, name)
    return sorted(table)


def uvarint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def enc_uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def filter_api_versions(payload, version, allow, produce_min=None):
    """payload: response without the size prefix (correlation id first). Returns new payload."""
    pos = 4
    error = struct.unpack(">h", payload[pos:pos + 2])[0]
    pos += 2
    if error == 35:          # UNSUPPORTED_VERSION: the body is v0
        version = 0
    flexible = version >= 3
    if flexible:
        n, p2 = uvarint(payload, pos)
        n -= 1
    else:
        n = struct.unpack(">i", payload[pos:pos + 4])[0]
        p2 = pos + 4
    head = payload[:pos]
    entries = []
    p = p2
    for _ in range(max(n, 0)):
        start = p
        key = struct.unpack(">h", payload[p:p + 2])[0]
        p += 6
        if flexible:
            ntags, p = uvarint(payload, p)
            for _ in range(ntags):
                _tag, p = uvarint(payload, p)
                size, p = uvarint(payload, p)
                p += size
        if key in allow:
            entry = payload[start:p]
            if key == 0 and produce_min is not None:
                entry = entry[:2] + struct.pack(">h", produce_min) + entry[4:]
            entries.append(entry)
    count = enc_uvarint(len(entries) + 1) if flexible else struct.pack(">i", len(entries))
    return head + count + b"".join(entries) + payload[p:]


class Proxy:
    def __init__(self, listen_port, up_host, up_port, allow, log, produce_min=None):
        self.listen_port, self.up_host, self.up_port = listen_port, up_host, up_port
        self.produce_min = produce_min
        self.allow = None if allow is None else set(allow)   # None: every API, ApiVersions untouched
        self.hold_keys = set()   # responses to these API keys are dropped (counted in self.held)
        self.held = 0
        self.log_requests = True  # False: log only REJECT, HELD and upstream failures
        self.log = log
        self.advertised_from = b"\x00\x09127.0.0.1" + struct.pack(">i", up_port)
        self.advertised_to = b"\x00\x09127.0.0.1" + struct.pack(">i", listen_port)
        self.c_from = b"\x0a127.0.0.1" + struct.pack(">i", up_port)       # compact string
        self.c_to = b"\x0a127.0.0.1" + struct.pack(">i", listen_port)

    def note(self, msg):
        self.log.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
        self.log.flush()

    async def handle(self, creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(self.up_host, self.up_port)
        except OSError as e:
            self.note("upstream connect failed: %s" % e)
            cwriter.close()
            return
        inflight = {}
        peer = cwriter.get_extra_info("peername")

        async def c2u():
            try:
                while True:
                    hdr = await creader.readexactly(4)
                    size = struct.unpack(">i", hdr)[0]
                    body = await creader.readexactly(size)
                    key, ver, corr = struct.unpack(">hhi", body[:8])
                    clen = struct.unpack(">h", body[8:10])[0]
                    client = body[10:10 + clen].decode(errors="replace") if clen > 0 else "-"
                    name = API_NAMES.get(key, str(key))
                    if self.allow is not None and key not in self.allow:
                        self.note("REJECT %s(%d) v%d client=%s peer=%s" % (name, key, ver, client, peer))
                        break
                    if self.log_requests:
                        self.note("REQ %s(%d) v%d client=%s" % (name, key, ver, client))
                    inflight[corr] = (key, ver)
                    uwriter.write(hdr + body)
                    await uwriter.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                uwriter.close()
                cwriter.close()

        async def u2c():
            try:
                while True:
                    hdr = await ureader.readexactly(4)
                    body = await ureader.readexactly(struct.unpack(">i", hdr)[0])
                    corr = struct.unpack(">i", body[:4])[0]
                    key, ver = inflight.pop(corr, (None, None))
                    if key in self.hold_keys:
                        self.held += 1
                        self.note("HELD %s(%d) v%d response, correlation id %d" % (API_NAMES.get(key, key), key, ver, corr))
                        continue
                    if key == 18 and self.allow is not None:
                        body = filter_api_versions(body, ver, self.allow, self.produce_min)
                    elif key in (3, 60, 10):
                        body = body.replace(self.advertised_from, self.advertised_to).replace(self.c_from, self.c_to)
                    cwriter.write(struct.pack(">i", len(body)) + body)
                    await cwriter.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                cwriter.close()

        await asyncio.gather(c2u(), u2c())

    async def serve(self):
        server = await asyncio.start_server(self.handle, "127.0.0.1", self.listen_port)
        self.note("listening on 127.0.0.1:%d -> %s:%d, allowed APIs %s" % (
            self.listen_port, self.up_host, self.up_port, "all" if self.allow is None else sorted(self.allow)))
        async with server:
            await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="HOST:PORT; the upstream must advertise 127.0.0.1")
    ap.add_argument("--allow", default="rivulet",
                    help="'rivulet' (what --rivulet-bin serves, its API table), comma-separated API keys, or "
                         "'all' (every API the upstream has: only Produce's minimum version is rewritten; e.g. "
                         "to log what a client sends)")
    ap.add_argument("--rivulet-bin", default=DEFAULT_RIVULET_BIN,
                    help="the Rivulet binary whose API table --allow rivulet uses (default target/release/rivulet)")
    ap.add_argument("--log", help="log file (default stderr)")
    ap.add_argument("--produce-min", type=int, default=0,
                    help="advertise Produce from this version (default 0, as Kafka 4 does since KAFKA-18659; "
                         "-1: leave the upstream's range)")
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    log = open(args.log, "a") if args.log else sys.stderr
    if args.allow == "all":
        allow = list(range(0, 1000))
    elif args.allow == "rivulet":
        allow = rivulet_apis(args.rivulet_bin)
    else:
        allow = [int(x) for x in args.allow.split(",") if x.strip()]
    try:
        produce_min = None if args.produce_min < 0 else args.produce_min
        asyncio.run(Proxy(args.listen, host, int(port), allow, log, produce_min).serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
