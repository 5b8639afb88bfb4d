//! The site policy: what a task must satisfy before the site computes or charges anything
//! (DESIGN section 2, rule 3: fail closed).
//!
//! Two gates, both before any data are read:
//!
//! 1. [`admit`]: the job kind is allowed, the spec parses and validates (the same
//!    [`JobSpec::validate`] the coordinator ran), the dataset is served here and has a kind
//!    the job can read, and the job's ε is within the per-job cap.
//! 2. [`check_release`]: once the executor has calibrated the release (its privacy events
//!    are known), every noise multiplier is at or above the site's floor, the task id has
//!    never been charged, and the dataset's composed spend *with* this release stays
//!    within its budget.
//!
//! Each refusal is one line a person can act on: it travels back in `TaskUpdate.reason`
//! and `silo job status` shows it.

use std::fmt;

use silo_common::privacy::{Composition, PrivacyEvent};
use silo_common::spec::{JobKind, JobSpec};

use crate::config::{DatasetConfig, DatasetKind, SiteConfig};
use crate::ledger::{Ledger, LedgerError, SPEND_ACCOUNTANTS, within_budget};

/// Why a task was refused: one actionable line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    /// The reason, as sent in `TaskUpdate.reason`.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Refusal {
    /// A refusal with `reason` (newlines are folded so it stays one line).
    pub fn new(reason: impl Into<String>) -> Self {
        let reason: String = reason.into();
        Refusal {
            reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

/// What the task asks for, as received.
#[derive(Clone, Copy, Debug)]
pub struct TaskRequest<'a> {
    /// The task id.
    pub task_id: &'a str,
    /// The job kind named by the task.
    pub kind: &'a str,
    /// The dataset named by the task ("" = the spec's).
    pub dataset: &'a str,
    /// The job spec as JSON.
    pub spec_json: &'a [u8],
}

/// A task that passed [`admit`].
#[derive(Clone, Debug)]
pub struct Admitted<'c> {
    /// The validated spec.
    pub spec: JobSpec,
    /// The dataset it reads.
    pub dataset: &'c DatasetConfig,
}

/// The dataset kinds a job kind can read.
pub fn dataset_kinds_for(kind: JobKind) -> &'static [DatasetKind] {
    match kind {
        JobKind::DpStats => &[DatasetKind::Csv],
        JobKind::PmiSvd => &[DatasetKind::Omop, DatasetKind::Fhir],
        JobKind::ContrastiveSvd | JobKind::DpClip => &[DatasetKind::Pairs],
    }
}

/// Gate 1: kind, spec, dataset and per-job ε cap. Reads no data and touches no budget.
pub fn admit<'c>(config: &'c SiteConfig, task: &TaskRequest<'_>) -> Result<Admitted<'c>, Refusal> {
    let site = &config.name;
    let allowed = || {
        config
            .policy
            .allowed_kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = JobKind::parse(task.kind).ok_or_else(|| {
        Refusal::new(format!(
            "unknown job kind {:?}: site {site} runs {}",
            task.kind,
            allowed()
        ))
    })?;
    if !config.policy.allowed_kinds.contains(&kind) {
        return Err(Refusal::new(format!(
            "job kind {kind} is not allowed at site {site} (allowed: {}); the site operator can add it to [policy] allowed_kinds",
            allowed()
        )));
    }
    let spec = JobSpec::from_json(task.spec_json, "job spec")
        .map_err(|e| Refusal::new(format!("invalid job spec: {e}")))?;
    if spec.kind != kind {
        return Err(Refusal::new(format!(
            "task kind {kind} does not match the spec's kind {}; resubmit the job",
            spec.kind
        )));
    }
    if !task.dataset.is_empty() && task.dataset != spec.dataset {
        return Err(Refusal::new(format!(
            "task dataset {:?} does not match the spec's dataset {:?}; resubmit the job",
            task.dataset, spec.dataset
        )));
    }
    let dataset = config.dataset(&spec.dataset).ok_or_else(|| {
        let served = config.datasets.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        Refusal::new(format!(
            "dataset {:?} is not served by site {site} (it serves: {served}); fix the spec's dataset",
            spec.dataset
        ))
    })?;
    let kinds = dataset_kinds_for(kind);
    if !kinds.contains(&dataset.kind) {
        let want = kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(Refusal::new(format!(
            "dataset {} at site {site} is a {} dataset; a {kind} job needs a {want} dataset",
            dataset.name, dataset.kind
        )));
    }
    let cap = config.policy.max_epsilon_per_job;
    if spec.privacy.epsilon > cap {
        return Err(Refusal::new(format!(
            "job asks for epsilon {} per site, above site {site}'s cap of {cap} per job ([policy] max_epsilon_per_job); lower privacy.epsilon",
            spec.privacy.epsilon
        )));
    }
    Ok(Admitted { spec, dataset })
}

/// The budget position of an approved release, at the dataset δ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetCheck {
    /// Composed spend before the release.
    pub spent: f64,
    /// Composed spend with the release.
    pub after: f64,
    /// The dataset's cap.
    pub budget: f64,
}

