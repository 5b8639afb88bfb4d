//! Starting an attempt of a round: choosing the sites and sending their tasks.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use silo_proto::coordinator_message::Body;
use silo_proto::{CoordinatorMessage, Task};
use tokio::time::Instant;

use super::active::{Phase, Slot};
use super::{AvailableSite, Scheduler};
use crate::store::{JobState, StoreError, TaskRecord, TaskState, blocking, now_rfc3339};

impl Scheduler {
    /// Starts the job's next attempt if enough eligible sites are connected.
    ///
    /// Boxed: starting a round can close it at once (every send failed), which can start
    /// the next attempt again.
    pub(super) fn try_start<'a>(
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
        // Sites whose results an interrupted attempt kept count towards the quorum and
        // get no new task.
        let kept = job
            .resumed
            .as_ref()
            .map(|r| r.kept_sites())
            .unwrap_or_default();
        let eligible: Vec<AvailableSite> = self
            .links
            .available()
            .into_iter()
            .filter(|s| job.spec.sites.includes(&s.name) && s.datasets.contains(&job.spec.dataset))
            .filter(|s| !kept.contains(&s.name))
            .collect();
        if kept.len() + eligible.len() >= job.min_sites() {
            return self.start_attempt(id, eligible).await;
        }
        let names: Vec<&str> = eligible.iter().map(|s| s.name.as_str()).collect();
        let names = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        let waiting = if kept.is_empty() {
            format!(
                "waiting for sites: {} of min_sites {} connected with dataset {:?}{names}",
                eligible.len(),
                job.spec.min_sites,
                job.spec.dataset,
            )
        } else {
            format!(
                "waiting for sites: {} result(s) kept ({}) and {} other site(s) connected \
                 with dataset {:?}{names}, of min_sites {}",
                kept.len(),
                kept.join(", "),
                eligible.len(),
                job.spec.dataset,
                job.spec.min_sites,
            )
        };
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
    ///
    /// A new attempt, except after a restart that interrupted one with results already
    /// delivered ([`ResumedAttempt`](super::active::ResumedAttempt)): that attempt goes on
    /// with those results replayed into the state machine, and `sites` (the others) get
    /// new tasks in it.
    pub(super) async fn start_attempt(
        &mut self,
        id: &str,
        sites: Vec<AvailableSite>,
    ) -> Result<(), StoreError> {
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        let round = job.current_round();
        let resumed = job.resumed.take();
        let plan = match job.kind.plan_round(round) {
            Ok(plan) => plan,
            Err(e) => {
                return self
                    .fail_job(id, format!("cannot plan round {round}: {e}"))
                    .await;
            }
        };
        let (attempt, kept, generation) = match resumed {
            Some(r) => (r.attempt, r.kept, Some(r.generation)),
            None => (job.attempt + 1, Vec::new(), None),
        };
        job.attempt = attempt;
        let spec_json = job.spec.to_json();
        let now = now_rfc3339();
        let mut slots = BTreeMap::new();
        let mut kept_sites = Vec::new();
        let mut sent = Vec::new();
        for (mut task, data) in kept {
            // Accepted before the restart; checked again by the fresh state machine.
            match job.kind.on_result(round, &task.site, &data) {
                Ok(()) => kept_sites.push(task.site.clone()),
                Err(e) => {
                    task.state = TaskState::Failed;
                    task.reason = format!(
                        "the result it delivered before a coordinator restart is refused: {e}"
                    );
                    task.updated_at = now.clone();
                    let stored = task.clone();
                    blocking(&self.store, move |s| s.update_task(&stored)).await?;
                }
            }
            let slot = Slot {
                session: 0,
                task,
                done_reported: true,
                expected_bytes: 0,
                result: None,
            };
            slots.insert(slot.task.site.clone(), slot);
        }
        for site in &sites {
            if slots.contains_key(&site.name) {
                continue;
            }
            let task_id = match generation {
                None => format!("{id}-r{round}a{attempt}-{}", site.name),
                // Never an earlier id: the old format has '-' right after the attempt.
                Some(g) => format!("{id}-r{round}a{attempt}.{g}-{}", site.name),
            };
            let task = TaskRecord {
                task_id,
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
            sent.push(site.name.clone());
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
        let list = |names: &[String]| {
            if names.is_empty() {
                "no site".to_string()
            } else {
                names.join(", ")
            }
        };
        let message = if generation.is_none() {
            format!(
                "round {round} attempt {attempt}: tasks sent to {}",
                sent.join(", ")
            )
        } else {
            format!(
                "round {round} attempt {attempt} resumed with the results of {}; new tasks \
                 sent to {}",
                list(&kept_sites),
                list(&sent)
            )
        };
        self.publish(&record, message).await?;
        self.evaluate(id).await
    }
}
