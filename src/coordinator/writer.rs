//! The partition-writer seam (Kafka's `PartitionWriter`): where a coordinator's records go and
//! when they count as committed. On one node that is a local partition, committed once fsynced;
//! in a cluster it will be a replicated partition, committed once below the high watermark.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use super::{CoordinatorError, TxnResult};
use crate::partition::{AppendOrigin, FetchParams, Isolation, Partition, TxnMarker};

/// Where an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset after the last record.
    pub end_offset: i64,
    /// Whether the log rolled a segment (time for a snapshot).
    pub rolled: bool,
}

/// A future that resolves once records are committed.
pub type Committed = Pin<Box<dyn Future<Output = Result<(), CoordinatorError>> + Send>>;

/// A coordinator's log partition.
pub trait PartitionWriter: Send + Sync + std::fmt::Debug + 'static {
    /// Appends one batch of records as the leader (page cache; offsets assigned by the log).
    fn append(&self, batch: &[u8]) -> Result<Appended, CoordinatorError>;
    /// Appends a transaction marker (a control batch) as the leader.
    fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        result: TxnResult,
    ) -> Result<Appended, CoordinatorError>;
    /// Resolves once everything below `end` is committed.
    fn committed(&self, end: i64) -> Committed;
    /// Blocks until everything appended so far is committed (snapshots, the periodic flush).
    fn flush(&self) -> Result<(), CoordinatorError>;
    /// Whole batches from `offset`, about `max_bytes` of them (at least one), for replay.
    fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, CoordinatorError>;
    /// The first offset still in the log.
    fn log_start_offset(&self) -> i64;
    /// The offset the next record gets.
    fn log_end_offset(&self) -> i64;
    /// Deletes the segments wholly below `offset` (a snapshot covers them); returns how many.
    /// Blocking.
    fn delete_before(&self, offset: i64) -> Result<usize, CoordinatorError>;
    /// The directory the partition's files (and the coordinator's snapshots) live in.
    fn dir(&self) -> PathBuf;
    /// The bytes of the partition's segments (DescribeLogDirs).
    fn size_bytes(&self) -> u64;
    /// Flushes and closes the log (clean shutdown). Blocking.
    fn close(&self) -> Result<(), CoordinatorError>;
}

/// A partition of this node, committed once fsynced (group commit with every other waiter).
#[derive(Debug)]
pub struct LocalWriter {
    partition: Arc<Partition>,
}

impl LocalWriter {
    /// Writes to `partition`.
    pub fn new(partition: Arc<Partition>) -> LocalWriter {
        LocalWriter { partition }
    }
}

fn storage(e: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::Storage(e.to_string())
}

impl PartitionWriter for LocalWriter {
    fn append(&self, batch: &[u8]) -> Result<Appended, CoordinatorError> {
        let info = self
            .partition
            .append_as_leader(batch, AppendOrigin::Coordinator)
            .map_err(storage)?;
        Ok(Appended {
            base_offset: info.base_offset,
            end_offset: info.last_offset + 1,
            rolled: info.rolled,
        })
    }

    fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        result: TxnResult,
    ) -> Result<Appended, CoordinatorError> {
        let info = self
            .partition
            .write_txn_marker(TxnMarker {
                producer_id,
                producer_epoch,
                coordinator_epoch,
                result,
            })
            .map_err(storage)?;
        Ok(Appended {
            base_offset: info.base_offset,
            end_offset: info.last_offset + 1,
            rolled: info.rolled,
        })
    }

    fn committed(&self, end: i64) -> Committed {
        let partition = self.partition.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || partition.wait_durable(end))
                .await
                .map_err(|e| CoordinatorError::Storage(format!("fsync task failed: {e}")))?
                .map_err(storage)
        })
    }

    fn flush(&self) -> Result<(), CoordinatorError> {
        self.partition.flush().map_err(storage)
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, CoordinatorError> {
        self.partition
            .read(FetchParams {
                offset,
                max_bytes,
                min_one_batch: true,
                isolation: Isolation::LogEnd,
            })
            .map(|r| r.records)
            .map_err(storage)
    }

    fn log_start_offset(&self) -> i64 {
        self.partition.log_start_offset()
    }

    fn log_end_offset(&self) -> i64 {
        self.partition.log_end_offset()
    }

    fn delete_before(&self, offset: i64) -> Result<usize, CoordinatorError> {
        self.partition
            .delete_segments_before(offset)
            .map_err(storage)
    }

    fn dir(&self) -> PathBuf {
        self.partition.dir()
    }

    fn size_bytes(&self) -> u64 {
        self.partition.size_bytes()
    }

    fn close(&self) -> Result<(), CoordinatorError> {
        self.partition.close().map_err(storage)
    }
}