/// The noise multiplier (noise scale / sensitivity) of an event. For a pure-DP event it is
/// 1/ε, the multiplier of the (discrete) Laplace mechanism with that ε.
pub fn noise_multiplier(event: &PrivacyEvent) -> f64 {
    match *event {
        PrivacyEvent::Gaussian { noise_multiplier }
        | PrivacyEvent::Laplace { noise_multiplier }
        | PrivacyEvent::SubsampledGaussian {
            noise_multiplier, ..
        } => noise_multiplier,
        PrivacyEvent::PureDp { epsilon } => 1.0 / epsilon,
        // A threshold failure adds no noise of its own; the floor applies to the Gaussian
        // counts it is released with.
        PrivacyEvent::Threshold { .. } => f64::INFINITY,
    }
}

/// Gate 2: noise floor, task never charged before, budget with this release. Still before
/// any data are read; the ledger re-checks the budget atomically when it charges.
pub fn check_release(
    config: &SiteConfig,
    ledger: &Ledger,
    dataset: &DatasetConfig,
    task_id: &str,
    events: &[Composition],
) -> Result<BudgetCheck, Refusal> {
    let site = &config.name;
    if let Some(floor) = config.policy.min_noise_multiplier {
        for c in events.iter().filter(|c| c.count > 0) {
            let m = noise_multiplier(&c.event);
            if m < floor {
                return Err(Refusal::new(format!(
                    "noise multiplier {m:.4} is below site {site}'s floor {floor} ([policy] min_noise_multiplier); \
                     lower privacy.epsilon or raise privacy.delta"
                )));
            }
        }
    }
    let internal =
        |e: LedgerError| Refusal::new(format!("site {site} cannot read its privacy ledger: {e}"));
    if let Some(seq) = ledger.charged_task(task_id).map_err(internal)? {
        return Err(Refusal::new(format!(
            "already executed: task {task_id} was charged as ledger entry {seq}; a retry needs a new task id"
        )));
    }
    let spent = ledger
        .spent(&dataset.name, dataset.delta, &SPEND_ACCOUNTANTS)
        .map_err(internal)?;
    let after = ledger
        .spent_with(&dataset.name, dataset.delta, events, &SPEND_ACCOUNTANTS)
        .map_err(internal)?;
    if !within_budget(after, dataset.epsilon_budget) {
        return Err(Refusal::new(format!(
            "budget exhausted on dataset {} at site {site}: spent {spent:.4} of {} (delta {:e}); this job would bring it to {after:.4}; \
             lower privacy.epsilon or ask the site operator",
            dataset.name, dataset.epsilon_budget, dataset.delta
        )));
    }
    Ok(BudgetCheck {
        spent,
        after,
        budget: dataset.epsilon_budget,
    })
}

#[cfg(test)]
mod tests;
