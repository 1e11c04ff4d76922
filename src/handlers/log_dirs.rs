//! DescribeLogDirs (API 35, v1-4): every log directory with the partitions it holds, their
//! sizes and offset lags, and, from v4, the file system's total and usable bytes.
//!
//! As Kafka's `KafkaApis.handleDescribeLogDirsRequest` and `ReplicaManager.describeLogDirs`:
//! DESCRIBE on the cluster, else the answer is CLUSTER_AUTHORIZATION_FAILED with no directory; a
//! null topic list means every partition, a list names the partitions wanted (those not here
//! are left out). Each configured directory answers, named by its absolute path, in
//! configuration order; one that cannot be read or described (fs4's statvfs) answers
//! KAFKA_STORAGE_ERROR alone. The internal logs (`__consumer_offsets`, `__transaction_state`)
//! are listed in the metadata directory like any partition, as Kafka lists them. A partition
//! being moved also appears in its target directory with `is_future_key` and the copy's size
//! and lag (the partition's log end offset minus the copy's); a current log's lag is
//! `max(high watermark - log end, 0)`, always 0 on one node.

use std::collections::BTreeMap;
use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes;
use crate::group::GROUP_TOPIC;
use crate::log_dirs::LogDirs;
use crate::txn::TXN_TOPIC;

/// One log of one partition, as listed.
struct Listed {
    topic: String,
    partition: i32,
    size: u64,
    offset_lag: i64,
    future: bool,
}

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
    let is_wanted = |topic: &str, partition: i32| {
        wanted
            .as_ref()
            .is_none_or(|w| w.get(topic).is_some_and(|ps| ps.contains(&partition)))
    };
    let broker = ctx.broker;
    let log_dirs = &broker.log_dirs;
    // Every log, by the log directory it is in.
    let mut by_dir: BTreeMap<usize, Vec<Listed>> = BTreeMap::new();
    let dir_index = |log_dir: &Path| log_dirs.dirs().iter().position(|d| d.path == log_dir);
    for topic in broker.topics.topics() {
        for p in topic.partitions() {
            if !is_wanted(&topic.name, p.index()) {
                continue;
            }
            let home = p.dir();
            if let Some(i) = home.parent().and_then(dir_index) {
                by_dir.entry(i).or_default().push(Listed {
                    topic: topic.name.clone(),
                    partition: p.index(),
                    size: p.size_bytes(),
                    offset_lag: (p.high_watermark() - p.log_end_offset()).max(0),
                    future: false,
                });
            }
            if let Some(future) = p.future() {
                if let Some(i) = dir_index(future.log_dir()) {
                    by_dir.entry(i).or_default().push(Listed {
                        topic: topic.name.clone(),
                        partition: p.index(),
                        size: future.size_bytes(),
                        offset_lag: (p.log_end_offset() - future.log_end_offset()).max(0),
                        future: true,
                    });
                }
            }
        }
    }
    // The internal logs stay in the metadata directory.
    for (topic, sizes) in [
        (GROUP_TOPIC, broker.groups.partition_sizes()),
        (TXN_TOPIC, broker.txn.partition_sizes()),
    ] {
        for (partition, size) in sizes {
            if is_wanted(topic, partition) {
                by_dir.entry(0).or_default().push(Listed {
                    topic: topic.to_string(),
                    partition,
                    size,
                    offset_lag: 0,
                    future: false,
                });
            }
        }
    }
    let results = log_dirs
        .dirs()
        .iter()
        .enumerate()
        .map(|(i, dir)| describe_dir(&dir.path, by_dir.remove(&i).unwrap_or_default()))
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// One directory's answer: its logs grouped by topic (by name, partitions by index, the current
/// log before a copy), or KAFKA_STORAGE_ERROR when it cannot be described.
fn describe_dir(path: &Path, mut logs: Vec<Listed>) -> DescribeLogDirsResult {
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(path.display().to_string()))
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    let stats = if LogDirs::is_online(path) {
        fs4::statvfs(path)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the directory cannot be read",
        ))
    };
    let stats = match stats {
        Ok(stats) => stats,
        Err(e) => {
            tracing::warn!(dir = %path.display(), error = %e, "cannot describe the log directory");
            return result.with_error_code(ResponseError::KafkaStorageError.code());
        }
    };
    logs.sort_by(|a, b| (&a.topic, a.partition, a.future).cmp(&(&b.topic, b.partition, b.future)));
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for log in logs {
        let partition = DescribeLogDirsPartition::default()
            .with_partition_index(log.partition)
            .with_partition_size(i64::try_from(log.size).unwrap_or(i64::MAX))
            .with_offset_lag(log.offset_lag)
            .with_is_future_key(log.future);
        match topics.last_mut() {
            Some(t) if t.name.as_str() == log.topic => t.partitions.push(partition),
            _ => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(log.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    result
        .with_topics(topics)
        .with_total_bytes(i64::try_from(stats.total_space()).unwrap_or(i64::MAX))
        .with_usable_bytes(i64::try_from(stats.available_space()).unwrap_or(i64::MAX))
}
