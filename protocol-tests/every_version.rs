//! Every advertised API at every served version: a request a real client would send, and the
//! exact answer Kafka gives (error codes, offsets, ids).

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rivulet::handlers::registry::range_of as supported;
use uuid::Uuid;

use crate::harness::{batch, Client, TestBroker};

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn served(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = supported(key).expect("supported");
    r.served_min..=r.max
}

/// Creates a topic at CreateTopics v7 and returns its id.
pub async fn create_topic(
    c: &mut Client,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Uuid {
    let t = CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(5000);
    let ResponseKind::CreateTopics(resp) = c
        .request(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
    resp.topics[0].topic_id
}

/// Produces `records` to one partition at `version`; returns (error code, base offset).
pub async fn produce(
    c: &mut Client,
    version: i16,
    topic: &str,
    topic_id: Uuid,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    produce_as(
        c,
        version,
        (topic, topic_id, partition),
        None,
        records,
        acks,
    )
    .await
}

/// Produces `records` to (topic, id, partition) at `version`, with the request's transactional
/// id; returns (error code, base offset).
pub async fn produce_as(
    c: &mut Client,
    version: i16,
    (topic, topic_id, partition): (&str, Uuid, i32),
    transactional_id: Option<&str>,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    let mut td =
        TopicProduceData::default().with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records))]);
    if version >= 13 {
        td.topic_id = topic_id;
    } else {
        td.name = name(topic);
    }
    let req = ProduceRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string()))),
        )
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![td]);
    let ResponseKind::Produce(resp) = c
        .request(ApiKey::Produce, version, RequestKind::Produce(req))
        .await
    else {
        panic!("wrong kind")
    };
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Fetches one partition at `version` without waiting.
pub async fn fetch(
    c: &mut Client,
    version: i16,
    topic: &str,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
) -> fetch_response::PartitionData {
    let mut ft = FetchTopic::default().with_partitions(vec![FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)]);
    if version >= 13 {
        ft.topic_id = topic_id;
    } else {
        ft.topic = name(topic);
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![ft]);
    let ResponseKind::Fetch(resp) = c
        .request(ApiKey::Fetch, version, RequestKind::Fetch(req))
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(resp.error_code, 0);
    resp.responses[0].partitions[0].clone()
}

