//! The group coordinator as a shard of the coordinator runtime (Kafka's
//! `GroupCoordinatorShard`): one per `__consumer_offsets-N` partition, holding the groups whose
//! ids hash there. Under each group id's lock sits a [`GroupEntry`]: the group (of its type) and,
//! beside it, its offset store. Operations that involve both (a commit validated by the group,
//! a deletion that tombstones both) live here; the group types decide the rules.

use std::sync::Arc;

use super::classic::{AfterPersist, ClassicGroup};
use super::offsets::{tombstone, CommitAuthor, CommitPartition, Ctx, OffsetStore};
use super::records::{GroupRecord, GroupValue};
use super::types::Group;
use super::{GroupConfig, GroupError, GroupState};
use crate::coordinator::snapshot::SnapshotRecord;
use crate::coordinator::{CoordinatorError, Entities, Entity, Shard, TxnResult};

/// What one group id's lock guards: the group and its offsets.
#[derive(Debug)]
pub struct GroupEntry {
    /// The group.
    pub group: Group,
    /// Its committed offsets.
    pub offsets: OffsetStore,
    /// While loading: the group's last metadata record read back and its offset, turned into
    /// the group once loading is complete (members' sessions start then).
    loading: Option<(i64, GroupValue)>,
}

impl GroupEntry {
    /// A new, Empty classic group without offsets.
    pub fn new(group_id: &str, now: i64) -> GroupEntry {
        GroupEntry {
            group: Group::Classic(ClassicGroup::new(group_id, now)),
            offsets: OffsetStore::default(),
            loading: None,
        }
    }

    /// The group id.
    pub fn id(&self) -> &str {
        self.group.group_id()
    }

    /// OffsetCommit: the group validates the author (a group-level error refuses every
    /// partition), the store the partitions; one result per partition, records in `ctx`.
    pub fn commit_offsets(
        &mut self,
        author: &CommitAuthor,
        partitions: &[CommitPartition],
        ctx: &mut Ctx,
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        self.group.validate_offset_commit(author)?;
        self.group.on_offset_commit(author, ctx.now);
        let id = self.group.group_id().to_string();
        Ok(self.offsets.commit(&id, author, partitions, ctx))
    }

    /// TxnOffsetCommit's checks and records: a member id or generation, when given, must
    /// match as for OffsetCommit; without them (a producer outside group management) any
    /// group takes the offsets.
    pub fn txn_commit_offsets(
        &mut self,
        author: &CommitAuthor,
        partitions: &[CommitPartition],
        ctx: &mut Ctx,
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        if !author.member_id.is_empty() || author.generation_id >= 0 {
            self.group.validate_offset_commit(author)?;
        }
        let id = self.group.group_id().to_string();
        Ok(self.offsets.commit(&id, author, partitions, ctx))
    }

    /// OffsetDelete of some partitions: per topic, GROUP_SUBSCRIBED_TO_TOPIC when the group
    /// consumes it, else tombstones for the partitions that have an offset.
    pub fn delete_offsets(
        &mut self,
        topics: &[(String, Vec<i32>)],
        ctx: &mut Ctx,
    ) -> Result<Vec<Vec<Option<GroupError>>>, GroupError> {
        self.group.validate_offset_delete()?;
        let id = self.group.group_id().to_string();
        let mut results = Vec::with_capacity(topics.len());
        for (topic, partitions) in topics {
            if self.group.is_subscribed_to_topic(topic) {
                results.push(vec![
                    Some(GroupError::GroupSubscribedToTopic(topic.clone()));
                    partitions.len()
                ]);
                continue;
            }
            for &p in partitions {
                if self.offsets.has_offset(topic, p) {
                    ctx.records.push(tombstone(&id, topic, p));
                }
            }
            results.push(vec![None; partitions.len()]);
        }
        Ok(results)
    }

    /// DeleteGroups: tombstones for every offset (pending ones too) and for the group.
    pub fn delete_group(&mut self, ctx: &mut Ctx) -> Result<(), GroupError> {
        self.group.validate_delete_group()?;
        self.offsets.push_tombstones(self.group.group_id(), ctx);
        ctx.records.push(self.group.tombstone());
        Ok(())
    }

    /// Kafka's `cleanupExpiredOffsets` + `maybeDeleteGroup`: tombstones for expired offsets;
    /// true when the group goes too (Empty, no offset left, none on its way to the disk), in
    /// which case its tombstone is pushed as well.
    pub fn cleanup_expired(&mut self, ctx: &mut Ctx) -> bool {
        let Some(base) = self.group.offset_expiration_condition() else {
            return false;
        };
        let group = &self.group;
        let all_expired = self.offsets.expire(
            group.group_id(),
            base,
            |topic| group.is_subscribed_to_topic(topic),
            ctx,
        );
        // A commit still on its way to disk keeps the group.
        if all_expired && !self.offsets.has_pending_commits() && self.group.is_empty() {
            ctx.records.push(self.group.tombstone());
            return true;
        }
        false
    }

