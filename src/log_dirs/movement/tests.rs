//! Moves end to end on real directories: every byte, the log start, the producer state and the
//! aborted transactions carried over; appends during a move; a crash after each step of the
//! swap, then the start's scan; a move called off.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::records::Compression;

use super::*;
use crate::clock::{ManualClock, SharedClock};
use crate::config::Config;
use crate::log::TxnResult;
use crate::log_dirs::{parse_dir_name, DirName, LogDirs};
use crate::partition::{FetchParams, Isolation, PartitionContext, TxnMarker};
use crate::tasks::Inline;
use crate::test_support::{idempotent_batch, sized_batch, transactional_batch};
use crate::topics::TopicConfig;

const NOW: i64 = 1_700_000_000_000;

struct Setup {
    a: tempfile::TempDir,
    b: tempfile::TempDir,
    clock: SharedClock,
    partition: Arc<Partition>,
}

fn open_partition(dir: &Path, clock: &SharedClock) -> Arc<Partition> {
    let mut overrides = BTreeMap::new();
    overrides.insert("segment.bytes".to_string(), "2048".to_string());
    let config = Arc::new(TopicConfig::new(overrides, &Config::default()).unwrap());
    let ctx = PartitionContext {
        clock: clock.clone(),
        background: Arc::new(Inline),
        producer_expiration_ms: 86_400_000,
    };
    Arc::new(Partition::open(dir, "t", 0, config, &ctx).unwrap())
}

/// Two log directories and partition t-0 in the first, with plain batches over several
/// segments, an idempotent producer, an aborted transaction and a log start moved by
/// DeleteRecords.
fn setup() -> Setup {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    LogDirs::open(&[a.path().to_path_buf(), b.path().to_path_buf()], 1).unwrap();
    let clock: SharedClock = ManualClock::new(NOW);
    let partition = open_partition(&a.path().join("t-0"), &clock);
    for i in 0..30 {
        partition
            .append_as_leader(&sized_batch(3, 200, NOW + i), AppendOrigin::Client)
            .unwrap();
    }
    for seq in 0..3 {
        partition
            .append_as_leader(
                &idempotent_batch(42, 0, seq * 2, 2, NOW, Compression::None),
                AppendOrigin::Client,
            )
            .unwrap();
    }
    let guard = partition.start_verification(7, 0);
    partition
        .append_as_leader_verified(
            &transactional_batch(7, 0, 0, 3, NOW, Compression::None),
            guard,
        )
        .unwrap();
    partition
        .write_txn_marker(TxnMarker {
            producer_id: 7,
            producer_epoch: 0,
            coordinator_epoch: 0,
            result: TxnResult::Abort,
        })
        .unwrap();
    partition
        .append_as_leader(&sized_batch(2, 50, NOW), AppendOrigin::Client)
        .unwrap();
    partition.flush().unwrap();
    partition.delete_records(4).unwrap();
    Setup {
        a,
        b,
        clock,
        partition,
    }
}

use crate::partition::AppendOrigin;

/// Every stored byte from the log start on, as a follower would fetch it.
fn read_all(p: &Partition) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    while offset < p.log_end_offset() {
        let r = p
            .read(FetchParams {
                offset,
                max_bytes: 1 << 20,
                min_one_batch: true,
                isolation: Isolation::LogEnd,
            })
            .unwrap();
        let headers = crate::log::validate_stored_batches(&r.records).unwrap();
        offset = headers[headers.len() - 1].last_offset() + 1;
        out.extend_from_slice(&r.records);
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("t-"))
        .collect();
    n.sort();
    n
}

#[test]
fn a_move_carries_every_byte_and_the_partition_state_and_later_appends_follow() {
    let s = setup();
    let p = &s.partition;
    let before = read_all(p);
    let (start, end) = (p.log_start_offset(), p.log_end_offset());
    let aborted = p.log().collect_aborted_txns(0, end).unwrap();
    assert_eq!(aborted.len(), 1);
    let old = p.log();
    let future = p.start_future(s.b.path()).unwrap();
    assert!(p.start_future(s.b.path()).is_none(), "already moving there");
    run_move(p, &future, s.b.path(), &|| false, &s.clock).unwrap();

    assert_eq!(p.dir(), s.b.path().join("t-0"));
    assert!(names(s.a.path()).is_empty(), "{:?}", names(s.a.path()));
    assert_eq!(names(s.b.path()), vec!["t-0"]);
    assert!(p.future().is_none());
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (start, end));
    assert_eq!(read_all(p), before, "byte for byte");
    assert_eq!(p.log().collect_aborted_txns(0, end).unwrap(), aborted);
    // The old log is sealed and never cleaned; the new one may be.
    assert!(old.is_sealed() && old.try_begin_cleaning().is_none());
    assert!(p.log().try_begin_cleaning().is_some());
    // The producer state came along: a retried batch is a duplicate, the next one in sequence.
    let retry = p
        .append_as_leader(
            &idempotent_batch(42, 0, 4, 2, NOW, Compression::None),
            AppendOrigin::Client,
        )
        .unwrap();
    assert!(
        retry.base_offset < end,
        "answered with its original offsets"
    );
    assert_eq!(p.log_end_offset(), end);
    let next = p
        .append_as_leader(
            &idempotent_batch(42, 0, 6, 2, NOW, Compression::None),
            AppendOrigin::Client,
        )
        .unwrap();
    assert_eq!(next.base_offset, end);
    let after = read_all(p);
    p.close().unwrap();
    // Reopened from its new directory (its producer snapshot there), nothing is missing.
    let reopened = open_partition(&s.b.path().join("t-0"), &s.clock);
    assert_eq!(read_all(&reopened), after);
    assert_eq!(reopened.log_start_offset(), start);
    let dup = reopened
        .append_as_leader(
            &idempotent_batch(42, 0, 6, 2, NOW, Compression::None),
            AppendOrigin::Client,
        )
        .unwrap();
    assert_eq!(dup.base_offset, end);
}

