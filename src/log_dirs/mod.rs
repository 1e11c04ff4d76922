//! The broker's log directories (`log.dirs`, Kafka's `LogManager` half that knows directories):
//! their identity, which one holds each partition, where new partitions go, and moving a
//! partition from one to another (`movement`).
//!
//! # Layout
//!
//! Every log directory holds `meta.properties` (see [`meta`]) and partition directories. The
//! first directory is also the metadata directory (Kafka's `metadata.log.dir` default): the
//! broker's own files (`topics.json`, `producer-ids`, the dynamic and resource configs) and the
//! group and transaction logs live there only. Directory names, as Kafka's `LocalLog`:
//!
//! | name | what |
//! | --- | --- |
//! | `<topic>-<partition>` | the partition's log (`crate::log`) |
//! | `<topic>-<partition>.<id>-future` | the copy a move builds in its target directory; `<id>` is 32 hex digits, new per move |
//! | `<topic>-<partition>.<id>-delete` | a log on its way out: the source of a finished move (same `<id>` as its copy), or a copy called off |
//!
//! # Invariants
//!
//! - A partition has exactly one `<topic>-<partition>` directory among all log directories. At
//!   start a second one refuses the start, as Kafka does ("Duplicate log directories"), and so do
//!   two copies of one partition.
//! - A move commits by renaming its source to `-delete` with the move's id: from then on its
//!   copy is the partition. So at start, a `-future` directory whose id matches a `-delete` one
//!   while the partition has no `<topic>-<partition>` finishes the swap (it is renamed into
//!   place); any other `-future` is an unfinished copy, deleted (the broker then starts its move
//!   over, `crate::broker`); every `-delete` directory is deleted.
//! - New partitions go to the online directory with the fewest partitions (current and future
//!   logs, internal ones included), ties to the earlier one in `log.dirs`: Kafka's
//!   `LogManager.nextLogDirs`.
//!
//! Everything here blocks on the disk: call it off the async workers.

pub mod meta;
pub mod movement;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::log::files::sync_dir;

pub use meta::{Identity, MetaProperties, DATA_FORMAT_VERSION, META_FILE};

/// Suffix of a move's copy (Kafka's `FutureDirSuffix`).
pub const FUTURE_SUFFIX: &str = "-future";
/// Suffix of a log being deleted (Kafka's `DeleteDirSuffix`).
pub const DELETE_SUFFIX: &str = "-delete";
/// A file only the metadata directory holds: another directory with it was the metadata
/// directory of another `log.dirs` order.
const METADATA_MARKER: &str = "topics.json";

/// Why a log directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogDirError {
    /// A directory or file could not be created, read or renamed.
    #[error("log directory {path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The directory belongs to another node, cluster or format, or is configured twice.
    #[error("log directory {path} cannot be used: {reason}")]
    Refused {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// One partition has a log in two directories (Kafka's message).
    #[error("Duplicate log directories for {topic}-{partition} are found in both {first} and {second}. It is likely because log directory failure happened while broker was replacing current replica with future replica. Recover broker from this failure by manually deleting one of the two directories for this partition. It is recommended to delete the partition in the log directory that is known to have failed recently.")]
    DuplicatePartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// One directory.
        first: String,
        /// The other.
        second: String,
    },
    /// One partition has two copies under way (Kafka's message).
    #[error("Duplicate log directories found: {first}, {second}")]
    DuplicateFuture {
        /// One copy.
        first: String,
        /// The other.
        second: String,
    },
    /// No configured directory can take a new partition.
    #[error("no log directory is online")]
    NoneOnline,
}

impl LogDirError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> LogDirError {
        LogDirError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn refused(path: &Path, reason: String) -> LogDirError {
        LogDirError::Refused {
            path: path.display().to_string(),
            reason,
        }
    }
}

/// What a directory name inside a log directory says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirName {
    /// `<topic>-<partition>`.
    Current {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// `<topic>-<partition>.<id>-future`.
    Future {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The move's id.
        id: String,
    },
    /// `<topic>-<partition>.<id>-delete`.
    Delete {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The move's id (or a fresh one).
        id: String,
    },
}

/// The name of a partition's directory.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The name of a move's copy of a partition.
pub fn future_dir_name(topic: &str, partition: i32, id: &str) -> String {
    format!("{topic}-{partition}.{id}{FUTURE_SUFFIX}")
}

/// The name of a partition log on its way out.
pub fn delete_dir_name(topic: &str, partition: i32, id: &str) -> String {
    format!("{topic}-{partition}.{id}{DELETE_SUFFIX}")
}

