//! Property test of the partition's transactions against a model: random plain appends,
//! verified transactional sends from three producers, commits and aborts (with and without an
//! epoch bump, and for producers with nothing open), stale markers and stale verifications, and
//! `kill -9` reopens (the partition dropped without close), some with a torn log tail and some
//! losing the transaction index entries a power loss may take (those at or after the newest
//! producer snapshot). Tiny segments make rolls, and so producer snapshots, frequent.
//!
//! After every step a read_committed consumer reads everything up to the last stable offset,
//! fetch by fetch, and drops aborted records with the fetches' aborted transactions exactly as a
//! Kafka client does; what it delivers must be the model's committed records below the last
//! stable offset, in offset order. The last stable offset must be the model's first open offset
//! (or the high watermark), and every fetch's aborted transactions exactly the model's aborted
//! transactions overlapping the fetch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::log::control::marker_of_batch;
use crate::tasks::Inline;
use crate::test_support::{batch, transactional_batch};

const NOW: i64 = 1_700_000_000_000;
const PRODUCERS: usize = 3;

fn pid(producer: usize) -> i64 {
    100 + producer as i64
}

#[derive(Debug, Clone)]
enum Op {
    /// A plain (non-idempotent) batch.
    Plain { records: usize },
    /// A transactional batch; verified first when the producer has nothing open here.
    Send { producer: usize, records: i32 },
    /// A commit or abort marker, with the epoch bumped (transaction protocol v2) or not.
    End {
        producer: usize,
        commit: bool,
        bump: bool,
    },
    /// A marker with an epoch older than the producer's: refused.
    StaleMarker { producer: usize },
    /// A verification, then the end of the (not yet open) transaction, then the append with
    /// the now stale guard: refused.
    StaleGuard { producer: usize },
    /// Dropped without close; `torn` cuts the last segment at that byte (modulo its size).
    Crash { torn: Option<u64> },
    /// A crash that also loses the transaction index entries past the newest snapshot.
    LoseTxnIndex,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..4).prop_map(|records| Op::Plain { records }),
        6 => (0..PRODUCERS, 1i32..4).prop_map(|(producer, records)| Op::Send { producer, records }),
        4 => (0..PRODUCERS, any::<bool>(), any::<bool>())
            .prop_map(|(producer, commit, bump)| Op::End { producer, commit, bump }),
        1 => (0..PRODUCERS).prop_map(|producer| Op::StaleMarker { producer }),
        1 => (0..PRODUCERS).prop_map(|producer| Op::StaleGuard { producer }),
        1 => prop::option::of(any::<u64>()).prop_map(|torn| Op::Crash { torn }),
        1 => Just(Op::LoseTxnIndex),
    ]
}

#[derive(Debug, Clone)]
enum Kind {
    Plain,
    Txn { pid: i64 },
    Marker { pid: i64, commit: bool },
}

/// One batch in the log.
#[derive(Debug, Clone)]
struct Event {
    base: i64,
    last: i64,
    kind: Kind,
    /// (offset, value) of its data records.
    records: Vec<(i64, Bytes)>,
    /// The producer's (epoch, next sequence) after it, for the producer's events.
    client_after: Option<(usize, (i16, i32))>,
}

/// What the log should mean.
#[derive(Debug, Default)]
struct Model {
    events: Vec<Event>,
}

/// The transactional reading of the model's log.
struct Derived {
    /// Records of plain batches and committed transactions, by offset.
    committed: Vec<(i64, Bytes)>,
    /// Open transactions: producer id -> first offset.
    open: BTreeMap<i64, i64>,
    /// Aborted transactions (producer id, first offset, marker offset), in marker order.
    aborted: Vec<(i64, i64, i64)>,
}

impl Model {
    fn end(&self) -> i64 {
        self.events.last().map_or(0, |e| e.last + 1)
    }

