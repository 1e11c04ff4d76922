//! One log segment: `<base>.log` plus its `.index`, `.timeindex` and (only while it records an
//! aborted transaction) `.txnindex`, Kafka's `LogSegment`.
//!
//! Files, in the partition directory, named by the segment's base offset zero-padded to 20 digits
//! (`LogFileUtils`): `00000000000000000042.log` holds whole v2 record batches back to back, exactly
//! as they were appended (offsets already assigned) and as they are served to fetches.
//!
//! Invariants:
//! - the `.log` file holds only whole batches in `[0, size)`; offsets strictly increase: the
//!   first batch starts at or after `base_offset`, each next batch after the previous
//!   `last_offset` (a compacted segment has gaps: the cleaner drops records but never moves an
//!   offset), every last offset is within `i32::MAX` of `base_offset` (the indexes store relative
//!   offsets as u32, Kafka's int), and `next_offset` is the last batch's `last_offset + 1`
//!   (`base_offset` when empty).
//! - `size < 2^31` so positions fit the index's u32 fields (Kafka's int32 limit).
//! - `max_timestamp` is the largest batch `max_timestamp` seen (`NO_TIMESTAMP` if none) and
//!   `offset_of_max_timestamp` the last offset of the first batch that reached it.
//! - the in-memory indexes are authoritative; on disk the offset and time indexes are written
//!   whole at roll+sync or close, the transaction index is appended to as markers are (see
//!   `txn_index`) and fsynced with the segment.
//!
//! Thread-safety: a `Segment` is mutated only under the partition lock. Bytes below a `size`
//! observed under that lock never change afterwards, so readers clone the `Arc<File>` and `size`
//! ([`SegmentView`]) and read with positional I/O (`read_exact_at`) after dropping the lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::batch::{check_batch, peek_total_size, BatchHeader, HEADER_SIZE};
use super::epoch_cache::EpochEntry;
use super::error::LogError;
use super::files::remove_if_exists;
use super::offset_index::OffsetIndex;
use super::time_index::{TimeIndex, NO_TIMESTAMP};
use super::txn_index::{AbortedTxn, TxnIndex};

/// Extension of segment data files.
pub const LOG_EXT: &str = ".log";
/// Extension of offset index files.
pub const INDEX_EXT: &str = ".index";
/// Extension of time index files.
pub const TIME_INDEX_EXT: &str = ".timeindex";
/// Extension of transaction index files.
pub const TXN_INDEX_EXT: &str = ".txnindex";
/// A segment never grows past this, so positions fit Kafka's int32 (and our u32 index fields).
pub const MAX_SEGMENT_SIZE: u64 = i32::MAX as u64;

/// Read-ahead used when recovery scans a segment.
const SCAN_CHUNK: usize = 1 << 20;

/// `<20-digit base offset><ext>`.
pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}{ext}")
}

/// The base offset encoded in a segment file name with extension `ext`, if it is one.
pub fn parse_file_name(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// One segment's files and in-memory state.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    log: Arc<File>,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TxnIndex,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// max_timestamp of the first batch: Kafka's `rollingBasedTimestamp` for segment.ms.
    rolling_timestamp: Option<i64>,
    created_ms: i64,
    bytes_since_last_index_entry: u64,
    /// segment.index.bytes at creation: both indexes' capacity.
    index_bytes: u32,
}

/// A cheap snapshot for reading a segment outside the partition lock.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    /// The segment's data file.
    pub log: Arc<File>,
    /// Bytes of whole batches at snapshot time.
    pub size: u64,
    /// Base offset, for error messages.
    pub base_offset: i64,
}

/// What is needed to make a rolled (immutable) segment durable without the partition lock.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFiles {
    /// Base offset of the segment.
    pub base_offset: i64,
    log: Arc<File>,
    index_path: PathBuf,
    time_index_path: PathBuf,
    offset_entries: Arc<Vec<(u32, u32)>>,
    time_entries: Arc<Vec<(i64, u32)>>,
    /// The transaction index file, if the segment has one.
    txn_index: Option<Arc<File>>,
}

