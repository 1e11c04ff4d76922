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
//! | `recovery-point` | one decimal offset R: everything below it is fsynced (see `recovery`) |
//!
//! Stray `*.tmp`, `*.deleted`, `*.cleaned`, `*.swap` files and index files without their `.log`
//! are deleted on open; other files are left alone.
//!
//! # Invariants
//!
//! - Offsets are assigned by the log: an append rewrites each batch's baseOffset to the log end
//!   offset, which then advances by `lastOffsetDelta + 1` per batch. Offsets are contiguous across
//!   batches and segments; there is never a gap below the log end offset, and an offset is never
//!   handed out twice, even across crashes.
//! - `log_start_offset <= high_watermark == log_end_offset` (single replica).
//! - Batches are never decoded or re-encoded on the append or fetch path; only header fields are
//!   rewritten (baseOffset and partitionLeaderEpoch are outside the CRC; LogAppendTime changes
//!   attributes and maxTimestamp and recomputes the CRC). Records are decoded only to answer
//!   ListOffsets by timestamp.
//! - Index files are caches: they are written whole from memory when a segment becomes immutable
//!   and durable, trusted on open only after a sanity check, and rebuilt by recovery.
//! - After a crash, recovery keeps exactly the longest prefix of whole, CRC-valid, contiguous
//!   batches; anything a `sync` acknowledged is in that prefix.
//!
//! # Thread-safety
//!
//! [`PartitionLog`] is `Send + Sync` with its own locks, so partitions never block each other;
//! see `partition` for the locking protocol (appends and reads share one short mutex; fsync runs
//! outside it with group commit).

pub mod batch;
mod error;
mod offset_index;
mod partition;
mod recovery;
mod segment;
mod time_index;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_util;

pub use batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, validate_batches, BatchError,
    BatchHeader,
};
pub use error::LogError;
pub use partition::{AppendInfo, AppendOptions, LogConfig, PartitionLog, ReadResult};
