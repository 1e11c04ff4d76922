//! The log cleaner: compaction of `cleanup.policy=compact` (and `compact,delete`) partitions
//! (Kafka's `LogCleaner` and `LogCleanerManager`).
//!
//! Layers:
//! - [`select`]: which partition to clean and up to where, a pure function of segment sizes,
//!   timestamps, the checkpoint, the last stable offset and the clock (Kafka's `cleanableOffsets`,
//!   dirty ratio and `max.compaction.lag.ms` rules);
//! - [`clean`]: one round over one log, keeping exactly what Kafka keeps (with [`txn`] for
//!   transactional data and markers and [`offset_map`] for the keys);
//! - the log's side (`crate::log::cleaning`): cleanable segment snapshots, the `.cleaned` /
//!   `.swap` replace sequence that a `kill -9` at any step survives, the checkpoint file;
//! - [`LogCleaner`]: the `log.cleaner.threads` loops (each on a blocking thread of the broker's
//!   tracked tasks), the shared [`throttle::Throttler`] for `log.cleaner.io.max.bytes.per.second`,
//!   and the partitions in progress so two threads never take the same log.
//!
//! Invariants: a round holds its log's maintenance lock (retention, DeleteRecords and
//! truncation wait for it; produce and fetch do not: they only meet the partition lock for
//! the moment the new segment takes the old ones' place); the checkpoint only moves after every
//! group of the round replaced its segments; a partition whose round fails is left alone until
//! the broker restarts (Kafka's uncleanable partitions), with an error logged.

pub mod clean;
pub mod offset_map;
pub mod select;
pub mod throttle;
pub mod txn;

#[cfg(test)]
mod proptests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::log::{read_cleaner_checkpoint, write_cleaner_checkpoint, CleaningGuard, PartitionLog};
use crate::partition::Partition;
use crate::topics::config::CompactionConfig;

use clean::{clean_round, ActiveProducer, CleanError, IoHook, RoundInput, RoundStats};
use offset_map::OffsetMap;
use select::{choose, Candidate, LogShape};
use throttle::Throttler;

