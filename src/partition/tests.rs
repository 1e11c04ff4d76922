//! The partition layer's seams: leader and follower appends, reads up to each isolation bound,
//! the high watermark policy, truncation, idempotence, Kafka's `LogValidator` refusals, the
//! epoch cache across restarts, producer snapshots written off the caller, and transactions:
//! verification, markers, the last stable offset and aborted transactions in reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::records::Compression;

use super::*;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::log::{set_partition_leader_epoch, validate_stored_batches};
use crate::tasks::Inline;
use crate::test_support::{
    batch, batch_with_keys, encode, idempotent_batch, records, sized_batch, transactional_batch,
};

const NOW: i64 = 1_700_000_000_000;

fn ctx(clock: &Arc<ManualClock>) -> PartitionContext {
    PartitionContext {
        clock: clock.clone(),
        background: Arc::new(Inline),
        producer_expiration_ms: 86_400_000,
    }
}

fn topic_config(overrides: &[(&str, &str)]) -> Arc<TopicConfig> {
    let overrides: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(TopicConfig::new(overrides, &Config::default()).unwrap())
}

fn open(dir: &Path, clock: &Arc<ManualClock>, overrides: &[(&str, &str)]) -> Arc<Partition> {
    Arc::new(Partition::open(dir, "t", 0, topic_config(overrides), &ctx(clock)).unwrap())
}

fn fetch(p: &Partition, offset: i64, isolation: Isolation) -> ReadInfo {
    p.read(FetchParams {
        offset,
        max_bytes: 1 << 20,
        min_one_batch: true,
        isolation,
    })
    .unwrap()
}

/// (base, last) offsets of the batches a read returned.
fn offsets(records: &[u8]) -> Vec<(i64, i64)> {
    if records.is_empty() {
        return Vec::new();
    }
    validate_stored_batches(records)
        .unwrap()
        .iter()
        .map(|h| (h.base_offset, h.last_offset()))
        .collect()
}

#[test]
fn leader_appends_move_the_high_watermark_and_wake_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    let notified = p.appended().notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let info = p
        .append_as_leader(&batch(3, Compression::None, NOW), AppendOrigin::Client)
        .unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    // Single replica: the append is replicated as soon as it is in the log.
    assert_eq!(
        (
            p.log_end_offset(),
            p.high_watermark(),
            p.last_stable_offset()
        ),
        (3, 3, 3)
    );
    assert!(
        futures_util::FutureExt::now_or_never(notified).is_some(),
        "a parked fetch is woken"
    );
    p.append_as_leader(&batch(2, Compression::Lz4, NOW), AppendOrigin::Client)
        .unwrap();
    let read = fetch(&p, 1, Isolation::HighWatermark);
    assert_eq!(offsets(&read.records), [(0, 2), (3, 4)]);
    assert_eq!(
        (
            read.high_watermark,
            read.last_stable_offset,
            read.log_start_offset
        ),
        (5, 5, 0)
    );
    let c = p.counters();
    assert_eq!(
        c.appended_records
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
}

#[test]
fn follower_appends_keep_offsets_and_reads_stop_at_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    // A leader's batches: offsets 0-1 and 5-7 (compacted away in between), epoch 4.
    let mut first = encode(&records(0, 2, NOW), Compression::None).to_vec();
    let mut second = encode(&records(5, 3, NOW), Compression::None).to_vec();
    set_partition_leader_epoch(&mut first, 4).unwrap();
    set_partition_leader_epoch(&mut second, 4).unwrap();
    let mut both = first.clone();
    both.extend_from_slice(&second);
    let info = p.append_as_follower(&both).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 7));
    assert_eq!((p.log_end_offset(), p.high_watermark()), (8, 0));
    // Consumers see nothing until the leader's high watermark arrives; the log end is there.
    assert!(fetch(&p, 0, Isolation::HighWatermark).records.is_empty());
    assert_eq!(
        offsets(&fetch(&p, 0, Isolation::LogEnd).records),
        [(0, 1), (5, 7)]
    );
    assert_eq!(p.update_high_watermark(5), 5);
    assert_eq!(
        offsets(&fetch(&p, 0, Isolation::HighWatermark).records),
        [(0, 1)]
    );
    // Capped at the log end.
    assert_eq!(p.update_high_watermark(100), 8);
    assert_eq!(p.end_offset_for_epoch(4), (4, 8));
    // A batch that goes backwards is refused.
    assert!(matches!(
        p.append_as_follower(&first),
        Err(PartitionError::Log(
            crate::log::LogError::OffsetsOutOfOrder { .. }
        ))
    ));
}

