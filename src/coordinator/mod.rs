//! The coordinator runtime (Kafka's `coordinator-common`): what every coordinator needs to keep
//! its state in a log of its own and answer requests only once that state is committed.
//!
//! A coordinator is a [`Shard`] type: the state of one partition of its log (`__consumer_offsets-N`
//! for groups; `__transaction_state-N` for transactions). Its state is a set of entities, one per
//! key (a group id, a transactional id), each behind its own lock ([`Entities`]); keys map to
//! partitions by Kafka's hash (`partition_for`). The [`runtime::Runtime`] hosts the shards:
//!
//! - **write**: an operation locks one key, runs on its entity with a [`Ctx`] that collects the
//!   records to append and the follow-ups to run once they are committed (Kafka's
//!   `CoordinatorResult`), and appends the records as one batch while it still holds the lock, so
//!   a key's records are in the order of its operations. The entity learns the offsets
//!   (`Entity::appended`) and keeps what they change pending.
//! - **commit**: the records are committed when the [`writer::PartitionWriter`] says so: fsynced
//!   on one node, below the high watermark in a cluster. Then the entity makes the pending state
//!   visible (`Entity::committed`) and runs the follow-ups; the request is answered only then.
//! - **replay**: on load, every record after the newest snapshot goes through
//!   [`Shard::replay`] (Kafka's `CoordinatorShard.replay(offset, producerId, producerEpoch,
//!   record)`), every transaction marker through [`Shard::replay_end_txn_marker`].
//! - **snapshot**: after a segment rolls (and at shutdown) every entity writes the records that
//!   rebuild it (`Entity::snapshot`) into `<offset>.coordinator-snapshot`, and the segments below
//!   the older of the two newest snapshots are deleted (see `snapshot`): the log stays bounded.
//! - **tick**: timers are entity deadlines; `Runtime::tick(now)` fires the due ones.
//!
//! Time is an input (`Ctx::now`), so state machines are tested with a fake clock. Locking: a key
//! lock, then the writer's locks; never two key locks at once; the entity map's shard locks are
//! never held while taking a key lock. Waiting never happens under a lock: whatever waits for a
//! commit runs in a tracked task that re-locks the entity afterwards.

pub mod records;
pub mod runtime;
pub mod snapshot;
pub mod writer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::oneshot;

pub use records::{CoordinatorRecord, RecordError, TxnResult};
pub use runtime::Runtime;
pub use writer::{LocalWriter, PartitionWriter};

/// Why a coordinator operation could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// The log could not be written, synced or read.
    #[error("coordinator log: {0}")]
    Storage(String),
    /// The coordinator is shutting down (or its partition moved away).
    #[error("the coordinator was unloaded")]
    Unloaded,
}

/// An answer now, or a channel that delivers it when the state machine gets there.
#[derive(Debug)]
pub enum Waiter<T> {
    /// The answer.
    Ready(T),
    /// The answer will arrive here (a parked request, or one waiting for its commit).
    Wait(oneshot::Receiver<T>),
}

/// One operation's time and configuration, and what it wants written and done afterwards
/// (Kafka's `CoordinatorResult`).
pub struct Ctx<'a, C, R, F> {
    /// Now, in epoch milliseconds.
    pub now: i64,
    /// The coordinator's settings.
    pub config: &'a C,
    /// Records to append, in order, as one batch.
    pub records: Vec<R>,
    /// Follow-ups to run once those records are committed.
    pub follow_ups: Vec<F>,
}

impl<'a, C, R, F> Ctx<'a, C, R, F> {
    /// A context at `now` with nothing to write yet.
    pub fn new(now: i64, config: &'a C) -> Ctx<'a, C, R, F> {
        Ctx {
            now,
            config,
            records: Vec::new(),
            follow_ups: Vec::new(),
        }
    }
}

/// The context an entity's operations get.
pub type EntityCtx<'a, E> =
    Ctx<'a, <E as Entity>::Config, <E as Entity>::Record, <E as Entity>::FollowUp>;

/// What one key lock guards: a group, a transactional id. It does no I/O: it takes the time
/// as an input and hands records and follow-ups back through its [`Ctx`].
pub trait Entity: Send + 'static {
    /// The records of the log.
    type Record: CoordinatorRecord;
    /// Work to do once records are committed.
    type FollowUp: Send + 'static;
    /// The coordinator's settings.
    type Config: Send + Sync + 'static;

