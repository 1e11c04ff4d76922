//! Opening a partition directory: listing, cleanup and crash recovery (Kafka's `LogLoader` and
//! `UnifiedLog` recovery), plus the recovery-point file.
//!
//! Files: besides the segment files, a partition directory holds `recovery-point`, one line with a
//! decimal offset R. Every batch below R, and the index files of every segment that lies wholly
//! below R, were fsynced before R was written (atomically: write `recovery-point.tmp`, fsync,
//! rename, fsync the directory). `sync` advances R to the active segment's base offset once it has
//! made the rolled segments durable; a clean `close` sets R to the log end offset.
//!
//! Loading, in base offset order:
//! - stray files are deleted: `*.tmp`, `*.deleted`, `*.cleaned`, `*.swap`, and index files
//!   without a `.log`; anything else unknown is left alone (other components may own it);
//! - a segment lying wholly below R is trusted after its index files pass a sanity check against
//!   the log (see `Segment::load_indexes`); the last segment is trusted only if it ends exactly at
//!   R. Everything else, and any segment whose check fails, is recovered: every batch's header
//!   and CRC is validated, the file is cut at the first torn, corrupt or out-of-sequence batch, and
//!   the indexes are rebuilt;
//! - if a segment ends anywhere but at the next segment's base offset, the later segments are
//!   deleted: they were never durable and keeping them would leave a gap below the log end.
//!
//! Thread-safety: runs inside `PartitionLog::open`, before the log is shared.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::error::LogError;
use super::partition::LogConfig;
use super::segment::{
    delete_segment_files, parse_file_name, Segment, SegmentFiles, INDEX_EXT, LOG_EXT,
    TIME_INDEX_EXT,
};

/// Name of the recovery-point file.
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Name of the file holding the log start offset moved by DeleteRecords (Kafka keeps these in
/// `log-start-offset-checkpoint`); absent until the first DeleteRecords of the partition.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";
const TMP_SUFFIX: &str = ".tmp";
const STRAY_SUFFIXES: [&str; 4] = [TMP_SUFFIX, ".deleted", ".cleaned", ".swap"];

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
}

/// Opens, cleans and recovers the partition in `dir` (created if absent).
pub(crate) fn load(dir: &Path, config: &LogConfig, now_ms: i64) -> Result<Loaded, LogError> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let bases = list_segments(dir)?;
    let persisted = read_recovery_point(dir)?;
    let recovery_point = persisted.unwrap_or(0);
    let interval = config.index_interval_bytes;

    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    let mut unsynced = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let mut segment = Segment::open(dir, base, config.segment_index_bytes, now_ms)?;
        let trusted = match next_base {
            Some(next) if next <= recovery_point => segment.load_indexes(next)?,
            None if base <= recovery_point => segment.load_indexes(recovery_point)?,
            _ => Err(format!(
                "segment is past the recovery point {recovery_point}"
            )),
        };
        if let Err(reason) = trusted {
            tracing::info!(dir = %dir.display(), base_offset = base, reason = %reason, "recovering segment");
            segment.recover(interval)?;
            if next_base.is_some() {
                unsynced.push(segment.files());
            }
        }
        let ends_early = next_base.is_some_and(|next| segment.next_offset() != next);
        segments.push(segment);
        if ends_early {
            for &later in &bases[i + 1..] {
                tracing::warn!(dir = %dir.display(), base_offset = later, "deleting segment after a recovered gap");
                delete_segment_files(dir, later)?;
            }
            // The segment that now ends the log is the active one: not "rolled".
            unsynced.retain(|f: &SegmentFiles| f.base_offset != base);
            break;
        }
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, 0, config.segment_index_bytes, now_ms)?);
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
        write_recovery_point(dir, r)?;
        r
    } else {
        recovery_point
    };
    sync_dir(dir)?;
    // A torn tail can end the log below a persisted log start; then nothing below the end is
    // readable any more and the start is the end.
    let first_base = segments.first().map_or(0, Segment::base_offset);
    let log_start_offset = read_offset_file(dir, LOG_START_OFFSET_FILE)?
        .unwrap_or(0)
        .max(first_base)
        .min(log_end);
    Ok(Loaded {
        segments,
        recovery_point,
        unsynced,
        log_start_offset,
    })
}

/// Base offsets of the `.log` files in `dir`, sorted; deletes stray files on the way.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if STRAY_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            tracing::info!(file = %entry.path().display(), "deleting stray file");
            fs::remove_file(entry.path())?;
        } else if let Some(base) = parse_file_name(name, LOG_EXT) {
            bases.push(base);
        } else if let Some(base) =
            parse_file_name(name, INDEX_EXT).or_else(|| parse_file_name(name, TIME_INDEX_EXT))
        {
            index_files.push((base, entry.path()));
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

/// The persisted recovery point; `None` if absent or unreadable (then everything is recovered).
fn read_recovery_point(dir: &Path) -> Result<Option<i64>, LogError> {
    read_offset_file(dir, RECOVERY_POINT_FILE)
}

/// Atomically replaces the recovery-point file with `offset`.
pub(crate) fn write_recovery_point(dir: &Path, offset: i64) -> io::Result<()> {
    write_offset_file(dir, RECOVERY_POINT_FILE, offset)
}

/// A one-offset file (`recovery-point`, `log-start-offset`); `None` if absent or unreadable.
fn read_offset_file(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => String::new(),
        Err(e) => return Err(e.into()),
    };
    match text.trim().parse::<i64>() {
        Ok(r) if r >= 0 => Ok(Some(r)),
        _ => {
            // recovery point: everything is recovered; log start: the first segment's base
            tracing::warn!(file = %path.display(), "unreadable offset file, ignored");
            Ok(None)
        }
    }
}

/// Atomically replaces the one-offset file `name` with `offset` (write a temporary file, fsync,
/// rename, fsync the directory), so a crash leaves the old or the new value, never a torn one.
pub(crate) fn write_offset_file(dir: &Path, name: &str, offset: i64) -> io::Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{offset}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Makes creations, renames and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
