//! Transactions: producer id allocation today; the transaction coordinator (a second shard of
//! the coordinator runtime) joins it here. Per-partition producer state lives with the
//! partition (`crate::partition::producer_state`).

pub mod producer_ids;

pub use producer_ids::ProducerIdManager;
