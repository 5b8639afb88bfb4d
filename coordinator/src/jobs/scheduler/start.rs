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
    pub(super) async fn start_attempt(
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
}
