//! Opening a partition directory: listing, interrupted swaps, cleanup and crash recovery (Kafka's
//! `LogLoader` and `UnifiedLog` recovery), plus the recovery-point and log-start-offset files.
//!
//! Files: besides the segment files, a partition directory holds `recovery-point`, one line with a
//! decimal offset R. Every batch below R, the index files of every segment that lies wholly
//! below R, and every leader epoch that starts below R (`leader-epoch-checkpoint`) were fsynced
//! before R was written (atomically). `sync` advances R to the active segment's base offset once
//! it has made the rolled segments durable; a clean `close` sets R to the log end offset.
//!
//! Loading, as Kafka's `LogLoader` does:
//! - `*.tmp` and `*.deleted` files are deleted; so are `*.cleaned` files (a cleaning that never
//!   reached its swap) and any `*.swap` file at or above the lowest `.cleaned` base offset (an
//!   interrupted split);
//! - the remaining `*.swap` files finish their swap: the segments they replace (base offsets from
//!   the lowest swap base up to the highest swap end) are deleted, then the `.swap` suffix is
//!   dropped. A crash anywhere in a cleaner's replace sequence (`.cleaned` -> `.swap`, old
//!   segments -> `.deleted`, `.swap` -> final name) thus ends with either the old or the new
//!   segments, never both and never neither;
//! - index files (`.index`, `.timeindex`, `.txnindex`) without a `.log` are deleted; any other
//!   unknown file is left alone (other components own it: producer snapshots, offset files);
//! - segments are loaded in base offset order. One lying wholly below R is trusted after its
//!   index files pass a sanity check against the log (see `Segment::load_indexes`); the last
//!   segment is trusted only if it ends exactly at R. Everything else, and any segment whose check
//!   fails, is recovered: every batch's header and CRC is validated, offsets must strictly
//!   increase (a compacted segment has gaps, never reordering), the file is cut at the first torn,
//!   corrupt or out-of-order batch, and the indexes are rebuilt. Every segment's `.txnindex` is
//!   then read and cut to the entries that fit the segment as it now ends; entries a crash lost
//!   are rebuilt later by the producer-state replay (`crate::partition::producer_state`), which
//!   needs the producer state this loader does not have;
//! - a gap between one segment's end and the next segment's base offset below R is what
//!   compaction leaves, and stays (the cleaner only cleans segments below the recovery point,
//!   and rolls always start the new segment at the log end). But if recovery cut a segment, a
//!   segment past R ends before the next one's base, or a segment reaches past the next one's
//!   base, the later segments are deleted: they were never durable (a sync makes every rolled
//!   segment durable before it moves R), and keeping them would leave data the crash lost below
//!   the log end;
//! - the leader epoch cache is read from its checkpoint and completed with the epochs of the
//!   batches recovery scanned (those newer than the latest known), then cut to the log. A missing
//!   checkpoint (a directory written before Rivulet kept one, when every batch had epoch 0) is
//!   seeded from the first batch of the log.
//!
//! Thread-safety: runs inside `PartitionLog::open`, before the log is shared.

use std::fs;
use std::io;
use std::path::Path;

use super::epoch_cache::EpochCache;
use super::error::LogError;
use super::files::{read_offset_file, remove_if_exists, sync_dir, write_offset_file, TMP_SUFFIX};
use super::partition::LogConfig;
use super::segment::{
    delete_segment_files, parse_file_name, read_header_at, scan_next_offset, Segment, SegmentFiles,
    INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT,
};

/// Name of the recovery-point file.
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Name of the file holding the log start offset moved by DeleteRecords (Kafka keeps these in
/// `log-start-offset-checkpoint`); absent until the first DeleteRecords of the partition.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// Suffix of segment files a deletion is in the middle of removing.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Suffix of a cleaner's output before it is swapped in.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaner's output while it replaces the segments it cleaned.
pub const SWAP_SUFFIX: &str = ".swap";
/// Extensions of the offset-named files a swap replaces (Kafka's segment and snapshot files).
const SWAP_REPLACES: [&str; 5] = [
    LOG_EXT,
    INDEX_EXT,
    TIME_INDEX_EXT,
    TXN_INDEX_EXT,
    ".snapshot",
];

/// A loaded partition directory.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// Segments by base offset; never empty.
    pub segments: Vec<Segment>,
    /// Recovery point as persisted (<= log end offset).
    pub recovery_point: i64,
    /// Rolled segments whose data or index files are not known to be durable.
    pub unsynced: Vec<SegmentFiles>,
    /// Log start offset: the persisted one (DeleteRecords) if above the first segment's base
    /// offset, at most the log end offset.
    pub log_start_offset: i64,
    /// Where each leader epoch started, as far as the log holds it.
    pub epochs: EpochCache,
    /// The directory was created now; its entry (and its first segment's) become durable with
    /// the first sync, so creating a partition costs no fsync on the caller's thread.
    pub fresh: bool,
}

