//! Moving a partition to another log directory (AlterReplicaLogDirs; Kafka's future replica
//! and `ReplicaAlterLogDirsThread`), crash-safe at every step.
//!
//! # The sequence
//!
//! 1. The partition registers the move (`Partition::start_future`) and its log stops being
//!    cleaned (`PartitionLog::pause_cleaning`, waiting for a round under way).
//! 2. An empty copy `<topic>-<partition>.<id>-future` is created in the target directory,
//!    starting at the first batch the source holds, and filled batch by batch with the source's
//!    batches, offsets, epochs and timestamps kept (a follower append), each chunk's aborted
//!    transactions entered in its transaction index. Appends to the partition go on.
//!    DescribeLogDirs shows the copy's size and lag meanwhile.
//! 3. Once the copy has caught up, it is fsynced, and the final step runs under the partition's
//!    swap (`Partition::replace_log`, appends to this partition waiting): the source is sealed,
//!    the last batches copied, the log start offset carried over (DeleteRecords, retention),
//!    the copy fsynced with the producer state as of its end, then
//!    - the source `<topic>-<partition>` is renamed `<topic>-<partition>.<id>-delete` and its
//!      directory fsynced: **the commit point**;
//!    - the copy is renamed `<topic>-<partition>` and its directory fsynced;
//!    - the copy takes the source's place in the partition, and appends resume there.
//! 4. The `-delete` directory is removed.
//!
//! A kill -9 (or power loss) anywhere leaves one copy in use: before the commit the source
//! holds every acknowledged record and the start discards the unfinished copy (and starts the
//! move over); after it the copy holds every record the source had (it was durable first) and
//! the start finishes the rename (`LogDirs::scan`). No append reaches the copy before it is the
//! partition's, and none reaches the source after it is sealed.
//!
//! A move starts over (a new copy) if the source's log start passes what was copied or the
//! partition is truncated meanwhile; it stops, removing its copy, when called off (another
//! target, the partition deleted) or at shutdown, and the start resumes it from its copy's
//! directory name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    delete_dir_name, discard, future_dir_name, new_move_id, partition_dir_name, remove_dir,
    LogDirError,
};
use crate::clock::SharedClock;
use crate::log::files::sync_dir;
use crate::log::{AppendOptions, LogError, PartitionLog};
use crate::partition::{FutureReplica, Partition, ProducerSnapshot, ReplaceFailed};
use crate::tasks::{Background, Tasks};

/// Bytes read from the source per step.
const CHUNK_BYTES: usize = 1 << 20;
/// Bytes copied between two fsyncs of the copy, so the final step's fsync is short.
const SYNC_EVERY_BYTES: u64 = 64 << 20;
/// Attempts before a move that keeps having to start over gives up.
const MAX_ATTEMPTS: usize = 5;

