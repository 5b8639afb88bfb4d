//! Turning the kept releases into the job's result: `report.json` and a summary.
//!
//! `report.json` keys: `kind`, `job_id`, `name`, `dataset`, `statistic`, `mechanism`,
//! `column`, `lower`, `upper`, `bins`, `sites` (the sites whose releases were pooled),
//! `epsilon_spent` (per site: the ε the job's charges at that site add up to, retries and
//! excluded tasks included), `per_site` (each site's release: values with their noise
//! standard deviations) and `pooled` (the pooled estimates with their noise standard
//! deviations).

use std::collections::BTreeMap;

use serde_json::json;
use silo_common::spec::DpStatsParams;
use silo_common::stats::{DpStatsRelease, pool};

use crate::jobs::{FinalizeContext, JobError, JobOutput};

/// Pools the releases and renders the report.
pub(super) fn finalize(
    ctx: &FinalizeContext<'_>,
    params: &DpStatsParams,
    releases: &BTreeMap<String, DpStatsRelease>,
) -> Result<JobOutput, JobError> {
    let sites: Vec<&String> = releases.keys().collect();
    let list: Vec<DpStatsRelease> = releases.values().cloned().collect();
    let pooled = pool(&list).map_err(|e| JobError::Aggregate(format!("cannot pool: {e}")))?;
    let epsilon_spent = ctx.epsilon_spent();
    let report = json!({
        "kind": "dp_stats",
        "job_id": ctx.job_id,
        "name": ctx.spec.name,
        "dataset": ctx.spec.dataset,
        "statistic": params.statistic,
        "mechanism": params.noise_kind(ctx.spec),
        "column": params.column,
        "lower": params.lower,
        "upper": params.upper,
        "bins": params.bins,
        "sites": sites,
        "epsilon_spent": epsilon_spent,
        "per_site": releases,
        "pooled": pooled,
    });
    let summary = json!({
        "kind": "dp_stats",
        "statistic": params.statistic,
        "sites": sites,
        "epsilon_spent": epsilon_spent,
        "pooled": pooled,
    });
    let mut text = serde_json::to_vec_pretty(&report)
        .map_err(|e| JobError::Aggregate(format!("cannot render report.json: {e}")))?;
    text.push(b'\n');
    Ok(JobOutput {
        files: vec![("report.json".to_string(), text)],
        summary,
    })
}
