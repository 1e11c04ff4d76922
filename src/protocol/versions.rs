//! The single table of supported APIs and versions: it answers ApiVersions and validates every
//! request. Ranges come from each message type's `VERSIONS` in the kafka-protocol crate (what its
//! structs can decode), never from `ApiKey::valid_versions()`.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, DescribeProducersRequest, FetchRequest, FindCoordinatorRequest,
    HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, ProduceRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::Message;

/// One supported API: the range advertised and the lowest version actually served.
#[derive(Debug, Clone, Copy)]
pub struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// Lowest version advertised in ApiVersions.
    pub min: i16,
    /// Highest version advertised and served.
    pub max: i16,
    /// Lowest version served; requests below it close the connection as Kafka 4 does.
    pub served_min: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange {
        key,
        min,
        max,
        served_min: min,
    }
}

/// Every API Rivulet answers, at the versions that work end to end.
pub const SUPPORTED: &[ApiRange] = &[
    // Advertised from v0 although only v3+ (record batch v2) is served: librdkafka sends
    // compressed batches only when Produce v0 is advertised (KAFKA-18659), as Kafka 4 does.
    ApiRange {
        key: ApiKey::Produce,
        min: 0,
        max: ProduceRequest::VERSIONS.max,
        served_min: ProduceRequest::VERSIONS.min,
    },
    range(
        ApiKey::Fetch,
        FetchRequest::VERSIONS.min,
        FetchRequest::VERSIONS.max,
    ),
    range(
        ApiKey::ListOffsets,
        ListOffsetsRequest::VERSIONS.min,
        ListOffsetsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::Metadata,
        MetadataRequest::VERSIONS.min,
        MetadataRequest::VERSIONS.max,
    ),
    range(
        ApiKey::ApiVersions,
        ApiVersionsRequest::VERSIONS.min,
        ApiVersionsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::CreateTopics,
        CreateTopicsRequest::VERSIONS.min,
        CreateTopicsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DeleteTopics,
        DeleteTopicsRequest::VERSIONS.min,
        DeleteTopicsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::CreatePartitions,
        CreatePartitionsRequest::VERSIONS.min,
        CreatePartitionsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DeleteRecords,
        DeleteRecordsRequest::VERSIONS.min,
        DeleteRecordsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DescribeConfigs,
        DescribeConfigsRequest::VERSIONS.min,
        DescribeConfigsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::InitProducerId,
        InitProducerIdRequest::VERSIONS.min,
        InitProducerIdRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DescribeProducers,
        DescribeProducersRequest::VERSIONS.min,
        DescribeProducersRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DescribeCluster,
        DescribeClusterRequest::VERSIONS.min,
        DescribeClusterRequest::VERSIONS.max,
    ),
    // The classic group coordinator. ConsumerGroupHeartbeat/ConsumerGroupDescribe (KIP-848)
    // are deliberately absent: Kafka 4 clients then use the classic protocol and the Java
    // admin falls back from ConsumerGroupDescribe to DescribeGroups.
    range(
        ApiKey::FindCoordinator,
        FindCoordinatorRequest::VERSIONS.min,
        FindCoordinatorRequest::VERSIONS.max,
    ),
    range(
        ApiKey::JoinGroup,
        JoinGroupRequest::VERSIONS.min,
        JoinGroupRequest::VERSIONS.max,
    ),
    range(
        ApiKey::SyncGroup,
        SyncGroupRequest::VERSIONS.min,
        SyncGroupRequest::VERSIONS.max,
    ),
    range(
        ApiKey::Heartbeat,
        HeartbeatRequest::VERSIONS.min,
        HeartbeatRequest::VERSIONS.max,
    ),
    range(
        ApiKey::LeaveGroup,
        LeaveGroupRequest::VERSIONS.min,
        LeaveGroupRequest::VERSIONS.max,
    ),
    range(
        ApiKey::OffsetCommit,
        OffsetCommitRequest::VERSIONS.min,
        OffsetCommitRequest::VERSIONS.max,
    ),
    range(
        ApiKey::OffsetFetch,
        OffsetFetchRequest::VERSIONS.min,
        OffsetFetchRequest::VERSIONS.max,
    ),
    range(
        ApiKey::ListGroups,
        ListGroupsRequest::VERSIONS.min,
        ListGroupsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DescribeGroups,
        DescribeGroupsRequest::VERSIONS.min,
        DescribeGroupsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::DeleteGroups,
        DeleteGroupsRequest::VERSIONS.min,
        DeleteGroupsRequest::VERSIONS.max,
    ),
    range(
        ApiKey::OffsetDelete,
        OffsetDeleteRequest::VERSIONS.min,
        OffsetDeleteRequest::VERSIONS.max,
    ),
];

/// The supported range of an API, if Rivulet answers it at all.
pub fn supported(key: ApiKey) -> Option<&'static ApiRange> {
    SUPPORTED.iter().find(|r| r.key == key)
}

/// Whether a request at `version` is served (not merely advertised).
pub fn is_served(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|r| version >= r.served_min && version <= r.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_issue_ranges() {
        let r = supported(ApiKey::ApiVersions).unwrap();
        assert_eq!((r.min, r.max), (0, 4));
        let r = supported(ApiKey::Metadata).unwrap();
        assert_eq!((r.min, r.max), (0, 13));
        let r = supported(ApiKey::Produce).unwrap();
        assert_eq!((r.min, r.served_min, r.max), (0, 3, 13));
        assert!(!is_served(ApiKey::Produce, 2));
        assert!(is_served(ApiKey::Produce, 3));
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
            let r = supported(key).unwrap();
            assert_eq!((r.min, r.served_min, r.max), (min, min, max), "{key:?}");
        }
        // KIP-848 APIs stay unadvertised until the new protocol is implemented.
        assert!(supported(ApiKey::ConsumerGroupHeartbeat).is_none());
        assert!(supported(ApiKey::ConsumerGroupDescribe).is_none());
    }

    #[test]
    fn every_served_version_is_decodable_by_the_crate() {
        for r in SUPPORTED {
            let crate_range = r.key.valid_versions();
            assert!(r.max <= crate_range.max, "{:?}", r.key);
        }
    }
}