#[test]
fn the_epoch_cache_survives_a_restart_and_sets_the_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    {
        let p = open(dir.path(), &clock, &[]);
        assert_eq!(p.leader_epoch(), 0);
        for (base, epoch) in [(0, 1), (2, 1), (4, 3)] {
            let mut b = encode(&records(base, 2, NOW), Compression::None).to_vec();
            set_partition_leader_epoch(&mut b, epoch).unwrap();
            p.append_as_follower(&b).unwrap();
        }
        p.close().unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
    assert_eq!(text, "0\n2\n1 0\n3 4\n");
    let p = open(dir.path(), &clock, &[]);
    assert_eq!(p.leader_epoch(), 3);
    assert_eq!(p.end_offset_for_epoch(1), (1, 4));
    assert_eq!(p.end_offset_for_epoch(2), (1, 4));
    assert_eq!(p.end_offset_for_epoch(3), (3, 6));
    // A leader append stamps the current epoch.
    p.append_as_leader(&batch(1, Compression::None, NOW), AppendOrigin::Client)
        .unwrap();
    let read = fetch(&p, 6, Isolation::LogEnd);
    assert_eq!(
        validate_stored_batches(&read.records).unwrap()[0].partition_leader_epoch,
        3
    );
}

#[test]
fn truncation_caps_the_high_watermark_and_rebuilds_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    for seq in [0, 2, 4] {
        p.append_as_leader(
            &idempotent_batch(7, 0, seq, 2, NOW, Compression::None),
            AppendOrigin::Client,
        )
        .unwrap();
    }
    assert_eq!(p.high_watermark(), 6);
    assert_eq!(p.truncate_to(4).unwrap(), 4);
    assert_eq!((p.log_end_offset(), p.high_watermark()), (4, 4));
    assert_eq!(p.producers()[0].last_seq(), 3);
    // The batch the truncation removed is new again, not a duplicate.
    let info = p
        .append_as_leader(
            &idempotent_batch(7, 0, 4, 2, NOW, Compression::None),
            AppendOrigin::Client,
        )
        .unwrap();
    assert_eq!(info.base_offset, 4);
    assert_eq!(p.log_end_offset(), 6);
}

#[test]
fn idempotent_retries_are_answered_with_their_original_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    let b = idempotent_batch(3, 0, 0, 4, NOW, Compression::Snappy);
    let first = p.append_as_leader(&b, AppendOrigin::Client).unwrap();
    let again = p.append_as_leader(&b, AppendOrigin::Client).unwrap();
    assert_eq!(
        (again.base_offset, again.last_offset),
        (first.base_offset, first.last_offset)
    );
    assert_eq!(p.log_end_offset(), 4, "stored once");
    let gap = idempotent_batch(3, 0, 9, 1, NOW, Compression::None);
    assert!(matches!(
        p.append_as_leader(&gap, AppendOrigin::Client),
        Err(PartitionError::Producer(
            ProducerError::OutOfOrderSequence { .. }
        ))
    ));
    assert_eq!(p.producers().len(), 1);
}

#[test]
fn log_validator_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(
        dir.path(),
        &clock,
        &[
            ("max.message.bytes", "200"),
            ("cleanup.policy", "compact"),
            ("message.timestamp.after.max.ms", "1000"),
        ],
    );
    let mut two = batch(1, Compression::None, NOW).to_vec();
    two.extend_from_slice(&batch(1, Compression::None, NOW));
    assert!(matches!(
        p.append_as_leader(&two, AppendOrigin::Client),
        Err(PartitionError::MultipleBatches)
    ));
    assert!(matches!(
        p.append_as_leader(&sized_batch(3, 100, NOW), AppendOrigin::Client),
        Err(PartitionError::MessageTooLarge { max: 200, .. })
    ));
    assert!(matches!(
        p.append_as_leader(
            &batch(1, Compression::None, NOW + 5_000),
            AppendOrigin::Client
        ),
        Err(PartitionError::InvalidTimestamp { .. })
    ));
    assert!(matches!(
        p.append_as_leader(
            &batch_with_keys(2, Compression::Gzip, NOW, false),
            AppendOrigin::Client
        ),
        Err(PartitionError::KeylessRecordOnCompactedTopic { .. })
    ));
    let mut corrupt = batch(1, Compression::None, NOW).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    // Keys are checked (decoding the batch) before the CRC, as Rivulet always has.
    assert!(matches!(
        p.append_as_leader(&corrupt, AppendOrigin::Client),
        Err(PartitionError::UndecodableBatch(_))
    ));
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = open(plain_dir.path(), &clock, &[]);
    assert!(matches!(
        plain.append_as_leader(&corrupt, AppendOrigin::Client),
        Err(PartitionError::Batch(
            crate::log::BatchError::CorruptMessage { .. }
        ))
    ));
    // The clock moved on: a batch stamped then is now in range.
    clock.advance(5_000);
    p.append_as_leader(
        &batch(1, Compression::None, NOW + 5_000),
        AppendOrigin::Client,
    )
    .unwrap();
    // A coordinator's own records skip the client rules (here: size).
    p.append_as_leader(&sized_batch(3, 100, NOW), AppendOrigin::Coordinator)
        .unwrap();
    // DeleteRecords is a delete-policy operation.
    assert!(matches!(
        p.delete_records(1),
        Err(PartitionError::PolicyViolation(_))
    ));
    assert_eq!(
        p.counters()
            .failed_appends
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
}

