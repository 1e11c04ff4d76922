//! Rivulet's storage core: the durable, segmented log of one partition, in Kafka's on-disk format.
//!
//! Synchronous `std::fs` code with no async runtime inside; the broker calls it from blocking
//! contexts. Everything here is a module-level contract:
//!
//! # Files (one directory per partition)
//!
//! | file | format |
//! | --- | --- |
//! | `<base>.log` | v2 record batches back to back, byte for byte as appended (see [`batch`]); `<base>` is the segment's first offset zero-padded to 20 digits |
//! | `<base>.index` | 8-byte entries: relative offset u32 BE, file position u32 BE (sparse; see `offset_index`) |
//! | `<base>.timeindex` | 12-byte entries: timestamp i64 BE, relative offset u32 BE (sparse; see `time_index`) |
//! | `<base>.txnindex` | 34-byte entries, one per aborted transaction whose ABORT marker is in the segment: version i16 BE (0), producer id i64 BE, first offset i64 BE, last offset (the marker) i64 BE, last stable offset i64 BE; exists only while the segment has entries (see `txn_index`) |
//! | `recovery-point` | one decimal offset R: everything below it is fsynced (see `recovery`) |
//! | `log-start-offset` | one decimal offset: the log start DeleteRecords moved (absent until then) |
//! | `cleaner-offset-checkpoint` | one decimal offset: the cleaner's first dirty offset (see `cleaning`) |
//! | `leader-epoch-checkpoint` | Kafka's text format: version, count, `epoch start-offset` lines (see `epoch_cache`) |
//!
//! Kafka's transient suffixes are understood on open: `*.tmp` and `*.deleted` files are deleted,
//! `*.cleaned` ones too (a cleaning that never swapped), and `*.swap` files complete their swap
//! (see `recovery`). Index files without their `.log` are deleted; other files are left alone.
//!
//! # Invariants
//!
//! - Offsets strictly increase across batches and segments. A leader append assigns them from
//!   the log end offset, which then advances by `lastOffsetDelta + 1` per batch, so a log only
//!   leaders wrote has no gap; a follower append (or, later, the cleaner) keeps the offsets it is
//!   given, and gaps between them are legal (compaction removes records, never moves offsets). An
//!   offset is never handed out twice, even across crashes.
//! - `log_start_offset <= log_end_offset`. The high watermark and last stable offset are the
//!   partition layer's (`crate::partition`), which reads up to them with `read_bounded`.
//! - Batches are never decoded or re-encoded on the append or fetch path; only header fields are
//!   rewritten (baseOffset and partitionLeaderEpoch are outside the CRC; LogAppendTime changes
//!   attributes and maxTimestamp and recomputes the CRC). Records are decoded only to answer
//!   ListOffsets by timestamp.
//! - The offset and time index files are caches: they are written whole from memory when a
//!   segment becomes immutable and durable, trusted on open only after a sanity check, and
//!   rebuilt by recovery. The transaction index is not (a segment alone cannot tell where an
//!   aborted transaction began): its entries are appended with their markers and fsynced with the
//!   segment, cut to the segment on open, and the ones a crash lost are rebuilt by the partition
//!   layer's producer-state replay ([`PartitionLog::replace_aborted_txns`]).
//! - Control batches (transaction markers, see [`control`]) are stored like any batch; the log
//!   never interprets them, the partition layer does.
//! - After a crash, recovery keeps exactly the longest prefix of whole, CRC-valid batches with
//!   increasing offsets; anything a `sync` acknowledged is in that prefix.
//! - A log a replica move sealed ([`PartitionLog::seal`]) never changes again (appends,
//!   truncation, DeleteRecords, retention and cleaning refuse with `LogError::Sealed`) unless the
//!   move lifts the seal before its commit point; reads and syncs go on. A move's copy is made
//!   with [`PartitionLog::create_at`], filled by follower appends, and renamed into place with
//!   [`PartitionLog::relocate`] (only paths change: open files follow a directory rename).
//!
//! # Thread-safety
//!
//! [`PartitionLog`] is `Send + Sync` with its own locks, so partitions never block each other;
//! see `partition` for the locking protocol (appends and reads share one short mutex; fsync runs
//! outside it with group commit).

pub mod batch;
mod cleaning;
pub mod control;
mod epoch_cache;
mod error;
pub mod files;
mod offset_index;
mod partition;
pub mod records;
mod recovery;
mod segment;
mod time_index;
mod txn_index;

#[cfg(test)]
mod proptests;

pub use batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, validate_batches,
    validate_stored_batches, BatchError, BatchHeader, ValidBatches,
};
pub use cleaning::{
    read_cleaner_checkpoint, write_cleaner_checkpoint, CleanedSegment, CleaningGuard,
    SegmentBatches, SegmentSnapshot, CLEANER_CHECKPOINT_FILE,
};
#[cfg(test)]
pub use cleaning::{reset_steps, CRASH_BEFORE_STEP};
pub use control::{ControlError, EndTxnMarker, TxnResult};
pub use epoch_cache::EpochEntry;
pub use error::LogError;
pub use files::write_atomically;
pub use partition::{
    AppendInfo, AppendOptions, AssignOffsets, LogConfig, PartitionLog, ReadResult,
};
pub use txn_index::AbortedTxn;
