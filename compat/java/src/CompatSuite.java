// Java kafka-clients compatibility cases for the broker core.
//
// Compiled by compat/java/run with javac 17 against kafka-clients 4.3.0 (jars from
// scripts/compat-setup.sh). No consumer groups (no group.id: assign + seek, no commits). Producers
// set enable.idempotence=false except idempotent_default_producer, which keeps the client's
// defaults (idempotent, acks=all: InitProducerId + DescribeProducers).
//
// Output: "# client: ..." then one "PASS name" / "FAIL name: reason" / "SKIP name: reason" line
// per case; compat/java/run turns that into the closing "N passed, M failed, K skipped" line.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.InvalidPartitionsException;
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
    }

    // ------------------------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        long timeoutS = 60;
        List<String> only = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--timeout" -> timeoutS = (long) Double.parseDouble(args[++i]);
                case "--only" -> only.add(args[++i]);
                case "--list" -> { register(); CASES.keySet().forEach(System.out::println); return; }
                default -> { System.err.println("unknown argument " + args[i]); System.exit(2); }
            }
        }
        register();
        System.out.println("# client: kafka-clients " + AppInfoParser.getVersion() + " (Java " + System.getProperty("java.version") + ")");
        System.out.println("# bootstrap: " + bootstrap);
        System.out.flush();
        int timeoutsInARow = 0;
        for (Map.Entry<String, Body> e : CASES.entrySet()) {
            String name = e.getKey();
            if (!only.isEmpty() && only.stream().noneMatch(name::contains)) continue;
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
            try {
                f.get(timeoutS, TimeUnit.SECONDS);
                line = "PASS " + name;
                timeoutsInARow = 0;
            } catch (TimeoutException te) {
                f.cancel(true);
                line = "FAIL " + name + ": timed out after " + timeoutS + " s";
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
            System.err.println("# " + name + " took " + (System.currentTimeMillis() - t0) + " ms");
            System.out.println(line.replace('\n', ' '));
            System.out.flush();
        }
        System.exit(0);
    }
}