/// A new move id: 32 hex digits, as Kafka's `java.util.UUID` without dashes.
pub fn new_move_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Reads a directory name (Kafka's `parseTopicPartitionName`); None for anything else (the
/// broker's own files, a format 1 group log, `lost+found`).
pub fn parse_dir_name(name: &str) -> Option<DirName> {
    let topic_partition = |s: &str| -> Option<(String, i32)> {
        let (topic, partition) = s.rsplit_once('-')?;
        let partition: i32 = partition.parse().ok()?;
        (!topic.is_empty() && partition >= 0 && partition.to_string() == s[topic.len() + 1..])
            .then(|| (topic.to_string(), partition))
    };
    for (suffix, future) in [(FUTURE_SUFFIX, true), (DELETE_SUFFIX, false)] {
        if let Some(rest) = name.strip_suffix(suffix) {
            let (tp, id) = rest.rsplit_once('.')?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            let (topic, partition) = topic_partition(tp)?;
            let id = id.to_string();
            return Some(if future {
                DirName::Future {
                    topic,
                    partition,
                    id,
                }
            } else {
                DirName::Delete {
                    topic,
                    partition,
                    id,
                }
            });
        }
    }
    let (topic, partition) = topic_partition(name)?;
    Some(DirName::Current { topic, partition })
}

/// One configured log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    /// Its absolute path (as Kafka's `File.getAbsolutePath`): how DescribeLogDirs names it and
    /// AlterReplicaLogDirs must name it.
    pub path: PathBuf,
    /// Its `directory.id`.
    pub directory_id: String,
}

/// What the start found in the log directories.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every partition's directory (internal topics' too), by (topic, partition).
    pub current: HashMap<(String, i32), PathBuf>,
    /// Copies of moves that did not reach their commit point, by (topic, partition).
    pub futures: Vec<((String, i32), PathBuf)>,
}

/// The broker's log directories.
#[derive(Debug)]
pub struct LogDirs {
    dirs: Vec<LogDir>,
}

impl LogDirs {
    /// Creates the configured directories that do not exist and checks every one (readable,
    /// not configured twice, only the first holding the broker's metadata, `meta.properties`
    /// agreeing): the directories and their identity. Blocking.
    pub fn open(configured: &[PathBuf], node_id: i32) -> Result<(LogDirs, Identity), LogDirError> {
        let mut paths = Vec::with_capacity(configured.len());
        let mut canonical: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
        for dir in configured {
            let path = std::path::absolute(dir).map_err(|e| LogDirError::io(dir, e))?;
            if !path.exists() {
                tracing::info!(dir = %path.display(), "log directory not found, creating it");
                std::fs::create_dir_all(&path).map_err(|e| LogDirError::io(&path, e))?;
                if let Some(parent) = path.parent() {
                    sync_dir(parent).map_err(|e| LogDirError::io(parent, e))?;
                }
            }
            std::fs::read_dir(&path).map_err(|e| LogDirError::io(&path, e))?;
            let real = std::fs::canonicalize(&path).map_err(|e| LogDirError::io(&path, e))?;
            if let Some(other) = canonical.insert(real, path.clone()) {
                return Err(LogDirError::refused(
                    &path,
                    format!(
                        "Duplicate log directory found: {} is {}",
                        path.display(),
                        other.display()
                    ),
                ));
            }
            paths.push(path);
        }
        for path in paths.iter().skip(1) {
            if path.join(METADATA_MARKER).exists() {
                return Err(LogDirError::refused(
                    path,
                    format!("it holds the broker's metadata ({METADATA_MARKER}) but is not the first of log.dirs, where the metadata directory must be"),
                ));
            }
        }
        let identity = meta::load_or_create(&paths, node_id)?;
        let dirs = paths
            .into_iter()
            .zip(&identity.dirs)
            .map(|(path, props)| LogDir {
                path,
                directory_id: props.directory_id.clone(),
            })
            .collect();
        Ok((LogDirs { dirs }, identity))
    }

    /// The directories in configuration order.
    pub fn dirs(&self) -> &[LogDir] {
        &self.dirs
    }

    /// Their absolute paths, in configuration order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// The metadata directory: the first one.
    pub fn metadata_dir(&self) -> &Path {
        &self.dirs[0].path
    }

    /// The directory whose absolute path is exactly `path` (Kafka compares the strings).
    pub fn find(&self, path: &str) -> Option<&LogDir> {
        self.dirs
            .iter()
            .find(|d| d.path.as_os_str() == std::ffi::OsStr::new(path))
    }

    /// The log directory a partition directory lies in.
    pub fn containing(&self, partition_dir: &Path) -> Option<&LogDir> {
        let parent = partition_dir.parent()?;
        self.dirs.iter().find(|d| d.path == parent)
    }

    /// Whether the directory can be used now (it is still there and readable; Kafka takes a
    /// directory offline after an I/O error in it).
    pub fn is_online(dir: &Path) -> bool {
        std::fs::read_dir(dir).is_ok()
    }

