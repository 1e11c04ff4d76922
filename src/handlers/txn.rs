//! Transactions: AddPartitionsToTxn (API 24), AddOffsetsToTxn (25), EndTxn (26),
//! WriteTxnMarkers (27), TxnOffsetCommit (28), DescribeTransactions (65) and ListTransactions
//! (66). InitProducerId with a transactional id is in `producers`, the verification of a
//! transactional Produce in `produce`.
//!
//! Each handler authorizes as Kafka does, hands the request to the transaction coordinator
//! (`crate::txn`) and maps its errors; PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH to
//! versions that predate it. Operations that write the transaction log answer once it is
//! durable; EndTxn once the markers are durable too.

use std::future::Future;
use std::pin::Pin;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    ResponseKind, TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::coordinator::{CoordinatorError, TxnResult, Waiter};
use crate::group::{CommitAuthor, CommitPartition, GroupError, GROUP_TOPIC};
use crate::txn::coordinator::ListFilter;
use crate::txn::markers::Marker;
use crate::txn::{TxnError, TxnState};

fn is_internal(topic: &str) -> bool {
    topic == GROUP_TOPIC || topic == crate::txn::TXN_TOPIC
}

fn unloaded<T>() -> Result<T, TxnError> {
    Err(TxnError::Coordinator(CoordinatorError::Unloaded))
}

/// Resolves a coordinator answer on the blocking pool (it may reserve a producer id block).
pub fn wait_blocking<T>(waiter: Waiter<Result<T, TxnError>>) -> Result<T, TxnError> {
    match waiter {
        Waiter::Ready(r) => r,
        Waiter::Wait(rx) => rx.blocking_recv().unwrap_or_else(|_| unloaded()),
    }
}

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Every partition of a request by topic, with the error a check decided for it now (None:
/// the coordinator's answer decides).
type Layout = Vec<(TopicName, Vec<(i32, Option<ResponseError>)>)>;

fn pending<T: Send + 'static>(waiter: Waiter<Result<T, TxnError>>) -> Pending<Result<T, TxnError>> {
    Box::pin(async move {
        match waiter {
            Waiter::Ready(r) => r,
            Waiter::Wait(rx) => rx.await.unwrap_or_else(|_| unloaded()),
        }
    })
}

// ---- AddPartitionsToTxn -----------------------------------------------------------------

/// One transaction of an AddPartitionsToTxn: its answer per topic, decided now or later.
struct TxnAdd {
    transactional_id: TransactionalId,
    /// (topic, partitions, error decided now; None: the coordinator's answer)
    topics: Layout,
    outcome: Option<Pending<Result<(), TxnError>>>,
    fenced_code: bool,
}

