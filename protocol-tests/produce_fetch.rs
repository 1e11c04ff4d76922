//! Produce and Fetch behaviour beyond the happy path: Kafka's error codes for bad batches,
//! acks=0, long polling, byte limits, LogAppendTime, and data intact across a restart.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use uuid::Uuid;

use crate::every_version::{create_topic, fetch, list_offset, name, produce};
use crate::harness::{batch, batch_with_keys, TestBroker};

const PRODUCE_V: i16 = 11;
const FETCH_V: i16 = 12;

fn offsets_in(records: &Bytes) -> Vec<i64> {
    let mut buf = records.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode")
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.offset))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_get_kafka_errors_and_leave_data_intact() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "t", 2, &[("max.message.bytes", "2000")]).await;
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "t",
            id,
            0,
            batch(3, Compression::None, 10),
            -1
        )
        .await,
        (0, 0)
    );

    // A flipped byte in the records: CORRUPT_MESSAGE.
    let mut corrupt = BytesMut::from(&batch(2, Compression::None, 10)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut c, PRODUCE_V, "t", id, 0, corrupt.freeze(), -1)
            .await
            .0,
        2
    );
    // Garbage that is not a batch at all: INVALID_RECORD.
    let garbage = Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert_eq!(
        produce(&mut c, PRODUCE_V, "t", id, 0, garbage, -1).await.0,
        87
    );
    // Two batches in one partition's records (v3+ allows exactly one): INVALID_RECORD.
    let mut two = BytesMut::from(&batch(1, Compression::None, 10)[..]);
    two.extend_from_slice(&batch(1, Compression::None, 10));
    assert_eq!(
        produce(&mut c, PRODUCE_V, "t", id, 0, two.freeze(), -1)
            .await
            .0,
        87
    );
    // Over the topic's max.message.bytes: MESSAGE_TOO_LARGE.
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "t",
            id,
            0,
            batch(100, Compression::None, 10),
            -1
        )
        .await
        .0,
        10
    );
    // Unknown topic (auto-create off, and Produce never creates): UNKNOWN_TOPIC_OR_PARTITION.
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "nope",
            Uuid::nil(),
            0,
            batch(1, Compression::None, 10),
            -1
        )
        .await
        .0,
        3
    );
    // Unknown partition.
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "t",
            id,
            7,
            batch(1, Compression::None, 10),
            -1
        )
        .await
        .0,
        3
    );
    // Invalid acks.
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "t",
            id,
            0,
            batch(1, Compression::None, 10),
            2
        )
        .await
        .0,
        21
    );
    // Unknown topic id at v13.
    assert_eq!(
        produce(
            &mut c,
            13,
            "",
            Uuid::new_v4(),
            0,
            batch(1, Compression::None, 10),
            -1
        )
        .await
        .0,
        100
    );

    // Nothing of that was stored; the good data is intact and offsets continue.
    let p = fetch(&mut c, FETCH_V, "t", id, 0, 0).await;
    assert_eq!(p.high_watermark, 3);
    assert_eq!(offsets_in(p.records.as_ref().unwrap()), vec![0, 1, 2]);
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "t",
            id,
            0,
            batch(2, Compression::Gzip, 10),
            1
        )
        .await,
        (0, 3)
    );
    // Fetch below the log start or past the end: OFFSET_OUT_OF_RANGE; unknown topic: 3.
    assert_eq!(fetch(&mut c, FETCH_V, "t", id, 0, -1).await.error_code, 1);
    assert_eq!(fetch(&mut c, FETCH_V, "t", id, 0, 6).await.error_code, 1);
    assert_eq!(fetch(&mut c, FETCH_V, "zzz", id, 0, 0).await.error_code, 3);
    assert_eq!(
        fetch(&mut c, 13, "", Uuid::new_v4(), 0, 0).await.error_code,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_stay_compressed_and_fetch_inside_a_batch_returns_it_whole() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "z", 1, &[]).await;
    let mut next = 0;
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
        Compression::None,
    ] {
        let b = batch(5, codec, 100);
        let (err, base) = produce(&mut c, PRODUCE_V, "z", id, 0, b.clone(), -1).await;
        assert_eq!((err, base), (0, next), "{codec:?}");
        // Stored and served byte for byte apart from the base offset (bytes 0..8), which the
        // broker assigns, and the partition leader epoch (12..16); the CRC still matches.
        let p = fetch(&mut c, FETCH_V, "z", id, 0, next + 2).await;
        let got = p.records.unwrap();
        assert_eq!(got.len(), b.len(), "{codec:?}: exactly one whole batch");
        assert_eq!(&got[16..], &b[16..], "{codec:?}: not re-encoded");
        assert_eq!(i64::from_be_bytes(got[0..8].try_into().unwrap()), next);
        assert_eq!(offsets_in(&got), (next..next + 5).collect::<Vec<_>>());
        next += 5;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_gets_no_response_and_errors_close() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "a0", 1, &[]).await;
    let req = |records: Bytes, topic: &str| {
        ProduceRequest::default()
            .with_acks(0)
            .with_timeout_ms(1000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ])])
    };
    let (_, frame) = c.frame(
        ApiKey::Produce,
        PRODUCE_V,
        &RequestKind::Produce(req(batch(4, Compression::None, 1), "a0")),
    );
    c.send_raw(&frame).await;
    // The next response on this connection belongs to the next request, not the produce.
    assert_eq!(list_offset(&mut c, 7, "a0", 0, -1).await, (0, 4, -1));
    // An acks=0 produce that fails closes the connection, as Kafka does.
    let (_, frame) = c.frame(
        ApiKey::Produce,
        PRODUCE_V,
        &RequestKind::Produce(req(batch(1, Compression::None, 1), "missing")),
    );
    c.send_raw(&frame).await;
    assert!(c.is_closed().await);
    let mut c = broker.client().await;
    assert_eq!(
        fetch(&mut c, FETCH_V, "a0", id, 0, 0).await.high_watermark,
        4
    );
}

