//! Planning the single `dp_stats` round.
//!
//! Sites read everything they need from the spec (`Task.spec_json`); `params_json` repeats
//! the validated parameters so a site need not re-derive defaults (the mechanism, the
//! per-unit row bound). No payload.

use serde_json::json;
use silo_common::spec::DpStatsParams;

use crate::jobs::{JobError, RoundPlan};

/// The round's parameters.
pub(super) fn plan(params: &DpStatsParams, round: u32) -> Result<RoundPlan, JobError> {
    if round != 1 {
        return Err(JobError::Aggregate(format!(
            "dp_stats has one round; round {round} was asked for"
        )));
    }
    let params_json = serde_json::to_vec(&json!({ "round": round, "params": params }))
        .map_err(|e| JobError::Params(e.to_string()))?;
    Ok(RoundPlan {
        params_json,
        payload: Vec::new(),
    })
}
