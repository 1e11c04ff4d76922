//! Property tests: the partition log against a simple in-memory model, with tiny segments and
//! index intervals so that rolls, index entries and full indexes happen constantly; and crash
//! recovery after torn writes, flipped bytes and damaged index files.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;

use super::batch::validate_batches;
use super::{AppendOptions, LogConfig, LogError, PartitionLog};
use crate::test_support::{batch_with, ALL_COMPRESSIONS};

/// One batch to append: (records, value bytes per record, codec index).
type BatchSpec = (usize, usize, usize);

#[derive(Debug, Clone)]
struct StoredBatch {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
    /// Record timestamps, in offset order.
    timestamps: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
struct Model {
    batches: Vec<StoredBatch>,
}

impl Model {
    fn log_end(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.last + 1)
    }

    fn bytes(&self) -> Vec<u8> {
        self.batches.iter().flat_map(|b| b.bytes.clone()).collect()
    }

    fn records(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.batches.iter().flat_map(|b| {
            b.timestamps
                .iter()
                .enumerate()
                .map(move |(i, ts)| (b.base + i as i64, *ts))
        })
    }

    fn offset_for_timestamp(&self, target: i64) -> Option<(i64, i64)> {
        self.records().find(|(_, ts)| *ts >= target)
    }

    fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let max = self.records().map(|(_, ts)| ts).max()?;
        self.records().find(|(_, ts)| *ts == max)
    }
}

fn opts() -> AppendOptions {
    AppendOptions::leader(0, 1, false)
}

fn build(specs: &[BatchSpec], ts: i64) -> (Vec<u8>, Vec<Vec<i64>>) {
    let mut buf = Vec::new();
    let mut stamps = Vec::new();
    for (i, &(n, pad, codec)) in specs.iter().enumerate() {
        let first_ts = ts + 100 * i as i64;
        buf.extend(batch_with(n, pad, first_ts, ALL_COMPRESSIONS[codec]));
        stamps.push((0..n as i64).map(|j| first_ts + j).collect());
    }
    (buf, stamps)
}

/// Appends to both the log and the model, checking the answer.
fn append(log: &PartitionLog, model: &mut Model, config: &LogConfig, specs: &[BatchSpec], ts: i64) {
    let (mut buf, stamps) = build(specs, ts);
    let result = log.append(&mut buf, &opts());
    if buf.len() as u64 > config.segment_bytes {
        assert!(
            matches!(result, Err(LogError::RecordBatchTooLarge { .. })),
            "{result:?}"
        );
        return;
    }
    let info = result.unwrap();
    assert_eq!(info.base_offset, model.log_end());
    let headers = validate_batches(&buf).unwrap();
    let mut position = 0;
    for (header, timestamps) in headers.iter().zip(stamps) {
        let size = header.total_size();
        model.batches.push(StoredBatch {
            base: header.base_offset,
            last: header.last_offset(),
            bytes: buf[position..position + size].to_vec(),
            timestamps,
        });
        position += size;
    }
    assert_eq!(info.last_offset + 1, model.log_end());
    assert_eq!(log.log_end_offset(), model.log_end());
}

fn read_all(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 30, false).unwrap();
        let headers = validate_batches(&r.records).unwrap();
        offset = headers[headers.len() - 1].last_offset() + 1;
        out.extend_from_slice(&r.records);
    }
    out
}

/// (base offset, file length) of every segment, in order.
fn segments(dir: &Path) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, e.metadata().unwrap().len()))
        })
        .collect();
    out.sort();
    out
}

fn check_whole_log(log: &PartitionLog, model: &Model) {
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), model.log_end());
    assert_eq!(read_all(log), model.bytes());
    assert_eq!(
        log.size_bytes(),
        model
            .batches
            .iter()
            .map(|b| b.bytes.len() as u64)
            .sum::<u64>()
    );
    assert_eq!(
        log.max_timestamp_offset().unwrap(),
        model.max_timestamp_offset()
    );
}

