//! The cleaner against a model, with crashes: whatever a round keeps is what Kafka keeps, and a
//! simulated crash before any file step of the replace sequence reopens to a log that holds
//! every record the round would keep and nothing the log did not hold before. Plus the rules a
//! model of keys alone does not cover: transactions, producers' last batches, a full key map.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::Compression;
use proptest::prelude::*;

use super::clean::ActiveProducer;
use super::offset_map::{OffsetMap, ENTRY_OVERHEAD};
use super::{clean_log, CleanerConfig, LogCleaner, LogToClean};
use crate::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::log::batch::check_batch;
use crate::log::records::{delete_horizon, records_of};
use crate::log::{BatchHeader, TxnResult, CRASH_BEFORE_STEP};
use crate::partition::{
    AppendOrigin, FetchParams, Isolation, Partition, PartitionContext, TxnMarker,
};
use crate::tasks::Inline;
use crate::test_support::{encode_batch, record, transactional_batch, ALL_COMPRESSIONS};
use crate::topics::config::TopicConfig;

const NOW: i64 = 1_700_000_000_000;
const DELETE_RETENTION_MS: i64 = 1_000;

/// One record as read back: (offset, key, value, its batch's delete horizon).
type Seen = (i64, Option<Bytes>, Option<Bytes>, Option<i64>);

fn open(dir: &Path, clock: &Arc<ManualClock>, extra: &[(&str, &str)]) -> Arc<Partition> {
    let mut overrides: BTreeMap<String, String> = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "700"),
        ("min.cleanable.dirty.ratio", "0"),
        ("delete.retention.ms", "1000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        overrides.insert(k.to_string(), v.to_string());
    }
    let config = Arc::new(TopicConfig::new(overrides, &Config::default()).unwrap());
    let ctx = PartitionContext {
        clock: clock.clone(),
        background: Arc::new(Inline),
        producer_expiration_ms: 86_400_000,
    };
    Arc::new(Partition::open(dir, "t", 0, config, &ctx).unwrap())
}

/// Appends one batch of `(key, value)` records; returns the base offset.
fn produce(p: &Arc<Partition>, recs: &[(u8, Option<String>)], compression: Compression) -> i64 {
    let records: Vec<_> = recs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            record(
                i as i64,
                0,
                NOW + i as i64,
                Some(Bytes::from(format!("k{k}"))),
                v.clone().map(Bytes::from),
            )
        })
        .collect();
    let batch = encode_batch(&records, compression);
    let info = p.append_as_leader(&batch, AppendOrigin::Client).unwrap();
    info.base_offset
}

/// Every record in the log, checking batch headers and strictly increasing offsets.
fn read_all(p: &Partition) -> Vec<Seen> {
    let mut out: Vec<Seen> = Vec::new();
    let mut offset = p.log_start_offset();
    let mut last = -1;
    while offset < p.log_end_offset() {
        let read = p
            .read(FetchParams {
                offset,
                max_bytes: 1 << 20,
                min_one_batch: true,
                isolation: Isolation::LogEnd,
            })
            .unwrap();
        if read.records.is_empty() {
            break;
        }
        let mut pos = 0;
        while pos < read.records.len() {
            let header = check_batch(&read.records[pos..]).unwrap();
            let batch = &read.records[pos..pos + header.total_size()];
            assert!(
                header.base_offset > last,
                "offsets go back at {}",
                header.base_offset
            );
            for r in records_of(batch).unwrap() {
                let o = header.base_offset + r.offset_delta as i64;
                assert!(
                    o > last && o <= header.last_offset(),
                    "record offset {o} out of order"
                );
                last = o;
                out.push((o, r.key, r.value, delete_horizon(&header)));
            }
            last = last.max(header.last_offset());
            offset = header.last_offset() + 1;
            pos += header.total_size();
        }
    }
    out
}

/// Kafka's rules over a model: records below `end` stay if they are their key's latest (below
/// `end`) and are not tombstones past their horizon; a batch keeping a tombstone gets a horizon.
fn model_round(model: &[Seen], end: i64, now: i64, bases: &BTreeMap<i64, i64>) -> Vec<Seen> {
    let mut latest: HashMap<Option<Bytes>, i64> = HashMap::new();
    for (o, k, _, _) in model.iter().filter(|r| r.0 < end) {
        latest.insert(k.clone(), *o);
    }
    let kept: Vec<Seen> = model
        .iter()
        .filter(|(o, k, v, h)| {
            *o >= end || (latest[k] == *o && (v.is_some() || h.is_none_or(|h| now < h)))
        })
        .cloned()
        .collect();
    // Horizons are per batch: every kept tombstone's batch gets one now.
    let batch_of = |o: i64| bases.range(..=o).next_back().map(|(b, _)| *b);
    let mut new_horizon: HashMap<i64, i64> = HashMap::new();
    for (o, _, v, h) in &kept {
        if *o < end && v.is_none() && h.is_none() {
            if let Some(b) = batch_of(*o) {
                new_horizon.insert(b, now + DELETE_RETENTION_MS);
            }
        }
    }
    kept.into_iter()
        .map(|(o, k, v, h)| {
            let h = h.or_else(|| batch_of(o).and_then(|b| new_horizon.get(&b).copied()));
            (o, k, v, h)
        })
        .collect()
}

