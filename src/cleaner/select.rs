//! Which compacted log to clean and up to where (Kafka's `LogCleanerManager.cleanableOffsets`,
//! `LogToClean` and the `max.compaction.lag.ms` rule), a pure function of the log's shape and
//! the clock.
//!
//! - first dirty offset: the checkpoint, or the log start when there is none or it lies outside
//!   `[log start, log end]`;
//! - first uncleanable offset: the least of the last stable offset, the first segment not yet
//!   durable (or the active one) and, with `min.compaction.lag.ms`, the base of the first
//!   segment holding a record newer than the lag; rounded down to a segment base;
//! - dirty ratio: bytes of the segments from the one holding the first dirty offset up to the
//!   uncleanable one, over those plus the bytes below the first dirty offset;
//! - a log is cleaned when its ratio passes `min.cleanable.dirty.ratio`, or when its first dirty
//!   segment's first batch is older than `max.compaction.lag.ms` and anything is cleanable; the
//!   highest ratio goes first.

use crate::log::SegmentSnapshot;
use crate::topics::config::CompactionConfig;

/// A log's cleanable section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Where this round's dirty section starts.
    pub first_dirty: i64,
    /// Where it must end, on a segment base.
    pub first_uncleanable: i64,
    /// Dirty bytes over all bytes considered.
    pub ratio: f64,
}

/// Where a log stands, besides its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogShape {
    /// Base of the first segment after the cleanable ones (the active one, or one not durable).
    pub next_base: i64,
    /// The log start offset.
    pub log_start: i64,
    /// The log end offset.
    pub log_end: i64,
    /// The cleaner checkpoint, if any.
    pub checkpoint: Option<i64>,
    /// The partition's last stable offset.
    pub last_stable_offset: i64,
}

/// The section of a log to clean now, if it needs cleaning; `segments` are the durable rolled
/// ones (their first batches are read for `max.compaction.lag.ms`).
pub fn choose(
    segments: &[SegmentSnapshot],
    shape: &LogShape,
    config: &CompactionConfig,
    now_ms: i64,
) -> Option<Candidate> {
    let stats: Vec<SegmentStat> = segments
        .iter()
        .map(|s| SegmentStat {
            base_offset: s.base_offset,
            next_offset: s.next_offset,
            size: s.size,
            max_timestamp: s.max_timestamp,
            first_timestamp: s.first_batch_timestamp().ok().flatten(),
        })
        .collect();
    choose_among(&stats, shape, config, now_ms)
}

/// What selection needs of one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentStat {
    /// Base offset.
    pub base_offset: i64,
    /// Offset after its last batch.
    pub next_offset: i64,
    /// Bytes.
    pub size: u64,
    /// Largest batch max timestamp.
    pub max_timestamp: i64,
    /// Max timestamp of its first batch.
    pub first_timestamp: Option<i64>,
}

