//! DeleteRecords (API 21) at every version: the low watermark it answers, Kafka's errors, and what
//! Fetch and ListOffsets see afterwards, also across a restart.

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Message;
use kafka_protocol::records::Compression;

use crate::every_version::{create_topic, fetch, list_offset, name, produce};
use crate::harness::{batch, Client, TestBroker};

/// DeleteRecords of one partition at `version`; returns (error, low watermark).
async fn delete_records(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64) {
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])]);
    let ResponseKind::DeleteRecords(resp) = c
        .request(
            ApiKey::DeleteRecords,
            version,
            RequestKind::DeleteRecords(req),
        )
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].name, name(topic));
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.low_watermark)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_at_every_version() {
    let mut broker = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let mut c = broker.client().await;
    let versions = DeleteRecordsRequest::VERSIONS;
    assert_eq!((versions.min, versions.max), (0, 2));
    for v in versions.min..=versions.max {
        let topic = format!("del-v{v}");
        let id = create_topic(&mut c, &topic, 1, &[]).await;
        for _ in 0..3 {
            produce(
                &mut c,
                9,
                &topic,
                id,
                0,
                batch(4, Compression::None, 10),
                -1,
            )
            .await;
        }
        // Offsets 0..=11 in three batches of 4. Inside the second batch:
        assert_eq!(
            delete_records(&mut c, v, &topic, 0, 6).await,
            (0, 6),
            "v{v}"
        );
        // Lower: no change, the current start is answered.
        assert_eq!(
            delete_records(&mut c, v, &topic, 0, 2).await,
            (0, 6),
            "v{v}"
        );
        // Past the high watermark: OFFSET_OUT_OF_RANGE, low watermark -1.
        assert_eq!(
            delete_records(&mut c, v, &topic, 0, 13).await,
            (1, -1),
            "v{v}"
        );
        // Unknown partition and topic: UNKNOWN_TOPIC_OR_PARTITION.
        assert_eq!(
            delete_records(&mut c, v, &topic, 3, 1).await,
            (3, -1),
            "v{v}"
        );
        assert_eq!(
            delete_records(&mut c, v, "nope", 0, 1).await,
            (3, -1),
            "v{v}"
        );

        // Earliest moved; a fetch below it is out of range; from it, the batch holding it.
        assert_eq!(list_offset(&mut c, 7, &topic, 0, -2).await, (0, 6, -1));
        assert_eq!(fetch(&mut c, 12, &topic, id, 0, 5).await.error_code, 1);
        let data = fetch(&mut c, 12, &topic, id, 0, 6).await;
        assert_eq!((data.error_code, data.log_start_offset), (0, 6));
        assert_eq!(data.high_watermark, 12);
        // -1: up to the high watermark.
        assert_eq!(
            delete_records(&mut c, v, &topic, 0, -1).await,
            (0, 12),
            "v{v}"
        );
        assert_eq!(list_offset(&mut c, 7, &topic, 0, -2).await, (0, 12, -1));
        // Appends continue after the deleted records.
        let (err, base) = produce(
            &mut c,
            9,
            &topic,
            id,
            0,
            batch(1, Compression::None, 10),
            -1,
        )
        .await;
        assert_eq!((err, base), (0, 12));
    }

    // A compact-only topic: POLICY_VIOLATION, nothing moves.
    let id = create_topic(&mut c, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let keyed = crate::harness::batch_with_keys(2, Compression::None, 10, true);
    assert_eq!(
        produce(&mut c, 9, "compacted", id, 0, keyed, -1).await,
        (0, 0)
    );
    assert_eq!(delete_records(&mut c, 2, "compacted", 0, 1).await, (44, -1));
    assert_eq!(list_offset(&mut c, 7, "compacted", 0, -2).await, (0, 0, -1));

    // The new log start offsets survive a restart.
    drop(c);
    broker
        .restart(&[("auto.create.topics.enable", "false")])
        .await;
    let mut c = broker.client().await;
    assert_eq!(list_offset(&mut c, 7, "del-v0", 0, -2).await, (0, 12, -1));
    assert_eq!(list_offset(&mut c, 7, "del-v0", 0, -1).await, (0, 13, -1));
}
