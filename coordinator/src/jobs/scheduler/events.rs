//! What the scheduler reacts to, and the handle the server uses to tell it.

use silo_proto::TaskUpdate;
use tokio::sync::{mpsc, oneshot};

use super::{CancelReply, SchedulerError};
use crate::store::JobRecord;

/// One thing that happened.
#[derive(Debug)]
pub(super) enum SchedulerEvent {
    /// A job was stored as queued.
    JobSubmitted(String),
    /// An admin asks to cancel a job.
    Cancel {
        job_id: String,
        by: String,
        reply: CancelReply,
    },
    /// A site opened a session.
    SiteConnected(String),
    /// A site's session ended.
    SiteDisconnected { site: String, session: u64 },
    /// A site reported progress or an outcome (its charges are already stored).
    Update { site: String, update: TaskUpdate },
    /// A site's result, reassembled from its chunks.
    Result {
        site: String,
        task_id: String,
        data: Vec<u8>,
    },
    /// A site's result was refused while reassembling (too large, out of order).
    ResultRejected {
        site: String,
        task_id: String,
        reason: String,
    },
}

/// Sends events to the scheduler task; cheap to clone.
#[derive(Clone, Debug)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<SchedulerEvent>,
}

impl SchedulerHandle {
    pub(super) fn new(tx: mpsc::Sender<SchedulerEvent>) -> Self {
        SchedulerHandle { tx }
    }

    async fn send(&self, event: SchedulerEvent) {
        if self.tx.send(event).await.is_err() {
            tracing::debug!("scheduler stopped; event dropped");
        }
    }

    /// A job was stored as queued: try to start it.
    pub async fn job_submitted(&self, job_id: String) {
        self.send(SchedulerEvent::JobSubmitted(job_id)).await
    }

    /// Cancels a job on behalf of `by`; returns the job as stored after cancelling.
    pub async fn cancel(&self, job_id: String, by: String) -> Result<JobRecord, SchedulerError> {
        let (reply, rx) = oneshot::channel();
        self.send(SchedulerEvent::Cancel { job_id, by, reply })
            .await;
        rx.await.map_err(|_| SchedulerError::Stopped)?
    }

    /// A site opened a session.
    pub async fn site_connected(&self, site: String) {
        self.send(SchedulerEvent::SiteConnected(site)).await
    }

    /// A site's session `session` ended.
    pub async fn site_disconnected(&self, site: String, session: u64) {
        self.send(SchedulerEvent::SiteDisconnected { site, session })
            .await
    }

    /// A task update from `site`.
    pub async fn task_update(&self, site: String, update: TaskUpdate) {
        self.send(SchedulerEvent::Update { site, update }).await
    }

    /// A complete result from `site`.
    pub async fn task_result(&self, site: String, task_id: String, data: Vec<u8>) {
        self.send(SchedulerEvent::Result {
            site,
            task_id,
            data,
        })
        .await
    }

    /// A result of `site` that was refused while reassembling.
    pub async fn result_rejected(&self, site: String, task_id: String, reason: String) {
        self.send(SchedulerEvent::ResultRejected {
            site,
            task_id,
            reason,
        })
        .await
    }
}