fn cleaner() -> LogCleaner {
    LogCleaner::new(CleanerConfig::default())
}

/// One round of a fresh cleaner over `p` at `now`, if `p` needs one.
fn clean(
    p: &Arc<Partition>,
    now: i64,
    stop: &dyn Fn() -> bool,
) -> Option<super::clean::RoundStats> {
    cleaner().clean_filthiest(std::slice::from_ref(p), now, stop)
}

#[derive(Debug, Clone)]
enum Op {
    Produce(Vec<(u8, Option<String>)>, usize),
    Clean(i64),
    CrashingClean(usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    let rec = (0u8..6, prop::option::weighted(0.8, "[a-z]{1,30}"));
    prop_oneof![
        6 => (prop::collection::vec(rec, 1..5), 0usize..5).prop_map(|(r, c)| Op::Produce(r, c)),
        2 => (0i64..1500).prop_map(Op::Clean),
        2 => (0usize..24, 0i64..1500).prop_map(|(s, t)| Op::CrashingClean(s, t)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn cleaning_keeps_what_kafka_keeps_and_survives_crashes(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOW);
        let mut p = open(dir.path(), &clock, &[]);
        let mut model: Vec<Seen> = Vec::new();
        // Batch base offset -> last offset, for the per-batch horizons of the model.
        let mut bases: BTreeMap<i64, i64> = BTreeMap::new();
        let mut serial = 0;
        for op in ops {
            match op {
                Op::Produce(recs, codec) => {
                    let recs: Vec<(u8, Option<String>)> = recs
                        .into_iter()
                        .map(|(k, v)| {
                            serial += 1;
                            (k, v.map(|v| format!("{v}-{serial}")))
                        })
                        .collect();
                    let base = produce(&p, &recs, ALL_COMPRESSIONS[codec]);
                    bases.insert(base, base + recs.len() as i64 - 1);
                    for (i, (k, v)) in recs.iter().enumerate() {
                        model.push((
                            base + i as i64,
                            Some(Bytes::from(format!("k{k}"))),
                            v.clone().map(Bytes::from),
                            None,
                        ));
                    }
                    p.flush().unwrap();
                }
                Op::Clean(advance) => {
                    clock.advance(advance);
                    let end_before = p.log_end_offset();
                    if let Some(stats) = clean(&p, clock.now_ms(), &|| false) {
                        model = model_round(&model, stats.end_offset, clock.now_ms(), &bases);
                    }
                    prop_assert_eq!(p.log_end_offset(), end_before);
                    prop_assert_eq!(read_all(&p), model.clone());
                }
                Op::CrashingClean(step, advance) => {
                    clock.advance(advance);
                    let before = read_all(&p);
                    crate::log::reset_steps();
                    CRASH_BEFORE_STEP.with(|c| c.set(Some(step)));
                    let stats = clean(&p, clock.now_ms(), &|| false);
                    CRASH_BEFORE_STEP.with(|c| c.set(None));
                    let expected = match stats {
                        Some(stats) => model_round(&model, stats.end_offset, clock.now_ms(), &bases),
                        None => {
                            // The round "crashed"; what it would have kept, computed by a clean
                            // round on a copy of the model at the bound it would have used.
                            let end = bound_of(&p);
                            model_round(&model, end, clock.now_ms(), &bases)
                        }
                    };
                    drop(p);
                    p = open(dir.path(), &clock, &[]);
                    let after = read_all(&p);
                    let strip = |v: &[Seen]| -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
                        v.iter().map(|(o, k, v, _)| (*o, k.clone(), v.clone())).collect()
                    };
                    for r in strip(&expected) {
                        prop_assert!(strip(&after).contains(&r), "record {:?} lost by a crash at step {}", r, step);
                    }
                    for r in strip(&after) {
                        prop_assert!(strip(&before).contains(&r), "record {:?} appeared from nowhere", r);
                    }
                    // The log as it is now is the model from here on.
                    model = after;
                }
            }
        }
    }
}

/// Where a round on `p` would end now (the first uncleanable offset; the map never fills here).
fn bound_of(p: &Partition) -> i64 {
    let log = p.log();
    let guard = log.try_begin_cleaning().unwrap();
    super::candidate_of(
        &log,
        &guard,
        p.last_stable_offset(),
        &p.config().compaction,
        NOW,
    )
    .unwrap()
    .map_or(-1, |c| c.first_uncleanable)
}

#[test]
fn latest_values_stay_with_their_offsets_and_tombstones_wait_for_their_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    for round in 0..6 {
        let recs: Vec<(u8, Option<String>)> = (0..4u8)
            .map(|k| (k, Some(format!("v{round}-{k}"))))
            .collect();
        produce(&p, &recs, Compression::None);
    }
    // A tombstone for k1, then enough data to roll past it.
    produce(&p, &[(1, None)], Compression::None);
    for round in 6..24 {
        produce(
            &p,
            &[
                (0, Some(format!("v{round}-0"))),
                (2, Some(format!("v{round}-2"))),
            ],
            Compression::Lz4,
        );
    }
    p.flush().unwrap();
    let end = p.log_end_offset();
    let stats = cleaner()
        .clean_filthiest(std::slice::from_ref(&p), clock.now_ms(), &|| false)
        .unwrap();
    assert!(stats.segments_cleaned >= 1 && stats.bytes_written < stats.bytes_read);
    assert_eq!(p.log_end_offset(), end);
    let after = read_all(&p);
    let below: Vec<&Seen> = after.iter().filter(|r| r.0 < stats.end_offset).collect();
    let mut keys: Vec<&Option<Bytes>> = below.iter().map(|r| &r.1).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        below.len(),
        "one record per key below the cleaned end"
    );
    let k1: Vec<&Seen> = after
        .iter()
        .filter(|r| r.1.as_deref() == Some(b"k1"))
        .collect();
    assert_eq!(k1.len(), 1, "only the tombstone is left of k1");
    let tombstone = k1[0];
    assert!(tombstone.0 < stats.end_offset);
    assert_eq!(tombstone.2, None);
    assert_eq!(
        tombstone.3,
        Some(NOW + DELETE_RETENTION_MS),
        "horizon set when first kept"
    );
    // Before the horizon the tombstone stays; after it, it goes.
    produce(&p, &[(5, Some("x".repeat(600)))], Compression::None);
    produce(&p, &[(5, Some("y".into()))], Compression::None);
    p.flush().unwrap();
    clock.advance(DELETE_RETENTION_MS - 1);
    clean(&p, clock.now_ms(), &|| false);
    assert!(read_all(&p).iter().any(|r| r.1.as_deref() == Some(b"k1")));
    clock.advance(1);
    produce(&p, &[(5, Some("z".repeat(600)))], Compression::None);
    produce(&p, &[(5, Some("w".into()))], Compression::None);
    p.flush().unwrap();
    cleaner()
        .clean_filthiest(std::slice::from_ref(&p), clock.now_ms(), &|| false)
        .unwrap();
    assert!(!read_all(&p).iter().any(|r| r.1.as_deref() == Some(b"k1")));
    // The cleaned log reopens as it was.
    let before_reopen = read_all(&p);
    drop(p);
    let p = open(dir.path(), &clock, &[]);
    assert_eq!(read_all(&p), before_reopen);
}