/// Why a move did not finish.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// Reading the source or writing the copy failed.
    #[error("partition log: {0}")]
    Log(#[from] LogError),
    /// Creating, renaming or removing a directory failed.
    #[error("{0}")]
    Dir(#[from] LogDirError),
    /// Another target was asked for, or the partition was deleted.
    #[error("the move was called off")]
    Cancelled,
    /// The broker is shutting down; the next start resumes the move.
    #[error("the broker is shutting down")]
    Stopped,
    /// The source changed under the copy (log start passed it, truncation); a new copy starts.
    #[error("the copy must start over: {0}")]
    StartOver(String),
    /// The move passed its commit point and could not finish; the partition is unusable until
    /// a restart finishes the swap from what is on disk.
    #[error("the move broke after its commit point: {0}")]
    Broken(String),
    /// A test failpoint stopped the sequence where a crash would.
    #[cfg(test)]
    #[error("simulated crash")]
    Crashed,
}

#[cfg(test)]
thread_local! {
    /// Test failpoint: the sequence stops as a crash would right after step N of the final
    /// swap (1: copy durable, 2: source renamed, 3: copy renamed).
    pub static CRASH_AFTER: std::cell::Cell<Option<u8>> = const { std::cell::Cell::new(None) };
}

fn crash_point(_step: u8) -> Result<(), MoveError> {
    #[cfg(test)]
    if CRASH_AFTER.with(|c| c.get()) == Some(_step) {
        return Err(MoveError::Crashed);
    }
    Ok(())
}

/// Starts moving `partition` to the log directory `log_dir` in the background (a tracked
/// blocking task): nothing if it is there already (a move elsewhere is called off) or a move
/// there is under way. Returns at once.
pub fn alter_log_dir(
    partition: &Arc<Partition>,
    log_dir: &Path,
    tasks: &Tasks,
    clock: &SharedClock,
) {
    let home = partition.dir();
    if home.parent() == Some(log_dir) {
        partition.cancel_future();
        return;
    }
    let Some(future) = partition.start_future(log_dir) else {
        return;
    };
    let partition = partition.clone();
    let (log_dir, clock) = (log_dir.to_path_buf(), clock.clone());
    let shutdown = tasks.shutdown_signal();
    tasks.spawn_blocking(
        "replica move",
        Box::new(move || {
            let stop = || *shutdown.borrow();
            match run_move(&partition, &future, &log_dir, &stop, &clock) {
                Ok(()) => {}
                Err(MoveError::Cancelled) => {
                    tracing::info!(topic = %partition.topic(), partition = partition.index(), to = %log_dir.display(), "partition move called off")
                }
                Err(MoveError::Stopped) => {
                    tracing::info!(topic = %partition.topic(), partition = partition.index(), to = %log_dir.display(), "partition move stopped by shutdown; resumed at the next start")
                }
                Err(e) => {
                    tracing::error!(topic = %partition.topic(), partition = partition.index(), to = %log_dir.display(), error = %e, "partition move failed")
                }
            }
        }),
    );
}

/// Runs a registered move to its end (see the module docs). Blocking.
pub fn run_move(
    partition: &Arc<Partition>,
    future: &Arc<FutureReplica>,
    log_dir: &Path,
    stop: &dyn Fn() -> bool,
    clock: &SharedClock,
) -> Result<(), MoveError> {
    let paused = partition.log();
    paused.pause_cleaning();
    let mut result = Err(MoveError::StartOver("not started".into()));
    for attempt in 1..=MAX_ATTEMPTS {
        let id = new_move_id();
        let copy_dir = log_dir.join(future_dir_name(partition.topic(), partition.index(), &id));
        result = attempt_move(partition, future, &copy_dir, &id, stop, clock);
        #[cfg(test)]
        if matches!(result, Err(MoveError::Crashed)) {
            return result;
        }
        if !matches!(
            result,
            Ok(()) | Err(MoveError::Broken(_)) | Err(MoveError::Stopped)
        ) {
            // Not committed: the copy goes. At shutdown it stays, so the next start finds the
            // move and starts it over.
            if let Err(e) = discard(&copy_dir, partition.topic(), partition.index()) {
                tracing::warn!(dir = %copy_dir.display(), error = %e, "could not remove an unfinished partition copy");
            }
        }
        match &result {
            Err(MoveError::StartOver(reason)) => {
                tracing::info!(topic = %partition.topic(), partition = partition.index(), attempt, reason = %reason, "partition move starts over");
            }
            _ => break,
        }
    }
    paused.resume_cleaning();
    partition.end_future(future);
    result
}

/// One attempt: copy into `copy_dir`, then swap.
fn attempt_move(
    partition: &Arc<Partition>,
    future: &Arc<FutureReplica>,
    copy_dir: &Path,
    id: &str,
    stop: &dyn Fn() -> bool,
    clock: &SharedClock,
) -> Result<(), MoveError> {
    let check = || -> Result<(), MoveError> {
        if future.is_cancelled() {
            return Err(MoveError::Cancelled);
        }
        if stop() {
            return Err(MoveError::Stopped);
        }
        Ok(())
    };
    check()?;
    let truncations = partition.truncations();
    let source = partition.log();
    let start = source.log_start_offset();
    // The copy begins with the source's first batch, which may begin before the log start
    // (DeleteRecords moves it inside a batch); the start offset itself is carried over at the
    // swap.
    let first = source.read(start, 1, true)?;
    let base = first_base_offset(&first.records).unwrap_or(start);
    let copy = PartitionLog::create_at(copy_dir, partition.config().segment, clock.now_ms(), base)?;
    let mut unsynced = 0u64;
    loop {
        check()?;
        let source = partition.log();
        let end = source.log_end_offset();
        let copied = copy_chunk(&source, &copy, clock)?;
        unsynced += copied;
        future.record_progress(copy.log_end_offset(), copy.size_bytes());
        if unsynced >= SYNC_EVERY_BYTES {
            copy.sync(copy.log_end_offset())?;
            unsynced = 0;
        }
        if copied == 0 || copy.log_end_offset() >= end {
            break;
        }
    }
    copy.sync(copy.log_end_offset())?;
    let target = copy_dir
        .parent()
        .ok_or_else(|| MoveError::Broken(format!("{} has no parent", copy_dir.display())))?
        .to_path_buf();
    let (topic, index) = (partition.topic().to_string(), partition.index());
    let mut deleted: Option<PathBuf> = None;
    let replaced = partition.replace_log(|old, log_end, snapshot| {
        finish(FinalStep {
            partition,
            future,
            truncations,
            old,
            log_end,
            snapshot,
            copy,
            copy_dir,
            target: &target,
            name: partition_dir_name(&topic, index),
            id,
            clock,
            deleted: &mut deleted,
        })
    });
    match replaced {
        Ok(r) => {
            future.record_progress(r.log_end, partition.size_bytes());
            tracing::info!(topic = %topic, partition = index, to = %target.display(), log_end = r.log_end, "partition moved to another log directory");
            // The source is out of use since the commit; a crash before this line leaves it to
            // the next start.
            if let Some(dir) = deleted {
                remove_dir(&dir)?;
            }
            Ok(())
        }
        Err(ReplaceFailed::Kept(e)) => Err(e),
        Err(ReplaceFailed::Broken(e)) => Err(match e {
            #[cfg(test)]
            MoveError::Crashed => e,
            MoveError::Broken(_) => e,
            other => MoveError::Broken(other.to_string()),
        }),
    }
}

/// Everything the final step needs.
struct FinalStep<'a> {
    partition: &'a Partition,
    future: &'a FutureReplica,
    truncations: u64,
    old: &'a PartitionLog,
    log_end: i64,
    snapshot: ProducerSnapshot,
    copy: PartitionLog,
    copy_dir: &'a Path,
    target: &'a Path,
    name: String,
    id: &'a str,
    clock: &'a SharedClock,
    /// Where the committed source went.
    deleted: &'a mut Option<PathBuf>,
}

