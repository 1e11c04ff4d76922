//! The server: one bound socket per listener, a permit per connection (`max.connections`), one
//! shutdown signal that reaches every connection and background task, and a clean close of
//! every log once they have all finished.
//!
//! Background work runs through the broker's tracked [`Tasks`]: the periodic flush, retention,
//! producer expiry and group timers, and one-off blocking jobs (producer snapshots). Shutdown
//! stops accepting, answers parked group requests, drains connections, waits for every tracked
//! task, then closes the group log and every partition, all bounded by [`DRAIN_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select_all;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::broker::{Broker, StartupError};
use crate::clock::{self, SharedClock};
use crate::config::Config;
use crate::connection;
use crate::handlers::context::{AllowAll, Authorizer, Listener};
use crate::tasks::Tasks;

/// How long shutdown waits for in-flight requests (a parked fetch waits at most its max_wait),
/// and then for background tasks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often group timers (sessions, rebalance and initial delays) are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener address could not be bound.
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

/// What a broker is started with besides its configuration (tests inject a manual clock or an
/// authorizer here).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The clock every component uses.
    pub clock: SharedClock,
    /// The authorizer every ACL check asks.
    pub authorizer: Arc<dyn Authorizer>,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            clock: clock::system(),
            authorizer: Arc::new(AllowAll),
        }
    }
}

/// A running broker: its bound addresses and the means to stop it.
pub struct ServerHandle {
    /// The address the first listener is bound to (the real port when configured as 0).
    pub addr: SocketAddr,
    /// The broker state, for in-process tests.
    pub broker: Broker,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Every listener, bound.
    pub fn listeners(&self) -> &[Arc<Listener>] {
        &self.broker.listeners
    }

    /// Stops accepting, lets connections finish their in-flight requests, waits for background
    /// tasks, closes every log.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds the listeners, opens the data directory and starts accepting connections.
pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
    start_with(config, ServerOptions::default()).await
}

/// [`start`] with an injected clock and authorizer.
pub async fn start_with(
    config: Config,
    options: ServerOptions,
) -> Result<ServerHandle, ServerError> {
    let mut sockets = Vec::with_capacity(config.listeners.len());
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let bind_error = |source| ServerError::Bind {
            addr: l.bind,
            source,
        };
        let socket = TcpListener::bind(l.bind).await.map_err(bind_error)?;
        let bound = socket.local_addr().map_err(bind_error)?;
        listeners.push(Arc::new(Listener::bound(l, bound)));
        sockets.push(socket);
    }
    let addr = listeners[0].bound;
    let (shutdown, rx) = watch::channel(false);
    let tasks = Tasks::new(rx.clone());
    let opened = {
        let (listeners, tasks) = (listeners.clone(), tasks.clone());
        tokio::task::spawn_blocking(move || {
            Broker::open(config, listeners, options.clock, options.authorizer, tasks)
        })
        .await
    };
    let broker = opened.map_err(|e| {
        ServerError::Startup(StartupError::Io {
            path: String::new(),
            source: std::io::Error::other(format!("startup task failed: {e}")),
        })
    })??;
    start_background(&broker);
    let task = tokio::spawn(accept_loop(
        sockets.into_iter().zip(listeners).collect(),
        broker.clone(),
        rx,
    ));
    tracing::info!(%addr, cluster_id = %broker.cluster_id, "rivulet is serving");
    Ok(ServerHandle {
        addr,
        broker,
        shutdown,
        task,
    })
}

