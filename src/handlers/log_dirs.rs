//! DescribeLogDirs (API 35, v1-4): each log directory with its partitions' sizes (offset lag 0:
//! no future replica ever moves here) and, from v4, the file system's total and usable bytes.
//!
//! As Kafka's `KafkaApis.handleDescribeLogDirsRequest`: DESCRIBE on the cluster, else the
//! answer is CLUSTER_AUTHORIZATION_FAILED with no directory; a null topic list means every
//! partition, a list names the partitions wanted (those not here are left out). A directory the
//! file system cannot describe answers KAFKA_STORAGE_ERROR.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes;

/// Answers DescribeLogDirs.
pub fn handle(ctx: &RequestContext<'_>, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !ctx.authorize(AclOperation::Describe, Resource::Cluster) {
        return DescribeLogDirsResponse::default()
            .with_error_code(error_codes::denied(ResourceType::Cluster).code());
    }
    let wanted: Option<BTreeMap<String, Vec<i32>>> = req.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let mut topics = Vec::new();
    for topic in ctx.broker.topics.topics() {
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .partitions()
            .iter()
            .filter(|p| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.get(&topic.name).is_some_and(|ps| ps.contains(&p.index())))
            })
            .map(|p| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.index())
                    .with_partition_size(p.size_bytes() as i64)
                    .with_offset_lag(0)
                    .with_is_future_key(false)
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let dir = &ctx.broker.config.log_dir;
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(path.display().to_string()))
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    let result = match fs4::statvfs(&path) {
        Ok(stats) => result
            .with_topics(topics)
            .with_total_bytes(i64::try_from(stats.total_space()).unwrap_or(i64::MAX))
            .with_usable_bytes(i64::try_from(stats.available_space()).unwrap_or(i64::MAX)),
        Err(e) => {
            tracing::warn!(dir = %path.display(), error = %e, "cannot describe the log directory");
            result.with_error_code(ResponseError::KafkaStorageError.code())
        }
    };
    DescribeLogDirsResponse::default().with_results(vec![result])
}
