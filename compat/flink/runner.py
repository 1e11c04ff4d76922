#!/usr/bin/env python3
"""Runner of the Flink suite (standard library only, so it can always report SKIPs).

The model is the Spark suite's runner: one driver process (cases.py, in the flink venv) starts
PyFlink's gateway JVM once (2-3 s) and runs the cases one after another, each job on a local
mini-cluster inside that JVM, printing `START <case>` before each and `PASS/FAIL/SKIP <case>...`
after. This runner keeps the harness's guarantees from the outside:
  - each case has a hard time limit: when it passes, the driver's whole process group (Python and
    its JVM) and the case's child jobs are SIGKILLed, the case is a FAIL, and a fresh driver
    continues with the next case;
  - a driver that dies mid-case fails that case only, the rest run in a new one;
  - after 3 timed-out cases in a row the remaining cases are reported as FAIL "not run";
  - allowlist.txt turns a listed FAIL into XFAIL (harness.Summary).

Connector jars (the thin flink-connector-kafka 4.0.1-2.0 plus kafka-clients 3.9.1, both on the
job's classpath through `pipeline.jars`): $RIVULET_FLINK_CONNECTOR_DIR, else ../shared/flink-connector
beside the repo; else every case SKIPs with the reason. The JVM gets $RIVULET_FLINK_JVM_ARGS
(default -Xmx768m) through PyFlink's JVM_ARGS.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.dirname(HERE)
REPO = os.path.dirname(COMPAT)
sys.path.insert(0, os.path.join(COMPAT, "lib"))
import harness  # noqa: E402

CACHE = os.environ.get("RIVULET_CACHE", os.path.expanduser("~/.cache/rivulet-compat"))
FLINK_PY = os.path.join(CACHE, "flink-venv", "bin", "python")
CONNECTOR_JARS = ["flink-connector-kafka-4.0.1-2.0.jar", "kafka-clients-3.9.1.jar"]
STARTUP_TIMEOUT = 120        # Python + gateway JVM on a busy 2-core machine
DEFAULT_CASE_TIMEOUT = 60
JVM_ARGS = os.environ.get("RIVULET_FLINK_JVM_ARGS", "-Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")


def resolve_jars():
    """-> (jars, description) or raises RuntimeError with the SKIP reason."""
    tried = []
    dirs = []
    if os.environ.get("RIVULET_FLINK_CONNECTOR_DIR"):
        dirs.append(("$RIVULET_FLINK_CONNECTOR_DIR", os.environ["RIVULET_FLINK_CONNECTOR_DIR"]))
    dirs.append(("../shared/flink-connector", os.path.join(os.path.dirname(REPO), "shared", "flink-connector")))
    for label, d in dirs:
        jars = [os.path.join(d, j) for j in CONNECTOR_JARS]
        missing = [j for j in jars if not os.path.isfile(j)]
        if missing:
            tried.append("%s (%s): missing %s" % (label, d, ", ".join(os.path.basename(m) for m in missing)))
            continue
        return jars, "connector jars from %s" % d
    raise RuntimeError("no Flink Kafka connector jars: " + "; ".join(tried))


def setup_error():
    status = os.path.join(CACHE, "status", "flink")
    if os.path.exists(status):
        with open(status) as f:
            st = f.read().strip()
        if st.startswith("failed"):
            return "scripts/compat-setup.sh: flink " + st
    if not os.access(FLINK_PY, os.X_OK):
        return "no flink venv at %s (run scripts/compat-setup.sh)" % FLINK_PY
    return None


def list_cases():
    """[(name, timeout)] from the driver (starts no JVM)."""
    out = subprocess.run([FLINK_PY, os.path.join(HERE, "cases.py"), "--list"], capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("cases.py --list failed: %s" % (out.stderr.strip().splitlines() or ["?"])[-1])
    cases = []
    for line in out.stdout.splitlines():
        name, t = line.split()
        cases.append((name, float(t)))
    return cases


def list_cases_plain():
    """Case names without the flink venv (to SKIP them all), parsed from cases.py's decorators."""
    import re
    with open(os.path.join(HERE, "cases.py")) as f:
        src = f.read()
    names = re.findall(r'^@?case\("([^"]+)"', src, re.M)
    # parametrised families are declared as CASE_FAMILIES = {...} literals for this purpose
    m = re.search(r"^CASE_FAMILIES = (\{.*?\})$", src, re.M | re.S)
    if m:
        import ast
        for prefix, items in ast.literal_eval(m.group(1)).items():
            names += [prefix + i for i in items]
    return names


