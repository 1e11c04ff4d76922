//! The group coordinator: every group behind its own lock, the group log, and the tasks that
//! answer requests once their records are durable.
//!
//! Groups live in a `DashMap<String, Arc<Mutex<Group>>>`. An operation clones the group's
//! `Arc` out of the map, locks that one group, runs the state machine, appends the records it
//! produced (page-cache write, under the group lock so the log order of a group's records is
//! the order of its operations) and unlocks. Waiting never happens under a lock: a parked
//! JoinGroup or SyncGroup holds a oneshot receiver, and whatever must wait for an fsync runs
//! in a spawned task that re-locks the group afterwards (spawned, so the work happens even if
//! the requesting connection goes away). Lock order: a group lock, then the log's own locks;
//! never two group locks at once; the map's shard locks are never held while taking a group
//! lock.
//!
//! A deleted group is marked Dead under its lock and removed from the map before the lock is
//! released, so an operation that raced for the old `Arc` sees Dead and looks the id up again.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::classic::{
    AfterPersist, Ctx, Group, JoinOutcome, JoinRequest, LeaveMember, LeaveResult, SyncOutcome,
    SyncRequest, Waiter,
};
use super::offsets::{CommitAuthor, CommitPartition, CommittedOffset};
use super::records::{GroupRecord, GroupValue};
use super::store::{GroupStore, StoreError};
use super::{GroupConfig, GroupError, GroupState};

/// The source of "now" for timers and timestamps (a fake one in tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Attempts at finding a live group when the one found was just deleted.
const DEAD_GROUP_RETRIES: usize = 3;

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
}

impl FetchedOffset {
    /// No committed offset for `partition`.
    pub fn none(partition: i32) -> FetchedOffset {
        FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
        }
    }

    fn of(partition: i32, o: &CommittedOffset) -> FetchedOffset {
        FetchedOffset {
            partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
        }
    }
}

/// What appending an operation's records did.
enum Persisted {
    /// There was nothing to append.
    Nothing,
    /// Appended below `end`; `after` waits for durability.
    Appended { end: i64, after: Vec<AfterPersist> },
    /// The append failed; waiters were told.
    Failed(GroupError),
}

struct Inner {
    config: GroupConfig,
    groups: DashMap<String, Arc<Mutex<Group>>>,
    store: GroupStore,
    clock: Clock,
    last_cleanup: AtomicI64,
    /// One snapshot at a time (the periodic one and the one at shutdown may meet).
    snapshot_lock: Mutex<()>,
}

/// The group coordinator; a cheap handle (clones share the state).
#[derive(Clone)]
pub struct GroupCoordinator(Arc<Inner>);

impl GroupCoordinator {
    /// Opens the group log under `data_dir` and rebuilds every group from it.
    pub fn open(
        data_dir: &Path,
        config: GroupConfig,
        clock: Clock,
    ) -> Result<GroupCoordinator, StoreError> {
        let now = clock();
        let (store, loaded) = GroupStore::open(data_dir, config.segment_bytes, now)?;
        let groups = DashMap::new();
        for (id, state) in loaded {
            let mut group = match &state.metadata {
                Some(value) => Group::from_record(&id, value, now),
                None => Group::new(&id, now),
            };
            for ((topic, partition), offset) in state.offsets {
                group.replay_offset(&topic, partition, Some(offset));
            }
            if group.members().len() > config.max_size {
                // Kafka rebalances a loaded group that is over a lowered group.max.size, so
                // the members get a chance to commit and the extra ones are refused.
                let mut ctx = Ctx::new(now, &config);
                group.force_rebalance(&mut ctx);
            }
            groups.insert(id, Arc::new(Mutex::new(group)));
        }
        Ok(GroupCoordinator(Arc::new(Inner {
            config,
            groups,
            store,
            clock,
            last_cleanup: AtomicI64::new(now),
            snapshot_lock: Mutex::new(()),
        })))
    }

    /// The coordinator settings.
    pub fn config(&self) -> &GroupConfig {
        &self.0.config
    }

    /// Now, by the coordinator's clock.
    pub fn now(&self) -> i64 {
        (self.0.clock)()
    }

    fn get(&self, group_id: &str) -> Option<Arc<Mutex<Group>>> {
        self.0.groups.get(group_id).map(|g| g.value().clone())
    }

