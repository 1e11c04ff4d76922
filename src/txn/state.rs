//! The state of one transactional id and its transitions (Kafka's `TransactionMetadata` and the
//! decisions of `TransactionCoordinator`), as pure functions of the request and the time.
//!
//! ```text
//!             InitProducerId (bump epoch)
//!   (new) ──────────────────────────────▶ Empty ◀───────────────────────────┐
//!                                           │ AddPartitions / AddOffsets     │ InitProducerId
//!                                           ▼                               │
//!                 ┌──────────────────── Ongoing ──────────────────┐         │
//!       EndTxn commit                       │ InitProducerId, timeout        EndTxn abort
//!                 ▼                         ▼ (PrepareEpochFence: bump)     ▼
//!          PrepareCommit              PrepareAbort ◀─────────────────── PrepareAbort
//!                 │ markers written         │ markers written
//!                 ▼                         ▼
//!          CompleteCommit ─────────▶ (Add: Ongoing)  CompleteAbort ───▶ (Add: Ongoing)
//!   Empty/Complete* idle for transactional.id.expiration.ms ──▶ Dead (tombstone, removed)
//! ```
//!
//! Every transition is prepared here ([`TxnMetadata`] of the target state), written to the
//! transaction log, and applied only once committed: meanwhile the id has a pending transition
//! and every other request is answered CONCURRENT_TRANSACTIONS, as in Kafka.
//!
//! Epochs: InitProducerId bumps the epoch (a new producer id when it is exhausted, at
//! `i16::MAX - 1`); under transaction version 2 (KIP-890) EndTxn bumps it too, and the markers
//! carry the bumped epoch, so a zombie's late write is fenced by the partitions themselves.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::TxnError;

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Kafka's `TransactionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction open; the producer may start one.
    Empty,
    /// Partitions were added: a transaction is open.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Committed: every marker written.
    CompleteCommit,
    /// Aborted: every marker written.
    CompleteAbort,
    /// The producer is being fenced (an InitProducerId or a timeout met an open transaction).
    PrepareEpochFence,
    /// Expired: the id is being removed.
    Dead,
}

impl TxnState {
    /// Every state, in Kafka's order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::PrepareEpochFence,
        TxnState::Dead,
    ];

    /// Kafka's name of the state (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
            TxnState::Dead => "Dead",
        }
    }

    /// Whether no transaction is open or ending (Empty, CompleteCommit, CompleteAbort).
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// Kafka's `isEpochExhausted`: the epoch cannot be bumped once more and still leave room for a
/// fencing bump.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// What a transactional id is, as written to the transaction log (Kafka's
/// `TransactionLogValue`, plus what Kafka keeps in memory beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMetadata {
    /// The current producer id.
    pub producer_id: i64,
    /// The id before the last rotation (KIP-360 retries), -1 for none.
    pub prev_producer_id: i64,
    /// The id the next transaction gets when this one ends with an exhausted epoch (TV2).
    pub next_producer_id: i64,
    /// The current epoch, -1 before the first InitProducerId completed.
    pub producer_epoch: i16,
    /// The epoch before the last bump (a retried bump returns the current one), -1 for none.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// The partitions of the open (or ending) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction started, -1 for none.
    pub start_ms: i64,
    /// When the id last changed.
    pub update_ms: i64,
    /// Whether the transaction runs under transaction version 2 (KIP-890).
    #[serde(default)]
    pub tv2: bool,
}

/// How a transaction ends.
pub use crate::coordinator::TxnResult;

/// What an InitProducerId decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitDecision {
    /// Write this state (the bumped epoch) and answer with its producer id and epoch.
    Bump(TxnMetadata),
    /// An open transaction must be aborted first: write this PrepareAbort (epoch bumped to fence
    /// the old producer), write its markers, and answer CONCURRENT_TRANSACTIONS now.
    FenceAndAbort(TxnMetadata),
}

/// What an EndTxn (or the coordinator's own abort) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndDecision {
    /// Nothing to write: answer with this producer id and epoch (a retry of a completed end).
    Done(i64, i16),
    /// Write this Prepare state, then the markers, then complete.
    Prepare(TxnMetadata),
}

