//! One partition: Kafka's `Partition` plus the replication half of `UnifiedLog`. It owns the
//! partition's log, its producer state, the high watermark, the last stable offset, the leader
//! epoch (with the log's epoch cache) and the wake-up of fetches parked on it, and it is the only
//! way in: handlers translate requests into these calls and errors into codes, nothing more.
//!
//! The API is the one replication and transactions need:
//! - [`Partition::append_as_leader`]: Kafka's `LogValidator` checks (`validator`), idempotence
//!   and transaction state (`producer_state`), offsets assigned by the log, then the high
//!   watermark moved by the replica policy; [`Partition::append_as_leader_verified`] is the same
//!   for a client batch that may open a transaction (KIP-890 verification, see below);
//! - [`Partition::write_txn_marker`]: a transaction coordinator's commit or abort marker;
//! - [`Partition::append_as_follower`]: a leader's batches copied with their offsets;
//! - [`Partition::read`]: whole batches up to an isolation bound: the log end (a follower), the
//!   high watermark (read_uncommitted) or the last stable offset (read_committed, with the
//!   aborted transactions the returned records overlap);
//! - [`Partition::truncate_to`], [`Partition::update_high_watermark`], and the epoch queries.
//!
//! Replica policy: this node is the only replica, the leader at epoch 0, so the high watermark
//! is the log end offset after every leader append (Kafka's HW with an ISR of one). That is
//! this layer's policy, not an invariant of the log: a follower's high watermark comes from its
//! leader through `update_high_watermark`.
//!
//! Transactions (the partition half; the coordinator is elsewhere): a client's transactional
//! batch may open a transaction here only with the [`VerificationGuard`] that
//! [`Partition::start_verification`] handed out for its producer (Kafka's
//! `maybeStartTransactionVerification`; the caller confirms the transaction with the coordinator
//! in between), else INVALID_TXN_STATE; later batches of the open transaction need none. A
//! coordinator's own transactional batches (transactional offset commits) are checked for their
//! epoch only. A marker ends the producer's open transaction; an abort enters the transaction in
//! the log's transaction index with the marker, under the same log lock hold. The first unstable
//! offset is the first offset of the earliest open transaction (never below the log start), and
//! the last stable offset is `min(first unstable offset, high watermark)`.
//!
//! Invariants (checked with `debug_assert!` where they change): `log_start_offset <=
//! last_stable_offset <= high_watermark <= log_end_offset`; the producer state reflects exactly
//! the producer batches and markers below the log end, and the transaction index holds exactly
//! the aborted transactions whose markers are below it.
//!
//! The log sits behind a swappable handle (`RwLock<Arc<PartitionLog>>`, read like `config`:
//! the `Arc` is cloned out, the lock held for nothing else) so a replica move can put a copy in
//! another log directory in its place while every `Arc<Partition>` stays valid; see
//! `relocation` for the swap and how an append that meets a sealed log runs again on its
//! successor.
//!
//! Lock order: `swap` (a move's final step, config changes, deletion) before `last_snapshot`
//! before the log's maintenance lock; `producers` (the partition's state lock, held across a
//! producer batch's or marker's check, append and record, and across truncation) before the
//! log's own locks, and never held while waiting for `swap`.
//! `config` is read-mostly: its `Arc` is cloned out and the lock is never held across anything
//! else. The high watermark, first unstable offset and leader epoch are atomics, so fetches take
//! no partition lock at all: the first unstable offset is stored (under `producers`) before the
//! high watermark moves past an append, and readers load the high watermark first, so a reader
//! never sees an open transaction's records below its last stable offset. Batches without a
//! producer id take no partition lock either; the high watermark only moves forward
//! (`fetch_max`) so concurrent appends cannot move it back.
//!
//! Blocking: appends and reads touch the page cache only. Producer snapshots (at segment roll)
//! are written by the broker's [`Background`] after the state was copied under the lock and
//! the log was synced up to the snapshot's offset (so a snapshot never vouches for transaction
//! index entries a power loss could still take);
//! `wait_durable`, `delete_records`, `apply_retention`, `truncate_to`, `flush` and `close` block
//! on the disk and are called off the async workers.

