//! Federated jobs on the coordinator: the [`scheduler`] that drives every job through its
//! lifecycle, and one state machine per job kind behind the [`JobKind`] trait (STYLE
//! rule 4): a new job kind is a new folder here (`dp_stats/` today) and one line in
//! [`job_kind`].
//!
//! A job kind is pure: it plans the parameters of each round, absorbs each site's
//! (already noised, already charged) result, closes rounds and finally turns what it
//! absorbed into result files and a summary. Everything with side effects — tasks, sites,
//! timeouts, retries, storage — is the scheduler's.

pub mod contrastive_svd;
pub mod dp_stats;
pub mod pmi_svd;
pub mod scheduler;
pub mod status;

use std::collections::BTreeMap;

use silo_common::privacy::{AccountantKind, Composition};
use silo_common::spec::{JobKind as SpecKind, JobSpec};

use crate::store::ChargeRecord;

pub use scheduler::{AvailableSite, Scheduler, SchedulerError, SchedulerHandle, SiteLinks};

/// What a round sends to each site besides the spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoundPlan {
    /// Round parameters as JSON (`Task.params_json`).
    pub params_json: Vec<u8>,
    /// Round input (`Task.payload`), e.g. model weights; may be empty.
    pub payload: Vec<u8>,
}

/// What [`JobKind::finalize`] gets to know besides the results it absorbed.
#[derive(Clone, Debug)]
pub struct FinalizeContext<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// The job's spec.
    pub spec: &'a JobSpec,
    /// Every charge the job caused at every site (including retried and excluded tasks).
    pub charges: &'a [ChargeRecord],
}

impl FinalizeContext<'_> {
    /// The job's ε per site: the privacy events of all its charges at that site composed
    /// at the charges' δ (the smaller of the PLD and RDP bounds, as the sites' ledgers
    /// compose). A site whose charges do not all carry their events falls back to the sum
    /// of the per-charge ε, which is also an upper bound.
    pub fn epsilon_spent(&self) -> BTreeMap<String, f64> {
        let mut per_site: BTreeMap<String, Vec<&ChargeRecord>> = BTreeMap::new();
        for c in self.charges {
            per_site.entry(c.site.clone()).or_default().push(c);
        }
        per_site
            .into_iter()
            .map(|(site, charges)| {
                let sum: f64 = charges.iter().map(|c| c.epsilon).sum();
                let composed = composed_epsilon(&charges).filter(|e| *e <= sum);
                (site, composed.unwrap_or(sum))
            })
            .collect()
    }
}

/// The composition of the events recorded in `charges` at their (common) δ, or `None`
/// when an event list is missing or the δs differ.
fn composed_epsilon(charges: &[&ChargeRecord]) -> Option<f64> {
    let delta = charges.first()?.delta;
    let mut history: Vec<Composition> = Vec::new();
    for c in charges {
        if c.delta != delta {
            return None;
        }
        let doc: serde_json::Value = serde_json::from_str(&c.mechanism_json).ok()?;
        let events: Vec<Composition> = serde_json::from_value(doc.get("events")?.clone()).ok()?;
        history.extend(events);
    }
    [AccountantKind::Pld, AccountantKind::Rdp]
        .into_iter()
        .filter_map(|k| k.build().epsilon(&history, delta).ok())
        .filter(|e| e.is_finite())
        .min_by(f64::total_cmp)
}

/// The releases of the round in progress and of the last closed round, by site: the
/// bookkeeping every job kind does between `on_result`, `abort_round` and `end_round`.
#[derive(Clone, Debug)]
pub struct RoundReleases<T> {
    pending: BTreeMap<String, T>,
    accepted: BTreeMap<String, T>,
}

impl<T> Default for RoundReleases<T> {
    fn default() -> Self {
        RoundReleases {
            pending: BTreeMap::new(),
            accepted: BTreeMap::new(),
        }
    }
}

impl<T> RoundReleases<T> {
    /// Records `site`'s release for the round in progress.
    pub fn add(&mut self, site: &str, release: T) {
        self.pending.insert(site.to_string(), release);
    }