impl TxnAdd {
    async fn finish(self) -> AddPartitionsToTxnResult {
        let coordinator = match self.outcome {
            Some(p) => p
                .await
                .err()
                .map(|e| error_codes::txn_error(&e, self.fenced_code)),
            None => None,
        };
        AddPartitionsToTxnResult::default()
            .with_transactional_id(self.transactional_id)
            .with_topic_results(
                self.topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        AddPartitionsToTxnTopicResult::default()
                            .with_name(name)
                            .with_results_by_partition(
                                partitions
                                    .into_iter()
                                    .map(|(p, decided)| {
                                        let code = decided.or(coordinator).map_or(0, |c| c.code());
                                        AddPartitionsToTxnPartitionResult::default()
                                            .with_partition_index(p)
                                            .with_partition_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}

/// Checks one transaction's partitions and starts the add (or the verification, v4+
/// `verify_only`) when every one of them is acceptable.
fn add_one(
    ctx: &RequestContext<'_>,
    transactional_id: TransactionalId,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
) -> TxnAdd {
    let fenced_code = ctx.version >= 2;
    let id = transactional_id.to_string();
    let mut add = TxnAdd {
        transactional_id,
        topics: Vec::with_capacity(topics.len()),
        outcome: None,
        fenced_code,
    };
    let id_allowed = ctx.authorize(AclOperation::Write, Resource::TransactionalId(&id));
    let mut any_error = false;
    let mut wanted = Vec::new();
    for t in topics {
        let decided = if !id_allowed {
            Some(error_codes::denied(ResourceType::TransactionalId))
        } else if !ctx.authorize(AclOperation::Write, Resource::Topic(&t.name))
            || (ctx.version <= 3 && is_internal(&t.name))
        {
            // A producer may not add an internal topic itself (Kafka drops them from the
            // authorized set); AddOffsetsToTxn adds the group's offsets partition.
            Some(error_codes::denied(ResourceType::Topic))
        } else {
            None
        };
        let topic = ctx.broker.topics.get(&t.name);
        let partitions = t
            .partitions
            .iter()
            .map(|&p| {
                let known = topic.as_ref().is_some_and(|t| t.partition(p).is_some());
                let error = decided.or((!known).then_some(ResponseError::UnknownTopicOrPartition));
                any_error |= error.is_some();
                if error.is_none() {
                    wanted.push((t.name.to_string(), p));
                }
                (p, error)
            })
            .collect();
        add.topics.push((t.name, partitions));
    }
    if any_error {
        // Kafka adds nothing when any partition is refused; the others say so.
        for (_, partitions) in &mut add.topics {
            for (_, e) in partitions.iter_mut() {
                e.get_or_insert(ResponseError::OperationNotAttempted);
            }
        }
        return add;
    }
    if id.is_empty() {
        add.outcome = Some(Box::pin(async {
            Err(TxnError::InvalidRequest("empty transactional id".into()))
        }));
        return add;
    }
    let txn = &ctx.broker.txn;
    if verify_only {
        // Per partition: in the transaction or not.
        for (name, partitions) in &mut add.topics {
            for (p, e) in partitions.iter_mut() {
                let tp = (name.to_string(), *p);
                if let Err(err) = txn.verify_partition(&id, producer_id, epoch, &tp) {
                    *e = Some(error_codes::txn_error(&err, fenced_code));
                }
            }
        }
        return add;
    }
    let tv2 = ctx.version >= 5;
    add.outcome = Some(pending(txn.add_partitions(
        &id,
        producer_id,
        epoch,
        &wanted,
        tv2,
    )));
    add
}

/// AddPartitionsToTxn: v0-3 from a producer (one transaction), v4+ batched (many, optionally
/// verify only) from a broker, which needs CLUSTER_ACTION.
pub fn add_partitions_to_txn(ctx: &RequestContext<'_>, req: AddPartitionsToTxnRequest) -> Reply {
    let version = ctx.version;
    if version >= 4 {
        if !ctx.authorize(AclOperation::ClusterAction, Resource::Cluster) {
            return Reply::now(ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default()
                    .with_error_code(error_codes::denied(ResourceType::Cluster).code()),
            ));
        }
        let adds: Vec<TxnAdd> = req
            .transactions
            .into_iter()
            .map(|t| {
                add_one(
                    ctx,
                    t.transactional_id,
                    t.producer_id.0,
                    t.producer_epoch,
                    t.verify_only,
                    t.topics,
                )
            })
            .collect();
        return Reply::Later(Box::pin(async move {
            let mut results = Vec::with_capacity(adds.len());
            for a in adds {
                results.push(a.finish().await);
            }
            ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_results_by_transaction(results),
            )
        }));
    }
    let add = add_one(
        ctx,
        req.v3_and_below_transactional_id,
        req.v3_and_below_producer_id.0,
        req.v3_and_below_producer_epoch,
        false,
        req.v3_and_below_topics,
    );
    Reply::Later(Box::pin(async move {
        let result = add.finish().await;
        ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(result.topic_results),
        )
    }))
}

// ---- AddOffsetsToTxn --------------------------------------------------------------------

/// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction.
pub fn add_offsets_to_txn(ctx: &RequestContext<'_>, req: AddOffsetsToTxnRequest) -> Reply {
    let respond = |code: ResponseError| {
        ResponseKind::AddOffsetsToTxn(
            AddOffsetsToTxnResponse::default().with_error_code(code.code()),
        )
    };
    let id = req.transactional_id.to_string();
    if !ctx.authorize(AclOperation::Write, Resource::TransactionalId(&id)) {
        return Reply::now(respond(error_codes::denied(ResourceType::TransactionalId)));
    }
    if !ctx.authorize(AclOperation::Read, Resource::Group(&req.group_id)) {
        return Reply::now(respond(error_codes::denied(ResourceType::Group)));
    }
    if id.is_empty() {
        return Reply::now(respond(ResponseError::InvalidRequest));
    }
    let partition = (
        GROUP_TOPIC.to_string(),
        ctx.broker.groups.partition_for(&req.group_id),
    );
    let fenced_code = ctx.version >= 2;
    // Kafka's client versions of AddPartitionsToTxn and AddOffsetsToTxn run as TV1.
    let tv2 = false;
    let waiter = ctx.broker.txn.add_partitions(
        &id,
        req.producer_id.0,
        req.producer_epoch,
        &[partition],
        tv2,
    );
    Reply::waiting(waiter, unloaded(), move |r: Result<(), TxnError>| {
        let code = r
            .err()
            .map_or(0, |e| error_codes::txn_error(&e, fenced_code).code());
        ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
    })
}

// ---- EndTxn -----------------------------------------------------------------------------

/// EndTxn: commits or aborts; answered once the markers are durable. v5 (TV2) answers the
/// bumped producer id and epoch.
pub fn end_txn(ctx: &RequestContext<'_>, req: EndTxnRequest) -> Reply {
    let id = req.transactional_id.to_string();
    let fenced_code = ctx.version >= 2;
    let respond = move |r: Result<(i64, i16), TxnError>| {
        let resp = EndTxnResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        ResponseKind::EndTxn(match r {
            Ok((pid, epoch)) => resp
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(e) => resp.with_error_code(error_codes::txn_error(&e, fenced_code).code()),
        })
    };
    if !ctx.authorize(AclOperation::Write, Resource::TransactionalId(&id)) {
        return Reply::now(ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_error_code(error_codes::denied(ResourceType::TransactionalId).code()),
        ));
    }
    if id.is_empty() {
        return Reply::now(respond(Err(TxnError::InvalidRequest(
            "empty transactional id".into(),
        ))));
    }
    let result = if req.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    let tv2 = ctx.version >= 5;
    let broker = ctx.broker.clone();
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    Reply::blocking(
        move || {
            let markers = broker.markers();
            respond(wait_blocking(
                broker.txn.end_txn(&id, pid, epoch, result, tv2, markers),
            ))
        },
        || {
            ResponseKind::EndTxn(
                EndTxnResponse::default()
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_error_code(ResponseError::UnknownServerError.code()),
            )
        },
    )
}

// ---- TxnOffsetCommit --------------------------------------------------------------------

/// TxnOffsetCommit: offsets written in the transaction, visible to OffsetFetch only after its
/// commit. The group's offsets partition must be in the transaction (AddOffsetsToTxn), or is
/// added here under TV2 (v5).
pub fn txn_offset_commit(ctx: &RequestContext<'_>, req: TxnOffsetCommitRequest) -> Reply {
    let id = req.transactional_id.to_string();
    let group_id = req.group_id.to_string();
    let version = ctx.version;
    // Every partition's answer, decided now where a check refuses it.
    let mut layout: Layout = Vec::new();
    let mut commits = Vec::new();
    let whole = if !ctx.authorize(AclOperation::Write, Resource::TransactionalId(&id)) {
        Some(error_codes::denied(ResourceType::TransactionalId))
    } else if !ctx.authorize(AclOperation::Read, Resource::Group(&group_id)) {
        Some(error_codes::denied(ResourceType::Group))
    } else if id.is_empty() {
        Some(ResponseError::InvalidRequest)
    } else {
        None
    };
    for t in &req.topics {
        let denied = !ctx.authorize(AclOperation::Read, Resource::Topic(&t.name));
        let topic = ctx.broker.topics.get(&t.name);
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let error = whole.or_else(|| {
                    if denied {
                        Some(error_codes::denied(ResourceType::Topic))
                    } else if topic
                        .as_ref()
                        .and_then(|t| t.partition(p.partition_index))
                        .is_none()
                    {
                        Some(ResponseError::UnknownTopicOrPartition)
                    } else {
                        None
                    }
                });
                if error.is_none() {
                    commits.push(CommitPartition {
                        topic: t.name.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    });
                }
                (p.partition_index, error)
            })
            .collect();
        layout.push((t.name.clone(), partitions));
    }
    let respond = move |layout: Layout, result: Result<Vec<Option<GroupError>>, ResponseError>| {
        let mut results = match &result {
            Ok(r) => r.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let topics = layout
            .into_iter()
            .map(|(name, partitions)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, decided)| {
                                let code = match (decided, &result) {
                                    (Some(c), _) => c.code(),
                                    (None, Err(c)) => c.code(),
                                    (None, Ok(_)) => {
                                        error_codes::group_code(results.next().flatten().as_ref())
                                    }
                                };
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
    };
    if commits.is_empty() {
        return Reply::now(respond(layout, Ok(Vec::new())));
    }
    let producer = (req.producer_id.0, req.producer_epoch);
    let partition = (
        GROUP_TOPIC.to_string(),
        ctx.broker.groups.partition_for(&group_id),
    );
    let txn = &ctx.broker.txn;
    // KIP-890: the offsets partition must be in the transaction; TV2 (v5) adds it.
    let in_txn: Pending<Result<(), TxnError>> = if ctx.version >= 5 {
        pending(txn.add_partitions(&id, producer.0, producer.1, &[partition], true))
    } else if ctx.broker.config.txn.verification {
        let verified = txn.verify_partition(&id, producer.0, producer.1, &partition);
        Box::pin(async move { verified })
    } else {
        Box::pin(async { Ok(()) })
    };
    let author = CommitAuthor {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_id: req.generation_id,
        retention_time_ms: -1,
    };
    let groups = ctx.broker.groups.clone();
    Reply::Later(Box::pin(async move {
        if let Err(e) = in_txn.await {
            let code = error_codes::txn_offset_commit_verification_error(&e, version);
            return respond(layout, Err(code));
        }
        let result = match groups.txn_commit_offsets(&group_id, producer, &author, &commits) {
            Waiter::Ready(r) => r,
            Waiter::Wait(rx) => rx.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable)),
        };
        respond(layout, result.map_err(|e| error_codes::group_error(&e)))
    }))
}

