//! Producer ids: handed out from a persisted counter, never twice, not even after `kill -9`.
//!
//! Ids are reserved in blocks: before the first id of a block is handed out, the end of the
//! block is written atomically to `producer-ids` in the data directory. A restart continues
//! at the persisted end, so ids of a block that was only partly used are skipped, never reused
//! (Kafka's controller allocates producer id blocks the same way).

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::log::write_atomically;

/// File holding the first id not yet reserved.
const FILE: &str = "producer-ids";
/// Ids reserved per write of the file.
const BLOCK: i64 = 1000;

/// Allocates producer ids.
pub struct ProducerIdManager {
    dir: PathBuf,
    state: Mutex<Allocation>,
}

struct Allocation {
    next: i64,
    reserved_end: i64,
}

impl ProducerIdManager {
    /// Reads the persisted counter (a missing file starts at 0).
    pub fn open(dir: &Path) -> std::io::Result<ProducerIdManager> {
        let start = match std::fs::read_to_string(dir.join(FILE)) {
            Ok(text) => text.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join(FILE).display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdManager {
            dir: dir.to_path_buf(),
            state: Mutex::new(Allocation {
                next: start,
                reserved_end: start,
            }),
        })
    }

    /// A producer id no one has had before.
    pub fn next_id(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock();
        if state.next >= state.reserved_end {
            let end = state.next + BLOCK;
            write_atomically(&self.dir, FILE, end.to_string().as_bytes())?;
            state.reserved_end = end;
        }
        let id = state.next;
        state.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            // Each "restart" (including an unclean one: nothing is flushed on drop) continues
            // past every id that may have been handed out.
            let m = ProducerIdManager::open(dir.path()).unwrap();
            for _ in 0..1500 {
                assert!(seen.insert(m.next_id().unwrap()));
            }
        }
        assert_eq!(seen.len(), 4500);
    }
}
