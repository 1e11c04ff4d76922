//! `meta.properties`: the identity every log directory carries (Kafka's `MetaProperties`,
//! version 1), written when the directory is first used and checked at every start.
//!
//! # Format
//!
//! Java properties text, one `key=value` a line, `#` comments:
//!
//! | key | value |
//! | --- | --- |
//! | `version` | `1` (Kafka's KRaft layout) |
//! | `cluster.id` | the cluster id, the same in every directory (generated once, as Kafka's `Uuid.randomUuid()` prints it) |
//! | `node.id` | the broker's `node.id` |
//! | `directory.id` | this directory's own id (KIP-858), a random Kafka uuid, unique among the broker's directories |
//! | `rivulet.format.version` | Rivulet's data format; 2 splits the group log into `__consumer_offsets-N` |
//!
//! # Rules (Kafka's `MetaPropertiesEnsemble.verify`)
//!
//! A directory whose file names another node id, another cluster id than the other
//! directories, a format this build cannot read, or no cluster id, refuses the start; so does a
//! file that cannot be read. A directory without the file gets one (the cluster id of the others,
//! or a new one when none has any); one without `directory.id` (written before Rivulet kept
//! several directories) gets a fresh id. A directory of format 1 is upgraded by the broker
//! (`crate::broker`), which then rewrites the file at the current format.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use uuid::Uuid;

use super::LogDirError;
use crate::log::write_atomically;

/// The on-disk format this build writes: 2 splits the group log into `__consumer_offsets-N`
/// partitions. A directory of format 1 (one group log) is upgraded in place on start, then
/// marked 2, so an older build refuses it instead of starting without its groups.
pub const DATA_FORMAT_VERSION: u32 = 2;
/// The older formats this build upgrades.
const UPGRADABLE_FORMATS: &[u32] = &[1];
/// The file's name in every log directory.
pub const META_FILE: &str = "meta.properties";

/// One log directory's `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// `cluster.id`.
    pub cluster_id: String,
    /// `node.id`.
    pub node_id: i32,
    /// `directory.id`.
    pub directory_id: String,
    /// `rivulet.format.version`.
    pub format: u32,
}

impl MetaProperties {
    /// Writes the file into `dir` atomically (blocking: fsync, rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = format!(
            "# Rivulet log directory identity; do not edit.\nversion=1\ncluster.id={}\nnode.id={}\ndirectory.id={}\nrivulet.format.version={}\n",
            self.cluster_id, self.node_id, self.directory_id, self.format
        );
        write_atomically(dir, META_FILE, text.as_bytes())
    }
}

/// The identity of the broker's log directories once checked and completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The cluster id every directory carries.
    pub cluster_id: String,
    /// Each directory's properties, in configuration order (the first: the metadata directory).
    pub dirs: Vec<MetaProperties>,
}

impl Identity {
    /// The metadata directory's data format (what the broker may have to upgrade).
    pub fn format(&self) -> u32 {
        self.dirs.first().map_or(DATA_FORMAT_VERSION, |d| d.format)
    }

    /// Rewrites every directory's file at the current format, once every upgrade step is
    /// durable. Blocking.
    pub fn mark_upgraded(&mut self, dirs: &[PathBuf]) -> Result<(), LogDirError> {
        for (props, dir) in self.dirs.iter_mut().zip(dirs) {
            if props.format != DATA_FORMAT_VERSION {
                props.format = DATA_FORMAT_VERSION;
                props.write(dir).map_err(|e| LogDirError::io(dir, e))?;
            }
        }
        Ok(())
    }
}