    fn derive(&self) -> Derived {
        let mut committed = Vec::new();
        let mut open: HashMap<i64, (i64, Vec<(i64, Bytes)>)> = HashMap::new();
        let mut aborted = Vec::new();
        for e in &self.events {
            match e.kind {
                Kind::Plain => committed.extend(e.records.iter().cloned()),
                Kind::Txn { pid } => open
                    .entry(pid)
                    .or_insert_with(|| (e.base, Vec::new()))
                    .1
                    .extend(e.records.iter().cloned()),
                Kind::Marker { pid, commit } => {
                    if let Some((first, records)) = open.remove(&pid) {
                        if commit {
                            committed.extend(records);
                        } else {
                            aborted.push((pid, first, e.base));
                        }
                    }
                }
            }
        }
        committed.sort_by_key(|(offset, _)| *offset);
        Derived {
            committed,
            open: open
                .into_iter()
                .map(|(pid, (first, _))| (pid, first))
                .collect(),
            aborted,
        }
    }

    fn last_stable_offset(&self) -> i64 {
        self.derive()
            .open
            .values()
            .copied()
            .min()
            .unwrap_or(i64::MAX)
            .min(self.end())
    }

    /// The producer's (epoch, next sequence) as its last event left them.
    fn client(&self, producer: usize) -> (i16, i32) {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.client_after.filter(|(p, _)| *p == producer))
            .map_or((0, 0), |(_, c)| c)
    }

    fn has_events(&self, producer: usize) -> bool {
        self.events
            .iter()
            .any(|e| e.client_after.is_some_and(|(p, _)| p == producer))
    }

    fn push(
        &mut self,
        info: &AppendInfo,
        kind: Kind,
        records: Vec<Bytes>,
        client: Option<(usize, (i16, i32))>,
    ) {
        assert_eq!(info.base_offset, self.end());
        let records = records
            .into_iter()
            .enumerate()
            .map(|(i, v)| (info.base_offset + i as i64, v))
            .collect();
        self.events.push(Event {
            base: info.base_offset,
            last: info.last_offset,
            kind,
            records,
            client_after: client,
        });
    }
}

fn open_partition(dir: &Path, clock: &Arc<ManualClock>, segment_bytes: u64) -> Arc<Partition> {
    let overrides = [("segment.bytes".to_string(), segment_bytes.to_string())]
        .into_iter()
        .collect();
    let config = Arc::new(TopicConfig::new(overrides, &Config::default()).unwrap());
    let ctx = PartitionContext {
        clock: clock.clone(),
        background: Arc::new(Inline),
        producer_expiration_ms: 86_400_000,
    };
    Arc::new(Partition::open(dir, "t", 0, config, &ctx).unwrap())
}

/// The values of a batch's records, in order.
fn values(bytes: &[u8]) -> Vec<Bytes> {
    let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(bytes)).unwrap();
    set.records.into_iter().map(|r| r.value.unwrap()).collect()
}

