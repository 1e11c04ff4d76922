import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Collectors;

import org.apache.kafka.common.TopicPartition;
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
 * The README's Kafka Streams example, and the application the compat suite SIGKILLs in
 * streams_eos_kill9: counts the records of a topic per key, exactly once, and writes every new count
 * to another topic (key -> "1", "2", ...). The count lives in an in-memory store (no RocksDB), backed
 * by the compacted changelog topic APPLICATION_ID-counts-changelog that Kafka Streams creates, from
 * which a restarted instance restores it.
 *
 *   java -cp "kafka-streams-jars/*:." CountApp --bootstrap localhost:9092 --input events \
 *        --output event-counts --application-id event-counter --state-dir /tmp/event-counter [key=value ...]
 *
 * Extra key=value arguments are Streams configs (the suite passes session.timeout.ms=6000). It prints
 * "@@ state NEW_STATE partitions [..]" on every state change and "@@ restored N records of STORE
 * from PARTITION in MS ms" after restoring, and closes cleanly on SIGTERM.
 */
public class CountApp {
    public static void main(String[] args) throws Exception {
        String bootstrap = "localhost:9092", input = "events", output = "event-counts";
        String appId = "event-counter", stateDir = System.getProperty("java.io.tmpdir") + "/event-counter";
        Properties props = new Properties();
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);   // forward every update: 1, 2, 3, ...
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--input" -> input = args[++i];
                case "--output" -> output = args[++i];
                case "--application-id" -> appId = args[++i];
                case "--state-dir" -> stateDir = args[++i];
                default -> {
                    String[] kv = args[i].split("=", 2);
                    if (kv.length != 2) throw new IllegalArgumentException("unknown argument " + args[i]);
                    props.put(kv[0], kv[1]);
                }
            }
        }
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
               .groupByKey()
               .count(Materialized.as(Stores.inMemoryKeyValueStore("counts")))
               .toStream()
               .mapValues(count -> Long.toString(count))
               .to(output, Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        watch(streams);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }

    /** Prints state changes (with the partitions this instance then owns) and restores on stdout. */
    static void watch(KafkaStreams streams) {
        streams.setStateListener((now, before) -> {
            String parts = now == KafkaStreams.State.RUNNING ? " partitions " + streams.metadataForLocalThreads().stream()
                .flatMap(t -> t.activeTasks().stream()).flatMap(t -> t.topicPartitions().stream())
                .map(TopicPartition::toString).sorted().collect(Collectors.toList()) : "";
            System.out.println("@@ state " + now + parts);
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            final java.util.Map<TopicPartition, Long> started = new java.util.concurrent.ConcurrentHashMap<>();
            @Override public void onRestoreStart(TopicPartition tp, String store, long from, long to) {
                started.put(tp, System.nanoTime());
                System.out.println("@@ restoring " + store + " from " + tp + " offsets " + from + ".." + to);
            }
            @Override public void onBatchRestored(TopicPartition tp, String store, long end, long n) {}
            @Override public void onRestoreEnd(TopicPartition tp, String store, long total) {
                long ms = (System.nanoTime() - started.getOrDefault(tp, System.nanoTime())) / 1_000_000;
                System.out.println("@@ restored " + total + " records of " + store + " from " + tp + " in " + ms + " ms");
            }
        });
    }
}
