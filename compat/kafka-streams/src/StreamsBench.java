import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.Stores;

/**
 * Figures (not run by the suite):
 *   java -Xmx512m -cp classes:streams-libs/* StreamsBench --bootstrap H:P throughput [RECORDS] [at_least_once|exactly_once_v2]
 *     RECORDS 1 KiB records (10,000 keys) into a 6-partition topic, then a count topology
 *     (in-memory store, default cache and commit interval) from the beginning: records/s from RUNNING
 *     until every input record went through the topology.
 *   java -Xmx512m -cp ... StreamsBench --bootstrap H:P restore [RECORDS]
 *     RECORDS records with distinct keys, counted (cache off) so the changelog holds RECORDS records;
 *     the application is closed, its state dir deleted, and a new instance restores: the time from
 *     start() to the last onRestoreEnd, and the first onRestoreStart to the last onRestoreEnd.
 */
public class StreamsBench {
    static String bootstrap;
    static final String RUN = Long.toString(System.currentTimeMillis() / 1000, 36);

    public static void main(String[] args) throws Exception {
        bootstrap = args[1];
        String mode = args[2];
        long n = args.length > 3 ? Long.parseLong(args[3]) : (mode.equals("restore") ? 1_000_000 : 200_000);
        try (Admin admin = Admin.create(java.util.Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            String in = "bench-streams-" + mode + "-" + RUN;
            admin.createTopics(List.of(new NewTopic(in, 6, (short) 1), new NewTopic(in + "-out", 6, (short) 1))).all().get(30, TimeUnit.SECONDS);
            int size = mode.equals("restore") ? 16 : 1024;
            long t0 = System.nanoTime();
            produce(in, n, size, mode.equals("restore"));
            System.out.printf("produced %d records of %d bytes in %.1f s%n", n, size, (System.nanoTime() - t0) / 1e9);
            if (mode.equals("throughput")) throughput(in, n, args.length > 4 ? args[4] : "at_least_once");
            else restore(in, n);
        }
    }

    static void produce(String topic, long n, int size, boolean distinct) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        byte[] value = new byte[size];
        java.util.Arrays.fill(value, (byte) 'x');
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (long i = 0; i < n; i++) {
                String k = distinct ? String.format("key-%08d", i) : "k" + (i % 10_000);
                prod.send(new ProducerRecord<>(topic, k.getBytes(), value));
            }
            prod.flush();
        }
    }

    static Properties props(String appId, Path state, String guarantee) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put("consumer.auto.offset.reset", "earliest");
        return p;
    }

    static void throughput(String in, long n, String guarantee) throws Exception {
        AtomicLong seen = new AtomicLong();
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.ByteArray()))
         .peek((k, v) -> seen.incrementAndGet())
         .groupByKey()
         .count(Materialized.as(Stores.inMemoryKeyValueStore("counts")))
         .toStream().to(in + "-out", Produced.with(Serdes.String(), Serdes.Long()));
        Path state = Files.createTempDirectory("streams-bench-");
        KafkaStreams s = new KafkaStreams(b.build(), props("bench-count-" + RUN, state, guarantee));
        long[] running = {0};
        s.setStateListener((now, before) -> { if (now == KafkaStreams.State.RUNNING && running[0] == 0) running[0] = System.nanoTime(); });
        long t0 = System.nanoTime();
        s.start();
        while (seen.get() < n) Thread.sleep(20);
        long t1 = System.nanoTime();
        s.close(Duration.ofSeconds(30));
        double secs = (t1 - running[0]) / 1e9;
        System.out.printf("count topology (%s): %d records of 1 KiB, 6 partitions, in %.2f s from RUNNING (%.2f s from start()): %.0f records/s, %.1f MB/s%n",
            guarantee, n, secs, (t1 - t0) / 1e9, n / secs, n * 1024 / secs / 1e6);
    }

    static void restore(String in, long n) throws Exception {
        String appId = "bench-restore-" + RUN;
        AtomicLong seen = new AtomicLong();
        Path state = Files.createTempDirectory("streams-bench-");
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), Serdes.ByteArray()))
         .peek((k, v) -> seen.incrementAndGet())
         .groupByKey()
         .count(Materialized.as(Stores.inMemoryKeyValueStore("counts")));
        Properties p = props(appId, state, "at_least_once");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        KafkaStreams s = new KafkaStreams(b.build(), p);
        long t0 = System.nanoTime();
        s.start();
        while (seen.get() < n) Thread.sleep(50);
        s.close(Duration.ofSeconds(60));
        System.out.printf("first run counted %d records in %.1f s%n", n, (System.nanoTime() - t0) / 1e9);
        try (var w = Files.walk(state)) { w.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete()); }
        Files.createDirectories(state);
        AtomicLong restored = new AtomicLong(), firstStart = new AtomicLong(), lastEnd = new AtomicLong();
        KafkaStreams s2 = new KafkaStreams(b.build(), p);
        s2.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override public void onRestoreStart(TopicPartition tp, String store, long from, long to) { firstStart.compareAndSet(0, System.nanoTime()); }
            @Override public void onBatchRestored(TopicPartition tp, String store, long end, long k) {}
            @Override public void onRestoreEnd(TopicPartition tp, String store, long total) { restored.addAndGet(total); lastEnd.set(System.nanoTime()); }
        });
        long[] running = {0};
        s2.setStateListener((now, before) -> { if (now == KafkaStreams.State.RUNNING && running[0] == 0) running[0] = System.nanoTime(); });
        long t1 = System.nanoTime();
        s2.start();
        while (running[0] == 0) Thread.sleep(20);
        s2.close(Duration.ofSeconds(30));
        System.out.printf("restore: %d changelog records restored; first onRestoreStart -> last onRestoreEnd %.2f s (%.0f records/s); start() -> RUNNING %.2f s%n",
            restored.get(), (lastEnd.get() - firstStart.get()) / 1e9, restored.get() / ((lastEnd.get() - firstStart.get()) / 1e9), (running[0] - t1) / 1e9);
    }
}
