"""Tiny case runner shared by the Python-driven compat suites (and the Java suite's summariser).

Protocol of a suite runner (what compat/run parses):
    # client: <name> <version> [...]        optional, first lines
    PASS <case>
    FAIL <case>: <reason>
    XFAIL <case>: <reason>                  a FAIL listed in the suite's allowlist.txt
    SKIP <case>: <reason>
    N passed, M failed, K skipped           final line; exit status 1 when M > 0

Every case runs in its own child process (``<runner> --case NAME``) with a hard timeout, so one
hung client cannot stall the run. Its stdout/stderr go to a log file under compat/logs/.

Consumer-group cases are named `group_*`: they run only when the broker advertises FindCoordinator
and JoinGroup (lib/broker_apis.py; compat/run passes its answer as COMPAT_GROUPS=1/0, `--groups
yes|no` overrides), otherwise each is reported as `SKIP group_xxx: broker does not advertise
consumer-group APIs`.

Only the standard library is used here: the harness must be able to report SKIPs even when the
client library cannot be imported.
"""

import argparse
import os
import random
import re
import string
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import broker_apis  # noqa: E402

COMPAT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUTS_IN_A_ROW = 3
GROUP_PREFIX = "group_"
# An allowlist note containing this marker only applies while the broker has no consumer groups
# (e.g. librdkafka's lz4, which needs FindCoordinator v0 advertised): with groups, a FAIL is a FAIL.
UNTIL_GROUPS = "[until groups]"

_CASES = []  # (name, fn, timeout)


class Skip(Exception):
    """Raise from a case to report SKIP with a reason."""


class CaseFailure(AssertionError):
    pass


def case(name, timeout=None):
    def deco(fn):
        _CASES.append((name, fn, timeout))
        return fn
    return deco


def check(cond, msg):
    if not cond:
        raise CaseFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise CaseFailure("%s: got %s, want %s" % (what, _short(got), _short(want)))


def _short(v, n=160):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def unique_topic(prefix):
    suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    prefix = re.sub(r"[^a-zA-Z0-9._-]", "-", prefix)
    return "compat-%s-%d-%s" % (prefix, int(time.time()), suffix)


class Ctx:
    def __init__(self, bootstrap, case_name, suite_dir):
        self.bootstrap = bootstrap
        self.case_name = case_name
        self.suite_dir = suite_dir

    def topic(self, tag=None):
        return unique_topic(tag or self.case_name)

    def log(self, *a):
        print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# allowlist + summary (also used by the Java runner through `python3 harness.py --summarize`)

def load_allowlist(path):
    allowed = {}
    if not path or not os.path.exists(path):
        return allowed
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, note = line.partition("#")
            name = name.strip()
            if name:
                allowed[name] = note.strip()
    return allowed


def load_quirks(suite_name):
    """Known deviations of the reference broker (kfake) from Kafka, listed as `suite/case # note`
    in the file named by $COMPAT_QUIRKS (compat/run --kfake sets it to compat/kfake-quirks.txt).
    A FAIL of a listed case is reported as XFAIL: the case checks Kafka's behaviour, which the
    reference broker does not have."""
    out = {}
    for name, note in load_allowlist(os.environ.get("COMPAT_QUIRKS")).items():
        suite, _, case_name = name.partition("/")
        if suite == suite_name and case_name:
            out[case_name] = "reference-broker quirk: " + (note or "listed in $COMPAT_QUIRKS")
    return out


_LINE = re.compile(r"^(PASS|FAIL|SKIP|XFAIL) ([^\s:]+)(?::\s?(.*))?$")


