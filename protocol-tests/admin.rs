//! The admin surface: Metadata by topic id (v12+) and OffsetForLeaderEpoch (v2-4), with their
//! error paths, as a single-node Kafka answers them.

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use uuid::Uuid;

use crate::every_version::{create_topic, name, produce};
use crate::harness::{batch, Client, TestBroker};

async fn metadata(
    c: &mut Client,
    version: i16,
    topics: Vec<MetadataRequestTopic>,
) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false);
    let ResponseKind::Metadata(r) = c
        .request(ApiKey::Metadata, version, RequestKind::Metadata(req))
        .await
    else {
        panic!()
    };
    r
}

fn by_id(id: Uuid) -> MetadataRequestTopic {
    MetadataRequestTopic::default()
        .with_topic_id(id)
        .with_name(None)
}

fn by_name(topic: &str) -> MetadataRequestTopic {
    MetadataRequestTopic::default().with_name(Some(name(topic)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_answers_topics_by_id_from_v12() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "by-id", 3, &[]).await;
    create_topic(&mut c, "by-name", 1, &[]).await;
    for v in 12..=13 {
        let r = metadata(&mut c, v, vec![by_id(id)]).await;
        let t = &r.topics[0];
        assert_eq!(t.error_code, 0, "v{v}");
        assert_eq!(t.name.as_ref().map(|n| n.as_str()), Some("by-id"));
        assert_eq!((t.topic_id, t.partitions.len()), (id, 3));
        // An empty name beside the id is the id's topic too.
        let r = metadata(&mut c, v, vec![by_id(id).with_name(Some(name("")))]).await;
        assert_eq!(r.topics[0].name.as_ref().map(|n| n.as_str()), Some("by-id"));
        // Unknown ids: UNKNOWN_TOPIC_ID, no name.
        let unknown = Uuid::from_u128(42);
        let r = metadata(&mut c, v, vec![by_id(unknown)]).await;
        assert_eq!(
            (r.topics[0].error_code, r.topics[0].topic_id),
            (100, unknown)
        );
        assert!(r.topics[0].name.is_none());
        // With ids in the request, name-only entries are not answered (Kafka drops them).
        let r = metadata(&mut c, v, vec![by_name("by-name"), by_id(id), by_id(id)]).await;
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].topic_id, id);
    }
    // v10 and v11 have the fields, but Kafka never served ids there: INVALID_REQUEST for all.
    for v in 10..=11 {
        let r = metadata(&mut c, v, vec![by_id(id), by_name("by-name")]).await;
        let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, vec![42, 42], "v{v}");
    }
    // By name, every version from 10 carries the real id.
    let r = metadata(&mut c, 10, vec![by_name("by-name")]).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert!(!r.topics[0].topic_id.is_nil());
}

async fn end_offset(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    current: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])]);
    let ResponseKind::OffsetForLeaderEpoch(r) = c
        .request(
            ApiKey::OffsetForLeaderEpoch,
            version,
            RequestKind::OffsetForLeaderEpoch(req),
        )
        .await
    else {
        panic!()
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_for_leader_epoch_at_every_version() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "epochs", 1, &[]).await;
    create_topic(&mut c, "empty", 1, &[]).await;
    assert_eq!(
        produce(
            &mut c,
            9,
            "epochs",
            id,
            0,
            batch(3, Compression::None, 1_000),
            -1
        )
        .await,
        (0, 0)
    );
    for v in 2..=4 {
        // The current epoch ends at the log end offset (not the high watermark: no isolation).
        assert_eq!(
            end_offset(&mut c, v, "epochs", 0, -1, 0).await,
            (0, 0, 3),
            "v{v}"
        );
        assert_eq!(
            end_offset(&mut c, v, "epochs", 0, 0, 0).await,
            (0, 0, 3),
            "v{v}"
        );
        // A leader with no batch yet still knows its epoch.
        assert_eq!(
            end_offset(&mut c, v, "empty", 0, -1, 0).await,
            (0, 0, 0),
            "v{v}"
        );
        // An unknown future epoch: undefined, no error.
        assert_eq!(
            end_offset(&mut c, v, "epochs", 0, -1, 7).await,
            (0, -1, -1),
            "v{v}"
        );
        // The client's view of the current epoch is newer than ours: UNKNOWN_LEADER_EPOCH.
        assert_eq!(end_offset(&mut c, v, "epochs", 0, 3, 0).await.0, 75, "v{v}");
        assert_eq!(end_offset(&mut c, v, "nope", 0, -1, 0).await.0, 3, "v{v}");
        assert_eq!(end_offset(&mut c, v, "epochs", 5, -1, 0).await.0, 3, "v{v}");
    }
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    assert_eq!(
        end_offset(&mut c, 4, "epochs", 0, 0, 0).await,
        (0, 0, 3),
        "after a restart"
    );
}

