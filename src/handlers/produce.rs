//! Produce (API 0): per partition, authorize, hand the batch to the partition layer (which
//! validates, dedups idempotent retries and appends without decoding records), and acknowledge
//! per `acks`.
//!
//! Appends happen before the handler returns, so pipelined produces on one connection land in
//! request order. A transactional batch that opens a transaction in a partition is verified
//! with the transaction coordinator first (KIP-890 part 1: its partition must be in the
//! producer's ongoing transaction, so no hanging transaction can be left); under TV2 (Produce
//! v12) the partition joins the transaction instead, a transaction log write that the
//! connection waits for before it reads its next request, which keeps the order. With acks=all the reply is deferred until the partitions are fsynced; the
//! fsync runs on the blocking pool and is shared with concurrent producers (group commit).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::coordinator::Waiter;
use crate::log::BatchHeader;
use crate::partition::{Partition, VerificationGuard};
use crate::txn::{TxnCoordinator, TxnError};

/// A partition that was appended to and must be durable before an acks=all reply.
struct Pending {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    end_offset: i64,
}

/// One partition of the request after the checks that need no log.
enum Slot {
    /// Refused before any append.
    Failed(Failure),
    /// To append (with the verification guard of a transactional batch that opens a
    /// transaction here).
    Append {
        partition: Arc<Partition>,
        records: Bytes,
        guard: Option<VerificationGuard>,
    },
    /// A TV2 transactional batch: its partition joins the transaction first (Produce v12
    /// adds it implicitly), then it is appended.
    AddThenAppend {
        partition: Arc<Partition>,
        records: Bytes,
        guard: VerificationGuard,
        transactional_id: String,
        producer: (i64, i16),
    },
}

/// Handles a Produce request.
pub fn handle(ctx: &RequestContext<'_>, req: ProduceRequest) -> Reply {
    let version = ctx.version;
    let topics = &ctx.broker.topics;
    let acks = req.acks;
    // Kafka refuses a request with transactional batches whole unless its transactional id
    // may be written.
    let transactional_id = req.transactional_id.as_ref().map(|t| t.to_string());
    let has_transactional = req.topic_data.iter().any(|t| {
        t.partition_data
            .iter()
            .any(|p| p.records.as_deref().is_some_and(is_transactional))
    });
    let id_refused = has_transactional
        && !transactional_id
            .as_deref()
            .is_some_and(|id| ctx.authorize(AclOperation::Write, Resource::TransactionalId(id)));
    // Kafka decides by the request version alone: the client stays at v11 unless TV2 is
    // finalized.
    let implicit_add = version >= 12;
    let verification = ctx.broker.config.txn.verification;
    let mut slots: Vec<(usize, Vec<(i32, Slot)>)> = Vec::with_capacity(req.topic_data.len());
    let mut names = Vec::with_capacity(req.topic_data.len());
    let mut serial = false;
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
        let mut partitions = Vec::with_capacity(td.partition_data.len());
        for pd in td.partition_data {
            let slot = if !matches!(acks, -1..=1) {
                Slot::Failed(Failure::code(ResponseError::InvalidRequiredAcks))
            } else if id_refused {
                Slot::Failed(Failure::code(error_codes::denied(
                    ResourceType::TransactionalId,
                )))
            } else if !authorized {
                Slot::Failed(Failure::code(error_codes::denied(ResourceType::Topic)))
            } else {
                let partition = match &topic {
                    None if version >= 13 => Err(Failure::code(ResponseError::UnknownTopicId)),
                    None => Err(Failure::code(ResponseError::UnknownTopicOrPartition)),
                    Some(topic) => topic
                        .partition(pd.index)
                        .ok_or_else(|| Failure::code(ResponseError::UnknownTopicOrPartition)),
                };
                match (partition, pd.records) {
                    (Err(f), _) => Slot::Failed(f),
                    (Ok(_), None) => Slot::Failed(Failure {
                        code: ResponseError::InvalidRecord,
                        message: Some("records are null".into()),
                        records: Vec::new(),
                    }),
                    (Ok(partition), Some(records)) => prepare(
                        ctx,
                        partition,
                        records,
                        transactional_id.as_deref(),
                        verification,
                        implicit_add,
                    ),
                }
            };
            serial |= matches!(slot, Slot::AddThenAppend { .. });
            partitions.push((pd.index, slot));
        }
        slots.push((ti, partitions));
        names.push((td.name, td.topic_id));
    }
    if serial {
        // The implicit add writes the transaction log first; later requests of this
        // connection wait, so their batches still land in request order.
        let txn = ctx.broker.txn.clone();
        return Reply::Serial(Box::pin(async move {
            let slots = add_to_transactions(&txn, slots).await;
            append_all(version, acks, names, slots)
        }));
    }
    append_all(version, acks, names, slots)
}