impl SegmentFiles {
    /// Writes both sparse index files from memory and fsyncs them, the transaction index and the
    /// log.
    pub fn flush(&self) -> io::Result<()> {
        write_index_file(
            &self.index_path,
            &OffsetIndex::to_bytes(&self.offset_entries),
        )?;
        write_index_file(
            &self.time_index_path,
            &TimeIndex::to_bytes(&self.time_entries),
        )?;
        if let Some(txn_index) = &self.txn_index {
            txn_index.sync_data()?;
        }
        self.log.sync_data()
    }
}

fn write_index_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(bytes, 0)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_data()
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a segment's files; missing files are fine.
pub(crate) fn delete_segment_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    for ext in SEGMENT_EXTS {
        remove_if_exists(&dir.join(file_name(base_offset, ext)))?;
    }
    Ok(())
}

/// Renames the files of the segment at `base_offset` from suffix `from` to suffix `to`, the
/// `.log` first or last as `log_first` says; missing index files are fine.
pub(crate) fn rename_segment_files(
    dir: &Path,
    base_offset: i64,
    from: &str,
    to: &str,
    log_first: bool,
) -> io::Result<()> {
    let order = if log_first {
        [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT]
    } else {
        [INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT, LOG_EXT]
    };
    for ext in order {
        super::cleaning::step().map_err(io::Error::other)?;
        let name = file_name(base_offset, ext);
        match std::fs::rename(
            dir.join(format!("{name}{from}")),
            dir.join(format!("{name}{to}")),
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && ext != LOG_EXT => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the files of the segment at `base_offset` that carry `suffix`; missing ones are fine.
pub(crate) fn delete_suffixed_files(dir: &Path, base_offset: i64, suffix: &str) -> io::Result<()> {
    for ext in SEGMENT_EXTS {
        remove_if_exists(&dir.join(format!("{}{suffix}", file_name(base_offset, ext))))?;
    }
    Ok(())
}

/// The extensions of one segment's files.
pub const SEGMENT_EXTS: [&str; 4] = [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT];

/// What recovering a segment found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Bytes cut off the end of the file (a torn or corrupt tail).
    pub bytes_cut: u64,
    /// Where a newer leader epoch started, in offset order (for the epoch cache).
    pub epochs: Vec<EpochEntry>,
}

impl Segment {
    fn with_file(
        dir: &Path,
        base_offset: i64,
        log: File,
        size: u64,
        index_bytes: u32,
        now_ms: i64,
    ) -> Segment {
        Segment {
            base_offset,
            log_path: dir.join(file_name(base_offset, LOG_EXT)),
            index_path: dir.join(file_name(base_offset, INDEX_EXT)),
            time_index_path: dir.join(file_name(base_offset, TIME_INDEX_EXT)),
            log: Arc::new(log),
            size,
            next_offset: base_offset,
            offset_index: OffsetIndex::new(base_offset, index_bytes),
            time_index: TimeIndex::new(base_offset, index_bytes),
            txn_index: TxnIndex::new(dir.join(file_name(base_offset, TXN_INDEX_EXT)), base_offset),
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            rolling_timestamp: None,
            created_ms: now_ms,
            bytes_since_last_index_entry: 0,
            index_bytes,
        }
    }

    /// Creates an empty segment whose files carry `suffix` after their extension (the cleaner's
    /// `.cleaned` output); fails if its `.log` file exists.
    pub fn create_suffixed(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        now_ms: i64,
        suffix: &str,
    ) -> io::Result<Segment> {
        let name = format!("{}{suffix}", file_name(base_offset, LOG_EXT));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(name))?;
        let mut segment = Segment::with_file(dir, base_offset, log, 0, index_bytes, now_ms);
        segment.point_at(dir, suffix);
        Ok(segment)
    }

    /// Points the segment's paths at its files with `suffix` (empty: the final names).
    pub(crate) fn point_at(&mut self, dir: &Path, suffix: &str) {
        let path = |ext: &str| dir.join(format!("{}{suffix}", file_name(self.base_offset, ext)));
        self.log_path = path(LOG_EXT);
        self.index_path = path(INDEX_EXT);
        self.time_index_path = path(TIME_INDEX_EXT);
        self.txn_index.set_path(path(TXN_INDEX_EXT));
    }

    /// Renames the segment's files that exist (`.log` last) to carry `suffix` (empty: the final
    /// names) and points the segment at them. Open handles stay valid across the rename.
    pub fn rename_to_suffix(&mut self, dir: &Path, suffix: &str) -> io::Result<()> {
        let old = [
            self.index_path.clone(),
            self.time_index_path.clone(),
            self.txn_index.path().to_path_buf(),
            self.log_path.clone(),
        ];
        self.point_at(dir, suffix);
        let new = [
            self.index_path.clone(),
            self.time_index_path.clone(),
            self.txn_index.path().to_path_buf(),
            self.log_path.clone(),
        ];
        for (from, to) in old.iter().zip(&new) {
            super::cleaning::step().map_err(io::Error::other)?;
            match std::fs::rename(from, to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && from != &old[3] => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates a new empty segment (no fsync: `sync` makes it durable); fails if its `.log`
    /// already exists.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        now_ms: i64,
    ) -> io::Result<Segment> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(file_name(base_offset, LOG_EXT)))?;
        // Index files are written when the segment becomes durable; until then none exist, and
        // none can be left over from an earlier segment with this base (recovery deletes them).
        Ok(Segment::with_file(
            dir,
            base_offset,
            log,
            0,
            index_bytes,
            now_ms,
        ))
    }

    /// Opens an existing segment with empty in-memory state; follow with
    /// [`Segment::load_indexes`] or [`Segment::recover`].
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_bytes: u32,
        now_ms: i64,
    ) -> io::Result<Segment> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(file_name(base_offset, LOG_EXT)))?;
        let size = log.metadata()?.len();
        Ok(Segment::with_file(
            dir,
            base_offset,
            log,
            size,
            index_bytes,
            now_ms,
        ))
    }

    /// Base offset (first offset the segment may hold).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset after the last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes of whole batches.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Largest batch max timestamp, `NO_TIMESTAMP` if none.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// Last offset of the first batch that reached `max_timestamp`.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }

    /// Whether an index has no room for another regular entry.
    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// How long this segment has been "open" as Kafka's `LogSegment.timeWaitedForRoll` measures
    /// it: by record time when the first batch had a timestamp, else by wall clock since creation.
    pub fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        match self.rolling_timestamp {
            Some(ts) if ts >= 0 => incoming_max_timestamp.saturating_sub(ts),
            _ => now_ms.saturating_sub(self.created_ms).max(0),
        }
    }

    /// Fsyncs the data written so far (the cleaner's output, a little at a time).
    pub fn sync_log(&self) -> io::Result<()> {
        self.log.sync_data()
    }

    /// Snapshot for lock-free reads.
    pub fn view(&self) -> SegmentView {
        SegmentView {
            log: Arc::clone(&self.log),
            size: self.size,
            base_offset: self.base_offset,
        }
    }

    /// Snapshot for making the segment durable outside the lock.
    pub fn files(&self) -> SegmentFiles {
        SegmentFiles {
            base_offset: self.base_offset,
            log: Arc::clone(&self.log),
            index_path: self.index_path.clone(),
            time_index_path: self.time_index_path.clone(),
            offset_entries: self.offset_index.entries(),
            time_entries: self.time_index.entries(),
            txn_index: self.txn_index.file(),
        }
    }

    /// The transaction index file, if the segment has one (for fsync outside the lock).
    pub fn txn_index_file(&self) -> Option<Arc<File>> {
        self.txn_index.file()
    }

    /// Records an aborted transaction whose marker is in this segment; true if that created the
    /// transaction index file.
    pub fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<bool, LogError> {
        self.txn_index.append(txn)
    }

    /// See `TxnIndex::collect`.
    pub fn collect_aborted_txns(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        self.txn_index.collect(from, upper, out)
    }

    /// The aborted transactions the segment's index holds, in marker order.
    pub fn aborted_txns(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// See `TxnIndex::replace_from`.
    pub fn replace_aborted_txns(
        &mut self,
        from: i64,
        replacement: &[AbortedTxn],
    ) -> Result<bool, LogError> {
        self.txn_index.replace_from(from, replacement)
    }

    /// Loads the transaction index file against the segment as it now ends (after
    /// [`Segment::load_indexes`] or [`Segment::recover`]); true if the file was cut or removed.
    pub fn load_txn_index(&mut self) -> io::Result<bool> {
        let path = self.txn_index.path().to_path_buf();
        let (index, changed) = TxnIndex::load(path, self.base_offset, self.next_offset)?;
        self.txn_index = index;
        Ok(changed)
    }

    /// Position to start scanning from for `offset` (from the offset index).
    pub fn lookup_position(&self, offset: i64) -> u64 {
        self.offset_index.lookup(offset).1
    }

    /// Position to start scanning from for the first record with timestamp >= `target`.
    pub fn lookup_timestamp_position(&self, target: i64) -> u64 {
        let (_, offset) = self.time_index.lookup(target);
        self.lookup_position(offset)
    }

    /// Records the final time index entry: called when the segment stops being active, so that
    /// the last entry on disk is the segment's max timestamp (Kafka `onBecomeInactiveSegment`).
    pub fn on_become_inactive(&mut self) {
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true);
    }

    /// Accounts for one batch at `position` (already in the file) in the in-memory state.
    fn track_batch(&mut self, header: &BatchHeader, position: u64, index_interval_bytes: u32) {
        let last_offset = header.last_offset();
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        if self.rolling_timestamp.is_none() {
            self.rolling_timestamp = Some(header.max_timestamp);
        }
        if self.bytes_since_last_index_entry > index_interval_bytes as u64 {
            self.offset_index.append(last_offset, position);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, false);
            self.bytes_since_last_index_entry = 0;
        }
        let size = header.total_size() as u64;
        self.bytes_since_last_index_entry += size;
        self.size = position + size;
        self.next_offset = last_offset + 1;
    }

    /// Writes `buf` (whole batches whose headers are `headers`, offsets assigned) at the end.
    pub fn append(
        &mut self,
        buf: &[u8],
        headers: &[BatchHeader],
        index_interval_bytes: u32,
    ) -> io::Result<()> {
        let start = self.size;
        if let Err(e) = self.log.write_all_at(buf, start) {
            // Drop whatever part made it so the file never holds a torn batch past `size`.
            if let Err(trunc) = self.log.set_len(start) {
                tracing::warn!(path = %self.log_path.display(), error = %trunc, "could not cut failed append");
            }
            return Err(e);
        }
        let mut position = start;
        for header in headers {
            self.track_batch(header, position, index_interval_bytes);
            position += header.total_size() as u64;
        }
        Ok(())
    }

    /// Kafka's `LogSegment.recover`: validates every batch from the start (CRC, structure,
    /// offsets strictly increasing from `base_offset` and addressable from it), truncates the
    /// file at the first bad one, and rebuilds the indexes and timestamps in memory.
    pub fn recover(&mut self, index_interval_bytes: u32) -> Result<Recovered, LogError> {
        let file_len = self.log.metadata()?.len();
        self.reset_state();
        let log = Arc::clone(&self.log);
        let mut scanner = Scanner::new(&log, file_len);
        let mut position = 0u64;
        let mut next = self.base_offset;
        let mut epochs: Vec<EpochEntry> = Vec::new();
        let stop_reason = loop {
            if position == file_len {
                break None;
            }
            let bytes = match scanner.batch_at(position)? {
                Ok(bytes) => bytes,
                Err(reason) => break Some(reason),
            };
            let header = match check_batch(bytes) {
                Ok(h) => h,
                Err(e) => break Some(e.to_string()),
            };
            if header.base_offset < next {
                break Some(format!(
                    "batch base offset {} where at least {next} was expected",
                    header.base_offset
                ));
            }
            if header.last_offset() - self.base_offset > i32::MAX as i64 {
                break Some(format!(
                    "batch last offset {} cannot be addressed from segment base {}",
                    header.last_offset(),
                    self.base_offset
                ));
            }
            let end = position + header.total_size() as u64;
            if end > MAX_SEGMENT_SIZE {
                break Some(format!("segment would exceed {MAX_SEGMENT_SIZE} bytes"));
            }
            let epoch = header.partition_leader_epoch;
            if epoch >= 0 && epochs.last().is_none_or(|e| e.epoch < epoch) {
                epochs.push(EpochEntry {
                    epoch,
                    start_offset: header.base_offset,
                });
            }
            self.track_batch(&header, position, index_interval_bytes);
            position = end;
            next = header.last_offset() + 1;
        };
        let cut = file_len - position;
        if let Some(reason) = stop_reason {
            tracing::warn!(
                path = %self.log_path.display(),
                position,
                bytes_cut = cut,
                reason = %reason,
                "truncating log segment at first invalid batch"
            );
            self.log.set_len(position)?;
        }
        self.size = position;
        self.next_offset = next;
        self.on_become_inactive();
        Ok(Recovered {
            bytes_cut: cut,
            epochs,
        })
    }

    /// Removes every batch that is not wholly below `offset` (Kafka's `LogSegment.truncateTo`,
    /// at batch granularity), makes the cut durable and rebuilds the in-memory state. Returns
    /// the bytes removed.
    pub fn truncate_to(&mut self, offset: i64, index_interval_bytes: u32) -> Result<u64, LogError> {
        let view = self.view();
        let from = self.lookup_position(offset);
        let cut_at = match find_batch(&view, from, offset)? {
            // The batch holding `offset` (or the first after a gap) goes whole.
            Some((position, _)) => position,
            None => return Ok(0),
        };
        let removed = self.size - cut_at;
        self.log.set_len(cut_at)?;
        self.log.sync_data()?;
        // Rebuilds indexes, timestamps and next offset from what is left.
        self.recover(index_interval_bytes)?;
        // The aborted transactions whose markers went; the caller fsyncs the directory.
        self.txn_index.truncate_to(self.next_offset)?;
        if let Some(file) = self.txn_index.file() {
            file.sync_data()?;
        }
        Ok(removed)
    }

    fn reset_state(&mut self) {
        self.size = 0;
        self.next_offset = self.base_offset;
        self.offset_index = OffsetIndex::new(self.base_offset, self.index_bytes);
        self.time_index = TimeIndex::new(self.base_offset, self.index_bytes);
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = self.base_offset;
        self.rolling_timestamp = None;
        self.bytes_since_last_index_entry = 0;
    }

    /// Loads the index files of a segment that needs no recovery and checks them against the log
    /// (Kafka's index sanity check, plus a walk of the batch headers after the last offset index
    /// entry). `Ok(Err(reason))` means the files cannot be trusted and the caller must
    /// [`Segment::recover`]. The segment must end exactly at `end` when `exact` (the last
    /// segment, at the recovery point), else at or before it (a gap before the next segment is
    /// what compaction leaves).
    pub fn load_indexes(&mut self, end: i64, exact: bool) -> Result<Result<(), String>, LogError> {
        if self.size > MAX_SEGMENT_SIZE {
            return Ok(Err(format!("{} bytes exceed the segment limit", self.size)));
        }
        let Some(offset_bytes) = read_optional(&self.index_path)? else {
            return Ok(Err("offset index missing".to_string()));
        };
        let Some(time_bytes) = read_optional(&self.time_index_path)? else {
            return Ok(Err("time index missing".to_string()));
        };
        let offset_index =
            match OffsetIndex::from_bytes(self.base_offset, &offset_bytes, self.index_bytes) {
                Ok(idx) => idx,
                Err(reason) => return Ok(Err(reason)),
            };
        let time_index =
            match TimeIndex::from_bytes(self.base_offset, &time_bytes, self.index_bytes) {
                Ok(idx) => idx,
                Err(reason) => return Ok(Err(reason)),
            };
        let view = self.view();
        let (mut position, mut next_offset) = match offset_index.last_entry() {
            None => (0, self.base_offset),
            Some((offset, position)) => match read_header_at(&view, position)? {
                Some(h) if h.last_offset() == offset => {
                    (position + h.total_size() as u64, offset + 1)
                }
                _ => {
                    return Ok(Err(format!(
                        "offset index entry ({offset}, {position}) does not match the log"
                    )))
                }
            },
        };
        while position < self.size {
            match read_header_at(&view, position)? {
                Some(h) if h.base_offset >= next_offset => {
                    position += h.total_size() as u64;
                    next_offset = h.last_offset() + 1;
                }
                _ => return Ok(Err(format!("no valid batch header at position {position}"))),
            }
        }
        if next_offset > end || (exact && next_offset != end) {
            return Ok(Err(format!(
                "log ends at offset {next_offset}, expected {}{end}",
                if exact { "" } else { "at most " }
            )));
        }
        if let Err(reason) = offset_index
            .check_bounds(next_offset, self.size)
            .and_then(|()| time_index.check_bounds(next_offset))
        {
            return Ok(Err(reason));
        }
        let rolling_timestamp = if self.size > 0 {
            match read_header_at(&view, 0)? {
                Some(h) => Some(h.max_timestamp),
                None => return Ok(Err("no valid batch header at position 0".to_string())),
            }
        } else {
            None
        };
        let (max_timestamp, offset_of_max_timestamp) = time_index.last_entry();
        if rolling_timestamp.unwrap_or(NO_TIMESTAMP) > max_timestamp {
            return Ok(Err(format!(
                "time index max {max_timestamp} is below the first batch's timestamp"
            )));
        }
        self.next_offset = next_offset;
        self.offset_index = offset_index;
        self.time_index = time_index;
        self.max_timestamp = max_timestamp;
        self.offset_of_max_timestamp = offset_of_max_timestamp;
        self.rolling_timestamp = rolling_timestamp;
        self.bytes_since_last_index_entry = 0;
        Ok(Ok(()))
    }
}

