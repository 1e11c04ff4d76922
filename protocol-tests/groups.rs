//! Consumer groups on the wire: FindCoordinator, JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup at every advertised version with their error paths, a two-member rebalance over
//! separate connections that completes as soon as every member rejoined, the initial
//! rebalance delay, and static membership.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rivulet::clock::{Clock, ManualClock};
use rivulet::handlers::registry::range_of as supported;
use rivulet::server::ServerOptions;

use crate::every_version::create_topic;
use crate::harness::{decode_response, Client, TestBroker};

/// Codes as Kafka numbers them.
pub mod code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const INVALID_REQUEST: i16 = 42;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
}

/// Settings for fast tests: no initial rebalance delay.
pub const FAST: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0")];

pub fn served(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = supported(key).expect("supported");
    r.served_min..=r.max
}

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// A consumer-protocol subscription (v0 layout) to `topics`.
pub fn subscription(topics: &[&str]) -> Bytes {
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

/// A JoinGroup for `version` with only the fields that version has.
pub fn join_request(
    version: i16,
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    topics: &[&str],
) -> JoinGroupRequest {
    let mut r = JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(topics))]);
    if version >= 1 {
        r.rebalance_timeout_ms = 20_000;
    }
    if version >= 5 {
        r.group_instance_id = instance.map(s);
    }
    if version >= 8 {
        r.reason = Some(s("protocol test"));
    }
    r
}

/// Sends a request without waiting for its answer; returns the correlation id.
pub async fn send(c: &mut Client, key: ApiKey, version: i16, body: RequestKind) -> i32 {
    let (correlation_id, frame) = c.frame(key, version, &body);
    c.send_raw(&frame).await;
    correlation_id
}

/// Reads the answer to a request sent with [`send`].
pub async fn recv(c: &mut Client, key: ApiKey, version: i16, correlation_id: i32) -> ResponseKind {
    let mut frame = c.read_frame().await.expect("answered, not closed");
    decode_response(key, version, correlation_id, &mut frame)
}

pub async fn join(c: &mut Client, version: i16, req: JoinGroupRequest) -> JoinGroupResponse {
    let ResponseKind::JoinGroup(r) = c
        .request(ApiKey::JoinGroup, version, RequestKind::JoinGroup(req))
        .await
    else {
        panic!("wrong kind")
    };
    r
}

/// A new dynamic member: MEMBER_ID_REQUIRED first from v4, then the JoinGroup is sent (and
/// may park); returns the member id and the correlation id of the parked JoinGroup.
pub async fn start_join(
    c: &mut Client,
    version: i16,
    group: &str,
    topics: &[&str],
) -> (String, i32) {
    let mut member_id = String::new();
    if version >= 4 {
        let r = join(c, version, join_request(version, group, "", None, topics)).await;
        assert_eq!(
            r.error_code,
            code::MEMBER_ID_REQUIRED,
            "JoinGroup v{version}"
        );
        assert!(!r.member_id.is_empty());
        member_id = r.member_id.to_string();
    }
    let corr = send(
        c,
        ApiKey::JoinGroup,
        version,
        RequestKind::JoinGroup(join_request(version, group, &member_id, None, topics)),
    )
    .await;
    (member_id, corr)
}

pub async fn finish_join(c: &mut Client, version: i16, corr: i32) -> JoinGroupResponse {
    let ResponseKind::JoinGroup(r) = recv(c, ApiKey::JoinGroup, version, corr).await else {
        panic!("wrong kind")
    };
    r
}

pub fn sync_request(
    version: i16,
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        );
    if version >= 5 {
        r.protocol_type = Some(s("consumer"));
        r.protocol_name = Some(s("range"));
    }
    r
}

pub async fn sync(c: &mut Client, version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    let ResponseKind::SyncGroup(r) = c
        .request(ApiKey::SyncGroup, version, RequestKind::SyncGroup(req))
        .await
    else {
        panic!("wrong kind")
    };
    r
}

pub async fn heartbeat(
    c: &mut Client,
    version: i16,
    group: &str,
    member_id: &str,
    generation: i32,
    instance: Option<&str>,
) -> i16 {
    let mut req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_generation_id(generation);
    if version >= 3 {
        req.group_instance_id = instance.map(s);
    }
    let ResponseKind::Heartbeat(r) = c
        .request(ApiKey::Heartbeat, version, RequestKind::Heartbeat(req))
        .await
    else {
        panic!("wrong kind")
    };
    r.error_code
}