#[test]
fn delete_records_is_bounded_by_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    p.append_as_leader(&batch(5, Compression::None, NOW), AppendOrigin::Client)
        .unwrap();
    assert!(matches!(
        p.delete_records(6),
        Err(PartitionError::Log(
            crate::log::LogError::OffsetOutOfRange { .. }
        ))
    ));
    assert_eq!(p.delete_records(-1).unwrap(), 5);
    assert_eq!(p.log_start_offset(), 5);
}

#[test]
fn a_roll_writes_a_producer_snapshot_off_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[("segment.bytes", "300")]);
    for seq in 0..6 {
        p.append_as_leader(
            &idempotent_batch(9, 0, seq * 2, 2, NOW, Compression::None),
            AppendOrigin::Client,
        )
        .unwrap();
    }
    let snapshots: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    assert!(!snapshots.is_empty(), "rolled without a producer snapshot");
    // Reopening (without a clean close) rebuilds the same state from snapshot + log.
    let before = p.producers();
    drop(p);
    let p = open(dir.path(), &clock, &[("segment.bytes", "300")]);
    assert_eq!(p.producers(), before);
}

fn marker(producer_id: i64, producer_epoch: i16, result: TxnResult) -> TxnMarker {
    TxnMarker {
        producer_id,
        producer_epoch,
        coordinator_epoch: 0,
        result,
    }
}

/// A verified transactional batch of `producer_id` at `first_seq` (epoch 0).
fn txn_append(p: &Arc<Partition>, producer_id: i64, first_seq: i32, count: i32) -> AppendInfo {
    let guard = p.start_verification(producer_id, 0);
    p.append_as_leader_verified(
        &transactional_batch(producer_id, 0, first_seq, count, NOW, Compression::None),
        guard,
    )
    .unwrap()
}

fn aborted(read: &ReadInfo) -> Vec<(i64, i64, i64)> {
    read.aborted_transactions
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| (t.producer_id, t.first_offset, t.last_offset))
        .collect()
}

#[test]
fn a_transaction_opens_only_with_its_verification() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    let first = transactional_batch(7, 0, 0, 2, NOW, Compression::None);
    let refused = |r: Result<AppendInfo, PartitionError>| {
        matches!(r, Err(PartitionError::InvalidTxnState { producer_id: 7 }))
    };
    // No verification: Kafka's INVALID_TXN_STATE, and nothing stored.
    assert!(refused(p.append_as_leader(&first, AppendOrigin::Client)));
    assert!(refused(p.append_as_leader_verified(&first, None)));
    assert_eq!(p.log_end_offset(), 0);
    let guard = p.start_verification(7, 0).unwrap();
    assert_eq!(
        p.start_verification(7, 0),
        Some(guard),
        "pending: the same guard"
    );
    let info = p.append_as_leader_verified(&first, Some(guard)).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 1));
    // Open here: later batches need no verification, and none is handed out.
    assert_eq!(p.start_verification(7, 0), None);
    let more = transactional_batch(7, 0, 2, 1, NOW, Compression::None);
    assert_eq!(
        p.append_as_leader(&more, AppendOrigin::Client)
            .unwrap()
            .base_offset,
        2
    );
    // A retry is a duplicate, whatever guard it carries; a plain batch is refused.
    assert_eq!(
        p.append_as_leader_verified(&first, None)
            .unwrap()
            .base_offset,
        0
    );
    assert!(matches!(
        p.append_as_leader(
            &idempotent_batch(7, 0, 3, 1, NOW, Compression::None),
            AppendOrigin::Client
        ),
        Err(PartitionError::Producer(
            ProducerError::TransactionalWriteExpected { producer_id: 7 }
        ))
    ));
    assert_eq!(p.producers()[0].current_txn_first_offset, Some(0));
    p.write_txn_marker(marker(7, 0, TxnResult::Commit)).unwrap();
    // The guard was used up by the first batch: the next transaction needs a new one.
    let next = transactional_batch(7, 0, 3, 1, NOW, Compression::None);
    assert!(refused(p.append_as_leader_verified(&next, Some(guard))));
    // A verification that raced with the end of the transaction (its marker came between the
    // verification and the append) must not open a hanging transaction.
    let stale = p.start_verification(7, 0).unwrap();
    assert_ne!(stale, guard);
    let end = p.log_end_offset();
    p.write_txn_marker(marker(7, 0, TxnResult::Abort)).unwrap();
    assert!(refused(p.append_as_leader_verified(&next, Some(stale))));
    assert_eq!(p.log_end_offset(), end + 1, "only the marker was stored");
    let fresh = p.start_verification(7, 0).unwrap();
    assert_eq!(
        p.append_as_leader_verified(&next, Some(fresh))
            .unwrap()
            .base_offset,
        end + 1
    );
    assert_eq!(p.open_transactions(), vec![(7, end + 1)]);
}

