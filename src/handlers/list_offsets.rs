//! ListOffsets (API 2): earliest (-2), latest (-1), max timestamp (-3), local log start (-4),
//! latest tiered (-5), and the first record at or after a timestamp.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::error_codes;
use crate::broker::Broker;
use crate::log::LogError;
use crate::metadata::Partition;

/// ListOffsets special timestamps (Kafka's `ListOffsetsRequest` constants).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// The one leader epoch a single-node partition has.
const LEADER_EPOCH: i32 = 0;

/// Answers ListOffsets.
pub fn handle(broker: &Broker, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    // The leader epoch field exists from v4; the encoder refuses a value below that.
    let epoch = if version >= 4 { LEADER_EPOCH } else { -1 };
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.metadata.get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                        None => resp.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                        Some(partition) => match lookup(&partition, p.timestamp) {
                            Ok(Some((offset, timestamp))) => resp
                                .with_offset(offset)
                                .with_timestamp(timestamp)
                                .with_leader_epoch(epoch),
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
fn lookup(partition: &Partition, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
    let log = &partition.log;
    Ok(match timestamp {
        // Without transactions the last stable offset equals the high watermark, so
        // read_committed and read_uncommitted get the same answer.
        LATEST => Some((log.log_end_offset(), -1)),
        EARLIEST | EARLIEST_LOCAL => Some((log.log_start_offset(), -1)),
        MAX_TIMESTAMP => log.max_timestamp_offset()?,
        // Without tiered storage Kafka answers "no offset" here.
        LATEST_TIERED => None,
        ts => log.offset_for_timestamp(ts)?,
    })
}