fn check_read(
    log: &PartitionLog,
    model: &Model,
    dir: &Path,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
) {
    let end = model.log_end();
    let result = log.read(offset, max_bytes, min_one);
    if offset < 0 || offset > end {
        assert!(
            matches!(result, Err(LogError::OffsetOutOfRange { .. })),
            "{result:?}"
        );
        return;
    }
    let r = result.unwrap();
    assert_eq!((r.log_end_offset, r.log_start_offset), (end, 0));
    if offset == end {
        assert!(r.records.is_empty());
        return;
    }
    // The batch holding the offset, or past a gap the first after it.
    let k = model.batches.iter().position(|b| offset <= b.last).unwrap();
    let first = model.batches[k].bytes.len();
    if first > max_bytes && !min_one {
        assert!(r.records.is_empty());
        return;
    }
    // The answer is a run of whole model batches starting at k ...
    let mut taken = 0;
    let mut total = 0;
    while total < r.records.len() {
        let b = &model.batches[k + taken];
        assert_eq!(&r.records[total..total + b.bytes.len()], &b.bytes[..]);
        total += b.bytes.len();
        taken += 1;
    }
    assert_eq!(total, r.records.len());
    assert!(
        taken >= 1,
        "data exists after {offset} but the read was empty"
    );
    assert!(total <= max_bytes || (taken == 1 && min_one));
    // ... that stops only at the byte limit or at a segment boundary.
    if let Some(next) = model.batches.get(k + taken) {
        if total + next.bytes.len() <= max_bytes {
            let bases: BTreeSet<i64> = segments(dir).iter().map(|s| s.0).collect();
            assert!(
                bases.contains(&next.base),
                "read from {offset} stopped before batch {} without reason",
                next.base
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<BatchSpec>, i64),
    Read(u32, usize, bool),
    TimeQuery(i64),
    Sync,
    Reopen { clean: bool },
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    (1usize..6, 0usize..100, 0usize..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(batch_spec(), 1..4), 0i64..5_000)
            .prop_map(|(specs, ts)| Op::Append(specs, ts)),
        4 => (any::<u32>(), 0usize..1500, any::<bool>())
            .prop_map(|(pick, max, min_one)| Op::Read(pick, max, min_one)),
        2 => (-10i64..5_500).prop_map(Op::TimeQuery),
        1 => Just(Op::Sync),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (700u64..2500, 0u32..400, 16u32..256).prop_map(|(segment_bytes, interval, index_bytes)| {
        LogConfig {
            segment_bytes,
            segment_ms: i64::MAX,
            index_interval_bytes: interval,
            segment_index_bytes: index_bytes,
        }
    })
}

#[derive(Debug, Clone)]
enum Damage {
    /// Cut a recoverable segment at byte `at % (len + 1)`.
    Truncate { which: usize, at: u64 },
    /// XOR a byte of a recoverable segment with a non-zero mask.
    Flip { which: usize, at: u64, mask: u8 },
    /// Remove one index file.
    DeleteIndex { which: usize },
    /// Overwrite one index file with arbitrary bytes.
    GarbageIndex { which: usize, bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => (any::<usize>(), any::<u64>()).prop_map(|(which, at)| Damage::Truncate { which, at }),
        3 => (any::<usize>(), any::<u64>(), 1u8..=255)
            .prop_map(|(which, at, mask)| Damage::Flip { which, at, mask }),
        1 => any::<usize>().prop_map(|which| Damage::DeleteIndex { which }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(which, bytes)| Damage::GarbageIndex { which, bytes }),
    ]
}

/// Applies `damage` to the files in `dir` and returns what the model must look like after
/// recovery: the longest prefix of whole, valid batches with increasing offsets.
fn apply_damage(dir: &Path, model: &Model, damage: &Damage) -> Model {
    let segs = segments(dir);
    let recovery_point: i64 = std::fs::read_to_string(dir.join("recovery-point"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    // Only segments recovery will scan: those reaching past the recovery point, and the last.
    let recoverable: Vec<usize> = (0..segs.len())
        .filter(|&i| i + 1 == segs.len() || segs[i + 1].0 > recovery_point)
        .collect();
    let index_files: Vec<_> = {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "index" || e == "timeindex")
            })
            .collect();
        v.sort();
        v
    };
    let (which, cut_at, flip) = match damage {
        Damage::DeleteIndex { which } => {
            if !index_files.is_empty() {
                std::fs::remove_file(&index_files[which % index_files.len()]).unwrap();
            }
            return model.clone();
        }
        Damage::GarbageIndex { which, bytes } => {
            if !index_files.is_empty() {
                std::fs::write(&index_files[which % index_files.len()], bytes).unwrap();
            }
            return model.clone();
        }
        Damage::Truncate { which, at } => (*which, *at, None),
        Damage::Flip { which, at, mask } => (*which, *at, Some(*mask)),
    };
    let seg = recoverable[which % recoverable.len()];
    let (seg_base, seg_len) = segs[seg];
    let seg_end = segs.get(seg + 1).map_or(i64::MAX, |s| s.0);
    let path = dir.join(format!("{seg_base:020}.log"));
    // Model batches of this segment, with their file positions.
    let mut before = 0; // model batches in earlier segments
    let mut in_seg = Vec::new();
    let mut position = 0u64;
    for (i, b) in model.batches.iter().enumerate() {
        if b.base < seg_base {
            before = i + 1;
        } else if b.base < seg_end {
            in_seg.push((i, position));
            position += b.bytes.len() as u64;
        }
    }
    assert_eq!(position, seg_len);
    let mut expected = Model {
        batches: model.batches[..before].to_vec(),
    };
    match flip {
        None => {
            let at = cut_at % (seg_len + 1);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(at)
                .unwrap();
            let whole: Vec<usize> = in_seg
                .iter()
                .filter(|(i, pos)| pos + model.batches[*i].bytes.len() as u64 <= at)
                .map(|(i, _)| *i)
                .collect();
            if whole.len() == in_seg.len() {
                return model.clone();
            }
            expected
                .batches
                .extend(whole.iter().map(|i| model.batches[*i].clone()));
        }
        Some(mask) => {
            if seg_len == 0 {
                return model.clone();
            }
            let at = cut_at % seg_len;
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at as usize] ^= mask;
            std::fs::write(&path, &bytes).unwrap();
            let &(k, pos) = in_seg.iter().rev().find(|(_, pos)| *pos <= at).unwrap();
            let rel = (at - pos) as usize;
            if (12..16).contains(&rel) {
                // partitionLeaderEpoch is outside the CRC: undetectable, and harmless.
                let mut all = model.clone();
                all.batches[k].bytes[rel] ^= mask;
                return all;
            }
            if rel < 8 {
                // baseOffset is outside the CRC too. Offsets need only increase (a compacted
                // segment has gaps), so a batch moved up stays, at its new offsets, and ends the
                // segment (every later batch now overlaps it); one moved down is cut.
                let b = &model.batches[k];
                let new_base = b.base ^ ((mask as i64) << (8 * (7 - rel)));
                let delta = b.last - b.base;
                if new_base > b.base && new_base - seg_base <= i32::MAX as i64 - delta {
                    let mut moved = b.clone();
                    moved.bytes[rel] ^= mask;
                    moved.base = new_base;
                    moved.last = new_base + delta;
                    expected.batches.extend(
                        in_seg
                            .iter()
                            .take_while(|(i, _)| *i < k)
                            .map(|(i, _)| model.batches[*i].clone()),
                    );
                    expected.batches.push(moved);
                    return expected;
                }
            }
            expected.batches.extend(
                in_seg
                    .iter()
                    .take_while(|(i, _)| *i < k)
                    .map(|(i, _)| model.batches[*i].clone()),
            );
        }
    }
    expected
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(config in config(), ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append(specs, ts) => append(&log, &mut model, &config, &specs, ts),
                Op::Read(pick, max_bytes, min_one) => {
                    let offset = pick as i64 % (model.log_end() + 3) - 1;
                    check_read(&log, &model, dir.path(), offset, max_bytes, min_one);
                }
                Op::TimeQuery(target) => {
                    prop_assert_eq!(
                        log.offset_for_timestamp(target).unwrap(),
                        model.offset_for_timestamp(target)
                    );
                }
                Op::Sync => log.sync(log.log_end_offset()).unwrap(),
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    }
                    drop(log);
                    log = PartitionLog::open(dir.path(), config, 0).unwrap();
                    check_whole_log(&log, &model);
                }
            }
        }
        check_whole_log(&log, &model);
        log.close().unwrap();
        drop(log);
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        check_whole_log(&log, &model);
    }

    #[test]
    fn recovery_keeps_the_longest_valid_prefix(
        config in config(),
        appends in prop::collection::vec(
            (prop::collection::vec(batch_spec(), 1..3), 0i64..5_000), 1..25),
        sync_after in prop::option::of(any::<prop::sample::Index>()),
        damage in damage(),
        targets in prop::collection::vec(-10i64..5_500, 3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::default();
        {
            let log = PartitionLog::open(dir.path(), config, 0).unwrap();
            let sync_at = sync_after.map(|i| i.index(appends.len()));
            for (i, (specs, ts)) in appends.iter().enumerate() {
                append(&log, &mut model, &config, specs, *ts);
                if sync_at == Some(i) {
                    log.sync(log.log_end_offset()).unwrap();
                }
            }
            // Dropped without close: a crash.
        }
        let expected = apply_damage(dir.path(), &model, &damage);
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        check_whole_log(&log, &expected);
        for t in &targets {
            prop_assert_eq!(log.offset_for_timestamp(*t).unwrap(), expected.offset_for_timestamp(*t));
        }
        // Appends continue exactly at the recovered end: no gap, no reuse.
        let mut after = expected.clone();
        append(&log, &mut after, &config, &[(2, 10, 0)], 9_000);
        check_whole_log(&log, &after);
        drop(log);
        // Recovering an already recovered log changes nothing.
        let log = PartitionLog::open(dir.path(), config, 0).unwrap();
        check_whole_log(&log, &after);
    }
}

