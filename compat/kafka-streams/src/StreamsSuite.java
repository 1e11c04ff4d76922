import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
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
import java.util.function.Predicate;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.Stores;

/**
 * Kafka Streams 3.9.1 (stock kafka-streams with kafka-clients 3.9.1, in-memory state stores only, no
 * RocksDB) against the broker under test. Stateless, counting, windowed and join topologies run inside
 * this driver; the applications that are closed or SIGKILLed run as child JVMs (CountApp, and this
 * class with --child-tag). Checks use kafka-clients 3.9.1 (producer, read_committed consumers, Admin).
 *
 *   java -cp classes:streams-libs/* StreamsSuite --bootstrap HOST:PORT --log-dir DIR [--only S]
 *   java -cp classes:streams-libs/* StreamsSuite --child-tag TAG --bootstrap .. --input T --output T
 *        --application-id ID --state-dir DIR [key=value ...]       (the rebalance case's instances)
 *
 * Output: the compat protocol (PASS / FAIL / SKIP lines), filtered by lib/harness.py --summarize.
 */
public class StreamsSuite {
    static String bootstrap = "127.0.0.1:9092";
    static Path logDir, work;
    static Admin admin;
    static Set<Integer> apis = new TreeSet<>();
    static boolean groups = true;
    static final Random RND = new Random();
    static final String RUN = Long.toString(System.currentTimeMillis() / 1000, 36) + Integer.toString(1296 + RND.nextInt(45000), 36);
    static final List<Child> CHILDREN = Collections.synchronizedList(new ArrayList<>());
    static final List<KafkaStreams> LOCAL = Collections.synchronizedList(new ArrayList<>());
    static final String NO_GROUPS = "broker does not advertise consumer-group APIs (every Streams application is a consumer group)";
    // event time of the windowed and join cases: a multiple of 10 s, so windows start at BASE; an hour
    // ago, well inside retention.ms (7 days): records with older timestamps are deleted by time
    // retention (kfake did so within seconds with a fixed BASE in 2023)
    static final long BASE = (System.currentTimeMillis() - 3_600_000L) / 10_000 * 10_000;
    // a dead member leaves the group after this (the broker's group.min.session.timeout.ms default)
    static final String SESSION_MS = "6000";

    interface Body { void run() throws Exception; }
    record Case(String name, int timeoutS, Body body) {}
    static final List<Case> CASES = new ArrayList<>();

    static final class Failure extends RuntimeException { Failure(String m) { super(m); } }
    static final class Skip extends RuntimeException { Skip(String m) { super(m); } }

    static void check(boolean cond, String msg) { if (!cond) throw new Failure(msg); }
    static void checkEq(Object got, Object want, String what) {
        if (!Objects.equals(got, want)) throw new Failure(what + ": got " + shorten(got) + ", want " + shorten(want));
    }
    static String shorten(Object o) { String s = String.valueOf(o); return s.length() > 300 ? s.substring(0, 300) + "...(" + s.length() + " chars)" : s; }
    static void info(String s) { System.out.println("#   " + s); System.out.flush(); }
    static void log(String s) { System.err.println(java.time.LocalTime.now() + " [driver] " + s); }

    // ------------------------------------------------------------------------------------- cases

    static void register() {
        // time limits: about 3-4x what each case takes on 2 cores against Rivulet or kfake; the suite
        // takes about 2 minutes, the limits add up to 6 minutes
        CASES.add(new Case("streams_stateless", 45, StreamsSuite::stateless));
        CASES.add(new Case("streams_count_and_windowed", 60, StreamsSuite::countAndWindowed));
        CASES.add(new Case("streams_table_join", 45, StreamsSuite::tableJoin));
        CASES.add(new Case("streams_two_instances_rebalance", 100, StreamsSuite::twoInstances));
        CASES.add(new Case("streams_eos_kill9", 120, StreamsSuite::eosKill9));
    }

    /**
     * filter + map (new key, new value) from a 3-partition topic to another: 300 records produced with
     * kafka-clients 3.9.1 (keys k0..k6, event timestamps BASE + i); the output holds exactly the 200
     * records whose value is not a multiple of 3, as key K<n>, value "v<2i>", with the input record's
     * timestamp, each once, in input order per key.
     */
    static void stateless() throws Exception {
        needGroups();
        String in = createTopic("stateless-in", 3), out = createTopic("stateless-out", 3);
        List<ProducerRecord<String, String>> input = new ArrayList<>();
        Map<String, List<String>> want = new TreeMap<>();
        Map<String, Long> wantTs = new HashMap<>();
        for (int i = 0; i < 300; i++) {
            String k = "k" + (i % 7);
            input.add(new ProducerRecord<>(in, null, BASE + i, k, Integer.toString(i)));
            if (i % 3 != 0) {
                want.computeIfAbsent(k.toUpperCase(), x -> new ArrayList<>()).add("v" + 2 * i);
                wantTs.put("v" + 2 * i, BASE + i);
            }
        }
        produce(input);
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
         .filter((k, v) -> Integer.parseInt(v) % 3 != 0)
         .map((k, v) -> KeyValue.pair(k.toUpperCase(), "v" + 2 * Integer.parseInt(v)))
         .to(out, Produced.with(Serdes.String(), Serdes.String()));
        try (Local app = new Local("stateless", b, Map.of())) {
            app.awaitRunning(30_000);
            List<ConsumerRecord<String, String>> got = await(out, "read_uncommitted", 200, 30_000);
            Map<String, List<String>> byKey = new TreeMap<>();
            for (ConsumerRecord<String, String> r : got) {
                byKey.computeIfAbsent(r.key(), x -> new ArrayList<>()).add(r.value());
                checkEq(r.timestamp(), wantTs.get(r.value()), "timestamp of output " + r.key() + "=" + r.value());
            }
            checkEq(byKey, want, "output records by key, in order");
        }
    }

