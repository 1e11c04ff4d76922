//! The one shared handle every connection holds: configuration, identity, the clock, the log
//! directories, topics, coordinators, the authorizer, metrics and the tracked background tasks.
//!
//! Identity lives in `meta.properties` in every log directory (Kafka's file name and keys, see
//! `crate::log_dirs::meta`): a cluster id generated once, the node id, each directory's id and
//! Rivulet's data format version. A directory of another format, node id or cluster is refused,
//! so two brokers never share one by mistake. The broker's own files live in the metadata
//! directory, the first of `log.dirs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::cleaner::LogCleaner;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::coordinator::CoordinatorError;
use crate::features::Features;
use crate::group::{GroupCoordinator, GROUP_TOPIC};
use crate::handlers::api_versions::TRANSACTION_VERSION;
use crate::handlers::context::{Authorizer, Listener};
use crate::log_dirs::{discard, movement, LogDirError, LogDirs, DATA_FORMAT_VERSION};
use crate::metrics::RequestMetrics;
use crate::partition::{PartitionContext, TxnMarker};
use crate::resource_configs::ResourceConfigs;
use crate::tasks::Tasks;
use crate::topics::{TopicError, TopicRegistry};
use crate::txn::markers::{Marker, MarkersDurable};
use crate::txn::{MarkerError, MarkerWriter, ProducerIdManager, TxnCoordinator, TXN_TOPIC};

