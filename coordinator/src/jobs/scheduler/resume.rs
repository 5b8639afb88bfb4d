//! Loading jobs: after a (re)start, and when one is submitted.

use std::collections::HashMap;

use silo_common::spec::JobSpec;

use super::Scheduler;
use super::active::{ActiveJob, Phase, ResumedAttempt};
use crate::jobs::job_kind;
use crate::store::{JobRecord, JobState, StoreError, TaskRecord, TaskState, blocking, now_rfc3339};

impl Scheduler {
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
    /// replayed from their stored results, and the results the incomplete round had already
    /// accepted are kept for it (see [`ResumedAttempt`]): its next start asks only the
    /// sites that had not delivered.
    pub(super) async fn load_job(&mut self, mut record: JobRecord) -> Result<(), StoreError> {
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
            task.reason = "coordinator restarted; the site is sent a new task".into();
            task.updated_at = now.clone();
            blocking(&self.store, move |s| s.update_task(&task)).await?;
        }
        for round in 1..=record.completed_rounds {
            let attempt = record
                .completed_attempts
                .get(round as usize - 1)
                .copied()
                .unwrap_or(1);
            let results = self
                .done_results(&record.id, &tasks, round, attempt)
                .await?;
            let replayed = results
                .iter()
                .try_for_each(|(t, data)| kind.on_result(round, &t.site, data))
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
        let resumed = if attempt == 0 {
            None
        } else {
            let kept = self
                .done_results(&record.id, &tasks, round, attempt)
                .await?;
            (!kept.is_empty()).then_some(ResumedAttempt {
                attempt,
                kept,
                generation: tasks.len(),
            })
        };
        let note = (record.state == JobState::Running).then(|| match &resumed {
            Some(r) => format!(
                "resuming round {round} after a coordinator restart, keeping the results \
                 {} delivered before it",
                r.kept_sites().join(", ")
            ),
            None => format!("resuming round {round} after a coordinator restart"),
        });
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
            resumed,
            phase: Phase::Waiting { deadline: None },
        };
        self.jobs.insert(job.record.id.clone(), job);
        Ok(())
    }

    /// The stored results of the tasks that were done in `attempt` of `round`, with their
    /// tasks, by site. A result counts only with its own task done: a site that sent a
    /// result but never confirmed it (its task failed, was excluded, or went to another
    /// task of the site) does not.
    async fn done_results(
        &self,
        job_id: &str,
        tasks: &[TaskRecord],
        round: u32,
        attempt: u32,
    ) -> Result<Vec<(TaskRecord, Vec<u8>)>, StoreError> {
        let done: HashMap<&str, &TaskRecord> = tasks
            .iter()
            .filter(|t| t.round == round && t.attempt == attempt && t.state == TaskState::Done)
            .map(|t| (t.task_id.as_str(), t))
            .collect();
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let id = job_id.to_string();
        let results = blocking(&self.store, move |s| s.round_results(&id, round, attempt)).await?;
        Ok(results
            .into_iter()
            .filter_map(|r| {
                let task = done.get(r.task_id.as_str())?;
                Some(((*task).clone(), r.data))
            })
            .collect())
    }
}
