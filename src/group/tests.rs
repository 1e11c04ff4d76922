//! State machine tests with a fake clock: one per transition and per error case, each driving
//! a [`Group`] directly (records are "durable" as soon as they are appended unless a test
//! holds them back).

use bytes::Bytes;
use tokio::sync::oneshot;

use super::classic::{AfterPersist, ClassicGroup, JoinOutcome, JoinRequest, SyncOutcome};
use super::member::Protocol;
use super::offsets::{CommitAuthor, CommitPartition, Ctx};
use super::records::GroupRecord;
use super::shard::GroupEntry;
use super::*;
use crate::coordinator::Entity;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

/// A consumer-protocol subscription (v0 layout) to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut v = Vec::new();
    v.extend_from_slice(&0i16.to_be_bytes());
    v.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        v.extend_from_slice(&(t.len() as i16).to_be_bytes());
        v.extend_from_slice(t.as_bytes());
    }
    v.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(v)
}

fn protocols(names: &[&str], topics: &[&str]) -> Vec<Protocol> {
    names
        .iter()
        .map(|n| Protocol {
            name: n.to_string(),
            metadata: subscription(topics),
        })
        .collect()
}

/// A group entry (the group and its offsets), its clock and its log.
struct H {
    e: GroupEntry,
    cfg: GroupConfig,
    now: i64,
    log: Vec<GroupRecord>,
    /// Follow-ups held back (not yet durable) when `hold` is set.
    held: Vec<AfterPersist>,
    hold: bool,
}

impl H {
    fn new() -> H {
        H::with(GroupConfig::default())
    }

    fn with(cfg: GroupConfig) -> H {
        H {
            e: GroupEntry::new("g", 1_000),
            cfg,
            now: 1_000,
            log: Vec::new(),
            held: Vec::new(),
            hold: false,
        }
    }

    /// The classic group.
    fn g(&self) -> &ClassicGroup {
        self.e.group.as_classic().expect("a classic group")
    }

    fn g_mut(&mut self) -> &mut ClassicGroup {
        self.e.group.as_classic_mut().expect("a classic group")
    }

    /// Runs one group operation at the current time; its records are appended and (unless
    /// held) durable at once.
    fn run<R>(&mut self, f: impl FnOnce(&mut ClassicGroup, &mut Ctx) -> R) -> R {
        self.run_entry(|e, ctx| f(e.group.as_classic_mut().expect("a classic group"), ctx))
    }

    /// Runs one operation on the group's entry (group and offsets) at the current time.
    fn run_entry<R>(&mut self, f: impl FnOnce(&mut GroupEntry, &mut Ctx) -> R) -> R {
        let mut ctx = Ctx::new(self.now, &self.cfg);
        let r = f(&mut self.e, &mut ctx);
        let Ctx {
            records,
            follow_ups,
            ..
        } = ctx;
        self.append(records);
        if self.hold {
            self.held.extend(follow_ups);
        } else {
            self.e.committed(i64::MAX);
            self.durable(follow_ups, Ok(()));
        }
        r
    }

    fn append(&mut self, records: Vec<GroupRecord>) {
        if !records.is_empty() {
            self.e.appended(&records, self.log.len() as i64, -1);
            self.log.extend(records);
        }
    }

    fn durable(&mut self, actions: Vec<AfterPersist>, result: Result<(), GroupError>) {
        if actions.is_empty() {
            return;
        }
        let mut ctx = Ctx::new(self.now, &self.cfg);
        self.e
            .group
            .as_classic_mut()
            .expect("a classic group")
            .after_persist(actions, result, &mut ctx);
        let records = ctx.records;
        self.append(records);
    }

    /// Makes the held records durable (or failed).
    fn release(&mut self, result: Result<(), GroupError>) {
        self.hold = false;
        let held = std::mem::take(&mut self.held);
        self.e.committed(i64::MAX);
        self.durable(held, result);
    }

    /// Advances by initial delays until `rx` is answered (members that arrive together extend
    /// the initial delay once, as in Kafka).
    fn settle<T>(&mut self, rx: &mut oneshot::Receiver<T>) -> T {
        for _ in 0..20 {
            if let Some(t) = answered(rx) {
                return t;
            }
            self.advance(self.cfg.initial_rebalance_delay_ms);
        }
        panic!("the join phase never completed")
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        self.run(|g, ctx| g.tick(ctx));
    }

    fn join_req(&self, member_id: &str, version: i16, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            group_instance_id: instance.map(str::to_string),
            protocol_type: "consumer".to_string(),
            protocols: protocols(&["range"], &["t"]),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            version,
        }
    }

    fn join(&mut self, member_id: &str) -> Waiter<JoinOutcome> {
        let req = self.join_req(member_id, 9, None);
        self.join_with(req)
    }

    fn join_with(&mut self, req: JoinRequest) -> Waiter<JoinOutcome> {
        self.run(|g, ctx| g.join(req, ctx))
    }

    /// A dynamic member through the KIP-394 handshake; returns its id and parked JoinGroup.
    fn new_member(&mut self) -> (String, oneshot::Receiver<JoinOutcome>) {
        let id = ready(self.join("")).member_id;
        (id.clone(), parked(self.join(&id)))
    }

    fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        assign: &[(&str, &str)],
    ) -> Waiter<SyncOutcome> {
        let req = SyncRequest {
            member_id: member_id.to_string(),
            group_instance_id: None,
            generation_id: generation,
            protocol_type: Some("consumer".to_string()),
            protocol_name: Some("range".to_string()),
            assignments: assign
                .iter()
                .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
                .collect(),
        };
        self.run(|g, ctx| g.sync(req, ctx))
    }

    fn heartbeat(&mut self, member_id: &str, generation: i32) -> Result<(), GroupError> {
        self.run(|g, ctx| g.heartbeat(member_id, None, generation, ctx))
    }

    fn leave(&mut self, member_id: &str, instance: Option<&str>) -> Vec<LeaveResult> {
        let l = [LeaveMember {
            member_id: member_id.to_string(),
            group_instance_id: instance.map(str::to_string),
        }];
        self.run(|g, ctx| g.leave(&l, ctx))
            .expect("no group-level error")
    }

    /// Two dynamic members through a complete first rebalance: Stable at generation 1 with
    /// `a` leading; returns (a, b).
    fn stable_pair(&mut self) -> (String, String) {
        let (a, mut ja) = self.new_member();
        let (b, mut jb) = self.new_member();
        let oa = self.settle(&mut ja);
        let ob = answered(&mut jb).expect("join answered");
        assert_eq!(oa.leader, a);
        assert_eq!((oa.generation_id, ob.generation_id), (1, 1));
        let mut sb = parked(self.sync(&b, 1, &[]));
        let sa = self.sync(&a, 1, &[(&a, "A"), (&b, "B")]);
        assert_eq!(ready_or_answered(sa).assignment, Bytes::from("A"));
        assert_eq!(answered(&mut sb).unwrap().assignment, Bytes::from("B"));
        assert_eq!(self.g().state(), GroupState::Stable);
        (a, b)
    }
}