/// The broker's `log.cleaner.*` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: key map memory, shared by the threads.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.load.factor`: how full a key map may get.
    pub load_factor: f64,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: the pause when nothing needs cleaning.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    /// Kafka's defaults.
    fn default() -> CleanerConfig {
        CleanerConfig {
            enable: true,
            threads: 1,
            dedupe_buffer_size: 128 * 1024 * 1024,
            load_factor: 0.9,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

/// Totals since start (metrics, benchmarks).
#[derive(Debug, Default)]
pub struct CleanerCounters {
    /// Rounds completed.
    pub rounds: AtomicU64,
    /// Bytes of segments recopied.
    pub bytes_read: AtomicU64,
    /// Bytes written into cleaned segments.
    pub bytes_written: AtomicU64,
    /// Microseconds spent in rounds.
    pub busy_micros: AtomicU64,
}

/// The broker's cleaner (see the module docs).
#[derive(Debug)]
pub struct LogCleaner {
    config: CleanerConfig,
    in_progress: Mutex<HashSet<(String, i32)>>,
    uncleanable: Mutex<HashSet<(String, i32)>>,
    throttler: Mutex<Throttler>,
    epoch: Instant,
    counters: CleanerCounters,
}

impl LogCleaner {
    /// A cleaner with `config`.
    pub fn new(config: CleanerConfig) -> LogCleaner {
        LogCleaner {
            config,
            in_progress: Mutex::new(HashSet::new()),
            uncleanable: Mutex::new(HashSet::new()),
            throttler: Mutex::new(Throttler::new(config.io_max_bytes_per_second, 0)),
            epoch: Instant::now(),
            counters: CleanerCounters::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &CleanerConfig {
        &self.config
    }

    /// Its totals.
    pub fn counters(&self) -> &CleanerCounters {
        &self.counters
    }

    /// Cleans the filthiest compacted partition of `partitions` that needs it, if any (one
    /// round); `stop` is polled between batches. Returns what the round did. Blocking.
    pub fn clean_filthiest(
        &self,
        partitions: &[Arc<Partition>],
        now_ms: i64,
        stop: &dyn Fn() -> bool,
    ) -> Option<RoundStats> {
        let (partition, _candidate) = {
            let mut in_progress = self.in_progress.lock();
            let uncleanable = self.uncleanable.lock();
            let mut best: Option<(Arc<Partition>, Candidate)> = None;
            for p in partitions {
                let key = (p.topic().to_string(), p.index());
                if !p.config().cleanup_policy.compact
                    || in_progress.contains(&key)
                    || uncleanable.contains(&key)
                {
                    continue;
                }
                match self.candidate(p, now_ms) {
                    Ok(Some(c)) if best.as_ref().is_none_or(|(_, b)| c.ratio > b.ratio) => {
                        best = Some((p.clone(), c))
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "cannot evaluate partition for cleaning");
                    }
                }
            }
            let (p, c) = best?;
            in_progress.insert((p.topic().to_string(), p.index()));
            (p, c)
        };
        let key = (partition.topic().to_string(), partition.index());
        let started = Instant::now();
        let result = self.clean(&partition, now_ms, stop);
        self.in_progress.lock().remove(&key);
        match result {
            Ok(stats) => {
                let c = &self.counters;
                c.rounds.fetch_add(1, Ordering::Relaxed);
                c.bytes_read.fetch_add(stats.bytes_read, Ordering::Relaxed);
                c.bytes_written
                    .fetch_add(stats.bytes_written, Ordering::Relaxed);
                c.busy_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                tracing::info!(
                    topic = %partition.topic(),
                    partition = partition.index(),
                    segments = stats.segments_cleaned,
                    read = stats.bytes_read,
                    written = stats.bytes_written,
                    records_read = stats.records_read,
                    records_kept = stats.records_kept,
                    end_offset = stats.end_offset,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cleaned log"
                );
                Some(stats)
            }
            Err(CleanError::Aborted) => None,
            Err(e) => {
                tracing::error!(topic = %partition.topic(), partition = partition.index(), error = %e, "cleaning failed; the partition is not cleaned again until restart");
                self.uncleanable.lock().insert(key);
                None
            }
        }
    }

    /// Whether the partition needs cleaning now, and how badly.
    fn candidate(&self, p: &Partition, now_ms: i64) -> Result<Option<Candidate>, CleanError> {
        let log = p.log();
        let log = &*log;
        let Some(guard) = log.try_begin_cleaning() else {
            return Ok(None);
        };
        candidate_of(
            log,
            &guard,
            p.last_stable_offset(),
            &p.config().compaction,
            now_ms,
        )
    }

    fn clean(
        &self,
        p: &Partition,
        now_ms: i64,
        stop: &dyn Fn() -> bool,
    ) -> Result<RoundStats, CleanError> {
        let producers: HashMap<i64, ActiveProducer> = p
            .producers()
            .into_iter()
            .map(|e| {
                (
                    e.producer_id,
                    ActiveProducer {
                        last_data_offset: e.batches.back().map(|b| b.last_offset),
                        epoch: e.epoch,
                    },
                )
            })
            .collect();
        let threads = self.config.threads.max(1) as u64;
        let capacity = (self.config.dedupe_buffer_size / threads) as f64 * self.config.load_factor;
        let mut map = OffsetMap::new(capacity.max(1024.0) as usize);
        let mut io = |bytes: u64| -> Result<(), CleanError> {
            if stop() {
                return Err(CleanError::Aborted);
            }
            let now = self.epoch.elapsed().as_millis() as u64;
            let sleep = self.throttler.lock().observe(bytes, now);
            if sleep > 0 {
                std::thread::sleep(Duration::from_millis(sleep));
            }
            Ok(())
        };
        let config = p.config();
        // The log as of now; a move that replaces it meanwhile seals it, and a sealed log
        // cannot be cleaned.
        let current = p.log();
        let log = LogToClean {
            log: &current,
            last_stable_offset: p.last_stable_offset(),
            producers: &producers,
            compaction: &config.compaction,
            segment_bytes: config.segment.segment_bytes,
        };
        clean_log(&log, now_ms, &mut map, &mut io)?.ok_or(CleanError::Aborted)
    }
}

/// One log and what its partition knows, for a round.
#[derive(Debug, Clone, Copy)]
pub struct LogToClean<'a> {
    /// The log.
    pub log: &'a PartitionLog,
    /// Its partition's last stable offset.
    pub last_stable_offset: i64,
    /// Its partition's producers.
    pub producers: &'a HashMap<i64, ActiveProducer>,
    /// Its topic's compaction settings.
    pub compaction: &'a CompactionConfig,
    /// Its topic's `segment.bytes`.
    pub segment_bytes: u64,
}

/// The section of `log` to clean now, if any (under `guard`, so the segments stay).
fn candidate_of(
    log: &PartitionLog,
    guard: &CleaningGuard<'_>,
    last_stable_offset: i64,
    compaction: &CompactionConfig,
    now_ms: i64,
) -> Result<Option<Candidate>, CleanError> {
    let (segments, next_base) = log.cleanable_segments(guard);
    let shape = LogShape {
        next_base,
        log_start: log.log_start_offset(),
        log_end: log.log_end_offset(),
        checkpoint: read_cleaner_checkpoint(log.dir())?,
        last_stable_offset,
    };
    Ok(choose(&segments, &shape, compaction, now_ms))
}

/// Cleans `target` once if it needs it (None: it does not, or another cleaning holds it), then
/// moves its checkpoint. Blocking.
pub fn clean_log(
    target: &LogToClean<'_>,
    now_ms: i64,
    map: &mut OffsetMap,
    io: &mut IoHook<'_>,
) -> Result<Option<RoundStats>, CleanError> {
    let log = target.log;
    let Some(guard) = log.try_begin_cleaning() else {
        return Ok(None);
    };
    // Evaluated under the guard: nothing can remove segments from here on.
    let Some(candidate) = candidate_of(
        log,
        &guard,
        target.last_stable_offset,
        target.compaction,
        now_ms,
    )?
    else {
        return Ok(None);
    };
    let (segments, _) = log.cleanable_segments(&guard);
    let input = RoundInput {
        now_ms,
        first_dirty: candidate.first_dirty,
        first_uncleanable: candidate.first_uncleanable,
        delete_retention_ms: target.compaction.delete_retention_ms,
        max_segment_bytes: target.segment_bytes,
        producers: target.producers,
    };
    let stats = clean_round(log, &guard, &segments, &input, map, io)?;
    write_cleaner_checkpoint(log.dir(), stats.end_offset)?;
    Ok(Some(stats))
}
