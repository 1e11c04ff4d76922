//! Committed offsets and group administration on the wire: OffsetCommit, OffsetFetch and
//! OffsetDelete at every version with their error paths, ListGroups, DescribeGroups and
//! DeleteGroups at every version, and committed offsets surviving a clean restart and a
//! SIGKILL of the broker process.

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;

use crate::every_version::{create_topic, name};
use crate::groups::{code, gid, s, served, stable_member, subscription, FAST};
use crate::harness::{Client, TestBroker};
use crate::idempotence::{free_port, Process};

/// One partition to commit: (topic, partition, offset, leader epoch, metadata).
type Commit<'a> = (&'a str, i32, i64, i32, Option<&'a str>);

/// An OffsetCommit at `version`, with the fields that version has.
fn commit_request(
    version: i16,
    group: &str,
    member_id: &str,
    generation: i32,
    commits: &[Commit],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for &(topic, partition, offset, epoch, metadata) in commits {
        let mut p = OffsetCommitRequestPartition::default()
            .with_partition_index(partition)
            .with_committed_offset(offset)
            .with_committed_metadata(metadata.map(s));
        if version >= 6 {
            p.committed_leader_epoch = epoch;
        }
        match topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(topics)
}

/// Commits and returns every partition's error code, in request order.
async fn commit(c: &mut Client, version: i16, req: OffsetCommitRequest) -> Vec<i16> {
    let ResponseKind::OffsetCommit(r) = c
        .request(
            ApiKey::OffsetCommit,
            version,
            RequestKind::OffsetCommit(req),
        )
        .await
    else {
        panic!("wrong kind")
    };
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// What OffsetFetch returned for one partition.
#[derive(Debug, PartialEq, Eq)]
struct Fetched {
    topic: String,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
    error: i16,
}

/// OffsetFetch of one group at `version`; `topics` None asks for everything (v2+).
async fn fetch(
    c: &mut Client,
    version: i16,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> (i16, Vec<Fetched>) {
    let req = if version >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(gid(group))
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopics::default()
                            .with_name(name(t))
                            .with_partition_indexes(ps.to_vec())
                    })
                    .collect()
            }))])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(gid(group))
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(name(t))
                            .with_partition_indexes(ps.to_vec())
                    })
                    .collect()
            }))
    };
    let ResponseKind::OffsetFetch(r) = c
        .request(ApiKey::OffsetFetch, version, RequestKind::OffsetFetch(req))
        .await
    else {
        panic!("wrong kind")
    };
    if version >= 8 {
        assert_eq!(r.groups.len(), 1);
        let g = &r.groups[0];
        assert_eq!(g.group_id.as_str(), group);
        let out = g
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| Fetched {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.metadata.as_ref().map(|m| m.to_string()),
                    error: p.error_code,
                })
            })
            .collect();
        (g.error_code, out)
    } else {
        let out = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| Fetched {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.metadata.as_ref().map(|m| m.to_string()),
                    error: p.error_code,
                })
            })
            .collect();
        (r.error_code, out)
    }
}

