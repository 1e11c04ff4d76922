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

/// Wall-clock milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_expired_segments_of_delete_topics_only() {
    let broker = TestBroker::start(&[("log.retention.check.interval.ms", "100")]).await;
    let mut c = broker.client().await;
    let small = [("segment.bytes", "1024"), ("retention.ms", "60000")];
    let timed = create_topic(&mut c, "timed", 1, &small).await;
    let compact = [
        ("segment.bytes", "1024"),
        ("retention.ms", "60000"),
        ("cleanup.policy", "compact"),
    ];
    let compacted = create_topic(&mut c, "compacted", 1, &compact).await;
    let forever = [("segment.bytes", "1024"), ("retention.ms", "-1")];
    let kept = create_topic(&mut c, "forever", 1, &forever).await;
    let old = now_ms() - 3_600_000;
    for (name, id) in [
        ("timed", timed),
        ("compacted", compacted),
        ("forever", kept),
    ] {
        // 5 old batches of 30 records (over half of 1 KiB: one segment each), then 2 recent ones.
        for i in 0..5 {
            let b = batch(30, Compression::None, old + i);
            assert_eq!(produce(&mut c, 9, name, id, 0, b, -1).await, (0, i * 30));
        }
        for i in 5..7 {
            let b = batch(30, Compression::None, now_ms());
            assert_eq!(produce(&mut c, 9, name, id, 0, b, -1).await, (0, i * 30));
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut start = 0;
    while std::time::Instant::now() < deadline {
        start = list_offset(&mut c, 7, "timed", 0, -2).await.1;
        if start >= 150 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Every old record went, no recent one did.
    assert_eq!(start, 150, "log start of the delete topic");
    assert_eq!(
        fetch(&mut c, 12, "timed", timed, 0, 149).await.error_code,
        1
    );
    let data = fetch(&mut c, 12, "timed", timed, 0, 150).await;
    assert_eq!(
        (data.error_code, data.log_start_offset, data.high_watermark),
        (0, 150, 210)
    );
    // compact-only and retention.ms=-1 topics keep everything.
    assert_eq!(list_offset(&mut c, 7, "compacted", 0, -2).await.1, 0);
    assert_eq!(list_offset(&mut c, 7, "forever", 0, -2).await.1, 0);
}