    fn classic_mut(&mut self) -> Option<&mut ClassicGroup> {
        self.group.as_classic_mut()
    }
}

impl Entity for GroupEntry {
    type Record = GroupRecord;
    type FollowUp = AfterPersist;
    type Config = GroupConfig;

    fn new(key: &str, now: i64) -> GroupEntry {
        GroupEntry::new(key, now)
    }

    fn is_removed(&self) -> bool {
        self.group.state() == GroupState::Dead
    }

    fn mark_removed(&mut self, now: i64) {
        if let Some(g) = self.classic_mut() {
            g.mark_dead(now);
        }
    }

    fn is_gone(&self) -> bool {
        let no_metadata = self
            .group
            .as_classic()
            .is_none_or(|g| g.persisted().is_none());
        no_metadata && self.loading.is_none() && self.offsets.is_empty()
    }

    fn replay(&mut self, offset: i64, producer_id: i64, _epoch: i16, record: GroupRecord) {
        match record {
            GroupRecord::Group { value, .. } => self.loading = value.map(|v| (offset, v)),
            GroupRecord::Offset {
                topic,
                partition,
                value: Some(value),
                ..
            } => self
                .offsets
                .replay(offset, producer_id, &topic, partition, &value),
            // Kafka's replay keeps the offsets of a deleted group's tombstone order: each
            // offset has its own tombstone before the group's.
            GroupRecord::Offset {
                topic,
                partition,
                value: None,
                ..
            } => self.offsets.remove(&topic, partition),
        }
    }

    fn replay_end_txn_marker(&mut self, producer_id: i64, _epoch: i16, result: TxnResult) {
        self.offsets
            .complete_transaction(producer_id, result == TxnResult::Commit);
    }

    fn loaded(&mut self, ctx: &mut Ctx) {
        if let Some((offset, value)) = self.loading.take() {
            let id = self.group.group_id().to_string();
            self.group = Group::Classic(ClassicGroup::from_record(&id, &value, offset, ctx.now));
        }
        if let Some(g) = self.classic_mut() {
            if g.members().len() > ctx.config.max_size {
                // Kafka rebalances a loaded group that is over a lowered group.max.size, so
                // the members get a chance to commit and the extra ones are refused.
                g.force_rebalance(ctx);
            }
        }
    }

    fn appended(&mut self, records: &[GroupRecord], base_offset: i64, producer_id: i64) {
        if let Some(g) = self.classic_mut() {
            g.records_appended(records, base_offset);
        }
        self.offsets.appended(records, base_offset, producer_id);
    }

    fn committed(&mut self, end: i64) {
        self.offsets.committed(end);
    }

    fn follow_up(
        &mut self,
        follow_ups: Vec<AfterPersist>,
        result: Result<(), CoordinatorError>,
        ctx: &mut Ctx,
    ) {
        if let Some(g) = self.classic_mut() {
            g.after_persist(follow_ups, result.map_err(GroupError::from), ctx);
        }
    }

    fn next_deadline(&self) -> Option<i64> {
        self.group
            .as_classic()
            .and_then(ClassicGroup::next_deadline)
    }

    fn tick(&mut self, ctx: &mut Ctx) {
        if let Some(g) = self.classic_mut() {
            g.tick(ctx);
        }
    }

    fn snapshot(&self, out: &mut Vec<SnapshotRecord<GroupRecord>>) {
        if let Some(g) = self.group.as_classic() {
            g.snapshot(out);
        }
        self.offsets.snapshot(self.group.group_id(), out);
    }

    fn unload(&mut self) {
        if let Some(g) = self.classic_mut() {
            g.unload();
        }
    }
}

/// The groups of one `__consumer_offsets` partition.
pub struct GroupShard {
    entities: Entities<GroupEntry>,
    config: Arc<GroupConfig>,
}

impl Shard for GroupShard {
    type Entity = GroupEntry;

    fn new(_index: i32, config: Arc<GroupConfig>) -> GroupShard {
        GroupShard {
            entities: Entities::default(),
            config,
        }
    }

    fn entities(&self) -> &Entities<GroupEntry> {
        &self.entities
    }

    fn config(&self) -> &GroupConfig {
        &self.config
    }
}

impl From<CoordinatorError> for GroupError {
    fn from(e: CoordinatorError) -> GroupError {
        match e {
            CoordinatorError::Storage(reason) => GroupError::Storage(reason),
            CoordinatorError::Unloaded => GroupError::NotCoordinator,
        }
    }
}
