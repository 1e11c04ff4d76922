//! The accept loop: a permit per connection (`max.connections`), one shutdown signal that
//! reaches every connection, and a clean close of every log once they have finished.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::broker::{Broker, StartupError};
use crate::config::Config;
use crate::connection;

/// How long shutdown waits for in-flight requests (a parked fetch waits at most its max_wait).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often group timers (sessions, rebalance and initial delays) are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The data directory could not be used.
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// A running broker: its bound address and the means to stop it.
pub struct ServerHandle {
    /// The address the listener is bound to (the real port when configured as 0).
    pub addr: SocketAddr,
    /// The broker state, for in-process tests.
    pub broker: Broker,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Stops accepting, lets connections finish their in-flight requests, closes every log.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds the listener, opens the data directory and starts accepting connections.
pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
    let listener =
        TcpListener::bind(config.listener)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listener,
                source,
            })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listener,
        source,
    })?;
    let port = addr.port();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config, port))
        .await
        .map_err(|e| {
            ServerError::Startup(StartupError::Refused {
                path: String::new(),
                reason: format!("startup task failed: {e}"),
            })
        })??;
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, broker.clone(), rx.clone()));
    tokio::spawn(flush_loop(broker.clone(), rx.clone()));
    tokio::spawn(producer_expiry_loop(broker.clone(), rx.clone()));
    tokio::spawn(retention_loop(broker.clone(), rx.clone()));
    tokio::spawn(group_tick_loop(broker.clone(), rx));
    tracing::info!(%addr, cluster_id = %broker.cluster_id, "rivulet is serving");
    Ok(ServerHandle {
        addr,
        broker,
        shutdown,
        task,
    })
}

/// Runs `work` on a blocking thread every `period` (the first time one period after start)
/// until shutdown: the periodic file work (fsyncs, unlinks) never runs on an async worker, and a
/// slow round delays the next instead of piling rounds up.
async fn every_period_blocking<F>(
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
    work: F,
) where
    F: Fn() + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let w = work.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || w()).await {
            tracing::error!(error = %e, task = what, "periodic task failed");
        }
    }
}

/// Fsyncs every partition periodically (`log.flush.offset.checkpoint.interval.ms`), so acks=1
/// data reaches the disk within a bounded time and the recovery point keeps moving, which bounds
/// what an unclean restart has to rescan.
async fn flush_loop(broker: Broker, shutdown: watch::Receiver<bool>) {
    let period = Duration::from_millis(broker.config.flush_checkpoint_interval_ms.max(1));
    every_period_blocking(period, shutdown, "flush", move || {
        for topic in broker.metadata.topics() {
            let partitions = topic.partitions.read().clone();
            for p in partitions {
                if let Err(e) = p.log.sync(p.log.log_end_offset()) {
                    tracing::error!(topic = %topic.name, partition = p.index, error = %e, "periodic flush failed");
                }
            }
        }
        if let Err(e) = broker.groups.flush() {
            tracing::error!(error = %e, "periodic flush of the group log failed");
        }
    })
    .await;
}

/// Deletes the segments of `delete`-policy topics that are past `retention.ms` or beyond
/// `retention.bytes`, every `log.retention.check.interval.ms`, as Kafka's log manager does.
async fn retention_loop(broker: Broker, shutdown: watch::Receiver<bool>) {
    let period = Duration::from_millis(broker.config.retention_check_interval_ms);
    every_period_blocking(period, shutdown, "retention", move || {
        let now = crate::broker::now_ms();
        for topic in broker.metadata.topics() {
            let setting = |key: &str| {
                topic
                    .config_value(&broker.config, key)
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .unwrap_or(-1)
            };
            let policy = topic
                .config_value(&broker.config, "cleanup.policy")
                .unwrap_or_default();
            if !policy.split(',').any(|c| c.trim() == "delete") {
                continue;
            }
            let (ms, bytes) = (setting("retention.ms"), setting("retention.bytes"));
            let partitions = topic.partitions.read().clone();
            for p in partitions {
                match p.log.apply_retention(now, ms, bytes) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %topic.name, partition = p.index, segments = n, "retention deleted segments")
                    }
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = p.index, error = %e, "retention failed")
                    }
                }
            }
        }
    })
    .await;
}

/// Drives the group coordinator's timers: session expiry, rebalance and sync timeouts, the
/// initial rebalance delay, and the periodic offset expiry.
async fn group_tick_loop(broker: Broker, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(GROUP_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        broker.groups.tick(crate::broker::now_ms());
        if broker.groups.snapshot_due() {
            // File I/O and an fsync: off the async workers. Ticks go on meanwhile.
            let groups = broker.groups.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = groups.write_snapshot() {
                    tracing::error!(error = %e, "group snapshot failed");
                }
            });
        }
    }
}

/// Forgets idempotent producers idle for `producer.id.expiration.ms`, checking every
/// `producer.id.expiration.check.interval.ms`, as Kafka does.
async fn producer_expiry_loop(broker: Broker, mut shutdown: watch::Receiver<bool>) {
    let period = Duration::from_millis(broker.config.producer_id_expiration_check_interval_ms);
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = crate::broker::now_ms();
        for topic in broker.metadata.topics() {
            for p in topic.partitions.read().iter() {
                let expired = p
                    .producers
                    .lock()
                    .expire(now, broker.config.producer_id_expiration_ms);
                if expired > 0 {
                    tracing::debug!(topic = %topic.name, partition = p.index, expired, "producer ids expired");
                }
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, broker: Broker, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(broker.config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((socket, _)) => {
                let broker = broker.clone();
                let rx = shutdown.clone();
                connections.spawn(async move {
                    connection::serve(socket, broker, rx).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // Parked JoinGroup/SyncGroup requests would otherwise hold their connections open for
    // up to a rebalance timeout: answer them NOT_COORDINATOR, as Kafka does on unload.
    broker.groups.unload();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still busy after {DRAIN_TIMEOUT:?}; closing logs anyway");
        connections.abort_all();
    }
    let metadata_close = tokio::task::spawn_blocking(move || {
        if let Err(e) = broker.groups.close() {
            tracing::error!(error = %e, "closing the group log failed");
        }
        broker.metadata.close()
    })
    .await;
    match metadata_close {
        Ok(Ok(())) => tracing::info!("logs flushed and closed"),
        Ok(Err(e)) => tracing::error!(error = %e, "closing logs failed"),
        Err(e) => tracing::error!(error = %e, "closing logs panicked"),
    }
}
