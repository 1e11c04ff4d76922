//! Committed offsets: OffsetCommit (API 8), OffsetFetch (9), OffsetDelete (47).
//!
//! As in Kafka's `KafkaApis`, the group ACL is checked first (GROUP_AUTHORIZATION_FAILED for the
//! whole request), then each topic's (TOPIC_AUTHORIZATION_FAILED for its partitions), and
//! partitions of unknown topics (or beyond a topic's partition count) are answered
//! UNKNOWN_TOPIC_OR_PARTITION before the coordinator sees the rest; a group-level refusal then
//! applies to every partition of the request. An OffsetCommit or OffsetDelete is answered only
//! once its records are fsynced.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes::{self, group_code, group_error};
use super::Reply;
use crate::broker::Broker;
use crate::group::{CommitAuthor, CommitPartition, FetchedOffset, GroupError, Waiter};

fn partition_exists(broker: &Broker, topic: &str, partition: i32) -> bool {
    broker.topics.partition(topic, partition).is_some()
}

/// The code of a partition the coordinator does not see: a topic the principal may not use, or
/// one that does not exist; 0 for a partition it sees.
fn precheck(ctx: &RequestContext<'_>, operation: AclOperation, topic: &str, partition: i32) -> i16 {
    if !ctx.authorize(operation, Resource::Topic(topic)) {
        error_codes::denied(ResourceType::Topic).code()
    } else if !partition_exists(ctx.broker, topic, partition) {
        ResponseError::UnknownTopicOrPartition.code()
    } else {
        0
    }
}

