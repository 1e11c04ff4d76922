//! Idempotent producers on the wire: InitProducerId at every version, duplicates answered with
//! the original offsets and not stored twice, sequence and epoch errors, DescribeProducers, and
//! a duplicate sent after the broker process was killed with SIGKILL and restarted.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use crate::every_version::{create_topic, fetch, name, produce};
use crate::harness::{Client, TestBroker};

const PRODUCE_V: i16 = 11;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An idempotent batch of `count` records starting at sequence `first_seq`.
pub fn idempotent_batch(pid: i64, epoch: i16, first_seq: i32, count: i32) -> Bytes {
    rivulet::test_support::idempotent_batch(
        pid,
        epoch,
        first_seq,
        count,
        now_ms(),
        Compression::Lz4,
    )
}

async fn init_producer_id(
    c: &mut Client,
    version: i16,
    transactional_id: Option<&str>,
) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string()))),
        )
        .with_transaction_timeout_ms(60_000);
    let req = if version >= 3 {
        req.with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
    } else {
        req
    };
    let ResponseKind::InitProducerId(r) = c
        .request(
            ApiKey::InitProducerId,
            version,
            RequestKind::InitProducerId(req),
        )
        .await
    else {
        panic!("wrong kind")
    };
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_at_every_version_gives_fresh_ids() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let mut ids = Vec::new();
    for v in 0..=5 {
        let (err, pid, epoch) = init_producer_id(&mut c, v, None).await;
        assert_eq!((err, epoch), (0, 0), "v{v}");
        ids.push(pid);
    }
    // KIP-360: a producer asking for a bump with its current id and epoch gets a new id (Kafka
    // 4 answers every non-transactional InitProducerId with a fresh id).
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(ids[0]))
        .with_producer_epoch(0);
    let ResponseKind::InitProducerId(r) = c
        .request(ApiKey::InitProducerId, 5, RequestKind::InitProducerId(req))
        .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    ids.push(r.producer_id.0);
    // A transactional id gets its own producer id from the transaction coordinator.
    let (err, tx_pid, tx_epoch) = init_producer_id(&mut c, 4, Some("tx")).await;
    assert_eq!((err, tx_epoch), (0, 0));
    ids.push(tx_pid);
    // An empty transactional id is not "no transactional id": INVALID_REQUEST, as in Kafka.
    assert_eq!(init_producer_id(&mut c, 4, Some("")).await.0, 42);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    ids.push(init_producer_id(&mut c, 4, None).await.1);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "ids never handed out twice: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_sequences_and_epochs() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "idem", 1, &[]).await;
    let (_, pid, epoch) = init_producer_id(&mut c, 4, None).await;
    let send = |first: i32, count: i32, e: i16| idempotent_batch(pid, e, first, count);
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(0, 3, epoch), -1).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(3, 2, epoch), -1).await,
        (0, 3)
    );
    // The retry of the first batch gets its original offset and is not stored again.
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(0, 3, epoch), -1).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(3, 2, epoch), 1).await,
        (0, 3)
    );
    assert_eq!(fetch(&mut c, 12, "idem", id, 0, 0).await.high_watermark, 5);
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(9, 1, epoch), -1)
            .await
            .0,
        45
    );
    // A new epoch must start at 0; then the old epoch is fenced (INVALID_PRODUCER_EPOCH).
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(5, 1, epoch + 1), -1)
            .await
            .0,
        45
    );
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(0, 1, epoch + 1), -1).await,
        (0, 5)
    );
    assert_eq!(
        produce(&mut c, PRODUCE_V, "idem", id, 0, send(5, 1, epoch), -1)
            .await
            .0,
        47
    );
    // A producer the partition has never seen may start at any sequence (Kafka 4).
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "idem",
            id,
            0,
            idempotent_batch(pid + 1000, 0, 17, 1),
            -1
        )
        .await,
        (0, 6)
    );
    assert_eq!(fetch(&mut c, 12, "idem", id, 0, 0).await.high_watermark, 7);

    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(name("idem"))
        .with_partition_indexes(vec![0, 9])]);
    let ResponseKind::DescribeProducers(r) = c
        .request(
            ApiKey::DescribeProducers,
            0,
            RequestKind::DescribeProducers(req),
        )
        .await
    else {
        panic!()
    };
    let parts = &r.topics[0].partitions;
    assert_eq!(parts[1].error_code, 3, "unknown partition");
    let active: Vec<(i64, i32, i32)> = parts[0]
        .active_producers
        .iter()
        .map(|p| (p.producer_id.0, p.producer_epoch, p.last_sequence))
        .collect();
    assert_eq!(
        active,
        vec![(pid, (epoch + 1) as i32, 0), (pid + 1000, 0, 17)]
    );
    let now = now_ms();
    assert!(parts[0]
        .active_producers
        .iter()
        .all(|p| p.last_timestamp > now - 60_000 && p.last_timestamp <= now));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_state_survives_a_clean_restart_and_segment_rolls() {
    let mut broker = TestBroker::start(&[("log.segment.bytes", "1024")]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "roll", 1, &[]).await;
    let (_, pid, _) = init_producer_id(&mut c, 4, None).await;
    for i in 0..40 {
        assert_eq!(
            produce(
                &mut c,
                PRODUCE_V,
                "roll",
                id,
                0,
                idempotent_batch(pid, 0, i * 2, 2),
                -1
            )
            .await,
            (0, i as i64 * 2)
        );
    }
    let dir = broker.dir.path().join("roll-0");
    let snapshots = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".snapshot")
        })
        .count();
    assert!(snapshots >= 1, "a snapshot is taken when the log rolls");
    broker.restart(&[("log.segment.bytes", "1024")]).await;
    let mut c = broker.client().await;
    // Retries of the last batches are still recognised after the restart.
    for i in 36..40 {
        assert_eq!(
            produce(
                &mut c,
                PRODUCE_V,
                "roll",
                id,
                0,
                idempotent_batch(pid, 0, i * 2, 2),
                -1
            )
            .await,
            (0, i as i64 * 2)
        );
    }
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "roll",
            id,
            0,
            idempotent_batch(pid, 0, 81, 1),
            -1
        )
        .await
        .0,
        45
    );
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "roll",
            id,
            0,
            idempotent_batch(pid, 0, 80, 1),
            -1
        )
        .await,
        (0, 80)
    );
}

