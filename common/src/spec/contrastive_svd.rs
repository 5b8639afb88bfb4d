//! Parameters of a `contrastive_svd` job (DESIGN §4.3 and §7).

use serde::{Deserialize, Serialize};

use super::{JobSpec, SpecIssue};

/// Largest feature dimension a site releases a cross-covariance for (d1·d2 cells).
pub const MAX_FEATURE_DIM: usize = 4096;

/// Validated `[params]` of a `contrastive_svd` job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContrastiveSvdParams {
    /// Rank r of the SVD: the dimension of the shared space.
    #[serde(default = "default_rank")]
    pub rank: usize,
    /// Every image and text feature vector is clipped to this L2 norm.
    #[serde(default = "default_clip_norm")]
    pub clip_norm: f64,
    /// Weight λ of the non-matched-pair term.
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Whether sites also release the sums of their unpaired features (which refine the
    /// modality means used by the non-matched term).
    #[serde(default = "default_true")]
    pub use_unpaired: bool,
    /// Optional public evaluation file (safetensors `image`, `text`, optional `label`),
    /// read by the coordinator: the report gives image → text recall@1/5/10 on it.
    #[serde(default)]
    pub eval: Option<String>,
    /// Optional class prompts (safetensors `text` [K, d2], `label` [K]) for zero-shot
    /// accuracy on the evaluation file's labels.
    #[serde(default)]
    pub class_prompts: Option<String>,
}

fn default_rank() -> usize {
    8
}
fn default_clip_norm() -> f64 {
    1.0
}
fn default_lambda() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
}

impl ContrastiveSvdParams {
    /// Reads and checks the params of a `contrastive_svd` spec; reports every problem.
    pub fn from_spec(spec: &JobSpec) -> Result<ContrastiveSvdParams, Vec<SpecIssue>> {
        let issue = |field: &str, message: String| SpecIssue {
            field: field.to_string(),
            message,
        };
        let value = match &spec.params {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v.clone(),
        };
        let params: ContrastiveSvdParams =
            serde_json::from_value(value).map_err(|e| vec![issue("params", e.to_string())])?;
        let mut issues = Vec::new();
        if params.rank == 0 || params.rank > MAX_FEATURE_DIM {
            issues.push(issue(
                "params.rank",
                format!("{}: expected 1 to {MAX_FEATURE_DIM}", params.rank),
            ));
        }
        if !(params.clip_norm.is_finite() && params.clip_norm > 0.0) {
            issues.push(issue(
                "params.clip_norm",
                format!("{}: expected a finite number > 0", params.clip_norm),
            ));
        }
        if !(params.lambda.is_finite() && params.lambda >= 0.0) {
            issues.push(issue(
                "params.lambda",
                format!("{}: expected a finite number ≥ 0", params.lambda),
            ));
        }
        if params.class_prompts.is_some() && params.eval.is_none() {
            issues.push(issue(
                "params.class_prompts",
                "class prompts need an `eval` file with labels to classify".into(),
            ));
        }
        if spec.privacy.delta.is_none() {
            issues.push(issue(
                "privacy.delta",
                "contrastive_svd releases Gaussian sums and needs a delta".into(),
            ));
        }
        if issues.is_empty() {
            Ok(params)
        } else {
            Err(issues)
        }
    }
}