pub mod error;
pub mod producer_state;
mod relocation;
mod validator;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::log::control::{encode_marker, marker_of_batch};
use crate::log::{
    validate_stored_batches, AbortedTxn, AppendInfo, AppendOptions, BatchHeader, EndTxnMarker,
    LogError, PartitionLog, TxnResult, ValidBatches,
};
use crate::tasks::Background;
use crate::topics::config::{TimestampType, TopicConfig};

pub use error::PartitionError;
pub use producer_state::{
    BatchMetadata, CompletedTxn, ProducerBatch, ProducerEntry, ProducerError, ProducerSnapshot,
    ProducerStateManager, Verdict, VerificationGuard,
};
pub use relocation::{FutureReplica, LogReplaced, ReplaceFailed};

/// Who is appending (Kafka's `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: every `LogValidator` rule applies.
    Client,
    /// A coordinator writing its own records (the group log): structure and CRC only.
    Coordinator,
}

/// How far a reader may read (Kafka's `FetchIsolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the log end: a follower copying its leader.
    LogEnd,
    /// Up to the high watermark: a read_uncommitted consumer.
    HighWatermark,
    /// Up to the last stable offset: a read_committed consumer.
    TxnCommitted,
}

/// A read of one partition.
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    /// The first offset wanted.
    pub offset: i64,
    /// At most this many bytes, except that the first batch may be returned whole (KIP-74).
    pub max_bytes: usize,
    /// Return the first batch whole even when larger than `max_bytes`.
    pub min_one_batch: bool,
    /// How far to read.
    pub isolation: Isolation,
}

/// What a read found, with the partition's offsets as of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    /// Whole stored batches, possibly empty.
    pub records: Bytes,
    /// The high watermark.
    pub high_watermark: i64,
    /// The last stable offset.
    pub last_stable_offset: i64,
    /// The log start offset.
    pub log_start_offset: i64,
    /// For a read_committed read only: the aborted transactions that overlap the offsets from
    /// the fetch offset to the end of the returned records (empty when none, or no records), as
    /// Kafka's FetchResponse `AbortedTransactions` (producer id, first offset).
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
}

/// A transaction marker to write (one partition's share of Kafka's WriteTxnMarkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// The producer epoch the coordinator ends it with (transaction protocol v2: bumped).
    pub producer_epoch: i16,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
    /// Commit or abort.
    pub result: TxnResult,
}

/// A leader append's outcome: stored now, or a retry of a batch stored before.
enum Appended {
    New(AppendInfo),
    Duplicate(AppendInfo),
}

/// Counters of one partition (for metrics).
#[derive(Debug, Default)]
pub struct PartitionCounters {
    /// Batches appended (leader and follower).
    pub appended_batches: AtomicU64,
    /// Records appended.
    pub appended_records: AtomicU64,
    /// Bytes appended.
    pub appended_bytes: AtomicU64,
    /// Appends refused (validation, idempotence, storage).
    pub failed_appends: AtomicU64,
}

/// One partition of a topic (or of an internal log such as `__consumer_offsets`).
#[derive(Debug)]
pub struct Partition {
    topic: String,
    index: i32,
    /// The log, behind a handle a replica move swaps (see `relocation`): every use clones the
    /// `Arc` out under a read lock held for nothing else, as `config` is read.
    log: RwLock<Arc<PartitionLog>>,
    /// Held by a replica move from just before it seals the log until its successor is in
    /// place (or the seal is lifted), and by whatever must not interleave with that (config
    /// changes, deletion).
    swap: Mutex<()>,
    /// A move holds `swap` now: a sealed log means "wait for the successor".
    swapping: AtomicBool,
    /// The copy being built in another log directory, if a move is under way.
    future: Mutex<Option<Arc<FutureReplica>>>,
    /// Truncations so far: a move that saw one while copying starts over.
    truncations: AtomicU64,
    config: RwLock<Arc<TopicConfig>>,
    producers: Mutex<ProducerStateManager>,
    high_watermark: AtomicI64,
    /// The first offset of the earliest open transaction, `i64::MAX` while none is open.
    first_unstable_offset: AtomicI64,
    leader_epoch: AtomicI32,
    appended: Notify,
    counters: PartitionCounters,
    clock: SharedClock,
    background: Arc<dyn Background>,
    producer_expiration_ms: i64,
    /// Serializes producer snapshot writes (two rolls in quick succession start two) and holds
    /// the offset of the last one written, so an older one never lands after a newer one.
    last_snapshot: Mutex<i64>,
}

