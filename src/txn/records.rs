//! The records of the transaction log (`__transaction_state-N`): what Kafka keeps there as
//! `TransactionLogKey` / `TransactionLogValue`, in a simpler, versioned encoding.
//!
//! Each record of a v2 record batch has a JSON key `{"v":1,"transactional_id":T}` and a JSON
//! value `{"v":1, ...TxnMetadata}` (producer id and epoch, the previous and next producer id,
//! the last epoch, timeout, state, partitions, start and update times, transaction version),
//! or no value: a tombstone, the id expired. The last record of a key wins, so the log can be
//! compacted by key as Kafka compacts `__transaction_state`. A version other than 1 refuses to
//! load rather than guess.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::state::TxnMetadata;
use crate::coordinator::{CoordinatorRecord, RecordError};

/// The only record format version this build reads and writes.
pub const RECORD_VERSION: u8 = 1;

/// One record of the transaction log: an id's state, or its removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state; None for a tombstone.
    pub value: Option<TxnMetadata>,
}

#[derive(Serialize, Deserialize)]
struct Key {
    v: u8,
    transactional_id: String,
}

#[derive(Serialize, Deserialize)]
struct Value {
    v: u8,
    #[serde(flatten)]
    metadata: TxnMetadata,
}

impl CoordinatorRecord for TxnRecord {
    fn entity_key(&self) -> &str {
        &self.transactional_id
    }

    fn encode(&self) -> Result<(Bytes, Option<Bytes>), String> {
        let key = serde_json::to_vec(&Key {
            v: RECORD_VERSION,
            transactional_id: self.transactional_id.clone(),
        })
        .map_err(|e| e.to_string())?;
        let value = self
            .value
            .as_ref()
            .map(|m| {
                serde_json::to_vec(&Value {
                    v: RECORD_VERSION,
                    metadata: m.clone(),
                })
                .map(Bytes::from)
            })
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok((Bytes::from(key), value))
    }

    fn decode(offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<TxnRecord, RecordError> {
        let bad = |reason: String| RecordError::Record { offset, reason };
        let key: Key = serde_json::from_slice(key).map_err(|e| bad(format!("key: {e}")))?;
        if key.v != RECORD_VERSION {
            return Err(bad(format!("key version {} (this build reads 1)", key.v)));
        }
        let value = value
            .map(|v| {
                let value: Value =
                    serde_json::from_slice(v).map_err(|e| bad(format!("value: {e}")))?;
                if value.v != RECORD_VERSION {
                    return Err(bad(format!(
                        "value version {} (this build reads 1)",
                        value.v
                    )));
                }
                Ok(value.metadata)
            })
            .transpose()?;
        Ok(TxnRecord {
            transactional_id: key.transactional_id,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::state::TxnState;

    #[test]
    fn records_round_trip_and_refuse_other_versions() {
        let mut m = TxnMetadata::new(7, 60_000, 1_000);
        m.state = TxnState::Ongoing;
        m.partitions.insert(("t".into(), 3));
        let r = TxnRecord {
            transactional_id: "tx".into(),
            value: Some(m),
        };
        let (k, v) = r.encode().unwrap();
        assert_eq!(TxnRecord::decode(5, &k, v.as_deref()).unwrap(), r);
        let tomb = TxnRecord {
            transactional_id: "tx".into(),
            value: None,
        };
        let (k, v) = tomb.encode().unwrap();
        assert_eq!(v, None);
        assert_eq!(TxnRecord::decode(6, &k, None).unwrap(), tomb);
        assert!(TxnRecord::decode(7, br#"{"v":2,"transactional_id":"x"}"#, None).is_err());
    }
}
