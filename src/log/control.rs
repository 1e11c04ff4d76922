//! Control records: Kafka's `EndTransactionMarker`, the one kind of control batch a partition
//! log holds (a transaction's commit or abort, written by its coordinator to every partition the
//! transaction touched).
//!
//! Format of a transaction marker: one uncompressed v2 batch whose attributes say transactional
//! and control, carrying the producer id and epoch of the transaction it ends, base sequence -1,
//! and exactly one record with
//! - key: `version int16` (0), `type int16` (0 abort, 1 commit): Kafka's `ControlRecordType` key;
//! - value: `version int16` (0), `coordinator_epoch int32`: Kafka's `EndTransactionMarker` value.
//!
//! Reading follows Kafka: a key or value version above 0 is read as version 0 (later versions
//! may only add fields), a negative version is corrupt, a control type other than abort or commit
//! is not a transaction marker, and a control batch without records (the cleaner removed its
//! marker) ends nothing.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Kafka's control record key version.
const KEY_VERSION: i16 = 0;
/// Kafka's end transaction marker value version.
const VALUE_VERSION: i16 = 0;
/// Key bytes: version and type.
const KEY_SIZE: usize = 4;
/// Value bytes: version and coordinator epoch.
const VALUE_SIZE: usize = 6;
/// Control type of an abort marker.
const ABORT_TYPE: i16 = 0;
/// Control type of a commit marker.
const COMMIT_TYPE: i16 = 1;

/// How a transaction ended (Kafka's `TransactionResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnResult {
    /// Its records take effect.
    Commit,
    /// Its records are dropped.
    Abort,
}

/// A decoded transaction marker (Kafka's `EndTransactionMarker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// Commit or abort.
    pub result: TxnResult,
    /// The epoch of the transaction coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// Why a control record could not be encoded or read as a transaction marker.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// The record encoder refused the marker.
    #[error("encoding a transaction marker: {0}")]
    Encode(String),
    /// The control batch could not be decoded.
    #[error("undecodable control batch: {0}")]
    Decode(String),
    /// A control record of another type than abort or commit.
    #[error("control record of type {0} is not a transaction marker")]
    NotAMarker(i16),
    /// A key or value too short, or with a negative version.
    #[error("malformed transaction marker: {0}")]
    Malformed(String),
}

/// Encodes Kafka's transaction marker control batch for `producer_id` (offsets are assigned by
/// the log; the partition leader epoch is stamped on append).
pub fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    result: TxnResult,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Result<BytesMut, ControlError> {
    let mut key = BytesMut::with_capacity(KEY_SIZE);
    key.put_i16(KEY_VERSION);
    key.put_i16(match result {
        TxnResult::Abort => ABORT_TYPE,
        TxnResult::Commit => COMMIT_TYPE,
    });
    let mut value = BytesMut::with_capacity(VALUE_SIZE);
    value.put_i16(VALUE_VERSION);
    value.put_i32(coordinator_epoch);
    let record = Record {
        transactional: true,
        control: true,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
        delete_horizon: false,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| ControlError::Encode(e.to_string()))?;
    Ok(buf)
}

/// Reads a control record's key and value as a transaction marker.
pub fn decode_marker(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<EndTxnMarker, ControlError> {
    let result = match control_type(key.unwrap_or_default())? {
        ABORT_TYPE => TxnResult::Abort,
        COMMIT_TYPE => TxnResult::Commit,
        other => return Err(ControlError::NotAMarker(other)),
    };
    let mut value = value.unwrap_or_default();
    if value.len() < VALUE_SIZE {
        return Err(ControlError::Malformed(format!(
            "value of {} bytes, at least {VALUE_SIZE} expected",
            value.len()
        )));
    }
    let version = value.get_i16();
    if version < 0 {
        return Err(ControlError::Malformed(format!("value version {version}")));
    }
    Ok(EndTxnMarker {
        result,
        coordinator_epoch: value.get_i32(),
    })
}

/// The control type in a control record's key (Kafka's `ControlRecordType.parseTypeId`).
fn control_type(mut key: &[u8]) -> Result<i16, ControlError> {
    if key.len() < KEY_SIZE {
        return Err(ControlError::Malformed(format!(
            "key of {} bytes, at least {KEY_SIZE} expected",
            key.len()
        )));
    }
    let version = key.get_i16();
    if version < 0 {
        return Err(ControlError::Malformed(format!("key version {version}")));
    }
    Ok(key.get_i16())
}

/// The marker in the control batch at the start of `batch` (one whole stored or encoded batch);
/// `None` for a control batch without records.
pub fn marker_of_batch(batch: &[u8]) -> Result<Option<EndTxnMarker>, ControlError> {
    let mut buf = Bytes::copy_from_slice(batch);
    let set =
        RecordBatchDecoder::decode(&mut buf).map_err(|e| ControlError::Decode(e.to_string()))?;
    match set.records.first() {
        None => Ok(None),
        Some(r) if !r.control => Err(ControlError::Decode(
            "a data batch where a control batch was expected".to_string(),
        )),
        Some(r) => decode_marker(r.key.as_deref(), r.value.as_deref()).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::check_batch;

    #[test]
    fn markers_round_trip_as_kafka_lays_them_out() {
        for (result, type_id) in [(TxnResult::Abort, 0u8), (TxnResult::Commit, 1u8)] {
            let bytes = encode_marker(42, 7, result, 3, 1_000).unwrap();
            let header = check_batch(&bytes).unwrap();
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (42, 7, -1)
            );
            assert_eq!(header.records_count, 1);
            assert_eq!(
                marker_of_batch(&bytes).unwrap(),
                Some(EndTxnMarker {
                    result,
                    coordinator_epoch: 3
                })
            );
            let mut set = RecordBatchDecoder::decode(&mut bytes.freeze()).unwrap();
            let record = set.records.remove(0);
            assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, type_id][..]));
            assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 3][..]));
        }
    }

    #[test]
    fn reading_follows_kafka_rules() {
        let value = [0u8, 0, 0, 0, 0, 9];
        // A newer key or value version is read as version 0, with any trailing fields ignored.
        assert_eq!(
            decode_marker(Some(&[0, 1, 0, 1, 0xff]), Some(&[0, 2, 0, 0, 0, 9, 1])),
            Ok(EndTxnMarker {
                result: TxnResult::Commit,
                coordinator_epoch: 9
            })
        );
        assert_eq!(
            decode_marker(Some(&[0, 0, 0, 2]), Some(&value)),
            Err(ControlError::NotAMarker(2))
        );
        assert!(matches!(
            decode_marker(Some(&[0xff, 0xff, 0, 0]), Some(&value)),
            Err(ControlError::Malformed(_))
        ));
        assert!(matches!(
            decode_marker(Some(&[0, 0, 0]), Some(&value)),
            Err(ControlError::Malformed(_))
        ));
        assert!(matches!(
            decode_marker(Some(&[0, 0, 0, 0]), Some(&value[..5])),
            Err(ControlError::Malformed(_))
        ));
        assert!(matches!(
            decode_marker(None, Some(&value)),
            Err(ControlError::Malformed(_))
        ));
    }
}