/// A read_committed consumer reading `[0, lso)` fetch by fetch with at most `max_bytes` per
/// fetch (at least one batch), as Kafka's `CompletedFetch` filters aborted records; checks each
/// fetch's aborted transactions against the model's.
fn consume(p: &Partition, model: &Derived, lso: i64, max_bytes: usize) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < lso {
        let read = p
            .read(FetchParams {
                offset,
                max_bytes,
                min_one_batch: true,
                isolation: Isolation::TxnCommitted,
            })
            .unwrap();
        assert_eq!(read.last_stable_offset, lso);
        assert!(
            !read.records.is_empty(),
            "nothing read at {offset} below {lso}"
        );
        let listed = read.aborted_transactions.unwrap();
        let mut headers = Vec::new();
        let mut position = 0;
        while position < read.records.len() {
            let h = BatchHeader::parse(&read.records[position..]).unwrap();
            headers.push((h, position));
            position += h.total_size();
        }
        let upper = headers.last().map_or(offset, |(h, _)| h.last_offset() + 1);
        assert!(upper <= lso, "a read_committed fetch went past the LSO");
        let want: Vec<(i64, i64, i64)> = model
            .aborted
            .iter()
            .filter(|(_, first, last)| *last >= offset && *first < upper)
            .copied()
            .collect();
        let got: Vec<(i64, i64, i64)> = listed
            .iter()
            .map(|t| (t.producer_id, t.first_offset, t.last_offset))
            .collect();
        assert_eq!(
            got, want,
            "aborted transactions of the fetch [{offset}, {upper})"
        );
        // The client's filter: aborted transactions by first offset, producers being skipped.
        let mut pending = listed.clone();
        pending.sort_by_key(|t| t.first_offset);
        let mut pending = pending.into_iter().peekable();
        let mut skipping: HashSet<i64> = HashSet::new();
        for (h, position) in headers {
            let bytes = &read.records[position..position + h.total_size()];
            if h.producer_id >= 0 {
                while let Some(t) = pending.next_if(|t| t.first_offset <= h.last_offset()) {
                    skipping.insert(t.producer_id);
                }
                if h.is_control() {
                    let marker = marker_of_batch(bytes).unwrap().unwrap();
                    if marker.result == TxnResult::Abort {
                        skipping.remove(&h.producer_id);
                    }
                    offset = h.last_offset() + 1;
                    continue;
                }
                if h.is_transactional() && skipping.contains(&h.producer_id) {
                    offset = h.last_offset() + 1;
                    continue;
                }
            }
            for (i, value) in values(bytes).into_iter().enumerate() {
                let record_offset = h.base_offset + i as i64;
                if record_offset >= offset {
                    out.push((record_offset, value));
                }
            }
            offset = h.last_offset() + 1;
        }
    }
    out
}

/// Checks the partition against the model; returns nothing, panics on a difference.
fn check(p: &Partition, model: &Model, max_bytes: usize) {
    let derived = model.derive();
    assert_eq!(p.log_end_offset(), model.end());
    assert_eq!(p.high_watermark(), model.end());
    let mut open: Vec<(i64, i64)> = derived.open.iter().map(|(p, f)| (*p, *f)).collect();
    open.sort_by_key(|(_, first)| *first);
    assert_eq!(p.open_transactions(), open);
    let lso = model.last_stable_offset();
    assert_eq!(p.last_stable_offset(), lso);
    for entry in p.producers() {
        assert_eq!(
            entry.current_txn_first_offset,
            derived.open.get(&entry.producer_id).copied()
        );
    }
    let want: Vec<(i64, Bytes)> = derived
        .committed
        .iter()
        .filter(|(offset, _)| *offset < lso)
        .cloned()
        .collect();
    assert_eq!(consume(p, &derived, lso, max_bytes), want);
}

/// Names of the files in `dir` ending with `ext`.
fn files_with(dir: &Path, ext: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(ext))
        .collect();
    names.sort();
    names
}