fn ready<T: std::fmt::Debug>(w: Waiter<T>) -> T {
    match w {
        Waiter::Ready(t) => t,
        Waiter::Wait(_) => panic!("expected an immediate answer"),
    }
}

fn parked<T: std::fmt::Debug>(w: Waiter<T>) -> oneshot::Receiver<T> {
    match w {
        Waiter::Wait(rx) => rx,
        Waiter::Ready(t) => panic!("expected a parked request, got {t:?}"),
    }
}

fn answered<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
    rx.try_recv().ok()
}

fn ready_or_answered<T: std::fmt::Debug>(w: Waiter<T>) -> T {
    match w {
        Waiter::Ready(t) => t,
        Waiter::Wait(mut rx) => answered(&mut rx).expect("answered already"),
    }
}

// ---- Empty -> PreparingRebalance -> CompletingRebalance -> Stable -------------------------

#[test]
fn first_join_from_v4_is_member_id_required_and_the_id_is_pending() {
    let mut h = H::new();
    let o = ready(h.join(""));
    assert_eq!(o.error, Some(GroupError::MemberIdRequired));
    assert!(o.member_id.starts_with("client-"), "{}", o.member_id);
    assert!(h.g().is_pending_member(&o.member_id));
    assert_eq!(h.g().state(), GroupState::Empty);
}

#[test]
fn pending_member_id_expires_after_the_session_timeout() {
    let mut h = H::new();
    let id = ready(h.join("")).member_id;
    h.advance(SESSION as i64 - 1);
    assert!(h.g().is_pending_member(&id));
    h.advance(1);
    assert!(!h.g().is_pending_member(&id));
    // Coming back with the expired id: unknown.
    assert_eq!(ready(h.join(&id)).error, Some(GroupError::UnknownMemberId));
}

#[test]
fn before_v4_a_new_member_joins_at_once() {
    let mut h = H::new();
    let req = h.join_req("", 3, None);
    let _rx = parked(h.join_with(req));
    assert_eq!(h.g().members().len(), 1);
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
}

#[test]
fn empty_group_waits_the_initial_delay_then_completes() {
    let mut h = H::new();
    let (a, mut ja) = h.new_member();
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
    h.advance(2_999);
    assert!(answered(&mut ja).is_none(), "held for the initial delay");
    h.advance(1);
    let o = answered(&mut ja).expect("answered at the delay");
    assert_eq!(o.error, None);
    assert_eq!((o.generation_id, o.leader.as_str()), (1, a.as_str()));
    assert_eq!(o.protocol_name.as_deref(), Some("range"));
    assert_eq!(o.members.len(), 1, "the leader gets the member list");
    assert_eq!(h.g().state(), GroupState::CompletingRebalance);
}

#[test]
fn initial_delay_is_extended_while_members_arrive_up_to_the_rebalance_timeout() {
    let mut h = H::with(GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    });
    let (_a, mut ja) = h.new_member();
    // A member arrives within each delay: the phase is extended each time...
    for _ in 0..3 {
        h.advance(1_000);
        h.new_member();
        h.advance(2_000);
        assert!(answered(&mut ja).is_none());
    }
    // ...and completes one delay after the last arrival.
    h.advance(3_000);
    let o = answered(&mut ja).expect("completed");
    assert_eq!(o.members.len(), 4);

    // Bounded by the rebalance timeout even if members never stop coming.
    let mut h = H::new();
    let (_a, mut ja) = h.new_member();
    let mut waited = 0;
    while answered(&mut ja).is_none() {
        h.new_member();
        h.advance(1_000);
        waited += 1_000;
        assert!(waited <= REBALANCE as i64 + 3_000, "never completed");
    }
    assert!(
        waited >= REBALANCE as i64 - 3_000,
        "completed after {waited} ms"
    );
}

#[test]
fn leader_sync_distributes_the_assignment_and_followers_wait() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    assert_eq!(h.g().member(&a).unwrap().assignment, Bytes::from("A"));
    assert_eq!(h.g().member(&b).unwrap().assignment, Bytes::from("B"));
    // The assignment was persisted with the generation.
    let Some(GroupRecord::Group { value: Some(v), .. }) = h.log.last() else {
        panic!("group record expected")
    };
    assert_eq!(v.generation, 1);
    assert_eq!(v.members.len(), 2);
    // In Stable, a SyncGroup returns the current assignment at once.
    let o = ready(h.sync(&b, 1, &[]));
    assert_eq!(o.assignment, Bytes::from("B"));
}

#[test]
fn assignment_is_handed_out_only_once_durable() {
    let mut h = H::new();
    let (a, mut ja) = h.new_member();
    h.advance(3_000);
    answered(&mut ja).unwrap();
    h.hold = true;
    let mut sa = parked(h.sync(&a, 1, &[(&a, "A")]));
    assert!(answered(&mut sa).is_none(), "not before the fsync");
    assert_eq!(h.g().state(), GroupState::CompletingRebalance);
    h.release(Ok(()));
    assert_eq!(answered(&mut sa).unwrap().assignment, Bytes::from("A"));
    assert_eq!(h.g().state(), GroupState::Stable);
}

#[test]
fn failed_assignment_write_tells_members_to_rejoin() {
    let mut h = H::new();
    let (a, mut ja) = h.new_member();
    h.advance(3_000);
    answered(&mut ja).unwrap();
    h.hold = true;
    let mut sa = parked(h.sync(&a, 1, &[(&a, "A")]));
    h.release(Err(GroupError::Storage("disk".into())));
    assert_eq!(
        answered(&mut sa).unwrap().error,
        Some(GroupError::Storage("disk".into()))
    );
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
}

#[test]
fn protocol_is_chosen_by_vote_among_common_protocols() {
    let mut h = H::new();
    let mut req = h.join_req("", 3, None);
    req.protocols = protocols(&["range", "roundrobin"], &["t"]);
    let _a = h.join_with(req.clone());
    req.protocols = protocols(&["roundrobin", "range", "sticky"], &["t"]);
    let _b = h.join_with(req.clone());
    let mut c = parked(h.join_with(req));
    h.settle(&mut c);
    assert_eq!(h.g().protocol_name(), Some("roundrobin"));
}

