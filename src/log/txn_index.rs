//! Transaction index of one segment: Kafka's `.txnindex` (`TransactionIndex`), the aborted
//! transactions a read_committed fetch must tell its consumer about.
//!
//! File format: `<20-digit base offset>.txnindex`, a sequence of 34-byte entries and nothing
//! else, each (all big-endian) `version int16` (0), `producer_id int64`, `first_offset int64`,
//! `last_offset int64`, `last_stable_offset int64` (Kafka's `AbortedTxn`). One entry per aborted
//! transaction whose ABORT marker lies in this segment: `last_offset` is the marker's offset,
//! `first_offset` the transaction's first offset in the partition (possibly in an earlier
//! segment), `last_stable_offset` the partition's last stable offset right after the abort (the
//! first offset of the earliest other open transaction, else the marker offset + 1).
//!
//! Invariants: entries are in strictly increasing `last_offset` order, each within
//! `[base offset, segment next offset)`; the file exists only while the segment has entries (the
//! first entry creates it, a truncation that empties it removes it), and holds exactly the
//! in-memory entries (a torn tail shorter than an entry, or entries breaking the rules above,
//! are cut when the file is loaded).
//!
//! Unlike the offset and time indexes this is not a cache of the segment: the segment alone
//! cannot tell where an aborted transaction began. An entry is appended to the file (page cache)
//! in the same critical section as its marker, and the file is fsynced with its segment (every
//! sync, roll and close), so a sync that covers a marker covers its entry. What a crash can still
//! lose (entries past the last sync) the producer-state replay on open rebuilds:
//! `crate::partition::producer_state` replays the log from its snapshot and replaces every entry
//! at or after the replay start ([`TxnIndex::replace_from`]); a snapshot is written only once
//! everything below its offset is durable.
//!
//! Thread-safety: owned by a `Segment` behind the partition log's lock; the in-memory entries are
//! authoritative and reads scan them under that lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::LogError;
use super::files::remove_if_exists;

/// Bytes per entry.
pub const ENTRY_SIZE: usize = 34;
/// The entry version Kafka writes (and the only one it reads).
const VERSION: i16 = 0;