pub async fn leave(
    c: &mut Client,
    version: i16,
    group: &str,
    member_id: &str,
) -> LeaveGroupResponse {
    let mut req = LeaveGroupRequest::default().with_group_id(gid(group));
    if version >= 3 {
        let mut m = MemberIdentity::default().with_member_id(s(member_id));
        if version >= 5 {
            m.reason = Some(s("done"));
        }
        req.members = vec![m];
    } else {
        req.member_id = s(member_id);
    }
    let ResponseKind::LeaveGroup(r) = c
        .request(ApiKey::LeaveGroup, version, RequestKind::LeaveGroup(req))
        .await
    else {
        panic!("wrong kind")
    };
    r
}

/// One member through join and sync at the given versions; returns (member id, generation).
pub async fn stable_member(
    c: &mut Client,
    version: i16,
    group: &str,
    topics: &[&str],
) -> (String, i32) {
    let (member_id, corr) = start_join(c, version, group, topics).await;
    let r = finish_join(c, version, corr).await;
    assert_eq!(r.error_code, 0);
    let member_id = if member_id.is_empty() {
        r.member_id.to_string()
    } else {
        member_id
    };
    let sv = version.min(5);
    let sr = sync(
        c,
        sv,
        sync_request(
            sv,
            group,
            &member_id,
            r.generation_id,
            &[(&member_id, b"assigned")],
        ),
    )
    .await;
    assert_eq!(sr.error_code, 0);
    (member_id, r.generation_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_coordinator_at_every_version() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let port = broker.addr.port() as i32;
    for v in served(ApiKey::FindCoordinator) {
        let ask = |key_type: i8| {
            let mut r = FindCoordinatorRequest::default();
            if v >= 1 {
                r.key_type = key_type;
            }
            if v >= 4 {
                r.coordinator_keys = vec![s("g1"), s("g2")];
            } else {
                r.key = s("g1");
            }
            RequestKind::FindCoordinator(r)
        };
        let key_types: &[i8] = if v >= 1 { &[0, 1] } else { &[0] };
        for &key_type in key_types {
            let ResponseKind::FindCoordinator(r) =
                c.request(ApiKey::FindCoordinator, v, ask(key_type)).await
            else {
                panic!()
            };
            if v >= 4 {
                assert_eq!(r.coordinators.len(), 2, "v{v}");
                for (co, key) in r.coordinators.iter().zip(["g1", "g2"]) {
                    assert_eq!(co.key.as_str(), key);
                    assert_eq!((co.error_code, co.node_id.0, co.port), (0, 1, port), "v{v}");
                    assert_eq!(co.host.as_str(), "127.0.0.1");
                }
            } else {
                assert_eq!((r.error_code, r.node_id.0, r.port), (0, 1, port), "v{v}");
                assert_eq!(r.host.as_str(), "127.0.0.1");
                if v >= 1 {
                    assert_eq!(r.error_message.as_deref(), Some("NONE"), "v{v}");
                }
            }
        }
        if v >= 1 {
            // Share coordinators (key type 2) do not exist here.
            let ResponseKind::FindCoordinator(r) =
                c.request(ApiKey::FindCoordinator, v, ask(2)).await
            else {
                panic!()
            };
            if v >= 4 {
                assert!(r
                    .coordinators
                    .iter()
                    .all(|co| co.error_code == code::INVALID_REQUEST && co.node_id.0 == -1));
            } else {
                assert_eq!(
                    (r.error_code, r.node_id.0),
                    (code::INVALID_REQUEST, -1),
                    "v{v}"
                );
            }
        }
    }
}

/// JoinGroup v0-v9, each with SyncGroup, Heartbeat and LeaveGroup at the matching version
/// (capped at theirs), so every version of every membership API runs a full cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_cycle_at_every_version() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    for v in served(ApiKey::JoinGroup) {
        let group = format!("cycle-{v}");
        let (member_id, corr) = start_join(&mut c, v, &group, &["t"]).await;
        let r = finish_join(&mut c, v, corr).await;
        assert_eq!(r.error_code, 0, "JoinGroup v{v}");
        let member_id = if v >= 4 {
            assert_eq!(r.member_id.as_str(), member_id);
            member_id
        } else {
            assert!(
                r.member_id.starts_with("protocol-tests-"),
                "{:?}",
                r.member_id
            );
            r.member_id.to_string()
        };
        assert_eq!(r.generation_id, 1, "v{v}");
        assert_eq!(r.leader.as_str(), member_id, "v{v}");
        assert_eq!(r.protocol_name.as_deref(), Some("range"), "v{v}");
        if v >= 7 {
            assert_eq!(r.protocol_type.as_deref(), Some("consumer"), "v{v}");
        }
        assert_eq!(r.members.len(), 1, "v{v}");
        assert_eq!(r.members[0].metadata, subscription(&["t"]));
        assert!(!r.skip_assignment);

        let sv = v.min(*served(ApiKey::SyncGroup).end());
        let sr = sync(
            &mut c,
            sv,
            sync_request(sv, &group, &member_id, 1, &[(&member_id, b"A")]),
        )
        .await;
        assert_eq!(sr.error_code, 0, "SyncGroup v{sv}");
        assert_eq!(sr.assignment, Bytes::from_static(b"A"), "SyncGroup v{sv}");
        if sv >= 5 {
            assert_eq!(sr.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(sr.protocol_name.as_deref(), Some("range"));
        }

        let hv = v.min(*served(ApiKey::Heartbeat).end());
        assert_eq!(
            heartbeat(&mut c, hv, &group, &member_id, 1, None).await,
            0,
            "Heartbeat v{hv}"
        );

        let lv = v.min(*served(ApiKey::LeaveGroup).end());
        let lr = leave(&mut c, lv, &group, &member_id).await;
        assert_eq!(lr.error_code, 0, "LeaveGroup v{lv}");
        if lv >= 3 {
            assert_eq!(lr.members.len(), 1);
            assert_eq!(lr.members[0].member_id.as_str(), member_id);
            assert_eq!(lr.members[0].error_code, 0);
        }
        // The group is empty now: the member is unknown.
        assert_eq!(
            heartbeat(&mut c, hv, &group, &member_id, 1, None).await,
            code::UNKNOWN_MEMBER_ID,
            "Heartbeat v{hv} after leaving"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_errors_at_every_version() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    let (member, generation) = stable_member(&mut c, 9, "errors", &["t"]).await;
    for v in served(ApiKey::JoinGroup) {
        let req = join_request(v, "", "", None, &["t"]);
        assert_eq!(
            join(&mut c, v, req).await.error_code,
            code::INVALID_GROUP_ID,
            "v{v}"
        );
        let mut req = join_request(v, "errors", "", None, &["t"]);
        req.session_timeout_ms = 1_000;
        let r = join(&mut c, v, req).await;
        assert_eq!(r.error_code, code::INVALID_SESSION_TIMEOUT, "v{v}");
        assert_eq!(r.generation_id, -1);
        // Protocol name is "" before v7 and null from v7 on an error.
        assert_eq!(
            r.protocol_name.as_deref(),
            if v < 7 { Some("") } else { None }
        );
        let req = join_request(v, "no-such-group", "someone", None, &["t"]);
        let r = join(&mut c, v, req).await;
        assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        assert_eq!(r.member_id.as_str(), "someone");
        let mut req = join_request(v, "errors", "", None, &["t"]);
        req.protocol_type = s("connect");
        assert_eq!(
            join(&mut c, v, req).await.error_code,
            code::INCONSISTENT_GROUP_PROTOCOL,
            "v{v}"
        );
    }
    for v in served(ApiKey::SyncGroup) {
        let r = sync(&mut c, v, sync_request(v, "no-such-group", "m", 1, &[])).await;
        assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        let r = sync(&mut c, v, sync_request(v, "", "m", 1, &[])).await;
        assert_eq!(r.error_code, code::INVALID_GROUP_ID, "v{v}");
        let r = sync(
            &mut c,
            v,
            sync_request(v, "errors", &member, generation + 1, &[]),
        )
        .await;
        assert_eq!(r.error_code, code::ILLEGAL_GENERATION, "v{v}");
        let r = sync(
            &mut c,
            v,
            sync_request(v, "errors", "stranger", generation, &[]),
        )
        .await;
        assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        if v >= 5 {
            let mut req = sync_request(v, "errors", &member, generation, &[]);
            req.protocol_type = None;
            assert_eq!(
                sync(&mut c, v, req).await.error_code,
                code::INCONSISTENT_GROUP_PROTOCOL
            );
            let mut req = sync_request(v, "errors", &member, generation, &[]);
            req.protocol_name = Some(s("roundrobin"));
            assert_eq!(
                sync(&mut c, v, req).await.error_code,
                code::INCONSISTENT_GROUP_PROTOCOL
            );
        }
    }
    for v in served(ApiKey::Heartbeat) {
        assert_eq!(
            heartbeat(&mut c, v, "", &member, 1, None).await,
            code::INVALID_GROUP_ID
        );
        assert_eq!(
            heartbeat(&mut c, v, "no-such-group", &member, 1, None).await,
            code::UNKNOWN_MEMBER_ID
        );
        assert_eq!(
            heartbeat(&mut c, v, "errors", &member, generation + 1, None).await,
            code::ILLEGAL_GENERATION
        );
        assert_eq!(
            heartbeat(&mut c, v, "errors", "stranger", generation, None).await,
            code::UNKNOWN_MEMBER_ID
        );
        if v >= 3 {
            // A dynamic member named with an instance id nobody holds.
            assert_eq!(
                heartbeat(&mut c, v, "errors", &member, generation, Some("ghost")).await,
                code::UNKNOWN_MEMBER_ID
            );
        }
    }
    for v in served(ApiKey::LeaveGroup) {
        let r = leave(&mut c, v, "", &member).await;
        assert_eq!(r.error_code, code::INVALID_GROUP_ID, "v{v}");
        let r = leave(&mut c, v, "errors", "stranger").await;
        if v >= 3 {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.members[0].error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        } else {
            assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        }
        let r = leave(&mut c, v, "no-such-group", "stranger").await;
        if v >= 3 {
            assert_eq!(r.members[0].error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        } else {
            assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID, "v{v}");
        }
    }
    // The member survived all of that.
    assert_eq!(
        heartbeat(&mut c, 4, "errors", &member, generation, None).await,
        0
    );
}

/// Two members on separate connections: the first is Stable alone; the second joins, the
/// first learns of the rebalance from its heartbeat and rejoins, and both JoinGroups are
/// answered at once (no timer: the round completes when every member has rejoined). Then
/// SyncGroup hands the leader's assignment to the waiting follower, and a LeaveGroup
/// rebalances the group back to one member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_rebalance_over_real_connections() {
    let broker = TestBroker::start(FAST).await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    let (a_id, generation) = stable_member(&mut a, 9, "pair", &["t"]).await;
    assert_eq!(generation, 1);

    let (b_id, b_corr) = start_join(&mut b, 9, "pair", &["t"]).await;
    // A gets REBALANCE_IN_PROGRESS from a heartbeat once B's JoinGroup is in (it travels on
    // another connection, so poll)...
    let mut answer = 0;
    for _ in 0..50 {
        answer = heartbeat(&mut a, 4, "pair", &a_id, 1, None).await;
        if answer != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, code::REBALANCE_IN_PROGRESS);
    // ...and rejoins; the moment it does, both parked JoinGroups complete.
    let a_corr = send(
        &mut a,
        ApiKey::JoinGroup,
        9,
        RequestKind::JoinGroup(join_request(9, "pair", &a_id, None, &["t"])),
    )
    .await;
    let started = Instant::now();
    let (ra, rb) = tokio::join!(
        finish_join(&mut a, 9, a_corr),
        finish_join(&mut b, 9, b_corr)
    );
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(500),
        "join round took {waited:?}"
    );
    assert_eq!((ra.error_code, rb.error_code), (0, 0));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader.as_str(), a_id, "the leader stays the leader");
    assert_eq!(rb.leader.as_str(), a_id);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty());

    // The follower's SyncGroup waits for the leader's.
    let b_sync = send(
        &mut b,
        ApiKey::SyncGroup,
        5,
        RequestKind::SyncGroup(sync_request(5, "pair", &b_id, 2, &[])),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // In CompletingRebalance a heartbeat is answered normally.
    assert_eq!(heartbeat(&mut a, 4, "pair", &a_id, 2, None).await, 0);
    let sa = sync(
        &mut a,
        5,
        sync_request(5, "pair", &a_id, 2, &[(&a_id, b"for-a"), (&b_id, b"for-b")]),
    )
    .await;
    assert_eq!(sa.assignment, Bytes::from_static(b"for-a"));
    let ResponseKind::SyncGroup(sb) = recv(&mut b, ApiKey::SyncGroup, 5, b_sync).await else {
        panic!()
    };
    assert_eq!(
        (sb.error_code, sb.assignment),
        (0, Bytes::from_static(b"for-b"))
    );
    assert_eq!(heartbeat(&mut a, 4, "pair", &a_id, 2, None).await, 0);
    assert_eq!(heartbeat(&mut b, 4, "pair", &b_id, 2, None).await, 0);

    // B leaves: A must rejoin, alone, and the round completes at once.
    assert_eq!(
        leave(&mut b, 5, "pair", &b_id).await.members[0].error_code,
        0
    );
    assert_eq!(
        heartbeat(&mut a, 4, "pair", &a_id, 2, None).await,
        code::REBALANCE_IN_PROGRESS
    );
    let r = join(&mut a, 9, join_request(9, "pair", &a_id, None, &["t"])).await;
    assert_eq!((r.error_code, r.generation_id, r.members.len()), (0, 3, 1));
}