/// The header of the batch at `position`, or `None` if no whole, sane batch starts there.
pub(crate) fn read_header_at(view: &SegmentView, position: u64) -> io::Result<Option<BatchHeader>> {
    if position + HEADER_SIZE as u64 > view.size {
        return Ok(None);
    }
    let mut buf = [0u8; HEADER_SIZE];
    view.log.read_exact_at(&mut buf, position)?;
    match BatchHeader::parse(&buf) {
        Ok(h) if position + h.total_size() as u64 <= view.size => Ok(Some(h)),
        _ => Ok(None),
    }
}

fn corrupt_at(view: &SegmentView, position: u64) -> LogError {
    LogError::Corrupt(format!(
        "segment {} has no valid batch header at position {position} (size {})",
        view.base_offset, view.size
    ))
}

/// The first batch at or after `from` whose last offset is >= `target`, with its position.
pub(crate) fn find_batch(
    view: &SegmentView,
    from: u64,
    target: i64,
) -> Result<Option<(u64, BatchHeader)>, LogError> {
    let mut position = from;
    while position < view.size {
        let header = read_header_at(view, position)?.ok_or_else(|| corrupt_at(view, position))?;
        if header.last_offset() >= target {
            return Ok(Some((position, header)));
        }
        position += header.total_size() as u64;
    }
    Ok(None)
}

