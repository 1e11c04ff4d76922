//! Transactions on the wire: every transactional API at every version, fencing by version,
//! an InitProducerId that aborts an open transaction, read_committed Fetch and ListOffsets,
//! KIP-890 verification (TV1) and implicit adds (TV2), require_stable, timeouts, id expiry,
//! and restarts and SIGKILLs in each phase of a transaction.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rivulet::clock::ManualClock;
use rivulet::server::ServerOptions;
use rivulet::txn::markers::{Marker, MarkerError, MarkerWriter, MarkersDurable};
use rivulet::txn::TxnState;

use crate::every_version::{create_topic, name, produce, produce_as};
use crate::harness::{Client, TestBroker};
use crate::idempotence::{free_port, Process};

const PRODUCE_V: i16 = 11;
const NOT_IN_TXN: i16 = 48; // INVALID_TXN_STATE

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn txn_id(s: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(s.to_string()))
}

/// Produces a transactional batch with the request's transactional id; (error, base offset).
#[allow(clippy::too_many_arguments)]
async fn tx_produce(
    c: &mut Client,
    version: i16,
    topic: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    id: &str,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    produce_as(
        c,
        version,
        (topic, topic_id, partition),
        Some(id),
        records,
        acks,
    )
    .await
}

/// Produces a transactional batch at Produce v11 with acks=all; (error, base offset).
async fn send(
    c: &mut Client,
    topic: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    id: &str,
    records: Bytes,
) -> (i16, i64) {
    tx_produce(c, PRODUCE_V, topic, topic_id, partition, id, records, -1).await
}

/// A transactional batch of `count` records from sequence `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Bytes {
    rivulet::test_support::transactional_batch(pid, epoch, seq, count, now_ms(), Compression::None)
}

async fn init(
    c: &mut Client,
    version: i16,
    id: &str,
    expected: Option<(i64, i16)>,
) -> (i16, i64, i16) {
    let mut req = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id(id)))
        .with_transaction_timeout_ms(60_000);
    if version >= 3 {
        let (p, e) = expected.unwrap_or((-1, -1));
        req = req.with_producer_id(ProducerId(p)).with_producer_epoch(e);
    }
    let ResponseKind::InitProducerId(r) = c
        .request(
            ApiKey::InitProducerId,
            version,
            RequestKind::InitProducerId(req),
        )
        .await
    else {
        panic!()
    };
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// InitProducerId, retried while the coordinator aborts an open transaction.
async fn init_ok(c: &mut Client, id: &str) -> (i64, i16) {
    for _ in 0..100 {
        let (err, pid, epoch) = init(c, 5, id, None).await;
        match err {
            0 => return (pid, epoch),
            51 => tokio::time::sleep(Duration::from_millis(20)).await, // CONCURRENT_TRANSACTIONS
            e => panic!("InitProducerId: error {e}"),
        }
    }
    panic!("InitProducerId kept answering CONCURRENT_TRANSACTIONS")
}

/// AddPartitionsToTxn (v0-3 shape): the error of each partition.
async fn add_partitions(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(name(topic))
            .with_partitions(partitions.to_vec())]);
    let ResponseKind::AddPartitionsToTxn(r) = c
        .request(
            ApiKey::AddPartitionsToTxn,
            version,
            RequestKind::AddPartitionsToTxn(req),
        )
        .await
    else {
        panic!()
    };
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

async fn end_txn(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
) -> EndTxnResponse {
    let req = EndTxnRequest::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let ResponseKind::EndTxn(r) = c
        .request(ApiKey::EndTxn, version, RequestKind::EndTxn(req))
        .await
    else {
        panic!()
    };
    r
}

async fn add_offsets(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    group: &str,
) -> i16 {
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())));
    let ResponseKind::AddOffsetsToTxn(r) = c
        .request(
            ApiKey::AddOffsetsToTxn,
            version,
            RequestKind::AddOffsetsToTxn(req),
        )
        .await
    else {
        panic!()
    };
    r.error_code
}

