//! The transaction coordinator's API over the coordinator runtime (Kafka's
//! `TransactionCoordinator`): what the handlers call, and the marker writing that completes a
//! transaction.
//!
//! An operation locks its transactional id, decides with the pure transitions of `state`,
//! appends the new state to `__transaction_state-N` and answers once it is committed (fsynced).
//! Ending a transaction is three steps, each durable before the next: the Prepare state, the
//! markers in every partition of the transaction, the Complete state. The client is answered
//! after the last, so its next transaction never meets CONCURRENT_TRANSACTIONS on one node.
//! Whatever stops half way (a crash, a failed write) is picked up again: a Prepare state that
//! nobody is completing is completed by the periodic `tick`, which after a restart finds every
//! Prepare state the log replayed. A marker written twice completes nothing the second time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::markers::{Marker, MarkerWriter};
use super::shard::{TxnEntry, TxnShard};
use super::state::{EndDecision, InitDecision, TxnMetadata, TxnState};
use super::{ProducerIdManager, TxnConfig, TxnError, TXN_TOPIC};
use crate::coordinator::runtime::{Persisted, RuntimeConfig};
use crate::coordinator::{Ctx, Runtime, TxnResult, Waiter};
use crate::partition::PartitionContext;
use crate::tasks::Tasks;
use crate::topics::TopicConfig;

/// Attempts at writing a transaction's markers before leaving it to the next tick.
const MARKER_ATTEMPTS: u32 = 3;
/// Pause between those attempts.
const MARKER_BACKOFF: Duration = Duration::from_millis(100);
/// The coordinator epoch markers carry: the transaction log's leader epoch, 0 on one node.
const COORDINATOR_EPOCH: i32 = 0;

/// A producer id and epoch, as InitProducerId and EndTxn v5 answer them.
pub type ProducerIdAndEpoch = (i64, i16);

/// One transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its state.
    pub state: TxnState,
}

/// ListTransactions' filters (empty: any).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Kafka state names (only known ones; when unknown names were all that was asked, the
    /// handler answers with nothing).
    pub states: Vec<String>,
    /// Producer ids.
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this (v1; -1: any).
    pub min_duration_ms: i64,
    /// Only ids matching this regular expression (v2).
    pub pattern: Option<regex::Regex>,
}

struct Inner {
    runtime: Runtime<TxnShard>,
    producer_ids: Arc<ProducerIdManager>,
    tasks: Tasks,
    last_abort_scan: AtomicI64,
    last_expiry_scan: AtomicI64,
}

/// The transaction coordinator; a cheap handle (clones share the state).
#[derive(Clone)]
pub struct TxnCoordinator(Arc<Inner>);

type TxnCtx<'a> = Ctx<'a, TxnConfig, super::records::TxnRecord, super::shard::FollowUp>;

impl TxnCoordinator {
    /// Loads every `__transaction_state-N` partition that exists (of `partitions`). Blocking.
    pub fn open(
        data_dir: &std::path::Path,
        config: TxnConfig,
        partitions: i32,
        partition_ctx: PartitionContext,
        tasks: Tasks,
        producer_ids: Arc<ProducerIdManager>,
    ) -> Result<TxnCoordinator, crate::coordinator::CoordinatorError> {
        let mut overrides = std::collections::BTreeMap::new();
        overrides.insert(
            "segment.bytes".to_string(),
            config.segment_bytes.to_string(),
        );
        let topic_config = Arc::new(
            TopicConfig::new(overrides, &crate::config::Config::default())
                .map_err(crate::coordinator::CoordinatorError::Storage)?,
        );
        let runtime = Runtime::open(RuntimeConfig {
            topic: TXN_TOPIC.to_string(),
            data_dir: data_dir.to_path_buf(),
            partitions,
            config: Arc::new(config),
            topic_config,
            partition_ctx,
            tasks: tasks.clone(),
        })?;
        Ok(TxnCoordinator(Arc::new(Inner {
            runtime,
            producer_ids,
            tasks,
            last_abort_scan: AtomicI64::new(i64::MIN),
            last_expiry_scan: AtomicI64::new(i64::MIN),
        })))
    }