/// Whole batches starting with `first` (at `position`) totalling at most `max_bytes`, except that
/// the first batch is returned whole when `min_one_batch` (KIP-74); only batches that start below
/// `max_offset` (the high watermark or last stable offset the reader may see).
pub(crate) fn read_batches(
    view: &SegmentView,
    position: u64,
    first: &BatchHeader,
    max_bytes: usize,
    min_one_batch: bool,
    max_offset: i64,
) -> io::Result<Bytes> {
    let first_size = first.total_size();
    if (first_size > max_bytes && !min_one_batch) || first.base_offset >= max_offset {
        return Ok(Bytes::new());
    }
    let limit = max_bytes.max(first_size) as u64;
    let len = limit.min(view.size - position) as usize;
    let mut buf = vec![0u8; len];
    view.log.read_exact_at(&mut buf, position)?;
    let mut cut = 0usize;
    while let Some(n) = peek_total_size(&buf[cut..]) {
        if n < HEADER_SIZE as i64
            || cut as i64 + n > len as i64
            || peek_base_offset(&buf[cut..]) >= max_offset
        {
            break;
        }
        cut += n as usize;
    }
    buf.truncate(cut);
    Ok(Bytes::from(buf))
}

/// The base offset of the batch at the start of `buf` (which holds at least its first 12 bytes).
fn peek_base_offset(buf: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[..8]);
    i64::from_be_bytes(b)
}

