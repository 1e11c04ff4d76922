import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produce throughput of the stock Java producer: 1 KiB records to a new 6-partition topic,
 * acks=all, with the client's default (idempotent) settings or with enable.idempotence=false.
 * Usage: ProducerBench BOOTSTRAP RECORDS idempotent|plain
 */
public class ProducerBench {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        int records = Integer.parseInt(args[1]);
        boolean idempotent = args[2].equals("idempotent");
        String topic = "bench-java-" + args[2] + "-" + System.nanoTime();
        Properties admin = new Properties();
        admin.put("bootstrap.servers", bootstrap);
        try (Admin a = Admin.create(admin)) {
            a.createTopics(java.util.List.of(new NewTopic(topic, 6, (short) 1))).all().get();
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        if (!idempotent) {
            p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        }
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(256L << 20));
        byte[] value = new byte[1024];
        new java.util.Random(1).nextBytes(value);
        AtomicLong errors = new AtomicLong();
        long start = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < records; i++) {
                producer.send(new ProducerRecord<>(topic, i % 6, null, value), (md, e) -> {
                    if (e != null) errors.incrementAndGet();
                });
            }
            producer.flush();
        }
        double secs = (System.nanoTime() - start) / 1e9;
        double mb = records * 1024.0 / 1e6;
        if (errors.get() > 0) {
            System.out.println("FAILED: " + errors.get() + " send errors");
            System.exit(1);
        }
        System.out.printf("java %s acks=all: %.0f records/s, %.1f MB/s%n",
                idempotent ? "idempotent (default)" : "enable.idempotence=false", records / secs, mb / secs);
    }
}
