//! Small durable files beside the segments, and the one way every component replaces a file.
//!
//! [`write_atomically`] replaces `dir/name` so that a crash leaves the old or the new content
//! whole, never a torn mix: write `name.tmp`, fsync it, rename it over `name`, fsync the directory.
//! Loaders delete leftover `*.tmp` files. The one-offset files (`recovery-point`,
//! `log-start-offset`) hold one decimal offset and a newline.
//!
//! Everything here blocks on the disk: call it from blocking contexts only (see `lib.rs`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Suffix of the temporary file [`write_atomically`] renames into place.
pub const TMP_SUFFIX: &str = ".tmp";

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new file whole.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Makes creations, renames and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Atomically replaces the one-offset file `name` with `offset`.
pub(crate) fn write_offset_file(dir: &Path, name: &str, offset: i64) -> io::Result<()> {
    write_atomically(dir, name, format!("{offset}\n").as_bytes())
}

/// A one-offset file; `None` if absent, or unreadable (logged: the caller falls back to a safe
/// default, such as recovering everything).
pub(crate) fn read_offset_file(dir: &Path, name: &str) -> io::Result<Option<i64>> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => String::new(),
        Err(e) => return Err(e),
    };
    match text.trim().parse::<i64>() {
        Ok(r) if r >= 0 => Ok(Some(r)),
        _ => {
            tracing::warn!(file = %path.display(), "unreadable offset file, ignored");
            Ok(None)
        }
    }
}

/// Removes a file; a file that is already gone is fine.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_replace_and_offset_files() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "f", b"one").unwrap();
        write_atomically(dir.path(), "f", b"two").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"two");
        assert!(!dir.path().join("f.tmp").exists());

        assert_eq!(read_offset_file(dir.path(), "o").unwrap(), None);
        write_offset_file(dir.path(), "o", 42).unwrap();
        assert_eq!(read_offset_file(dir.path(), "o").unwrap(), Some(42));
        fs::write(dir.path().join("o"), "-3\n").unwrap();
        assert_eq!(read_offset_file(dir.path(), "o").unwrap(), None);
        remove_if_exists(&dir.path().join("o")).unwrap();
        remove_if_exists(&dir.path().join("o")).unwrap();
    }
}
