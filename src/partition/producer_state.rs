//! Per-partition producer state: what makes idempotent produce exactly-once, and the partition's
//! half of transactions (Kafka's `ProducerStateManager`, `ProducerAppendInfo`,
//! `VerificationStateEntry`).
//!
//! For every producer id that wrote to the partition: its epoch, the metadata (sequence range,
//! offsets, timestamp) of its last five data batches, the first offset of its open transaction
//! in this partition if any, and the epoch of the transaction coordinator that last ended one of
//! its transactions here. A batch that repeats one of those five is a retry: it is answered with
//! the original offsets and not appended again. Otherwise its first sequence must follow the
//! last one, or start at 0 after an epoch bump.
//!
//! Transactions: a transactional data batch of a producer with no open transaction here opens
//! one at its base offset; a transaction marker (a control batch, see [`crate::log::control`])
//! ends it and reports a [`CompletedTxn`]. A marker may carry a newer producer epoch (transaction
//! protocol v2 bumps it at every commit or abort): the producer's batches are forgotten and its
//! next batch starts at sequence 0. Markers have no sequence and never enter the five-batch
//! window; a marker for a producer with no open transaction here still updates its epochs but
//! completes nothing. Refusals: a batch or marker with an older producer epoch
//! (INVALID_PRODUCER_EPOCH), a marker from an older coordinator epoch
//! (TRANSACTION_COORDINATOR_FENCED), a non-transactional batch while the producer's transaction is
//! open (INVALID_TXN_STATE). The open transactions, by first offset, give the partition's first
//! unstable offset. A producer with an open transaction never expires.
//!
//! Verification (KIP-890 part 1): before a transactional batch may open a transaction here, the
//! partition hands out a [`VerificationGuard`] ([`ProducerStateManager::start_verification`]),
//! the transaction coordinator confirms the transaction, and the append must present that very
//! guard. Guards are unique (a global counter), kept per producer id in memory only, and consumed
//! by the producer's next transactional batch or marker, so a verification that raced with the
//! end of the transaction cannot open a hanging one.
//!
//! Durability: `<20-digit offset>.snapshot` files in the partition directory hold the state as
//! of that offset (JSON: `{"offset", "producers": [ProducerEntry...]}`; entries written before
//! transactions existed load with no open transaction and coordinator epoch -1). They are
//! written (atomically) after the log rolls a segment and on clean shutdown, and only once
//! everything below their offset is durable. On open, the newest snapshot not past the log end
//! is loaded and the batches after it are replayed from the log itself, so the state after a
//! `kill -9` is exactly what the log holds, and a batch retried after the crash is still
//! recognised. The replay also rebuilds the log's transaction index from its start: every entry
//! whose marker is at or after the replay start is replaced by what the replay found
//! (`PartitionLog::replace_aborted_txns`), so a crash between a marker and its index entry loses
//! nothing. A snapshot is taken in two steps, so no file I/O happens under the partition's lock:
//! [`ProducerStateManager::snapshot`] copies the state as of the log end under the lock,
//! [`ProducerSnapshot::write`] writes it after.
//!
//! Thread-safety: none inside; the partition keeps it behind a mutex that producer appends hold
//! across check, append and record, so the state always matches a prefix of the log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::log::control::marker_of_batch;
use crate::log::{
    write_atomically, AbortedTxn, BatchHeader, EndTxnMarker, LogError, PartitionLog, TxnResult,
};

/// Batches remembered per producer for duplicate detection (Kafka's `NUM_BATCHES_TO_RETAIN`).
pub const BATCHES_TO_RETAIN: usize = 5;
/// Snapshots kept per partition (the newest and the one before it).
const SNAPSHOTS_TO_KEEP: usize = 2;
const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// Why an idempotent batch is refused; mapped to Kafka codes in `handlers::error_codes`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProducerError {
    /// The batch's epoch is older than the producer's current one (INVALID_PRODUCER_EPOCH).
    #[error("epoch of producer {producer_id} is {epoch}, which is smaller than the last seen epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch the partition has seen.
        current: i16,
    },
    /// The first sequence does not follow the last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("out of order sequence number for producer {producer_id}: {first_seq} (incoming seq. number), {last_seq} (current end sequence number)")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's first sequence.
        first_seq: i32,
        /// The last sequence the partition holds, -1 for none.
        last_seq: i32,
    },
    /// After an epoch bump the first batch must start at sequence 0.
    #[error("invalid sequence number for new epoch of producer {producer_id}: {epoch} (request epoch), {first_seq} (seq. number), {current} (current producer epoch)")]
    InvalidSequenceForNewEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's first sequence.
        first_seq: i32,
        /// The epoch the partition has seen.
        current: i16,
    },
    /// A non-transactional batch from a producer whose transaction is open here
    /// (INVALID_TXN_STATE).
    #[error(
        "expected a transactional write from producer {producer_id}, whose transaction is open"
    )]
    TransactionalWriteExpected {
        /// The producer.
        producer_id: i64,
    },
    /// A marker from an older transaction coordinator than one already seen
    /// (TRANSACTION_COORDINATOR_FENCED).
    #[error("invalid coordinator epoch for producer {producer_id}: {coordinator_epoch} (zombie), {current} (current)")]
    CoordinatorFenced {
        /// The producer.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch the partition has seen.
        current: i32,
    },
}

