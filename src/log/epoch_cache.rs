//! The leader epoch cache of one partition: Kafka's `LeaderEpochFileCache` and its
//! `leader-epoch-checkpoint` file.
//!
//! Every batch carries the leader epoch it was written under (`partitionLeaderEpoch`). The cache
//! records where each epoch started: `(epoch, start offset)` pairs, both strictly increasing.
//! It answers "where did epoch E end" (`end_offset_for`), which a follower (or a consumer
//! validating its position) asks with OffsetForLeaderEpoch before it truncates (KIP-101/279).
//!
//! File format (`leader-epoch-checkpoint`, text, Kafka's `CheckpointFile`):
//!
//! ```text
//! 0                  version
//! 2                  number of entries
//! 0 0                epoch start-offset
//! 3 1200
//! ```
//!
//! Invariants: epochs and start offsets strictly increase from entry to entry. Every entry whose
//! start offset is below the partition's recovery point is in the file (the log writes the file
//! before it moves the recovery point); entries above it are rebuilt from the batches recovery
//! scans. The file is replaced atomically.
//!
//! Thread-safety: none of its own; the partition log keeps it under its lock.

use std::io;
use std::path::Path;

use super::files::write_atomically;

/// Name of the checkpoint file in the partition directory.
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// The only checkpoint format version (Kafka's `LeaderEpochCheckpointFile.CURRENT_VERSION`).
const VERSION: i64 = 0;
/// Kafka's `UNDEFINED_EPOCH` / `UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED: i64 = -1;

/// One epoch and the first offset written under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset of that epoch.
    pub start_offset: i64,
}

/// Where each leader epoch started, with the changes not yet persisted counted.
#[derive(Debug, Clone, Default)]
pub(crate) struct EpochCache {
    entries: Vec<EpochEntry>,
    /// Bumped by every change; the file holds `persisted`.
    version: u64,
    persisted: u64,
}