fn fetched(topic: &str, partition: i32, offset: i64, epoch: i32, metadata: &str) -> Fetched {
    Fetched {
        topic: topic.to_string(),
        partition,
        offset,
        leader_epoch: epoch,
        metadata: Some(metadata.to_string()),
        error: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_and_fetch_at_every_version() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "offsets", 4, &[]).await;
    // Every OffsetCommit version commits to its own group, outside group management
    // (generation -1), with a distinct offset, leader epoch and metadata.
    for v in served(ApiKey::OffsetCommit) {
        let group = format!("commit-{v}");
        let req = commit_request(
            v,
            &group,
            "",
            -1,
            &[
                ("offsets", 0, 100 + v as i64, 10 + v as i32, Some("meta")),
                ("offsets", 1, 200, 7, None),
                ("offsets", 9, 1, -1, None),
                ("missing", 0, 1, -1, None),
            ],
        );
        assert_eq!(
            commit(&mut c, v, req).await,
            vec![
                0,
                0,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::UNKNOWN_TOPIC_OR_PARTITION
            ],
            "OffsetCommit v{v}"
        );
        // Every OffsetFetch version reads it back exactly.
        for fv in served(ApiKey::OffsetFetch) {
            let epoch = |e: i32| if v >= 6 && fv >= 5 { e } else { -1 };
            let (err, got) = fetch(&mut c, fv, &group, Some(&[("offsets", &[0, 1, 2])])).await;
            assert_eq!(err, 0);
            assert_eq!(
                got,
                vec![
                    fetched("offsets", 0, 100 + v as i64, epoch(10 + v as i32), "meta"),
                    fetched("offsets", 1, 200, epoch(7), ""),
                    fetched("offsets", 2, -1, -1, ""),
                ],
                "OffsetCommit v{v}, OffsetFetch v{fv}"
            );
            if fv >= 2 {
                let (_, all) = fetch(&mut c, fv, &group, None).await;
                assert_eq!(all.len(), 2, "all offsets, OffsetFetch v{fv}");
            }
        }
    }
    // An unknown group has no offsets, and no error.
    for fv in served(ApiKey::OffsetFetch) {
        let (err, got) = fetch(&mut c, fv, "nobody", Some(&[("offsets", &[0])])).await;
        assert_eq!((err, got[0].offset, got[0].error), (0, -1, 0), "v{fv}");
        if fv >= 2 {
            assert!(fetch(&mut c, fv, "nobody", None).await.1.is_empty());
        }
    }
    // v8+: many groups in one request.
    let req = OffsetFetchRequest::default().with_groups(
        ["commit-8", "commit-9", "nobody"]
            .iter()
            .map(|g| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid(g))
                    .with_topics(None)
            })
            .collect(),
    );
    let ResponseKind::OffsetFetch(r) = c
        .request(ApiKey::OffsetFetch, 9, RequestKind::OffsetFetch(req))
        .await
    else {
        panic!()
    };
    let offsets: Vec<(String, usize)> = r
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.topics.iter().map(|t| t.partitions.len()).sum(),
            )
        })
        .collect();
    assert_eq!(
        offsets,
        vec![
            ("commit-8".into(), 2),
            ("commit-9".into(), 2),
            ("nobody".into(), 0)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_errors_at_every_version() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2, &[]).await;
    let (member, generation) = stable_member(&mut c, 9, "members", &["t"]).await;
    let big = "x".repeat(4097);
    for v in served(ApiKey::OffsetCommit) {
        let one = |group: &str, member: &str, generation: i32| {
            commit_request(v, group, member, generation, &[("t", 0, 1, -1, None)])
        };
        // A member of the current generation commits.
        assert_eq!(
            commit(&mut c, v, one("members", &member, generation)).await,
            vec![0]
        );
        // Outside the generation: refused while the group has members.
        assert_eq!(
            commit(&mut c, v, one("members", "", -1)).await,
            vec![code::UNKNOWN_MEMBER_ID],
            "v{v}"
        );
        assert_eq!(
            commit(&mut c, v, one("members", &member, generation + 1)).await,
            vec![code::ILLEGAL_GENERATION],
            "v{v}"
        );
        assert_eq!(
            commit(&mut c, v, one("members", "stranger", generation)).await,
            vec![code::UNKNOWN_MEMBER_ID],
            "v{v}"
        );
        // A generation for a group that does not exist: GROUP_ID_NOT_FOUND from v9.
        let expected = if v >= 9 {
            code::GROUP_ID_NOT_FOUND
        } else {
            code::ILLEGAL_GENERATION
        };
        assert_eq!(
            commit(&mut c, v, one("ghost", "m", 3)).await,
            vec![expected],
            "v{v}"
        );
        // Metadata over offset.metadata.max.bytes fails that partition only.
        let req = commit_request(
            v,
            "manual",
            "",
            -1,
            &[("t", 0, 5, -1, Some(&big)), ("t", 1, 6, -1, Some("ok"))],
        );
        assert_eq!(
            commit(&mut c, v, req).await,
            vec![code::OFFSET_METADATA_TOO_LARGE, 0],
            "v{v}"
        );
        // A group-level error covers every partition, unknown topics included.
        let req = commit_request(
            v,
            "members",
            "",
            -1,
            &[("t", 0, 1, -1, None), ("missing", 0, 1, -1, None)],
        );
        assert_eq!(
            commit(&mut c, v, req).await,
            vec![code::UNKNOWN_MEMBER_ID, code::UNKNOWN_MEMBER_ID],
            "v{v}"
        );
    }
    let (_, got) = fetch(&mut c, 9, "manual", Some(&[("t", &[0, 1])])).await;
    assert_eq!((got[0].offset, got[1].offset), (-1, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_delete() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2, &[]).await;
    create_topic(&mut c, "u", 1, &[]).await;
    let delete = |group: &str, topics: &[(&str, &[i32])]| {
        OffsetDeleteRequest::default()
            .with_group_id(gid(group))
            .with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(name(t))
                            .with_partitions(
                                ps.iter()
                                    .map(|&p| {
                                        OffsetDeleteRequestPartition::default()
                                            .with_partition_index(p)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    };
    async fn run(c: &mut Client, req: OffsetDeleteRequest) -> (i16, Vec<i16>) {
        let ResponseKind::OffsetDelete(r) = c
            .request(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(req))
            .await
        else {
            panic!()
        };
        let codes = r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect();
        (r.error_code, codes)
    }
    assert_eq!(
        run(&mut c, delete("", &[("t", &[0])])).await.0,
        code::INVALID_GROUP_ID
    );
    assert_eq!(
        run(&mut c, delete("ghost", &[("t", &[0])])).await.0,
        code::GROUP_ID_NOT_FOUND
    );
    // An empty group: deleted, unknown partitions reported as such.
    let req = commit_request(
        9,
        "manual",
        "",
        -1,
        &[("t", 0, 1, -1, None), ("t", 1, 2, -1, None)],
    );
    assert_eq!(commit(&mut c, 9, req).await, vec![0, 0]);
    assert_eq!(
        run(&mut c, delete("manual", &[("t", &[0, 5]), ("nope", &[0])])).await,
        (
            0,
            vec![
                0,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::UNKNOWN_TOPIC_OR_PARTITION
            ]
        )
    );
    let (_, got) = fetch(&mut c, 9, "manual", Some(&[("t", &[0, 1])])).await;
    assert_eq!((got[0].offset, got[1].offset), (-1, 2));
    // A consumer group may not delete offsets of a topic it subscribes to.
    let (member, generation) = stable_member(&mut c, 9, "consumers", &["t"]).await;
    let req = commit_request(
        9,
        "consumers",
        &member,
        generation,
        &[("t", 0, 1, -1, None), ("u", 0, 1, -1, None)],
    );
    assert_eq!(commit(&mut c, 9, req).await, vec![0, 0]);
    assert_eq!(
        run(&mut c, delete("consumers", &[("t", &[0]), ("u", &[0])])).await,
        (0, vec![code::GROUP_SUBSCRIBED_TO_TOPIC, 0])
    );
    let (_, got) = fetch(&mut c, 9, "consumers", Some(&[("t", &[0]), ("u", &[0])])).await;
    assert_eq!((got[0].offset, got[1].offset), (1, -1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_describe_and_delete_groups_at_every_version() {
    let broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1, &[]).await;
    let (member, generation) = stable_member(&mut c, 9, "active", &["t"]).await;
    let req = commit_request(9, "manual", "", -1, &[("t", 0, 1, -1, None)]);
    assert_eq!(commit(&mut c, 9, req).await, vec![0]);

    for v in served(ApiKey::ListGroups) {
        let mut req = ListGroupsRequest::default();
        let ResponseKind::ListGroups(r) = c
            .request(ApiKey::ListGroups, v, RequestKind::ListGroups(req.clone()))
            .await
        else {
            panic!()
        };
        let mut listed: Vec<(String, String, String, String)> = r
            .groups
            .iter()
            .map(|g| {
                (
                    g.group_id.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                    g.group_type.to_string(),
                )
            })
            .collect();
        listed.sort();
        let state = |st: &str| {
            if v >= 4 {
                st.to_string()
            } else {
                String::new()
            }
        };
        let kind = if v >= 5 { "classic" } else { "" };
        assert_eq!(
            listed,
            vec![
                (
                    "active".into(),
                    "consumer".into(),
                    state("Stable"),
                    kind.into()
                ),
                ("manual".into(), "".into(), state("Empty"), kind.into()),
            ],
            "ListGroups v{v}"
        );
        if v >= 4 {
            req.states_filter = vec![s("stable")];
            let ResponseKind::ListGroups(r) = c
                .request(ApiKey::ListGroups, v, RequestKind::ListGroups(req.clone()))
                .await
            else {
                panic!()
            };
            assert_eq!(r.groups.len(), 1, "state filter v{v}");
            assert_eq!(r.groups[0].group_id.as_str(), "active");
        }
        if v >= 5 {
            req.states_filter = vec![];
            req.types_filter = vec![s("consumer")];
            let ResponseKind::ListGroups(r) = c
                .request(ApiKey::ListGroups, v, RequestKind::ListGroups(req.clone()))
                .await
            else {
                panic!()
            };
            assert!(r.groups.is_empty(), "no KIP-848 consumer groups here");
            req.types_filter = vec![s("classic")];
            let ResponseKind::ListGroups(r) = c
                .request(ApiKey::ListGroups, v, RequestKind::ListGroups(req))
                .await
            else {
                panic!()
            };
            assert_eq!(r.groups.len(), 2);
        }
    }

    for v in served(ApiKey::DescribeGroups) {
        let mut req = DescribeGroupsRequest::default().with_groups(vec![
            gid("active"),
            gid("manual"),
            gid("unknown"),
        ]);
        if v >= 3 {
            req.include_authorized_operations = true;
        }
        let ResponseKind::DescribeGroups(r) = c
            .request(ApiKey::DescribeGroups, v, RequestKind::DescribeGroups(req))
            .await
        else {
            panic!()
        };
        let active = &r.groups[0];
        assert_eq!(active.error_code, 0);
        assert_eq!(active.group_state.as_str(), "Stable", "v{v}");
        assert_eq!(active.protocol_type.as_str(), "consumer");
        assert_eq!(active.protocol_data.as_str(), "range");
        assert_eq!(active.members.len(), 1);
        let m = &active.members[0];
        assert_eq!(m.member_id.as_str(), member);
        assert_eq!(m.client_id.as_str(), "protocol-tests");
        assert_eq!(m.client_host.as_str(), "/127.0.0.1");
        assert_eq!(m.member_metadata, subscription(&["t"]));
        assert_eq!(m.member_assignment.as_ref(), b"assigned");
        assert_eq!(m.group_instance_id, None);
        if v >= 3 {
            // READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS without an authorizer.
            assert_eq!(active.authorized_operations, 3400, "v{v}");
        }
        let manual = &r.groups[1];
        assert_eq!(
            (manual.group_state.as_str(), manual.protocol_type.as_str()),
            ("Empty", "")
        );
        let unknown = &r.groups[2];
        assert_eq!(
            (unknown.error_code, unknown.group_state.as_str()),
            (0, "Dead")
        );
        assert!(unknown.members.is_empty());
    }

    for v in served(ApiKey::DeleteGroups) {
        let group = format!("deletable-{v}");
        let req = commit_request(9, &group, "", -1, &[("t", 0, 1, -1, None)]);
        assert_eq!(commit(&mut c, 9, req).await, vec![0]);
        let req = DeleteGroupsRequest::default().with_groups_names(vec![
            gid(&group),
            gid("active"),
            gid("never-existed"),
        ]);
        let ResponseKind::DeleteGroups(r) = c
            .request(ApiKey::DeleteGroups, v, RequestKind::DeleteGroups(req))
            .await
        else {
            panic!()
        };
        let results: Vec<(String, i16)> = r
            .results
            .iter()
            .map(|g| (g.group_id.to_string(), g.error_code))
            .collect();
        assert_eq!(
            results,
            vec![
                (group.clone(), 0),
                ("active".into(), code::NON_EMPTY_GROUP),
                ("never-existed".into(), code::GROUP_ID_NOT_FOUND),
            ],
            "DeleteGroups v{v}"
        );
        let (_, got) = fetch(&mut c, 9, &group, Some(&[("t", &[0])])).await;
        assert_eq!(got[0].offset, -1, "offsets deleted with the group");
    }
    // The active group is untouched.
    assert_eq!(
        crate::groups::heartbeat(&mut c, 4, "active", &member, generation, None).await,
        0
    );
}

/// Offsets, and a Stable group, come back after a clean restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart() {
    let mut broker = TestBroker::start(FAST).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 3, &[]).await;
    let (member, generation) = stable_member(&mut c, 9, "g", &["t"]).await;
    let req = commit_request(
        9,
        "g",
        &member,
        generation,
        &[("t", 0, 10, 3, Some("zero")), ("t", 2, 30, 4, Some("two"))],
    );
    assert_eq!(commit(&mut c, 9, req).await, vec![0, 0]);
    broker.restart(FAST).await;
    let mut c = broker.client().await;
    let (_, got) = fetch(&mut c, 9, "g", None).await;
    assert_eq!(
        got,
        vec![
            fetched("t", 0, 10, 3, "zero"),
            fetched("t", 2, 30, 4, "two")
        ]
    );
    // The member is still in its generation (it must heartbeat within its session).
    assert_eq!(
        crate::groups::heartbeat(&mut c, 4, "g", &member, generation, None).await,
        0
    );
}

/// Every acknowledged commit survives SIGKILL of the broker process: commits are fsynced
/// before they are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2, &[]).await;
    // Many small commits, the last one answered just before the kill.
    for i in 0..50i64 {
        let req = commit_request(
            9,
            "crash",
            "",
            -1,
            &[("t", (i % 2) as i32, i, 1, Some(&format!("commit-{i}")))],
        );
        assert_eq!(commit(&mut c, 9, req).await, vec![0]);
    }
    broker.child.kill().expect("kill -9");
    broker.child.wait().expect("reaped");
    drop(broker);
    let broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    let (_, got) = fetch(&mut c, 9, "crash", Some(&[("t", &[0, 1])])).await;
    assert_eq!(
        got,
        vec![
            fetched("t", 0, 48, 1, "commit-48"),
            fetched("t", 1, 49, 1, "commit-49")
        ]
    );
    // The group log keeps working after recovery.
    let req = commit_request(9, "crash", "", -1, &[("t", 0, 50, 1, None)]);
    assert_eq!(commit(&mut c, 9, req).await, vec![0]);
}
