//! Deciding a round (complete, retry, fail), finalizing, cancelling, and the helpers
//! that keep the store, the sites and the watchers in step.

use std::time::Duration;

use silo_proto::coordinator_message::Body;
use silo_proto::{CancelTask, CoordinatorMessage};
use tokio::time::Instant;

use super::active::{ActiveJob, Phase, Verdict, verdict};
use super::{Scheduler, SchedulerError};
use crate::jobs::FinalizeContext;
use crate::store::{JobRecord, JobState, StoreError, TaskRecord, TaskState, blocking, now_rfc3339};

impl Scheduler {
    /// Applies the verdict of the job's current round.
    pub(super) async fn evaluate(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(job) = self.jobs.get(id) else {
            return Ok(());
        };
        let Phase::Round { slots, .. } = &job.phase else {
            return Ok(());
        };
        let round = job.current_round();
        let decided = verdict(slots.values().map(|s| &s.task), job.min_sites());
        match decided {
            Verdict::Wait => Ok(()),
            Verdict::AwaitAnswers => {
                // The round cannot succeed: stop the sites that accepted (before they
                // charge, if possible) but keep waiting for the others' answers.
                self.end_tasks(
                    id,
                    TaskState::Cancelled,
                    "the round cannot reach min_sites: other sites refused",
                    |t| matches!(t.state, TaskState::Accepted | TaskState::Running),
                )
                .await
            }
            Verdict::Complete => self.complete_round(id).await,
            Verdict::Refused(reason) => self.fail_job(id, format!("round {round}: {reason}")).await,
            Verdict::QuorumLost(reason) => self.attempt_failed(id, reason).await,
        }
    }

    /// The current attempt cannot reach its quorum: retry the round or fail the job.
    pub(super) async fn attempt_failed(
        &mut self,
        id: &str,
        reason: String,
    ) -> Result<(), StoreError> {
        self.end_tasks(
            id,
            TaskState::Excluded,
            "round abandoned: too few sites can finish",
            |_| true,
        )
        .await?;
        self.forget_slots(id);
        let max_attempts = 1 + self.settings.round_retries;
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let round = job.current_round();
        job.kind.abort_round(round);
        job.failed_attempts += 1;
        job.history
            .push(format!("attempt {}: {reason}", job.attempt.max(1)));
        if job.failed_attempts >= max_attempts {
            let reason = format!(
                "round {round} failed after {} attempt(s): {}",
                job.failed_attempts,
                job.history.join(" | ")
            );
            return self.fail_job(id, reason).await;
        }
        let timeout = Duration::from_secs(job.spec.round_timeout_seconds);
        job.note = Some(format!(
            "retrying round {round} (attempt {} of {max_attempts}) after: {reason}",
            job.failed_attempts + 1
        ));
        job.phase = Phase::Waiting {
            deadline: Some(Instant::now() + timeout),
        };
        job.record.reason = job.note.clone().unwrap_or_default();
        let mut record = job.record.clone();
        self.persist_job(&mut record).await?;
        self.set_record(id, record.clone());
        self.publish(&record, format!("round {round} will be retried"))
            .await?;
        self.try_start(id).await
    }

    /// The quorum finished the round: close it, then start the next or finalize.
    pub(super) async fn complete_round(&mut self, id: &str) -> Result<(), StoreError> {
        self.forget_slots(id);
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let round = job.current_round();
        if let Err(e) = job.kind.end_round(round) {
            return self.fail_job(id, format!("round {round}: {e}")).await;
        }
        job.record.completed_rounds = round;
        job.record.completed_attempts.push(job.attempt);
        job.record.reason.clear();
        job.note = None;
        job.failed_attempts = 0;
        job.history.clear();
        job.attempt = 0;
        let timeout = Duration::from_secs(job.spec.round_timeout_seconds);
        job.phase = Phase::Waiting {
            deadline: Some(Instant::now() + timeout),
        };
        let mut record = job.record.clone();
        self.persist_job(&mut record).await?;
        self.set_record(id, record.clone());
        if round >= record.rounds {
            return self.finalize(id).await;
        }
        self.publish(&record, format!("round {round} complete"))
            .await?;
        self.try_start(id).await
    }

