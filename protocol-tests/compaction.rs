//! Compaction over the wire: a topic turned to `cleanup.policy=compact` by IncrementalAlterConfigs
//! is cleaned by the running broker's cleaner; a stock decoder reads back the latest value of
//! every key at its original offset, tombstones until `delete.retention.ms`, the same log end,
//! and the same log after a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rivulet::test_support::{encode, record};

use crate::configs::incremental;
use crate::every_version::{create_topic, fetch, list_offset, produce};
use crate::harness::{Client, TestBroker};

const TOPIC: i8 = 2;
const SET: i8 = 0;

/// (offset, key, value) of every record from offset 0, as a stock client decodes them; the
/// next fetch starts after the last batch (which may have lost its last records, or all).
async fn read_back(
    c: &mut Client,
    topic: &str,
    id: uuid::Uuid,
) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let p = fetch(c, 12, topic, id, 0, offset).await;
        assert_eq!(p.error_code, 0);
        let Some(records) = p.records.filter(|r| !r.is_empty()) else {
            break;
        };
        let mut pos = 0;
        while pos < records.len() {
            let header = rivulet::log::BatchHeader::parse(&records[pos..]).unwrap();
            offset = header.last_offset() + 1;
            pos += header.total_size();
        }
        let mut records = records;
        for set in RecordBatchDecoder::decode_all(&mut records).unwrap() {
            for r in set.records {
                let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.push((r.offset, text(r.key).unwrap(), text(r.value)));
            }
        }
    }
    out
}

async fn produce_keys(
    c: &mut Client,
    id: uuid::Uuid,
    round: usize,
    keys: &[(&str, Option<String>)],
) {
    let recs: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            record(
                i as i64,
                0,
                1_700_000_000_000 + round as i64,
                Some(Bytes::from(k.to_string())),
                v.clone().map(Bytes::from),
            )
        })
        .collect();
    let (err, _) = produce(
        c,
        9,
        "compacted",
        id,
        0,
        encode(&recs, Compression::Zstd),
        -1,
    )
    .await;
    assert_eq!(err, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_altered_to_compact_is_cleaned_live_and_stays_cleaned_after_restart() {
    let overrides = [("log.cleaner.backoff.ms", "20")];
    let mut broker = TestBroker::start(&overrides).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "compacted", 1, &[("segment.bytes", "1200")]).await;
    let keys = ["a", "b", "c", "d", "e"];
    let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
    for round in 0..40 {
        let batch: Vec<(&str, Option<String>)> = keys
            .iter()
            .map(|k| {
                // "c" is deleted in round 30 and never written again.
                let v = (!(*k == "c" && round >= 30)).then(|| format!("{k}-{round}"));
                (*k, v)
            })
            .filter(|(k, _)| !(*k == "c" && round > 30))
            .collect();
        for (k, v) in &batch {
            latest.insert(k.to_string(), v.clone());
        }
        produce_keys(&mut c, id, round, &batch).await;
    }
    let before = read_back(&mut c, "compacted", id).await;
    let (_, log_end, _) = list_offset(&mut c, 7, "compacted", 0, -1).await;
    assert_eq!(
        before.len() as i64,
        log_end,
        "a delete topic keeps everything"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        read_back(&mut c, "compacted", id).await,
        before,
        "no cleaning under delete"
    );

    let ops = [
        ("cleanup.policy", SET, Some("compact")),
        ("min.cleanable.dirty.ratio", SET, Some("0.01")),
    ];
    assert_eq!(
        incremental(&mut c, 1, TOPIC, "compacted", &ops, false)
            .await
            .0,
        0
    );
    let cleaner = broker.broker().cleaner.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cleaner
        .counters()
        .rounds
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the cleaner never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = read_back(&mut c, "compacted", id).await;
    assert!(
        after.len() < before.len() / 2,
        "{} of {} records left",
        after.len(),
        before.len()
    );
    // Every key's latest record stays, at its offset, with its value (the tombstone for "c"
    // too: delete.retention.ms is a day).
    for (k, v) in &latest {
        let last_before = before.iter().rev().find(|r| &r.1 == k).unwrap();
        assert_eq!(&last_before.2, v);
        assert!(after.contains(last_before), "latest {last_before:?} lost");
    }
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(after.iter().all(|r| before.contains(r)), "a record changed");
    assert_eq!(list_offset(&mut c, 7, "compacted", 0, -1).await.1, log_end);
    assert_eq!(list_offset(&mut c, 7, "compacted", 0, -2).await.1, 0);
    let settled = read_back(&mut c, "compacted", id).await;
    broker.restart(&overrides).await;
    let mut c = broker.client().await;
    let reopened = read_back(&mut c, "compacted", id).await;
    assert!(reopened.len() <= settled.len() && reopened.iter().all(|r| before.contains(r)));
    for k in latest.keys() {
        let last_before = before.iter().rev().find(|r| &r.1 == k).unwrap();
        assert!(reopened.contains(last_before));
    }
}
