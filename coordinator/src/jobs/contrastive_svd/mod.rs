//! The `contrastive_svd` state machine (DESIGN §4.3): one round. Each site releases its
//! noisy clipped sums ([`silo_common::contrastive`]); finalizing sums them, estimates the
//! contrastive cross-covariance and takes its rank-r SVD. The left and right singular
//! vectors are the linear image and text encoders, written to `model.safetensors`
//! (`image_encoder` [d1, r], `text_encoder` [d2, r], `singular_values` [r]) with
//! `report.json`.

use serde_json::json;
use silo_common::contrastive::{ContrastivePlan, ContrastiveRelease, encoders};
use silo_common::spec::JobSpec;
use silo_common::tensorfile::{Tensor, TensorRef, read_safetensors, write_safetensors};

use super::{FinalizeContext, JobError, JobKind, JobOutput, RoundPlan, RoundReleases};

/// Relative slack on the noise a release must carry (float round-trips).
const NOISE_SLACK: f64 = 1e-6;

/// A labelled public evaluation set and optional class prompts, read from the spec's files.
#[derive(Debug)]
struct EvalSet {
    path: String,
    image: Vec<f32>,
    text: Vec<f32>,
    d1: usize,
    d2: usize,
    labels: Option<Vec<i64>>,
    prompts: Option<(Vec<f32>, Vec<i64>)>,
}

#[derive(Debug)]
pub struct ContrastiveSvd {
    plan: ContrastivePlan,
    eval: Option<EvalSet>,
    releases: RoundReleases<ContrastiveRelease>,
}

impl ContrastiveSvd {
    pub fn new(spec: &JobSpec) -> Result<Self, JobError> {
        let plan = ContrastivePlan::new(spec).map_err(|e| JobError::Params(e.to_string()))?;
        let eval = match &plan.params().eval {
            Some(path) => Some(read_eval(path, plan.params().class_prompts.as_deref())?),
            None => None,
        };
        Ok(ContrastiveSvd {
            plan,
            eval,
            releases: RoundReleases::default(),
        })
    }
}

/// Reads a safetensors file named in the spec (on the coordinator).
fn read_tensors(path: &str, field: &str) -> Result<Vec<Tensor>, JobError> {
    let bytes = std::fs::read(path).map_err(|e| {
        JobError::Params(format!(
            "{field}: cannot read {path} on the coordinator: {e} (`silo job submit` makes relative paths absolute)"
        ))
    })?;
    read_safetensors(&bytes).map_err(|e| JobError::Params(format!("{field}: {path}: {e}")))
}

/// A 2-D f32 tensor `name` of `tensors` as (rows, columns, row-major data).
fn matrix(
    tensors: &[Tensor],
    name: &str,
    field: &str,
    path: &str,
) -> Result<(usize, usize, Vec<f32>), JobError> {
    let t = tensors
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| JobError::Params(format!("{field}: {path} has no tensor {name:?}")))?;
    if t.shape.len() != 2 {
        return Err(JobError::Params(format!(
            "{field}: {path}: tensor {name} has shape {:?}; expected [n, d]",
            t.shape
        )));
    }
    let data = t.to_f32();
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(JobError::Params(format!(
            "{field}: {path}: tensor {name} row {} has a non-finite value",
            i / t.shape[1].max(1)
        )));
    }
    Ok((t.shape[0], t.shape[1], data))
}

fn read_labels(tensors: &[Tensor], field: &str, path: &str) -> Result<Option<Vec<i64>>, JobError> {
    match tensors.iter().find(|t| t.name == "label") {
        Some(t) => t
            .to_i64()
            .map(Some)
            .map_err(|e| JobError::Params(format!("{field}: {path}: {e}"))),
        None => Ok(None),
    }
}

fn read_eval(path: &str, prompts: Option<&str>) -> Result<EvalSet, JobError> {
    let tensors = read_tensors(path, "params.eval")?;
    let (n, d1, image) = matrix(&tensors, "image", "params.eval", path)?;
    let (m, d2, text) = matrix(&tensors, "text", "params.eval", path)?;
    if n != m {
        return Err(JobError::Params(format!(
            "params.eval: {path}: {n} images but {m} texts"
        )));
    }
    let labels = read_labels(&tensors, "params.eval", path)?;
    let prompts = match prompts {
        Some(p) => {
            let tensors = read_tensors(p, "params.class_prompts")?;
            let (_, d, rows) = matrix(&tensors, "text", "params.class_prompts", p)?;
            let classes = read_labels(&tensors, "params.class_prompts", p)?.ok_or_else(|| {
                JobError::Params(format!("params.class_prompts: {p} has no label tensor"))
            })?;
            if d != d2 || classes.len() * d != rows.len() {
                return Err(JobError::Params(format!(
                    "params.class_prompts: {p}: prompts of {d} dimensions and {} labels do not match the {d2}-d text features",
                    classes.len()
                )));
            }
            Some((rows, classes))
        }
        None => None,
    };
    Ok(EvalSet {
        path: path.to_string(),
        image,
        text,
        d1,
        d2,
        labels,
        prompts,
    })
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
        if let Some(other) = self.releases.pending().values().next()
            && (other.d1, other.d2) != (release.d1, release.d2)
        {
            return Err(JobError::InvalidResult(format!(
                "features of {}×{} dimensions; other sites have {}×{}",
                release.d1, release.d2, other.d1, other.d2
            )));
        }
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
        let params = self.plan.params();
        let releases: Vec<&ContrastiveRelease> = self.releases.accepted().values().collect();
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
        let sites: Vec<&String> = self.releases.accepted().keys().collect();
        let epsilon_spent = ctx.epsilon_spent();
        let evaluation = match &self.eval {
            Some(e) if (e.d1, e.d2) == (d1, d2) => {
                let report = enc.evaluate(
                    &e.image,
                    &e.text,
                    e.labels.as_deref(),
                    e.prompts
                        .as_ref()
                        .map(|(p, c)| (p.as_slice(), c.as_slice())),
                );
                json!({ "file": e.path, "image_to_text": report })
            }
            Some(e) => {
                return Err(JobError::Aggregate(format!(
                    "the evaluation file {} has {}×{} features; the sites have {d1}×{d2}",
                    e.path, e.d1, e.d2
                )));
            }
            None => serde_json::Value::Null,
        };
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
            "evaluation": evaluation,
        });
        let summary = json!({
            "kind": "contrastive_svd",
            "sites": sites,
            "image_dim": d1,
            "text_dim": d2,
            "rank": r,
            "singular_values": enc.singular_values,
            "evaluation": evaluation,
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
