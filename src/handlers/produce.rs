//! Produce (API 0): validate each partition's record batch, append it (offsets assigned by
//! rewriting the batch header in place, records never decoded), and acknowledge per `acks`.
//!
//! Appends happen before the handler returns, so pipelined produces on one connection land in
//! request order. With acks=all the reply is deferred until the partitions are fsynced; the
//! fsync runs on the blocking pool and is shared with concurrent producers (group commit).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::{error_codes, Reply};
use crate::broker::{now_ms, Broker};
use crate::log::{batch, AppendOptions};
use crate::metadata::{Partition, Topic};
use crate::txn::{ProducerBatch, ProducerStateManager, Verdict};

/// A partition that was appended to and must be durable before an acks=all reply.
struct Pending {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    end_offset: i64,
}

/// Handles a Produce request.
pub fn handle(broker: &Broker, req: ProduceRequest, version: i16) -> Reply {
    let acks = req.acks;
    let mut pending = Vec::new();
    let mut any_error = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (ti, td) in req.topic_data.into_iter().enumerate() {
        let topic = if version >= 13 {
            broker.metadata.get_by_id(&td.topic_id)
        } else {
            broker.metadata.get(&td.name)
        };
        let unknown_code = if version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let mut partition_responses = Vec::with_capacity(td.partition_data.len());
        for (pi, pd) in td.partition_data.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1);
            let outcome = match &topic {
                _ if !matches!(acks, -1..=1) => {
                    Err(Failure::code(ResponseError::InvalidRequiredAcks))
                }
                None => Err(Failure::code(unknown_code)),
                Some(topic) => match topic.partition(pd.index) {
                    None => Err(Failure::code(ResponseError::UnknownTopicOrPartition)),
                    Some(partition) => append(broker, topic, &partition, pd.records.as_deref())
                        .map(|info| (partition, info)),
                },
            };
            match outcome {
                Ok((partition, info)) => {
                    resp.base_offset = info.base_offset;
                    resp.log_append_time_ms = info.log_append_time_ms;
                    resp.log_start_offset = info.log_start_offset;
                    partition.appended.notify_waiters();
                    if acks == -1 {
                        pending.push(Pending {
                            topic_index: ti,
                            partition_index: pi,
                            partition,
                            end_offset: info.last_offset + 1,
                        });
                    }
                }
                Err(failure) => {
                    any_error = true;
                    resp.error_code = failure.code.code();
                    if version >= 8 {
                        resp.error_message = failure.message.map(StrBytes::from_string);
                        if matches!(
                            failure.code,
                            ResponseError::InvalidRecord
                                | ResponseError::CorruptMessage
                                | ResponseError::InvalidTimestamp
                        ) {
                            resp.record_errors = vec![BatchIndexAndErrorMessage::default()];
                        }
                    }
                }
            }
            partition_responses.push(resp);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(td.name)
                .with_topic_id(td.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    let response = ProduceResponse::default().with_responses(responses);
    match acks {
        0 if any_error => Reply::Close,
        0 => Reply::Nothing,
        -1 if !pending.is_empty() => Reply::Later(Box::pin(sync_then_reply(response, pending))),
        _ => Reply::now(ResponseKind::Produce(response)),
    }
}

/// An error for one partition, with the message Kafka adds from v8.
struct Failure {
    code: ResponseError,
    message: Option<String>,
}

impl Failure {
    fn code(code: ResponseError) -> Failure {
        Failure {
            code,
            message: None,
        }
    }
}

fn append(
    broker: &Broker,
    topic: &Topic,
    partition: &Partition,
    records: Option<&[u8]>,
) -> Result<crate::log::AppendInfo, Failure> {
    let invalid = |message: String| Failure {
        code: ResponseError::InvalidRecord,
        message: Some(message),
    };
    let records = records.ok_or_else(|| invalid("records are null".into()))?;
    let max_message_bytes: usize = topic
        .config_value(&broker.config, "max.message.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(broker.config.message_max_bytes);
    let header = batch::BatchHeader::parse(records).map_err(|e| Failure {
        code: error_codes::batch_error(&e),
        message: Some(e.to_string()),
    })?;
    if header.total_size() < records.len() {
        // Produce v3+ carries exactly one batch per partition (Kafka's ProduceRequest check).
        return Err(invalid(
            "Produce requests with version 3 and above must contain exactly one record batch per partition".into(),
        ));
    }
    if records.len() > max_message_bytes {
        return Err(Failure {
            code: ResponseError::MessageTooLarge,
            message: Some(format!(
                "The record batch is {} bytes, larger than the maximum of {max_message_bytes} bytes",
                records.len()
            )),
        });
    }
    let log_append_time = topic
        .config_value(&broker.config, "message.timestamp.type")
        .is_some_and(|v| v == "LogAppendTime");
    let now = now_ms();
    if !log_append_time {
        check_timestamps(broker, topic, &header, now)?;
    }
    let compacted = topic
        .config_value(&broker.config, "cleanup.policy")
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "compact"));
    if compacted {
        check_keys(records, &topic.name, partition.index)?;
    }
    let mut buf = BytesMut::from(records);
    let opts = AppendOptions::leader(now, 0, log_append_time);
    let storage = |e: crate::log::LogError| {
        let code = error_codes::log_error(&e);
        if code == ResponseError::KafkaStorageError {
            tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "append failed");
        }
        Failure {
            code,
            message: Some(e.to_string()),
        }
    };
    let Some(producer) = ProducerBatch::of(&header) else {
        let info = partition.log.append(&mut buf, &opts).map_err(storage)?;
        if info.rolled {
            snapshot_producers(topic, partition);
        }
        return Ok(info);
    };
    if header.is_transactional() {
        // No transaction coordinator yet: no partition can be part of a transaction.
        return Err(Failure {
            code: ResponseError::InvalidTxnState,
            message: Some(
                "transactional batches need a transaction coordinator, which this broker does not run yet".into(),
            ),
        });
    }
    // Check, append and record under one lock so the state always matches the log.
    let mut producers = partition.producers.lock();
    match producers.check(&producer) {
        Err(e) => Err(Failure {
            code: error_codes::producer_error(&e),
            message: Some(e.to_string()),
        }),
        Ok(Verdict::Duplicate(original)) => Ok(crate::log::AppendInfo {
            base_offset: original.first_offset,
            last_offset: original.last_offset,
            log_append_time_ms: -1,
            log_start_offset: partition.log.log_start_offset(),
            max_timestamp: original.timestamp,
            record_count: original.last_offset - original.first_offset + 1,
            rolled: false,
        }),
        Ok(Verdict::Append) => {
            let info = partition.log.append(&mut buf, &opts).map_err(storage)?;
            producers.record(
                &producer,
                info.base_offset,
                info.last_offset,
                info.max_timestamp,
            );
            if info.rolled {
                take_snapshot(topic, partition, &producers);
            }
            Ok(info)
        }
    }
}

