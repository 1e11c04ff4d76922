// Java kafka-clients compatibility cases for the broker core.
//
// Compiled by compat/java/run with javac 17 against kafka-clients 4.3.0 (jars from
// scripts/compat-setup.sh). The core cases use no consumer group (no group.id: assign + seek, no
// commits). Producers set enable.idempotence=false except idempotent_default_producer, which keeps
// the client's defaults (idempotent, acks=all: InitProducerId + DescribeProducers).
//
// Consumer-group cases are named group_* and use group.protocol=classic. They run only when the
// broker advertises FindCoordinator + JoinGroup in ApiVersions (--groups yes|no|auto; default:
// $COMPAT_GROUPS from compat/run, else a raw ApiVersions v0 request); otherwise each is reported as
// "SKIP group_xxx: broker does not advertise consumer-group APIs".
//
// Output: "# client: ..." then one "PASS name" / "FAIL name: reason" / "SKIP name: reason" line
// per case; compat/java/run turns that into the closing "N passed, M failed, K skipped" line.

import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;

public class CompatSuite {

    static String bootstrap = "127.0.0.1:9092";
    static final Random RNG = new Random();

    static final class Failure extends RuntimeException {
        Failure(String m) { super(m); }
    }

    static final class Skip extends RuntimeException {
        Skip(String m) { super(m); }
    }

    interface Body { void run() throws Exception; }

    static final Map<String, Body> CASES = new LinkedHashMap<>();

    // ------------------------------------------------------------------------------- helpers

    static void check(boolean cond, String msg) {
        if (!cond) throw new Failure(msg);
    }

    static void checkEq(Object got, Object want, String what) {
        boolean eq = (got instanceof byte[] && want instanceof byte[])
            ? Arrays.equals((byte[]) got, (byte[]) want) : Objects.equals(got, want);
        if (!eq) throw new Failure(what + ": got " + show(got) + ", want " + show(want));
    }

    static String show(Object o) {
        String s = o instanceof byte[] ? "b\"" + new String((byte[]) o, StandardCharsets.UTF_8) + "\"" : String.valueOf(o);
        return s.length() > 160 ? s.substring(0, 160) + "...(" + s.length() + " chars)" : s;
    }

    static byte[] b(String s) { return s == null ? null : s.getBytes(StandardCharsets.UTF_8); }