/// Where one batch of a producer went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMetadata {
    /// First sequence of the batch.
    pub first_seq: i32,
    /// Last sequence of the batch.
    pub last_seq: i32,
    /// Offset of the batch's first record.
    pub first_offset: i64,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub timestamp: i64,
}

/// One producer's state in this partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub epoch: i16,
    /// Its last batches, oldest first, at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// Max timestamp of its last batch or marker (what expiry and DescribeProducers use, as in
    /// Kafka).
    pub last_timestamp: i64,
    /// The first offset of its open transaction in this partition.
    #[serde(default)]
    pub current_txn_first_offset: Option<i64>,
    /// The epoch of the coordinator that wrote its last marker here, -1 for none.
    #[serde(default = "no_coordinator_epoch")]
    pub coordinator_epoch: i32,
}

fn no_coordinator_epoch() -> i32 {
    -1
}

impl ProducerEntry {
    /// A producer the partition has seen nothing of yet.
    fn empty(producer_id: i64, epoch: i16, timestamp: i64) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            epoch,
            batches: VecDeque::with_capacity(BATCHES_TO_RETAIN),
            last_timestamp: timestamp,
            current_txn_first_offset: None,
            coordinator_epoch: no_coordinator_epoch(),
        }
    }

    /// Kafka's `maybeUpdateProducerEpoch`: a new epoch forgets the old epoch's batches.
    fn set_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    /// The last sequence written, -1 for none.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// New data in sequence: append it.
    Append,
    /// A retry of a batch already in the log: answer with its metadata, append nothing.
    Duplicate(BatchMetadata),
}

/// The producer-relevant fields of one data batch.
#[derive(Debug, Clone, Copy)]
pub struct ProducerBatch {
    /// Producer id (>= 0).
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// First sequence.
    pub first_seq: i32,
    /// Last sequence.
    pub last_seq: i32,
    /// Whether the batch is part of a transaction.
    pub transactional: bool,
}

impl ProducerBatch {
    /// The producer fields of a batch header, or None for a batch without a producer id.
    pub fn of(header: &BatchHeader) -> Option<ProducerBatch> {
        (header.producer_id >= 0).then(|| ProducerBatch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_seq: increment_sequence(header.base_sequence, header.last_offset_delta),
            transactional: header.is_transactional(),
        })
    }
}

/// A transaction a marker ended in this partition (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// The transaction's first offset here.
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    /// Whether it was aborted.
    pub is_aborted: bool,
    /// The partition's last stable offset right after it ended (Kafka's rule: the first offset of
    /// the earliest other open transaction, else the marker offset + 1).
    pub last_stable_offset: i64,
}

impl CompletedTxn {
    /// The transaction index entry of an aborted transaction.
    pub fn aborted(&self) -> Option<AbortedTxn> {
        self.is_aborted.then_some(AbortedTxn {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            last_stable_offset: self.last_stable_offset,
        })
    }
}

/// Proof that a transactional append was verified with the transaction coordinator (Kafka's
/// `VerificationGuard`): opaque and unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

/// The last guard handed out; guards start at 1.
static LAST_GUARD: AtomicU64 = AtomicU64::new(0);

