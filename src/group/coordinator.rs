//! The group coordinator: the classic group protocol and committed offsets, as a shard type
//! hosted by the coordinator runtime (`crate::coordinator`) over `__consumer_offsets-N`.
//!
//! Each request runs on the group's entry under the group's own lock (see `shard`): the state
//! machine decides, the runtime appends its records (page cache, under the lock, so the log
//! order of a group's records is the order of its operations) and answers once they are
//! committed. Waiting never happens under a lock: a parked JoinGroup or SyncGroup holds a
//! oneshot receiver, and whatever waits for a commit runs in a tracked task that re-locks the
//! group afterwards (spawned, so the work happens even if the requesting connection goes away).
//! Lock order: a group lock, then the log's own locks; never two group locks at once.
//!
//! A deleted group is marked Dead under its lock and removed from its shard before the lock is
//! released, so an operation that raced for the old entry sees Dead and looks the id up again.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::classic::{
    ClassicGroup, JoinOutcome, JoinRequest, LeaveMember, LeaveResult, SyncOutcome, SyncRequest,
};
use super::legacy;
use super::offsets::{CommitAuthor, CommitPartition, CommittedOffset, Ctx};
use super::records::{GroupRecord, GroupValue};
use super::shard::{GroupEntry, GroupShard};
use super::{GroupConfig, GroupError, GroupState};
use crate::config::Config;
use crate::coordinator::runtime::{Persisted, RuntimeConfig};
use crate::coordinator::{CoordinatorError, Runtime, TxnResult, Waiter};
use crate::partition::PartitionContext;
use crate::tasks::Tasks;
use crate::topics::TopicConfig;

/// The group coordinator's log (Kafka's `__consumer_offsets`).
pub const GROUP_TOPIC: &str = "__consumer_offsets";

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// Its protocol type ("" for a group that only stores offsets).
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Its state (Dead for an unknown group).
    pub state: GroupState,
    /// Its protocol type.
    pub protocol_type: String,
    /// The selected protocol when Stable, else "".
    pub protocol_data: String,
    /// Its members.
    pub members: Vec<MemberDescription>,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// Its group.instance.id.
    pub group_instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its address.
    pub client_host: String,
    /// Its metadata for the selected protocol (Stable groups only, as in Kafka).
    pub metadata: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// One partition's committed offset as OffsetFetch returns it (-1, -1, "" when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    /// The partition.
    pub partition: i32,
    /// The committed offset, -1 for none.
    pub offset: i64,
    /// The committed leader epoch, -1 for none.
    pub leader_epoch: i32,
    /// The metadata, "" for none.
    pub metadata: String,
    /// An open transaction holds an offset for the partition (OffsetFetch `require_stable`
    /// answers UNSTABLE_OFFSET_COMMIT).
    pub unstable: bool,
}

impl FetchedOffset {
    /// No committed offset for `partition`.
    pub fn none(partition: i32) -> FetchedOffset {
        FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            unstable: false,
        }
    }

    fn of(partition: i32, o: &CommittedOffset) -> FetchedOffset {
        FetchedOffset {
            partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
            unstable: false,
        }
    }
}

struct Inner {
    runtime: Runtime<GroupShard>,
    last_cleanup: AtomicI64,
}

/// The group coordinator; a cheap handle (clones share the state).
#[derive(Clone)]
pub struct GroupCoordinator(Arc<Inner>);

