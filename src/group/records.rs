//! The records of the group log: what Kafka keeps in `__consumer_offsets`, in a simpler,
//! versioned encoding.
//!
//! Each record of a v2 record batch has a JSON key and a JSON value (or no value: a tombstone):
//!
//! | key | value |
//! | --- | --- |
//! | `{"v":1,"type":"offset","group":G,"topic":T,"partition":P}` | `{"v":1,"offset":..,"leader_epoch":..,"metadata":..,"commit_timestamp":..,"expire_timestamp":..}` |
//! | `{"v":1,"type":"group","group":G}` | `{"v":1,"protocol_type":..,"generation":..,"protocol":..,"leader":..,"current_state_timestamp":..,"members":[..]}` |
//!
//! Keys identify what a record replaces (the last record of a key wins, a tombstone deletes),
//! so the log can be compacted by key as Kafka compacts `__consumer_offsets`. Byte fields
//! (subscription, assignment) are base64. A version other than 1 refuses to load rather than
//! guess. One operation's records go into one batch (`coordinator::records`), which recovery
//! keeps or drops whole.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::coordinator::CoordinatorRecord;
pub use crate::coordinator::RecordError;

/// The only record format version this build reads and writes.
pub const RECORD_VERSION: u8 = 1;

/// A committed offset as stored (Kafka's `OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch the client committed with, -1 for none.
    pub leader_epoch: i32,
    /// The client's metadata string (empty when the client sent null).
    pub metadata: String,
    /// When the commit was received.
    pub commit_timestamp: i64,
    /// Explicit expiry of OffsetCommit v2-v4 `retention_time_ms`, else None.
    pub expire_timestamp: Option<i64>,
}

/// One member as stored with its group (Kafka's `GroupMetadataValue.MemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberValue {
    /// The member id.
    pub member_id: String,
    /// Its group.instance.id, if static.
    pub group_instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its address.
    pub client_host: String,
    /// Its rebalance timeout.
    pub rebalance_timeout: i32,
    /// Its session timeout.
    pub session_timeout: i32,
    /// Its metadata for the group's protocol.
    #[serde(with = "base64_bytes")]
    pub subscription: Bytes,
    /// Its assignment.
    #[serde(with = "base64_bytes")]
    pub assignment: Bytes,
}

/// A group as stored (Kafka's `GroupMetadataValue`): written when a generation's assignment
/// is stored, when the group becomes empty, and when a static member is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupValue {
    /// Protocol type, empty for a group that only stores offsets.
    pub protocol_type: String,
    /// The generation.
    pub generation: i32,
    /// The selected protocol (assignor).
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// When the group entered its current state, -1 if unknown.
    pub current_state_timestamp: i64,
    /// The members with their assignments.
    pub members: Vec<MemberValue>,
}

/// One record of the group log, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    /// A committed offset, or its deletion (None).
    Offset {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset, None for a tombstone.
        value: Option<OffsetValue>,
    },
    /// A group's metadata, or its deletion (None).
    Group {
        /// The group.
        group: String,
        /// The metadata, None for a tombstone.
        value: Option<GroupValue>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    v: u8,
    #[serde(flatten)]
    body: T,
}

impl CoordinatorRecord for GroupRecord {
    fn entity_key(&self) -> &str {
        self.group()
    }

    fn encode(&self) -> Result<(Bytes, Option<Bytes>), String> {
        self.encode_json().map_err(|e| e.to_string())
    }