    /// Releases recorded so far in the round in progress.
    pub fn pending(&self) -> &BTreeMap<String, T> {
        &self.pending
    }

    /// Forgets the round in progress (an aborted attempt).
    pub fn abort(&mut self) {
        self.pending.clear();
    }

    /// Closes the round: its releases become the accepted ones. Refuses an empty round.
    pub fn close(&mut self) -> Result<(), JobError> {
        if self.pending.is_empty() {
            return Err(JobError::Aggregate(
                "no site release to close the round with".into(),
            ));
        }
        self.accepted = std::mem::take(&mut self.pending);
        Ok(())
    }

    /// The releases of the last closed round.
    pub fn accepted(&self) -> &BTreeMap<String, T> {
        &self.accepted
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobOutput {
    /// Files of `data_dir/jobs/<id>/result/`, by name (`report.json`, ...).
    pub files: Vec<(String, Vec<u8>)>,
    /// Short summary shown in `JobStatus.summary_json`.
    pub summary: serde_json::Value,
}

/// Why a job kind could not go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// A site's result does not parse or fails a check (NaN, wrong shape, ...).
    #[error("invalid result: {0}")]
    InvalidResult(String),
    /// The coordinator has no state machine for this job kind.
    #[error("job kind {0} is not supported by this coordinator")]
    Unsupported(String),
    /// The spec's parameters do not fit the kind (should have failed validation).
    #[error("invalid job parameters: {0}")]
    Params(String),
    /// Round aggregation or finalization failed.
    #[error("{0}")]
    Aggregate(String),
}

/// The state machine of one job kind. Rounds are numbered from 1.
///
/// The scheduler calls, per round: [`plan_round`](JobKind::plan_round) once per attempt,
/// [`on_result`](JobKind::on_result) for each site that delivered, then either
/// [`end_round`](JobKind::end_round) (the quorum held) or
/// [`abort_round`](JobKind::abort_round) (the attempt is retried with new tasks, so what
/// it absorbed must be forgotten). After the last round, [`finalize`](JobKind::finalize).
/// After a coordinator restart the scheduler rebuilds the state by replaying the stored
/// results of the completed rounds through `on_result` and `end_round`; it then continues
/// the interrupted round: `plan_round` again, `on_result` with the results that were
/// accepted before the restart, then the results of the sites asked anew. A round can so
/// pool results of tasks sent before and after a restart: `plan_round` must give the same
/// plan for the same absorbed state (no fresh randomness in the plan).
pub trait JobKind: Send + Sync {
    /// How many rounds the job runs.
    fn rounds(&self) -> u32;

    /// Parameters of `round` for every site.
    fn plan_round(&mut self, round: u32) -> Result<RoundPlan, JobError>;

    /// Checks and absorbs one site's result of `round`. An error refuses that result only
    /// (the site's task fails; the round goes on if its quorum holds).
    fn on_result(&mut self, round: u32, site: &str, result: &[u8]) -> Result<(), JobError>;

    /// Forgets what was absorbed in the current attempt of `round`.
    fn abort_round(&mut self, round: u32);

    /// Closes `round` with the results absorbed so far.
    fn end_round(&mut self, round: u32) -> Result<(), JobError>;

    /// Builds the job's result files and summary.
    fn finalize(&mut self, ctx: &FinalizeContext<'_>) -> Result<JobOutput, JobError>;
}

/// The state machine for a spec's kind.
pub fn job_kind(spec: &JobSpec) -> Result<Box<dyn JobKind>, JobError> {
    match spec.kind {
        SpecKind::DpStats => Ok(Box::new(dp_stats::DpStats::new(spec)?)),
        SpecKind::PmiSvd => Ok(Box::new(pmi_svd::PmiSvd::new(spec)?)),
        SpecKind::ContrastiveSvd => Ok(Box::new(contrastive_svd::ContrastiveSvd::new(spec)?)),
        other => Err(JobError::Unsupported(other.to_string())),
    }
}
