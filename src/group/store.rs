//! The group log: a [`PartitionLog`] in `<log.dirs>/__consumer_offsets/` holding the records of
//! `records`, appended under the owning group's lock and replayed on start.
//!
//! The directory has no `-<partition>` suffix, so no user topic's partition directory can ever
//! be the same; it is not a topic (Metadata does not list it: its records are Rivulet's own
//! encoding, which tools that parse Kafka's `__consumer_offsets` could not read).
//!
//! Durability: an operation's records are one batch; the coordinator calls [`GroupStore::sync`]
//! (group commit, shared with concurrent callers) before it acknowledges anything that depends
//! on them, so `kill -9` loses no acknowledged commit. Recovery of the log itself (torn tails,
//! CRCs) is `PartitionLog`'s.

use std::collections::BTreeMap;
use std::path::Path;

use crate::log::{AppendOptions, BatchHeader, LogConfig, LogError, PartitionLog};

use super::offsets::CommittedOffset;
use super::records::{decode_batches, encode_batch, GroupRecord, GroupValue, RecordError};

/// Directory of the group log inside the data directory.
pub const GROUP_LOG_DIR: &str = "__consumer_offsets";
/// Bytes read per step of the replay.
const REPLAY_CHUNK: usize = 1 << 20;

/// Why the group log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The log failed (I/O, closed, poisoned by a failed fsync).
    #[error("group log: {0}")]
    Log(#[from] LogError),
    /// A record in the log cannot be read.
    #[error("group log: {0}")]
    Record(#[from] RecordError),
    /// Records that cannot be encoded (a bug: every field is serializable).
    #[error("group log: {0}")]
    Encode(String),
}

/// One group's state as the log describes it.
#[derive(Debug, Default)]
pub struct LoadedGroup {
    /// Its last metadata record, None if it only has offsets.
    pub metadata: Option<GroupValue>,
    /// Its committed offsets.
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
}

/// The group log.
pub struct GroupStore {
    log: PartitionLog,
}

impl GroupStore {
    /// Opens (creating) the log under `data_dir` and replays it into the groups it describes.
    pub fn open(
        data_dir: &Path,
        segment_bytes: u64,
        now_ms: i64,
    ) -> Result<(GroupStore, BTreeMap<String, LoadedGroup>), StoreError> {
        let config = LogConfig {
            segment_bytes,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&data_dir.join(GROUP_LOG_DIR), config, now_ms)?;
        let store = GroupStore { log };
        let groups = store.replay()?;
        Ok((store, groups))
    }

    /// Applies every record in log order: the last record of a key wins, tombstones delete.
    fn replay(&self) -> Result<BTreeMap<String, LoadedGroup>, StoreError> {
        let mut groups: BTreeMap<String, LoadedGroup> = BTreeMap::new();
        let end = self.log.log_end_offset();
        let mut offset = self.log.log_start_offset();
        let mut records = 0usize;
        while offset < end {
            let read = self.log.read(offset, REPLAY_CHUNK, true)?;
            if read.records.is_empty() {
                break;
            }
            let mut next = offset;
            let mut pos = 0;
            while pos < read.records.len() {
                let header = BatchHeader::parse(&read.records[pos..]).map_err(LogError::from)?;
                pos += header.total_size();
                next = next.max(header.last_offset() + 1);
            }
            for (record_offset, record) in decode_batches(read.records, offset)? {
                records += 1;
                apply(&mut groups, record_offset, record);
            }
            offset = next;
        }
        tracing::info!(groups = groups.len(), records, "group log replayed");
        Ok(groups)
    }

    /// Appends one operation's records as one batch; returns (first record offset, end offset).
    pub fn append(&self, records: &[GroupRecord], now_ms: i64) -> Result<(i64, i64), StoreError> {
        let mut batch = encode_batch(records, now_ms).map_err(StoreError::Encode)?;
        let info = self.log.append(
            &mut batch,
            &AppendOptions {
                now_ms,
                log_append_time: false,
                partition_leader_epoch: 0,
            },
        )?;
        Ok((info.base_offset, info.last_offset + 1))
    }

    /// Returns once everything below `end` is on stable storage (group commit).
    pub fn sync(&self, end: i64) -> Result<(), StoreError> {
        Ok(self.log.sync(end)?)
    }

    /// Fsyncs everything appended so far.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.sync(self.log.log_end_offset())
    }

    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// Flushes and closes the log (clean shutdown).
    pub fn close(&self) -> Result<(), StoreError> {
        Ok(self.log.close()?)
    }
}

fn apply(groups: &mut BTreeMap<String, LoadedGroup>, record_offset: i64, record: GroupRecord) {
    match record {
        GroupRecord::Group {
            group,
            value: Some(value),
        } => groups.entry(group).or_default().metadata = Some(value),
        GroupRecord::Group { group, value: None } => {
            // Its offsets have their own tombstones before it; any left survive as offsets of
            // a group without metadata, as Kafka's replay would keep them.
            if let Some(g) = groups.get_mut(&group) {
                g.metadata = None;
                if g.offsets.is_empty() {
                    groups.remove(&group);
                }
            }
        }
        GroupRecord::Offset {
            group,
            topic,
            partition,
            value: Some(value),
        } => {
            groups.entry(group).or_default().offsets.insert(
                (topic, partition),
                CommittedOffset::from_value(&value, record_offset),
            );
        }
        GroupRecord::Offset {
            group,
            topic,
            partition,
            value: None,
        } => {
            if let Some(g) = groups.get_mut(&group) {
                g.offsets.remove(&(topic, partition));
                if g.offsets.is_empty() && g.metadata.is_none() {
                    groups.remove(&group);
                }
            }
        }
    }
}