/// Snapshots producer state when the log rolled a segment, as Kafka does, so a restart replays
/// at most the active segment.
fn snapshot_producers(topic: &Topic, partition: &Partition) {
    let producers = partition.producers.lock();
    take_snapshot(topic, partition, &producers);
}

fn take_snapshot(topic: &Topic, partition: &Partition, producers: &ProducerStateManager) {
    // A failed snapshot only lengthens the replay at the next start; the log stays the truth.
    if let Err(e) = producers.take_snapshot(partition.log.log_end_offset()) {
        tracing::warn!(topic = %topic.name, partition = partition.index, error = %e, "producer snapshot failed");
    }
}

/// Kafka's `message.timestamp.before.max.ms` / `after.max.ms` (CreateTime topics only): the
/// batch header's first and largest timestamps bound its records' timestamps.
fn check_timestamps(
    broker: &Broker,
    topic: &Topic,
    header: &batch::BatchHeader,
    now: i64,
) -> Result<(), Failure> {
    let limit = |key: &str| -> i64 {
        topic
            .config_value(&broker.config, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MAX)
    };
    let before = limit("message.timestamp.before.max.ms");
    let after = limit("message.timestamp.after.max.ms");
    let too_old = header.base_timestamp >= 0 && now.saturating_sub(header.base_timestamp) > before;
    let too_new = header.max_timestamp >= 0 && header.max_timestamp.saturating_sub(now) > after;
    if too_old || too_new {
        let ts = if too_new {
            header.max_timestamp
        } else {
            header.base_timestamp
        };
        return Err(Failure {
            code: ResponseError::InvalidTimestamp,
            message: Some(format!(
                "Timestamp {ts} of message is out of range. The timestamp should be within [{}, {}]",
                now.saturating_sub(before),
                now.saturating_add(after)
            )),
        });
    }
    Ok(())
}

/// A compacted topic keeps the last record per key, so a record without one is refused
/// (KIP-467). Only compacted topics pay for decoding the batch here.
fn check_keys(records: &[u8], topic: &str, partition: i32) -> Result<(), Failure> {
    let mut buf = bytes::Bytes::copy_from_slice(records);
    let set =
        kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).map_err(|e| Failure {
            code: ResponseError::InvalidRecord,
            message: Some(format!("undecodable record batch: {e}")),
        })?;
    if set.records.iter().any(|r| r.key.is_none()) {
        return Err(Failure {
            code: ResponseError::InvalidRecord,
            message: Some(format!(
                "Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
            )),
        });
    }
    Ok(())
}

/// Waits for every appended partition to be fsynced, then replies; a failed fsync turns that
/// partition's answer into KAFKA_STORAGE_ERROR so the client retries rather than trusting it.
async fn sync_then_reply(mut response: ProduceResponse, pending: Vec<Pending>) -> ResponseKind {
    let mut waits = Vec::with_capacity(pending.len());
    for p in pending {
        let partition = p.partition.clone();
        let end = p.end_offset;
        let handle = tokio::task::spawn_blocking(move || partition.log.sync(end));
        waits.push((p.topic_index, p.partition_index, handle));
    }
    for (ti, pi, handle) in waits {
        let ok = matches!(handle.await, Ok(Ok(())));
        if !ok {
            tracing::error!("fsync failed; answering KAFKA_STORAGE_ERROR");
            if let Some(resp) = response
                .responses
                .get_mut(ti)
                .and_then(|t| t.partition_responses.get_mut(pi))
            {
                resp.error_code = ResponseError::KafkaStorageError.code();
                resp.base_offset = -1;
            }
        }
    }
    ResponseKind::Produce(response)
}