    static String topicName(String tag) {
        StringBuilder sb = new StringBuilder();
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int i = 0; i < 8; i++) sb.append(alphabet.charAt(RNG.nextInt(alphabet.length())));
        return "compat-java-" + tag.replace('_', '-') + "-" + (System.currentTimeMillis() / 1000) + "-" + sb;
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20000);
        return Admin.create(p);
    }

    static String createTopic(String tag, int partitions) throws Exception {
        String t = topicName(tag);
        try (Admin a = admin()) {
            a.createTopics(List.of(new NewTopic(t, partitions, (short) 1))).all().get(20, TimeUnit.SECONDS);
            waitPartitions(a, t, partitions);
        }
        return t;
    }

    static TopicDescription waitPartitions(Admin a, String topic, int partitions) throws Exception {
        long deadline = System.currentTimeMillis() + 10000;
        Exception last = null;
        while (System.currentTimeMillis() < deadline) {
            try {
                TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
                if (d.partitions().size() == partitions && d.partitions().stream().allMatch(p -> p.leader() != null))
                    return d;
            } catch (ExecutionException e) {
                last = e;
            }
            Thread.sleep(100);
        }
        throw new Failure("topic " + topic + " never showed " + partitions + " partitions with leaders (" + last + ")");
    }

    record Rec(Integer partition, Long timestamp, byte[] key, byte[] value, List<Header> headers) {
        static Rec of(String key, String value) { return new Rec(null, null, b(key), b(value), List.of()); }
        Rec withHeaders(Header... hs) { return new Rec(partition, timestamp, key, value, List.of(hs)); }
        Rec inPartition(int p) { return new Rec(p, timestamp, key, value, headers); }
        Rec at(long ts) { return new Rec(partition, ts, key, value, headers); }
    }

    static List<Rec> simpleRecords(int n, String tag, int padSize) {
        String pad = " lorem ipsum dolor sit amet".repeat(padSize / 27 + 1).substring(0, padSize);
        List<Rec> out = new ArrayList<>();
        for (int i = 0; i < n; i++)
            out.add(Rec.of("key-" + i, String.format("%s-%06d", tag, i) + pad)
                .withHeaders(new RecordHeader("idx", b(Integer.toString(i)))));
        return out;
    }

    static KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 50);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    /** Produces records (flushing every flushEvery, 0 = only at the end); returns "partition:offset" per record. */
    static List<String> produce(String topic, List<Rec> recs, Map<String, Object> conf, int flushEvery) throws Exception {
        List<Future<RecordMetadata>> futs = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = producer(conf)) {
            int i = 0;
            for (Rec r : recs) {
                futs.add(p.send(new ProducerRecord<>(topic, r.partition(), r.timestamp(), r.key(), r.value(), r.headers())));
                if (flushEvery > 0 && ++i % flushEvery == 0) p.flush();
            }
            p.flush();
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < futs.size(); i++) {
            try {
                RecordMetadata md = futs.get(i).get(30, TimeUnit.SECONDS);
                out.add(md.partition() + ":" + md.offset());
            } catch (ExecutionException e) {
                throw new Failure("delivery of record " + i + " failed: " + e.getCause());
            }
        }
        return out;
    }

    static List<String> produce(String topic, List<Rec> recs) throws Exception {
        return produce(topic, recs, Map.of(), 0);
    }

    static void checkOffsets(List<String> reports, int partition, long first) {
        List<String> want = new ArrayList<>();
        for (int i = 0; i < reports.size(); i++) want.add(partition + ":" + (first + i));
        checkEq(reports, want, "delivery reports (partition:offset)");
    }

    static KafkaConsumer<byte[], byte[]> consumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20000);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    static List<ConsumerRecord<byte[], byte[]>> consume(String topic, int partition, long offset, int count, long timeoutMs) {
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            TopicPartition tp = new TopicPartition(topic, partition);
            c.assign(List.of(tp));
            c.seek(tp, offset);
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (got.size() < count && System.currentTimeMillis() < deadline)
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            if (got.size() == count) {  // anything past the expected end is a failure too
                long end = System.currentTimeMillis() + 300;
                while (System.currentTimeMillis() < end) c.poll(Duration.ofMillis(100)).forEach(got::add);
            }
        }
        return got;
    }

    static List<ConsumerRecord<byte[], byte[]>> consume(String topic, int partition, long offset, int count) {
        return consume(topic, partition, offset, count, 20000);
    }

    static void checkRecords(List<ConsumerRecord<byte[], byte[]>> got, List<Rec> want, long firstOffset, int partition, boolean checkTs) {
        checkEq(got.size(), want.size(), "number of consumed records");
        for (int i = 0; i < got.size(); i++) {
            ConsumerRecord<byte[], byte[]> g = got.get(i);
            Rec r = want.get(i);
            String where = "record " + i;
            checkEq(g.partition(), partition, where + " partition");
            checkEq(g.offset(), firstOffset + i, where + " offset");
            checkEq(g.key(), r.key(), where + " key");
            checkEq(g.value(), r.value(), where + " value");
            List<String> gh = new ArrayList<>(), wh = new ArrayList<>();
            for (Header h : g.headers()) gh.add(h.key() + "=" + (h.value() == null ? "<null>" : Arrays.toString(h.value())));
            for (Header h : r.headers()) wh.add(h.key() + "=" + (h.value() == null ? "<null>" : Arrays.toString(h.value())));
            checkEq(gh, wh, where + " headers");
            if (checkTs && r.timestamp() != null) checkEq(g.timestamp(), r.timestamp(), where + " timestamp");
        }
    }

    static void checkRecords(List<ConsumerRecord<byte[], byte[]>> got, List<Rec> want) {
        checkRecords(got, want, 0, 0, false);
    }

    static long[] beginEnd(String topic, int partition) {
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            TopicPartition tp = new TopicPartition(topic, partition);
            return new long[] {
                c.beginningOffsets(List.of(tp), Duration.ofSeconds(10)).get(tp),
                c.endOffsets(List.of(tp), Duration.ofSeconds(10)).get(tp)};
        }
    }

    static void checkBeginEnd(String topic, int partition, long begin, long end) {
        long[] be = beginEnd(topic, partition);
        checkEq(be[0] + ".." + be[1], begin + ".." + end, "beginningOffsets..endOffsets of partition " + partition);
    }

    static void expectCause(Class<? extends Throwable> cls, String what, Body body) throws Exception {
        try {
            body.run();
        } catch (ExecutionException e) {
            if (cls.isInstance(e.getCause())) return;
            throw new Failure(what + ": got " + e.getCause() + ", want " + cls.getSimpleName());
        }
        throw new Failure(what + ": succeeded, want " + cls.getSimpleName());
    }

    // ------------------------------------------------------------------------------- consumer-group helpers

    static final String NO_GROUPS = "broker does not advertise consumer-group APIs";
    /** Closed after every case, whatever its outcome (group members keep polling in their own threads). */
    static final List<AutoCloseable> CLEANUP = Collections.synchronizedList(new ArrayList<>());

    static String groupName(String tag) {
        return topicName(tag).replace("compat-java-", "compat-java-group-");
    }

    /** API keys a broker advertises, from a raw ApiVersions v0 request (any broker answers v0). */
    static Set<Integer> advertisedApis(String hostPort) throws Exception {
        String[] hp = hostPort.split(",")[0].split(":");
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 5000);
            s.setSoTimeout(5000);
            byte[] client = b("rivulet-compat");
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
            r.getInt();  // correlation id
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

    static Properties groupProps(String group, String clientId, Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");   // a missing commit shows as duplicates
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20000);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.putAll(extra);
        return p;
    }

    /** One consumed record: who consumed it, where it was, what it held. */
    record Got(String member, int partition, long offset, String key, String value) {}

    /** What a produced record must look like when consumed. */
    record Want(int partition, long offset, String value) {}

    static Set<Integer> ids(Collection<TopicPartition> tps) {
        Set<Integer> out = new TreeSet<>();
        for (TopicPartition tp : tps) out.add(tp.partition());
        return Collections.unmodifiableSet(out);
    }

    /** perPartition records to each of partitions 0..n-1, key "<phase>-<p>-<i>", value "value-<key>";
     *  returns key -> where the producer's acknowledgement put it. */
    static Map<String, Want> produceKeyed(String topic, int partitions, int perPartition, String phase) throws Exception {
        List<Rec> recs = new ArrayList<>();
        for (int i = 0; i < perPartition; i++)
            for (int p = 0; p < partitions; p++) {
                String k = phase + "-" + p + "-" + i;
                recs.add(Rec.of(k, "value-" + k).inPartition(p));
            }
        List<String> reps = produce(topic, recs, Map.of(ProducerConfig.LINGER_MS_CONFIG, 5), 0);
        Map<String, Want> out = new LinkedHashMap<>();
        for (int i = 0; i < recs.size(); i++) {
            String[] po = reps.get(i).split(":");
            checkEq(Integer.parseInt(po[0]), recs.get(i).partition(), "delivery report partition of " + new String(recs.get(i).key(), StandardCharsets.UTF_8));
            out.put(new String(recs.get(i).key(), StandardCharsets.UTF_8),
                new Want(Integer.parseInt(po[0]), Long.parseLong(po[1]), new String(recs.get(i).value(), StandardCharsets.UTF_8)));
        }
        return out;
    }

    static Got got(String member, ConsumerRecord<byte[], byte[]> r) {
        return new Got(member, r.partition(), r.offset(), r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8),
            r.value() == null ? null : new String(r.value(), StandardCharsets.UTF_8));
    }

    static int distinctKeys(List<Got> sink) {
        synchronized (sink) {
            Set<String> keys = new HashSet<>();
            for (Got g : sink) keys.add(g.key());
            return keys.size();
        }
    }

    /** Every wanted record consumed exactly once across the group, at its acknowledged partition and
     *  offset with its value; nothing else consumed. */
    static void checkExactlyOnce(List<Got> sink, Map<String, Want> want) {
        Map<String, List<Got>> byKey = new TreeMap<>();
        List<String> unexpected = new ArrayList<>(), dups = new ArrayList<>(), wrong = new ArrayList<>(), missing = new ArrayList<>();
        synchronized (sink) {
            for (Got g : sink) {
                if (!want.containsKey(g.key())) unexpected.add(g.toString());
                else byKey.computeIfAbsent(g.key(), k -> new ArrayList<>()).add(g);
            }
        }
        for (Map.Entry<String, Want> e : want.entrySet()) {
            List<Got> gs = byKey.get(e.getKey());
            if (gs == null) { missing.add(e.getKey() + "@" + e.getValue().partition() + ":" + e.getValue().offset()); continue; }
            if (gs.size() > 1) dups.add(e.getKey() + " x" + gs.size() + " " + gs);
            Got g = gs.get(0);
            Want w = e.getValue();
            if (g.partition() != w.partition() || g.offset() != w.offset() || !Objects.equals(g.value(), w.value()))
                wrong.add(g + " want " + w);
        }
        check(unexpected.isEmpty() && dups.isEmpty() && wrong.isEmpty() && missing.isEmpty(),
            want.size() + " records: " + missing.size() + " never consumed " + head(missing) + "; " + dups.size()
            + " consumed more than once " + head(dups) + "; " + wrong.size() + " with other partition/offset/value "
            + head(wrong) + "; " + unexpected.size() + " unexpected " + head(unexpected));
    }

    static String head(List<String> l) {
        return l.isEmpty() ? "" : l.subList(0, Math.min(3, l.size())).toString();
    }

    static void waitFor(String what, long timeoutMs, BooleanSupplier cond, Supplier<String> state) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline)
                throw new Failure(what + ": not reached within " + timeoutMs / 1000 + " s (" + state.get() + ")");
            Thread.sleep(50);
        }
    }

    /** A group member: a KafkaConsumer subscribed to one topic, polling in its own thread. It records
     *  what it consumes into a shared sink and commits what it processed after every poll and when
     *  partitions are revoked (the next owner resumes exactly there: no duplicates, no gaps). */
    static final class Member implements AutoCloseable {
        final String name;
        final String topic;
        final KafkaConsumer<byte[], byte[]> c;
        final List<Got> sink;
        final Thread thread;
        volatile Set<Integer> assignment = Set.of();
        volatile int generation = -1;
        volatile String memberId = "";
        volatile boolean stop;
        volatile boolean closed;
        final AtomicInteger assignedCalls = new AtomicInteger(), revokedCalls = new AtomicInteger(), lostCalls = new AtomicInteger();
        final List<Set<Integer>> revoked = Collections.synchronizedList(new ArrayList<>());
        final List<String> errors = Collections.synchronizedList(new ArrayList<>());
        final Map<TopicPartition, Long> processed = new HashMap<>();   // poll thread only

        Member(String name, String group, String topic, List<Got> sink, Map<String, Object> extra) {
            this.name = name;
            this.topic = topic;
            this.sink = sink;
            this.c = new KafkaConsumer<>(groupProps(group, name, extra));
            CLEANUP.add(this);
            thread = new Thread(this::loop, "member-" + name);
            thread.setDaemon(true);
            thread.start();
        }

        void commitProcessed(String when) {
            if (processed.isEmpty()) return;
            Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
            processed.forEach((tp, o) -> offs.put(tp, new OffsetAndMetadata(o)));
            try {
                c.commitSync(offs, Duration.ofSeconds(15));
            } catch (RebalanceInProgressException e) {
                // committed again from onPartitionsRevoked before the partitions move
                System.err.println("# member " + name + ": commit " + when + ": " + e);
            } catch (CommitFailedException e) {
                errors.add("commit " + when + " failed: " + e.getMessage());
            }
        }

        void loop() {
            try {
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    @Override public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        revokedCalls.incrementAndGet();
                        if (!parts.isEmpty()) revoked.add(ids(parts));
                        commitProcessed("on revocation of " + ids(parts));
                        parts.forEach(processed::remove);
                    }
                    @Override public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        assignedCalls.incrementAndGet();
                    }
                    @Override public void onPartitionsLost(Collection<TopicPartition> parts) {
                        lostCalls.incrementAndGet();
                        parts.forEach(processed::remove);
                    }
                });
                while (!stop) {
                    ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<byte[], byte[]> r : recs) {
                        sink.add(got(name, r));
                        processed.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
                    }
                    if (!recs.isEmpty()) commitProcessed("after poll");
                    assignment = ids(c.assignment());
                    ConsumerGroupMetadata gm = c.groupMetadata();
                    generation = gm.generationId();
                    memberId = gm.memberId();
                }
            } catch (WakeupException e) {
                // close() while blocked
            } catch (Throwable t) {
                errors.add(String.valueOf(t));
                t.printStackTrace();
            } finally {
                try {
                    c.close(Duration.ofSeconds(15));   // default close: a dynamic member leaves the group, a static one does not
                } catch (Throwable t) {
                    errors.add("close: " + t);
                }
                closed = true;
            }
        }

        @Override public void close() throws InterruptedException {
            if (closed) return;
            stop = true;
            thread.join(20000);
            if (thread.isAlive()) {
                c.wakeup();
                thread.join(5000);
            }
        }

        @Override public String toString() {
            return name + "{gen " + generation + ", " + assignment + "}";
        }
    }

    static String state(List<Member> ms, List<Got> sink) {
        return "members " + ms + ", " + distinctKeys(sink) + " distinct records consumed";
    }

    static void checkNoMemberErrors(List<Member> ms) {
        for (Member m : ms) check(m.errors.isEmpty(), "member " + m.name + ": " + m.errors);
    }

    /** Disjoint, non-empty assignments covering 0..partitions-1. */
    static boolean covers(List<Set<Integer>> assignments, int partitions) {
        Set<Integer> union = new HashSet<>();
        int total = 0;
        for (Set<Integer> a : assignments) {
            if (a.isEmpty()) return false;
            union.addAll(a);
            total += a.size();
        }
        return total == partitions && union.size() == partitions && Collections.max(union) == partitions - 1;
    }

    /** Waits until the members' assignments are disjoint, non-empty, cover every partition, carry the
     *  same generation, and stay so for 1 s. */
    static void waitStable(List<Member> ms, int partitions, long timeoutMs, List<Got> sink) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        String last = null;
        long since = 0;
        while (true) {
            List<Set<Integer>> as = new ArrayList<>();
            Set<Integer> gens = new HashSet<>();
            for (Member m : ms) { as.add(m.assignment); gens.add(m.generation); }
            String now = as + "@" + gens;
            boolean ok = covers(as, partitions) && gens.size() == 1;
            if (!ok) since = 0;
            else if (!now.equals(last)) since = System.currentTimeMillis();
            else if (System.currentTimeMillis() - since >= 1000) return;
            last = now;
            checkNoMemberErrors(ms);
            if (System.currentTimeMillis() > deadline)
                throw new Failure("the group did not settle on disjoint non-empty assignments covering " + partitions
                    + " partitions within " + timeoutMs / 1000 + " s (" + state(ms, sink) + ")");
            Thread.sleep(50);
        }
    }

    /** Polls a little longer: anything consumed twice shows up in the sink. */
    static void drain() throws InterruptedException {
        Thread.sleep(600);
    }

    static void closeAll(List<Member> ms) throws InterruptedException {
        for (Member m : ms) m.close();
    }

    /** The member consumer of group_dead_member_session_timeout, in a child JVM (killed with SIGKILL):
     *  prints "ASSIGNMENT p,p", "REC p o key value" and "COMMITTED p:o,..." lines. */
    static void childMember(String group, String topic, int sessionMs) {
        Map<TopicPartition, Long> processed = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(groupProps(group, "child",
                Map.of(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, sessionMs)))) {
            c.subscribe(List.of(topic));
            String last = null;
            while (true) {
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(100));
                StringBuilder out = new StringBuilder();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    Got g = got("child", r);
                    out.append("REC ").append(g.partition()).append(' ').append(g.offset()).append(' ')
                        .append(g.key()).append(' ').append(g.value()).append('\n');
                    processed.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
                }
                processed.keySet().retainAll(c.assignment());
                if (!recs.isEmpty()) {
                    Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                    processed.forEach((tp, o) -> offs.put(tp, new OffsetAndMetadata(o)));
                    c.commitSync(offs);
                    out.append("COMMITTED");
                    String sep = " ";
                    for (Map.Entry<TopicPartition, Long> e : processed.entrySet()) {
                        out.append(sep).append(e.getKey().partition()).append(':').append(e.getValue());
                        sep = ",";
                    }
                    out.append('\n');
                }
                String a = ids(c.assignment()).toString();
                if (!a.equals(last)) out.append("ASSIGNMENT ").append(a).append('\n');
                last = a;
                if (out.length() > 0) {
                    System.out.print(out);
                    System.out.flush();
                }
            }
        }
    }

    /** The child JVM's side as the parent sees it. */
    static final class ChildMember implements AutoCloseable {
        final Process proc;
        volatile Set<Integer> assignment = Set.of();
        final Map<Integer, Long> committed = new ConcurrentHashMap<>();
        final Thread reader;

        ChildMember(String group, String topic, int sessionMs, List<Got> sink) throws Exception {
            String java = ProcessHandle.current().info().command().orElse("java");
            List<String> cmd = new ArrayList<>(List.of(java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"));
            String log4j = System.getProperty("log4j2.configurationFile");
            if (log4j != null) cmd.add("-Dlog4j2.configurationFile=" + log4j);
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "CompatSuite", "--bootstrap", bootstrap,
                "--child-member", group, topic, Integer.toString(sessionMs)));
            ProcessBuilder pb = new ProcessBuilder(cmd);
            String logDir = System.getenv("COMPAT_JAVA_LOG_DIR");
            pb.redirectError(logDir != null ? ProcessBuilder.Redirect.to(new File(logDir, "child-member.log"))
                : ProcessBuilder.Redirect.DISCARD);
            proc = pb.start();
            CLEANUP.add(this);
            reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        if (line.startsWith("REC ")) {
                            String[] f = line.split(" ", 5);
                            sink.add(new Got("child", Integer.parseInt(f[1]), Long.parseLong(f[2]), f[3], f[4]));
                        } else if (line.startsWith("COMMITTED ")) {
                            for (String po : line.substring(10).split(",")) {
                                String[] x = po.split(":");
                                committed.put(Integer.parseInt(x[0]), Long.parseLong(x[1]));
                            }
                        } else if (line.startsWith("ASSIGNMENT ")) {
                            Set<Integer> a = new TreeSet<>();
                            String in = line.substring(11).replace("[", "").replace("]", "").trim();
                            if (!in.isEmpty()) for (String x : in.split(",")) a.add(Integer.parseInt(x.trim()));
                            assignment = Collections.unmodifiableSet(a);
                        }
                    }
                } catch (Exception e) {
                    // the process was killed
                }
            }, "child-reader");
            reader.setDaemon(true);
            reader.start();
        }

        void kill9() throws InterruptedException {
            proc.destroyForcibly();   // SIGKILL: no LeaveGroup, no close
            proc.waitFor(10, TimeUnit.SECONDS);
        }

        @Override public void close() throws InterruptedException {
            if (proc.isAlive()) kill9();
        }
    }

    static String offsetsOf(Map<TopicPartition, OffsetAndMetadata> m) {
        Map<Integer, String> out = new TreeMap<>();
        m.forEach((tp, om) -> out.put(tp.partition(), om == null ? "null" : om.offset() + "/'" + om.metadata() + "'/" + om.leaderEpoch()));
        return out.toString();
    }

    // ------------------------------------------------------------------------------- consumer-group cases

    /** 1 consumer, then 3, on 6 partitions: records produced before, during and after the rebalance
     *  are each consumed exactly once across the group. */
    static void rebalanceCase(String tag, boolean cooperative) throws Exception {
        String t = createTopic(tag, 6);
        String g = groupName(tag);
        Map<String, Object> conf = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
            (cooperative ? CooperativeStickyAssignor.class : RangeAssignor.class).getName());
        List<Got> sink = Collections.synchronizedList(new ArrayList<>());
        Map<String, Want> want = new LinkedHashMap<>(produceKeyed(t, 6, 5, "a"));
        List<Member> ms = new ArrayList<>();
        try {
            Member m1 = new Member("c1", g, t, sink, conf);
            ms.add(m1);
            waitFor("c1 alone owns the 6 partitions and consumed the 30 records", 30000,
                () -> m1.assignment.size() == 6 && distinctKeys(sink) == 30, () -> state(ms, sink));
            int gen1 = m1.generation;
            ms.add(new Member("c2", g, t, sink, conf));
            ms.add(new Member("c3", g, t, sink, conf));
            for (int i = 0; i < 6; i++) {   // produced while the group rebalances
                want.putAll(produceKeyed(t, 6, 2, "b" + i));
                Thread.sleep(150);
            }
            waitStable(ms, 6, 40000, sink);
            want.putAll(produceKeyed(t, 6, 3, "c"));
            waitFor("all " + want.size() + " records consumed", 20000, () -> distinctKeys(sink) >= want.size(), () -> state(ms, sink));
            drain();
            checkNoMemberErrors(ms);
            checkExactlyOnce(sink, want);
            synchronized (sink) {   // after the rebalance each record goes to its partition's owner
                for (Got gt : sink) {
                    if (!gt.key().startsWith("c-")) continue;
                    for (Member m : ms)
                        if (m.assignment.contains(gt.partition()))
                            checkEq(gt.member(), m.name, "consumer of " + gt.key() + " (partition " + gt.partition() + ")");
                }
            }
            check(m1.generation > gen1, "generation did not advance after the rebalance: " + gen1 + " -> " + m1.generation);
            List<String> as = new ArrayList<>();
            for (Member m : ms) as.add(m.assignment.toString());
            Collections.sort(as);
            if (!cooperative) {
                // RangeAssignor: 6 partitions, 3 members sorted by member id -> [0,1] [2,3] [4,5]
                checkEq(as.toString(), "[[0, 1], [2, 3], [4, 5]]", "final RangeAssignor assignments");
                check(m1.revoked.stream().anyMatch(r -> r.size() == 6),
                    "eager protocol: c1 never had all 6 partitions revoked at once (revocations " + m1.revoked + ")");
            } else {
                for (Member m : ms) checkEq(m.assignment.size(), 2, "partitions of " + m.name + " (cooperative-sticky, 6 over 3)");
                // incremental: nobody gives up everything, and the partitions a member keeps are never revoked
                for (Member m : ms)
                    for (Set<Integer> r : m.revoked) {
                        check(Collections.disjoint(r, m.assignment), "cooperative: " + m.name + " had " + r
                            + " revoked, yet ends owning " + m.assignment + " (revocations " + m.revoked + ")");
                        check(r.size() < 6, "cooperative: " + m.name + " had all 6 partitions revoked at once");
                    }
                check(!m1.revoked.isEmpty(), "cooperative: c1 gave up no partition (revocations " + m1.revoked + ")");
            }
        } finally {
            closeAll(ms);
        }
    }

    static void registerGroupCases() {
        CASES.put("group_rebalance_range", () -> rebalanceCase("grp-range", false));
        CASES.put("group_rebalance_cooperative", () -> rebalanceCase("grp-coop", true));

        CASES.put("group_leave_handover", () -> {
            // session timeout 30 s: only LeaveGroup can move c2's partitions within the wait below
            String t = createTopic("grp-leave", 4);
            String g = groupName("grp-leave");
            Map<String, Object> conf = Map.of(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30000);
            List<Got> sink = Collections.synchronizedList(new ArrayList<>());
            List<Member> ms = new ArrayList<>();
            try {
                Member m1 = new Member("c1", g, t, sink, conf), m2 = new Member("c2", g, t, sink, conf);
                ms.addAll(List.of(m1, m2));
                waitStable(ms, 4, 30000, sink);
                Map<String, Want> want = new LinkedHashMap<>(produceKeyed(t, 4, 5, "a"));
                waitFor("the first 20 records consumed", 20000, () -> distinctKeys(sink) >= 20, () -> state(ms, sink));
                Set<Integer> p2 = m2.assignment;
                long t0 = System.currentTimeMillis();
                m2.close();   // KafkaConsumer.close(): commits nothing more (commits are explicit), sends LeaveGroup
                waitFor("c1 owns all 4 partitions after c2 closed (LeaveGroup; its session timeout is 30 s)", 20000,
                    () -> m1.assignment.size() == 4, () -> state(ms, sink));
                long dt = System.currentTimeMillis() - t0;
                System.err.println("# group_leave_handover: partitions " + p2 + " handed over " + dt + " ms after close()");
                want.putAll(produceKeyed(t, 4, 5, "b"));
                waitFor("all 40 records consumed", 20000, () -> distinctKeys(sink) >= 40, () -> state(ms, sink));
                drain();
                checkNoMemberErrors(ms);
                checkExactlyOnce(sink, want);
                synchronized (sink) {
                    for (Got gt : sink) if (gt.key().startsWith("b-")) checkEq(gt.member(), "c1", "consumer of " + gt.key());
                }
            } finally {
                closeAll(ms);
            }
        });

        CASES.put("group_dead_member_session_timeout", () -> {
            // the second member runs in a child JVM that is killed with SIGKILL: no LeaveGroup, no
            // close; the coordinator must expire it after session.timeout.ms (6 s) and hand its
            // partitions, with their committed offsets, to c1
            String t = createTopic("grp-dead", 4);
            String g = groupName("grp-dead");
            int sessionMs = 6000;
            Map<String, Object> conf = Map.of(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, sessionMs);
            List<Got> sink = Collections.synchronizedList(new ArrayList<>());
            List<Member> ms = new ArrayList<>();
            try {
                ChildMember child = new ChildMember(g, t, sessionMs, sink);
                Member m1 = new Member("c1", g, t, sink, conf);
                ms.add(m1);
                Supplier<String> st = () -> state(ms, sink) + ", child " + child.assignment + " committed " + child.committed;
                waitFor("c1 and the child JVM share the 4 partitions", 40000,
                    () -> covers(List.of(m1.assignment, child.assignment), 4), st);
                Map<String, Want> want = new LinkedHashMap<>(produceKeyed(t, 4, 5, "a"));
                waitFor("the first 20 records consumed and the child's offsets committed", 20000, () -> {
                    if (distinctKeys(sink) < 20) return false;
                    for (int p : child.assignment) if (!Long.valueOf(5).equals(child.committed.get(p))) return false;
                    return true;
                }, st);
                checkNoMemberErrors(ms);
                Set<Integer> childParts = child.assignment;
                long t0 = System.currentTimeMillis();
                child.kill9();
                waitFor("c1 owns all 4 partitions after the child JVM was killed (session timeout " + sessionMs + " ms)",
                    sessionMs + 20000, () -> m1.assignment.size() == 4, st);
                long dt = System.currentTimeMillis() - t0;
                System.err.println("# group_dead_member_session_timeout: partitions " + childParts + " handed over " + dt + " ms after kill -9");
                check(dt >= sessionMs - 2000, "the killed member's partitions moved " + dt + " ms after the kill, before its "
                    + sessionMs + " ms session could expire (Kafka keeps a member until its session times out; a closed connection does not remove it)");
                want.putAll(produceKeyed(t, 4, 5, "b"));
                waitFor("all 40 records consumed", 20000, () -> distinctKeys(sink) >= 40, st);
                drain();
                checkNoMemberErrors(ms);
                checkExactlyOnce(sink, want);
                synchronized (sink) {
                    for (Got gt : sink) if (gt.key().startsWith("b-")) checkEq(gt.member(), "c1", "consumer of " + gt.key());
                }
            } finally {
                closeAll(ms);
            }
        });

        CASES.put("group_static_membership", () -> {
            // KIP-345: a static member (group.instance.id) that restarts within its session timeout gets
            // its old assignment back, and the other member sees no rebalance
            String t = createTopic("grp-static", 4);
            String g = groupName("grp-static");
            Map<String, Object> confA = Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-a", ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30000);
            Map<String, Object> confB = Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-b", ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30000);
            List<Got> sink = Collections.synchronizedList(new ArrayList<>());
            List<Member> ms = new ArrayList<>();
            try (Admin a = admin()) {
                Member m1 = new Member("c1", g, t, sink, confA), m2 = new Member("c2", g, t, sink, confB);
                ms.addAll(List.of(m1, m2));
                waitStable(ms, 4, 30000, sink);
                Map<String, Want> want = new LinkedHashMap<>(produceKeyed(t, 4, 5, "a"));
                waitFor("the first 20 records consumed", 20000, () -> distinctKeys(sink) >= 20, () -> state(ms, sink));
                int gen = m1.generation, assigned = m1.assignedCalls.get(), revokedN = m1.revokedCalls.get();
                Set<Integer> a1 = m1.assignment, a2 = m2.assignment;
                String oldId = m2.memberId;
                m2.close();   // a static member's close() sends no LeaveGroup (CloseOptions DEFAULT)
                ConsumerGroupDescription d = a.describeConsumerGroups(List.of(g)).describedGroups().get(g).get(20, TimeUnit.SECONDS);
                Set<String> inst = new TreeSet<>();
                for (MemberDescription md : d.members()) inst.add(md.groupInstanceId().orElse("<none>"));
                checkEq(inst.toString(), "[static-a, static-b]", "instance ids of the members after static-b's close()");
                checkEq(d.groupState(), GroupState.STABLE, "group state after static-b's close()");
                Member m2b = new Member("c2-restarted", g, t, sink, confB);
                ms.add(m2b);
                waitFor("the restarted static member has an assignment", 20000, () -> !m2b.assignment.isEmpty(), () -> state(ms, sink));
                checkEq(m2b.assignment, a2, "restarted static member's assignment (its previous one)");
                checkEq(m2b.generation, gen, "restarted static member's generation (no rebalance)");
                check(!m2b.memberId.equals(oldId), "the restarted static member got its old member id " + oldId + ", want a new one");
                Thread.sleep(2500);   // 5 heartbeats of c1
                checkEq(m1.generation, gen, "c1's generation after static-b rejoined");
                checkEq(m1.assignedCalls.get(), assigned, "c1's onPartitionsAssigned calls after static-b rejoined");
                checkEq(m1.revokedCalls.get(), revokedN, "c1's onPartitionsRevoked calls after static-b rejoined");
                checkEq(m1.assignment, a1, "c1's assignment after static-b rejoined");
                want.putAll(produceKeyed(t, 4, 5, "b"));
                waitFor("all 40 records consumed", 20000, () -> distinctKeys(sink) >= 40, () -> state(ms, sink));
                drain();
                checkNoMemberErrors(ms);
                checkExactlyOnce(sink, want);
                synchronized (sink) {
                    for (Got gt : sink)
                        if (gt.key().startsWith("b-"))
                            checkEq(gt.member(), a2.contains(gt.partition()) ? "c2-restarted" : "c1", "consumer of " + gt.key());
                }
                d = a.describeConsumerGroups(List.of(g)).describedGroups().get(g).get(20, TimeUnit.SECONDS);
                checkEq(d.members().size(), 2, "members after the restart (" + d.members() + ")");
                checkEq(d.groupState(), GroupState.STABLE, "group state after the restart");
            } finally {
                closeAll(ms);
            }
        });

        CASES.put("group_commit_sync_async_auto", () -> {
            String t = createTopic("grp-commit", 3);
            String g = groupName("grp-commit");
            Map<String, Want> want = produceKeyed(t, 3, 10, "a");
            TopicPartition tp0 = new TopicPartition(t, 0), tp1 = new TopicPartition(t, 1), tp2 = new TopicPartition(t, 2);
            Set<TopicPartition> all = Set.of(tp0, tp1, tp2);
            // 1) commitSync and commitAsync of explicit offsets (with metadata and the record's leader epoch)
            Map<String, ConsumerRecord<byte[], byte[]>> byKey = new HashMap<>();
            try (KafkaConsumer<byte[], byte[]> a = new KafkaConsumer<>(groupProps(g, "commit-a", Map.of()))) {
                a.subscribe(List.of(t));
                long deadline = System.currentTimeMillis() + 30000;
                while (byKey.size() < 30 && System.currentTimeMillis() < deadline)
                    for (ConsumerRecord<byte[], byte[]> r : a.poll(Duration.ofMillis(100))) byKey.put(new String(r.key(), StandardCharsets.UTF_8), r);
                checkEq(byKey.size(), 30, "records consumed by the first member");
                a.commitSync(Map.of(tp0, new OffsetAndMetadata(4, "sync-meta")));
                Optional<Integer> epoch = byKey.get("a-1-6").leaderEpoch();
                AtomicReference<Exception> cbErr = new AtomicReference<>();
                CountDownLatch done = new CountDownLatch(1);
                a.commitAsync(Map.of(tp1, new OffsetAndMetadata(7, epoch, "async-meta")), (offs, ex) -> { cbErr.set(ex); done.countDown(); });
                deadline = System.currentTimeMillis() + 15000;
                while (done.getCount() > 0 && System.currentTimeMillis() < deadline) a.poll(Duration.ofMillis(50));  // runs the callback
                check(done.getCount() == 0, "commitAsync callback not called within 15 s");
                check(cbErr.get() == null, "commitAsync failed: " + cbErr.get());
                Map<TopicPartition, OffsetAndMetadata> c = a.committed(all, Duration.ofSeconds(15));
                checkEq(offsetsOf(c), "{0=4/'sync-meta'/Optional.empty, 1=7/'async-meta'/" + epoch + ", 2=null}",
                    "committed() after commitSync(p0) + commitAsync(p1)");
            }
            // 2) a new member resumes at the committed offsets (p2: none -> earliest) and auto-commits
            List<String> got = new ArrayList<>(), wantList = new ArrayList<>();
            for (int p = 0; p < 3; p++)
                for (int i = p == 0 ? 4 : p == 1 ? 7 : 0; i < 10; i++) {
                    String k = "a-" + p + "-" + i;
                    wantList.add(p + ":" + want.get(k).offset() + ":" + k + ":" + want.get(k).value());
                }
            try (KafkaConsumer<byte[], byte[]> b = new KafkaConsumer<>(groupProps(g, "commit-b",
                    Map.of(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true, ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 200)));
                 Admin adm = admin()) {
                b.subscribe(List.of(t));
                long deadline = System.currentTimeMillis() + 30000;
                while (got.size() < wantList.size() && System.currentTimeMillis() < deadline)
                    for (ConsumerRecord<byte[], byte[]> r : b.poll(Duration.ofMillis(100)))
                        got.add(r.partition() + ":" + r.offset() + ":" + new String(r.key(), StandardCharsets.UTF_8) + ":" + new String(r.value(), StandardCharsets.UTF_8));
                // auto-commit: while b keeps polling, the group's committed offsets reach the end (10)
                Map<TopicPartition, OffsetAndMetadata> c = Map.of();
                deadline = System.currentTimeMillis() + 10000;
                while (System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : b.poll(Duration.ofMillis(200)))
                        got.add(r.partition() + ":" + r.offset() + ":" + new String(r.key(), StandardCharsets.UTF_8) + ":" + new String(r.value(), StandardCharsets.UTF_8));
                    c = adm.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get(15, TimeUnit.SECONDS);
                    if (c.size() == 3 && c.values().stream().allMatch(o -> o != null && o.offset() == 10)) break;
                }
                List<String> sorted = new ArrayList<>(got);
                Collections.sort(sorted);
                List<String> wantSorted = new ArrayList<>(wantList);
                Collections.sort(wantSorted);
                checkEq(sorted, wantSorted, "records of the member that resumed at the committed offsets (partition:offset:key:value)");
                Map<Integer, Long> first = new TreeMap<>();
                for (String s : got) first.putIfAbsent(Integer.parseInt(s.split(":")[0]), Long.parseLong(s.split(":")[1]));
                checkEq(first.toString(), "{0=4, 1=7, 2=0}", "first offset consumed per partition");
                Map<Integer, Long> offs = new TreeMap<>();
                c.forEach((tp, o) -> offs.put(tp.partition(), o == null ? null : o.offset()));
                checkEq(offs.toString(), "{0=10, 1=10, 2=10}", "auto-committed offsets (Admin.listConsumerGroupOffsets) while the member polls");
            }
            // 3) after the auto-committing member closed, the next one starts at 10 everywhere
            Map<String, Want> more = produceKeyed(t, 3, 2, "b");
            try (KafkaConsumer<byte[], byte[]> cc = new KafkaConsumer<>(groupProps(g, "commit-c", Map.of()))) {
                Map<TopicPartition, OffsetAndMetadata> c = cc.committed(all, Duration.ofSeconds(15));
                Map<Integer, String> offs = new TreeMap<>();
                c.forEach((tp, o) -> offs.put(tp.partition(), o == null ? "null" : o.offset() + "/'" + o.metadata() + "'"));
                checkEq(offs.toString(), "{0=10/'', 1=10/'', 2=10/''}", "committed() after the auto-committing member closed");
                cc.subscribe(List.of(t));
                List<Got> g3 = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 30000;
                while (g3.size() < 6 && System.currentTimeMillis() < deadline)
                    for (ConsumerRecord<byte[], byte[]> r : cc.poll(Duration.ofMillis(100))) g3.add(got("c", r));
                long end = System.currentTimeMillis() + 500;
                while (System.currentTimeMillis() < end)
                    for (ConsumerRecord<byte[], byte[]> r : cc.poll(Duration.ofMillis(100))) g3.add(got("c", r));
                checkExactlyOnce(Collections.synchronizedList(g3), more);
                for (Got x : g3) check(x.offset() >= 10, "record at offset " + x.offset() + " consumed again: " + x);
            }
        });

        CASES.put("group_admin", () -> {
            String t = createTopic("grp-admin", 4);
            String g = groupName("grp-admin");
            List<Got> sink = Collections.synchronizedList(new ArrayList<>());
            List<Member> ms = new ArrayList<>();
            try (Admin a = admin()) {
                Member m1 = new Member("compat-admin-a", g, t, sink, Map.of()), m2 = new Member("compat-admin-b", g, t, sink, Map.of());
                ms.addAll(List.of(m1, m2));
                waitStable(ms, 4, 30000, sink);
                Map<String, Want> want = produceKeyed(t, 4, 5, "a");
                waitFor("the 20 records consumed", 20000, () -> distinctKeys(sink) >= 20, () -> state(ms, sink));
                drain();
                checkExactlyOnce(sink, want);
                Set<TopicPartition> tps = new HashSet<>();
                for (int p = 0; p < 4; p++) tps.add(new TopicPartition(t, p));

                // listConsumerGroups (ListGroups): listed, Stable, classic, not simple; state filters
                ConsumerGroupListing l = null;
                for (ConsumerGroupListing x : a.listConsumerGroups().all().get(20, TimeUnit.SECONDS)) if (x.groupId().equals(g)) l = x;
                check(l != null, "listConsumerGroups does not list " + g);
                checkEq(l.groupState().orElse(null), GroupState.STABLE, "listConsumerGroups state");
                check(!l.isSimpleConsumerGroup(), "listConsumerGroups: listed as a simple consumer group");
                checkEq(l.type().orElse(GroupType.CLASSIC), GroupType.CLASSIC, "listConsumerGroups type");
                boolean inStable = a.listConsumerGroups(new ListConsumerGroupsOptions().inGroupStates(Set.of(GroupState.STABLE)))
                    .all().get(20, TimeUnit.SECONDS).stream().anyMatch(x -> x.groupId().equals(g));
                boolean inEmpty = a.listConsumerGroups(new ListConsumerGroupsOptions().inGroupStates(Set.of(GroupState.EMPTY)))
                    .all().get(20, TimeUnit.SECONDS).stream().anyMatch(x -> x.groupId().equals(g));
                check(inStable && !inEmpty, "listConsumerGroups with a state filter: listed under Stable " + inStable + ", under Empty " + inEmpty);

                // describeConsumerGroups (DescribeGroups): state, assignor, members with their assignments
                ConsumerGroupDescription d = a.describeConsumerGroups(List.of(g)).describedGroups().get(g).get(20, TimeUnit.SECONDS);
                checkEq(d.groupId(), g, "describe: group id");
                checkEq(d.groupState(), GroupState.STABLE, "describe: state");
                checkEq(d.partitionAssignor(), "range", "describe: partition assignor");
                checkEq(d.type(), GroupType.CLASSIC, "describe: type");
                check(!d.isSimpleConsumerGroup(), "describe: simple consumer group");
                int nodeId = a.describeCluster().nodes().get(10, TimeUnit.SECONDS).iterator().next().id();
                checkEq(d.coordinator() == null ? null : d.coordinator().id(), nodeId, "describe: coordinator node id");
                checkEq(d.members().size(), 2, "describe: members (" + d.members() + ")");
                for (MemberDescription md : d.members()) {
                    Member m = md.consumerId().equals(m1.memberId) ? m1 : md.consumerId().equals(m2.memberId) ? m2 : null;
                    check(m != null, "describe: member id " + md.consumerId() + " is neither " + m1.memberId + " nor " + m2.memberId);
                    checkEq(md.clientId(), m.name, "describe: client id of " + m.name);
                    check(md.host() != null && md.host().contains("127.0.0.1"), "describe: host of " + m.name + " is " + md.host());
                    checkEq(md.groupInstanceId(), Optional.empty(), "describe: instance id of " + m.name);
                    Set<TopicPartition> mine = new HashSet<>();
                    for (int p : m.assignment) mine.add(new TopicPartition(t, p));
                    checkEq(md.assignment().topicPartitions(), mine, "describe: assignment of " + m.name);
                }

                // listConsumerGroupOffsets (OffsetFetch): what the members committed
                Map<TopicPartition, OffsetAndMetadata> offs = a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS);
                checkEq(offsetsOf(offs), "{0=5/''/Optional.empty, 1=5/''/Optional.empty, 2=5/''/Optional.empty, 3=5/''/Optional.empty}",
                    "listConsumerGroupOffsets");

                // while the members are active: OffsetDelete of a subscribed topic and DeleteGroups fail
                TopicPartition tp0 = new TopicPartition(t, 0);
                expectCause(GroupSubscribedToTopicException.class, "deleteConsumerGroupOffsets of a topic the active group subscribes to",
                    () -> a.deleteConsumerGroupOffsets(g, Set.of(tp0)).all().get(20, TimeUnit.SECONDS));
                expectCause(GroupNotEmptyException.class, "deleteConsumerGroups while members are active",
                    () -> a.deleteConsumerGroups(List.of(g)).all().get(20, TimeUnit.SECONDS));

                closeAll(ms);   // both leave
                long deadline = System.currentTimeMillis() + 15000;
                while (true) {
                    d = a.describeConsumerGroups(List.of(g)).describedGroups().get(g).get(20, TimeUnit.SECONDS);
                    if (d.groupState() == GroupState.EMPTY || System.currentTimeMillis() > deadline) break;
                    Thread.sleep(100);
                }
                checkEq(d.groupState() + " " + d.members().size(), GroupState.EMPTY + " 0", "describe after both members left: state, members");

                a.deleteConsumerGroupOffsets(g, Set.of(tp0)).all().get(20, TimeUnit.SECONDS);
                offs = a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS);
                checkEq(offsetsOf(offs), "{1=5/''/Optional.empty, 2=5/''/Optional.empty, 3=5/''/Optional.empty}",
                    "listConsumerGroupOffsets after deleteConsumerGroupOffsets(partition 0)");

                a.deleteConsumerGroups(List.of(g)).all().get(20, TimeUnit.SECONDS);
                boolean listed = a.listConsumerGroups().all().get(20, TimeUnit.SECONDS).stream().anyMatch(x -> x.groupId().equals(g));
                check(!listed, "listConsumerGroups still lists " + g + " after deleteConsumerGroups");
                offs = a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS);
                checkEq(offsetsOf(offs), "{}", "listConsumerGroupOffsets of the deleted group");
                expectCause(GroupIdNotFoundException.class, "deleteConsumerGroups of a deleted group",
                    () -> a.deleteConsumerGroups(List.of(g)).all().get(20, TimeUnit.SECONDS));
            } finally {
                closeAll(ms);
            }
        });
    }

    // ------------------------------------------------------------------------------- cases

    static void register() {
        CASES.put("admin_create_describe_delete", () -> {
            String t = topicName("admin");
            try (Admin a = admin()) {
                a.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all().get(20, TimeUnit.SECONDS);
                TopicDescription d = waitPartitions(a, t, 2);
                checkEq(d.name(), t, "describeTopics name");
                check(d.topicId() != null && !d.topicId().toString().equals("AAAAAAAAAAAAAAAAAAAAAA"), "zero/absent topic id");
                Set<Integer> nodeIds = new java.util.HashSet<>();
                for (Node n : a.describeCluster().nodes().get(10, TimeUnit.SECONDS)) nodeIds.add(n.id());
                for (TopicPartitionInfo p : d.partitions()) {
                    check(nodeIds.contains(p.leader().id()), "partition " + p.partition() + " leader " + p.leader() + " not among " + nodeIds);
                    checkEq(p.replicas().size(), 1, "replicas of partition " + p.partition());
                    checkEq(p.isr().size(), 1, "isr of partition " + p.partition());
                }
                checkEq(d.partitions().get(0).partition(), 0, "first partition id");
                checkEq(d.partitions().get(1).partition(), 1, "second partition id");
                check(a.listTopics().names().get(10, TimeUnit.SECONDS).contains(t), "listTopics lacks " + t);
                expectCause(TopicExistsException.class, "second createTopics",
                    () -> a.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all().get(20, TimeUnit.SECONDS));
                a.deleteTopics(List.of(t)).all().get(20, TimeUnit.SECONDS);
                long deadline = System.currentTimeMillis() + 10000;
                while (a.listTopics().names().get(10, TimeUnit.SECONDS).contains(t)) {
                    check(System.currentTimeMillis() < deadline, "deleted topic still listed after 10 s");
                    Thread.sleep(200);
                }
                expectCause(UnknownTopicOrPartitionException.class, "deleting a deleted topic",
                    () -> a.deleteTopics(List.of(t)).all().get(20, TimeUnit.SECONDS));
            }
        });
        CASES.put("admin_create_invalid", () -> {
            try (Admin a = admin()) {
                expectCause(InvalidTopicException.class, "createTopics with '/' in the name",
                    () -> a.createTopics(List.of(new NewTopic("compat-bad/name", 1, (short) 1))).all().get(20, TimeUnit.SECONDS));
                expectCause(InvalidReplicationFactorException.class, "replication factor 3 on one broker",
                    () -> a.createTopics(List.of(new NewTopic(topicName("rf3"), 1, (short) 3))).all().get(20, TimeUnit.SECONDS));
            }
        });
        CASES.put("admin_create_partitions", () -> {
            String t = createTopic("parts", 1);
            try (Admin a = admin()) {
                a.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all().get(20, TimeUnit.SECONDS);
                waitPartitions(a, t, 3);
            }
            List<Rec> recs = new ArrayList<>();
            for (Rec r : simpleRecords(3, "p2", 0)) recs.add(r.inPartition(2));
            checkOffsets(produce(t, recs), 2, 0);
            checkRecords(consume(t, 2, 0, 3), recs, 0, 2, false);
        });
        CASES.put("admin_create_partitions_same_count", () -> {
            String t = createTopic("parts-same", 2);
            try (Admin a = admin()) {
                expectCause(InvalidPartitionsException.class, "createPartitions to fewer partitions",
                    () -> a.createPartitions(Map.of(t, NewPartitions.increaseTo(1))).all().get(20, TimeUnit.SECONDS));
                // Kafka: "Topic already has 2 partition(s)." (ReplicationControlManager)
                expectCause(InvalidPartitionsException.class, "createPartitions to the current count",
                    () -> a.createPartitions(Map.of(t, NewPartitions.increaseTo(2))).all().get(20, TimeUnit.SECONDS));
            }
        });
        CASES.put("admin_describe_cluster", () -> {
            try (Admin a = admin()) {
                DescribeClusterResult r = a.describeCluster();
                String id = r.clusterId().get(10, TimeUnit.SECONDS);
                check(id != null && !id.isEmpty(), "empty cluster id");
                List<Node> nodes = new ArrayList<>(r.nodes().get(10, TimeUnit.SECONDS));
                checkEq(nodes.size(), 1, "number of nodes");
                String[] hp = bootstrap.split(":");
                checkEq(nodes.get(0).host() + ":" + nodes.get(0).port(), hp[0] + ":" + hp[1], "advertised node address");
                check(r.controller().get(10, TimeUnit.SECONDS) != null, "no controller");
            }
        });
        CASES.put("auto_create_on_metadata", () -> {
            String t = topicName("auto");
            List<Rec> recs = simpleRecords(3, "auto", 0);
            checkOffsets(produce(t, recs), 0, 0);
            checkRecords(consume(t, 0, 0, 3), recs);
        });
        CASES.put("headers_roundtrip", () -> {
            String t = createTopic("headers", 1);
            List<Rec> recs = List.of(
                Rec.of("k0", "one header").withHeaders(new RecordHeader("a", b("1"))),
                Rec.of("k1", "repeated + empty").withHeaders(new RecordHeader("a", b("1")), new RecordHeader("a", b("2")), new RecordHeader("b", new byte[0])),
                Rec.of("k2", "no headers"),
                Rec.of("k3", "null header value").withHeaders(new RecordHeader("n", (byte[]) null)),
                Rec.of("k4", "binary").withHeaders(new RecordHeader("\u043a\u043b\u044e\u0447", new byte[] {0, (byte) 0xff, 1}), new RecordHeader("z", b("x".repeat(1000)))));
            checkOffsets(produce(t, recs), 0, 0);
            checkRecords(consume(t, 0, 0, recs.size()), recs);
        });
        CASES.put("null_key", () -> {
            String t = createTopic("nullkey", 1);
            List<Rec> recs = List.of(Rec.of(null, "null key 0"), Rec.of("", "empty key"), Rec.of(null, "null key 2"), Rec.of("k", "key k"));
            checkOffsets(produce(t, recs), 0, 0);
            checkRecords(consume(t, 0, 0, recs.size()), recs);
        });
        CASES.put("null_value_tombstone", () -> {
            String t = createTopic("tombstone", 1);
            List<Rec> recs = List.of(Rec.of("k", "live"), Rec.of("k", null), Rec.of("e", ""),
                Rec.of("k2", null).withHeaders(new RecordHeader("h", b("v"))));
            checkOffsets(produce(t, recs), 0, 0);
            checkRecords(consume(t, 0, 0, recs.size()), recs);
        });
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            CASES.put("compression_" + codec, () -> {
                String t = createTopic("comp-" + codec, 1);
                List<Rec> recs = simpleRecords(200, codec, 100);
                checkOffsets(produce(t, recs, Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                    ProducerConfig.LINGER_MS_CONFIG, 200, ProducerConfig.BATCH_SIZE_CONFIG, 1 << 20), 0), 0, 0);
                checkRecords(consume(t, 0, 0, recs.size()), recs);
                checkBeginEnd(t, 0, 0, 200);
            });
        }
        for (String acks : List.of("1", "all")) {
            CASES.put("acks_" + acks, () -> {
                String t = createTopic("acks", 1);
                List<Rec> recs = simpleRecords(100, "acks" + acks, 0);
                checkOffsets(produce(t, recs, Map.of(ProducerConfig.ACKS_CONFIG, acks, ProducerConfig.LINGER_MS_CONFIG, 5), 25), 0, 0);
                checkRecords(consume(t, 0, 0, recs.size()), recs);
            });
        }
        CASES.put("multi_partition_explicit", () -> {
            String t = createTopic("multi", 3);
            int[] counts = {3, 5, 7};
            List<Rec> recs = new ArrayList<>();
            for (int p = 0; p < 3; p++)
                for (int i = 0; i < counts[p]; i++) recs.add(Rec.of("k" + i, "p" + p + "-" + i).inPartition(p));
            List<String> reps = produce(t, recs);
            for (int p = 0; p < 3; p++) {
                List<String> got = new ArrayList<>(), want = new ArrayList<>();
                List<Rec> wantRecs = new ArrayList<>();
                for (int i = 0; i < recs.size(); i++) if (recs.get(i).partition() == p) { got.add(reps.get(i)); wantRecs.add(recs.get(i)); }
                for (int i = 0; i < counts[p]; i++) want.add(p + ":" + i);
                checkEq(got, want, "delivery reports for partition " + p);
                checkRecords(consume(t, p, 0, counts[p]), wantRecs, 0, p, false);
                checkBeginEnd(t, p, 0, counts[p]);
            }
        });
        for (String codec : List.of("none", "snappy")) {
            CASES.put(codec.equals("none") ? "fetch_mid_batch" : "fetch_mid_batch_compressed", () -> {
                String t = createTopic("midbatch", 1);
                List<Rec> recs = simpleRecords(10, "mid", 0);
                checkOffsets(produce(t, recs, Map.of(ProducerConfig.LINGER_MS_CONFIG, 200, ProducerConfig.COMPRESSION_TYPE_CONFIG, codec), 0), 0, 0);
                List<ConsumerRecord<byte[], byte[]>> got = consume(t, 0, 4, 6);
                check(!got.isEmpty(), "nothing consumed from offset 4");
                checkEq(got.get(0).offset(), 4L, "first offset returned when seeking to 4");
                checkRecords(got, recs.subList(4, 10), 4, 0, false);
            });
        }
        CASES.put("many_batches_contiguous", () -> {
            String t = createTopic("many", 1);
            List<Rec> recs = simpleRecords(3000, "many", 20);
            checkOffsets(produce(t, recs, Map.of(ProducerConfig.LINGER_MS_CONFIG, 2, ProducerConfig.BATCH_SIZE_CONFIG, 4096), 0), 0, 0);
            checkRecords(consume(t, 0, 0, 3000, 40000), recs);
            checkBeginEnd(t, 0, 0, 3000);
        });
        CASES.put("list_offsets_earliest_latest", () -> {
            String t = createTopic("listoff", 1);
            checkBeginEnd(t, 0, 0, 0);
            checkOffsets(produce(t, simpleRecords(20, "lo", 0), Map.of(ProducerConfig.LINGER_MS_CONFIG, 100), 10), 0, 0);
            checkBeginEnd(t, 0, 0, 20);
            TopicPartition tp = new TopicPartition(t, 0);
            try (Admin a = admin()) {
                ListOffsetsResult.ListOffsetsResultInfo e = a.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp).get(20, TimeUnit.SECONDS);
                checkEq(e.offset(), 0L, "Admin.listOffsets earliest");
                ListOffsetsResult.ListOffsetsResultInfo l = a.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get(20, TimeUnit.SECONDS);
                checkEq(l.offset(), 20L, "Admin.listOffsets latest");
            }
        });
        CASES.put("list_offsets_max_timestamp", () -> {
            String t = createTopic("maxts", 1);
            long base = System.currentTimeMillis() - 60000;
            List<Rec> recs = new ArrayList<>();
            for (int i = 0; i < 10; i++) recs.add(Rec.of("k" + i, "v" + i).at(i == 6 ? base + 50000 : base + i));
            checkOffsets(produce(t, recs, Map.of(ProducerConfig.LINGER_MS_CONFIG, 200), 0), 0, 0);
            TopicPartition tp = new TopicPartition(t, 0);
            try (Admin a = admin()) {
                ListOffsetsResult.ListOffsetsResultInfo r = a.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp).get(20, TimeUnit.SECONDS);
                checkEq(r.offset() + "@" + r.timestamp(), 6 + "@" + (base + 50000), "maxTimestamp offset@timestamp");
            }
        });
        CASES.put("offsets_for_times", () -> {
            String t = createTopic("fortimes", 1);
            long base = System.currentTimeMillis() - 600000;
            List<Rec> recs = new ArrayList<>();
            for (int i = 0; i < 10; i++) recs.add(Rec.of("k" + i, "v" + i).at(base + 1000L * i));
            checkOffsets(produce(t, recs, Map.of(ProducerConfig.LINGER_MS_CONFIG, 200), 0), 0, 0);
            checkRecords(consume(t, 0, 0, 10), recs, 0, 0, true);
            TopicPartition tp = new TopicPartition(t, 0);
            try (KafkaConsumer<byte[], byte[]> c = consumer()) {
                long[][] cases = {{-5, 0}, {0, 0}, {3500, 4}, {9000, 9}, {9001, -1}};
                for (long[] tc : cases) {
                    Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, base + tc[0]), Duration.ofSeconds(10));
                    OffsetAndTimestamp ot = r.get(tp);
                    if (tc[1] < 0) {
                        check(ot == null, "offsetsForTimes(base+" + tc[0] + "): got " + ot + ", want null");
                    } else {
                        check(ot != null, "offsetsForTimes(base+" + tc[0] + "): got null, want offset " + tc[1]);
                        checkEq(ot.offset(), tc[1], "offsetsForTimes(base+" + tc[0] + ") offset");
                        checkEq(ot.timestamp(), base + 1000L * tc[1], "offsetsForTimes(base+" + tc[0] + ") timestamp");
                    }
                }
            }
            // Admin.listOffsets(forTimestamp) answers the same
            try (Admin a = admin()) {
                ListOffsetsResult.ListOffsetsResultInfo r = a.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 3500))).partitionResult(tp).get(20, TimeUnit.SECONDS);
                checkEq(r.offset(), 4L, "Admin.listOffsets forTimestamp(base+3500)");
            }
        });
        CASES.put("idempotent_default_producer", () -> {
            // A producer with kafka-clients' DEFAULT settings: no enable.idempotence / acks override
            // (4.x defaults: enable.idempotence=true, acks=all, max.in.flight=5), so it sends
            // InitProducerId and numbers its batches. Only bootstrap, serializers and the case's own
            // timeouts are set; the default partitioner spreads the keyed records.
            String t = createTopic("idem-default", 3);
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20000);
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
            List<Rec> recs = simpleRecords(60, "idem", 0);
            List<Future<RecordMetadata>> futs = new ArrayList<>();
            long tSend = System.currentTimeMillis();
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
                for (int i = 0; i < recs.size(); i++) {   // 3 flushes: several batches per partition
                    Rec r = recs.get(i);
                    futs.add(p.send(new ProducerRecord<>(t, null, null, r.key(), r.value(), r.headers())));
                    if ((i + 1) % 20 == 0) p.flush();
                }
            }
            long tDone = System.currentTimeMillis();
            Map<Integer, List<Rec>> byPartition = new java.util.TreeMap<>();
            Map<Integer, List<Long>> offsets = new java.util.TreeMap<>();
            for (int i = 0; i < futs.size(); i++) {
                RecordMetadata md;
                try {
                    md = futs.get(i).get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    throw new Failure("delivery of record " + i + " failed: " + e.getCause());
                }
                byPartition.computeIfAbsent(md.partition(), k -> new ArrayList<>()).add(recs.get(i));
                offsets.computeIfAbsent(md.partition(), k -> new ArrayList<>()).add(md.offset());
            }
            checkEq(byPartition.keySet().toString(), "[0, 1, 2]", "partitions the default partitioner chose for 60 keys");
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < 3; p++) {
                List<Long> want = new ArrayList<>();
                for (long o = 0; o < byPartition.get(p).size(); o++) want.add(o);
                checkEq(offsets.get(p), want, "delivery report offsets of partition " + p + " (in send order)");
                checkRecords(consume(t, p, 0, byPartition.get(p).size()), byPartition.get(p), 0, p, false);
                checkBeginEnd(t, p, 0, byPartition.get(p).size());
                tps.add(new TopicPartition(t, p));
            }
            try (Admin a = admin()) {
                Map<TopicPartition, org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState> st =
                    a.describeProducers(tps).all().get(20, TimeUnit.SECONDS);
                Long pid = null;
                for (TopicPartition tp : tps) {
                    List<org.apache.kafka.clients.admin.ProducerState> ps = st.get(tp).activeProducers();
                    checkEq(ps.size(), 1, "describeProducers(" + tp.partition() + "): number of active producers (" + ps + ")");
                    org.apache.kafka.clients.admin.ProducerState s = ps.get(0);
                    check(s.producerId() >= 0, "partition " + tp.partition() + ": producer id " + s.producerId() + ", want >= 0");
                    if (pid == null) pid = s.producerId();
                    checkEq(s.producerId(), pid, "partition " + tp.partition() + ": producer id (same producer on every partition)");
                    checkEq(s.producerEpoch(), 0, "partition " + tp.partition() + ": producer epoch of a fresh idempotent producer");
                    checkEq(s.lastSequence(), byPartition.get(tp.partition()).size() - 1,
                        "partition " + tp.partition() + ": last sequence (records sent there - 1)");
                    check(s.currentTransactionStartOffset().isEmpty(),
                        "partition " + tp.partition() + ": current transaction start offset " + s.currentTransactionStartOffset() + ", want none");
                }
                // Kafka reports the max timestamp of the producer's last batch (CreateTime, set by
                // the client between tSend and tDone); checked last so that a broker reporting -1
                // (kfake: kfake-quirks.txt) fails on this alone
                for (TopicPartition tp : tps) {
                    long ts = st.get(tp).activeProducers().get(0).lastTimestamp();
                    check(ts >= tSend && ts <= tDone, "partition " + tp.partition() + ": last timestamp " + ts
                        + ", want the last batch's CreateTime, within [" + tSend + ", " + tDone + "]");
                }
            }
        });
        CASES.put("large_record", () -> {
            String t = createTopic("large", 1);
            byte[] big = new byte[700 * 1024];
            RNG.nextBytes(big);
            List<Rec> recs = List.of(new Rec(null, null, b("big"), big, List.of()), Rec.of("small", "after"));
            checkOffsets(produce(t, recs, Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 2 << 20), 0), 0, 0);
            checkRecords(consume(t, 0, 0, 2), recs);
        });
        registerGroupCases();
        registerGapCases();
    }

    /** Features Rivulet does not have yet, asserted as Kafka behaves: each is in allowlist.txt
     *  (XFAIL) with a FINDINGS.md entry until the feature lands, when the allowlist must shrink. */
    static void registerGapCases() {
        CASES.put("admin_describe_configs", () -> {
            String t = topicName("configs");
            try (Admin a = admin()) {
                a.createTopics(List.of(new NewTopic(t, 1, (short) 1).configs(Map.of("retention.ms", "3600000"))))
                    .all().get(20, TimeUnit.SECONDS);
                waitPartitions(a, t, 1);
                ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, t);
                Config c = a.describeConfigs(List.of(topic)).all().get(20, TimeUnit.SECONDS).get(topic);
                ConfigEntry retention = c.get("retention.ms");
                check(retention != null, "no retention.ms entry");
                checkEq(retention.value(), "3600000", "retention.ms value");
                checkEq(retention.source(), ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "retention.ms source");
                ConfigEntry cleanup = c.get("cleanup.policy");
                check(cleanup != null, "no cleanup.policy entry");
                checkEq(cleanup.value(), "delete", "cleanup.policy value");
                checkEq(cleanup.source(), ConfigEntry.ConfigSource.DEFAULT_CONFIG, "cleanup.policy source");
                int node = a.describeCluster().nodes().get(10, TimeUnit.SECONDS).iterator().next().id();
                ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(node));
                Config bc = a.describeConfigs(List.of(broker)).all().get(20, TimeUnit.SECONDS).get(broker);
                ConfigEntry parts = bc.get("num.partitions");
                check(parts != null && Integer.parseInt(parts.value()) >= 1, "broker num.partitions: " + parts);
            }
        });
        CASES.put("admin_delete_records", () -> {
            String t = createTopic("delrec", 1);
            List<Rec> recs = simpleRecords(5, "del", 0);
            checkOffsets(produce(t, recs), 0, 0);
            TopicPartition tp = new TopicPartition(t, 0);
            try (Admin a = admin()) {
                long low = a.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(2))).lowWatermarks().get(tp)
                    .get(20, TimeUnit.SECONDS).lowWatermark();
                checkEq(low, 2L, "low watermark after deleteRecords(before 2)");
            }
            checkBeginEnd(t, 0, 2, 5);
            checkRecords(consume(t, 0, 2, 3), recs.subList(2, 5), 2, 0, false);
        });
        CASES.put("txn_commit_abort", () -> {
            String t = createTopic("txn", 1);
            Map<String, Object> conf = Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "compat-java-txn-" + t,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true, ProducerConfig.MAX_BLOCK_MS_CONFIG, 15000);
            try (KafkaProducer<byte[], byte[]> p = producer(conf)) {
                p.initTransactions();
                p.beginTransaction();
                for (int i = 0; i < 3; i++) p.send(new ProducerRecord<>(t, 0, b("k"), b("commit-" + i)));
                p.commitTransaction();
                p.beginTransaction();
                for (int i = 0; i < 2; i++) p.send(new ProducerRecord<>(t, 0, b("k"), b("abort-" + i)));
                p.flush();   // written, then aborted: unsent records would just be dropped
                p.abortTransaction();
                p.beginTransaction();
                p.send(new ProducerRecord<>(t, 0, b("k"), b("commit-3")));
                p.commitTransaction();
            }
            // Offsets: 3 records, commit marker (3), 2 aborted (4, 5), abort marker (6), 1 record (7), marker (8).
            checkEq(committedView(t, "read_committed", 4), List.of("0:commit-0", "1:commit-1", "2:commit-2", "7:commit-3"),
                "read_committed consumer (offset:value)");
            checkEq(committedView(t, "read_uncommitted", 6), List.of("0:commit-0", "1:commit-1", "2:commit-2",
                "4:abort-0", "5:abort-1", "7:commit-3"), "read_uncommitted consumer (offset:value)");
            checkBeginEnd(t, 0, 0, 9);
        });
        TxnCases.register();
        AdminCases.register();
        CASES.put("group_consumer_protocol", () -> {
            // KIP-848: the Java client's next default group protocol (ConsumerGroupHeartbeat).
            String t = createTopic("kip848", 2);
            Map<String, Want> want = produceKeyed(t, 2, 3, "a");
            Properties p = groupProps(groupName("kip848"), "kip848", Map.of());
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            for (String k : List.of(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG,
                    ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG)) p.remove(k);   // not allowed with it
            List<Got> sink = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
                c.subscribe(List.of(t));
                long deadline = System.currentTimeMillis() + 30000;
                while (sink.size() < want.size() && System.currentTimeMillis() < deadline)
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200)))
                        sink.add(new Got("c", r.partition(), r.offset(), new String(r.key(), StandardCharsets.UTF_8),
                            new String(r.value(), StandardCharsets.UTF_8)));
                checkEq(ids(c.assignment()), Set.of(0, 1), "assignment");
            }
            checkExactlyOnce(sink, want);
        });
    }

    /** offset:value of every record of partition 0 a consumer with this isolation level reads. */
    static List<String> committedView(String topic, String isolation, int count) {
        List<String> out = new ArrayList<>();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long deadline = System.currentTimeMillis() + 15000;
            while (out.size() < count && System.currentTimeMillis() < deadline)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200)))
                    out.add(r.offset() + ":" + new String(r.value(), StandardCharsets.UTF_8));
            long end = System.currentTimeMillis() + 500;   // nothing may follow
            while (System.currentTimeMillis() < end)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100)))
                    out.add(r.offset() + ":" + new String(r.value(), StandardCharsets.UTF_8));
        }
        return out;
    }

    // ------------------------------------------------------------------------------- main

    /** Stops what a case left running (group members, child JVMs), also after a time-out. */
    static void cleanup() {
        List<AutoCloseable> left;
        synchronized (CLEANUP) {
            left = new ArrayList<>(CLEANUP);
            CLEANUP.clear();
        }
        Collections.reverse(left);
        for (AutoCloseable c : left) {
            try {
                c.close();
            } catch (Exception e) {
                System.err.println("# cleanup: " + e);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        long timeoutS = 60;
        List<String> only = new ArrayList<>();
        String groupsOpt = System.getenv("COMPAT_GROUPS");   // set by compat/run: 1 / 0
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--timeout" -> timeoutS = (long) Double.parseDouble(args[++i]);
                case "--only" -> only.add(args[++i]);
                case "--groups" -> groupsOpt = args[++i];
                case "--list" -> { register(); CASES.keySet().forEach(System.out::println); return; }
                case "--child-member" -> { childMember(args[i + 1], args[i + 2], Integer.parseInt(args[i + 3])); return; }
                case "--child-ctp" -> { TxnCases.childCtp(args[i + 1], args[i + 2], args[i + 3], args[i + 4]); return; }
                default -> { System.err.println("unknown argument " + args[i]); System.exit(2); }
            }
        }
        register();
        System.out.println("# client: kafka-clients " + AppInfoParser.getVersion() + " (Java " + System.getProperty("java.version") + ")");
        System.out.println("# bootstrap: " + bootstrap);
        boolean anyGroupCase = CASES.keySet().stream().anyMatch(n -> n.startsWith("group_") && (only.isEmpty() || only.stream().anyMatch(n::contains)));
        boolean groups = false;
        if (groupsOpt != null && !groupsOpt.isEmpty() && !groupsOpt.equals("auto")) {
            groups = List.of("1", "yes", "true", "on").contains(groupsOpt.toLowerCase());
        } else if (anyGroupCase) {
            try {
                Set<Integer> apis = advertisedApis(bootstrap);
                groups = apis.contains(10) && apis.contains(11);   // FindCoordinator, JoinGroup
            } catch (Exception ex) {
                System.err.println("# ApiVersions to " + bootstrap + " failed: " + ex + ": group cases SKIP");
            }
        }
        if (anyGroupCase)
            System.out.println("# consumer-group cases: " + (groups ? "run (FindCoordinator + JoinGroup advertised)" : "SKIP (" + NO_GROUPS + ")"));
        System.out.flush();
        int timeoutsInARow = 0;
        for (Map.Entry<String, Body> e : CASES.entrySet()) {
            String name = e.getKey();
            if (!only.isEmpty() && only.stream().noneMatch(name::contains)) continue;
            if (name.startsWith("group_") && !groups) {
                System.out.println("SKIP " + name + ": " + NO_GROUPS);
                continue;
            }
            if (timeoutsInARow >= 3) {  // a broker that stopped answering would cost a full timeout per case
                System.out.println("FAIL " + name + ": not run: " + timeoutsInARow + " cases in a row timed out (broker unresponsive?)");
                continue;
            }
            ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
                Thread th = new Thread(r, "case-" + name);
                th.setDaemon(true);
                return th;
            });
            long t0 = System.currentTimeMillis();
            String line;
            Future<?> f = ex.submit(() -> { e.getValue().run(); return null; });
            long caseTimeoutS = name.startsWith("group_") ? Math.max(timeoutS, 90) : timeoutS;   // group cases: 90 s
            try {
                f.get(caseTimeoutS, TimeUnit.SECONDS);
                line = "PASS " + name;
                timeoutsInARow = 0;
            } catch (TimeoutException te) {
                f.cancel(true);
                line = "FAIL " + name + ": timed out after " + caseTimeoutS + " s";
                timeoutsInARow++;
            } catch (ExecutionException ee) {
                Throwable c = ee.getCause();
                boolean timedOut = c instanceof TimeoutException || c instanceof org.apache.kafka.common.errors.TimeoutException
                    || (c.getCause() instanceof org.apache.kafka.common.errors.TimeoutException)
                    || String.valueOf(c.getMessage()).toLowerCase().contains("timed out");
                timeoutsInARow = timedOut ? timeoutsInARow + 1 : 0;
                if (c instanceof Skip) line = "SKIP " + name + ": " + c.getMessage();
                else if (c instanceof Failure) line = "FAIL " + name + ": " + c.getMessage();
                else {
                    System.err.println("case " + name + ":");
                    c.printStackTrace();
                    line = "FAIL " + name + ": " + c;
                }
            }
            ex.shutdownNow();
            cleanup();
            long took = System.currentTimeMillis() - t0;
            System.err.println("# " + name + " took " + took + " ms");
            System.out.println(line.replace('\n', ' '));
            if (name.startsWith("group_")) System.out.println(String.format("#   %s took %.1f s", name, took / 1000.0));
            System.out.flush();
        }
        System.exit(0);
    }
}