/// A random id as Kafka's `Uuid.randomUuid()` makes one: 16 random bytes (a version 4 uuid,
/// never one of Kafka's reserved ids), printed as unpadded URL-safe base64, drawn again while
/// it would start with `-` (which command lines take for an option).
pub fn random_kafka_uuid() -> String {
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Whether `id` is a Kafka uuid as printed (22 characters of URL-safe base64, 16 bytes).
fn is_kafka_uuid(id: &str) -> bool {
    id.len() == 22
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .is_ok_and(|b| b.len() == 16)
}

/// Reads the properties of `dir`, None if it has no file (blocking).
fn read(dir: &Path) -> Result<Option<BTreeMap<String, String>>, LogDirError> {
    match std::fs::read_to_string(dir.join(META_FILE)) {
        Ok(text) => Ok(Some(
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogDirError::io(&dir.join(META_FILE), e)),
    }
}

/// Checks one directory's properties against the node id; the cluster id is compared later.
fn parse(
    dir: &Path,
    props: &BTreeMap<String, String>,
    node_id: i32,
) -> Result<MetaProperties, LogDirError> {
    let refused = |reason: String| LogDirError::refused(dir, reason);
    let format = props.get("rivulet.format.version");
    let version = format
        .and_then(|f| f.parse::<u32>().ok())
        .filter(|v| *v == DATA_FORMAT_VERSION || UPGRADABLE_FORMATS.contains(v));
    let Some(format) = version else {
        return Err(refused(format!(
            "{META_FILE} has rivulet.format.version {}, this build uses {DATA_FORMAT_VERSION}",
            format.map_or("(none: not a Rivulet data directory)", |f| f.as_str())
        )));
    };
    if let Some(v) = props.get("version").filter(|v| v.as_str() != "1") {
        return Err(refused(format!("{META_FILE} has version {v}, expected 1")));
    }
    let stored_node: Option<i32> = props.get("node.id").and_then(|v| v.parse().ok());
    if stored_node != Some(node_id) {
        return Err(refused(format!(
            "it belongs to node.id {}, this broker is node.id {node_id}",
            props.get("node.id").map_or("(missing)", |n| n.as_str())
        )));
    }
    let cluster_id = props
        .get("cluster.id")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| refused(format!("{META_FILE} has no cluster.id")))?;
    let directory_id = match props.get("directory.id") {
        Some(id) if is_kafka_uuid(id) => id.clone(),
        Some(id) => {
            return Err(refused(format!(
                "{META_FILE} has directory.id {id}, which is not a Kafka uuid"
            )))
        }
        // Written before Rivulet kept several directories: given one below.
        None => String::new(),
    };
    Ok(MetaProperties {
        cluster_id,
        node_id,
        directory_id,
        format,
    })
}

/// Reads, checks and completes the identity of `dirs` (existing directories, in configuration
/// order), writing the file where it is missing or lacks a directory id. Blocking.
pub fn load_or_create(dirs: &[PathBuf], node_id: i32) -> Result<Identity, LogDirError> {
    let mut found: Vec<Option<MetaProperties>> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        found.push(match read(dir)? {
            Some(props) => Some(parse(dir, &props, node_id)?),
            None => None,
        });
    }
    // The cluster id: the first directory's that has one; every other must agree.
    let reference = dirs
        .iter()
        .zip(&found)
        .find_map(|(dir, p)| p.as_ref().map(|p| (dir, p.cluster_id.clone())));
    let cluster_id = match &reference {
        Some((first, cluster_id)) => {
            for (dir, props) in dirs.iter().zip(&found) {
                if let Some(p) = props.as_ref().filter(|p| &p.cluster_id != cluster_id) {
                    return Err(LogDirError::refused(
                        dir,
                        format!(
                            "Invalid cluster.id in {}: expected {cluster_id} (as in {}), but read {}",
                            dir.join(META_FILE).display(),
                            first.display(),
                            p.cluster_id
                        ),
                    ));
                }
            }
            cluster_id.clone()
        }
        None => random_kafka_uuid(),
    };
    let mut ids: BTreeMap<String, &Path> = BTreeMap::new();
    for (dir, props) in dirs.iter().zip(&found) {
        let Some(p) = props.as_ref().filter(|p| !p.directory_id.is_empty()) else {
            continue;
        };
        if let Some(other) = ids.insert(p.directory_id.clone(), dir) {
            return Err(LogDirError::refused(
                dir,
                format!(
                    "directory.id {} is also the directory.id of {}",
                    p.directory_id,
                    other.display()
                ),
            ));
        }
    }
    let mut taken: BTreeSet<String> = ids.into_keys().collect();
    let mut out = Vec::with_capacity(dirs.len());
    for (dir, props) in dirs.iter().zip(found) {
        let complete = props.as_ref().is_some_and(|p| !p.directory_id.is_empty());
        let mut props = props.unwrap_or(MetaProperties {
            cluster_id: cluster_id.clone(),
            node_id,
            directory_id: String::new(),
            format: DATA_FORMAT_VERSION,
        });
        if !complete {
            while props.directory_id.is_empty() || taken.contains(&props.directory_id) {
                props.directory_id = random_kafka_uuid();
            }
            taken.insert(props.directory_id.clone());
            props.write(dir).map_err(|e| LogDirError::io(dir, e))?;
        }
        out.push(props);
    }
    Ok(Identity {
        cluster_id,
        dirs: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(n: usize) -> (Vec<tempfile::TempDir>, Vec<PathBuf>) {
        let temps: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let paths = temps.iter().map(|t| t.path().to_path_buf()).collect();
        (temps, paths)
    }

    fn text(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(META_FILE)).unwrap()
    }

    #[test]
    fn every_directory_gets_the_cluster_id_and_its_own_directory_id() {
        let (_t, paths) = dirs(3);
        let id = load_or_create(&paths, 4).unwrap();
        assert!(is_kafka_uuid(&id.cluster_id), "{}", id.cluster_id);
        let ids: BTreeSet<&str> = id.dirs.iter().map(|d| d.directory_id.as_str()).collect();
        assert_eq!(ids.len(), 3, "directory ids are unique");
        for (dir, props) in paths.iter().zip(&id.dirs) {
            let t = text(dir);
            assert!(t.contains("version=1\n"), "{t}");
            assert!(
                t.contains(&format!("cluster.id={}\n", id.cluster_id)),
                "{t}"
            );
            assert!(t.contains("node.id=4\n"), "{t}");
            assert!(
                t.contains(&format!("directory.id={}\n", props.directory_id)),
                "{t}"
            );
            assert!(is_kafka_uuid(&props.directory_id));
        }
        // Checked, not rewritten, at the next start.
        assert_eq!(load_or_create(&paths, 4).unwrap(), id);
    }

    #[test]
    fn a_new_directory_joins_the_existing_cluster() {
        let (_t, paths) = dirs(2);
        let first = load_or_create(&paths[..1], 1).unwrap();
        let both = load_or_create(&paths, 1).unwrap();
        assert_eq!(both.cluster_id, first.cluster_id);
        assert_eq!(both.dirs[0], first.dirs[0]);
        // Also when the new directory comes first.
        let (_u, more) = dirs(1);
        let reordered = [more[0].clone(), paths[0].clone()];
        assert_eq!(
            load_or_create(&reordered, 1).unwrap().cluster_id,
            first.cluster_id
        );
    }

    #[test]
    fn another_cluster_or_node_or_an_unreadable_file_is_refused() {
        let (_t, paths) = dirs(2);
        load_or_create(&paths, 1).unwrap();
        // Another node.
        let err = load_or_create(&paths, 2).unwrap_err().to_string();
        assert!(
            err.contains("it belongs to node.id 1, this broker is node.id 2"),
            "{err}"
        );
        // Another cluster in the second directory.
        let other = text(&paths[1]).replace("cluster.id=", "cluster.id=x");
        std::fs::write(paths[1].join(META_FILE), other).unwrap();
        let err = load_or_create(&paths, 1).unwrap_err().to_string();
        assert!(err.contains("Invalid cluster.id"), "{err}");
        assert!(err.contains(&paths[1].display().to_string()), "{err}");
        // A file that cannot be read as text.
        std::fs::write(paths[1].join(META_FILE), [0xff, 0xfe, 0x00]).unwrap();
        let err = load_or_create(&paths, 1).unwrap_err().to_string();
        assert!(err.contains(META_FILE), "{err}");
        // Two directories with one directory id.
        let first = text(&paths[0]);
        std::fs::write(paths[1].join(META_FILE), &first).unwrap();
        let err = load_or_create(&paths, 1).unwrap_err().to_string();
        assert!(err.contains("is also the directory.id of"), "{err}");
    }

    #[test]
    fn a_file_without_a_directory_id_gets_one_and_keeps_its_cluster() {
        let (_t, paths) = dirs(1);
        std::fs::write(
            paths[0].join(META_FILE),
            "version=1\nrivulet.format.version=2\ncluster.id=c1\nnode.id=1\n",
        )
        .unwrap();
        let id = load_or_create(&paths, 1).unwrap();
        assert_eq!(id.cluster_id, "c1");
        let t = text(&paths[0]);
        assert!(
            t.contains(&format!("directory.id={}", id.dirs[0].directory_id)),
            "{t}"
        );
        assert!(t.contains("cluster.id=c1\n"), "{t}");
    }

    #[test]
    fn kafka_uuids_never_start_with_a_dash() {
        for _ in 0..2000 {
            let id = random_kafka_uuid();
            assert!(is_kafka_uuid(&id) && !id.starts_with('-'), "{id}");
        }
    }
}
