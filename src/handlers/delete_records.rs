//! DeleteRecords (API 21): moves partitions' log start offsets up (`Admin.deleteRecords`,
//! `kafka-delete-records`), Kafka's `ReplicaManager.deleteRecords` on a single replica.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::broker::Broker;

/// Answers DeleteRecords once every partition's new log start offset is on disk (the work, an
/// fsync, runs on the blocking pool).
pub fn handle(ctx: &RequestContext<'_>, req: DeleteRecordsRequest) -> Reply {
    let allowed: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.authorize(AclOperation::Delete, Resource::Topic(&t.name)))
        .collect();
    let broker = ctx.broker.clone();
    Reply::blocking(
        move || ResponseKind::DeleteRecords(delete_records(&broker, req, &allowed)),
        || ResponseKind::DeleteRecords(DeleteRecordsResponse::default()),
    )
}

fn delete_records(
    broker: &Broker,
    req: DeleteRecordsRequest,
    allowed: &[bool],
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .zip(allowed)
        .map(|(t, &allowed)| {
            let topic = broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let outcome = if !allowed {
                        Err(error_codes::denied(ResourceType::Topic))
                    } else {
                        match super::partition_of(topic.as_ref(), p.partition_index) {
                            Ok(partition) => partition
                                .delete_records(p.offset)
                                .map_err(|e| error_codes::partition_error(&e)),
                            Err(code) => Err(code),
                        }
                    };
                    match outcome {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => result.with_low_watermark(-1).with_error_code(e.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
