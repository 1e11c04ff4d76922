//! The authorization hook on the wire: with an authorizer that refuses every operation on the
//! topic `secret`, the group `secret-group`, the transactional id `secret-txn`, and CREATE and
//! DELETE on the cluster (which would allow them on every topic), each API answers Kafka's `*_AUTHORIZATION_FAILED` code where Kafka checks an ACL, and
//! serves what is allowed in the same request unchanged. (Without an authorizer, the default,
//! everything is allowed: every other protocol test.)

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rivulet::handlers::context::{
    AclOperation, Authorizer, KafkaPrincipal, Resource, ResourceType,
};
use rivulet::server::ServerOptions;

use crate::every_version::{fetch, list_offset, name, produce};
use crate::groups::{gid, join_request, s};
use crate::harness::{batch, Client, TestBroker};

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const TXN_DENIED: i16 = 53;

/// Refuses everything on `secret`, `secret-group`, `secret-txn`, and CREATE and DELETE on the
/// cluster.
#[derive(Debug)]
struct DenySecrets;

impl Authorizer for DenySecrets {
    fn authorize(&self, _: &KafkaPrincipal, op: AclOperation, resource: Resource<'_>) -> bool {
        match resource {
            Resource::Topic(t) => t != "secret",
            Resource::Group(g) => g != "secret-group",
            Resource::TransactionalId(t) => t != "secret-txn",
            Resource::Cluster => !matches!(op, AclOperation::Create | AclOperation::Delete),
        }
    }

    fn authorize_any(&self, _: &KafkaPrincipal, _: AclOperation, _: ResourceType) -> bool {
        true
    }
}

