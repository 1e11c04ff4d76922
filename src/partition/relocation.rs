//! The partition's half of a replica move between log directories (KIP-113; Kafka's future
//! replica and `Partition.maybeReplaceCurrentWithFutureReplica`): registering the copy being
//! built (the "future replica"), and swapping the log for it. Naming, copying and renaming
//! directories is the log directories' half (`crate::log_dirs::movement`).
//!
//! The log sits behind a handle (`RwLock<Arc<PartitionLog>>`) that every operation reads once
//! and uses for its whole length. A swap, under the partition's `swap` lock:
//! 1. takes the old log's maintenance lock (no cleaning, retention, DeleteRecords or truncation
//!    runs during the swap) and seals it: its log end offset is final;
//! 2. copies the producer state as of that end, and hands both to the mover, which finishes
//!    the copy, makes it durable and renames the directories (the commit point is the old
//!    directory's rename);
//! 3. puts the successor in the handle; the old log is never unsealed after a commit.
//!
//! An append (or truncation, DeleteRecords, retention) that finds its log sealed waits for the
//! swap to end (`wait_out_move`) and runs again whole on the successor: a sealed log refuses
//! before anything changes, so nothing is applied twice. That wait is the only pause appends to
//! the partition see, one tail copy and three fsyncs long; other partitions never wait. On an
//! async worker the wait is a `block_in_place`, so the worker's other tasks move on meanwhile.
//! Reads need no retry: a sealed log serves the same offsets as its successor. A sync that fails
//! because the swap renamed the old directory under it is retried on the successor, which has
//! everything durable up to the final end before it is installed.
//!
//! Lock order: `swap` -> `last_snapshot` -> the old log's maintenance lock -> its `inner` lock
//! (the seal), and `producers` only briefly and never while waiting for `swap`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use super::error::PartitionError;
use super::producer_state::ProducerSnapshot;
use super::Partition;
use crate::log::{LogError, PartitionLog};

/// A copy of the partition being built in another log directory (Kafka's future replica):
/// where, how far it got, and whether it was called off.
#[derive(Debug)]
pub struct FutureReplica {
    log_dir: PathBuf,
    log_end: AtomicI64,
    size: AtomicU64,
    cancelled: AtomicBool,
}

impl FutureReplica {
    /// The log directory the copy is built in.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The copy's log end offset so far.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// The copy's size in bytes so far.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Records the copy's progress (DescribeLogDirs shows it).
    pub fn record_progress(&self, log_end: i64, size: u64) {
        self.log_end.store(log_end, Ordering::Release);
        self.size.store(size, Ordering::Release);
    }

    /// Whether the move was called off (another target, the partition deleted).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
}

/// Why the final step of a move did not put the copy in place.
#[derive(Debug)]
pub enum ReplaceFailed<E> {
    /// Before the commit point: the old log stays the partition's, unsealed.
    Kept(E),
    /// After the commit point, and the old directory could not be restored: the partition
    /// refuses changes until a restart finishes the swap from what is on disk.
    Broken(E),
}

/// What a finished swap replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogReplaced {
    /// The final log end offset of the old log, where the successor continues.
    pub log_end: i64,
}

/// An error that can say "the log was sealed by a move".
pub(super) trait SealedError {
    fn is_sealed(&self) -> bool;
}

impl SealedError for LogError {
    fn is_sealed(&self) -> bool {
        LogError::is_sealed(self)
    }
}

impl SealedError for PartitionError {
    fn is_sealed(&self) -> bool {
        PartitionError::is_sealed(self)
    }
}

impl Partition {
    /// Runs `op` on the current log, again on the successor if a move sealed it meanwhile.
    pub(super) fn on_current_log<T, E: SealedError>(
        &self,
        mut op: impl FnMut(&PartitionLog) -> Result<T, E>,
    ) -> Result<T, E> {
        loop {
            let log = self.log();
            match op(&log) {
                Err(e) if e.is_sealed() && self.wait_out_move(&log) => continue,
                result => return result,
            }
        }
    }

    /// After `log` refused as sealed: waits for the move that sealed it to end. True when the
    /// operation should run again (a successor is in place, or the seal was lifted).
    pub(super) fn wait_out_move(&self, log: &Arc<PartitionLog>) -> bool {
        if !Arc::ptr_eq(log, &self.log()) {
            return true;
        }
        if self.swapping.load(Ordering::Acquire) {
            self.block_on_swap();
            return true;
        }
        // No move holds it: lifted (run again), or sealed for good by a move that broke.
        !log.is_sealed()
    }

