//! What sites report: task updates, results, connects and disconnects; and deadlines.

use silo_proto::TaskUpdate;
use tokio::time::Instant;

use super::active::{ActiveJob, Phase, Slot};
use super::{Scheduler, parse_update_state};
use crate::store::{RoundResult, StoreError, TaskState, blocking, now_rfc3339};

impl Scheduler {
    /// The job a task belongs to, if the task is `site`'s task in a running round.
    pub(super) fn locate(&self, site: &str, task_id: &str) -> Option<String> {
        let job_id = self.task_index.get(task_id)?;
        let job = self.jobs.get(job_id)?;
        let Phase::Round { slots, .. } = &job.phase else {
            return None;
        };
        match slots.get(site) {
            Some(slot) if slot.task.task_id == task_id => Some(job_id.clone()),
            _ => {
                tracing::warn!(
                    "site {site} reported on task {task_id}, which is not its task in a running round"
                );
                None
            }
        }
    }

    pub(super) async fn on_update(
        &mut self,
        site: &str,
        update: TaskUpdate,
    ) -> Result<(), StoreError> {
        let Some(state) = parse_update_state(&update) else {
            tracing::warn!(
                "site {site} sent unknown task state {:?} for {}",
                update.state,
                update.task_id
            );
            return Ok(());
        };
        let Some(job_id) = self.locate(site, &update.task_id) else {
            return Ok(());
        };
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Ok(());
        };
        let round = job.current_round();
        let ActiveJob { phase, kind, .. } = &mut *job;
        let Phase::Round { slots, .. } = phase else {
            return Ok(());
        };
        let Some(slot) = slots.get_mut(site) else {
            return Ok(());
        };
        if !slot.task.state.is_live() {
            return Ok(()); // late news about a task already excluded or failed
        }
        let reason = || {
            let r = update.reason.trim();
            if r.is_empty() {
                format!("{} without a reason", update.state)
            } else {
                r.to_string()
            }
        };
        match state {
            "accepted" => slot.task.state = TaskState::Accepted,
            "running" => {
                slot.task.state = TaskState::Running;
                if update.progress.is_finite() {
                    slot.task.progress = update.progress.clamp(0.0, 1.0);
                }
            }
            "refused" => {
                slot.task.state = TaskState::Refused;
                slot.task.reason = reason();
            }
            "failed" => {
                slot.task.state = TaskState::Failed;
                slot.task.reason = reason();
            }
            _ => {
                slot.done_reported = true;
                slot.expected_bytes = update.result_bytes;
                if slot.result.is_none() {
                    return Ok(()); // the result's chunks are still on their way
                }
                complete_slot(slot, kind.as_mut(), round, site);
            }
        }
        slot.task.updated_at = now_rfc3339();
        let stored = slot.task.clone();
        blocking(&self.store, move |s| s.update_task(&stored)).await?;
        let record = job.record.clone();
        self.publish(&record, String::new()).await?;
        self.evaluate(&job_id).await
    }

    pub(super) async fn on_result(
        &mut self,
        site: &str,
        task_id: &str,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        let Some(job_id) = self.locate(site, task_id) else {
            return Ok(());
        };
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Ok(());
        };
        let round = job.current_round();
        let ActiveJob { phase, kind, .. } = &mut *job;
        let Phase::Round { slots, .. } = phase else {
            return Ok(());
        };
        let Some(slot) = slots.get_mut(site) else {
            return Ok(());
        };
        if !slot.task.state.is_live() {
            return Ok(());
        }
        // Stored before anything depends on it.
        let result = RoundResult {
            job_id: job_id.clone(),
            round,
            attempt: slot.task.attempt,
            site: site.to_string(),
            task_id: task_id.to_string(),
            data,
        };
        let data = blocking(&self.store, move |s| {
            s.save_round_result(&result)?;
            Ok(result.data)
        })
        .await?;
        slot.result = Some(data);
        if !slot.done_reported {
            return Ok(()); // `done` (with the charges) is still on its way
        }
        complete_slot(slot, kind.as_mut(), round, site);
        slot.task.updated_at = now_rfc3339();
        let stored = slot.task.clone();
        blocking(&self.store, move |s| s.update_task(&stored)).await?;
        let record = job.record.clone();
        self.publish(&record, String::new()).await?;
        self.evaluate(&job_id).await
    }

    pub(super) async fn on_result_rejected(
        &mut self,
        site: &str,
        task_id: &str,
        reason: String,
    ) -> Result<(), StoreError> {
        let Some(job_id) = self.locate(site, task_id) else {
            return Ok(());
        };
        self.end_tasks(&job_id, TaskState::Failed, &reason, |t| {
            t.task_id == task_id
        })
        .await?;
        self.evaluate(&job_id).await
    }

    pub(super) async fn on_site_connected(&mut self, _site: &str) -> Result<(), StoreError> {
        let waiting: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| matches!(j.phase, Phase::Waiting { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            self.try_start(&id).await?;
        }
        Ok(())
    }

    pub(super) async fn on_site_disconnected(
        &mut self,
        site: &str,
        session: u64,
    ) -> Result<(), StoreError> {
        let affected: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| match &j.phase {
                Phase::Round { slots, .. } => slots
                    .get(site)
                    .is_some_and(|s| s.session == session && s.task.state.is_live()),
                Phase::Waiting { .. } => false,
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in affected {
            self.end_tasks_of_gone_site(&id, "site disconnected", |t| t.site == site)
                .await?;
            self.evaluate(&id).await?;
        }
        Ok(())
    }

    pub(super) async fn on_deadlines(&mut self) -> Result<(), StoreError> {
        let now = Instant::now();
        let due: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(job) = self.jobs.get(&id) else {
                continue;
            };
            let timeout = job.spec.round_timeout_seconds;
            let min_sites = job.spec.min_sites;
            if matches!(job.phase, Phase::Round { .. }) {
                let reason = format!("no result within round_timeout_seconds = {timeout}");
                self.end_tasks(&id, TaskState::Excluded, &reason, |_| true)
                    .await?;
                // Nothing is live any more: the verdict is final.
                self.evaluate(&id).await?;
            } else {
                let reason = format!(
                    "fewer than min_sites {min_sites} eligible sites connected within {timeout} s"
                );
                self.attempt_failed(&id, reason).await?;
            }
        }
        Ok(())
    }
}

/// The site said `done` and its result is stored: check and absorb it.
fn complete_slot(slot: &mut Slot, kind: &mut dyn crate::jobs::JobKind, round: u32, site: &str) {
    let Some(data) = slot.result.take() else {
        return;
    };
    if slot.expected_bytes != 0 && slot.expected_bytes != data.len() as u64 {
        slot.task.state = TaskState::Failed;
        slot.task.reason = format!(
            "result has {} bytes but the site announced {}",
            data.len(),
            slot.expected_bytes
        );
        return;
    }
    match kind.on_result(round, site, &data) {
        Ok(()) => {
            slot.task.state = TaskState::Done;
            slot.task.progress = 1.0;
            slot.task.reason.clear();
        }
        Err(e) => {
            slot.task.state = TaskState::Failed;
            slot.task.reason = e.to_string();
        }
    }
}