#[test]
fn markers_move_the_last_stable_offset_and_aborts_reach_read_committed_readers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    p.append_as_leader(&batch(3, Compression::None, NOW), AppendOrigin::Client)
        .unwrap(); // 0-2
    txn_append(&p, 1, 0, 2); // 3-4
    txn_append(&p, 2, 0, 1); // 5
    p.append_as_leader(&batch(1, Compression::None, NOW), AppendOrigin::Client)
        .unwrap(); // 6
    assert_eq!((p.high_watermark(), p.last_stable_offset()), (7, 3));
    assert_eq!(p.open_transactions(), vec![(1, 3), (2, 5)]);
    assert_eq!(
        p.producers()
            .iter()
            .map(|e| (e.producer_id, e.current_txn_first_offset))
            .collect::<Vec<_>>(),
        [(1, Some(3)), (2, Some(5))]
    );
    let read = fetch(&p, 0, Isolation::TxnCommitted);
    assert_eq!(offsets(&read.records), [(0, 2)]);
    assert_eq!((read.last_stable_offset, aborted(&read)), (3, vec![]));
    assert_eq!(
        fetch(&p, 0, Isolation::HighWatermark).aborted_transactions,
        None
    );
    // Aborting 1 (transaction protocol v2: with a bumped epoch); 2 is still open.
    let info = p.write_txn_marker(marker(1, 1, TxnResult::Abort)).unwrap();
    assert_eq!(info.base_offset, 7);
    assert_eq!((p.high_watermark(), p.last_stable_offset()), (8, 5));
    let read = fetch(&p, 0, Isolation::TxnCommitted);
    assert_eq!(offsets(&read.records), [(0, 2), (3, 4)]);
    assert_eq!(aborted(&read), [(1, 3, 7)]);
    // An older producer epoch, or an older coordinator, is refused with nothing stored.
    assert!(matches!(
        p.write_txn_marker(marker(1, 0, TxnResult::Commit)),
        Err(PartitionError::Producer(
            ProducerError::InvalidProducerEpoch { current: 1, .. }
        ))
    ));
    let fenced = TxnMarker {
        coordinator_epoch: -5,
        ..marker(2, 0, TxnResult::Commit)
    };
    assert!(matches!(
        p.write_txn_marker(fenced),
        Err(PartitionError::Producer(
            ProducerError::CoordinatorFenced { .. }
        ))
    ));
    assert_eq!(p.log_end_offset(), 8);
    // The producer's next batch starts over at sequence 0 of the new epoch.
    let guard = p.start_verification(1, 1);
    assert!(p
        .append_as_leader_verified(
            &transactional_batch(1, 1, 2, 1, NOW, Compression::None),
            guard
        )
        .is_err());
    p.append_as_leader_verified(
        &transactional_batch(1, 1, 0, 1, NOW, Compression::None),
        guard,
    )
    .unwrap(); // 8
    p.write_txn_marker(marker(2, 0, TxnResult::Commit)).unwrap(); // 9
    assert_eq!(p.last_stable_offset(), 8);
    p.write_txn_marker(marker(1, 2, TxnResult::Commit)).unwrap(); // 10
    assert_eq!((p.high_watermark(), p.last_stable_offset()), (11, 11));
    let read = fetch(&p, 5, Isolation::TxnCommitted);
    assert_eq!(
        offsets(&read.records),
        [(5, 5), (6, 6), (7, 7), (8, 8), (9, 9), (10, 10)]
    );
    assert_eq!(aborted(&read), [(1, 3, 7)]);
    assert_eq!(aborted(&fetch(&p, 8, Isolation::TxnCommitted)), []);
    // A crash (no close) changes none of it.
    let before = (p.producers(), p.open_transactions());
    drop(p);
    let p = open(dir.path(), &clock, &[]);
    assert_eq!((p.producers(), p.open_transactions()), before);
    assert_eq!(p.last_stable_offset(), 11);
    assert_eq!(aborted(&fetch(&p, 0, Isolation::TxnCommitted)), [(1, 3, 7)]);
}

