//! The in-place upgrade of a data directory written before the group log was split into
//! `__consumer_offsets-N` partitions.
//!
//! Before, every group lived in one log, `<data>/__consumer_offsets/` (no partition suffix),
//! with `<offset>.groups-snapshot` files holding every group's last metadata record and committed
//! offsets as of an offset (JSON: `{"v":1,"offset":O,"groups":[{"group":G,"metadata":V|null,
//! "offsets":[{"topic":T,"partition":P,"record_offset":R,"value":V}]}]}`), and the log after it.
//!
//! The upgrade reads that state (the newest readable snapshot inside the log, then the log's
//! records after it, the last record of a key winning and tombstones deleting), writes each
//! group's metadata and offsets as one batch into the partition its id hashes to, makes those
//! partitions durable, and only then renames the old directory to `__consumer_offsets.deleted`
//! (atomic) and deletes it. A crash before the rename redoes the upgrade on the next start, which
//! writes the same records again (the last record of a key wins, so nothing changes); a crash
//! after it finds a `.deleted` directory, which is simply removed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::records::{GroupRecord, GroupValue, OffsetValue};
use crate::coordinator::records::{decode_batches, encode_batch, Decoded};
use crate::coordinator::runtime::partition_dir;
use crate::coordinator::{partition_for, CoordinatorError};
use crate::log::files::sync_dir;
use crate::log::{BatchHeader, LogConfig, PartitionLog};
use crate::partition::{AppendOrigin, Partition, PartitionContext};
use crate::topics::TopicConfig;

/// The single group log's directory before the split.
pub const LEGACY_DIR: &str = "__consumer_offsets";
const DELETED_DIR: &str = "__consumer_offsets.deleted";
const SNAPSHOT_SUFFIX: &str = ".groups-snapshot";
const RECORD_VERSION: u8 = 1;
const REPLAY_CHUNK: usize = 1 << 20;

#[derive(Deserialize)]
struct Snapshot {
    v: u8,
    offset: i64,
    groups: Vec<SnapshotGroup>,
}

#[derive(Deserialize)]
struct SnapshotGroup {
    group: String,
    metadata: Option<GroupValue>,
    offsets: Vec<SnapshotOffset>,
}

#[derive(Deserialize)]
struct SnapshotOffset {
    topic: String,
    partition: i32,
    value: OffsetValue,
}

/// One group as the old log describes it.
#[derive(Debug, Default, PartialEq)]
pub struct LegacyGroup {
    /// Its last metadata record.
    pub metadata: Option<GroupValue>,
    /// Its committed offsets.
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}

fn storage(e: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::Storage(format!("upgrading the group log: {e}"))
}

/// Moves every group of an old single group log into the partitioned log (see the module
/// documentation); returns how many groups moved. Blocking; runs before the coordinator loads.
pub fn upgrade(
    data_dir: &Path,
    topic: &str,
    partitions: i32,
    topic_config: &Arc<TopicConfig>,
    ctx: &PartitionContext,
) -> Result<usize, CoordinatorError> {
    let deleted = data_dir.join(DELETED_DIR);
    if deleted.exists() {
        std::fs::remove_dir_all(&deleted).map_err(storage)?;
    }
    let legacy = data_dir.join(LEGACY_DIR);
    if !legacy.is_dir() {
        return Ok(0);
    }
    let groups = load(&legacy, ctx.clock.now_ms())?;
    let mut by_partition: BTreeMap<i32, Vec<Vec<GroupRecord>>> = BTreeMap::new();
    for (id, group) in &groups {
        let mut records = Vec::new();
        if let Some(value) = &group.metadata {
            records.push(GroupRecord::Group {
                group: id.clone(),
                value: Some(value.clone()),
            });
        }
        for ((topic, partition), value) in &group.offsets {
            records.push(GroupRecord::Offset {
                group: id.clone(),
                topic: topic.clone(),
                partition: *partition,
                value: Some(value.clone()),
            });
        }
        by_partition
            .entry(partition_for(id, partitions))
            .or_default()
            .push(records);
    }
    let now = ctx.clock.now_ms();
    for (index, batches) in by_partition {
        let dir = partition_dir(data_dir, topic, index);
        let partition = Arc::new(
            Partition::open(&dir, topic, index, topic_config.clone(), ctx).map_err(storage)?,
        );
        for records in batches {
            let batch = encode_batch(&records, now, None).map_err(storage)?;
            partition
                .append_as_leader(&batch, AppendOrigin::Coordinator)
                .map_err(storage)?;
        }
        partition.close().map_err(storage)?;
    }
    // Everything is durable in the new partitions: only now does the old log go.
    std::fs::rename(&legacy, &deleted).map_err(storage)?;
    sync_dir(data_dir).map_err(storage)?;
    std::fs::remove_dir_all(&deleted).map_err(storage)?;
    tracing::info!(
        groups = groups.len(),
        "group log upgraded to {partitions} partitions of {topic}"
    );
    Ok(groups.len())
}

/// Every group of the old log.
pub fn load(dir: &Path, now_ms: i64) -> Result<BTreeMap<String, LegacyGroup>, CoordinatorError> {
    let log = PartitionLog::open(dir, LogConfig::default(), now_ms).map_err(storage)?;
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let mut groups = BTreeMap::new();
    let mut from = start;
    let mut snapshots: Vec<i64> = std::fs::read_dir(dir)
        .map_err(storage)?
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            name.to_str()?
                .strip_suffix(SNAPSHOT_SUFFIX)?
                .parse::<i64>()
                .ok()
        })
        .collect();
    snapshots.sort_unstable();
    for offset in snapshots.into_iter().rev() {
        if offset > end || offset < start {
            continue;
        }
        let path = dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"));
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok())
            .filter(|s| s.v == RECORD_VERSION && s.offset == offset);
        let Some(snapshot) = parsed else {
            tracing::warn!(file = %path.display(), "unreadable old group snapshot; trying an older one");
            continue;
        };
        for g in snapshot.groups {
            let group: &mut LegacyGroup = groups.entry(g.group).or_default();
            group.metadata = g.metadata;
            for o in g.offsets {
                group.offsets.insert((o.topic, o.partition), o.value);
            }
        }
        from = offset;
        break;
    }
    let mut offset = from;
    while offset < end {
        let read = log.read(offset, REPLAY_CHUNK, true).map_err(storage)?;
        if read.records.is_empty() {
            break;
        }
        let mut next = offset;
        let mut pos = 0;
        while pos < read.records.len() {
            let header = BatchHeader::parse(&read.records[pos..]).map_err(storage)?;
            pos += header.total_size();
            next = next.max(header.last_offset() + 1);
        }
        for batch in decode_batches::<GroupRecord>(read.records, offset).map_err(storage)? {
            if let Decoded::Records { records, .. } = batch {
                for (_, record) in records {
                    apply(&mut groups, record);
                }
            }
        }
        offset = next;
    }
    drop(log);
    Ok(groups)
}

/// The old replay rule: the last record of a key wins, a tombstone deletes; a group without
/// metadata or offsets is gone.
fn apply(groups: &mut BTreeMap<String, LegacyGroup>, record: GroupRecord) {
    match record {
        GroupRecord::Group {
            group,
            value: Some(value),
        } => groups.entry(group).or_default().metadata = Some(value),
        GroupRecord::Group { group, value: None } => {
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
            groups
                .entry(group)
                .or_default()
                .offsets
                .insert((topic, partition), value);
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
