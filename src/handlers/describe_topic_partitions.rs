//! DescribeTopicPartitions (API 75, KIP-966): topics and their partitions, paginated by a
//! partition limit and a cursor; what kafka-clients 4 uses to describe topics by name.
//!
//! As Kafka's `DescribeTopicPartitionsRequestHandler`: an empty topic list means every topic
//! (those the principal may not DESCRIBE left out); named topics it may not DESCRIBE answer
//! TOPIC_AUTHORIZATION_FAILED after the others; the rest come sorted by name, from the cursor's
//! topic and partition on. The limit (`response_partition_limit`, capped at Kafka's
//! `max.request.partition.size.limit` default 2000, at least 1) counts partitions across topics;
//! a topic cut short sets `next_cursor` to its first partition not returned, and a limit filled
//! at a topic boundary sets it to the next topic's partition 0. Unknown topics cost nothing and
//! answer UNKNOWN_TOPIC_OR_PARTITION. A cursor naming a topic that is not in the list, or a
//! negative partition, is INVALID_REQUEST for every topic.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use uuid::Uuid;

use super::context::{AclOperation, RequestContext, Resource, ResourceType, TOPIC_OPERATIONS};
use super::error_codes;
use crate::topics::validate_topic_name;

/// Kafka's `max.request.partition.size.limit` default: the most partitions in one answer.
const MAX_PARTITIONS: i32 = 2000;

fn failed(name: TopicName, code: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(name))
        .with_topic_id(Uuid::nil())
        .with_error_code(code.code())
        .with_topic_authorized_operations(i32::MIN)
}

/// Answers a DescribeTopicPartitions request.
pub fn handle(
    ctx: &RequestContext<'_>,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let all = req.topics.is_empty();
    if let Some(c) = &req.cursor {
        if c.partition_index < 0 || (!all && !req.topics.iter().any(|t| t.name == c.topic_name)) {
            let topics = req
                .topics
                .into_iter()
                .map(|t| failed(t.name, ResponseError::InvalidRequest))
                .collect();
            return DescribeTopicPartitionsResponse::default().with_topics(topics);
        }
    }
    let mut names: Vec<TopicName> = if all {
        ctx.broker
            .topics
            .topics()
            .into_iter()
            .map(|t| TopicName(t.name.clone().into()))
            .collect()
    } else {
        req.topics.into_iter().map(|t| t.name).collect()
    };
    names.sort();
    names.dedup();
    let (authorized, denied): (Vec<TopicName>, Vec<TopicName>) = names
        .into_iter()
        .partition(|n| ctx.authorize(AclOperation::Describe, Resource::Topic(n)));
    let from = req.cursor.as_ref().map(|c| c.topic_name.clone());
    let mut remaining = req.response_partition_limit.clamp(1, MAX_PARTITIONS) as usize;
    let node = BrokerId(ctx.broker.config.node_id);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in authorized
        .into_iter()
        .filter(|n| from.as_ref().is_none_or(|f| n.as_str() >= f.as_str()))
    {
        if remaining == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(name)
                    .with_partition_index(0),
            );
            break;
        }
        let Some(topic) = ctx.broker.topics.get(&name) else {
            let code = match validate_topic_name(&name) {
                Err(e) => error_codes::topic_error(&e),
                Ok(()) => ResponseError::UnknownTopicOrPartition,
            };
            topics.push(failed(name, code));
            continue;
        };
        let start = match &req.cursor {
            Some(c) if c.topic_name == name => c.partition_index as usize,
            _ => 0,
        };
        let all_partitions = topic.partitions();
        let end = all_partitions.len().min(start.saturating_add(remaining));
        let partitions: Vec<_> = all_partitions
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index())
                    .with_leader_id(node)
                    .with_leader_epoch(p.leader_epoch())
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        remaining -= partitions.len();
        let ops = ctx.authorized_operations(Resource::Topic(&name), TOPIC_OPERATIONS);
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(name.clone()))
                .with_topic_id(topic.id)
                .with_partitions(partitions)
                .with_topic_authorized_operations(ops),
        );
        if end < all_partitions.len() {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(name)
                    .with_partition_index(end as i32),
            );
            break;
        }
    }
    // Named topics the principal may not describe come last; in an all-topics request they
    // are left out.
    for name in denied.into_iter().filter(|_| !all) {
        topics.push(failed(name, error_codes::denied(ResourceType::Topic)));
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