/// Handles an OffsetCommit.
pub fn offset_commit(ctx: &RequestContext<'_>, req: OffsetCommitRequest) -> Reply {
    let (broker, version) = (ctx.broker, ctx.version);
    let mut response = OffsetCommitResponse::default();
    if !ctx.authorize(AclOperation::Read, Resource::Group(&req.group_id)) {
        let code = group_error(&GroupError::GroupAuthorizationFailed).code();
        for topic in &req.topics {
            response.topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    ),
            );
        }
        return Reply::now(ResponseKind::OffsetCommit(response));
    }
    // Where each partition handed to the coordinator sits in the response.
    let mut slots = Vec::new();
    let mut valid = Vec::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (pi, p) in topic.partitions.iter().enumerate() {
            let code = precheck(ctx, AclOperation::Read, &topic.name, p.partition_index);
            partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
            if code == 0 {
                slots.push((ti, pi));
                valid.push(CommitPartition {
                    topic: topic.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
        response.topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    if valid.is_empty() {
        return Reply::now(ResponseKind::OffsetCommit(response));
    }
    let author = CommitAuthor {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_id: req.generation_id_or_member_epoch,
        retention_time_ms: req.retention_time_ms,
    };
    let fill = move |mut response: OffsetCommitResponse,
                     result: Result<Vec<Option<GroupError>>, GroupError>| {
        match result {
            Ok(results) => {
                for ((ti, pi), error) in slots.into_iter().zip(results) {
                    response.topics[ti].partitions[pi].error_code = group_code(error.as_ref());
                }
            }
            Err(e) => {
                // Kafka's error response covers every partition of the request.
                let code = group_error(&e).code();
                for t in &mut response.topics {
                    for p in &mut t.partitions {
                        p.error_code = code;
                    }
                }
            }
        }
        ResponseKind::OffsetCommit(response)
    };
    match broker
        .groups
        .commit_offsets(&req.group_id, version, &author, &valid)
    {
        Waiter::Ready(result) => Reply::now(fill(response, result)),
        Waiter::Wait(rx) => Reply::Later(Box::pin(async move {
            let result = rx.await.unwrap_or(Err(GroupError::NotCoordinator));
            fill(response, result)
        })),
    }
}

/// Handles an OffsetFetch: one group before v8, many from v8; no topic list means every
/// committed offset of the group (less the topics the principal may not DESCRIBE). A group the
/// principal may not DESCRIBE answers GROUP_AUTHORIZATION_FAILED; a requested topic it may not
/// DESCRIBE answers TOPIC_AUTHORIZATION_FAILED per partition, offset -1.
pub fn offset_fetch(ctx: &RequestContext<'_>, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let (broker, version) = (ctx.broker, ctx.version);
    let may_describe = |topic: &str| ctx.authorize(AclOperation::Describe, Resource::Topic(topic));
    let denied_topic = error_codes::denied(ResourceType::Topic).code();
    // v7+ `require_stable`: an offset an open transaction may still change is not answered;
    // the client retries until the transaction ends (UNSTABLE_OFFSET_COMMIT).
    let require_stable = version >= 7 && req.require_stable;
    let stable = |o: FetchedOffset| {
        if require_stable && o.unstable {
            let code = ResponseError::UnstableOffsetCommit.code();
            (FetchedOffset::none(o.partition), code)
        } else {
            (o, 0)
        }
    };
    // (topic, offsets, error code per partition) of one group.
    let fetch = |group: &str,
                 topics: Option<Vec<(String, Vec<i32>)>>|
     -> Vec<(String, Vec<(FetchedOffset, i16)>)> {
        match topics {
            Some(topics) => {
                let (allowed, refused): (Vec<_>, Vec<_>) =
                    topics.into_iter().partition(|(t, _)| may_describe(t));
                let mut found: Vec<(String, Vec<(FetchedOffset, i16)>)> = broker
                    .groups
                    .fetch_offsets(group, &allowed)
                    .into_iter()
                    .map(|(t, offsets)| (t, offsets.into_iter().map(stable).collect()))
                    .collect();
                for (topic, partitions) in refused {
                    let offsets = partitions
                        .into_iter()
                        .map(|p| (FetchedOffset::none(p), denied_topic))
                        .collect();
                    found.push((topic, offsets));
                }
                found
            }
            None => broker
                .groups
                .fetch_all_offsets(group)
                .into_iter()
                .filter(|(t, _)| may_describe(t))
                .map(|(t, offsets)| (t, offsets.into_iter().map(|o| (o, 0)).collect()))
                .collect(),
        }
    };
    let group_denied = |group: &str| !ctx.authorize(AclOperation::Describe, Resource::Group(group));
    let denied_group = group_error(&GroupError::GroupAuthorizationFailed).code();
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                if group_denied(&g.group_id) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(denied_group);
                }
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let topics = fetch(&g.group_id, topics)
                    .into_iter()
                    .map(|(name, offsets)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partitions(
                                offsets
                                    .into_iter()
                                    .map(|(o, code)| partitions_v8(o).with_error_code(code))
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if group_denied(&req.group_id) {
        if version >= 2 {
            return OffsetFetchResponse::default().with_error_code(denied_group);
        }
        // v1 has no top-level error: every requested partition carries it.
        let topics = req
            .topics
            .iter()
            .flatten()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_metadata(Some(StrBytes::default()))
                                    .with_error_code(denied_group)
                            })
                            .collect(),
                    )
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let topics = fetch(&req.group_id, topics)
        .into_iter()
        .map(|(name, offsets)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    offsets
                        .into_iter()
                        .map(|(o, code)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(o.partition)
                                .with_committed_offset(o.offset)
                                // The field exists from v5; older versions must keep the
                                // default for the encoder.
                                .with_committed_leader_epoch(if version >= 5 {
                                    o.leader_epoch
                                } else {
                                    -1
                                })
                                .with_metadata(Some(StrBytes::from_string(o.metadata)))
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

fn partitions_v8(o: FetchedOffset) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(o.partition)
        .with_committed_offset(o.offset)
        .with_committed_leader_epoch(o.leader_epoch)
        .with_metadata(Some(StrBytes::from_string(o.metadata)))
}

/// Handles an OffsetDelete.
pub fn offset_delete(ctx: &RequestContext<'_>, req: OffsetDeleteRequest) -> Reply {
    let broker = ctx.broker;
    if req.group_id.is_empty() {
        return Reply::now(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default()
                .with_error_code(group_error(&GroupError::InvalidGroupId).code()),
        ));
    }
    if !ctx.authorize(AclOperation::Delete, Resource::Group(&req.group_id)) {
        return Reply::now(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default()
                .with_error_code(group_error(&GroupError::GroupAuthorizationFailed).code()),
        ));
    }
    let mut response = OffsetDeleteResponse::default();
    let mut slots = Vec::new();
    let mut valid: Vec<(String, Vec<i32>)> = Vec::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        let mut existing = Vec::new();
        let mut indexes = Vec::new();
        for (pi, p) in topic.partitions.iter().enumerate() {
            let code = precheck(ctx, AclOperation::Read, &topic.name, p.partition_index);
            partitions.push(
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
            if code == 0 {
                existing.push(p.partition_index);
                indexes.push(pi);
            }
        }
        if !existing.is_empty() {
            slots.push((ti, indexes));
            valid.push((topic.name.to_string(), existing));
        }
        response.topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    let fill = move |mut response: OffsetDeleteResponse,
                     result: Result<Vec<Vec<Option<GroupError>>>, GroupError>| {
        match result {
            Ok(results) => {
                for ((ti, indexes), errors) in slots.into_iter().zip(results) {
                    for (pi, error) in indexes.into_iter().zip(errors) {
                        response.topics[ti].partitions[pi].error_code = group_code(error.as_ref());
                    }
                }
                ResponseKind::OffsetDelete(response)
            }
            // A group-level error replaces the whole answer, as Kafka's error response does.
            Err(e) => ResponseKind::OffsetDelete(
                OffsetDeleteResponse::default().with_error_code(group_error(&e).code()),
            ),
        }
    };
    let group: &GroupId = &req.group_id;
    match broker.groups.delete_offsets(group, &valid) {
        Waiter::Ready(result) => Reply::now(fill(response, result)),
        Waiter::Wait(rx) => Reply::Later(Box::pin(async move {
            let result = rx.await.unwrap_or(Err(GroupError::NotCoordinator));
            fill(response, result)
        })),
    }
}