/// The final step under the partition's swap: finish the copy, make it durable, commit, rename
/// it into place.
fn finish(step: FinalStep<'_>) -> Result<PartitionLog, ReplaceFailed<MoveError>> {
    let kept = ReplaceFailed::Kept;
    let FinalStep {
        partition,
        future,
        truncations,
        old,
        log_end,
        snapshot,
        copy,
        copy_dir,
        target,
        name,
        id,
        clock,
        deleted: deleted_out,
    } = step;
    if future.is_cancelled() {
        return Err(kept(MoveError::Cancelled));
    }
    if partition.truncations() != truncations {
        return Err(kept(MoveError::StartOver(
            "the partition was truncated".into(),
        )));
    }
    while copy.log_end_offset() < log_end {
        if copy_chunk(old, &copy, clock).map_err(kept)? == 0 {
            break;
        }
    }
    if copy.log_end_offset() != log_end {
        return Err(kept(MoveError::StartOver(format!(
            "the copy ends at {}, the source at {log_end}",
            copy.log_end_offset()
        ))));
    }
    let start = old.log_start_offset();
    if start > copy.log_start_offset() {
        copy.delete_records_before(start)
            .map_err(|e| kept(e.into()))?;
    }
    copy.sync(log_end).map_err(|e| kept(e.into()))?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| kept(LogDirError::io(&path, e).into())
    };
    snapshot.in_dir(copy_dir).write().map_err(io(copy_dir))?;
    sync_dir(copy_dir).map_err(io(copy_dir))?;
    crash_point(1).map_err(kept)?;

    // The commit point: the source leaves its name, durably.
    let source = old.dir().to_path_buf();
    let source_parent = source
        .parent()
        .ok_or_else(|| {
            kept(MoveError::Broken(format!(
                "{} has no parent",
                source.display()
            )))
        })?
        .to_path_buf();
    let deleted = source_parent.join(delete_dir_name(partition.topic(), partition.index(), id));
    std::fs::rename(&source, &deleted).map_err(io(&source))?;
    if let Err(e) = sync_dir(&source_parent) {
        return Err(roll_back(&deleted, &source, &source_parent, e));
    }
    crash_point(2).map_err(ReplaceFailed::Broken)?;
    let final_dir = target.join(&name);
    if let Err(e) = std::fs::rename(copy_dir, &final_dir) {
        return Err(roll_back(&deleted, &source, &source_parent, e));
    }
    if let Err(e) = sync_dir(target) {
        // The copy has its final name in memory at least; only a restart can tell whether the
        // rename is durable, and the start handles both cases.
        return Err(ReplaceFailed::Broken(LogDirError::io(target, e).into()));
    }
    *deleted_out = Some(deleted);
    crash_point(3).map_err(ReplaceFailed::Broken)?;
    Ok(copy.relocate(&final_dir))
}

