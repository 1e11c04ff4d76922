//! Idempotent producers: InitProducerId (API 22) and DescribeProducers (API 61).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};

use crate::broker::Broker;

/// Hands out a fresh producer id with epoch 0.
///
/// Without a transactional id Kafka 4 always allocates a new id, also when the request names
/// the producer's current id and epoch to ask for a bump after a sequence error (KIP-360):
/// the new id starts a new sequence space, which is what the client wanted.
pub fn init_producer_id(broker: &Broker, req: &InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.as_ref().is_some_and(|t| t.is_empty()) {
        return resp.with_error_code(ResponseError::InvalidRequest.code());
    }
    if req.transactional_id.is_some() {
        // Transactions need a transaction coordinator, which comes with a later release; this
        // is what Kafka answers while its transaction state is unavailable.
        return resp.with_error_code(ResponseError::CoordinatorNotAvailable.code());
    }
    match broker.producer_ids.next_id() {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "cannot persist the producer id counter");
            resp.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}

/// Lists the active producers of each requested partition.
pub fn describe_producers(
    broker: &Broker,
    req: &DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = broker.metadata.get(&t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let resp = PartitionResponse::default().with_partition_index(index);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(index)) else {
                        return resp.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let producers = partition.producers.lock();
                    let mut active: Vec<ProducerState> = producers
                        .producers()
                        .map(|p| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(p.producer_id))
                                .with_producer_epoch(p.epoch as i32)
                                .with_last_sequence(p.last_seq())
                                .with_last_timestamp(p.last_timestamp)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(-1)
                        })
                        .collect();
                    active.sort_by_key(|p| p.producer_id.0);
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
