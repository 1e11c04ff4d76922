//! Per-partition producer state: what makes idempotent produce exactly-once.
//!
//! For every producer id that wrote to the partition, the epoch and the metadata (sequence
//! range, offsets, timestamp) of its last five batches, as Kafka's `ProducerStateManager` keeps
//! them. A batch that repeats one of those five is a retry: it is answered with the original
//! offsets and not appended again. Otherwise its first sequence must follow the last one, or
//! start at 0 after an epoch bump.
//!
//! Durability: `<20-digit offset>.snapshot` files in the partition directory hold the state as
//! of that offset; they are written (atomically) after the log rolls a segment and on clean
//! shutdown. On open, the newest snapshot not past the log end is loaded and the batches after
//! it are replayed from the log itself, so the state after a `kill -9` is exactly what the log
//! holds, and a batch retried after the crash is still recognised. A snapshot is taken in two
//! steps, so no file I/O happens under the partition's lock: [`ProducerStateManager::snapshot`]
//! copies the state as of the log end under the lock, [`ProducerSnapshot::write`] writes it
//! after.
//!
//! Thread-safety: none inside; the partition keeps it behind a mutex that idempotent appends
//! hold across check, append and record, so the state always matches a prefix of the log.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::log::{write_atomically, BatchHeader, LogError, PartitionLog};

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
    /// Max timestamp of its last batch (what expiry and DescribeProducers use, as in Kafka).
    pub last_timestamp: i64,
}

impl ProducerEntry {
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

/// The producer-relevant fields of one batch.
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
}

impl ProducerBatch {
    /// The producer fields of a batch header, or None for a batch without a producer id.
    pub fn of(header: &BatchHeader) -> Option<ProducerBatch> {
        (header.producer_id >= 0).then(|| ProducerBatch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_seq: increment_sequence(header.base_sequence, header.last_offset_delta),
        })
    }
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
        let mut state = ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
        };
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
                    state.producers = snap
                        .producers
                        .into_iter()
                        .map(|p| (p.producer_id, p))
                        .collect();
                    replay_from = offset.max(log.log_start_offset());
                    break;
                }
                _ => {
                    tracing::warn!(file = %path.display(), "unreadable producer snapshot; ignoring it");
                }
            }
        }
        state.replay(log, replay_from, log_end)?;
        state.expire(now_ms, expiration_ms);
        Ok(state)
    }

    fn replay(&mut self, log: &PartitionLog, from: i64, to: i64) -> Result<(), LogError> {
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
                pos += header.total_size();
                if header.last_offset() < offset {
                    continue;
                }
                if let Some(batch) = ProducerBatch::of(&header) {
                    if !header.is_control() {
                        self.record(
                            &batch,
                            header.base_offset,
                            header.last_offset(),
                            header.max_timestamp,
                        );
                    }
                }
                offset = header.last_offset() + 1;
            }
        }
        Ok(())
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
        Ok(Verdict::Append)
    }

    /// Records a batch that was appended at `first_offset..=last_offset`.
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
            .or_insert_with(|| ProducerEntry {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                batches: VecDeque::with_capacity(BATCHES_TO_RETAIN),
                last_timestamp: timestamp,
            });
        if entry.epoch != batch.epoch {
            entry.batches.clear();
            entry.epoch = batch.epoch;
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

    /// Forgets producers whose last batch is at least `expiration_ms` old
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, p| now_ms.saturating_sub(p.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }

    /// The producers this partition knows, by id.
    pub fn producers(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
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
    use crate::test_support::idempotent_batch;
    use bytes::BytesMut;
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    fn pb(producer_id: i64, epoch: i16, first_seq: i32, count: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, count - 1),
        }
    }

    fn empty(dir: &Path) -> ProducerStateManager {
        ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
        }
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
