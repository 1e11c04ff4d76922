//! One handler per API family, reached through the one API table (`registry`).
//!
//! Every handler takes the request's [`context::RequestContext`] (broker, header, version,
//! client, listener, session and principal) and the decoded body, and returns a [`Reply`]. It
//! never sees a socket and cannot fail at the type level: every error becomes an error code at
//! the level Kafka reports it (per partition, per topic, per request), through `error_codes`.
//! Where Kafka checks an ACL, the handler calls `ctx.authorize` and answers Kafka's
//! `*_AUTHORIZATION_FAILED` code when refused. Work that blocks on the disk (topic creation, a
//! producer id block, DeleteRecords) runs in a deferred reply on the blocking pool.

use std::future::Future;
use std::pin::Pin;

use kafka_protocol::messages::ResponseKind;

pub mod alter_configs;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod configs;
pub mod context;
pub mod delete_records;
pub mod describe_cluster;
pub mod describe_topic_partitions;
pub mod error_codes;
pub mod features;
pub mod fetch;
pub mod find_coordinator;
pub mod group_admin;
pub mod groups;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod offsets;
pub mod produce;
pub mod producers;
pub mod reassignments;
pub mod registry;
pub mod topics;
pub mod txn;

pub use context::RequestContext;
pub use registry::dispatch;

/// The partition `index` of `topic` (looked up by the caller), or Kafka's
/// UNKNOWN_TOPIC_OR_PARTITION when the topic or the partition does not exist.
pub fn partition_of(
    topic: Option<&std::sync::Arc<crate::topics::Topic>>,
    index: i32,
) -> Result<std::sync::Arc<crate::partition::Partition>, kafka_protocol::error::ResponseError> {
    topic
        .and_then(|t| t.partition(index))
        .ok_or(kafka_protocol::error::ResponseError::UnknownTopicOrPartition)
}

/// Kafka's `checkCurrentLeaderEpoch`: a client's view of the leader epoch (-1: none) older
/// than the partition's is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH.
pub fn check_leader_epoch(
    partition: &crate::partition::Partition,
    current_leader_epoch: i32,
) -> Result<(), kafka_protocol::error::ResponseError> {
    use kafka_protocol::error::ResponseError;
    let epoch = partition.leader_epoch();
    match current_leader_epoch {
        -1 => Ok(()),
        e if e < epoch => Err(ResponseError::FencedLeaderEpoch),
        e if e > epoch => Err(ResponseError::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}

/// A response whose remaining work (an fsync, a long poll) runs after the next request on the
/// same connection has started, while its place in the response order is kept. The future is
/// lazy: it starts when the connection's writer reaches it, so a long poll's `max_wait_ms`
/// counts from then (at most the responses queued before it later).
pub type Deferred = Pin<Box<dyn Future<Output = ResponseKind> + Send>>;

/// What the connection does with a request once its handler ran.
pub enum Reply {
    /// Send this response.
    Now(Box<ResponseKind>),
    /// Send this response once the future completes (in request order).
    Later(Deferred),
    /// Finish this work before the connection reads its next request (Kafka's muted channel),
    /// then reply as it says: for work whose effects must precede the next request's (a
    /// transactional produce that first joins its transaction).
    Serial(Pin<Box<dyn Future<Output = Reply> + Send>>),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// Close the connection (Produce with acks=0 that failed, as Kafka does).
    Close,
}

impl Reply {
    /// An immediate reply (boxed: responses are large and most replies are immediate).
    pub fn now(body: ResponseKind) -> Reply {
        Reply::Now(Box::new(body))
    }

    /// The answer of a coordinator: now when ready, else once it arrives (`gone` when the
    /// coordinator dropped the request, at shutdown).
    pub fn waiting<T: Send + 'static>(
        waiter: crate::coordinator::Waiter<T>,
        gone: T,
        respond: impl FnOnce(T) -> ResponseKind + Send + 'static,
    ) -> Reply {
        match waiter {
            crate::coordinator::Waiter::Ready(t) => Reply::now(respond(t)),
            crate::coordinator::Waiter::Wait(rx) => {
                Reply::Later(Box::pin(async move { respond(rx.await.unwrap_or(gone)) }))
            }
        }
    }

    /// A reply computed by blocking work (file I/O) on the blocking pool. The work starts now,
    /// so its effects follow the requests dispatched before it; `failed` answers if the task
    /// panicked.
    pub fn blocking<F>(work: F, failed: fn() -> ResponseKind) -> Reply
    where
        F: FnOnce() -> ResponseKind + Send + 'static,
    {
        let task = tokio::task::spawn_blocking(work);
        Reply::Later(Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "blocking handler task failed");
                failed()
            })
        }))
    }
}
