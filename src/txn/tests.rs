//! The transaction coordinator over its log: answers only once durable, markers before
//! completion, persistence and replay (clean close and a drop without close), the abort of a
//! timed-out transaction, the completion of a Prepare state after a restart, id expiry.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use super::markers::{Marker, MarkerError, MarkerWriter, MarkersDurable};
use super::*;
use crate::clock::{Clock, ManualClock};
use crate::coordinator::{TxnResult, Waiter};
use crate::partition::PartitionContext;
use crate::tasks::{Inline, Tasks};

/// Records every marker; fails every write while `fail` is set.
#[derive(Default)]
struct Markers {
    written: Mutex<Vec<((String, i32), Marker)>>,
    fail: Mutex<bool>,
}

impl MarkerWriter for Markers {
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: Marker,
    ) -> MarkersDurable {
        if *self.fail.lock() {
            return Box::pin(async {
                Err(MarkerError::Failed {
                    topic: "t".into(),
                    partition: 0,
                    reason: "injected".into(),
                })
            });
        }
        let mut w = self.written.lock();
        for p in partitions {
            w.push((p.clone(), marker));
        }
        Box::pin(async { Ok(()) })
    }
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    markers: Arc<Markers>,
    txn: TxnCoordinator,
}

fn open_in(dir: &std::path::Path, clock: &Arc<ManualClock>, config: TxnConfig) -> TxnCoordinator {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let ids = Arc::new(ProducerIdManager::open(dir).unwrap());
    TxnCoordinator::open(
        dir,
        config,
        4,
        PartitionContext {
            clock: clock.clone(),
            background: Arc::new(Inline),
            producer_expiration_ms: i64::MAX,
        },
        Tasks::new(rx),
        ids,
    )
    .unwrap()
}

impl Harness {
    fn new(config: TxnConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000_000);
        let txn = open_in(dir.path(), &clock, config);
        Harness {
            dir,
            clock,
            markers: Arc::new(Markers::default()),
            txn,
        }
    }

    fn markers(&self) -> Arc<dyn MarkerWriter> {
        self.markers.clone()
    }

    /// Reopens from the log: cleanly (snapshots) or as after a crash (no close).
    fn reopen(&mut self, clean: bool, config: TxnConfig) {
        if clean {
            self.txn.close().unwrap();
        } else {
            self.txn.flush().unwrap();
        }
        self.txn = open_in(self.dir.path(), &self.clock, config);
    }

    async fn init(&self, id: &str) -> Result<(i64, i16), TxnError> {
        wait(self.txn.init_producer_id(id, 60_000, None, self.markers())).await
    }

    async fn add(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(&str, i32)],
    ) -> Result<(), TxnError> {
        let parts: Vec<(String, i32)> = parts.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        wait(self.txn.add_partitions(id, pid, epoch, &parts, false)).await
    }

    async fn end(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
    ) -> Result<(i64, i16), TxnError> {
        let result = if commit {
            TxnResult::Commit
        } else {
            TxnResult::Abort
        };
        wait(
            self.txn
                .end_txn(id, pid, epoch, result, tv2, self.markers()),
        )
        .await
    }

    fn state(&self, id: &str) -> Option<TxnState> {
        self.txn.describe(id).ok().map(|m| m.state)
    }
}

async fn wait<T>(w: Waiter<Result<T, TxnError>>) -> Result<T, TxnError> {
    match w {
        Waiter::Ready(r) => r,
        Waiter::Wait(rx) => rx.await.unwrap(),
    }
}

