//! Fetch (API 1): whole stored batches up to the reader's isolation bound (the high watermark,
//! or the last stable offset for read_committed), byte limits as Kafka applies them (KIP-74),
//! and long polling woken by appends.
//!
//! Fetch sessions (KIP-227): no session is ever created (the response carries session id 0),
//! so every fetch is a full fetch; a client that names a session id we never issued gets
//! FETCH_SESSION_ID_NOT_FOUND and falls back to a full fetch, as it would after a broker restart.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::broker::Broker;
use crate::partition::{FetchParams, Isolation, Partition};

/// Isolation level READ_COMMITTED in a Fetch or ListOffsets request.
pub const READ_COMMITTED: i8 = 1;

/// The isolation a consumer's `isolation_level` asks for.
pub fn isolation(isolation_level: i8) -> Isolation {
    if isolation_level == READ_COMMITTED {
        Isolation::TxnCommitted
    } else {
        Isolation::HighWatermark
    }
}

/// Handles a Fetch request: answers at once when enough data (or an error) is there, otherwise
/// parks until an append to one of the partitions or `max_wait_ms`.
pub fn handle(ctx: &RequestContext<'_>, req: FetchRequest) -> Reply {
    if req.session_id != 0 && req.session_epoch != -1 {
        let resp = FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return Reply::now(ResponseKind::Fetch(resp));
    }
    let version = ctx.version;
    // Kafka checks READ per topic once, up front; the answer holds for the whole long poll.
    let authorized: Vec<bool> = req
        .topics
        .iter()
        .map(|ft| {
            let name = if version >= 13 {
                ctx.broker
                    .topics
                    .get_by_id(&ft.topic_id)
                    .map(|t| t.name.clone())
            } else {
                Some(ft.topic.to_string())
            };
            name.is_none_or(|n| ctx.authorize(AclOperation::Read, Resource::Topic(&n)))
        })
        .collect();
    let first = read_all(ctx.broker, &req, version, &authorized);
    if first.done(&req) {
        return Reply::now(ResponseKind::Fetch(first.response));
    }
    let broker = ctx.broker.clone();
    Reply::Later(Box::pin(async move {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
        let mut partitions = first.partitions;
        loop {
            let next = {
                // Register for wake-ups before re-reading, so an append between the read and
                // the wait cannot be missed.
                let mut waits: Vec<_> = partitions
                    .iter()
                    .map(|p| Box::pin(p.appended().notified()))
                    .collect();
                for w in waits.iter_mut() {
                    w.as_mut().enable();
                }
                let result = read_all(&broker, &req, version, &authorized);
                if result.done(&req) || waits.is_empty() {
                    return ResponseKind::Fetch(result.response);
                }
                if tokio::time::timeout_at(deadline, select_all(waits))
                    .await
                    .is_err()
                {
                    return ResponseKind::Fetch(
                        read_all(&broker, &req, version, &authorized).response,
                    );
                }
                result.partitions
            };
            partitions = next;
        }
    }))
}

/// One pass over the requested partitions.
struct FetchResult {
    response: FetchResponse,
    bytes: usize,
    errors: bool,
    partitions: Vec<Arc<Partition>>,
}

impl FetchResult {
    fn done(&self, req: &FetchRequest) -> bool {
        req.max_wait_ms <= 0 || self.errors || self.bytes >= req.min_bytes.max(1) as usize
    }
}

fn read_all(broker: &Broker, req: &FetchRequest, version: i16, authorized: &[bool]) -> FetchResult {
    let mut remaining = req.max_bytes.max(0) as usize;
    // KIP-74: the first batch of the first partition that has data is returned whole, even
    // above the limits, so a consumer can always make progress.
    let mut min_one = true;
    let mut result = FetchResult {
        response: FetchResponse::default().with_session_id(0),
        bytes: 0,
        errors: false,
        partitions: Vec::new(),
    };
    let read_committed = req.isolation_level == READ_COMMITTED;
    let isolation = isolation(req.isolation_level);
    for (ti, ft) in req.topics.iter().enumerate() {
        let topic = if version >= 13 {
            broker.topics.get_by_id(&ft.topic_id)
        } else {
            broker.topics.get(&ft.topic)
        };
        let allowed = authorized.get(ti).copied().unwrap_or(false);
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_aborted_transactions(if read_committed {
                    Some(Vec::new())
                } else {
                    None
                })
                .with_records(Some(Bytes::new()));
            let partition = match &topic {
                None if version >= 13 => Err(ResponseError::UnknownTopicId),
                _ if !allowed => Err(error_codes::denied(ResourceType::Topic)),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(t) => t
                    .partition(fp.partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            // v9+: the consumer's view of the leader epoch (KIP-320).
            let partition = partition
                .and_then(|p| super::check_leader_epoch(&p, fp.current_leader_epoch).map(|()| p));
            let partition = match partition {
                Ok(p) => p,
                Err(code) => {
                    result.errors = true;
                    partitions.push(pd.with_error_code(code.code()));
                    continue;
                }
            };
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            let params = FetchParams {
                offset: fp.fetch_offset,
                max_bytes: limit,
                min_one_batch: min_one,
                isolation,
            };
            match partition.read(params) {
                Ok(read) => {
                    let n = read.records.len();
                    if n > 0 {
                        min_one = false;
                    }
                    remaining = remaining.saturating_sub(n);
                    result.bytes += n;
                    pd.high_watermark = read.high_watermark;
                    pd.last_stable_offset = read.last_stable_offset;
                    pd.log_start_offset = read.log_start_offset;
                    if let Some(aborted) = read.aborted_transactions {
                        // The client drops these producers' records from each first offset
                        // up to their ABORT marker.
                        pd.aborted_transactions = Some(
                            aborted
                                .into_iter()
                                .map(|a| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_first_offset(a.first_offset)
                                })
                                .collect(),
                        );
                    }
                    pd.records = Some(read.records);
                }
                Err(e) => {
                    result.errors = true;
                    pd.error_code = error_codes::log_error(&e).code();
                }
            }
            result.partitions.push(partition);
            partitions.push(pd);
        }
        result
            .response
            .responses
            .push(topic_response(ft, partitions));
    }
    result
}

fn topic_response(ft: &FetchTopic, partitions: Vec<PartitionData>) -> FetchableTopicResponse {
    FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_string(ft.topic.to_string())))
        .with_topic_id(ft.topic_id)
        .with_partitions(partitions)
}
