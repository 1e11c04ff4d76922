//! Background work the broker tracks: periodic loops and one-off blocking jobs, all awaited at
//! shutdown.
//!
//! The blocking rule (see `lib.rs`): page-cache appends may run on an async worker, but every
//! fsync, rename and unlink runs on tokio's blocking pool. Components that are synchronous code
//! (the partition layer, the log) get a [`Background`] to hand such work to; the broker's is
//! [`Tasks`], which spawns it on the blocking pool and tracks it, and unit tests use [`Inline`].
//!
//! Every task started here is in one `TaskTracker`: `shutdown` signals the loops, then waits
//! (bounded) for every loop and job, so nothing writes to a log after it is closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// Somewhere to run blocking work (file I/O) off the caller's thread.
pub trait Background: Send + Sync + std::fmt::Debug {
    /// Runs `work` later, off the async workers; `what` names it in logs.
    fn spawn_blocking(&self, what: &'static str, work: Box<dyn FnOnce() + Send>);
}

/// Runs the work at once on the calling thread (unit tests, tools).
#[derive(Debug, Default, Clone, Copy)]
pub struct Inline;

impl Background for Inline {
    fn spawn_blocking(&self, _what: &'static str, work: Box<dyn FnOnce() + Send>) {
        work()
    }
}

/// The broker's tracked tasks and the shutdown signal they obey.
#[derive(Debug, Clone)]
pub struct Tasks {
    tracker: TaskTracker,
    runtime: Handle,
    shutdown: watch::Receiver<bool>,
}

impl Tasks {
    /// Tasks on the current runtime, stopped by `shutdown` turning true.
    pub fn new(shutdown: watch::Receiver<bool>) -> Tasks {
        Tasks {
            tracker: TaskTracker::new(),
            runtime: Handle::current(),
            shutdown,
        }
    }

    /// The shutdown signal, for loops that select on it themselves.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Spawns a tracked async task.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn_on(task, &self.runtime);
    }

    /// Runs `work` on a blocking thread every `period` (the first time one period after start)
    /// until shutdown: a slow round delays the next instead of piling rounds up.
    pub fn every_period_blocking<F>(&self, period: Duration, what: &'static str, work: F)
    where
        F: Fn() + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let mut shutdown = self.shutdown.clone();
        let this = self.clone();
        self.spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let w = work.clone();
                let job = this.tracker.spawn_blocking_on(move || w(), &this.runtime);
                if let Err(e) = job.await {
                    tracing::error!(error = %e, task = what, "periodic task failed");
                }
            }
        });
    }

    /// Stops accepting new work in the count and waits up to `limit` for every task; returns
    /// whether all finished.
    pub async fn wait(&self, limit: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }
}

impl Background for Tasks {
    fn spawn_blocking(&self, what: &'static str, work: Box<dyn FnOnce() + Send>) {
        let job = self.tracker.spawn_blocking_on(work, &self.runtime);
        self.spawn(async move {
            if let Err(e) = job.await {
                tracing::error!(error = %e, task = what, "background job failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loops_and_jobs_are_awaited_at_shutdown() {
        let (tx, rx) = watch::channel(false);
        let tasks = Tasks::new(rx);
        let rounds = Arc::new(AtomicUsize::new(0));
        let r = rounds.clone();
        tasks.every_period_blocking(Duration::from_millis(5), "count", move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        tasks.spawn_blocking(
            "job",
            Box::new(move || {
                std::thread::sleep(Duration::from_millis(50));
                d.fetch_add(1, Ordering::SeqCst);
            }),
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        tx.send(true).unwrap();
        assert!(tasks.wait(Duration::from_secs(5)).await);
        assert_eq!(done.load(Ordering::SeqCst), 1, "the job ran to its end");
        let after = rounds.load(Ordering::SeqCst);
        assert!(after >= 1);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(rounds.load(Ordering::SeqCst), after, "the loop stopped");
    }
}