    /**
     * One topology with three stateful branches over a 2-partition topic of 120 records (keys a..e,
     * event times BASE + 250 ms * i, in order), every store in memory, record cache off (every update
     * is forwarded):
     * groupByKey().count() -> per key exactly the counts 1..n in order; a 10 s tumbling-window count on
     * event time -> per key and window start exactly 1..n; groupBy(new key "mod3-" + value % 3; mod3-2 hashes to the other partition) with
     * Grouped "regroup" (a repartition topic) .count() -> per new key exactly 1..n. Then the internal
     * topics Streams created: the two key-value changelogs with cleanup.policy=compact, the window
     * changelog with compact,delete and retention.ms = window size + grace + 1 day, the repartition topic
     * with cleanup.policy=delete, retention.ms=-1, segment.bytes=52428800 (all DYNAMIC_TOPIC_CONFIG),
     * each with the source's 2 partitions; and the repartition topic purged (DeleteRecords after
     * commit, repartition.purge.interval.ms=100): its log start offsets reach its end offsets.
     */
    static void countAndWindowed() throws Exception {
        needGroups();
        String in = createTopic("count-in", 2);
        String outCount = createTopic("count-out", 2), outWin = createTopic("count-win-out", 2), outRe = createTopic("count-regroup-out", 2);
        List<ProducerRecord<String, String>> input = new ArrayList<>();
        Random r = new Random(42);
        Map<String, Integer> wantCount = new TreeMap<>(), wantWin = new TreeMap<>(), wantRe = new TreeMap<>();
        for (int i = 0; i < 120; i++) {
            String k = String.valueOf((char) ('a' + r.nextInt(5)));
            long ts = BASE + 250L * i;
            input.add(new ProducerRecord<>(in, null, ts, k, Integer.toString(i)));
            wantCount.merge(k, 1, Integer::sum);
            wantWin.merge(k + "@" + (BASE + (ts - BASE) / 10_000 * 10_000), 1, Integer::sum);
            wantRe.merge("mod3-" + (i % 3), 1, Integer::sum);
        }
        produce(input);
        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> s = b.stream(in, Consumed.with(Serdes.String(), Serdes.String()));
        s.groupByKey()
         .count(Materialized.as(Stores.inMemoryKeyValueStore("counts-store")))
         .toStream().mapValues(v -> Long.toString(v)).to(outCount, Produced.with(Serdes.String(), Serdes.String()));
        Duration retention = Duration.ofHours(1);
        s.groupByKey()
         .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofMinutes(1)))
         .count(Materialized.as(Stores.inMemoryWindowStore("win-store", retention, Duration.ofSeconds(10), false)))
         .toStream((wk, v) -> wk.key() + "@" + wk.window().start())
         .mapValues(v -> Long.toString(v)).to(outWin, Produced.with(Serdes.String(), Serdes.String()));
        s.groupBy((k, v) -> "mod3-" + (Integer.parseInt(v) % 3), Grouped.with("regroup", Serdes.String(), Serdes.String()))
         .count(Materialized.as(Stores.inMemoryKeyValueStore("regroup-store")))
         .toStream().mapValues(v -> Long.toString(v)).to(outRe, Produced.with(Serdes.String(), Serdes.String()));
        try (Local app = new Local("count", b, Map.of(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, "100"))) {
            app.awaitRunning(30_000);
            checkCounts(await(outCount, "read_uncommitted", 120, 30_000), wantCount, "groupByKey().count()");
            checkCounts(await(outWin, "read_uncommitted", 120, 20_000), wantWin, "10 s tumbling-window count");
            checkCounts(await(outRe, "read_uncommitted", 120, 20_000), wantRe, "groupBy(new key).count() through the repartition topic");
            String id = app.appId;
            String cl = id + "-counts-store-changelog", wcl = id + "-win-store-changelog", rcl = id + "-regroup-store-changelog";
            String rep = id + "-regroup-repartition";
            Set<String> internal = admin.listTopics().names().get(30, TimeUnit.SECONDS).stream()
                .filter(t -> t.startsWith(id + "-")).collect(Collectors.toCollection(TreeSet::new));
            checkEq(internal, new TreeSet<>(List.of(cl, wcl, rcl, rep)), "internal topics of " + id);
            Map<String, TopicDescription> desc = admin.describeTopics(internal).allTopicNames().get(30, TimeUnit.SECONDS);
            for (String t : internal) checkEq(desc.get(t).partitions().size(), 2, "partitions of " + t);
            Map<String, Map<String, String>> want = new LinkedHashMap<>();
            want.put(cl, Map.of("cleanup.policy", "compact"));
            want.put(rcl, Map.of("cleanup.policy", "compact"));
            // WindowStoreMaterializer.retentionPeriod(): Materialized.withRetention, else window size +
            // grace (the supplied store's own retention is not used); plus
            // windowstore.changelog.additional.retention.ms (1 day)
            want.put(wcl, Map.of("cleanup.policy", "compact,delete", "retention.ms", Long.toString(10_000 + 60_000 + 86_400_000L)));
            want.put(rep, Map.of("cleanup.policy", "delete", "retention.ms", "-1", "segment.bytes", "52428800"));
            checkTopicConfigs(want);
            // changelogs hold the final counts (8-byte longs)
            Map<String, Long> changelog = new TreeMap<>();
            for (ConsumerRecord<byte[], byte[]> rec : readAllBytes(cl, "read_uncommitted", 10_000))
                changelog.put(new String(rec.key(), StandardCharsets.UTF_8), rec.value() == null ? null : ByteBuffer.wrap(rec.value()).getLong());
            checkEq(changelog, wantCount.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> (long) e.getValue(), (x, y) -> x, TreeMap::new)),
                "last value per key in " + cl);
            // the repartition topic: 120 records in, all purged once committed
            List<TopicPartition> reps = List.of(new TopicPartition(rep, 0), new TopicPartition(rep, 1));
            Map<TopicPartition, Long> end = endOffsets(reps), start = null;
            checkEq(end.values().stream().mapToLong(Long::longValue).sum(), 120L, "records in " + rep + " (end offsets " + end + ")");
            check(end.values().stream().allMatch(x -> x > 0), "both partitions of " + rep + " hold records: end offsets " + end);
            long deadline = System.currentTimeMillis() + 20_000;
            while (System.currentTimeMillis() < deadline) {
                start = beginningOffsets(reps);
                if (start.equals(end)) break;
                Thread.sleep(200);
            }
            checkEq(start, end, "log start offsets of " + rep + " (Streams purges committed repartition records with DeleteRecords)");
            info("streams_count_and_windowed: internal topics " + internal + "; " + rep + " purged up to " + start);
        }
    }

    /**
     * KStream-KTable inner join, both topics 2 partitions (co-partitioned): the table topic (users
     * u0..u5 -> name, at BASE; then at BASE + 50 s u1 renamed and u5 deleted by a tombstone), the stream
     * (60 orders for u0..u6 at BASE + 1 s .. 40 s and BASE + 60 s ..), the table materialized in memory.
     * Streams processes each task's records in timestamp order, so the output holds exactly: each order
     * of a user present in the table at the order's time, as "order-i by NAME" (the new name after the
     * rename), none for u6 (never in the table) nor u5 after its tombstone; in order per key.
     */
    static void tableJoin() throws Exception {
        needGroups();
        String users = createTopic("join-users", 2), orders = createTopic("join-orders", 2), out = createTopic("join-out", 2);
        List<ProducerRecord<String, String>> input = new ArrayList<>();
        Map<String, String> table = new HashMap<>();
        for (int u = 0; u < 6; u++) {
            input.add(new ProducerRecord<>(users, null, BASE, "u" + u, "name" + u));
            table.put("u" + u, "name" + u);
        }
        input.add(new ProducerRecord<>(users, null, BASE + 50_000, "u1", "renamed1"));
        input.add(new ProducerRecord<>(users, null, (Long) (BASE + 50_000), "u5", (String) null));
        Map<String, List<String>> want = new TreeMap<>();
        int n = 0;
        for (int i = 0; i < 60; i++) {
            long ts = i < 40 ? BASE + 1000L * (i + 1) : BASE + 60_000 + i;
            if (i == 40) { table.put("u1", "renamed1"); table.remove("u5"); }
            String k = "u" + (i % 7);
            input.add(new ProducerRecord<>(orders, null, ts, k, "order-" + i));
            if (table.containsKey(k)) {
                want.computeIfAbsent(k, x -> new ArrayList<>()).add("order-" + i + " by " + table.get(k));
                n++;
            }
        }
        produce(input);
        StreamsBuilder b = new StreamsBuilder();
        KTable<String, String> t = b.table(users, Consumed.with(Serdes.String(), Serdes.String()),
            Materialized.as(Stores.inMemoryKeyValueStore("users-store")));
        b.stream(orders, Consumed.with(Serdes.String(), Serdes.String()))
         .join(t, (order, name) -> order + " by " + name)
         .to(out, Produced.with(Serdes.String(), Serdes.String()));
        try (Local app = new Local("join", b, Map.of(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, "1000"))) {
            app.awaitRunning(30_000);
            List<ConsumerRecord<String, String>> got = await(out, "read_uncommitted", n, 30_000);
            Map<String, List<String>> byKey = new TreeMap<>();
            for (ConsumerRecord<String, String> r : got) byKey.computeIfAbsent(r.key(), x -> new ArrayList<>()).add(r.value());
            checkEq(byKey, want, "join output by key, in order");
            info("streams_table_join: " + n + " of 60 orders joined");
        }
    }

    /**
     * Two instances of one application (child JVMs, same application.id, exactly_once_v2,
     * session.timeout.ms=6000) on a 4-partition topic, each tagging what it processes: both end up
     * with 2 partitions (disjoint, all 4 covered); 200 records are processed exactly once, each by the
     * instance owning its partition; instance B is then closed (SIGTERM: KafkaStreams.close(), which
     * sends no LeaveGroup, as Streams never does for dynamic members), A takes over all 4 partitions
     * after B's session times out, and 200 more records are processed exactly once, all by A.
     */
    static void twoInstances() throws Exception {
        needGroups();
        needTransactions();
        String in = createTopic("rebalance-in", 4), out = createTopic("rebalance-out", 4);
        String appId = "compat-streams-rebalance-" + RUN;
        List<TopicPartition> inParts = List.of(0, 1, 2, 3).stream().map(p -> new TopicPartition(in, p)).toList();
        Child a = childTag("A", appId, in, out), bb = childTag("B", appId, in, out);
        try (a; bb) {
            long t0 = System.currentTimeMillis();
            long deadline = t0 + 60_000;
            List<String> pa = null, pb = null;
            while (System.currentTimeMillis() < deadline) {
                pa = a.lastPartitions();
                pb = bb.lastPartitions();
                if (pa != null && pb != null && pa.size() == 2 && pb.size() == 2
                    && new TreeSet<>(concat(pa, pb)).size() == 4 && a.lastState().equals("RUNNING") && bb.lastState().equals("RUNNING")) break;
                a.checkAlive();
                bb.checkAlive();
                Thread.sleep(200);
            }
            check(pa != null && pb != null && pa.size() == 2 && pb.size() == 2 && new TreeSet<>(concat(pa, pb)).size() == 4,
                "within 60 s the two instances did not settle on 2 + 2 partitions: A " + pa + " (" + a.lastState() + "), B " + pb + " (" + bb.lastState() + ")");
            info("streams_two_instances_rebalance: A " + pa + ", B " + pb + " after " + (System.currentTimeMillis() - t0) + " ms");
            Map<String, String> owner = new HashMap<>();
            for (String p : pa) owner.put(p, "A");
            for (String p : pb) owner.put(p, "B");
            List<ProducerRecord<String, String>> phase1 = new ArrayList<>();
            for (int i = 0; i < 200; i++) phase1.add(new ProducerRecord<>(in, "r" + (i % 23), "one-" + i));
            Map<String, String> placed = produce(phase1);   // value -> "topic-partition"
            List<ConsumerRecord<String, String>> got = await(out, "read_committed", 200, 30_000);
            Map<String, String> byValue = exactlyOnce(got, "phase 1");
            for (Map.Entry<String, String> e : placed.entrySet())
                checkEq(byValue.get(e.getKey()), owner.get(e.getValue()), "instance that processed " + e.getKey() + " (input " + e.getValue() + ")");
            check(byValue.containsValue("A") && byValue.containsValue("B"), "phase 1 processed by A and B: " + new TreeSet<>(byValue.values()));
            long tClose = System.currentTimeMillis();
            bb.close();
            info("streams_two_instances_rebalance: B closed (exit " + bb.proc.exitValue() + ") in " + (System.currentTimeMillis() - tClose) + " ms");
            List<ProducerRecord<String, String>> phase2 = new ArrayList<>();
            for (int i = 0; i < 200; i++) phase2.add(new ProducerRecord<>(in, "r" + (i % 23), "two-" + i));
            produce(phase2);
            got = await(out, "read_committed", 400, 45_000);
            byValue = exactlyOnce(got, "phases 1 and 2");
            for (int i = 0; i < 200; i++) checkEq(byValue.get("two-" + i), "A", "instance that processed two-" + i);
            List<String> last = a.lastPartitions();
            checkEq(last, inParts.stream().map(TopicPartition::toString).sorted().toList(), "A's partitions after B left");
            info("streams_two_instances_rebalance: A owned all 4 partitions and caught up " + (System.currentTimeMillis() - tClose) + " ms after B's close");
        }
    }

    /**
     * CountApp (exactly_once_v2, in-memory store, cache off) as a child JVM; 3000 records for 10 keys
     * are produced over about 6 s; once 600 counts are committed, at a moment when one of its transactions
     * holds output records (ListOffsets: high watermark above the last stable offset) the JVM is SIGKILLed, its state
     * directory deleted, and it is started again with the same application.id: it restores the store
     * from the changelog (its restore listener reports the records restored) and finishes. Read with
     * read_committed, the output holds for every key exactly the counts 1, 2, ..., n (n = the key's
     * input records): none missing, none twice, in order; read_uncommitted also sees the aborted records
     * of the dead instance's transaction (the restart uses a new transactional id, since Streams' process id
     * is random without persistent stores, so the broker aborts it when transaction.timeout.ms = 5 s
     * expires). The changelog's last committed value per key is n.
     */
    static void eosKill9() throws Exception {
        needGroups();
        needTransactions();
        String in = createTopic("eos-in", 2), out = createTopic("eos-out", 2);
        String appId = "compat-streams-eos-" + RUN;
        Path state = work.resolve("eos-state");
        Map<String, Integer> want = new TreeMap<>();
        List<ProducerRecord<String, String>> input = new ArrayList<>();
        for (int i = 0; i < 3000; i++) {
            String k = "key" + ((i * 7 + i / 11) % 10);
            input.add(new ProducerRecord<>(in, k, Integer.toString(i)));
            want.merge(k, 1, Integer::sum);
        }
        Child c1 = childCount("1", appId, in, out, state);
        AtomicBoolean stop = new AtomicBoolean();
        Thread producer = null;
        final Exception[] perr = new Exception[1];
        Child c2 = null;
        try (c1) {
            c1.awaitState("RUNNING", 45_000);
            producer = new Thread(() -> {
                try (KafkaProducer<String, String> p = producer()) {
                    for (int i = 0; i < input.size() && !stop.get(); i += 50) {
                        for (ProducerRecord<String, String> rec : input.subList(i, Math.min(i + 50, input.size()))) p.send(rec);
                        p.flush();
                        Thread.sleep(100);
                    }
                } catch (Exception e) {
                    perr[0] = e;
                }
            }, "eos-producer");
            producer.setDaemon(true);
            producer.start();
            try (Tail t = new Tail(out, "read_committed")) {
                t.until(600, 30_000);
            }
            // kill while a transaction of the application holds output records (high watermark above
            // the last stable offset), so the restart has to wait for it to be aborted
            List<TopicPartition> outParts = List.of(new TopicPartition(out, 0), new TopicPartition(out, 1));
            boolean open = false;
            long until = System.currentTimeMillis() + 10_000;
            while (!open && System.currentTimeMillis() < until) {
                Map<TopicPartition, Long> hw = latest(outParts, IsolationLevel.READ_UNCOMMITTED), lso = latest(outParts, IsolationLevel.READ_COMMITTED);
                open = !hw.equals(lso);
            }
            long tKill = System.currentTimeMillis();
            c1.kill9();
            check(open, "within 10 s no output partition had its high watermark above its last stable offset (no open transaction with records seen)");
            info("streams_eos_kill9: SIGKILLed the application after >= 600 committed counts, with a transaction open on the output");
            deleteTree(state);
            c2 = childCount("2", appId, in, out, state);
            c2.awaitState("RUNNING", 60_000);
            info("streams_eos_kill9: restarted instance RUNNING " + (System.currentTimeMillis() - tKill) + " ms after the kill");
            producer.join(30_000);
            if (perr[0] != null) throw perr[0];
            check(!producer.isAlive(), "the producer did not finish");
            long deadline = System.currentTimeMillis() + 60_000;
            Map<String, Long> max = new TreeMap<>();
            List<ConsumerRecord<String, String>> got = List.of();
            while (System.currentTimeMillis() < deadline) {
                got = readAll(out, "read_committed", 10_000);
                max.clear();
                for (ConsumerRecord<String, String> r : got) max.merge(r.key(), Long.parseLong(r.value()), Math::max);
                boolean done = true;
                for (Map.Entry<String, Integer> e : want.entrySet()) if (max.getOrDefault(e.getKey(), 0L) < e.getValue()) done = false;
                if (done) break;
                c2.checkAlive();
                Thread.sleep(500);
            }
            Thread.sleep(1_000);
            got = readAll(out, "read_committed", 10_000);
            Map<String, List<Long>> seq = new TreeMap<>();
            for (ConsumerRecord<String, String> r : got) seq.computeIfAbsent(r.key(), x -> new ArrayList<>()).add(Long.parseLong(r.value()));
            for (Map.Entry<String, Integer> e : want.entrySet()) {
                List<Long> s = seq.getOrDefault(e.getKey(), List.of());
                List<Long> w = new ArrayList<>();
                for (long i = 1; i <= e.getValue(); i++) w.add(i);
                if (!s.equals(w)) {
                    Map<Long, Integer> times = new TreeMap<>();
                    for (Long x : s) times.merge(x, 1, Integer::sum);
                    List<Long> dup = times.entrySet().stream().filter(x -> x.getValue() > 1).map(Map.Entry::getKey).toList();
                    List<Long> missing = w.stream().filter(x -> !times.containsKey(x)).toList();
                    throw new Failure("read_committed counts of " + e.getKey() + ": " + s.size() + " records, want 1.." + e.getValue()
                        + "; duplicated " + shorten(dup) + ", missing " + shorten(missing) + ", max " + s.stream().max(Long::compare).orElse(0L));
                }
            }
            check(seq.keySet().equals(want.keySet()), "output keys " + seq.keySet() + ", want " + want.keySet());
            int uncommitted = readAll(out, "read_uncommitted", 10_000).size();
            long restored = 0;
            for (String l : c2.markers()) {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("^@@ restored (\\d+) records of counts from ").matcher(l);
                if (m.find()) restored += Long.parseLong(m.group(1));
            }
            check(uncommitted > got.size(), "read_uncommitted shows no aborted records (" + uncommitted + " records, "
                + got.size() + " committed): the transaction open at the kill should have been aborted");
            check(restored > 0, "the restarted instance restored no records of its store from the changelog: " + c2.markers());
            String cl = appId + "-counts-changelog";
            checkTopicConfigs(Map.of(cl, Map.of("cleanup.policy", "compact")));
            Map<String, Long> changelog = new TreeMap<>();
            for (ConsumerRecord<byte[], byte[]> rec : readAllBytes(cl, "read_committed", 10_000))
                changelog.put(new String(rec.key(), StandardCharsets.UTF_8), ByteBuffer.wrap(rec.value()).getLong());
            checkEq(changelog, want.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> (long) e.getValue(), (x, y) -> x, TreeMap::new)),
                "last committed value per key in " + cl);
            info("streams_eos_kill9: " + got.size() + " committed counts for 3000 records (read_uncommitted: " + uncommitted
                + ", so " + (uncommitted - got.size()) + " aborted); the restarted instance restored " + restored + " changelog records");
        } finally {
            stop.set(true);
            if (c2 != null) c2.close();
        }
    }

    // ------------------------------------------------------------------------------------- helpers

    static void needGroups() { if (!groups) throw new Skip(NO_GROUPS); }
    static void needTransactions() {
        if (!apis.isEmpty() && !(apis.contains(22) && apis.contains(26)))
            throw new Failure("broker does not advertise InitProducerId (22) and EndTxn (26): exactly_once_v2 needs transactions");
    }

    static List<String> concat(List<String> a, List<String> b) { List<String> l = new ArrayList<>(a); l.addAll(b); return l; }

    /** value -> tag ("A" / "B") from output values "TAG:value", each value exactly once. */
    static Map<String, String> exactlyOnce(List<ConsumerRecord<String, String>> got, String what) {
        Map<String, String> m = new HashMap<>();
        List<String> dup = new ArrayList<>();
        for (ConsumerRecord<String, String> r : got) {
            String[] tv = r.value().split(":", 2);
            if (m.put(tv[1], tv[0]) != null) dup.add(tv[1]);
        }
        check(dup.isEmpty(), what + ": records processed twice: " + shorten(dup));
        return m;
    }

    /** Per key, the forwarded counts must be exactly 1..n in order (cache off: every update forwarded). */
    static void checkCounts(List<ConsumerRecord<String, String>> got, Map<String, Integer> want, String what) {
        Map<String, List<Long>> seq = new TreeMap<>();
        for (ConsumerRecord<String, String> r : got) seq.computeIfAbsent(r.key(), x -> new ArrayList<>()).add(Long.parseLong(r.value()));
        Map<String, List<Long>> w = new TreeMap<>();
        for (Map.Entry<String, Integer> e : want.entrySet()) {
            List<Long> l = new ArrayList<>();
            for (long i = 1; i <= e.getValue(); i++) l.add(i);
            w.put(e.getKey(), l);
        }
        checkEq(seq, w, what + ": counts per key, in order");
    }

    static void checkTopicConfigs(Map<String, Map<String, String>> want) throws Exception {
        List<ConfigResource> res = want.keySet().stream().map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t)).toList();
        Map<ConfigResource, Config> cfg = admin.describeConfigs(res).all().get(30, TimeUnit.SECONDS);
        for (ConfigResource r : res)
            for (Map.Entry<String, String> e : want.get(r.name()).entrySet()) {
                ConfigEntry ce = cfg.get(r).get(e.getKey());
                check(ce != null, "DescribeConfigs of " + r.name() + " lists no " + e.getKey());
                checkEq(ce.value(), e.getValue(), e.getKey() + " of " + r.name());
                checkEq(ce.source(), ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "source of " + e.getKey() + " of " + r.name());
            }
    }

    static String createTopic(String tag, int partitions) throws Exception {
        String t = "compat-streams-" + tag + "-" + RUN;
        admin.createTopics(List.of(new NewTopic(t, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return t;
    }

    static KafkaProducer<String, String> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    /** Produces in order, waits for every ack; returns value -> "topic-partition" where it landed. */
    static Map<String, String> produce(List<ProducerRecord<String, String>> recs) throws Exception {
        Map<String, String> placed = new HashMap<>();
        try (KafkaProducer<String, String> p = producer()) {
            List<Future<org.apache.kafka.clients.producer.RecordMetadata>> fs = new ArrayList<>();
            for (ProducerRecord<String, String> r : recs) fs.add(p.send(r));
            for (int i = 0; i < fs.size(); i++) {
                var md = fs.get(i).get(30, TimeUnit.SECONDS);
                if (recs.get(i).value() != null) placed.put(recs.get(i).value(), md.topic() + "-" + md.partition());
            }
        }
        return placed;
    }

    static Map<TopicPartition, Long> endOffsets(List<TopicPartition> tps) {
        try (KafkaConsumer<byte[], byte[]> c = bytesConsumer("read_uncommitted")) { return sortTp(c.endOffsets(tps)); }
    }
    static Map<TopicPartition, Long> latest(List<TopicPartition> tps, IsolationLevel iso) throws Exception {
        Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> q = new HashMap<>();
        for (TopicPartition tp : tps) q.put(tp, org.apache.kafka.clients.admin.OffsetSpec.latest());
        Map<TopicPartition, Long> m = new HashMap<>();
        admin.listOffsets(q, new org.apache.kafka.clients.admin.ListOffsetsOptions(iso)).all().get(10, TimeUnit.SECONDS)
             .forEach((tp, r) -> m.put(tp, r.offset()));
        return sortTp(m);
    }
    static Map<TopicPartition, Long> beginningOffsets(List<TopicPartition> tps) {
        try (KafkaConsumer<byte[], byte[]> c = bytesConsumer("read_uncommitted")) { return sortTp(c.beginningOffsets(tps)); }
    }
    static Map<TopicPartition, Long> sortTp(Map<TopicPartition, Long> m) {
        Map<TopicPartition, Long> t = new TreeMap<>(java.util.Comparator.comparing(TopicPartition::toString));
        t.putAll(m);
        return t;
    }

    static KafkaConsumer<byte[], byte[]> bytesConsumer(String isolation) {
        Properties p = consumerProps(isolation);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }
    static Properties consumerProps(String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
        return p;
    }

    /** Reads the topic (all partitions, from the beginning) until n records, then 1 s more: extras count. */
    static List<ConsumerRecord<String, String>> await(String topic, String isolation, int n, long ms) {
        try (Tail t = new Tail(topic, isolation)) {
            t.until(n, ms);
            t.quiet(1_000);
            check(t.records.size() == n, topic + " (" + isolation + "): " + t.records.size() + " records, want exactly " + n
                + ": " + shorten(t.records.stream().map(r -> r.key() + "=" + r.value()).toList()));
            return t.records;
        }
    }

    /** Every record of the topic up to its end offsets (read_committed: the last stable offsets). */
    static List<ConsumerRecord<String, String>> readAll(String topic, String isolation, long ms) {
        try (Tail t = new Tail(topic, isolation)) {
            Map<TopicPartition, Long> end = t.consumer.endOffsets(t.consumer.assignment());
            long deadline = System.currentTimeMillis() + ms;
            while (true) {
                boolean done = true;
                for (Map.Entry<TopicPartition, Long> e : end.entrySet()) if (t.consumer.position(e.getKey()) < e.getValue()) done = false;
                if (done) return t.records;
                if (System.currentTimeMillis() > deadline)
                    throw new Failure(isolation + " consumer of " + topic + " did not reach the end offsets " + end + " within " + ms / 1000 + " s");
                t.poll(200);
            }
        }
    }

    static List<ConsumerRecord<byte[], byte[]>> readAllBytes(String topic, String isolation, long ms) {
        try (KafkaConsumer<byte[], byte[]> c = bytesConsumer(isolation)) {
            List<TopicPartition> tps = c.partitionsFor(topic).stream().map(pi -> new TopicPartition(topic, pi.partition())).toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            long deadline = System.currentTimeMillis() + ms;
            while (true) {
                boolean done = true;
                for (Map.Entry<TopicPartition, Long> e : end.entrySet()) if (c.position(e.getKey()) < e.getValue()) done = false;
                if (done) return out;
                if (System.currentTimeMillis() > deadline)
                    throw new Failure(isolation + " consumer of " + topic + " did not reach the end offsets " + end + " within " + ms / 1000 + " s");
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
    }

    /** A consumer without a group reading every partition of the topic from the beginning. */
    static final class Tail implements AutoCloseable {
        final KafkaConsumer<String, String> consumer;
        final List<ConsumerRecord<String, String>> records = new ArrayList<>();
        final String topic, isolation;

        Tail(String topic, String isolation) {
            this.topic = topic;
            this.isolation = isolation;
            consumer = new KafkaConsumer<>(consumerProps(isolation), new StringDeserializer(), new StringDeserializer());
            List<PartitionInfo> parts = consumer.partitionsFor(topic, Duration.ofSeconds(10));
            List<TopicPartition> tps = parts.stream().map(pi -> new TopicPartition(topic, pi.partition())).toList();
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
        public void close() { consumer.close(Duration.ofSeconds(2)); }
    }

    /** A KafkaStreams instance in this JVM: fresh application id and state directory, cache off. */
    static final class Local implements AutoCloseable {
        final KafkaStreams streams;
        final String appId;
        volatile KafkaStreams.State state = KafkaStreams.State.CREATED;
        volatile Throwable error;

        Local(String tag, StreamsBuilder b, Map<String, String> extra) throws IOException {
            appId = "compat-streams-" + tag + "-" + RUN;
            Properties p = new Properties();
            p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
            p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(StreamsConfig.STATE_DIR_CONFIG, Files.createDirectories(work.resolve("state-" + tag)).toString());
            p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
            p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
            p.putAll(extra);
            streams = new KafkaStreams(b.build(), p);
            streams.setStateListener((now, before) -> { state = now; log(appId + ": " + before + " -> " + now); });
            streams.setUncaughtExceptionHandler(e -> {
                error = e;
                log(appId + ": uncaught " + e);
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            LOCAL.add(streams);
            streams.start();
        }

        void awaitRunning(long ms) throws InterruptedException {
            long deadline = System.currentTimeMillis() + ms;
            while (state != KafkaStreams.State.RUNNING) {
                if (error != null) throw new Failure(appId + ": stream thread died: " + error);
                if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.NOT_RUNNING)
                    throw new Failure(appId + " went to " + state);
                if (System.currentTimeMillis() > deadline) throw new Failure(appId + " not RUNNING within " + ms / 1000 + " s (state " + state + ")");
                Thread.sleep(100);
            }
        }

        @Override
        public void close() {
            streams.close(Duration.ofSeconds(15));
            LOCAL.remove(streams);
            if (error != null) throw new Failure(appId + ": stream thread died: " + error);
        }
    }

    static Child childTag(String tag, String appId, String in, String out) throws IOException {
        return new Child("rebalance-" + tag, "StreamsSuite", List.of("--child-tag", tag, "--bootstrap", bootstrap, "--input", in, "--output", out,
            "--application-id", appId, "--state-dir", Files.createDirectories(work.resolve("rebalance-" + tag)).toString(),
            "session.timeout.ms=" + SESSION_MS, "heartbeat.interval.ms=1000"));
    }

    static Child childCount(String tag, String appId, String in, String out, Path state) throws IOException {
        // commits every 500 ms, records sent at once (Streams' producer lingers 100 ms by default): most
        // of the time a transaction with records is open on the broker
        return new Child("count-" + tag, "CountApp", List.of("--bootstrap", bootstrap, "--input", in, "--output", out,
            "--application-id", appId, "--state-dir", state.toString(), "commit.interval.ms=500", "producer.linger.ms=0",
            "session.timeout.ms=" + SESSION_MS, "heartbeat.interval.ms=1000", "producer.transaction.timeout.ms=5000"));
    }

    /** An application JVM started by this driver; its "@@ " lines are collected, all output goes to a log. */
    static final class Child implements AutoCloseable {
        final Process proc;
        final String tag;
        final Path logFile;
        final List<String> markers = Collections.synchronizedList(new ArrayList<>());

        Child(String tag, String main, List<String> args) throws IOException {
            this.tag = tag;
            logFile = logDir.resolve("app-" + tag + ".log");
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx128m",
                "-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-cp", System.getProperty("java.class.path"), main));
            cmd.addAll(args);
            proc = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            Files.writeString(logDir.resolve("app.pids"), proc.pid() + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            CHILDREN.add(this);
            log("child " + tag + " pid " + proc.pid() + ": " + String.join(" ", cmd));
            Thread t = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8));
                     PrintWriter w = new PrintWriter(Files.newBufferedWriter(logFile))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        w.println(line);
                        w.flush();
                        if (line.startsWith("@@ ")) {
                            markers.add(line);
                            log(tag + ": " + line);
                        }
                    }
                } catch (IOException e) {
                    // the process is gone
                }
            }, "child-" + tag);
            t.setDaemon(true);
            t.start();
        }

        List<String> markers() { synchronized (markers) { return new ArrayList<>(markers); } }

        String lastState() {
            List<String> m = markers();
            for (int i = m.size() - 1; i >= 0; i--) if (m.get(i).startsWith("@@ state ")) return m.get(i).split(" ")[2];
            return "";
        }

        /** The partitions of the last "@@ state RUNNING partitions [...]" line. */
        List<String> lastPartitions() {
            List<String> m = markers();
            for (int i = m.size() - 1; i >= 0; i--) {
                String l = m.get(i);
                int at = l.indexOf(" partitions [");
                if (l.startsWith("@@ state RUNNING") && at > 0) {
                    String inner = l.substring(at + 13, l.length() - 1).trim();
                    return inner.isEmpty() ? List.of() : List.of(inner.split(", "));
                }
            }
            return null;
        }

        void checkAlive() {
            if (!proc.isAlive()) throw new Failure("application " + tag + " exited with " + proc.exitValue() + " (log " + logFile + ")");
        }

        void awaitState(String state, long ms) throws InterruptedException {
            long deadline = System.currentTimeMillis() + ms;
            while (!lastState().equals(state)) {
                checkAlive();
                if (System.currentTimeMillis() > deadline)
                    throw new Failure("application " + tag + " not " + state + " within " + ms / 1000 + " s (last state " + lastState() + ", log " + logFile + ")");
                Thread.sleep(100);
            }
        }

        /** SIGKILL (Process.destroyForcibly is SIGKILL on Linux) and wait for the JVM to be gone. */
        void kill9() throws InterruptedException {
            proc.destroyForcibly();
            check(proc.waitFor(10, TimeUnit.SECONDS), "application " + tag + " still alive 10 s after SIGKILL");
            log("child " + tag + " SIGKILLed, exit " + proc.exitValue());
        }

        @Override
        public void close() {
            CHILDREN.remove(this);
            if (!proc.isAlive()) return;
            proc.destroy();   // SIGTERM: the shutdown hook closes KafkaStreams
            try {
                if (!proc.waitFor(25, TimeUnit.SECONDS)) proc.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                proc.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (var s = Files.walk(p)) { s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete()); }
    }

    static Set<Integer> advertisedApis(String hostPort) throws Exception {
        String[] hp = hostPort.split(",")[0].trim().split(":");
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 5000);
            s.setSoTimeout(5000);
            byte[] client = "rivulet-compat-streams".getBytes(StandardCharsets.UTF_8);
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

    // ------------------------------------------------------------------------------------- child

    /** --child-tag TAG: input -> "TAG:value" -> output, exactly_once_v2, until SIGTERM. */
    static void childTagApp(String[] args) throws Exception {
        String tag = null, in = null, out = null, appId = null, stateDir = null;
        Properties p = new Properties();
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--child-tag" -> tag = args[++i];
                case "--bootstrap" -> bootstrap = args[++i];
                case "--input" -> in = args[++i];
                case "--output" -> out = args[++i];
                case "--application-id" -> appId = args[++i];
                case "--state-dir" -> stateDir = args[++i];
                default -> { String[] kv = args[i].split("=", 2); p.put(kv[0], kv[1]); }
            }
        }
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        final String t = tag;
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
         .mapValues(v -> t + ":" + v)
         .to(out, Produced.with(Serdes.String(), Serdes.String()));
        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountApp.watch(streams);
        java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            System.out.println("@@ closed");
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }

    // ------------------------------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--child-tag")) { childTagApp(args); return; }
        List<String> only = new ArrayList<>();
        String groupsOpt = System.getenv("COMPAT_GROUPS");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--log-dir" -> logDir = Path.of(args[++i]);
                case "--only" -> only.add(args[++i]);
                case "--groups" -> groupsOpt = args[++i];
                case "--list" -> { register(); CASES.forEach(c -> System.out.println(c.name())); return; }
                default -> { System.err.println("unknown argument " + args[i]); System.exit(2); }
            }
        }
        register();
        if (logDir == null) logDir = Files.createTempDirectory("rivulet-compat-streams-logs-");
        Files.createDirectories(logDir);
        work = Files.createTempDirectory("rivulet-compat-streams-");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (Child c : new ArrayList<>(CHILDREN)) c.proc.destroyForcibly();
        }));
        System.out.println("# client: Kafka Streams " + AppInfoParser.getVersion() + " (kafka-clients " + AppInfoParser.getVersion()
            + ", in-memory stores; Java " + System.getProperty("java.version") + ")");
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
                if (timeoutsInARow >= 2) {
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
                // a timed-out case leaves its applications behind: stop them before the next case
                for (Child ch : new ArrayList<>(CHILDREN)) ch.proc.destroyForcibly();
                for (KafkaStreams s : new ArrayList<>(LOCAL)) { s.close(Duration.ofSeconds(5)); LOCAL.remove(s); }
                long took = System.currentTimeMillis() - t0;
                log(line + " (" + took + " ms)");
                System.out.println(line.replace('\n', ' '));
                System.out.println("#   " + c.name() + " took " + String.format("%.1f", took / 1000.0) + " s");
                System.out.flush();
            }
        } finally {
            for (Child ch : new ArrayList<>(CHILDREN)) ch.close();
            admin.close(Duration.ofSeconds(5));
            deleteTree(work);
        }
        System.exit(0);
    }
}
