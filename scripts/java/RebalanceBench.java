import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.serialization.*;

/**
 * Time from the third consumer's subscribe() to a stable group of three members owning all six
 * partitions of a fresh topic (Java consumer defaults: classic protocol, range assignor,
 * heartbeat.interval.ms 3000). Usage: RebalanceBench BOOTSTRAP ROUNDS
 */
public class RebalanceBench {
    public static void main(String[] args) throws Exception {
        String b = args[0];
        int rounds = Integer.parseInt(args[1]);
        Properties ap = new Properties();
        ap.put("bootstrap.servers", b);
        try (Admin admin = Admin.create(ap)) {
            for (int round = 0; round < rounds; round++) {
                String topic = "third-" + System.nanoTime();
                String group = "third-g-" + round + "-" + System.nanoTime();
                admin.createTopics(List.of(new NewTopic(topic, 6, (short) 1))).all().get();
                ConcurrentHashMap<Integer, Set<TopicPartition>> owned = new ConcurrentHashMap<>();
                AtomicBoolean stop = new AtomicBoolean();
                ExecutorService ex = Executors.newCachedThreadPool();
                long[] subscribed = new long[3];
                CountDownLatch[] go = {new CountDownLatch(1), new CountDownLatch(1), new CountDownLatch(1)};
                for (int i = 0; i < 3; i++) {
                    final int id = i;
                    ex.submit(() -> {
                        go[id].await();
                        Properties p = new Properties();
                        p.put("bootstrap.servers", b);
                        p.put("group.id", group);
                        p.put("key.deserializer", StringDeserializer.class.getName());
                        p.put("value.deserializer", StringDeserializer.class.getName());
                        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
                            subscribed[id] = System.nanoTime();
                            c.subscribe(List.of(topic));
                            while (!stop.get()) {
                                c.poll(Duration.ofMillis(50));
                                owned.put(id, new HashSet<>(c.assignment()));
                            }
                        }
                        return null;
                    });
                }
                go[0].countDown(); go[1].countDown();
                waitFor(owned, 2);
                go[2].countDown();
                while (subscribed[2] == 0) Thread.sleep(1);
                waitFor(owned, 3);
                long ms = (System.nanoTime() - subscribed[2]) / 1_000_000;
                System.out.println("round " + round + ": third subscribe -> 3 members own 6 partitions: " + ms + " ms");
                stop.set(true);
                ex.shutdown();
                ex.awaitTermination(60, TimeUnit.SECONDS);
            }
        }
    }

    static void waitFor(Map<Integer, Set<TopicPartition>> owned, int members) throws Exception {
        long deadline = System.currentTimeMillis() + 120_000;
        while (System.currentTimeMillis() < deadline) {
            int total = 0, withParts = 0;
            Set<TopicPartition> all = new HashSet<>();
            for (Set<TopicPartition> s : owned.values()) { total += s.size(); all.addAll(s); if (!s.isEmpty()) withParts++; }
            if (withParts == members && total == 6 && all.size() == 6) return;
            Thread.sleep(5);
        }
        throw new RuntimeException("never stable with " + members + " members: " + owned);
    }
}
