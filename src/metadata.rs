//! Topics and partitions: the registry every handler looks names and ids up in, persisted
//! atomically (write to a temp file, fsync, rename, fsync the directory) as `topics.json`.
//!
//! Lookups are lock-free reads of a `DashMap`; topic creation, deletion and partition growth
//! are serialized by one admin mutex, which the produce and fetch paths never take.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::Config;
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::txn::ProducerStateManager;

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
}

/// One partition: its log and the wake-up for fetches parked on it.
pub struct Partition {
    /// Partition index within its topic.
    pub index: i32,
    /// The partition's durable log.
    pub log: PartitionLog,
    /// Notified after every append so long-polling fetches answer at once.
    pub appended: Notify,
    /// Idempotent producers' state; held across check, append and record of their batches.
    pub producers: Mutex<ProducerStateManager>,
}

/// A topic: name, id, config overrides and partitions.
pub struct Topic {
    /// The topic name.
    pub name: String,
    /// The topic id (KIP-516).
    pub id: Uuid,
    /// Config overrides set at creation (Kafka's DYNAMIC_TOPIC_CONFIG).
    pub configs: RwLock<BTreeMap<String, String>>,
    /// Partitions by index.
    pub partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    /// A partition by index.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        if index < 0 {
            return None;
        }
        self.partitions.read().get(index as usize).cloned()
    }

    /// The number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }

    /// The effective value of a topic setting: override, else broker default.
    pub fn config_value(&self, config: &Config, key: &str) -> Option<String> {
        self.configs
            .read()
            .get(key)
            .cloned()
            .or_else(|| config.topic_default(key))
    }
}

#[derive(Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Default)]
struct TopicTable {
    topics: Vec<TopicRecord>,
}

/// The registry of topics, backed by partition directories and `topics.json`.
pub struct Metadata {
    dir: PathBuf,
    config: Config,
    by_name: DashMap<String, Arc<Topic>>,
    by_id: DashMap<Uuid, String>,
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Metadata {
    /// Loads the topic table and opens (recovering) every partition log.
    pub fn open(dir: &Path, config: &Config) -> Result<Metadata, TopicError> {
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
        let meta = Metadata {
            dir: dir.to_path_buf(),
            config: config.clone(),
            by_name: DashMap::new(),
            by_id: DashMap::new(),
            admin: Mutex::new(()),
        };
        for rec in table.topics {
            let log_config = config.log_config(&rec.configs);
            let mut partitions = Vec::with_capacity(rec.partitions as usize);
            for p in 0..rec.partitions {
                partitions.push(meta.open_partition(&rec.name, p, &log_config, false)?);
            }
            let topic = Arc::new(Topic {
                name: rec.name.clone(),
                id: rec.id,
                configs: RwLock::new(rec.configs),
                partitions: RwLock::new(partitions),
            });
            meta.by_id.insert(rec.id, rec.name.clone());
            meta.by_name.insert(rec.name, topic);
        }
        Ok(meta)
    }

    /// Opens a partition's log; a `fresh` partition first loses any directory left behind by a
    /// deletion that a crash interrupted after the topic table was already updated.
    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        log_config: &LogConfig,
        fresh: bool,
    ) -> Result<Arc<Partition>, TopicError> {
        let dir = self.dir.join(format!("{topic}-{index}"));
        if fresh && dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let log = PartitionLog::open(&dir, *log_config, now_ms())?;
        let producers = ProducerStateManager::load(
            &dir,
            &log,
            now_ms(),
            self.config.producer_id_expiration_ms,
        )?;
        Ok(Arc::new(Partition {
            index,
            log,
            appended: Notify::new(),
            producers: Mutex::new(producers),
        }))
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

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<Arc<Topic>> = self.by_name.iter().map(|t| t.value().clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Validates and (unless `validate_only`) creates a topic; returns its id.
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
        for (k, v) in &configs {
            crate::topic_config::validate(k, v).map_err(TopicError::InvalidConfig)?;
        }
        let _admin = self.admin.lock();
        if self.by_name.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(id);
        }
        let log_config = self.config.log_config(&configs);
        let mut parts = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            parts.push(self.open_partition(name, p, &log_config, true)?);
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            configs: RwLock::new(configs),
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

    /// Deletes a topic and its files; returns its id.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, TopicError> {
        let _admin = self.admin.lock();
        let (_, topic) = self
            .by_name
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.by_id.remove(&topic.id);
        self.persist()?;
        for partition in topic.partitions.read().iter() {
            partition.log.delete()?;
            // Wake parked fetches so they notice the topic is gone.
            partition.appended.notify_waiters();
        }
        Ok(topic.id)
    }

    /// Grows a topic to `count` partitions.
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
        let log_config = self.config.log_config(&topic.configs.read());
        let mut added = Vec::new();
        for p in current..count {
            added.push(self.open_partition(name, p, &log_config, true)?);
        }
        topic.partitions.write().extend(added);
        self.persist()
    }

    /// Writes the topic table atomically: temp file, fsync, rename, fsync of the directory.
    fn persist(&self) -> Result<(), TopicError> {
        let table = TopicTable {
            topics: self
                .topics()
                .iter()
                .map(|t| TopicRecord {
                    name: t.name.clone(),
                    id: t.id,
                    partitions: t.partition_count(),
                    configs: t.configs.read().clone(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&table)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        write_atomically(&self.dir, TOPICS_FILE, &bytes)?;
        Ok(())
    }

    /// Snapshots producer state, then flushes and closes every partition log (clean shutdown).
    pub fn close(&self) -> Result<(), TopicError> {
        for topic in self.topics() {
            for partition in topic.partitions.read().iter() {
                {
                    let producers = partition.producers.lock();
                    producers.take_snapshot(partition.log.log_end_offset())?;
                }
                partition.log.close()?;
            }
        }
        Ok(())
    }
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new file whole.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let m = Metadata::open(dir.path(), &config).unwrap();
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
        let m = Metadata::open(dir.path(), &config).unwrap();
        let t = m.get("t").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partition_count(), 3);
        assert_eq!(t.configs.read()["retention.ms"], "1000");
        assert!(m.get_by_id(&id).is_some());
        m.delete_topic("t").unwrap();
        assert!(!dir.path().join("t-0").exists());
        let m = Metadata::open(dir.path(), &config).unwrap();
        assert!(m.get("t").is_none());
    }

    #[test]
    fn validate_only_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metadata::open(dir.path(), &Config::default()).unwrap();
        m.create_topic("v", 1, 1, BTreeMap::new(), true).unwrap();
        assert!(m.get("v").is_none());
        assert!(matches!(
            m.create_topic("v", 1, 3, BTreeMap::new(), false),
            Err(TopicError::InvalidReplicationFactor(3))
        ));
    }
}
