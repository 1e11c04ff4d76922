//! Where transaction markers go: a COMMIT or ABORT control batch into every partition of a
//! transaction, each durable before the transaction completes. On one node the coordinator
//! appends them to the local partitions itself (the data partitions through the partition
//! layer, `__consumer_offsets-N` through the group coordinator, which also completes the
//! transaction's offsets); in a cluster this seam becomes WriteTxnMarkers to the leaders.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use crate::coordinator::TxnResult;

/// One marker: whose transaction ended, how, and under which coordinator epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch (bumped at the end under transaction version 2).
    pub producer_epoch: i16,
    /// The transaction coordinator's epoch (the transaction log partition's leader epoch).
    pub coordinator_epoch: i32,
    /// Commit or abort.
    pub result: TxnResult,
}

/// Why a marker could not be written to a partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// The partition refused the marker or its log failed.
    #[error("writing the transaction marker to {topic}-{partition}: {reason}")]
    Failed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// What went wrong.
        reason: String,
    },
}

/// Resolves once every marker is durable.
pub type MarkersDurable = Pin<Box<dyn Future<Output = Result<(), MarkerError>> + Send>>;

/// Writes markers into partitions.
pub trait MarkerWriter: Send + Sync + 'static {
    /// Appends `marker` to each of `partitions` now (partitions of deleted topics are skipped,
    /// as Kafka drops their markers) and returns what resolves once they are all durable.
    fn write_markers(&self, partitions: &BTreeSet<(String, i32)>, marker: Marker)
        -> MarkersDurable;
}
