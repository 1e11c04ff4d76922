//! AlterReplicaLogDirs (API 34, v1-2; KIP-113): moves partitions to another of this broker's log
//! directories. The move itself runs in the background (`crate::log_dirs::movement`); the
//! answer says whether it was accepted.
//!
//! As Kafka's `KafkaApis.handleAlterReplicaLogDirsRequest` and
//! `ReplicaManager.alterReplicaLogDirs`: ALTER on the cluster, else every partition of the
//! request answers CLUSTER_AUTHORIZATION_FAILED. Otherwise each partition (a partition named
//! under two directories goes to the last one, as Kafka's map of the request keeps it), in this
//! order:
//! - a topic name too long for the copy's directory name (`<topic>-<partition>.<32 hex>-future`
//!   over 255 bytes) is INVALID_TOPIC_EXCEPTION;
//! - a path that is not exactly the absolute path of a configured log directory (as
//!   DescribeLogDirs names them) is LOG_DIR_NOT_FOUND; one that cannot be read now is
//!   KAFKA_STORAGE_ERROR;
//! - a partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION (Kafka's answer for a
//!   partition its metadata does not know);
//! - the directory the partition is already in is NONE with nothing to do (and calls off a move
//!   elsewhere under way); a move to the same directory already under way is NONE too;
//! - otherwise the move starts (a move to another directory under way is called off) and the
//!   answer is NONE.
//!
//! The internal logs (`__consumer_offsets`, `__transaction_state`) stay in the metadata
//! directory: asking for it is NONE, asking for another is INVALID_TOPIC_EXCEPTION, the code
//! Kafka gives a partition whose replica it cannot move (Rivulet's choice: Kafka itself would
//! move them).
//!
//! Results are grouped by topic, topics and partitions in the order the request first names
//! them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes;
use crate::group::GROUP_TOPIC;
use crate::log_dirs::{future_dir_name, movement, LogDirs};
use crate::txn::TXN_TOPIC;

/// Kafka's limit on a directory name (KAFKA-4893).
const MAX_DIR_NAME: usize = 255;

/// Answers AlterReplicaLogDirs.
pub fn handle(
    ctx: &RequestContext<'_>,
    req: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    if !ctx.authorize(AclOperation::Alter, Resource::Cluster) {
        // Kafka's `getErrorResponse`: every entry of the request, as it came.
        let code = error_codes::denied(ResourceType::Cluster).code();
        let results = req
            .dirs
            .iter()
            .flat_map(|d| d.topics.iter())
            .map(|t| {
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|&p| {
                                AlterReplicaLogDirPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        return AlterReplicaLogDirsResponse::default().with_results(results);
    }
    // (topic, partition) -> path, the last path winning, in first-named order.
    let mut wanted: Vec<((String, i32), String)> = Vec::new();
    for dir in &req.dirs {
        for topic in &dir.topics {
            for &partition in &topic.partitions {
                let key = (topic.name.to_string(), partition);
                match wanted.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, path)) => *path = dir.path.to_string(),
                    None => wanted.push((key, dir.path.to_string())),
                }
            }
        }
    }
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for ((topic, partition), path) in wanted {
        let code = alter_one(ctx, &topic, partition, &path);
        let result = AlterReplicaLogDirPartitionResult::default()
            .with_partition_index(partition)
            .with_error_code(code.map_or(0, |c| c.code()));
        match results.iter_mut().find(|t| t.topic_name.as_str() == topic) {
            Some(t) => t.partitions.push(result),
            None => results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![result]),
            ),
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}

/// One partition's move, started or refused.
fn alter_one(
    ctx: &RequestContext<'_>,
    topic: &str,
    partition: i32,
    path: &str,
) -> Option<ResponseError> {
    // The longest name the copy's directory can get: 32 hex digits of move id.
    let id = "0".repeat(32);
    if future_dir_name(topic, partition, &id).len() > MAX_DIR_NAME {
        return Some(ResponseError::InvalidTopicException);
    }
    let broker = ctx.broker;
    let Some(log_dir) = broker.log_dirs.find(path) else {
        return Some(ResponseError::LogDirNotFound);
    };
    if !LogDirs::is_online(&log_dir.path) {
        return Some(ResponseError::KafkaStorageError);
    }
    if topic == GROUP_TOPIC || topic == TXN_TOPIC {
        let count = if topic == GROUP_TOPIC {
            broker.groups.partition_count()
        } else {
            broker.txn.partition_count()
        };
        return if partition < 0 || partition >= count {
            Some(ResponseError::UnknownTopicOrPartition)
        } else if log_dir.path == broker.log_dirs.metadata_dir() {
            None
        } else {
            Some(ResponseError::InvalidTopicException)
        };
    }
    let Some(p) = broker.topics.partition(topic, partition) else {
        return Some(ResponseError::UnknownTopicOrPartition);
    };
    movement::alter_log_dir(&p, &log_dir.path, &broker.tasks, &broker.clock);
    None
}
