//! Committed offsets of a group (Kafka's `OffsetMetadataManager` for one group): validation of
//! OffsetCommit against the membership, durable-only reads, OffsetDelete and expiry.
//!
//! A commit is appended to the group log at once but becomes visible to OffsetFetch only once
//! it is fsynced (it waits in `pending_commits`, in log order, until then; the commit is also
//! answered only then). Applying in log order keeps memory equal to what a replay of the log
//! would build, whatever order concurrent fsyncs finish in. A deletion removes the offset and
//! any pending commit of the same partition, which precede it in the log.

use std::collections::BTreeMap;

use super::classic::{Ctx, Group};
use super::records::{GroupRecord, OffsetValue};
use super::store::{SnapshotGroup, SnapshotOffset};
use super::{GroupError, GroupState};

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

    /// Kafka's `OffsetExpirationConditionImpl.isOffsetExpired`.
    fn is_expired(&self, base_timestamp: i64, now: i64, retention_ms: i64) -> bool {
        match self.expire_timestamp {
            Some(at) => now >= at,
            None => now - base_timestamp >= retention_ms,
        }
    }
}

/// A commit in the log that is not yet durable.
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

impl Group {
    /// Kafka's `ClassicGroup.validateOffsetCommit` (non-transactional).
    pub fn validate_offset_commit(&self, author: &CommitAuthor) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if author.generation_id < 0 && self.state == GroupState::Empty {
            // The admin client, or a consumer with manual assignment: allowed while no member
            // manages the group.
            return Ok(());
        }
        if author.generation_id >= 0
            || !author.member_id.is_empty()
            || author.group_instance_id.is_some()
        {
            self.validate_member(&author.member_id, author.group_instance_id.as_deref())?;
            if author.generation_id != self.generation_id {
                return Err(GroupError::IllegalGeneration {
                    got: author.generation_id,
                    current: self.generation_id,
                });
            }
        } else if self.state != GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            // The member has its new generation from JoinGroup but no assignment yet.
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Validates and records an OffsetCommit: one result per partition (in order), the records
    /// pushed to `ctx.records`. Err is a group-level error for every partition.
    pub fn commit_offsets(
        &mut self,
        author: &CommitAuthor,
        partitions: &[CommitPartition],
        ctx: &mut Ctx,
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        self.validate_offset_commit(author)?;
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            // A commit keeps the member's session alive, as a heartbeat would.
            if let Some(m) = self
                .members
                .iter_mut()
                .find(|m| m.member_id == author.member_id)
            {
                m.heartbeat_deadline = Some(ctx.now + m.session_timeout_ms as i64);
            }
        }
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
                group: self.id.clone(),
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
        Ok(results)
    }

    /// Makes the commits appended below `durable_end` visible, in log order.
    pub fn apply_durable_commits(&mut self, durable_end: i64) {
        while self
            .pending_commits
            .front()
            .is_some_and(|c| c.record_offset < durable_end)
        {
            if let Some(c) = self.pending_commits.pop_front() {
                self.offsets.insert((c.topic, c.partition), c.offset);
            }
        }
    }

    /// Applies a commit read back from the log (replay: it is durable already).
    pub fn replay_offset(&mut self, topic: &str, partition: i32, value: Option<CommittedOffset>) {
        match value {
            Some(v) => {
                self.offsets.insert((topic.to_string(), partition), v);
            }
            None => self.remove_offset(topic, partition),
        }
    }

    /// The committed offset of a partition.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(&(topic.to_string(), partition))
    }

    /// Every committed offset, by topic then partition.
    pub fn all_offsets(&self) -> impl Iterator<Item = (&str, i32, &CommittedOffset)> {
        self.offsets.iter().map(|((t, p), o)| (t.as_str(), *p, o))
    }

    /// Whether the group has a committed or pending offset for the partition.
    pub fn has_offset(&self, topic: &str, partition: i32) -> bool {
        self.offset(topic, partition).is_some()
            || self
                .pending_commits
                .iter()
                .any(|c| c.topic == topic && c.partition == partition)
    }

    pub(super) fn remove_offset(&mut self, topic: &str, partition: i32) {
        self.offsets.remove(&(topic.to_string(), partition));
        self.pending_commits
            .retain(|c| !(c.topic == topic && c.partition == partition));
    }

    /// What a snapshot of the group log keeps of this group: its last metadata record and its
    /// offsets, commits still on their way to disk included (their records are in the log
    /// below the snapshot offset). None if there is nothing to keep.
    pub fn snapshot(&self) -> Option<SnapshotGroup> {
        let mut offsets: BTreeMap<(&str, i32), &CommittedOffset> = self
            .offsets
            .iter()
            .map(|((t, p), o)| ((t.as_str(), *p), o))
            .collect();
        for c in &self.pending_commits {
            offsets.insert((c.topic.as_str(), c.partition), &c.offset);
        }
        if self.persisted.is_none() && offsets.is_empty() {
            return None;
        }
        Some(SnapshotGroup {
            group: self.id.clone(),
            metadata: self.persisted.clone(),
            offsets: offsets
                .into_iter()
                .map(|((topic, partition), o)| SnapshotOffset {
                    topic: topic.to_string(),
                    partition,
                    record_offset: o.record_offset,
                    value: OffsetValue {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_timestamp: o.commit_timestamp,
                        expire_timestamp: o.expire_timestamp,
                    },
                })
                .collect(),
        })
    }

    /// Whether any commit is waiting for its fsync.
    pub fn has_pending_commits(&self) -> bool {
        !self.pending_commits.is_empty()
    }

    /// Kafka's `ClassicGroup.validateOffsetDelete`.
    pub fn validate_offset_delete(&self) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => Err(GroupError::GroupIdNotFound(self.id.clone())),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if !self.uses_consumer_protocol() =>
            {
                Err(GroupError::NonEmptyGroup)
            }
            _ => Ok(()),
        }
    }

    /// OffsetDelete of some partitions: per topic, GROUP_SUBSCRIBED_TO_TOPIC when the group
    /// consumes it, else tombstones for the partitions that have an offset.
    pub fn delete_offsets(
        &mut self,
        topics: &[(String, Vec<i32>)],
        ctx: &mut Ctx,
    ) -> Result<Vec<Vec<Option<GroupError>>>, GroupError> {
        self.validate_offset_delete()?;
        let mut results = Vec::with_capacity(topics.len());
        for (topic, partitions) in topics {
            if self.is_subscribed_to_topic(topic) {
                results.push(vec![
                    Some(GroupError::GroupSubscribedToTopic(topic.clone()));
                    partitions.len()
                ]);
                continue;
            }
            for &p in partitions {
                if self.has_offset(topic, p) {
                    ctx.records.push(self.offset_tombstone(topic, p));
                }
            }
            results.push(vec![None; partitions.len()]);
        }
        Ok(results)
    }

    fn offset_tombstone(&self, topic: &str, partition: i32) -> GroupRecord {
        GroupRecord::Offset {
            group: self.id.clone(),
            topic: topic.to_string(),
            partition,
            value: None,
        }
    }

    /// Kafka's `validateDeleteGroup`: only a group without members can be deleted.
    pub fn validate_delete_group(&self) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => Err(GroupError::GroupIdNotFound(self.id.clone())),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance => Err(GroupError::NonEmptyGroup),
            GroupState::Empty => Ok(()),
        }
    }

    /// DeleteGroups: tombstones for every offset (pending ones too) and for the group.
    pub fn delete_group(&mut self, ctx: &mut Ctx) -> Result<(), GroupError> {
        self.validate_delete_group()?;
        self.push_deletion_records(ctx);
        Ok(())
    }

    fn push_deletion_records(&self, ctx: &mut Ctx) {
        let mut keys: Vec<(String, i32)> = self.offsets.keys().cloned().collect();
        for c in &self.pending_commits {
            if !keys.iter().any(|(t, p)| *t == c.topic && *p == c.partition) {
                keys.push((c.topic.clone(), c.partition));
            }
        }
        for (topic, partition) in keys {
            ctx.records.push(self.offset_tombstone(&topic, partition));
        }
        ctx.records.push(GroupRecord::Group {
            group: self.id.clone(),
            value: None,
        });
    }

    /// Kafka's `cleanupExpiredOffsets` + `maybeDeleteGroup`: tombstones for expired offsets;
    /// true when the group should be deleted too (Empty with no offset left), in which case
    /// its tombstone is pushed as well.
    pub fn cleanup_expired(&mut self, ctx: &mut Ctx) -> bool {
        let now = ctx.now;
        let retention = ctx.config.offsets_retention_ms;
        // Which timestamp retention counts from (ClassicGroup.offsetExpirationCondition).
        enum Base {
            StateTimestamp(Option<i64>),
            CommitTimestamp,
        }
        let base = if self.protocol_type.is_none() {
            // A group that only stores offsets: each one expires on its own.
            Some(Base::CommitTimestamp)
        } else if self.state == GroupState::Empty {
            Some(Base::StateTimestamp(self.state_timestamp))
        } else if self.uses_consumer_protocol()
            && self.subscribed_topics.is_some()
            && self.state == GroupState::Stable
        {
            Some(Base::CommitTimestamp)
        } else {
            None
        };
        let Some(base) = base else {
            return false;
        };
        let mut all_expired = true;
        let mut expired = Vec::new();
        for ((topic, partition), o) in &self.offsets {
            if self.is_subscribed_to_topic(topic) {
                all_expired = false;
                continue;
            }
            let base_ts = match base {
                Base::StateTimestamp(ts) => ts.unwrap_or(o.commit_timestamp),
                Base::CommitTimestamp => o.commit_timestamp,
            };
            if o.is_expired(base_ts, now, retention) {
                expired.push((topic.clone(), *partition));
            } else {
                all_expired = false;
            }
        }
        for (topic, partition) in &expired {
            tracing::debug!(group = %self.id, topic, partition, "offset expired");
            ctx.records.push(self.offset_tombstone(topic, *partition));
        }
        // A commit still on its way to disk keeps the group.
        if all_expired && !self.has_pending_commits() && self.state == GroupState::Empty {
            ctx.records.push(GroupRecord::Group {
                group: self.id.clone(),
                value: None,
            });
            return true;
        }
        false
    }
}
