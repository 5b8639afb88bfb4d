//! The job scheduler: one task that owns every unfinished job and moves it through its
//! lifecycle (DESIGN sections 3 and 9).
//!
//! ```text
//! queued ──(min_sites selected sites connected)──▶ running: round r, attempt a
//!   running ── every task done/refused/failed/excluded, ≥ min_sites done ──▶ next round
//!                                                                          or finalize ─▶ succeeded
//!   running ── fewer than min_sites can still finish:
//!                 refusals alone leave < min_sites ──(every site answered)──▶ failed (each refusal)
//!                 otherwise (drops, timeouts, failures) ─▶ retry round (new task ids, ≤ round_retries)
//!                                                         └─ retries used up ─▶ failed
//!   any ── CancelJob ──▶ cancelled (CancelTask to every live task)
//! ```
//!
//! A task that is not done when the round's `round_timeout_seconds` expire is excluded
//! (and cancelled at its site); the round closes with the sites that did finish if they
//! are at least `min_sites`. A dropped session fails its in-flight tasks at once
//! ("site disconnected").
//!
//! Everything the scheduler decides is written to the [`Store`] before it is announced:
//! a round result is stored before its task is marked done, and a job's state before the
//! `JobEvent` that reports it. After a restart, [`Scheduler::run`] reloads queued and
//! running jobs, replays their completed rounds into a fresh state machine and continues
//! the incomplete round: the results its latest attempt had already accepted (stored, task
//! `done`) are kept and replayed, and only the other sites get new tasks (new ids, same
//! attempt), so no site releases or is charged twice for what was acknowledged (DESIGN
//! section 6). The round completes once the kept and the new results meet `min_sites`.
//! Tasks that were in flight are failed; an attempt with no result kept starts over as a
//! new attempt.
//!
//! All events arrive on one channel ([`SchedulerHandle`]), so job state has a single
//! writer and needs no locks.

mod active;
mod decide;
mod events;
mod news;
mod resume;
mod start;

use std::collections::HashMap;
use std::sync::Arc;

use silo_proto::{CoordinatorMessage, JobEvent, TaskUpdate};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::store::{JobRecord, Store, StoreError};

use active::ActiveJob;
use events::SchedulerEvent;
pub use events::SchedulerHandle;

/// A connected site the scheduler may send tasks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvailableSite {
    /// Site name.
    pub name: String,
    /// Id of its current session (tasks sent on it fail when it drops).
    pub session: u64,
    /// Names of the datasets it serves.
    pub datasets: Vec<String>,
}

/// The scheduler's view of connected sites: implemented by the server's site registry,
/// and by fakes in tests.
pub trait SiteLinks: Send + Sync + 'static {
    /// Sites connected now.
    fn available(&self) -> Vec<AvailableSite>;
    /// Queues `message` on the site's session; the session id, or `None` when the site is
    /// not connected or not reading its stream.
    fn send(&self, site: &str, message: CoordinatorMessage) -> Option<u64>;
}

/// Why a scheduler request failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// No such job.
    #[error("job {0} not found")]
    NotFound(String),
    /// The job already ended.
    #[error("job {id} already {state}")]
    AlreadyEnded {
        /// Job id.
        id: String,
        /// Its final state.
        state: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheduler is not running (shutting down).
    #[error("the scheduler is shutting down")]
    Stopped,
}

/// Tunables that come from the coordinator config.
#[derive(Clone, Copy, Debug)]
pub struct SchedulerSettings {
    /// Extra attempts of a round that lost its quorum.
    pub round_retries: u32,
}

/// The scheduler task's state. Build with [`Scheduler::new`], run with [`Scheduler::run`].
pub struct Scheduler {
    store: Arc<dyn Store>,
    links: Arc<dyn SiteLinks>,
    events: broadcast::Sender<JobEvent>,
    settings: SchedulerSettings,
    rx: mpsc::Receiver<SchedulerEvent>,
    jobs: HashMap<String, ActiveJob>,
    /// task id → job id, for tasks of active jobs.
    task_index: HashMap<String, String>,
    /// Unfinished jobs were reloaded.
    resumed: bool,
}

