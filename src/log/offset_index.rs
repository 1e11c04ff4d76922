//! Sparse offset index of one segment: Kafka's `.index` format.
//!
//! File format: a sequence of 8-byte entries, each `relativeOffset u32 BE` (offset minus the
//! segment's base offset) then `position u32 BE` (byte position of a batch in the `.log` file). An
//! entry `(o, p)` says the batch starting at byte `p` has last offset `base + o`. No header, no
//! checksum, no preallocation: the file length is `8 * entries`.
//!
//! Invariants: relative offsets and positions are both strictly increasing. An entry is added
//! whenever more than `index.interval.bytes` were appended since the previous one, so the first
//! batch of a segment never has one and a lookup below the first entry starts at position 0.
//! At most `segment.index.bytes / 8` entries are kept; a full index makes the log roll.
//!
//! The entries live in memory (the authoritative copy while the broker runs); the file is written
//! whole when the segment is rolled and synced, or at clean close, and is only trusted on open
//! after a sanity check. Recovery rebuilds it from the log instead of trusting it.
//!
//! Thread-safety: none of its own; it is owned by a `Segment` behind the partition lock. The entry
//! vector is an `Arc` so a rolled (immutable) segment's entries can be written to disk without
//! the lock.

use std::sync::Arc;

/// Bytes per entry.
pub const ENTRY_SIZE: usize = 8;

/// In-memory sparse index from offsets to `.log` file positions.
#[derive(Debug, Clone)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    entries: Arc<Vec<(u32, u32)>>,
    max_entries: usize,
}

impl OffsetIndex {
    /// An empty index for the segment starting at `base_offset`.
    pub fn new(base_offset: i64, max_index_bytes: u32) -> OffsetIndex {
        OffsetIndex {
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
    ) -> Result<OffsetIndex, String> {
        if !bytes.len().is_multiple_of(ENTRY_SIZE) {
            return Err(format!(
                "offset index size {} is not a multiple of {ENTRY_SIZE}",
                bytes.len()
            ));
        }
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if let Some(&(last_rel, last_pos)) = entries.last() {
                if rel <= last_rel || pos <= last_pos {
                    return Err(format!(
                        "offset index entry {} ({rel}, {pos}) does not follow ({last_rel}, {last_pos})",
                        entries.len()
                    ));
                }
            }
            entries.push((rel, pos));
        }
        Ok(OffsetIndex {
            base_offset,
            entries: Arc::new(entries),
            max_entries: max_index_bytes as usize / ENTRY_SIZE,
        })
    }

    /// The file image of the index.
    pub fn to_bytes(entries: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(entries.len() * ENTRY_SIZE);
        for (rel, pos) in entries {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }

    /// Shared handle on the entries, for writing the file outside the partition lock.
    pub fn entries(&self) -> Arc<Vec<(u32, u32)>> {
        Arc::clone(&self.entries)
    }

    /// Whether no more entries may be added (the log should roll).
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// The last entry as (absolute offset, position).
    pub fn last_entry(&self) -> Option<(i64, u64)> {
        self.entries
            .last()
            .map(|&(rel, pos)| (self.base_offset + rel as i64, pos as u64))
    }

    /// Adds an entry; skipped (returns false) when full or when it would break monotonicity or
    /// not fit the 32-bit fields, since a sparse index stays correct with fewer entries.
    pub fn append(&mut self, offset: i64, position: u64) -> bool {
        if self.is_full() {
            return false;
        }
        let (Ok(rel), Ok(pos)) = (
            u32::try_from(offset - self.base_offset),
            u32::try_from(position),
        ) else {
            return false;
        };
        if let Some(&(last_rel, last_pos)) = self.entries.last() {
            if rel <= last_rel || pos <= last_pos {
                debug_assert!(false, "non-monotonic offset index append");
                return false;
            }
        }
        Arc::make_mut(&mut self.entries).push((rel, pos));
        true
    }

    /// The entry with the largest offset <= `target`, as (offset, position); (base, 0) if none.
    pub fn lookup(&self, target: i64) -> (i64, u64) {
        let rel_target = target - self.base_offset;
        let n = self
            .entries
            .partition_point(|&(rel, _)| (rel as i64) <= rel_target);
        if n == 0 {
            (self.base_offset, 0)
        } else {
            let (rel, pos) = self.entries[n - 1];
            (self.base_offset + rel as i64, pos as u64)
        }
    }

    /// Checks every entry against the segment's extent: offsets below `next_offset`, positions
    /// below `log_size`.
    pub fn check_bounds(&self, next_offset: i64, log_size: u64) -> Result<(), String> {
        match self.last_entry() {
            Some((offset, pos)) if offset >= next_offset || pos >= log_size => Err(format!(
                "offset index entry ({offset}, {pos}) beyond segment end ({next_offset}, {log_size})"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_largest_entry_not_above_target() {
        let mut idx = OffsetIndex::new(100, 1024);
        assert_eq!(idx.lookup(150), (100, 0));
        assert!(idx.append(104, 500));
        assert!(idx.append(110, 1000));
        assert!(idx.append(120, 2000));
        assert_eq!(idx.lookup(100), (100, 0));
        assert_eq!(idx.lookup(103), (100, 0));
        assert_eq!(idx.lookup(104), (104, 500));
        assert_eq!(idx.lookup(109), (104, 500));
        assert_eq!(idx.lookup(110), (110, 1000));
        assert_eq!(idx.lookup(10_000), (120, 2000));
        assert_eq!(idx.last_entry(), Some((120, 2000)));
    }

    #[test]
    fn bytes_round_trip_and_bad_files_are_rejected() {
        let mut idx = OffsetIndex::new(7, 1024);
        idx.append(9, 100);
        idx.append(20, 300);
        let bytes = OffsetIndex::to_bytes(&idx.entries());
        assert_eq!(bytes.len(), 16);
        let back = OffsetIndex::from_bytes(7, &bytes, 1024).unwrap();
        assert_eq!(*back.entries(), vec![(2, 100), (13, 300)]);

        assert!(OffsetIndex::from_bytes(7, &bytes[..15], 1024).is_err());
        let mut zero_tail = bytes.clone();
        zero_tail.extend_from_slice(&[0; 8]);
        assert!(OffsetIndex::from_bytes(7, &zero_tail, 1024).is_err());
        assert!(OffsetIndex::from_bytes(7, &[], 1024)
            .unwrap()
            .entries()
            .is_empty());
    }

    #[test]
    fn full_and_unrepresentable_entries_are_skipped() {
        let mut idx = OffsetIndex::new(0, 16);
        assert!(idx.append(1, 10));
        assert!(!idx.is_full());
        assert!(idx.append(2, 20));
        assert!(idx.is_full());
        assert!(!idx.append(3, 30));
        let mut idx = OffsetIndex::new(0, 1024);
        assert!(!idx.append(1, u32::MAX as u64 + 1));
        assert!(!idx.append(u32::MAX as i64 + 1, 5));
    }

    #[test]
    fn bounds_check() {
        let mut idx = OffsetIndex::new(0, 1024);
        idx.append(5, 100);
        assert!(idx.check_bounds(6, 101).is_ok());
        assert!(idx.check_bounds(5, 101).is_err());
        assert!(idx.check_bounds(6, 100).is_err());
    }
}