/// Opens, cleans and recovers the partition in `dir` (created if absent).
pub(crate) fn load(dir: &Path, config: &LogConfig, now_ms: i64) -> Result<Loaded, LogError> {
    let fresh = !dir.exists();
    if fresh {
        fs::create_dir_all(dir)?;
    }
    let swaps = remove_temp_files_and_collect_swaps(dir)?;
    complete_swaps(dir, &swaps)?;
    let bases = list_segments(dir)?;
    let persisted = read_offset_file(dir, RECOVERY_POINT_FILE)?;
    let recovery_point = persisted.unwrap_or(0);
    let persisted_start = read_offset_file(dir, LOG_START_OFFSET_FILE)?;
    let interval = config.index_interval_bytes;

    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    let mut unsynced = Vec::new();
    let mut scanned_epochs = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let mut segment = Segment::open(dir, base, config.segment_index_bytes, now_ms)?;
        let trusted = match next_base {
            Some(next) if next <= recovery_point => segment.load_indexes(next, false)?,
            None if base <= recovery_point => segment.load_indexes(recovery_point, true)?,
            _ => Err(format!(
                "segment is past the recovery point {recovery_point}"
            )),
        };
        let mut cut = false;
        if let Err(reason) = &trusted {
            tracing::info!(dir = %dir.display(), base_offset = base, reason = %reason, "recovering segment");
            let recovered = segment.recover(interval)?;
            cut = recovered.bytes_cut > 0;
            scanned_epochs.extend(recovered.epochs);
        }
        // Entries whose markers recovery cut go; a torn tail of the file too (see `txn_index`).
        segment.load_txn_index()?;
        if trusted.is_err() && next_base.is_some() {
            unsynced.push(segment.files());
        }
        let overlaps = next_base.is_some_and(|next| segment.next_offset() > next);
        // A gap before the next segment is compaction's only below the recovery point (the
        // cleaner cleans durable segments); past it, it is a tail the crash took.
        let vouched = next_base.is_some_and(|next| next <= recovery_point);
        let ends_early = next_base.is_some_and(|next| segment.next_offset() < next);
        let ends_log = next_base.is_some() && (cut || overlaps || (ends_early && !vouched));
        segments.push(segment);
        if ends_log {
            for &later in &bases[i + 1..] {
                tracing::warn!(dir = %dir.display(), base_offset = later, "deleting segment after a recovered cut");
                delete_segment_files(dir, later)?;
            }
            // The segment that now ends the log is the active one: not "rolled".
            unsynced.retain(|f: &SegmentFiles| f.base_offset != base);
            break;
        }
    }
    if segments.is_empty() {
        // Kafka starts an empty log at its checkpointed start offset.
        let base = persisted_start.unwrap_or(0);
        segments.push(Segment::create(
            dir,
            base,
            config.segment_index_bytes,
            now_ms,
        )?);
    }
    let log_end = segments.last().map_or(0, Segment::next_offset);
    let recovery_point = if recovery_point > log_end {
        // Data below R was lost after all. R must not keep vouching for offsets that will now be
        // appended again, nor for any segment that recovery just rewrote.
        let active_base = segments.last().map_or(0, Segment::base_offset);
        let r = unsynced
            .iter()
            .map(|f| f.base_offset)
            .fold(active_base, i64::min);
        write_offset_file(dir, RECOVERY_POINT_FILE, r)?;
        r
    } else {
        recovery_point
    };
    if !fresh {
        sync_dir(dir)?;
    }
    // A torn tail can end the log below a persisted log start; then nothing below the end is
    // readable any more and the start is the end.
    let first_base = segments.first().map_or(0, Segment::base_offset);
    let log_start_offset = persisted_start.unwrap_or(0).max(first_base).min(log_end);
    let epochs = load_epochs(dir, &segments, scanned_epochs, log_start_offset, log_end)?;
    Ok(Loaded {
        segments,
        recovery_point,
        unsynced,
        log_start_offset,
        epochs,
        fresh,
    })
}

/// The epoch cache: the checkpoint, completed by what recovery scanned, cut to the log.
fn load_epochs(
    dir: &Path,
    segments: &[Segment],
    scanned: Vec<super::epoch_cache::EpochEntry>,
    log_start: i64,
    log_end: i64,
) -> Result<EpochCache, LogError> {
    let mut cache = match EpochCache::load(dir)? {
        Some(cache) => cache,
        None => {
            let mut cache = EpochCache::default();
            if let Some(first) = segments.iter().find(|s| s.size() > 0) {
                if let Some(h) = read_header_at(&first.view(), 0)? {
                    cache.assign(h.partition_leader_epoch, h.base_offset);
                }
            }
            cache.mark_dirty();
            cache
        }
    };
    for entry in scanned {
        if cache
            .latest_epoch()
            .is_none_or(|latest| entry.epoch > latest)
        {
            cache.assign(entry.epoch, entry.start_offset);
        }
    }
    cache.truncate_from_end(log_end);
    cache.truncate_from_start(log_start);
    Ok(cache)
}

