//! Test helpers: real client-shaped batches built with kafka-protocol's encoder.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Every codec, in codec-id order.
pub const ALL_COMPRESSIONS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// `n` records with offsets from `base` and timestamps `ts, ts+1, ...`.
pub fn records(base: i64, n: usize, ts: i64) -> Vec<Record> {
    (0..n)
        .map(|i| record(base + i as i64, base, ts + i as i64, i))
        .collect()
}

/// `timestamps.len()` records with the given timestamps.
pub fn records_with_timestamps(timestamps: &[i64]) -> Vec<Record> {
    timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| record(i as i64, 0, *ts, i))
        .collect()
}

fn record(offset: i64, base: i64, timestamp: i64, i: usize) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // The encoder splits batches where offset - sequence changes; this keeps base_sequence -1.
        sequence: (offset - base - 1) as i32,
        timestamp,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{offset}-{}", "x".repeat(i % 7)))),
        headers: Default::default(),
    }
}

/// One batch holding `records`, encoded as a client would.
pub fn encode_batch(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
    buf.to_vec()
}

/// A batch of `n` uncompressed records with a padded value so its size is roughly `n * pad`.
pub fn sized_batch(n: usize, pad: usize, ts: i64) -> Vec<u8> {
    let recs: Vec<Record> = (0..n)
        .map(|i| {
            let mut r = record(i as i64, 0, ts, i);
            r.value = Some(Bytes::from(vec![b'v'; pad]));
            r
        })
        .collect();
    encode_batch(&recs, Compression::None)
}

/// `n` records with `pad`-byte values and timestamps `ts, ts+1, ...`, compressed with `compression`.
pub fn batch_with(n: usize, pad: usize, ts: i64, compression: Compression) -> Vec<u8> {
    let recs: Vec<Record> = (0..n)
        .map(|i| {
            let mut r = record(i as i64, 0, ts + i as i64, i);
            r.value = Some(Bytes::from(vec![b'a' + (i % 26) as u8; pad]));
            r
        })
        .collect();
    encode_batch(&recs, compression)
}