    /// Waits until no swap holds the partition, without stalling an async worker's other
    /// tasks.
    fn block_on_swap(&self) {
        let wait = || drop(self.swap.lock());
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// Fsyncs the current log up to `end` (`i64::MAX`: its log end); a sync that failed
    /// because a swap moved the files under it runs again on the successor.
    pub(super) fn sync_current(&self, end: i64) -> Result<(), LogError> {
        loop {
            let log = self.log();
            let target = if end == i64::MAX {
                log.log_end_offset()
            } else {
                end
            };
            match log.sync(target) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if self.swapping.load(Ordering::Acquire) {
                        self.block_on_swap();
                    }
                    if Arc::ptr_eq(&log, &self.log()) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// The copy being built in another log directory, if a move is under way.
    pub fn future(&self) -> Option<Arc<FutureReplica>> {
        self.future.lock().clone()
    }

    /// Registers a move to `log_dir`: None if one to that directory is already under way,
    /// else the new future replica (a move to another directory is called off, as Kafka
    /// drops a future replica whose directory changed).
    pub fn start_future(&self, log_dir: &Path) -> Option<Arc<FutureReplica>> {
        let mut slot = self.future.lock();
        if let Some(current) = slot.as_ref() {
            if current.log_dir == log_dir && !current.is_cancelled() {
                return None;
            }
            current.cancel();
        }
        let log = self.log();
        let future = Arc::new(FutureReplica {
            log_dir: log_dir.to_path_buf(),
            log_end: AtomicI64::new(log.log_start_offset()),
            size: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
        });
        *slot = Some(future.clone());
        Some(future)
    }

    /// Calls off the move under way, if any (its mover removes its copy).
    pub fn cancel_future(&self) {
        if let Some(current) = self.future.lock().take() {
            current.cancel();
        }
    }

    /// Forgets `future` once its mover is done with it (unless another move replaced it).
    pub fn end_future(&self, future: &Arc<FutureReplica>) {
        let mut slot = self.future.lock();
        if slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, future)) {
            *slot = None;
        }
    }

    /// How many truncations the partition has seen (a move compares before and after).
    pub fn truncations(&self) -> u64 {
        self.truncations.load(Ordering::Acquire)
    }

    /// The final step of a move (see the module docs): seals the current log, then `replace`
    /// gets it, its final log end offset and the producer state as of there, and returns the
    /// successor, durable and already under its final directory name, or says whether it got
    /// past the commit point. `replace` runs while appends to this partition wait: it must
    /// only finish a copy that is nearly complete. Blocking.
    pub fn replace_log<E: From<LogError>>(
        &self,
        replace: impl FnOnce(
            &PartitionLog,
            i64,
            ProducerSnapshot,
        ) -> Result<PartitionLog, ReplaceFailed<E>>,
    ) -> Result<LogReplaced, ReplaceFailed<E>> {
        let _swap = self.swap.lock();
        self.swapping.store(true, Ordering::Release);
        let result = self.swap_locked(replace);
        self.swapping.store(false, Ordering::Release);
        result
    }

    fn swap_locked<E: From<LogError>>(
        &self,
        replace: impl FnOnce(
            &PartitionLog,
            i64,
            ProducerSnapshot,
        ) -> Result<PartitionLog, ReplaceFailed<E>>,
    ) -> Result<LogReplaced, ReplaceFailed<E>> {
        // No producer snapshot lands in the old directory from here on.
        let mut last_snapshot = self.last_snapshot.lock();
        let old = self.log();
        let _maintenance = old.lock_maintenance();
        let log_end = old.seal().map_err(|e| ReplaceFailed::Kept(E::from(e)))?;
        // Appends are sealed out, so the state is the one as of `log_end`.
        let snapshot = self.producers.lock().snapshot(log_end);
        match replace(&old, log_end, snapshot) {
            Ok(successor) => {
                debug_assert_eq!(successor.log_end_offset(), log_end);
                successor.set_config(self.config().segment);
                self.producers.lock().set_dir(successor.dir());
                *self.log.write() = Arc::new(successor);
                *last_snapshot = log_end;
                Ok(LogReplaced { log_end })
            }
            Err(ReplaceFailed::Kept(e)) => {
                old.unseal();
                Err(ReplaceFailed::Kept(e))
            }
            Err(broken) => Err(broken),
        }
    }
}
