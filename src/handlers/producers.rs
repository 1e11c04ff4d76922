//! Producers: InitProducerId (API 22), idempotent and transactional, and DescribeProducers
//! (API 61).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, ResponseKind,
};

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};

/// Hands out a fresh producer id with epoch 0.
///
/// Without a transactional id Kafka 4 always allocates a new id, also when the request names
/// the producer's current id and epoch to ask for a bump after a sequence error (KIP-360):
/// the new id starts a new sequence space, which is what the client wanted. Reserving a block
/// of ids writes a file, so the answer comes from the blocking pool.
pub fn init_producer_id(ctx: &RequestContext<'_>, req: InitProducerIdRequest) -> Reply {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let now = |resp| Reply::now(ResponseKind::InitProducerId(resp));
    match req.transactional_id.as_ref().map(|id| id.as_str()) {
        Some("") => return now(resp.with_error_code(ResponseError::InvalidRequest.code())),
        Some(id) => {
            if !ctx.authorize(AclOperation::Write, Resource::TransactionalId(id)) {
                let code = error_codes::denied(ResourceType::TransactionalId);
                return now(resp.with_error_code(code.code()));
            }
            // KIP-360: the producer names its current id and epoch, both or neither.
            let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
            if (pid == -1) != (epoch == -1) {
                return now(resp.with_error_code(ResponseError::InvalidRequest.code()));
            }
            let expected = (pid != -1).then_some((pid, epoch));
            let fenced_code = ctx.version >= 4;
            let (broker, id) = (ctx.broker.clone(), id.to_string());
            let timeout = req.transaction_timeout_ms;
            return Reply::blocking(
                move || {
                    let markers = broker.markers();
                    let waiter = broker.txn.init_producer_id(&id, timeout, expected, markers);
                    ResponseKind::InitProducerId(match super::txn::wait_blocking(waiter) {
                        Ok((pid, epoch)) => resp
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch),
                        Err(e) => {
                            resp.with_error_code(error_codes::txn_error(&e, fenced_code).code())
                        }
                    })
                },
                || {
                    ResponseKind::InitProducerId(
                        InitProducerIdResponse::default()
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1)
                            .with_error_code(ResponseError::UnknownServerError.code()),
                    )
                },
            );
        }
        None => {
            // IDEMPOTENT_WRITE on the cluster, or WRITE on any topic (Kafka's
            // authorizeByResourceType).
            if !ctx.authorize(AclOperation::IdempotentWrite, Resource::Cluster)
                && !ctx.authorize_any(AclOperation::Write, ResourceType::Topic)
            {
                let code = error_codes::denied(ResourceType::Cluster);
                return now(resp.with_error_code(code.code()));
            }
        }
    }
    let broker = ctx.broker.clone();
    Reply::blocking(
        move || {
            ResponseKind::InitProducerId(match broker.producer_ids.next_id() {
                Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
                Err(e) => {
                    tracing::error!(error = %e, "cannot persist the producer id counter");
                    resp.with_error_code(ResponseError::KafkaStorageError.code())
                }
            })
        },
        || {
            ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_error_code(ResponseError::KafkaStorageError.code()),
            )
        },
    )
}

/// Lists the active producers of each requested partition.
pub fn describe_producers(
    ctx: &RequestContext<'_>,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let allowed = ctx.authorize(AclOperation::Read, Resource::Topic(&t.name));
            let topic = ctx.broker.topics.get(&t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let resp = PartitionResponse::default().with_partition_index(index);
                    if !allowed {
                        return resp
                            .with_error_code(error_codes::denied(ResourceType::Topic).code());
                    }
                    let partition = match super::partition_of(topic.as_ref(), index) {
                        Ok(p) => p,
                        Err(code) => return resp.with_error_code(code.code()),
                    };
                    let active: Vec<ProducerState> = partition
                        .producers()
                        .into_iter()
                        .map(|p| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(p.producer_id))
                                .with_producer_epoch(p.epoch as i32)
                                .with_last_sequence(p.last_seq())
                                .with_last_timestamp(p.last_timestamp)
                                .with_coordinator_epoch(p.coordinator_epoch)
                                .with_current_txn_start_offset(
                                    p.current_txn_first_offset.unwrap_or(-1),
                                )
                        })
                        .collect();
                    resp.with_active_producers(active)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