/// ListOffsets for one partition at `version`; returns (error, offset, timestamp).
pub async fn list_offset(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let ResponseKind::ListOffsets(resp) = c
        .request(ApiKey::ListOffsets, version, RequestKind::ListOffsets(req))
        .await
    else {
        panic!("wrong kind")
    };
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_list_offsets_at_every_version() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "versions", 1, &[]).await;
    let mut expected_offset = 0i64;
    for v in served(ApiKey::Produce) {
        let n = (v as usize % 3) + 1;
        let (err, base) = produce(
            &mut c,
            v,
            "versions",
            id,
            0,
            batch(n, Compression::None, 1_000),
            -1,
        )
        .await;
        assert_eq!((err, base), (0, expected_offset), "Produce v{v}");
        expected_offset += n as i64;
    }
    for v in served(ApiKey::Fetch) {
        let p = fetch(&mut c, v, "versions", id, 0, 0).await;
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(
            p.high_watermark, expected_offset,
            "Fetch v{v} high watermark"
        );
        assert_eq!(
            p.last_stable_offset, expected_offset,
            "Fetch v{v} last stable offset"
        );
        if v >= 5 {
            assert_eq!(p.log_start_offset, 0, "Fetch v{v} log start");
        }
        let records = p.records.expect("records");
        let mut buf = records.clone();
        let sets =
            kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).expect("decode");
        let offsets: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(
            offsets,
            (0..expected_offset).collect::<Vec<_>>(),
            "Fetch v{v} offsets"
        );
        // At the log end: no records, no error.
        let p = fetch(&mut c, v, "versions", id, 0, expected_offset).await;
        assert_eq!(
            (p.error_code, p.records.map(|r| r.len())),
            (0, Some(0)),
            "Fetch v{v} at end"
        );
        // Past the end: OFFSET_OUT_OF_RANGE.
        let p = fetch(&mut c, v, "versions", id, 0, expected_offset + 1).await;
        assert_eq!(p.error_code, 1, "Fetch v{v} out of range");
    }
    for v in served(ApiKey::ListOffsets) {
        assert_eq!(
            list_offset(&mut c, v, "versions", 0, -1).await,
            (0, expected_offset, -1),
            "ListOffsets v{v} latest"
        );
        assert_eq!(
            list_offset(&mut c, v, "versions", 0, -2).await,
            (0, 0, -1),
            "ListOffsets v{v} earliest"
        );
        // Every batch's records are stamped 1000, 1001, ...: batch one is offset 0 (1000), batch
        // two offsets 1 (1000) and 2 (1001), so the first record at or after 1001 is offset 2.
        assert_eq!(
            list_offset(&mut c, v, "versions", 0, 1_001).await,
            (0, 2, 1_001),
            "ListOffsets v{v} by time"
        );
        assert_eq!(
            list_offset(&mut c, v, "versions", 0, 9_999).await,
            (0, -1, -1),
            "ListOffsets v{v} none"
        );
        if v >= 7 {
            // Max timestamp 1002 is first reached by the last record of the third batch
            // (offsets 3..=5): the exact record, not its batch.
            assert_eq!(
                list_offset(&mut c, v, "versions", 0, -3).await,
                (0, 5, 1_002),
                "ListOffsets v{v} max timestamp"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_at_every_version() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "meta", 3, &[]).await;
    for v in served(ApiKey::Metadata) {
        let topics = if v == 0 {
            Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("meta")))
            ])
        } else {
            Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("meta"))),
                MetadataRequestTopic::default().with_name(Some(name("missing"))),
                MetadataRequestTopic::default().with_name(Some(name("bad name!"))),
            ])
        };
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(true);
        let ResponseKind::Metadata(resp) = c
            .request(ApiKey::Metadata, v, RequestKind::Metadata(req))
            .await
        else {
            panic!("wrong kind")
        };
        assert_eq!(resp.brokers.len(), 1, "v{v}");
        assert_eq!(resp.brokers[0].port, broker.addr.port() as i32, "v{v}");
        if v >= 1 {
            assert_eq!(resp.controller_id.0, 1, "v{v}");
        }
        let t = &resp.topics[0];
        assert_eq!(t.error_code, 0, "v{v}");
        assert_eq!(t.partitions.len(), 3, "v{v}");
        for (i, p) in t.partitions.iter().enumerate() {
            assert_eq!(p.partition_index, i as i32);
            assert_eq!(p.leader_id.0, 1);
            assert_eq!(p.replica_nodes, vec![BrokerId(1)]);
            assert_eq!(p.isr_nodes, vec![BrokerId(1)]);
        }
        if v >= 10 {
            assert_eq!(t.topic_id, id, "v{v} topic id");
        }
        if v >= 2 {
            assert!(resp.cluster_id.is_some(), "v{v} cluster id");
        }
        if v > 0 {
            // Auto-creation is off: unknown stays unknown, a bad name is INVALID_TOPIC_EXCEPTION.
            assert_eq!(resp.topics[1].error_code, 3, "v{v} missing");
            assert_eq!(resp.topics[2].error_code, 17, "v{v} bad name");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_admin_at_every_version() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    for v in served(ApiKey::CreateTopics) {
        let topic = format!("admin-{v}");
        let mk = |n: i32, rf: i16| {
            CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name(&topic))
                    .with_num_partitions(n)
                    .with_replication_factor(rf)])
        };
        let ResponseKind::CreateTopics(r) = c
            .request(ApiKey::CreateTopics, v, RequestKind::CreateTopics(mk(2, 1)))
            .await
        else {
            panic!()
        };
        assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{v}");
        if v >= 5 {
            assert_eq!(r.topics[0].num_partitions, 2);
            assert_eq!(r.topics[0].replication_factor, 1);
            let configs = r.topics[0].configs.as_ref().expect("configs from v5");
            assert!(configs.iter().any(|c| c.name.as_str() == "retention.ms"));
        }
        if v >= 7 {
            assert!(!r.topics[0].topic_id.is_nil());
        }
        let ResponseKind::CreateTopics(r) = c
            .request(ApiKey::CreateTopics, v, RequestKind::CreateTopics(mk(2, 1)))
            .await
        else {
            panic!()
        };
        assert_eq!(
            r.topics[0].error_code, 36,
            "CreateTopics v{v} TOPIC_ALREADY_EXISTS"
        );
        let ResponseKind::CreateTopics(r) = c
            .request(
                ApiKey::CreateTopics,
                v,
                RequestKind::CreateTopics(mk(1, 3).with_validate_only(true)),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(
            r.topics[0].error_code, 38,
            "CreateTopics v{v} INVALID_REPLICATION_FACTOR"
        );
    }
    for v in served(ApiKey::CreatePartitions) {
        let topic = format!("admin-{}", 2 + v);
        let mk = |count: i32| {
            CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(name(&topic))
                    .with_count(count)])
        };
        let ResponseKind::CreatePartitions(r) = c
            .request(
                ApiKey::CreatePartitions,
                v,
                RequestKind::CreatePartitions(mk(4)),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{v}");
        let ResponseKind::CreatePartitions(r) = c
            .request(
                ApiKey::CreatePartitions,
                v,
                RequestKind::CreatePartitions(mk(4)),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(
            r.results[0].error_code, 37,
            "CreatePartitions v{v} INVALID_PARTITIONS"
        );
    }
    for v in served(ApiKey::DeleteTopics) {
        let topic = format!("admin-{}", v + 1);
        let req = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name(&topic)))
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
        }
        .with_timeout_ms(5000);
        let ResponseKind::DeleteTopics(r) = c
            .request(
                ApiKey::DeleteTopics,
                v,
                RequestKind::DeleteTopics(req.clone()),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
        let ResponseKind::DeleteTopics(r) = c
            .request(ApiKey::DeleteTopics, v, RequestKind::DeleteTopics(req))
            .await
        else {
            panic!()
        };
        assert_eq!(r.responses[0].error_code, 3, "DeleteTopics v{v} unknown");
        assert!(
            !broker.dir.path().join(format!("{topic}-0")).exists(),
            "files removed"
        );
    }
    for v in served(ApiKey::DescribeCluster) {
        let ResponseKind::DescribeCluster(r) = c
            .request(
                ApiKey::DescribeCluster,
                v,
                RequestKind::DescribeCluster(DescribeClusterRequest::default()),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(r.error_code, 0, "DescribeCluster v{v}");
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.controller_id.0, 1);
        assert_eq!(r.cluster_id.len(), 22);
    }
}