/// While a JoinGroup is parked, other connections are served at once, and a request
/// pipelined behind it on the same connection is answered after it, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_join_holds_up_nothing_else() {
    // The default initial delay (3 s) holds the first JoinGroup.
    let broker = TestBroker::start(&[]).await;
    let mut a = broker.client().await;
    let mut other = broker.client().await;
    create_topic(&mut other, "busy-t", 1, &[]).await;
    let started = Instant::now();
    let (_id, join_corr) = start_join(&mut a, 9, "slow", &["t"]).await;
    let find = RequestKind::FindCoordinator(
        FindCoordinatorRequest::default().with_coordinator_keys(vec![s("slow")]),
    );
    let pipelined = send(&mut a, ApiKey::FindCoordinator, 4, find.clone()).await;
    // Another connection, and another group, are served meanwhile.
    let ResponseKind::FindCoordinator(r) = other.request(ApiKey::FindCoordinator, 4, find).await
    else {
        panic!()
    };
    assert_eq!(r.coordinators[0].error_code, 0);
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid("busy"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(crate::every_version::name("busy-t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(5)])]);
    let ResponseKind::OffsetCommit(r) = other
        .request(ApiKey::OffsetCommit, 9, RequestKind::OffsetCommit(commit))
        .await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "served while the other JoinGroup waited: {:?}",
        started.elapsed()
    );
    // The parked JoinGroup is answered first, after the initial delay; then the pipelined one.
    let r = finish_join(&mut a, 9, join_corr).await;
    assert_eq!(r.error_code, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );
    let ResponseKind::FindCoordinator(r) =
        recv(&mut a, ApiKey::FindCoordinator, 4, pipelined).await
    else {
        panic!()
    };
    assert_eq!(r.coordinators[0].key.as_str(), "slow");
}

/// `group.initial.rebalance.delay.ms` (3 s by default) holds an empty group's first join phase,
/// so consumers starting together land in one generation. Driven by the broker's injected
/// clock: time moves only when the test says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_rebalance_delay_gathers_members_into_one_generation() {
    let clock = ManualClock::new(1_700_000_000_000);
    let broker = TestBroker::start_with(&[], options_with(&clock)).await;
    let groups = &broker.broker().groups;
    let tick = |ms: i64| {
        clock.advance(ms);
        groups.tick(clock.now_ms());
    };
    // A parked JoinGroup has no answer to wait for: wait until the group has the member.
    let joined = |n: usize| async move {
        for _ in 0..500 {
            if groups.describe_group("delayed").members.len() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the JoinGroup never arrived");
    };
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    let (_a_id, a_corr) = start_join(&mut a, 9, "delayed", &["t"]).await;
    joined(1).await;
    tick(300);
    let (_b_id, b_corr) = start_join(&mut b, 9, "delayed", &["t"]).await;
    joined(2).await;
    // The second arrival extends the delay once: still joining at 3 s...
    tick(2_699);
    assert_eq!(
        groups.describe_group("delayed").state.name(),
        "PreparingRebalance"
    );
    tick(1);
    assert_eq!(
        groups.describe_group("delayed").state.name(),
        "PreparingRebalance",
        "extended at 3 s"
    );
    // ... and done 3 s later.
    tick(2_999);
    assert_eq!(
        groups.describe_group("delayed").state.name(),
        "PreparingRebalance"
    );
    tick(1);
    let (ra, rb) = tokio::join!(
        finish_join(&mut a, 9, a_corr),
        finish_join(&mut b, 9, b_corr)
    );
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.members.len(), 2, "both in the first generation");
}

