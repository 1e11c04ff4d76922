//! The log of one partition: an ordered list of segments, the last one active (Kafka's
//! `UnifiedLog` + `LocalLog`, storage half). Replication policy (the high watermark, who may
//! append) belongs to the partition layer above (`crate::partition`); this log only stores.
//!
//! Invariants (checked with `debug_assert!` where they change):
//! - `first segment's base offset <= log_start_offset <= log_end_offset`. DeleteRecords moves the
//!   log start offset inside a segment (persisted in `log-start-offset`); deleting old segments
//!   (retention) moves it to the first segment kept.
//! - offsets strictly increase across batches and segments, and segments are sorted by base
//!   offset: each segment's base offset is at or after the previous segment's `next_offset`
//!   (a gap is what compaction or a compacted leader leaves); the last segment's `next_offset`
//!   is the log end offset. A leader append assigns offsets from the log end, so a log written
//!   only by leader appends has no gap.
//! - every rolled segment is either in `unsynced` or already durable with its index files
//!   (fsynced, below the recovery point).
//! - durable offset <= log end offset; once `sync` returned for an offset, a crash cannot lose
//!   anything below it.
//! - the leader epoch cache holds, in order, where each epoch of the batches in the log began;
//!   every entry below the recovery point is in `leader-epoch-checkpoint`.
//! - every aborted transaction the caller reported is in the transaction index of the segment
//!   holding its marker (`last_offset`), entered under the same lock hold as the marker when
//!   appended with [`PartitionLog::append_validated_and_index`], so a sync that covers a marker
//!   covers its entry; truncation and segment deletion take the entries with them.
//!
//! Thread-safety: `PartitionLog` is `Send + Sync`. One `parking_lot::Mutex` guards the segment
//! list, offsets and epoch cache; it is held for appends (a positional write into the page cache)
//! and briefly by reads, which then do their file I/O on an `Arc<File>` snapshot without it.
//! fsync runs with no lock held: a separate mutex + condvar elects one "sync leader" at a time and
//! lets every caller whose offset the leader's fsync covered return without syncing again (group
//! commit). Lock order: never hold both mutexes at once.
//!
//! Sealing (a replica move, `crate::log_dirs::movement`): `seal` sets a flag under the append
//! lock, so an append either finished before it (and is in the final log end offset it returns)
//! or refuses after it with `LogError::Sealed`, before assigning offsets. A move pauses cleaning
//! (`pause_cleaning`, counted, read by `try_begin_cleaning` under the maintenance lock) for as
//! long as it copies, and holds the maintenance lock across the seal and swap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, validate_batches,
    validate_stored_batches, BatchError, BatchHeader, ValidBatches,
};
use super::epoch_cache::{write_checkpoint, EpochCache, EpochEntry};
use super::error::LogError;
use super::files::{sync_dir, write_offset_file};
use super::recovery::{self, write_recovery_point, LOG_START_OFFSET_FILE};
use super::segment::{
    delete_segment_files, find_batch, read_batches, search_timestamp, Segment, SegmentFiles,
    SegmentView, MAX_SEGMENT_SIZE,
};
use super::time_index::NO_TIMESTAMP;
use super::txn_index::AbortedTxn;

/// Per-topic log settings, under Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment spans more than this much time.
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes appended between two index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: capacity of each index file; roll when one is full.
    pub segment_index_bytes: u32,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10_485_760,
        }
    }
}

/// Whether an append takes its offsets from the log (a leader) or keeps those the batches carry
/// (a follower copying its leader, or the cleaner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOffsets {
    /// Offsets from the log end; every batch stamped with `leader_epoch`, and with the append
    /// time when `log_append_time` (`message.timestamp.type=LogAppendTime`).
    Yes {
        /// Written into every batch's partitionLeaderEpoch.
        leader_epoch: i32,
        /// Stamp batches with the append time.
        log_append_time: bool,
    },
    /// The batches keep their offsets, epochs and timestamps; the first must start at or after
    /// the log end and each next one after the previous (gaps allowed).
    No,
}

/// How an append treats its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOptions {
    /// Broker wall clock, for LogAppendTime and time-based rolling.
    pub now_ms: i64,
    /// Leader or follower append.
    pub assign: AssignOffsets,
}

impl AppendOptions {
    /// A leader append: offsets assigned, batches stamped with `leader_epoch`.
    pub fn leader(now_ms: i64, leader_epoch: i32, log_append_time: bool) -> AppendOptions {
        AppendOptions {
            now_ms,
            assign: AssignOffsets::Yes {
                leader_epoch,
                log_append_time,
            },
        }
    }

    /// A follower append: offsets, epochs and timestamps kept.
    pub fn follower(now_ms: i64) -> AppendOptions {
        AppendOptions {
            now_ms,
            assign: AssignOffsets::No,
        }
    }
}

/// Where an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record (the first batch's base offset).
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The append time stamped on the batches, -1 unless LogAppendTime.
    pub log_append_time_ms: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// Largest batch max timestamp of the append (after any LogAppendTime stamping).
    pub max_timestamp: i64,
    /// Number of records appended.
    pub record_count: i64,
    /// Whether this append started a new segment (the moment Kafka snapshots producer state).
    pub rolled: bool,
}

/// Answer to a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole stored batches, possibly empty.
    pub records: Bytes,
    /// Log end offset when the read started.
    pub log_end_offset: i64,
    /// Log start offset when the read started.
    pub log_start_offset: i64,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) config: LogConfig,
    /// Never empty; the last one is active.
    pub(super) segments: Vec<Segment>,
    pub(super) log_start_offset: i64,
    /// Rolled segments not yet fsynced with their index files.
    pub(super) unsynced: Vec<SegmentFiles>,
    /// Persisted recovery point (see `recovery`).
    pub(super) recovery_point: i64,
    epochs: EpochCache,
    /// A transaction index file was created since the directory was last fsynced.
    txn_dir_dirty: bool,
    closed: bool,
    /// Sealed for a move to another log directory: no append, truncation or segment removal
    /// any more (they fail with `LogError::Sealed`); reads and syncs go on.
    sealed: bool,
}

#[derive(Debug)]
struct SyncState {
    /// Everything below this offset is on stable storage.
    durable_offset: i64,
    /// A sync leader is running (or close is).
    in_progress: bool,
    /// Set forever by a failed fsync.
    failure: Option<String>,
}

/// The durable, segmented log of one partition.
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) inner: Mutex<Inner>,
    /// Held by whoever removes or replaces segments (cleaning, retention, DeleteRecords,
    /// truncation) for as long as it works on them; never while waiting for `inner`'s holder
    /// to need it (lock order: `maintenance` before `inner`).
    pub(super) maintenance: Mutex<()>,
    sync_state: Mutex<SyncState>,
    sync_done: Condvar,
    /// Mirror of `sync_state.failure.is_some()` readable under the append lock.
    poisoned: AtomicBool,
    /// Sync rounds that actually reached the disk (for metrics and tests).
    fsync_rounds: AtomicU64,
    /// The directory was created by `open` and its entries are not yet fsynced (see
    /// `recovery::Loaded::fresh`): the first sync or close does it.
    dir_unsynced: AtomicBool,
    /// Replica moves under way that copy this log: the cleaner leaves it alone meanwhile
    /// (Kafka's `abortAndPauseCleaning`), read under `maintenance`.
    pub(super) cleaning_paused: AtomicUsize,
}

impl Inner {
    fn active(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    pub(super) fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    fn max_segment_bytes(&self) -> u64 {
        self.config.segment_bytes.min(MAX_SEGMENT_SIZE)
    }

    /// Kafka's `LogSegment.shouldRoll`, except that an empty segment never rolls.
    fn should_roll(
        &self,
        incoming_bytes: u64,
        incoming_max_ts: i64,
        last_offset: i64,
        now: i64,
    ) -> bool {
        let active = self.active();
        if active.size() == 0 {
            return false;
        }
        active.size() + incoming_bytes > self.max_segment_bytes()
            || active.time_waited_for_roll(now, incoming_max_ts) > self.config.segment_ms
            || active.indexes_full()
            || last_offset - active.base_offset() > i32::MAX as i64
    }

    /// Starts a new active segment at `new_base` (the log end, or a follower batch's base).
    pub(super) fn roll(&mut self, dir: &Path, new_base: i64, now_ms: i64) -> Result<(), LogError> {
        let index_bytes = self.config.segment_index_bytes;
        let segment = Segment::create(dir, new_base, index_bytes, now_ms)?;
        let old = self.active_mut();
        old.on_become_inactive();
        let files = old.files();
        self.unsynced.push(files);
        self.segments.push(segment);
        tracing::debug!(dir = %dir.display(), base_offset = new_base, "rolled new log segment");
        Ok(())
    }

    /// Index of the segment holding `offset` (the last with base <= offset), for
    /// `log_start <= offset < log_end`.
    fn segment_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// Enters `txn` in the transaction index of the segment holding its marker.
    fn append_aborted_txn(&mut self, txn: AbortedTxn) -> Result<(), LogError> {
        if txn.last_offset >= self.log_end_offset()
            || txn.last_offset < self.segments[0].base_offset()
        {
            return Err(LogError::Corrupt(format!(
                "aborted transaction {txn:?} has its marker outside the log (end {})",
                self.log_end_offset()
            )));
        }
        let i = self.segment_for(txn.last_offset);
        if self.segments[i].append_aborted_txn(txn)? {
            self.txn_dir_dirty = true;
        }
        Ok(())
    }

    fn set_log_start_offset(&mut self, offset: i64) {
        self.log_start_offset = offset;
        self.epochs.truncate_from_start(offset);
    }

    /// Closed, or sealed by a replica move: nothing may change it any more.
    pub(super) fn is_retired(&self) -> bool {
        self.closed || self.sealed
    }

    pub(super) fn check_invariants(&self) {
        debug_assert!(self.log_start_offset <= self.log_end_offset());
        debug_assert!(self.segments[0].base_offset() <= self.log_start_offset);
        debug_assert!(self
            .segments
            .windows(2)
            .all(|w| w[0].next_offset() <= w[1].base_offset()));
        debug_assert!(self
            .epochs
            .entries()
            .windows(2)
            .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset));
    }
}

impl PartitionLog {
    /// Opens or creates the log in `dir` (created if absent), recovering it: every batch after the
    /// last clean point is validated (header, CRC, increasing offsets); a torn or corrupt tail is
    /// truncated at the last whole valid batch; missing or damaged indexes are rebuilt; an
    /// interrupted swap is finished or discarded (see `recovery`).
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, LogError> {
        let loaded = recovery::load(dir, &config, now_ms)?;
        let log_start_offset = loaded.log_start_offset;
        let inner = Inner {
            config,
            segments: loaded.segments,
            log_start_offset,
            unsynced: loaded.unsynced,
            recovery_point: loaded.recovery_point,
            epochs: loaded.epochs,
            txn_dir_dirty: false,
            closed: false,
            sealed: false,
        };
        inner.check_invariants();
        let durable_offset = loaded.recovery_point.min(inner.log_end_offset());
        let fresh = loaded.fresh;
        tracing::debug!(
            dir = %dir.display(),
            log_start_offset,
            log_end_offset = inner.log_end_offset(),
            segments = inner.segments.len(),
            "opened partition log"
        );
        Ok(PartitionLog {
            dir: dir.to_path_buf(),
            inner: Mutex::new(inner),
            maintenance: Mutex::new(()),
            sync_state: Mutex::new(SyncState {
                durable_offset,
                in_progress: false,
                failure: None,
            }),
            sync_done: Condvar::new(),
            poisoned: AtomicBool::new(false),
            fsync_rounds: AtomicU64::new(0),
            dir_unsynced: AtomicBool::new(fresh),
            cleaning_paused: AtomicUsize::new(0),
        })
    }