/// Kafka's `FileRecords.searchForTimestamp`: from `from`, the first record whose timestamp is at
/// least `target` and whose offset is at least `min_offset` (the log start offset), as (offset,
/// timestamp). Batches that cannot hold such a record are skipped by their header; candidate
/// batches are decoded (and decompressed) to find the exact record.
pub(crate) fn search_timestamp(
    view: &SegmentView,
    from: u64,
    target: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    let mut position = from;
    while position < view.size {
        let header = read_header_at(view, position)?.ok_or_else(|| corrupt_at(view, position))?;
        if header.max_timestamp >= target && header.last_offset() >= min_offset {
            let mut buf = vec![0u8; header.total_size()];
            view.log.read_exact_at(&mut buf, position)?;
            let set = RecordBatchDecoder::decode(&mut Bytes::from(buf)).map_err(|e| {
                LogError::Corrupt(format!(
                    "cannot decode batch at offset {} in segment {}: {e}",
                    header.base_offset, view.base_offset
                ))
            })?;
            for record in &set.records {
                let timestamp = if header.timestamp_type_is_log_append() {
                    header.max_timestamp
                } else {
                    record.timestamp
                };
                if timestamp >= target && record.offset >= min_offset {
                    return Ok(Some((record.offset, timestamp)));
                }
            }
        }
        position += header.total_size() as u64;
    }
    Ok(None)
}

