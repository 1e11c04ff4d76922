//! Several log directories on the wire: DescribeLogDirs with every directory (partitions where
//! placement put them, the internal logs, a future replica, an unusable directory),
//! AlterReplicaLogDirs at every version with its error paths, moves verified byte for byte
//! before, after and across a restart, a restart over a leftover copy and a committed swap, the
//! start refusing a foreign `meta.properties` or a partition found twice, and a move killed
//! with SIGKILL at several moments with acks=all producers running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rivulet::handlers::context::{
    AclOperation, Authorizer, KafkaPrincipal, Resource, ResourceType,
};
use rivulet::server::ServerOptions;
use uuid::Uuid;

use crate::every_version::{create_topic, fetch, name, produce};
use crate::harness::{batch, Client, TestBroker};
use crate::idempotence::{free_port, Process};

const PRODUCE_V: i16 = 11;
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const KAFKA_STORAGE_ERROR: i16 = 56;
const LOG_DIR_NOT_FOUND: i16 = 57;

/// Extra log directories for a test broker (the harness's own directory goes unused).
struct Dirs {
    temps: Vec<tempfile::TempDir>,
}

impl Dirs {
    fn new(n: usize) -> Dirs {
        Dirs {
            temps: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
        }
    }

    fn path(&self, i: usize) -> PathBuf {
        self.temps[i].path().to_path_buf()
    }

    fn text(&self, i: usize) -> String {
        self.path(i).display().to_string()
    }

    fn setting(&self) -> String {
        (0..self.temps.len())
            .map(|i| self.text(i))
            .collect::<Vec<_>>()
            .join(",")
    }
}

async fn describe(
    c: &mut Client,
    version: i16,
    topics: Option<Vec<(&str, Vec<i32>)>>,
) -> DescribeLogDirsResponse {
    let req = DescribeLogDirsRequest::default().with_topics(topics.map(|ts| {
        ts.into_iter()
            .map(|(t, ps)| {
                DescribableLogDirTopic::default()
                    .with_topic(name(t))
                    .with_partitions(ps)
            })
            .collect()
    }));
    let ResponseKind::DescribeLogDirs(r) = c
        .request(
            ApiKey::DescribeLogDirs,
            version,
            RequestKind::DescribeLogDirs(req),
        )
        .await
    else {
        panic!("wrong kind")
    };
    r
}

/// (topic, partition, size, offset lag, future) of every log a directory answered.
fn logs(r: &DescribeLogDirsResponse, dir: &str) -> Vec<(String, i32, i64, i64, bool)> {
    let d = r
        .results
        .iter()
        .find(|d| d.log_dir.as_str() == dir)
        .unwrap_or_else(|| panic!("{dir} not answered: {r:?}"));
    assert_eq!(d.error_code, 0, "{dir}");
    d.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.partition_size,
                    p.offset_lag,
                    p.is_future_key,
                )
            })
        })
        .collect()
}

/// The partitions of `topic` a directory holds (current logs only).
fn held(r: &DescribeLogDirsResponse, dir: &str, topic: &str) -> Vec<i32> {
    logs(r, dir)
        .into_iter()
        .filter(|l| l.0 == topic && !l.4)
        .map(|l| l.1)
        .collect()
}

/// One directory of an AlterReplicaLogDirs request: its path and (topic, partitions) pairs.
type AlterDir<'a> = (&'a str, &'a [(&'a str, &'a [i32])]);

