//! The transaction state machine: every transition and every refusal, with the time as input.

use super::*;

const NOW: i64 = 1_000_000;

fn no_id() -> impl FnMut() -> Result<i64, TxnError> {
    || panic!("no new producer id expected")
}

fn ids_from(mut next: i64) -> impl FnMut() -> Result<i64, TxnError> {
    move || {
        next += 1;
        Ok(next - 1)
    }
}

/// An id after its first InitProducerId: producer 7, epoch 0, Empty.
fn initialized() -> TxnMetadata {
    let fresh = TxnMetadata::new(7, 60_000, NOW);
    match fresh.init(60_000, None, NOW, &mut no_id()).unwrap() {
        InitDecision::Bump(m) => m,
        other => panic!("{other:?}"),
    }
}

fn ongoing(partitions: &[(&str, i32)], tv2: bool) -> TxnMetadata {
    let m = initialized();
    let parts: Vec<(String, i32)> = partitions
        .iter()
        .map(|(t, p)| (t.to_string(), *p))
        .collect();
    m.add_partitions(7, 0, &parts, tv2, NOW + 10)
        .unwrap()
        .unwrap()
}

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

#[test]
fn first_init_gives_epoch_zero_and_every_init_bumps() {
    let m = initialized();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.state),
        (7, 0, TxnState::Empty)
    );
    let InitDecision::Bump(again) = m.init(30_000, None, NOW + 1, &mut no_id()).unwrap() else {
        panic!()
    };
    assert_eq!((again.producer_id, again.producer_epoch), (7, 1));
    assert_eq!(again.timeout_ms, 30_000, "the new timeout is kept");
    assert_eq!(again.last_producer_epoch, NO_PRODUCER_EPOCH);
}

#[test]
fn init_after_completion_bumps_and_resets() {
    let committed = ongoing(&[("t", 0)], false)
        .end(7, 0, TxnResult::Commit, false, NOW, &mut no_id())
        .unwrap();
    let EndDecision::Prepare(prepared) = committed else {
        panic!()
    };
    let done = prepared.complete(NOW + 5).unwrap();
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
    let InitDecision::Bump(m) = done.init(60_000, None, NOW + 6, &mut no_id()).unwrap() else {
        panic!()
    };
    assert_eq!(
        (m.state, m.producer_epoch, m.start_ms),
        (TxnState::Empty, 1, -1)
    );
}

#[test]
fn init_with_an_open_transaction_fences_and_aborts_it_first() {
    let m = ongoing(&[("t", 0), ("t", 1)], false);
    let InitDecision::FenceAndAbort(next) = m.init(60_000, None, NOW, &mut no_id()).unwrap() else {
        panic!()
    };
    assert_eq!(next.state, TxnState::PrepareAbort);
    assert_eq!(
        next.producer_epoch, 1,
        "the markers carry the fencing epoch"
    );
    assert_eq!(next.partitions.len(), 2, "markers go to every partition");
    // The old producer is fenced everywhere from now on.
    assert_eq!(
        next.add_partitions(7, 0, &[tp("t", 2)], false, NOW),
        Err(TxnError::ProducerFenced)
    );
    // While the abort runs, InitProducerId answers CONCURRENT_TRANSACTIONS.
    assert_eq!(
        next.init(60_000, None, NOW, &mut no_id()),
        Err(TxnError::ConcurrentTransactions)
    );
    let aborted = next.complete(NOW + 1).unwrap();
    assert_eq!(aborted.state, TxnState::CompleteAbort);
    let InitDecision::Bump(fresh) = aborted.init(60_000, None, NOW + 2, &mut no_id()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        fresh.producer_epoch, 2,
        "bumped a second time for the new producer"
    );
}

#[test]
fn init_in_prepare_states_is_concurrent() {
    for result in [TxnResult::Commit, TxnResult::Abort] {
        let EndDecision::Prepare(p) = ongoing(&[("t", 0)], false)
            .end(7, 0, result, false, NOW, &mut no_id())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            p.init(60_000, None, NOW, &mut no_id()),
            Err(TxnError::ConcurrentTransactions)
        );
    }
}