impl GroupCoordinator {
    /// Upgrades an old single group log if there is one, then loads every
    /// `__consumer_offsets-N` partition that exists (of `partitions`). Blocking.
    pub fn open(
        data_dir: &Path,
        config: GroupConfig,
        partitions: i32,
        partition_ctx: PartitionContext,
        tasks: Tasks,
    ) -> Result<GroupCoordinator, CoordinatorError> {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "segment.bytes".to_string(),
            config.segment_bytes.to_string(),
        );
        let topic_config = Arc::new(
            TopicConfig::new(overrides, &Config::default()).map_err(CoordinatorError::Storage)?,
        );
        legacy::upgrade(
            data_dir,
            GROUP_TOPIC,
            partitions,
            &topic_config,
            &partition_ctx,
        )?;
        let now = partition_ctx.clock.now_ms();
        let runtime = Runtime::open(RuntimeConfig {
            topic: GROUP_TOPIC.to_string(),
            data_dir: data_dir.to_path_buf(),
            partitions,
            config: Arc::new(config),
            topic_config,
            partition_ctx,
            tasks,
        })?;
        Ok(GroupCoordinator(Arc::new(Inner {
            runtime,
            last_cleanup: AtomicI64::new(now),
        })))
    }

    /// The coordinator settings.
    pub fn config(&self) -> &GroupConfig {
        self.0.runtime.config()
    }

    /// The size of each group log partition that exists, by index (DescribeLogDirs).
    pub fn partition_sizes(&self) -> Vec<(i32, u64)> {
        self.0.runtime.partition_sizes()
    }

    /// Now, by the broker's clock.
    pub fn now(&self) -> i64 {
        self.0.runtime.now()
    }

    /// The `__consumer_offsets` partition of a group id (Kafka's hash).
    pub fn partition_for(&self, group_id: &str) -> i32 {
        self.0.runtime.partition_for(group_id)
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(self.now(), self.config())
    }

    // ---- Membership ---------------------------------------------------------------------

    /// JoinGroup; group id and session timeout are already validated by the handler.
    pub fn join(&self, group_id: &str, req: JoinRequest) -> Waiter<JoinOutcome> {
        let member_id = req.member_id.clone();
        let known_member = !member_id.is_empty();
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, !known_member, |target, entry, created| {
            let mut ctx = self.ctx();
            let waiter = match entry.group.as_classic_mut() {
                Some(group) => {
                    let waiter = group.join(req.clone(), &mut ctx);
                    if created && ctx.records.is_empty() {
                        // Kafka records a group the moment it exists, even if the join failed.
                        ctx.records.push(empty_group_record(group));
                    }
                    waiter
                }
                None => Waiter::Ready(JoinOutcome::error(
                    GroupError::InconsistentGroupProtocol,
                    member_id.clone(),
                )),
            };
            let persisted = rt.persist(target, entry, ctx);
            rt.finish(persisted);
            waiter
        });
        match result {
            Ok(Some(waiter)) => waiter,
            // A known member id for a group that does not exist.
            Ok(None) => Waiter::Ready(JoinOutcome::error(GroupError::UnknownMemberId, member_id)),
            Err(e) => Waiter::Ready(JoinOutcome::error(e.into(), member_id)),
        }
    }

    /// SyncGroup.
    pub fn sync(&self, group_id: &str, req: SyncRequest) -> Waiter<SyncOutcome> {
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, false, |target, entry, _| {
            let Some(group) = entry.group.as_classic_mut() else {
                return Waiter::Ready(SyncOutcome::error(GroupError::InconsistentGroupProtocol));
            };
            if group.state() == GroupState::Empty {
                return Waiter::Ready(SyncOutcome::error(GroupError::UnknownMemberId));
            }
            let mut ctx = self.ctx();
            let waiter = group.sync(req.clone(), &mut ctx);
            let persisted = rt.persist(target, entry, ctx);
            rt.finish(persisted);
            waiter
        });
        match result {
            Ok(Some(waiter)) => waiter,
            Ok(None) => Waiter::Ready(SyncOutcome::error(GroupError::UnknownMemberId)),
            Err(e) => Waiter::Ready(SyncOutcome::error(e.into())),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, false, |target, entry, _| {
            let mut ctx = self.ctx();
            let result = match entry.group.as_classic_mut() {
                Some(group) => group.heartbeat(member_id, instance_id, generation_id, &mut ctx),
                None => Err(GroupError::InconsistentGroupProtocol),
            };
            let persisted = rt.persist(target, entry, ctx);
            rt.finish(persisted);
            result
        });
        match result {
            Ok(Some(r)) => r,
            Ok(None) => Err(GroupError::UnknownMemberId),
            Err(e) => Err(e.into()),
        }
    }

    /// LeaveGroup; Err is a group-level error.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[LeaveMember],
    ) -> Result<Vec<LeaveResult>, GroupError> {
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, false, |target, entry, _| {
            let mut ctx = self.ctx();
            let result = match entry.group.as_classic_mut() {
                Some(group) => group.leave(members, &mut ctx),
                None => Err(GroupError::InconsistentGroupProtocol),
            };
            let persisted = rt.persist(target, entry, ctx);
            rt.finish(persisted);
            result
        });
        match result {
            Ok(Some(r)) => r,
            // No such group: every member is unknown (Kafka answers per member).
            Ok(None) => Ok(members
                .iter()
                .map(|m| LeaveResult {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error: Some(GroupError::UnknownMemberId),
                })
                .collect()),
            Err(e) => Err(e.into()),
        }
    }

    // ---- Offsets ------------------------------------------------------------------------

    /// OffsetCommit of partitions that exist; answered once the commit is committed. Err is a
    /// group-level error for every partition.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        version: i16,
        author: &CommitAuthor,
        partitions: &[CommitPartition],
    ) -> Waiter<Result<Vec<Option<GroupError>>, GroupError>> {
        // A commit outside group management creates a group that only holds offsets.
        let create = author.generation_id < 0;
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, create, |target, entry, _| {
            let mut ctx = self.ctx();
            let results = match entry.commit_offsets(author, partitions, &mut ctx) {
                Ok(r) => r,
                Err(e) => return Waiter::Ready(Err(e)),
            };
            let persisted = rt.persist(target, entry, ctx);
            rt.reply_when_committed(vec![persisted], Ok(results), |e| Err(e.into()))
        });
        match result {
            Ok(Some(waiter)) => waiter,
            Ok(None) => Waiter::Ready(Err(if version >= 9 {
                GroupError::GroupIdNotFound(group_id.to_string())
            } else {
                // Older clients only know ILLEGAL_GENERATION for this.
                GroupError::IllegalGeneration {
                    got: author.generation_id,
                    current: -1,
                }
            })),
            Err(e) => Waiter::Ready(Err(e.into())),
        }
    }

    /// TxnOffsetCommit: the offsets are written as a transactional batch of the producer and
    /// stay invisible until its transaction's commit marker (dropped by an abort). A group
    /// that does not exist is created to hold them (a producer need not use group management);
    /// a member id or generation, when given, is checked as OffsetCommit checks it.
    pub fn txn_commit_offsets(
        &self,
        group_id: &str,
        producer: (i64, i16),
        author: &CommitAuthor,
        partitions: &[CommitPartition],
    ) -> Waiter<Result<Vec<Option<GroupError>>, GroupError>> {
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, true, |target, entry, _| {
            let mut ctx = self.ctx();
            let results = match entry.txn_commit_offsets(author, partitions, &mut ctx) {
                Ok(r) => r,
                Err(e) => return Waiter::Ready(Err(e)),
            };
            let persisted = rt.persist_transactional(target, entry, ctx, producer);
            rt.reply_when_committed(vec![persisted], Ok(results), |e| Err(e.into()))
        });
        match result {
            Ok(Some(waiter)) => waiter,
            Ok(None) => Waiter::Ready(Err(GroupError::CoordinatorNotAvailable)),
            Err(e) => Waiter::Ready(Err(e.into())),
        }
    }

    /// Writes a transaction marker into `__consumer_offsets-<index>`: the producer's
    /// transactional offsets there become committed (or are dropped); resolves once the
    /// marker is committed.
    pub fn complete_transaction(
        &self,
        index: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        result: TxnResult,
    ) -> Result<crate::coordinator::writer::Committed, CoordinatorError> {
        self.0.runtime.write_marker(
            index,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            result,
        )
    }

    /// The number of partitions of the group log.
    pub fn partition_count(&self) -> i32 {
        self.0.runtime.partition_count()
    }

    /// OffsetFetch of the given partitions (unknown ones answer offset -1, no error).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Vec<(String, Vec<FetchedOffset>)> {
        let fetch = |entry: Option<&GroupEntry>| {
            topics
                .iter()
                .map(|(topic, partitions)| {
                    let offsets = partitions
                        .iter()
                        .map(|&p| {
                            let mut fetched =
                                entry.and_then(|e| e.offsets.offset(topic, p)).map_or_else(
                                    || FetchedOffset::none(p),
                                    |o| FetchedOffset::of(p, o),
                                );
                            fetched.unstable = entry.is_some_and(|e| {
                                e.offsets.has_pending_transactional_offset(topic, p)
                            });
                            fetched
                        })
                        .collect();
                    (topic.clone(), offsets)
                })
                .collect()
        };
        self.0
            .runtime
            .read(group_id, |entry| fetch(Some(entry)))
            .unwrap_or_else(|| fetch(None))
    }

    /// OffsetFetch of every committed offset of the group, by topic then partition.
    pub fn fetch_all_offsets(&self, group_id: &str) -> Vec<(String, Vec<FetchedOffset>)> {
        self.0
            .runtime
            .read(group_id, |entry| {
                let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
                for (topic, partition, o) in entry.offsets.all() {
                    match out.last_mut() {
                        Some((t, list)) if t == topic => list.push(FetchedOffset::of(partition, o)),
                        _ => out.push((topic.to_string(), vec![FetchedOffset::of(partition, o)])),
                    }
                }
                out
            })
            .unwrap_or_default()
    }

    /// OffsetDelete of partitions that exist; answered once committed.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Waiter<Result<Vec<Vec<Option<GroupError>>>, GroupError>> {
        let rt = &self.0.runtime;
        let result = rt.with_entity(group_id, false, |target, entry, _| {
            let mut ctx = self.ctx();
            let results = match entry.delete_offsets(topics, &mut ctx) {
                Ok(r) => r,
                Err(e) => return Waiter::Ready(Err(e)),
            };
            let persisted = rt.persist(target, entry, ctx);
            rt.reply_when_committed(vec![persisted], Ok(results), |e| Err(e.into()))
        });
        match result {
            Ok(Some(waiter)) => waiter,
            Ok(None) => Waiter::Ready(Err(GroupError::GroupIdNotFound(group_id.to_string()))),
            Err(e) => Waiter::Ready(Err(e.into())),
        }
    }

    // ---- Administration -----------------------------------------------------------------

    /// DeleteGroups: each group (duplicates once) deleted if it has no members; answered once
    /// the deletions are committed.
    pub fn delete_groups(&self, group_ids: &[String]) -> Waiter<Vec<(String, Option<GroupError>)>> {
        let rt = &self.0.runtime;
        let mut seen = HashSet::new();
        let mut results = Vec::new();
        let mut appended = Vec::new();
        for id in group_ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            let outcome = rt.with_entity(id, false, |target, entry, _| {
                let mut ctx = self.ctx();
                entry.delete_group(&mut ctx)?;
                match rt.persist(target, entry, ctx) {
                    Persisted::Failed(e) => Err(GroupError::from(e)),
                    Persisted::Nothing => Ok(None),
                    persisted => {
                        rt.remove(target, id, entry);
                        tracing::info!(group = %id, "group deleted");
                        Ok(Some(persisted))
                    }
                }
            });
            let error = match outcome {
                Ok(None) => Some(GroupError::GroupIdNotFound(id.clone())),
                Err(e) => Some(e.into()),
                Ok(Some(Err(e))) => Some(e),
                Ok(Some(Ok(None))) => None,
                Ok(Some(Ok(Some(persisted)))) => {
                    appended.push(persisted);
                    None
                }
            };
            results.push((id.clone(), error));
        }
        let ok = results.clone();
        rt.reply_when_committed(appended, ok, move |e| {
            let e = GroupError::from(e);
            results
                .into_iter()
                .map(|(id, r)| (id, Some(r.unwrap_or_else(|| e.clone()))))
                .collect()
        })
    }

    /// ListGroups with Kafka's filters: states case-insensitively, types by name ("classic");
    /// an empty filter matches everything.
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let states: BTreeSet<String> = states.iter().map(|s| s.trim().to_lowercase()).collect();
        let mut out: Vec<GroupListing> = self
            .0
            .runtime
            .entities()
            .into_iter()
            .filter_map(|e| {
                let e = e.lock();
                let group = &e.group;
                let state = group.state();
                let type_name = group.group_type().name();
                let wanted = state != GroupState::Dead
                    && (states.is_empty() || states.contains(&state.name().to_lowercase()))
                    && (types.is_empty()
                        || types.iter().any(|t| t.eq_ignore_ascii_case(type_name)));
                wanted.then(|| GroupListing {
                    group_id: group.group_id().to_string(),
                    protocol_type: group
                        .as_classic()
                        .and_then(ClassicGroup::protocol_type)
                        .unwrap_or_default()
                        .to_string(),
                    state,
                })
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups of one group; an unknown group is Dead with no members, as in Kafka.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let dead = GroupDescription {
            group_id: group_id.to_string(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
        };
        self.0
            .runtime
            .read(group_id, |entry| {
                let g = entry.group.as_classic()?;
                let stable = g.state() == GroupState::Stable;
                let protocol = g.protocol_name().unwrap_or_default().to_string();
                Some(GroupDescription {
                    group_id: group_id.to_string(),
                    state: g.state(),
                    protocol_type: g.protocol_type().unwrap_or_default().to_string(),
                    protocol_data: if stable {
                        protocol.clone()
                    } else {
                        String::new()
                    },
                    members: g
                        .members()
                        .iter()
                        .map(|m| MemberDescription {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: if stable {
                                m.metadata(&protocol)
                            } else {
                                Bytes::new()
                            },
                            assignment: m.assignment.clone(),
                        })
                        .collect(),
                })
            })
            .flatten()
            .unwrap_or(dead)
    }

    // ---- Background ---------------------------------------------------------------------

    /// Fires the timers due at `now` (session expiry, rebalance and sync timeouts, the
    /// initial delay) and, every `offsets.retention.check.interval.ms`, expires offsets and
    /// deletes empty groups without offsets.
    pub fn tick(&self, now: i64) {
        self.0.runtime.tick(now);
        let last = self.0.last_cleanup.load(Ordering::Relaxed);
        if now - last >= self.config().offsets_retention_check_interval_ms {
            self.0.last_cleanup.store(now, Ordering::Relaxed);
            self.cleanup(now);
        }
    }

    /// Kafka's `cleanupGroupMetadata`: expired offsets get tombstones, and an Empty group left
    /// without offsets is deleted.
    pub fn cleanup(&self, now: i64) {
        let rt = &self.0.runtime;
        let mut removed = 0usize;
        for id in rt.keys() {
            let _ = rt.with_entity(&id, false, |target, entry, _| {
                let mut ctx = Ctx::new(now, self.config());
                let delete = entry.cleanup_expired(&mut ctx);
                let persisted = rt.persist(target, entry, ctx);
                let written = !matches!(persisted, Persisted::Failed(_));
                if delete && written {
                    rt.remove(target, &id, entry);
                    removed += 1;
                }
                rt.finish(persisted);
            });
        }
        if removed > 0 {
            tracing::info!(removed, "expired groups removed");
        }
    }

    /// Commits the group log (the periodic flush: records nobody waits for reach the disk).
    /// Blocking.
    pub fn flush(&self) -> Result<(), CoordinatorError> {
        self.0.runtime.flush()
    }

    /// Answers every parked JoinGroup and SyncGroup with NOT_COORDINATOR (shutdown), so no
    /// connection waits on a rebalance that will not finish.
    pub fn unload(&self) {
        self.0.runtime.unload();
    }

    /// Whether a partition of the group log rolled a segment since its last snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.0.runtime.snapshot_due()
    }

    /// Snapshots the partitions that rolled a segment since their last snapshot. Blocking.
    pub fn write_due_snapshots(&self) -> Result<(), CoordinatorError> {
        self.0.runtime.write_due_snapshots()
    }

    /// Snapshots every partition and deletes the segments older snapshots cover. Blocking.
    pub fn write_snapshot(&self) -> Result<(), CoordinatorError> {
        self.0.runtime.write_snapshots()
    }

    /// Snapshots (so the next start replays nothing), then flushes and closes the group log.
    /// Blocking.
    pub fn close(&self) -> Result<(), CoordinatorError> {
        self.0.runtime.close()
    }

    /// Every group's id and state (for tests and diagnostics).
    pub fn states(&self) -> BTreeMap<String, GroupState> {
        self.0
            .runtime
            .entities()
            .into_iter()
            .map(|e| {
                let e = e.lock();
                (e.id().to_string(), e.group.state())
            })
            .collect()
    }
}

/// The record Kafka writes when a JoinGroup creates a group (no members, generation 0).
fn empty_group_record(group: &ClassicGroup) -> GroupRecord {
    GroupRecord::Group {
        group: group.id().to_string(),
        value: Some(GroupValue {
            protocol_type: group.protocol_type().unwrap_or_default().to_string(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: Vec::new(),
        }),
    }
}