fn fetch_request(
    topic: &str,
    offsets: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(partition_max)
                    })
                    .collect(),
            )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_an_append() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "lp", 1, &[]).await;
    let mut consumer = broker.client().await;
    let req = fetch_request("lp", &[(0, 0)], 10_000, 1, 1 << 20, 1 << 20);
    let (correlation_id, frame) = consumer.frame(ApiKey::Fetch, FETCH_V, &RequestKind::Fetch(req));
    consumer.send_raw(&frame).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "lp",
            id,
            0,
            batch(1, Compression::None, 1),
            1
        )
        .await,
        (0, 0)
    );
    let mut resp = consumer.read_frame().await.expect("fetch answered");
    let waited = started.elapsed();
    let ResponseKind::Fetch(resp) =
        crate::harness::decode_response(ApiKey::Fetch, FETCH_V, correlation_id, &mut resp)
    else {
        panic!()
    };
    assert_eq!(
        offsets_in(resp.responses[0].partitions[0].records.as_ref().unwrap()),
        vec![0]
    );
    assert!(
        waited < Duration::from_secs(5),
        "woken by the append, not the 10 s timeout: {waited:?}"
    );

    // Nothing arrives: the fetch answers empty after max_wait_ms.
    let started = Instant::now();
    let ResponseKind::Fetch(resp) = consumer
        .request(
            ApiKey::Fetch,
            FETCH_V,
            RequestKind::Fetch(fetch_request("lp", &[(0, 1)], 400, 1, 1 << 20, 1 << 20)),
        )
        .await
    else {
        panic!()
    };
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_limits_follow_kip_74() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "lim", 2, &[]).await;
    let big = batch(50, Compression::None, 1);
    for p in 0..2 {
        for _ in 0..3 {
            assert_eq!(
                produce(&mut c, PRODUCE_V, "lim", id, p, big.clone(), 1)
                    .await
                    .0,
                0
            );
        }
    }
    let size = big.len() as i32;
    // max_bytes far below one batch: the first batch of the first partition still comes back
    // whole so the consumer makes progress; the second partition gets nothing.
    let ResponseKind::Fetch(r) = c
        .request(
            ApiKey::Fetch,
            FETCH_V,
            RequestKind::Fetch(fetch_request("lim", &[(0, 0), (1, 0)], 0, 1, 10, 10)),
        )
        .await
    else {
        panic!()
    };
    let parts = &r.responses[0].partitions;
    assert_eq!(parts[0].records.as_ref().unwrap().len(), size as usize);
    assert_eq!(parts[1].records.as_ref().unwrap().len(), 0);
    // partition_max_bytes of two batches, max_bytes of three: 2 from p0, 1 from p1.
    let ResponseKind::Fetch(r) = c
        .request(
            ApiKey::Fetch,
            FETCH_V,
            RequestKind::Fetch(fetch_request(
                "lim",
                &[(0, 0), (1, 0)],
                0,
                1,
                3 * size,
                2 * size,
            )),
        )
        .await
    else {
        panic!()
    };
    let parts = &r.responses[0].partitions;
    assert_eq!(parts[0].records.as_ref().unwrap().len(), 2 * size as usize);
    assert_eq!(parts[1].records.as_ref().unwrap().len(), size as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_batches() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut pc = broker.client().await;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name("lat"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(3, Compression::Lz4, 5))),
            ])]);
    let ResponseKind::Produce(r) = pc
        .request(ApiKey::Produce, PRODUCE_V, RequestKind::Produce(req))
        .await
    else {
        panic!()
    };
    let append_time = r.responses[0].partition_responses[0].log_append_time_ms;
    assert!(
        append_time >= before,
        "log_append_time_ms {append_time} is the broker's clock"
    );
    let p = fetch(&mut c, FETCH_V, "lat", id, 0, 0).await;
    let stored = p.records.unwrap();
    // The batch header's max timestamp (bytes 35..43) is the append time; clients give every
    // record of a LogAppendTime batch that timestamp.
    assert_eq!(
        i64::from_be_bytes(stored[35..43].try_into().unwrap()),
        append_time
    );
    let mut buf = stored.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("CRC recomputed, batch decodes");
    assert!(sets[0]
        .records
        .iter()
        .all(|r| r.timestamp_type == kafka_protocol::records::TimestampType::LogAppend));
    // By timestamp, a LogAppendTime topic answers by append time.
    assert_eq!(
        list_offset(&mut c, 7, "lat", 0, append_time).await,
        (0, 0, append_time)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_clean_restart() {
    let mut broker = TestBroker::start(&[]).await;
    let id = {
        let mut c = broker.client().await;
        let id = create_topic(&mut c, "r", 3, &[("retention.ms", "123456")]).await;
        for p in 0..3 {
            assert_eq!(
                produce(
                    &mut c,
                    PRODUCE_V,
                    "r",
                    id,
                    p,
                    batch(4, Compression::Zstd, 1),
                    -1
                )
                .await,
                (0, 0)
            );
        }
        id
    };
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    for p in 0..3 {
        let got = fetch(&mut c, FETCH_V, "r", id, p, 0).await;
        assert_eq!(got.high_watermark, 4);
        assert_eq!(offsets_in(got.records.as_ref().unwrap()), vec![0, 1, 2, 3]);
        assert_eq!(
            produce(
                &mut c,
                PRODUCE_V,
                "r",
                id,
                p,
                batch(1, Compression::None, 1),
                1
            )
            .await,
            (0, 4)
        );
    }
    let ResponseKind::Metadata(m) = c
        .request(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(m.topics.len(), 1);
    assert_eq!(m.topics[0].topic_id, id, "topic id persisted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_refuse_keyless_records_and_timestamps_are_bounded() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "cmp", 1, &[("cleanup.policy", "compact")]).await;
    let keyless = batch_with_keys(2, Compression::Zstd, 1, false);
    assert_eq!(
        produce(&mut c, PRODUCE_V, "cmp", id, 0, keyless, -1)
            .await
            .0,
        87,
        "KIP-467"
    );
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "cmp",
            id,
            0,
            batch(2, Compression::Zstd, 1),
            -1
        )
        .await,
        (0, 0)
    );

    // message.timestamp.after.max.ms defaults to one hour in Kafka 4: two hours ahead is refused.
    let id = create_topic(
        &mut c,
        "ts",
        1,
        &[("message.timestamp.before.max.ms", "86400000")],
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let future = batch(1, Compression::None, now + 2 * 3_600_000);
    assert_eq!(
        produce(&mut c, PRODUCE_V, "ts", id, 0, future, -1).await.0,
        32
    );
    let ancient = batch(1, Compression::None, now - 2 * 86_400_000);
    assert_eq!(
        produce(&mut c, PRODUCE_V, "ts", id, 0, ancient, -1).await.0,
        32
    );
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "ts",
            id,
            0,
            batch(1, Compression::None, now),
            -1
        )
        .await,
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "pipe", 1, &[]).await;
    // A long-polling fetch (nothing to read yet), then produces and a metadata request, all
    // written at once: the answers come back in request order, the fetch first, even though
    // the later requests could be answered sooner.
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let (cid, f) = c.frame(
        ApiKey::Fetch,
        FETCH_V,
        &RequestKind::Fetch(fetch_request("pipe", &[(0, 0)], 1_000, 1, 1 << 20, 1 << 20)),
    );
    wire.extend_from_slice(&f);
    expected.push((ApiKey::Fetch, FETCH_V, cid));
    for i in 0..5 {
        let req = ProduceRequest::default()
            .with_acks(if i % 2 == 0 { -1 } else { 1 })
            .with_timeout_ms(1000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(name("pipe"))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(2, Compression::None, 1))),
                ])]);
        let (cid, f) = c.frame(ApiKey::Produce, PRODUCE_V, &RequestKind::Produce(req));
        wire.extend_from_slice(&f);
        expected.push((ApiKey::Produce, PRODUCE_V, cid));
    }
    let (cid, f) = c.frame(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    wire.extend_from_slice(&f);
    expected.push((ApiKey::Metadata, 12, cid));
    c.send_raw(&wire).await;
    let mut produce_offsets = Vec::new();
    for (key, version, cid) in expected {
        let mut frame = c.read_frame().await.expect("answered");
        match crate::harness::decode_response(key, version, cid, &mut frame) {
            ResponseKind::Produce(r) => {
                produce_offsets.push(r.responses[0].partition_responses[0].base_offset)
            }
            ResponseKind::Fetch(r) => {
                // Woken by the first produce on the same connection, or empty after 1 s.
                assert_eq!(r.responses[0].partitions[0].error_code, 0);
            }
            ResponseKind::Metadata(r) => assert_eq!(r.topics.len(), 0),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        produce_offsets,
        vec![0, 2, 4, 6, 8],
        "appended in request order"
    );
    assert_eq!(
        fetch(&mut c, FETCH_V, "pipe", id, 0, 0)
            .await
            .high_watermark,
        10
    );
}
