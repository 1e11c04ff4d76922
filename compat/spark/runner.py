#!/usr/bin/env python3
"""Runner of the Spark suite (standard library only, so it can always report SKIPs).

Why not one process per case like the other suites: a SparkSession (JVM + py4j + connector) takes
6-10 s to start on 2 cores, and the suite has ~40 cases. So one driver process (cases.py, in the
spark venv) runs the cases one after another in a single SparkSession and prints
`START <case>` before each and `PASS/FAIL/SKIP <case>...` after. This runner keeps the harness's
guarantees from the outside:
  - each case has a hard time limit: when it passes, the driver's whole process group (Python and
    its JVM) is SIGKILLed, the case is a FAIL, and a fresh driver continues with the next case;
  - a driver that dies mid-case (JVM crash, ...) fails that case only, the rest run in a new one;
  - after 3 timed-out cases in a row the remaining cases are reported as FAIL "not run";
  - allowlist.txt turns a listed FAIL into XFAIL (harness.Summary).

Connector jars, in this order: $RIVULET_SPARK_CONNECTOR_DIR, ../shared/spark-connector beside the
repo, then `spark.jars.packages` when Maven Central answers; else every case SKIPs with the reason.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.dirname(HERE)
REPO = os.path.dirname(COMPAT)
sys.path.insert(0, os.path.join(COMPAT, "lib"))
import harness  # noqa: E402

CACHE = os.environ.get("RIVULET_CACHE", os.path.expanduser("~/.cache/rivulet-compat"))
SPARK_PY = os.path.join(CACHE, "spark-venv", "bin", "python")
SPARK_LIBS = os.path.join(CACHE, "spark-libs")
CONNECTOR_JARS = ["spark-sql-kafka-0-10_2.13-4.0.1.jar", "spark-token-provider-kafka-0-10_2.13-4.0.1.jar",
                  "commons-pool2-2.12.0.jar"]
CLIENT_JARS = ["kafka-clients-3.9.0.jar"]
PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.1"
STARTUP_TIMEOUT = 150        # JVM + SparkSession on a busy 2-core machine
DEFAULT_CASE_TIMEOUT = 90


def maven_reachable():
    try:
        urllib.request.urlopen("https://repo1.maven.org/maven2/org/apache/spark/", timeout=5).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def resolve_jars():
    """-> (jars, packages, description) or raises RuntimeError with the SKIP reason."""
    tried = []
    dirs = []
    if os.environ.get("RIVULET_SPARK_CONNECTOR_DIR"):
        dirs.append(("$RIVULET_SPARK_CONNECTOR_DIR", os.environ["RIVULET_SPARK_CONNECTOR_DIR"]))
    dirs.append(("../shared/spark-connector", os.path.join(os.path.dirname(REPO), "shared", "spark-connector")))
    client = [os.path.join(SPARK_LIBS, j) for j in CLIENT_JARS]
    for label, d in dirs:
        jars = [os.path.join(d, j) for j in CONNECTOR_JARS]
        missing = [j for j in jars if not os.path.isfile(j)]
        if missing:
            tried.append("%s (%s): missing %s" % (label, d, ", ".join(os.path.basename(m) for m in missing)))
            continue
        absent = [j for j in client if not os.path.isfile(j)]
        if absent:
            raise RuntimeError("connector jars found in %s but %s is missing (run scripts/compat-setup.sh)"
                               % (d, ", ".join(absent)))
        return jars + client, None, "connector jars from %s" % d
    if maven_reachable():
        return [], PACKAGE, "--packages %s (Maven Central)" % PACKAGE
    tried.append("Maven Central not reachable for --packages %s" % PACKAGE)
    raise RuntimeError("no Spark Kafka connector: " + "; ".join(tried))


def setup_error():
    status = os.path.join(CACHE, "status", "spark")
    if os.path.exists(status):
        with open(status) as f:
            st = f.read().strip()
        if st.startswith("failed"):
            return "scripts/compat-setup.sh: spark " + st
    if not os.access(SPARK_PY, os.X_OK):
        return "no spark venv at %s (run scripts/compat-setup.sh)" % SPARK_PY
    return None


def list_cases():
    """[(name, timeout)] from the driver (imports pyspark, starts no JVM)."""
    out = subprocess.run([SPARK_PY, os.path.join(HERE, "cases.py"), "--list"], capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("cases.py --list failed: %s" % (out.stderr.strip().splitlines() or ["?"])[-1])
    cases = []
    for line in out.stdout.splitlines():
        name, t = line.split()
        cases.append((name, float(t)))
    return cases


def list_cases_plain():
    """Case names without the spark venv (to SKIP them all), parsed from cases.py's decorators."""
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
    ap = argparse.ArgumentParser(description="Spark Structured Streaming compatibility suite")
    ap.add_argument("--bootstrap", default=os.environ.get("BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=None, help="override every case's time limit")
    ap.add_argument("--broker-bin", default=os.environ.get("RIVULET_BROKER_BIN"),
                    help="broker binary for the broker-kill case (else it SKIPs)")
    ap.add_argument("--log-dir", default=os.environ.get("COMPAT_LOG_DIR", os.path.join(COMPAT, "logs")))
    ap.add_argument("--groups", choices=["auto", "yes", "no"], default=None, help="unused; accepted for symmetry")
    args = ap.parse_args()

    summary = harness.Summary(harness.load_allowlist(os.path.join(HERE, "allowlist.txt")),
                              harness.load_quirks("spark"))
    err = setup_error()
    jars = packages = None
    if not err:
        try:
            jars, packages, jar_desc = resolve_jars()
        except RuntimeError as e:
            err = str(e)
    cases = None
    if not err:
        try:
            cases = list_cases()
        except Exception as e:  # noqa: BLE001
            err = "spark venv broken: %s" % e
    if err:
        print("# client: spark (unavailable)", flush=True)
        for name in list_cases_plain():
            if not args.only or any(o in name for o in args.only):
                summary.emit("SKIP", name, err)
        return summary.finish()

    print("# client: pyspark 4.0.1, spark-sql-kafka-0-10_2.13 4.0.1, kafka-clients 3.9.0", flush=True)
    print("# bootstrap: %s; %s" % (args.bootstrap, jar_desc), flush=True)
    selected = [(n, args.timeout or t) for n, t in cases if not args.only or any(o in n for o in args.only)]
    log_dir = os.path.join(args.log_dir, "spark")
    os.makedirs(log_dir, exist_ok=True)
    env = dict(os.environ)
    env["RIVULET_SPARK_JARS"] = ",".join(jars)
    env["RIVULET_SPARK_PACKAGES"] = packages or ""
    env["RIVULET_SPARK_LOG_DIR"] = log_dir
    # process groups the running case started in their own session (child Spark drivers, its own
    # broker): killed with the driver when a case times out
    child_pids = env["RIVULET_SPARK_CHILD_PIDS"] = os.path.join(log_dir, "case-children.pids")
    if args.broker_bin:
        env["RIVULET_BROKER_BIN"] = os.path.abspath(args.broker_bin)
    else:
        env.pop("RIVULET_BROKER_BIN", None)

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
        cmd = [SPARK_PY, os.path.join(HERE, "cases.py"), "--bootstrap", args.bootstrap,
               "--cases", ",".join(n for n, _ in pending)]
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
            print(line, flush=True)   # '#' comments from the driver
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
                summary.emit("FAIL", name, "Spark driver did not start within %d s (log %s)" % (STARTUP_TIMEOUT, log_path))
            break
        if culprit is None:
            # died or hung between cases (cleanup, SparkSession trouble): nothing to blame, and a
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
    print("# spark suite took %.0f s (%d driver process%s)" % (time.time() - t_suite, driver_no,
                                                               "" if driver_no == 1 else "es"), flush=True)
    return summary.finish()


if __name__ == "__main__":
    sys.exit(main())