    /// A new entity for `key`.
    fn new(key: &str, now: i64) -> Self;
    /// Whether it was removed: operations that found it look the key up again.
    fn is_removed(&self) -> bool;
    /// Marks it removed (answering any parked request).
    fn mark_removed(&mut self, now: i64);
    /// Whether replay left nothing of it (a deleted key): dropped after loading.
    fn is_gone(&self) -> bool;
    /// Applies one record read back from the log (or a snapshot); `producer_id` >= 0 for a
    /// transactional record, which stays pending until its transaction's marker.
    fn replay(&mut self, offset: i64, producer_id: i64, producer_epoch: i16, record: Self::Record);
    /// Applies a transaction marker of a producer with pending records here.
    fn replay_end_txn_marker(&mut self, producer_id: i64, producer_epoch: i16, result: TxnResult);
    /// Called once loading is complete (Kafka's `onLoaded`), at `ctx.now`.
    fn loaded(&mut self, ctx: &mut EntityCtx<'_, Self>)
    where
        Self: Sized;
    /// Its operation's records were appended at consecutive offsets from `base_offset`, by
    /// `producer_id` in a transaction (pending until its marker once committed), -1 otherwise.
    fn appended(&mut self, records: &[Self::Record], base_offset: i64, producer_id: i64);
    /// Everything below `end` is committed: pending state becomes visible.
    fn committed(&mut self, end: i64);
    /// Runs the follow-ups of records that are committed (`Ok`) or failed to be (`Err`).
    fn follow_up(
        &mut self,
        follow_ups: Vec<Self::FollowUp>,
        result: Result<(), CoordinatorError>,
        ctx: &mut EntityCtx<'_, Self>,
    ) where
        Self: Sized;
    /// The earliest timer deadline, if a timer runs.
    fn next_deadline(&self) -> Option<i64>;
    /// Fires the timers due at `ctx.now`.
    fn tick(&mut self, ctx: &mut EntityCtx<'_, Self>)
    where
        Self: Sized;
    /// The records that rebuild it, with the offsets (and producers) they had, for a snapshot;
    /// pending ones included (they are in the log below the snapshot's offset).
    fn snapshot(&self, out: &mut Vec<snapshot::SnapshotRecord<Self::Record>>);
    /// Answers every parked request (shutdown, or the partition moving away).
    fn unload(&mut self);
}

/// Kafka's `CoordinatorShard`: the state of one partition of a coordinator's log.
pub trait Shard: Send + Sync + Sized + 'static {
    /// What one key lock guards.
    type Entity: Entity;

    /// A shard for partition `index`, empty.
    fn new(index: i32, config: Arc<<Self::Entity as Entity>::Config>) -> Self;
    /// The shard's entities, by key.
    fn entities(&self) -> &Entities<Self::Entity>;
    /// The settings operations run with.
    fn config(&self) -> &<Self::Entity as Entity>::Config;

    /// Kafka's `replay(offset, producerId, producerEpoch, record)`: applies one record read back
    /// from the log to the entity of its key (created if new). A transactional record is also
    /// noted for its producer's marker.
    fn replay(
        &self,
        offset: i64,
        producer_id: i64,
        producer_epoch: i16,
        record: <Self::Entity as Entity>::Record,
        now: i64,
    ) {
        let key = record.entity_key().to_string();
        if producer_id >= 0 {
            self.entities().note_transaction(producer_id, &key);
        }
        let (entity, _) = self.entities().get_or_create(&key, now);
        entity
            .lock()
            .replay(offset, producer_id, producer_epoch, record);
    }

    /// Kafka's `replayEndTransactionMarker`: completes (commits or aborts) the pending records
    /// of `producer_id` in every entity that has some.
    fn replay_end_txn_marker(&self, producer_id: i64, producer_epoch: i16, result: TxnResult) {
        for key in self.entities().take_transaction(producer_id) {
            if let Some(entity) = self.entities().get(&key) {
                entity
                    .lock()
                    .replay_end_txn_marker(producer_id, producer_epoch, result);
            }
        }
    }
}

/// The entities of one shard, each behind its own lock, and the producers with transactional
/// records pending in them.
pub struct Entities<E> {
    map: DashMap<String, Arc<Mutex<E>>>,
    transactions: Mutex<HashMap<i64, BTreeSet<String>>>,
}

impl<E: Entity> Default for Entities<E> {
    fn default() -> Entities<E> {
        Entities {
            map: DashMap::new(),
            transactions: Mutex::new(HashMap::new()),
        }
    }
}

impl<E: Entity> Entities<E> {
    /// The entity of `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Arc<Mutex<E>>> {
        self.map.get(key).map(|e| e.value().clone())
    }

    /// The entity of `key`, created if absent; the flag says whether it was created.
    pub fn get_or_create(&self, key: &str, now: i64) -> (Arc<Mutex<E>>, bool) {
        match self.map.entry(key.to_string()) {
            dashmap::Entry::Occupied(e) => (e.get().clone(), false),
            dashmap::Entry::Vacant(e) => {
                let entity = Arc::new(Mutex::new(E::new(key, now)));
                e.insert(entity.clone());
                (entity, true)
            }
        }
    }

    /// Every entity (a snapshot of the map; each still to be locked).
    pub fn all(&self) -> Vec<Arc<Mutex<E>>> {
        self.map.iter().map(|e| e.value().clone()).collect()
    }

    /// Every key.
    pub fn keys(&self) -> Vec<String> {
        self.map.iter().map(|e| e.key().clone()).collect()
    }

    /// Removes `key` if it still maps to `entity` (a newer one is left alone).
    pub fn remove(&self, key: &str, entity: &Arc<Mutex<E>>) {
        self.map.remove_if(key, |_, v| Arc::ptr_eq(v, entity));
    }

    /// Drops every entity that replay left empty.
    pub fn retain_loaded(&self) {
        self.map.retain(|_, e| !e.lock().is_gone());
    }

    /// Notes that `producer_id` has transactional records pending in `key`.
    pub fn note_transaction(&self, producer_id: i64, key: &str) {
        self.transactions
            .lock()
            .entry(producer_id)
            .or_default()
            .insert(key.to_string());
    }

    /// The keys with pending records of `producer_id`, forgetting them.
    pub fn take_transaction(&self, producer_id: i64) -> BTreeSet<String> {
        self.transactions
            .lock()
            .remove(&producer_id)
            .unwrap_or_default()
    }

    /// How many entities there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Kafka's partitioning of coordinator keys: `Utils.abs(key.hashCode()) % partitions`, with
/// Java's `String.hashCode` over UTF-16 code units and `Utils.abs(Integer.MIN_VALUE) == 0`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}