    fn decode(offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<GroupRecord, RecordError> {
        GroupRecord::decode_json(offset, key, value)
    }
}

impl GroupRecord {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. } | GroupRecord::Group { group, .. } => group,
        }
    }

    fn encode_json(&self) -> Result<(Bytes, Option<Bytes>), serde_json::Error> {
        let (key, value) = match self {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => (
                Key::Offset {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                },
                value.as_ref().map(versioned_json).transpose()?,
            ),
            GroupRecord::Group { group, value } => (
                Key::Group {
                    group: group.clone(),
                },
                value.as_ref().map(versioned_json).transpose()?,
            ),
        };
        Ok((versioned_json(&key)?, value))
    }

    fn decode_json(
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<GroupRecord, RecordError> {
        let bad = |reason: String| RecordError::Record { offset, reason };
        let key: Versioned<Key> =
            serde_json::from_slice(key).map_err(|e| bad(format!("key: {e}")))?;
        if key.v != RECORD_VERSION {
            return Err(bad(format!("key version {} (this build reads 1)", key.v)));
        }
        Ok(match key.body {
            Key::Offset {
                group,
                topic,
                partition,
            } => GroupRecord::Offset {
                group,
                topic,
                partition,
                value: value.map(|v| parse_versioned(v).map_err(bad)).transpose()?,
            },
            Key::Group { group } => GroupRecord::Group {
                group,
                value: value.map(|v| parse_versioned(v).map_err(bad)).transpose()?,
            },
        })
    }
}

fn versioned_json<T: Serialize>(body: &T) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(&Versioned {
        v: RECORD_VERSION,
        body,
    })
    .map(Bytes::from)
}

fn parse_versioned<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let value: Versioned<T> = serde_json::from_slice(bytes).map_err(|e| format!("value: {e}"))?;
    if value.v != RECORD_VERSION {
        return Err(format!("value version {} (this build reads 1)", value.v));
    }
    Ok(value.body)
}

mod base64_bytes {
    use base64::Engine;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(group: &str, partition: i32, value: Option<i64>) -> GroupRecord {
        GroupRecord::Offset {
            group: group.into(),
            topic: "t".into(),
            partition,
            value: value.map(|offset| OffsetValue {
                offset,
                leader_epoch: 3,
                metadata: "m".into(),
                commit_timestamp: 7,
                expire_timestamp: None,
            }),
        }
    }

    use crate::coordinator::records::{decode_batches, encode_batch, Decoded};

    /// The records of decoded batches, with their offsets.
    fn records_of(batches: Vec<Decoded<GroupRecord>>) -> Vec<(i64, GroupRecord)> {
        batches
            .into_iter()
            .flat_map(|b| match b {
                Decoded::Records { records, .. } => records,
                Decoded::Marker { .. } => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn batch_round_trip() {
        let records = vec![
            offset("g", 0, Some(42)),
            offset("g", 1, None),
            GroupRecord::Group {
                group: "g".into(),
                value: Some(GroupValue {
                    protocol_type: "consumer".into(),
                    generation: 4,
                    protocol: Some("range".into()),
                    leader: Some("m-1".into()),
                    current_state_timestamp: 9,
                    members: vec![MemberValue {
                        member_id: "m-1".into(),
                        group_instance_id: Some("i".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        rebalance_timeout: 1,
                        session_timeout: 2,
                        subscription: Bytes::from_static(&[0, 1, 255]),
                        assignment: Bytes::new(),
                    }],
                }),
            },
            GroupRecord::Group {
                group: "h".into(),
                value: None,
            },
        ];
        let batch = encode_batch(&records, 5, None).unwrap().freeze();
        let decoded = records_of(decode_batches(batch.clone(), 0).unwrap());
        assert_eq!(
            decoded,
            records
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, r)| (i as i64, r))
                .collect::<Vec<_>>()
        );
        assert_eq!(records_of(decode_batches(batch, 2).unwrap()).len(), 2);
    }

    #[test]
    fn unknown_versions_are_refused() {
        let err = GroupRecord::decode_json(0, br#"{"v":2,"type":"group","group":"g"}"#, None);
        assert!(matches!(err, Err(RecordError::Record { .. })));
        let err = GroupRecord::decode_json(
            0,
            br#"{"v":1,"type":"offset","group":"g","topic":"t","partition":0}"#,
            Some(br#"{"v":9,"offset":1}"#),
        );
        assert!(matches!(err, Err(RecordError::Record { .. })));
    }
}
