//! The scheduler's transitions: start, round bookkeeping, retry, finalize, fail, cancel.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use silo_common::spec::JobSpec;
use silo_proto::coordinator_message::Body;
use silo_proto::{CancelTask, CoordinatorMessage, Task, TaskUpdate};
use tokio::time::Instant;

use super::active::{ActiveJob, Phase, Slot, Verdict, verdict};
use super::{AvailableSite, Scheduler, SchedulerError, parse_update_state};
use crate::jobs::{FinalizeContext, job_kind};
use crate::store::{
    JobRecord, JobState, RoundResult, StoreError, TaskRecord, TaskState, blocking, now_rfc3339,
};

impl Scheduler {
    // --- loading ---------------------------------------------------------------------

    /// Reloads every queued or running job after a (re)start and tries to start them.
    pub(super) async fn resume(&mut self) -> Result<(), StoreError> {
        let jobs = blocking(&self.store, |s| s.jobs()).await?;
        for record in jobs.into_iter().filter(|j| !j.state.is_terminal()) {
            let id = record.id.clone();
            if let Err(e) = self.load_job(record).await {
                tracing::error!("cannot resume job {id}: {e}");
            }
        }
        let ids: Vec<String> = self.jobs.keys().cloned().collect();
        for id in ids {
            self.try_start(&id).await?;
        }
        Ok(())
    }

    pub(super) async fn on_submitted(&mut self, id: &str) -> Result<(), StoreError> {
        if self.jobs.contains_key(id) {
            return Ok(());
        }
        let owned = id.to_string();
        let Some(record) = blocking(&self.store, move |s| s.job(&owned)).await? else {
            return Ok(());
        };
        if record.state.is_terminal() {
            return Ok(());
        }
        self.load_job(record).await?;
        self.try_start(id).await
    }

    /// Rebuilds a job's state machine: tasks the previous run left in flight are failed
    /// (their results can no longer be matched to a live round), completed rounds are
    /// replayed from their stored results.
    async fn load_job(&mut self, mut record: JobRecord) -> Result<(), StoreError> {
        let origin = format!("job {}", record.id);
        let spec = match JobSpec::from_json(record.spec_json.as_bytes(), &origin) {
            Ok(spec) => spec,
            Err(e) => {
                return self
                    .fail_record(record, format!("stored spec is no longer valid: {e}"))
                    .await;
            }
        };
        let mut kind = match job_kind(&spec) {
            Ok(kind) => kind,
            Err(e) => return self.fail_record(record, e.to_string()).await,
        };
        let id = record.id.clone();
        let tasks = blocking(&self.store, move |s| s.tasks(&id)).await?;
        let now = now_rfc3339();
        for task in tasks.iter().filter(|t| t.state.is_live()) {
            let mut task = task.clone();
            task.state = TaskState::Failed;
            task.reason = "coordinator restarted; the round is planned again with new tasks".into();
            task.updated_at = now.clone();
            blocking(&self.store, move |s| s.update_task(&task)).await?;
        }
        for round in 1..=record.completed_rounds {
            let attempt = record
                .completed_attempts
                .get(round as usize - 1)
                .copied()
                .unwrap_or(1);
            let done: HashSet<String> = tasks
                .iter()
                .filter(|t| t.round == round && t.attempt == attempt && t.state == TaskState::Done)
                .map(|t| t.site.clone())
                .collect();
            let id = record.id.clone();
            let results =
                blocking(&self.store, move |s| s.round_results(&id, round, attempt)).await?;
            let replayed = results
                .iter()
                .filter(|r| done.contains(&r.site))
                .try_for_each(|r| kind.on_result(round, &r.site, &r.data))
                .and_then(|()| kind.end_round(round));
            if let Err(e) = replayed {
                return self
                    .fail_record(
                        record,
                        format!("cannot replay round {round} after a restart: {e}"),
                    )
                    .await;
            }
        }
        let round = record.completed_rounds + 1;
        let attempt = tasks
            .iter()
            .filter(|t| t.round == round)
            .map(|t| t.attempt)
            .max()
            .unwrap_or(0);
        let note = (record.state == JobState::Running)
            .then(|| format!("resuming round {round} after a coordinator restart"));
        if let Some(note) = &note {
            record.reason = note.clone();
            record.round = round;
            self.persist_job(&mut record).await?;
        }
        let job = ActiveJob {
            record,
            spec,
            kind,
            attempt,
            failed_attempts: 0,
            history: Vec::new(),
            note,
            phase: Phase::Waiting { deadline: None },
        };
        self.jobs.insert(job.record.id.clone(), job);
        Ok(())
    }

    // --- starting a round ---------------------------------------------------------------