impl Scheduler {
    /// A scheduler and the handle that feeds it. `events` receives a `JobEvent` whenever a
    /// job's status changes.
    pub fn new(
        store: Arc<dyn Store>,
        links: Arc<dyn SiteLinks>,
        events: broadcast::Sender<JobEvent>,
        settings: SchedulerSettings,
    ) -> (Scheduler, SchedulerHandle) {
        let (tx, rx) = mpsc::channel(1024);
        let scheduler = Scheduler {
            store,
            links,
            events,
            settings,
            rx,
            jobs: HashMap::new(),
            task_index: HashMap::new(),
            resumed: false,
        };
        (scheduler, SchedulerHandle::new(tx))
    }

    /// Reloads unfinished jobs, then handles events until `shutdown` turns true (or every
    /// handle is dropped). Job state is durable at every step, so stopping here loses
    /// nothing: the next start resumes.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if !self.resumed {
            self.resume_jobs().await;
        }
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = stop_requested(&mut shutdown) => break,
                event = self.rx.recv() => match event {
                    Some(event) => self.handle(event).await,
                    None => break,
                },
                _ = sleep_until(deadline) => {
                    if let Err(e) = self.on_deadlines().await {
                        tracing::error!("scheduler: {e}");
                    }
                }
            }
        }
        tracing::debug!("scheduler stopped");
    }

    /// Reloads queued and running jobs from the store and starts those that can start.
    /// [`run`](Self::run) does this first unless it was already done; calling it before
    /// the server accepts connections makes the resumed state visible from the first
    /// request.
    pub async fn resume_jobs(&mut self) {
        self.resumed = true;
        if let Err(e) = self.resume().await {
            tracing::error!("cannot reload unfinished jobs: {e}");
        }
    }

    async fn handle(&mut self, event: SchedulerEvent) {
        let result = match event {
            SchedulerEvent::JobSubmitted(id) => self.on_submitted(&id).await,
            SchedulerEvent::Cancel { job_id, by, reply } => {
                let outcome = self.cancel(&job_id, &by).await;
                let _ = reply.send(outcome);
                Ok(())
            }
            SchedulerEvent::SiteConnected(site) => self.on_site_connected(&site).await,
            SchedulerEvent::SiteDisconnected { site, session } => {
                self.on_site_disconnected(&site, session).await
            }
            SchedulerEvent::Update { site, update } => self.on_update(&site, update).await,
            SchedulerEvent::Result {
                site,
                task_id,
                data,
            } => self.on_result(&site, &task_id, data).await,
            SchedulerEvent::ResultRejected {
                site,
                task_id,
                reason,
            } => self.on_result_rejected(&site, &task_id, reason).await,
        };
        if let Err(e) = result {
            // The store failing is the one thing the scheduler cannot work around; the
            // job stays as last written and resumes after a restart.
            tracing::error!("scheduler: {e}");
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.jobs.values().filter_map(ActiveJob::deadline).min()
    }

    /// Publishes the job's current status to watchers.
    async fn publish(&self, job: &JobRecord, message: String) -> Result<(), StoreError> {
        let id = job.id.clone();
        let tasks = crate::store::blocking(&self.store, move |s| s.tasks(&id)).await?;
        let status = super::status::job_status(job, &tasks);
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(JobEvent {
            status: Some(status),
            message,
        });
        Ok(())
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Replies to a cancel request.
type CancelReply = oneshot::Sender<Result<JobRecord, SchedulerError>>;

/// Passes a task update on: states the scheduler understands.
fn parse_update_state(update: &TaskUpdate) -> Option<&'static str> {
    Some(match update.state.as_str() {
        "accepted" => "accepted",
        "running" => "running",
        "refused" => "refused",
        "failed" => "failed",
        "done" => "done",
        _ => return None,
    })
}
