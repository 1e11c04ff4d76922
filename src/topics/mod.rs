//! The topic registry: every topic's name, id, typed config and partitions, the table every
//! handler looks names and ids up in, persisted atomically (write to a temp file, fsync, rename,
//! fsync the directory) as `topics.json`.
//!
//! Lookups are lock-free reads of a `DashMap`; topic creation, deletion and partition growth
//! are serialized by one admin mutex, which the produce and fetch paths never take. Every
//! operation that creates, persists or deletes files blocks on the disk: callers run it off the
//! async workers.
//!
//! Partitions live in the log directories (`crate::log_dirs`): at start each is opened where the
//! scan of every directory found it, and new ones go where `LogDirs::place` puts them (the
//! directory with the fewest partitions). `topics.json` itself is in the metadata directory.
//!
//! Internal topics (`__consumer_offsets`, the group coordinator's log) are recorded here too,
//! with their partition count fixed when first created, as Kafka fixes it: they are not listed
//! or described as topics (their records are Rivulet's own encoding), but their names are taken,
//! so no user topic's partition directory can ever be theirs.

pub mod config;
pub mod dynamic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;
use crate::log::{write_atomically, LogError};
use crate::log_dirs::{partition_dir_name, LogDirError, LogDirs};
use crate::partition::{Partition, PartitionContext};

pub use config::TopicConfig;
pub use dynamic::{DynamicBrokerConfigs, Layer};

/// Name of the persisted topic table inside the data directory.
const TOPICS_FILE: &str = "topics.json";

/// Why a topic operation failed; mapped to Kafka codes in `handlers::error_codes`.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The name is not a legal Kafka topic name.
    #[error("invalid topic name {0:?}")]
    InvalidName(String),
    /// A topic of that name already exists.
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    /// No topic of that name or id.
    #[error("unknown topic {0}")]
    Unknown(String),
    /// Partition count out of range or not an increase.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// Replication factor other than 1 on a single broker.
    #[error("invalid replication factor {0}")]
    InvalidReplicationFactor(i32),
    /// A replica assignment naming brokers other than this one.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// A request that contradicts itself (duplicate names, both counts and assignments).
    #[error("{0}")]
    InvalidRequest(String),
    /// A topic config that Kafka does not define or whose value is invalid.
    #[error("{0}")]
    InvalidConfig(String),
    /// Disk trouble while creating or deleting partitions.
    #[error("storage: {0}")]
    Storage(#[from] LogError),
    /// Disk trouble while persisting the topic table.
    #[error("metadata io: {0}")]
    Io(#[from] std::io::Error),
    /// A log directory cannot be used (no directory online, or one refused at start).
    #[error("{0}")]
    LogDir(#[from] LogDirError),
}

/// A topic: name, id, settings and partitions.
#[derive(Debug)]
pub struct Topic {
    /// The topic name.
    pub name: String,
    /// The topic id (KIP-516).
    pub id: Uuid,
    config: RwLock<Arc<TopicConfig>>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    /// A partition by index.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        if index < 0 {
            return None;
        }
        self.partitions.read().get(index as usize).cloned()
    }

    /// Every partition, by index.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().clone()
    }

    /// The number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }

    /// The topic's settings (its overrides over the broker's defaults), typed.
    pub fn config(&self) -> Arc<TopicConfig> {
        self.config.read().clone()
    }
}

/// An internal topic: its id and fixed partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalTopic {
    /// The topic id.
    pub id: Uuid,
    /// Its partitions (fixed at creation, as Kafka's `offsets.topic.num.partitions`).
    pub partitions: i32,
}

#[derive(Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct InternalRecord {
    name: String,
    #[serde(flatten)]
    topic: InternalTopic,
}

#[derive(Serialize, Deserialize, Default)]
struct TopicTable {
    topics: Vec<TopicRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    internal: Vec<InternalRecord>,
}

/// The registry of topics, backed by partition directories and `topics.json`.
pub struct TopicRegistry {
    /// The metadata directory (`topics.json`, dynamic broker configs).
    dir: PathBuf,
    log_dirs: Arc<LogDirs>,
    /// Copies of moves a restart interrupted, found by the start's scan, for the broker to
    /// start over.
    interrupted_moves: Mutex<Vec<((String, i32), PathBuf)>>,
    /// The static settings.
    base: Config,
    /// The dynamic broker settings (their file's content).
    dynamic: RwLock<DynamicBrokerConfigs>,
    /// `base` with the dynamic settings on top: what topic defaults resolve against.
    config: RwLock<Arc<Config>>,
    partition_ctx: PartitionContext,
    by_name: DashMap<String, Arc<Topic>>,
    by_id: DashMap<Uuid, String>,
    internal: DashMap<String, InternalTopic>,
    admin: Mutex<()>,
}