/// Undoes the commit rename after a later step failed: the source takes its name back and
/// stays the partition's, or, if even that fails, the partition is broken until a restart
/// (which finishes the move from the disk).
fn roll_back(
    deleted: &Path,
    source: &Path,
    parent: &Path,
    cause: std::io::Error,
) -> ReplaceFailed<MoveError> {
    let restored = std::fs::rename(deleted, source).and_then(|()| sync_dir(parent));
    match restored {
        Ok(()) => ReplaceFailed::Kept(LogDirError::io(source, cause).into()),
        Err(e) => {
            tracing::error!(dir = %source.display(), error = %e, cause = %cause, "a partition move failed after its commit and could not be undone; the partition refuses writes until a restart finishes the move");
            ReplaceFailed::Broken(LogDirError::io(source, cause).into())
        }
    }
}

/// Copies the source's batches from the copy's log end on (one read), with the aborted
/// transactions whose markers they hold; returns the bytes copied (0: caught up). A source
/// whose log start passed the copy's end makes the move start over.
fn copy_chunk(
    source: &PartitionLog,
    copy: &PartitionLog,
    clock: &SharedClock,
) -> Result<u64, MoveError> {
    let from = copy.log_end_offset();
    let read = match source.read(from, CHUNK_BYTES, true) {
        Ok(r) => r,
        // An empty copy begins at the source's first batch, which may start below the log
        // start (DeleteRecords moves it inside a batch): read from the start.
        Err(LogError::OffsetOutOfRange { start, .. }) if from < start && copy.size_bytes() == 0 => {
            source.read(start, CHUNK_BYTES, true)?
        }
        Err(LogError::OffsetOutOfRange { start, .. }) if from < start => {
            return Err(MoveError::StartOver(format!(
                "the source's log start {start} passed the copy's end {from}"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if read.records.is_empty() {
        return Ok(0);
    }
    let mut batches = read.records.to_vec();
    let info = copy.append(&mut batches, &AppendOptions::follower(clock.now_ms()))?;
    for txn in source.aborted_txns_between(from, info.last_offset + 1) {
        copy.append_aborted_txn(txn)?;
    }
    Ok(batches.len() as u64)
}

/// The base offset of the first of `records` (whole stored batches), if any.
fn first_base_offset(records: &[u8]) -> Option<i64> {
    crate::log::BatchHeader::parse(records)
        .ok()
        .map(|h| h.base_offset)
}

#[cfg(test)]
mod tests;