fn marker(producer_id: i64, result: TxnResult) -> TxnMarker {
    TxnMarker {
        producer_id,
        producer_epoch: 0,
        coordinator_epoch: 0,
        result,
    }
}

fn txn_append(p: &Arc<Partition>, producer_id: i64, first_seq: i32, count: i32) {
    let guard = p.start_verification(producer_id, 0);
    p.append_as_leader_verified(
        &transactional_batch(producer_id, 0, first_seq, count, NOW, Compression::None),
        guard,
    )
    .unwrap();
}

/// A committed one-batch transaction of `producer_id`, a roll (so it is cleanable), a round.
fn commit_roll_and_clean(p: &Arc<Partition>, producer_id: i64, now: i64) {
    txn_append(p, producer_id, 0, 1);
    p.write_txn_marker(marker(producer_id, TxnResult::Commit))
        .unwrap();
    p.log().roll_for_tests(NOW).unwrap();
    p.flush().unwrap();
    clean(p, now, &|| false).unwrap();
}

/// Batches as (base, last, records, control) from the log start.
fn batches(p: &Partition) -> Vec<(i64, i64, i32, bool)> {
    let read = p
        .read(FetchParams {
            offset: p.log_start_offset(),
            max_bytes: 1 << 24,
            min_one_batch: true,
            isolation: Isolation::LogEnd,
        })
        .unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < read.records.len() {
        let h = BatchHeader::parse(&read.records[pos..]).unwrap();
        out.push((
            h.base_offset,
            h.last_offset(),
            h.records_count,
            h.is_control(),
        ));
        pos += h.total_size();
    }
    out
}

