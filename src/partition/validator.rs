//! What Kafka's `LogValidator` checks before a leader appends a client's batch: one batch per
//! partition, its size against `max.message.bytes`, CreateTime timestamps against the topic's
//! bounds, keys on compacted topics, and the batch itself (structure, CRC, record count).
//!
//! Checks run in this order, the order clients have always seen their errors in: the header,
//! the batch count, the size, timestamps, keys, then the full validation (CRC). Records are
//! decoded only on compacted topics, to find keyless ones. A client may not write control
//! batches (only coordinators write transaction markers). Coordinator appends (the group log,
//! transaction markers) skip the client rules: the coordinator writes its own, well-formed
//! records.

use bytes::Bytes;

use crate::log::{validate_batches, BatchError, BatchHeader, ValidBatches};
use crate::topics::config::{TimestampType, TopicConfig};

use super::error::PartitionError;
use super::AppendOrigin;

/// Validates `records` for an append as leader; returns the validated batches.
pub fn validate(
    records: &[u8],
    config: &TopicConfig,
    origin: AppendOrigin,
    now_ms: i64,
    topic: &str,
    partition: i32,
) -> Result<ValidBatches, PartitionError> {
    if origin == AppendOrigin::Client {
        let header = BatchHeader::parse(records)?;
        if header.total_size() < records.len() {
            return Err(PartitionError::MultipleBatches);
        }
        if header.is_control() {
            return Err(BatchError::InvalidRecord(format!(
                "Clients are not allowed to write control records in topic partition {topic}-{partition}"
            ))
            .into());
        }
        if records.len() > config.max_message_bytes {
            return Err(PartitionError::MessageTooLarge {
                size: records.len(),
                max: config.max_message_bytes,
            });
        }
        if config.timestamp_type == TimestampType::CreateTime {
            check_timestamps(&header, config, now_ms)?;
        }
        if config.cleanup_policy.compact {
            check_keys(records, topic, partition)?;
        }
    }
    Ok(validate_batches(records)?)
}

/// Kafka's `message.timestamp.before.max.ms` / `after.max.ms` (CreateTime topics only): the
/// batch header's first and largest timestamps bound its records' timestamps.
fn check_timestamps(
    header: &BatchHeader,
    config: &TopicConfig,
    now: i64,
) -> Result<(), PartitionError> {
    let before = config.message_timestamp_before_max_ms;
    let after = config.message_timestamp_after_max_ms;
    let too_old = header.base_timestamp >= 0 && now.saturating_sub(header.base_timestamp) > before;
    let too_new = header.max_timestamp >= 0 && header.max_timestamp.saturating_sub(now) > after;
    if too_old || too_new {
        return Err(PartitionError::InvalidTimestamp {
            timestamp: if too_new {
                header.max_timestamp
            } else {
                header.base_timestamp
            },
            min: now.saturating_sub(before),
            max: now.saturating_add(after),
        });
    }
    Ok(())
}

/// A compacted topic keeps the last record per key, so a record without one is refused
/// (KIP-467). Only compacted topics pay for decoding the batch here.
fn check_keys(records: &[u8], topic: &str, partition: i32) -> Result<(), PartitionError> {
    let mut buf = Bytes::copy_from_slice(records);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)
        .map_err(|e| PartitionError::UndecodableBatch(e.to_string()))?;
    let indexes: Vec<i32> = set
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| i as i32)
        .collect();
    if !indexes.is_empty() {
        return Err(PartitionError::KeylessRecordOnCompactedTopic {
            topic: topic.to_string(),
            partition,
            indexes,
        });
    }
    Ok(())
}
