//! Directory names, the start's scan (finished swaps, leftovers, duplicates) and placement.

use super::*;

fn open(dirs: &[&Path]) -> LogDirs {
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    LogDirs::open(&paths, 1).unwrap().0
}

fn mkdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("00000000000000000000.log"), name).unwrap();
    dir
}

fn content(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("00000000000000000000.log")).unwrap()
}

#[test]
fn directory_names_parse_as_kafka_parses_them() {
    let current = |t: &str, p| DirName::Current {
        topic: t.into(),
        partition: p,
    };
    assert_eq!(parse_dir_name("orders-3"), Some(current("orders", 3)));
    assert_eq!(parse_dir_name("a.b-c-12"), Some(current("a.b-c", 12)));
    // `t-` is a legal topic name.
    assert_eq!(parse_dir_name("t--1"), Some(current("t-", 1)));
    assert_eq!(
        parse_dir_name("__consumer_offsets-49"),
        Some(current("__consumer_offsets", 49))
    );
    let id = new_move_id();
    assert_eq!(id.len(), 32);
    assert_eq!(
        parse_dir_name(&future_dir_name("a.b-c", 7, &id)),
        Some(DirName::Future {
            topic: "a.b-c".into(),
            partition: 7,
            id: id.clone()
        })
    );
    assert_eq!(
        parse_dir_name(&delete_dir_name("t", 0, &id)),
        Some(DirName::Delete {
            topic: "t".into(),
            partition: 0,
            id
        })
    );
    for other in [
        "topics.json",
        "__consumer_offsets",
        "lost+found",
        "t-x",
        "t-+1",
        "t-01",
        "-3",
        "t-0.-future",
        "t-0.a.b-delete",
    ] {
        assert_eq!(parse_dir_name(other), None, "{other}");
    }
}

#[test]
fn the_scan_finishes_committed_swaps_and_clears_leftovers() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dirs = open(&[a.path(), b.path()]);
    // t-0: committed (source renamed to -delete under the move's id), copy not yet renamed.
    let committed = new_move_id();
    mkdir(a.path(), &delete_dir_name("t", 0, &committed));
    mkdir(b.path(), &future_dir_name("t", 0, &committed));
    // t-1: a copy under way, its source still in place.
    let unfinished = new_move_id();
    mkdir(a.path(), "t-1");
    let copy = mkdir(b.path(), &future_dir_name("t", 1, &unfinished));
    // t-2: moved, only the source's removal was interrupted.
    let done = new_move_id();
    mkdir(b.path(), "t-2");
    mkdir(a.path(), &delete_dir_name("t", 2, &done));
    // t-3: a deleted source whose id matches no copy goes.
    mkdir(a.path(), "t-3");
    mkdir(b.path(), &delete_dir_name("t", 3, &new_move_id()));

    let scan = dirs.scan().unwrap();
    let home = |p| scan.current.get(&("t".to_string(), p)).cloned();
    assert_eq!(home(0), Some(b.path().join("t-0")));
    assert_eq!(
        content(&b.path().join("t-0")),
        future_dir_name("t", 0, &committed)
    );
    assert_eq!(home(1), Some(a.path().join("t-1")));
    assert_eq!(home(2), Some(b.path().join("t-2")));
    assert_eq!(home(3), Some(a.path().join("t-3")));
    assert_eq!(scan.futures, vec![(("t".to_string(), 1), copy)]);
    for dir in [a.path(), b.path()] {
        let left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(DELETE_SUFFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // A second scan finds the same (nothing left to finish).
    let again = dirs.scan().unwrap();
    assert_eq!(again.current, scan.current);
}

#[test]
fn a_partition_or_a_copy_found_twice_refuses_the_start() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dirs = open(&[a.path(), b.path()]);
    mkdir(a.path(), "t-0");
    mkdir(b.path(), "t-0");
    let err = dirs.scan().unwrap_err().to_string();
    assert!(
        err.starts_with("Duplicate log directories for t-0 are found in both"),
        "{err}"
    );
    std::fs::remove_dir_all(b.path().join("t-0")).unwrap();
    mkdir(a.path(), &future_dir_name("t", 0, &new_move_id()));
    mkdir(b.path(), &future_dir_name("t", 0, &new_move_id()));
    let err = dirs.scan().unwrap_err().to_string();
    assert!(
        err.starts_with("Duplicate log directories found: "),
        "{err}"
    );
}

#[test]
fn placement_counts_current_and_future_logs_and_skips_offline_dirs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let dirs = open(&[a.path(), b.path(), c.path()]);
    mkdir(a.path(), "x-0");
    mkdir(a.path(), "__consumer_offsets-3");
    mkdir(b.path(), &future_dir_name("x", 1, &new_move_id()));
    mkdir(b.path(), &delete_dir_name("x", 2, &new_move_id()));
    let placed = dirs.place(4).unwrap();
    let c_ = c.path().to_path_buf();
    let b_ = b.path().to_path_buf();
    let a_ = a.path().to_path_buf();
    // Counts 2, 1, 0: c, then b and c tie at 1 (b first), then c, then all tie at 2 (a).
    assert_eq!(placed, vec![c_.clone(), b_, c_, a_]);
    // One directory alone takes everything.
    assert_eq!(open(&[a.path()]).place(2).unwrap().len(), 2);
}

#[test]
fn only_the_first_directory_may_hold_the_metadata_and_none_is_configured_twice() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(b.path().join("topics.json"), "{}").unwrap();
    let err = LogDirs::open(&[a.path().to_path_buf(), b.path().to_path_buf()], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not the first of log.dirs"), "{err}");
    let link = a.path().join("link");
    std::os::unix::fs::symlink(b.path(), &link).unwrap();
    let err = LogDirs::open(&[b.path().to_path_buf(), link], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Duplicate log directory found"), "{err}");
}

#[test]
fn paths_are_absolute_and_found_by_their_exact_text() {
    let a = tempfile::tempdir().unwrap();
    let dirs = open(&[a.path()]);
    let text = a.path().display().to_string();
    assert!(dirs.find(&text).is_some());
    assert!(dirs.find(&format!("{text}/")).is_none());
    assert!(dirs.find("relative").is_none());
    assert_eq!(dirs.metadata_dir(), a.path());
    assert_eq!(dirs.dirs()[0].directory_id.len(), 22);
}
