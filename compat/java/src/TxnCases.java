import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Transactions and exactly-once with the Java client: commit and abort seen by read_committed and
 * read_uncommitted consumers, a zombie fenced by a second producer with the same transactional.id,
 * a consume-transform-produce loop whose JVM is SIGKILLed mid-run and restarted (every input record
 * in the output exactly once), and the same cases against a broker that finalizes
 * transaction.version=1 (the client then takes the KIP-890 part 1 path: AddPartitionsToTxn,
 * AddOffsetsToTxn, EndTxn without epoch bumps).
 */
final class TxnCases {
    private TxnCases() {}

    static Map<String, Object> txnConf(String id) {
        Map<String, Object> conf = new HashMap<>();
        conf.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        conf.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        conf.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20000);
        return conf;
    }

    static void register() {
        CompatSuite.CASES.put("txn_zombie_fenced", TxnCases::zombieFenced);
        CompatSuite.CASES.put("txn_consume_transform_produce_kill9", TxnCases::consumeTransformProduceKill9);
        CompatSuite.CASES.put("txn_tv1_commit_abort", () -> onTv1Broker(() -> CompatSuite.CASES.get("txn_commit_abort").run()));
        CompatSuite.CASES.put("txn_tv1_zombie_fenced", () -> onTv1Broker(TxnCases::zombieFenced));
        CompatSuite.CASES.put("txn_tv1_consume_transform_produce_kill9", () -> onTv1Broker(TxnCases::consumeTransformProduceKill9));
    }

    /** A second producer with the same transactional.id fences the first; its open transaction is aborted. */
    static void zombieFenced() throws Exception {
        String t = CompatSuite.createTopic("zombie", 1);
        String id = "compat-java-zombie-" + t;
        try (KafkaProducer<byte[], byte[]> zombie = CompatSuite.producer(txnConf(id))) {
            zombie.initTransactions();
            zombie.beginTransaction();
            zombie.send(new ProducerRecord<>(t, 0, CompatSuite.b("k"), CompatSuite.b("zombie-0"))).get(20, TimeUnit.SECONDS);
            try (KafkaProducer<byte[], byte[]> live = CompatSuite.producer(txnConf(id))) {
                live.initTransactions();   // fences the zombie and aborts its open transaction
                live.beginTransaction();
                live.send(new ProducerRecord<>(t, 0, CompatSuite.b("k"), CompatSuite.b("live-0")));
                live.commitTransaction();
            }
            boolean fenced = false;
            try {
                zombie.send(new ProducerRecord<>(t, 0, CompatSuite.b("k"), CompatSuite.b("zombie-1"))).get(20, TimeUnit.SECONDS);
                zombie.commitTransaction();
            } catch (ProducerFencedException | InvalidProducerEpochException e) {
                fenced = true;
            } catch (ExecutionException e) {
                fenced = e.getCause() instanceof ProducerFencedException || e.getCause() instanceof InvalidProducerEpochException;
                if (!fenced) throw e;
            } catch (org.apache.kafka.common.KafkaException e) {
                // commitTransaction after a failed send: the send's fencing error is the cause
                Throwable c = e;
                while (c != null && !fenced) {
                    fenced = c instanceof ProducerFencedException || c instanceof InvalidProducerEpochException;
                    c = c.getCause();
                }
                if (!fenced) throw e;
            }
            CompatSuite.check(fenced, "the zombie's send and commit went through after a second producer fenced it");
        }
        // zombie-0 (offset 0) aborted by the fence: marker at 1; live-0 at 2, its marker at 3.
        CompatSuite.checkEq(CompatSuite.committedView(t, "read_committed", 1), List.of("2:live-0"),
            "read_committed consumer (offset:value)");
        CompatSuite.checkEq(CompatSuite.committedView(t, "read_uncommitted", 2), List.of("0:zombie-0", "2:live-0"),
            "read_uncommitted consumer (offset:value)");
    }

    static final int CTP_RECORDS = 400;

    /**
     * A consume-transform-produce loop in a child JVM (read_committed consumer, transactional producer,
     * sendOffsetsToTransaction per batch of 10) is SIGKILLed mid-run and restarted with the same
     * transactional.id and group: the output holds every input record exactly once.
     */
    static void consumeTransformProduceKill9() throws Exception {
        String in = CompatSuite.createTopic("ctp-in", 1);
        String out = CompatSuite.createTopic("ctp-out", 1);
        List<CompatSuite.Rec> recs = CompatSuite.simpleRecords(CTP_RECORDS, "in", 0);
        CompatSuite.produce(in, recs);
        String group = "compat-java-ctp-" + in;
        String id = "compat-java-ctp-" + in;
        AtomicLong progress = new AtomicLong();
        Process first = startChild(in, out, group, id, progress, "ctp-1");
        long deadline = System.currentTimeMillis() + 30000;
        while (progress.get() < 100 && System.currentTimeMillis() < deadline && first.isAlive()) Thread.sleep(20);
        CompatSuite.check(progress.get() >= 100, "the first loop processed only " + progress.get() + " records in 30 s");
        first.destroyForcibly();   // SIGKILL, most likely inside a transaction
        first.waitFor(10, TimeUnit.SECONDS);
        long atKill = progress.get();
        AtomicLong progress2 = new AtomicLong();
        Process second = startChild(in, out, group, id, progress2, "ctp-2");
        try {
            List<String> got = outputValues(out, CTP_RECORDS, 45000);
            List<String> want = new ArrayList<>();
            for (CompatSuite.Rec r : recs) want.add("out-" + new String(r.value(), StandardCharsets.UTF_8));
            Map<String, Integer> counts = new TreeMap<>();
            for (String v : got) counts.merge(v, 1, Integer::sum);
            List<String> dup = new ArrayList<>();
            counts.forEach((v, n) -> { if (n > 1) dup.add(v + " x" + n); });
            CompatSuite.check(dup.isEmpty(), "duplicates in the read_committed output (killed after " + atKill + "): " + dup);
            CompatSuite.checkEq(got.size(), want.size(), "read_committed output records (killed after " + atKill + ")");
            CompatSuite.checkEq(got, want, "read_committed output in input order");
        } finally {
            second.destroyForcibly();
            second.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** Values of the first `count` records a read_committed consumer reads from partition 0 (waits up to timeoutMs). */
    static List<String> outputValues(String topic, int count, long timeoutMs) {
        List<String> out = new ArrayList<>();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, CompatSuite.bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (out.size() < count && System.currentTimeMillis() < deadline)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200)))
                    out.add(new String(r.value(), StandardCharsets.UTF_8));
            long end = System.currentTimeMillis() + 1000;   // nothing may follow
            while (System.currentTimeMillis() < end)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100)))
                    out.add(new String(r.value(), StandardCharsets.UTF_8));
        }
        return out;
    }

    static Process startChild(String in, String out, String group, String id, AtomicLong progress, String log) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"));
        String log4j = System.getProperty("log4j2.configurationFile");
        if (log4j != null) cmd.add("-Dlog4j2.configurationFile=" + log4j);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "CompatSuite", "--bootstrap", CompatSuite.bootstrap,
            "--child-ctp", in, out, group, id));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        String logDir = System.getenv("COMPAT_JAVA_LOG_DIR");
        pb.redirectError(logDir != null ? ProcessBuilder.Redirect.to(new File(logDir, log + ".log"))
            : ProcessBuilder.Redirect.DISCARD);
        Process proc = pb.start();
        CompatSuite.CLEANUP.add(() -> { proc.destroyForcibly(); proc.waitFor(10, TimeUnit.SECONDS); });
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null)
                    if (line.startsWith("DONE ")) progress.set(Long.parseLong(line.substring(5).trim()));
            } catch (Exception e) {
                // the process was killed
            }
        }, "ctp-reader");
        reader.setDaemon(true);
        reader.start();
        return proc;
    }

    /** The child JVM: the consume-transform-produce loop, printing "DONE n" after each commit. */
    static void childCtp(String in, String out, String group, String id) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, CompatSuite.bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long done = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp);
             KafkaProducer<byte[], byte[]> p = CompatSuite.producer(txnConf(id))) {
            p.initTransactions();
            c.subscribe(List.of(in));
            while (true) {
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) continue;
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    p.send(new ProducerRecord<>(out, 0, r.key(), CompatSuite.b("out-" + new String(r.value(), StandardCharsets.UTF_8))));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                Thread.sleep(15);   // a window for the kill inside the transaction
                p.commitTransaction();
                done += recs.count();
                System.out.println("DONE " + done);
                System.out.flush();
            }
        } catch (Exception e) {
            System.err.println("ctp loop: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }

    // ------------------------------------------------------------------------------- TV1 broker

    static String tv1Bootstrap;

    /** Runs a case against a second Rivulet broker started with transaction.version=1 (RIVULET_BROKER_BIN). */
    static void onTv1Broker(CompatSuite.Body body) throws Exception {
        String bin = System.getenv("RIVULET_BROKER_BIN");
        if (bin == null || bin.isEmpty() || new File(bin).getName().startsWith("kfake"))
            throw new CompatSuite.Skip("needs a Rivulet binary to start a transaction.version=1 broker (RIVULET_BROKER_BIN; compat/run sets it)");
        if (tv1Bootstrap == null) {
            int port;
            try (ServerSocket s = new ServerSocket(0)) { port = s.getLocalPort(); }
            File dir = Files.createTempDirectory("rivulet-tv1").toFile();
            String listener = "PLAINTEXT://127.0.0.1:" + port;
            ProcessBuilder pb = new ProcessBuilder(bin, "--listeners", listener, "--advertised-listeners", listener,
                "--log-dirs", dir.getPath(), "--override", "transaction.version=1",
                "--override", "auto.create.topics.enable=true", "--override", "num.partitions=1");
            String logDir = System.getenv("COMPAT_JAVA_LOG_DIR");
            pb.redirectErrorStream(true);
            pb.redirectOutput(logDir != null ? ProcessBuilder.Redirect.to(new File(logDir, "tv1-broker.log"))
                : ProcessBuilder.Redirect.DISCARD);
            Process broker = pb.start();
            Runtime.getRuntime().addShutdownHook(new Thread(broker::destroyForcibly));
            long deadline = System.currentTimeMillis() + 20000;
            boolean up = false;
            while (!up && System.currentTimeMillis() < deadline) {
                try (Socket s = new Socket("127.0.0.1", port)) { up = true; } catch (Exception e) { Thread.sleep(100); }
            }
            CompatSuite.check(up, "the transaction.version=1 broker did not listen on " + port);
            tv1Bootstrap = "127.0.0.1:" + port;
        }
        String saved = CompatSuite.bootstrap;
        CompatSuite.bootstrap = tv1Bootstrap;
        try {
            body.run();
        } finally {
            CompatSuite.bootstrap = saved;
        }
    }
}