#[allow(clippy::too_many_arguments)]
async fn txn_offset_commit(
    c: &mut Client,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    group: &str,
    topic: &str,
    offset: i64,
) -> i16 {
    let mut req = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(id))
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)])]);
    if version >= 3 {
        req = req.with_generation_id(-1);
    }
    let ResponseKind::TxnOffsetCommit(r) = c
        .request(
            ApiKey::TxnOffsetCommit,
            version,
            RequestKind::TxnOffsetCommit(req),
        )
        .await
    else {
        panic!()
    };
    r.topics[0].partitions[0].error_code
}

/// OffsetFetch v7 of partition 0: (error, offset).
async fn offset_fetch(
    c: &mut Client,
    group: &str,
    topic: &str,
    require_stable: bool,
) -> (i16, i64) {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![0])]))
        .with_require_stable(require_stable);
    let ResponseKind::OffsetFetch(r) = c
        .request(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req))
        .await
    else {
        panic!()
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

/// Fetch v12 of partition 0 at `isolation`.
async fn fetch_at(
    c: &mut Client,
    topic: &str,
    offset: i64,
    isolation: i8,
) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let ResponseKind::Fetch(r) = c.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)).await else {
        panic!()
    };
    r.responses[0].partitions[0].clone()
}

/// ListOffsets v7 latest of partition 0 at `isolation`.
async fn latest(c: &mut Client, topic: &str, isolation: i8) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let ResponseKind::ListOffsets(r) = c
        .request(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
        .await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    r.topics[0].partitions[0].offset
}

/// What a read_committed Kafka consumer returns from a fetch: (offset, value) of every data
/// record, aborted transactions and control batches dropped as the client drops them.
fn committed_view(pd: &fetch_response::PartitionData) -> Vec<(i64, String)> {
    let mut bytes = pd.records.clone().unwrap_or_default();
    let aborted: Vec<(i64, i64)> = pd
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    let mut open_aborts: BTreeSet<i64> = BTreeSet::new();
    let mut out = Vec::new();
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
    for r in sets.into_iter().flat_map(|set| set.records) {
        for (pid, first) in &aborted {
            if *pid == r.producer_id && *first <= r.offset {
                open_aborts.insert(*pid);
            }
        }
        if r.control {
            // An ABORT marker ends the producer's aborted transaction.
            open_aborts.remove(&r.producer_id);
            continue;
        }
        if r.transactional && open_aborts.contains(&r.producer_id) {
            continue;
        }
        let v = r
            .value
            .map(|v| String::from_utf8_lossy(&v).to_string())
            .unwrap_or_default();
        out.push((r.offset, v));
    }
    out
}