// ---- Rebalances of a Stable group ----------------------------------------------------------

#[test]
fn join_round_completes_as_soon_as_every_member_rejoined() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    // The leader rejoins: rebalance.
    let mut ja = parked(h.join(&a));
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&b, 1), Err(GroupError::RebalanceInProgress));
    // The second member rejoins: the round completes with no timer involved.
    let mut jb = parked(h.join(&b));
    let oa = answered(&mut ja).expect("completed at once");
    let ob = answered(&mut jb).expect("completed at once");
    assert_eq!((oa.generation_id, ob.generation_id), (2, 2));
    assert_eq!(oa.members.len(), 2);
    assert!(ob.members.is_empty(), "followers get no member list");
    assert_eq!(h.g().state(), GroupState::CompletingRebalance);
}

#[test]
fn follower_with_unchanged_metadata_gets_the_current_generation() {
    let mut h = H::new();
    let (_a, b) = h.stable_pair();
    let o = ready(h.join(&b));
    assert_eq!((o.error, o.generation_id), (None, 1));
    assert_eq!(h.g().state(), GroupState::Stable);
    // With new metadata it triggers a rebalance.
    let mut req = h.join_req(&b, 9, None);
    req.protocols = protocols(&["range"], &["t", "u"]);
    let _rx = parked(h.join_with(req));
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
}

#[test]
fn rebalance_timeout_removes_members_that_did_not_rejoin() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    let mut ja = parked(h.join(&a));
    // b keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    for _ in 0..5 {
        h.advance(REBALANCE as i64 / 6);
        assert_eq!(h.heartbeat(&b, 1), Err(GroupError::RebalanceInProgress));
    }
    h.advance(REBALANCE as i64);
    let o = answered(&mut ja).expect("completed at the rebalance timeout");
    assert_eq!((o.generation_id, o.members.len()), (2, 1));
    assert!(h.g().member(&b).is_none());
    assert_eq!(h.heartbeat(&b, 2), Err(GroupError::UnknownMemberId));
}

#[test]
fn new_leader_is_elected_when_the_leader_does_not_rejoin() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    let mut req = h.join_req(&b, 9, None);
    req.protocols = protocols(&["range"], &["t", "u"]);
    let mut jb = parked(h.join_with(req));
    h.advance(REBALANCE as i64);
    let o = answered(&mut jb).unwrap();
    assert_eq!(o.leader, b);
    assert!(h.g().member(&a).is_none());
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    h.advance(SESSION as i64 / 2);
    assert_eq!(h.heartbeat(&a, 1), Ok(()));
    h.advance(SESSION as i64 / 2 - 1);
    assert!(h.g().member(&b).is_some());
    h.advance(1);
    assert!(h.g().member(&b).is_none(), "b never heartbeated");
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&a, 1), Err(GroupError::RebalanceInProgress));
}

#[test]
fn new_member_joining_a_stable_group_rebalances_it() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    let (_c, mut jc) = h.new_member();
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
    let _ja = parked(h.join(&a));
    let _jb = parked(h.join(&b));
    let o = answered(&mut jc).expect("all three joined");
    assert_eq!(o.generation_id, 2);
}

#[test]
fn completing_rebalance_rejoin_and_new_member() {
    let mut h = H::new();
    let (a, mut ja) = h.new_member();
    let (b, mut jb) = h.new_member();
    h.settle(&mut ja);
    answered(&mut jb).unwrap();
    // Unchanged rejoin in CompletingRebalance: the same answer again.
    let o = ready(h.join(&a));
    assert_eq!((o.generation_id, o.members.len()), (1, 2));
    // A follower parked in SyncGroup...
    let mut sb = parked(h.sync(&b, 1, &[]));
    // ...is told to rejoin when a new member arrives.
    let _c = h.new_member();
    assert_eq!(
        answered(&mut sb).unwrap().error,
        Some(GroupError::RebalanceInProgress)
    );
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
}

#[test]
fn members_that_do_not_sync_in_time_are_removed() {
    let mut h = H::new();
    let (a, mut ja) = h.new_member();
    let (b, mut jb) = h.new_member();
    h.settle(&mut ja);
    answered(&mut jb).unwrap();
    let _sa = h.sync(&a, 1, &[(&a, "A"), (&b, "B")]);
    assert_eq!(h.g().state(), GroupState::Stable);
    // b never sends SyncGroup (its heartbeats keep the session alive).
    for _ in 0..6 {
        h.advance(REBALANCE as i64 / 5);
        let _ = h.heartbeat(&b, 1);
        let _ = h.heartbeat(&a, 1);
    }
    assert!(h.g().member(&b).is_none());
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
}

#[test]
fn parked_new_member_expires_after_the_new_member_join_timeout() {
    let mut h = H::with(GroupConfig {
        new_member_join_timeout_ms: 7_000,
        ..GroupConfig::default()
    });
    let (a, b) = h.stable_pair();
    let (c, mut jc) = h.new_member();
    // a and b keep the round open without rejoining... until c's join times out.
    h.advance(6_999);
    assert!(answered(&mut jc).is_none());
    h.advance(1);
    let o = answered(&mut jc).expect("timed out");
    assert_eq!(o.error, Some(GroupError::UnknownMemberId));
    assert!(h.g().member(&c).is_none());
    assert!(h.g().member(&a).is_some() && h.g().member(&b).is_some());
}

// ---- Leaving, Empty ----------------------------------------------------------------------

#[test]
fn last_members_leaving_empty_the_group() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    assert_eq!(h.leave(&b, None)[0].error, None);
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
    assert_eq!(h.leave(&a, None)[0].error, None);
    assert_eq!(h.g().state(), GroupState::Empty);
    assert_eq!(h.g().generation_id(), 2);
    let Some(GroupRecord::Group { value: Some(v), .. }) = h.log.last() else {
        panic!("empty group record expected")
    };
    assert!(v.members.is_empty());
    // Empty: the member-level APIs answer UNKNOWN_MEMBER_ID.
    assert_eq!(h.heartbeat(&a, 2), Err(GroupError::UnknownMemberId));
    assert_eq!(
        h.leave(&a, None)[0].error,
        Some(GroupError::UnknownMemberId)
    );
}

