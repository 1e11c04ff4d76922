//! Errors of the partition layer: Kafka's `LogValidator` refusals, idempotence refusals and the
//! log's own errors, each mapped to its Kafka code in `handlers::error_codes`.

use crate::log::{BatchError, ControlError, LogError};

use super::producer_state::ProducerError;

/// Why a partition refused an append or an administrative operation.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The bytes are not a valid record batch (CORRUPT_MESSAGE for a bad CRC, else
    /// INVALID_RECORD).
    #[error("{0}")]
    Batch(BatchError),
    /// A client sent more than one batch for one partition (INVALID_RECORD; Kafka's
    /// `ProduceRequest` rule from v3).
    #[error("Produce requests with version 3 and above must contain exactly one record batch per partition")]
    MultipleBatches,
    /// The batch as sent is larger than `max.message.bytes` (MESSAGE_TOO_LARGE).
    #[error("The record batch is {size} bytes, larger than the maximum of {max} bytes")]
    MessageTooLarge {
        /// The batch size in bytes.
        size: usize,
        /// The topic's `max.message.bytes`.
        max: usize,
    },
    /// A CreateTime timestamp outside `message.timestamp.{before,after}.max.ms`
    /// (INVALID_TIMESTAMP).
    #[error("Timestamp {timestamp} of message is out of range. The timestamp should be within [{min}, {max}]")]
    InvalidTimestamp {
        /// The offending timestamp.
        timestamp: i64,
        /// The earliest acceptable timestamp.
        min: i64,
        /// The latest acceptable timestamp.
        max: i64,
    },
    /// Records without a key on a compacted topic (INVALID_RECORD with KIP-467 record errors).
    /// The message is Kafka's `LogValidator.processRecordErrors` text.
    #[error(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        indexes.len(),
        indexes.iter().take(3).map(|i| format!("RecordError(batchIndex={i}, message='Compacted topic cannot accept message without key in topic partition {topic}-{partition}.')")).collect::<Vec<_>>().join(", ")
    )]
    KeylessRecordOnCompactedTopic {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The index in the batch of every keyless record.
        indexes: Vec<i32>,
    },
    /// A batch the record decoder cannot read, found while checking keys (INVALID_RECORD).
    #[error("undecodable record batch: {0}")]
    UndecodableBatch(String),
    /// An idempotent batch refused by the producer state.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// A transactional batch that would open a transaction here without a verification
    /// ([`crate::partition::VerificationGuard`]) matching the partition's (INVALID_TXN_STATE;
    /// Kafka's "Record was not part of an ongoing transaction").
    #[error("record of producer {producer_id} was not part of an ongoing transaction")]
    InvalidTxnState {
        /// The producer.
        producer_id: i64,
    },
    /// A coordinator's control batch that is not a transaction marker, or a marker that cannot
    /// be encoded (INVALID_RECORD).
    #[error(transparent)]
    Control(#[from] ControlError),
    /// An operation the topic's policy forbids, e.g. DeleteRecords on a compact-only topic
    /// (POLICY_VIOLATION).
    #[error("{0}")]
    PolicyViolation(String),
    /// The log failed (storage, range, closed).
    #[error(transparent)]
    Log(#[from] LogError),
}

impl From<BatchError> for PartitionError {
    fn from(e: BatchError) -> PartitionError {
        PartitionError::Batch(e)
    }
}

impl PartitionError {
    /// KIP-467: the index in its batch and the message of every record this error refuses
    /// (empty when the error is about the batch as a whole).
    pub fn record_errors(&self) -> Vec<(i32, String)> {
        match self {
            PartitionError::KeylessRecordOnCompactedTopic {
                topic,
                partition,
                indexes,
            } => indexes
                .iter()
                .map(|&i| {
                    (
                        i,
                        format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}."),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the partition's log refused because a replica move sealed it.
    pub fn is_sealed(&self) -> bool {
        matches!(self, PartitionError::Log(e) if e.is_sealed())
    }

    /// Whether a transaction marker was refused as stale: a newer producer epoch or coordinator
    /// epoch already wrote here, so the marker has nothing left to end.
    pub fn is_fenced_marker(&self) -> bool {
        matches!(
            self,
            PartitionError::Producer(
                ProducerError::InvalidProducerEpoch { .. }
                    | ProducerError::CoordinatorFenced { .. }
            )
        )
    }
}