/// A ServerOptions whose clock is `clock`.
fn options_with(clock: &std::sync::Arc<ManualClock>) -> ServerOptions {
    ServerOptions {
        clock: clock.clone(),
        ..ServerOptions::default()
    }
}

/// KIP-345: a static member that restarts (new JoinGroup without member id) gets its
/// assignment back in the same generation; the old member id is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_without_rebalance() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    for v in 5..=*served(ApiKey::JoinGroup).end() {
        let group = format!("static-{v}");
        let r = join(
            &mut c,
            v,
            join_request(v, &group, "", Some("instance-1"), &["t"]),
        )
        .await;
        assert_eq!(
            r.error_code, 0,
            "a static member needs no MEMBER_ID_REQUIRED (v{v})"
        );
        let first = r.member_id.to_string();
        assert!(first.starts_with("instance-1-"), "{first}");
        let sv = v.min(5);
        let mut req = sync_request(sv, &group, &first, 1, &[(&first, b"mine")]);
        req.group_instance_id = Some(s("instance-1"));
        assert_eq!(sync(&mut c, sv, req).await.error_code, 0);

        // The member restarts.
        let r = join(
            &mut c,
            v,
            join_request(v, &group, "", Some("instance-1"), &["t"]),
        )
        .await;
        assert_eq!(r.error_code, 0);
        let second = r.member_id.to_string();
        assert_ne!(second, first);
        assert_eq!(r.generation_id, 1, "no rebalance (v{v})");
        if v >= 9 {
            assert!(r.skip_assignment, "the static leader must not reassign");
            assert_eq!(r.leader.as_str(), second);
        } else {
            assert_eq!(r.leader.as_str(), first, "pre-v9: the old leader id");
        }
        let mut req = sync_request(sv, &group, &second, 1, &[]);
        req.group_instance_id = Some(s("instance-1"));
        let sr = sync(&mut c, sv, req).await;
        assert_eq!(
            (sr.error_code, sr.assignment),
            (0, Bytes::from_static(b"mine"))
        );
        let hv = v.min(4);
        assert_eq!(
            heartbeat(&mut c, hv, &group, &first, 1, Some("instance-1")).await,
            code::FENCED_INSTANCE_ID
        );
        assert_eq!(
            heartbeat(&mut c, hv, &group, &second, 1, Some("instance-1")).await,
            0
        );
        // LeaveGroup by instance id alone (v3+ admin removal).
        let req = LeaveGroupRequest::default()
            .with_group_id(gid(&group))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("instance-1")))]);
        let ResponseKind::LeaveGroup(lr) = c
            .request(ApiKey::LeaveGroup, 4, RequestKind::LeaveGroup(req))
            .await
        else {
            panic!()
        };
        assert_eq!(lr.members[0].error_code, 0);
        assert_eq!(
            heartbeat(&mut c, hv, &group, &second, 1, Some("instance-1")).await,
            code::UNKNOWN_MEMBER_ID
        );
    }
}