async fn describe_partitions(
    c: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(name(t))
                .with_partition_index(p)
        }));
    let ResponseKind::DescribeTopicPartitions(r) = c
        .request(
            ApiKey::DescribeTopicPartitions,
            0,
            RequestKind::DescribeTopicPartitions(req),
        )
        .await
    else {
        panic!()
    };
    r
}

/// One topic of a page: name, error, partition indexes.
type Described = (String, i16, Vec<i32>);

/// Each topic of a page, and the next cursor.
fn page(r: &DescribeTopicPartitionsResponse) -> (Vec<Described>, Option<(String, i32)>) {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let cursor = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    (topics, cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topic_partitions_pages_by_a_partition_limit() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "dtp-a", 3, &[]).await;
    create_topic(&mut c, "dtp-b", 2, &[]).await;
    create_topic(&mut c, "dtp-c", 1, &[]).await;
    let s = |v: &str| v.to_string();
    // Sorted by name; a topic cut short sets the cursor to its first partition not returned.
    let r = describe_partitions(&mut c, &["dtp-c", "dtp-a", "dtp-b", "dtp-missing"], 4, None).await;
    assert_eq!(
        page(&r),
        (
            vec![(s("dtp-a"), 0, vec![0, 1, 2]), (s("dtp-b"), 0, vec![0])],
            Some((s("dtp-b"), 1))
        )
    );
    let r = describe_partitions(
        &mut c,
        &["dtp-c", "dtp-a", "dtp-b", "dtp-missing"],
        4,
        Some(("dtp-b", 1)),
    )
    .await;
    assert_eq!(
        page(&r),
        (
            vec![
                (s("dtp-b"), 0, vec![1]),
                (s("dtp-c"), 0, vec![0]),
                (s("dtp-missing"), 3, vec![])
            ],
            None
        )
    );
    // A limit filled exactly at a topic boundary points at the next topic's partition 0.
    let r = describe_partitions(&mut c, &["dtp-a", "dtp-b"], 3, None).await;
    assert_eq!(
        page(&r),
        (vec![(s("dtp-a"), 0, vec![0, 1, 2])], Some((s("dtp-b"), 0)))
    );
    // A limit below 1 acts as 1.
    let r = describe_partitions(&mut c, &["dtp-c"], 0, None).await;
    assert_eq!(page(&r), (vec![(s("dtp-c"), 0, vec![0])], None));
    // Every topic when none is named; ids and leaders filled in.
    let r = describe_partitions(&mut c, &[], 2000, None).await;
    let names: Vec<String> = page(&r).0.into_iter().map(|t| t.0).collect();
    assert_eq!(names, vec![s("dtp-a"), s("dtp-b"), s("dtp-c")]);
    assert!(r.topics.iter().all(|t| !t.topic_id.is_nil()));
    assert!(r.topics[0]
        .partitions
        .iter()
        .all(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 1));
    // A cursor on a topic that is not in the list: INVALID_REQUEST for every topic.
    let r = describe_partitions(&mut c, &["dtp-a", "dtp-b"], 10, Some(("dtp-c", 0))).await;
    assert_eq!(
        page(&r),
        (
            vec![(s("dtp-a"), 42, vec![]), (s("dtp-b"), 42, vec![])],
            None
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_and_reassignments_as_a_single_node_answers_them() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "lead", 2, &[]).await;
    for v in 0..=2 {
        let req = ElectLeadersRequest::default()
            .with_timeout_ms(5000)
            .with_topic_partitions(Some(vec![
                TopicPartitions::default()
                    .with_topic(name("lead"))
                    .with_partitions(vec![0, 1]),
                TopicPartitions::default()
                    .with_topic(name("ghost"))
                    .with_partitions(vec![0]),
            ]));
        let ResponseKind::ElectLeaders(r) = c
            .request(ApiKey::ElectLeaders, v, RequestKind::ElectLeaders(req))
            .await
        else {
            panic!()
        };
        let codes: Vec<Vec<i16>> = r
            .replica_election_results
            .iter()
            .map(|t| t.partition_result.iter().map(|p| p.error_code).collect())
            .collect();
        assert_eq!(
            codes,
            vec![vec![84, 84], vec![3]],
            "v{v}: ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION"
        );
    }
    // All partitions (null): each topic listed, its partitions needing no election left out.
    let req = ElectLeadersRequest::default()
        .with_timeout_ms(5000)
        .with_topic_partitions(None);
    let ResponseKind::ElectLeaders(r) = c
        .request(ApiKey::ElectLeaders, 2, RequestKind::ElectLeaders(req))
        .await
    else {
        panic!()
    };
    assert_eq!(r.replica_election_results.len(), 1);
    assert!(r.replica_election_results[0].partition_result.is_empty());
    for v in 0..=1 {
        let target = |replicas: Option<Vec<i32>>| {
            ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
        };
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(name("lead"))
                .with_partitions(vec![
                    target(Some(vec![1])),
                    target(Some(vec![2])),
                    target(Some(vec![1, 1])),
                    target(None),
                ])]);
        let ResponseKind::AlterPartitionReassignments(r) = c
            .request(
                ApiKey::AlterPartitionReassignments,
                v,
                RequestKind::AlterPartitionReassignments(req),
            )
            .await
        else {
            panic!()
        };
        let codes: Vec<i16> = r.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![0, 39, 39, 85], "v{v}");
    }
    let req = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(None);
    let ResponseKind::ListPartitionReassignments(r) = c
        .request(
            ApiKey::ListPartitionReassignments,
            0,
            RequestKind::ListPartitionReassignments(req),
        )
        .await
    else {
        panic!()
    };
    assert_eq!((r.error_code, r.topics.len()), (0, 0));
}

