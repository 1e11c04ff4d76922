//! Producers: id allocation and the per-partition state that makes idempotent produce
//! exactly-once (transactions will join them here).

pub mod producer_ids;
pub mod producer_state;

pub use producer_ids::ProducerIdManager;
pub use producer_state::{ProducerBatch, ProducerError, ProducerStateManager, Verdict};
