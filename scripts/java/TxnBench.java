import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Transactional produce with the stock Java producer (1 KiB records, 6 partitions, acks=all).
 * Usage: TxnBench BOOTSTRAP RECORDS idempotent|txn:N    throughput, N records per transaction
 *        TxnBench BOOTSTRAP TXNS latency                 commit latency and read_committed delay
 */
public class TxnBench {
    static String bootstrap;

    static String topic(String tag, int partitions) throws Exception {
        String t = "bench-txn-" + tag + "-" + System.nanoTime();
        Properties admin = new Properties();
        admin.put("bootstrap.servers", bootstrap);
        try (Admin a = Admin.create(admin)) {
            a.createTopics(List.of(new NewTopic(t, partitions, (short) 1))).all().get();
        }
        return t;
    }

    static KafkaProducer<byte[], byte[]> producer(String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(256L << 20));
        if (txnId != null) p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static double pct(List<Long> xs, double q) {
        List<Long> s = new ArrayList<>(xs);
        Collections.sort(s);
        return s.get(Math.min(s.size() - 1, (int) Math.floor(q * s.size()))) / 1e6;
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        int n = Integer.parseInt(args[1]);
        String mode = args[2];
        if (mode.equals("latency")) {
            latency(n);
            return;
        }
        String t = topic(mode.replace(':', '-'), 6);
        byte[] value = new byte[1024];
        new java.util.Random(1).nextBytes(value);
        int perTxn = mode.startsWith("txn:") ? Integer.parseInt(mode.substring(4)) : 0;
        AtomicLong errors = new AtomicLong();
        long start = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> p = producer(perTxn > 0 ? "bench-" + System.nanoTime() : null)) {
            if (perTxn > 0) p.initTransactions();
            for (int i = 0; i < n; i++) {
                if (perTxn > 0 && i % perTxn == 0) p.beginTransaction();
                p.send(new ProducerRecord<>(t, i % 6, null, value), (md, e) -> {
                    if (e != null) errors.incrementAndGet();
                });
                if (perTxn > 0 && (i % perTxn == perTxn - 1 || i == n - 1)) p.commitTransaction();
            }
            p.flush();
        }
        double secs = (System.nanoTime() - start) / 1e9;
        if (errors.get() > 0) {
            System.out.println("FAILED: " + errors.get() + " send errors");
            System.exit(1);
        }
        System.out.printf("java %s: %.0f records/s, %.1f MB/s%n",
            perTxn > 0 ? "transactions of " + perTxn : "idempotent", n / secs, n * 1024.0 / 1e6 / secs);
    }

    /** TXNS transactions of 10 records to one partition: EndTxn latency, and how long after the
     * commit started a read_committed consumer first sees the transaction's records. */
    static void latency(int txns) throws Exception {
        String t = topic("latency", 1);
        Map<Integer, Long> commitStart = new ConcurrentHashMap<>();
        Map<Integer, Long> seen = new ConcurrentHashMap<>();
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("isolation.level", "read_committed");
        cp.put("fetch.max.wait.ms", "500");
        Thread consumer = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                TopicPartition tp = new TopicPartition(t, 0);
                c.assign(List.of(tp));
                c.seek(tp, 0);
                while (seen.size() < txns) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                        int k = Integer.parseInt(new String(r.key()));
                        seen.putIfAbsent(k, System.nanoTime());
                    }
                }
            }
        });
        consumer.start();
        List<Long> endTxn = new ArrayList<>();
        byte[] value = new byte[1024];
        try (KafkaProducer<byte[], byte[]> p = producer("bench-latency-" + System.nanoTime())) {
            p.initTransactions();
            for (int k = 0; k < txns; k++) {
                p.beginTransaction();
                for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(t, 0, Integer.toString(k).getBytes(), value));
                p.flush();   // the records are written: what follows is EndTxn alone
                long s = System.nanoTime();
                commitStart.put(k, s);
                p.commitTransaction();
                endTxn.add(System.nanoTime() - s);
            }
        }
        consumer.join(60000);
        List<Long> delay = new ArrayList<>();
        for (int k = 0; k < txns; k++) {
            Long a = seen.get(k), s = commitStart.get(k);
            if (a != null && s != null) delay.add(Math.max(0, a - s));
        }
        System.out.printf("commit latency (EndTxn: prepare, markers durable, complete): p50 %.2f ms, p99 %.2f ms (%d transactions)%n",
            pct(endTxn, 0.5), pct(endTxn, 0.99), endTxn.size());
        System.out.printf("read_committed visibility after commit started: p50 %.2f ms, p99 %.2f ms (%d seen)%n",
            pct(delay, 0.5), pct(delay, 0.99), delay.size());
    }
}