impl EpochCache {
    /// Reads the checkpoint; `None` when it is absent or unreadable (logged), so the loader can
    /// rebuild what the log shows instead.
    pub fn load(dir: &Path) -> io::Result<Option<EpochCache>> {
        let path = dir.join(CHECKPOINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => String::new(),
            Err(e) => return Err(e),
        };
        match parse(&text) {
            Ok(entries) => Ok(Some(EpochCache {
                entries,
                version: 0,
                persisted: 0,
            })),
            Err(reason) => {
                tracing::warn!(file = %path.display(), reason, "unreadable leader epoch checkpoint, rebuilt from the log");
                Ok(None)
            }
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset`. An epoch already known
    /// as the latest is not moved; entries that would break monotonicity (an epoch at least as
    /// new, or a start at least as late) are dropped first, as after a truncation.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if epoch < 0 {
            return;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return;
            }
        }
        let before = self.entries.len();
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        if self.entries.len() != before {
            tracing::debug!(
                epoch,
                start_offset,
                dropped = before - self.entries.len(),
                "leader epoch cache: non-monotonic entries dropped"
            );
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.version += 1;
    }

    /// Kafka's `truncateFromEnd`: forgets every epoch that starts at or after `end_offset` (the
    /// log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.version += 1;
        }
    }

    /// Kafka's `truncateFromStart`: the log now starts at `start_offset`. Entries wholly below it
    /// go; the last of them that began at or before it now begins there.
    pub fn truncate_from_start(&mut self, start_offset: i64) {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if below == 0 {
            return;
        }
        let mut kept = self.entries[below - 1];
        if below == 1 && kept.start_offset == start_offset {
            return;
        }
        kept.start_offset = start_offset;
        self.entries.drain(..below);
        self.entries.insert(0, kept);
        self.version += 1;
    }

    /// Kafka's `endOffsetFor`: (epoch, end offset) for a requested epoch: the latest epoch ends
    /// at the log end; an older one ends where the next known epoch starts, answered with the
    /// largest known epoch not above it; an epoch older than every entry ends where the first
    /// starts; an unknown newer one, or -1, is (-1, -1).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        let undefined = (UNDEFINED as i32, UNDEFINED);
        if requested < 0 {
            return undefined;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested);
        let Some(higher) = higher else {
            return undefined;
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    /// Whether a change is not yet in the file.
    pub fn is_dirty(&self) -> bool {
        self.version != self.persisted
    }

    /// What to write: the file image and the version it persists.
    pub fn checkpoint(&self) -> (Vec<u8>, u64) {
        let mut text = format!("{VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        (text.into_bytes(), self.version)
    }

    /// Records that the file now holds `version` (written by [`write_checkpoint`]).
    pub fn mark_persisted(&mut self, version: u64) {
        self.persisted = self.persisted.max(version);
    }

    /// Forces the next sync to write the file (after a rebuild at load).
    pub fn mark_dirty(&mut self) {
        self.version += 1;
    }
}

/// Writes a checkpoint image taken with [`EpochCache::checkpoint`] (blocking: fsync, rename).
pub(crate) fn write_checkpoint(dir: &Path, image: &[u8]) -> io::Result<()> {
    write_atomically(dir, CHECKPOINT_FILE, image)
}

fn parse(text: &str) -> Result<Vec<EpochEntry>, String> {
    // Kafka's `CheckpointFile` reads an empty file as no entries.
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = text.lines();
    let version: i64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("no version line")?;
    if version != VERSION {
        return Err(format!("version {version}, expected {VERSION}"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("no entry count")?;
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let line = lines.next().ok_or("fewer entries than announced")?;
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("malformed entry {line:?}"));
        };
        let epoch: i32 = epoch.parse().map_err(|_| format!("bad epoch {epoch:?}"))?;
        let start_offset: i64 = offset
            .parse()
            .map_err(|_| format!("bad offset {offset:?}"))?;
        if epoch < 0 || start_offset < 0 {
            return Err(format!("negative entry {line:?}"));
        }
        if let Some(last) = entries.last() {
            if epoch <= last.epoch || start_offset <= last.start_offset {
                return Err(format!("entry {line:?} does not follow {last:?}"));
            }
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("more entries than announced".to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(pairs: &[(i32, i64)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, o) in pairs {
            c.assign(e, o);
        }
        c
    }

    fn pairs(c: &EpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = cache(&[(0, 0), (0, 5), (2, 10)]);
        assert_eq!(pairs(&c), [(0, 0), (2, 10)]);
        // A newer epoch starting earlier than a known one replaces what it contradicts.
        c.assign(3, 8);
        assert_eq!(pairs(&c), [(0, 0), (3, 8)]);
        c.assign(-1, 20);
        assert_eq!(pairs(&c), [(0, 0), (3, 8)]);
    }

    #[test]
    fn end_offsets_as_kafka_answers_them() {
        let c = cache(&[(1, 0), (3, 100), (5, 250)]);
        assert_eq!(c.end_offset_for(5, 300), (5, 300));
        assert_eq!(c.end_offset_for(3, 300), (3, 250));
        assert_eq!(c.end_offset_for(4, 300), (3, 250));
        assert_eq!(c.end_offset_for(0, 300), (0, 0));
        assert_eq!(c.end_offset_for(9, 300), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 300), (-1, -1));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(1, 0), (3, 100), (5, 250)]);
        c.truncate_from_end(250);
        assert_eq!(pairs(&c), [(1, 0), (3, 100)]);
        c.truncate_from_start(120);
        assert_eq!(pairs(&c), [(3, 120)]);
        c.truncate_from_start(50);
        assert_eq!(pairs(&c), [(3, 120)]);
    }

    #[test]
    fn checkpoint_round_trips_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(EpochCache::load(dir.path()).unwrap().is_none());
        let mut c = cache(&[(0, 0), (4, 77)]);
        assert!(c.is_dirty());
        let (image, version) = c.checkpoint();
        assert_eq!(
            String::from_utf8(image.clone()).unwrap(),
            "0\n2\n0 0\n4 77\n"
        );
        write_checkpoint(dir.path(), &image).unwrap();
        c.mark_persisted(version);
        assert!(!c.is_dirty());
        let back = EpochCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(pairs(&back), [(0, 0), (4, 77)]);
        assert!(parse("").unwrap().is_empty());
        for bad in [
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n2\n3 5\n1 9\n",
            "0\n1\n0 x\n",
            "0\n1\n0 0\n1 1\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