/// The offset after the last valid batch of the segment file at `path` (base `base_offset`
/// when it holds none): what a `.swap` file that the loader is about to swap in replaces.
pub(crate) fn scan_next_offset(path: &Path, base_offset: i64) -> io::Result<i64> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut scanner = Scanner::new(&file, file_len);
    let (mut position, mut next) = (0u64, base_offset);
    while position < file_len {
        let Ok(bytes) = scanner.batch_at(position)? else {
            break;
        };
        let Ok(header) = check_batch(bytes) else {
            break;
        };
        if header.base_offset < next {
            break;
        }
        position += header.total_size() as u64;
        next = header.last_offset() + 1;
    }
    Ok(next)
}

/// Forward reader over a file with a large read-ahead window, for recovery scans.
pub(crate) struct Scanner<'a> {
    file: &'a File,
    file_len: u64,
    window: Vec<u8>,
    window_start: u64,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, file_len: u64) -> Scanner<'a> {
        Scanner {
            file,
            file_len,
            window: Vec::new(),
            window_start: 0,
        }
    }

    /// Makes `[position, position + len)` resident; false if the file is shorter.
    fn ensure(&mut self, position: u64, len: usize) -> io::Result<bool> {
        let end = position + len as u64;
        if end > self.file_len {
            return Ok(false);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if position >= self.window_start && end <= window_end {
            return Ok(true);
        }
        let read_len = (len.max(SCAN_CHUNK) as u64).min(self.file_len - position) as usize;
        self.window.resize(read_len, 0);
        self.file.read_exact_at(&mut self.window, position)?;
        self.window_start = position;
        Ok(true)
    }

    /// The bytes of the batch at `position` as its length field announces them, or why not.
    pub(crate) fn batch_at(&mut self, position: u64) -> io::Result<Result<&[u8], String>> {
        let remaining = self.file_len - position;
        if !self.ensure(position, HEADER_SIZE.min(remaining as usize))? {
            return Ok(Err("unreadable tail".to_string()));
        }
        let start = (position - self.window_start) as usize;
        let announced = match peek_total_size(&self.window[start..]) {
            Some(n) => n,
            None => return Ok(Err(format!("{remaining} trailing bytes, no whole header"))),
        };
        if announced < HEADER_SIZE as i64 {
            return Ok(Err(format!("batch size {announced} below header size")));
        }
        if announced as u64 > remaining {
            return Ok(Err(format!(
                "batch of {announced} bytes but only {remaining} left in the file"
            )));
        }
        let len = announced as usize;
        if !self.ensure(position, len)? {
            return Ok(Err("unreadable tail".to_string()));
        }
        let start = (position - self.window_start) as usize;
        Ok(Ok(&self.window[start..start + len]))
    }
}
