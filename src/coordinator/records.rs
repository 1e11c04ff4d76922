//! How coordinator records are stored: one operation's records as one uncompressed v2 batch
//! (offsets assigned by the log), a transaction's commit or abort as Kafka's control batch.
//!
//! A record type says how it becomes a log record's key and value ([`CoordinatorRecord`]); the
//! batch carries the producer id and epoch of a transactional write (TxnOffsetCommit), -1
//! otherwise. A transaction's end is Kafka's `EndTransactionMarker` control batch, whose format
//! belongs to the log ([`crate::log::control`]; re-exported here); recovery keeps or drops a
//! batch whole, so an operation's records are never half there.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub use crate::log::control::{encode_marker, TxnResult};

/// A record a coordinator writes to its log.
pub trait CoordinatorRecord: Sized + Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The key of the entity it belongs to (a group id, a transactional id).
    fn entity_key(&self) -> &str;
    /// The log record's key and value (None: a tombstone).
    fn encode(&self) -> Result<(Bytes, Option<Bytes>), String>;
    /// The record back from a log record at `offset`.
    fn decode(offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError>;
}

/// Why a coordinator log could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A batch that the log accepted but the record decoder cannot read.
    #[error("undecodable record batch at offset {offset}: {reason}")]
    Batch {
        /// Offset of the batch.
        offset: i64,
        /// What the decoder said.
        reason: String,
    },
    /// A record whose key or value is not a record of this format.
    #[error("unreadable coordinator record at offset {offset}: {reason}")]
    Record {
        /// Offset of the record.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
}

/// One batch read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<R> {
    /// Records, with their offsets, written by `producer_id` (-1: not transactional).
    Records {
        /// The producer of a transactional batch, -1 otherwise.
        producer_id: i64,
        /// Its epoch.
        producer_epoch: i16,
        /// The records at and after the offset reading started from.
        records: Vec<(i64, R)>,
    },
    /// A transaction marker.
    Marker {
        /// The producer whose transaction ended.
        producer_id: i64,
        /// Its epoch.
        producer_epoch: i16,
        /// Commit or abort.
        result: TxnResult,
    },
}

/// Encodes `records` as one uncompressed v2 batch, transactional when `producer` is given.
pub fn encode_batch<R: CoordinatorRecord>(
    records: &[R],
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> Result<BytesMut, String> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let mut encoded = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let (key, value) = r.encode().map_err(|e| format!("encoding {r:?}: {e}"))?;
        encoded.push(Record {
            transactional: producer.is_some(),
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch where `offset - sequence` changes; a constant
            // difference keeps all records in one batch (base sequence -1: not idempotent).
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: Default::default(),
            delete_horizon: false,
        });
    }
    encode(&encoded)
}

fn encode(records: &[Record]) -> Result<BytesMut, String> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| format!("encoding record batch: {e}"))?;
    Ok(buf)
}

/// Decodes whole stored batches, skipping records below `from`.
pub fn decode_batches<R: CoordinatorRecord>(
    bytes: Bytes,
    from: i64,
) -> Result<Vec<Decoded<R>>, RecordError> {
    let mut buf = bytes;
    let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| RecordError::Batch {
        offset: from,
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for set in sets {
        let Some(first) = set.records.first() else {
            continue;
        };
        let (producer_id, producer_epoch) = (first.producer_id, first.producer_epoch);
        let transactional = first.transactional;
        if first.control {
            if first.offset < from {
                continue;
            }
            let result =
                crate::log::control::decode_marker(first.key.as_deref(), first.value.as_deref())
                    .map_err(|e| RecordError::Record {
                        offset: first.offset,
                        reason: e.to_string(),
                    })?
                    .result;
            out.push(Decoded::Marker {
                producer_id,
                producer_epoch,
                result,
            });
            continue;
        }
        let mut records = Vec::with_capacity(set.records.len());
        for r in set.records {
            if r.offset < from {
                continue;
            }
            let Some(key) = r.key.as_deref() else {
                return Err(RecordError::Record {
                    offset: r.offset,
                    reason: "record without a key".to_string(),
                });
            };
            records.push((r.offset, R::decode(r.offset, key, r.value.as_deref())?));
        }
        out.push(Decoded::Records {
            producer_id: if transactional { producer_id } else { -1 },
            producer_epoch: if transactional { producer_epoch } else { -1 },
            records,
        });
    }
    Ok(out)
}
