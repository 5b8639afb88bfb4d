//! The wire view of a job (`JobStatus`), built from its stored record and tasks.
//!
//! `sites` holds one entry per site that was ever sent a task for the job: the site's
//! latest task (newest round and attempt), so a refusal, a timeout or a disconnect stays
//! visible with its reason after the job ends.

use std::collections::BTreeMap;

use silo_proto::{JobStatus, SiteTaskStatus};

use crate::store::{JobRecord, TaskRecord};

/// `JobStatus` of `job` given all its tasks (in creation order).
pub fn job_status(job: &JobRecord, tasks: &[TaskRecord]) -> JobStatus {
    let mut latest: BTreeMap<&str, &TaskRecord> = BTreeMap::new();
    for task in tasks {
        latest.insert(task.site.as_str(), task);
    }
    JobStatus {
        id: job.id.clone(),
        name: job.name.clone(),
        kind: job.kind.clone(),
        state: job.state.as_str().to_string(),
        reason: job.reason.clone(),
        round: job.round,
        rounds: job.rounds,
        sites: latest
            .into_values()
            .map(|t| SiteTaskStatus {
                site: t.site.clone(),
                round: t.round,
                task_id: t.task_id.clone(),
                state: t.state.as_str().to_string(),
                reason: t.reason.clone(),
                progress: t.progress,
            })
            .collect(),
        submitted_by: job.submitted_by.clone(),
        created_at: job.created_at.clone(),
        updated_at: job.updated_at.clone(),
        summary_json: job.summary_json.clone().unwrap_or_default(),
    }
}
