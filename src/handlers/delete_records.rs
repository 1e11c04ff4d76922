//! DeleteRecords (API 21): moves partitions' log start offsets up (`Admin.deleteRecords`,
//! `kafka-delete-records`), Kafka's `ReplicaManager.deleteRecords` on a single replica.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::{error_codes, Reply};
use crate::broker::Broker;

/// The offset that means "up to the high watermark" (Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`).
const HIGH_WATERMARK: i64 = -1;

/// Answers DeleteRecords once every partition's new log start offset is on disk.
pub fn handle(broker: &Broker, req: DeleteRecordsRequest) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        // Persisting the log start offset fsyncs: off the connection's task.
        let response = tokio::task::spawn_blocking(move || delete_records(&broker, req)).await;
        ResponseKind::DeleteRecords(response.unwrap_or_else(|e| {
            tracing::error!(error = %e, "DeleteRecords task failed");
            DeleteRecordsResponse::default()
        }))
    }))
}

fn delete_records(broker: &Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.metadata.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let outcome = match topic.as_ref().map(|t| (t, t.partition(p.partition_index)))
                    {
                        Some((topic, Some(partition))) => {
                            let policy = topic
                                .config_value(&broker.config, "cleanup.policy")
                                .unwrap_or_default();
                            if !policy.split(',').any(|c| c.trim() == "delete") {
                                // Kafka: records of a compact-only topic cannot be deleted.
                                Err(ResponseError::PolicyViolation)
                            } else {
                                let log = &partition.log;
                                let offset = if p.offset == HIGH_WATERMARK {
                                    log.log_end_offset()
                                } else {
                                    p.offset
                                };
                                log.delete_records_before(offset)
                                    .map_err(|e| error_codes::log_error(&e))
                            }
                        }
                        _ => Err(ResponseError::UnknownTopicOrPartition),
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