async fn alter(c: &mut Client, version: i16, dirs: &[AlterDir<'_>]) -> Vec<(String, i32, i16)> {
    let req = AlterReplicaLogDirsRequest::default().with_dirs(
        dirs.iter()
            .map(|(path, topics)| {
                AlterReplicaLogDir::default()
                    .with_path(StrBytes::from_string(path.to_string()))
                    .with_topics(
                        topics
                            .iter()
                            .map(|(t, ps)| {
                                AlterReplicaLogDirTopic::default()
                                    .with_name(name(t))
                                    .with_partitions(ps.to_vec())
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let ResponseKind::AlterReplicaLogDirs(r) = c
        .request(
            ApiKey::AlterReplicaLogDirs,
            version,
            RequestKind::AlterReplicaLogDirs(req),
        )
        .await
    else {
        panic!("wrong kind")
    };
    r.results
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_name.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

/// Every stored batch of a partition, fetched from offset 0 to the high watermark.
async fn fetch_all(c: &mut Client, topic: &str, id: Uuid, partition: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let p = fetch(c, 13, topic, id, partition, offset).await;
        assert_eq!(p.error_code, 0, "fetch at {offset}");
        let records = p.records.unwrap_or_default();
        if records.is_empty() {
            assert_eq!(offset, p.high_watermark, "read to the end");
            return out;
        }
        let headers = rivulet::log::validate_stored_batches(&records).unwrap();
        offset = headers[headers.len() - 1].last_offset() + 1;
        out.extend_from_slice(&records);
    }
}

/// Waits until `topic`-`partition` is held by the directory `dir` and no copy is under way.
async fn wait_moved(c: &mut Client, dir: &str, topic: &str, partition: i32) {
    for _ in 0..400 {
        let r = describe(c, 4, Some(vec![(topic, vec![partition])])).await;
        let anywhere_future = r
            .results
            .iter()
            .flat_map(|d| d.topics.iter())
            .flat_map(|t| t.partitions.iter())
            .any(|p| p.is_future_key);
        if held(&r, dir, topic).contains(&partition) && !anywhere_future {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{topic}-{partition} never reached {dir}");
}

async fn commit_offset(c: &mut Client, group: &str, topic: &str) {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let ResponseKind::OffsetCommit(r) = c
        .request(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(req))
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
}

fn values(n: usize, size: usize, ts: i64) -> Bytes {
    rivulet::test_support::payload_batch(n, &Bytes::from(vec![b'v'; size]), ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_answers_every_directory_with_its_partitions() {
    let dirs = Dirs::new(3);
    let setting = dirs.setting();
    let broker = TestBroker::start(&[("log.dirs", &setting)]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "spread", 5, &[]).await;
    for p in 0..5 {
        let (code, _) = produce(
            &mut c,
            PRODUCE_V,
            "spread",
            id,
            p,
            batch(p as usize + 1, Compression::None, 1_000),
            -1,
        )
        .await;
        assert_eq!(code, 0);
    }
    commit_offset(&mut c, "g", "spread").await;
    let group_partition = broker.broker().groups.partition_for("g");
    for v in 1..=4 {
        let r = describe(&mut c, v, None).await;
        assert_eq!(r.error_code, 0);
        let answered: Vec<&str> = r.results.iter().map(|d| d.log_dir.as_str()).collect();
        assert_eq!(
            answered,
            vec![dirs.text(0), dirs.text(1), dirs.text(2)],
            "v{v}: every directory, in order"
        );
        // Round-robin on a fresh broker: ties go to the earlier directory.
        assert_eq!(held(&r, &dirs.text(0), "spread"), vec![0, 3], "v{v}");
        assert_eq!(held(&r, &dirs.text(1), "spread"), vec![1, 4], "v{v}");
        assert_eq!(held(&r, &dirs.text(2), "spread"), vec![2], "v{v}");
        for d in 0..3 {
            for l in logs(&r, &dirs.text(d)) {
                assert!(l.2 > 0, "v{v}: {l:?} holds data");
                assert_eq!((l.3, l.4), (0, false), "v{v}: {l:?}");
            }
        }
        // The group log is listed in the metadata directory, as Kafka lists its internal logs.
        assert_eq!(
            held(&r, &dirs.text(0), "__consumer_offsets"),
            vec![group_partition]
        );
        if v >= 4 {
            for d in &r.results {
                assert!(d.total_bytes > 0 && d.usable_bytes > 0 && d.usable_bytes <= d.total_bytes);
            }
        }
    }
    // Only the partitions named, wherever they are.
    let r = describe(&mut c, 2, Some(vec![("spread", vec![1, 2, 9])])).await;
    assert!(logs(&r, &dirs.text(0)).is_empty());
    assert_eq!(held(&r, &dirs.text(1), "spread"), vec![1]);
    assert_eq!(held(&r, &dirs.text(2), "spread"), vec![2]);
    // A new partition goes to the directory with the fewest: the third (one partition).
    let created = {
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("spread"))
                .with_count(6)])
            .with_timeout_ms(5000);
        let ResponseKind::CreatePartitions(r) = c
            .request(
                ApiKey::CreatePartitions,
                3,
                RequestKind::CreatePartitions(req),
            )
            .await
        else {
            panic!()
        };
        r.results[0].error_code
    };
    assert_eq!(created, 0);
    let r = describe(&mut c, 4, Some(vec![("spread", vec![5])])).await;
    assert_eq!(held(&r, &dirs.text(2), "spread"), vec![5]);

    // A future replica under way shows in its target directory with its lag.
    let p0 = broker.broker().topics.partition("spread", 0).unwrap();
    let future = p0.start_future(&dirs.path(2)).unwrap();
    let r = describe(&mut c, 4, Some(vec![("spread", vec![0])])).await;
    let copy: Vec<_> = logs(&r, &dirs.text(2))
        .into_iter()
        .filter(|l| l.4)
        .collect();
    assert_eq!(
        copy,
        vec![("spread".to_string(), 0, 0, p0.log_end_offset(), true)]
    );
    assert_eq!(
        held(&r, &dirs.text(0), "spread"),
        vec![0],
        "the current log stays listed"
    );
    future.record_progress(1, 77);
    let r = describe(&mut c, 4, Some(vec![("spread", vec![0])])).await;
    let copy: Vec<_> = logs(&r, &dirs.text(2))
        .into_iter()
        .filter(|l| l.4)
        .collect();
    assert_eq!(copy[0].2, 77);
    assert_eq!(copy[0].3, p0.log_end_offset() - 1);
    p0.cancel_future();

    // A directory that went away answers KAFKA_STORAGE_ERROR alone; the others still answer.
    std::fs::remove_dir_all(dirs.path(2)).unwrap();
    let r = describe(&mut c, 4, None).await;
    let gone = r
        .results
        .iter()
        .find(|d| d.log_dir.as_str() == dirs.text(2))
        .unwrap();
    assert_eq!(gone.error_code, KAFKA_STORAGE_ERROR);
    assert!(gone.topics.is_empty());
    assert_eq!(held(&r, &dirs.text(1), "spread"), vec![1, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_replica_log_dirs_error_paths_at_every_version() {
    let dirs = Dirs::new(2);
    let setting = dirs.setting();
    let broker = TestBroker::start(&[("log.dirs", &setting)]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2, &[]).await; // t-0 in the first, t-1 in the second
    let (a, b) = (dirs.text(0), dirs.text(1));
    let long = "x".repeat(249);
    for v in 1..=2 {
        // The directory each is in already: nothing to do.
        let r = alter(&mut c, v, &[(&a, &[("t", &[0])]), (&b, &[("t", &[1])])]).await;
        assert_eq!(
            r,
            vec![("t".into(), 0, NONE), ("t".into(), 1, NONE)],
            "v{v}"
        );
        // Not a configured directory, by its exact absolute path.
        for path in ["/nowhere", &format!("{a}/"), &format!("{a}/."), "relative"] {
            let r = alter(&mut c, v, &[(path, &[("t", &[0])])]).await;
            assert_eq!(r, vec![("t".into(), 0, LOG_DIR_NOT_FOUND)], "v{v} {path}");
        }
        // Unknown topics and partitions.
        let r = alter(&mut c, v, &[(&b, &[("t", &[7]), ("nope", &[0])])]).await;
        assert_eq!(
            r,
            vec![
                ("t".into(), 7, UNKNOWN_TOPIC_OR_PARTITION),
                ("nope".into(), 0, UNKNOWN_TOPIC_OR_PARTITION)
            ],
            "v{v}"
        );
        // A name too long for the copy's directory, checked first (even before the path).
        let r = alter(&mut c, v, &[("/nowhere", &[(&long, &[0])])]).await;
        assert_eq!(r, vec![(long.clone(), 0, INVALID_TOPIC_EXCEPTION)], "v{v}");
        // The internal logs stay in the metadata directory.
        let r = alter(
            &mut c,
            v,
            &[
                (&a, &[("__consumer_offsets", &[0])]),
                (&b, &[("__transaction_state", &[1])]),
            ],
        )
        .await;
        assert_eq!(
            r,
            vec![
                ("__consumer_offsets".into(), 0, NONE),
                ("__transaction_state".into(), 1, INVALID_TOPIC_EXCEPTION)
            ],
            "v{v}"
        );
        let r = alter(&mut c, v, &[(&a, &[("__consumer_offsets", &[50])])]).await;
        assert_eq!(
            r,
            vec![("__consumer_offsets".into(), 50, UNKNOWN_TOPIC_OR_PARTITION)]
        );
        // A partition named under two directories goes to the last (here: where it is).
        let r = alter(&mut c, v, &[(&b, &[("t", &[0])]), (&a, &[("t", &[0])])]).await;
        assert_eq!(r, vec![("t".into(), 0, NONE)], "v{v}");
        let r = describe(&mut c, 4, None).await;
        assert_eq!(held(&r, &a, "t"), vec![0], "v{v}: nothing moved");
    }
    // A directory that cannot be read is KAFKA_STORAGE_ERROR.
    let third = Dirs::new(1);
    drop(broker);
    let setting = format!("{setting},{}", third.text(0));
    let broker = TestBroker::start(&[("log.dirs", &setting)]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "u", 1, &[]).await;
    std::fs::remove_dir_all(third.path(0)).unwrap();
    let r = alter(&mut c, 2, &[(&third.text(0), &[("u", &[0])])]).await;
    assert_eq!(r, vec![("u".into(), 0, KAFKA_STORAGE_ERROR)]);
}

/// Refuses ALTER on the cluster.
#[derive(Debug)]
struct NoClusterAlter;

impl Authorizer for NoClusterAlter {
    fn authorize(&self, _: &KafkaPrincipal, op: AclOperation, resource: Resource<'_>) -> bool {
        !matches!((op, resource), (AclOperation::Alter, Resource::Cluster))
    }

    fn authorize_any(&self, _: &KafkaPrincipal, _: AclOperation, _: ResourceType) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_replica_log_dirs_needs_alter_on_the_cluster() {
    let dirs = Dirs::new(2);
    let setting = dirs.setting();
    let broker = TestBroker::start_with(
        &[("log.dirs", &setting)],
        ServerOptions {
            authorizer: Arc::new(NoClusterAlter),
            ..ServerOptions::default()
        },
    )
    .await;
    broker
        .broker()
        .topics
        .create_topic("t", 1, 1, BTreeMap::new(), false)
        .unwrap();
    let mut c = broker.client().await;
    for v in 1..=2 {
        // Every entry as sent, unknown ones and duplicates included.
        let r = alter(
            &mut c,
            v,
            &[
                (&dirs.text(1), &[("t", &[0, 0]), ("nope", &[3])]),
                ("/nowhere", &[("t", &[0])]),
            ],
        )
        .await;
        assert_eq!(
            r,
            vec![
                ("t".into(), 0, CLUSTER_AUTHORIZATION_FAILED),
                ("t".into(), 0, CLUSTER_AUTHORIZATION_FAILED),
                ("nope".into(), 3, CLUSTER_AUTHORIZATION_FAILED),
                ("t".into(), 0, CLUSTER_AUTHORIZATION_FAILED),
            ],
            "v{v}"
        );
    }
    let r = describe(&mut c, 4, None).await;
    assert_eq!(held(&r, &dirs.text(0), "t"), vec![0], "nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_keeps_every_byte_before_after_and_across_a_restart() {
    let dirs = Dirs::new(2);
    let setting = dirs.setting();
    let mut broker =
        TestBroker::start(&[("log.dirs", &setting), ("log.segment.bytes", "4096")]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "m", 1, &[]).await;
    for i in 0..60 {
        let (code, _) = produce(&mut c, PRODUCE_V, "m", id, 0, values(3, 100, 1_000 + i), -1).await;
        assert_eq!(code, 0);
    }
    let before = fetch_all(&mut c, "m", id, 0).await;
    let (a, b) = (dirs.text(0), dirs.text(1));
    for (v, from, to) in [(1, &a, &b), (2, &b, &a)] {
        let r = alter(&mut c, v, &[(to, &[("m", &[0])])]).await;
        assert_eq!(r, vec![("m".into(), 0, NONE)], "v{v}");
        wait_moved(&mut c, to, "m", 0).await;
        let r = describe(&mut c, 4, None).await;
        assert!(held(&r, from, "m").is_empty(), "v{v}: left {from}");
        assert_eq!(
            fetch_all(&mut c, "m", id, 0).await,
            before,
            "v{v}: byte for byte"
        );
        let names: Vec<String> = std::fs::read_dir(from)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("m-"))
            .collect();
        assert!(names.is_empty(), "v{v}: {names:?} left in {from}");
    }
    // Back in the first directory; one more move, then appends go to the new place.
    assert_eq!(alter(&mut c, 2, &[(&b, &[("m", &[0])])]).await[0].2, NONE);
    wait_moved(&mut c, &b, "m", 0).await;
    let (code, offset) = produce(&mut c, PRODUCE_V, "m", id, 0, values(2, 10, 9_999), -1).await;
    assert_eq!((code, offset), (0, 180));
    let after = fetch_all(&mut c, "m", id, 0).await;
    assert!(after.starts_with(&before) && after.len() > before.len());
    assert!(dirs
        .path(1)
        .join("m-0")
        .join("00000000000000000000.log")
        .exists());
    broker
        .restart(&[("log.dirs", &setting), ("log.segment.bytes", "4096")])
        .await;
    let mut c = broker.client().await;
    assert_eq!(
        fetch_all(&mut c, "m", id, 0).await,
        after,
        "across a restart"
    );
    let r = describe(&mut c, 4, None).await;
    assert_eq!(held(&r, &b, "m"), vec![0]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_a_copy_finishes_a_committed_swap_and_clears_deleted_logs() {
    let dirs = Dirs::new(2);
    let setting = dirs.setting();
    let mut broker = TestBroker::start(&[("log.dirs", &setting)]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "r", 3, &[]).await; // r-0, r-2 in a; r-1 in b
    for p in 0..3 {
        for i in 0..5 {
            let (code, _) = produce(&mut c, PRODUCE_V, "r", id, p, values(2, 50, i), -1).await;
            assert_eq!(code, 0);
        }
    }
    let mut before = Vec::new();
    for p in 0..3 {
        before.push(fetch_all(&mut c, "r", id, p).await);
    }
    drop(c);
    broker.handle.take().unwrap().shutdown().await;
    let (a, b) = (dirs.path(0), dirs.path(1));
    // r-0: a copy under way into b (half of it: an empty directory will do), to be resumed.
    std::fs::create_dir(b.join(format!("r-0.{}-future", Uuid::new_v4().simple()))).unwrap();
    // r-2: committed (source renamed under the move's id), the copy not yet renamed.
    let id2 = Uuid::new_v4().simple().to_string();
    copy_dir(&a.join("r-2"), &b.join(format!("r-2.{id2}-future")));
    std::fs::rename(a.join("r-2"), a.join(format!("r-2.{id2}-delete"))).unwrap();
    // A log left for deletion.
    copy_dir(
        &b.join("r-1"),
        &b.join(format!("r-1.{}-delete", Uuid::new_v4().simple())),
    );

    broker.restart(&[("log.dirs", &setting)]).await;
    let mut c = broker.client().await;
    wait_moved(&mut c, &dirs.text(1), "r", 0).await;
    let r = describe(&mut c, 4, None).await;
    assert_eq!(held(&r, &dirs.text(1), "r"), vec![0, 1, 2]);
    assert!(held(&r, &dirs.text(0), "r").is_empty());
    for p in 0..3 {
        assert_eq!(
            fetch_all(&mut c, "r", id, p).await,
            before[p as usize],
            "r-{p}"
        );
    }
    for dir in [&a, &b] {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("r-"))
            .collect();
        assert!(names.iter().all(|n| !n.contains('.')), "{names:?}");
    }
}

/// Starts a broker on `log_dirs` and returns the startup error's text.
async fn start_error(log_dirs: &str) -> String {
    let mut s = BTreeMap::new();
    s.insert(
        "listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0".to_string(),
    );
    s.insert("log.dirs".to_string(), log_dirs.to_string());
    let config = rivulet::config::Config::from_settings(s).unwrap();
    match rivulet::server::start(config).await {
        Ok(h) => {
            h.shutdown().await;
            panic!("the broker started on {log_dirs}");
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_refuses_a_foreign_meta_properties_or_a_partition_found_twice() {
    let dirs = Dirs::new(2);
    let setting = dirs.setting();
    {
        let broker = TestBroker::start(&[("log.dirs", &setting)]).await;
        let mut c = broker.client().await;
        create_topic(&mut c, "d", 2, &[]).await;
        let mut b = broker;
        b.handle.take().unwrap().shutdown().await;
    }
    let meta = dirs.path(1).join("meta.properties");
    let original = std::fs::read_to_string(&meta).unwrap();
    for k in ["version=1", "cluster.id=", "node.id=1", "directory.id="] {
        assert!(original.contains(k), "{original}");
    }
    // Another cluster's directory.
    std::fs::write(&meta, original.replace("cluster.id=", "cluster.id=other")).unwrap();
    let err = start_error(&setting).await;
    assert!(
        err.contains("Invalid cluster.id") && err.contains(&dirs.text(1)),
        "{err}"
    );
    // Another node's.
    std::fs::write(&meta, original.replace("node.id=1", "node.id=7")).unwrap();
    let err = start_error(&setting).await;
    assert!(err.contains("node.id 7"), "{err}");
    // An unreadable one.
    std::fs::write(&meta, [0xff, 0xfe, 0xfd]).unwrap();
    let err = start_error(&setting).await;
    assert!(err.contains("meta.properties"), "{err}");
    // Restored, it starts; a partition found in both directories does not.
    std::fs::write(&meta, &original).unwrap();
    copy_dir(&dirs.path(0).join("d-0"), &dirs.path(1).join("d-0"));
    let err = start_error(&setting).await;
    assert!(
        err.contains("Duplicate log directories for d-0 are found in both"),
        "{err}"
    );
    std::fs::remove_dir_all(dirs.path(1).join("d-0")).unwrap();
    let broker = TestBroker::start(&[("log.dirs", &setting)]).await;
    assert_eq!(
        broker.broker().topics.get("d").unwrap().partition_count(),
        2
    );
}

/// A move with acks=all producers running, the broker killed with SIGKILL at several moments:
/// after each restart the partition is in exactly one directory with every acknowledged record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_at_any_moment_loses_no_acknowledged_record() {
    let dirs = Dirs::new(2);
    let setting = dirs.setting();
    let log_dirs = PathBuf::from(&setting);
    let port = free_port();
    let overrides = ["log.segment.bytes=1048576"];
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let mut id = Uuid::nil();
    for (round, delay_ms) in [0u64, 3, 10, 40, 300].into_iter().enumerate() {
        let proc = Process::start_with(&log_dirs, port, &overrides);
        let mut c = proc.client().await;
        if round == 0 {
            id = create_topic(&mut c, "k", 1, &[]).await;
            // Enough data (about 36 MB) that a copy takes a while; acks=1 is durable against
            // SIGKILL (the page cache outlives the process).
            for i in 0..800 {
                let v = format!("seed-{i}-").repeat(500);
                let batch =
                    rivulet::test_support::payload_batch(10, &Bytes::from(v.clone()), 1_000);
                let (code, _) = produce(&mut c, PRODUCE_V, "k", id, 0, batch, 1).await;
                assert_eq!(code, 0);
                acked.extend(std::iter::repeat_n(v.into_bytes(), 10));
            }
        }
        // Where the partition is now decides the target: the other directory.
        let r = describe(&mut c, 4, Some(vec![("k", vec![0])])).await;
        let target = if held(&r, &dirs.text(0), "k").contains(&0) {
            dirs.text(1)
        } else {
            dirs.text(0)
        };
        let producer = {
            let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            tokio::spawn(async move {
                let mut p = Client::connect(addr).await;
                let mut sent = Vec::new();
                for i in 0.. {
                    let v = format!("r{round}-{i}-").repeat(100);
                    match try_produce(&mut p, id, &v).await {
                        Some(0) => sent.push(v.into_bytes()),
                        Some(code) => panic!("round {round}: produce answered {code}"),
                        None => break,
                    }
                }
                sent
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            alter(&mut c, 2, &[(&target, &[("k", &[0])])]).await[0].2,
            NONE
        );
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let mut proc = proc;
        proc.child.kill().unwrap();
        proc.child.wait().unwrap();
        // Whatever the producer saw acknowledged before the kill.
        acked.extend(producer.await.unwrap());
        drop(proc);

        let proc = Process::start_with(&log_dirs, port, &overrides);
        let mut c = proc.client().await;
        let r = describe(&mut c, 4, Some(vec![("k", vec![0])])).await;
        let homes = held(&r, &dirs.text(0), "k").len() + held(&r, &dirs.text(1), "k").len();
        assert_eq!(homes, 1, "round {round}: one copy in use: {r:?}");
        let stored = fetch_all(&mut c, "k", id, 0).await;
        let values = record_values(&stored);
        assert!(
            values.len() >= acked.len(),
            "round {round}: {} stored, {} acknowledged",
            values.len(),
            acked.len()
        );
        assert_eq!(
            &values[..acked.len()],
            &acked[..],
            "round {round}: every acknowledged record, in order"
        );
        // Records stored but not acknowledged (in flight at the kill) count from now on.
        acked = values;
        // Let a resumed move finish before the next round picks its target.
        for _ in 0..400 {
            let r = describe(&mut c, 4, Some(vec![("k", vec![0])])).await;
            if !r
                .results
                .iter()
                .flat_map(|d| d.topics.iter())
                .flat_map(|t| t.partitions.iter())
                .any(|p| p.is_future_key)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        drop(c);
        drop(proc);
    }
}

fn payload(v: &str) -> Bytes {
    rivulet::test_support::payload_batch(1, &Bytes::from(v.to_string()), 1_000)
}

/// The values of every record of `stored` batches, in offset order.
fn record_values(stored: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = Bytes::copy_from_slice(stored);
    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| r.value.map(|v| v.to_vec()).unwrap_or_default())
        .collect()
}

/// An acks=all produce of one record that tolerates the broker dying: None once the
/// connection is gone, else the error code.
async fn try_produce(c: &mut Client, id: Uuid, value: &str) -> Option<i16> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use tokio::io::AsyncWriteExt;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("k"))
            .with_topic_id(id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(payload(value)))])]);
    let (correlation_id, frame) = c.frame(ApiKey::Produce, PRODUCE_V, &RequestKind::Produce(req));
    c.stream.write_all(&frame).await.ok()?;
    let mut resp = c.read_frame().await?;
    let ResponseKind::Produce(r) =
        crate::harness::decode_response(ApiKey::Produce, PRODUCE_V, correlation_id, &mut resp)
    else {
        return None;
    };
    Some(r.responses[0].partition_responses[0].error_code)
}
