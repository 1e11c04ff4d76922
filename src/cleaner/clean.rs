//! One cleaning round of one log (Kafka's `Cleaner.doClean`): map the dirty section's keys to
//! their latest offsets, then recopy every cleanable segment from the log start, keeping
//! exactly what Kafka keeps, in groups that each become one new segment.
//!
//! What a round keeps, batch by batch (offsets in `[log start, end)`, `end` the mapped end):
//! - aborted transactional data goes; markers follow `txn` and their delete horizon;
//! - a record at or past the latest offset of its key stays, a tombstone only until its batch's
//!   delete horizon (`now + delete.retention.ms`, set the first round that keeps it); a keyless
//!   record goes; a record past the mapped section stays untouched;
//! - a batch that lost every record stays as an empty header when it is its producer's last
//!   (so sequence checks survive) or the last one before the uncleanable section;
//! - a batch that lost nothing and needs no horizon is copied byte for byte.
//!
//! Offsets never move: kept batches keep their base offset and last offset delta.

use std::collections::HashMap;

use crate::log::records::{delete_horizon, empty_batch, rebuild_batch, records_of};
use crate::log::{
    BatchError, BatchHeader, CleanedSegment, CleaningGuard, LogError, PartitionLog, SegmentSnapshot,
};

use super::offset_map::OffsetMap;
use super::txn::TxnMetadata;

/// What the partition knows of a producer whose last batch must survive cleaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Last offset of its last data batch, if it has one.
    pub last_data_offset: Option<i64>,
    /// Its current epoch.
    pub epoch: i16,
}

/// The settings and bounds of one round.
#[derive(Debug, Clone, Copy)]
pub struct RoundInput<'a> {
    /// The round's clock (one reading for every horizon).
    pub now_ms: i64,
    /// Everything below was cleaned by an earlier round.
    pub first_dirty: i64,
    /// The first offset no round may clean yet, on a segment boundary.
    pub first_uncleanable: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `segment.bytes`: the largest group of segments cleaned into one.
    pub max_segment_bytes: u64,
    /// The partition's producers.
    pub producers: &'a HashMap<i64, ActiveProducer>,
}

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// The new first dirty offset (the checkpoint to write).
    pub end_offset: i64,
    /// Bytes of the segments recopied.
    pub bytes_read: u64,
    /// Bytes written into cleaned segments.
    pub bytes_written: u64,
    /// Segments replaced.
    pub segments_cleaned: usize,
    /// Records read while recopying.
    pub records_read: u64,
    /// Records that stayed.
    pub records_kept: u64,
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// The log failed (the round's output, if any, was discarded).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A stored batch could not be decoded.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Shutdown or the partition's deletion stopped the round.
    #[error("cleaning aborted")]
    Aborted,
}

/// Reports I/O (for throttling) and says whether to go on.
pub type IoHook<'a> = dyn FnMut(u64) -> Result<(), CleanError> + 'a;

/// Runs one round over `segments` (the log's cleanable segments, oldest first).
pub fn clean_round(
    log: &PartitionLog,
    guard: &CleaningGuard<'_>,
    segments: &[SegmentSnapshot],
    input: &RoundInput<'_>,
    map: &mut OffsetMap,
    io: &mut IoHook<'_>,
) -> Result<RoundStats, CleanError> {
    let dirty: Vec<&SegmentSnapshot> = segments
        .iter()
        .filter(|s| s.next_offset > input.first_dirty && s.base_offset < input.first_uncleanable)
        .collect();
    map.clear();
    let end_offset = build_offset_map(log, &dirty, input, map, io)?;
    let mut stats = RoundStats {
        end_offset,
        ..RoundStats::default()
    };
    let to_clean: Vec<&SegmentSnapshot> = segments
        .iter()
        .filter(|s| s.base_offset < end_offset)
        .collect();
    let mut txns = TxnMetadata::default();
    for group in group_by_size(&to_clean, input) {
        let first = group[0].base_offset;
        let end = group.last().map_or(first, |s| s.next_offset);
        txns.add_aborted(log.collect_aborted_txns(first, end)?);
        let mut cleaned = log.new_cleaned_segment(guard, first, input.now_ms)?;
        let result = clean_group(&group, input, map, &mut txns, &mut cleaned, &mut stats, io);
        if let Err(e) = result {
            log.discard_cleaned_segment(cleaned)?;
            return Err(e);
        }
        stats.bytes_written += cleaned.size();
        let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
        log.replace_segments(guard, &bases, cleaned)?;
        stats.segments_cleaned += group.len();
    }
    Ok(stats)
}