/// An aborted transaction as the transaction index records it (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// The transaction's first offset in the partition.
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset right after the abort.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The entry's 34 bytes.
    fn to_bytes(self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// One entry back from its bytes (`chunk.len() == ENTRY_SIZE`), or why it is not one.
    fn from_bytes(chunk: &[u8]) -> Result<AbortedTxn, String> {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&chunk[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let version = i16::from_be_bytes([chunk[0], chunk[1]]);
        if version != VERSION {
            return Err(format!("entry version {version}, only {VERSION} is known"));
        }
        Ok(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The image of `entries` as the file holds them.
fn to_file_bytes(entries: &[AbortedTxn]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_bytes()).collect()
}

/// The aborted transactions whose markers are in one segment.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    base_offset: i64,
    path: PathBuf,
    /// Open while the file exists (the segment has entries).
    file: Option<Arc<File>>,
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// An empty index (no file) for the segment starting at `base_offset`.
    pub fn new(path: PathBuf, base_offset: i64) -> TxnIndex {
        TxnIndex {
            base_offset,
            path,
            file: None,
            entries: Vec::new(),
        }
    }

    /// Points the index at a new path (its file, if any, was renamed there).
    pub fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Reads the file at `path` if there is one, keeping the longest prefix of entries that obey
    /// the invariants for a segment ending at `next_offset`; the file is cut to that prefix (and
    /// removed when nothing is left). Returns the index and whether the file changed.
    pub fn load(path: PathBuf, base_offset: i64, next_offset: i64) -> io::Result<(TxnIndex, bool)> {
        let mut index = TxnIndex::new(path, base_offset);
        let bytes = match std::fs::read(&index.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((index, false)),
            Err(e) => return Err(e),
        };
        let mut problem = (!bytes.len().is_multiple_of(ENTRY_SIZE))
            .then(|| format!("{} bytes is not a whole number of entries", bytes.len()));
        for chunk in bytes.chunks_exact(ENTRY_SIZE) {
            let entry = match AbortedTxn::from_bytes(chunk) {
                Ok(entry) => entry,
                Err(reason) => {
                    problem = Some(reason);
                    break;
                }
            };
            let previous = index.entries.last().map_or(i64::MIN, |e| e.last_offset);
            if entry.last_offset <= previous
                || entry.last_offset < base_offset
                || entry.last_offset >= next_offset
                || entry.first_offset > entry.last_offset
            {
                problem = Some(format!(
                    "entry {entry:?} out of order or outside the segment [{base_offset}, {next_offset})"
                ));
                break;
            }
            index.entries.push(entry);
        }
        let changed = problem.is_some() || index.entries.is_empty();
        if let Some(reason) = &problem {
            tracing::warn!(file = %index.path.display(), reason = %reason, kept = index.entries.len(), "cutting transaction index");
        }
        if index.entries.is_empty() {
            remove_if_exists(&index.path)?;
        } else {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&index.path)?;
            if problem.is_some() {
                file.set_len((index.entries.len() * ENTRY_SIZE) as u64)?;
                file.sync_data()?;
            }
            index.file = Some(Arc::new(file));
        }
        Ok((index, changed))
    }

    /// The entries, in marker order.
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// The open file, for fsync outside the lock (None while the segment has no entry).
    pub fn file(&self) -> Option<Arc<File>> {
        self.file.clone()
    }

    /// Appends one entry (page cache, no fsync), creating the file on the first. Returns whether
    /// it created the file (the directory then needs an fsync).
    pub fn append(&mut self, txn: AbortedTxn) -> Result<bool, LogError> {
        let previous = self.entries.last().map_or(i64::MIN, |e| e.last_offset);
        if txn.last_offset <= previous || txn.last_offset < self.base_offset {
            return Err(LogError::Corrupt(format!(
                "aborted transaction {txn:?} does not follow offset {previous} in {}",
                self.path.display()
            )));
        }
        let created = self.file.is_none();
        let file = match &self.file {
            Some(file) => Arc::clone(file),
            None => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&self.path)?;
                let file = Arc::new(file);
                self.file = Some(Arc::clone(&file));
                file
            }
        };
        let at = (self.entries.len() * ENTRY_SIZE) as u64;
        if let Err(e) = file.write_all_at(&txn.to_bytes(), at) {
            if let Err(cut) = file.set_len(at) {
                tracing::warn!(file = %self.path.display(), error = %cut, "could not cut a failed transaction index append");
            }
            return Err(e.into());
        }
        self.entries.push(txn);
        Ok(created)
    }

    /// Drops the entries whose marker is at or after `offset` (Kafka's `truncateTo`). Returns
    /// whether the file was removed (the directory then needs an fsync).
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<bool> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep == self.entries.len() {
            return Ok(false);
        }
        self.entries.truncate(keep);
        self.write_file(false)
    }

    /// Replaces every entry whose marker is at or after `from` with `replacement` (entries at or
    /// after `from`, in marker order), rewriting and fsyncing the file only if that changes
    /// anything. Returns whether the file was created or removed (the directory then needs an
    /// fsync).
    pub fn replace_from(
        &mut self,
        from: i64,
        replacement: &[AbortedTxn],
    ) -> Result<bool, LogError> {
        let keep = self.entries.partition_point(|e| e.last_offset < from);
        if self.entries[keep..] == *replacement {
            return Ok(false);
        }
        let mut previous = self.entries[..keep]
            .last()
            .map_or(i64::MIN, |e| e.last_offset);
        for txn in replacement {
            if txn.last_offset <= previous || txn.last_offset < from.max(self.base_offset) {
                return Err(LogError::Corrupt(format!(
                    "aborted transaction {txn:?} does not follow offset {previous} in {}",
                    self.path.display()
                )));
            }
            previous = txn.last_offset;
        }
        self.entries.truncate(keep);
        self.entries.extend_from_slice(replacement);
        Ok(self.write_file(true)?)
    }

    /// Makes the file hold exactly the entries (removing it when there are none); fsyncs a
    /// rewrite when `sync`. Returns whether the file was created or removed.
    fn write_file(&mut self, sync: bool) -> io::Result<bool> {
        if self.entries.is_empty() {
            let existed = self.file.take().is_some();
            remove_if_exists(&self.path)?;
            return Ok(existed);
        }
        let created = self.file.is_none();
        let file = match &self.file {
            Some(file) => Arc::clone(file),
            None => Arc::new(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&self.path)?,
            ),
        };
        let bytes = to_file_bytes(&self.entries);
        file.write_all_at(&bytes, 0)?;
        file.set_len(bytes.len() as u64)?;
        if sync {
            file.sync_data()?;
        }
        self.file = Some(file);
        Ok(created)
    }

    /// Kafka's `collectAbortedTxns`: appends to `out` the entries that overlap the fetch range
    /// `[from, upper)` (marker at or after `from`, first offset below `upper`). Returns true when
    /// no later segment can hold more: an entry whose last stable offset reaches `upper` means
    /// every transaction starting below `upper` had ended by its marker.
    pub fn collect(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for entry in &self.entries {
            if entry.last_offset >= from && entry.first_offset < upper {
                out.push(*entry);
            }
            if entry.last_stable_offset >= upper {
                return true;
            }
        }
        false
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer_id: i64, first_offset: i64, last_offset: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: lso,
        }
    }

    fn index_at(dir: &Path, base: i64) -> TxnIndex {
        TxnIndex::new(dir.join(format!("{base:020}.txnindex")), base)
    }

    #[test]
    fn entries_are_34_bytes_big_endian_and_the_file_is_created_lazily() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_at(dir.path(), 100);
        assert!(!index.path().exists(), "no entry, no file");
        assert!(index.append(txn(7, 90, 105, 106)).unwrap(), "created");
        assert!(!index.append(txn(8, 101, 110, 111)).unwrap());
        let bytes = std::fs::read(index.path()).unwrap();
        assert_eq!(bytes.len(), 2 * ENTRY_SIZE);
        let mut expected = vec![0u8, 0];
        for v in [7i64, 90, 105, 106] {
            expected.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(&bytes[..ENTRY_SIZE], &expected[..]);
        // Markers only go forward.
        assert!(index.append(txn(9, 100, 110, 111)).is_err());
        assert!(index_at(dir.path(), 200)
            .append(txn(9, 100, 150, 151))
            .is_err());
        assert_eq!(index.entries().len(), 2);
    }

    #[test]
    fn collect_returns_overlapping_entries_and_stops_at_the_upper_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_at(dir.path(), 0);
        // pid 1: [0, 10] aborted while pid 2's txn from 5 was open; pid 2: [5, 20]; pid 3: [30, 40].
        index.append(txn(1, 0, 10, 5)).unwrap();
        index.append(txn(2, 5, 20, 21)).unwrap();
        index.append(txn(3, 30, 40, 41)).unwrap();
        let collect = |from, upper| {
            let mut out = Vec::new();
            let complete = index.collect(from, upper, &mut out);
            (
                out.iter().map(|t| t.producer_id).collect::<Vec<_>>(),
                complete,
            )
        };
        assert_eq!(collect(0, 3), (vec![1], true));
        assert_eq!(collect(0, 6), (vec![1, 2], true));
        assert_eq!(collect(11, 20), (vec![2], true));
        assert_eq!(collect(11, 50), (vec![2, 3], false));
        assert_eq!(collect(11, 25), (vec![2], true));
        assert_eq!(collect(21, 30), (vec![], true));
        assert_eq!(collect(21, 31), (vec![3], true));
        assert_eq!(collect(41, 100), (vec![], false));
    }

    #[test]
    fn truncate_reopen_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_at(dir.path(), 10);
        for (i, last) in [12, 15, 19].into_iter().enumerate() {
            index.append(txn(i as i64, 10, last, last + 1)).unwrap();
        }
        assert!(!index.truncate_to(16).unwrap());
        assert_eq!(index.entries().len(), 2);
        assert_eq!(std::fs::metadata(index.path()).unwrap().len(), 68);
        // Reopened against a segment that now ends at 16: both entries are kept.
        let path = index.path().to_path_buf();
        drop(index);
        let (mut index, changed) = TxnIndex::load(path.clone(), 10, 16).unwrap();
        assert!(!changed);
        assert_eq!(
            index
                .entries()
                .iter()
                .map(|t| t.last_offset)
                .collect::<Vec<_>>(),
            [12, 15]
        );
        // Replacing with what is there touches nothing; a different tail is rewritten.
        assert!(!index.replace_from(13, &[txn(1, 10, 15, 16)]).unwrap());
        index.replace_from(13, &[txn(5, 13, 14, 15)]).unwrap();
        let (reloaded, _) = TxnIndex::load(path.clone(), 10, 16).unwrap();
        assert_eq!(
            reloaded.entries(),
            &[txn(0, 10, 12, 13), txn(5, 13, 14, 15)]
        );
        // Truncating every entry away removes the file.
        assert!(index.truncate_to(10).unwrap());
        assert!(!path.exists());
        assert!(index.entries().is_empty());
        assert!(index.append(txn(1, 10, 11, 12)).unwrap(), "created again");
    }

    #[test]
    fn a_torn_or_bogus_tail_is_cut_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = index_at(dir.path(), 0);
        index.append(txn(1, 0, 3, 4)).unwrap();
        index.append(txn(2, 4, 8, 9)).unwrap();
        let path = index.path().to_path_buf();
        drop(index);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0u8; 20]);
        std::fs::write(&path, &bytes).unwrap();
        let (index, changed) = TxnIndex::load(path.clone(), 0, 100).unwrap();
        assert!(changed);
        assert_eq!(index.entries().len(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 68);
        drop(index);
        // An entry past the segment's end (its marker was cut by recovery) goes with the rest.
        let (index, changed) = TxnIndex::load(path.clone(), 0, 5).unwrap();
        assert!(changed);
        assert_eq!(index.entries(), &[txn(1, 0, 3, 4)]);
        drop(index);
        // Zeroes (a block that was never written) are not entries that follow.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0u8; ENTRY_SIZE]);
        std::fs::write(&path, &bytes).unwrap();
        let (index, _) = TxnIndex::load(path.clone(), 0, 100).unwrap();
        assert_eq!(index.entries().len(), 1);
        drop(index);
        let (index, changed) = TxnIndex::load(path.clone(), 50, 100).unwrap();
        assert!(changed && index.entries().is_empty());
        assert!(!path.exists(), "an index left with nothing is removed");
    }
}