def kill_case_children(path):
    try:
        with open(path) as f:
            pids = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def killpg(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description="Apache Flink (PyFlink) compatibility suite")
    ap.add_argument("--bootstrap", default=os.environ.get("BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=None, help="override every case's time limit")
    ap.add_argument("--broker-bin", default=None, help="unused; accepted for symmetry")
    ap.add_argument("--log-dir", default=os.environ.get("COMPAT_LOG_DIR", os.path.join(COMPAT, "logs")))
    ap.add_argument("--groups", choices=["auto", "yes", "no"], default=None, help="unused; accepted for symmetry")
    args = ap.parse_args()

    summary = harness.Summary(harness.load_allowlist(os.path.join(HERE, "allowlist.txt")),
                              harness.load_quirks("flink"))
    err = setup_error()
    jars = None
    if not err:
        try:
            jars, jar_desc = resolve_jars()
        except RuntimeError as e:
            err = str(e)
    cases = None
    if not err:
        try:
            cases = list_cases()
        except Exception as e:  # noqa: BLE001
            err = "flink venv broken: %s" % e
    if err:
        print("# client: flink (unavailable)", flush=True)
        for name in list_cases_plain():
            if not args.only or any(o in name for o in args.only):
                summary.emit("SKIP", name, err)
        return summary.finish()

    print("# client: apache-flink 2.0.2 (PyFlink), flink-connector-kafka 4.0.1-2.0, kafka-clients 3.9.1", flush=True)
    print("# bootstrap: %s; %s" % (args.bootstrap, jar_desc), flush=True)
    selected = [(n, args.timeout or t) for n, t in cases if not args.only or any(o in n for o in args.only)]
    log_dir = os.path.join(args.log_dir, "flink")
    os.makedirs(log_dir, exist_ok=True)
    env = dict(os.environ)
    env["RIVULET_FLINK_JARS"] = ",".join(jars)
    env["RIVULET_FLINK_LOG_DIR"] = log_dir
    env["JVM_ARGS"] = JVM_ARGS
    env["FLINK_LOG_DIR"] = log_dir   # Flink's own log file (flink-*-python-*.log)
    # process groups the running case started in their own session (child jobs): killed with the
    # driver when a case times out
    child_pids = env["RIVULET_FLINK_CHILD_PIDS"] = os.path.join(log_dir, "case-children.pids")

    t_suite = time.time()
    pending = list(selected)
    timeouts_in_a_row = 0
    driver_no = 0
    while pending:
        if timeouts_in_a_row >= harness.MAX_TIMEOUTS_IN_A_ROW:
            for name, _ in pending:
                summary.emit("FAIL", name, "not run: %d cases in a row timed out (broker unresponsive?)"
                             % timeouts_in_a_row)
            break
        driver_no += 1
        log_path = os.path.join(log_dir, "driver-%d.log" % driver_no)
        cmd = [FLINK_PY, os.path.join(HERE, "cases.py"), "--bootstrap", args.bootstrap,
               "--cases", ",".join(n for n, _ in pending)]
        env["FLINK_IDENT_STRING"] = "driver-%d" % driver_no   # Flink's log: flink-driver-N-python-<host>.log
        with open(log_path, "w") as log:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                 start_new_session=True)
        # a watchdog thread turns "no progress in time" into a kill; the reader below notices EOF
        open(child_pids, "w").close()
        state = {"case": None, "deadline": time.time() + STARTUP_TIMEOUT, "killed": None, "t0": time.time(),
                 "started": False}
        lock = threading.Lock()
        done = threading.Event()

        def watchdog():
            while not done.wait(0.5):
                with lock:
                    if time.time() > state["deadline"]:
                        state["killed"] = state["case"] or ("<between cases>" if state["started"] else "<startup>")
                        killpg(p)
                        return
        threading.Thread(target=watchdog, daemon=True).start()
        timeouts = dict(pending)
        finished = set()
        for line in p.stdout:
            line = line.rstrip("\n")
            if line.startswith("START "):
                name = line[6:].strip()
                with lock:
                    state["case"] = name
                    state["started"] = True
                    state["t0"] = time.time()
                    state["deadline"] = time.time() + timeouts.get(name, DEFAULT_CASE_TIMEOUT)
                continue
            m = harness._LINE.match(line)
            if m and m.group(2) in timeouts:
                with lock:
                    took = time.time() - state["t0"]
                    state["case"] = None
                    state["deadline"] = time.time() + 60   # between cases: cleanup, next START
                finished.add(m.group(2))
                timeouts_in_a_row = 0
                summary.emit(m.group(1), m.group(2), m.group(3))
                print("#   %s took %.1f s" % (m.group(2), took), flush=True)
                continue
            if line.startswith("#"):
                print(line, flush=True)   # '#' comments from the driver
            else:
                # anything else on stdout (the gateway JVM's own console output, e.g. a stack
                # trace logged by kafka-clients) goes to driver-N.stdout.log, not into the protocol
                with open(log_path[:-len(".log")] + ".stdout.log", "a") as out:
                    out.write(line + "\n")
        rc = p.wait()
        done.set()
        killpg(p)   # leftovers: a JVM whose Python died
        kill_case_children(child_pids)
        pending = [(n, t) for n, t in pending if n not in finished]
        if not pending:
            break
        with lock:
            culprit, killed = state["case"], state["killed"]
        if killed == "<startup>":
            for name, _ in pending:
                summary.emit("FAIL", name, "Flink driver did not start within %d s (log %s)" % (STARTUP_TIMEOUT, log_path))
            break
        if culprit is None:
            # died or hung between cases (cleanup, gateway trouble): nothing to blame, and a
            # new driver would likely do the same; give up on the rest
            why = ("driver hung between cases and was killed" if killed == "<between cases>"
                   else "driver exited %s before this case" % rc)
            for name, _ in pending:
                summary.emit("FAIL", name, "%s (log %s)" % (why, log_path))
            break
        if killed:
            summary.emit("FAIL", culprit, "timed out after %.0f s (driver killed; log %s)"
                         % (timeouts[culprit], log_path))
            timeouts_in_a_row += 1
        else:
            summary.emit("FAIL", culprit, "driver exited %s during the case (log %s)" % (rc, log_path))
            timeouts_in_a_row = 0
        pending = [(n, t) for n, t in pending if n != culprit]
    print("# flink suite took %.0f s (%d driver process%s)" % (time.time() - t_suite, driver_no,
                                                               "" if driver_no == 1 else "es"), flush=True)
    return summary.finish()


if __name__ == "__main__":
    sys.exit(main())
