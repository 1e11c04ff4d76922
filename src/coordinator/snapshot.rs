//! Coordinator snapshots: what keeps a coordinator's log bounded (Kafka compacts its
//! coordinator topics instead).
//!
//! File: `<20-digit offset>.coordinator-snapshot` in the partition directory, JSON:
//! `{"v":1,"offset":O,"records":[{"offset":..,"producer_id":..,"producer_epoch":..,"key":B64,
//! "value":B64|null}, ..]}`: the records that rebuild every entity of the shard, each with the
//! offset (and producer) it had in the log, keys and values as the log stores them (base64).
//!
//! A snapshot is written after the log rolls a segment and at clean shutdown, once the log is
//! durable past everything it holds. The state it holds reflects at least every record below
//! its offset and possibly some after it; replaying the log from its offset re-applies those,
//! which changes nothing (each record sets or deletes its key). The two newest snapshots are
//! kept, and the runtime deletes the segments wholly below the older of them, so a damaged
//! newest snapshot still has a predecessor whose log suffix exists. On load, the newest readable
//! snapshot within the log is replayed, then the log after it.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::records::CoordinatorRecord;
use crate::log::files::remove_if_exists;
use crate::log::write_atomically;

/// Suffix of snapshot files.
pub const SUFFIX: &str = ".coordinator-snapshot";
/// The snapshot format version.
const VERSION: u8 = 1;
/// Snapshots kept: the newest and one to fall back on.
pub const KEEP: usize = 2;

/// One record of a snapshot, with where it was in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRecord<R> {
    /// Its offset in the log.
    pub offset: i64,
    /// The producer of a transactional record (pending until its marker), else -1.
    pub producer_id: i64,
    /// That producer's epoch, else -1.
    pub producer_epoch: i16,
    /// The record.
    pub record: R,
}

#[derive(Serialize, Deserialize)]
struct File {
    v: u8,
    offset: i64,
    records: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    key: String,
    value: Option<String>,
}

fn path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SUFFIX}"))
}

/// The offsets of the snapshots in `dir`, oldest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(offset) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<i64>().ok())
        {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Writes the snapshot as of `offset` atomically and deletes all but the newest [`KEEP`];
/// returns the oldest snapshot kept. Blocking.
pub fn write<R: CoordinatorRecord>(
    dir: &Path,
    offset: i64,
    records: &[SnapshotRecord<R>],
) -> Result<i64, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut entries = Vec::with_capacity(records.len());
    for r in records {
        let (key, value) = r.record.encode()?;
        entries.push(Entry {
            offset: r.offset,
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
            key: b64.encode(key),
            value: value.map(|v| b64.encode(v)),
        });
    }
    let bytes = serde_json::to_vec(&File {
        v: VERSION,
        offset,
        records: entries,
    })
    .map_err(|e| e.to_string())?;
    write_atomically(dir, &format!("{offset:020}{SUFFIX}"), &bytes).map_err(|e| e.to_string())?;
    let all = list(dir).map_err(|e| e.to_string())?;
    let keep_from = all.len().saturating_sub(KEEP);
    for old in &all[..keep_from] {
        remove_if_exists(&path(dir, *old)).map_err(|e| e.to_string())?;
    }
    Ok(all.get(keep_from).copied().unwrap_or(offset))
}

/// The snapshot at `offset`, or why it cannot be used (unreadable, another format, a record
/// that does not decode): the caller falls back to an older one.
pub fn read<R: CoordinatorRecord>(
    dir: &Path,
    offset: i64,
) -> Result<Vec<SnapshotRecord<R>>, String> {
    let bytes = std::fs::read(path(dir, offset)).map_err(|e| e.to_string())?;
    let file: File = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if file.v != VERSION || file.offset != offset {
        return Err(format!(
            "version {} at offset {}, expected {VERSION} at {offset}",
            file.v, file.offset
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    file.records
        .into_iter()
        .map(|e| {
            let key = b64.decode(&e.key).map_err(|err| err.to_string())?;
            let value = e
                .value
                .map(|v| b64.decode(v))
                .transpose()
                .map_err(|err| err.to_string())?;
            let record =
                R::decode(e.offset, &key, value.as_deref()).map_err(|err| err.to_string())?;
            Ok(SnapshotRecord {
                offset: e.offset,
                producer_id: e.producer_id,
                producer_epoch: e.producer_epoch,
                record,
            })
        })
        .collect()
}

/// Deletes the snapshot at `offset` (one past the log end after a crash cut the log).
pub fn remove(dir: &Path, offset: i64) -> std::io::Result<()> {
    remove_if_exists(&path(dir, offset))
}
