//! Transactions (Kafka's transaction coordinator) and producer id allocation.
//!
//! - `state`: one transactional id's metadata and its transitions, pure functions of the request
//!   and the time (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort,
//!   PrepareEpochFence, Dead).
//! - `records`: how that metadata is stored in `__transaction_state-N`.
//! - `shard`: the coordinator runtime's shard: one [`shard::TxnEntry`] per transactional id,
//!   behind its key lock, with the transition that is being written.
//! - `coordinator`: the API the handlers call (InitProducerId, AddPartitionsToTxn,
//!   AddOffsetsToTxn, EndTxn, verification of transactional produce, Describe/ListTransactions),
//!   the marker writing that completes a transaction, the abort of timed-out transactions and
//!   the expiry of idle transactional ids.
//! - `markers`: where markers go ([`markers::MarkerWriter`]): data partitions and the group log.
//!
//! Per-partition producer state (open transactions, the last stable offset, the aborted
//! transaction index) lives with the partition (`crate::partition`).

pub mod coordinator;
pub mod markers;
pub mod producer_ids;
pub mod records;
pub mod shard;
pub mod state;

#[cfg(test)]
mod tests;

pub use coordinator::TxnCoordinator;
pub use markers::{MarkerError, MarkerWriter};
pub use producer_ids::ProducerIdManager;
pub use state::{TxnMetadata, TxnState};

use crate::coordinator::CoordinatorError;

/// The log of transaction state (Kafka's `Topic.TRANSACTION_STATE_TOPIC_NAME`).
pub const TXN_TOPIC: &str = "__transaction_state";

/// The transaction coordinator's settings (Kafka's `TransactionStateManagerConfig` and
/// `TransactionLogConfig`).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i64,
    /// `transactional.id.expiration.ms`: how long an idle transactional id is kept.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_interval_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of the log for a new data directory.
    pub num_partitions: i32,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: u64,
    /// `transaction.version`: the finalized level of the feature (0, 1 or 2).
    pub transaction_version: i16,
    /// `transaction.partition.verification.enable` (KIP-890 part 1).
    pub verification: bool,
}

impl Default for TxnConfig {
    /// Kafka's defaults.
    fn default() -> TxnConfig {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            abort_interval_ms: 10_000,
            remove_interval_ms: 3_600_000,
            num_partitions: 50,
            segment_bytes: 104_857_600,
            transaction_version: 2,
            verification: true,
        }
    }
}

/// Why a transactional request failed; mapped to Kafka codes (per request version) in
/// `handlers::error_codes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// A malformed request (an empty transactional id).
    #[error("{0}")]
    InvalidRequest(String),
    /// `transaction.timeout.ms` out of range.
    #[error(
        "transaction timeout {timeout_ms} ms is not in (0, {max_ms}] (transaction.max.timeout.ms)"
    )]
    InvalidTransactionTimeout {
        /// Asked for.
        timeout_ms: i32,
        /// `transaction.max.timeout.ms`.
        max_ms: i64,
    },
    /// Another operation on the id is in progress (a transaction ending): retry.
    #[error("a concurrent transaction operation is in progress")]
    ConcurrentTransactions,
    /// A newer producer with the same transactional id exists.
    #[error(
        "there is a newer producer with the same transactional id which fences the current one"
    )]
    ProducerFenced,
    /// The producer id is not the id's current one (or the id is unknown).
    #[error("the producer id does not match the transactional id's current producer")]
    InvalidProducerIdMapping,
    /// The request is not valid in the transaction's state.
    #[error("{0}")]
    InvalidTxnState(String),
    /// KIP-890 verification: the partition is not in the producer's ongoing transaction
    /// (TRANSACTION_ABORTABLE; older request versions answer INVALID_TXN_STATE).
    #[error("{0}")]
    NotInTransaction(String),
    /// DescribeTransactions of an unknown id.
    #[error("transactional id not found")]
    TransactionalIdNotFound,
    /// The transaction log could not be written (or the coordinator is shutting down).
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// A producer id could not be allocated.
    #[error("producer id allocation: {0}")]
    ProducerIdAllocation(String),
}
