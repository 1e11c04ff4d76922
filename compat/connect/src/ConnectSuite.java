import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * Kafka Connect 4.3.0 (stock connect-runtime, distributed mode, exactly.once.source.support=enabled)
 * running the stock FileStreamSourceConnector (connect-file 4.3.0, loaded from plugin.path) against
 * the broker under test. The worker JVMs are children of this driver (java -cp connect-libs/*
 * org.apache.kafka.connect.cli.ConnectDistributed worker.properties), driven through the REST API;
 * the checks use kafka-clients (read_committed / read_uncommitted consumers, Admin) from the same jars.
 *
 *   java -cp classes:connect-libs/* ConnectSuite --bootstrap HOST:PORT --libs DIR --suite-dir DIR --log-dir DIR [--only S]
 *
 * Output: the compat protocol (PASS / FAIL / SKIP lines), filtered by lib/harness.py --summarize.
 */
public class ConnectSuite {
    static String bootstrap = "127.0.0.1:9092";
    static Path libs, suiteDir, logDir, work;
    static Admin admin;
    static Set<Integer> apis = new TreeSet<>();
    static boolean groups = true;
    // --at-least-once: workers with exactly.once.source.support=disabled and connectors without the
    // exactly-once settings, to see the checks bite (connect_eos_worker_kill9 then FAILs: the lines
    // read again after the kill are in the topic twice)
    static boolean eos = true;
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    static final Random RND = new Random();
    static final String RUN = Long.toString(System.currentTimeMillis() / 1000, 36) + Integer.toString(1296 + RND.nextInt(45000), 36);
    static final List<Cluster> CLUSTERS = Collections.synchronizedList(new ArrayList<>());
    static final String NO_GROUPS = "broker does not advertise consumer-group APIs (Connect's distributed workers form a group)";
    static final String SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector";
    static Cluster clusterA;   // connect_eos_file_source and connect_internal_topics share one worker
    static final java.util.concurrent.atomic.AtomicInteger TAILS = new java.util.concurrent.atomic.AtomicInteger();

    interface Body { void run() throws Exception; }
    record Case(String name, int timeoutS, Body body) {}
    static final List<Case> CASES = new ArrayList<>();

    static final class Failure extends RuntimeException { Failure(String m) { super(m); } }
    static final class Skip extends RuntimeException { Skip(String m) { super(m); } }

    static void check(boolean cond, String msg) { if (!cond) throw new Failure(msg); }
    static void checkEq(Object got, Object want, String what) {
        if (!java.util.Objects.equals(got, want)) throw new Failure(what + ": got " + shorten(got) + ", want " + shorten(want));
    }
    static String shorten(Object o) { String s = String.valueOf(o); return s.length() > 200 ? s.substring(0, 200) + "...(" + s.length() + " chars)" : s; }
    static void info(String s) { System.out.println("#   " + s); System.out.flush(); }
    static void log(String s) { System.err.println(java.time.LocalTime.now() + " " + s); }

    // ------------------------------------------------------------------------------------- cases

    static void register() {
        // time limits: about 6x what each case takes against kfake or Rivulet on 2 cores (9 s, 2 s, 30 s
        // with worker startups), 175 s in all, so a hung broker cannot hold the suite past 3 minutes
        CASES.add(new Case("connect_eos_file_source", 60, ConnectSuite::eosFileSource));
        CASES.add(new Case("connect_internal_topics", 40, ConnectSuite::internalTopics));
        CASES.add(new Case("connect_eos_worker_kill9", 75, ConnectSuite::eosWorkerKill9));
    }

    /**
     * 500 lines in a file; a connector with exactly.once.support=required and transaction.boundary=poll
     * (batch.size 50: at least 10 transactions); a read_committed consumer reads exactly the 500 lines in
     * order, once each, and so does a read_uncommitted one (nothing aborted); every transaction left one
     * commit marker (the offsets of the topic are the 500 records plus one marker per transaction); the
     * connector's offset (REST GET /connectors/NAME/offsets) is the file's size; the task's transactional
     * id GROUP-CONNECTOR-0 and the leader's connect-cluster-GROUP show up in ListTransactions.
     */
    static void eosFileSource() throws Exception {
        needConnect();
        Cluster c = clusterA();
        String topic = createTopic("eos-source");
        Path file = work.resolve("eos-source-" + RUN + ".txt");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 500; i++) lines.add(String.format("eos-%s-%05d %s", RUN, i, i % 7 == 0 ? "" : "x".repeat(i % 40)));
        writeLines(file, lines);
        String name = "eos-file-" + RUN;
        c.createConnector(name, Map.of("file", file.toString(), "topic", topic, "batch.size", "50",
            "transaction.boundary", "poll"));
        c.awaitTaskRunning(name, 30_000);
        Tail committed = new Tail(topic, "read_committed", 1);
        try (committed) {
            committed.until(500, 30_000);
            committed.quiet(1_500);
        }
        checkRecords(committed.records, lines, "read_committed");
        long hw = endOffset(topic);
        long last = committed.records.get(committed.records.size() - 1).offset();
        long markers = hw - 500;
        check(last < hw - 1, "no commit marker after the last record: last record at offset " + last + ", end offset " + hw);
        check(markers >= 10, "end offset " + hw + " for 500 records in at least 10 transactions (batch.size 50): "
            + markers + " offsets for commit markers, want >= 10");
        List<Long> gaps = new ArrayList<>();
        long expect = 0;
        for (ConsumerRecord<byte[], byte[]> r : committed.records) {
            if (r.offset() != expect) gaps.add(r.offset() - expect);
            expect = r.offset() + 1;
        }
        check(gaps.stream().allMatch(g -> g == 1), "the gaps between records are commit markers, one offset each: gaps " + shorten(gaps));
        info("connect_eos_file_source: 500 records in " + markers + " transactions (end offset " + hw + ")");
        Tail uncommitted = new Tail(topic, "read_uncommitted", 1);
        try (uncommitted) {
            uncommitted.until(500, 20_000);
            uncommitted.quiet(500);
        }
        checkRecords(uncommitted.records, lines, "read_uncommitted");
        for (int i = 0; i < 500; i++)
            checkEq(uncommitted.records.get(i).offset(), committed.records.get(i).offset(), "read_uncommitted offset of record " + i);
        checkEq(c.connectorPosition(name, file), Files.size(file), "connector offset (GET /connectors/" + name + "/offsets) position");
        String txnId = c.groupId + "-" + name + "-0";
        Long pid = checkTransaction(txnId, TransactionState.COMPLETE_COMMIT);
        checkTransaction("connect-cluster-" + c.groupId, null);
        if (pid != null) checkOneProducer(topic, pid, "the task's producer");
    }

    /**
     * The worker's config, offset and status topics, created by Connect (Admin CreateTopics with
     * cleanup.policy=compact): partition counts as configured (1, 5, 3), cleanup.policy=compact as a
     * topic config (DescribeConfigs), and their content after a 20-line connector ran: the config topic
     * holds the connector config, task config, commit and (exactly-once) task-count records, the offset
     * topic the connector's source offset (the file size), the status topic RUNNING for connector and task.
     */
    static void internalTopics() throws Exception {
        needConnect();
        Cluster c = clusterA();
        String topic = createTopic("internal");
        Path file = work.resolve("internal-" + RUN + ".txt");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 20; i++) lines.add("internal-" + RUN + "-" + i);
        writeLines(file, lines);
        String name = "internal-" + RUN;
        c.createConnector(name, Map.of("file", file.toString(), "topic", topic, "transaction.boundary", "poll"));
        c.awaitTaskRunning(name, 30_000);
        try (Tail t = new Tail(topic, "read_committed", 1)) {
            t.until(20, 30_000);
            checkRecords(t.records, lines, "read_committed");
        }
        Map<String, Integer> wantPartitions = new LinkedHashMap<>();
        wantPartitions.put(c.configTopic, 1);
        wantPartitions.put(c.offsetTopic, 5);
        wantPartitions.put(c.statusTopic, 3);
        Map<String, TopicDescription> desc = admin.describeTopics(wantPartitions.keySet()).allTopicNames().get(30, TimeUnit.SECONDS);
        for (Map.Entry<String, Integer> e : wantPartitions.entrySet())
            checkEq(desc.get(e.getKey()).partitions().size(), e.getValue(), "partitions of " + e.getKey());
        if (apis.contains(32)) {
            List<ConfigResource> res = wantPartitions.keySet().stream().map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t)).toList();
            Map<ConfigResource, Config> cfg = admin.describeConfigs(res).all().get(30, TimeUnit.SECONDS);
            for (ConfigResource r : res) {
                ConfigEntry e = cfg.get(r).get("cleanup.policy");
                check(e != null, "DescribeConfigs of " + r.name() + " lists no cleanup.policy");
                checkEq(e.value(), "compact", "cleanup.policy of " + r.name());
                checkEq(e.source(), ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "source of cleanup.policy of " + r.name());
            }
        } else {
            info("connect_internal_topics: DescribeConfigs not advertised: cleanup.policy not checked");
        }
        // config topic: every record is a committed transactional write of the leader (connect-cluster-GROUP)
        Map<String, String> config = lastByKey(readAll(c.configTopic, "read_committed", 1, 10_000));
        for (String k : List.of("connector-" + name, "task-" + name + "-0", "commit-" + name, "tasks-fencing-" + name))
            check(config.containsKey(k), "config topic " + c.configTopic + " has no record with key " + k + "; keys: " + config.keySet());
        check(config.get("connector-" + name).contains(file.toString()), "connector config record: " + shorten(config.get("connector-" + name)));
        Map<String, String> status = lastByKey(readAll(c.statusTopic, "read_uncommitted", 3, 10_000));
        for (String k : List.of("status-connector-" + name, "status-task-" + name + "-0")) {
            check(status.containsKey(k), "status topic " + c.statusTopic + " has no record with key " + k + "; keys: " + status.keySet());
            checkEq(JSON.readTree(status.get(k)).path("state").asText(), "RUNNING", "state in " + k);
        }
        Map<String, String> offsets = lastByKey(readAll(c.offsetTopic, "read_committed", 5, 10_000));
        String key = JSON.writeValueAsString(List.of(name, Map.of("filename", file.toString())));
        check(offsets.containsKey(key), "offset topic " + c.offsetTopic + " has no record with key " + key + "; keys: " + offsets.keySet());
        checkEq(JSON.readTree(offsets.get(key)).path("position").asLong(), Files.size(file), "position in the offset topic");
    }

    /**
     * A writer appends lines to the file continuously (250 lines/s); the connector runs with
     * transaction.boundary=interval (1 s); once 400 lines are committed the worker JVM is SIGKILLed (after
     * a random 0.1-0.8 s more) and started again with the same group, REST port and internal topics; once
     * 500 more lines are committed the writer stops. A read_committed consumer reads every line of the
     * file exactly once, in order: the open transaction of the dead worker is aborted when the new task's
     * producer initializes the same transactional id, and the new task resumes at the file position
     * committed with the last committed transaction. FileStreamSourceTask waits 1 s at the end of the file
     * before its next poll, so nearly every kill finds a transaction open with about a second of lines sent
     * (~245 records): while no worker runs, read_committed stops at its first offset (the last stable
     * offset, DescribeProducers' current transaction start); afterwards read_uncommitted sees its records
     * and read_committed never. The topic's producer keeps its producer id with a higher epoch.
     */
    static void eosWorkerKill9() throws Exception {
        needConnect();
        if (clusterA != null) { clusterA.close(); clusterA = null; }   // two cores: one worker at a time
        Cluster c = new Cluster("kill9");
        c.start();
        String topic = createTopic("kill9");
        Path file = work.resolve("kill9-" + RUN + ".txt");
        writeLines(file, List.of());
        String name = "kill9-" + RUN;
        Writer writer = new Writer(file, "k9-" + RUN);
        Tail committed = new Tail(topic, "read_committed", 1);
        try (committed; writer) {
            c.createConnector(name, Map.of("file", file.toString(), "topic", topic, "batch.size", "100",
                "transaction.boundary", "interval", "transaction.boundary.interval.ms", "1000"));
            writer.start();
            c.awaitTaskRunning(name, 30_000);
            committed.until(400, 30_000);
            ProducerState before = eos && apis.contains(61) ? oneProducer(topic) : null;
            Thread.sleep(100 + RND.nextInt(700));
            committed.poll(0);
            int atKill = committed.records.size();
            long pid = c.worker.pid();
            c.kill9();
            info("connect_eos_worker_kill9: SIGKILL of worker pid " + pid + " after " + atKill + " committed records, "
                + writer.count() + " lines written");
            // while no worker runs, read_committed stops at the last stable offset: the first offset of the
            // dead worker's open transaction, if the kill left one open (it stays open until the new
            // task's producer fences the transactional id)
            committed.quiet(1_500);
            int committedByDead = committed.records.size();
            Long openAt = null;
            if (eos && apis.contains(61)) {
                ProducerState p = oneProducer(topic);
                if (p.currentTransactionStartOffset().isPresent()) openAt = p.currentTransactionStartOffset().getAsLong();
            }
            long lso = committed.consumer.endOffsets(List.of(new TopicPartition(topic, 0))).get(new TopicPartition(topic, 0));
            if (openAt != null)
                checkEq(lso, openAt, "last stable offset (read_committed end offset) while the dead worker's transaction is open");
            long t0 = System.currentTimeMillis();
            c.start();
            // the REST API answers (and reports the dead worker's RUNNING status from the status topic)
            // before the new worker has joined the group: progress is what counts
            committed.until(committedByDead + 1, 45_000);
            long restartMs = System.currentTimeMillis() - t0;
            committed.until(atKill + 500, 45_000);
            writer.stop();
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            checkEq(lines.size(), writer.count(), "lines in the file");
            committed.until(lines.size(), 30_000);
            committed.quiet(1_500);
            checkRecords(committed.records, lines, "read_committed");
            List<ConsumerRecord<byte[], byte[]>> all = readAll(topic, "read_uncommitted", 1, 15_000);
            Set<String> written = new HashSet<>(lines);
            int aborted = all.size() - lines.size();
            for (ConsumerRecord<byte[], byte[]> r : all)
                check(written.contains(str(r.value())), "read_uncommitted sees a record that is no line of the file: " + shorten(str(r.value())));
            check(aborted >= 0, "read_uncommitted sees fewer records (" + all.size() + ") than read_committed (" + lines.size() + ")");
            info("connect_eos_worker_kill9: " + lines.size() + " lines exactly once; " + committedByDead + " committed by the killed worker; "
                + "open transaction at the kill: " + (openAt == null ? (apis.contains(61) ? "none" : "unknown (no DescribeProducers)") : "from offset " + openAt)
                + "; its records, aborted (seen by read_uncommitted only): " + aborted + "; restart to the first new committed record " + restartMs + " ms");
            if (eos && apis.contains(61))
                check((openAt != null) == (aborted > 0), "an open transaction at the kill (" + openAt + ") must end aborted, and nothing else: "
                    + aborted + " aborted records");
            c.awaitTaskRunning(name, 10_000);
            checkEq(c.connectorPosition(name, file), Files.size(file), "connector offset position after the restart");
            if (before != null) {
                ProducerState after = oneProducer(topic);
                checkEq(after.producerId(), before.producerId(), "producer id after the restart (same transactional id)");
                check(after.producerEpoch() > before.producerEpoch(), "producer epoch after the restart: " + after.producerEpoch()
                    + ", before the kill " + before.producerEpoch() + " (the new task's producer fences the dead one)");
                check(after.currentTransactionStartOffset().isEmpty(), "open transaction on the topic after the end: " + after);
            }
            checkTransaction(c.groupId + "-" + name + "-0", null);
            checkCompacted(c, name, file, endOffset(topic) - all.size());
        } finally {
            c.close();
        }
    }

    // ------------------------------------------------------------------------------------- checks

    /**
     * The offset topic of a cluster whose internal topics have 1 KiB segments was compacted while the
     * worker ran and restarted: fewer records of the connector's offset key are left than the
     * transactions that wrote one each (at least one stays, the latest, which the restart resumed from),
     * and the compacted config topic still has the connector's config.
     */
    static void checkCompacted(Cluster c, String name, Path file, long transactions) throws Exception {
        if (!c.tag.equals("kill9")) return;
        String key = JSON.writeValueAsString(List.of(name, Map.of("filename", file.toString())));
        List<ConsumerRecord<byte[], byte[]>> offsets = readAll(c.offsetTopic, "read_committed", 5, 10_000);
        long ofKey = offsets.stream().filter(r -> key.equals(str(r.key()))).count();
        info("connect_eos_worker_kill9: offset topic after compaction: " + ofKey + " records of the connector's key, "
            + transactions + " transactions wrote one each");
        check(ofKey >= 1, "the connector's latest offset record is gone from " + c.offsetTopic);
        check(ofKey < transactions, "the offset topic (1 KiB segments) was never compacted: " + ofKey
            + " records of the connector's key for " + transactions + " transactions");
        Map<String, String> config = lastByKey(readAll(c.configTopic, "read_committed", 1, 10_000));
        check(config.containsKey("connector-" + name), "compacted config topic lost the connector config; keys: " + config.keySet());
    }

    /** Exactly the lines, in order, once each, all on partition 0 with a null key. */
    static void checkRecords(List<ConsumerRecord<byte[], byte[]>> recs, List<String> lines, String what) {
        List<String> got = recs.stream().map(r -> str(r.value())).toList();
        if (!got.equals(lines)) {
            Map<String, Integer> n = new HashMap<>();
            for (String v : got) n.merge(v, 1, Integer::sum);
            long dups = n.values().stream().filter(x -> x > 1).count();
            long missing = lines.stream().filter(l -> !n.containsKey(l)).count();
            int i = 0;
            while (i < Math.min(got.size(), lines.size()) && got.get(i).equals(lines.get(i))) i++;
            throw new Failure(what + ": " + got.size() + " records for " + lines.size() + " lines: " + dups + " duplicated, "
                + missing + " missing; first difference at " + i + ": got " + (i < got.size() ? shorten(got.get(i)) : "(end)")
                + ", want " + (i < lines.size() ? shorten(lines.get(i)) : "(end)"));
        }
        for (ConsumerRecord<byte[], byte[]> r : recs) {
            check(r.key() == null, what + ": record at offset " + r.offset() + " has a key (FileStreamSource sends none)");
            checkEq(r.partition(), 0, what + ": partition");
        }
        for (int i = 1; i < recs.size(); i++)
            check(recs.get(i).offset() > recs.get(i - 1).offset(), what + ": offsets not increasing at " + i);
    }

    /**
     * The transactional id is listed by ListTransactions (and described by DescribeTransactions, in the
     * given state when not null, with no partition left in it); returns its producer id, or null when
     * the broker does not advertise ListTransactions.
     */
    static Long checkTransaction(String txnId, TransactionState state) throws Exception {
        if (!apis.contains(66)) {
            info("ListTransactions (66) not advertised: transactional id " + txnId + " not checked");
            return null;
        }
        Map<String, TransactionListing> listed = admin.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
            .collect(Collectors.toMap(TransactionListing::transactionalId, l -> l, (a, b) -> a, TreeMap::new));
        TransactionListing l = listed.get(txnId);
        check(l != null, "ListTransactions: no transactional id " + txnId + "; listed: " + listed.keySet());
        if (apis.contains(65)) {
            TransactionDescription d = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
            checkEq(d.producerId(), l.producerId(), "DescribeTransactions producer id of " + txnId);
            if (state != null) {
                checkEq(d.state(), state, "DescribeTransactions state of " + txnId);
                check(d.topicPartitions().isEmpty(), "DescribeTransactions of " + txnId + ": partitions still in the transaction: " + d.topicPartitions());
            }
            info("transactional id " + txnId + ": producer id " + d.producerId() + ", epoch " + d.producerEpoch() + ", " + d.state());
        } else {
            info("transactional id " + txnId + " listed (" + l.state() + "); DescribeTransactions (65) not advertised");
        }
        return l.producerId();
    }

    static void checkOneProducer(String topic, long pid, String what) throws Exception {
        if (!apis.contains(61)) return;
        ProducerState p = oneProducer(topic);
        checkEq(p.producerId(), pid, "DescribeProducers of " + topic + ": producer id of " + what);
        check(p.currentTransactionStartOffset().isEmpty(), "DescribeProducers: open transaction on " + topic + ": " + p);
    }

    static ProducerState oneProducer(String topic) throws Exception {
        TopicPartition tp = new TopicPartition(topic, 0);
        List<ProducerState> ps = admin.describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers();
        checkEq(ps.size(), 1, "producers of " + tp + " (DescribeProducers): " + ps);
        return ps.get(0);
    }

    static void needConnect() {
        if (!groups) throw new Skip(NO_GROUPS);
        List<String> missing = new ArrayList<>();
        Map<Integer, String> txn = new LinkedHashMap<>();
        txn.put(22, "InitProducerId");   // with a transactional.id
        txn.put(26, "EndTxn");           // (partitions join a transaction by Produce under transaction.version 2,
                                         // by AddPartitionsToTxn under version 1: either may be what the broker has)
        txn.forEach((k, n) -> { if (!apis.contains(k)) missing.add(n + " (" + k + ")"); });
        if (!missing.isEmpty())
            throw new Failure("broker does not advertise " + String.join(", ", missing)
                + ": exactly.once.source.support=enabled needs transactions (the leader writes the config topic and each task its records and offsets in transactions)");
    }

    // ------------------------------------------------------------------------------------- Connect workers

    static Cluster clusterA() throws Exception {
        if (clusterA == null || clusterA.worker == null || !clusterA.worker.isAlive()) {
            if (clusterA != null) clusterA.close();
            clusterA = new Cluster("eos");
            clusterA.start();
        }
        return clusterA;
    }

    /** One Connect cluster (group id + internal topics), one worker JVM at a time, restartable. */
    static final class Cluster implements AutoCloseable {
        final String tag, groupId, configTopic, offsetTopic, statusTopic;
        final int port;
        final Path props;
        Process worker;
        int starts;

        Cluster(String tag) throws IOException {
            this.tag = tag;
            this.groupId = "compat-connect-" + tag + "-" + RUN;
            this.configTopic = groupId + "-configs";
            this.offsetTopic = groupId + "-offsets";
            this.statusTopic = groupId + "-status";
            this.port = freePort();
            Map<String, String> p = new LinkedHashMap<>();
            p.put("bootstrap.servers", bootstrap);
            p.put("group.id", groupId);
            p.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
            p.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
            p.put("config.storage.topic", configTopic);
            p.put("offset.storage.topic", offsetTopic);
            p.put("status.storage.topic", statusTopic);
            p.put("config.storage.replication.factor", "1");
            p.put("offset.storage.replication.factor", "1");
            p.put("status.storage.replication.factor", "1");
            p.put("offset.storage.partitions", "5");
            p.put("status.storage.partitions", "3");
            p.put("exactly.once.source.support", eos ? "enabled" : "disabled");
            p.put("listeners", "http://127.0.0.1:" + port);
            p.put("rest.advertised.host.name", "127.0.0.1");
            p.put("rest.advertised.port", String.valueOf(port));
            p.put("plugin.path", libs.resolve("plugins").toString());
            p.put("plugin.discovery", "service_load");   // connect-file 4.3 ships its ServiceLoader manifest
            // a SIGKILLed worker leaves the group after its session times out (Connect's default: 10 s)
            p.put("session.timeout.ms", "6000");
            p.put("heartbeat.interval.ms", "1000");
            p.put("rebalance.timeout.ms", "20000");
            p.put("scheduled.rebalance.max.delay.ms", "5000");
            p.put("offset.flush.interval.ms", "1000");
            p.put("task.shutdown.graceful.timeout.ms", "2000");
            if (tag.equals("kill9")) {
                // KIP-605: topic settings for the internal topics Connect creates. Tiny segments and
                // any dirty ratio, so the broker's cleaner compacts them while the worker runs, and
                // the restarted worker reads its configs, offsets and statuses back compacted.
                for (String prefix : List.of("config.storage.", "offset.storage.", "status.storage.")) {
                    p.put(prefix + "segment.bytes", "1024");
                    p.put(prefix + "min.cleanable.dirty.ratio", "0.01");
                }
            }
            StringBuilder sb = new StringBuilder("# written by compat/connect (ConnectSuite)\n");
            p.forEach((k, v) -> sb.append(k).append('=').append(v).append('\n'));
            this.props = work.resolve("worker-" + tag + ".properties");
            Files.writeString(props, sb.toString());
            CLUSTERS.add(this);
        }

        void start() throws Exception {
            starts++;
            Path log = logDir.resolve("worker-" + tag + "-" + starts + ".log");
            List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dlog4j2.configurationFile=" + suiteDir.resolve("worker-log4j2.properties"),
                "-cp", libs + "/*", "org.apache.kafka.connect.cli.ConnectDistributed", props.toString());
            log("starting worker " + tag + "#" + starts + " (REST port " + port + ", log " + log + ")");
            worker = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            // compat/connect/run SIGKILLs what is left of these if this JVM itself is killed
            Files.writeString(logDir.resolve("worker.pids"), worker.pid() + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            long deadline = System.currentTimeMillis() + 45_000;
            while (true) {   // GET /connectors answers 200 once the herder has joined the group and read the config topic
                if (!worker.isAlive())
                    throw new Failure("worker " + tag + " exited with " + worker.exitValue() + " during startup: " + tail(log));
                try {
                    HttpResponse<String> r = http("GET", "/connectors", null);
                    if (r.statusCode() == 200) break;
                } catch (IOException e) {
                    // not listening yet
                }
                if (System.currentTimeMillis() > deadline)
                    throw new Failure("worker " + tag + " not ready within 45 s (GET /connectors): " + tail(log));
                Thread.sleep(200);
            }
            log("worker " + tag + "#" + starts + " ready (pid " + worker.pid() + ")");
        }

        /** SIGKILL (Process.destroyForcibly is SIGKILL on Linux) and wait for the JVM to be gone. */
        void kill9() throws Exception {
            new ProcessBuilder("kill", "-KILL", String.valueOf(worker.pid())).inheritIO().start().waitFor();
            check(worker.waitFor(10, TimeUnit.SECONDS), "worker did not die after SIGKILL");
            checkEq(worker.exitValue(), 137, "exit status of the SIGKILLed worker");
        }

        HttpResponse<String> http(String method, String path, String body) throws IOException, InterruptedException {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(20)).header("Content-Type", "application/json").header("Accept", "application/json");
            b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
            return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        }

        void createConnector(String name, Map<String, String> extra) throws Exception {
            Map<String, String> cfg = new TreeMap<>();
            cfg.put("connector.class", SOURCE);
            cfg.put("tasks.max", "1");
            cfg.put("exactly.once.support", "required");
            cfg.putAll(extra);
            if (!eos) cfg.keySet().removeAll(List.of("exactly.once.support", "transaction.boundary", "transaction.boundary.interval.ms"));
            String body = JSON.writeValueAsString(Map.of("name", name, "config", cfg));
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {   // the herder answers 409 while a rebalance is in progress
                HttpResponse<String> r = http("POST", "/connectors", body);
                if (r.statusCode() == 201) return;
                if (r.statusCode() != 409 || System.currentTimeMillis() > deadline)
                    throw new Failure("POST /connectors " + name + ": HTTP " + r.statusCode() + " " + shorten(r.body()));
                log("POST /connectors " + name + ": HTTP 409, retrying: " + r.body());
                Thread.sleep(500);
            }
        }

        void awaitTaskRunning(String name, long ms) throws Exception {
            long deadline = System.currentTimeMillis() + ms;
            String last = "";
            while (System.currentTimeMillis() < deadline) {
                HttpResponse<String> r = http("GET", "/connectors/" + enc(name) + "/status", null);
                last = "HTTP " + r.statusCode() + " " + r.body();
                if (r.statusCode() == 200) {
                    JsonNode s = JSON.readTree(r.body());
                    String cs = s.path("connector").path("state").asText();
                    if (cs.equals("FAILED")) throw new Failure("connector " + name + " FAILED: " + shorten(s.path("connector").path("trace").asText()));
                    JsonNode tasks = s.path("tasks");
                    for (JsonNode t : tasks)
                        if (t.path("state").asText().equals("FAILED"))
                            throw new Failure("task " + name + "-" + t.path("id").asInt() + " FAILED: " + shorten(firstLines(t.path("trace").asText(), 3)));
                    if (cs.equals("RUNNING") && tasks.size() == 1 && tasks.get(0).path("state").asText().equals("RUNNING")) return;
                }
                if (!worker.isAlive()) throw new Failure("worker " + tag + " exited with " + worker.exitValue());
                Thread.sleep(200);
            }
            throw new Failure("connector " + name + " and its task not RUNNING within " + ms / 1000 + " s: " + shorten(last));
        }

        /** The FileStreamSource offset of the file, from GET /connectors/NAME/offsets (KIP-875). */
        long connectorPosition(String name, Path file) throws Exception {
            HttpResponse<String> r = http("GET", "/connectors/" + enc(name) + "/offsets", null);
            check(r.statusCode() == 200, "GET /connectors/" + name + "/offsets: HTTP " + r.statusCode() + " " + shorten(r.body()));
            for (JsonNode o : JSON.readTree(r.body()).path("offsets"))
                if (o.path("partition").path("filename").asText().equals(file.toString()))
                    return o.path("offset").path("position").asLong();
            throw new Failure("GET /connectors/" + name + "/offsets has no offset for " + file + ": " + shorten(r.body()));
        }

        @Override
        public void close() {
            CLUSTERS.remove(this);
            if (worker == null || !worker.isAlive()) return;
            worker.destroy();   // SIGTERM: the worker stops its tasks and leaves the group
            try {
                if (!worker.waitFor(10, TimeUnit.SECONDS)) worker.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                worker.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Appends chunks of 5 lines every 20 ms to the file (one write per chunk, complete lines only). */
    static final class Writer implements AutoCloseable {
        final Path file;
        final String prefix;
        final AtomicBoolean stop = new AtomicBoolean();
        volatile int written;
        Thread thread;
        volatile Exception error;

        Writer(Path file, String prefix) { this.file = file; this.prefix = prefix; }

        void start() {
            thread = new Thread(() -> {
                try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.APPEND)) {
                    while (!stop.get()) {
                        StringBuilder sb = new StringBuilder();
                        for (int i = 0; i < 5; i++) sb.append(String.format("%s-%06d%n", prefix, written + i));
                        out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
                        out.flush();
                        written += 5;
                        Thread.sleep(20);
                    }
                } catch (InterruptedException e) {
                    // stopped
                } catch (Exception e) {
                    error = e;
                }
            }, "line-writer");
            thread.setDaemon(true);
            thread.start();
        }

        int count() { return written; }

        void stop() throws Exception {
            stop.set(true);
            if (thread != null) thread.join(5_000);
            if (error != null) throw error;
        }

        @Override
        public void close() throws Exception { stop(); }
    }

    /** A consumer without a group reading the topic's partitions from the beginning. */
    static final class Tail implements AutoCloseable {
        final KafkaConsumer<byte[], byte[]> consumer;
        final List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        final String topic, isolation;

        Tail(String topic, String isolation, int partitions) {
            this.topic = topic;
            this.isolation = isolation;
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, "compat-connect-" + isolation + "-" + TAILS.incrementAndGet());
            p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
            p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "2000");
            consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
        }

        void poll(long ms) { consumer.poll(Duration.ofMillis(ms)).forEach(records::add); }

        void until(int n, long ms) {
            long deadline = System.currentTimeMillis() + ms;
            while (records.size() < n) {
                if (System.currentTimeMillis() > deadline)
                    throw new Failure(isolation + " consumer of " + topic + ": " + records.size() + " records within " + ms / 1000 + " s, want " + n);
                poll(200);
            }
        }

        void quiet(long ms) {
            long deadline = System.currentTimeMillis() + ms;
            while (System.currentTimeMillis() < deadline) poll(100);
        }

        @Override
        public void close() { consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(2))); }
    }

    /** Every record of the topic up to its end offsets (read_committed: the last stable offsets). */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, String isolation, int partitions, long ms) {
        try (Tail t = new Tail(topic, isolation, partitions)) {
            Map<TopicPartition, Long> end = t.consumer.endOffsets(t.consumer.assignment());
            long deadline = System.currentTimeMillis() + ms;
            while (true) {
                boolean done = true;
                for (Map.Entry<TopicPartition, Long> e : end.entrySet())
                    if (t.consumer.position(e.getKey()) < e.getValue()) done = false;
                if (done) return t.records;
                if (System.currentTimeMillis() > deadline)
                    throw new Failure(isolation + " consumer of " + topic + " did not reach the end offsets " + end + " within " + ms / 1000 + " s");
                t.poll(200);
            }
        }
    }

    static Map<String, String> lastByKey(List<ConsumerRecord<byte[], byte[]>> recs) {
        Map<String, String> m = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : recs)
            if (r.key() != null) m.put(str(r.key()), r.value() == null ? null : str(r.value()));
        return m;
    }

    static long endOffset(String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            return c.endOffsets(List.of(tp)).get(tp);
        }
    }

    static String createTopic(String tag) throws Exception {
        String t = "compat-connect-" + tag + "-" + RUN;
        admin.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return t;
    }

    static void writeLines(Path file, List<String> lines) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (String l : lines) sb.append(l).append('\n');
        Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
    }

    static String str(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }
    static String enc(String s) { return URLEncoder.encode(s, StandardCharsets.UTF_8); }
    static String firstLines(String s, int n) { return s.lines().limit(n).collect(Collectors.joining(" | ")); }

    static String tail(Path log) {
        try {
            List<String> l = Files.readAllLines(log);
            List<String> errs = l.stream().filter(x -> x.contains("ERROR") || x.contains("Exception")).limit(3).toList();
            return (errs.isEmpty() ? l.subList(Math.max(0, l.size() - 3), l.size()) : errs) + " (log " + log + ")";
        } catch (IOException e) {
            return "(log " + log + ": " + e + ")";
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) { return s.getLocalPort(); }
    }

    static Set<Integer> advertisedApis(String hostPort) throws Exception {
        String[] hp = hostPort.split(",")[0].trim().split(":");
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 5000);
            s.setSoTimeout(5000);
            byte[] client = "rivulet-compat-connect".getBytes(StandardCharsets.UTF_8);
            ByteBuffer body = ByteBuffer.allocate(10 + client.length);
            body.putShort((short) 18).putShort((short) 0).putInt(1).putShort((short) client.length).put(client);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(body.capacity());
            out.write(body.array());
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] resp = new byte[in.readInt()];
            in.readFully(resp);
            ByteBuffer r = ByteBuffer.wrap(resp);
            r.getInt();
            short err = r.getShort();
            if (err != 0) throw new IllegalStateException("ApiVersions v0 error " + err);
            Set<Integer> keys = new TreeSet<>();
            for (int i = r.getInt(); i > 0; i--) {
                keys.add((int) r.getShort());
                r.getShort();
                r.getShort();
            }
            return keys;
        }
    }

    // ------------------------------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        List<String> only = new ArrayList<>();
        String groupsOpt = System.getenv("COMPAT_GROUPS");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--libs" -> libs = Path.of(args[++i]);
                case "--suite-dir" -> suiteDir = Path.of(args[++i]);
                case "--log-dir" -> logDir = Path.of(args[++i]);
                case "--only" -> only.add(args[++i]);
                case "--groups" -> groupsOpt = args[++i];
                case "--at-least-once" -> eos = false;
                case "--list" -> { register(); CASES.forEach(c -> System.out.println(c.name())); return; }
                default -> { System.err.println("unknown argument " + args[i]); System.exit(2); }
            }
        }
        register();
        work = Files.createTempDirectory("rivulet-compat-connect-");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (Cluster c : new ArrayList<>(CLUSTERS)) if (c.worker != null) c.worker.destroyForcibly();
        }));
        System.out.println("# client: Kafka Connect " + AppInfoParser.getVersion() + " (distributed, exactly.once.source.support="
            + (eos ? "enabled" : "disabled (--at-least-once)") + "; "
            + "FileStreamSourceConnector 4.3.0; Java " + System.getProperty("java.version") + ")");
        System.out.println("# bootstrap: " + bootstrap);
        try {
            apis = advertisedApis(bootstrap);
        } catch (Exception e) {
            System.out.println("# ApiVersions to " + bootstrap + " failed: " + e);
        }
        if (groupsOpt != null && !groupsOpt.isEmpty() && !groupsOpt.equals("auto"))
            groups = List.of("1", "yes", "true", "on").contains(groupsOpt.toLowerCase());
        else
            groups = apis.containsAll(List.of(10, 11, 12, 14));
        System.out.flush();
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        admin = Admin.create(ap);
        int timeoutsInARow = 0;
        try {
            for (Case c : CASES) {
                if (!only.isEmpty() && only.stream().noneMatch(c.name()::contains)) continue;
                if (timeoutsInARow >= 3) {
                    System.out.println("FAIL " + c.name() + ": not run: " + timeoutsInARow + " cases in a row timed out");
                    continue;
                }
                ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
                    Thread t = new Thread(r, "case-" + c.name());
                    t.setDaemon(true);
                    return t;
                });
                long t0 = System.currentTimeMillis();
                log("case " + c.name());
                Future<?> f = ex.submit(() -> { c.body().run(); return null; });
                String line;
                try {
                    f.get(c.timeoutS(), TimeUnit.SECONDS);
                    line = "PASS " + c.name();
                    timeoutsInARow = 0;
                } catch (TimeoutException te) {
                    f.cancel(true);
                    line = "FAIL " + c.name() + ": timed out after " + c.timeoutS() + " s";
                    timeoutsInARow++;
                } catch (ExecutionException ee) {
                    Throwable e = ee.getCause();
                    timeoutsInARow = 0;
                    if (e instanceof Skip) line = "SKIP " + c.name() + ": " + e.getMessage();
                    else if (e instanceof Failure) line = "FAIL " + c.name() + ": " + e.getMessage();
                    else {
                        e.printStackTrace();
                        line = "FAIL " + c.name() + ": " + e;
                    }
                }
                ex.shutdownNow();
                if (line.startsWith("FAIL") && c.name().equals("connect_eos_file_source") && clusterA != null) {
                    clusterA.close();   // a fresh worker for the next case
                    clusterA = null;
                }
                long took = System.currentTimeMillis() - t0;
                log(line + " (" + took + " ms)");
                System.out.println(line.replace('\n', ' '));
                System.out.println("#   " + c.name() + " took " + String.format("%.1f", took / 1000.0) + " s");
                System.out.flush();
            }
        } finally {
            for (Cluster c : new ArrayList<>(CLUSTERS)) c.close();
            admin.close(Duration.ofSeconds(5));
            try (var s = Files.walk(work)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        System.exit(0);
    }
}