impl VerificationGuard {
    fn fresh() -> VerificationGuard {
        VerificationGuard(LAST_GUARD.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// A verification in flight for one producer (Kafka's `VerificationStateEntry`).
#[derive(Debug, Clone, Copy)]
struct Verification {
    guard: VerificationGuard,
    /// When it started, for expiry.
    started_ms: i64,
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from i32::MAX to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    offset: i64,
    producers: Vec<ProducerEntry>,
}

/// The producer state of one partition.
#[derive(Debug)]
pub struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions, first offset -> producer id: the entries' `current_txn_first_offset`s.
    ongoing: BTreeMap<i64, i64>,
    /// Verifications handed out and not yet used, by producer id.
    verifications: HashMap<i64, Verification>,
}

impl ProducerStateManager {
    /// Loads the newest usable snapshot and replays the log after it; drops producers whose
    /// last batch is older than `expiration_ms`.
    pub fn load(
        dir: &Path,
        log: &PartitionLog,
        now_ms: i64,
        expiration_ms: i64,
    ) -> Result<ProducerStateManager, LogError> {
        let log_end = log.log_end_offset();
        let mut snapshots = list_snapshots(dir)?;
        let mut state = ProducerStateManager::empty(dir);
        let mut replay_from = log.log_start_offset();
        // Newest first; a snapshot past the log end describes data recovery cut off.
        snapshots.sort_unstable_by(|a, b| b.cmp(a));
        for offset in snapshots {
            let path = snapshot_path(dir, offset);
            if offset > log_end {
                std::fs::remove_file(&path)?;
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok())
            {
                Some(snap) if snap.offset == offset => {
                    for p in snap.producers {
                        if let Some(first) = p.current_txn_first_offset {
                            state.ongoing.insert(first, p.producer_id);
                        }
                        state.producers.insert(p.producer_id, p);
                    }
                    replay_from = offset.max(log.log_start_offset());
                    break;
                }
                _ => {
                    tracing::warn!(file = %path.display(), "unreadable producer snapshot; ignoring it");
                }
            }
        }
        let aborted = state.replay(log, replay_from, log_end)?;
        // The transaction index from the replay start on is exactly what the replay found.
        log.replace_aborted_txns(replay_from, &aborted)?;
        state.expire(now_ms, expiration_ms);
        Ok(state)
    }

    /// A state that knows no producer.
    fn empty(dir: &Path) -> ProducerStateManager {
        ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
            ongoing: BTreeMap::new(),
            verifications: HashMap::new(),
        }
    }

    /// Applies the batches in `[from, to)` as a follower would (no checks); returns the aborted
    /// transactions whose markers it met, in marker order.
    fn replay(
        &mut self,
        log: &PartitionLog,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTxn>, LogError> {
        let mut aborted = Vec::new();
        let mut offset = from;
        while offset < to {
            let read = log.read(offset, 1 << 20, true)?;
            if read.records.is_empty() {
                break;
            }
            let mut pos = 0;
            let bytes = &read.records[..];
            while pos < bytes.len() {
                let header = BatchHeader::parse(&bytes[pos..])?;
                let batch = &bytes[pos..pos + header.total_size()];
                pos += header.total_size();
                if header.last_offset() < offset {
                    continue;
                }
                offset = header.last_offset() + 1;
                if header.producer_id < 0 {
                    continue;
                }
                if !header.is_control() {
                    if let Some(p) = ProducerBatch::of(&header) {
                        self.record(
                            &p,
                            header.base_offset,
                            header.last_offset(),
                            header.max_timestamp,
                        );
                    }
                    continue;
                }
                match marker_of_batch(batch) {
                    Ok(Some(marker)) => {
                        let completed = self.record_marker(
                            header.producer_id,
                            header.producer_epoch,
                            &marker,
                            header.base_offset,
                            header.max_timestamp,
                        );
                        aborted.extend(completed.and_then(|c| c.aborted()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(dir = %self.dir.display(), offset = header.base_offset, error = %e, "skipping an unreadable control batch");
                    }
                }
            }
        }
        Ok(aborted)
    }

    /// Decides whether an idempotent batch is appended, a duplicate, or refused.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Verdict, ProducerError> {
        // Kafka 4: a producer this partition does not know may start at any sequence.
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(Verdict::Append);
        };
        if batch.epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                current: entry.epoch,
            });
        }
        if batch.epoch == entry.epoch {
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq)
            {
                return Ok(Verdict::Duplicate(dup.clone()));
            }
            if !in_sequence(entry.last_seq(), batch.first_seq) {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id: batch.producer_id,
                    first_seq: batch.first_seq,
                    last_seq: entry.last_seq(),
                });
            }
        } else if batch.first_seq != 0 {
            return Err(ProducerError::InvalidSequenceForNewEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                first_seq: batch.first_seq,
                current: entry.epoch,
            });
        }
        if entry.current_txn_first_offset.is_some() && !batch.transactional {
            return Err(ProducerError::TransactionalWriteExpected {
                producer_id: batch.producer_id,
            });
        }
        Ok(Verdict::Append)
    }

    /// What Kafka checks of a coordinator's own producer batch (a transactional offset commit):
    /// the epoch only, no sequence, no duplicates.
    pub fn check_epoch(&self, batch: &ProducerBatch) -> Result<(), ProducerError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(());
        };
        if batch.epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                current: entry.epoch,
            });
        }
        if entry.current_txn_first_offset.is_some() && !batch.transactional {
            return Err(ProducerError::TransactionalWriteExpected {
                producer_id: batch.producer_id,
            });
        }
        Ok(())
    }

    /// Whether a marker of `producer_id` at `epoch` may be appended (Kafka's
    /// `appendEndTxnMarker` checks): not from an older producer epoch, nor from an older
    /// coordinator.
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        marker: &EndTxnMarker,
    ) -> Result<(), ProducerError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a data batch that was appended at `first_offset..=last_offset`; a transactional
    /// one opens the producer's transaction if none is open, and uses up its verification.
    pub fn record(
        &mut self,
        batch: &ProducerBatch,
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
    ) {
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry::empty(batch.producer_id, batch.epoch, timestamp));
        entry.set_epoch(batch.epoch);
        if batch.transactional {
            if entry.current_txn_first_offset.is_none() {
                entry.current_txn_first_offset = Some(first_offset);
                self.ongoing.insert(first_offset, batch.producer_id);
            }
            self.verifications.remove(&batch.producer_id);
        }
        if entry.batches.len() == BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            first_offset,
            last_offset,
            timestamp,
        });
        entry.last_timestamp = timestamp;
    }

    /// Records a marker of `producer_id` appended at `offset` (Kafka's `appendEndTxnMarker` and
    /// `completeTxn`): the producer takes the marker's epochs, its open transaction (if any) ends
    /// and is returned, its verification is used up.
    pub fn record_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        marker: &EndTxnMarker,
        offset: i64,
        timestamp: i64,
    ) -> Option<CompletedTxn> {
        self.verifications.remove(&producer_id);
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::empty(producer_id, epoch, timestamp));
        entry.set_epoch(epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = timestamp;
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&first_offset);
        let last_stable_offset = self
            .ongoing
            .iter()
            .find(|(_, pid)| **pid != producer_id)
            .map_or(offset + 1, |(first, _)| *first);
        Some(CompletedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            is_aborted: marker.result == TxnResult::Abort,
            last_stable_offset,
        })
    }

    /// Whether `producer_id` has an open transaction in this partition.
    pub fn has_ongoing_txn(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|p| p.current_txn_first_offset.is_some())
    }

    /// The first offset of the earliest open transaction (Kafka's `firstUndecidedOffset`).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// The open transactions as (producer id, first offset), by first offset.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing
            .iter()
            .map(|(first, pid)| (*pid, *first))
            .collect()
    }

    /// Kafka's `maybeStartTransactionVerification`: None when `producer_id` already has an open
    /// transaction here (nothing to verify), else its pending guard, or a fresh one.
    pub fn start_verification(
        &mut self,
        producer_id: i64,
        now_ms: i64,
    ) -> Option<VerificationGuard> {
        if self.has_ongoing_txn(producer_id) {
            return None;
        }
        let verification = self
            .verifications
            .entry(producer_id)
            .or_insert_with(|| Verification {
                guard: VerificationGuard::fresh(),
                started_ms: now_ms,
            });
        Some(verification.guard)
    }

    /// Whether `guard` is the verification pending for `producer_id` (Kafka's
    /// `VerificationGuard.verify`; no guard verifies nothing).
    pub fn is_verified(&self, producer_id: i64, guard: Option<VerificationGuard>) -> bool {
        guard.is_some_and(|g| {
            self.verifications
                .get(&producer_id)
                .is_some_and(|v| v.guard == g)
        })
    }

    /// Forgets producers whose last batch is at least `expiration_ms` old
    /// (`producer.id.expiration.ms`) unless their transaction is open, and verifications that
    /// old; returns how many producers went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, p| {
            p.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(p.last_timestamp) < expiration_ms
        });
        self.verifications
            .retain(|_, v| now_ms.saturating_sub(v.started_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// The producers this partition knows, by id.
    pub fn producers(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    /// Points the state at the partition's new directory (its log moved to another log
    /// directory): later snapshots are written there.
    pub fn set_dir(&mut self, dir: &Path) {
        self.dir = dir.to_path_buf();
    }

    /// The state as of `offset`, which must be the log end offset read while holding the lock
    /// that serializes idempotent appends, ready to be written without it.
    pub fn snapshot(&self, offset: i64) -> ProducerSnapshot {
        let mut producers: Vec<ProducerEntry> = self.producers.values().cloned().collect();
        producers.sort_by_key(|p| p.producer_id);
        ProducerSnapshot {
            dir: self.dir.clone(),
            snapshot: Snapshot { offset, producers },
        }
    }
}

/// A copy of a partition's producer state as of one offset, to be written to disk.
#[derive(Debug)]
pub struct ProducerSnapshot {
    dir: PathBuf,
    snapshot: Snapshot,
}

impl ProducerSnapshot {
    /// The offset the state is as of.
    pub fn offset(&self) -> i64 {
        self.snapshot.offset
    }

    /// The same state, to be written into `dir` (a moved partition's new directory).
    pub fn in_dir(self, dir: &Path) -> ProducerSnapshot {
        ProducerSnapshot {
            dir: dir.to_path_buf(),
            snapshot: self.snapshot,
        }
    }

    /// Writes `<offset>.snapshot` atomically and prunes all but the newest snapshots (blocking:
    /// fsync, rename, unlink).
    pub fn write(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.snapshot)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        write_atomically(&self.dir, &snapshot_name(self.snapshot.offset), &bytes)?;
        let mut all = list_snapshots(&self.dir)?;
        all.sort_unstable_by(|a, b| b.cmp(a));
        for old in all.into_iter().skip(SNAPSHOTS_TO_KEEP) {
            crate::log::files::remove_if_exists(&snapshot_path(&self.dir, old))?;
        }
        Ok(())
    }
}

fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(snapshot_name(offset))
}