async fn broker() -> (TestBroker, Client) {
    let broker = TestBroker::start_with(
        &[],
        ServerOptions {
            authorizer: Arc::new(DenySecrets),
            ..ServerOptions::default()
        },
    )
    .await;
    // Created in-process: CreateTopics would (rightly) refuse `secret`.
    for t in ["secret", "open"] {
        broker
            .broker()
            .topics
            .create_topic(t, 1, 1, BTreeMap::new(), false)
            .unwrap();
    }
    let c = broker.client().await;
    (broker, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_acls_are_checked_where_kafka_checks_them() {
    let (broker, mut c) = broker().await;
    let open_id = broker.broker().topics.get("open").unwrap().id;
    let secret_id = broker.broker().topics.get("secret").unwrap().id;
    let b = || batch(2, Compression::None, 1_700_000_000_000);
    assert_eq!(
        produce(&mut c, 9, "secret", secret_id, 0, b(), 1).await.0,
        TOPIC_DENIED
    );
    assert_eq!(
        produce(&mut c, 13, "secret", secret_id, 0, b(), 1).await.0,
        TOPIC_DENIED
    );
    assert_eq!(produce(&mut c, 9, "open", open_id, 0, b(), 1).await, (0, 0));
    assert_eq!(
        fetch(&mut c, 12, "secret", secret_id, 0, 0)
            .await
            .error_code,
        TOPIC_DENIED
    );
    assert_eq!(
        fetch(&mut c, 16, "secret", secret_id, 0, 0)
            .await
            .error_code,
        TOPIC_DENIED
    );
    assert_eq!(fetch(&mut c, 12, "open", open_id, 0, 0).await.error_code, 0);
    assert_eq!(
        list_offset(&mut c, 7, "secret", 0, -1).await.0,
        TOPIC_DENIED
    );
    assert_eq!(list_offset(&mut c, 7, "open", 0, -1).await, (0, 2, -1));

    // Metadata: left out of "all topics", refused by name, not auto-created unseen.
    let metadata = |topics: Option<Vec<&str>>| {
        MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.into_iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(true)
    };
    let ResponseKind::Metadata(all) = c
        .request(ApiKey::Metadata, 12, RequestKind::Metadata(metadata(None)))
        .await
    else {
        panic!()
    };
    let names: Vec<_> = all
        .topics
        .iter()
        .map(|t| t.name.clone().unwrap().to_string())
        .collect();
    assert_eq!(names, ["open"]);
    let ResponseKind::Metadata(named) = c
        .request(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(metadata(Some(vec!["secret", "open", "fresh"]))),
        )
        .await
    else {
        panic!()
    };
    let codes: Vec<i16> = named.topics.iter().map(|t| t.error_code).collect();
    // "fresh" is created: CREATE on the topic is allowed although not on the cluster.
    assert_eq!(codes, [TOPIC_DENIED, 0, 0]);
    assert!(named.topics[0].partitions.is_empty());

    // Topic admin.
    let ResponseKind::CreateTopics(created) = c
        .request(
            ApiKey::CreateTopics,
            7,
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name("secret"))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ])),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(created.topics[0].error_code, TOPIC_DENIED);
    assert_eq!(
        created.topics[0].error_message.as_deref(),
        Some("Authorization failed.")
    );
    let ResponseKind::DeleteTopics(deleted) = c
        .request(
            ApiKey::DeleteTopics,
            6,
            RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name("secret"))),
            ])),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(deleted.responses[0].error_code, TOPIC_DENIED);
    assert!(broker.broker().topics.get("secret").is_some());
    let ResponseKind::DeleteRecords(dr) = c
        .request(
            ApiKey::DeleteRecords,
            2,
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(name("secret"))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(-1)]),
            ])),
        )
        .await
    else {
        panic!()
    };
    let p = &dr.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (TOPIC_DENIED, -1));
    let ResponseKind::DescribeConfigs(dc) = c
        .request(
            ApiKey::DescribeConfigs,
            4,
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("secret")),
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("open")),
            ])),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(
        dc.results.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        [TOPIC_DENIED, 0]
    );
    assert!(dc.results[0].configs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_transactional_id_acls() {
    let (_broker, mut c) = broker().await;
    let ResponseKind::JoinGroup(join) = c
        .request(
            ApiKey::JoinGroup,
            9,
            RequestKind::JoinGroup(join_request(9, "secret-group", "", None, &["open"])),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(join.error_code, GROUP_DENIED);
    let ResponseKind::Heartbeat(hb) = c
        .request(
            ApiKey::Heartbeat,
            4,
            RequestKind::Heartbeat(
                HeartbeatRequest::default()
                    .with_group_id(gid("secret-group"))
                    .with_member_id(s("m")),
            ),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(hb.error_code, GROUP_DENIED);
    let commit = |group: &str| {
        OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(
                ["secret", "open"]
                    .iter()
                    .map(|t| {
                        OffsetCommitRequestTopic::default()
                            .with_name(name(t))
                            .with_partitions(vec![OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)])
                    })
                    .collect(),
            )
    };
    let codes = |r: &OffsetCommitResponse| -> Vec<i16> {
        r.topics
            .iter()
            .map(|t| t.partitions[0].error_code)
            .collect()
    };
    let ResponseKind::OffsetCommit(denied) = c
        .request(
            ApiKey::OffsetCommit,
            9,
            RequestKind::OffsetCommit(commit("secret-group")),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(codes(&denied), [GROUP_DENIED, GROUP_DENIED]);
    let ResponseKind::OffsetCommit(partly) = c
        .request(
            ApiKey::OffsetCommit,
            9,
            RequestKind::OffsetCommit(commit("g")),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(codes(&partly), [TOPIC_DENIED, 0]);
    let ResponseKind::OffsetFetch(fetched) = c
        .request(
            ApiKey::OffsetFetch,
            9,
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid("secret-group"))
                    .with_topics(None),
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid("g"))
                    .with_topics(None),
            ])),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(fetched.groups[0].error_code, GROUP_DENIED);
    assert_eq!(fetched.groups[1].error_code, 0);
    // The topic the principal may not describe is left out of "all offsets".
    let topics: Vec<_> = fetched.groups[1]
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(topics, ["open"]);
    let ResponseKind::DescribeGroups(described) = c
        .request(
            ApiKey::DescribeGroups,
            5,
            RequestKind::DescribeGroups(
                DescribeGroupsRequest::default().with_groups(vec![gid("secret-group"), gid("g")]),
            ),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(
        described
            .groups
            .iter()
            .map(|g| g.error_code)
            .collect::<Vec<_>>(),
        [GROUP_DENIED, 0]
    );
    let ResponseKind::DeleteGroups(deleted) = c
        .request(
            ApiKey::DeleteGroups,
            2,
            RequestKind::DeleteGroups(
                DeleteGroupsRequest::default().with_groups_names(vec![gid("secret-group")]),
            ),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(deleted.results[0].error_code, GROUP_DENIED);
    let ResponseKind::FindCoordinator(found) = c
        .request(
            ApiKey::FindCoordinator,
            4,
            RequestKind::FindCoordinator(
                FindCoordinatorRequest::default()
                    .with_coordinator_keys(vec![s("secret-group"), s("g")]),
            ),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(
        found
            .coordinators
            .iter()
            .map(|c| c.error_code)
            .collect::<Vec<_>>(),
        [GROUP_DENIED, 0]
    );
    let ResponseKind::InitProducerId(init) = c
        .request(
            ApiKey::InitProducerId,
            5,
            RequestKind::InitProducerId(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(
                        "secret-txn",
                    ))))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(init.error_code, TXN_DENIED);
}
