//! The runtime against a test shard: a key-value store whose entities are registers. Writes
//! become visible once committed, replay after a crash rebuilds them, snapshots bound the log
//! and fall back to the previous one when damaged, transactional records wait for their
//! markers, and timers fire.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::records::{encode_batch, encode_marker};
use super::runtime::{Persisted, RuntimeConfig};
use super::*;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::partition::PartitionContext;
use crate::tasks::{Inline, Tasks};
use crate::topics::TopicConfig;

/// One record: set (or with None, delete) a register.
#[derive(Debug, Clone, PartialEq)]
struct Put {
    key: String,
    value: Option<String>,
}

impl CoordinatorRecord for Put {
    fn entity_key(&self) -> &str {
        &self.key
    }

    fn encode(&self) -> Result<(Bytes, Option<Bytes>), String> {
        Ok((
            Bytes::from(self.key.clone()),
            self.value.clone().map(Bytes::from),
        ))
    }

    fn decode(offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<Put, RecordError> {
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|e| RecordError::Record {
                offset,
                reason: e.to_string(),
            })
        };
        Ok(Put {
            key: text(key)?,
            value: value.map(text).transpose()?,
        })
    }
}

/// A register: its committed value, values appended but not yet committed, values pending in
/// transactions, and a timer that counts its firings.
#[derive(Debug, Default)]
struct Register {
    key: String,
    value: Option<(i64, String)>,
    pending: Vec<(i64, Option<String>)>,
    in_txn: HashMap<i64, (i64, Option<String>)>,
    removed: bool,
    deadline: Option<i64>,
    fired: u32,
}

impl Register {
    fn apply(&mut self, offset: i64, value: Option<String>) {
        self.value = value.map(|v| (offset, v));
    }
}

impl Entity for Register {
    type Record = Put;
    type FollowUp = &'static str;
    type Config = ();

    fn new(key: &str, _now: i64) -> Register {
        Register {
            key: key.to_string(),
            ..Register::default()
        }
    }

    fn is_removed(&self) -> bool {
        self.removed
    }

    fn mark_removed(&mut self, _now: i64) {
        self.removed = true;
    }

    fn is_gone(&self) -> bool {
        self.value.is_none() && self.in_txn.is_empty()
    }

    fn replay(&mut self, offset: i64, producer_id: i64, _epoch: i16, record: Put) {
        if producer_id >= 0 {
            self.in_txn.insert(producer_id, (offset, record.value));
        } else {
            self.apply(offset, record.value);
        }
    }

    fn replay_end_txn_marker(&mut self, producer_id: i64, _epoch: i16, result: TxnResult) {
        if let Some((offset, value)) = self.in_txn.remove(&producer_id) {
            if result == TxnResult::Commit {
                self.apply(offset, value);
            }
        }
    }

    fn loaded(&mut self, _ctx: &mut EntityCtx<'_, Self>) {}

    fn appended(&mut self, records: &[Put], base_offset: i64, _producer_id: i64) {
        for (i, r) in records.iter().enumerate() {
            self.pending.push((base_offset + i as i64, r.value.clone()));
        }
    }

    fn committed(&mut self, end: i64) {
        let (done, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(o, _)| *o < end);
        self.pending = rest;
        for (offset, value) in done {
            self.apply(offset, value);
        }
    }

    fn follow_up(
        &mut self,
        follow_ups: Vec<&'static str>,
        result: Result<(), CoordinatorError>,
        ctx: &mut EntityCtx<'_, Self>,
    ) {
        for f in follow_ups {
            if result.is_ok() && f == "echo" {
                // A follow-up may write records nobody waits for.
                ctx.records.push(Put {
                    key: self.key.clone(),
                    value: Some("echoed".to_string()),
                });
            }
        }
    }

    fn next_deadline(&self) -> Option<i64> {
        self.deadline
    }

    fn tick(&mut self, ctx: &mut EntityCtx<'_, Self>) {
        if self.deadline.is_some_and(|d| d <= ctx.now) {
            self.deadline = None;
            self.fired += 1;
        }
    }

    fn snapshot(&self, out: &mut Vec<snapshot::SnapshotRecord<Put>>) {
        if let Some((offset, value)) = &self.value {
            out.push(snapshot::SnapshotRecord {
                offset: *offset,
                producer_id: -1,
                producer_epoch: -1,
                record: Put {
                    key: self.key.clone(),
                    value: Some(value.clone()),
                },
            });
        }
        for (pid, (offset, value)) in &self.in_txn {
            out.push(snapshot::SnapshotRecord {
                offset: *offset,
                producer_id: *pid,
                producer_epoch: 0,
                record: Put {
                    key: self.key.clone(),
                    value: value.clone(),
                },
            });
        }
    }

    fn unload(&mut self) {}
}

struct Registers {
    entities: Entities<Register>,
    config: Arc<()>,
}

impl Shard for Registers {
    type Entity = Register;