/// KIP-467: a compacted topic refuses a batch with keyless records, naming each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_on_a_compacted_topic_are_named_by_index() {
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use rivulet::test_support::{encode, record};
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let key = |k: Option<&str>| k.map(|k| Bytes::from(k.to_string()));
    let records: Vec<_> = [Some("a"), None, Some("b"), None]
        .iter()
        .enumerate()
        .map(|(i, k)| record(i as i64, 0, 1_000, key(*k), Some(Bytes::from_static(b"v"))))
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("compacted"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(encode(&records, Compression::None)))])]);
    let ResponseKind::Produce(r) = c
        .request(ApiKey::Produce, 11, RequestKind::Produce(req))
        .await
    else {
        panic!()
    };
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1, 3]);
    let message = p.record_errors[0]
        .batch_index_error_message
        .as_ref()
        .unwrap();
    assert_eq!(
        message.as_str(),
        "Compacted topic cannot accept message without key in topic partition compacted-0."
    );
    assert!(p
        .error_message
        .as_ref()
        .unwrap()
        .starts_with("One or more records have been rejected due to 2 record errors"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_at_every_version() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "dirs", 2, &[]).await;
    create_topic(&mut c, "dirs-other", 1, &[]).await;
    assert_eq!(
        produce(
            &mut c,
            9,
            "dirs",
            id,
            1,
            batch(5, Compression::None, 1_000),
            -1
        )
        .await
        .0,
        0
    );
    for v in 1..=4 {
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(name("dirs"))
                .with_partitions(vec![0, 1, 9]),
        ]));
        let ResponseKind::DescribeLogDirs(r) = c
            .request(
                ApiKey::DescribeLogDirs,
                v,
                RequestKind::DescribeLogDirs(req),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(r.results.len(), 1, "v{v}: one log dir");
        let dir = &r.results[0];
        assert_eq!(dir.error_code, 0);
        assert!(!dir.log_dir.is_empty());
        assert_eq!(dir.topics.len(), 1, "v{v}: only the requested topic");
        let sizes: Vec<(i32, i64, i64)> = dir.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.partition_size, p.offset_lag))
            .collect();
        assert_eq!(sizes.len(), 2, "v{v}: partition 9 does not exist here");
        assert_eq!((sizes[0].0, sizes[0].1, sizes[0].2), (0, 0, 0));
        assert!(sizes[1].1 > 0, "v{v}: partition 1 holds a batch: {sizes:?}");
        if v >= 4 {
            assert!(
                dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes
            );
        }
    }
    // Every partition when no topic is named.
    let ResponseKind::DescribeLogDirs(r) = c
        .request(
            ApiKey::DescribeLogDirs,
            4,
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None)),
        )
        .await
    else {
        panic!()
    };
    let names: Vec<&str> = r.results[0]
        .topics
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, vec!["dirs", "dirs-other"]);
}

/// KIP-320: Fetch and ListOffsets check the client's view of the leader epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_list_offsets_check_the_current_leader_epoch() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "epoch-check", 1, &[]).await;
    for (epoch, want) in [(-1, 0), (0, 0), (4, 75)] {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name("epoch-check"))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(epoch)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let ResponseKind::Fetch(r) = c.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)).await
        else {
            panic!()
        };
        assert_eq!(
            r.responses[0].partitions[0].error_code, want,
            "Fetch, epoch {epoch}"
        );
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("epoch-check"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(epoch)
                    .with_timestamp(-1)])]);
        let ResponseKind::ListOffsets(r) = c
            .request(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
            .await
        else {
            panic!()
        };
        assert_eq!(
            r.topics[0].partitions[0].error_code, want,
            "ListOffsets, epoch {epoch}"
        );
    }
}