    /// Builds and stores the job's result; the job succeeds.
    pub(super) async fn finalize(&mut self, id: &str) -> Result<(), StoreError> {
        let owned = id.to_string();
        let charges = blocking(&self.store, move |s| s.job_charges(&owned)).await?;
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let ctx = FinalizeContext {
            job_id: id,
            spec: &job.spec,
            charges: &charges,
        };
        // Finalizing can be seconds of linear algebra (pmi_svd's SVD): on a multi-threaded
        // runtime, let the other tasks (site streams, admin calls) run meanwhile.
        let mut finalize = || job.kind.finalize(&ctx);
        let result = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(finalize),
            _ => finalize(),
        };
        let output = match result {
            Ok(output) => output,
            Err(e) => return self.fail_job(id, format!("cannot finalize: {e}")).await,
        };
        let owned = id.to_string();
        let files = output.files;
        blocking(&self.store, move |s| {
            files
                .iter()
                .try_for_each(|(name, data)| s.write_result_file(&owned, name, data))
        })
        .await?;
        let Some(mut job) = self.jobs.remove(id) else {
            return Ok(());
        };
        job.record.state = JobState::Succeeded;
        job.record.reason.clear();
        job.record.summary_json = Some(output.summary.to_string());
        self.persist_job(&mut job.record).await?;
        self.publish(&job.record, "job succeeded".into()).await
    }

    /// Ends the job as failed, cancelling whatever is still running at sites.
    pub(super) async fn fail_job(&mut self, id: &str, reason: String) -> Result<(), StoreError> {
        self.end_tasks(id, TaskState::Cancelled, "job failed", |_| true)
            .await?;
        self.forget_slots(id);
        let Some(job) = self.jobs.remove(id) else {
            return Ok(());
        };
        tracing::info!("job {id} failed: {reason}");
        self.fail_record(job.record, reason).await
    }

    pub(super) async fn fail_record(
        &mut self,
        mut record: JobRecord,
        reason: String,
    ) -> Result<(), StoreError> {
        record.state = JobState::Failed;
        record.reason = reason;
        self.persist_job(&mut record).await?;
        self.publish(&record, "job failed".into()).await
    }

    pub(super) async fn cancel(&mut self, id: &str, by: &str) -> Result<JobRecord, SchedulerError> {
        let reason = format!("cancelled by {by}");
        if self.jobs.contains_key(id) {
            self.end_tasks(id, TaskState::Cancelled, &reason, |_| true)
                .await?;
            self.forget_slots(id);
        }
        let mut record = match self.jobs.remove(id) {
            Some(job) => job.record,
            None => {
                let owned = id.to_string();
                let record = blocking(&self.store, move |s| s.job(&owned))
                    .await?
                    .ok_or_else(|| SchedulerError::NotFound(id.to_string()))?;
                if record.state.is_terminal() {
                    return Err(SchedulerError::AlreadyEnded {
                        id: id.to_string(),
                        state: record.state.as_str(),
                    });
                }
                record
            }
        };
        record.state = JobState::Cancelled;
        record.reason = reason;
        self.persist_job(&mut record).await?;
        self.publish(&record, "job cancelled".into()).await?;
        Ok(record)
    }

    /// Moves the live tasks of the job's current round that match `which` to `state`,
    /// and tells their sites to stop (except when the site is gone: see
    /// [`end_tasks_of_gone_site`](Self::end_tasks_of_gone_site)).
    pub(super) async fn end_tasks(
        &mut self,
        id: &str,
        state: TaskState,
        reason: &str,
        which: impl Fn(&TaskRecord) -> bool,
    ) -> Result<(), StoreError> {
        self.end_tasks_notifying(id, state, reason, which, true)
            .await
    }

    /// [`end_tasks`](Self::end_tasks) for a site whose session dropped: no `CancelTask`
    /// can reach it.
    pub(super) async fn end_tasks_of_gone_site(
        &mut self,
        id: &str,
        reason: &str,
        which: impl Fn(&TaskRecord) -> bool,
    ) -> Result<(), StoreError> {
        self.end_tasks_notifying(id, TaskState::Failed, reason, which, false)
            .await
    }

    async fn end_tasks_notifying(
        &mut self,
        id: &str,
        state: TaskState,
        reason: &str,
        which: impl Fn(&TaskRecord) -> bool,
        notify: bool,
    ) -> Result<(), StoreError> {
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let Phase::Round { slots, .. } = &mut job.phase else {
            return Ok(());
        };
        let now = now_rfc3339();
        let mut changed = false;
        for slot in slots.values_mut() {
            if !slot.task.state.is_live() || !which(&slot.task) {
                continue;
            }
            if notify {
                let cancel = CoordinatorMessage {
                    body: Some(Body::Cancel(CancelTask {
                        task_id: slot.task.task_id.clone(),
                        reason: reason.to_string(),
                    })),
                };
                self.links.send(&slot.task.site, cancel);
            }
            slot.task.state = state;
            slot.task.reason = reason.to_string();
            slot.task.updated_at = now.clone();
            let stored = slot.task.clone();
            blocking(&self.store, move |s| s.update_task(&stored)).await?;
            changed = true;
        }
        if changed {
            let record = job.record.clone();
            self.publish(&record, String::new()).await?;
        }
        Ok(())
    }

    /// Drops the task index entries of the job's current round (its tasks are final).
    pub(super) fn forget_slots(&mut self, id: &str) {
        if let Some(ActiveJob {
            phase: Phase::Round { slots, .. },
            ..
        }) = self.jobs.get(id)
        {
            for slot in slots.values() {
                self.task_index.remove(&slot.task.task_id);
            }
        }
    }

    pub(super) fn set_record(&mut self, id: &str, record: JobRecord) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.record = record;
        }
    }

    pub(super) async fn persist_job(&self, record: &mut JobRecord) -> Result<(), StoreError> {
        record.updated_at = now_rfc3339();
        let stored = record.clone();
        blocking(&self.store, move |s| s.update_job(&stored)).await
    }
}
