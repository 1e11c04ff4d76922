//! Dispatch by API key to one handler per API family.
//!
//! Handlers take the broker and the decoded request and return a [`Reply`]; they never see a
//! socket and cannot fail at the type level: every error becomes an error code at the level
//! Kafka reports it (per partition, per topic, per request), through `error_codes`.

use std::future::Future;
use std::pin::Pin;

use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::broker::Broker;
use crate::protocol::Request;

pub mod api_versions;
pub mod configs;
pub mod delete_records;
pub mod describe_cluster;
pub mod error_codes;
pub mod fetch;
pub mod find_coordinator;
pub mod group_admin;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producers;
pub mod topics;

/// A response whose remaining work (an fsync, a long poll) runs after the next request on the
/// same connection has started, while its place in the response order is kept.
pub type Deferred = Pin<Box<dyn Future<Output = ResponseKind> + Send>>;

/// What the connection does with a request once its handler ran.
pub enum Reply {
    /// Send this response.
    Now(Box<ResponseKind>),
    /// Send this response once the future completes (in request order).
    Later(Deferred),
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
}

/// Routes a decoded request to its handler.
pub async fn dispatch(broker: &Broker, request: Request) -> Reply {
    let version = request.header.request_api_version;
    let client_id = request.header.client_id.as_deref();
    match request.body {
        RequestKind::ApiVersions(req) => Reply::now(ResponseKind::ApiVersions(
            api_versions::handle(&req, version),
        )),
        RequestKind::Metadata(req) => Reply::now(ResponseKind::Metadata(metadata::handle(
            broker, req, version,
        ))),
        RequestKind::Produce(req) => produce::handle(broker, req, version),
        RequestKind::Fetch(req) => fetch::handle(broker, req, version),
        RequestKind::ListOffsets(req) => Reply::now(ResponseKind::ListOffsets(
            list_offsets::handle(broker, req, version),
        )),
        RequestKind::CreateTopics(req) => Reply::now(ResponseKind::CreateTopics(
            topics::create_topics(broker, req, version),
        )),
        RequestKind::DeleteTopics(req) => Reply::now(ResponseKind::DeleteTopics(
            topics::delete_topics(broker, req, version),
        )),
        RequestKind::CreatePartitions(req) => Reply::now(ResponseKind::CreatePartitions(
            topics::create_partitions(broker, req),
        )),
        RequestKind::DeleteRecords(req) => delete_records::handle(broker, req),
        RequestKind::DescribeConfigs(req) => Reply::now(ResponseKind::DescribeConfigs(
            configs::describe_configs(broker, req, version),
        )),
        RequestKind::InitProducerId(req) => Reply::now(ResponseKind::InitProducerId(
            producers::init_producer_id(broker, &req),
        )),
        RequestKind::DescribeProducers(req) => Reply::now(ResponseKind::DescribeProducers(
            producers::describe_producers(broker, &req),
        )),
        RequestKind::DescribeCluster(req) => Reply::now(ResponseKind::DescribeCluster(
            describe_cluster::handle(broker, &req),
        )),
        RequestKind::FindCoordinator(req) => Reply::now(ResponseKind::FindCoordinator(
            find_coordinator::handle(broker, &req, version),
        )),
        RequestKind::JoinGroup(req) => {
            groups::join_group(broker, req, version, client_id, request.peer)
        }
        RequestKind::SyncGroup(req) => groups::sync_group(broker, req, version),
        RequestKind::Heartbeat(req) => {
            Reply::now(ResponseKind::Heartbeat(groups::heartbeat(broker, &req)))
        }
        RequestKind::LeaveGroup(req) => Reply::now(ResponseKind::LeaveGroup(groups::leave_group(
            broker, &req, version,
        ))),
        RequestKind::OffsetCommit(req) => offsets::offset_commit(broker, req, version),
        RequestKind::OffsetFetch(req) => Reply::now(ResponseKind::OffsetFetch(
            offsets::offset_fetch(broker, &req, version),
        )),
        RequestKind::OffsetDelete(req) => offsets::offset_delete(broker, &req),
        RequestKind::ListGroups(req) => Reply::now(ResponseKind::ListGroups(
            group_admin::list_groups(broker, &req, version),
        )),
        RequestKind::DescribeGroups(req) => Reply::now(ResponseKind::DescribeGroups(
            group_admin::describe_groups(broker, &req, version),
        )),
        RequestKind::DeleteGroups(req) => group_admin::delete_groups(broker, &req),
        // The version table admits no other API, so decoding never yields one; closing is
        // what Kafka does with a request it does not serve.
        _ => Reply::Close,
    }
}