/// The real broker binary, so it can be killed with SIGKILL.
pub struct Process {
    pub child: Child,
    pub port: u16,
}

impl Process {
    pub fn start(dir: &std::path::Path, port: u16) -> Process {
        Process::start_with(dir, port, &[])
    }

    /// Starts the binary with extra `--override key=value` settings.
    pub fn start_with(dir: &std::path::Path, port: u16, overrides: &[&str]) -> Process {
        let listener = format!("PLAINTEXT://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_rivulet"))
            .args([
                "--listeners",
                &listener,
                "--advertised-listeners",
                &listener,
                "--log-dirs",
            ])
            .arg(dir)
            .args(overrides.iter().flat_map(|o| ["--override", o]))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rivulet");
        Process { child, port }
    }

    pub async fn client(&self) -> Client {
        for _ in 0..100 {
            if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                drop(stream);
                return Client::connect(format!("127.0.0.1:{}", self.port).parse().unwrap()).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("broker did not listen on {}", self.port);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_after_kill_9_is_still_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "crash", 1, &[]).await;
    let (_, pid, epoch) = init_producer_id(&mut c, 4, None).await;
    for i in 0..5 {
        assert_eq!(
            produce(
                &mut c,
                PRODUCE_V,
                "crash",
                id,
                0,
                idempotent_batch(pid, epoch, i * 3, 3),
                1
            )
            .await,
            (0, i as i64 * 3)
        );
    }
    // SIGKILL: no snapshot, no clean close; the producer state must come back from the log.
    broker.child.kill().expect("kill -9");
    broker.child.wait().expect("reaped");
    drop(broker);
    let broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "crash",
            id,
            0,
            idempotent_batch(pid, epoch, 12, 3),
            -1
        )
        .await,
        (0, 12)
    );
    assert_eq!(
        produce(
            &mut c,
            PRODUCE_V,
            "crash",
            id,
            0,
            idempotent_batch(pid, epoch, 15, 1),
            -1
        )
        .await,
        (0, 15)
    );
    assert_eq!(
        fetch(&mut c, 12, "crash", id, 0, 0).await.high_watermark,
        16
    );
    // Producer ids keep growing after the crash.
    let (_, next, _) = init_producer_id(&mut c, 4, None).await;
    assert!(next > pid);
}