/// Whether a partition's records start with a transactional batch.
fn is_transactional(records: &[u8]) -> bool {
    BatchHeader::parse(records).is_ok_and(|h| h.is_transactional() && !h.is_control())
}

/// The checks of one partition's batch that involve the transaction coordinator (KIP-890):
/// a transactional batch that would open a transaction in the partition must belong to an
/// ongoing transaction that holds the partition, or (TV2, Produce v12) joins it.
fn prepare(
    ctx: &RequestContext<'_>,
    partition: Arc<Partition>,
    records: Bytes,
    transactional_id: Option<&str>,
    verification: bool,
    implicit_add: bool,
) -> Slot {
    let header = match BatchHeader::parse(&records) {
        Ok(h) if h.is_transactional() && !h.is_control() => h,
        // Plain, idempotent or malformed: the partition layer decides.
        _ => {
            return Slot::Append {
                partition,
                records,
                guard: None,
            }
        }
    };
    let Some(id) = transactional_id.filter(|id| !id.is_empty()) else {
        return Slot::Failed(Failure::code(error_codes::denied(
            ResourceType::TransactionalId,
        )));
    };
    let producer = (header.producer_id, header.producer_epoch);
    let Some(guard) = partition.start_verification(producer.0, producer.1) else {
        // The producer's transaction is open here already.
        return Slot::Append {
            partition,
            records,
            guard: None,
        };
    };
    if implicit_add {
        return Slot::AddThenAppend {
            partition,
            records,
            guard,
            transactional_id: id.to_string(),
            producer,
        };
    }
    if verification {
        let tp = (partition.topic().to_string(), partition.index());
        if let Err(e) = ctx
            .broker
            .txn
            .verify_partition(id, producer.0, producer.1, &tp)
        {
            return Slot::Failed(verification_failure(&e, ctx.version));
        }
    }
    Slot::Append {
        partition,
        records,
        guard: Some(guard),
    }
}

/// Kafka's answer to a transactional batch whose partition could not be verified or added.
fn verification_failure(e: &TxnError, version: i16) -> Failure {
    Failure {
        code: error_codes::produce_verification_error(e, version),
        message: Some(format!(
            "Unable to verify the partition has been added to the transaction: {e}"
        )),
        records: Vec::new(),
    }
}

/// A transactional id with its producer id and epoch.
type TxnKey = (String, i64, i16);