#[test]
fn aborted_data_goes_first_then_its_marker_after_the_horizon_and_open_transactions_wait() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    // One big segment so that every batch below is in the cleaned range once rolled.
    let p = open(dir.path(), &clock, &[("segment.bytes", "100000")]);
    txn_append(&p, 7, 0, 3); // 0..=2 aborted below
    txn_append(&p, 8, 0, 2); // 3..=4 committed below
    p.write_txn_marker(marker(7, TxnResult::Abort)).unwrap(); // 5
    p.write_txn_marker(marker(8, TxnResult::Commit)).unwrap(); // 6
    txn_append(&p, 7, 3, 1); // 7: producer 7's last batch, committed
    p.write_txn_marker(marker(7, TxnResult::Commit)).unwrap(); // 8
    txn_append(&p, 9, 0, 2); // 9..=10: open
    p.flush().unwrap();
    // Nothing is durable-and-rolled yet: the open transaction and the active segment block.
    assert!(cleaner()
        .clean_filthiest(std::slice::from_ref(&p), clock.now_ms(), &|| false)
        .is_none());
    // Close the transaction and roll by hand (the segment is large).
    p.write_txn_marker(marker(9, TxnResult::Commit)).unwrap(); // 11
    p.log().roll_for_tests(NOW).unwrap();
    p.flush().unwrap();
    let stats = cleaner()
        .clean_filthiest(std::slice::from_ref(&p), clock.now_ms(), &|| false)
        .unwrap();
    assert_eq!(stats.end_offset, 12);
    let b = batches(&p);
    // Producer 7's aborted batch (0..=2) went; its ABORT marker stays this round. Producer 8's
    // keys (k0, k1) were superseded by producer 9's (also k0, k1) but its batch is its last:
    // kept empty. Everything else stays.
    assert_eq!(b[0], (3, 4, 0, false));
    assert_eq!(b[1], (5, 5, 1, true));
    let aborted = p.log().collect_aborted_txns(0, 100).unwrap();
    assert_eq!(
        aborted.len(),
        1,
        "the abort's index entry stays with its marker"
    );
    // Next round, past the horizon the first round set on the now-empty transactions' markers.
    clock.advance(DELETE_RETENTION_MS);
    let log_end = p.log_end_offset();
    commit_roll_and_clean(&p, 10, clock.now_ms());
    let b = batches(&p);
    assert!(
        b.iter().any(|x| x.0 == 5),
        "the marker waits for its horizon: {b:?}"
    );
    // An expiring horizon does not start a round by itself: new dirty data does.
    clock.advance(DELETE_RETENTION_MS);
    commit_roll_and_clean(&p, 11, clock.now_ms());
    let b = batches(&p);
    assert!(
        !b.iter().any(|x| x.0 == 5),
        "the ABORT marker went after its horizon: {b:?}"
    );
    assert!(
        b.iter().any(|x| x.0 <= 7 && x.1 >= 7),
        "producer 7's last batch stays: {b:?}"
    );
    assert!(p.log().collect_aborted_txns(0, 100).unwrap().is_empty());
    assert!(p.log_end_offset() > log_end);
}

#[test]
fn a_full_key_map_ends_the_round_early_and_the_next_one_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let p = open(dir.path(), &clock, &[]);
    for round in 0..10 {
        let recs: Vec<(u8, Option<String>)> = (0..4u8)
            .map(|k| (k + round % 2, Some(format!("v{round}"))))
            .collect();
        produce(&p, &recs, Compression::None);
    }
    p.flush().unwrap();
    let producers: HashMap<i64, ActiveProducer> = HashMap::new();
    let config = p.config();
    let log = p.log();
    let target = LogToClean {
        log: &log,
        last_stable_offset: p.last_stable_offset(),
        producers: &producers,
        compaction: &config.compaction,
        segment_bytes: config.segment.segment_bytes,
    };
    // Room for three keys: the round stops at the fourth.
    let mut map = OffsetMap::new(3 * (ENTRY_OVERHEAD + 2));
    let first = clean_log(&target, NOW, &mut map, &mut |_| Ok(()))
        .unwrap()
        .unwrap();
    assert_eq!(first.end_offset, 3);
    let mut ends = vec![first.end_offset];
    while let Some(s) = clean_log(&target, NOW, &mut map, &mut |_| Ok(())).unwrap() {
        ends.push(s.end_offset);
        if ends.len() > 50 {
            break;
        }
    }
    assert!(
        ends.windows(2).all(|w| w[0] < w[1]),
        "every round moves on: {ends:?}"
    );
}