/// Operations of the DeleteRecords property: appends, deletes, reads, time lookups, syncs and
/// reopens (clean or not) in any order.
#[derive(Debug, Clone)]
enum StartOp {
    Append(Vec<BatchSpec>, i64),
    /// DeleteRecords before `pick % (log end + 3) - 1` (so also -1 and past the end).
    Delete(u32),
    Read(u32),
    TimeQuery(i64),
    Sync,
    Reopen {
        clean: bool,
    },
}

fn start_op() -> impl Strategy<Value = StartOp> {
    prop_oneof![
        5 => (prop::collection::vec(batch_spec(), 1..3), 0i64..5_000)
            .prop_map(|(specs, ts)| StartOp::Append(specs, ts)),
        2 => any::<u32>().prop_map(StartOp::Delete),
        3 => any::<u32>().prop_map(StartOp::Read),
        2 => (-10i64..5_500).prop_map(StartOp::TimeQuery),
        1 => Just(StartOp::Sync),
        1 => any::<bool>().prop_map(|clean| StartOp::Reopen { clean }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The log start offset only moves up, to exactly what DeleteRecords asked, and survives
    /// reopening (clean or crash); nothing below it is ever served, everything above it is.
    #[test]
    fn delete_records_moves_the_start_and_keeps_the_rest(
        config in config(),
        ops in prop::collection::vec(start_op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let mut model = Model::default();
        let mut start = 0i64;
        for op in ops {
            match op {
                StartOp::Append(specs, ts) => append(&log, &mut model, &config, &specs, ts),
                StartOp::Delete(pick) => {
                    let offset = pick as i64 % (model.log_end() + 3) - 1;
                    let result = log.delete_records_before(offset);
                    if offset < 0 || offset > model.log_end() {
                        prop_assert!(matches!(result, Err(LogError::OffsetOutOfRange { .. })), "{:?}", result);
                    } else {
                        start = start.max(offset);
                        prop_assert_eq!(result.unwrap(), start);
                    }
                }
                StartOp::Read(pick) => {
                    let offset = pick as i64 % (model.log_end() + 2) - 1;
                    let result = log.read(offset, 1 << 20, true);
                    if offset < start || offset > model.log_end() {
                        prop_assert!(matches!(result, Err(LogError::OffsetOutOfRange { .. })), "{:?}", result);
                    } else if offset == model.log_end() {
                        prop_assert!(result.unwrap().records.is_empty());
                    } else {
                        let r = result.unwrap();
                        prop_assert_eq!(r.log_start_offset, start);
                        let first = model.batches.iter().find(|b| b.last >= offset).unwrap();
                        prop_assert_eq!(&r.records[..first.bytes.len()], &first.bytes[..]);
                    }
                }
                StartOp::TimeQuery(target) => {
                    let want = model.records().find(|(o, ts)| *o >= start && *ts >= target);
                    prop_assert_eq!(log.offset_for_timestamp(target).unwrap(), want);
                }
                StartOp::Sync => log.sync(log.log_end_offset()).unwrap(),
                StartOp::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    }
                    drop(log);
                    log = PartitionLog::open(dir.path(), config, 0).unwrap();
                }
            }
            prop_assert_eq!(log.log_start_offset(), start);
            prop_assert_eq!(log.log_end_offset(), model.log_end());
        }
    }
}