class Summary:
    def __init__(self, allowlist, quirks=None, groups=None):
        """groups: True when the broker advertises consumer groups: allowlist entries marked
        UNTIL_GROUPS then no longer turn a FAIL into XFAIL (None: $COMPAT_GROUPS decides)."""
        if groups is None:
            groups = os.environ.get("COMPAT_GROUPS", "").lower() in ("1", "yes", "true", "on")
        self._allowlist = allowlist
        self.set_groups(groups)
        self.quirks = quirks or {}
        self.passed = self.failed = self.skipped = self.xfailed = 0

    def set_groups(self, groups):
        self.until_groups = {n for n, note in self._allowlist.items() if UNTIL_GROUPS in note} if groups else set()
        self.allow = {n: note for n, note in self._allowlist.items() if n not in self.until_groups}

    def emit(self, status, name, reason=None):
        reason = (reason or "").replace("\n", " | ").strip()
        if len(reason) > 400:
            reason = reason[:400] + "..."
        if status == "FAIL" and name in self.quirks:
            status = "XFAIL"
            reason = reason + " [%s]" % self.quirks[name]
        elif status == "FAIL" and name in self.allow:
            status = "XFAIL"
            note = self.allow[name]
            reason = reason + ((" [allowlisted: %s]" % note) if note else " [allowlisted]")
        if status == "PASS":
            self.passed += 1
            extra = " (listed in allowlist.txt: consider removing it)" if name in self.allow else (
                " (listed in allowlist.txt %s and the broker advertises consumer groups: remove it)"
                % UNTIL_GROUPS if name in self.until_groups else "")
            print("PASS %s%s" % (name, extra), flush=True)
            return
        if status == "FAIL" and name in self.until_groups:
            reason += " [allowlist entry %s ignored: the broker advertises consumer groups]" % UNTIL_GROUPS
        if status == "FAIL":
            self.failed += 1
        elif status == "XFAIL":
            self.xfailed += 1
        else:
            self.skipped += 1
        print("%s %s: %s" % (status, name, reason or "(no reason given)"), flush=True)

    def feed_line(self, line):
        """Pass through one raw output line; returns True when it was a case line."""
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            return False
        self.emit(m.group(1), m.group(2), m.group(3))
        return True

    def finish(self):
        if self.xfailed:
            print("# %d xfailed (allowlisted failures or known reference-broker quirks; not counted as failed)"
                  % self.xfailed)
        print("%d passed, %d failed, %d skipped" % (self.passed, self.failed, self.skipped), flush=True)
        return 1 if self.failed else 0


def summarize_stream(stream, allowlist_path, suite_name=None):
    """Filter a raw suite output: rewrite allowlisted FAILs, count, print the closing line."""
    s = Summary(load_allowlist(allowlist_path), load_quirks(suite_name) if suite_name else None)
    saw_final = False
    for line in stream:
        if s.feed_line(line):
            continue
        if line.startswith("# consumer-group cases: "):   # the Java suite's own ApiVersions answer
            s.set_groups(line.startswith("# consumer-group cases: run"))
        if re.match(r"^\d+ passed, \d+ failed", line.strip()):
            saw_final = True  # the raw program's own total is replaced by ours
            continue
        print(line.rstrip("\n"), flush=True)
    _ = saw_final
    return s.finish()


# --------------------------------------------------------------------------------------------

def _run_one_inprocess(name, bootstrap, suite_dir, setup_error):
    for cname, fn, _ in _CASES:
        if cname == name:
            break
    else:
        print("FAIL %s: no such case" % name)
        return 1
    if setup_error:
        print("SKIP %s: %s" % (name, setup_error), flush=True)
        return 0
    ctx = Ctx(bootstrap, name, suite_dir)
    try:
        fn(ctx)
    except Skip as e:
        print("SKIP %s: %s" % (name, e), flush=True)
        return 0
    except CaseFailure as e:
        traceback.print_exc(file=sys.stderr)
        print("FAIL %s: %s" % (name, e), flush=True)
        return 1
    except Exception as e:  # client error, timeout inside the client, ...
        traceback.print_exc(file=sys.stderr)
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        return 1
    print("PASS %s" % name, flush=True)
    return 0