/// Kafka's `removeTempFilesAndCollectSwapFiles`: deletes `.tmp`, `.deleted` and `.cleaned` files
/// and the swaps an interrupted split left; returns the `.log.swap` files still to complete.
fn remove_temp_files_and_collect_swaps(dir: &Path) -> Result<Vec<(i64, String)>, LogError> {
    let mut cleaned = Vec::new();
    let mut swaps = Vec::new();
    for name in file_names(dir)? {
        if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
            tracing::info!(dir = %dir.display(), file = %name, "deleting stray file");
            fs::remove_file(dir.join(&name))?;
        } else if let Some(stem) = name.strip_suffix(CLEANED_SUFFIX) {
            cleaned.push((offset_prefix(stem), name.clone()));
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            swaps.push((offset_prefix(stem), name.clone()));
        }
    }
    let min_cleaned = cleaned
        .iter()
        .filter_map(|(o, _)| *o)
        .min()
        .unwrap_or(i64::MAX);
    let mut valid = Vec::new();
    for (offset, name) in swaps {
        match offset {
            Some(o) if o < min_cleaned => valid.push((o, name)),
            _ => {
                tracing::info!(dir = %dir.display(), file = %name, "deleting swap file of an interrupted split");
                fs::remove_file(dir.join(&name))?;
            }
        }
    }
    for (_, name) in cleaned {
        tracing::info!(dir = %dir.display(), file = %name, "deleting cleaner output that was never swapped in");
        fs::remove_file(dir.join(&name))?;
    }
    Ok(valid)
}

/// Finishes an interrupted swap: deletes what the swapped segments replace, then drops the
/// `.swap` suffix from every swap file (data and index files).
fn complete_swaps(dir: &Path, swaps: &[(i64, String)]) -> Result<(), LogError> {
    if swaps.is_empty() {
        return Ok(());
    }
    let mut range: Option<(i64, i64)> = None;
    for (base, name) in swaps {
        let Some(stem) = name.strip_suffix(SWAP_SUFFIX) else {
            continue;
        };
        if parse_file_name(stem, LOG_EXT).is_none() {
            continue;
        }
        let end = scan_next_offset(&dir.join(name), *base)?;
        range = Some(match range {
            None => (*base, end),
            Some((lo, hi)) => (lo.min(*base), hi.max(end)),
        });
    }
    if let Some((lo, hi)) = range {
        for name in file_names(dir)? {
            let replaced = SWAP_REPLACES
                .iter()
                .filter_map(|ext| name.strip_suffix(ext))
                .find_map(|stem| parse_file_name(stem, ""));
            if let Some(offset) = replaced {
                if offset >= lo && offset < hi {
                    tracing::info!(dir = %dir.display(), file = %name, "deleting a segment file a swap replaces");
                    remove_if_exists(&dir.join(&name))?;
                }
            }
        }
    }
    for (_, name) in swaps {
        if let Some(target) = name.strip_suffix(SWAP_SUFFIX) {
            tracing::info!(dir = %dir.display(), file = %name, "completing an interrupted swap");
            fs::rename(dir.join(name), dir.join(target))?;
        }
    }
    sync_dir(dir)?;
    Ok(())
}

/// The names of the regular files in `dir` (names that are not UTF-8 are not Kafka's: skipped).
fn file_names(dir: &Path) -> Result<Vec<String>, LogError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// The 20-digit offset a Kafka log file name starts with (`LogFileUtils.offsetFromFileName`).
fn offset_prefix(name: &str) -> Option<i64> {
    let stem = name.split('.').next()?;
    parse_file_name(stem, "")
}

/// Base offsets of the `.log` files in `dir`, sorted; deletes index files without a `.log`.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for name in file_names(dir)? {
        if let Some(base) = parse_file_name(&name, LOG_EXT) {
            bases.push(base);
        } else if let Some(base) = [INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT]
            .iter()
            .find_map(|ext| parse_file_name(&name, ext))
        {
            index_files.push((base, dir.join(&name)));
        }
    }
    bases.sort_unstable();
    for (base, path) in index_files {
        if bases.binary_search(&base).is_err() {
            tracing::info!(file = %path.display(), "deleting index without a log file");
            fs::remove_file(&path)?;
        }
    }
    Ok(bases)
}

/// Atomically replaces the recovery-point file with `offset`.
pub(crate) fn write_recovery_point(dir: &Path, offset: i64) -> io::Result<()> {
    write_offset_file(dir, RECOVERY_POINT_FILE, offset)
}

/// The name of a segment file with `suffix` appended, as the cleaner writes them
/// (`<base>.log.cleaned`, `<base>.log.swap`).
#[cfg(test)]
pub(crate) fn suffixed_file_name(base_offset: i64, ext: &str, suffix: &str) -> String {
    format!("{}{suffix}", super::segment::file_name(base_offset, ext))
}
