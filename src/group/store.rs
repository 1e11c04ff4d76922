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
//!
//! Snapshots keep the log bounded (Kafka compacts `__consumer_offsets` instead):
//! `<20-digit offset>.groups-snapshot` holds every group's last metadata record and committed
//! offsets as of that log offset. It is written (atomically) after the log rolls a segment and
//! at clean shutdown. The state it holds reflects at least every record below its offset and
//! possibly some after it; replaying the log from its offset re-applies those, which changes
//! nothing (each record sets or deletes its key). The two newest snapshots are kept, and
//! segments wholly below the older one are deleted, so a damaged newest snapshot still has a
//! predecessor whose log suffix exists. On open, the newest snapshot within the log is loaded and
//! the log replayed after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::log::{AppendOptions, BatchHeader, LogConfig, LogError, PartitionLog};

use super::offsets::CommittedOffset;
use super::records::{
    decode_batches, encode_batch, GroupRecord, GroupValue, OffsetValue, RecordError, RECORD_VERSION,
};
use crate::log::write_atomically;

/// Directory of the group log inside the data directory.
pub const GROUP_LOG_DIR: &str = "__consumer_offsets";
/// Bytes read per step of the replay.
const REPLAY_CHUNK: usize = 1 << 20;
const SNAPSHOT_SUFFIX: &str = ".groups-snapshot";
/// Snapshots kept: the newest and one to fall back on.
const SNAPSHOTS_TO_KEEP: usize = 2;

/// One group in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotGroup {
    /// The group id.
    pub group: String,
    /// Its last metadata record.
    pub metadata: Option<GroupValue>,
    /// Its committed offsets (including commits not yet fsynced when it was taken).
    pub offsets: Vec<SnapshotOffset>,
}

/// One committed offset in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Offset of the record that committed it.
    pub record_offset: i64,
    /// The committed value.
    pub value: OffsetValue,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    v: u8,
    offset: i64,
    groups: Vec<SnapshotGroup>,
}

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
    /// A segment rolled since the last snapshot.
    snapshot_due: AtomicBool,
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
        let store = GroupStore {
            log,
            snapshot_due: AtomicBool::new(false),
        };
        let (from, groups) = store.load_snapshot()?;
        let groups = store.replay(from, groups)?;
        Ok((store, groups))
    }

    fn dir(&self) -> &Path {
        self.log.dir()
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir().join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
    }

    fn list_snapshots(&self) -> Result<Vec<i64>, StoreError> {
        let mut offsets = Vec::new();
        for entry in std::fs::read_dir(self.dir()).map_err(LogError::from)? {
            let name = entry.map_err(LogError::from)?.file_name();
            if let Some(offset) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
                .and_then(|n| n.parse::<i64>().ok())
            {
                offsets.push(offset);
            }
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    /// The newest readable snapshot inside the log, and where the replay continues; snapshots
    /// past the log end (the log lost its tail in a crash) are deleted.
    fn load_snapshot(&self) -> Result<(i64, BTreeMap<String, LoadedGroup>), StoreError> {
        let start = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        for offset in self.list_snapshots()?.into_iter().rev() {
            let path = self.snapshot_path(offset);
            if offset > end {
                tracing::warn!(file = %path.display(), log_end = end, "group snapshot past the log end; deleting it");
                std::fs::remove_file(&path).map_err(LogError::from)?;
                continue;
            }
            if offset < start {
                continue;
            }
            let parsed = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok())
                .filter(|s| s.v == RECORD_VERSION && s.offset == offset);
            let Some(snapshot) = parsed else {
                tracing::warn!(file = %path.display(), "unreadable group snapshot; trying an older one");
                continue;
            };
            let groups = snapshot
                .groups
                .into_iter()
                .map(|g| {
                    let offsets = g
                        .offsets
                        .into_iter()
                        .map(|o| {
                            (
                                (o.topic, o.partition),
                                CommittedOffset::from_value(&o.value, o.record_offset),
                            )
                        })
                        .collect();
                    (
                        g.group,
                        LoadedGroup {
                            metadata: g.metadata,
                            offsets,
                        },
                    )
                })
                .collect();
            return Ok((offset, groups));
        }
        if start > 0 {
            // Segments are only deleted below a snapshot that is kept, so this means the
            // snapshots were removed by hand: what the deleted segments held is gone.
            tracing::error!(log_start = start, "no usable group snapshot for a log that does not start at 0; groups and offsets before it are lost");
        }
        Ok((start, BTreeMap::new()))
    }

    /// Applies every record from `from` in log order: the last record of a key wins,
    /// tombstones delete.
    fn replay(
        &self,
        from: i64,
        mut groups: BTreeMap<String, LoadedGroup>,
    ) -> Result<BTreeMap<String, LoadedGroup>, StoreError> {
        let end = self.log.log_end_offset();
        let mut offset = from;
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
        tracing::info!(groups = groups.len(), from, records, "group log replayed");
        Ok(groups)
    }

    /// Writes a snapshot as of `offset`, keeps the newest two and deletes the segments below
    /// the older of them. The caller has made the log durable past everything `groups` holds.
    pub fn write_snapshot(
        &self,
        offset: i64,
        groups: Vec<SnapshotGroup>,
    ) -> Result<(), StoreError> {
        let snapshot = Snapshot {
            v: RECORD_VERSION,
            offset,
            groups,
        };
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| StoreError::Encode(e.to_string()))?;
        let name = format!("{offset:020}{SNAPSHOT_SUFFIX}");
        write_atomically(self.dir(), &name, &bytes).map_err(LogError::from)?;
        let snapshots = self.list_snapshots()?;
        let keep_from = snapshots.len().saturating_sub(SNAPSHOTS_TO_KEEP);
        for old in &snapshots[..keep_from] {
            match std::fs::remove_file(self.snapshot_path(*old)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::from(e).into()),
            }
        }
        if let Some(&oldest_kept) = snapshots[keep_from..].first() {
            let deleted = self.log.delete_segments_before(oldest_kept)?;
            if deleted > 0 {
                tracing::info!(
                    segments = deleted,
                    below = oldest_kept,
                    "deleted group log segments covered by snapshots"
                );
            }
        }
        tracing::debug!(
            offset,
            groups = snapshot.groups.len(),
            bytes = bytes.len(),
            "group snapshot written"
        );
        Ok(())
    }

    /// Whether a segment rolled since the last call (time for a snapshot); clears the flag.
    pub fn take_snapshot_due(&self) -> bool {
        self.snapshot_due.swap(false, Ordering::AcqRel)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// Appends one operation's records as one batch; returns (first record offset, end offset).
    pub fn append(&self, records: &[GroupRecord], now_ms: i64) -> Result<(i64, i64), StoreError> {
        let mut batch = encode_batch(records, now_ms).map_err(StoreError::Encode)?;
        let info = self
            .log
            .append(&mut batch, &AppendOptions::leader(now_ms, 0, false))?;
        if info.rolled {
            self.snapshot_due.store(true, Ordering::Release);
        }
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
