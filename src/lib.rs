//! Rivulet: a Kafka-wire-compatible broker on a durable segmented file log.
//!
//! A request's path, one module per step:
//!
//! ```text
//! server        listeners, connection permits, tracked background tasks, shutdown
//!   connection    one per client, over any transport: frame -> decode -> dispatch, replies in
//!                 request order, latency per API (metrics); owns the session
//!     protocol      framing, header versions, request decoding, response encoding
//!     handlers      registry: the one API table (ApiVersions, decoding, dispatch derive from it)
//!                   context: request context, session, principal, the authorize() hook
//!                   one file per API family; error_codes maps every internal error to Kafka's
//!       broker        shared handle: config, clock, identity, registries, coordinators
//!       topics        the topic registry and typed topic configs (Kafka's LogConfig)
//!       log_dirs      the log directories: identity (meta.properties), which holds each
//!                     partition, placement of new ones, moves between them (AlterReplicaLogDirs)
//!       partition     one partition: append as leader/follower, reads up to HW/LSO, producer
//!                     state and the partition half of transactions (verification, markers,
//!                     aborted transactions), high watermark, leader epoch, truncation
//!         log           segments, indexes (transaction index too), control records, epoch cache,
//!                       recovery, group-commit fsync (std::fs only)
//!       coordinator   the coordinator runtime: shards over a log, key locks, commit via a
//!                     partition writer, replay, snapshots, timers
//!         group         the group coordinator shard: group types (classic), offset store
//!         txn           producer ids and the transaction coordinator shard, markers
//!       resource_configs  GROUP and CLIENT_METRICS config resources (validated, persisted)
//!       features      finalized feature levels (ApiVersions, UpdateFeatures)
//!       logging       live log levels (BROKER_LOGGER) over a tracing reload layer
//!   connection    <- replies written in request order (deferred ones awaited in place)
//!
//! background    (server, through tasks) retention, flushes, expiry, coordinator timers and
//!   cleaner       the log cleaner: which compacted partition, up to where (select), one round
//!                 (clean, txn, offset_map), I/O throttle; the log's side of it is log::cleaning
//! ```
//!
//! Rules every module keeps:
//! - The log is synchronous std::fs code with no tokio inside and no knowledge of requests;
//!   the handlers never touch sockets; only `handlers::error_codes` turns errors into codes.
//! - Blocking: page-cache appends (and reads) may run inline on an async worker; every fsync,
//!   rename and unlink runs off the async workers, on the blocking pool (a deferred reply, a
//!   `spawn_blocking`, or the broker's tracked `tasks`). Locks are never held across an fsync.
//! - Time comes from the broker's one `clock`, so tests drive it instead of sleeping.
//! - Every background task is tracked (`tasks`) and awaited at shutdown before logs close.
//! - No global lock on the hot path: per-partition and per-group locks, lock-free lookups.

pub mod broker;
pub mod cleaner;
pub mod clock;
pub mod config;
pub mod connection;
pub mod coordinator;
pub mod features;
pub mod group;
pub mod handlers;
pub mod log;
pub mod log_dirs;
pub mod logging;
pub mod metrics;
pub mod partition;
pub mod protocol;
pub mod resource_configs;
pub mod server;
pub mod tasks;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod topics;
pub mod txn;
