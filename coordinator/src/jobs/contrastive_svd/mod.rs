//! The `contrastive_svd` state machine (DESIGN §4.3): one round. Each site releases its
//! noisy clipped sums ([`silo_common::contrastive`]); finalizing sums them, estimates the
//! contrastive cross-covariance and takes its rank-r SVD. The left and right singular
//! vectors are the linear image and text encoders, written to `model.safetensors`
//! (`image_encoder` [d1, r], `text_encoder` [d2, r], `singular_values` [r]) with
//! `report.json`.

use std::collections::BTreeMap;

use serde_json::json;
use silo_common::contrastive::{ContrastivePlan, ContrastiveRelease, encoders};
use silo_common::spec::JobSpec;
use silo_common::tensorfile::{TensorRef, write_safetensors};

use super::{FinalizeContext, JobError, JobKind, JobOutput, RoundPlan};

/// Relative slack on the noise a release must carry (float round-trips).
const NOISE_SLACK: f64 = 1e-6;

#[derive(Debug)]
pub struct ContrastiveSvd {
    plan: ContrastivePlan,
    pending: BTreeMap<String, ContrastiveRelease>,
    accepted: BTreeMap<String, ContrastiveRelease>,
}

impl ContrastiveSvd {
    pub fn new(spec: &JobSpec) -> Result<Self, JobError> {
        Ok(ContrastiveSvd {
            plan: ContrastivePlan::new(spec).map_err(|e| JobError::Params(e.to_string()))?,
            pending: BTreeMap::new(),
            accepted: BTreeMap::new(),
        })
    }
}

impl JobKind for ContrastiveSvd {
    fn rounds(&self) -> u32 {
        1
    }

    fn plan_round(&mut self, round: u32) -> Result<RoundPlan, JobError> {
        if round != 1 {
            return Err(JobError::Aggregate(format!(
                "contrastive_svd has one round; round {round} was asked for"
            )));
        }
        Ok(RoundPlan {
            params_json: serde_json::to_vec(&json!({ "round": 1 }))
                .map_err(|e| JobError::Params(e.to_string()))?,
            payload: Vec::new(),
        })
    }

    fn on_result(&mut self, _round: u32, site: &str, result: &[u8]) -> Result<(), JobError> {
        let release = ContrastiveRelease::from_json(result)
            .map_err(|e| JobError::InvalidResult(e.to_string()))?;
        let planned = self.plan.mechanism().sigma();
        if release.noise_std < planned * (1.0 - NOISE_SLACK) {
            return Err(JobError::InvalidResult(format!(
                "noise std {} is below the planned {planned}",
                release.noise_std
            )));
        }
        if release.clip_norm != self.plan.params().clip_norm {
            return Err(JobError::InvalidResult(format!(
                "clip norm {} differs from the job's {}",
                release.clip_norm,
                self.plan.params().clip_norm
            )));
        }
        if let Some(other) = self.pending.values().next()
            && (other.d1, other.d2) != (release.d1, release.d2)
        {
            return Err(JobError::InvalidResult(format!(
                "features of {}×{} dimensions; other sites have {}×{}",
                release.d1, release.d2, other.d1, other.d2
            )));
        }
        self.pending.insert(site.to_string(), release);
        Ok(())
    }

    fn abort_round(&mut self, _round: u32) {
        self.pending.clear();
    }

    fn end_round(&mut self, _round: u32) -> Result<(), JobError> {
        if self.pending.is_empty() {
            return Err(JobError::Aggregate(
                "no site release to close the round with".into(),
            ));
        }
        self.accepted = std::mem::take(&mut self.pending);
        Ok(())
    }

    fn finalize(&mut self, ctx: &FinalizeContext<'_>) -> Result<JobOutput, JobError> {
        let params = self.plan.params();
        let releases: Vec<&ContrastiveRelease> = self.accepted.values().collect();
        let enc = encoders(&releases, params.lambda, params.rank, 0)
            .map_err(|e| JobError::Aggregate(e.to_string()))?;
        let (d1, d2, r) = (enc.image.nrows(), enc.text.nrows(), enc.image.ncols());
        let (image, text) = (enc.image_f32(), enc.text_f32());
        let singular: Vec<f32> = enc.singular_values.iter().map(|&s| s as f32).collect();
        let model = write_safetensors(&[
            (
                "image_encoder",
                TensorRef::F32 {
                    shape: &[d1, r],
                    data: &image,
                },
            ),
            (
                "text_encoder",
                TensorRef::F32 {
                    shape: &[d2, r],
                    data: &text,
                },
            ),
            (
                "singular_values",
                TensorRef::F32 {
                    shape: &[r],
                    data: &singular,
                },
            ),
        ]);
        let sites: Vec<&String> = self.accepted.keys().collect();
        let epsilon_spent = ctx.epsilon_spent();
        let report = json!({
            "kind": "contrastive_svd",
            "job_id": ctx.job_id,
            "name": ctx.spec.name,
            "dataset": ctx.spec.dataset,
            "sites": sites,
            "epsilon_spent": epsilon_spent,
            "params": params,
            "image_dim": d1,
            "text_dim": d2,
            "rank": r,
            "singular_values": enc.singular_values,
            "pairs_noisy": enc.pairs,
            "noise_std_per_site_normalised": self.plan.mechanism().sigma(),
        });
        let summary = json!({
            "kind": "contrastive_svd",
            "sites": sites,
            "image_dim": d1,
            "text_dim": d2,
            "rank": r,
            "singular_values": enc.singular_values,
            "epsilon_spent": epsilon_spent,
        });
        let mut text_report = serde_json::to_vec_pretty(&report)
            .map_err(|e| JobError::Aggregate(format!("cannot render report.json: {e}")))?;
        text_report.push(b'\n');
        Ok(JobOutput {
            files: vec![
                ("model.safetensors".into(), model),
                ("report.json".into(), text_report),
            ],
            summary,
        })
    }
}

#[cfg(test)]
mod tests;
