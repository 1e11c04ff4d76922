//! Errors of the partition log.
//!
//! One enum for everything `PartitionLog` can report; batch-level problems keep their own
//! [`BatchError`] inside [`LogError::Batch`] so the produce handler can tell CORRUPT_MESSAGE from
//! INVALID_RECORD. Every message carries the values that caused it.

use super::batch::BatchError;

/// Why a partition log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading, writing, syncing or listing one of the partition's files failed.
    #[error("log i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// The requested offset is below the log start offset or above the log end offset.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset that was asked for.
        offset: i64,
        /// The log start offset at the time of the request.
        start: i64,
        /// The log end offset at the time of the request.
        end: i64,
    },

    /// A follower append whose offsets do not continue the log: a batch starting before the log
    /// end, or before the previous batch's end (Kafka's `UnexpectedAppendOffsetException`).
    #[error("batch at offset {offset} where at least {expected} was expected")]
    OffsetsOutOfOrder {
        /// The batch's base offset.
        offset: i64,
        /// The smallest offset it could have had.
        expected: i64,
    },

    /// The bytes handed to `append` are not a valid sequence of v2 record batches.
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),

    /// One append is larger than a whole segment may hold (`segment.bytes`).
    #[error("append of {size} bytes exceeds segment.bytes {max}")]
    RecordBatchTooLarge {
        /// Size in bytes of the rejected append.
        size: usize,
        /// The segment size limit in force.
        max: u64,
    },

    /// A file of the log holds data that cannot be interpreted (stored batch undecodable, bad name).
    #[error("corrupt log data: {0}")]
    Corrupt(String),

    /// An earlier fsync failed, so the kernel may have dropped dirty pages: durability of
    /// anything not yet synced can no longer be promised until the log is reopened.
    #[error("log is unusable after a failed fsync: {0}")]
    SyncFailed(String),

    /// The log was sealed by a move of its partition to another log directory: it serves reads
    /// but no change; its successor, in the new directory, takes them.
    #[error("log in {dir} is sealed: its partition moved to another log directory")]
    Sealed {
        /// The partition directory.
        dir: String,
    },

    /// The log was closed or deleted; it accepts no more appends.
    #[error("log in {dir} is closed")]
    Closed {
        /// The partition directory.
        dir: String,
    },
}

impl LogError {
    /// Whether the log refused because a replica move sealed it (see [`LogError::Sealed`]).
    pub fn is_sealed(&self) -> bool {
        matches!(self, LogError::Sealed { .. })
    }
}