    /// The coordinator's settings.
    pub fn config(&self) -> &TxnConfig {
        self.0.runtime.config()
    }

    /// The transaction log partition of `transactional_id` (Kafka's hash).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        self.0.runtime.partition_for(transactional_id)
    }

    /// The number of partitions of the transaction log.
    pub fn partition_count(&self) -> i32 {
        self.0.runtime.partition_count()
    }

    /// The size of each transaction log partition that exists, by index (DescribeLogDirs).
    pub fn partition_sizes(&self) -> Vec<(i32, u64)> {
        self.0.runtime.partition_sizes()
    }

    /// Now, by the broker's clock.
    pub fn now(&self) -> i64 {
        self.0.runtime.now()
    }

    fn ctx(&self) -> TxnCtx<'_> {
        Ctx::new(self.now(), self.config())
    }

    fn new_id(&self) -> impl FnMut() -> Result<i64, TxnError> + '_ {
        move || {
            self.0
                .producer_ids
                .next_id()
                .map_err(|e| TxnError::ProducerIdAllocation(e.to_string()))
        }
    }

    /// InitProducerId with a transactional id: the id's producer with its epoch bumped, once
    /// durable. An open transaction is aborted first (its producer fenced) and the answer is
    /// CONCURRENT_TRANSACTIONS until that is done. Blocking (a producer id block may be
    /// reserved).
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        markers: Arc<dyn MarkerWriter>,
    ) -> Waiter<Result<ProducerIdAndEpoch, TxnError>> {
        let max = self.config().max_timeout_ms;
        if timeout_ms <= 0 || i64::from(timeout_ms) > max {
            return Waiter::Ready(Err(TxnError::InvalidTransactionTimeout {
                timeout_ms,
                max_ms: max,
            }));
        }
        let rt = &self.0.runtime;
        let result = rt.with_entity(transactional_id, true, |target, e, _| {
            if e.has_pending() {
                return Waiter::Ready(Err(TxnError::ConcurrentTransactions));
            }
            let mut ctx = self.ctx();
            let mut new_id = self.new_id();
            let current = match e.metadata() {
                Some(m) => m.clone(),
                None => match new_id() {
                    Ok(id) => TxnMetadata::new(id, timeout_ms, ctx.now),
                    Err(err) => return Waiter::Ready(Err(err)),
                },
            };
            match current.init(timeout_ms, expected, ctx.now, &mut new_id) {
                Err(err) => Waiter::Ready(Err(err)),
                Ok(InitDecision::Bump(next)) => {
                    let answer = (next.producer_id, next.producer_epoch);
                    e.transit(next, &mut ctx);
                    let persisted = rt.persist(target, e, ctx);
                    rt.reply_when_committed(vec![persisted], Ok(answer), |err| Err(err.into()))
                }
                Ok(InitDecision::FenceAndAbort(next)) => {
                    tracing::info!(
                        transactional_id,
                        producer_id = next.producer_id,
                        epoch = next.producer_epoch,
                        "InitProducerId fences the open transaction and aborts it"
                    );
                    e.transit(next, &mut ctx);
                    e.set_completing(true);
                    let persisted = rt.persist(target, e, ctx);
                    drop(self.end_after_commit(transactional_id, persisted, markers.clone()));
                    Waiter::Ready(Err(TxnError::ConcurrentTransactions))
                }
            }
        });
        match result {
            Ok(Some(w)) => w,
            Ok(None) => Waiter::Ready(Err(TxnError::ConcurrentTransactions)),
            Err(e) => Waiter::Ready(Err(e.into())),
        }
    }

    /// AddPartitionsToTxn, AddOffsetsToTxn (the group's offsets partition) and the implicit add
    /// of a TV2 produce: answered once the Ongoing state naming them is durable.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        tv2: bool,
    ) -> Waiter<Result<(), TxnError>> {
        let rt = &self.0.runtime;
        let result = rt.with_entity(transactional_id, false, |target, e, _| {
            if e.has_pending() {
                return Waiter::Ready(Err(TxnError::ConcurrentTransactions));
            }
            let Some(meta) = e.metadata().cloned() else {
                return Waiter::Ready(Err(TxnError::InvalidProducerIdMapping));
            };
            let mut ctx = self.ctx();
            match meta.add_partitions(producer_id, epoch, partitions, tv2, ctx.now) {
                Err(err) => Waiter::Ready(Err(err)),
                Ok(None) => Waiter::Ready(Ok(())),
                Ok(Some(next)) => {
                    e.transit(next, &mut ctx);
                    let persisted = rt.persist(target, e, ctx);
                    rt.reply_when_committed(vec![persisted], Ok(()), |err| Err(err.into()))
                }
            }
        });
        match result {
            Ok(Some(w)) => w,
            Ok(None) => Waiter::Ready(Err(TxnError::InvalidProducerIdMapping)),
            Err(e) => Waiter::Ready(Err(e.into())),
        }
    }

    /// KIP-890 verification: whether `partition` is in the open transaction of this producer
    /// (AddPartitionsToTxn v4+ `verify_only`, and every transactional produce).
    pub fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), TxnError> {
        self.0
            .runtime
            .read(transactional_id, |e| {
                // Kafka's verification reads the committed state; pending transitions are
                // deliberately not checked.
                match e.metadata() {
                    Some(m) => m.verify_partition(producer_id, epoch, partition),
                    None => Err(TxnError::InvalidProducerIdMapping),
                }
            })
            .unwrap_or(Err(TxnError::InvalidProducerIdMapping))
    }

    /// EndTxn: the Prepare state, the markers, the Complete state, each durable; answered with
    /// the producer id and epoch the producer continues with (bumped under TV2). Blocking (TV2
    /// may rotate the producer id).
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        result: TxnResult,
        tv2: bool,
        markers: Arc<dyn MarkerWriter>,
    ) -> Waiter<Result<ProducerIdAndEpoch, TxnError>> {
        let rt = &self.0.runtime;
        let outcome = rt.with_entity(transactional_id, false, |target, e, _| {
            if e.has_pending() {
                return Waiter::Ready(Err(TxnError::ConcurrentTransactions));
            }
            let Some(meta) = e.metadata().cloned() else {
                return Waiter::Ready(Err(TxnError::InvalidProducerIdMapping));
            };
            let mut ctx = self.ctx();
            let mut new_id = self.new_id();
            match meta.end(producer_id, epoch, result, tv2, ctx.now, &mut new_id) {
                Err(err) => Waiter::Ready(Err(err)),
                Ok(EndDecision::Done(id, epoch)) => Waiter::Ready(Ok((id, epoch))),
                Ok(EndDecision::Prepare(next)) => {
                    e.transit(next, &mut ctx);
                    e.set_completing(true);
                    let persisted = rt.persist(target, e, ctx);
                    Waiter::Wait(self.end_after_commit(
                        transactional_id,
                        persisted,
                        markers.clone(),
                    ))
                }
            }
        });
        match outcome {
            Ok(Some(w)) => w,
            Ok(None) => Waiter::Ready(Err(TxnError::InvalidProducerIdMapping)),
            Err(e) => Waiter::Ready(Err(e.into())),
        }
    }

    /// Once the Prepare state in `persisted` is committed: the markers, then the Complete
    /// state. Runs in a tracked task whatever happens to the requester.
    fn end_after_commit(
        &self,
        transactional_id: &str,
        persisted: Persisted<TxnShard>,
        markers: Arc<dyn MarkerWriter>,
    ) -> oneshot::Receiver<Result<ProducerIdAndEpoch, TxnError>> {
        let committed = self
            .0
            .runtime
            .reply_when_committed(vec![persisted], Ok(()), Err);
        let (tx, rx) = oneshot::channel();
        let this = self.clone();
        let id = transactional_id.to_string();
        self.0.tasks.spawn(async move {
            let committed = match committed {
                Waiter::Ready(r) => r,
                Waiter::Wait(rx) => rx
                    .await
                    .unwrap_or(Err(crate::coordinator::CoordinatorError::Unloaded)),
            };
            let result = match committed {
                Ok(()) => this.complete(&id, markers).await,
                Err(e) => {
                    this.set_completing(&id, false);
                    Err(e.into())
                }
            };
            let _ = tx.send(result);
        });
        rx
    }

    fn set_completing(&self, id: &str, completing: bool) {
        let _ = self
            .0
            .runtime
            .with_entity(id, false, |_, e, _| e.set_completing(completing));
    }

    /// Writes the markers of the id's Prepare state and then its Complete state; answers with
    /// the producer id and epoch after completion.
    async fn complete(
        &self,
        id: &str,
        markers: Arc<dyn MarkerWriter>,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        let rt = &self.0.runtime;
        let prepared = rt
            .with_entity(id, false, |_, e, _| {
                let m = e.metadata()?.clone();
                m.marker_result().map(|r| (m, r))
            })?
            .flatten();
        let Some((prepared, result)) = prepared else {
            self.set_completing(id, false);
            return Err(TxnError::InvalidProducerIdMapping);
        };
        let marker = Marker {
            producer_id: prepared.producer_id,
            producer_epoch: prepared.producer_epoch,
            coordinator_epoch: COORDINATOR_EPOCH,
            result,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match markers.write_markers(&prepared.partitions, marker).await {
                Ok(()) => break,
                Err(e) if attempt < MARKER_ATTEMPTS => {
                    tracing::warn!(transactional_id = id, error = %e, "transaction markers failed; retrying");
                    tokio::time::sleep(MARKER_BACKOFF).await;
                }
                Err(e) => {
                    tracing::error!(transactional_id = id, error = %e, "transaction markers failed; the coordinator retries later");
                    self.set_completing(id, false);
                    return Err(crate::coordinator::CoordinatorError::Storage(e.to_string()).into());
                }
            }
        }
        let waiter = rt.with_entity(id, false, |target, e, _| {
            e.set_completing(false);
            if e.metadata() != Some(&prepared) || e.has_pending() {
                // Completed meanwhile (a second completion of the same Prepare state).
                let m = e.metadata().cloned();
                return Waiter::Ready(m.map_or(Err(TxnError::InvalidProducerIdMapping), |m| {
                    Ok((m.producer_id, m.producer_epoch))
                }));
            }
            let mut ctx = self.ctx();
            let Some(next) = prepared.complete(ctx.now) else {
                return Waiter::Ready(Err(TxnError::InvalidProducerIdMapping));
            };
            let answer = (next.producer_id, next.producer_epoch);
            e.transit(next, &mut ctx);
            let persisted = rt.persist(target, e, ctx);
            rt.reply_when_committed(vec![persisted], Ok(answer), |err| Err(err.into()))
        })?;
        match waiter {
            Some(Waiter::Ready(r)) => r,
            Some(Waiter::Wait(rx)) => rx
                .await
                .unwrap_or(Err(crate::coordinator::CoordinatorError::Unloaded.into())),
            None => Err(TxnError::InvalidProducerIdMapping),
        }
    }

    /// DescribeTransactions of one id.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, TxnError> {
        self.0
            .runtime
            .read(transactional_id, |e| e.metadata().cloned())
            .flatten()
            .ok_or(TxnError::TransactionalIdNotFound)
    }

    /// ListTransactions: every id matching the filters, by id.
    pub fn list(&self, filter: &ListFilter, now: i64) -> Vec<TxnListing> {
        let mut out: Vec<TxnListing> = self
            .0
            .runtime
            .entities()
            .into_iter()
            .filter_map(|entity| {
                let e = entity.lock();
                let m = e.metadata()?;
                // Kafka's filters: the duration is judged by the start time whatever the state
                // (so an Empty id, start -1, always passes).
                let keep = m.state != TxnState::Dead
                    && (filter.states.is_empty()
                        || filter.states.iter().any(|s| s == m.state.name()))
                    && (filter.producer_ids.is_empty()
                        || filter.producer_ids.contains(&m.producer_id))
                    && (filter.min_duration_ms < 0
                        || now.saturating_sub(m.start_ms) > filter.min_duration_ms)
                    && filter.pattern.as_ref().is_none_or(|p| p.is_match(e.id()));
                keep.then(|| TxnListing {
                    transactional_id: e.id().to_string(),
                    producer_id: m.producer_id,
                    state: m.state,
                })
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// The periodic work: aborts transactions past their timeout (every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`), completes Prepare states
    /// nobody is completing (after a restart or a failed marker write), and removes ids idle
    /// for `transactional.id.expiration.ms` (every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`).
    pub fn tick(&self, now: i64, markers: Arc<dyn MarkerWriter>) {
        let config = self.config().clone();
        let last = self.0.last_abort_scan.load(Ordering::Acquire);
        if last == i64::MIN || now.saturating_sub(last) >= config.abort_interval_ms {
            self.0.last_abort_scan.store(now, Ordering::Release);
            self.abort_timed_out(now, &markers);
        }
        let last = self.0.last_expiry_scan.load(Ordering::Acquire);
        if last == i64::MIN {
            self.0.last_expiry_scan.store(now, Ordering::Release);
        } else if now.saturating_sub(last) >= config.remove_interval_ms {
            self.0.last_expiry_scan.store(now, Ordering::Release);
            self.remove_expired(now);
        }
    }

    fn abort_timed_out(&self, now: i64, markers: &Arc<dyn MarkerWriter>) {
        let rt = &self.0.runtime;
        for id in rt.keys() {
            let _ = rt.with_entity(&id, false, |target, e: &mut TxnEntry, _| {
                if e.has_pending() || e.is_completing() {
                    return;
                }
                let Some(meta) = e.metadata().cloned() else {
                    return;
                };
                if meta.marker_result().is_some() {
                    // A Prepare state nobody completes: its markers are (re)written.
                    e.set_completing(true);
                    drop(self.end_after_commit(&id, Persisted::Nothing, markers.clone()));
                    return;
                }
                if let Some(next) = meta.abort_timed_out(now) {
                    tracing::info!(transactional_id = %id, producer_id = meta.producer_id, timeout_ms = meta.timeout_ms, "aborting a transaction past its timeout");
                    let mut ctx = self.ctx();
                    e.transit(next, &mut ctx);
                    e.set_completing(true);
                    let persisted = rt.persist(target, e, ctx);
                    drop(self.end_after_commit(&id, persisted, markers.clone()));
                }
            });
        }
    }

    fn remove_expired(&self, now: i64) {
        let rt = &self.0.runtime;
        let expiration = self.config().id_expiration_ms;
        for id in rt.keys() {
            let _ = rt.with_entity(&id, false, |target, e, _| {
                if e.has_pending() || e.is_completing() {
                    return;
                }
                if !e.metadata().is_some_and(|m| m.expired(now, expiration)) {
                    return;
                }
                tracing::info!(transactional_id = %id, "transactional id expired");
                let mut ctx = self.ctx();
                e.tombstone(&mut ctx);
                let persisted = rt.persist(target, e, ctx);
                rt.remove(target, &id, e);
                rt.finish(persisted);
            });
        }
    }

    /// Commits everything appended so far. Blocking.
    pub fn flush(&self) -> Result<(), crate::coordinator::CoordinatorError> {
        self.0.runtime.flush()
    }

    /// Snapshots the partitions that rolled a segment. Blocking.
    pub fn write_due_snapshots(&self) -> Result<(), crate::coordinator::CoordinatorError> {
        self.0.runtime.write_due_snapshots()
    }

    /// Answers every parked request (shutdown).
    pub fn unload(&self) {
        self.0.runtime.unload()
    }

    /// Snapshots, flushes and closes the log. Blocking.
    pub fn close(&self) -> Result<(), crate::coordinator::CoordinatorError> {
        self.0.runtime.close()
    }

    /// Every id's state, by id (tests, metrics).
    pub fn states(&self) -> std::collections::BTreeMap<String, TxnState> {
        self.0
            .runtime
            .entities()
            .into_iter()
            .filter_map(|entity| {
                let e = entity.lock();
                e.metadata().map(|m| (e.id().to_string(), m.state))
            })
            .collect()
    }
}
