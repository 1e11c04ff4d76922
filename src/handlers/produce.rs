//! Produce (API 0): per partition, authorize, hand the batch to the partition layer (which
//! validates, dedups idempotent retries and appends without decoding records), and acknowledge
//! per `acks`.
//!
//! Appends happen before the handler returns, so pipelined produces on one connection land in
//! request order. With acks=all the reply is deferred until the partitions are fsynced; the
//! fsync runs on the blocking pool and is shared with concurrent producers (group commit).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::partition::{AppendOrigin, Partition};

/// A partition that was appended to and must be durable before an acks=all reply.
struct Pending {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    end_offset: i64,
}

/// Handles a Produce request.
pub fn handle(ctx: &RequestContext<'_>, req: ProduceRequest) -> Reply {
    let version = ctx.version;
    let topics = &ctx.broker.topics;
    let acks = req.acks;
    let mut pending = Vec::new();
    let mut any_error = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (ti, td) in req.topic_data.into_iter().enumerate() {
        let topic = if version >= 13 {
            topics.get_by_id(&td.topic_id)
        } else {
            topics.get(&td.name)
        };
        // Kafka checks WRITE by name: the request's name, or the name of the topic an id names.
        let authorized = match (&topic, version >= 13) {
            (Some(t), _) => ctx.authorize(AclOperation::Write, Resource::Topic(&t.name)),
            (None, false) => ctx.authorize(AclOperation::Write, Resource::Topic(&td.name)),
            (None, true) => true,
        };
        let mut partition_responses = Vec::with_capacity(td.partition_data.len());
        for (pi, pd) in td.partition_data.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1);
            let outcome = if !matches!(acks, -1..=1) {
                Err(Failure::code(ResponseError::InvalidRequiredAcks))
            } else if !authorized {
                Err(Failure::code(error_codes::denied(ResourceType::Topic)))
            } else {
                match &topic {
                    None if version >= 13 => Err(Failure::code(ResponseError::UnknownTopicId)),
                    None => Err(Failure::code(ResponseError::UnknownTopicOrPartition)),
                    Some(topic) => match topic.partition(pd.index) {
                        None => Err(Failure::code(ResponseError::UnknownTopicOrPartition)),
                        Some(partition) => {
                            append(&partition, pd.records.as_deref()).map(|info| (partition, info))
                        }
                    },
                }
            };
            match outcome {
                Ok((partition, info)) => {
                    resp.base_offset = info.base_offset;
                    resp.log_append_time_ms = info.log_append_time_ms;
                    resp.log_start_offset = info.log_start_offset;
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
    partition: &Arc<Partition>,
    records: Option<&[u8]>,
) -> Result<crate::log::AppendInfo, Failure> {
    let Some(records) = records else {
        return Err(Failure {
            code: ResponseError::InvalidRecord,
            message: Some("records are null".into()),
        });
    };
    partition
        .append_as_leader(records, AppendOrigin::Client)
        .map_err(|e| {
            let code = error_codes::partition_error(&e);
            if code == ResponseError::KafkaStorageError {
                tracing::error!(topic = %partition.topic(), partition = partition.index(), error = %e, "append failed");
            }
            Failure {
                code,
                message: Some(e.to_string()),
            }
        })
}

/// Waits for every appended partition to be fsynced, then replies; a failed fsync turns that
/// partition's answer into KAFKA_STORAGE_ERROR so the client retries rather than trusting it.
async fn sync_then_reply(mut response: ProduceResponse, pending: Vec<Pending>) -> ResponseKind {
    let mut waits = Vec::with_capacity(pending.len());
    for p in pending {
        let partition = p.partition.clone();
        let end = p.end_offset;
        let handle = tokio::task::spawn_blocking(move || partition.wait_durable(end));
        waits.push((p.topic_index, p.partition_index, p.partition, handle));
    }
    for (ti, pi, partition, handle) in waits {
        let failed = match handle.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("fsync task failed: {e}")),
        };
        if let Some(error) = failed {
            tracing::error!(topic = %partition.topic(), partition = partition.index(), error, "fsync failed; answering KAFKA_STORAGE_ERROR");
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