// ---- WriteTxnMarkers --------------------------------------------------------------------

/// WriteTxnMarkers v1 (broker to broker; CLUSTER_ACTION): writes each marker into its
/// partitions, answered per partition once durable.
pub fn write_txn_markers(ctx: &RequestContext<'_>, req: WriteTxnMarkersRequest) -> Reply {
    let allowed = ctx.authorize(AclOperation::ClusterAction, Resource::Cluster);
    let mut work = Vec::new();
    for m in req.markers {
        let marker = Marker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            result: if m.transaction_result {
                TxnResult::Commit
            } else {
                TxnResult::Abort
            },
        };
        let mut topics = Vec::new();
        for t in m.topics {
            let topic = ctx.broker.topics.get(&t.name);
            let mut partitions = Vec::new();
            for p in t.partition_indexes {
                let known = t.name.as_str() == GROUP_TOPIC
                    && p >= 0
                    && p < ctx.broker.groups.partition_count()
                    || topic.as_ref().is_some_and(|t| t.partition(p).is_some());
                let outcome: Pending<Option<ResponseError>> = if !allowed {
                    let code = error_codes::denied(ResourceType::Cluster);
                    Box::pin(async move { Some(code) })
                } else if !known {
                    Box::pin(async { Some(ResponseError::UnknownTopicOrPartition) })
                } else {
                    let one = std::iter::once((t.name.to_string(), p)).collect();
                    let durable = ctx.broker.markers().write_markers(&one, marker);
                    Box::pin(async move {
                        durable.await.err().map(|e| {
                            tracing::warn!(error = %e, "WriteTxnMarkers failed");
                            ResponseError::KafkaStorageError
                        })
                    })
                };
                partitions.push((p, outcome));
            }
            topics.push((t.name, partitions));
        }
        work.push((m.producer_id, topics));
    }
    Reply::Later(Box::pin(async move {
        let mut markers = Vec::with_capacity(work.len());
        for (producer_id, topics) in work {
            let mut topic_results = Vec::with_capacity(topics.len());
            for (name, partitions) in topics {
                let mut results = Vec::with_capacity(partitions.len());
                for (p, outcome) in partitions {
                    results.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(outcome.await.map_or(0, |c| c.code())),
                    );
                }
                topic_results.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(name)
                        .with_partitions(results),
                );
            }
            markers.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(producer_id)
                    .with_topics(topic_results),
            );
        }
        ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse::default().with_markers(markers))
    }))
}