    /// Starts the job's next attempt if enough eligible sites are connected.
    ///
    /// Boxed: starting a round can close it at once (every send failed), which can start
    /// the next attempt again.
    fn try_start<'a>(
        &'a mut self,
        id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
        Box::pin(self.try_start_inner(id))
    }

    async fn try_start_inner(&mut self, id: &str) -> Result<(), StoreError> {
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        if !matches!(job.phase, Phase::Waiting { .. }) {
            return Ok(());
        }
        if job.record.completed_rounds >= job.kind.rounds() {
            return self.finalize(id).await;
        }
        let eligible: Vec<AvailableSite> = self
            .links
            .available()
            .into_iter()
            .filter(|s| job.spec.sites.includes(&s.name) && s.datasets.contains(&job.spec.dataset))
            .collect();
        if eligible.len() >= job.min_sites() {
            return self.start_attempt(id, eligible).await;
        }
        let names: Vec<&str> = eligible.iter().map(|s| s.name.as_str()).collect();
        let waiting = format!(
            "waiting for sites: {} of min_sites {} connected with dataset {:?}{}",
            eligible.len(),
            job.spec.min_sites,
            job.spec.dataset,
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            }
        );
        let reason = match &job.note {
            Some(note) => format!("{note}; {waiting}"),
            None => waiting,
        };
        if reason != job.record.reason {
            job.record.reason = reason;
            let mut record = job.record.clone();
            self.persist_job(&mut record).await?;
            self.set_record(id, record.clone());
            self.publish(&record, String::new()).await?;
        }
        Ok(())
    }

    /// Sends a new task (new id: a new release) to every eligible site.
    async fn start_attempt(
        &mut self,
        id: &str,
        sites: Vec<AvailableSite>,
    ) -> Result<(), StoreError> {
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let round = job.current_round();
        let plan = match job.kind.plan_round(round) {
            Ok(plan) => plan,
            Err(e) => {
                return self
                    .fail_job(id, format!("cannot plan round {round}: {e}"))
                    .await;
            }
        };
        job.attempt += 1;
        let attempt = job.attempt;
        let spec_json = job.spec.to_json();
        let now = now_rfc3339();
        let mut slots = BTreeMap::new();
        for site in &sites {
            let task = TaskRecord {
                task_id: format!("{id}-r{round}a{attempt}-{}", site.name),
                job_id: id.to_string(),
                site: site.name.clone(),
                round,
                attempt,
                state: TaskState::Sent,
                reason: String::new(),
                progress: 0.0,
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            // Durable before it leaves: whatever comes back can be matched to it.
            let stored = task.clone();
            blocking(&self.store, move |s| s.insert_task(&stored)).await?;
            let message = CoordinatorMessage {
                body: Some(Body::Task(Task {
                    job_id: id.to_string(),
                    task_id: task.task_id.clone(),
                    kind: job.spec.kind.as_str().to_string(),
                    round,
                    dataset: job.spec.dataset.clone(),
                    spec_json: spec_json.clone(),
                    params_json: plan.params_json.clone(),
                    payload: plan.payload.clone(),
                })),
            };
            let mut slot = Slot {
                session: site.session,
                task,
                done_reported: false,
                expected_bytes: 0,
                result: None,
            };
            match self.links.send(&site.name, message) {
                Some(session) => slot.session = session,
                None => {
                    slot.task.state = TaskState::Failed;
                    slot.task.reason = "site disconnected before the task was sent".into();
                    let stored = slot.task.clone();
                    blocking(&self.store, move |s| s.update_task(&stored)).await?;
                }
            }
            self.task_index
                .insert(slot.task.task_id.clone(), id.to_string());
            slots.insert(site.name.clone(), slot);
        }
        let timeout = Duration::from_secs(job.spec.round_timeout_seconds);
        job.phase = Phase::Round {
            deadline: Instant::now() + timeout,
            slots,
        };
        job.record.state = JobState::Running;
        job.record.round = round;
        job.record.reason = job.note.clone().unwrap_or_default();
        let mut record = job.record.clone();
        self.persist_job(&mut record).await?;
        self.set_record(id, record.clone());
        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        self.publish(
            &record,
            format!(
                "round {round} attempt {attempt}: tasks sent to {}",
                names.join(", ")
            ),
        )
        .await?;
        self.evaluate(id).await
    }

    // --- site news ----------------------------------------------------------------------

    /// The job a task belongs to, if the task is `site`'s task in a running round.
    fn locate(&self, site: &str, task_id: &str) -> Option<String> {
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
            self.end_tasks(&id, TaskState::Failed, "site disconnected", |t| {
                t.site == site
            })
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

    // --- deciding the round ---------------------------------------------------------------

    /// Applies the verdict of the job's current round.
    async fn evaluate(&mut self, id: &str) -> Result<(), StoreError> {
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
            Verdict::Complete => self.complete_round(id).await,
            Verdict::Refused(reason) => self.fail_job(id, format!("round {round}: {reason}")).await,
            Verdict::QuorumLost(reason) => self.attempt_failed(id, reason).await,
        }
    }

    /// The current attempt cannot reach its quorum: retry the round or fail the job.
    async fn attempt_failed(&mut self, id: &str, reason: String) -> Result<(), StoreError> {
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
    async fn complete_round(&mut self, id: &str) -> Result<(), StoreError> {
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
    async fn finalize(&mut self, id: &str) -> Result<(), StoreError> {
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
        let output = match job.kind.finalize(&ctx) {
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
    async fn fail_job(&mut self, id: &str, reason: String) -> Result<(), StoreError> {
        self.end_tasks(id, TaskState::Cancelled, "job failed", |_| true)
            .await?;
        self.forget_slots(id);
        let Some(job) = self.jobs.remove(id) else {
            return Ok(());
        };
        tracing::info!("job {id} failed: {reason}");
        self.fail_record(job.record, reason).await
    }

    async fn fail_record(
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

    // --- helpers --------------------------------------------------------------------------

    /// Moves the live tasks of the job's current round that match `which` to `state`,
    /// telling their sites to stop.
    async fn end_tasks(
        &mut self,
        id: &str,
        state: TaskState,
        reason: &str,
        which: impl Fn(&TaskRecord) -> bool,
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
            if reason != "site disconnected" {
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
    fn forget_slots(&mut self, id: &str) {
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

    fn set_record(&mut self, id: &str, record: JobRecord) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.record = record;
        }
    }

    async fn persist_job(&self, record: &mut JobRecord) -> Result<(), StoreError> {
        record.updated_at = now_rfc3339();
        let stored = record.clone();
        blocking(&self.store, move |s| s.update_job(&stored)).await
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