/// [`choose`] over plain numbers.
pub fn choose_among(
    segments: &[SegmentStat],
    shape: &LogShape,
    config: &CompactionConfig,
    now_ms: i64,
) -> Option<Candidate> {
    let LogShape {
        next_base,
        log_start,
        log_end,
        checkpoint,
        last_stable_offset,
    } = *shape;
    let first_dirty = match checkpoint {
        Some(c) if c >= log_start && c <= log_end => c,
        _ => log_start,
    };
    // Segments from the one holding the first dirty offset.
    let from_dirty = segments
        .iter()
        .rposition(|s| s.base_offset <= first_dirty)
        .unwrap_or(0);
    let mut uncleanable = last_stable_offset.min(next_base);
    if config.min_compaction_lag_ms > 0 {
        let lag_bound = now_ms.saturating_sub(config.min_compaction_lag_ms);
        if let Some(s) = segments[from_dirty.min(segments.len())..]
            .iter()
            .find(|s| s.max_timestamp > lag_bound)
        {
            uncleanable = uncleanable.min(s.base_offset);
        }
    }
    let uncleanable = uncleanable.max(first_dirty);
    // Rounded down to the base of the segment holding it.
    let first_uncleanable = if uncleanable >= next_base {
        next_base
    } else {
        segments
            .iter()
            .rev()
            .find(|s| s.base_offset <= uncleanable)
            .map_or(log_start, |s| s.base_offset)
    };
    let clean_bytes: u64 = segments
        .iter()
        .filter(|s| s.base_offset < first_dirty)
        .map(|s| s.size)
        .sum();
    let low = first_dirty.min(first_uncleanable);
    let cleanable_bytes: u64 = segments
        .iter()
        .filter(|s| s.base_offset < first_uncleanable && s.next_offset > low)
        .map(|s| s.size)
        .sum();
    let total = clean_bytes + cleanable_bytes;
    if total == 0 {
        return None;
    }
    let ratio = cleanable_bytes as f64 / total as f64;
    let earliest = segments[from_dirty.min(segments.len())..]
        .iter()
        .filter_map(|s| s.first_timestamp)
        .filter(|&t| t > 0)
        .min();
    let clean_until = now_ms.saturating_sub(config.max_compaction_lag_ms.max(0));
    let overdue = earliest.is_some_and(|t| t < clean_until);
    ((overdue && cleanable_bytes > 0) || ratio > config.min_cleanable_dirty_ratio).then_some(
        Candidate {
            first_dirty,
            first_uncleanable,
            ratio,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64, size: u64, first_ts: i64, max_ts: i64) -> SegmentStat {
        SegmentStat {
            base_offset: base,
            next_offset: next,
            size,
            max_timestamp: max_ts,
            first_timestamp: Some(first_ts),
        }
    }

    fn shape(
        next_base: i64,
        log_start: i64,
        log_end: i64,
        checkpoint: Option<i64>,
        lso: i64,
    ) -> LogShape {
        LogShape {
            next_base,
            log_start,
            log_end,
            checkpoint,
            last_stable_offset: lso,
        }
    }

    fn config() -> CompactionConfig {
        CompactionConfig {
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }

    #[test]
    fn ratio_checkpoint_and_bounds() {
        let segs = [
            seg(0, 10, 100, 1, 5),
            seg(10, 20, 100, 6, 9),
            seg(20, 30, 100, 10, 15),
        ];
        // Never cleaned: everything up to the active segment is dirty.
        let c = choose_among(&segs, &shape(30, 0, 35, None, 35), &config(), 100).unwrap();
        assert_eq!((c.first_dirty, c.first_uncleanable, c.ratio), (0, 30, 1.0));
        // Checkpoint at 20: 100 dirty of 300.
        assert!(choose_among(&segs, &shape(30, 0, 35, Some(20), 35), &config(), 100).is_none());
        let mut low = config();
        low.min_cleanable_dirty_ratio = 0.3;
        let c = choose_among(&segs, &shape(30, 0, 35, Some(20), 35), &low, 100).unwrap();
        assert_eq!((c.first_dirty, c.first_uncleanable), (20, 30));
        // A checkpoint past the log end starts over from the log start.
        let c = choose_among(&segs, &shape(30, 0, 35, Some(99), 35), &config(), 100).unwrap();
        assert_eq!(c.first_dirty, 0);
        // An open transaction at 15 keeps its whole segment uncleanable.
        let c = choose_among(&segs, &shape(30, 0, 35, None, 15), &config(), 100).unwrap();
        assert_eq!(c.first_uncleanable, 10);
        // min.compaction.lag.ms: the segment with a record newer than now - lag stops it.
        let mut lag = config();
        lag.min_compaction_lag_ms = 90;
        let c = choose_among(&segs, &shape(30, 0, 35, None, 35), &lag, 100).unwrap();
        assert_eq!(c.first_uncleanable, 20);
        // Nothing cleanable at all.
        assert!(choose_among(&[], &shape(0, 0, 5, None, 5), &config(), 100).is_none());
    }

    #[test]
    fn max_compaction_lag_forces_a_clean_below_the_ratio() {
        let segs = [
            seg(0, 10, 100, 1, 5),
            seg(10, 20, 100, 6, 9),
            seg(20, 30, 100, 50, 60),
        ];
        let mut c = config();
        c.min_cleanable_dirty_ratio = 0.9;
        assert!(choose_among(&segs, &shape(30, 0, 35, Some(20), 35), &c, 100).is_none());
        c.max_compaction_lag_ms = 40;
        let chosen = choose_among(&segs, &shape(30, 0, 35, Some(20), 35), &c, 100).unwrap();
        assert_eq!((chosen.first_dirty, chosen.first_uncleanable), (20, 30));
        // Not yet overdue.
        c.max_compaction_lag_ms = 60;
        assert!(choose_among(&segs, &shape(30, 0, 35, Some(20), 35), &c, 100).is_none());
    }
}
