import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.InvalidReplicaAssignmentException;
import org.apache.kafka.common.errors.UnknownTopicIdException;

/**
 * The Java AdminClient on the admin surface: describeTopics by id (Metadata v12+) and by name with
 * a partition limit per response (DescribeTopicPartitions pages), electLeaders and partition
 * reassignments as a single-node Kafka answers them.
 */
final class AdminCases {
    private AdminCases() {}

    static void register() {
        CompatSuite.CASES.put("admin_describe_topics_by_id_and_paged", AdminCases::describeTopics);
        CompatSuite.CASES.put("admin_elect_leaders_and_reassignments", AdminCases::electAndReassign);
        CompatSuite.CASES.put("admin_describe_log_dirs", AdminCases::describeLogDirs);
        CompatSuite.CASES.put("admin_incremental_alter_configs", AdminCases::alterConfigs);
        CompatSuite.CASES.put("admin_features", AdminCases::features);
        CompatSuite.CASES.put("admin_group_client_metrics_logger_configs", AdminCases::otherConfigResources);
    }

    /**
     * describeFeatures (ApiVersions): transaction.version supported 0-2 and finalized at 2;
     * updateFeatures checks a safe downgrade with validateOnly (nothing changes: the transaction
     * cases need level 2) and refuses a level past the supported range.
     */
    static void features() throws Exception {
        try (Admin a = CompatSuite.admin()) {
            var f = a.describeFeatures().featureMetadata().get(20, TimeUnit.SECONDS);
            var supported = f.supportedFeatures().get("transaction.version");
            CompatSuite.check(supported != null, "transaction.version not supported: " + f.supportedFeatures());
            CompatSuite.checkEq(supported.minVersion() + "-" + supported.maxVersion(), "0-2", "supported transaction.version");
            var finalized = f.finalizedFeatures().get("transaction.version");
            CompatSuite.check(finalized != null, "transaction.version not finalized: " + f.finalizedFeatures());
            CompatSuite.checkEq(finalized.maxVersionLevel(), (short) 2, "finalized transaction.version");
            long epoch = f.finalizedFeaturesEpoch().orElse(-1L);
            var down = new org.apache.kafka.clients.admin.FeatureUpdate((short) 1,
                org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType.SAFE_DOWNGRADE);
            a.updateFeatures(Map.of("transaction.version", down),
                new org.apache.kafka.clients.admin.UpdateFeaturesOptions().validateOnly(true)).all().get(20, TimeUnit.SECONDS);
            var after = a.describeFeatures().featureMetadata().get(20, TimeUnit.SECONDS);
            CompatSuite.checkEq(after.finalizedFeatures().get("transaction.version").maxVersionLevel(), (short) 2,
                "finalized transaction.version after a validateOnly downgrade");
            CompatSuite.checkEq(after.finalizedFeaturesEpoch().orElse(-1L), epoch, "features epoch after validateOnly");
            var tooHigh = new org.apache.kafka.clients.admin.FeatureUpdate((short) 3,
                org.apache.kafka.clients.admin.FeatureUpdate.UpgradeType.UPGRADE);
            try {
                a.updateFeatures(Map.of("transaction.version", tooHigh), new org.apache.kafka.clients.admin.UpdateFeaturesOptions())
                    .all().get(20, TimeUnit.SECONDS);
                throw new CompatSuite.Failure("transaction.version 3 was accepted");
            } catch (ExecutionException e) {
                CompatSuite.check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidUpdateVersionException,
                    "level 3: want InvalidUpdateVersionException, got " + e.getCause());
            }
        }
    }

    /**
     * The config resources besides topics and brokers: a GROUP's consumer.session.timeout.ms
     * (stored for a group that need not exist, GROUP_CONFIG source, refused outside the broker's
     * bounds), a CLIENT_METRICS subscription (set, described, deleted), and BROKER_LOGGER levels
     * (root listed, a logger set to DEBUG and back).
     */
    static void otherConfigResources() throws Exception {
        java.util.function.BiFunction<String, String, org.apache.kafka.clients.admin.ConfigEntry> e =
            org.apache.kafka.clients.admin.ConfigEntry::new;
        var SET = org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET;
        var DELETE = org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE;
        try (Admin a = CompatSuite.admin()) {
            var group = new org.apache.kafka.common.config.ConfigResource(
                org.apache.kafka.common.config.ConfigResource.Type.GROUP, "compat-group-config-" + System.nanoTime());
            a.incrementalAlterConfigs(Map.of(group, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                e.apply("consumer.session.timeout.ms", "50000"), SET)))).all().get(20, TimeUnit.SECONDS);
            var g = a.describeConfigs(List.of(group)).all().get(20, TimeUnit.SECONDS).get(group);
            var session = g.get("consumer.session.timeout.ms");
            CompatSuite.checkEq(session.value() + " " + session.source(), "50000 DYNAMIC_GROUP_CONFIG", "group session timeout");
            CompatSuite.checkEq(g.get("consumer.heartbeat.interval.ms").source(),
                org.apache.kafka.clients.admin.ConfigEntry.ConfigSource.DEFAULT_CONFIG, "an unset group config's source");
            try {
                a.incrementalAlterConfigs(Map.of(group, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                    e.apply("consumer.session.timeout.ms", "1000"), SET)))).all().get(20, TimeUnit.SECONDS);
                throw new CompatSuite.Failure("a session timeout below group.consumer.min.session.timeout.ms was accepted");
            } catch (ExecutionException ex) {
                CompatSuite.check(ex.getCause() instanceof org.apache.kafka.common.errors.InvalidConfigurationException,
                    "group session timeout 1000: want InvalidConfigurationException, got " + ex.getCause());
            }
            var metrics = new org.apache.kafka.common.config.ConfigResource(
                org.apache.kafka.common.config.ConfigResource.Type.CLIENT_METRICS, "compat-sub-" + System.nanoTime());
            a.incrementalAlterConfigs(Map.of(metrics, List.of(
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("metrics", "org.apache.kafka.producer."), SET),
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("interval.ms", "60000"), SET)))).all().get(20, TimeUnit.SECONDS);
            var m = a.describeConfigs(List.of(metrics)).all().get(20, TimeUnit.SECONDS).get(metrics);
            CompatSuite.checkEq(m.get("interval.ms").value() + " " + m.get("interval.ms").source(), "60000 DYNAMIC_CLIENT_METRICS_CONFIG",
                "subscription interval.ms");
            a.incrementalAlterConfigs(Map.of(metrics, List.of(
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("metrics", null), DELETE),
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("interval.ms", null), DELETE)))).all().get(20, TimeUnit.SECONDS);
            m = a.describeConfigs(List.of(metrics)).all().get(20, TimeUnit.SECONDS).get(metrics);
            CompatSuite.checkEq(m.get("interval.ms").value(), "300000", "subscription interval.ms after it was deleted");
            int node = a.describeCluster().nodes().get(20, TimeUnit.SECONDS).iterator().next().id();
            var loggers = new org.apache.kafka.common.config.ConfigResource(
                org.apache.kafka.common.config.ConfigResource.Type.BROKER_LOGGER, String.valueOf(node));
            var l = a.describeConfigs(List.of(loggers)).all().get(20, TimeUnit.SECONDS).get(loggers);
            CompatSuite.check(l.get("root") != null, "BROKER_LOGGER lists no root logger: " + l.entries().size() + " entries");
            String logger = null;
            for (var entry : l.entries()) if (!entry.name().equals("root")) { logger = entry.name(); break; }
            CompatSuite.check(logger != null, "BROKER_LOGGER lists no logger besides root");
            String before = l.get(logger).value();
            a.incrementalAlterConfigs(Map.of(loggers, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                e.apply(logger, "DEBUG"), SET)))).all().get(20, TimeUnit.SECONDS);
            try {
                var now = a.describeConfigs(List.of(loggers)).all().get(20, TimeUnit.SECONDS).get(loggers).get(logger);
                CompatSuite.checkEq(now.value() + " " + now.source(), "DEBUG DYNAMIC_BROKER_LOGGER_CONFIG", "level of " + logger);
            } finally {
                a.incrementalAlterConfigs(Map.of(loggers, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                    e.apply(logger, null), DELETE)))).all().get(20, TimeUnit.SECONDS);
            }
            CompatSuite.checkEq(a.describeConfigs(List.of(loggers)).all().get(20, TimeUnit.SECONDS).get(loggers).get(logger).value(),
                before, "level of " + logger + " after DELETE");
        }
    }

    static List<Integer> indexes(TopicDescription d) {
        List<Integer> out = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) out.add(p.partition());
        return out;
    }

    static void describeTopics() throws Exception {
        String t = CompatSuite.createTopic("describe", 5);
        String other = CompatSuite.createTopic("describe2", 2);
        try (Admin a = CompatSuite.admin()) {
            // By name, two partitions per response: the client follows the cursor across pages.
            Map<String, TopicDescription> byName = a.describeTopics(List.of(t, other),
                new DescribeTopicsOptions().partitionSizeLimitPerResponse(2)).allTopicNames().get(20, TimeUnit.SECONDS);
            CompatSuite.checkEq(indexes(byName.get(t)), List.of(0, 1, 2, 3, 4), "partitions of " + t + " over pages of 2");
            CompatSuite.checkEq(indexes(byName.get(other)), List.of(0, 1), "partitions of " + other);
            Uuid id = byName.get(t).topicId();
            CompatSuite.check(id != null && !id.equals(Uuid.ZERO_UUID), "describeTopics by name gave no topic id");
            for (TopicPartitionInfo p : byName.get(t).partitions())
                CompatSuite.check(p.leader() != null && p.isr().size() == 1, "partition " + p.partition() + " has no leader/isr: " + p);
            // By id: the same topic, with its name.
            Map<Uuid, TopicDescription> byId = a.describeTopics(TopicCollection.ofTopicIds(List.of(id)))
                .allTopicIds().get(20, TimeUnit.SECONDS);
            CompatSuite.checkEq(byId.get(id).name(), t, "name of the topic described by id");
            CompatSuite.checkEq(indexes(byId.get(id)), List.of(0, 1, 2, 3, 4), "partitions described by id");
            // An unknown id.
            try {
                a.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).allTopicIds().get(20, TimeUnit.SECONDS);
                throw new CompatSuite.Failure("describing an unknown topic id succeeded");
            } catch (ExecutionException e) {
                CompatSuite.check(e.getCause() instanceof UnknownTopicIdException, "unknown id: want UnknownTopicIdException, got " + e.getCause());
            }
        }
    }

    static String configValue(Admin a, String topic, String key) throws Exception {
        var res = new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.TOPIC, topic);
        return a.describeConfigs(List.of(res)).all().get(20, TimeUnit.SECONDS).get(res).get(key).value();
    }

    /** incrementalAlterConfigs on a topic with SET, APPEND, SUBTRACT, DELETE and validateOnly. */
    static void alterConfigs() throws Exception {
        String t = CompatSuite.createTopic("alterconf", 1);
        var res = new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.TOPIC, t);
        try (Admin a = CompatSuite.admin()) {
            java.util.function.BiFunction<String, String, org.apache.kafka.clients.admin.ConfigEntry> e =
                org.apache.kafka.clients.admin.ConfigEntry::new;
            a.incrementalAlterConfigs(Map.of(res, List.of(
                    new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("retention.ms", "1000"), org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET))),
                new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all().get(20, TimeUnit.SECONDS);
            CompatSuite.checkEq(configValue(a, t, "retention.ms"), "604800000", "retention.ms after a validateOnly change");
            a.incrementalAlterConfigs(Map.of(res, List.of(
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("retention.ms", "3600000"), org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET),
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("cleanup.policy", "compact"), org.apache.kafka.clients.admin.AlterConfigOp.OpType.APPEND)))).all().get(20, TimeUnit.SECONDS);
            CompatSuite.checkEq(configValue(a, t, "retention.ms"), "3600000", "retention.ms after SET");
            CompatSuite.checkEq(configValue(a, t, "cleanup.policy"), "delete,compact", "cleanup.policy after APPEND compact");
            a.incrementalAlterConfigs(Map.of(res, List.of(
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("cleanup.policy", "delete"), org.apache.kafka.clients.admin.AlterConfigOp.OpType.SUBTRACT),
                new org.apache.kafka.clients.admin.AlterConfigOp(e.apply("retention.ms", null), org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE)))).all().get(20, TimeUnit.SECONDS);
            CompatSuite.checkEq(configValue(a, t, "cleanup.policy"), "compact", "cleanup.policy after SUBTRACT delete");
            CompatSuite.checkEq(configValue(a, t, "retention.ms"), "604800000", "retention.ms after DELETE");
            try {
                a.incrementalAlterConfigs(Map.of(res, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                    e.apply("retention.ms", "5"), org.apache.kafka.clients.admin.AlterConfigOp.OpType.APPEND)))).all().get(20, TimeUnit.SECONDS);
                throw new CompatSuite.Failure("APPEND to retention.ms (not a list) succeeded");
            } catch (ExecutionException ex) {
                CompatSuite.check(ex.getCause() instanceof org.apache.kafka.common.errors.InvalidConfigurationException,
                    "APPEND to a non-list config: want InvalidConfigurationException, got " + ex.getCause());
            }
            // The broker: a cluster-wide dynamic default every topic without an override follows.
            var clusterDefault = new org.apache.kafka.common.config.ConfigResource(org.apache.kafka.common.config.ConfigResource.Type.BROKER, "");
            var op = (java.util.function.Function<org.apache.kafka.clients.admin.AlterConfigOp.OpType, Map<org.apache.kafka.common.config.ConfigResource, java.util.Collection<org.apache.kafka.clients.admin.AlterConfigOp>>>)
                type -> Map.of(clusterDefault, List.of(new org.apache.kafka.clients.admin.AlterConfigOp(
                    e.apply("log.retention.ms", type == org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE ? null : "86400000"), type)));
            try {
                a.incrementalAlterConfigs(op.apply(org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET)).all().get(20, TimeUnit.SECONDS);
                var entry = a.describeConfigs(List.of(res)).all().get(20, TimeUnit.SECONDS).get(res).get("retention.ms");
                CompatSuite.checkEq(entry.value() + " " + entry.source(), "86400000 DYNAMIC_DEFAULT_BROKER_CONFIG",
                    "retention.ms after the broker default changed");
            } finally {
                a.incrementalAlterConfigs(op.apply(org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE)).all().get(20, TimeUnit.SECONDS);
            }
            CompatSuite.checkEq(configValue(a, t, "retention.ms"), "604800000", "retention.ms after the broker default was deleted");
        }
    }

    /** describeLogDirs and describeReplicaLogDirs: one directory, sizes of the partitions written. */
    static void describeLogDirs() throws Exception {
        String t = CompatSuite.createTopic("logdirs", 2);
        CompatSuite.produce(t, CompatSuite.simpleRecords(20, "dirs", 100));
        try (Admin a = CompatSuite.admin()) {
            int node = a.describeCluster().nodes().get(20, TimeUnit.SECONDS).iterator().next().id();
            Map<String, org.apache.kafka.clients.admin.LogDirDescription> dirs =
                a.describeLogDirs(List.of(node)).allDescriptions().get(20, TimeUnit.SECONDS).get(node);
            CompatSuite.checkEq(dirs.size(), 1, "log dirs of broker " + node);
            org.apache.kafka.clients.admin.LogDirDescription d = dirs.values().iterator().next();
            CompatSuite.check(d.error() == null, "log dir error: " + d.error());
            CompatSuite.check(d.totalBytes().isPresent() && d.usableBytes().isPresent()
                && d.usableBytes().getAsLong() <= d.totalBytes().getAsLong(), "total/usable bytes: " + d.totalBytes() + " " + d.usableBytes());
            long size = 0;
            for (int p = 0; p < 2; p++) {
                org.apache.kafka.clients.admin.ReplicaInfo r = d.replicaInfos().get(new TopicPartition(t, p));
                CompatSuite.check(r != null, "no replica info for " + t + "-" + p + " in " + d.replicaInfos().keySet());
                CompatSuite.checkEq(r.offsetLag(), 0L, "offset lag of " + t + "-" + p);
                size += r.size();
            }
            CompatSuite.check(size > 20 * 100, "the two partitions hold " + size + " bytes for 20 records of 100+ bytes");
            var replica = new org.apache.kafka.common.TopicPartitionReplica(t, 0, node);
            var rd = a.describeReplicaLogDirs(List.of(replica)).all().get(20, TimeUnit.SECONDS).get(replica);
            CompatSuite.checkEq(rd.getCurrentReplicaLogDir(), dirs.keySet().iterator().next(), "replica log dir");
        }
    }

    static void electAndReassign() throws Exception {
        String t = CompatSuite.createTopic("elect", 2);
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        try (Admin a = CompatSuite.admin()) {
            Map<TopicPartition, Optional<Throwable>> elected = a.electLeaders(ElectionType.PREFERRED, Set.of(p0, p1))
                .partitions().get(20, TimeUnit.SECONDS);
            for (TopicPartition tp : List.of(p0, p1)) {
                Optional<Throwable> r = elected.get(tp);
                CompatSuite.check(r != null && r.isPresent() && r.get() instanceof ElectionNotNeededException,
                    "electLeaders(" + tp + "): want ElectionNotNeededException, got " + r);
            }
            int node = a.describeCluster().nodes().get(20, TimeUnit.SECONDS).iterator().next().id();
            a.alterPartitionReassignments(Map.of(p0, Optional.of(new NewPartitionReassignment(List.of(node)))))
                .all().get(20, TimeUnit.SECONDS);
            try {
                a.alterPartitionReassignments(Map.of(p1, Optional.of(new NewPartitionReassignment(List.of(node + 1)))))
                    .all().get(20, TimeUnit.SECONDS);
                throw new CompatSuite.Failure("a reassignment to broker " + (node + 1) + " (not in the cluster) succeeded");
            } catch (ExecutionException e) {
                CompatSuite.check(e.getCause() instanceof InvalidReplicaAssignmentException,
                    "reassignment to an unknown broker: want InvalidReplicaAssignmentException, got " + e.getCause());
            }
            CompatSuite.checkEq(a.listPartitionReassignments().reassignments().get(20, TimeUnit.SECONDS).size(), 0,
                "reassignments in progress");
        }
    }
}
