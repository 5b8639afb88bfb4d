//! The `dp_stats` state machine (DESIGN section 4.1): one round in which every site
//! releases a noisy count, sum, mean or histogram of a column; the coordinator keeps each
//! site's release and pools them.
//!
//! Phases, one file each: [`plan`] (what the round asks), [`collect`] (checking and
//! keeping each site's release), [`finalize`] (per-site and pooled estimates with their
//! noise standard deviations, written as `report.json`). Pooling is post-processing of DP
//! releases and costs no privacy.

mod collect;
mod finalize;
mod plan;

use silo_common::spec::{DpStatsParams, JobSpec};
use silo_common::stats::DpStatsRelease;

use super::{FinalizeContext, JobError, JobKind, JobOutput, RoundPlan, RoundReleases};

/// State of one `dp_stats` job.
#[derive(Debug)]
pub struct DpStats {
    spec: JobSpec,
    params: DpStatsParams,
    /// Releases of the attempt in progress, by site.
    releases: RoundReleases<DpStatsRelease>,
}

impl DpStats {
    /// The state machine for a validated `dp_stats` spec.
    pub fn new(spec: &JobSpec) -> Result<Self, JobError> {
        let params = DpStatsParams::from_spec(spec)
            .map_err(|issues| JobError::Params(silo_common::spec::describe(&issues)))?;
        Ok(DpStats {
            spec: spec.clone(),
            params,
            releases: RoundReleases::default(),
        })
    }
}

impl JobKind for DpStats {
    fn rounds(&self) -> u32 {
        1
    }

    fn plan_round(&mut self, round: u32) -> Result<RoundPlan, JobError> {
        plan::plan(&self.params, round)
    }

    fn on_result(&mut self, _round: u32, site: &str, result: &[u8]) -> Result<(), JobError> {
        let release = collect::check(&self.spec, &self.params, result)?;
        self.releases.add(site, release);
        Ok(())
    }

    fn abort_round(&mut self, _round: u32) {
        self.releases.abort();
    }

    fn end_round(&mut self, _round: u32) -> Result<(), JobError> {
        self.releases.close()
    }

    fn finalize(&mut self, ctx: &FinalizeContext<'_>) -> Result<JobOutput, JobError> {
        finalize::finalize(ctx, &self.params, self.releases.accepted())
    }
}

#[cfg(test)]
mod tests;