/// Runs the implicit adds of TV2 batches: one transaction log write per producer for all its
/// partitions in the request (each a durable write, so not one per partition).
async fn add_to_transactions(
    txn: &TxnCoordinator,
    slots: Vec<(usize, Vec<(i32, Slot)>)>,
) -> Vec<(usize, Vec<(i32, Slot)>)> {
    let mut wanted: Vec<(TxnKey, Vec<(String, i32)>)> = Vec::new();
    for (_, partitions) in &slots {
        for (_, slot) in partitions {
            if let Slot::AddThenAppend {
                partition,
                transactional_id,
                producer,
                ..
            } = slot
            {
                let key = (transactional_id.clone(), producer.0, producer.1);
                let tp = (partition.topic().to_string(), partition.index());
                match wanted.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, tps)) => tps.push(tp),
                    None => wanted.push((key, vec![tp])),
                }
            }
        }
    }
    let mut outcomes = Vec::with_capacity(wanted.len());
    for ((id, pid, epoch), tps) in wanted {
        let added = match txn.add_partitions(&id, pid, epoch, &tps, true) {
            Waiter::Ready(r) => r,
            Waiter::Wait(rx) => rx.await.unwrap_or(Err(TxnError::Coordinator(
                crate::coordinator::CoordinatorError::Unloaded,
            ))),
        };
        outcomes.push(((id, pid, epoch), added));
    }
    slots
        .into_iter()
        .map(|(ti, partitions)| {
            let done = partitions
                .into_iter()
                .map(|(index, slot)| {
                    let slot = match slot {
                        Slot::AddThenAppend {
                            partition,
                            records,
                            guard,
                            transactional_id,
                            producer,
                        } => {
                            let key = (transactional_id, producer.0, producer.1);
                            match outcomes.iter().find(|(k, _)| *k == key).map(|(_, r)| r) {
                                Some(Ok(())) => Slot::Append {
                                    partition,
                                    records,
                                    guard: Some(guard),
                                },
                                Some(Err(e)) => Slot::Failed(verification_failure(e, 12)),
                                None => {
                                    Slot::Failed(Failure::code(ResponseError::UnknownServerError))
                                }
                            }
                        }
                        other => other,
                    };
                    (index, slot)
                })
                .collect();
            (ti, done)
        })
        .collect()
}

/// Appends every accepted partition in request order and builds the reply per `acks`.
fn append_all(
    version: i16,
    acks: i16,
    names: Vec<(TopicName, Uuid)>,
    slots: Vec<(usize, Vec<(i32, Slot)>)>,
) -> Reply {
    let mut pending = Vec::new();
    let mut any_error = false;
    let mut responses = Vec::with_capacity(slots.len());
    for ((ti, partitions), (name, topic_id)) in slots.into_iter().zip(names) {
        let mut partition_responses = Vec::with_capacity(partitions.len());
        for (pi, (index, slot)) in partitions.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(-1);
            let outcome = match slot {
                Slot::Failed(f) => Err(f),
                Slot::Append {
                    partition,
                    records,
                    guard,
                } => append(&partition, &records, guard).map(|info| (partition, info)),
                Slot::AddThenAppend { .. } => Err(Failure::code(ResponseError::UnknownServerError)),
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
                        if !failure.records.is_empty() {
                            resp.record_errors = failure
                                .records
                                .into_iter()
                                .map(|(index, message)| {
                                    BatchIndexAndErrorMessage::default()
                                        .with_batch_index(index)
                                        .with_batch_index_error_message(Some(
                                            StrBytes::from_string(message),
                                        ))
                                })
                                .collect();
                        } else if matches!(
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
                .with_name(name)
                .with_topic_id(topic_id)
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
    /// KIP-467: the refused records' indexes in the batch, with their messages.
    records: Vec<(i32, String)>,
}

impl Failure {
    fn code(code: ResponseError) -> Failure {
        Failure {
            code,
            message: None,
            records: Vec::new(),
        }
    }
}

fn append(
    partition: &Arc<Partition>,
    records: &[u8],
    guard: Option<VerificationGuard>,
) -> Result<crate::log::AppendInfo, Failure> {
    partition
        .append_as_leader_verified(records, guard)
        .map_err(|e| {
            let code = error_codes::partition_error(&e);
            if code == ResponseError::KafkaStorageError {
                tracing::error!(topic = %partition.topic(), partition = partition.index(), error = %e, "append failed");
            }
            Failure {
                code,
                message: Some(e.to_string()),
                records: e.record_errors(),
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