#[test]
fn kip360_expected_epoch_bumps_retries_and_fences() {
    let m = initialized(); // (7, 0)
    let InitDecision::Bump(b) = m.init(60_000, Some((7, 0)), NOW, &mut no_id()).unwrap() else {
        panic!()
    };
    assert_eq!((b.producer_epoch, b.last_producer_epoch), (1, 0));
    // The answer was lost; the retry names the old epoch again: the same bumped epoch.
    let InitDecision::Bump(retry) = b.init(60_000, Some((7, 0)), NOW, &mut no_id()).unwrap() else {
        panic!()
    };
    assert_eq!(retry.producer_epoch, 1);
    // An epoch that is neither current nor the last: a zombie.
    assert_eq!(
        b.init(60_000, Some((7, 5)), NOW, &mut no_id()),
        Err(TxnError::ProducerFenced)
    );
    // Another producer id altogether.
    assert_eq!(
        b.init(60_000, Some((99, 0)), NOW, &mut no_id()),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut m = initialized();
    m.producer_epoch = i16::MAX - 1;
    let InitDecision::Bump(r) = m.init(60_000, None, NOW, &mut ids_from(100)).unwrap() else {
        panic!()
    };
    assert_eq!((r.producer_id, r.producer_epoch), (100, 0));
    // With the expected (old id, exhausted epoch) the previous id is remembered, so a retry
    // of the rotation is recognised.
    let InitDecision::Bump(r) = m
        .init(60_000, Some((7, i16::MAX - 1)), NOW, &mut ids_from(200))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((r.producer_id, r.prev_producer_id), (200, 7));
    assert!(r.accepts_expected(7, i16::MAX - 1));
}

#[test]
fn add_partitions_checks_producer_and_state() {
    let m = initialized();
    assert_eq!(
        m.add_partitions(8, 0, &[tp("t", 0)], false, NOW),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        m.add_partitions(7, 1, &[tp("t", 0)], false, NOW),
        Err(TxnError::ProducerFenced)
    );
    let o = m
        .add_partitions(7, 0, &[tp("t", 0)], false, NOW + 3)
        .unwrap()
        .unwrap();
    assert_eq!((o.state, o.start_ms), (TxnState::Ongoing, NOW + 3));
    // Already there: nothing to write.
    assert_eq!(
        o.add_partitions(7, 0, &[tp("t", 0)], false, NOW + 4),
        Ok(None)
    );
    // More partitions keep the start time.
    let more = o
        .add_partitions(7, 0, &[tp("u", 1)], false, NOW + 9)
        .unwrap()
        .unwrap();
    assert_eq!(more.start_ms, NOW + 3);
    assert_eq!(more.partitions.len(), 2);
    let EndDecision::Prepare(p) = more
        .end(7, 0, TxnResult::Commit, false, NOW, &mut no_id())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        p.add_partitions(7, 0, &[tp("v", 0)], false, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
}

#[test]
fn verification_needs_the_partition_in_an_ongoing_transaction() {
    let o = ongoing(&[("t", 0)], false);
    assert_eq!(o.verify_partition(7, 0, &tp("t", 0)), Ok(()));
    assert!(matches!(
        o.verify_partition(7, 0, &tp("t", 1)),
        Err(TxnError::NotInTransaction(_))
    ));
    assert_eq!(
        o.verify_partition(7, 1, &tp("t", 0)),
        Err(TxnError::ProducerFenced)
    );
    let idle = initialized();
    assert!(matches!(
        idle.verify_partition(7, 0, &tp("t", 0)),
        Err(TxnError::NotInTransaction(_))
    ));
}

#[test]
fn tv1_end_transitions_and_errors() {
    let o = ongoing(&[("t", 0)], false);
    assert_eq!(
        o.end(9, 0, TxnResult::Commit, false, NOW, &mut no_id()),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        o.end(7, 3, TxnResult::Commit, false, NOW, &mut no_id()),
        Err(TxnError::ProducerFenced)
    );
    let EndDecision::Prepare(pc) = o
        .end(7, 0, TxnResult::Commit, false, NOW, &mut no_id())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((pc.state, pc.producer_epoch), (TxnState::PrepareCommit, 0));
    assert_eq!(pc.marker_result(), Some(TxnResult::Commit));
    // A retry while the markers are written, and the wrong result.
    assert_eq!(
        pc.end(7, 0, TxnResult::Commit, false, NOW, &mut no_id()),
        Err(TxnError::ConcurrentTransactions)
    );
    assert!(matches!(
        pc.end(7, 0, TxnResult::Abort, false, NOW, &mut no_id()),
        Err(TxnError::InvalidTxnState(_))
    ));
    let cc = pc.complete(NOW).unwrap();
    // A retry after completion succeeds; the other result is refused.
    assert_eq!(
        cc.end(7, 0, TxnResult::Commit, false, NOW, &mut no_id()),
        Ok(EndDecision::Done(7, 0))
    );
    assert!(matches!(
        cc.end(7, 0, TxnResult::Abort, false, NOW, &mut no_id()),
        Err(TxnError::InvalidTxnState(_))
    ));
    // Nothing open: EndTxn is INVALID_TXN_STATE under TV1.
    assert!(matches!(
        initialized().end(7, 0, TxnResult::Abort, false, NOW, &mut no_id()),
        Err(TxnError::InvalidTxnState(_))
    ));
}

#[test]
fn tv2_end_bumps_the_epoch_and_recognises_retries() {
    let o = ongoing(&[("t", 0)], true);
    let EndDecision::Prepare(pc) = o
        .end(7, 0, TxnResult::Commit, true, NOW, &mut no_id())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((pc.producer_epoch, pc.last_producer_epoch), (1, 0));
    let cc = pc.complete(NOW).unwrap();
    assert_eq!((cc.producer_id, cc.producer_epoch), (7, 1));
    // The retry names the epoch before the bump and gets the bumped one.
    assert_eq!(
        cc.end(7, 0, TxnResult::Commit, true, NOW, &mut no_id()),
        Ok(EndDecision::Done(7, 1))
    );
    assert!(matches!(
        cc.end(7, 0, TxnResult::Abort, true, NOW, &mut no_id()),
        Err(TxnError::InvalidTxnState(_))
    ));
    // An abort with nothing open is allowed and bumps again.
    let EndDecision::Prepare(pa) = cc
        .end(7, 1, TxnResult::Abort, true, NOW, &mut no_id())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((pa.state, pa.producer_epoch), (TxnState::PrepareAbort, 2));
    assert!(pa.partitions.is_empty());
    // A stale epoch is fenced.
    assert_eq!(
        ongoing(&[("t", 0)], true).end(7, 5, TxnResult::Commit, true, NOW, &mut no_id()),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn tv2_end_at_an_exhausted_epoch_rotates_at_completion() {
    let mut o = ongoing(&[("t", 0)], true);
    o.producer_epoch = i16::MAX - 2;
    let EndDecision::Prepare(p) = o
        .end(
            7,
            i16::MAX - 2,
            TxnResult::Commit,
            true,
            NOW,
            &mut ids_from(50),
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (p.producer_id, p.next_producer_id),
        (7, 50),
        "markers under the old id"
    );
    let c = p.complete(NOW).unwrap();
    assert_eq!(
        (c.producer_id, c.producer_epoch, c.prev_producer_id),
        (50, 0, 7)
    );
}

#[test]
fn timed_out_transactions_are_aborted_with_a_fencing_epoch() {
    let o = ongoing(&[("t", 0)], false); // started at NOW + 10, 60 s timeout
    assert_eq!(o.abort_timed_out(NOW + 10 + 60_000), None);
    let a = o.abort_timed_out(NOW + 10 + 60_001).unwrap();
    assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 1));
    assert_eq!(
        a.complete(NOW)
            .unwrap()
            .add_partitions(7, 0, &[tp("t", 0)], false, NOW),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        initialized().abort_timed_out(i64::MAX / 2),
        None,
        "only open ones"
    );
}

#[test]
fn idle_ids_expire_others_do_not() {
    let m = initialized();
    assert!(!m.expired(NOW + 999, 1_000));
    assert!(m.expired(NOW + 1_000, 1_000));
    let o = ongoing(&[("t", 0)], false);
    assert!(!o.expired(i64::MAX / 2, 1_000));
}

#[test]
fn state_names_are_kafkas() {
    let names: Vec<&str> = TxnState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "PrepareEpochFence",
            "Dead"
        ]
    );
}
