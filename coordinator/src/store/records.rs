//! The rows the [`Store`](super::Store) keeps, as plain Rust values.

use serde::{Deserialize, Serialize};

/// A dataset a site declared at registration: public metadata only (DESIGN section 2,
/// rule 1b), plus the spend the site reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Dataset name, as job specs refer to it.
    pub name: String,
    /// csv | omop | fhir | pairs.
    pub kind: String,
    /// What one individual is (the contribution-bounding unit).
    pub privacy_unit: String,
    /// Lifetime ε cap.
    pub epsilon_budget: f64,
    /// The dataset's δ, at which spend is reported.
    pub delta: f64,
    /// Composed spend the site reported (at registration or with its latest charge).
    pub epsilon_spent: f64,
    /// Declared metadata (columns, vocabulary size, ...), as JSON text.
    pub metadata_json: String,
}

/// A registered site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteRecord {
    /// Site name (equals the CN of its certificate).
    pub name: String,
    /// Declared datasets.
    pub datasets: Vec<DatasetRecord>,
    /// Hash of the newest ledger entry the site reported ("" when empty), advanced by
    /// charges that chain onto it.
    pub ledger_head: String,
    /// Number of ledger entries the site reported at registration.
    pub ledger_entries: u64,
    /// Site daemon version.
    pub version: String,
    /// Job kinds the site's policy allows.
    pub allowed_kinds: Vec<String>,
    /// When the site last registered (RFC 3339).
    pub registered_at: String,
    /// When the coordinator last heard from the site (RFC 3339).
    pub last_seen: String,
}

/// The coordinator's copy of one charge a site committed to its ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChargeRecord {
    /// The site that charged.
    pub site: String,
    /// The site's ledger sequence number.
    pub seq: u64,
    /// Dataset charged.
    pub dataset: String,
    /// Job that caused the release.
    pub job_id: String,
    /// Task that caused the release.
    pub task_id: String,
    /// Mechanism, parameters, sensitivity and privacy events, as JSON text.
    pub mechanism_json: String,
    /// ε of this release at the dataset δ.
    pub epsilon: f64,
    /// The dataset δ.
    pub delta: f64,
    /// Composed spend on the dataset after this charge.
    pub epsilon_spent: f64,
    /// When the site recorded it (RFC 3339).
    pub recorded_at: String,
    /// Hash of the previous ledger entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

/// Lifecycle state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for enough sites.
    Queued,
    /// Tasks are out.
    Running,
    /// Finished; results are stored.
    Succeeded,
    /// Ended with a reason.
    Failed,
    /// Cancelled by an admin.
    Cancelled,
}

impl JobState {
    /// Name as shown in `JobStatus.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a state name.
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Spec name.
    pub name: String,
    /// Job kind (`dp_stats`, ...).
    pub kind: String,
    /// The validated spec as JSON (silo-common `JobSpec`).
    pub spec_json: String,
    /// Lifecycle state.
    pub state: JobState,
    /// Why the job is waiting, retrying, failed or was cancelled ("" otherwise).
    pub reason: String,
    /// Round in progress (1-based; 0 before the first round starts).
    pub round: u32,
    /// Rounds the job kind runs.
    pub rounds: u32,
    /// Rounds whose results are complete and stored.
    pub completed_rounds: u32,
    /// Which attempt of `completed_rounds` supplied its results, per completed round
    /// (index 0 = round 1).
    pub completed_attempts: Vec<u32>,
    /// Certificate name of the submitter.
    pub submitted_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Result summary (JSON text) once succeeded.
    pub summary_json: Option<String>,
}

/// State of one task at one site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Sent to the site, no answer yet.
    Sent,
    /// The site accepted it (policy and budget passed).
    Accepted,
    /// The site is computing.
    Running,
    /// The site refused it (policy, budget, validation); the reason says why.
    Refused,
    /// The task failed (site error, disconnect, invalid result).
    Failed,
    /// The result is stored.
    Done,
    /// Dropped from its round (timeout) while the round went on.
    Excluded,
    /// The job was cancelled.
    Cancelled,
}

impl TaskState {
    /// Name as shown in `SiteTaskStatus.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Sent => "sent",
            TaskState::Accepted => "accepted",
            TaskState::Running => "running",
            TaskState::Refused => "refused",
            TaskState::Failed => "failed",
            TaskState::Done => "done",
            TaskState::Excluded => "excluded",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Parses a state name.
    pub fn parse(s: &str) -> Option<TaskState> {
        Some(match s {
            "sent" => TaskState::Sent,
            "accepted" => TaskState::Accepted,
            "running" => TaskState::Running,
            "refused" => TaskState::Refused,
            "failed" => TaskState::Failed,
            "done" => TaskState::Done,
            "excluded" => TaskState::Excluded,
            "cancelled" => TaskState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the site may still deliver a result.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            TaskState::Sent | TaskState::Accepted | TaskState::Running
        )
    }
}

/// One task: one site's part of one attempt of one round of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    /// Unique task id; a retried round gets new ids.
    pub task_id: String,
    /// The job.
    pub job_id: String,
    /// The site it was sent to.
    pub site: String,
    /// Round (1-based).
    pub round: u32,
    /// Attempt of the round (1-based).
    pub attempt: u32,
    /// State.
    pub state: TaskState,
    /// Reason for refused / failed / excluded.
    pub reason: String,
    /// 0..1.
    pub progress: f64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One site's result of one attempt of a round.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundResult {
    /// The job.
    pub job_id: String,
    /// Round (1-based).
    pub round: u32,
    /// Attempt (1-based).
    pub attempt: u32,
    /// The site.
    pub site: String,
    /// The task that produced it.
    pub task_id: String,
    /// The result bytes as the site sent them.
    pub data: Vec<u8>,
}

/// A file of a job's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultFileInfo {
    /// File name inside the job's result folder.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}