/// A session that is not kept alive by heartbeats expires and the group moves on without
/// the member. Driven by the broker's injected clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeout_expires_a_silent_member() {
    let clock = ManualClock::new(1_700_000_000_000);
    let broker = TestBroker::start_with(
        &[
            ("group.initial.rebalance.delay.ms", "0"),
            ("group.min.session.timeout.ms", "500"),
        ],
        options_with(&clock),
    )
    .await;
    let groups = &broker.broker().groups;
    let mut c = broker.client().await;
    let mut req = join_request(9, "silent", "", None, &["t"]);
    req.session_timeout_ms = 600;
    let id = join(&mut c, 9, req.clone()).await.member_id;
    req.member_id = id.clone();
    let corr = send(&mut c, ApiKey::JoinGroup, 9, RequestKind::JoinGroup(req)).await;
    // The initial delay is 0: the next tick of the (injected) clock completes the join.
    clock.advance(1);
    groups.tick(clock.now_ms());
    let r = finish_join(&mut c, 9, corr).await;
    assert_eq!(r.error_code, 0);
    let sr = sync(&mut c, 5, sync_request(5, "silent", &id, 1, &[(&id, b"x")])).await;
    assert_eq!(sr.error_code, 0);
    clock.advance(599);
    groups.tick(clock.now_ms());
    assert_eq!(heartbeat(&mut c, 4, "silent", &id, 1, None).await, 0);
    // A heartbeat restarted the session; 600 ms of silence end it.
    clock.advance(600);
    groups.tick(clock.now_ms());
    assert_eq!(
        heartbeat(&mut c, 4, "silent", &id, 1, None).await,
        code::UNKNOWN_MEMBER_ID
    );
}