#[test]
fn leave_errors_pending_members_and_static_removal_by_instance_id() {
    let mut h = H::new();
    assert_eq!(
        h.leave("nobody", None)[0].error,
        Some(GroupError::UnknownMemberId)
    );
    let pending = ready(h.join("")).member_id;
    assert_eq!(h.leave(&pending, None)[0].error, None);
    assert!(!h.g().is_pending_member(&pending));
    let req = h.join_req("", 9, Some("inst"));
    let _rx = parked(h.join_with(req));
    assert_eq!(
        h.leave("", Some("other"))[0].error,
        Some(GroupError::UnknownMemberId)
    );
    assert_eq!(h.leave("", Some("inst"))[0].error, None);
    assert!(h.g().members().is_empty());
}

#[test]
fn leaving_member_with_a_parked_join_is_told_unknown_member() {
    let mut h = H::new();
    let (a, mut ja) = h.new_member();
    assert_eq!(h.leave(&a, None)[0].error, None);
    assert_eq!(
        answered(&mut ja).unwrap().error,
        Some(GroupError::UnknownMemberId)
    );
}

// ---- Errors -------------------------------------------------------------------------------

#[test]
fn inconsistent_group_protocol() {
    let mut h = H::new();
    let mut req = h.join_req("", 9, None);
    req.protocols.clear();
    assert_eq!(
        ready(h.join_with(req)).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let (_a, _b) = h.stable_pair();
    let mut req = h.join_req("", 9, None);
    req.protocol_type = "connect".into();
    assert_eq!(
        ready(h.join_with(req)).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut req = h.join_req("", 9, None);
    req.protocols = protocols(&["sticky"], &["t"]);
    assert_eq!(
        ready(h.join_with(req)).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
}

#[test]
fn group_max_size_reached() {
    let mut h = H::with(GroupConfig {
        max_size: 2,
        ..GroupConfig::default()
    });
    let (a, _b) = h.stable_pair();
    let o = ready(h.join(""));
    assert_eq!(o.error, Some(GroupError::GroupMaxSizeReached));
    assert_eq!(o.member_id, "");
    // Members already in the group are still admitted.
    let _rx = parked(h.join(&a));
    // During a rebalance, the members already rejoined count.
    let mut h = H::with(GroupConfig {
        max_size: 1,
        ..GroupConfig::default()
    });
    let (_a, _ja) = h.new_member();
    let id = ready(h.join("")).member_id;
    assert_eq!(
        ready(h.join(&id)).error,
        Some(GroupError::GroupMaxSizeReached)
    );
    assert!(
        !h.g().is_pending_member(&id),
        "refused pending member removed"
    );
}

#[test]
fn sync_errors() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    assert_eq!(
        ready(h.sync("nobody", 1, &[])).error,
        Some(GroupError::UnknownMemberId)
    );
    assert!(matches!(
        ready(h.sync(&a, 7, &[])).error,
        Some(GroupError::IllegalGeneration { got: 7, current: 1 })
    ));
    let req = SyncRequest {
        member_id: b.clone(),
        group_instance_id: None,
        generation_id: 1,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignments: vec![],
    };
    assert_eq!(
        ready(h.run(|g, ctx| g.sync(req, ctx))).error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let _ja = parked(h.join(&a));
    assert_eq!(
        ready(h.sync(&b, 1, &[])).error,
        Some(GroupError::RebalanceInProgress)
    );
}

#[test]
fn heartbeat_errors() {
    let mut h = H::new();
    assert_eq!(h.heartbeat("x", 0), Err(GroupError::UnknownMemberId));
    let (a, _b) = h.stable_pair();
    assert_eq!(h.heartbeat(&a, 1), Ok(()));
    assert!(matches!(
        h.heartbeat(&a, 0),
        Err(GroupError::IllegalGeneration { .. })
    ));
    assert_eq!(
        h.run(|g, ctx| g.heartbeat(&a, Some("inst"), 1, ctx)),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn dead_group_answers_coordinator_not_available() {
    let mut h = H::new();
    let (a, _b) = h.stable_pair();
    let now = h.now;
    h.g_mut().mark_dead(now);
    assert_eq!(
        ready(h.join(&a)).error,
        Some(GroupError::CoordinatorNotAvailable)
    );
    assert_eq!(
        ready(h.join("")).error,
        Some(GroupError::CoordinatorNotAvailable)
    );
    assert_eq!(h.heartbeat(&a, 1), Err(GroupError::CoordinatorNotAvailable));
    assert_eq!(
        ready(h.sync(&a, 1, &[])).error,
        Some(GroupError::CoordinatorNotAvailable)
    );
}

#[test]
fn unload_answers_parked_requests_not_coordinator() {
    let mut h = H::new();
    let (_a, mut ja) = h.new_member();
    h.g_mut().unload();
    assert_eq!(
        answered(&mut ja).unwrap().error,
        Some(GroupError::NotCoordinator)
    );
}

// ---- Static membership (KIP-345) ----------------------------------------------------------

/// A Stable group of static members "s1" (leader) and "s2"; returns their member ids.
fn static_pair(h: &mut H) -> (String, String) {
    let r1 = h.join_req("", 9, Some("s1"));
    let r2 = h.join_req("", 9, Some("s2"));
    let mut j1 = parked(h.join_with(r1));
    let mut j2 = parked(h.join_with(r2));
    let a = h.settle(&mut j1).member_id;
    let b = answered(&mut j2).unwrap().member_id;
    assert!(a.starts_with("s1-") && b.starts_with("s2-"));
    let _ = h.sync(&a, 1, &[(&a, "A"), (&b, "B")]);
    assert_eq!(h.g().state(), GroupState::Stable);
    (a, b)
}

#[test]
fn static_member_rejoining_unchanged_gets_its_assignment_back_without_rebalance() {
    let mut h = H::new();
    let (_a, b) = static_pair(&mut h);
    // s2 restarts: it joins with no member id and its instance id.
    let req = h.join_req("", 9, Some("s2"));
    let o = ready_or_answered(h.join_with(req));
    assert_eq!(o.error, None);
    assert_ne!(o.member_id, b, "a new member id");
    assert_eq!(o.generation_id, 1, "no new generation");
    assert!(!o.skip_assignment);
    assert_eq!(h.g().state(), GroupState::Stable);
    let s = ready(h.sync(&o.member_id, 1, &[]));
    assert_eq!(s.assignment, Bytes::from("B"));
    // The old member id is fenced.
    assert_eq!(
        h.run(|g, ctx| g.heartbeat(&b, Some("s2"), 1, ctx)),
        Err(GroupError::FencedInstanceId)
    );
    // And the replacement was persisted.
    let Some(GroupRecord::Group { value: Some(v), .. }) = h.log.last() else {
        panic!()
    };
    assert!(v.members.iter().any(|m| m.member_id == o.member_id));
}

#[test]
fn static_leader_rejoining_v9_skips_assignment_and_before_v9_sees_the_old_leader() {
    let mut h = H::new();
    let (a, _b) = static_pair(&mut h);
    let req = h.join_req("", 9, Some("s1"));
    let o = ready_or_answered(h.join_with(req));
    assert!(o.skip_assignment);
    assert_eq!(o.leader, o.member_id);
    assert_eq!(o.members.len(), 2);
    let new_leader = o.member_id;
    let req = h.join_req("", 8, Some("s1"));
    let o = ready_or_answered(h.join_with(req));
    assert!(!o.skip_assignment);
    assert_eq!(
        o.leader, new_leader,
        "pre-v9: the leader id from before the rejoin"
    );
    assert_ne!(o.member_id, a);
    assert_eq!(h.g().state(), GroupState::Stable);
}

#[test]
fn static_member_fences_its_old_parked_join() {
    let mut h = H::new();
    let (a, b) = static_pair(&mut h);
    let mut req = h.join_req(&b, 9, Some("s2"));
    req.protocols = protocols(&["range"], &["t", "u"]);
    let mut old = parked(h.join_with(req));
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
    let req = h.join_req("", 9, Some("s2"));
    let _new = parked(h.join_with(req));
    assert_eq!(
        answered(&mut old).unwrap().error,
        Some(GroupError::FencedInstanceId)
    );
    assert!(h.g().member(&a).is_some());
}

#[test]
fn static_member_rejoining_with_a_new_protocol_choice_triggers_a_rebalance() {
    let mut h = H::new();
    let mut req = h.join_req("", 9, Some("s1"));
    req.protocols = protocols(&["range", "roundrobin"], &["t"]);
    let mut j = parked(h.join_with(req.clone()));
    h.advance(3_000);
    let a = answered(&mut j).unwrap().member_id;
    let _ = h.sync(&a, 1, &[(&a, "A")]);
    assert_eq!(h.g().protocol_name(), Some("range"));
    // Same instance, new member id, now preferring roundrobin: the selection would change,
    // so the group rebalances instead of handing back the old assignment.
    req.protocols = protocols(&["roundrobin", "range"], &["t"]);
    let mut j = parked(h.join_with(req));
    let o = answered(&mut j).expect("sole member: the round completes at once");
    assert_eq!(o.generation_id, 2);
    assert_eq!(h.g().protocol_name(), Some("roundrobin"));
    assert_eq!(h.g().state(), GroupState::CompletingRebalance);
}

#[test]
fn static_member_rejoining_during_completing_rebalance_triggers_a_rebalance() {
    let mut h = H::new();
    let r1 = h.join_req("", 9, Some("s1"));
    let r2 = h.join_req("", 9, Some("s2"));
    let mut j1 = parked(h.join_with(r1));
    let _j2 = parked(h.join_with(r2.clone()));
    h.settle(&mut j1);
    assert_eq!(h.g().state(), GroupState::CompletingRebalance);
    let _rx = parked(h.join_with(r2));
    assert_eq!(h.g().state(), GroupState::PreparingRebalance);
}

#[test]
fn static_members_that_did_not_rejoin_stay_in_the_group() {
    let mut h = H::new();
    let (a, b) = static_pair(&mut h);
    let req = h.join_req(&a, 9, Some("s1"));
    let mut ja = parked(h.join_with(req));
    // s2 heartbeats through the rebalance timeout without rejoining.
    for _ in 0..6 {
        h.advance(REBALANCE as i64 / 6);
        let _ = h.run(|g, ctx| g.heartbeat(&b, Some("s2"), 1, ctx));
    }
    let o = answered(&mut ja).expect("completed");
    assert_eq!(o.members.len(), 2, "the static member is kept");
    assert!(h.g().member(&b).is_some());
}

#[test]
fn static_leader_that_did_not_rejoin_loses_the_leadership() {
    let mut h = H::new();
    let (a, b) = static_pair(&mut h);
    let mut req = h.join_req(&b, 9, Some("s2"));
    req.protocols = protocols(&["range"], &["t", "u"]);
    let mut jb = parked(h.join_with(req));
    for _ in 0..6 {
        h.advance(REBALANCE as i64 / 6);
        let _ = h.run(|g, ctx| g.heartbeat(&a, Some("s1"), 1, ctx));
    }
    let o = answered(&mut jb).expect("completed at the rebalance timeout");
    assert_eq!(o.leader, b, "the member that rejoined leads");
    assert_eq!(o.members.len(), 2);
    assert!(
        h.g().member(&a).is_some(),
        "the static leader stays a member"
    );
}

#[test]
fn failed_static_replacement_is_reverted() {
    let mut h = H::new();
    let (_a, b) = static_pair(&mut h);
    h.hold = true;
    let req = h.join_req("", 9, Some("s2"));
    let mut rx = parked(h.join_with(req));
    h.release(Err(GroupError::Storage("disk".into())));
    let o = answered(&mut rx).unwrap();
    assert_eq!(o.error, Some(GroupError::Storage("disk".into())));
    assert_eq!(o.member_id, "");
    assert!(h.g().member(&b).is_some(), "old member id restored");
    assert_eq!(h.run(|g, ctx| g.heartbeat(&b, Some("s2"), 1, ctx)), Ok(()));
}

// ---- Offsets ------------------------------------------------------------------------------

fn author(member_id: &str, generation_id: i32) -> CommitAuthor {
    CommitAuthor {
        member_id: member_id.to_string(),
        group_instance_id: None,
        generation_id,
        retention_time_ms: -1,
    }
}

fn part(topic: &str, partition: i32, offset: i64, metadata: Option<&str>) -> CommitPartition {
    CommitPartition {
        topic: topic.to_string(),
        partition,
        offset,
        leader_epoch: 5,
        metadata: metadata.map(str::to_string),
    }
}

#[test]
fn manual_commit_to_an_empty_group_and_exact_fetch() {
    let mut h = H::new();
    let r = h.run_entry(|e, ctx| {
        e.commit_offsets(
            &author("", -1),
            &[part("t", 0, 42, Some("meta")), part("t", 1, 7, None)],
            ctx,
        )
    });
    assert_eq!(r, Ok(vec![None, None]));
    let o = h.e.offsets.offset("t", 0).unwrap();
    assert_eq!(
        (o.offset, o.leader_epoch, o.metadata.as_str()),
        (42, 5, "meta")
    );
    assert_eq!(
        h.e.offsets.offset("t", 1).unwrap().metadata,
        "",
        "null metadata is stored as empty"
    );
}

#[test]
fn commit_is_visible_only_once_durable() {
    let mut h = H::new();
    let mut ctx = Ctx::new(h.now, &h.cfg);
    h.e.commit_offsets(&author("", -1), &[part("t", 0, 1, None)], &mut ctx)
        .unwrap();
    let records = ctx.records;
    h.e.appended(&records, 10, -1);
    assert!(h.e.offsets.offset("t", 0).is_none());
    h.e.committed(10);
    assert!(
        h.e.offsets.offset("t", 0).is_none(),
        "record 10 is not below 10"
    );
    h.e.committed(11);
    assert_eq!(h.e.offsets.offset("t", 0).unwrap().offset, 1);
}

#[test]
fn commit_validation_follows_the_membership() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    let commit = |h: &mut H, who: CommitAuthor| {
        h.run_entry(|e, ctx| e.commit_offsets(&who, &[part("t", 0, 1, None)], ctx))
    };
    assert_eq!(commit(&mut h, author(&a, 1)), Ok(vec![None]));
    assert_eq!(
        commit(&mut h, author("", -1)),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        commit(&mut h, author("x", 1)),
        Err(GroupError::UnknownMemberId)
    );
    assert!(matches!(
        commit(&mut h, author(&a, 0)),
        Err(GroupError::IllegalGeneration { got: 0, current: 1 })
    ));
    // PreparingRebalance: commits of the previous generation are still accepted.
    let mut ja = parked(h.join(&a));
    assert_eq!(commit(&mut h, author(&b, 1)), Ok(vec![None]));
    // CompletingRebalance: REBALANCE_IN_PROGRESS.
    let _jb = parked(h.join(&b));
    answered(&mut ja).unwrap();
    assert_eq!(
        commit(&mut h, author(&a, 2)),
        Err(GroupError::RebalanceInProgress)
    );
}

#[test]
fn commit_keeps_the_session_alive() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    for _ in 0..4 {
        h.advance(SESSION as i64 / 2);
        h.run_entry(|e, ctx| e.commit_offsets(&author(&a, 1), &[part("t", 0, 1, None)], ctx))
            .unwrap();
        let _ = h.heartbeat(&b, 1);
    }
    assert!(h.g().member(&a).is_some());
}

#[test]
fn offset_metadata_too_large_is_per_partition() {
    let mut h = H::with(GroupConfig {
        offset_metadata_max_bytes: 4,
        ..GroupConfig::default()
    });
    let r = h.run_entry(|e, ctx| {
        e.commit_offsets(
            &author("", -1),
            &[
                part("t", 0, 1, Some("12345")),
                part("t", 1, 1, Some("1234")),
            ],
            ctx,
        )
    });
    assert_eq!(
        r,
        Ok(vec![
            Some(GroupError::OffsetMetadataTooLarge { len: 5, max: 4 }),
            None
        ])
    );
    assert!(h.e.offsets.offset("t", 0).is_none());
    assert!(h.e.offsets.offset("t", 1).is_some());
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention_from_when_it_emptied() {
    let mut h = H::with(GroupConfig {
        offsets_retention_ms: 60_000,
        ..GroupConfig::default()
    });
    let (a, b) = h.stable_pair();
    h.run_entry(|e, ctx| e.commit_offsets(&author(&a, 1), &[part("t", 0, 1, None)], ctx))
        .unwrap();
    h.advance(SESSION as i64 / 2);
    // While Stable and subscribed to "t", the offset does not expire.
    assert!(!h.run_entry(|e, ctx| e.cleanup_expired(ctx)));
    assert!(h.e.offsets.offset("t", 0).is_some());
    h.leave(&a, None);
    h.leave(&b, None);
    assert_eq!(h.g().state(), GroupState::Empty);
    h.advance(59_999);
    assert!(!h.run_entry(|e, ctx| e.cleanup_expired(ctx)));
    assert!(h.e.offsets.offset("t", 0).is_some());
    h.advance(1);
    assert!(
        h.run_entry(|e, ctx| e.cleanup_expired(ctx)),
        "group deleted"
    );
    assert!(h.e.offsets.offset("t", 0).is_none());
    let last_two = &h.log[h.log.len() - 2..];
    assert!(matches!(
        last_two[0],
        GroupRecord::Offset { value: None, .. }
    ));
    assert!(matches!(
        last_two[1],
        GroupRecord::Group { value: None, .. }
    ));
}

#[test]
fn offsets_of_a_simple_group_expire_from_their_commit() {
    let mut h = H::with(GroupConfig {
        offsets_retention_ms: 1_000,
        ..GroupConfig::default()
    });
    h.run_entry(|e, ctx| e.commit_offsets(&author("", -1), &[part("t", 0, 1, None)], ctx))
        .unwrap();
    h.advance(500);
    h.run_entry(|e, ctx| e.commit_offsets(&author("", -1), &[part("t", 1, 1, None)], ctx))
        .unwrap();
    h.advance(500);
    assert!(!h.run_entry(|e, ctx| e.cleanup_expired(ctx)));
    assert!(h.e.offsets.offset("t", 0).is_none());
    assert!(h.e.offsets.offset("t", 1).is_some());
    // An explicit retention (OffsetCommit v2-v4) wins.
    let mut who = author("", -1);
    who.retention_time_ms = 100;
    h.run_entry(|e, ctx| e.commit_offsets(&who, &[part("u", 0, 1, None)], ctx))
        .unwrap();
    h.advance(100);
    h.run_entry(|e, ctx| e.cleanup_expired(ctx));
    assert!(h.e.offsets.offset("u", 0).is_none());
}

#[test]
fn offset_delete_rules() {
    let mut h = H::new();
    let (a, _b) = h.stable_pair();
    h.run_entry(|e, ctx| {
        e.commit_offsets(
            &author(&a, 1),
            &[part("t", 0, 1, None), part("other", 0, 1, None)],
            ctx,
        )
    })
    .unwrap();
    let topics = vec![
        ("t".to_string(), vec![0]),
        ("other".to_string(), vec![0, 1]),
    ];
    let r = h
        .run_entry(|e, ctx| e.delete_offsets(&topics, ctx))
        .unwrap();
    assert_eq!(
        r,
        vec![
            vec![Some(GroupError::GroupSubscribedToTopic("t".into()))],
            vec![None, None]
        ]
    );
    assert!(h.e.offsets.offset("t", 0).is_some());
    assert!(h.e.offsets.offset("other", 0).is_none());
    // A non-consumer group with members: NON_EMPTY_GROUP.
    let mut h = H::new();
    let mut req = h.join_req("", 3, None);
    req.protocol_type = "connect".into();
    let _ = h.join_with(req);
    assert_eq!(
        h.run_entry(|e, ctx| e.delete_offsets(&topics, ctx)),
        Err(GroupError::NonEmptyGroup)
    );
}

#[test]
fn delete_group_only_when_empty() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    assert_eq!(
        h.run_entry(|e, ctx| e.delete_group(ctx)),
        Err(GroupError::NonEmptyGroup)
    );
    h.run_entry(|e, ctx| e.commit_offsets(&author(&a, 1), &[part("t", 0, 1, None)], ctx))
        .unwrap();
    h.leave(&a, None);
    h.leave(&b, None);
    h.run_entry(|e, ctx| e.delete_group(ctx)).unwrap();
    assert!(h.e.offsets.offset("t", 0).is_none());
    assert!(matches!(
        h.log.last(),
        Some(GroupRecord::Group { value: None, .. })
    ));
}

// ---- Loading from the log ------------------------------------------------------------------

#[test]
fn loaded_group_is_stable_and_members_must_heartbeat() {
    let mut h = H::new();
    let (a, b) = h.stable_pair();
    let Some(GroupRecord::Group { value: Some(v), .. }) = h.log.last().cloned() else {
        panic!()
    };
    let mut loaded = H::new();
    loaded.e.group = Group::Classic(ClassicGroup::from_record("g", &v, 0, loaded.now));
    assert_eq!(loaded.g().state(), GroupState::Stable);
    assert_eq!(loaded.g().leader(), Some(a.as_str()));
    assert_eq!(loaded.heartbeat(&a, 1), Ok(()));
    assert_eq!(ready(loaded.sync(&b, 1, &[])).assignment, Bytes::from("B"));
    loaded.advance(SESSION as i64 / 2);
    assert_eq!(loaded.heartbeat(&a, 1), Ok(()));
    loaded.advance(SESSION as i64 / 2);
    assert!(loaded.g().member(&b).is_none(), "b's session expired");
    assert_eq!(loaded.g().state(), GroupState::PreparingRebalance);
}

// ---- The coordinator: persistence and replay ---------------------------------------------

/// A coordinator over `dir` with the given clock and partitions of the group log.
pub(super) fn open_coordinator(
    dir: &std::path::Path,
    config: GroupConfig,
    partitions: i32,
    clock: &std::sync::Arc<crate::clock::ManualClock>,
) -> GroupCoordinator {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    GroupCoordinator::open(
        dir,
        config,
        partitions,
        crate::partition::PartitionContext {
            clock: clock.clone(),
            background: std::sync::Arc::new(crate::tasks::Inline),
            producer_expiration_ms: i64::MAX,
        },
        crate::tasks::Tasks::new(rx),
    )
    .unwrap()
}

mod coordinator {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::group::coordinator::GroupCoordinator;

    fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> GroupCoordinator {
        open_coordinator(
            dir,
            GroupConfig {
                initial_rebalance_delay_ms: 0,
                ..GroupConfig::default()
            },
            4,
            clock,
        )
    }

    async fn wait<T>(w: Waiter<T>) -> T {
        match w {
            Waiter::Ready(t) => t,
            Waiter::Wait(rx) => rx.await.expect("answered"),
        }
    }

    fn join_req(member_id: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            group_instance_id: instance.map(str::to_string),
            protocol_type: "consumer".into(),
            protocols: protocols(&["range"], &["t"]),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            version: 9,
        }
    }

    /// One member through join and sync: Stable at generation 1.
    async fn one_member_group(c: &GroupCoordinator, clock: &ManualClock) -> String {
        let id = wait(c.join("g", join_req("", None))).await.member_id;
        let w = c.join("g", join_req(&id, None));
        // The initial delay is 0: the next tick completes the join phase.
        clock.advance(1);
        c.tick(clock.now_ms());
        let o = wait(w).await;
        assert_eq!((o.error, o.generation_id), (None, 1));
        let s = wait(c.sync(
            "g",
            SyncRequest {
                member_id: id.clone(),
                group_instance_id: None,
                generation_id: 1,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![(id.clone(), Bytes::from_static(b"A"))],
            },
        ))
        .await;
        assert_eq!(s.assignment, Bytes::from_static(b"A"));
        id
    }

    fn commit(
        c: &GroupCoordinator,
        group: &str,
        offset: i64,
    ) -> Waiter<Result<Vec<Option<GroupError>>, GroupError>> {
        c.commit_offsets(
            group,
            9,
            &CommitAuthor {
                member_id: String::new(),
                group_instance_id: None,
                generation_id: -1,
                retention_time_ms: -1,
            },
            &[CommitPartition {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: 7,
                metadata: Some("m".into()),
            }],
        )
    }

    #[tokio::test]
    async fn acknowledged_commits_survive_an_unclean_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        {
            let c = open(dir.path(), &clock);
            assert_eq!(wait(commit(&c, "simple", 42)).await, Ok(vec![None]));
            assert_eq!(wait(commit(&c, "simple", 43)).await, Ok(vec![None]));
            // Dropped without close: what an unclean stop leaves behind.
        }
        let c = open(dir.path(), &clock);
        let fetched = c.fetch_offsets("simple", &[("t".into(), vec![0, 1])]);
        assert_eq!(
            fetched[0].1,
            vec![
                FetchedOffset {
                    partition: 0,
                    offset: 43,
                    leader_epoch: 7,
                    metadata: "m".into(),
                    unstable: false,
                },
                FetchedOffset {
                    partition: 1,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    unstable: false,
                }
            ]
        );
        assert_eq!(c.fetch_all_offsets("simple").len(), 1);
        assert!(c.fetch_all_offsets("nope").is_empty());
    }

    #[tokio::test]
    async fn a_stable_group_is_stable_again_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let id = {
            let c = open(dir.path(), &clock);
            let id = one_member_group(&c, &clock).await;
            c.close().unwrap();
            id
        };
        let c = open(dir.path(), &clock);
        let d = c.describe_group("g");
        assert_eq!(d.state, GroupState::Stable);
        assert_eq!(d.protocol_data, "range");
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.members[0].assignment, Bytes::from_static(b"A"));
        assert_eq!(c.heartbeat("g", &id, None, 1), Ok(()));
        // Without heartbeats the loaded member expires.
        clock.advance(SESSION as i64 + 1);
        c.tick(clock.now_ms());
        assert_ne!(c.describe_group("g").state, GroupState::Stable);
    }

    #[tokio::test]
    async fn delete_groups_and_list_groups() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let c = open(dir.path(), &clock);
        let id = one_member_group(&c, &clock).await;
        wait(commit(&c, "simple", 1)).await.unwrap();
        let listed = c.list_groups(&[], &[]);
        assert_eq!(listed.len(), 2);
        assert_eq!(c.list_groups(&["stable".into()], &[]).len(), 1);
        assert_eq!(c.list_groups(&[" EMPTY ".into()], &[]).len(), 1);
        assert_eq!(c.list_groups(&[], &["consumer".into()]).len(), 0);
        assert_eq!(c.list_groups(&[], &["Classic".into()]).len(), 2);
        let r = wait(c.delete_groups(&[
            "g".into(),
            "simple".into(),
            "missing".into(),
            "simple".into(),
        ]))
        .await;
        assert_eq!(
            r,
            vec![
                ("g".to_string(), Some(GroupError::NonEmptyGroup)),
                ("simple".to_string(), None),
                (
                    "missing".to_string(),
                    Some(GroupError::GroupIdNotFound("missing".into()))
                ),
            ]
        );
        assert_eq!(c.describe_group("simple").state, GroupState::Dead);
        assert!(c.fetch_all_offsets("simple").is_empty());
        // A deleted group stays deleted after a restart.
        drop(c);
        let c = open(dir.path(), &clock);
        assert_eq!(c.describe_group("simple").state, GroupState::Dead);
        assert_eq!(c.describe_group("g").members[0].member_id, id);
    }

    #[tokio::test]
    async fn expired_empty_groups_are_removed_by_the_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let c = open(dir.path(), &clock);
        wait(commit(&c, "simple", 1)).await.unwrap();
        let later = 1_000 + GroupConfig::default().offsets_retention_ms;
        c.cleanup(later - 1);
        assert_eq!(c.states().len(), 1);
        c.cleanup(later);
        assert!(c.states().is_empty());
        drop(c);
        let c = open(dir.path(), &clock);
        assert!(c.states().is_empty(), "the expiry was persisted");
    }
}

