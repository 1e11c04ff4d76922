//! The offset store of one group (Kafka's `OffsetMetadataManager` for one group id): committed
//! offsets, commits on their way to the disk, and offsets committed inside transactions.
//!
//! A commit is appended to the group log at once but becomes visible to OffsetFetch only once
//! it is committed (fsynced; it waits in `pending`, in log order, until then; the commit is also
//! answered only then). Applying in log order keeps memory equal to what a replay of the log
//! would build, whatever order concurrent fsyncs finish in. A deletion removes the offset and
//! any pending commit of the same partition, which precede it in the log.
//!
//! Offsets committed inside a transaction (TxnOffsetCommit) wait per producer id in
//! `transactional` until the transaction's marker: a commit makes them committed offsets, an
//! abort drops them. While one waits, its partition has an unstable offset (OffsetFetch with
//! `require_stable` answers UNSTABLE_OFFSET_COMMIT).
//!
//! The store is plain data beside its group, under the same key lock; which commits the group
//! accepts is the group type's decision (`Group::validate_offset_commit`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::records::{GroupRecord, OffsetValue};
use super::{GroupConfig, GroupError};
use crate::coordinator::snapshot::SnapshotRecord;

/// The group coordinator's operation context.
pub type Ctx<'a> = crate::coordinator::Ctx<'a, GroupConfig, GroupRecord, super::AfterPersist>;

/// A committed offset as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset.
    pub offset: i64,
    /// The committed leader epoch, -1 for none.
    pub leader_epoch: i32,
    /// The metadata string.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp: i64,
    /// Explicit expiry (OffsetCommit v2-v4 retention), else None.
    pub expire_timestamp: Option<i64>,
    /// Offset of its record in the group log.
    pub record_offset: i64,
}

impl CommittedOffset {
    /// From its stored value at `record_offset`.
    pub fn from_value(value: &OffsetValue, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata.clone(),
            commit_timestamp: value.commit_timestamp,
            expire_timestamp: value.expire_timestamp,
            record_offset,
        }
    }

    /// Its stored value.
    pub fn value(&self) -> OffsetValue {
        OffsetValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp,
            expire_timestamp: self.expire_timestamp,
        }
    }

    /// Kafka's `OffsetExpirationConditionImpl.isOffsetExpired`.
    fn is_expired(&self, base_timestamp: i64, now: i64, retention_ms: i64) -> bool {
        match self.expire_timestamp {
            Some(at) => now >= at,
            None => now - base_timestamp >= retention_ms,
        }
    }
}

/// A commit in the log that is not yet committed.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    /// Offset of its record in the group log.
    pub record_offset: i64,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset it commits.
    pub offset: CommittedOffset,
    /// The producer of a transactional commit (TxnOffsetCommit), -1 otherwise.
    pub producer_id: i64,
}

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset to commit.
    pub offset: i64,
    /// The leader epoch (v6+), -1 for none.
    pub leader_epoch: i32,
    /// The metadata (null is stored as "", as Kafka does).
    pub metadata: Option<String>,
}

/// Which generation and member an OffsetCommit comes from.
#[derive(Debug, Clone)]
pub struct CommitAuthor {
    /// The member id ("" outside group management).
    pub member_id: String,
    /// group.instance.id (v7+).
    pub group_instance_id: Option<String>,
    /// The generation (-1 outside group management).
    pub generation_id: i32,
    /// OffsetCommit v2-v4 retention_time_ms (-1: the broker's retention).
    pub retention_time_ms: i64,
}

/// From when a group's offsets count their retention (Kafka's `OffsetExpirationCondition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirationBase {
    /// From when the group entered its state (an Empty classic group), or the commit when
    /// that is unknown.
    StateTimestamp(Option<i64>),
    /// From each offset's own commit.
    CommitTimestamp,
}

/// The offsets of one group.
#[derive(Debug, Default)]
pub struct OffsetStore {
    /// Committed offsets by (topic, partition).
    committed: BTreeMap<(String, i32), CommittedOffset>,
    /// Commits appended to the log but not yet committed, in log order.
    pending: VecDeque<PendingCommit>,
    /// Offsets committed in open transactions, by producer id.
    transactional: HashMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
}

impl OffsetStore {
    /// Validates one OffsetCommit's partitions (the group accepted the commit) and pushes its
    /// records: one result per partition, in order.
    pub fn commit(
        &self,
        group_id: &str,
        author: &CommitAuthor,
        partitions: &[CommitPartition],
        ctx: &mut Ctx,
    ) -> Vec<Option<GroupError>> {
        let expire_timestamp =
            (author.retention_time_ms != -1).then(|| ctx.now + author.retention_time_ms);
        let mut results = Vec::with_capacity(partitions.len());
        for p in partitions {
            let metadata = p.metadata.clone().unwrap_or_default();
            // Java measures the string in UTF-16 code units.
            let len = metadata.encode_utf16().count();
            if len > ctx.config.offset_metadata_max_bytes {
                results.push(Some(GroupError::OffsetMetadataTooLarge {
                    len,
                    max: ctx.config.offset_metadata_max_bytes,
                }));
                continue;
            }
            ctx.records.push(GroupRecord::Offset {
                group: group_id.to_string(),
                topic: p.topic.clone(),
                partition: p.partition,
                value: Some(OffsetValue {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata,
                    commit_timestamp: ctx.now,
                    expire_timestamp,
                }),
            });
            results.push(None);
        }
        results
    }

