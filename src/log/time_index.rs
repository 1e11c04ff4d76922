//! Sparse time index of one segment: Kafka's `.timeindex` format.
//!
//! File format: a sequence of 12-byte entries, each `timestamp i64 BE` then `relativeOffset u32 BE`.
//! An entry `(t, o)` says: `t` is the largest timestamp among the batches up to and including the
//! one whose last offset is `base + o`, and that batch is the first to reach `t`. Hence every
//! record before that batch has a timestamp below `t`, which is what makes a lookup safe.
//!
//! Invariants: timestamps strictly increase from entry to entry (an entry is only added when the
//! segment's max timestamp grew, as Kafka's `TimeIndex.maybeAppend`), relative offsets never
//! decrease. Entries are added alongside offset index entries, plus one final entry when the
//! segment stops being active (roll, clean close, recovery), so that the last entry of an
//! inactive segment is the segment's max timestamp and the batch that holds it.
//!
//! Like the offset index, the entries live in memory and the file is written whole at roll/sync
//! or clean close, and rebuilt rather than trusted after a crash.
//!
//! Thread-safety: owned by a `Segment` behind the partition lock; entries are in an `Arc` so a
//! rolled segment's index can be written out without the lock.

use std::sync::Arc;

/// Bytes per entry.
pub const ENTRY_SIZE: usize = 12;

/// Kafka's "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;

/// In-memory sparse index from timestamps to offsets.
#[derive(Debug, Clone)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    entries: Arc<Vec<(i64, u32)>>,
    max_entries: usize,
}

impl TimeIndex {
    /// An empty index for the segment starting at `base_offset`.
    pub fn new(base_offset: i64, max_index_bytes: u32) -> TimeIndex {
        TimeIndex {
            base_offset,
            entries: Arc::new(Vec::new()),
            max_entries: max_index_bytes as usize / ENTRY_SIZE,
        }
    }

    /// Parses file contents, failing (with the reason) unless the format invariants hold.
    pub fn from_bytes(
        base_offset: i64,
        bytes: &[u8],
        max_index_bytes: u32,
    ) -> Result<TimeIndex, String> {
        if !bytes.len().is_multiple_of(ENTRY_SIZE) {
            return Err(format!(
                "time index size {} is not a multiple of {ENTRY_SIZE}",
                bytes.len()
            ));
        }
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            let last = entries.last().copied().unwrap_or((NO_TIMESTAMP, 0));
            if ts <= last.0 || rel < last.1 {
                return Err(format!(
                    "time index entry {} ({ts}, {rel}) does not follow ({}, {})",
                    entries.len(),
                    last.0,
                    last.1
                ));
            }
            entries.push((ts, rel));
        }
        Ok(TimeIndex {
            base_offset,
            entries: Arc::new(entries),
            max_entries: max_index_bytes as usize / ENTRY_SIZE,
        })
    }

    /// The file image of the index.
    pub fn to_bytes(entries: &[(i64, u32)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(entries.len() * ENTRY_SIZE);
        for (ts, rel) in entries {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }

    /// Shared handle on the entries, for writing the file outside the partition lock.
    pub fn entries(&self) -> Arc<Vec<(i64, u32)>> {
        Arc::clone(&self.entries)
    }

    /// Whether no more regular entries may be added (the log should roll).
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// The last entry as (timestamp, absolute offset); `(NO_TIMESTAMP, base)` when empty, as Kafka.
    pub fn last_entry(&self) -> (i64, i64) {
        self.entries
            .last()
            .map(|&(ts, rel)| (ts, self.base_offset + rel as i64))
            .unwrap_or((NO_TIMESTAMP, self.base_offset))
    }

    /// Adds `(timestamp, offset)` if `timestamp` exceeds the last entry's. `skip_full_check` is for
    /// the final entry of a segment, which may exceed the regular capacity by one.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64, skip_full_check: bool) {
        if !skip_full_check && self.is_full() {
            return;
        }
        let (last_ts, last_offset) = self.last_entry();
        if timestamp <= last_ts {
            return;
        }
        let Ok(rel) = u32::try_from(offset - self.base_offset) else {
            return;
        };
        if !self.entries.is_empty() && offset < last_offset {
            debug_assert!(false, "time index offset went backwards");
            return;
        }
        Arc::make_mut(&mut self.entries).push((timestamp, rel));
    }

    /// The entry with the largest timestamp <= `target`, as (timestamp, offset);
    /// `(NO_TIMESTAMP, base)` when there is none, meaning "scan from the segment start".
    pub fn lookup(&self, target: i64) -> (i64, i64) {
        let n = self.entries.partition_point(|&(ts, _)| ts <= target);
        if n == 0 {
            (NO_TIMESTAMP, self.base_offset)
        } else {
            let (ts, rel) = self.entries[n - 1];
            (ts, self.base_offset + rel as i64)
        }
    }

    /// Checks that every entry points below `next_offset`.
    pub fn check_bounds(&self, next_offset: i64) -> Result<(), String> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let (ts, offset) = self.last_entry();
        if offset >= next_offset {
            return Err(format!(
                "time index entry ({ts}, {offset}) beyond segment end {next_offset}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maybe_append_keeps_timestamps_increasing() {
        let mut idx = TimeIndex::new(50, 1200);
        assert_eq!(idx.last_entry(), (NO_TIMESTAMP, 50));
        idx.maybe_append(NO_TIMESTAMP, 50, false);
        assert!(idx.entries().is_empty());
        idx.maybe_append(1000, 55, false);
        idx.maybe_append(1000, 60, false);
        idx.maybe_append(900, 61, false);
        idx.maybe_append(2000, 70, false);
        assert_eq!(*idx.entries(), vec![(1000, 5), (2000, 20)]);
        assert_eq!(idx.last_entry(), (2000, 70));
    }

    #[test]
    fn lookup_finds_largest_timestamp_not_above_target() {
        let mut idx = TimeIndex::new(0, 1200);
        idx.maybe_append(100, 3, false);
        idx.maybe_append(200, 8, false);
        assert_eq!(idx.lookup(99), (NO_TIMESTAMP, 0));
        assert_eq!(idx.lookup(100), (100, 3));
        assert_eq!(idx.lookup(199), (100, 3));
        assert_eq!(idx.lookup(5000), (200, 8));
    }

    #[test]
    fn full_index_takes_only_the_final_entry() {
        let mut idx = TimeIndex::new(0, 24);
        idx.maybe_append(1, 1, false);
        idx.maybe_append(2, 2, false);
        assert!(idx.is_full());
        idx.maybe_append(3, 3, false);
        assert_eq!(idx.entries().len(), 2);
        idx.maybe_append(3, 3, true);
        assert_eq!(idx.last_entry(), (3, 3));
    }

    #[test]
    fn bytes_round_trip_and_bad_files_are_rejected() {
        let mut idx = TimeIndex::new(10, 1200);
        idx.maybe_append(5, 11, false);
        idx.maybe_append(9, 15, false);
        let bytes = TimeIndex::to_bytes(&idx.entries());
        let back = TimeIndex::from_bytes(10, &bytes, 1200).unwrap();
        assert_eq!(*back.entries(), vec![(5, 1), (9, 5)]);
        assert!(back.check_bounds(16).is_ok());
        assert!(back.check_bounds(15).is_err());
        assert!(TimeIndex::from_bytes(10, &bytes[..13], 1200).is_err());
        let mut zero_tail = bytes.clone();
        zero_tail.extend_from_slice(&[0; 12]);
        assert!(TimeIndex::from_bytes(10, &zero_tail, 1200).is_err());
    }
}
