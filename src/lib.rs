//! Rivulet: a Kafka-wire-compatible broker on a durable segmented file log.
//!
//! A request's path, one module per step:
//!
//! ```text
//! server      accept loop, connection permits, shutdown fan-out
//!   connection  read frame (4-byte size) -> protocol::decode_request -> handlers::dispatch
//!     protocol    header by version, the one api/version table, response encoding
//!     handlers    one file per API family; error_codes maps every internal error to Kafka's
//!       broker      shared handle: config, identity (meta.properties), metadata
//!       metadata    topics and partitions, persisted atomically
//!       group       classic consumer groups (one lock each) and committed offsets, in a group log
//!       txn         producer ids, per-partition producer state (idempotence)
//!       log         segments, offset and time indexes, recovery, group-commit fsync
//!   connection  <- replies written in request order (deferred ones awaited in place)
//! ```
//!
//! The log is synchronous std::fs code with no tokio inside and no knowledge of requests; the
//! handlers never touch sockets.

pub mod broker;
pub mod config;
pub mod connection;
pub mod group;
pub mod handlers;
pub mod log;
pub mod metadata;
pub mod protocol;
pub mod server;
pub mod topic_config;
pub mod txn;
