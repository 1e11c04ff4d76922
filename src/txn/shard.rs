//! The transaction coordinator as a shard of the coordinator runtime (Kafka's
//! `TransactionStateManager` partition): one per `__transaction_state-N` partition, holding the
//! transactional ids that hash there, each behind its own key lock as a [`TxnEntry`].
//!
//! A [`TxnEntry`] holds the committed metadata and, while a transition is being written, the
//! pending one (Kafka's `pendingState`): requests that meet a pending transition are answered
//! CONCURRENT_TRANSACTIONS. The follow-up of a write applies the transition once it is
//! committed, or drops it when the write failed.

use std::sync::Arc;

use super::records::TxnRecord;
use super::state::TxnMetadata;
use super::TxnConfig;
use crate::coordinator::snapshot::SnapshotRecord;
use crate::coordinator::{CoordinatorError, Ctx, Entities, Entity, Shard, TxnResult};

/// What a transactional id's lock guards.
#[derive(Debug)]
pub struct TxnEntry {
    id: String,
    /// The committed state; None for an id that never completed an InitProducerId.
    meta: Option<TxnMetadata>,
    /// A transition appended to the log and not yet committed.
    pending: Option<TxnMetadata>,
    /// Offset of the last record of this id (snapshots keep it).
    last_offset: i64,
    /// A task is writing this transaction's markers.
    completing: bool,
    removed: bool,
}

/// Work after a transition's record is committed.
#[derive(Debug)]
pub enum FollowUp {
    /// Make this the committed state.
    Transit(TxnMetadata),
}

/// The context a transactional id's operations get.
pub type TxnCtx<'a> = Ctx<'a, TxnConfig, TxnRecord, FollowUp>;

impl TxnEntry {
    /// The transactional id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The committed state, if any.
    pub fn metadata(&self) -> Option<&TxnMetadata> {
        self.meta.as_ref()
    }

    /// Whether a transition is being written.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether a task is writing the markers of the current Prepare state.
    pub fn is_completing(&self) -> bool {
        self.completing
    }

    /// Marks whether a task is writing the markers.
    pub fn set_completing(&mut self, completing: bool) {
        self.completing = completing;
    }

    /// Queues `next` to be written: the record, and its application once committed.
    pub fn transit(&mut self, next: TxnMetadata, ctx: &mut TxnCtx<'_>) {
        ctx.records.push(TxnRecord {
            transactional_id: self.id.clone(),
            value: Some(next.clone()),
        });
        ctx.follow_ups.push(FollowUp::Transit(next.clone()));
        self.pending = Some(next);
    }

    /// Queues the id's tombstone (it expired).
    pub fn tombstone(&mut self, ctx: &mut TxnCtx<'_>) {
        ctx.records.push(TxnRecord {
            transactional_id: self.id.clone(),
            value: None,
        });
    }
}

impl Entity for TxnEntry {
    type Record = TxnRecord;
    type FollowUp = FollowUp;
    type Config = TxnConfig;

    fn new(key: &str, _now: i64) -> TxnEntry {
        TxnEntry {
            id: key.to_string(),
            meta: None,
            pending: None,
            last_offset: -1,
            completing: false,
            removed: false,
        }
    }

    fn is_removed(&self) -> bool {
        self.removed
    }

    fn mark_removed(&mut self, _now: i64) {
        self.removed = true;
    }

    fn is_gone(&self) -> bool {
        self.meta.is_none() && self.pending.is_none()
    }

    fn replay(&mut self, offset: i64, _producer_id: i64, _epoch: i16, record: TxnRecord) {
        self.last_offset = offset;
        self.meta = record.value;
    }

    fn replay_end_txn_marker(&mut self, _producer_id: i64, _epoch: i16, _result: TxnResult) {}

    fn loaded(&mut self, _ctx: &mut TxnCtx<'_>) {}

    fn appended(&mut self, records: &[TxnRecord], base_offset: i64, _producer_id: i64) {
        if !records.is_empty() {
            self.last_offset = base_offset + records.len() as i64 - 1;
        }
    }

    fn committed(&mut self, _end: i64) {}

    fn follow_up(
        &mut self,
        follow_ups: Vec<FollowUp>,
        result: Result<(), CoordinatorError>,
        _ctx: &mut TxnCtx<'_>,
    ) {
        for FollowUp::Transit(next) in follow_ups {
            if self.pending.as_ref() == Some(&next) {
                self.pending = None;
            }
            if result.is_ok() {
                self.meta = Some(next);
            }
        }
    }

    fn next_deadline(&self) -> Option<i64> {
        // Timeouts and expiry are scanned by the coordinator, which also writes markers.
        None
    }

    fn tick(&mut self, _ctx: &mut TxnCtx<'_>) {}

    fn snapshot(&self, out: &mut Vec<SnapshotRecord<TxnRecord>>) {
        // A pending transition is in the log below the snapshot's offset: it counts.
        if let Some(meta) = self.pending.as_ref().or(self.meta.as_ref()) {
            out.push(SnapshotRecord {
                offset: self.last_offset,
                producer_id: -1,
                producer_epoch: -1,
                record: TxnRecord {
                    transactional_id: self.id.clone(),
                    value: Some(meta.clone()),
                },
            });
        }
    }

    fn unload(&mut self) {}
}

/// One partition of the transaction log and the ids that hash there.
pub struct TxnShard {
    config: Arc<TxnConfig>,
    entities: Entities<TxnEntry>,
}

impl Shard for TxnShard {
    type Entity = TxnEntry;

    fn new(_index: i32, config: Arc<TxnConfig>) -> TxnShard {
        TxnShard {
            config,
            entities: Entities::default(),
        }
    }

    fn entities(&self) -> &Entities<TxnEntry> {
        &self.entities
    }

    fn config(&self) -> &TxnConfig {
        &self.config
    }
}