def main(suite_name, suite_file, client_version=None, setup_error=None):
    """Entry point of a suite's cases.py.

    client_version: callable returning a version string (only called when setup_error is None)
    setup_error:    a string; when set, every case is SKIPped with it.
    """
    ap = argparse.ArgumentParser(description="%s compatibility suite" % suite_name)
    ap.add_argument("--bootstrap", default=os.environ.get("BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--case", help="run one case in this process (used by the runner)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only cases whose name contains this (repeatable)")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("COMPAT_CASE_TIMEOUT", DEFAULT_TIMEOUT)),
                    help="per-case timeout in seconds")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--groups", choices=["auto", "yes", "no"], default=None,
                    help="run the group_* cases: auto (default: $COMPAT_GROUPS from compat/run, else ask "
                         "the broker whether it advertises FindCoordinator + JoinGroup), yes, no")
    ap.add_argument("--log-dir", default=os.environ.get("COMPAT_LOG_DIR", os.path.join(COMPAT_DIR, "logs")))
    args = ap.parse_args()

    suite_dir = os.path.dirname(os.path.abspath(suite_file))
    if args.list:
        for name, _, _ in _CASES:
            print(name)
        return 0
    if args.case:
        return _run_one_inprocess(args.case, args.bootstrap, suite_dir, setup_error)

    selected = [c for c in _CASES if not args.only or any(o in c[0] for o in args.only)]
    # one ApiVersions request (or $COMPAT_GROUPS / --groups): decides the group_* cases and the
    # allowlist entries marked UNTIL_GROUPS
    groups = broker_apis.groups_enabled(args.bootstrap, args.groups)
    summary = Summary(load_allowlist(os.path.join(suite_dir, "allowlist.txt")), load_quirks(suite_name),
                      groups=groups)
    if setup_error:
        print("# client: %s (unavailable)" % suite_name, flush=True)
        for name, _, _ in _CASES:
            summary.emit("SKIP", name, setup_error)
        return summary.finish()

    try:
        ver = client_version() if client_version else "?"
    except Exception as e:  # pragma: no cover
        ver = "? (%s)" % e
    print("# client: %s" % ver, flush=True)
    print("# bootstrap: %s" % args.bootstrap, flush=True)
    if any(n.startswith(GROUP_PREFIX) for n, _, _ in selected):
        print("# consumer-group cases: %s" % ("run (FindCoordinator + JoinGroup advertised)" if groups
                                              else "SKIP (%s)" % broker_apis.NO_GROUPS_REASON), flush=True)

    log_dir = os.path.join(args.log_dir, suite_name)
    os.makedirs(log_dir, exist_ok=True)
    timeouts_in_a_row = 0
    for name, _, case_timeout in selected:
        if name.startswith(GROUP_PREFIX) and not groups:
            summary.emit("SKIP", name, broker_apis.NO_GROUPS_REASON)
            continue
        if timeouts_in_a_row >= MAX_TIMEOUTS_IN_A_ROW:
            # a broker that stopped answering would otherwise cost a full timeout per case
            summary.emit("FAIL", name, "not run: %d cases in a row timed out (broker unresponsive?)"
                         % timeouts_in_a_row)
            continue
        timeout = case_timeout or args.timeout
        log_path = os.path.join(log_dir, name + ".log")
        cmd = [sys.executable, os.path.abspath(suite_file), "--bootstrap", args.bootstrap, "--case", name]
        t0 = time.time()
        status, reason = None, None
        with open(log_path, "w") as log:
            try:
                p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                                     start_new_session=True)
                try:
                    out, _ = p.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(p)
                    out, _ = p.communicate()
                    status, reason = "FAIL", "timed out after %.0f s (log: %s)" % (timeout, log_path)
            except OSError as e:
                out = ""
                status, reason = "FAIL", "could not start: %s" % e
            log.write("\n--- stdout ---\n" + (out or ""))
        if status is None:
            for line in (out or "").splitlines():
                m = _LINE.match(line)
                if m and m.group(2) == name:
                    status, reason = m.group(1), m.group(3)
            if status is None:
                status, reason = "FAIL", "case process exited %s without a result (log: %s)" % (
                    p.returncode, log_path)
        timed_out = status == "FAIL" and re.search(r"timed?[ _]?out", reason or "", re.I)
        timeouts_in_a_row = timeouts_in_a_row + 1 if timed_out else 0
        took = time.time() - t0
        with open(log_path, "a") as log:
            log.write("\n--- %s after %.1f s\n" % (status, took))
        summary.emit(status, name, reason)
        if name.startswith(GROUP_PREFIX):
            print("#   %s took %.1f s" % (name, took), flush=True)
    return summary.finish()


def _kill_group(p):
    import signal
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        try:
            p.kill()
        except OSError:
            pass


if __name__ == "__main__":
    # `python3 harness.py --summarize ALLOWLIST` : filter stdin (used by the Java runner)
    if len(sys.argv) >= 2 and sys.argv[1] == "--summarize":
        sys.exit(summarize_stream(sys.stdin, sys.argv[2] if len(sys.argv) > 2 else None,
                                  sys.argv[3] if len(sys.argv) > 3 else None))
    print("usage: harness.py --summarize ALLOWLIST [SUITE] < raw-output", file=sys.stderr)
    sys.exit(2)