    /// Tracks the offset records of one operation, appended at consecutive offsets from
    /// `base_offset` (other records count for the offsets only): commits wait in `pending`,
    /// deletions apply at once (their answer is sent only once they are committed).
    pub fn appended(&mut self, records: &[GroupRecord], base_offset: i64, producer_id: i64) {
        for (i, record) in records.iter().enumerate() {
            let record_offset = base_offset + i as i64;
            match record {
                GroupRecord::Offset {
                    topic,
                    partition,
                    value: Some(value),
                    ..
                } => self.pending.push_back(PendingCommit {
                    record_offset,
                    topic: topic.clone(),
                    partition: *partition,
                    offset: CommittedOffset::from_value(value, record_offset),
                    producer_id,
                }),
                GroupRecord::Offset {
                    topic,
                    partition,
                    value: None,
                    ..
                } => self.remove(topic, *partition),
                GroupRecord::Group { .. } => {}
            }
        }
    }

    /// Makes the commits appended below `end` visible, in log order.
    pub fn committed(&mut self, end: i64) {
        while self.pending.front().is_some_and(|c| c.record_offset < end) {
            if let Some(c) = self.pending.pop_front() {
                if c.producer_id >= 0 {
                    // Durable, but invisible until the producer's commit marker.
                    self.transactional
                        .entry(c.producer_id)
                        .or_default()
                        .insert((c.topic, c.partition), c.offset);
                } else {
                    self.committed.insert((c.topic, c.partition), c.offset);
                }
            }
        }
    }

    /// Applies a commit read back from the log (it is committed already, or, from a producer,
    /// pending in its transaction).
    pub fn replay(
        &mut self,
        record_offset: i64,
        producer_id: i64,
        topic: &str,
        partition: i32,
        value: &OffsetValue,
    ) {
        let offset = CommittedOffset::from_value(value, record_offset);
        let key = (topic.to_string(), partition);
        if producer_id >= 0 {
            self.transactional
                .entry(producer_id)
                .or_default()
                .insert(key, offset);
        } else {
            self.committed.insert(key, offset);
        }
    }

    /// Kafka's replay of an end-transaction marker for this group: a commit makes the
    /// producer's offsets committed, an abort drops them.
    pub fn complete_transaction(&mut self, producer_id: i64, commit: bool) {
        if let Some(offsets) = self.transactional.remove(&producer_id) {
            if commit {
                self.committed.extend(offsets);
            }
        }
        // A commit still on its way to disk belongs to the transaction that just ended.
        if commit {
            for c in self
                .pending
                .iter_mut()
                .filter(|c| c.producer_id == producer_id)
            {
                c.producer_id = -1;
            }
        } else {
            self.pending.retain(|c| c.producer_id != producer_id);
        }
    }