    fn get_or_create(&self, group_id: &str) -> (Arc<Mutex<Group>>, bool) {
        match self.0.groups.entry(group_id.to_string()) {
            dashmap::Entry::Occupied(e) => (e.get().clone(), false),
            dashmap::Entry::Vacant(e) => {
                let group = Arc::new(Mutex::new(Group::new(group_id, self.now())));
                e.insert(group.clone());
                (group, true)
            }
        }
    }

    /// Runs `f` on the live group `group_id` (created if `create`), retrying when the group
    /// found was deleted meanwhile; None when there is no such group.
    fn with_group<R>(
        &self,
        group_id: &str,
        create: bool,
        mut f: impl FnMut(&Arc<Mutex<Group>>, &mut Group, bool) -> R,
    ) -> Option<R> {
        for _ in 0..DEAD_GROUP_RETRIES {
            let (arc, created) = if create {
                self.get_or_create(group_id)
            } else {
                (self.get(group_id)?, false)
            };
            let mut group = arc.lock();
            if group.state() == GroupState::Dead {
                continue;
            }
            return Some(f(&arc, &mut group, created));
        }
        None
    }

    /// Appends `ctx`'s records under the group lock; on failure the follow-ups run at once
    /// with the error.
    fn persist(&self, group: &mut Group, ctx: Ctx) -> Persisted {
        let Ctx {
            now,
            records,
            after_persist,
            ..
        } = ctx;
        if records.is_empty() {
            return Persisted::Nothing;
        }
        match self.0.store.append(&records, now) {
            Ok((base, end)) => {
                group.records_appended(&records, base);
                Persisted::Appended {
                    end,
                    after: after_persist,
                }
            }
            Err(e) => {
                tracing::error!(group = %group.id(), error = %e, "appending to the group log failed");
                let error = GroupError::Storage(e.to_string());
                let mut retry = Ctx::new(now, &self.0.config);
                group.after_persist(after_persist, Err(error.clone()), &mut retry);
                // The follow-ups of a failure write nothing that must be durable; whatever
                // they produced (an Empty group's record) goes in if the log takes it.
                if !retry.records.is_empty() {
                    if let Ok((base, _)) = self.0.store.append(&retry.records, now) {
                        group.records_appended(&retry.records, base);
                    }
                }
                Persisted::Failed(error)
            }
        }
    }

    /// After `end` is durable: makes commits visible and runs the follow-ups; the receiver
    /// says whether the records made it.
    fn spawn_durable(
        &self,
        group: Arc<Mutex<Group>>,
        end: i64,
        after: Vec<AfterPersist>,
    ) -> oneshot::Receiver<Result<(), GroupError>> {
        let (tx, rx) = oneshot::channel();
        let this = self.clone();
        tokio::spawn(async move {
            let syncer = this.clone();
            let synced = tokio::task::spawn_blocking(move || syncer.0.store.sync(end))
                .await
                .map_err(|e| GroupError::Storage(format!("fsync task failed: {e}")))
                .and_then(|r| r.map_err(|e| GroupError::Storage(e.to_string())));
            if let Err(e) = &synced {
                tracing::error!(error = %e, "fsync of the group log failed");
            }
            {
                let mut g = group.lock();
                if synced.is_ok() {
                    g.apply_durable_commits(end);
                }
                let mut ctx = Ctx::new(this.now(), &this.0.config);
                g.after_persist(after, synced.clone(), &mut ctx);
                // Follow-ups only produce records nobody waits for (an Empty group's record).
                this.persist(&mut g, ctx);
            }
            let _ = tx.send(synced);
        });
        rx
    }

    /// Spawns the durability follow-ups of an operation nobody else waits on.
    fn finish(&self, group: Arc<Mutex<Group>>, persisted: Persisted) {
        if let Persisted::Appended { end, after } = persisted {
            if !after.is_empty() {
                drop(self.spawn_durable(group, end, after));
            }
        }
    }