impl TxnMetadata {
    /// A new id's state before its first InitProducerId completed.
    pub fn new(producer_id: i64, timeout_ms: i32, now: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: now,
            tv2: false,
        }
    }

    /// Kafka's `isValidProducerId` for a KIP-360 InitProducerId naming `(id, epoch)`.
    fn accepts_expected(&self, id: i64, epoch: i16) -> bool {
        self.producer_epoch == NO_PRODUCER_EPOCH
            || id == self.producer_id
            || (id == self.prev_producer_id && epoch_exhausted(epoch))
    }

    /// InitProducerId on an existing id. `new_id` is called when a fresh producer id is needed
    /// (the epoch is exhausted).
    pub fn init(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
        new_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    ) -> Result<InitDecision, TxnError> {
        if let Some((id, epoch)) = expected {
            if !self.accepts_expected(id, epoch) {
                return Err(TxnError::ProducerFenced);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead => Err(TxnError::ConcurrentTransactions),
            TxnState::Ongoing => {
                // Abort the open transaction under a bumped epoch (the old producer is fenced);
                // the client retries and then gets an epoch bumped once more.
                let mut next = self.clone();
                if epoch_exhausted(self.producer_epoch) && self.producer_epoch == i16::MAX {
                    return Err(TxnError::InvalidTxnState(
                        "cannot fence a producer whose epoch is exhausted".into(),
                    ));
                }
                next.producer_epoch = self.producer_epoch + 1;
                next.last_producer_epoch = NO_PRODUCER_EPOCH;
                next.state = TxnState::PrepareAbort;
                next.update_ms = now;
                Ok(InitDecision::FenceAndAbort(next))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = self.clone();
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.update_ms = now;
                next.tv2 = false;
                let expected_epoch = expected.map(|(_, e)| e);
                if epoch_exhausted(self.producer_epoch)
                    && expected_epoch.is_none_or(|e| e == self.producer_epoch)
                {
                    // Rotation: a new id at epoch 0 (Kafka's prepareProducerIdRotation).
                    next.prev_producer_id = self.producer_id;
                    next.producer_id = new_id()?;
                    next.producer_epoch = 0;
                    next.last_producer_epoch = if expected.is_some() {
                        self.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    return Ok(InitDecision::Bump(next));
                }
                let bumped = self.producer_epoch.wrapping_add(1);
                match expected_epoch {
                    None => {
                        next.producer_epoch = bumped;
                        next.last_producer_epoch = NO_PRODUCER_EPOCH;
                    }
                    Some(e)
                        if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch =>
                    {
                        next.producer_epoch = bumped;
                        next.last_producer_epoch = self.producer_epoch;
                    }
                    // A retry of a bump whose answer was lost: the current epoch again.
                    Some(e) if e == self.last_producer_epoch => {}
                    Some(_) => return Err(TxnError::ProducerFenced),
                }
                Ok(InitDecision::Bump(next))
            }
        }
    }

    /// The producer checks every transactional request makes (Kafka's order).
    fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if self.state == TxnState::Dead {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, and TV2's implicit add by Produce): None when
    /// every partition is already in the open transaction, else the Ongoing state to write.
    pub fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        tv2: bool,
        now: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => {
                return Ok(None)
            }
            _ => {}
        }
        let mut next = self.clone();
        if self.state != TxnState::Ongoing {
            next.start_ms = now;
            next.partitions.clear();
            next.tv2 = tv2;
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.update_ms = now;
        Ok(Some(next))
    }

    /// Whether `partition` is in the open transaction of this producer (KIP-890 verification,
    /// Kafka's `handleVerifyPartitionsInTransaction`: nothing is written).
    pub fn verify_partition(
        &self,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), TxnError> {
        self.check_producer(producer_id, epoch)?;
        if matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(TxnError::ConcurrentTransactions);
        }
        if self.state != TxnState::Ongoing || !self.partitions.contains(partition) {
            return Err(TxnError::NotInTransaction(format!(
                "Partition {}-{} was not added to the transaction",
                partition.0, partition.1
            )));
        }
        Ok(())
    }

    /// EndTxn from the client. `tv2`: the request is EndTxn v5+ (the epoch is bumped at every
    /// end). `new_id` gives a producer id when the bump exhausts the epoch.
    pub fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        result: TxnResult,
        tv2: bool,
        now: i64,
        new_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    ) -> Result<EndDecision, TxnError> {
        if tv2 {
            return self.end_tv2(producer_id, epoch, result, now, new_id);
        }
        self.check_producer(producer_id, epoch)?;
        let wrong = |state: TxnState| {
            Err(TxnError::InvalidTxnState(format!(
                "EndTxn {result:?} in state {}",
                state.name()
            )))
        };
        match (self.state, result) {
            (TxnState::Ongoing, _) => Ok(EndDecision::Prepare(self.prepare(result, now))),
            (TxnState::CompleteCommit, TxnResult::Commit)
            | (TxnState::CompleteAbort, TxnResult::Abort) => {
                Ok(EndDecision::Done(self.producer_id, self.producer_epoch))
            }
            (TxnState::PrepareCommit, TxnResult::Commit)
            | (TxnState::PrepareAbort, TxnResult::Abort) => Err(TxnError::ConcurrentTransactions),
            (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            (state, _) => wrong(state),
        }
    }

    /// EndTxn under transaction version 2 (Kafka's `endTransaction` for TV2): the epoch is
    /// bumped at every end, so a retry names the epoch before the bump.
    fn end_tv2(
        &self,
        producer_id: i64,
        epoch: i16,
        result: TxnResult,
        now: i64,
        new_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    ) -> Result<EndDecision, TxnError> {
        if self.state == TxnState::Dead {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let retry_on_bump = i32::from(self.producer_epoch) == i32::from(epoch) + 1;
        let retry_on_overflow = producer_id == self.prev_producer_id
            && epoch == i16::MAX - 1
            && self.producer_epoch == 0;
        if producer_id != self.producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let current = epoch == self.producer_epoch && producer_id == self.producer_id;
        let retry = retry_on_bump || retry_on_overflow;
        let valid = match self.state {
            TxnState::Ongoing | TxnState::Empty => current,
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => current || retry,
            TxnState::PrepareEpochFence | TxnState::Dead => current,
        };
        if !valid {
            return Err(TxnError::ProducerFenced);
        }
        let wrong = |state: TxnState| {
            Err(TxnError::InvalidTxnState(format!(
                "EndTxn {result:?} in state {}",
                state.name()
            )))
        };
        match (self.state, result) {
            (TxnState::Ongoing, _) => Ok(EndDecision::Prepare(
                self.prepare_bumped(result, now, new_id)?,
            )),
            (TxnState::PrepareCommit, TxnResult::Commit)
            | (TxnState::PrepareAbort, TxnResult::Abort)
            | (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            (TxnState::CompleteCommit, TxnResult::Commit)
            | (TxnState::CompleteAbort, TxnResult::Abort)
                if retry =>
            {
                Ok(EndDecision::Done(self.producer_id, self.producer_epoch))
            }
            // TV2 lets a producer abort with nothing open (it bumps the epoch all the same).
            (
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort,
                TxnResult::Abort,
            ) if current => {
                let mut next = self.prepare_bumped(result, now, new_id)?;
                next.partitions.clear();
                next.start_ms = now;
                Ok(EndDecision::Prepare(next))
            }
            (state, _) => wrong(state),
        }
    }

    /// The Prepare state of `result`, epoch unchanged (TV1).
    fn prepare(&self, result: TxnResult, now: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = match result {
            TxnResult::Commit => TxnState::PrepareCommit,
            TxnResult::Abort => TxnState::PrepareAbort,
        };
        next.update_ms = now;
        next
    }

    /// The Prepare state of `result` with the epoch bumped (TV2), rotating the producer id when
    /// the epoch is exhausted (the new id takes effect at completion).
    fn prepare_bumped(
        &self,
        result: TxnResult,
        now: i64,
        new_id: &mut dyn FnMut() -> Result<i64, TxnError>,
    ) -> Result<TxnMetadata, TxnError> {
        let mut next = self.prepare(result, now);
        next.tv2 = true;
        if epoch_exhausted(self.producer_epoch.saturating_add(1)) {
            next.next_producer_id = new_id()?;
        }
        next.last_producer_epoch = self.producer_epoch;
        next.producer_epoch = self.producer_epoch + 1;
        Ok(next)
    }

    /// The coordinator's abort of a transaction past its timeout: the epoch is bumped so the
    /// producer is fenced (Kafka's `prepareFenceProducerEpoch` then an abort).
    pub fn abort_timed_out(&self, now: i64) -> Option<TxnMetadata> {
        if self.state != TxnState::Ongoing || self.start_ms + i64::from(self.timeout_ms) >= now {
            return None;
        }
        let mut next = self.prepare(TxnResult::Abort, now);
        if self.producer_epoch < i16::MAX {
            next.producer_epoch = self.producer_epoch + 1;
            next.last_producer_epoch = if self.tv2 {
                self.producer_epoch
            } else {
                NO_PRODUCER_EPOCH
            };
        }
        Some(next)
    }

    /// The Complete state after every marker of a Prepare state was written.
    pub fn complete(&self, now: i64) -> Option<TxnMetadata> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let mut next = self.clone();
        next.state = state;
        // The start time stays: DescribeTransactions shows the last transaction's.
        next.partitions.clear();
        next.update_ms = now;
        if next.next_producer_id != NO_PRODUCER_ID {
            next.prev_producer_id = next.producer_id;
            next.producer_id = next.next_producer_id;
            next.next_producer_id = NO_PRODUCER_ID;
            next.producer_epoch = 0;
            next.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        Some(next)
    }

    /// The result a Prepare state's markers carry.
    pub fn marker_result(&self) -> Option<TxnResult> {
        match self.state {
            TxnState::PrepareCommit => Some(TxnResult::Commit),
            TxnState::PrepareAbort => Some(TxnResult::Abort),
            _ => None,
        }
    }

    /// Whether the id expired: idle for `expiration_ms` (Kafka's removal of expired ids).
    pub fn expired(&self, now: i64, expiration_ms: i64) -> bool {
        self.state.is_idle() && self.update_ms.saturating_add(expiration_ms) <= now
    }
}

#[cfg(test)]
mod tests;