/// Starts the periodic background loops, each tracked by the broker's tasks.
fn start_background(broker: &Broker) {
    let tasks = &broker.tasks;
    // Every partition fsynced periodically (`log.flush.offset.checkpoint.interval.ms`), so
    // acks=1 data reaches the disk within a bounded time and the recovery point keeps moving,
    // which bounds what an unclean restart has to rescan.
    let b = broker.clone();
    tasks.every_period_blocking(
        Duration::from_millis(broker.config.flush_checkpoint_interval_ms.max(1)),
        "flush",
        move || {
            for p in b.topics.all_partitions() {
                if let Err(e) = p.flush() {
                    tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "periodic flush failed");
                }
            }
            if let Err(e) = b.groups.flush() {
                tracing::error!(error = %e, "periodic flush of the group log failed");
            }
            if let Err(e) = b.txn.flush() {
                tracing::error!(error = %e, "periodic flush of the transaction log failed");
            }
        },
    );
    // Segments of `delete`-policy topics past `retention.ms` or beyond `retention.bytes`, every
    // `log.retention.check.interval.ms`, as Kafka's log manager does.
    let b = broker.clone();
    tasks.every_period_blocking(
        Duration::from_millis(broker.config.retention_check_interval_ms),
        "retention",
        move || {
            let now = b.now_ms();
            for p in b.topics.all_partitions() {
                match p.apply_retention(now) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %p.topic(), partition = p.index(), segments = n, "retention deleted segments")
                    }
                    Err(e) => {
                        tracing::error!(topic = %p.topic(), partition = p.index(), error = %e, "retention failed")
                    }
                }
            }
        },
    );
    // Compaction: `log.cleaner.threads` loops, each cleaning the filthiest compacted partition
    // round after round and resting `log.cleaner.backoff.ms` once none needs it.
    if broker.config.cleaner.enable {
        for _ in 0..broker.config.cleaner.threads {
            let b = broker.clone();
            let shutdown = broker.tasks.shutdown_signal();
            tasks.every_period_blocking(
                Duration::from_millis(broker.config.cleaner.backoff_ms.max(1)),
                "log cleaner",
                move || {
                    let stop = || *shutdown.borrow();
                    while !stop() {
                        let partitions = b.topics.all_partitions();
                        if b.cleaner
                            .clean_filthiest(&partitions, b.now_ms(), &stop)
                            .is_none()
                        {
                            break;
                        }
                    }
                },
            );
        }
    }
    // Idempotent producers idle for `producer.id.expiration.ms`, checked every
    // `producer.id.expiration.check.interval.ms`, as Kafka does.
    let b = broker.clone();
    tasks.every_period_blocking(
        Duration::from_millis(broker.config.producer_id_expiration_check_interval_ms),
        "producer expiry",
        move || {
            let now = b.now_ms();
            for p in b.topics.all_partitions() {
                let expired = p.expire_producers(now);
                if expired > 0 {
                    tracing::debug!(topic = %p.topic(), partition = p.index(), expired, "producer ids expired");
                }
            }
        },
    );
    // The group coordinator's timers: session expiry, rebalance and sync timeouts, the initial
    // rebalance delay, the periodic offset expiry; and its snapshot after a roll.
    let b = broker.clone();
    tasks.every_period_blocking(GROUP_TICK, "group timers", move || {
        b.groups.tick(b.now_ms());
        if let Err(e) = b.groups.write_due_snapshots() {
            tracing::error!(error = %e, "group snapshot failed");
        }
    });
    // The transaction coordinator's timers: the abort of transactions past their timeout and
    // the completion of Prepare states left by a restart (rate-limited inside to
    // `transaction.abort.timed.out.transaction.cleanup.interval.ms`), the expiry of idle
    // transactional ids; and its snapshot after a roll.
    let b = broker.clone();
    tasks.every_period_blocking(GROUP_TICK, "transaction timers", move || {
        b.txn.tick(b.now_ms(), b.markers());
        if let Err(e) = b.txn.write_due_snapshots() {
            tracing::error!(error = %e, "transaction snapshot failed");
        }
    });
}

async fn accept_loop(
    sockets: Vec<(TcpListener, Arc<Listener>)>,
    broker: Broker,
    mut shutdown: watch::Receiver<bool>,
) {
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
        let accepts = sockets
            .iter()
            .map(|(socket, listener)| Box::pin(async move { (socket.accept().await, listener) }));
        let (accepted, listener) = tokio::select! {
            (a, _, _) = select_all(accepts) => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                let (broker, rx, listener) = (broker.clone(), shutdown.clone(), listener.clone());
                connections.spawn(async move {
                    connection::serve(socket, Some(peer), listener, broker, rx).await;
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
    drop(sockets);
    // Parked JoinGroup/SyncGroup requests would otherwise hold their connections open for
    // up to a rebalance timeout: answer them NOT_COORDINATOR, as Kafka does on unload.
    broker.groups.unload();
    broker.txn.unload();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still busy after {DRAIN_TIMEOUT:?}; closing logs anyway");
        connections.abort_all();
    }
    if !broker.tasks.wait(DRAIN_TIMEOUT).await {
        tracing::warn!("background tasks still busy after {DRAIN_TIMEOUT:?}; closing logs anyway");
    }
    for api in broker.metrics.summary() {
        tracing::debug!(
            api_key = api.api_key,
            count = api.count,
            mean_us = api.mean_us,
            p99_us = api.p99_us,
            max_us = api.max_us,
            "request latency"
        );
    }
    let closing = broker.clone();
    let closed = tokio::task::spawn_blocking(move || {
        if let Err(e) = closing.groups.close() {
            tracing::error!(error = %e, "closing the group log failed");
        }
        if let Err(e) = closing.txn.close() {
            tracing::error!(error = %e, "closing the transaction log failed");
        }
        closing.topics.close()
    })
    .await;
    match closed {
        Ok(Ok(())) => tracing::info!("logs flushed and closed"),
        Ok(Err(e)) => tracing::error!(error = %e, "closing logs failed"),
        Err(e) => tracing::error!(error = %e, "closing logs panicked"),
    }
}