/// Why the broker could not start on its log directories.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A file of the metadata directory cannot be created or read.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A log directory cannot be used: unreadable, of another node, cluster or format, or
    /// holding a partition twice.
    #[error(transparent)]
    LogDir(#[from] LogDirError),
    /// Topic metadata or a partition log could not be loaded.
    #[error("loading topics: {0}")]
    Topics(#[from] TopicError),
    /// The transaction log could not be opened or replayed.
    #[error("loading transactions: {0}")]
    Transactions(CoordinatorError),
    /// The group log could not be opened, upgraded or replayed.
    #[error("loading consumer groups: {0}")]
    Groups(#[from] CoordinatorError),
}

/// Broker state shared by all connections.
pub struct BrokerState {
    /// Validated configuration.
    pub config: Config,
    /// The persisted cluster id.
    pub cluster_id: String,
    /// The log directories.
    pub log_dirs: Arc<LogDirs>,
    /// The bound listeners, in configuration order.
    pub listeners: Vec<Arc<Listener>>,
    /// The one clock.
    pub clock: SharedClock,
    /// Topics and partitions.
    pub topics: TopicRegistry,
    /// Producer id allocation.
    pub producer_ids: Arc<ProducerIdManager>,
    /// The group coordinator (this node coordinates every group).
    pub groups: GroupCoordinator,
    /// The transaction coordinator (this node coordinates every transactional id).
    pub txn: TxnCoordinator,
    /// The finalized feature levels.
    pub features: Features,
    /// The settings of groups and client metrics subscriptions.
    pub resource_configs: ResourceConfigs,
    /// Compacts `cleanup.policy=compact` partitions.
    pub cleaner: Arc<LogCleaner>,
    /// Decides every ACL check (`handlers::context`).
    pub authorizer: Arc<dyn Authorizer>,
    /// Request latency per API.
    pub metrics: RequestMetrics,
    /// Tracked background work, awaited at shutdown.
    pub tasks: Tasks,
}

/// A cheap, cloneable handle to the broker state.
#[derive(Clone)]
pub struct Broker(Arc<BrokerState>);

impl std::ops::Deref for Broker {
    type Target = BrokerState;
    fn deref(&self) -> &BrokerState {
        &self.0
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.config.node_id)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Opens (creating if needed) the log directories and loads every topic and group, then
    /// starts over the partition moves a restart interrupted. Blocking.
    pub fn open(
        config: Config,
        listeners: Vec<Arc<Listener>>,
        clock: SharedClock,
        authorizer: Arc<dyn Authorizer>,
        tasks: Tasks,
    ) -> Result<Broker, StartupError> {
        let (log_dirs, mut identity) = LogDirs::open(&config.log_dirs, config.node_id)?;
        let log_dirs = Arc::new(log_dirs);
        let dir = log_dirs.metadata_dir().to_path_buf();
        let io = |source| StartupError::Io {
            path: dir.display().to_string(),
            source,
        };
        let (cluster_id, format) = (identity.cluster_id.clone(), identity.format());
        let partition_ctx = PartitionContext {
            clock: clock.clone(),
            background: Arc::new(tasks.clone()),
            producer_expiration_ms: config.producer_id_expiration_ms,
        };
        let topics = TopicRegistry::open(log_dirs.clone(), &config, partition_ctx.clone())?;
        let resource_configs = ResourceConfigs::open(&dir).map_err(io)?;
        let features = Features::open(
            &dir,
            &[(TRANSACTION_VERSION, config.txn.transaction_version)],
        )
        .map_err(io)?;
        let producer_ids =
            Arc::new(
                ProducerIdManager::open(&dir).map_err(|source| StartupError::Io {
                    path: dir.display().to_string(),
                    source,
                })?,
            );
        // The group log's partition count is fixed when first created, as Kafka's is.
        let group_log = topics.internal_topic(GROUP_TOPIC, config.group.num_partitions)?;
        let groups = GroupCoordinator::open(
            &dir,
            config.group.clone(),
            group_log.partitions,
            partition_ctx.clone(),
            tasks.clone(),
        )?;
        let txn_log = topics.internal_topic(TXN_TOPIC, config.txn.num_partitions)?;
        let txn = TxnCoordinator::open(
            &dir,
            config.txn.clone(),
            txn_log.partitions,
            partition_ctx,
            tasks.clone(),
            producer_ids.clone(),
        )
        .map_err(StartupError::Transactions)?;
        if format != DATA_FORMAT_VERSION {
            // Every upgrade step above is done and durable.
            identity.mark_upgraded(&log_dirs.paths())?;
            tracing::info!(
                from = format,
                to = DATA_FORMAT_VERSION,
                "data directory upgraded"
            );
        }
        let broker = Broker(Arc::new(BrokerState {
            cluster_id,
            log_dirs,
            listeners,
            clock,
            topics,
            producer_ids,
            groups,
            txn,
            cleaner: Arc::new(LogCleaner::new(config.cleaner)),
            resource_configs,
            features,
            authorizer,
            metrics: RequestMetrics::default(),
            tasks,
            config,
        }));
        broker.resume_moves()?;
        Ok(broker)
    }

    /// Starts over every move a restart interrupted before its commit: its copy goes, a new
    /// one is made in the same log directory (copies of partitions that no longer exist just
    /// go). Blocking.
    fn resume_moves(&self) -> Result<(), StartupError> {
        for ((topic, index), copy) in self.topics.take_interrupted_moves() {
            discard(&copy, &topic, index)?;
            let (Some(partition), Some(target)) =
                (self.topics.partition(&topic, index), copy.parent())
            else {
                tracing::info!(dir = %copy.display(), "removed the copy of a partition that no longer exists");
                continue;
            };
            tracing::info!(topic = %topic, partition = index, to = %target.display(), "resuming a partition move a restart interrupted");
            movement::alter_log_dir(&partition, target, &self.tasks, &self.clock);
        }
        Ok(())
    }

    /// Creates a topic with broker defaults, as auto-creation by Metadata does. Blocking.
    pub fn auto_create_topic(&self, name: &str) -> Result<Uuid, TopicError> {
        self.topics
            .create_topic(name, self.config.num_partitions, 1, BTreeMap::new(), false)
    }

    /// Now, by the broker's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Where the transaction coordinator writes its markers: this broker's partitions.
    pub fn markers(&self) -> Arc<dyn MarkerWriter> {
        Arc::new(self.clone())
    }
}

impl MarkerWriter for Broker {
    fn write_markers(
        &self,
        partitions: &std::collections::BTreeSet<(String, i32)>,
        marker: Marker,
    ) -> MarkersDurable {
        let failed = |topic: &str, partition: i32, reason: String| MarkerError::Failed {
            topic: topic.to_string(),
            partition,
            reason,
        };
        let mut waits: Vec<MarkersDurable> = Vec::with_capacity(partitions.len());
        for (topic, index) in partitions {
            if topic == GROUP_TOPIC {
                let committed = match self.groups.complete_transaction(
                    *index,
                    marker.producer_id,
                    marker.producer_epoch,
                    marker.coordinator_epoch,
                    marker.result,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        let error = failed(topic, *index, e.to_string());
                        return Box::pin(async move { Err(error) });
                    }
                };
                let (topic, index) = (topic.clone(), *index);
                waits.push(Box::pin(async move {
                    committed
                        .await
                        .map_err(|e| failed(&topic, index, e.to_string()))
                }));
                continue;
            }
            // A deleted topic's markers are dropped, as Kafka drops them.
            let Some(partition) = self.topics.get(topic).and_then(|t| t.partition(*index)) else {
                continue;
            };
            let written = partition.write_txn_marker(TxnMarker {
                producer_id: marker.producer_id,
                producer_epoch: marker.producer_epoch,
                coordinator_epoch: marker.coordinator_epoch,
                result: marker.result,
            });
            match written {
                Ok(info) => {
                    let (topic, index) = (topic.clone(), *index);
                    let end = info.last_offset + 1;
                    waits.push(Box::pin(async move {
                        match tokio::task::spawn_blocking(move || partition.wait_durable(end)).await
                        {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(e)) => Err(failed(&topic, index, e.to_string())),
                            Err(e) => Err(failed(&topic, index, e.to_string())),
                        }
                    }));
                }
                Err(e) if e.is_fenced_marker() => {
                    // A newer epoch of the producer already wrote here: this marker is stale.
                    tracing::warn!(topic = %topic, partition = index, error = %e, "transaction marker refused as stale; skipped");
                }
                Err(e) => {
                    let error = failed(topic, *index, e.to_string());
                    return Box::pin(async move { Err(error) });
                }
            }
        }
        Box::pin(async move {
            for w in waits {
                w.await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::context::AllowAll;
    use crate::log_dirs::META_FILE;
    use std::path::Path;

    fn config_in(dir: &Path, node_id: i32) -> Config {
        let mut s = BTreeMap::new();
        s.insert("log.dirs".into(), dir.display().to_string());
        s.insert("node.id".into(), node_id.to_string());
        Config::from_settings(s).unwrap()
    }

    fn open(config: Config) -> Result<Broker, StartupError> {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        Broker::open(
            config,
            Vec::new(),
            crate::clock::system(),
            Arc::new(AllowAll),
            Tasks::new(rx),
        )
    }

    #[tokio::test]
    async fn cluster_id_is_persisted_and_other_node_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(config_in(dir.path(), 1)).unwrap();
        let id = a.cluster_id.clone();
        assert_eq!(id.len(), 22);
        drop(a);
        let b = open(config_in(dir.path(), 1)).unwrap();
        assert_eq!(b.cluster_id, id);
        drop(b);
        let err = open(config_in(dir.path(), 2)).err().unwrap();
        assert!(err.to_string().contains("node.id 1"), "{err}");
    }

    #[tokio::test]
    async fn foreign_format_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(META_FILE),
            "version=1\ncluster.id=x\nnode.id=1\n",
        )
        .unwrap();
        let err = open(config_in(dir.path(), 1)).err().unwrap();
        assert!(err.to_string().contains("rivulet.format.version"), "{err}");
    }

    /// A directory of format 1: one group log in `__consumer_offsets/`, with an old-format
    /// snapshot and records after it, is upgraded in place to the partitioned group log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_format_1_directory_with_one_group_log_is_upgraded_in_place() {
        use crate::coordinator::records::encode_batch;
        use crate::group::{GroupRecord, GroupValue, OffsetValue};
        use crate::log::{AppendOptions, LogConfig, PartitionLog};

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(META_FILE),
            "version=1\nrivulet.format.version=1\ncluster.id=c1\nnode.id=1\n",
        )
        .unwrap();
        let old = dir.path().join("__consumer_offsets");
        let value = |offset| OffsetValue {
            offset,
            leader_epoch: 3,
            metadata: format!("m{offset}"),
            commit_timestamp: 5,
            expire_timestamp: None,
        };
        let offset = |group: &str, topic: &str, partition, v: Option<i64>| GroupRecord::Offset {
            group: group.into(),
            topic: topic.into(),
            partition,
            value: v.map(value),
        };
        let metadata = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: None,
            leader: None,
            current_state_timestamp: 9,
            members: Vec::new(),
        };
        {
            let log = PartitionLog::open(&old, LogConfig::default(), 0).unwrap();
            let batches = [
                vec![
                    GroupRecord::Group {
                        group: "g1".into(),
                        value: Some(metadata.clone()),
                    },
                    offset("g1", "t", 0, Some(42)),
                ],
                vec![offset("g2", "t", 1, Some(7)), offset("g3", "t", 0, Some(1))],
                vec![offset("g3", "t", 0, None)],
            ];
            for records in batches {
                let mut b = encode_batch(&records, 5, None).unwrap();
                log.append(&mut b, &AppendOptions::leader(0, 0, false))
                    .unwrap();
            }
            log.close().unwrap();
        }
        // The old snapshot at offset 2 (after the first batch) also holds g9, which no record
        // after it touches: only the snapshot can bring it back.
        let snapshot = serde_json::json!({"v": 1, "offset": 2, "groups": [
            {"group": "g1", "metadata": metadata, "offsets": [
                {"topic": "t", "partition": 0, "record_offset": 1, "value": value(42)}]},
            {"group": "g9", "metadata": null, "offsets": [
                {"topic": "u", "partition": 3, "record_offset": 0, "value": value(99)}]}
        ]});
        std::fs::write(
            old.join("00000000000000000002.groups-snapshot"),
            serde_json::to_vec(&snapshot).unwrap(),
        )
        .unwrap();

        let check = |b: &Broker| {
            let fetched = |group: &str, topic: &str, p: i32| {
                b.groups.fetch_offsets(group, &[(topic.into(), vec![p])])[0].1[0].offset
            };
            assert_eq!(fetched("g1", "t", 0), 42);
            assert_eq!(fetched("g2", "t", 1), 7);
            assert_eq!(
                fetched("g3", "t", 0),
                -1,
                "its tombstone came after the snapshot"
            );
            assert_eq!(fetched("g9", "u", 3), 99);
            let g1 = b.groups.describe_group("g1");
            assert_eq!(
                (g1.state.name(), g1.protocol_type.as_str()),
                ("Empty", "consumer")
            );
            assert_eq!(b.groups.states().len(), 3);
        };
        let b = open(config_in(dir.path(), 1)).unwrap();
        check(&b);
        assert!(!old.exists(), "the old group log is gone");
        let meta = std::fs::read_to_string(dir.path().join(META_FILE)).unwrap();
        assert!(meta.contains("rivulet.format.version=2"), "{meta}");
        assert_eq!(b.cluster_id, "c1");
        let partitions: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("__consumer_offsets-"))
            .collect();
        assert!(
            !partitions.is_empty() && partitions.len() <= 4,
            "{partitions:?}"
        );
        let group1 = format!("__consumer_offsets-{}", b.groups.partition_for("g1"));
        assert!(
            partitions.contains(&group1),
            "g1 lives where Kafka hashes it"
        );
        drop(b);
        // A restart loads the partitioned log (and an old build would refuse the directory).
        let b = open(config_in(dir.path(), 1)).unwrap();
        check(&b);
    }
}