// ---- DescribeTransactions / ListTransactions --------------------------------------------

/// DescribeTransactions: each id's state, timeout, start time, producer and partitions (those
/// the caller may describe).
pub fn describe_transactions(
    ctx: &RequestContext<'_>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let state = DescribedState::default()
                .with_transactional_id(id.clone())
                .with_transaction_state(StrBytes::from_static_str(""))
                .with_transaction_start_time_ms(-1)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            if !ctx.authorize(AclOperation::Describe, Resource::TransactionalId(&id)) {
                return state
                    .with_error_code(error_codes::denied(ResourceType::TransactionalId).code());
            }
            match ctx.broker.txn.describe(&id) {
                Err(e) => state.with_error_code(error_codes::txn_error(&e, true).code()),
                Ok(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, p) in &m.partitions {
                        if !ctx.authorize(AclOperation::Describe, Resource::Topic(topic)) {
                            continue;
                        }
                        match topics.last_mut() {
                            Some(t) if t.topic.as_str() == topic.as_str() => t.partitions.push(*p),
                            _ => topics.push(
                                TopicData::default()
                                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                                    .with_partitions(vec![*p]),
                            ),
                        }
                    }
                    state
                        .with_transaction_state(StrBytes::from_static_str(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics)
                }
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// ListTransactions: the ids the caller may describe, filtered by state, producer id, (v1)
/// running time and (v2) a regular expression on the id; unknown state names are echoed back.
pub fn list_transactions(
    ctx: &RequestContext<'_>,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let (known, unknown): (Vec<StrBytes>, Vec<StrBytes>) = req
        .state_filters
        .into_iter()
        .partition(|s| TxnState::ALL.iter().any(|n| n.name() == s.as_str()));
    let pattern = match req.transactional_id_pattern.as_ref().map(|p| p.as_str()) {
        None | Some("") => None,
        // Java's Pattern.matches: the whole id must match.
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code());
            }
        },
    };
    let filter = ListFilter {
        states: known.iter().map(|s| s.to_string()).collect(),
        producer_ids: req.producer_id_filters.iter().map(|p| p.0).collect(),
        min_duration_ms: if ctx.version >= 1 {
            req.duration_filter
        } else {
            -1
        },
        pattern: if ctx.version >= 2 { pattern } else { None },
    };
    // Only unknown state names asked for: nothing can match.
    let nothing = known.is_empty() && !unknown.is_empty();
    let states = ctx
        .broker
        .txn
        .list(&filter, ctx.broker.now_ms())
        .into_iter()
        .filter(|_| !nothing)
        .filter(|t| {
            ctx.authorize(
                AclOperation::Describe,
                Resource::TransactionalId(&t.transactional_id),
            )
        })
        .map(|t| {
            ListedState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
