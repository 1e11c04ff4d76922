//! ListOffsets (API 2): earliest (-2), latest (-1: the high watermark, or the last stable offset
//! for read_committed), max timestamp (-3), local log start (-4), latest tiered (-5), and the
//! first record at or after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes;
use super::fetch::isolation;
use crate::log::LogError;
use crate::partition::{Isolation, Partition};

/// ListOffsets special timestamps (Kafka's `ListOffsetsRequest` constants).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Answers ListOffsets.
pub fn handle(ctx: &RequestContext<'_>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let version = ctx.version;
    let isolation = isolation(req.isolation_level);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let allowed = ctx.authorize(AclOperation::Describe, Resource::Topic(&t.name));
            let topic = ctx.broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !allowed {
                        return resp
                            .with_error_code(error_codes::denied(ResourceType::Topic).code());
                    }
                    // v4+: the client's view of the leader epoch (KIP-320).
                    let partition = super::partition_of(topic.as_ref(), p.partition_index)
                        .and_then(|partition| {
                            super::check_leader_epoch(&partition, p.current_leader_epoch)
                                .map(|()| partition)
                        });
                    match partition {
                        Err(code) => resp.with_error_code(code.code()),
                        Ok(partition) => match lookup(&partition, p.timestamp, isolation) {
                            Ok(Some((offset, timestamp))) => resp
                                .with_offset(offset)
                                .with_timestamp(timestamp)
                                // The field exists from v4; the encoder refuses a value below.
                                .with_leader_epoch(if version >= 4 {
                                    partition.leader_epoch()
                                } else {
                                    -1
                                }),
                            Ok(None) => resp,
                            Err(e) => resp.with_error_code(error_codes::log_error(&e).code()),
                        },
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp) for one partition; None answers offset -1, timestamp -1.
fn lookup(
    partition: &Partition,
    timestamp: i64,
    isolation: Isolation,
) -> Result<Option<(i64, i64)>, LogError> {
    Ok(match timestamp {
        LATEST => Some((partition.fetchable_end(isolation), -1)),
        EARLIEST | EARLIEST_LOCAL => Some((partition.log_start_offset(), -1)),
        MAX_TIMESTAMP => partition.max_timestamp_offset()?,
        // Without tiered storage Kafka answers "no offset" here.
        LATEST_TIERED => None,
        ts => partition.offset_for_timestamp(ts, isolation)?,
    })
}