/// Removes the transaction index entries whose marker is at or after the newest snapshot: what
/// a power loss may take (everything below a snapshot's offset was durable when it was written).
fn lose_txn_index_entries(dir: &Path) {
    let newest = files_with(dir, ".snapshot")
        .iter()
        .filter_map(|n| n.trim_end_matches(".snapshot").parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    for name in files_with(dir, ".txnindex") {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).unwrap();
        let kept: Vec<u8> = bytes
            .chunks_exact(34)
            .filter(|e| {
                let mut last = [0u8; 8];
                last.copy_from_slice(&e[18..26]);
                i64::from_be_bytes(last) < newest
            })
            .flatten()
            .copied()
            .collect();
        std::fs::write(&path, kept).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn read_committed_consumers_see_exactly_the_committed_records(
        segment_bytes in 250u64..900,
        max_bytes in 1usize..400,
        ops in prop::collection::vec(op(), 1..50),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOW);
        let mut p = open_partition(dir.path(), &clock, segment_bytes);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Plain { records } => {
                    let b = batch(records, Compression::None, NOW);
                    let info = p.append_as_leader(&b, AppendOrigin::Client).unwrap();
                    model.push(&info, Kind::Plain, values(&b), None);
                }
                Op::Send { producer, records } => {
                    let (epoch, seq) = model.client(producer);
                    let b = transactional_batch(pid(producer), epoch, seq, records, NOW, Compression::None);
                    let open = model.derive().open.contains_key(&pid(producer));
                    let guard = p.start_verification(pid(producer), epoch);
                    prop_assert_eq!(guard.is_none(), open);
                    let info = p.append_as_leader_verified(&b, guard).unwrap();
                    let client = (producer, (epoch, seq + records));
                    model.push(&info, Kind::Txn { pid: pid(producer) }, values(&b), Some(client));
                }
                Op::End { producer, commit, bump } => {
                    let (epoch, seq) = model.client(producer);
                    let epoch = epoch + i16::from(bump);
                    let result = if commit { TxnResult::Commit } else { TxnResult::Abort };
                    let info = p
                        .write_txn_marker(TxnMarker {
                            producer_id: pid(producer),
                            producer_epoch: epoch,
                            coordinator_epoch: 0,
                            result,
                        })
                        .unwrap();
                    let client = (producer, (epoch, if bump { 0 } else { seq }));
                    model.push(&info, Kind::Marker { pid: pid(producer), commit }, Vec::new(), Some(client));
                }
                Op::StaleMarker { producer } => {
                    let (epoch, _) = model.client(producer);
                    if !model.has_events(producer) || epoch == 0 {
                        continue;
                    }
                    let refused = p.write_txn_marker(TxnMarker {
                        producer_id: pid(producer),
                        producer_epoch: epoch - 1,
                        coordinator_epoch: 0,
                        result: TxnResult::Abort,
                    });
                    prop_assert!(
                        matches!(refused, Err(PartitionError::Producer(ProducerError::InvalidProducerEpoch { .. }))),
                        "{:?}", refused
                    );
                }
                Op::StaleGuard { producer } => {
                    if model.derive().open.contains_key(&pid(producer)) {
                        continue;
                    }
                    let (epoch, seq) = model.client(producer);
                    let guard = p.start_verification(pid(producer), epoch);
                    prop_assert!(guard.is_some());
                    let info = p
                        .write_txn_marker(TxnMarker {
                            producer_id: pid(producer),
                            producer_epoch: epoch,
                            coordinator_epoch: 0,
                            result: TxnResult::Abort,
                        })
                        .unwrap();
                    let client = (producer, (epoch, seq));
                    model.push(&info, Kind::Marker { pid: pid(producer), commit: false }, Vec::new(), Some(client));
                    let b = transactional_batch(pid(producer), epoch, seq, 1, NOW, Compression::None);
                    let refused = p.append_as_leader_verified(&b, guard);
                    prop_assert!(
                        matches!(refused, Err(PartitionError::InvalidTxnState { .. })),
                        "{:?}", refused
                    );
                }
                Op::Crash { torn } => {
                    let producers = p.producers();
                    drop(p);
                    let cut = torn.and_then(|at| {
                        let last = files_with(dir.path(), ".log").pop()?;
                        let file = std::fs::OpenOptions::new().write(true).open(dir.path().join(last)).unwrap();
                        let len = file.metadata().unwrap().len();
                        (len > 0).then(|| file.set_len(at % len).unwrap())
                    });
                    p = open_partition(dir.path(), &clock, segment_bytes);
                    if cut.is_some() {
                        // Recovery keeps whole batches: the model loses the batches past the end.
                        let end = p.log_end_offset();
                        prop_assert!(end < model.end());
                        prop_assert!(end == 0 || model.events.iter().any(|e| e.last + 1 == end));
                        model.events.retain(|e| e.last < end);
                    } else {
                        prop_assert_eq!(p.producers(), producers);
                    }
                }
                Op::LoseTxnIndex => {
                    let producers = p.producers();
                    drop(p);
                    lose_txn_index_entries(dir.path());
                    p = open_partition(dir.path(), &clock, segment_bytes);
                    prop_assert_eq!(p.producers(), producers);
                }
            }
            check(&p, &model, max_bytes);
        }
        // A clean close and reopen changes nothing either.
        p.close().unwrap();
        drop(p);
        let p = open_partition(dir.path(), &clock, segment_bytes);
        check(&p, &model, max_bytes);
    }
}
