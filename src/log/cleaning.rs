//! The log's side of compaction: what the cleaner (`crate::cleaner`) may read and how its output
//! replaces segments. The log decides nothing about which records stay; it only guarantees that
//! a replacement is atomic across crashes and invisible to concurrent appends and reads.
//!
//! # Files
//!
//! - `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`, `.txnindex.cleaned`): the
//!   cleaner's output for a group of old segments, `<base>` being the first old segment's base.
//!   Written and fsynced before anything else changes; a crash leaves it to be deleted on open.
//! - `cleaner-offset-checkpoint`: one decimal offset, Kafka's first dirty offset for this
//!   partition (Kafka keeps one such file per log dir): everything below it was cleaned. Absent
//!   until the first clean; an unreadable or stale value only makes the cleaner clean again.
//!
//! # The replace sequence (Kafka's `replaceSegments`)
//!
//! 1. every `.cleaned` file is renamed to `.swap` (indexes first, `.log` last) and the directory
//!    fsynced: from here a crash completes the swap on open (`recovery`);
//! 2. under the partition lock, the old segments leave the in-memory list and the new one takes
//!    their place (reads already running keep their open files);
//! 3. the old segments' files are renamed to `.deleted`, the `.swap` files to their final names
//!    (`.log` first), the directory fsynced, and the `.deleted` files removed.
//!
//! A crash before step 1 ends leaves the old segments (a `.log.cleaned` or a swap at or above
//! it is discarded); after it, recovery deletes every old file in the swap's offset range and
//! renames the swap into place. Either way each offset is served by the old or the new segment,
//! never lost and never both.
//!
//! # Invariants
//!
//! - Only rolled segments wholly below the recovery point are handed out (they are durable, with
//!   their index files), and a cleaning holds the log's maintenance lock from its snapshot to its
//!   replace, so retention, DeleteRecords and truncation never remove a segment under it.
//! - A replacement keeps every offset range: the new segment starts at the first old segment's
//!   base, its batches' offsets strictly increase within the old segments' range, and appends
//!   (which only touch the active segment) never wait for it beyond step 2.

use std::path::Path;

use parking_lot::MutexGuard;

use std::os::unix::fs::FileExt;

use super::batch::{check_batch, peek_total_size, HEADER_SIZE, LOG_OVERHEAD};
use super::error::LogError;
use super::files::sync_dir;
use super::partition::PartitionLog;
use super::recovery::{CLEANED_SUFFIX, DELETED_SUFFIX, SWAP_SUFFIX};
use super::segment::{
    delete_suffixed_files, read_header_at, rename_segment_files, Segment, SegmentView,
};
use super::txn_index::AbortedTxn;

#[cfg(test)]
thread_local! {
    /// Test failpoint: the replace sequence stops ("crashes") before its step number N.
    pub static CRASH_BEFORE_STEP: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    static STEP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A file step of the replace sequence; under test, where a simulated crash may stop it.
pub(crate) fn step() -> Result<(), LogError> {
    #[cfg(test)]
    {
        let n = STEP.with(|s| {
            let n = s.get();
            s.set(n + 1);
            n
        });
        if CRASH_BEFORE_STEP.with(|c| c.get()) == Some(n) {
            return Err(LogError::Corrupt(format!(
                "simulated crash before step {n}"
            )));
        }
    }
    Ok(())
}

/// Resets the step counter (tests).
#[cfg(test)]
pub fn reset_steps() {
    STEP.with(|s| s.set(0));
}

/// Name of the per-partition cleaner checkpoint (see the module docs).
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Exclusive right to replace this log's segments (see the module docs).
pub struct CleaningGuard<'a> {
    _lock: MutexGuard<'a, ()>,
}

/// A read-only snapshot of one rolled, durable segment.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    /// First offset the segment may hold.
    pub base_offset: i64,
    /// Offset after its last batch.
    pub next_offset: i64,
    /// Bytes of batches.
    pub size: u64,
    /// Largest batch max timestamp (-1 if none).
    pub max_timestamp: i64,
    view: SegmentView,
}

impl SegmentSnapshot {
    /// The max timestamp of the segment's first batch (Kafka's `getFirstBatchTimestamp`, for
    /// `max.compaction.lag.ms`), None for an empty segment.
    pub fn first_batch_timestamp(&self) -> Result<Option<i64>, LogError> {
        Ok(read_header_at(&self.view, 0)?.map(|h| h.max_timestamp))
    }

    /// Every batch of the segment, whole, in order.
    pub fn batches(&self) -> SegmentBatches {
        SegmentBatches {
            view: self.view.clone(),
            position: 0,
            window: Vec::new(),
            window_start: 0,
            start: 0,
        }
    }
}

/// Read-ahead of [`SegmentBatches`]: one positional read per this many bytes of small batches.
const READ_AHEAD: usize = 1 << 20;