    fn new(_index: i32, config: Arc<()>) -> Registers {
        Registers {
            entities: Entities::default(),
            config,
        }
    }

    fn entities(&self) -> &Entities<Register> {
        &self.entities
    }

    fn config(&self) -> &() {
        &self.config
    }
}

fn open(dir: &std::path::Path, partitions: i32, segment_bytes: &str) -> Runtime<Registers> {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert("segment.bytes".to_string(), segment_bytes.to_string());
    Runtime::open(RuntimeConfig {
        topic: "__registers".to_string(),
        data_dir: dir.to_path_buf(),
        partitions,
        config: Arc::new(()),
        topic_config: Arc::new(TopicConfig::new(overrides, &Config::default()).unwrap()),
        partition_ctx: PartitionContext {
            clock: ManualClock::new(1_000),
            background: Arc::new(Inline),
            producer_expiration_ms: i64::MAX,
        },
        tasks: Tasks::new(rx),
    })
    .unwrap()
}

/// Sets `key` to `value` and waits for the commit.
async fn put(rt: &Runtime<Registers>, key: &str, value: &str, follow_up: Option<&'static str>) {
    let persisted = rt
        .with_entity(key, true, |target, e, _| {
            let mut ctx = Ctx::new(1_000, &());
            ctx.records.push(Put {
                key: key.to_string(),
                value: Some(value.to_string()),
            });
            ctx.follow_ups.extend(follow_up);
            rt.persist(target, e, ctx)
        })
        .unwrap()
        .unwrap();
    assert!(matches!(persisted, Persisted::Appended { .. }));
    match rt.reply_when_committed(vec![persisted], (), |e| panic!("{e}")) {
        Waiter::Ready(()) => panic!("an append waits for its commit"),
        Waiter::Wait(rx) => rx.await.unwrap(),
    }
}

fn value(rt: &Runtime<Registers>, key: &str) -> Option<String> {
    rt.read(key, |e| e.value.as_ref().map(|(_, v)| v.clone()))
        .flatten()
}

#[test]
fn keys_map_to_partitions_as_kafka_hashes_them() {
    // Java: "hello".hashCode() == 99162322; "polygenelubricants".hashCode() == Integer.MIN_VALUE,
    // which Kafka's Utils.abs maps to 0.
    assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    // A negative hash: "Aa\u{0}"... any string; its partition is in range.
    for key in ["", "g", "consumer-group-42", "日本語", "\u{1F600}"] {
        let p = partition_for(key, 7);
        assert!((0..7).contains(&p), "{key}");
    }
    // UTF-16 code units, not bytes: "é" is one unit (233).
    assert_eq!(partition_for("é", 1000), 233);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_visible_once_committed_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = open(dir.path(), 4, "1048576");
        // A read never creates a partition.
        assert_eq!(value(&rt, "a"), None);
        assert!(rt.open_partitions().is_empty());
        // Before the commit the value is pending.
        let persisted = rt
            .with_entity("a", true, |target, e, created| {
                assert!(created);
                let mut ctx = Ctx::new(1_000, &());
                ctx.records.push(Put {
                    key: "a".into(),
                    value: Some("1".into()),
                });
                rt.persist(target, e, ctx)
            })
            .unwrap()
            .unwrap();
        assert_eq!(value(&rt, "a"), None);
        let Waiter::Wait(rx) = rt.reply_when_committed(vec![persisted], "ok", |_| "failed") else {
            panic!()
        };
        assert_eq!(rx.await.unwrap(), "ok");
        assert_eq!(value(&rt, "a").as_deref(), Some("1"));
        put(&rt, "b", "2", None).await;
        put(&rt, "a", "3", Some("echo")).await;
        // The follow-up's record is appended once the write is committed.
        for _ in 0..100 {
            if rt.read("a", |e| e.pending.len()).unwrap() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        rt.flush().unwrap();
        // Dropped without close: a crash.
    }
    let rt = open(dir.path(), 4, "1048576");
    assert_eq!(value(&rt, "a").as_deref(), Some("echoed"));
    assert_eq!(value(&rt, "b").as_deref(), Some("2"));
    let dirs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("__registers-")
        })
        .count();
    assert_eq!(
        dirs,
        rt.open_partitions().len(),
        "only written partitions exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_bound_the_log_and_a_damaged_one_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), 1, "600");
    for i in 0..60 {
        put(&rt, &format!("k{}", i % 5), &format!("v{i}"), None).await;
    }
    assert!(rt.snapshot_due(), "small segments rolled");
    rt.write_due_snapshots().unwrap();
    for i in 60..90 {
        put(&rt, &format!("k{}", i % 5), &format!("v{i}"), None).await;
    }
    rt.write_snapshots().unwrap();
    let pdir = rt.partition_dir(0);
    let segments = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log")
            })
            .count()
    };
    let before = segments(&pdir);
    put(&rt, "k0", "last", None).await;
    rt.write_snapshots().unwrap();
    assert_eq!(snapshot::list(&pdir).unwrap().len(), snapshot::KEEP);
    assert!(
        segments(&pdir) < before,
        "segments below the older snapshot deleted"
    );
    let expected: Vec<_> = (0..5).map(|i| value(&rt, &format!("k{i}"))).collect();
    drop(rt);
    // The newest snapshot is damaged: the previous one and the log after it rebuild the state.
    let newest = *snapshot::list(&pdir).unwrap().last().unwrap();
    std::fs::write(
        pdir.join(format!("{newest:020}{}", snapshot::SUFFIX)),
        b"{not json",
    )
    .unwrap();
    let rt = open(dir.path(), 1, "600");
    let got: Vec<_> = (0..5).map(|i| value(&rt, &format!("k{i}"))).collect();
    assert_eq!(got, expected);
    assert_eq!(value(&rt, "k0").as_deref(), Some("last"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_records_wait_for_their_marker_across_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let txn_put = |key: &str, value: &str, pid: i64| {
        let put = Put {
            key: key.into(),
            value: Some(value.into()),
        };
        encode_batch(&[put], 1_000, Some((pid, 0))).unwrap()
    };
    let marker = |pid: i64, result: TxnResult| encode_marker(pid, 0, result, 0, 1_000).unwrap();
    {
        let rt = open(dir.path(), 1, "1048576");
        put(&rt, "x", "plain", None).await;
        // Producer 7 writes x and y in a transaction and commits; 8 writes z and 9 writes w,
        // both still open.
        raw_append(&rt, &txn_put("x", "txn", 7));
        raw_append(&rt, &txn_put("y", "txn", 7));
        raw_append(&rt, &txn_put("z", "aborted", 8));
        raw_append(&rt, &txn_put("w", "later", 9));
        raw_append(&rt, &marker(7, TxnResult::Commit));
        rt.flush().unwrap();
    }
    {
        let rt = open(dir.path(), 1, "1048576");
        assert_eq!(value(&rt, "x").as_deref(), Some("txn"));
        assert_eq!(value(&rt, "y").as_deref(), Some("txn"));
        assert_eq!(
            (value(&rt, "z"), value(&rt, "w")),
            (None, None),
            "still open"
        );
        // The snapshot keeps the open transactions' records pending with their producers.
        rt.write_snapshots().unwrap();
        raw_append(&rt, &marker(8, TxnResult::Abort));
        raw_append(&rt, &marker(9, TxnResult::Commit));
        rt.flush().unwrap();
    }
    let rt = open(dir.path(), 1, "1048576");
    assert_eq!(value(&rt, "x").as_deref(), Some("txn"));
    assert_eq!(value(&rt, "z"), None, "aborted: as if never written");
    assert_eq!(
        value(&rt, "w").as_deref(),
        Some("later"),
        "committed after the snapshot"
    );
}

/// Appends a pre-encoded batch to partition 0 through the runtime's writer seam.
fn raw_append(rt: &Runtime<Registers>, batch: &[u8]) {
    rt.hosted(0).unwrap().writer().append(batch).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_timers_fire_on_tick() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), 2, "1048576");
    put(&rt, "t", "v", None).await;
    rt.with_entity("t", false, |_, e, _| e.deadline = Some(5_000))
        .unwrap()
        .unwrap();
    rt.tick(4_999);
    assert_eq!(rt.read("t", |e| e.fired), Some(0));
    rt.tick(5_000);
    assert_eq!(rt.read("t", |e| e.fired), Some(1));
    rt.tick(9_000);
    assert_eq!(rt.read("t", |e| e.fired), Some(1), "fired once");
}

/// A due timer fires before the next operation on its key, however late the periodic tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_timers_fire_before_an_operation() {
    let dir = tempfile::tempdir().unwrap();
    let rt = open(dir.path(), 2, "1048576");
    put(&rt, "t", "v", None).await;
    // The runtime's clock stands at 1 000: a deadline of 500 is due, one of 5 000 is not.
    rt.with_entity("t", false, |_, e, _| e.deadline = Some(5_000))
        .unwrap()
        .unwrap();
    let seen = rt.with_entity("t", false, |_, e, _| e.fired).unwrap();
    assert_eq!(seen, Some(0));
    rt.with_entity("t", false, |_, e, _| e.deadline = Some(500))
        .unwrap()
        .unwrap();
    let seen = rt.with_entity("t", false, |_, e, _| e.fired).unwrap();
    assert_eq!(
        seen,
        Some(1),
        "fired before the operation ran, no tick needed"
    );
}