#[test]
fn appends_during_a_move_all_land_once_and_in_order() {
    let s = setup();
    let p = s.partition.clone();
    let end = p.log_end_offset();
    let writer = {
        let p = p.clone();
        std::thread::spawn(move || {
            let mut offsets = Vec::new();
            for i in 0..400 {
                let info = p
                    .append_as_leader(&sized_batch(1, 100, NOW + i), AppendOrigin::Client)
                    .unwrap();
                offsets.push(info.base_offset);
            }
            offsets
        })
    };
    let future = p.start_future(s.b.path()).unwrap();
    run_move(&p, &future, s.b.path(), &|| false, &s.clock).unwrap();
    let offsets = writer.join().unwrap();
    let expected: Vec<i64> = (end..end + 400).collect();
    assert_eq!(
        offsets, expected,
        "every append got the next offset, none twice"
    );
    assert_eq!(p.log_end_offset(), end + 400);
    assert_eq!(p.dir(), s.b.path().join("t-0"));
    let all = crate::log::validate_stored_batches(&read_all(&p)).unwrap();
    assert_eq!(all.last().unwrap().last_offset(), end + 399);
    p.close().unwrap();
    let reopened = open_partition(&s.b.path().join("t-0"), &s.clock);
    assert_eq!(reopened.log_end_offset(), end + 400);
}

/// A crash right after each step of the swap, then the start's scan: exactly one copy is the
/// partition, with every byte.
#[test]
fn a_crash_after_any_step_leaves_exactly_one_copy_with_every_byte() {
    for step in 1..=3u8 {
        let s = setup();
        let p = &s.partition;
        let before = read_all(p);
        let future = p.start_future(s.b.path()).unwrap();
        CRASH_AFTER.with(|c| c.set(Some(step)));
        let result = run_move(p, &future, s.b.path(), &|| false, &s.clock);
        CRASH_AFTER.with(|c| c.set(None));
        assert!(
            matches!(result, Err(MoveError::Crashed)),
            "step {step}: {result:?}"
        );
        // kill -9: nothing more runs; the page cache keeps what was written.
        let (a, b) = (s.a.path().to_path_buf(), s.b.path().to_path_buf());
        drop(s.partition);
        let (dirs, _) = LogDirs::open(&[a.clone(), b.clone()], 1).unwrap();
        let scan = dirs.scan().unwrap();
        let home = scan.current[&("t".to_string(), 0)].clone();
        let expected = if step == 1 {
            a.join("t-0")
        } else {
            b.join("t-0")
        };
        assert_eq!(home, expected, "step {step}");
        if step == 1 {
            assert_eq!(scan.futures.len(), 1, "the unfinished copy is reported");
            assert!(matches!(
                parse_dir_name(scan.futures[0].1.file_name().unwrap().to_str().unwrap()),
                Some(DirName::Future { .. })
            ));
        } else {
            assert!(scan.futures.is_empty());
        }
        let leftovers: Vec<String> = names(&a)
            .into_iter()
            .chain(names(&b))
            .filter(|n| n.ends_with("-delete"))
            .collect();
        assert!(leftovers.is_empty(), "step {step}: {leftovers:?}");
        let reopened = open_partition(&home, &s.clock);
        assert_eq!(read_all(&reopened), before, "step {step}");
    }
}

#[test]
fn a_move_called_off_removes_its_copy_and_a_move_home_is_nothing() {
    let s = setup();
    let p = &s.partition;
    let future = p.start_future(s.b.path()).unwrap();
    // Another target (here: back home) calls the first one off.
    let other = p.start_future(s.a.path()).unwrap();
    assert!(future.is_cancelled() && !other.is_cancelled());
    let result = run_move(p, &future, s.b.path(), &|| false, &s.clock);
    assert!(matches!(result, Err(MoveError::Cancelled)), "{result:?}");
    assert!(names(s.b.path()).is_empty(), "{:?}", names(s.b.path()));
    assert_eq!(
        p.future().map(|f| f.log_dir().to_path_buf()),
        Some(s.a.path().to_path_buf())
    );
    p.cancel_future();
    assert!(other.is_cancelled() && p.future().is_none());
    // A shutdown stops a move between two chunks and leaves its copy for the next start.
    let future = p.start_future(s.b.path()).unwrap();
    let stops = std::sync::atomic::AtomicUsize::new(0);
    let stop = || stops.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1;
    let result = run_move(p, &future, s.b.path(), &stop, &s.clock);
    assert!(matches!(result, Err(MoveError::Stopped)), "{result:?}");
    assert_eq!(p.dir(), s.a.path().join("t-0"));
    let left = names(s.b.path());
    assert!(left.len() == 1 && left[0].ends_with("-future"), "{left:?}");
    let (dirs, _) =
        LogDirs::open(&[s.a.path().to_path_buf(), s.b.path().to_path_buf()], 1).unwrap();
    let scan = dirs.scan().unwrap();
    assert_eq!(scan.futures.len(), 1, "the start finds the move");
    assert!(p.future().is_none());
    // The log takes appends as before.
    let end = p.log_end_offset();
    let info = p
        .append_as_leader(&sized_batch(1, 10, NOW), AppendOrigin::Client)
        .unwrap();
    assert_eq!(info.base_offset, end);
}