/// Checks Kafka's topic name rules: 1-249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let legal = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if legal {
        Ok(())
    } else {
        Err(TopicError::InvalidName(name.to_string()))
    }
}

impl TopicRegistry {
    /// Loads the topic table, scans the log directories and opens (recovering) every
    /// partition log where the scan found it (a partition found nowhere starts empty where
    /// placement puts it).
    pub fn open(
        log_dirs: Arc<LogDirs>,
        config: &Config,
        partition_ctx: PartitionContext,
    ) -> Result<TopicRegistry, TopicError> {
        let dir = log_dirs.metadata_dir().to_path_buf();
        let dir = dir.as_path();
        let path = dir.join(TOPICS_FILE);
        let table: TopicTable = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TopicTable::default(),
            Err(e) => return Err(e.into()),
        };
        let dynamic = DynamicBrokerConfigs::load(dir)?;
        let effective = Arc::new(dynamic.apply(config));
        let scan = log_dirs.scan()?;
        let registry = TopicRegistry {
            dir: dir.to_path_buf(),
            log_dirs: log_dirs.clone(),
            interrupted_moves: Mutex::new(scan.futures),
            base: config.clone(),
            dynamic: RwLock::new(dynamic),
            config: RwLock::new(effective),
            partition_ctx,
            by_name: DashMap::new(),
            by_id: DashMap::new(),
            internal: DashMap::new(),
            admin: Mutex::new(()),
        };
        for rec in table.internal {
            registry.internal.insert(rec.name, rec.topic);
        }
        for rec in table.topics {
            if registry.internal.contains_key(&rec.name) {
                return Err(TopicError::AlreadyExists(format!(
                    "{} (a user topic with the name of an internal one)",
                    rec.name
                )));
            }
            let effective = registry.effective();
            let topic_config = TopicConfig::new(rec.configs, &effective).unwrap_or_else(|reason| {
                // Stored overrides were valid when set; a broker that no longer accepts one
                // keeps the topic with its defaults rather than refusing to start.
                tracing::error!(topic = %rec.name, reason, "stored topic config invalid; using broker defaults");
                TopicConfig::defaults(&effective)
            });
            let topic_config = Arc::new(topic_config);
            let mut partitions = Vec::with_capacity(rec.partitions as usize);
            for p in 0..rec.partitions {
                let dir = match scan.current.get(&(rec.name.clone(), p)) {
                    Some(dir) => dir.clone(),
                    None => {
                        let placed = registry.log_dirs.place(1)?;
                        let home = placed.first().ok_or(LogDirError::NoneOnline)?;
                        tracing::warn!(topic = %rec.name, partition = p, dir = %home.display(), "partition directory not found in any log directory; starting it empty");
                        home.join(partition_dir_name(&rec.name, p))
                    }
                };
                partitions.push(registry.open_partition(
                    &rec.name,
                    p,
                    &topic_config,
                    dir,
                    false,
                )?);
            }
            let topic = Arc::new(Topic {
                name: rec.name.clone(),
                id: rec.id,
                config: RwLock::new(topic_config),
                partitions: RwLock::new(partitions),
            });
            registry.by_id.insert(rec.id, rec.name.clone());
            registry.by_name.insert(rec.name, topic);
        }
        Ok(registry)
    }

    /// Opens a partition's log in `dir`; a `fresh` partition first loses any directory of its
    /// name left behind (in any log directory) by a deletion that a crash interrupted after the
    /// topic table was already updated.
    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        config: &Arc<TopicConfig>,
        dir: PathBuf,
        fresh: bool,
    ) -> Result<Arc<Partition>, TopicError> {
        if fresh {
            for leftover in self.log_dirs.existing_partition_dirs(topic, index) {
                std::fs::remove_dir_all(&leftover)?;
            }
        }
        Ok(Arc::new(Partition::open(
            &dir,
            topic,
            index,
            config.clone(),
            &self.partition_ctx,
        )?))
    }

    /// The log directories.
    pub fn log_dirs(&self) -> &Arc<LogDirs> {
        &self.log_dirs
    }

    /// The copies of moves the last restart interrupted (each partition and its copy's
    /// directory), once: the broker starts those moves over.
    pub fn take_interrupted_moves(&self) -> Vec<((String, i32), PathBuf)> {
        std::mem::take(&mut *self.interrupted_moves.lock())
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.by_name.get(name).map(|t| t.value().clone())
    }

    /// A topic by id.
    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        let name = self.by_id.get(id)?.value().clone();
        self.get(&name)
    }

    /// A partition by topic name and index.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.get(topic)?.partition(index)
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<Arc<Topic>> = self.by_name.iter().map(|t| t.value().clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every partition of every topic.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics().iter().flat_map(|t| t.partitions()).collect()
    }

    /// The internal topic `name`, recorded with `partitions` partitions if it does not exist
    /// yet (its count never changes after). Blocking.
    pub fn internal_topic(&self, name: &str, partitions: i32) -> Result<InternalTopic, TopicError> {
        let _admin = self.admin.lock();
        if let Some(t) = self.internal.get(name) {
            return Ok(*t);
        }
        if self.by_name.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let topic = InternalTopic {
            id: Uuid::new_v4(),
            partitions,
        };
        self.internal.insert(name.to_string(), topic);
        if let Err(e) = self.persist() {
            self.internal.remove(name);
            return Err(e);
        }
        Ok(topic)
    }

    /// Validates and (unless `validate_only`) creates a topic; returns its id. Blocking.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Uuid, TopicError> {
        validate_topic_name(name)?;
        if partitions <= 0 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions was set to an invalid non-positive value: {partitions}"
            )));
        }
        if replication_factor != 1 {
            return Err(TopicError::InvalidReplicationFactor(replication_factor));
        }
        let topic_config = Arc::new(
            TopicConfig::new(configs, &self.effective()).map_err(TopicError::InvalidConfig)?,
        );
        let _admin = self.admin.lock();
        if self.by_name.contains_key(name) || self.internal.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(id);
        }
        let homes = self.log_dirs.place(partitions as usize)?;
        let mut parts = Vec::with_capacity(partitions as usize);
        for (p, home) in (0..partitions).zip(homes) {
            let dir = home.join(partition_dir_name(name, p));
            parts.push(self.open_partition(name, p, &topic_config, dir, true)?);
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            config: RwLock::new(topic_config),
            partitions: RwLock::new(parts),
        });
        self.by_name.insert(name.to_string(), topic);
        self.by_id.insert(id, name.to_string());
        if let Err(e) = self.persist() {
            self.by_name.remove(name);
            self.by_id.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// Deletes a topic and its files; returns its id. Blocking.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, TopicError> {
        let _admin = self.admin.lock();
        let (_, topic) = self
            .by_name
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.by_id.remove(&topic.id);
        self.persist()?;
        for partition in topic.partitions() {
            partition.delete()?;
        }
        Ok(topic.id)
    }

    /// Grows a topic to `count` partitions. Blocking.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partition_count();
        if count < current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count == current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        if validate_only {
            return Ok(());
        }
        let topic_config = topic.config();
        let homes = self.log_dirs.place((count - current) as usize)?;
        let mut added = Vec::new();
        for (p, home) in (current..count).zip(homes) {
            let dir = home.join(partition_dir_name(name, p));
            added.push(self.open_partition(name, p, &topic_config, dir, true)?);
        }
        topic.partitions.write().extend(added);
        self.persist()
    }

    /// Replaces a topic's overrides (AlterConfigs, IncrementalAlterConfigs): validated as at
    /// creation, persisted in `topics.json` before it takes effect, then applied live to every
    /// partition (retention, segment size, message size, timestamp type and cleanup policy
    /// take effect from the next append or check). Names and values are validated before the
    /// topic is looked up, as Kafka's controller does. Blocking.
    pub fn alter_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let config = Arc::new(
            TopicConfig::new(overrides, &self.effective()).map_err(TopicError::InvalidConfig)?,
        );
        let _admin = self.admin.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let previous = std::mem::replace(&mut *topic.config.write(), config.clone());
        if let Err(e) = self.persist() {
            *topic.config.write() = previous;
            return Err(e);
        }
        for partition in topic.partitions() {
            partition.set_config(config.clone());
        }
        Ok(())
    }

    /// The broker settings topic defaults resolve against (static with dynamic on top).
    pub fn effective(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// The dynamic broker settings.
    pub fn dynamic_broker_configs(&self) -> DynamicBrokerConfigs {
        self.dynamic.read().clone()
    }

    /// Replaces one layer of the dynamic broker settings (AlterConfigs on a broker resource):
    /// every key must be dynamic and its value valid; persisted before it takes effect, then
    /// every topic's settings are resolved again and applied to its partitions. Blocking.
    pub fn alter_broker_config(
        &self,
        layer: Layer,
        settings: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let fixed: Vec<&str> = settings
            .keys()
            .map(String::as_str)
            .filter(|k| !dynamic::is_dynamic(k))
            .collect();
        if !fixed.is_empty() {
            return Err(TopicError::InvalidRequest(format!(
                "Cannot update these configs dynamically: [{}]",
                fixed.join(", ")
            )));
        }
        for (k, v) in &settings {
            dynamic::validate_dynamic(k, v).map_err(TopicError::InvalidRequest)?;
        }
        let _admin = self.admin.lock();
        let mut next = self.dynamic.read().clone();
        *next.layer_mut(layer) = settings;
        let effective = Arc::new(next.apply(&self.base));
        // Every topic must still resolve: a new default may clash with an override.
        let mut resolved = Vec::new();
        for topic in self.topics() {
            let config = TopicConfig::new(topic.config().overrides().clone(), &effective)
                .map_err(TopicError::InvalidRequest)?;
            resolved.push((topic, Arc::new(config)));
        }
        if validate_only {
            return Ok(());
        }
        next.save(&self.dir)?;
        *self.dynamic.write() = next;
        *self.config.write() = effective;
        for (topic, config) in resolved {
            *topic.config.write() = config.clone();
            for partition in topic.partitions() {
                partition.set_config(config.clone());
            }
        }
        Ok(())
    }

    /// Writes the topic table atomically: temp file, fsync, rename, fsync of the directory.
    fn persist(&self) -> Result<(), TopicError> {
        let mut internal: Vec<InternalRecord> = self
            .internal
            .iter()
            .map(|e| InternalRecord {
                name: e.key().clone(),
                topic: *e.value(),
            })
            .collect();
        internal.sort_by(|a, b| a.name.cmp(&b.name));
        let table = TopicTable {
            topics: self
                .topics()
                .iter()
                .map(|t| TopicRecord {
                    name: t.name.clone(),
                    id: t.id,
                    partitions: t.partition_count(),
                    configs: t.config().overrides().clone(),
                })
                .collect(),
            internal,
        };
        let bytes = serde_json::to_vec_pretty(&table)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        write_atomically(&self.dir, TOPICS_FILE, &bytes)?;
        Ok(())
    }

    /// Snapshots producer state, then flushes and closes every partition log (clean shutdown).
    /// Blocking.
    pub fn close(&self) -> Result<(), TopicError> {
        for partition in self.all_partitions() {
            partition.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn test_ctx() -> PartitionContext {
        PartitionContext {
            clock: crate::clock::system(),
            background: Arc::new(crate::tasks::Inline),
            producer_expiration_ms: i64::MAX,
        }
    }

    fn open_in(dirs: &[&Path], config: &Config) -> TopicRegistry {
        let paths: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        let (log_dirs, _) = LogDirs::open(&paths, config.node_id).unwrap();
        TopicRegistry::open(Arc::new(log_dirs), config, test_ctx()).unwrap()
    }

    /// Where each partition of `topic` lives: the index of its log directory.
    fn homes(m: &TopicRegistry, topic: &str, dirs: &[&Path]) -> Vec<usize> {
        m.get(topic)
            .unwrap()
            .partitions()
            .iter()
            .map(|p| {
                let parent = p.dir().parent().unwrap().to_path_buf();
                dirs.iter().position(|d| *d == parent).unwrap()
            })
            .collect()
    }

    #[test]
    fn new_partitions_go_to_the_directory_with_the_fewest_and_are_found_again() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let dirs = [a.path(), b.path(), c.path()];
        let config = Config::default();
        {
            let m = open_in(&dirs, &config);
            // Ties go to the earlier directory, so a fresh broker deals round-robin.
            m.create_topic("t", 4, 1, BTreeMap::new(), false).unwrap();
            assert_eq!(homes(&m, "t", &dirs), vec![0, 1, 2, 0]);
            // The first directory has 2, the others 1: the next go to b, then c, then any.
            m.create_topic("u", 3, 1, BTreeMap::new(), false).unwrap();
            assert_eq!(homes(&m, "u", &dirs), vec![1, 2, 0]);
            m.create_partitions("u", 4, false).unwrap();
            assert_eq!(homes(&m, "u", &dirs), vec![1, 2, 0, 1]);
            assert!(b.path().join("u-3").is_dir());
            assert!(a.path().join("topics.json").is_file());
            assert!(
                !b.path().join("topics.json").exists(),
                "metadata stays in the first"
            );
            m.close().unwrap();
        }
        // Reopened, every partition is found where it was.
        let m = open_in(&dirs, &config);
        assert_eq!(homes(&m, "t", &dirs), vec![0, 1, 2, 0]);
        assert_eq!(homes(&m, "u", &dirs), vec![1, 2, 0, 1]);
    }

    #[test]
    fn a_partition_in_two_directories_refuses_the_start() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = [a.path(), b.path()];
        let config = Config::default();
        {
            let m = open_in(&dirs, &config);
            m.create_topic("t", 1, 1, BTreeMap::new(), false).unwrap();
            m.close().unwrap();
        }
        std::fs::create_dir(b.path().join("t-0")).unwrap();
        let (log_dirs, _) =
            LogDirs::open(&[a.path().to_path_buf(), b.path().to_path_buf()], 1).unwrap();
        let err = TopicRegistry::open(Arc::new(log_dirs), &config, test_ctx())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("Duplicate log directories for t-0 are found in both"),
            "{err}"
        );
    }

    #[test]
    fn internal_topics_take_their_names_and_keep_their_count() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let first = {
            let m = open_in(&[dir.path()], &config);
            let t = m.internal_topic("__consumer_offsets", 50).unwrap();
            assert_eq!(t.partitions, 50);
            assert!(matches!(
                m.create_topic("__consumer_offsets", 1, 1, BTreeMap::new(), false),
                Err(TopicError::AlreadyExists(_))
            ));
            assert!(m.get("__consumer_offsets").is_none());
            m.create_topic("user", 1, 1, BTreeMap::new(), false)
                .unwrap();
            assert!(matches!(
                m.internal_topic("user", 3),
                Err(TopicError::AlreadyExists(_))
            ));
            t
        };
        let m = open_in(&[dir.path()], &config);
        // A later broker with another default keeps the count the topic was created with.
        assert_eq!(m.internal_topic("__consumer_offsets", 8).unwrap(), first);
        assert_eq!(m.topics().len(), 1);
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("a.b_c-1").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn create_persist_reopen_delete() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let id = {
            let m = open_in(&[dir.path()], &config);
            let mut cfg = BTreeMap::new();
            cfg.insert("retention.ms".to_string(), "1000".to_string());
            let id = m.create_topic("t", 2, 1, cfg, false).unwrap();
            assert!(matches!(
                m.create_topic("t", 1, 1, BTreeMap::new(), false),
                Err(TopicError::AlreadyExists(_))
            ));
            m.create_partitions("t", 3, false).unwrap();
            assert!(matches!(
                m.create_partitions("t", 3, false),
                Err(TopicError::InvalidPartitions(_))
            ));
            m.close().unwrap();
            id
        };
        let m = open_in(&[dir.path()], &config);
        let t = m.get("t").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partition_count(), 3);
        assert_eq!(t.config().overrides()["retention.ms"], "1000");
        assert_eq!(t.config().retention_ms, 1000);
        assert!(m.get_by_id(&id).is_some());
        m.delete_topic("t").unwrap();
        assert!(!dir.path().join("t-0").exists());
        let m = open_in(&[dir.path()], &config);
        assert!(m.get("t").is_none());
    }

    #[test]
    fn validate_only_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let m = open_in(&[dir.path()], &Config::default());
        m.create_topic("v", 1, 1, BTreeMap::new(), true).unwrap();
        assert!(m.get("v").is_none());
        assert!(matches!(
            m.create_topic("v", 1, 3, BTreeMap::new(), false),
            Err(TopicError::InvalidReplicationFactor(3))
        ));
    }
}