    /// The committed offset of a partition.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.committed.get(&(topic.to_string(), partition))
    }

    /// Every committed offset, by topic then partition.
    pub fn all(&self) -> impl Iterator<Item = (&str, i32, &CommittedOffset)> {
        self.committed.iter().map(|((t, p), o)| (t.as_str(), *p, o))
    }

    /// Whether the partition has a committed or pending offset.
    pub fn has_offset(&self, topic: &str, partition: i32) -> bool {
        self.offset(topic, partition).is_some()
            || self
                .pending
                .iter()
                .any(|c| c.topic == topic && c.partition == partition)
    }

    /// Whether an open transaction holds an offset for the partition (an unstable offset).
    pub fn has_pending_transactional_offset(&self, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        self.transactional.values().any(|o| o.contains_key(&key))
            || self
                .pending
                .iter()
                .any(|c| c.producer_id >= 0 && c.topic == topic && c.partition == partition)
    }

    /// Whether any commit is waiting to be committed.
    pub fn has_pending_commits(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether there is nothing at all (no offset, pending or transactional).
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty() && self.pending.is_empty() && self.transactional.is_empty()
    }

    /// Forgets a partition's offset and any pending commit of it.
    pub fn remove(&mut self, topic: &str, partition: i32) {
        self.committed.remove(&(topic.to_string(), partition));
        self.pending
            .retain(|c| !(c.topic == topic && c.partition == partition));
    }

    /// Tombstones for every offset of the group, pending ones included.
    pub fn push_tombstones(&self, group_id: &str, ctx: &mut Ctx) {
        let mut keys: Vec<(String, i32)> = self.committed.keys().cloned().collect();
        for c in &self.pending {
            if !keys.iter().any(|(t, p)| *t == c.topic && *p == c.partition) {
                keys.push((c.topic.clone(), c.partition));
            }
        }
        for (topic, partition) in keys {
            ctx.records.push(tombstone(group_id, &topic, partition));
        }
    }

    /// Kafka's `cleanupExpiredOffsets`: tombstones for the committed offsets of topics the group
    /// does not consume that are past their retention counted from `base`; true when every
    /// offset expired (the group may go if it is empty).
    pub fn expire(
        &self,
        group_id: &str,
        base: ExpirationBase,
        is_subscribed: impl Fn(&str) -> bool,
        ctx: &mut Ctx,
    ) -> bool {
        let now = ctx.now;
        let retention = ctx.config.offsets_retention_ms;
        let mut all_expired = true;
        let mut expired = Vec::new();
        for ((topic, partition), o) in &self.committed {
            if is_subscribed(topic) {
                all_expired = false;
                continue;
            }
            let base_ts = match base {
                ExpirationBase::StateTimestamp(ts) => ts.unwrap_or(o.commit_timestamp),
                ExpirationBase::CommitTimestamp => o.commit_timestamp,
            };
            if o.is_expired(base_ts, now, retention) {
                expired.push((topic.clone(), *partition));
            } else {
                all_expired = false;
            }
        }
        for (topic, partition) in &expired {
            tracing::debug!(group = group_id, topic, partition, "offset expired");
            ctx.records.push(tombstone(group_id, topic, *partition));
        }
        all_expired
    }

    /// The records that rebuild the store for a snapshot: committed offsets and commits still
    /// on their way (their records are in the log below the snapshot's offset), and offsets of
    /// open transactions with their producers.
    pub fn snapshot(&self, group_id: &str, out: &mut Vec<SnapshotRecord<GroupRecord>>) {
        let mut latest: BTreeMap<(&str, i32), &CommittedOffset> = self
            .committed
            .iter()
            .map(|((t, p), o)| ((t.as_str(), *p), o))
            .collect();
        for c in self.pending.iter().filter(|c| c.producer_id < 0) {
            latest.insert((c.topic.as_str(), c.partition), &c.offset);
        }
        let record = |topic: &str, partition: i32, o: &CommittedOffset| GroupRecord::Offset {
            group: group_id.to_string(),
            topic: topic.to_string(),
            partition,
            value: Some(o.value()),
        };
        for ((topic, partition), o) in latest {
            out.push(SnapshotRecord {
                offset: o.record_offset,
                producer_id: -1,
                producer_epoch: -1,
                record: record(topic, partition, o),
            });
        }
        for (producer_id, offsets) in &self.transactional {
            for ((topic, partition), o) in offsets {
                out.push(SnapshotRecord {
                    offset: o.record_offset,
                    producer_id: *producer_id,
                    producer_epoch: -1,
                    record: record(topic, *partition, o),
                });
            }
        }
        for c in self.pending.iter().filter(|c| c.producer_id >= 0) {
            out.push(SnapshotRecord {
                offset: c.offset.record_offset,
                producer_id: c.producer_id,
                producer_epoch: -1,
                record: record(&c.topic, c.partition, &c.offset),
            });
        }
    }
}

/// The tombstone of a partition's offset.
pub fn tombstone(group_id: &str, topic: &str, partition: i32) -> GroupRecord {
    GroupRecord::Offset {
        group: group_id.to_string(),
        topic: topic.to_string(),
        partition,
        value: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(offset: i64) -> OffsetValue {
        OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
            expire_timestamp: None,
        }
    }

    #[test]
    fn transactional_offsets_wait_for_their_marker() {
        let mut s = OffsetStore::default();
        s.replay(1, -1, "t", 0, &value(5));
        s.replay(2, 7, "t", 0, &value(9));
        s.replay(3, 8, "t", 1, &value(4));
        assert_eq!(
            s.offset("t", 0).unwrap().offset,
            5,
            "invisible until committed"
        );
        assert!(s.has_pending_transactional_offset("t", 0));
        assert!(s.has_pending_transactional_offset("t", 1));
        s.complete_transaction(7, true);
        s.complete_transaction(8, false);
        assert_eq!(s.offset("t", 0).unwrap().offset, 9);
        assert!(s.offset("t", 1).is_none(), "aborted: dropped");
        assert!(!s.has_pending_transactional_offset("t", 0));
        let mut out = Vec::new();
        s.replay(4, 9, "u", 0, &value(1));
        s.snapshot("g", &mut out);
        assert_eq!(
            out.iter()
                .map(|r| (r.offset, r.producer_id))
                .collect::<Vec<_>>(),
            [(2, -1), (4, 9)]
        );
    }
}