/// Iterator over a segment's batches (see [`SegmentSnapshot::batches`]), reading ahead in
/// [`READ_AHEAD`] chunks.
pub struct SegmentBatches {
    view: SegmentView,
    position: u64,
    window: Vec<u8>,
    window_start: u64,
    /// Where the batch last returned starts in `window`.
    start: usize,
}

impl SegmentBatches {
    /// Makes `[position, position + len)` resident in the window; false past the segment end.
    fn ensure(&mut self, position: u64, len: usize) -> Result<bool, LogError> {
        let end = position + len as u64;
        if end > self.view.size {
            return Ok(false);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if position >= self.window_start && end <= window_end {
            return Ok(true);
        }
        let read_len = (len.max(READ_AHEAD) as u64).min(self.view.size - position) as usize;
        self.window.resize(read_len, 0);
        self.view.log.read_exact_at(&mut self.window, position)?;
        self.window_start = position;
        Ok(true)
    }

    fn corrupt(&self, reason: &str) -> LogError {
        LogError::Corrupt(format!(
            "segment {} at position {}: {reason}",
            self.view.base_offset, self.position
        ))
    }

    /// The next whole batch, None at the end.
    pub fn next_batch(&mut self) -> Result<Option<&[u8]>, LogError> {
        if self.position >= self.view.size {
            return Ok(None);
        }
        let position = self.position;
        if !self.ensure(position, LOG_OVERHEAD)? {
            return Err(self.corrupt("trailing bytes, no whole batch header"));
        }
        let at = (position - self.window_start) as usize;
        let total = peek_total_size(&self.window[at..]).unwrap_or(0);
        if total < HEADER_SIZE as i64 || !self.ensure(position, total as usize)? {
            return Err(self.corrupt(&format!("batch of {total} bytes does not fit")));
        }
        let at = (position - self.window_start) as usize;
        let batch = &self.window[at..at + total as usize];
        check_batch(batch)
            .map_err(|e| LogError::Corrupt(format!("segment {}: {e}", self.view.base_offset)))?;
        self.start = at;
        self.position += total as u64;
        Ok(Some(&self.window[self.start..self.start + total as usize]))
    }
}

/// The cleaner's output for one group of segments, in `.cleaned` files until it replaces them.
#[derive(Debug)]
pub struct CleanedSegment {
    segment: Segment,
    index_interval_bytes: u32,
    last_offset: i64,
    /// Bytes appended since the last fsync.
    unsynced: u64,
}

/// The cleaner fsyncs its output every this many bytes, so the writeback is spread over the
/// round instead of one large flush at its end that concurrent produce fsyncs queue behind.
const SYNC_EVERY: u64 = 4 << 20;

impl CleanedSegment {
    /// Appends one whole batch (offsets above the previous batch's).
    pub fn append(&mut self, batch: &[u8]) -> Result<(), LogError> {
        let header = check_batch(batch)?;
        if header.base_offset <= self.last_offset || header.base_offset < self.segment.base_offset()
        {
            return Err(LogError::Corrupt(format!(
                "cleaned batch at {} does not follow offset {}",
                header.base_offset, self.last_offset
            )));
        }
        self.segment
            .append(batch, &[header], self.index_interval_bytes)?;
        self.last_offset = header.last_offset();
        self.unsynced += batch.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.segment.sync_log()?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Enters an aborted transaction whose marker this segment keeps.
    pub fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<(), LogError> {
        self.segment.append_aborted_txn(txn).map(|_| ())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.segment.size()
    }

    /// The base offset the segment will have.
    pub fn base_offset(&self) -> i64 {
        self.segment.base_offset()
    }

    /// Writes the indexes and fsyncs every file.
    fn make_durable(&mut self) -> Result<(), LogError> {
        self.segment.on_become_inactive();
        self.segment.files().flush()?;
        Ok(())
    }
}

impl PartitionLog {
    /// The right to clean this log, unless another cleaning, a retention pass, DeleteRecords or a
    /// truncation is under way, a replica move copies it (`pause_cleaning`), or it was sealed or
    /// closed (a move replaced it, or its topic is gone).
    pub fn try_begin_cleaning(&self) -> Option<CleaningGuard<'_>> {
        let lock = self.maintenance.try_lock()?;
        // Read under the lock: a move pauses cleaning and seals holding it.
        if self
            .cleaning_paused
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
        {
            return None;
        }
        if self.inner.lock().is_retired() {
            return None;
        }
        Some(CleaningGuard { _lock: lock })
    }

    /// Snapshots of the rolled segments wholly below the recovery point (durable), oldest first,
    /// and the base offset of the first segment after them (the active one or one not yet
    /// durable), which no round may reach.
    pub fn cleanable_segments(&self, _guard: &CleaningGuard<'_>) -> (Vec<SegmentSnapshot>, i64) {
        let inner = self.inner.lock();
        let active = inner.segments.len() - 1;
        let unsynced: Vec<i64> = inner.unsynced.iter().map(|f| f.base_offset).collect();
        let durable: Vec<SegmentSnapshot> = inner.segments[..active]
            .iter()
            .take_while(|s| {
                s.next_offset() <= inner.recovery_point && !unsynced.contains(&s.base_offset())
            })
            .map(|s| SegmentSnapshot {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
                view: s.view(),
            })
            .collect();
        let next_base = inner.segments[durable.len()].base_offset();
        (durable, next_base)
    }