    /// Answers with `ok` once the operation's records are durable (or with the storage error).
    fn reply_when_durable<T: Send + 'static>(
        &self,
        group: Arc<Mutex<Group>>,
        persisted: Persisted,
        ok: T,
        failed: impl FnOnce(GroupError) -> T + Send + 'static,
    ) -> Waiter<T> {
        match persisted {
            Persisted::Nothing => Waiter::Ready(ok),
            Persisted::Failed(e) => Waiter::Ready(failed(e)),
            Persisted::Appended { end, after } => {
                let durable = self.spawn_durable(group, end, after);
                let (tx, rx) = oneshot::channel();
                tokio::spawn(async move {
                    let answer = match durable.await {
                        Ok(Ok(())) => ok,
                        Ok(Err(e)) => failed(e),
                        Err(_) => failed(GroupError::NotCoordinator),
                    };
                    let _ = tx.send(answer);
                });
                Waiter::Wait(rx)
            }
        }
    }

    // ---- Membership ---------------------------------------------------------------------

    /// JoinGroup; group id and session timeout are already validated by the handler.
    pub fn join(&self, group_id: &str, req: JoinRequest) -> Waiter<JoinOutcome> {
        let member_id = req.member_id.clone();
        let known_member = !member_id.is_empty();
        let result = self.with_group(group_id, !known_member, |arc, group, created| {
            let mut ctx = Ctx::new(self.now(), &self.0.config);
            let waiter = group.join(req.clone(), &mut ctx);
            if created && ctx.records.is_empty() {
                // Kafka records a group the moment it exists, even if the join failed.
                ctx.records.push(empty_group_record(group));
            }
            let persisted = self.persist(group, ctx);
            self.finish(arc.clone(), persisted);
            waiter
        });
        // A known member id for a group that does not exist.
        result.unwrap_or_else(|| {
            Waiter::Ready(JoinOutcome::error(GroupError::UnknownMemberId, member_id))
        })
    }

    /// SyncGroup.
    pub fn sync(&self, group_id: &str, req: SyncRequest) -> Waiter<SyncOutcome> {
        let result = self.with_group(group_id, false, |arc, group, _| {
            if group.state() == GroupState::Empty {
                return Waiter::Ready(SyncOutcome::error(GroupError::UnknownMemberId));
            }
            let mut ctx = Ctx::new(self.now(), &self.0.config);
            let waiter = group.sync(req.clone(), &mut ctx);
            let persisted = self.persist(group, ctx);
            self.finish(arc.clone(), persisted);
            waiter
        });
        result.unwrap_or_else(|| Waiter::Ready(SyncOutcome::error(GroupError::UnknownMemberId)))
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        self.with_group(group_id, false, |arc, group, _| {
            let mut ctx = Ctx::new(self.now(), &self.0.config);
            let result = group.heartbeat(member_id, instance_id, generation_id, &mut ctx);
            let persisted = self.persist(group, ctx);
            self.finish(arc.clone(), persisted);
            result
        })
        .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    /// LeaveGroup; Err is a group-level error.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[LeaveMember],
    ) -> Result<Vec<LeaveResult>, GroupError> {
        self.with_group(group_id, false, |arc, group, _| {
            let mut ctx = Ctx::new(self.now(), &self.0.config);
            let result = group.leave(members, &mut ctx);
            let persisted = self.persist(group, ctx);
            self.finish(arc.clone(), persisted);
            result
        })
        .unwrap_or_else(|| {
            // No such group: every member is unknown (Kafka answers per member).
            Ok(members
                .iter()
                .map(|m| LeaveResult {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error: Some(GroupError::UnknownMemberId),
                })
                .collect())
        })
    }

    // ---- Offsets ------------------------------------------------------------------------

    /// OffsetCommit of partitions that exist; answered once the commit is durable. Err is a
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
        let result = self.with_group(group_id, create, |arc, group, _| {
            let mut ctx = Ctx::new(self.now(), &self.0.config);
            let results = match group.commit_offsets(author, partitions, &mut ctx) {
                Ok(r) => r,
                Err(e) => return Waiter::Ready(Err(e)),
            };
            let persisted = self.persist(group, ctx);
            self.reply_when_durable(arc.clone(), persisted, Ok(results), Err)
        });
        result.unwrap_or_else(|| {
            Waiter::Ready(Err(if version >= 9 {
                GroupError::GroupIdNotFound(group_id.to_string())
            } else {
                // Older clients only know ILLEGAL_GENERATION for this.
                GroupError::IllegalGeneration {
                    got: author.generation_id,
                    current: -1,
                }
            }))
        })
    }

    /// OffsetFetch of the given partitions (unknown ones answer offset -1, no error).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Vec<(String, Vec<FetchedOffset>)> {
        let group = self.get(group_id);
        let guard = group.as_ref().map(|g| g.lock());
        let live = guard.as_ref().filter(|g| g.state() != GroupState::Dead);
        topics
            .iter()
            .map(|(topic, partitions)| {
                let offsets = partitions
                    .iter()
                    .map(|&p| {
                        live.and_then(|g| g.offset(topic, p))
                            .map_or_else(|| FetchedOffset::none(p), |o| FetchedOffset::of(p, o))
                    })
                    .collect();
                (topic.clone(), offsets)
            })
            .collect()
    }

    /// OffsetFetch of every committed offset of the group, by topic then partition.
    pub fn fetch_all_offsets(&self, group_id: &str) -> Vec<(String, Vec<FetchedOffset>)> {
        let Some(group) = self.get(group_id) else {
            return Vec::new();
        };
        let g = group.lock();
        if g.state() == GroupState::Dead {
            return Vec::new();
        }
        let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
        for (topic, partition, o) in g.all_offsets() {
            match out.last_mut() {
                Some((t, list)) if t == topic => list.push(FetchedOffset::of(partition, o)),
                _ => out.push((topic.to_string(), vec![FetchedOffset::of(partition, o)])),
            }
        }
        out
    }

    /// OffsetDelete of partitions that exist; answered once durable.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Waiter<Result<Vec<Vec<Option<GroupError>>>, GroupError>> {
        let result = self.with_group(group_id, false, |arc, group, _| {
            let mut ctx = Ctx::new(self.now(), &self.0.config);
            let results = match group.delete_offsets(topics, &mut ctx) {
                Ok(r) => r,
                Err(e) => return Waiter::Ready(Err(e)),
            };
            let persisted = self.persist(group, ctx);
            self.reply_when_durable(arc.clone(), persisted, Ok(results), Err)
        });
        result.unwrap_or_else(|| {
            Waiter::Ready(Err(GroupError::GroupIdNotFound(group_id.to_string())))
        })
    }

    // ---- Administration -----------------------------------------------------------------

    /// DeleteGroups: each group (duplicates once) deleted if it has no members; answered once
    /// the deletions are durable.
    pub fn delete_groups(&self, group_ids: &[String]) -> Waiter<Vec<(String, Option<GroupError>)>> {
        let mut seen = HashSet::new();
        let mut results = Vec::new();
        let mut last_end = None;
        let mut last_group = None;
        for id in group_ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            let outcome = self.with_group(id, false, |arc, group, _| {
                let mut ctx = Ctx::new(self.now(), &self.0.config);
                group.delete_group(&mut ctx)?;
                match self.persist(group, ctx) {
                    Persisted::Failed(e) => Err(e),
                    Persisted::Nothing => Ok(None),
                    Persisted::Appended { end, .. } => {
                        self.remove_dead(id, arc, group);
                        Ok(Some((end, arc.clone())))
                    }
                }
            });
            let error = match outcome {
                None => Some(GroupError::GroupIdNotFound(id.clone())),
                Some(Err(e)) => Some(e),
                Some(Ok(appended)) => {
                    if let Some((end, arc)) = appended {
                        last_end = Some(end);
                        last_group = Some(arc);
                    }
                    None
                }
            };
            results.push((id.clone(), error));
        }
        match (last_end, last_group) {
            (Some(end), Some(group)) => {
                // One fsync covers every deletion: the last one's end is past all of them.
                let ok = results.clone();
                self.reply_when_durable(
                    group,
                    Persisted::Appended {
                        end,
                        after: Vec::new(),
                    },
                    ok,
                    move |e| {
                        results
                            .into_iter()
                            .map(|(id, r)| (id, Some(r.unwrap_or_else(|| e.clone()))))
                            .collect()
                    },
                )
            }
            _ => Waiter::Ready(results),
        }
    }

    fn remove_dead(&self, group_id: &str, arc: &Arc<Mutex<Group>>, group: &mut Group) {
        group.mark_dead(self.now());
        self.0
            .groups
            .remove_if(group_id, |_, v| Arc::ptr_eq(v, arc));
        tracing::info!(group = group_id, "group deleted");
    }

    /// ListGroups with Kafka's filters: states case-insensitively, types by name ("classic");
    /// an empty filter matches everything.
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let states: BTreeSet<String> = states.iter().map(|s| s.trim().to_lowercase()).collect();
        let classic = types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("classic"));
        if !classic {
            return Vec::new();
        }
        let mut out: Vec<GroupListing> = self
            .groups()
            .into_iter()
            .filter_map(|g| {
                let g = g.lock();
                let state = g.state();
                (state != GroupState::Dead
                    && (states.is_empty() || states.contains(&state.name().to_lowercase())))
                .then(|| GroupListing {
                    group_id: g.id().to_string(),
                    protocol_type: g.protocol_type().unwrap_or_default().to_string(),
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
        let Some(group) = self.get(group_id) else {
            return dead;
        };
        let g = group.lock();
        if g.state() == GroupState::Dead {
            return dead;
        }
        let stable = g.state() == GroupState::Stable;
        let protocol = g.protocol_name().unwrap_or_default().to_string();
        GroupDescription {
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
        }
    }

    fn groups(&self) -> Vec<Arc<Mutex<Group>>> {
        self.0.groups.iter().map(|e| e.value().clone()).collect()
    }

    // ---- Background ---------------------------------------------------------------------

    /// Fires the timers due at `now` (session expiry, rebalance and sync timeouts, the
    /// initial delay) and, every `offsets.retention.check.interval.ms`, expires offsets and
    /// deletes empty groups without offsets.
    pub fn tick(&self, now: i64) {
        for arc in self.groups() {
            let mut g = arc.lock();
            if g.state() == GroupState::Dead || g.next_deadline().is_none_or(|d| d > now) {
                continue;
            }
            let mut ctx = Ctx::new(now, &self.0.config);
            g.tick(&mut ctx);
            let persisted = self.persist(&mut g, ctx);
            drop(g);
            self.finish(arc, persisted);
        }
        let last = self.0.last_cleanup.load(Ordering::Relaxed);
        if now - last >= self.0.config.offsets_retention_check_interval_ms {
            self.0.last_cleanup.store(now, Ordering::Relaxed);
            self.cleanup(now);
        }
    }

    /// Kafka's `cleanupGroupMetadata`: expired offsets get tombstones, and an Empty group left
    /// without offsets is deleted.
    pub fn cleanup(&self, now: i64) {
        let ids: Vec<String> = self.0.groups.iter().map(|e| e.key().clone()).collect();
        let mut removed = 0usize;
        for id in ids {
            self.with_group(&id, false, |arc, group, _| {
                let mut ctx = Ctx::new(now, &self.0.config);
                let delete = group.cleanup_expired(&mut ctx);
                let appended = matches!(
                    self.persist(group, ctx),
                    Persisted::Appended { .. } | Persisted::Nothing
                );
                if delete && appended {
                    self.remove_dead(&id, arc, group);
                    removed += 1;
                }
            });
        }
        if removed > 0 {
            tracing::info!(removed, "expired groups removed");
        }
    }

    /// Fsyncs the group log (the periodic flush: records nobody waits for reach the disk).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.0.store.flush()
    }

    /// Answers every parked JoinGroup and SyncGroup with NOT_COORDINATOR (shutdown), so no
    /// connection waits on a rebalance that will not finish.
    pub fn unload(&self) {
        for arc in self.groups() {
            arc.lock().unload();
        }
    }

    /// Whether the group log rolled a segment since the last snapshot (clears the flag).
    pub fn snapshot_due(&self) -> bool {
        self.0.store.take_snapshot_due()
    }

    /// Snapshots every group into the group log directory and deletes the segments older
    /// snapshots cover (blocking file I/O: call it off the async workers). Each group is locked
    /// in turn, never two at once; see `store` for why a snapshot taken while operations go on
    /// is still exact.
    pub fn write_snapshot(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.0.snapshot_lock.lock();
        let offset = self.0.store.log_end_offset();
        let groups: Vec<_> = self
            .groups()
            .into_iter()
            .filter_map(|g| {
                let g = g.lock();
                (g.state() != GroupState::Dead)
                    .then(|| g.snapshot())
                    .flatten()
            })
            .collect();
        // Whatever the snapshot holds must be in the durable log, or a crash could leave a
        // snapshot claiming records the log lost.
        self.0.store.flush()?;
        self.0.store.write_snapshot(offset, groups)
    }

    /// Snapshots (so the next start replays nothing), then flushes and closes the group log.
    pub fn close(&self) -> Result<(), StoreError> {
        if let Err(e) = self.write_snapshot() {
            tracing::warn!(error = %e, "group snapshot at shutdown failed; the next start replays the log");
        }
        self.0.store.close()
    }

    /// Every group's id and state (for tests and diagnostics).
    pub fn states(&self) -> BTreeMap<String, GroupState> {
        self.groups()
            .into_iter()
            .map(|g| {
                let g = g.lock();
                (g.id().to_string(), g.state())
            })
            .collect()
    }
}

/// The record Kafka writes when a JoinGroup creates a group (no members, generation 0).
fn empty_group_record(group: &Group) -> GroupRecord {
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