/// Maps every key of the dirty segments to its latest offset; returns the offset after the
/// section the map covers (the first uncleanable offset, unless the map filled up first).
fn build_offset_map(
    log: &PartitionLog,
    dirty: &[&SegmentSnapshot],
    input: &RoundInput<'_>,
    map: &mut OffsetMap,
    io: &mut IoHook<'_>,
) -> Result<i64, CleanError> {
    let start = input.first_dirty;
    let mut txns = TxnMetadata::default();
    txns.add_aborted(log.collect_aborted_txns(start, input.first_uncleanable)?);
    for (i, segment) in dirty.iter().enumerate() {
        let next_start = dirty
            .get(i + 1)
            .map_or(input.first_uncleanable, |s| s.base_offset);
        let mut batches = segment.batches();
        while let Some(batch) = batches.next_batch()? {
            io(batch.len() as u64)?;
            let header = BatchHeader::parse(batch)?;
            if header.last_offset() < start {
                continue;
            }
            if header.is_control() {
                let records = records_of(batch)?;
                let key = records.first().and_then(|r| r.key.as_deref());
                let key = if records.is_empty() {
                    None
                } else {
                    Some(key.unwrap_or(&[]))
                };
                txns.on_control_batch(header.producer_id, header.last_offset(), key);
            } else if !txns.on_data_batch(
                header.producer_id,
                header.is_transactional(),
                header.last_offset(),
            ) {
                for record in records_of(batch)? {
                    let offset = header.base_offset + record.offset_delta as i64;
                    let Some(key) = record.key.as_deref() else {
                        continue;
                    };
                    if offset < start {
                        continue;
                    }
                    if !map.has_room_for(key) {
                        // Full: the round ends after the last offset mapped.
                        return Ok(map.latest_offset() + 1);
                    }
                    map.put(key, offset);
                }
            }
            map.update_latest_offset(header.last_offset());
        }
        map.update_latest_offset(next_start - 1);
    }
    Ok(if map.latest_offset() < 0 {
        input.first_uncleanable
    } else {
        map.latest_offset() + 1
    })
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose bytes fit one segment and whose
/// offsets stay addressable from the group's base.
fn group_by_size<'s>(
    segments: &[&'s SegmentSnapshot],
    input: &RoundInput<'_>,
) -> Vec<Vec<&'s SegmentSnapshot>> {
    let max_bytes = input.max_segment_bytes.min(i32::MAX as u64);
    let mut groups: Vec<Vec<&SegmentSnapshot>> = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let mut group = vec![segments[i]];
        let mut bytes = segments[i].size;
        i += 1;
        while i < segments.len() {
            let next = segments[i];
            let est_last = segments
                .get(i + 1)
                .map_or(input.first_uncleanable, |s| s.base_offset)
                - 1;
            let fits = bytes + next.size <= max_bytes
                && (next.size == 0 || est_last - group[0].base_offset <= i32::MAX as i64);
            if !fits {
                break;
            }
            bytes += next.size;
            group.push(next);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// Recopies one group into `cleaned`.
fn clean_group(
    group: &[&SegmentSnapshot],
    input: &RoundInput<'_>,
    map: &OffsetMap,
    txns: &mut TxnMetadata,
    cleaned: &mut CleanedSegment,
    stats: &mut RoundStats,
    io: &mut IoHook<'_>,
) -> Result<(), CleanError> {
    for segment in group {
        let mut batches = segment.batches();
        while let Some(batch) = batches.next_batch()? {
            io(batch.len() as u64)?;
            stats.bytes_read += batch.len() as u64;
            let header = BatchHeader::parse(batch)?;
            let out = filter_batch(batch, &header, input, map, txns, cleaned, stats)?;
            if let Some(out) = out {
                io(out.len() as u64)?;
                cleaned.append(&out)?;
            }
        }
    }
    Ok(())
}

/// What stays of one batch (None: nothing).
fn filter_batch(
    batch: &[u8],
    header: &BatchHeader,
    input: &RoundInput<'_>,
    map: &OffsetMap,
    txns: &mut TxnMetadata,
    cleaned: &mut CleanedSegment,
    stats: &mut RoundStats,
) -> Result<Option<Vec<u8>>, CleanError> {
    let now = input.now_ms;
    let horizon = delete_horizon(header);
    let records = records_of(batch)?;
    stats.records_read += records.len() as u64;
    let control = header.is_control();
    let can_discard = if control {
        let key = if records.is_empty() {
            None
        } else {
            Some(records[0].key.as_deref().unwrap_or(&[]))
        };
        let verdict = txns.on_control_batch(header.producer_id, header.last_offset(), key);
        if let Some(entry) = verdict.keep_index_entry {
            cleaned.append_aborted_txn(entry)?;
        }
        verdict.can_discard
    } else {
        txns.on_data_batch(
            header.producer_id,
            header.is_transactional(),
            header.last_offset(),
        )
    };
    let discard_records = if control {
        can_discard && horizon.is_some_and(|h| h <= now)
    } else {
        can_discard
    };
    let retain_empty =
        retains_empty(header, input) || header.last_offset() + 1 == input.first_uncleanable;
    if discard_records && !retain_empty {
        return Ok(None);
    }
    let retain_deletes = horizon.is_none_or(|h| now < h);
    let kept: Vec<_> = records
        .iter()
        .filter(|r| {
            if discard_records {
                return false;
            }
            if control {
                return true;
            }
            let offset = header.base_offset + r.offset_delta as i64;
            if offset > map.latest_offset() {
                return true;
            }
            let Some(key) = r.key.as_deref() else {
                return false;
            };
            offset >= map.get(key) && (r.value.is_some() || retain_deletes)
        })
        .cloned()
        .collect();
    stats.records_kept += kept.len() as u64;
    if kept.is_empty() {
        return Ok(retain_empty.then(|| empty_batch(header)));
    }
    let tombstones = kept.iter().any(|r| r.value.is_none());
    let marker_for_empty_txn = control && can_discard;
    let needs_horizon = horizon.is_none() && (tombstones || marker_for_empty_txn);
    if kept.len() == records.len() && !needs_horizon {
        return Ok(Some(batch[..header.total_size()].to_vec()));
    }
    let new_horizon = needs_horizon.then(|| now.saturating_add(input.delete_retention_ms));
    Ok(Some(rebuild_batch(header, &kept, new_horizon)?))
}

/// Kafka's rule 1: the batch is the last data batch of a live producer (or, for a producer
/// without one, a marker of its current epoch).
fn retains_empty(header: &BatchHeader, input: &RoundInput<'_>) -> bool {
    if header.producer_id < 0 {
        return false;
    }
    match input.producers.get(&header.producer_id) {
        Some(p) => match p.last_data_offset {
            Some(last) => last == header.last_offset(),
            None => header.is_control() && header.producer_epoch == p.epoch,
        },
        None => false,
    }
}
