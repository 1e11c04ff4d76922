//! The one table of APIs: each API declared once, with the versions it advertises and serves
//! and its handler. ApiVersions answers from it, the decoder validates every request against it,
//! dispatch calls through it, the codec's fuzz tests take their bodies from it, and the compat
//! API proxy reads it from `rivulet --api-versions`.
//!
//! Ranges come from each message type's `VERSIONS` in the kafka-protocol crate (what its structs
//! can decode), never from `ApiKey::valid_versions()`. An API is listed only when every version
//! it advertises works end to end.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::Message;

use super::context::RequestContext;
use super::Reply;
use super::{
    alter_configs, alter_replica_log_dirs, api_versions, configs, delete_records, describe_cluster,
    describe_topic_partitions, features, fetch, find_coordinator, group_admin, groups,
    list_offsets, log_dirs, metadata, offset_for_leader_epoch, offsets, produce, producers,
    reassignments, topics, txn,
};
use crate::protocol::ApiRange;

/// A handler behind the table: the context and the decoded body in, a reply out.
pub type Handler = fn(&RequestContext<'_>, RequestKind) -> Reply;

/// One API Rivulet answers.
#[derive(Clone, Copy)]
pub struct Api {
    /// The API.
    pub key: ApiKey,
    /// Its versions.
    pub range: ApiRange,
    /// Its handler.
    pub handle: Handler,
    /// A valid body with every field at its default, for tests that drive every row.
    pub default_body: fn() -> RequestKind,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("key", &self.key)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Declares one row: `api!(Variant, RequestType, now|reply handler)`, optionally with the
/// advertised minimum (`min = N`) and the default body (`body = expr`). `now` handlers return
/// the response body, `reply` handlers a [`Reply`] (deferred or none).
macro_rules! api {
    ($variant:ident, $req:ident, $kind:ident $handler:path $(, min = $min:expr)? $(, body = $body:expr)?) => {
        Api {
            key: ApiKey::$variant,
            range: ApiRange {
                min: api!(@min $req $(, $min)?),
                served_min: $req::VERSIONS.min,
                max: $req::VERSIONS.max,
            },
            handle: |ctx, body| match body {
                RequestKind::$variant(req) => api!(@call $kind, $variant, $handler, ctx, req),
                // The decoder produced the body for this row's key; anything else is a bug, and
                // closing is what Kafka does with a request it cannot serve.
                _ => Reply::Close,
            },
            default_body: || api!(@body $variant, $req $(, $body)?),
        }
    };
    (@min $req:ident) => { $req::VERSIONS.min };
    (@min $req:ident, $min:expr) => { $min };
    (@call now, $variant:ident, $handler:path, $ctx:ident, $req:ident) => {
        Reply::now(ResponseKind::$variant($handler($ctx, $req)))
    };
    (@call reply, $variant:ident, $handler:path, $ctx:ident, $req:ident) => {
        $handler($ctx, $req)
    };
    (@body $variant:ident, $req:ident) => { RequestKind::$variant($req::default()) };
    (@body $variant:ident, $req:ident, $body:expr) => { RequestKind::$variant($body) };
}

/// Every API Rivulet answers, at the versions that work end to end.
pub static APIS: &[Api] = &[
    // Advertised from v0 although only v3+ (record batch v2) is served: librdkafka sends
    // compressed batches only when Produce v0 is advertised (KAFKA-18659), as Kafka 4 does.
    api!(Produce, ProduceRequest, reply produce::handle, min = 0),
    api!(Fetch, FetchRequest, reply fetch::handle),
    api!(ListOffsets, ListOffsetsRequest, now list_offsets::handle),
    api!(OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, now offset_for_leader_epoch::handle),
    api!(Metadata, MetadataRequest, reply metadata::handle),
    api!(DescribeTopicPartitions, DescribeTopicPartitionsRequest, now describe_topic_partitions::handle),
    api!(ApiVersions, ApiVersionsRequest, now api_versions::handle),
    api!(CreateTopics, CreateTopicsRequest, reply topics::create_topics),
    api!(DeleteTopics, DeleteTopicsRequest, reply topics::delete_topics),
    api!(CreatePartitions, CreatePartitionsRequest, reply topics::create_partitions),
    api!(DeleteRecords, DeleteRecordsRequest, reply delete_records::handle),
    api!(DescribeConfigs, DescribeConfigsRequest, now configs::describe_configs),
    api!(AlterConfigs, AlterConfigsRequest, reply alter_configs::alter_configs),
    api!(IncrementalAlterConfigs, IncrementalAlterConfigsRequest, reply alter_configs::incremental_alter_configs),
    api!(DescribeLogDirs, DescribeLogDirsRequest, now log_dirs::handle),
    api!(AlterReplicaLogDirs, AlterReplicaLogDirsRequest, now alter_replica_log_dirs::handle),
    api!(InitProducerId, InitProducerIdRequest, reply producers::init_producer_id),
    api!(DescribeProducers, DescribeProducersRequest, now producers::describe_producers),
    api!(AddPartitionsToTxn, AddPartitionsToTxnRequest, reply txn::add_partitions_to_txn),
    api!(AddOffsetsToTxn, AddOffsetsToTxnRequest, reply txn::add_offsets_to_txn),
    api!(EndTxn, EndTxnRequest, reply txn::end_txn),
    api!(WriteTxnMarkers, WriteTxnMarkersRequest, reply txn::write_txn_markers),
    api!(TxnOffsetCommit, TxnOffsetCommitRequest, reply txn::txn_offset_commit),
    api!(DescribeTransactions, DescribeTransactionsRequest, now txn::describe_transactions),
    api!(ListTransactions, ListTransactionsRequest, now txn::list_transactions),
    api!(DescribeCluster, DescribeClusterRequest, now describe_cluster::handle),
    api!(UpdateFeatures, UpdateFeaturesRequest, reply features::update_features),
    api!(ElectLeaders, ElectLeadersRequest, now reassignments::elect_leaders),
    api!(AlterPartitionReassignments, AlterPartitionReassignmentsRequest, now reassignments::alter_partition_reassignments),
    api!(ListPartitionReassignments, ListPartitionReassignmentsRequest, now reassignments::list_partition_reassignments),
    // The classic group coordinator. ConsumerGroupHeartbeat/ConsumerGroupDescribe (KIP-848)
    // are deliberately absent: Kafka 4 clients then use the classic protocol and the Java
    // admin falls back from ConsumerGroupDescribe to DescribeGroups.
    api!(FindCoordinator, FindCoordinatorRequest, now find_coordinator::handle),
    api!(JoinGroup, JoinGroupRequest, reply groups::join_group),
    api!(SyncGroup, SyncGroupRequest, reply groups::sync_group),
    api!(Heartbeat, HeartbeatRequest, now groups::heartbeat),
    api!(LeaveGroup, LeaveGroupRequest, now groups::leave_group),
    api!(OffsetCommit, OffsetCommitRequest, reply offsets::offset_commit),
    // Before v2 the topic list is not nullable.
    api!(OffsetFetch, OffsetFetchRequest, now offsets::offset_fetch,
        body = OffsetFetchRequest::default().with_topics(Some(vec![]))),
    api!(ListGroups, ListGroupsRequest, now group_admin::list_groups),
    api!(DescribeGroups, DescribeGroupsRequest, now group_admin::describe_groups),
    api!(DeleteGroups, DeleteGroupsRequest, reply group_admin::delete_groups),
    api!(OffsetDelete, OffsetDeleteRequest, reply offsets::offset_delete),
];

/// The row of an API, if Rivulet answers it at all.
pub fn lookup(key: ApiKey) -> Option<&'static Api> {
    APIS.iter().find(|api| api.key == key)
}

/// The versions of an API, for the decoder.
pub fn range_of(key: ApiKey) -> Option<ApiRange> {
    lookup(key).map(|api| api.range)
}

/// Routes a decoded request to its handler.
pub fn dispatch(ctx: &RequestContext<'_>, body: RequestKind) -> Reply {
    match lookup(ctx.api_key) {
        Some(api) => (api.handle)(ctx, body),
        // The decoder admits no other API, so this never happens; closing is what Kafka does
        // with a request it does not serve.
        None => Reply::Close,
    }
}

/// The table as `rivulet --api-versions` prints it: `key name min served_min max` per line.
pub fn describe() -> String {
    APIS.iter()
        .map(|api| {
            format!(
                "{} {:?} {} {} {}\n",
                api.key as i16, api.key, api.range.min, api.range.served_min, api.range.max
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::frame_of;
    use crate::protocol::decode_request;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn range(key: ApiKey) -> (i16, i16, i16) {
        let r = range_of(key).unwrap();
        (r.min, r.served_min, r.max)
    }

    #[test]
    fn table_matches_the_issue_ranges() {
        assert_eq!(range(ApiKey::ApiVersions), (0, 0, 4));
        assert_eq!(range(ApiKey::Metadata), (0, 0, 13));
        assert_eq!(range(ApiKey::Produce), (0, 3, 13));
        assert!(!range_of(ApiKey::Produce).unwrap().serves(2));
        assert!(range_of(ApiKey::Produce).unwrap().serves(3));
        let ranges = [
            (ApiKey::FindCoordinator, 0, 6),
            (ApiKey::JoinGroup, 0, 9),
            (ApiKey::SyncGroup, 0, 5),
            (ApiKey::Heartbeat, 0, 4),
            (ApiKey::LeaveGroup, 0, 5),
            (ApiKey::OffsetCommit, 2, 9),
            (ApiKey::OffsetFetch, 1, 9),
            (ApiKey::ListGroups, 0, 5),
            (ApiKey::DescribeGroups, 0, 6),
            (ApiKey::DeleteGroups, 0, 2),
            (ApiKey::OffsetDelete, 0, 0),
        ];
        for (key, min, max) in ranges {
            assert_eq!(range(key), (min, min, max), "{key:?}");
        }
        // KIP-848 APIs stay unadvertised until the new protocol is implemented.
        assert!(lookup(ApiKey::ConsumerGroupHeartbeat).is_none());
        assert!(lookup(ApiKey::ConsumerGroupDescribe).is_none());
        let keys: std::collections::BTreeSet<i16> = APIS.iter().map(|a| a.key as i16).collect();
        assert_eq!(keys.len(), APIS.len(), "each API declared once");
    }

    #[test]
    fn every_served_version_is_decodable_by_the_crate() {
        for api in APIS {
            let crate_range = api.key.valid_versions();
            assert!(api.range.max <= crate_range.max, "{:?}", api.key);
        }
    }

    #[test]
    fn every_served_version_round_trips_through_the_decoder() {
        for api in APIS {
            for version in api.range.served_min..=api.range.max {
                let f = frame_of(api.key, version, (api.default_body)());
                let r = decode_request(Bytes::from(f), range_of)
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", api.key));
                assert_eq!(r.api_key, api.key);
            }
        }
    }

    #[test]
    fn the_description_lists_every_row() {
        let text = describe();
        assert_eq!(text.lines().count(), APIS.len());
        assert!(text.lines().any(|l| l == "0 Produce 0 3 13"), "{text}");
    }

    /// A broker on a fresh directory and port 0, for driving handlers directly.
    async fn test_broker(dir: &std::path::Path) -> crate::server::ServerHandle {
        let mut s = std::collections::BTreeMap::new();
        s.insert("log.dirs".to_string(), dir.display().to_string());
        s.insert(
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        );
        let config = crate::config::Config::from_settings(s).unwrap();
        crate::server::start(config).await.unwrap()
    }

    /// Every row of the table, at every version it serves, reaches its handler and gets an
    /// answer (a default body is valid at every version): no row falls through to a close.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_advertised_row_dispatches() {
        let dir = tempfile::tempdir().unwrap();
        let server = test_broker(dir.path()).await;
        let broker = server.broker.clone();
        let session = super::super::context::Session::new();
        for api in APIS {
            for version in api.range.served_min..=api.range.max {
                let header = RequestHeader::default()
                    .with_request_api_key(api.key as i16)
                    .with_request_api_version(version);
                let ctx = RequestContext {
                    broker: &broker,
                    header: &header,
                    api_key: api.key,
                    version,
                    peer: None,
                    listener: &broker.listeners[0],
                    session: &session,
                };
                let answered = match dispatch(&ctx, (api.default_body)()) {
                    Reply::Now(body) => Some(*body),
                    Reply::Later(fut) => Some(fut.await),
                    // Produce's default is acks=0: no answer is the answer.
                    Reply::Serial(work) => match work.await {
                        Reply::Now(body) => Some(*body),
                        Reply::Later(fut) => Some(fut.await),
                        _ => None,
                    },
                    Reply::Nothing => None,
                    Reply::Close => panic!("{:?} v{version} closed the connection", api.key),
                };
                if let Some(body) = answered {
                    // The answer encodes at the request's version.
                    crate::protocol::encode_response(api.key, version, 1, &body)
                        .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", api.key));
                } else {
                    assert_eq!(api.key, ApiKey::Produce);
                }
            }
        }
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_versions_answers_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let server = test_broker(dir.path()).await;
        let header = RequestHeader::default();
        let session = super::super::context::Session::new();
        let ctx = RequestContext {
            broker: &server.broker,
            header: &header,
            api_key: ApiKey::ApiVersions,
            version: 3,
            peer: None,
            listener: &server.broker.listeners[0],
            session: &session,
        };
        let resp = api_versions::handle(&ctx, ApiVersionsRequest::default());
        let answered: Vec<(i16, i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let table: Vec<(i16, i16, i16)> = APIS
            .iter()
            .map(|a| (a.key as i16, a.range.min, a.range.max))
            .collect();
        assert_eq!(answered, table);
        server.shutdown().await;
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The frame decoder's fuzz target: arbitrary bytes never panic or abort.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(Bytes::from(bytes), range_of);
        }

        /// Valid frames of every served API with bytes flipped or cut off: an error or a
        /// request, never a panic or a huge allocation.
        #[test]
        fn mutated_frames_never_panic(
            index in 0usize..APIS.len(),
            version_pick in any::<u16>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let api = APIS[index];
            let span = (api.range.max - api.range.served_min + 1) as u16;
            let version = api.range.served_min + (version_pick % span) as i16;
            let mut f = frame_of(api.key, version, (api.default_body)());
            for (at, x) in flips {
                let len = f.len();
                f[at % len] ^= x;
            }
            let cut = cut % (f.len() + 1);
            f.truncate(cut);
            let _ = decode_request(Bytes::from(f), range_of);
        }
    }
}