/// Lets the coordinator's tasks (commit waits, markers) run.
async fn settle(h: &Harness, id: &str, want: TxnState) {
    for _ in 0..200 {
        if h.state(id) == Some(want) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{id} never reached {want:?}: {:?}", h.state(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_commits_with_markers_and_survives_reopening() {
    let mut h = Harness::new(TxnConfig::default());
    let (pid, epoch) = h.init("a").await.unwrap();
    assert_eq!(epoch, 0);
    h.add("a", pid, epoch, &[("t", 0), ("t", 1)]).await.unwrap();
    assert_eq!(h.state("a"), Some(TxnState::Ongoing));
    assert_eq!(
        h.end("a", pid, epoch, true, false).await.unwrap(),
        (pid, epoch)
    );
    assert_eq!(
        h.state("a"),
        Some(TxnState::CompleteCommit),
        "answered after completion"
    );
    let written = h.markers.written.lock().clone();
    assert_eq!(written.len(), 2);
    assert!(written
        .iter()
        .all(|(_, m)| m.result == TxnResult::Commit && m.producer_id == pid));
    h.reopen(true, TxnConfig::default());
    let m = h.txn.describe("a").unwrap();
    assert_eq!(
        (m.state, m.producer_id, m.producer_epoch),
        (TxnState::CompleteCommit, pid, 0)
    );
    // The next InitProducerId continues from the replayed epoch, also after a crash.
    assert_eq!(h.init("a").await.unwrap(), (pid, 1));
    h.reopen(false, TxnConfig::default());
    let m = h.txn.describe("a").unwrap();
    assert_eq!(
        (m.state, m.producer_id, m.producer_epoch),
        (TxnState::Empty, pid, 1)
    );
    assert_eq!(h.init("a").await.unwrap(), (pid, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_is_aborted_by_init_and_by_its_timeout() {
    let h = Harness::new(TxnConfig::default());
    let (pid, epoch) = h.init("x").await.unwrap();
    h.add("x", pid, epoch, &[("t", 0)]).await.unwrap();
    // A second producer instance: CONCURRENT_TRANSACTIONS while the old one's transaction aborts.
    assert_eq!(h.init("x").await, Err(TxnError::ConcurrentTransactions));
    settle(&h, "x", TxnState::CompleteAbort).await;
    let aborts = h.markers.written.lock().clone();
    assert_eq!(aborts.len(), 1);
    assert_eq!(
        (aborts[0].1.result, aborts[0].1.producer_epoch),
        (TxnResult::Abort, 1)
    );
    let (_, e) = h.init("x").await.unwrap();
    assert_eq!(e, 2);
    // Timeout: 60 s after the first add.
    h.add("x", pid, e, &[("t", 0)]).await.unwrap();
    h.txn.tick(h.clock.now_ms(), h.markers());
    assert_eq!(h.state("x"), Some(TxnState::Ongoing));
    h.clock.advance(60_001);
    h.txn.tick(h.clock.now_ms(), h.markers());
    settle(&h, "x", TxnState::CompleteAbort).await;
    assert_eq!(
        h.end("x", pid, e, true, false).await,
        Err(TxnError::ProducerFenced)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepare_state_left_by_failed_markers_completes_after_reopening() {
    let mut h = Harness::new(TxnConfig::default());
    let (pid, epoch) = h.init("p").await.unwrap();
    h.add("p", pid, epoch, &[("t", 0)]).await.unwrap();
    *h.markers.fail.lock() = true;
    assert!(h.end("p", pid, epoch, true, false).await.is_err());
    assert_eq!(h.state("p"), Some(TxnState::PrepareCommit));
    // The client's retry while the markers are outstanding.
    assert_eq!(
        h.end("p", pid, epoch, true, false).await,
        Err(TxnError::ConcurrentTransactions)
    );
    h.reopen(false, TxnConfig::default());
    assert_eq!(h.state("p"), Some(TxnState::PrepareCommit), "replayed");
    *h.markers.fail.lock() = false;
    h.txn.tick(h.clock.now_ms(), h.markers());
    settle(&h, "p", TxnState::CompleteCommit).await;
    assert_eq!(h.markers.written.lock().len(), 1);
    assert_eq!(
        h.end("p", pid, epoch, true, false).await,
        Ok((pid, epoch)),
        "a late retry succeeds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tv2_bumps_the_epoch_per_transaction() {
    let h = Harness::new(TxnConfig::default());
    let (pid, e0) = h.init("two").await.unwrap();
    let parts = vec![("t".to_string(), 0)];
    wait(h.txn.add_partitions("two", pid, e0, &parts, true))
        .await
        .unwrap();
    assert_eq!(h.end("two", pid, e0, true, true).await, Ok((pid, e0 + 1)));
    let m = h.markers.written.lock()[0].1;
    assert_eq!(m.producer_epoch, e0 + 1, "markers carry the bumped epoch");
    // An abort with nothing open bumps again, with no marker to write.
    assert_eq!(
        h.end("two", pid, e0 + 1, false, true).await,
        Ok((pid, e0 + 2))
    );
    assert_eq!(h.markers.written.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_ids_expire_and_are_gone_after_reopening() {
    let config = TxnConfig {
        id_expiration_ms: 10_000,
        remove_interval_ms: 1_000,
        ..TxnConfig::default()
    };
    let mut h = Harness::new(config.clone());
    let (pid, _) = h.init("old").await.unwrap();
    let (np, ne) = h.init("new").await.unwrap();
    h.add("new", np, ne, &[("t", 0)]).await.unwrap();
    h.txn.tick(h.clock.now_ms(), h.markers()); // starts the expiry schedule
    h.clock.advance(10_001);
    h.txn.tick(h.clock.now_ms(), h.markers());
    assert_eq!(h.state("old"), None, "expired");
    assert!(h
        .txn
        .list(
            &coordinator::ListFilter {
                min_duration_ms: -1,
                ..Default::default()
            },
            h.clock.now_ms()
        )
        .iter()
        .all(|t| t.transactional_id != "old"));
    h.reopen(false, config);
    assert_eq!(h.state("old"), None, "the tombstone replays");
    // A new producer with the expired id starts afresh.
    let (p2, e2) = h.init("old").await.unwrap();
    assert_ne!(p2, pid);
    assert_eq!(e2, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_timeouts_and_unknown_ids() {
    let h = Harness::new(TxnConfig::default());
    for t in [0, -5, 900_001] {
        assert!(matches!(
            wait(h.txn.init_producer_id("t", t, None, h.markers())).await,
            Err(TxnError::InvalidTransactionTimeout { .. })
        ));
    }
    assert_eq!(
        h.add("nobody", 1, 0, &[("t", 0)]).await,
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.end("nobody", 1, 0, true, false).await,
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.txn.describe("nobody"),
        Err(TxnError::TransactionalIdNotFound)
    );
}
