"""KafkaJS compatibility suite: lib/harness.py runs each case of cases.js (`node cases.js CASE
HOST:PORT`) in its own process with the usual timeouts, allowlist and group_* handling.
KafkaJS is installed by scripts/compat-setup.sh into <cache>/npm (npm install --prefix).
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import case  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("RIVULET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rivulet-compat")
PKG = os.path.join(CACHE, "npm", "node_modules", "kafkajs", "package.json")
NODE = shutil.which("node")

SETUP_ERROR = None
if not NODE:
    SETUP_ERROR = "node not on PATH"
elif not os.path.exists(PKG):
    SETUP_ERROR = "kafkajs not installed in %s; run scripts/compat-setup.sh" % os.path.dirname(os.path.dirname(PKG))


def client_version():
    with open(PKG) as f:
        ver = json.load(f)["version"]
    node = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip()
    return "kafkajs %s (node %s)" % (ver, node)


def js_case(name, timeout=None):
    def fn(ctx):
        p = subprocess.run([NODE, os.path.join(HERE, "cases.js"), name, ctx.bootstrap],
                           stdout=subprocess.PIPE, text=True)
        lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
        sys.stderr.write(p.stdout)
        if not lines:
            raise harness.CaseFailure("node exited %s without a RESULT line" % p.returncode)
        status, _, reason = lines[-1][len("RESULT "):].partition(" ")
        if status == "SKIP":
            raise harness.Skip(reason)
        if status != "PASS":
            raise harness.CaseFailure(reason)
    case(name, timeout)(fn)


CASES = ["admin_create_describe_delete", "headers_roundtrip", "null_key", "null_value_tombstone",
         "compression_none", "compression_gzip", "compression_snappy", "compression_lz4",
         "compression_zstd", "acks_1", "acks_all", "fetch_mid_batch", "list_offsets_earliest_latest",
         "multi_partition_explicit", "idempotent_producer"]
for _n in CASES:
    js_case(_n)
for _n in ("group_consume", "group_admin"):
    js_case(_n, timeout=90)

if __name__ == "__main__":
    sys.exit(harness.main("kafkajs", __file__, client_version, SETUP_ERROR))
