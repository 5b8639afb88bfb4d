//! Checking one site's `dp_stats` release before it is kept.
//!
//! The site calibrated and charged the release; the coordinator still refuses anything
//! that does not answer the job that was asked (another statistic, column, bounds or bins),
//! claims a larger ε than the job allows, or carries a non-finite number (DESIGN
//! section 9): pooling it would silently mix incompatible quantities.

use silo_common::spec::{DpStatsParams, JobSpec};
use silo_common::stats::DpStatsRelease;

use crate::jobs::JobError;

/// Relative slack on ε comparisons (the site serialises ε as JSON text).
const EPSILON_SLACK: f64 = 1e-9;

/// Parses and checks a site's release against the job.
pub(super) fn check(
    spec: &JobSpec,
    params: &DpStatsParams,
    result: &[u8],
) -> Result<DpStatsRelease, JobError> {
    let release =
        DpStatsRelease::from_json(result).map_err(|e| JobError::InvalidResult(e.to_string()))?;
    let mismatch = |what: &str, got: String, want: String| {
        JobError::InvalidResult(format!("release {what} is {got}, the job asked for {want}"))
    };
    if release.statistic != params.statistic {
        return Err(mismatch(
            "statistic",
            format!("{:?}", release.statistic),
            format!("{:?}", params.statistic),
        ));
    }
    if release.column != params.column && params.column.is_some() {
        return Err(mismatch(
            "column",
            format!("{:?}", release.column),
            format!("{:?}", params.column),
        ));
    }
    if params.lower.is_some() && (release.lower != params.lower || release.upper != params.upper) {
        return Err(mismatch(
            "clamp range",
            format!("{:?}..{:?}", release.lower, release.upper),
            format!("{:?}..{:?}", params.lower, params.upper),
        ));
    }
    if release.bins != params.bins {
        return Err(mismatch(
            "bins",
            format!("{:?}", release.bins),
            format!("{:?}", params.bins),
        ));
    }
    let allowed = spec.privacy.epsilon * (1.0 + EPSILON_SLACK);
    if release.epsilon > allowed {
        return Err(mismatch(
            "epsilon",
            release.epsilon.to_string(),
            format!("at most {}", spec.privacy.epsilon),
        ));
    }
    Ok(release)
}