#[test]
fn an_abort_the_transaction_index_lost_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let overrides = [("segment.bytes", "400")];
    let p = open(dir.path(), &clock, &overrides);
    // Enough plain data to roll (and snapshot) before the transaction starts.
    for _ in 0..6 {
        p.append_as_leader(&sized_batch(2, 60, NOW), AppendOrigin::Client)
            .unwrap();
    }
    let snapshots = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".snapshot")
            })
            .count()
    };
    assert!(snapshots() > 0);
    let first = txn_append(&p, 4, 0, 2).base_offset;
    let abort = p.write_txn_marker(marker(4, 0, TxnResult::Abort)).unwrap();
    let want = vec![(4, first, abort.base_offset)];
    assert_eq!(aborted(&fetch(&p, first, Isolation::TxnCommitted)), want);
    // kill -9 between the marker's append and its index entry's: the entry is not there.
    drop(p);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txnindex") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let p = open(dir.path(), &clock, &overrides);
    assert_eq!(aborted(&fetch(&p, first, Isolation::TxnCommitted)), want);
    assert!(p.open_transactions().is_empty());
}

#[test]
fn truncation_reopens_the_transactions_whose_markers_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    txn_append(&p, 3, 0, 2); // 0-1
    p.write_txn_marker(marker(3, 0, TxnResult::Abort)).unwrap(); // 2
    assert_eq!(p.last_stable_offset(), 3);
    assert_eq!(p.truncate_to(2).unwrap(), 2);
    assert_eq!(p.open_transactions(), vec![(3, 0)]);
    assert_eq!(p.last_stable_offset(), 0);
    assert!(!dir.path().join("00000000000000000000.txnindex").exists());
    p.write_txn_marker(marker(3, 0, TxnResult::Commit)).unwrap();
    assert_eq!(aborted(&fetch(&p, 0, Isolation::TxnCommitted)), []);
}

#[test]
fn followers_copy_transaction_state_and_markers_work_on_internal_topics() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let leader = Arc::new(
        Partition::open(
            dir.path(),
            "__consumer_offsets",
            0,
            topic_config(&[("cleanup.policy", "compact")]),
            &ctx(&clock),
        )
        .unwrap(),
    );
    // A coordinator's transactional offset commits: no verification, no sequence checks.
    for pid in [5, 6] {
        leader
            .append_as_leader(
                &transactional_batch(pid, 0, 0, 1, NOW, Compression::None),
                AppendOrigin::Coordinator,
            )
            .unwrap();
    }
    leader
        .write_txn_marker(marker(5, 0, TxnResult::Abort))
        .unwrap();
    assert_eq!(leader.open_transactions(), vec![(6, 1)]);
    // A client may not write markers.
    let forged = crate::log::control::encode_marker(6, 0, TxnResult::Commit, 0, NOW).unwrap();
    assert!(matches!(
        leader.append_as_leader(&forged, AppendOrigin::Client),
        Err(PartitionError::Batch(
            crate::log::BatchError::InvalidRecord(_)
        ))
    ));
    let copied = fetch(&leader, 0, Isolation::LogEnd).records;
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = open(follower_dir.path(), &clock, &[]);
    follower.append_as_follower(&copied).unwrap();
    assert_eq!(follower.open_transactions(), vec![(6, 1)]);
    assert_eq!(follower.update_high_watermark(3), 3);
    assert_eq!(follower.last_stable_offset(), 1);
    let read = fetch(&follower, 0, Isolation::TxnCommitted);
    assert_eq!(aborted(&read), [(5, 0, 2)]);
}