fn list_snapshots(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            if let Ok(offset) = stem.parse::<i64>() {
                out.push(offset);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{AppendOptions, LogConfig};
    use crate::test_support::{idempotent_batch, transactional_batch};
    use bytes::BytesMut;
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    fn pb(producer_id: i64, epoch: i16, first_seq: i32, count: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, count - 1),
            transactional: false,
        }
    }

    fn empty(dir: &Path) -> ProducerStateManager {
        ProducerStateManager::empty(dir)
    }

    #[test]
    fn sequences_duplicates_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        // An unknown producer may start anywhere (Kafka 4).
        assert_eq!(s.check(&pb(7, 0, 42, 3)), Ok(Verdict::Append));
        s.record(&pb(7, 0, 0, 3), 0, 2, 100);
        assert_eq!(s.check(&pb(7, 0, 3, 2)), Ok(Verdict::Append));
        s.record(&pb(7, 0, 3, 2), 3, 4, 101);
        // A retry of either batch is a duplicate with its original offsets.
        assert_eq!(
            s.check(&pb(7, 0, 0, 3)),
            Ok(Verdict::Duplicate(BatchMetadata {
                first_seq: 0,
                last_seq: 2,
                first_offset: 0,
                last_offset: 2,
                timestamp: 100
            }))
        );
        // A gap, and a repeat that does not match a batch exactly, are out of order.
        assert!(matches!(
            s.check(&pb(7, 0, 6, 1)),
            Err(ProducerError::OutOfOrderSequence { last_seq: 4, .. })
        ));
        assert!(matches!(
            s.check(&pb(7, 0, 1, 1)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        // An older epoch is fenced; a newer one must restart at 0.
        s.record(&pb(7, 2, 0, 1), 5, 5, 102);
        assert!(matches!(
            s.check(&pb(7, 1, 1, 1)),
            Err(ProducerError::InvalidProducerEpoch { current: 2, .. })
        ));
        assert!(matches!(
            s.check(&pb(7, 3, 5, 1)),
            Err(ProducerError::InvalidSequenceForNewEpoch { .. })
        ));
        assert_eq!(s.check(&pb(7, 3, 0, 1)), Ok(Verdict::Append));
        // The epoch bump forgot the old epoch's batches: only five of the new are kept.
        for i in 1..=6 {
            s.record(&pb(7, 2, i, 1), 5 + i as i64, 5 + i as i64, 103);
        }
        let e = s.producers().next().unwrap();
        assert_eq!(e.batches.len(), BATCHES_TO_RETAIN);
        assert_eq!(e.batches.front().unwrap().first_seq, 2);
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        s.record(&pb(1, 0, i32::MAX - 1, 2), 0, 1, 0);
        assert_eq!(s.check(&pb(1, 0, 0, 1)), Ok(Verdict::Append));
    }

    #[test]
    fn expiry_uses_the_last_batch_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        s.record(&pb(1, 0, 0, 1), 0, 0, 1_000);
        s.record(&pb(2, 0, 0, 1), 1, 1, 5_000);
        assert_eq!(s.expire(6_000, 2_000), 1);
        assert_eq!(
            s.producers().map(|p| p.producer_id).collect::<Vec<_>>(),
            vec![2]
        );
    }

    fn txn(producer_id: i64, epoch: i16, first_seq: i32, count: i32) -> ProducerBatch {
        ProducerBatch {
            transactional: true,
            ..pb(producer_id, epoch, first_seq, count)
        }
    }

    fn marker(result: TxnResult, coordinator_epoch: i32) -> EndTxnMarker {
        EndTxnMarker {
            result,
            coordinator_epoch,
        }
    }

    #[test]
    fn transactions_open_and_end_with_their_markers() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        assert_eq!(s.first_unstable_offset(), None);
        // Producer 1 opens a transaction at 10 and writes more into it; 2 opens one at 13.
        s.record(&txn(1, 0, 0, 3), 10, 12, 100);
        s.record(&txn(2, 0, 0, 1), 13, 13, 100);
        s.record(&txn(1, 0, 3, 2), 14, 15, 101);
        assert_eq!(s.first_unstable_offset(), Some(10));
        assert_eq!(s.open_transactions(), vec![(1, 10), (2, 13)]);
        assert!(s.has_ongoing_txn(1) && s.has_ongoing_txn(2) && !s.has_ongoing_txn(3));
        // A plain (idempotent) batch of a producer inside a transaction is refused.
        assert_eq!(
            s.check(&pb(1, 0, 5, 1)),
            Err(ProducerError::TransactionalWriteExpected { producer_id: 1 })
        );
        assert_eq!(s.check(&txn(1, 0, 5, 1)), Ok(Verdict::Append));
        // Aborting 1 while 2 is open: the index entry's last stable offset is 2's first offset.
        assert_eq!(s.check_marker(1, 0, &marker(TxnResult::Abort, 4)), Ok(()));
        let aborted = s
            .record_marker(1, 0, &marker(TxnResult::Abort, 4), 16, 102)
            .unwrap();
        assert_eq!(
            aborted,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 16,
                is_aborted: true,
                last_stable_offset: 13
            }
        );
        assert_eq!(
            aborted.aborted(),
            Some(AbortedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 16,
                last_stable_offset: 13
            })
        );
        assert_eq!(s.first_unstable_offset(), Some(13));
        // Committing 2, the last open one: the stable offset passes its marker.
        let committed = s
            .record_marker(2, 0, &marker(TxnResult::Commit, 4), 17, 103)
            .unwrap();
        assert!(!committed.is_aborted);
        assert_eq!(committed.aborted(), None);
        assert_eq!(
            (committed.first_offset, committed.last_stable_offset),
            (13, 18)
        );
        assert_eq!(s.first_unstable_offset(), None);
        // The same epoch goes on with the same sequences (transaction protocol v1); markers
        // never entered the five-batch window.
        let p1 = s.producers.get(&1).unwrap();
        assert_eq!((p1.epoch, p1.last_seq(), p1.coordinator_epoch), (0, 4, 4));
        assert_eq!(p1.batches.len(), 2);
        assert_eq!(s.check(&txn(1, 0, 5, 1)), Ok(Verdict::Append));
    }

    #[test]
    fn a_marker_without_a_transaction_ends_nothing_but_sets_the_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        // An unknown producer: the marker is still recorded.
        assert_eq!(
            s.record_marker(5, 3, &marker(TxnResult::Commit, 1), 0, 100),
            None
        );
        let p = s.producers().next().unwrap().clone();
        assert_eq!(
            (p.epoch, p.coordinator_epoch, p.current_txn_first_offset),
            (3, 1, None)
        );
        assert!(p.batches.is_empty());
        assert_eq!(s.first_unstable_offset(), None);
        // A known idempotent producer without a transaction here.
        s.record(&pb(6, 0, 0, 2), 1, 2, 100);
        assert_eq!(
            s.record_marker(6, 0, &marker(TxnResult::Abort, 1), 3, 101),
            None
        );
        assert_eq!(s.producers.get(&6).unwrap().last_seq(), 1);
    }

    #[test]
    fn stale_markers_are_refused_and_a_bumped_epoch_restarts_sequences() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        s.record(&txn(1, 2, 0, 3), 0, 2, 100);
        // An older producer epoch, or an older coordinator, is refused.
        assert_eq!(
            s.check_marker(1, 1, &marker(TxnResult::Commit, 0)),
            Err(ProducerError::InvalidProducerEpoch {
                producer_id: 1,
                epoch: 1,
                current: 2
            })
        );
        s.record_marker(1, 2, &marker(TxnResult::Commit, 5), 3, 101);
        assert_eq!(
            s.check_marker(1, 2, &marker(TxnResult::Commit, 4)),
            Err(ProducerError::CoordinatorFenced {
                producer_id: 1,
                coordinator_epoch: 4,
                current: 5
            })
        );
        s.record(&txn(1, 2, 3, 1), 4, 4, 102);
        // Transaction protocol v2: the abort bumps the epoch; the next batch starts at 0.
        assert_eq!(s.check_marker(1, 3, &marker(TxnResult::Abort, 5)), Ok(()));
        let aborted = s
            .record_marker(1, 3, &marker(TxnResult::Abort, 5), 5, 103)
            .unwrap();
        assert!(aborted.is_aborted);
        assert_eq!(s.producers.get(&1).unwrap().epoch, 3);
        assert!(matches!(
            s.check(&txn(1, 3, 4, 1)),
            Err(ProducerError::OutOfOrderSequence { last_seq: -1, .. })
        ));
        assert!(matches!(
            s.check(&txn(1, 2, 4, 1)),
            Err(ProducerError::InvalidProducerEpoch { current: 3, .. })
        ));
        assert_eq!(s.check(&txn(1, 3, 0, 1)), Ok(Verdict::Append));
        // A coordinator's own batch is checked for its epoch only.
        assert!(s.check_epoch(&txn(1, 2, 77, 1)).is_err());
        assert_eq!(s.check_epoch(&txn(1, 3, 77, 1)), Ok(()));
    }

    #[test]
    fn verification_guards_are_pending_until_used() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = empty(dir.path());
        let guard = s.start_verification(1, 1_000).unwrap();
        // Asked again before it was used: the same guard (concurrent requests share it).
        assert_eq!(s.start_verification(1, 1_001), Some(guard));
        let other = s.start_verification(2, 1_000).unwrap();
        assert_ne!(guard, other);
        assert!(s.is_verified(1, Some(guard)));
        assert!(!s.is_verified(1, Some(other)) && !s.is_verified(1, None));
        // The first transactional batch uses it; while the transaction is open none is needed.
        s.record(&txn(1, 0, 0, 1), 0, 0, 1_000);
        assert!(!s.is_verified(1, Some(guard)));
        assert_eq!(s.start_verification(1, 1_002), None);
        // A marker drops a pending verification: a stale one never opens a transaction.
        s.record_marker(2, 0, &marker(TxnResult::Abort, 0), 1, 1_003);
        assert!(!s.is_verified(2, Some(other)));
        let fresh = s.start_verification(2, 1_004).unwrap();
        assert_ne!(fresh, other);
        // Unused verifications expire with the producer expiration.
        s.expire(1_004 + 10, 10);
        assert!(!s.is_verified(2, Some(fresh)));
    }

    #[test]
    fn open_transactions_survive_expiry_and_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let opts = AppendOptions::leader(1_000, 0, false);
        let append = |log: &PartitionLog, bytes: &[u8]| {
            let mut b = BytesMut::from(bytes);
            log.append(&mut b, &opts).unwrap()
        };
        append(
            &log,
            &transactional_batch(1, 0, 0, 2, 1_000, Compression::None),
        );
        append(
            &log,
            &idempotent_batch(2, 0, 0, 1, 1_000, Compression::None),
        );
        let mut s = ProducerStateManager::load(dir.path(), &log, 0, i64::MAX).unwrap();
        assert_eq!(s.open_transactions(), vec![(1, 0)]);
        s.snapshot(log.log_end_offset()).write().unwrap();
        // Long idle: the idempotent producer expires, the one in a transaction does not.
        assert_eq!(s.expire(10_000_000, 1_000), 1);
        assert_eq!(s.open_transactions(), vec![(1, 0)]);
        // The snapshot carries the open transaction; the log after it ends it.
        append(
            &log,
            &crate::log::control::encode_marker(1, 0, TxnResult::Abort, 0, 1_000).unwrap(),
        );
        drop(log);
        log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let s = ProducerStateManager::load(dir.path(), &log, 0, i64::MAX).unwrap();
        assert!(s.open_transactions().is_empty());
        // ... and the replay entered the abort in the transaction index.
        assert_eq!(
            log.collect_aborted_txns(0, 4).unwrap(),
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 3,
                last_stable_offset: 4
            }]
        );
    }

    #[test]
    fn snapshots_written_before_transactions_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
        let old = r#"{"offset":0,"producers":[{"producer_id":9,"epoch":1,"batches":[{"first_seq":0,"last_seq":2,"first_offset":0,"last_offset":2,"timestamp":5}],"last_timestamp":5}]}"#;
        std::fs::write(dir.path().join(snapshot_name(0)), old).unwrap();
        let s = ProducerStateManager::load(dir.path(), &log, 0, i64::MAX).unwrap();
        let p = s.producers().next().unwrap();
        assert_eq!(
            (
                p.producer_id,
                p.current_txn_first_offset,
                p.coordinator_epoch
            ),
            (9, None, -1)
        );
        assert_eq!(p.last_seq(), 2);
    }

    /// What a client does next: a new batch, a retry of a recent one, a gap, an epoch bump,
    /// or a zombie with an older epoch.
    #[derive(Debug, Clone)]
    enum Op {
        Next { producer: usize, count: i32 },
        Retry { producer: usize, back: usize },
        Gap { producer: usize, skip: i32 },
        Bump { producer: usize },
        Stale { producer: usize },
        Snapshot,
        Crash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0usize..3, 1i32..4).prop_map(|(producer, count)| Op::Next { producer, count }),
            3 => (0usize..3, 0usize..7).prop_map(|(producer, back)| Op::Retry { producer, back }),
            1 => (0usize..3, 1i32..3).prop_map(|(producer, skip)| Op::Gap { producer, skip }),
            1 => (0usize..3).prop_map(|producer| Op::Bump { producer }),
            1 => (0usize..3).prop_map(|producer| Op::Stale { producer }),
            1 => Just(Op::Snapshot),
            1 => Just(Op::Crash),
        ]
    }

    /// The model: every batch a producer ever had appended, and what each send should get.
    #[derive(Default, Clone)]
    struct ModelProducer {
        epoch: i16,
        next_seq: i32,
        /// (epoch, first_seq, last_seq, first_offset, last_offset) of appended batches.
        appended: Vec<(i16, i32, i32, i64, i64)>,
        /// Batches sent (appended or not), for retries: (epoch, first_seq, count).
        sent: Vec<(i16, i32, i32)>,
    }

    fn expected(
        m: &ModelProducer,
        known: bool,
        epoch: i16,
        first: i32,
        count: i32,
    ) -> Result<Option<(i64, i64)>, ()> {
        let last = increment_sequence(first, count - 1);
        if !known {
            return Ok(None);
        }
        let cur = m.appended.last().map_or(-1, |b| b.0);
        if epoch < cur {
            return Err(());
        }
        if epoch > cur {
            return if first == 0 { Ok(None) } else { Err(()) };
        }
        let same_epoch: Vec<_> = m.appended.iter().filter(|b| b.0 == cur).collect();
        let recent = &same_epoch[same_epoch.len().saturating_sub(BATCHES_TO_RETAIN)..];
        if let Some(b) = recent.iter().find(|b| b.1 == first && b.2 == last) {
            return Ok(Some((b.3, b.4)));
        }
        let last_seq = same_epoch.last().map_or(-1, |b| b.2);
        if in_sequence(last_seq, first) {
            Ok(None)
        } else {
            Err(())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Random client behaviour against a real log: every verdict matches the model, the
        /// log holds each accepted batch exactly once, and after snapshots and crashes the
        /// reloaded state gives the same verdicts as the live one.
        #[test]
        fn matches_model_across_snapshots_and_crashes(ops in proptest::collection::vec(op(), 1..80)) {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig { segment_bytes: 400, index_interval_bytes: 64, ..LogConfig::default() };
            let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
            let mut state = ProducerStateManager::load(dir.path(), &log, 0, i64::MAX).unwrap();
            let mut model: Vec<ModelProducer> = vec![ModelProducer::default(); 3];
            let mut log_end = 0i64;
            for op in ops {
                let (producer, epoch, first, count) = match op {
                    Op::Snapshot => {
                        state.snapshot(log.log_end_offset()).write().unwrap();
                        continue;
                    }
                    Op::Crash => {
                        // No close, no snapshot: what kill -9 leaves behind.
                        drop(log);
                        log = PartitionLog::open(dir.path(), config, 0).unwrap();
                        let reloaded = ProducerStateManager::load(dir.path(), &log, 0, i64::MAX).unwrap();
                        let mut a: Vec<_> = state.producers().cloned().collect();
                        let mut b: Vec<_> = reloaded.producers().cloned().collect();
                        a.sort_by_key(|p| p.producer_id);
                        b.sort_by_key(|p| p.producer_id);
                        prop_assert_eq!(a, b);
                        state = reloaded;
                        continue;
                    }
                    Op::Next { producer, count } => {
                        let m = &model[producer];
                        (producer, m.epoch, m.next_seq, count)
                    }
                    Op::Retry { producer, back } => {
                        let m = &model[producer];
                        if m.sent.is_empty() { continue; }
                        let (e, f, c) = m.sent[m.sent.len() - 1 - back.min(m.sent.len() - 1)];
                        (producer, e, f, c)
                    }
                    Op::Gap { producer, skip } => {
                        let m = &model[producer];
                        (producer, m.epoch, increment_sequence(m.next_seq, skip), 1)
                    }
                    Op::Bump { producer } => {
                        model[producer].epoch += 1;
                        model[producer].next_seq = 0;
                        (producer, model[producer].epoch, 0, 1)
                    }
                    Op::Stale { producer } => {
                        let m = &model[producer];
                        if m.epoch == 0 { continue; }
                        (producer, m.epoch - 1, m.next_seq, 1)
                    }
                };
                let pid = 1000 + producer as i64;
                let m = &model[producer];
                let want = expected(m, !m.appended.is_empty(), epoch, first, count);
                let batch = pb(pid, epoch, first, count);
                let got = state.check(&batch);
                match (&want, &got) {
                    (Ok(Some((f, l))), Ok(Verdict::Duplicate(meta))) => {
                        prop_assert_eq!((*f, *l), (meta.first_offset, meta.last_offset));
                    }
                    (Ok(None), Ok(Verdict::Append)) => {
                        let mut bytes = BytesMut::from(&idempotent_batch(pid, epoch, first, count, 1_000, Compression::None)[..]);
                        let opts = AppendOptions::leader(1_000, 0, false);
                        let info = log.append(&mut bytes, &opts).unwrap();
                        prop_assert_eq!(info.base_offset, log_end);
                        log_end = info.last_offset + 1;
                        state.record(&batch, info.base_offset, info.last_offset, 1_000);
                        let m = &mut model[producer];
                        m.appended.push((epoch, first, batch.last_seq, info.base_offset, info.last_offset));
                        if epoch == m.epoch {
                            m.next_seq = increment_sequence(batch.last_seq, 1);
                        }
                    }
                    (Err(()), Err(_)) => {}
                    _ => prop_assert!(false, "model {:?} vs state {:?} for {:?}", want, got, batch),
                }
                model[producer].sent.push((epoch, first, count));
            }
        }
    }
}
