//! The runtime that hosts a coordinator's shards: one per partition of its log, opened at
//! start when its directory exists and otherwise on its first write (creating it costs no
//! fsync on the caller: its first commit makes it durable).
//!
//! See the module above for the write -> commit -> follow-up cycle, replay and snapshots. All
//! blocking work (commits, snapshots, flushes, closes) runs in the broker's tracked tasks or in
//! callers that are off the async workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::records::{decode_batches, encode_batch, Decoded};
use super::snapshot::{self, SnapshotRecord};
use super::writer::{Committed, LocalWriter, PartitionWriter};
use super::{
    partition_for, CoordinatorError, CoordinatorRecord, Ctx, Entity, EntityCtx, Shard, TxnResult,
    Waiter,
};
use crate::log::BatchHeader;
use crate::partition::{Partition, PartitionContext};
use crate::tasks::Tasks;
use crate::topics::TopicConfig;

/// Attempts at finding a live entity when the one found was just removed.
const REMOVED_RETRIES: usize = 3;
/// Bytes read per step of a replay.
const REPLAY_CHUNK: usize = 1 << 20;

/// One partition of the log and the shard it holds.
pub struct Hosted<S: Shard> {
    index: i32,
    shard: S,
    writer: Arc<dyn PartitionWriter>,
    /// A segment rolled since the last snapshot.
    snapshot_due: AtomicBool,
    /// One snapshot at a time (the periodic one and the one at shutdown may meet).
    snapshot_lock: Mutex<()>,
}

impl<S: Shard> Hosted<S> {
    /// The partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The shard.
    pub fn shard(&self) -> &S {
        &self.shard
    }

    /// The partition's writer.
    pub fn writer(&self) -> &dyn PartitionWriter {
        &*self.writer
    }
}

/// An entity and the partition that holds it: what a write needs to append and complete.
pub struct Target<S: Shard> {
    hosted: Arc<Hosted<S>>,
    entity: Arc<Mutex<S::Entity>>,
}

impl<S: Shard> Clone for Target<S> {
    fn clone(&self) -> Target<S> {
        Target {
            hosted: self.hosted.clone(),
            entity: self.entity.clone(),
        }
    }
}

/// What appending an operation's records did.
pub enum Persisted<S: Shard> {
    /// There was nothing to append.
    Nothing,
    /// Appended below `end`; `follow_ups` wait for the commit.
    Appended {
        /// Where.
        target: Target<S>,
        /// The offset after the records.
        end: i64,
        /// What to do once they are committed.
        follow_ups: Vec<<S::Entity as Entity>::FollowUp>,
    },
    /// The append failed; the follow-ups were told.
    Failed(CoordinatorError),
}

struct Inner<S: Shard> {
    topic: String,
    data_dir: PathBuf,
    config: Arc<<S::Entity as Entity>::Config>,
    topic_config: Arc<TopicConfig>,
    partition_ctx: PartitionContext,
    tasks: Tasks,
    partitions: Vec<OnceLock<Arc<Hosted<S>>>>,
    /// Serializes the opening of partitions.
    opening: Mutex<()>,
}

/// The coordinator runtime for shard type `S`; a cheap handle (clones share the state).
pub struct Runtime<S: Shard>(Arc<Inner<S>>);

impl<S: Shard> Clone for Runtime<S> {
    fn clone(&self) -> Runtime<S> {
        Runtime(self.0.clone())
    }
}

/// How a runtime's log is laid out and what it runs with.
pub struct RuntimeConfig<C> {
    /// The log's topic name: partitions are `<data_dir>/<topic>-<n>`.
    pub topic: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The number of partitions (fixed when the log was first created).
    pub partitions: i32,
    /// The coordinator's settings.
    pub config: Arc<C>,
    /// The log's settings (segment size).
    pub topic_config: Arc<TopicConfig>,
    /// Clock, background executor and producer expiry for the partitions.
    pub partition_ctx: PartitionContext,
    /// Where commit waits and follow-ups run, tracked.
    pub tasks: Tasks,
}

