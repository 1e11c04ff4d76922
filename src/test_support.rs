//! Record batches shaped as real clients (and the cleaner) shape them, for every test and
//! benchmark in the project: the unit tests beside the code, `protocol-tests/` and `benches/`
//! (which enable the `test-support` feature). One record builder and one encoder, the
//! kafka-protocol crate's, so every test sends exactly the bytes a client would.

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

/// One plain (non-idempotent) record at `offset` of a batch starting at `base`.
pub fn record(
    offset: i64,
    base: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // The encoder starts a new batch where `offset - sequence` changes; this keeps the
        // batch's base sequence at -1 (not idempotent).
        sequence: (offset - base - 1) as i32,
        timestamp,
        key,
        value,
        headers: Default::default(),
    }
}

/// Encodes `records` as v2 batches (one, unless their producer fields or offset/sequence
/// spacing differ), the way a client does.
pub fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap_or_else(|e| panic!("encoding a test batch: {e}"));
    buf.freeze()
}

/// [`encode`] as a mutable buffer, for appends that rewrite headers in place.
pub fn encode_batch(records: &[Record], compression: Compression) -> Vec<u8> {
    encode(records, compression).to_vec()
}

/// `n` records with offsets from `base` and timestamps `ts, ts+1, ...`, keys `key-i`, values
/// `value-<offset>-` padded by `i % 7` bytes.
pub fn records(base: i64, n: usize, ts: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let offset = base + i as i64;
            record(
                offset,
                base,
                ts + i as i64,
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{offset}-{}", "x".repeat(i % 7)))),
            )
        })
        .collect()
}

/// `timestamps.len()` records with the given timestamps.
pub fn records_with_timestamps(timestamps: &[i64]) -> Vec<Record> {
    timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            record(
                i as i64,
                0,
                *ts,
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{i}"))),
            )
        })
        .collect()
}

/// A batch of `n` uncompressed records with `pad`-byte values, all at timestamp `ts`.
pub fn sized_batch(n: usize, pad: usize, ts: i64) -> Vec<u8> {
    let recs: Vec<Record> = (0..n)
        .map(|i| {
            record(
                i as i64,
                0,
                ts,
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(vec![b'v'; pad])),
            )
        })
        .collect();
    encode_batch(&recs, Compression::None)
}

/// `n` records with `pad`-byte values and timestamps `ts, ts+1, ...`, compressed.
pub fn batch_with(n: usize, pad: usize, ts: i64, compression: Compression) -> Vec<u8> {
    let recs: Vec<Record> = (0..n)
        .map(|i| {
            record(
                i as i64,
                0,
                ts + i as i64,
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(vec![b'a' + (i % 26) as u8; pad])),
            )
        })
        .collect();
    encode_batch(&recs, compression)
}

/// A batch of `n` records `key-i`/`value-i` with timestamps `timestamp + i`.
pub fn batch(n: usize, compression: Compression, timestamp: i64) -> Bytes {
    batch_with_keys(n, compression, timestamp, true)
}

/// Like [`batch`], with or without keys.
pub fn batch_with_keys(n: usize, compression: Compression, timestamp: i64, keyed: bool) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| {
            record(
                i as i64,
                0,
                timestamp + i as i64,
                keyed.then(|| Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{i}"))),
            )
        })
        .collect();
    encode(&records, compression)
}

/// A keyless batch of `n` records whose values are `value` (a benchmark's fixed payload).
pub fn payload_batch(n: usize, value: &Bytes, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| record(i as i64, 0, timestamp + i as i64, None, Some(value.clone())))
        .collect();
    encode(&records, Compression::None)
}

/// An idempotent producer's batch: `count` records from sequence `first_seq` (wrapping at
/// `i32::MAX` as Kafka's sequences do), keys `k<seq>`, values `v<seq>`.
pub fn idempotent_batch(
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    count: i32,
    timestamp: i64,
    compression: Compression,
) -> Bytes {
    producer_batch(
        producer_id,
        epoch,
        first_seq,
        count,
        timestamp,
        compression,
        false,
    )
}

/// A transactional producer's batch: [`idempotent_batch`] with the transactional attribute set,
/// as a producer sends one inside a transaction.
pub fn transactional_batch(
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    count: i32,
    timestamp: i64,
    compression: Compression,
) -> Bytes {
    producer_batch(
        producer_id,
        epoch,
        first_seq,
        count,
        timestamp,
        compression,
        true,
    )
}

fn producer_batch(
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    count: i32,
    timestamp: i64,
    compression: Compression,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let seq = first_seq.wrapping_add(i) & i32::MAX;
            let mut r = record(
                i as i64,
                0,
                timestamp,
                Some(Bytes::from(format!("k{seq}"))),
                Some(Bytes::from(format!("v{seq}"))),
            );
            r.producer_id = producer_id;
            r.producer_epoch = epoch;
            r.sequence = seq;
            r.transactional = transactional;
            r
        })
        .collect();
    encode(&records, compression)
}

/// A batch as the cleaner leaves one: records only at `offsets` (fewer records than its offset
/// range; base offset = the first offset).
pub fn sparse_batch(offsets: &[i64], ts: i64) -> Vec<u8> {
    let base = offsets.first().copied().unwrap_or(0);
    let recs: Vec<Record> = offsets
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            record(
                o,
                base,
                ts,
                Some(Bytes::from(format!("key-{i}"))),
                Some(Bytes::from(format!("value-{o}"))),
            )
        })
        .collect();
    encode_batch(&recs, Compression::None)
}