/// What opening a partition needs besides its directory.
#[derive(Debug, Clone)]
pub struct PartitionContext {
    /// The broker's clock.
    pub clock: SharedClock,
    /// Where blocking work (producer snapshots) runs.
    pub background: Arc<dyn Background>,
    /// `producer.id.expiration.ms`.
    pub producer_expiration_ms: i64,
}

impl Partition {
    /// Opens (creating, recovering) the partition in `dir` and rebuilds its producer state.
    pub fn open(
        dir: &Path,
        topic: &str,
        index: i32,
        config: Arc<TopicConfig>,
        ctx: &PartitionContext,
    ) -> Result<Partition, LogError> {
        let now = ctx.clock.now_ms();
        let log = PartitionLog::open(dir, config.segment, now)?;
        let producers = ProducerStateManager::load(dir, &log, now, ctx.producer_expiration_ms)?;
        let log_end = log.log_end_offset();
        let epoch = log.latest_epoch().unwrap_or(0);
        let first_unstable = first_unstable_offset(&producers, &log);
        Ok(Partition {
            topic: topic.to_string(),
            index,
            config: RwLock::new(config),
            producers: Mutex::new(producers),
            // Single replica: everything in the log is replicated to every replica.
            high_watermark: AtomicI64::new(log_end),
            first_unstable_offset: AtomicI64::new(first_unstable),
            leader_epoch: AtomicI32::new(epoch),
            appended: Notify::new(),
            counters: PartitionCounters::default(),
            clock: ctx.clock.clone(),
            background: ctx.background.clone(),
            producer_expiration_ms: ctx.producer_expiration_ms,
            last_snapshot: Mutex::new(-1),
            log: RwLock::new(Arc::new(log)),
            swap: Mutex::new(()),
            swapping: AtomicBool::new(false),
            future: Mutex::new(None),
            truncations: AtomicU64::new(0),
        })
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The topic's settings as this partition applies them.
    pub fn config(&self) -> Arc<TopicConfig> {
        self.config.read().clone()
    }

    /// Replaces the topic's settings (an altered config); segment settings apply from the next
    /// append on.
    pub fn set_config(&self, config: Arc<TopicConfig>) {
        // Not between a move's reading of the config and its successor log taking over.
        let _swap = self.swap.lock();
        self.log().set_config(config.segment);
        *self.config.write() = config;
    }

    /// Notified after every append, so parked fetches answer at once.
    pub fn appended(&self) -> &Notify {
        &self.appended
    }

    /// The partition's counters.
    pub fn counters(&self) -> &PartitionCounters {
        &self.counters
    }

    /// The partition's current log, for the cleaner (`crate::cleaner`), which replaces its
    /// segments, and replica moves, which copy it. A move may replace it: hold the `Arc` only
    /// for one operation.
    pub fn log(&self) -> Arc<PartitionLog> {
        self.log.read().clone()
    }

    /// The partition directory (it changes when the partition moves to another log directory).
    pub fn dir(&self) -> PathBuf {
        self.log().dir().to_path_buf()
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log().log_start_offset()
    }

    /// The offset the next leader-appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log().log_end_offset()
    }

