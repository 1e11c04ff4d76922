//! OffsetForLeaderEpoch (API 23, v2-4 as Kafka 4 serves it): where a leader epoch ended, so a
//! consumer validates its position after a leader change or a restart (KIP-101/279/320) and a
//! follower finds where to truncate.
//!
//! As Kafka's `KafkaApis.handleOffsetForLeaderEpochRequest`: CLUSTER_ACTION on the cluster or
//! DESCRIBE on the topic (checked before existence); `replica_id` is ignored; a
//! `current_leader_epoch` older than the partition's is FENCED_LEADER_EPOCH, a newer one
//! UNKNOWN_LEADER_EPOCH; the answer is the partition's `endOffsetForEpoch`: the current epoch
//! ends at the log end offset, an older one where the next began, an unknown future one is
//! (-1, -1).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{check_leader_epoch, error_codes, partition_of};

/// Answers an OffsetForLeaderEpoch request.
pub fn handle(
    ctx: &RequestContext<'_>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let cluster = ctx.authorize(AclOperation::ClusterAction, Resource::Cluster);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed =
                cluster || ctx.authorize(AclOperation::Describe, Resource::Topic(&t.topic));
            let topic = ctx.broker.topics.get(&t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let resp = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !allowed {
                        return resp
                            .with_error_code(error_codes::denied(ResourceType::Topic).code());
                    }
                    let partition = match partition_of(topic.as_ref(), p.partition) {
                        Ok(partition) => partition,
                        Err(code) => return resp.with_error_code(code.code()),
                    };
                    if let Err(code) = check_leader_epoch(&partition, p.current_leader_epoch) {
                        return resp.with_error_code(code.code());
                    }
                    let (epoch, end) = partition.end_offset_for_epoch(p.leader_epoch);
                    resp.with_leader_epoch(epoch).with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