    /// The directories for `count` new partitions, one by one as Kafka places them: each to the
    /// online directory with the fewest partitions so far, ties to the earlier. Blocking.
    pub fn place(&self, count: usize) -> Result<Vec<PathBuf>, LogDirError> {
        let mut counts: Vec<(usize, usize)> = Vec::with_capacity(self.dirs.len());
        for (i, dir) in self.dirs.iter().enumerate() {
            let logs = match std::fs::read_dir(&dir.path) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(parse_dir_name)
                            .is_some_and(|n| {
                                matches!(n, DirName::Current { .. } | DirName::Future { .. })
                            })
                    })
                    .count(),
                Err(e) => {
                    tracing::warn!(dir = %dir.path.display(), error = %e, "log directory offline; no partition placed there");
                    continue;
                }
            };
            counts.push((i, logs));
        }
        if counts.is_empty() {
            return Err(LogDirError::NoneOnline);
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(slot) = counts.iter_mut().min_by_key(|(i, n)| (*n, *i)) else {
                return Err(LogDirError::NoneOnline);
            };
            slot.1 += 1;
            out.push(self.dirs[slot.0].path.clone());
        }
        Ok(out)
    }

    /// Every existing `<topic>-<partition>` directory of one partition (a leftover of a deletion
    /// a crash interrupted has to go before the partition is created again).
    pub fn existing_partition_dirs(&self, topic: &str, partition: i32) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.path.join(partition_dir_name(topic, partition)))
            .filter(|p| p.exists())
            .collect()
    }

    /// Lists every directory, finishes interrupted swaps, deletes `-delete` directories and
    /// refuses duplicates (see the module docs). Blocking.
    pub fn scan(&self) -> Result<Scan, LogDirError> {
        let mut current: HashMap<(String, i32), PathBuf> = HashMap::new();
        let mut futures: HashMap<(String, i32), (PathBuf, String)> = HashMap::new();
        let mut deletes: Vec<(PathBuf, (String, i32), String)> = Vec::new();
        for dir in &self.dirs {
            let entries =
                std::fs::read_dir(&dir.path).map_err(|e| LogDirError::io(&dir.path, e))?;
            let mut names: Vec<String> = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| LogDirError::io(&dir.path, e))?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
                    names.push(name.to_string());
                }
            }
            names.sort();
            for name in names {
                let path = dir.path.join(&name);
                match parse_dir_name(&name) {
                    Some(DirName::Current { topic, partition }) => {
                        if let Some(other) =
                            current.insert((topic.clone(), partition), path.clone())
                        {
                            return Err(LogDirError::DuplicatePartition {
                                topic,
                                partition,
                                first: path.display().to_string(),
                                second: other.display().to_string(),
                            });
                        }
                    }
                    Some(DirName::Future {
                        topic,
                        partition,
                        id,
                    }) => {
                        if let Some((other, _)) =
                            futures.insert((topic, partition), (path.clone(), id))
                        {
                            return Err(LogDirError::DuplicateFuture {
                                first: path.display().to_string(),
                                second: other.display().to_string(),
                            });
                        }
                    }
                    Some(DirName::Delete {
                        topic,
                        partition,
                        id,
                    }) => deletes.push((path, (topic, partition), id)),
                    None => {}
                }
            }
        }
        // A copy whose source was renamed away under the same id is the partition: the move
        // passed its commit point.
        let mut unfinished = Vec::new();
        for (tp, (future, id)) in futures {
            let committed = !current.contains_key(&tp)
                && deletes.iter().any(|(_, dtp, did)| *dtp == tp && *did == id);
            if !committed {
                unfinished.push((tp, future));
                continue;
            }
            let Some(log_dir) = future.parent() else {
                continue;
            };
            let target = log_dir.join(partition_dir_name(&tp.0, tp.1));
            tracing::warn!(from = %future.display(), to = %target.display(), "finishing a partition move a crash interrupted after its commit");
            std::fs::rename(&future, &target).map_err(|e| LogDirError::io(&future, e))?;
            sync_dir(log_dir).map_err(|e| LogDirError::io(log_dir, e))?;
            current.insert(tp, target);
        }
        for (path, _, _) in deletes {
            tracing::info!(dir = %path.display(), "deleting a log left for deletion");
            remove_dir(&path)?;
        }
        unfinished.sort();
        Ok(Scan {
            current,
            futures: unfinished,
        })
    }
}

/// Removes a directory tree; one already gone is fine. Blocking.
pub fn remove_dir(path: &Path) -> Result<(), LogDirError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogDirError::io(path, e)),
    }
}

/// Takes a partition directory out of use for good: renamed to `-delete` under a fresh id
/// (atomic, so a crash leaves it whole or marked), the rename made durable, then removed.
/// Blocking.
pub fn discard(dir: &Path, topic: &str, partition: i32) -> Result<(), LogDirError> {
    let Some(parent) = dir.parent() else {
        return remove_dir(dir);
    };
    let doomed = parent.join(delete_dir_name(topic, partition, &new_move_id()));
    match std::fs::rename(dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LogDirError::io(dir, e)),
    }
    sync_dir(parent).map_err(|e| LogDirError::io(parent, e))?;
    remove_dir(&doomed)
}

#[cfg(test)]
mod tests;