    /// The high watermark: what every replica has; what consumers may read.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The last stable offset: the first offset of the earliest open transaction, else the
    /// high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.stable_offsets().1
    }

    /// (high watermark, last stable offset), read in the order that keeps an open transaction's
    /// records above the last stable offset (see the module docs).
    fn stable_offsets(&self) -> (i64, i64) {
        let high_watermark = self.high_watermark();
        let first_unstable = self.first_unstable_offset.load(Ordering::Acquire);
        (high_watermark, first_unstable.min(high_watermark))
    }

    /// The current leader epoch (0 on a single node).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Kafka's `endOffsetForEpoch` (OffsetForLeaderEpoch).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        // A Kafka leader caches its epoch the moment it leads (`makeLeader`); this log records
        // an epoch with its first batch, so the current epoch of a log with none yet ends here.
        let log = self.log();
        if epoch == self.leader_epoch() && log.latest_epoch().is_none_or(|e| e < epoch) {
            return (epoch, log.log_end_offset());
        }
        log.end_offset_for_epoch(epoch)
    }

    /// Appends a client's (or a coordinator's) batch as the leader: validation, idempotence,
    /// offsets from the log end, the high watermark moved, parked fetches woken. A retried
    /// idempotent batch is answered with its original offsets and not stored again. A client's
    /// transactional batch is refused (INVALID_TXN_STATE) unless its producer's transaction is
    /// already open here: opening one takes [`Partition::append_as_leader_verified`]. A
    /// coordinator's control batch is a transaction marker (see [`Partition::write_txn_marker`]).
    pub fn append_as_leader(
        self: &Arc<Self>,
        records: &[u8],
        origin: AppendOrigin,
    ) -> Result<AppendInfo, PartitionError> {
        self.append_leader(records, origin, None)
    }

    /// [`Partition::append_as_leader`] for a client's batch (`AppendOrigin::Client`) that may
    /// open a transaction: it may if `guard` is the verification [`Partition::start_verification`]
    /// handed out for its producer and still pending (the append uses it up).
    pub fn append_as_leader_verified(
        self: &Arc<Self>,
        records: &[u8],
        guard: Option<VerificationGuard>,
    ) -> Result<AppendInfo, PartitionError> {
        self.append_leader(records, AppendOrigin::Client, guard)
    }

    /// Writes a transaction marker as the leader (offset from the log end, current leader
    /// epoch), on any topic including the internal ones: an older producer epoch is refused
    /// (INVALID_PRODUCER_EPOCH), an older coordinator epoch too (TRANSACTION_COORDINATOR_FENCED),
    /// with nothing appended. The producer's open transaction here, if any, ends (an aborted one
    /// is entered in the transaction index); its pending verification is dropped; the first
    /// unstable offset and high watermark move and parked fetches wake.
    pub fn write_txn_marker(
        self: &Arc<Self>,
        marker: TxnMarker,
    ) -> Result<AppendInfo, PartitionError> {
        let batch = encode_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.result,
            marker.coordinator_epoch,
            self.clock.now_ms(),
        )?;
        self.append_leader(&batch, AppendOrigin::Coordinator, None)
    }

    /// Kafka's `maybeStartTransactionVerification`: None when `producer_id` already has an open
    /// transaction here (its batches need no verification), else the guard a transactional
    /// batch opening one must present (the one still pending for the producer, or a fresh one).
    pub fn start_verification(
        &self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Option<VerificationGuard> {
        let guard = self
            .producers
            .lock()
            .start_verification(producer_id, self.clock.now_ms());
        tracing::trace!(topic = %self.topic, partition = self.index, producer_id, producer_epoch, ?guard, "transaction verification");
        guard
    }

    /// The open transactions as (producer id, first offset), by first offset.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.producers.lock().open_transactions()
    }

    fn append_leader(
        self: &Arc<Self>,
        records: &[u8],
        origin: AppendOrigin,
        guard: Option<VerificationGuard>,
    ) -> Result<AppendInfo, PartitionError> {
        // A refused append changed nothing (the seal is checked before offsets are assigned or
        // producer state recorded), so it runs again whole on the successor log.
        let appended = self.on_current_log(|log| self.leader_append(log, records, origin, guard));
        match appended {
            Ok(Appended::New(info)) => {
                self.after_append(&info, records.len());
                Ok(info)
            }
            Ok(Appended::Duplicate(info)) => Ok(info),
            Err(e) => {
                self.counters.failed_appends.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn leader_append(
        self: &Arc<Self>,
        log: &PartitionLog,
        records: &[u8],
        origin: AppendOrigin,
        guard: Option<VerificationGuard>,
    ) -> Result<Appended, PartitionError> {
        let config = self.config();
        let now = self.clock.now_ms();
        let valid = validator::validate(records, &config, origin, now, &self.topic, self.index)?;
        let mut buf = records.to_vec();
        let opts = AppendOptions::leader(
            now,
            self.leader_epoch(),
            config.timestamp_type == TimestampType::LogAppendTime,
        );
        // A producer (or a coordinator writing for one) sends one batch per partition.
        let (header, producer) = match valid.headers() {
            [only] if only.producer_id >= 0 => (*only, ProducerBatch::of(only)),
            many => {
                if many.iter().any(|h| h.producer_id >= 0) {
                    return Err(PartitionError::MultipleBatches);
                }
                return Ok(Appended::New(log.append_validated(&mut buf, valid, &opts)?));
            }
        };
        let producer = match producer {
            Some(p) if !header.is_control() => p,
            // The validator refuses control batches from clients: a coordinator's marker.
            _ => {
                let marker = marker_of_batch(&buf)?;
                let mut producers = self.producers.lock();
                let info = self.append_marker(
                    log,
                    &mut producers,
                    &header,
                    marker,
                    &mut buf,
                    valid,
                    &opts,
                )?;
                return Ok(Appended::New(info));
            }
        };
        // Check, append and record under one lock so the state always matches the log.
        let mut producers = self.producers.lock();
        match origin {
            AppendOrigin::Client => {
                if let Verdict::Duplicate(original) = producers.check(&producer)? {
                    return Ok(Appended::Duplicate(AppendInfo {
                        base_offset: original.first_offset,
                        last_offset: original.last_offset,
                        log_append_time_ms: -1,
                        log_start_offset: log.log_start_offset(),
                        max_timestamp: original.timestamp,
                        record_count: original.last_offset - original.first_offset + 1,
                        rolled: false,
                    }));
                }
                // KIP-890: a transaction opens here only if its coordinator verified it.
                if producer.transactional
                    && !producers.has_ongoing_txn(producer.producer_id)
                    && !producers.is_verified(producer.producer_id, guard)
                {
                    return Err(PartitionError::InvalidTxnState {
                        producer_id: producer.producer_id,
                    });
                }
            }
            // A coordinator's transactional offset commit: its epoch only, as in Kafka.
            AppendOrigin::Coordinator => producers.check_epoch(&producer)?,
        }
        let info = log.append_validated_and_index(&mut buf, valid, &opts, |info, _| {
            producers.record(
                &producer,
                info.base_offset,
                info.last_offset,
                info.max_timestamp,
            );
            Vec::new()
        })?;
        self.store_first_unstable(&producers);
        Ok(Appended::New(info))
    }

    /// Appends a coordinator's marker batch under `producers`: checked first (nothing appended
    /// on a refusal), then appended with its transaction index entry, then recorded.
    #[allow(clippy::too_many_arguments)]
    fn append_marker(
        &self,
        log: &PartitionLog,
        producers: &mut ProducerStateManager,
        header: &BatchHeader,
        marker: Option<EndTxnMarker>,
        buf: &mut [u8],
        valid: ValidBatches,
        opts: &AppendOptions,
    ) -> Result<AppendInfo, PartitionError> {
        let (pid, epoch) = (header.producer_id, header.producer_epoch);
        if let Some(marker) = &marker {
            producers.check_marker(pid, epoch, marker)?;
        }
        let info = log.append_validated_and_index(buf, valid, opts, |info, _| {
            // A control batch without a marker (never written by Rivulet) ends nothing.
            marker
                .and_then(|m| {
                    producers.record_marker(pid, epoch, &m, info.base_offset, info.max_timestamp)
                })
                .and_then(|completed| completed.aborted())
                .into_iter()
                .collect()
        })?;
        self.store_first_unstable(producers);
        Ok(info)
    }

    /// Publishes the producer state's first unstable offset (call under `producers`, after the
    /// state changed and before the high watermark moves past the change).
    fn store_first_unstable(&self, producers: &ProducerStateManager) {
        self.first_unstable_offset.store(
            first_unstable_offset(producers, &self.log()),
            Ordering::Release,
        );
    }

    /// [`Partition::store_first_unstable`] after the log start moved.
    fn refresh_first_unstable(&self) {
        let producers = self.producers.lock();
        self.store_first_unstable(&producers);
    }

    /// Appends a leader's batches with their offsets, epochs and timestamps (a follower). The
    /// producer state follows; the high watermark does not (the leader sends it).
    pub fn append_as_follower(&self, records: &[u8]) -> Result<AppendInfo, PartitionError> {
        let valid = validate_stored_batches(records)?;
        let headers: Vec<_> = valid.headers().to_vec();
        // The leader wrote these markers already: decoded, never refused (Kafka's REPLICATION).
        let mut markers: Vec<Option<EndTxnMarker>> = Vec::with_capacity(headers.len());
        let mut position = 0;
        for h in &headers {
            let batch = &records[position..position + h.total_size()];
            position += h.total_size();
            markers.push(if h.is_control() && h.producer_id >= 0 {
                marker_of_batch(batch).unwrap_or_else(|e| {
                    tracing::warn!(topic = %self.topic, partition = self.index, offset = h.base_offset, error = %e, "unreadable control batch from the leader");
                    None
                })
            } else {
                None
            });
        }
        let info = self.on_current_log(|log| {
            let mut buf = records.to_vec();
            let mut producers = self.producers.lock();
            let info = log.append_validated_and_index(
                &mut buf,
                valid.clone(),
                &AppendOptions::follower(self.clock.now_ms()),
                |_, stored: &[BatchHeader]| {
                    let mut aborted = Vec::new();
                    for (h, marker) in stored.iter().zip(&markers) {
                        if h.is_control() {
                            let Some(marker) = marker else { continue };
                            let completed = producers.record_marker(
                                h.producer_id,
                                h.producer_epoch,
                                marker,
                                h.base_offset,
                                h.max_timestamp,
                            );
                            aborted.extend(completed.and_then(|c| c.aborted()));
                        } else if let Some(p) = ProducerBatch::of(h) {
                            producers.record(&p, h.base_offset, h.last_offset(), h.max_timestamp);
                        }
                    }
                    aborted
                },
            )?;
            self.store_first_unstable(&producers);
            Ok::<_, LogError>(info)
        })?;
        self.counters
            .appended_batches
            .fetch_add(headers.len() as u64, Ordering::Relaxed);
        self.counters
            .appended_records
            .fetch_add(info.record_count.max(0) as u64, Ordering::Relaxed);
        self.counters
            .appended_bytes
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.appended.notify_waiters();
        Ok(info)
    }

    fn after_append(self: &Arc<Self>, info: &AppendInfo, bytes: usize) {
        self.counters
            .appended_batches
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .appended_records
            .fetch_add(info.record_count as u64, Ordering::Relaxed);
        self.counters
            .appended_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        // The single-replica policy: the only replica has it, so it is replicated.
        self.high_watermark
            .fetch_max(info.last_offset + 1, Ordering::AcqRel);
        self.check_offsets();
        if info.rolled {
            // Kafka snapshots producer state when a segment rolls, so a restart replays at most
            // the active segment. The copy is taken under the lock, the write off this thread.
            let this = Arc::clone(self);
            self.background.spawn_blocking(
                "producer snapshot",
                Box::new(move || this.write_producer_snapshot()),
            );
        }
        self.appended.notify_waiters();
    }

    /// Copies the producer state as of the log end (under the lock), makes the log durable up
    /// to there (the replay after a crash rebuilds transaction index entries only from the
    /// snapshot on), and writes it (blocking).
    fn write_producer_snapshot(&self) {
        let mut last = self.last_snapshot.lock();
        let log = self.log();
        let snapshot = {
            let producers = self.producers.lock();
            producers.snapshot(log.log_end_offset())
        };
        // A failed snapshot only lengthens the replay at the next start; the log stays the truth.
        // (A move holds `last_snapshot` while it swaps logs, so `log` is current throughout.)
        if let Err(e) = log.sync(snapshot.offset()) {
            tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "no producer snapshot: the log could not be synced");
            return;
        }
        if snapshot.offset() <= *last {
            return;
        }
        match snapshot.write() {
            Ok(()) => *last = snapshot.offset(),
            Err(e) => {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "producer snapshot failed")
            }
        }
    }

    /// Reads whole batches up to the isolation bound (see [`FetchParams`]).
    pub fn read(&self, params: FetchParams) -> Result<ReadInfo, LogError> {
        let (high_watermark, last_stable_offset) = self.stable_offsets();
        let bound = match params.isolation {
            Isolation::LogEnd => i64::MAX,
            Isolation::HighWatermark => high_watermark,
            Isolation::TxnCommitted => last_stable_offset,
        };
        // A log a move sealed still serves reads, the same offsets as its successor.
        let log = self.log();
        let read =
            log.read_bounded(params.offset, params.max_bytes, params.min_one_batch, bound)?;
        let aborted_transactions = match params.isolation {
            Isolation::TxnCommitted => Some(match end_offset(&read.records)? {
                // Kafka's fetch upper bound: the offset after the returned batches.
                Some(upper) => log.collect_aborted_txns(params.offset, upper)?,
                None => Vec::new(),
            }),
            _ => None,
        };
        Ok(ReadInfo {
            records: read.records,
            high_watermark,
            last_stable_offset,
            log_start_offset: read.log_start_offset,
            aborted_transactions,
        })
    }

    /// The highest offset a reader with `isolation` may see answered (ListOffsets latest).
    pub fn fetchable_end(&self, isolation: Isolation) -> i64 {
        match isolation {
            Isolation::LogEnd => self.log_end_offset(),
            Isolation::HighWatermark => self.high_watermark(),
            Isolation::TxnCommitted => self.last_stable_offset(),
        }
    }

    /// ListOffsets by timestamp: the first record at or after `target` below the isolation
    /// bound (Kafka's `fetchOffsetByTimestamp`), as (offset, timestamp).
    pub fn offset_for_timestamp(
        &self,
        target: i64,
        isolation: Isolation,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let bound = self.fetchable_end(isolation);
        Ok(self
            .log()
            .offset_for_timestamp(target)?
            .filter(|(offset, _)| *offset < bound))
    }

    /// ListOffsets -3: the record with the largest timestamp, as (offset, timestamp).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        self.log().max_timestamp_offset()
    }

    /// Blocks until everything below `end` is fsynced (acks=all; group commit with concurrent
    /// callers).
    pub fn wait_durable(&self, end: i64) -> Result<(), LogError> {
        self.sync_current(end)
    }

    /// Kafka's `maybeIncrementHighWatermark` for a follower: the leader's high watermark, capped
    /// at this log's end. Returns the high watermark afterwards.
    pub fn update_high_watermark(&self, offset: i64) -> i64 {
        let hw = offset.clamp(self.log_start_offset(), self.log_end_offset());
        self.high_watermark.store(hw, Ordering::Release);
        self.check_offsets();
        self.appended.notify_waiters();
        hw
    }

    /// Truncates the log to `offset` (whole batches below it stay; see
    /// `PartitionLog::truncate_to`), rebuilds the producer state for what is left and caps the
    /// high watermark. Blocking.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, PartitionError> {
        let (mut producers, log, end) = loop {
            let producers = self.producers.lock();
            // Counted before the cut: a move that copied what is cut starts over.
            self.truncations.fetch_add(1, Ordering::AcqRel);
            let log = self.log();
            match log.truncate_to(offset) {
                Ok(end) => break (producers, log, end),
                Err(e) => {
                    // Never wait for a move's swap holding `producers`: the swap takes it.
                    drop(producers);
                    if !(e.is_sealed() && self.wait_out_move(&log)) {
                        return Err(e.into());
                    }
                }
            }
        };
        *producers = ProducerStateManager::load(
            log.dir(),
            &log,
            self.clock.now_ms(),
            self.producer_expiration_ms,
        )?;
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        self.store_first_unstable(&producers);
        self.check_offsets();
        Ok(end)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high watermark),
    /// persisted before this returns. Compact-only topics refuse (POLICY_VIOLATION); an offset
    /// past the high watermark is OFFSET_OUT_OF_RANGE. Returns the low watermark. Blocking.
    pub fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        if !self.config().cleanup_policy.delete {
            return Err(PartitionError::PolicyViolation(format!(
                "Records of partition {}-{} can not be deleted due to the configured policy",
                self.topic, self.index
            )));
        }
        let hw = self.high_watermark();
        let offset = if offset == -1 { hw } else { offset };
        if offset < 0 || offset > hw {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset(),
                end: hw,
            }
            .into());
        }
        let start = self.on_current_log(|log| log.delete_records_before(offset))?;
        self.refresh_first_unstable();
        Ok(start)
    }

    /// Retention by `retention.ms` and `retention.bytes`, for topics whose policy includes
    /// `delete`; returns how many segments went. Blocking.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let config = self.config();
        if !config.cleanup_policy.delete {
            return Ok(0);
        }
        let deleted = self.on_current_log(|log| {
            log.apply_retention(now_ms, config.retention_ms, config.retention_bytes)
        })?;
        if deleted > 0 {
            self.refresh_first_unstable();
        }
        Ok(deleted)
    }

    /// Deletes the durable segments wholly below `offset` (an internal log whose snapshots cover
    /// them); returns how many went. Blocking.
    pub fn delete_segments_before(&self, offset: i64) -> Result<usize, LogError> {
        let deleted = self.on_current_log(|log| log.delete_segments_before(offset))?;
        if deleted > 0 {
            self.refresh_first_unstable();
        }
        Ok(deleted)
    }

    /// Forgets producers idle for `producer.id.expiration.ms`; returns how many.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        self.producers
            .lock()
            .expire(now_ms, self.producer_expiration_ms)
    }

    /// The producers this partition knows (DescribeProducers, with each one's open transaction's
    /// first offset), by producer id.
    pub fn producers(&self) -> Vec<ProducerEntry> {
        let mut all: Vec<ProducerEntry> = self.producers.lock().producers().cloned().collect();
        all.sort_by_key(|p| p.producer_id);
        all
    }

    /// Fsyncs everything appended so far (the periodic flush). Blocking.
    pub fn flush(&self) -> Result<(), LogError> {
        self.sync_current(i64::MAX)
    }

    /// Snapshots the producer state at the log end, then flushes and closes the log (clean
    /// shutdown). Blocking.
    pub fn close(&self) -> Result<(), LogError> {
        self.write_producer_snapshot();
        self.log().close()
    }

    /// Deletes the partition's files (topic deletion) and wakes parked fetches so they notice.
    /// Blocking.
    pub fn delete(&self) -> Result<(), LogError> {
        // Not in the middle of a move's swap; a move under way stops at its next step.
        let _swap = self.swap.lock();
        self.cancel_future();
        let result = self.log().delete();
        self.appended.notify_waiters();
        result
    }

    /// The bytes of the partition's segments (DescribeLogDirs).
    pub fn size_bytes(&self) -> u64 {
        self.log().size_bytes()
    }

    /// Number of fsync rounds the log performed (tests, metrics).
    pub fn fsync_rounds(&self) -> u64 {
        self.log().fsync_rounds()
    }

    fn check_offsets(&self) {
        debug_assert!(self.last_stable_offset() <= self.high_watermark());
        debug_assert!(self.high_watermark() <= self.log_end_offset());
    }
}

/// The first unstable offset to publish: the earliest open transaction's first offset, never
/// below the log start (Kafka's `maybeIncrementFirstUnstableOffset`), `i64::MAX` for none.
fn first_unstable_offset(producers: &ProducerStateManager, log: &PartitionLog) -> i64 {
    producers
        .first_unstable_offset()
        .map_or(i64::MAX, |first| first.max(log.log_start_offset()))
}

/// The offset after the last of `records` (whole stored batches), None when there are none.
fn end_offset(records: &[u8]) -> Result<Option<i64>, LogError> {
    let mut position = 0;
    let mut end = None;
    while position < records.len() {
        let header = BatchHeader::parse(&records[position..])?;
        end = Some(header.last_offset() + 1);
        position += header.total_size();
    }
    Ok(end)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_proptests;
