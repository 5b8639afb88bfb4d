//! Owner of every task the server spawns (STYLE rule 12: no task without an owner).
//!
//! Session readers, watch and result streams and the scheduler all run in one
//! [`TaskGroup`]; they watch the shutdown signal themselves, and [`TaskGroup::shutdown`]
//! waits for them within the grace period, then aborts what is left.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinSet;

/// A set of spawned tasks that can be drained on shutdown.
pub struct TaskGroup {
    set: Mutex<Option<JoinSet<()>>>,
}

impl Default for TaskGroup {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl TaskGroup {
    /// A new, open group.
    pub fn new() -> Self {
        TaskGroup {
            set: Mutex::new(Some(JoinSet::new())),
        }
    }

    /// Spawns `task` in the group; returns false (and drops the task) once the group is
    /// shutting down.
    pub fn spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut guard = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let Some(set) = guard.as_mut() else {
            return false;
        };
        // Reap finished tasks so the set does not grow with every session ever served.
        while let Some(done) = set.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!("a coordinator task panicked: {e}");
            }
        }
        set.spawn(task);
        true
    }

    /// Closes the group and waits up to `grace` for its tasks, then aborts the rest.
    pub async fn shutdown(&self, grace: Duration) {
        let set = self.set.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut set) = set else {
            return;
        };
        let drained =
            tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                "{} task(s) still running after the {grace:?} grace period; aborting them",
                set.len()
            );
            set.shutdown().await;
        }
    }
}

/// Resolves once `shutdown` is true (or its sender is gone). A plain `()` future, so it
/// can sit in a `select!` of a task that must be `Send`.
pub async fn stop_requested(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