impl<S: Shard> Runtime<S> {
    /// Opens (loading: snapshot, then replay) every partition whose directory exists. Blocking.
    pub fn open(
        config: RuntimeConfig<<S::Entity as Entity>::Config>,
    ) -> Result<Runtime<S>, CoordinatorError> {
        let runtime = Runtime(Arc::new(Inner {
            partitions: (0..config.partitions.max(1))
                .map(|_| OnceLock::new())
                .collect(),
            topic: config.topic,
            data_dir: config.data_dir,
            config: config.config,
            topic_config: config.topic_config,
            partition_ctx: config.partition_ctx,
            tasks: config.tasks,
            opening: Mutex::new(()),
        }));
        for index in 0..runtime.partition_count() {
            if runtime.partition_dir(index).exists() {
                runtime.hosted(index)?;
            }
        }
        Ok(runtime)
    }

    /// The number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.0.partitions.len() as i32
    }

    /// The partition holding `key` (Kafka's hash).
    pub fn partition_for(&self, key: &str) -> i32 {
        partition_for(key, self.partition_count())
    }

    /// The directory of partition `index`.
    pub fn partition_dir(&self, index: i32) -> PathBuf {
        partition_dir(&self.0.data_dir, &self.0.topic, index)
    }

    /// The coordinator's settings.
    pub fn config(&self) -> &<S::Entity as Entity>::Config {
        &self.0.config
    }

    /// Now, by the broker's clock.
    pub fn now(&self) -> i64 {
        self.0.partition_ctx.clock.now_ms()
    }

    /// Partition `index`, opened (and loaded) if it was not yet.
    pub fn hosted(&self, index: i32) -> Result<Arc<Hosted<S>>, CoordinatorError> {
        let slot = self
            .0
            .partitions
            .get(index as usize)
            .ok_or_else(|| CoordinatorError::Storage(format!("no partition {index}")))?;
        if let Some(hosted) = slot.get() {
            return Ok(hosted.clone());
        }
        let _opening = self.0.opening.lock();
        if let Some(hosted) = slot.get() {
            return Ok(hosted.clone());
        }
        let hosted = self.load(index)?;
        let _ = slot.set(hosted.clone());
        Ok(hosted)
    }

    /// The log size of every partition opened so far (the others have no directory yet), by
    /// index: what DescribeLogDirs lists for the log.
    pub fn partition_sizes(&self) -> Vec<(i32, u64)> {
        self.open_partitions()
            .iter()
            .map(|h| (h.index, h.writer.size_bytes()))
            .collect()
    }

    /// Every partition opened so far.
    pub fn open_partitions(&self) -> Vec<Arc<Hosted<S>>> {
        self.0
            .partitions
            .iter()
            .filter_map(|s| s.get().cloned())
            .collect()
    }

    fn load(&self, index: i32) -> Result<Arc<Hosted<S>>, CoordinatorError> {
        let dir = self.partition_dir(index);
        let partition = Partition::open(
            &dir,
            &self.0.topic,
            index,
            self.0.topic_config.clone(),
            &self.0.partition_ctx,
        )
        .map_err(|e| CoordinatorError::Storage(e.to_string()))?;
        let hosted = Arc::new(Hosted {
            index,
            shard: S::new(index, self.0.config.clone()),
            writer: Arc::new(LocalWriter::new(Arc::new(partition))),
            snapshot_due: AtomicBool::new(false),
            snapshot_lock: Mutex::new(()),
        });
        let now = self.now();
        let (from, snapshot_records) = self.load_snapshot(&hosted)?;
        for r in snapshot_records {
            hosted
                .shard
                .replay(r.offset, r.producer_id, r.producer_epoch, r.record, now);
        }
        let replayed = self.replay_log(&hosted, from)?;
        for entity in hosted.shard.entities().all() {
            self.run_locked(&hosted, &entity, now, |e, ctx| e.loaded(ctx));
        }
        hosted.shard.entities().retain_loaded();
        tracing::info!(
            topic = %self.0.topic,
            partition = index,
            entities = hosted.shard.entities().len(),
            from,
            records = replayed,
            "coordinator partition loaded"
        );
        Ok(hosted)
    }

    /// The newest readable snapshot inside the log, and where the replay continues; snapshots
    /// past the log end (the log lost its tail in a crash) are deleted.
    #[allow(clippy::type_complexity)]
    fn load_snapshot(
        &self,
        hosted: &Hosted<S>,
    ) -> Result<(i64, Vec<SnapshotRecord<<S::Entity as Entity>::Record>>), CoordinatorError> {
        let writer = &hosted.writer;
        let (start, end) = (writer.log_start_offset(), writer.log_end_offset());
        let dir = &writer.dir();
        let io = |e: std::io::Error| CoordinatorError::Storage(e.to_string());
        for offset in snapshot::list(dir).map_err(io)?.into_iter().rev() {
            if offset > end {
                tracing::warn!(dir = %dir.display(), offset, log_end = end, "coordinator snapshot past the log end; deleting it");
                snapshot::remove(dir, offset).map_err(io)?;
                continue;
            }
            if offset < start {
                continue;
            }
            match snapshot::read(dir, offset) {
                Ok(records) => return Ok((offset, records)),
                Err(reason) => {
                    tracing::warn!(dir = %dir.display(), offset, reason, "unreadable coordinator snapshot; trying an older one")
                }
            }
        }
        if start > 0 {
            // Segments are only deleted below a snapshot that is kept, so this means the
            // snapshots were removed by hand: what the deleted segments held is gone.
            tracing::error!(dir = %dir.display(), log_start = start, "no usable coordinator snapshot for a log that does not start at 0; state before it is lost");
        }
        Ok((start, Vec::new()))
    }

    /// Replays every record and marker from `from` to the log end; returns how many records.
    fn replay_log(&self, hosted: &Hosted<S>, from: i64) -> Result<usize, CoordinatorError> {
        let writer = &hosted.writer;
        let end = writer.log_end_offset();
        let now = self.now();
        let mut offset = from;
        let mut count = 0usize;
        while offset < end {
            let bytes = writer.read(offset, REPLAY_CHUNK)?;
            if bytes.is_empty() {
                break;
            }
            let mut next = offset;
            let mut pos = 0;
            while pos < bytes.len() {
                let header = BatchHeader::parse(&bytes[pos..])
                    .map_err(|e| CoordinatorError::Storage(e.to_string()))?;
                pos += header.total_size();
                next = next.max(header.last_offset() + 1);
            }
            let decoded = decode_batches::<<S::Entity as Entity>::Record>(bytes, offset)
                .map_err(|e| CoordinatorError::Storage(e.to_string()))?;
            for batch in decoded {
                match batch {
                    Decoded::Records {
                        producer_id,
                        producer_epoch,
                        records,
                    } => {
                        for (record_offset, record) in records {
                            count += 1;
                            hosted.shard.replay(
                                record_offset,
                                producer_id,
                                producer_epoch,
                                record,
                                now,
                            );
                        }
                    }
                    Decoded::Marker {
                        producer_id,
                        producer_epoch,
                        result,
                    } => hosted
                        .shard
                        .replay_end_txn_marker(producer_id, producer_epoch, result),
                }
            }
            offset = next;
        }
        Ok(count)
    }

    /// Runs `f` on the live entity of `key` under its lock (created, with its partition, when
    /// `create`), retrying when the entity found was removed meanwhile. `Ok(None)` when there is
    /// no such entity; `Err` when its partition cannot be opened.
    pub fn with_entity<R>(
        &self,
        key: &str,
        create: bool,
        mut f: impl FnMut(&Target<S>, &mut S::Entity, bool) -> R,
    ) -> Result<Option<R>, CoordinatorError> {
        let index = self.partition_for(key);
        let hosted = if create {
            self.hosted(index)?
        } else {
            match self.0.partitions.get(index as usize).and_then(|s| s.get()) {
                Some(h) => h.clone(),
                None => return Ok(None),
            }
        };
        for _ in 0..REMOVED_RETRIES {
            let (entity, created) = if create {
                hosted.shard.entities().get_or_create(key, self.now())
            } else {
                match hosted.shard.entities().get(key) {
                    Some(e) => (e, false),
                    None => return Ok(None),
                }
            };
            let target = Target {
                hosted: hosted.clone(),
                entity: entity.clone(),
            };
            let mut guard = entity.lock();
            if guard.is_removed() {
                continue;
            }
            // A timer that is due fires before the operation, so an operation never sees state
            // a timer should already have changed (the periodic tick may be up to its period
            // late): a session that expired is expired for the request that follows.
            let now = self.now();
            if guard.next_deadline().is_some_and(|d| d <= now) {
                let mut ctx = Ctx::new(now, &*self.0.config);
                guard.tick(&mut ctx);
                let persisted = self.persist(&target, &mut guard, ctx);
                self.finish(persisted);
                if guard.is_removed() {
                    continue;
                }
            }
            return Ok(Some(f(&target, &mut guard, created)));
        }
        Ok(None)
    }

    /// Reads the live entity of `key` under its lock (no partition is opened for a read).
    pub fn read<R>(&self, key: &str, f: impl FnOnce(&S::Entity) -> R) -> Option<R> {
        let index = self.partition_for(key);
        let hosted = self.0.partitions.get(index as usize)?.get()?;
        let entity = hosted.shard.entities().get(key)?;
        let guard = entity.lock();
        (!guard.is_removed()).then(|| f(&guard))
    }

    /// Every entity of every open partition (each still to be locked).
    pub fn entities(&self) -> Vec<Arc<Mutex<S::Entity>>> {
        self.open_partitions()
            .iter()
            .flat_map(|h| h.shard.entities().all())
            .collect()
    }

    /// Every key of every open partition.
    pub fn keys(&self) -> Vec<String> {
        self.open_partitions()
            .iter()
            .flat_map(|h| h.shard.entities().keys())
            .collect()
    }

    /// Appends `ctx`'s records as one batch under the entity's lock; on failure the follow-ups
    /// run at once with the error.
    pub fn persist(
        &self,
        target: &Target<S>,
        entity: &mut S::Entity,
        ctx: EntityCtx<'_, S::Entity>,
    ) -> Persisted<S> {
        self.persist_as(target, entity, ctx, None)
    }

    /// Appends `ctx`'s records as one transactional batch of `producer` (id, epoch), Kafka's
    /// TxnOffsetCommit write: they stay pending in the entity until the producer's marker.
    pub fn persist_transactional(
        &self,
        target: &Target<S>,
        entity: &mut S::Entity,
        ctx: EntityCtx<'_, S::Entity>,
        producer: (i64, i16),
    ) -> Persisted<S> {
        self.persist_as(target, entity, ctx, Some(producer))
    }

    fn persist_as(
        &self,
        target: &Target<S>,
        entity: &mut S::Entity,
        ctx: EntityCtx<'_, S::Entity>,
        producer: Option<(i64, i16)>,
    ) -> Persisted<S> {
        let Ctx {
            now,
            records,
            follow_ups,
            ..
        } = ctx;
        if records.is_empty() {
            return Persisted::Nothing;
        }
        match self.append(&target.hosted, &records, now, producer) {
            Ok((base, end)) => {
                let producer_id = producer.map_or(-1, |(id, _)| id);
                if producer_id >= 0 {
                    for r in &records {
                        target
                            .hosted
                            .shard
                            .entities()
                            .note_transaction(producer_id, r.entity_key());
                    }
                }
                entity.appended(&records, base, producer_id);
                Persisted::Appended {
                    target: target.clone(),
                    end,
                    follow_ups,
                }
            }
            Err(error) => {
                tracing::error!(topic = %self.0.topic, partition = target.hosted.index, %error, "appending to the coordinator log failed");
                let mut retry = Ctx::new(now, &*self.0.config);
                entity.follow_up(follow_ups, Err(error.clone()), &mut retry);
                // The follow-ups of a failure write nothing that must be durable; whatever
                // they produced goes in if the log takes it.
                if !retry.records.is_empty() {
                    if let Ok((base, _)) = self.append(&target.hosted, &retry.records, now, None) {
                        entity.appended(&retry.records, base, -1);
                    }
                }
                Persisted::Failed(error)
            }
        }
    }

    fn append(
        &self,
        hosted: &Hosted<S>,
        records: &[<S::Entity as Entity>::Record],
        now: i64,
        producer: Option<(i64, i16)>,
    ) -> Result<(i64, i64), CoordinatorError> {
        let batch = encode_batch(records, now, producer).map_err(CoordinatorError::Storage)?;
        let appended = hosted.writer.append(&batch)?;
        if appended.rolled {
            hosted.snapshot_due.store(true, Ordering::Release);
        }
        Ok((appended.base_offset, appended.end_offset))
    }

    /// Writes a transaction marker into partition `index` (Kafka's
    /// `scheduleTransactionCompletion`): the producer's pending records in every entity are
    /// committed or dropped at once, and the returned future resolves once the marker is
    /// committed.
    pub fn write_marker(
        &self,
        index: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        result: TxnResult,
    ) -> Result<Committed, CoordinatorError> {
        let hosted = self.hosted(index)?;
        let appended =
            hosted
                .writer
                .append_marker(producer_id, producer_epoch, coordinator_epoch, result)?;
        if appended.rolled {
            hosted.snapshot_due.store(true, Ordering::Release);
        }
        hosted
            .shard
            .replay_end_txn_marker(producer_id, producer_epoch, result);
        Ok(hosted.writer.committed(appended.end_offset))
    }

    /// After `end` is committed: the entity makes its pending state visible and runs the
    /// follow-ups (in a tracked task); the receiver says whether the records made it.
    fn spawn_committed(
        &self,
        target: Target<S>,
        end: i64,
        follow_ups: Vec<<S::Entity as Entity>::FollowUp>,
    ) -> oneshot::Receiver<Result<(), CoordinatorError>> {
        let (tx, rx) = oneshot::channel();
        let committed = target.hosted.writer.committed(end);
        let this = self.clone();
        self.0.tasks.spawn(async move {
            let result = committed.await;
            if let Err(error) = &result {
                tracing::error!(topic = %this.0.topic, partition = target.hosted.index, %error, "coordinator records not committed");
            }
            {
                let mut e = target.entity.lock();
                if result.is_ok() {
                    e.committed(end);
                }
                let mut ctx = Ctx::new(this.now(), &*this.0.config);
                e.follow_up(follow_ups, result.clone(), &mut ctx);
                // Follow-ups only produce records nobody waits for.
                let persisted = this.persist(&target, &mut e, ctx);
                drop(e);
                this.finish(persisted);
            }
            let _ = tx.send(result);
        });
        rx
    }

    /// Runs the follow-ups of an operation nobody else waits on once it is committed.
    pub fn finish(&self, persisted: Persisted<S>) {
        if let Persisted::Appended {
            target,
            end,
            follow_ups,
        } = persisted
        {
            if !follow_ups.is_empty() {
                drop(self.spawn_committed(target, end, follow_ups));
            }
        }
    }

    /// Answers with `ok` once every append in `persisted` is committed, or with `failed` of the
    /// first error.
    pub fn reply_when_committed<T: Send + 'static>(
        &self,
        persisted: Vec<Persisted<S>>,
        ok: T,
        failed: impl FnOnce(CoordinatorError) -> T + Send + 'static,
    ) -> Waiter<T> {
        let mut waits = Vec::new();
        for p in persisted {
            match p {
                Persisted::Nothing => {}
                // Appends already made still complete in their tasks; nobody waits for them.
                Persisted::Failed(e) => return Waiter::Ready(failed(e)),
                Persisted::Appended {
                    target,
                    end,
                    follow_ups,
                } => waits.push(self.spawn_committed(target, end, follow_ups)),
            }
        }
        if waits.is_empty() {
            return Waiter::Ready(ok);
        }
        let (tx, rx) = oneshot::channel();
        self.0.tasks.spawn(async move {
            let mut outcome = Ok(());
            for w in waits {
                let r = w.await.unwrap_or(Err(CoordinatorError::Unloaded));
                if outcome.is_ok() {
                    outcome = r;
                }
            }
            let _ = tx.send(match outcome {
                Ok(()) => ok,
                Err(e) => failed(e),
            });
        });
        Waiter::Wait(rx)
    }

    /// Runs `f` on `entity` under its lock at `now`, appends what it wrote and runs its
    /// follow-ups once committed (nobody waits for them).
    fn run_locked(
        &self,
        hosted: &Arc<Hosted<S>>,
        entity: &Arc<Mutex<S::Entity>>,
        now: i64,
        f: impl FnOnce(&mut S::Entity, &mut EntityCtx<'_, S::Entity>),
    ) {
        let mut e = entity.lock();
        let mut ctx = Ctx::new(now, &*self.0.config);
        f(&mut e, &mut ctx);
        let target = Target {
            hosted: hosted.clone(),
            entity: entity.clone(),
        };
        let persisted = self.persist(&target, &mut e, ctx);
        drop(e);
        self.finish(persisted);
    }

    /// Marks the entity removed and takes it out of its shard (it is locked by the caller).
    pub fn remove(&self, target: &Target<S>, key: &str, entity: &mut S::Entity) {
        entity.mark_removed(self.now());
        target.hosted.shard.entities().remove(key, &target.entity);
    }

    /// Fires the timers due at `now` in every open partition.
    pub fn tick(&self, now: i64) {
        for hosted in self.open_partitions() {
            for entity in hosted.shard.entities().all() {
                self.run_locked(&hosted, &entity, now, |e, ctx| {
                    if !e.is_removed() && e.next_deadline().is_some_and(|d| d <= now) {
                        e.tick(ctx);
                    }
                });
            }
        }
    }

    /// Answers every parked request (shutdown).
    pub fn unload(&self) {
        for entity in self.entities() {
            entity.lock().unload();
        }
    }

    /// Commits everything appended so far (the periodic flush: records nobody waits for
    /// reach the disk). Blocking.
    pub fn flush(&self) -> Result<(), CoordinatorError> {
        for hosted in self.open_partitions() {
            hosted.writer.flush()?;
        }
        Ok(())
    }

    /// Whether any partition rolled a segment since its last snapshot.
    pub fn snapshot_due(&self) -> bool {
        self.open_partitions()
            .iter()
            .any(|h| h.snapshot_due.load(Ordering::Acquire))
    }

    /// Snapshots the partitions that rolled a segment since their last snapshot. Blocking.
    pub fn write_due_snapshots(&self) -> Result<(), CoordinatorError> {
        for hosted in self.open_partitions() {
            if hosted.snapshot_due.swap(false, Ordering::AcqRel) {
                self.write_snapshot(&hosted)?;
            }
        }
        Ok(())
    }

    /// Snapshots every open partition. Blocking.
    pub fn write_snapshots(&self) -> Result<(), CoordinatorError> {
        for hosted in self.open_partitions() {
            hosted.snapshot_due.store(false, Ordering::Release);
            self.write_snapshot(&hosted)?;
        }
        Ok(())
    }

    /// Snapshots one partition (each entity locked in turn, never two at once), keeps the
    /// newest two snapshots and deletes the segments below the older. Blocking.
    fn write_snapshot(&self, hosted: &Hosted<S>) -> Result<(), CoordinatorError> {
        let _one_at_a_time = hosted.snapshot_lock.lock();
        let offset = hosted.writer.log_end_offset();
        let mut records = Vec::new();
        for entity in hosted.shard.entities().all() {
            let e = entity.lock();
            if !e.is_removed() {
                e.snapshot(&mut records);
            }
        }
        // Whatever the snapshot holds must be in the committed log, or a crash could leave a
        // snapshot claiming records the log lost.
        hosted.writer.flush()?;
        let dir = &hosted.writer.dir();
        let oldest_kept =
            snapshot::write(dir, offset, &records).map_err(CoordinatorError::Storage)?;
        let deleted = hosted.writer.delete_before(oldest_kept)?;
        if deleted > 0 {
            tracing::info!(dir = %dir.display(), segments = deleted, below = oldest_kept, "deleted coordinator log segments covered by snapshots");
        }
        tracing::debug!(dir = %dir.display(), offset, records = records.len(), "coordinator snapshot written");
        Ok(())
    }

    /// Snapshots (so the next start replays nothing), then flushes and closes every partition.
    /// Blocking.
    pub fn close(&self) -> Result<(), CoordinatorError> {
        let mut result = Ok(());
        for hosted in self.open_partitions() {
            if let Err(e) = self.write_snapshot(&hosted) {
                tracing::warn!(partition = hosted.index, error = %e, "coordinator snapshot at shutdown failed; the next start replays the log");
            }
            if let Err(e) = hosted.writer.close() {
                result = Err(e);
            }
        }
        result
    }
}

/// `<data_dir>/<topic>-<index>`.
pub fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}