    /// Starts the cleaned replacement of segments beginning at `base_offset`.
    pub fn new_cleaned_segment(
        &self,
        _guard: &CleaningGuard<'_>,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<CleanedSegment, LogError> {
        let config = self.inner.lock().config;
        // A leftover of a cleaning that failed without a crash.
        delete_suffixed_files(&self.dir, base_offset, CLEANED_SUFFIX)?;
        let segment = Segment::create_suffixed(
            &self.dir,
            base_offset,
            config.segment_index_bytes,
            now_ms,
            CLEANED_SUFFIX,
        )?;
        Ok(CleanedSegment {
            segment,
            index_interval_bytes: config.index_interval_bytes,
            last_offset: base_offset - 1,
            unsynced: 0,
        })
    }

    /// Rolls the active segment now (tests that need a segment boundary at the log end).
    #[cfg(test)]
    pub fn roll_for_tests(&self, now_ms: i64) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        let end = inner.log_end_offset();
        inner.roll(&self.dir, end, now_ms)
    }

    /// Drops an unfinished cleaned segment and its files.
    pub fn discard_cleaned_segment(&self, cleaned: CleanedSegment) -> Result<(), LogError> {
        let base = cleaned.base_offset();
        drop(cleaned);
        delete_suffixed_files(&self.dir, base, CLEANED_SUFFIX)?;
        Ok(())
    }

    /// Replaces the consecutive segments starting at the bases `old` with `cleaned` (see the
    /// module docs for the sequence). Fails, leaving the old segments, if they are no longer the
    /// log's or `cleaned` does not fit their range. Blocking.
    pub fn replace_segments(
        &self,
        _guard: &CleaningGuard<'_>,
        old: &[i64],
        mut cleaned: CleanedSegment,
    ) -> Result<(), LogError> {
        let base = cleaned.base_offset();
        let fits = {
            let inner = self.inner.lock();
            let i = inner.segments.partition_point(|s| s.base_offset() < base);
            let active = inner.segments.len() - 1;
            let present = i + old.len() <= active
                && inner.segments[i..i + old.len()]
                    .iter()
                    .map(Segment::base_offset)
                    .eq(old.iter().copied());
            present
                && old.first() == Some(&base)
                && cleaned.last_offset < inner.segments[i + old.len() - 1].next_offset()
        };
        if !fits {
            self.discard_cleaned_segment(cleaned)?;
            return Err(LogError::Corrupt(format!(
                "cleaned segment {base} no longer matches segments {old:?}"
            )));
        }
        step()?;
        cleaned.make_durable()?;
        let mut segment = cleaned.segment;
        step()?;
        segment.rename_to_suffix(&self.dir, SWAP_SUFFIX)?;
        step()?;
        sync_dir(&self.dir)?;
        step()?;
        {
            let mut inner = self.inner.lock();
            let i = inner.segments.partition_point(|s| s.base_offset() < base);
            // Point the in-memory segment at its final names now; the files get them below,
            // before anything else can look them up (the maintenance lock is held).
            segment.point_at(&self.dir, "");
            inner
                .segments
                .splice(i..i + old.len(), std::iter::once(segment));
            let start = inner.log_start_offset.max(inner.segments[0].base_offset());
            inner.log_start_offset = start;
            inner.check_invariants();
        }
        for &b in old {
            step()?;
            rename_segment_files(&self.dir, b, "", DELETED_SUFFIX, false)?;
        }
        step()?;
        // `.log` first: a crash then leaves only index `.swap` files, renamed on open without
        // deleting anything.
        rename_segment_files(&self.dir, base, SWAP_SUFFIX, "", true)?;
        step()?;
        sync_dir(&self.dir)?;
        for &b in old {
            step()?;
            delete_suffixed_files(&self.dir, b, DELETED_SUFFIX)?;
        }
        tracing::debug!(dir = %self.dir.display(), base_offset = base, replaced = old.len(), "swapped in a cleaned segment");
        Ok(())
    }
}

/// Reads the cleaner checkpoint of the partition in `dir` (None if absent or unreadable).
pub fn read_cleaner_checkpoint(dir: &Path) -> Result<Option<i64>, LogError> {
    Ok(super::files::read_offset_file(
        dir,
        CLEANER_CHECKPOINT_FILE,
    )?)
}

/// Atomically writes the cleaner checkpoint of the partition in `dir`.
pub fn write_cleaner_checkpoint(dir: &Path, offset: i64) -> Result<(), LogError> {
    Ok(super::files::write_offset_file(
        dir,
        CLEANER_CHECKPOINT_FILE,
        offset,
    )?)
}