    /// Creates an empty log in `dir` (which must not exist) whose first segment starts at
    /// `start_offset`: the copy a replica move fills with another log's batches from there.
    /// The directory becomes durable with the first sync, as a fresh one from `open`.
    pub fn create_at(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        start_offset: i64,
    ) -> Result<PartitionLog, LogError> {
        std::fs::create_dir(dir)?;
        write_offset_file(dir, LOG_START_OFFSET_FILE, start_offset)?;
        let log = PartitionLog::open(dir, config, now_ms)?;
        log.dir_unsynced.store(true, Ordering::Release);
        Ok(log)
    }

    /// Makes a directory `open` created durable (its entry in the parent, the first segment's
    /// in it), once.
    fn sync_new_dir(&self) -> Result<(), LogError> {
        if self.dir_unsynced.load(Ordering::Acquire) {
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
            }
            sync_dir(&self.dir)?;
            self.dir_unsynced.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the topic-level settings; they apply from the next append on.
    pub fn set_config(&self, config: LogConfig) {
        self.inner.lock().config = config;
    }

    /// Validates `batches` (client rules for a leader append, storage rules for a follower's)
    /// and appends them; see [`PartitionLog::append_validated`].
    pub fn append(&self, batches: &mut [u8], opts: &AppendOptions) -> Result<AppendInfo, LogError> {
        let valid = match opts.assign {
            AssignOffsets::Yes { .. } => validate_batches(batches)?,
            AssignOffsets::No => validate_stored_batches(batches)?,
        };
        self.append_validated(batches, valid, opts)
    }

    /// Appends batches validated beforehand (by the caller, outside any lock). A leader append
    /// assigns consecutive offsets from the log end by rewriting each batch header in place (base
    /// offset; partition leader epoch; LogAppendTime if asked), so the log end offset advances by
    /// `last_offset_delta + 1` per batch (NOT by 1 per batch); a follower append keeps the
    /// offsets, which must start at or after the log end and increase. The active segment rolls
    /// first when it would exceed segment_bytes and is non-empty, when it is older than
    /// segment_ms, when an index is full, or when relative offsets would overflow. Records are
    /// never decoded or re-encoded here. A batch of a newer leader epoch starts an epoch in the
    /// epoch cache.
    pub fn append_validated(
        &self,
        batches: &mut [u8],
        valid: ValidBatches,
        opts: &AppendOptions,
    ) -> Result<AppendInfo, LogError> {
        self.append_validated_and_index(batches, valid, opts, |_, _| Vec::new())
    }

    /// [`PartitionLog::append_validated`], then, under the same lock hold, `aborted` is called
    /// with the append's outcome and the appended batches' headers (offsets assigned) and every
    /// aborted transaction it returns is entered in the transaction index of the segment holding
    /// its marker (entries in marker order). A sync therefore never covers a marker without its
    /// entry. `aborted` runs under the log's lock: it must not call back into this log. If an
    /// entry cannot be written the batches stay appended and the log is poisoned as after a
    /// failed fsync (appends and read_committed lookups fail until it is reopened, which rebuilds
    /// the index).
    pub fn append_validated_and_index(
        &self,
        batches: &mut [u8],
        valid: ValidBatches,
        opts: &AppendOptions,
        aborted: impl FnOnce(&AppendInfo, &[BatchHeader]) -> Vec<AbortedTxn>,
    ) -> Result<AppendInfo, LogError> {
        if valid.byte_len() != batches.len() {
            return Err(BatchError::InvalidRecord(format!(
                "{} bytes validated, {} bytes appended",
                valid.byte_len(),
                batches.len()
            ))
            .into());
        }
        let mut headers = valid.into_headers();
        // Stamping that does not depend on the assigned offsets (CRC work included) is done
        // before taking the lock.
        let mut max_timestamp = NO_TIMESTAMP;
        let mut record_count = 0i64;
        let mut offset_span = 0i64;
        let mut position = 0;
        for header in headers.iter_mut() {
            if let AssignOffsets::Yes {
                leader_epoch,
                log_append_time,
            } = opts.assign
            {
                let batch = &mut batches[position..position + header.total_size()];
                set_partition_leader_epoch(batch, leader_epoch)?;
                if log_append_time {
                    set_log_append_time(batch, opts.now_ms)?;
                }
                *header = BatchHeader::parse(batch)?;
            }
            max_timestamp = max_timestamp.max(header.max_timestamp);
            record_count += header.records_count as i64;
            offset_span += header.last_offset_delta as i64 + 1;
            position += header.total_size();
        }
        let total = batches.len() as u64;

        let mut inner = self.inner.lock();
        if inner.closed || inner.sealed {
            return Err(self.closed_error(&inner));
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LogError::SyncFailed(
                "an earlier fsync failed; reopen the log".to_string(),
            ));
        }
        if total > inner.max_segment_bytes() {
            return Err(LogError::RecordBatchTooLarge {
                size: batches.len(),
                max: inner.max_segment_bytes(),
            });
        }
        let log_end = inner.log_end_offset();
        let (base_offset, last_offset) = match opts.assign {
            AssignOffsets::Yes { .. } => {
                let last = log_end.checked_add(offset_span - 1).ok_or_else(|| {
                    BatchError::InvalidRecord(format!(
                        "{offset_span} offsets from {log_end} overflow the offset space"
                    ))
                })?;
                (log_end, last)
            }
            AssignOffsets::No => {
                let mut next = log_end;
                for h in &headers {
                    if h.base_offset < next {
                        return Err(LogError::OffsetsOutOfOrder {
                            offset: h.base_offset,
                            expected: next,
                        });
                    }
                    next = h.last_offset() + 1;
                }
                (headers[0].base_offset, next - 1)
            }
        };
        let rolled = inner.should_roll(total, max_timestamp, last_offset, opts.now_ms);
        if rolled {
            // A new segment starts at the log end, so segments only leaders and followers wrote
            // never have a gap between them (recovery reads one past the recovery point as a lost
            // tail). A follower batch too far past the log end for a segment based there to
            // address starts its own, as Kafka rolls at the append's first offset.
            let new_base = if last_offset - log_end > i32::MAX as i64 {
                base_offset
            } else {
                log_end
            };
            inner.roll(&self.dir, new_base, opts.now_ms)?;
        }
        if last_offset - inner.active().base_offset() > i32::MAX as i64 {
            return Err(BatchError::InvalidRecord(format!(
                "append spans {offset_span} offsets, more than one segment can address"
            ))
            .into());
        }
        if let AssignOffsets::Yes { .. } = opts.assign {
            let mut next = base_offset;
            let mut position = 0;
            for header in headers.iter_mut() {
                let size = header.total_size();
                set_base_offset(&mut batches[position..position + size], next)?;
                header.base_offset = next;
                next = header.last_offset() + 1;
                position += size;
            }
        }
        let interval = inner.config.index_interval_bytes;
        inner.active_mut().append(batches, &headers, interval)?;
        for h in &headers {
            let epoch = h.partition_leader_epoch;
            if epoch >= 0 && inner.epochs.latest_epoch().is_none_or(|e| epoch > e) {
                inner.epochs.assign(epoch, h.base_offset);
            }
        }
        debug_assert_eq!(inner.log_end_offset(), last_offset + 1);
        inner.check_invariants();
        let info = AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: match opts.assign {
                AssignOffsets::Yes {
                    log_append_time: true,
                    ..
                } => opts.now_ms,
                _ => -1,
            },
            log_start_offset: inner.log_start_offset,
            max_timestamp,
            record_count,
            rolled,
        };
        let mut failed = None;
        for txn in aborted(&info, &headers) {
            if let Err(e) = inner.append_aborted_txn(txn) {
                failed = Some(e);
                break;
            }
        }
        drop(inner);
        match failed {
            None => Ok(info),
            Some(e) => {
                self.poison(&format!("transaction index append failed: {e}"));
                Err(e)
            }
        }
    }

    /// Marks the log unusable until it is reopened, as a failed fsync does.
    fn poison(&self, reason: &str) {
        tracing::error!(dir = %self.dir.display(), reason, "log poisoned");
        let mut state = self.sync_state.lock();
        if state.failure.is_none() {
            state.failure = Some(reason.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// Kafka's `LogSegment.updateTxnIndex`: enters an aborted transaction in the transaction
    /// index of the segment holding its marker (`last_offset`, which must be in the log and after
    /// every marker that segment's index already holds). Prefer
    /// [`PartitionLog::append_validated_and_index`], which does this with the marker's append.
    pub fn append_aborted_txn(&self, txn: AbortedTxn) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        if inner.closed || inner.sealed {
            return Err(self.closed_error(&inner));
        }
        inner.append_aborted_txn(txn)
    }

    /// Kafka's `collectAbortedTransactions`: the aborted transactions that overlap the fetch range
    /// `[from, upper)` (marker at or after `from`, first offset below `upper`), in marker order,
    /// scanning the transaction indexes from the segment holding `from` onward and stopping at the
    /// first entry whose last stable offset reaches `upper`. Fails on a poisoned log, whose index
    /// may lack entries.
    pub fn collect_aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>, LogError> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.sync_state.lock().failure.clone().unwrap_or_default();
            return Err(LogError::SyncFailed(reason));
        }
        let inner = self.inner.lock();
        let mut out = Vec::new();
        let first = inner.segment_for(from);
        for segment in &inner.segments[first..] {
            if segment.collect_aborted_txns(from, upper, &mut out) {
                break;
            }
        }
        Ok(out)
    }

    /// Replaces every transaction index entry whose marker is at or after `from` with
    /// `replacement` (entries at or after `from`, in marker order, each in the log): what the
    /// producer-state replay found when it replayed the log from `from`. Files are rewritten (and
    /// fsynced) only where that changes anything. Blocking.
    pub fn replace_aborted_txns(
        &self,
        from: i64,
        replacement: &[AbortedTxn],
    ) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        if inner.closed || inner.sealed {
            return Err(self.closed_error(&inner));
        }
        let end = inner.log_end_offset();
        if let Some(bad) = replacement
            .iter()
            .find(|t| t.last_offset < from || t.last_offset >= end)
        {
            return Err(LogError::Corrupt(format!(
                "aborted transaction {bad:?} is not in [{from}, {end})"
            )));
        }
        let bases: Vec<i64> = inner.segments.iter().map(Segment::base_offset).collect();
        let mut dir_changed = false;
        for (i, segment) in inner.segments.iter_mut().enumerate() {
            let next_base = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let mine: Vec<AbortedTxn> = replacement
                .iter()
                .filter(|t| (i == 0 || t.last_offset >= bases[i]) && t.last_offset < next_base)
                .copied()
                .collect();
            dir_changed |= segment.replace_aborted_txns(from, &mine)?;
        }
        drop(inner);
        if dir_changed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The persisted recovery point: everything below it (transaction index entries included)
    /// was durable when it was written.
    pub fn recovery_point(&self) -> i64 {
        self.inner.lock().recovery_point
    }

    /// [`PartitionLog::read_bounded`] with no bound but the log end.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        self.read_bounded(offset, max_bytes, min_one_batch, i64::MAX)
    }

    /// Whole batches starting with the batch that contains `offset` (or the first after it, past
    /// a gap), up to `max_bytes` in total and only batches that start below `max_offset` (the
    /// high watermark or last stable offset the reader may see). If `min_one_batch` the first
    /// batch is returned whole even if larger than max_bytes (KIP-74); otherwise a first batch
    /// larger than max_bytes gives empty records. offset at or past the bound, up to the log end
    /// → empty records, no error. offset < log start or > log end →
    /// LogError::OffsetOutOfRange. Reads stop at the end of one segment; the next read continues
    /// in the next one.
    pub fn read_bounded(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: i64,
    ) -> Result<ReadResult, LogError> {
        let (view, from, log_end_offset, log_start_offset) = {
            let inner = self.inner.lock();
            let start = inner.log_start_offset;
            let end = inner.log_end_offset();
            if offset < start || offset > end {
                return Err(LogError::OffsetOutOfRange { offset, start, end });
            }
            if offset >= end.min(max_offset) {
                return Ok(ReadResult {
                    records: Bytes::new(),
                    log_end_offset: end,
                    log_start_offset: start,
                });
            }
            let first = inner.segment_for(offset);
            // The segment holding the offset, or past a gap (or an empty segment) the next one
            // that holds anything after it.
            let Some(skipped) = inner.segments[first..]
                .iter()
                .position(|s| s.next_offset() > offset && s.size() > 0)
            else {
                return Err(LogError::Corrupt(format!(
                    "no segment holds offset {offset} below log end {end}"
                )));
            };
            let segment = &inner.segments[first + skipped];
            // Past a gap the read starts at the next segment's first batch.
            let from = if skipped == 0 {
                segment.lookup_position(offset)
            } else {
                0
            };
            (segment.view(), from, end, start)
        };
        let Some((position, header)) = find_batch(&view, from, offset)? else {
            return Err(LogError::Corrupt(format!(
                "segment {} has no batch with offset {offset}",
                view.base_offset
            )));
        };
        let records = read_batches(
            &view,
            position,
            &header,
            max_bytes,
            min_one_batch,
            max_offset,
        )?;
        Ok(ReadResult {
            records,
            log_end_offset,
            log_start_offset,
        })
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.inner.lock().log_start_offset
    }

    /// Offset the next leader-appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.inner.lock().log_end_offset()
    }

    /// Bytes of record data in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().segments.iter().map(Segment::size).sum()
    }

    /// Number of fsync rounds performed so far (each may cover many `sync` callers).
    pub fn fsync_rounds(&self) -> u64 {
        self.fsync_rounds.load(Ordering::Relaxed)
    }

    /// The newest leader epoch of any batch in the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.inner.lock().epochs.latest_epoch()
    }

    /// The epoch cache entries, oldest first (`leader-epoch-checkpoint`'s content).
    pub fn epoch_entries(&self) -> Vec<EpochEntry> {
        self.inner.lock().epochs.entries().to_vec()
    }

    /// Kafka's `endOffsetForEpoch` (OffsetForLeaderEpoch): the largest epoch not above `epoch`
    /// that the log knows and the offset where it ended; (-1, -1) when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let inner = self.inner.lock();
        inner.epochs.end_offset_for(epoch, inner.log_end_offset())
    }

    /// Durability with group commit: returns once everything below `offset` (a log end offset
    /// previously returned) is fsynced. Callers whose offset another thread's fsync already
    /// covered return without syncing; the append lock is not held during fsync. Rolled segments
    /// are made durable (data and index files) by the first sync after the roll, and a changed
    /// leader epoch cache before the recovery point moves. An `offset` beyond the log end syncs
    /// everything there is. Calling it periodically (Kafka's `log.flush.interval.ms`) also bounds
    /// how much an unclean restart has to rescan.
    pub fn sync(&self, offset: i64) -> Result<(), LogError> {
        {
            let mut state = self.sync_state.lock();
            loop {
                if let Some(reason) = &state.failure {
                    return Err(LogError::SyncFailed(reason.clone()));
                }
                if state.durable_offset >= offset {
                    return Ok(());
                }
                if !state.in_progress {
                    state.in_progress = true;
                    break;
                }
                self.sync_done.wait(&mut state);
            }
        }
        let result = self.sync_to_log_end();
        self.finish_sync(result)
    }

    /// The sync leader's work: everything appended so far, made durable.
    fn sync_to_log_end(&self) -> Result<i64, LogError> {
        let (
            target,
            rolled,
            active_log,
            active_txn_index,
            txn_dir_dirty,
            active_base,
            recovery_point,
            epochs,
        ) = {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Ok(inner.log_end_offset());
            }
            let txn_dir_dirty = std::mem::take(&mut inner.txn_dir_dirty);
            let active = inner.active();
            (
                inner.log_end_offset(),
                inner.unsynced.clone(),
                active.view(),
                active.txn_index_file(),
                txn_dir_dirty,
                active.base_offset(),
                inner.recovery_point,
                inner.epochs.is_dirty().then(|| inner.epochs.checkpoint()),
            )
        };
        self.fsync_rounds.fetch_add(1, Ordering::Relaxed);
        self.sync_new_dir()?;
        for files in &rolled {
            files.flush()?;
        }
        active_log.log.sync_data()?;
        if let Some(txn_index) = &active_txn_index {
            txn_index.sync_data()?;
        }
        if txn_dir_dirty && rolled.is_empty() {
            // A new transaction index file's directory entry (a roll syncs the directory below).
            sync_dir(&self.dir)?;
        }
        if let Some((image, _)) = &epochs {
            // Before the recovery point moves past any epoch it records.
            write_checkpoint(&self.dir, image)?;
        }
        if !rolled.is_empty() {
            // The rolled segments' and the new active segment's directory entries.
            sync_dir(&self.dir)?;
            if active_base > recovery_point {
                write_recovery_point(&self.dir, active_base)?;
            }
        }
        if !rolled.is_empty() || epochs.is_some() {
            let mut inner = self.inner.lock();
            if !rolled.is_empty() {
                inner.recovery_point = inner.recovery_point.max(active_base);
                inner.unsynced.retain(|f| f.base_offset >= active_base);
            }
            if let Some((_, version)) = epochs {
                inner.epochs.mark_persisted(version);
            }
        }
        Ok(target)
    }

    fn finish_sync(&self, result: Result<i64, LogError>) -> Result<(), LogError> {
        let mut state = self.sync_state.lock();
        state.in_progress = false;
        let out = match result {
            Ok(durable) => {
                state.durable_offset = state.durable_offset.max(durable);
                Ok(())
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; log poisoned");
                state.failure = Some(e.to_string());
                self.poisoned.store(true, Ordering::Release);
                Err(e)
            }
        };
        drop(state);
        self.sync_done.notify_all();
        out
    }

    /// Takes the sync leadership (waiting for a running sync), for operations that rewrite what
    /// the durable offset vouches for (close, truncation).
    fn lead_sync(&self) -> Result<(), LogError> {
        let mut state = self.sync_state.lock();
        loop {
            if let Some(reason) = &state.failure {
                // Writing a recovery point now would vouch for data that may be lost.
                return Err(LogError::SyncFailed(reason.clone()));
            }
            if !state.in_progress {
                state.in_progress = true;
                return Ok(());
            }
            self.sync_done.wait(&mut state);
        }
    }

    /// Flushes and fsyncs everything (indexes and epoch cache too) and records the log end offset
    /// as the recovery point, so that the next open trusts every segment after a sanity check
    /// instead of rescanning. Appends fail afterwards; reads keep working.
    pub fn close(&self) -> Result<(), LogError> {
        self.lead_sync()?;
        let result = self.close_files();
        self.finish_sync(result)
    }

    fn close_files(&self) -> Result<i64, LogError> {
        let mut inner = self.inner.lock();
        let log_end = inner.log_end_offset();
        if inner.closed {
            return Ok(log_end);
        }
        self.sync_new_dir()?;
        for files in &inner.unsynced {
            files.flush()?;
        }
        let active = inner.active_mut();
        active.on_become_inactive();
        active.files().flush()?;
        if inner.epochs.is_dirty() {
            let (image, version) = inner.epochs.checkpoint();
            write_checkpoint(&self.dir, &image)?;
            inner.epochs.mark_persisted(version);
        }
        sync_dir(&self.dir)?;
        inner.txn_dir_dirty = false;
        write_recovery_point(&self.dir, log_end)?;
        inner.recovery_point = log_end;
        inner.unsynced.clear();
        inner.closed = true;
        Ok(log_end)
    }

    /// Kafka's `truncateTo`: removes every batch that is not wholly below `offset` (what a
    /// follower does before it copies its leader again, KIP-101); the log then ends at the end of
    /// the last batch kept. An offset below the log start empties the log and starts it there
    /// (`truncateFullyAndStartAt`). The recovery point, the durable offset and the epoch cache
    /// follow; the cut is durable when this returns. Returns the new log end offset.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset(),
                end: self.log_end_offset(),
            });
        }
        let _maintenance = self.maintenance.lock();
        self.lead_sync()?;
        let result = self.truncate_files(offset);
        let mut state = self.sync_state.lock();
        state.in_progress = false;
        match &result {
            Ok(end) => state.durable_offset = state.durable_offset.min(*end),
            Err(e) => {
                // The files are in an unknown state, as after a failed fsync.
                tracing::error!(dir = %self.dir.display(), error = %e, "truncation failed; log poisoned");
                state.failure = Some(e.to_string());
                self.poisoned.store(true, Ordering::Release);
            }
        }
        drop(state);
        self.sync_done.notify_all();
        result
    }

    fn truncate_files(&self, offset: i64) -> Result<i64, LogError> {
        let mut inner = self.inner.lock();
        if inner.closed || inner.sealed {
            return Err(self.closed_error(&inner));
        }
        if offset >= inner.log_end_offset() {
            return Ok(inner.log_end_offset());
        }
        let interval = inner.config.index_interval_bytes;
        let index_bytes = inner.config.segment_index_bytes;
        if offset < inner.log_start_offset || offset < inner.segments[0].base_offset() {
            // Kafka's truncateFullyAndStartAt.
            let doomed: Vec<i64> = inner.segments.iter().map(Segment::base_offset).collect();
            for base in doomed {
                delete_segment_files(&self.dir, base)?;
            }
            let fresh = Segment::create(&self.dir, offset, index_bytes, 0)?;
            inner.segments = vec![fresh];
            inner.unsynced.clear();
            write_offset_file(&self.dir, LOG_START_OFFSET_FILE, offset)?;
            inner.log_start_offset = offset;
            inner.epochs = EpochCache::default();
            inner.epochs.mark_dirty();
        } else {
            let keep = inner
                .segments
                .partition_point(|s| s.base_offset() <= offset);
            let doomed: Vec<i64> = inner.segments[keep..]
                .iter()
                .map(Segment::base_offset)
                .collect();
            inner.segments.truncate(keep);
            for base in doomed {
                delete_segment_files(&self.dir, base)?;
            }
            inner.active_mut().truncate_to(offset, interval)?;
            let active_base = inner.active().base_offset();
            inner.unsynced.retain(|f| f.base_offset < active_base);
            let end = inner.log_end_offset();
            inner.epochs.truncate_from_end(end);
        }
        let end = inner.log_end_offset();
        if inner.recovery_point > end {
            write_recovery_point(&self.dir, end)?;
            inner.recovery_point = end;
        }
        let (image, version) = inner.epochs.checkpoint();
        write_checkpoint(&self.dir, &image)?;
        inner.epochs.mark_persisted(version);
        sync_dir(&self.dir)?;
        inner.check_invariants();
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = end, "log truncated");
        Ok(end)
    }

    /// ListOffsets by timestamp: the offset and timestamp of the first record whose timestamp is at
    /// least `target` (the exact record inside its batch, decompressing as needed; LogAppendTime
    /// batches give every record the batch max timestamp), or None when there is none.
    pub fn offset_for_timestamp(&self, target: i64) -> Result<Option<(i64, i64)>, LogError> {
        // Kafka's fetchOffsetByTimestamp: the first segment whose max timestamp reaches the target.
        // Later segments are only consulted if batch headers overstate their records' timestamps.
        // Records below the log start offset (DeleteRecords) are never an answer.
        let mut after = i64::MIN;
        loop {
            let candidate = {
                let inner = self.inner.lock();
                let start = inner.log_start_offset;
                inner
                    .segments
                    .iter()
                    .find(|s| {
                        s.base_offset() > after
                            && s.next_offset() > start
                            && s.max_timestamp() >= target
                    })
                    .map(|s| (s.view(), s.lookup_timestamp_position(target), start))
            };
            let Some((view, from, start)) = candidate else {
                return Ok(None);
            };
            if let Some(found) = search_timestamp(&view, from, target, start)? {
                return Ok(Some(found));
            }
            after = view.base_offset;
        }
    }

    /// ListOffsets -3: offset and timestamp of the record with the largest timestamp (the exact
    /// record, the first one if several share it), or None for an empty log.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let found: Option<(SegmentView, u64, i64, i64)> = {
            let inner = self.inner.lock();
            let mut best: Option<&Segment> = None;
            for segment in inner.segments.iter().filter(|s| s.size() > 0) {
                if best.is_none_or(|b| segment.max_timestamp() > b.max_timestamp()) {
                    best = Some(segment);
                }
            }
            best.map(|s| {
                (
                    s.view(),
                    s.lookup_position(s.offset_of_max_timestamp()),
                    s.max_timestamp(),
                    s.offset_of_max_timestamp(),
                )
            })
        };
        let Some((view, from, max_timestamp, batch_last_offset)) = found else {
            return Ok(None);
        };
        // Every record before the batch that first reached the max is below it, so the first
        // record at or above it from the index position is the one.
        Ok(Some(
            search_timestamp(&view, from, max_timestamp, i64::MIN)?
                .unwrap_or((batch_last_offset, max_timestamp)),
        ))
    }

    /// Deletes the oldest rolled segments that lie wholly below `offset` and are durable,
    /// advancing the log start offset to the first segment kept; returns how many went. The
    /// active segment always stays, so offsets keep growing from the log end. Oldest first, so a
    /// crash part-way leaves the newer segments (stray index files are removed on open).
    pub fn delete_segments_before(&self, offset: i64) -> Result<usize, LogError> {
        let _maintenance = self.maintenance.lock();
        self.delete_segments_before_locked(offset)
    }

    /// [`PartitionLog::delete_segments_before`] with the maintenance lock already held.
    fn delete_segments_before_locked(&self, offset: i64) -> Result<usize, LogError> {
        let doomed: Vec<i64> = {
            let mut inner = self.inner.lock();
            if inner.sealed {
                return Err(self.closed_error(&inner));
            }
            if inner.closed {
                return Ok(0);
            }
            let active = inner.segments.len() - 1;
            let count = inner.segments[..active]
                .iter()
                .take_while(|s| {
                    s.next_offset() <= offset
                        && !inner
                            .unsynced
                            .iter()
                            .any(|f| f.base_offset == s.base_offset())
                })
                .count();
            let removed: Vec<i64> = inner
                .segments
                .drain(..count)
                .map(|s| s.base_offset())
                .collect();
            if count > 0 {
                let start = inner.log_start_offset.max(inner.segments[0].base_offset());
                inner.set_log_start_offset(start);
            }
            inner.check_invariants();
            removed
        };
        for base in &doomed {
            delete_segment_files(&self.dir, *base)?;
        }
        if !doomed.is_empty() {
            sync_dir(&self.dir)?;
            tracing::debug!(dir = %self.dir.display(), segments = doomed.len(), "deleted old segments");
        }
        Ok(doomed.len())
    }

    /// DeleteRecords: moves the log start offset up to `offset` (persisted before this returns, so
    /// the records below never come back, not even after a crash), then deletes the durable
    /// segments wholly below it. Returns the log start offset afterwards, Kafka's low watermark;
    /// an offset at or below the current start changes nothing. `offset` above the log end (or
    /// negative) is OffsetOutOfRange, as Kafka answers.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _maintenance = self.maintenance.lock();
        {
            let mut inner = self.inner.lock();
            if inner.closed || inner.sealed {
                return Err(self.closed_error(&inner));
            }
            let (start, end) = (inner.log_start_offset, inner.log_end_offset());
            if offset < 0 || offset > end {
                return Err(LogError::OffsetOutOfRange { offset, start, end });
            }
            if offset <= start {
                return Ok(start);
            }
            // Under the lock, so concurrent calls persist in the order they take effect.
            write_offset_file(&self.dir, LOG_START_OFFSET_FILE, offset)?;
            inner.set_log_start_offset(offset);
            inner.check_invariants();
        }
        self.delete_segments_before_locked(offset)?;
        Ok(self.log_start_offset())
    }

    /// Retention (Kafka's `deleteRetentionMsBreachedSegments` and
    /// `deleteRetentionSizeBreachedSegments`): deletes, oldest first, the rolled segments whose
    /// newest record is more than `retention_ms` older than `now_ms`, or that can go while at
    /// least `retention_bytes` stay (-1, or any negative value: no limit), stopping at the first
    /// segment that breaches neither. When every segment breaches, the active one too (and it
    /// holds anything), a new empty segment is rolled at the log end first and the rest go once
    /// durable, as Kafka's `deleteSegments` does; a segment without timestamps never expires by
    /// time, and a rolled segment not yet durable waits for the next sync. Returns how many
    /// segments went.
    pub fn apply_retention(
        &self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Result<usize, LogError> {
        let _maintenance = self.maintenance.lock();
        let upto = {
            let mut inner = self.inner.lock();
            if inner.sealed {
                return Err(self.closed_error(&inner));
            }
            if inner.closed {
                return Ok(0);
            }
            let mut remaining: i64 = inner.segments.iter().map(|s| s.size() as i64).sum();
            let mut upto: Option<i64> = None;
            let mut all = true;
            for s in &inner.segments {
                let by_time = retention_ms >= 0
                    && s.max_timestamp() != NO_TIMESTAMP
                    && now_ms - s.max_timestamp() > retention_ms;
                let by_size =
                    retention_bytes >= 0 && remaining - s.size() as i64 >= retention_bytes;
                // An empty active segment never goes (Kafka's `isLastSegmentAndEmpty`).
                if !(by_time || by_size) || s.size() == 0 {
                    all = false;
                    break;
                }
                remaining -= s.size() as i64;
                upto = Some(s.next_offset());
            }
            if all {
                // Every segment, the active one too, is past retention: as Kafka does, roll
                // first so that one segment stays, then delete them all once durable.
                let end = inner.log_end_offset();
                inner.roll(&self.dir, end, now_ms)?;
            }
            (upto, all)
        };
        let (upto, rolled) = upto;
        if rolled {
            // A sync round even when every offset is durable: the rolled segment's index files
            // and the recovery point must be, before it can go.
            self.lead_sync()?;
            let result = self.sync_to_log_end();
            self.finish_sync(result)?;
        }
        match upto {
            Some(offset) => self.delete_segments_before_locked(offset),
            None => Ok(0),
        }
    }

    /// Deletes all files and the directory (topic deletion); the log accepts no appends after.
    pub fn delete(&self) -> Result<(), LogError> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        inner.unsynced.clear();
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn closed_error(&self, inner: &Inner) -> LogError {
        let dir = self.dir.display().to_string();
        if inner.sealed && !inner.closed {
            LogError::Sealed { dir }
        } else {
            LogError::Closed { dir }
        }
    }

    /// Seals the log for the final step of a move to another log directory (see
    /// `crate::log_dirs::movement`): appends already under way finish, every later append,
    /// truncation, DeleteRecords, retention or cleaning fails with [`LogError::Sealed`], reads
    /// and syncs go on. Returns the log end offset, final from here on.
    pub fn seal(&self) -> Result<i64, LogError> {
        let mut inner = self.inner.lock();
        if inner.closed || inner.sealed {
            return Err(self.closed_error(&inner));
        }
        inner.sealed = true;
        Ok(inner.log_end_offset())
    }

    /// Lifts a seal (a move that stopped before its commit point): the log takes changes again.
    pub fn unseal(&self) {
        self.inner.lock().sealed = false;
    }

    /// Whether the log is sealed.
    pub fn is_sealed(&self) -> bool {
        self.inner.lock().sealed
    }

    /// The same log under a new directory path, after its directory was renamed (the final
    /// name of a moved partition's copy). Nothing may use the log meanwhile: it is taken by
    /// value, and its open files follow the rename by themselves; only the paths change.
    pub fn relocate(self, dir: &Path) -> PartitionLog {
        let mut this = self;
        {
            let inner = this.inner.get_mut();
            for segment in inner.segments.iter_mut() {
                segment.point_at(dir, "");
            }
            let rolled: Vec<SegmentFiles> = inner
                .segments
                .iter()
                .filter(|s| {
                    inner
                        .unsynced
                        .iter()
                        .any(|f| f.base_offset == s.base_offset())
                })
                .map(Segment::files)
                .collect();
            inner.unsynced = rolled;
        }
        this.dir = dir.to_path_buf();
        this
    }

    /// The aborted transactions whose markers lie in `[from, upper)`, in marker order: what a
    /// copy of the log's batches in that range must enter in its own transaction index.
    pub fn aborted_txns_between(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let inner = self.inner.lock();
        inner
            .segments
            .iter()
            .filter(|s| s.next_offset() > from && s.base_offset() < upper)
            .flat_map(|s| s.aborted_txns().iter().copied())
            .filter(|t| t.last_offset >= from && t.last_offset < upper)
            .collect()
    }

    /// Stops the cleaner from starting on this log until [`PartitionLog::resume_cleaning`]
    /// (a replica move copies it meanwhile); waits for a cleaning round under way to end.
    /// Blocking.
    pub fn pause_cleaning(&self) {
        let _maintenance = self.maintenance.lock();
        self.cleaning_paused.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends one [`PartitionLog::pause_cleaning`].
    pub fn resume_cleaning(&self) {
        let _ = self
            .cleaning_paused
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Holds the maintenance lock (no cleaning, retention, DeleteRecords or truncation runs
    /// while the guard lives): the final step of a replica move.
    pub fn lock_maintenance(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.maintenance.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{check_batch, validate_stored_batches};
    use crate::test_support::{
        encode_batch, records, records_with_timestamps, sized_batch, sparse_batch, ALL_COMPRESSIONS,
    };
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use std::sync::Arc;

    fn opts(now_ms: i64) -> AppendOptions {
        AppendOptions::leader(now_ms, 5, false)
    }

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 2048,
            segment_ms: i64::MAX,
            index_interval_bytes: 200,
            segment_index_bytes: 1024,
        }
    }

    /// Every stored byte, fetched segment by segment as a consumer would.
    fn read_all(log: &PartitionLog) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let r = log.read(offset, 1 << 30, false).unwrap();
            let headers = validate_stored_batches(&r.records).unwrap();
            offset = headers[headers.len() - 1].last_offset() + 1;
            out.extend_from_slice(&r.records);
        }
        out
    }

    fn log_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn old_segments_are_deleted_below_an_offset_and_stay_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for i in 0..20 {
            log.append(&mut sized_batch(4, 300, i), &opts(i)).unwrap();
        }
        assert!(log_files(dir.path()).len() > 3);
        // Rolled but not yet durable: kept.
        assert_eq!(log.delete_segments_before(i64::MAX).unwrap(), 0);
        log.sync(log.log_end_offset()).unwrap();
        let end = log.log_end_offset();
        let before = log_files(dir.path()).len();
        let deleted = log.delete_segments_before(40).unwrap();
        assert!(deleted > 0);
        assert_eq!(log_files(dir.path()).len(), before - deleted);
        let start = log.log_start_offset();
        assert!(start > 0 && start <= 40, "log start {start}");
        assert!(matches!(
            log.read(0, 1 << 20, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Everything from the new start is intact; the active segment is never deleted.
        assert!(!log.read(start, 1 << 20, true).unwrap().records.is_empty());
        log.delete_segments_before(i64::MAX).unwrap();
        assert_eq!(log_files(dir.path()).len(), 1);
        assert_eq!(log.log_end_offset(), end);
        drop(log);
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(log.log_end_offset(), end);
        let mut b = sized_batch(1, 10, 99);
        assert_eq!(log.append(&mut b, &opts(99)).unwrap().base_offset, end);
    }

    #[test]
    fn delete_records_moves_the_start_inside_a_segment_and_survives_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        for i in 0..3 {
            log.append(&mut sized_batch(4, 100, i), &opts(i)).unwrap(); // offsets 0..=11
        }
        assert_eq!(log.delete_records_before(6).unwrap(), 6);
        assert_eq!(log.log_start_offset(), 6);
        assert!(matches!(
            log.read(5, 1 << 20, true),
            Err(LogError::OffsetOutOfRange {
                offset: 5,
                start: 6,
                end: 12
            })
        ));
        // The batch holding the new start is served whole, as Kafka does; clients skip below it.
        let r = log.read(6, 1 << 20, true).unwrap();
        assert_eq!(validate_batches(&r.records).unwrap()[0].base_offset, 4);
        assert_eq!(r.log_start_offset, 6);
        // Lower offsets change nothing; beyond the end or negative is out of range.
        assert_eq!(log.delete_records_before(3).unwrap(), 6);
        assert!(matches!(
            log.delete_records_before(13),
            Err(LogError::OffsetOutOfRange { offset: 13, .. })
        ));
        assert!(log.delete_records_before(-2).is_err());
        // No close: the start offset was persisted before the call returned.
        drop(log);
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 12));
        // Up to the end: nothing left to read, appends continue at the end.
        assert_eq!(log.delete_records_before(12).unwrap(), 12);
        assert!(log.read(12, 1 << 20, true).unwrap().records.is_empty());
        let info = log.append(&mut sized_batch(1, 10, 9), &opts(9)).unwrap();
        assert_eq!(info.base_offset, 12);
        assert_eq!(info.log_start_offset, 12);
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (12, 13));
    }

    #[test]
    fn delete_records_deletes_the_segments_wholly_below() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for i in 0..20 {
            log.append(&mut sized_batch(4, 300, i), &opts(i)).unwrap();
        }
        log.sync(log.log_end_offset()).unwrap();
        let before = log_files(dir.path()).len();
        assert_eq!(log.delete_records_before(41).unwrap(), 41);
        let after = log_files(dir.path());
        assert!(
            after.len() < before,
            "{before} segments before, {after:?} after"
        );
        let first_base: i64 = after[0].trim_end_matches(".log").parse().unwrap();
        assert!(
            first_base <= 41 && first_base > 0,
            "first segment {first_base}"
        );
        // The first kept segment starts below 41, but the start stays 41.
        assert_eq!(log.log_start_offset(), 41);
        drop(log);
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(log.log_start_offset(), 41);
        assert_eq!(log.log_end_offset(), 80);
    }

    #[test]
    fn timestamp_lookups_never_answer_below_the_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let mut b = encode_batch(
            &records_with_timestamps(&[100, 300, 200, 400, 150]),
            Compression::Gzip,
        );
        log.append(&mut b, &opts(0)).unwrap();
        log.delete_records_before(2).unwrap();
        let find = |t| log.offset_for_timestamp(t).unwrap();
        assert_eq!(find(0), Some((2, 200)));
        assert_eq!(find(250), Some((3, 400)));
        assert_eq!(find(401), None);
    }

    #[test]
    fn retention_deletes_old_segments_by_time_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        // Old records (timestamps 0..10), then recent ones (1_000_000 on).
        for i in 0..10 {
            log.append(&mut sized_batch(4, 300, i), &opts(i)).unwrap();
        }
        for i in 0..10 {
            log.append(&mut sized_batch(4, 300, 1_000_000 + i), &opts(i))
                .unwrap();
        }
        // Not durable yet: nothing goes.
        assert_eq!(log.apply_retention(1_000_100, 1000, -1).unwrap(), 0);
        log.sync(log.log_end_offset()).unwrap();
        let before = log_files(dir.path()).len();
        let deleted = log.apply_retention(1_000_100, 1000, -1).unwrap();
        assert!(deleted > 0 && deleted < before, "{deleted} of {before}");
        // Offsets 0..40 are the old records: only they may go.
        let start = log.log_start_offset();
        assert!(start > 0 && start <= 40, "log start {start}");
        // No limit: nothing more goes.
        assert_eq!(log.apply_retention(i64::MAX / 2, -1, -1).unwrap(), 0);
        // Far in the future every segment expires, the active one too: as Kafka, it rolls an
        // empty segment at the log end first and deletes everything before it.
        log.apply_retention(10_000_000, 1000, -1).unwrap();
        assert_eq!(log_files(dir.path()).len(), 1);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (80, 80));
        // The empty active segment never goes.
        assert_eq!(log.apply_retention(20_000_000, 1000, -1).unwrap(), 0);
        drop(log);
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (80, 80));
    }

    #[test]
    fn retention_by_size_keeps_at_least_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for i in 0..20 {
            log.append(&mut sized_batch(4, 300, i), &opts(i)).unwrap();
        }
        log.sync(log.log_end_offset()).unwrap();
        let total = log.size_bytes();
        let limit = total / 2;
        assert!(log.apply_retention(0, -1, limit as i64).unwrap() > 0);
        let kept = log.size_bytes();
        assert!(
            kept >= limit && kept < total,
            "kept {kept} of {total}, limit {limit}"
        );
        // Dropping one more segment would go below the limit: a second pass deletes nothing.
        assert_eq!(log.apply_retention(0, -1, limit as i64).unwrap(), 0);
    }

    #[test]
    fn append_assigns_offsets_by_record_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));

        let mut b1 = encode_batch(&records(0, 3, 1000), Compression::None);
        let info = log.append(&mut b1, &opts(1)).unwrap();
        assert_eq!(
            info,
            AppendInfo {
                base_offset: 0,
                last_offset: 2,
                log_append_time_ms: -1,
                log_start_offset: 0,
                max_timestamp: 1002,
                record_count: 3,
                rolled: false,
            }
        );
        let mut b2 = encode_batch(&records(0, 5, 2000), Compression::Gzip);
        let mut b3 = encode_batch(&records(0, 1, 3000), Compression::Snappy);
        let mut both = [b2.clone(), b3.clone()].concat();
        let info = log.append(&mut both, &opts(2)).unwrap();
        assert_eq!(
            (info.base_offset, info.last_offset, info.record_count),
            (3, 8, 6)
        );
        assert_eq!(log.log_end_offset(), 9);
        assert_eq!(log.size_bytes(), (b1.len() + both.len()) as u64);

        set_base_offset(&mut b2, 3).unwrap();
        set_partition_leader_epoch(&mut b2, 5).unwrap();
        set_base_offset(&mut b3, 8).unwrap();
        set_partition_leader_epoch(&mut b3, 5).unwrap();
        assert_eq!(
            both,
            [b2.clone(), b3.clone()].concat(),
            "headers rewritten in place"
        );

        let stored = read_all(&log);
        let sets = RecordBatchDecoder::decode_all(&mut Bytes::from(stored)).unwrap();
        let offsets: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets, (0..9).collect::<Vec<_>>());
        assert!(sets
            .iter()
            .flat_map(|s| &s.records)
            .all(|r| r.partition_leader_epoch == 5));
    }

    #[test]
    fn read_inside_a_batch_returns_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let mut b1 = encode_batch(&records(0, 3, 1), Compression::None);
        let mut b2 = encode_batch(&records(0, 4, 1), Compression::Lz4);
        log.append(&mut b1, &opts(0)).unwrap();
        log.append(&mut b2, &opts(0)).unwrap();
        for offset in 0..3 {
            let r = log.read(offset, 1 << 20, false).unwrap();
            assert_eq!(r.records, [b1.clone(), b2.clone()].concat());
            assert_eq!((r.log_end_offset, r.log_start_offset), (7, 0));
        }
        for offset in 3..7 {
            assert_eq!(log.read(offset, 1 << 20, false).unwrap().records, b2);
        }
        let at_end = log.read(7, 1 << 20, true).unwrap();
        assert!(at_end.records.is_empty());
        assert_eq!(at_end.log_end_offset, 7);
        for offset in [-1, 8, 100] {
            match log.read(offset, 100, true) {
                Err(LogError::OffsetOutOfRange {
                    offset: o,
                    start: 0,
                    end: 7,
                }) => {
                    assert_eq!(o, offset)
                }
                other => panic!("{offset}: {other:?}"),
            }
        }
    }

    #[test]
    fn max_bytes_and_kip74_min_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let mut batches = Vec::new();
        for n in [4, 2, 6] {
            let mut b = sized_batch(n, 50, 1);
            log.append(&mut b, &opts(0)).unwrap();
            batches.push(b);
        }
        let (s1, s2, s3) = (batches[0].len(), batches[1].len(), batches[2].len());
        let read = |max, min_one| log.read(0, max, min_one).unwrap().records;
        assert_eq!(read(s1 + s2 + s3, false), batches.concat());
        assert_eq!(read(s1 + s2 + s3 - 1, false), batches[..2].concat());
        assert_eq!(read(s1 + s2, false), batches[..2].concat());
        assert_eq!(read(s1 + s2 - 1, false), batches[0]);
        assert_eq!(read(s1, true), batches[0]);
        assert!(read(s1 - 1, false).is_empty());
        assert!(read(0, false).is_empty());
        assert_eq!(read(s1 - 1, true), batches[0]);
        assert_eq!(read(0, true), batches[0]);
        // The KIP-74 exception is for the first batch only.
        assert_eq!(log.read(4, s2 + 10, true).unwrap().records, batches[1]);
    }

    #[test]
    fn rolls_by_size_and_serves_every_offset_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let mut expected = Vec::new();
        let mut starts = Vec::new();
        for i in 0..120usize {
            let mut b = sized_batch(1 + i % 4, 20 + (i * 7) % 60, i as i64);
            let info = log.append(&mut b, &opts(0)).unwrap();
            starts.push((info.base_offset, info.last_offset, b.clone()));
            expected.extend_from_slice(&b);
        }
        let files = log_files(dir.path());
        assert!(files.len() > 10, "{} segments", files.len());
        for name in &files {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= config.segment_bytes, "{name} has {len} bytes");
        }
        assert_eq!(read_all(&log), expected);
        for (base, last, batch) in &starts {
            for offset in *base..=*last {
                let r = log.read(offset, 1, true).unwrap();
                assert_eq!(&r.records[..], &batch[..], "offset {offset}");
            }
        }
        // Reopen after a clean close: trusted indexes must give the same answers.
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(read_all(&log), expected);
        for (base, last, batch) in &starts {
            assert_eq!(&log.read(*last, 1, true).unwrap().records[..], &batch[..]);
            assert_eq!(&log.read(*base, 1, true).unwrap().records[..], &batch[..]);
        }
    }

    #[test]
    fn oversized_append_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 300,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let mut big = sized_batch(4, 100, 1);
        assert!(matches!(
            log.append(&mut big, &opts(0)),
            Err(LogError::RecordBatchTooLarge { max: 300, .. })
        ));
        assert_eq!(log.log_end_offset(), 0);
    }

    #[test]
    fn invalid_and_corrupt_batches_are_rejected_without_side_effects() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let mut b = encode_batch(&records(0, 2, 1), Compression::None);
        let n = b.len();
        b[n - 1] ^= 1;
        assert!(matches!(
            log.append(&mut b, &opts(0)),
            Err(LogError::Batch(BatchError::CorruptMessage { .. }))
        ));
        let mut partial = encode_batch(&records(0, 2, 1), Compression::None);
        partial.pop();
        assert!(matches!(
            log.append(&mut partial, &opts(0)),
            Err(LogError::Batch(BatchError::InvalidRecord(_)))
        ));
        assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
    }

    #[test]
    fn rolls_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_ms: 1000,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let append_ts = |ts: i64, now: i64| {
            let mut b = encode_batch(&records_with_timestamps(&[ts]), Compression::None);
            log.append(&mut b, &opts(now)).unwrap();
        };
        // Record time decides when the first batch has a timestamp (Kafka's rollingBasedTimestamp).
        append_ts(10_000, 0);
        append_ts(11_000, 0);
        assert_eq!(log_files(dir.path()).len(), 1);
        append_ts(11_001, 0);
        assert_eq!(log_files(dir.path()).len(), 2);
        // Without record timestamps, the wall clock since the segment was created decides.
        let dir2 = tempfile::tempdir().unwrap();
        let log2 = PartitionLog::open(dir2.path(), config, 5_000).unwrap();
        let append_none = |now: i64| {
            let mut b = encode_batch(&records_with_timestamps(&[-1]), Compression::None);
            log2.append(&mut b, &opts(now)).unwrap();
        };
        append_none(5_000);
        append_none(6_000);
        assert_eq!(log_files(dir2.path()).len(), 1);
        append_none(6_001);
        assert_eq!(log_files(dir2.path()).len(), 2);
        assert_eq!(log2.log_end_offset(), 3);
    }

    #[test]
    fn offset_for_timestamp_finds_the_exact_record() {
        for compression in ALL_COMPRESSIONS {
            let dir = tempfile::tempdir().unwrap();
            let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
            let mut b1 = encode_batch(
                &records_with_timestamps(&[100, 300, 200, 400, 400]),
                compression,
            );
            let mut b2 = encode_batch(&records_with_timestamps(&[500, 450]), compression);
            log.append(&mut b1, &opts(0)).unwrap();
            log.append(&mut b2, &opts(0)).unwrap();
            let find = |t| log.offset_for_timestamp(t).unwrap();
            assert_eq!(find(-5), Some((0, 100)), "{compression:?}");
            assert_eq!(find(100), Some((0, 100)));
            assert_eq!(find(150), Some((1, 300)));
            assert_eq!(find(300), Some((1, 300)));
            assert_eq!(find(350), Some((3, 400)));
            assert_eq!(find(401), Some((5, 500)));
            assert_eq!(find(460), Some((5, 500)));
            assert_eq!(find(501), None);
            assert_eq!(log.max_timestamp_offset().unwrap(), Some((5, 500)));
        }
    }

    #[test]
    fn timestamp_lookups_across_many_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        // Record i has timestamp 10 * i, except a dip every 7th record.
        let mut stamps = Vec::new();
        for i in 0..60i64 {
            let ts: Vec<i64> = (0..3)
                .map(|j| {
                    let o = 3 * i + j;
                    if o % 7 == 3 {
                        1
                    } else {
                        10 * o
                    }
                })
                .collect();
            let mut b = encode_batch(&records_with_timestamps(&ts), Compression::Zstd);
            log.append(&mut b, &opts(0)).unwrap();
            stamps.extend(ts);
        }
        assert!(log_files(dir.path()).len() > 1);
        let model = |target: i64| {
            stamps
                .iter()
                .enumerate()
                .find(|(_, ts)| **ts >= target)
                .map(|(o, ts)| (o as i64, *ts))
        };
        for target in (0..1900).step_by(13).chain([1790, 1791, 5000]) {
            assert_eq!(
                log.offset_for_timestamp(target).unwrap(),
                model(target),
                "{target}"
            );
        }
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((179, 1790)));
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for target in (0..1900).step_by(29) {
            assert_eq!(
                log.offset_for_timestamp(target).unwrap(),
                model(target),
                "{target}"
            );
        }
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((179, 1790)));
    }

    #[test]
    fn max_timestamp_offset_takes_the_first_record_with_the_max() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        assert_eq!(log.max_timestamp_offset().unwrap(), None);
        assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
        let mut b1 = encode_batch(
            &records_with_timestamps(&[100, 900, 300]),
            Compression::Gzip,
        );
        let mut b2 = encode_batch(&records_with_timestamps(&[900, 50]), Compression::None);
        log.append(&mut b1, &opts(0)).unwrap();
        log.append(&mut b2, &opts(0)).unwrap();
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((1, 900)));
    }

    #[test]
    fn log_append_time_stamps_batches_with_valid_crc() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let lat = AppendOptions::leader(777, 3, true);
        let mut b1 = encode_batch(&records(0, 3, 100), Compression::Lz4);
        let info = log.append(&mut b1, &lat).unwrap();
        assert_eq!((info.log_append_time_ms, info.max_timestamp), (777, 777));
        let mut b2 = encode_batch(&records(0, 2, 5000), Compression::None);
        log.append(&mut b2, &AppendOptions::leader(800, 3, true))
            .unwrap();
        let stored = log.read(0, 1 << 20, false).unwrap().records;
        let h = check_batch(&stored).unwrap();
        assert!(h.timestamp_type_is_log_append());
        assert_eq!(
            (h.max_timestamp, h.base_timestamp, h.partition_leader_epoch),
            (777, 100, 3)
        );
        // Every record answers by the append time, not its creation time.
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 777)));
        assert_eq!(log.offset_for_timestamp(778).unwrap(), Some((3, 800)));
        assert_eq!(log.offset_for_timestamp(801).unwrap(), None);
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((3, 800)));
    }

    #[test]
    fn clean_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for i in 0..40 {
            let mut b = sized_batch(2, 30, 1000 + i);
            log.append(&mut b, &opts(0)).unwrap();
        }
        let before = read_all(&log);
        log.close().unwrap();
        log.close().unwrap();
        let mut late = sized_batch(1, 1, 0);
        assert!(matches!(
            log.append(&mut late, &opts(0)),
            Err(LogError::Closed { .. })
        ));
        let point = std::fs::read_to_string(dir.path().join("recovery-point")).unwrap();
        assert_eq!(point.trim(), "80");

        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(log.log_end_offset(), 80);
        assert_eq!(read_all(&log), before);
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((78, 1039)));
        let info = log.append(&mut late, &opts(0)).unwrap();
        assert_eq!(info.base_offset, 80);
    }

    #[test]
    fn crash_recovery_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut kept = Vec::new();
        {
            let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
            for i in 0..5 {
                let mut b = encode_batch(&records(0, 2, i), Compression::None);
                log.append(&mut b, &opts(0)).unwrap();
                if i < 4 {
                    kept.extend_from_slice(&b);
                }
            }
            // Dropped without close: a crash.
        }
        let path = dir.path().join("00000000000000000000.log");
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(read_all(&log), kept);
        let mut b = encode_batch(&records(0, 1, 0), Compression::None);
        assert_eq!(log.append(&mut b, &opts(0)).unwrap().base_offset, 8);
    }

    /// Flips the last byte (record data, CRC-covered) of the first batch of a segment file.
    fn flip_record_byte(path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let first = check_batch(&bytes).unwrap().total_size();
        bytes[first - 1] ^= 0x55;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn clean_reopen_trusts_segments_without_rescanning() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for _ in 0..40 {
            let mut b = sized_batch(2, 40, 1);
            log.append(&mut b, &opts(0)).unwrap();
        }
        log.close().unwrap();
        let files = log_files(dir.path());
        assert!(files.len() > 2);
        // Damage that only a CRC scan could see: a clean shutdown vouched for these bytes, so
        // (like Kafka) the reopen does not read them.
        flip_record_byte(&dir.path().join(&files[0]));
        flip_record_byte(&dir.path().join(files.last().unwrap()));
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(log.log_end_offset(), 80);
        assert_eq!(log_files(dir.path()), files);
    }

    #[test]
    fn unclean_reopen_rescans_only_past_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let synced_end;
        {
            let log = PartitionLog::open(dir.path(), config, 0).unwrap();
            for _ in 0..40 {
                let mut b = sized_batch(2, 40, 1);
                log.append(&mut b, &opts(0)).unwrap();
            }
            synced_end = log.log_end_offset();
            log.sync(synced_end).unwrap();
            for _ in 0..10 {
                let mut b = sized_batch(2, 40, 1);
                log.append(&mut b, &opts(0)).unwrap();
            }
        }
        let files = log_files(dir.path());
        let point: i64 = std::fs::read_to_string(dir.path().join("recovery-point"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let base_of = |name: &String| name.trim_end_matches(".log").parse::<i64>().unwrap();
        let (below, above): (Vec<_>, Vec<_>) = files.iter().partition(|f| base_of(f) < point);
        assert!(below.len() >= 2 && !above.is_empty());
        // Below the recovery point: durable and trusted. Past it: rescanned and cut.
        flip_record_byte(&dir.path().join(below[0]));
        flip_record_byte(&dir.path().join(above[0]));
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(log.log_end_offset(), base_of(above[0]));
        assert!(log.log_end_offset() <= synced_end);
    }

    #[test]
    fn missing_or_damaged_index_files_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        for i in 0..60 {
            let mut b = encode_batch(&records(0, 3, 10 * i), Compression::Snappy);
            log.append(&mut b, &opts(0)).unwrap();
        }
        let before = read_all(&log);
        let probes: Vec<_> = (0..700)
            .step_by(37)
            .map(|t| log.offset_for_timestamp(t).unwrap())
            .collect();
        log.close().unwrap();
        let mut indexes: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "index" || e == "timeindex")
            })
            .collect();
        indexes.sort();
        assert!(indexes.len() >= 6);
        std::fs::remove_file(&indexes[0]).unwrap();
        std::fs::write(&indexes[1], [0u8; 24]).unwrap();
        std::fs::write(&indexes[2], [7u8; 5]).unwrap();
        std::fs::write(&indexes[3], []).unwrap();
        std::fs::write(&indexes[4], [0xffu8; 48]).unwrap();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(read_all(&log), before);
        let after: Vec<_> = (0..700)
            .step_by(37)
            .map(|t| log.offset_for_timestamp(t).unwrap())
            .collect();
        assert_eq!(after, probes);
        for offset in 0..log.log_end_offset() {
            let r = log.read(offset, 1, true).unwrap();
            let h = check_batch(&r.records).unwrap();
            assert!(h.base_offset <= offset && offset <= h.last_offset());
        }
    }

    #[test]
    fn stray_files_are_removed_and_foreign_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for name in [
            "00000000000000000000.log.tmp",
            "00000000000000000099.index",
            "00000000000000000099.timeindex",
            "00000000000000000005.log.deleted",
            "recovery-point.tmp",
            "partition.metadata",
        ] {
            std::fs::write(p.join(name), b"junk").unwrap();
        }
        let log = PartitionLog::open(p, LogConfig::default(), 0).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["00000000000000000000.log", "partition.metadata"]);
        assert_eq!(log.log_end_offset(), 0);
    }

    #[test]
    fn sync_skips_offsets_already_durable() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        log.sync(0).unwrap();
        assert_eq!(log.fsync_rounds(), 0);
        let mut b = sized_batch(3, 10, 0);
        let end = log.append(&mut b, &opts(0)).unwrap().last_offset + 1;
        log.sync(end).unwrap();
        assert_eq!(log.fsync_rounds(), 1);
        log.sync(end).unwrap();
        log.sync(1).unwrap();
        assert_eq!(log.fsync_rounds(), 1);
        // Rolled segments become durable and move the recovery point up to the active segment.
        for _ in 0..40 {
            let mut b = sized_batch(3, 40, 0);
            log.append(&mut b, &opts(0)).unwrap();
        }
        log.sync(log.log_end_offset()).unwrap();
        let files = log_files(dir.path());
        let active_base: i64 = files
            .last()
            .unwrap()
            .trim_end_matches(".log")
            .parse()
            .unwrap();
        let point = std::fs::read_to_string(dir.path().join("recovery-point")).unwrap();
        assert_eq!(point.trim().parse::<i64>().unwrap(), active_base);
        assert!(active_base > 0);
    }

    #[test]
    fn concurrent_syncs_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(PartitionLog::open(dir.path(), small_config(), 0).unwrap());
        let threads = 8;
        let per_thread = 25;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        let mut b = sized_batch(1 + (t + i) % 3, 20, 0);
                        let info = log.append(&mut b, &opts(0)).unwrap();
                        log.sync(info.last_offset + 1).unwrap();
                        // Whatever another thread's sync covered is durable too.
                        log.sync(info.base_offset).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rounds = log.fsync_rounds();
        assert!(
            rounds >= 1 && rounds <= (threads * per_thread) as u64,
            "{rounds}"
        );
        log.sync(log.log_end_offset()).unwrap();
        assert_eq!(log.fsync_rounds(), rounds, "everything was already durable");
        let headers = validate_batches(&read_all(&log)).unwrap();
        assert_eq!(headers.len(), threads * per_thread);
    }

    #[test]
    fn concurrent_reads_see_only_whole_appended_batches() {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(PartitionLog::open(dir.path(), small_config(), 0).unwrap());
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let log = Arc::clone(&log);
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let mut seen = 0;
                    let mut i = 0i64;
                    // Keep reading while the writer runs, then a little longer.
                    while !done.load(Ordering::Acquire) || seen < 100 {
                        i += 1;
                        let end = log.log_end_offset();
                        if end == 0 {
                            std::thread::yield_now();
                            continue;
                        }
                        let offset = (i * 7919 + r) % end;
                        let got = log.read(offset, 500, i % 2 == 0).unwrap();
                        if got.records.is_empty() {
                            continue;
                        }
                        let headers = validate_batches(&got.records).unwrap();
                        assert!(headers[0].base_offset <= offset);
                        assert!(offset <= headers[0].last_offset());
                        assert!(headers[headers.len() - 1].last_offset() < got.log_end_offset);
                        seen += 1;
                    }
                })
            })
            .collect();
        for i in 0..300 {
            let mut b = sized_batch(1 + i % 4, 30, i as i64);
            log.append(&mut b, &opts(0)).unwrap();
        }
        done.store(true, Ordering::Release);
        for r in readers {
            r.join().unwrap();
        }
    }

    #[test]
    fn delete_removes_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topic-0");
        let log = PartitionLog::open(&path, small_config(), 0).unwrap();
        for _ in 0..30 {
            let mut b = sized_batch(2, 50, 0);
            log.append(&mut b, &opts(0)).unwrap();
        }
        log.delete().unwrap();
        assert!(!path.exists());
        let mut b = sized_batch(1, 1, 0);
        assert!(matches!(
            log.append(&mut b, &opts(0)),
            Err(LogError::Closed { .. })
        ));
    }

    #[test]
    fn partition_log_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PartitionLog>();
    }

    fn follower() -> AppendOptions {
        AppendOptions::follower(0)
    }

    /// Every batch's (base, last) offsets from `from`, reading as a consumer does.
    fn batch_offsets(log: &PartitionLog, from: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut offset = from;
        while offset < log.log_end_offset() {
            let r = log.read(offset, 1 << 30, false).unwrap();
            for h in validate_stored_batches(&r.records).unwrap().iter() {
                out.push((h.base_offset, h.last_offset()));
                offset = h.last_offset() + 1;
            }
        }
        out
    }

    #[test]
    fn follower_appends_keep_offsets_and_gaps_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 300,
            ..small_config()
        };
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let mut expected = Vec::new();
        for (offsets, ts) in [
            (vec![0, 2, 3], 10),
            (vec![10, 14], 20),
            (vec![15, 16, 17], 30),
            (vec![100, 150], 40),
            (vec![151], 50),
            (vec![400, 401, 405], 60),
        ] {
            let mut b = sparse_batch(&offsets, ts);
            let info = log.append(&mut b, &follower()).unwrap();
            assert_eq!(info.base_offset, offsets[0]);
            assert_eq!(info.last_offset, *offsets.last().unwrap());
            expected.push((offsets[0], *offsets.last().unwrap()));
        }
        assert!(
            log_files(dir.path()).len() >= 3,
            "rolled: gaps inside and across segments"
        );
        assert_eq!(log.log_end_offset(), 406);
        assert_eq!(batch_offsets(&log, 0), expected);
        // An offset inside a gap reads the next batch, as in Kafka.
        let r = log.read(50, 1 << 20, false).unwrap();
        assert_eq!(check_batch(&r.records).unwrap().base_offset, 100);
        // A follower batch that goes backwards is refused.
        let mut back = sparse_batch(&[405], 0);
        assert!(matches!(
            log.append(&mut back, &follower()),
            Err(LogError::OffsetsOutOfOrder {
                offset: 405,
                expected: 406
            })
        ));
        let before = read_all(&log);
        drop(log);
        // A crash: the tail past the recovery point is rescanned, gaps and all.
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(log.log_end_offset(), 406);
        assert_eq!(read_all(&log), before);
        log.sync(log.log_end_offset()).unwrap();
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(batch_offsets(&log, 0), expected);
        // A leader continues from the log end.
        let mut b = sized_batch(2, 10, 0);
        assert_eq!(log.append(&mut b, &opts(0)).unwrap().base_offset, 406);
    }

    #[test]
    fn an_interrupted_swap_is_finished_on_open() {
        use super::super::recovery::suffixed_file_name;
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        for i in 0..60 {
            let mut b = sized_batch(2, 40, i);
            log.append(&mut b, &opts(0)).unwrap();
        }
        log.close().unwrap();
        let files = log_files(dir.path());
        assert!(files.len() >= 4);
        let base_of = |name: &String| name.trim_end_matches(".log").parse::<i64>().unwrap();
        let (first, second, third) = (base_of(&files[0]), base_of(&files[1]), base_of(&files[2]));
        // The cleaner compacted the first two segments into one: a record every third offset.
        let kept: Vec<i64> = (first..third).step_by(3).collect();
        let swap = sparse_batch(&kept, 1);
        std::fs::write(
            dir.path().join(suffixed_file_name(first, ".log", ".swap")),
            &swap,
        )
        .unwrap();
        // It crashed after renaming the second old segment to .deleted, before the final rename.
        std::fs::rename(
            dir.path().join(&files[1]),
            dir.path().join(format!("{}.deleted", files[1])),
        )
        .unwrap();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let names = log_files(dir.path());
        assert_eq!(names[0], files[0]);
        assert!(!names.contains(&files[1]));
        assert_eq!(base_of(&names[1]), third);
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".swap")));
        let offsets = batch_offsets(&log, first);
        assert_eq!(offsets[0], (first, *kept.last().unwrap()));
        assert_eq!(offsets[1].0, third);
        assert_eq!(log.log_end_offset(), 120);
        let _ = second;
    }

    #[test]
    fn a_swap_of_an_interrupted_split_is_discarded() {
        use super::super::recovery::suffixed_file_name;
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        for i in 0..30 {
            let mut b = sized_batch(2, 40, i);
            log.append(&mut b, &opts(0)).unwrap();
        }
        log.close().unwrap();
        let before = read_all(&PartitionLog::open(dir.path(), config, 0).unwrap());
        let files = log_files(dir.path());
        let base = files[1].trim_end_matches(".log").parse::<i64>().unwrap();
        // A split wrote .cleaned output and began swapping: the .swap at or above the lowest
        // .cleaned base is not trusted, and neither is the .cleaned file.
        let junk = sparse_batch(&[base], 1);
        for (ext, suffix) in [(".log", ".cleaned"), (".log", ".swap"), (".index", ".swap")] {
            std::fs::write(
                dir.path().join(suffixed_file_name(base, ext, suffix)),
                &junk,
            )
            .unwrap();
        }
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(read_all(&log), before);
        assert_eq!(log_files(dir.path()), files);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names
            .iter()
            .all(|n| !n.ends_with(".swap") && !n.ends_with(".cleaned")));
    }

    #[test]
    fn truncation_cuts_whole_batches_and_survives_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        for i in 0..30 {
            let mut b = sized_batch(2, 40, i);
            log.append(&mut b, &AppendOptions::leader(0, (i / 10) as i32, false))
                .unwrap();
        }
        log.sync(log.log_end_offset()).unwrap();
        assert_eq!(
            log.epoch_entries()
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 20), (2, 40)]
        );
        let segments_before = log_files(dir.path()).len();
        // 25 is inside the batch 24..=25: that batch goes too.
        assert_eq!(log.truncate_to(25).unwrap(), 24);
        assert_eq!(log.log_end_offset(), 24);
        assert!(log_files(dir.path()).len() < segments_before);
        assert_eq!(batch_offsets(&log, 0).last(), Some(&(22, 23)));
        assert_eq!(
            log.epoch_entries()
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 20)]
        );
        assert_eq!(log.end_offset_for_epoch(1), (1, 24));
        // Truncating at or past the end changes nothing.
        assert_eq!(log.truncate_to(100).unwrap(), 24);
        let mut b = sized_batch(2, 40, 0);
        assert_eq!(log.append(&mut b, &opts(0)).unwrap().base_offset, 24);
        drop(log);
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(log.log_end_offset(), 26);
        assert_eq!(batch_offsets(&log, 0).len(), 13);
        // Below the log start: the log is emptied and starts there.
        log.delete_records_before(10).unwrap();
        assert_eq!(log.truncate_to(4).unwrap(), 4);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (4, 4));
        assert!(log.epoch_entries().is_empty());
        let mut b = sized_batch(1, 4, 0);
        assert_eq!(log.append(&mut b, &opts(0)).unwrap().base_offset, 4);
        drop(log);
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (4, 5));
    }

    #[test]
    fn the_epoch_cache_persists_and_is_rebuilt_past_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let entries = |log: &PartitionLog| -> Vec<(i32, i64)> {
            log.epoch_entries()
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect()
        };
        {
            let log = PartitionLog::open(dir.path(), config, 0).unwrap();
            for (i, epoch) in [0, 0, 3, 3, 7].into_iter().enumerate() {
                let mut b = sized_batch(2, 40, i as i64);
                log.append(&mut b, &AppendOptions::leader(0, epoch, false))
                    .unwrap();
            }
            assert_eq!(entries(&log), [(0, 0), (3, 4), (7, 8)]);
            assert_eq!(log.end_offset_for_epoch(3), (3, 8));
            assert_eq!(log.end_offset_for_epoch(5), (3, 8));
            assert_eq!(log.end_offset_for_epoch(7), (7, 10));
            log.close().unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(text, "0\n3\n0 0\n3 4\n7 8\n");
        {
            let log = PartitionLog::open(dir.path(), config, 0).unwrap();
            assert_eq!(entries(&log), [(0, 0), (3, 4), (7, 8)]);
            for _ in 0..20 {
                let mut b = sized_batch(2, 40, 0);
                log.append(&mut b, &AppendOptions::leader(0, 9, false))
                    .unwrap();
            }
            // A crash before any sync: the file lacks epoch 9, recovery finds it in the batches.
        }
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert_eq!(entries(&log), [(0, 0), (3, 4), (7, 8), (9, 10)]);
        // Moving the log start moves the first kept epoch's start with it.
        log.delete_records_before(6).unwrap();
        assert_eq!(entries(&log)[0], (3, 6));
    }

    fn txn_index_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".txnindex"))
            .collect();
        names.sort();
        names
    }

    fn aborted(producer_id: i64, first_offset: i64, last_offset: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn aborted_txns_live_in_the_segment_of_their_marker_and_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        // 2 records per batch: every batch's last offset is odd.
        for i in 0..40 {
            let mut b = sized_batch(2, 40, i);
            let info = log
                .append_validated_and_index(
                    &mut b.clone(),
                    validate_batches(&b).unwrap(),
                    &opts(0),
                    |info, headers| {
                        assert_eq!(headers[0].base_offset, info.base_offset);
                        // Batches 5, 17 and 30 "are" abort markers of transactions from 2, 3, 50.
                        match i {
                            5 => vec![aborted(1, 2, info.last_offset, info.last_offset + 1)],
                            17 => vec![aborted(2, 3, info.last_offset, 40)],
                            30 => vec![aborted(3, 50, info.last_offset, info.last_offset + 1)],
                            _ => Vec::new(),
                        }
                    },
                )
                .unwrap();
            b.clear();
            assert_eq!(info.base_offset, 2 * i);
        }
        let segments = log_files(dir.path());
        assert!(segments.len() >= 3, "{segments:?}");
        let files = txn_index_files(dir.path());
        assert_eq!(
            files.len(),
            3,
            "one file per segment holding a marker: {files:?}"
        );
        let all = |log: &PartitionLog| log.collect_aborted_txns(0, i64::MAX).unwrap();
        assert_eq!(
            all(&log),
            vec![
                aborted(1, 2, 11, 12),
                aborted(2, 3, 35, 40),
                aborted(3, 50, 61, 62)
            ]
        );
        // Kafka's search: from the segment holding the fetch offset on, overlapping entries only,
        // stopping at the first entry whose last stable offset reaches the upper bound.
        assert_eq!(
            log.collect_aborted_txns(12, 20).unwrap(),
            vec![aborted(2, 3, 35, 40)]
        );
        assert_eq!(log.collect_aborted_txns(36, 50).unwrap(), vec![]);
        assert_eq!(
            log.collect_aborted_txns(36, 51).unwrap(),
            vec![aborted(3, 50, 61, 62)]
        );
        // A marker's entry must be in the log and follow the others of its segment.
        assert!(log.append_aborted_txn(aborted(4, 0, 80, 81)).is_err());
        assert!(log.append_aborted_txn(aborted(4, 0, 60, 61)).is_err());
        log.append_aborted_txn(aborted(4, 70, 79, 80)).unwrap();
        // A crash keeps them (the page cache), a clean close too.
        drop(log);
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(all(&log).len(), 4);
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(all(&log).len(), 4);
        // Truncation takes the entries of the markers it cuts, and the files left empty.
        log.truncate_to(36).unwrap();
        assert_eq!(
            all(&log),
            vec![aborted(1, 2, 11, 12), aborted(2, 3, 35, 40)]
        );
        assert_eq!(txn_index_files(dir.path()).len(), 2);
        log.truncate_to(34).unwrap();
        assert_eq!(all(&log), vec![aborted(1, 2, 11, 12)]);
        assert_eq!(txn_index_files(dir.path()).len(), 1);
        drop(log);
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(all(&log), vec![aborted(1, 2, 11, 12)]);
        // Segments deleted below the start take their transaction index with them.
        log.sync(log.log_end_offset()).unwrap();
        log.delete_records_before(30).unwrap();
        assert!(all(&log).is_empty());
        assert!(txn_index_files(dir.path()).is_empty());
    }

    #[test]
    fn replaced_entries_are_rewritten_only_where_they_differ() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        for i in 0..40 {
            log.append(&mut sized_batch(2, 40, i), &opts(0)).unwrap();
        }
        log.append_aborted_txn(aborted(1, 0, 9, 10)).unwrap();
        log.append_aborted_txn(aborted(2, 10, 41, 42)).unwrap();
        let files = txn_index_files(dir.path());
        assert_eq!(files.len(), 2);
        // The replay from 20 found the entry at 41 again and one at 75: only the latter's
        // segment changes; entries below 20 are not the replay's business.
        log.replace_aborted_txns(20, &[aborted(2, 10, 41, 42), aborted(3, 60, 75, 76)])
            .unwrap();
        assert_eq!(
            log.collect_aborted_txns(0, i64::MAX).unwrap(),
            vec![
                aborted(1, 0, 9, 10),
                aborted(2, 10, 41, 42),
                aborted(3, 60, 75, 76)
            ]
        );
        assert_eq!(txn_index_files(dir.path()).len(), 3);
        log.replace_aborted_txns(40, &[]).unwrap();
        assert_eq!(txn_index_files(dir.path()), files[..1]);
        assert!(log
            .replace_aborted_txns(40, &[aborted(1, 0, 9, 10)])
            .is_err());
        assert!(log
            .replace_aborted_txns(40, &[aborted(1, 0, 80, 81)])
            .is_err());
        drop(log);
        let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
        assert_eq!(
            log.collect_aborted_txns(0, i64::MAX).unwrap(),
            vec![aborted(1, 0, 9, 10)]
        );
    }

    #[test]
    fn stray_swapped_and_torn_txn_indexes_on_open() {
        use super::super::recovery::suffixed_file_name;
        let dir = tempfile::tempdir().unwrap();
        let config = small_config();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        for i in 0..30 {
            log.append(&mut sized_batch(2, 40, i), &opts(0)).unwrap();
        }
        log.append_aborted_txn(aborted(1, 0, 57, 58)).unwrap();
        log.close().unwrap();
        let files = log_files(dir.path());
        let base_of = |name: &String| name.trim_end_matches(".log").parse::<i64>().unwrap();
        let (first, second) = (base_of(&files[0]), base_of(&files[1]));
        // A transaction index without its log is a leftover.
        let stray = dir.path().join("00000000000000099999.txnindex");
        std::fs::write(&stray, [0u8; 34]).unwrap();
        // The cleaner's swap of the first segment carries a transaction index of its own.
        let kept: Vec<i64> = (first..second).step_by(2).collect();
        std::fs::write(
            dir.path().join(suffixed_file_name(first, ".log", ".swap")),
            sparse_batch(&kept, 1),
        )
        .unwrap();
        let entry = |txn: AbortedTxn| {
            let mut b = vec![0u8, 0];
            for v in [
                txn.producer_id,
                txn.first_offset,
                txn.last_offset,
                txn.last_stable_offset,
            ] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b
        };
        std::fs::write(
            dir.path()
                .join(suffixed_file_name(first, ".txnindex", ".swap")),
            entry(aborted(9, first, first + 2, first + 3)),
        )
        .unwrap();
        // The active segment's file lost half an entry.
        let active = dir
            .path()
            .join(format!("{:020}.txnindex", base_of(files.last().unwrap())));
        let mut torn = std::fs::read(&active).unwrap();
        torn.extend_from_slice(&entry(aborted(2, 58, 59, 60))[..20]);
        std::fs::write(&active, &torn).unwrap();
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        assert!(!stray.exists());
        assert_eq!(
            log.collect_aborted_txns(0, i64::MAX).unwrap(),
            vec![
                aborted(9, first, first + 2, first + 3),
                aborted(1, 0, 57, 58)
            ]
        );
        assert_eq!(std::fs::metadata(&active).unwrap().len(), 34);
    }
}