mod snapshots {
    use super::*;
    use crate::clock::ManualClock;
    use crate::group::coordinator::GroupCoordinator;

    /// One partition of the group log, so the snapshot and segment counts below are those of
    /// one log (the runtime's tests cover several).
    fn open(dir: &std::path::Path, segment_bytes: u64) -> GroupCoordinator {
        open_coordinator(
            dir,
            GroupConfig {
                segment_bytes,
                ..GroupConfig::default()
            },
            1,
            &ManualClock::new(1_000),
        )
    }

    fn log_dir(dir: &std::path::Path) -> std::path::PathBuf {
        dir.join(format!("{GROUP_TOPIC}-0"))
    }

    async fn commit(c: &GroupCoordinator, group: &str, partition: i32, offset: i64) {
        let w = c.commit_offsets(
            group,
            9,
            &CommitAuthor {
                member_id: String::new(),
                group_instance_id: None,
                generation_id: -1,
                retention_time_ms: -1,
            },
            &[CommitPartition {
                topic: "t".into(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: Some(format!("m{offset}")),
            }],
        );
        let r = match w {
            Waiter::Ready(r) => r,
            Waiter::Wait(rx) => rx.await.unwrap(),
        };
        assert_eq!(r, Ok(vec![None]));
    }

    fn files(dir: &std::path::Path, suffix: &str) -> usize {
        std::fs::read_dir(log_dir(dir))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(suffix)
            })
            .count()
    }

    /// Every group's offsets, by topic.
    type State = Vec<(String, Vec<(String, Vec<FetchedOffset>)>)>;

    fn state(c: &GroupCoordinator) -> State {
        c.states()
            .into_keys()
            .map(|g| {
                let offsets = c.fetch_all_offsets(&g);
                (g, offsets)
            })
            .collect()
    }

    #[tokio::test]
    async fn snapshots_bound_the_log_and_rebuild_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path(), 2_000);
        for i in 0..200 {
            commit(&c, &format!("g{}", i % 7), (i % 3) as i32, i).await;
        }
        assert!(c.snapshot_due(), "the small segments rolled");
        assert!(files(dir.path(), ".log") > 3);
        c.write_snapshot().unwrap();
        for i in 200..300 {
            commit(&c, &format!("g{}", i % 7), (i % 3) as i32, i).await;
        }
        c.write_snapshot().unwrap();
        let expected = state(&c);
        assert_eq!(files(dir.path(), ".coordinator-snapshot"), 2);
        let logs_before = files(dir.path(), ".log");
        // A third snapshot drops the oldest and the segments below the one kept before it.
        commit(&c, "g0", 0, 1_000).await;
        c.write_snapshot().unwrap();
        assert_eq!(files(dir.path(), ".coordinator-snapshot"), 2);
        assert!(
            files(dir.path(), ".log") < logs_before,
            "old segments deleted"
        );
        let expected_after = state(&c);
        assert_ne!(expected, expected_after);
        drop(c);
        let c = open(dir.path(), 2_000);
        assert_eq!(state(&c), expected_after);
    }

    #[tokio::test]
    async fn a_damaged_newest_snapshot_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path(), 2_000);
        for i in 0..100 {
            commit(&c, "g", (i % 4) as i32, i).await;
        }
        c.write_snapshot().unwrap();
        for i in 100..150 {
            commit(&c, "g", (i % 4) as i32, i).await;
        }
        c.write_snapshot().unwrap();
        commit(&c, "g", 0, 500).await;
        let expected = state(&c);
        drop(c);
        let mut snapshots: Vec<_> = std::fs::read_dir(log_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".coordinator-snapshot"))
            .collect();
        snapshots.sort();
        std::fs::write(snapshots.last().unwrap(), b"{not json").unwrap();
        let c = open(dir.path(), 2_000);
        assert_eq!(state(&c), expected);
    }

    #[tokio::test]
    async fn close_snapshots_so_the_next_start_replays_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path(), 1 << 20);
        commit(&c, "g", 0, 7).await;
        c.close().unwrap();
        assert_eq!(files(dir.path(), ".coordinator-snapshot"), 1);
        let c = open(dir.path(), 1 << 20);
        assert_eq!(c.fetch_all_offsets("g")[0].1[0].offset, 7);
    }
}
