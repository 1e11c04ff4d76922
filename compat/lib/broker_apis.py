#!/usr/bin/env python3
"""What a broker advertises in ApiVersions (standard library only), and whether it serves
consumer groups.

    python3 compat/lib/broker_apis.py HOST:PORT            # prints "key name min..max" per API
    python3 compat/lib/broker_apis.py --groups HOST:PORT   # prints yes / no (exit 0), or error (exit 2)

Consumer-group cases (named `group_*` in every suite, and `restart-test --mode groups`) run only
when the broker advertises FindCoordinator (10) and JoinGroup (11); otherwise each one is
reported as `SKIP group_xxx: broker does not advertise consumer-group APIs`. compat/run decides
once and passes the answer to the suites as COMPAT_GROUPS=1/0; a suite started on its own asks
the broker itself (`groups_enabled`), and `--groups yes|no` overrides both.
"""

import os
import socket
import struct
import sys

FIND_COORDINATOR, JOIN_GROUP = 10, 11
GROUP_APIS = (FIND_COORDINATOR, JOIN_GROUP)
NO_GROUPS_REASON = "broker does not advertise consumer-group APIs"


def api_versions(host, port, timeout=5.0):
    """{api_key: (min, max)} from an ApiVersions v0 request (v0: no tagged fields, any broker
    answers it)."""
    client = b"rivulet-compat"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed before the ApiVersions response")
            buf += chunk
    pos = 8  # size, correlation id
    error = struct.unpack(">h", buf[pos:pos + 2])[0]
    pos += 2
    if error:
        raise OSError("ApiVersions v0 answered error code %d" % error)
    n = struct.unpack(">i", buf[pos:pos + 4])[0]
    pos += 4
    out = {}
    for _ in range(n):
        key, lo, hi = struct.unpack(">hhh", buf[pos:pos + 6])
        pos += 6
        out[key] = (lo, hi)
    return out


def has_groups(apis):
    return all(k in apis for k in GROUP_APIS)


def groups_enabled(bootstrap, override=None):
    """True/False: run the group cases? override ("yes"/"no"/"auto"/None) first, then
    $COMPAT_GROUPS (set by compat/run), then an ApiVersions request to the broker. A broker that
    cannot be asked counts as "no groups" (the non-group cases will report the real problem)."""
    for v in (override, os.environ.get("COMPAT_GROUPS")):
        if v is None or v == "" or v == "auto":
            continue
        return v.lower() in ("1", "yes", "true", "on")
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    try:
        return has_groups(api_versions(host, port))
    except Exception as e:  # noqa: BLE001
        print("# broker_apis: ApiVersions to %s failed (%s: %s): group cases SKIP" % (
            bootstrap, type(e).__name__, e), file=sys.stderr)
        return False


def main(argv):
    groups = "--groups" in argv
    args = [a for a in argv if a != "--groups"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = args[0].rsplit(":", 1)
    try:
        apis = api_versions(host, port)
    except Exception as e:  # noqa: BLE001
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if groups:
            print("error")
        return 2
    if groups:
        print("yes" if has_groups(apis) else "no")
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from api_proxy import API_NAMES
    for k in sorted(apis):
        print("%3d %-28s %d..%d" % (k, API_NAMES.get(k, "?"), apis[k][0], apis[k][1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