fn values(view: &[(i64, String)]) -> Vec<i64> {
    view.iter().map(|(o, _)| *o).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transactional_api_at_every_version() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "txv", 1, &[]).await;
    let mut end = 0i64;
    // One transaction per version of each API (the versions cycle together).
    for v in 0..=5i16 {
        let id = format!("tx-v{v}");
        let (err, pid, epoch) = init(&mut c, v.min(5), &id, None).await;
        assert_eq!((err, epoch), (0, 0), "InitProducerId v{v}");
        let add_v = v.min(3);
        assert_eq!(
            add_partitions(&mut c, add_v, &id, pid, epoch, "txv", &[0]).await,
            vec![0]
        );
        assert_eq!(
            send(&mut c, "txv", tid, 0, &id, txn_batch(pid, epoch, 0, 2)).await,
            (0, end)
        );
        assert_eq!(
            add_offsets(&mut c, v.min(4), &id, pid, epoch, "g-txv").await,
            0,
            "AddOffsetsToTxn v{v}"
        );
        assert_eq!(
            txn_offset_commit(&mut c, v, &id, pid, epoch, "g-txv", "txv", end + 2).await,
            0,
            "TxnOffsetCommit v{v}"
        );
        // TV1 EndTxn below v5; v5 bumps the epoch (TV2 is finalized by default).
        let r = end_txn(&mut c, v, &id, pid, epoch, true).await;
        assert_eq!(r.error_code, 0, "EndTxn v{v}");
        if v >= 5 {
            assert_eq!((r.producer_id.0, r.producer_epoch), (pid, epoch + 1));
        }
        end += 3; // two records and the marker
        assert_eq!(
            offset_fetch(&mut c, "g-txv", "txv", true).await,
            (0, end - 1)
        );
    }
    let view = committed_view(&fetch_at(&mut c, "txv", 0, 1).await);
    assert_eq!(view.len(), 12, "every committed record visible");
    // DescribeTransactions v0 and ListTransactions v0-2.
    let ResponseKind::DescribeTransactions(d) = c
        .request(
            ApiKey::DescribeTransactions,
            0,
            RequestKind::DescribeTransactions(
                DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![txn_id("tx-v1"), txn_id("nope")]),
            ),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(d.transaction_states[0].error_code, 0);
    assert_eq!(
        d.transaction_states[0].transaction_state.as_str(),
        "CompleteCommit"
    );
    assert_eq!(d.transaction_states[0].transaction_timeout_ms, 60_000);
    assert_eq!(
        d.transaction_states[1].error_code, 105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );
    for v in 0..=2 {
        let mut req = ListTransactionsRequest::default().with_state_filters(vec![
            StrBytes::from_static_str("CompleteCommit"),
            StrBytes::from_static_str("Bogus"),
        ]);
        if v >= 1 {
            req = req.with_duration_filter(-1);
        }
        if v >= 2 {
            req = req.with_transactional_id_pattern(Some(StrBytes::from_static_str("^tx-v[0-2]$")));
        }
        let ResponseKind::ListTransactions(l) = c
            .request(
                ApiKey::ListTransactions,
                v,
                RequestKind::ListTransactions(req),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(l.error_code, 0);
        assert_eq!(
            l.unknown_state_filters,
            vec![StrBytes::from_static_str("Bogus")]
        );
        let ids: Vec<&str> = l
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.as_str())
            .collect();
        if v >= 2 {
            assert_eq!(ids, ["tx-v0", "tx-v1", "tx-v2"]);
        } else {
            assert_eq!(ids.len(), 6, "v{v}: {ids:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_answers_by_version() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "fence", 1, &[]).await;
    let (pid, e0) = init_ok(&mut c, "zombie").await;
    let (pid2, e1) = init_ok(&mut c, "zombie").await;
    assert_eq!((pid2, e1), (pid, e0 + 1), "same producer id, bumped epoch");
    for v in 0..=3 {
        let want = if v >= 2 { 90 } else { 47 }; // PRODUCER_FENCED / INVALID_PRODUCER_EPOCH
        assert_eq!(
            add_partitions(&mut c, v, "zombie", pid, e0, "fence", &[0]).await,
            vec![want],
            "AddPartitionsToTxn v{v}"
        );
    }
    for v in 0..=5 {
        let want = if v >= 2 { 90 } else { 47 };
        assert_eq!(
            end_txn(&mut c, v, "zombie", pid, e0, true).await.error_code,
            want,
            "EndTxn v{v}"
        );
    }
    for v in 0..=4 {
        let want = if v >= 2 { 90 } else { 47 };
        assert_eq!(
            add_offsets(&mut c, v, "zombie", pid, e0, "g").await,
            want,
            "AddOffsetsToTxn v{v}"
        );
    }
    // KIP-360: a zombie naming an old epoch is fenced, by version.
    assert_eq!(
        init(&mut c, 4, "zombie", Some((pid, e0 - 1 + 5))).await.0,
        90
    );
    assert_eq!(
        init(&mut c, 3, "zombie", Some((pid, e0 - 1 + 5))).await.0,
        47
    );
    // A wrong producer id for the transactional id.
    assert_eq!(
        add_partitions(&mut c, 3, "zombie", pid + 1000, e1, "fence", &[0]).await,
        vec![49]
    );
    // Timeouts above transaction.max.timeout.ms.
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id("slow")))
        .with_transaction_timeout_ms(900_001);
    let ResponseKind::InitProducerId(r) = c
        .request(ApiKey::InitProducerId, 4, RequestKind::InitProducerId(req))
        .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 50, "INVALID_TRANSACTION_TIMEOUT");
    // A zombie's data is refused by the partition itself once the new epoch wrote there.
    let tid = broker.broker().topics.get("fence").unwrap().id;
    assert_eq!(
        add_partitions(&mut c, 3, "zombie", pid, e1, "fence", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "fence", tid, 0, "zombie", txn_batch(pid, e1, 0, 1)).await,
        (0, 0)
    );
    assert_eq!(
        send(&mut c, "fence", tid, 0, "zombie", txn_batch(pid, e0, 1, 1))
            .await
            .0,
        47
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_aborts_the_open_transaction_first() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "reinit", 1, &[]).await;
    let (pid, epoch) = init_ok(&mut c, "re").await;
    assert_eq!(
        add_partitions(&mut c, 3, "re", pid, epoch, "reinit", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "reinit", tid, 0, "re", txn_batch(pid, epoch, 0, 3)).await,
        (0, 0)
    );
    // While the open transaction blocks the LSO, read_committed sees nothing.
    assert_eq!(latest(&mut c, "reinit", 1).await, 0);
    assert_eq!(latest(&mut c, "reinit", 0).await, 3);
    let first = init(&mut c, 5, "re", None).await;
    assert!(
        first.0 == 51 || first.0 == 0,
        "CONCURRENT_TRANSACTIONS while aborting: {first:?}"
    );
    let (pid2, epoch2) = init_ok(&mut c, "re").await;
    assert_eq!(pid2, pid);
    assert_eq!(
        epoch2,
        epoch + 2,
        "fenced once for the abort, bumped once for the new producer"
    );
    // The abort marker is at 3; the aborted range is reported to read_committed consumers.
    let pd = fetch_at(&mut c, "reinit", 0, 1).await;
    assert_eq!(pd.last_stable_offset, 4);
    let aborted = pd.aborted_transactions.clone().unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 0)
    );
    assert!(committed_view(&pd).is_empty());
    assert_eq!(latest(&mut c, "reinit", 1).await, 4);
    // read_uncommitted consumers get no aborted list.
    assert!(fetch_at(&mut c, "reinit", 0, 0)
        .await
        .aborted_transactions
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_stops_at_the_last_stable_offset() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "lso", 1, &[]).await;
    let (a, ae) = init_ok(&mut c, "a").await;
    let (b, be) = init_ok(&mut c, "b").await;
    let plain = rivulet::test_support::batch(2, Compression::None, now_ms());
    assert_eq!(
        produce(&mut c, PRODUCE_V, "lso", tid, 0, plain.clone(), -1).await,
        (0, 0)
    );
    assert_eq!(
        add_partitions(&mut c, 3, "a", a, ae, "lso", &[0]).await,
        vec![0]
    );
    assert_eq!(
        add_partitions(&mut c, 3, "b", b, be, "lso", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "lso", tid, 0, "a", txn_batch(a, ae, 0, 2)).await,
        (0, 2)
    );
    assert_eq!(
        send(&mut c, "lso", tid, 0, "b", txn_batch(b, be, 0, 2)).await,
        (0, 4)
    );
    assert_eq!(
        produce(&mut c, PRODUCE_V, "lso", tid, 0, plain.clone(), -1).await,
        (0, 6)
    );
    let pd = fetch_at(&mut c, "lso", 0, 1).await;
    assert_eq!((pd.high_watermark, pd.last_stable_offset), (8, 2));
    assert_eq!(values(&committed_view(&pd)), vec![0, 1]);
    // b commits first: a still holds the LSO.
    assert_eq!(end_txn(&mut c, 3, "b", b, be, true).await.error_code, 0); // marker at 8
    assert_eq!(latest(&mut c, "lso", 1).await, 2);
    // a aborts: everything is stable, a's records dropped by consumers.
    assert_eq!(end_txn(&mut c, 3, "a", a, ae, false).await.error_code, 0); // marker at 9
    let pd = fetch_at(&mut c, "lso", 0, 1).await;
    assert_eq!((pd.high_watermark, pd.last_stable_offset), (10, 10));
    assert_eq!(values(&committed_view(&pd)), vec![0, 1, 4, 5, 6, 7]);
    assert_eq!(latest(&mut c, "lso", 1).await, 10);
    // A fetch starting after the aborted transaction still learns of it when it overlaps.
    let pd = fetch_at(&mut c, "lso", 3, 1).await;
    assert_eq!(pd.aborted_transactions.unwrap().len(), 1);
    // DescribeProducers shows the open transaction's start offset while it is open.
    let (d, de) = init_ok(&mut c, "d").await;
    assert_eq!(
        add_partitions(&mut c, 3, "d", d, de, "lso", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "lso", tid, 0, "d", txn_batch(d, de, 0, 1)).await,
        (0, 10)
    );
    let req = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(name("lso"))
            .with_partition_indexes(vec![0]),
    ]);
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
    let states = &r.topics[0].partitions[0].active_producers;
    let open: Vec<(i64, i64)> = states
        .iter()
        .map(|s| (s.producer_id.0, s.current_txn_start_offset))
        .collect();
    assert!(open.contains(&(d, 10)), "{open:?}");
    assert!(open.contains(&(a, -1)), "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_produce_outside_the_transaction_is_refused() {
    // TV1 finalized: clients stay below Produce v12, so they add partitions first.
    let broker = TestBroker::start(&[("transaction.version", "1")]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "verify", 2, &[]).await;
    let (pid, epoch) = init_ok(&mut c, "v").await;
    // Not in the transaction: INVALID_TXN_STATE up to v10, TRANSACTION_ABORTABLE at v11.
    for (v, want) in [(3i16, NOT_IN_TXN), (10, NOT_IN_TXN), (11, 120)] {
        let (err, _) = tx_produce(
            &mut c,
            v,
            "verify",
            tid,
            0,
            "v",
            txn_batch(pid, epoch, 0, 1),
            -1,
        )
        .await;
        assert_eq!(err, want, "Produce v{v}: not in the transaction");
    }
    assert_eq!(
        add_partitions(&mut c, 3, "v", pid, epoch, "verify", &[0]).await,
        vec![0]
    );
    assert_eq!(
        tx_produce(
            &mut c,
            11,
            "verify",
            tid,
            0,
            "v",
            txn_batch(pid, epoch, 0, 1),
            -1
        )
        .await,
        (0, 0)
    );
    // Partition 1 was not added.
    assert_eq!(
        tx_produce(
            &mut c,
            11,
            "verify",
            tid,
            1,
            "v",
            txn_batch(pid, epoch, 0, 1),
            -1
        )
        .await
        .0,
        120
    );
    // A transactional batch in a request without a transactional id: refused whole.
    assert_eq!(
        produce(
            &mut c,
            11,
            "verify",
            tid,
            0,
            txn_batch(pid, epoch, 1, 1),
            -1
        )
        .await
        .0,
        53
    );
    // Nothing added before the EndTxn still ends cleanly; partition 1 holds no transaction.
    assert_eq!(
        end_txn(&mut c, 3, "v", pid, epoch, true).await.error_code,
        0
    );
    let ResponseKind::ApiVersions(av) = c
        .request(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
    else {
        panic!()
    };
    let levels: Vec<(String, i16)> = av
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.max_version_level))
        .collect();
    assert_eq!(levels, vec![("transaction.version".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tv2_produce_joins_the_transaction_and_end_txn_bumps_the_epoch() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "tv2", 2, &[]).await;
    let ResponseKind::ApiVersions(av) = c
        .request(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
    else {
        panic!()
    };
    assert_eq!(av.finalized_features[0].max_version_level, 2);
    assert!(av.finalized_features_epoch >= 0);
    let (pid, epoch) = init_ok(&mut c, "two").await;
    // Produce v12 adds the partitions implicitly; v11 still must be added first.
    let produce_txn = |p: i32, e: i16, seq: i32, v: i16| {
        let batch = txn_batch(pid, e, seq, 1);
        (p, batch, v)
    };
    let (p, b1, v) = produce_txn(0, epoch, 0, 12);
    assert_eq!(
        tx_produce(&mut c, v, "tv2", tid, p, "two", b1, -1).await,
        (0, 0)
    );
    let (p, b2, v) = produce_txn(1, epoch, 0, 11);
    assert_eq!(
        tx_produce(&mut c, v, "tv2", tid, p, "two", b2, -1).await.0,
        120,
        "v11 does not add"
    );
    let d = broker.broker().txn.describe("two").unwrap();
    assert_eq!(d.state, TxnState::Ongoing);
    assert_eq!(d.partitions.len(), 1);
    let r = end_txn(&mut c, 5, "two", pid, epoch, true).await;
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, epoch + 1)
    );
    // The retry of that EndTxn (the epoch before the bump) is answered the same.
    let again = end_txn(&mut c, 5, "two", pid, epoch, true).await;
    assert_eq!((again.error_code, again.producer_epoch), (0, epoch + 1));
    // The next transaction runs under the bumped epoch from sequence 0; the old epoch is fenced.
    assert_eq!(
        tx_produce(
            &mut c,
            12,
            "tv2",
            tid,
            0,
            "two",
            txn_batch(pid, epoch + 1, 0, 1),
            -1
        )
        .await,
        (0, 2)
    );
    assert_eq!(
        tx_produce(
            &mut c,
            12,
            "tv2",
            tid,
            0,
            "two",
            txn_batch(pid, epoch, 1, 1),
            -1
        )
        .await
        .0,
        47
    );
    let r = end_txn(&mut c, 5, "two", pid, epoch + 1, false).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, epoch + 2));
    let pd = fetch_at(&mut c, "tv2", 0, 1).await;
    assert_eq!(values(&committed_view(&pd)), vec![0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_in_a_transaction_are_unstable_until_it_ends() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "src", 1, &[]).await;
    let (pid, epoch) = init_ok(&mut c, "ctp").await;
    // TV1 path: AddOffsetsToTxn before TxnOffsetCommit.
    assert_eq!(
        txn_offset_commit(&mut c, 3, "ctp", pid, epoch, "g1", "src", 5).await,
        NOT_IN_TXN
    );
    assert_eq!(add_offsets(&mut c, 3, "ctp", pid, epoch, "g1").await, 0);
    assert_eq!(
        txn_offset_commit(&mut c, 3, "ctp", pid, epoch, "g1", "src", 5).await,
        0
    );
    assert_eq!(
        offset_fetch(&mut c, "g1", "src", false).await,
        (0, -1),
        "invisible before the commit"
    );
    assert_eq!(
        offset_fetch(&mut c, "g1", "src", true).await,
        (88, -1),
        "UNSTABLE_OFFSET_COMMIT"
    );
    assert_eq!(
        end_txn(&mut c, 3, "ctp", pid, epoch, true).await.error_code,
        0
    );
    assert_eq!(offset_fetch(&mut c, "g1", "src", true).await, (0, 5));
    // An abort drops them.
    assert_eq!(add_offsets(&mut c, 3, "ctp", pid, epoch, "g1").await, 0);
    assert_eq!(
        txn_offset_commit(&mut c, 3, "ctp", pid, epoch, "g1", "src", 9).await,
        0
    );
    assert_eq!(
        end_txn(&mut c, 3, "ctp", pid, epoch, false)
            .await
            .error_code,
        0
    );
    assert_eq!(offset_fetch(&mut c, "g1", "src", true).await, (0, 5));
    // TV2 (v5): TxnOffsetCommit adds the offsets partition itself.
    assert_eq!(
        txn_offset_commit(&mut c, 5, "ctp", pid, epoch, "g1", "src", 7).await,
        0
    );
    let r = end_txn(&mut c, 5, "ctp", pid, epoch, true).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(offset_fetch(&mut c, "g1", "src", true).await, (0, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_abort_and_idle_ids_expire() {
    let clock = ManualClock::new(now_ms());
    let options = ServerOptions {
        clock: clock.clone(),
        ..ServerOptions::default()
    };
    let broker = TestBroker::start_with(
        &[
            ("transactional.id.expiration.ms", "600000"),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                "1000",
            ),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "1000",
            ),
        ],
        options,
    )
    .await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "slow", 1, &[]).await;
    let (pid, epoch) = init_ok(&mut c, "slow").await; // 60 s timeout
    assert_eq!(
        add_partitions(&mut c, 3, "slow", pid, epoch, "slow", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "slow", tid, 0, "slow", txn_batch(pid, epoch, 0, 2)).await,
        (0, 0)
    );
    clock.advance(61_000);
    let mut state = TxnState::Ongoing;
    for _ in 0..100 {
        state = broker.broker().txn.describe("slow").unwrap().state;
        if state == TxnState::CompleteAbort {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, TxnState::CompleteAbort);
    assert_eq!(latest(&mut c, "slow", 1).await, 3, "aborted and stable");
    // The producer was fenced by the abort.
    assert_eq!(
        end_txn(&mut c, 4, "slow", pid, epoch, true)
            .await
            .error_code,
        90
    );
    // Idle past transactional.id.expiration.ms: gone.
    clock.advance(600_001);
    for _ in 0..100 {
        if broker.broker().txn.describe("slow").is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        broker.broker().txn.describe("slow").is_err(),
        "the id expired"
    );
}

/// Markers that fail, so a transaction stops in its Prepare state (or half way through its
/// markers) as a crash would leave it.
struct FailingMarkers {
    inner: Arc<dyn MarkerWriter>,
    /// Partitions written before the failure.
    write_first: usize,
}

impl MarkerWriter for FailingMarkers {
    fn write_markers(
        &self,
        partitions: &BTreeSet<(String, i32)>,
        marker: Marker,
    ) -> MarkersDurable {
        let first: BTreeSet<(String, i32)> =
            partitions.iter().take(self.write_first).cloned().collect();
        let written = self.inner.write_markers(&first, marker);
        Box::pin(async move {
            written.await?;
            Err(MarkerError::Failed {
                topic: "test".into(),
                partition: 0,
                reason: "injected".into(),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_completes_prepared_and_half_marked_transactions() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "half", 2, &[]).await;
    let mut producers = Vec::new();
    for (i, write_first) in [0usize, 1].into_iter().enumerate() {
        let id = format!("half-{i}");
        let (pid, epoch) = init_ok(&mut c, &id).await;
        assert_eq!(
            add_partitions(&mut c, 3, &id, pid, epoch, "half", &[0, 1]).await,
            vec![0, 0]
        );
        for p in 0..2 {
            assert_eq!(
                send(&mut c, "half", tid, p, &id, txn_batch(pid, epoch, 0, 1))
                    .await
                    .0,
                0
            );
        }
        let markers = Arc::new(FailingMarkers {
            inner: broker.broker().markers(),
            write_first,
        });
        let txn = broker.broker().txn.clone();
        let r = tokio::task::spawn_blocking(move || {
            rivulet::handlers::txn::wait_blocking(txn.end_txn(
                &id,
                pid,
                epoch,
                rivulet::coordinator::TxnResult::Commit,
                false,
                markers,
            ))
        })
        .await
        .unwrap();
        assert!(r.is_err(), "markers failed");
        producers.push(pid);
    }
    assert_eq!(
        broker.broker().txn.describe("half-0").unwrap().state,
        TxnState::PrepareCommit
    );
    // Both partitions' LSO is held by the unfinished transactions.
    assert_eq!(latest(&mut c, "half", 1).await, 0);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    for _ in 0..100 {
        let states = broker.broker().txn.states();
        if states.values().all(|s| *s == TxnState::CompleteCommit) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        broker.broker().txn.describe("half-0").unwrap().state,
        TxnState::CompleteCommit
    );
    assert_eq!(
        broker.broker().txn.describe("half-1").unwrap().state,
        TxnState::CompleteCommit
    );
    for _ in 0..2 {
        let view = committed_view(&fetch_at(&mut c, "half", 0, 1).await);
        assert_eq!(
            view.len(),
            2,
            "both transactions' records committed: {view:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_each_phase_recovers_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "crash", 1, &[]).await;
    // Phase 1: a committed transaction, an aborted one, an open one.
    let (a, ae) = init_ok(&mut c, "done").await;
    assert_eq!(
        add_partitions(&mut c, 3, "done", a, ae, "crash", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "crash", tid, 0, "done", txn_batch(a, ae, 0, 2)).await,
        (0, 0)
    );
    assert_eq!(end_txn(&mut c, 3, "done", a, ae, true).await.error_code, 0); // marker 2
    assert_eq!(
        add_partitions(&mut c, 3, "done", a, ae, "crash", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "crash", tid, 0, "done", txn_batch(a, ae, 2, 2)).await,
        (0, 3)
    );
    assert_eq!(end_txn(&mut c, 3, "done", a, ae, false).await.error_code, 0); // marker 5
    let (o, oe) = init_ok(&mut c, "open").await;
    assert_eq!(
        add_partitions(&mut c, 3, "open", o, oe, "crash", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "crash", tid, 0, "open", txn_batch(o, oe, 0, 1)).await,
        (0, 6)
    );
    let mut broker = broker;
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    drop(broker);
    let broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    // The open transaction still holds the LSO; the aborted one is still reported.
    let pd = fetch_at(&mut c, "crash", 0, 1).await;
    assert_eq!((pd.high_watermark, pd.last_stable_offset), (7, 6));
    assert_eq!(values(&committed_view(&pd)), vec![0, 1]);
    // The coordinator remembers the open transaction: its producer commits it.
    assert_eq!(end_txn(&mut c, 3, "open", o, oe, true).await.error_code, 0);
    let pd = fetch_at(&mut c, "crash", 0, 1).await;
    assert_eq!(values(&committed_view(&pd)), vec![0, 1, 6]);
    // Phase 2: kill -9 right after the commit answered (markers durable) and again with a
    // transaction just opened.
    assert_eq!(
        add_partitions(&mut c, 3, "open", o, oe, "crash", &[0]).await,
        vec![0]
    );
    let mut broker = broker;
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    drop(broker);
    let broker = Process::start(dir.path(), port);
    let mut c = broker.client().await;
    let pd = fetch_at(&mut c, "crash", 0, 1).await;
    assert_eq!(pd.last_stable_offset, 8, "nothing open in the partition");
    assert_eq!(values(&committed_view(&pd)), vec![0, 1, 6]);
    // A new producer instance aborts the open (empty) transaction and continues.
    let (o2, oe2) = init_ok(&mut c, "open").await;
    assert_eq!(o2, o);
    assert!(oe2 > oe);
    let _ = WritableTxnMarker::default();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_txn_markers_v1_and_batched_add_partitions() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let tid = create_topic(&mut c, "wtm", 1, &[]).await;
    let (pid, epoch) = init_ok(&mut c, "w").await;
    // AddPartitionsToTxn v4/v5: broker-to-broker, batched; verify_only answers per partition.
    for v in 4..=5 {
        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(txn_id("w"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_verify_only(true)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(name("wtm"))
                    .with_partitions(vec![0])]),
        ]);
        let ResponseKind::AddPartitionsToTxn(r) = c
            .request(
                ApiKey::AddPartitionsToTxn,
                v,
                RequestKind::AddPartitionsToTxn(req),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        let code = r.results_by_transaction[0].topic_results[0].results_by_partition[0]
            .partition_error_code;
        assert_eq!(
            code, 120,
            "v{v}: not in the transaction yet (TRANSACTION_ABORTABLE)"
        );
    }
    assert_eq!(
        add_partitions(&mut c, 3, "w", pid, epoch, "wtm", &[0]).await,
        vec![0]
    );
    assert_eq!(
        send(&mut c, "wtm", tid, 0, "w", txn_batch(pid, epoch, 0, 2)).await,
        (0, 0)
    );
    // A marker written by WriteTxnMarkers completes the partition's transaction.
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_transaction_result(true)
        .with_coordinator_epoch(0)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(name("wtm"))
            .with_partition_indexes(vec![0, 7])])]);
    let ResponseKind::WriteTxnMarkers(r) = c
        .request(
            ApiKey::WriteTxnMarkers,
            1,
            RequestKind::WriteTxnMarkers(req),
        )
        .await
    else {
        panic!()
    };
    let codes: Vec<i16> = r.markers[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, 3]);
    let pd = fetch_at(&mut c, "wtm", 0, 1).await;
    assert_eq!(pd.last_stable_offset, 3);
    assert_eq!(values(&committed_view(&pd)), vec![0, 1]);
}
