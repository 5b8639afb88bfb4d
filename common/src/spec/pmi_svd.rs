//! Parameters of a `pmi_svd` job (DESIGN §4.2 and §7).

use serde::{Deserialize, Serialize};

use super::{JobSpec, SpecIssue};

/// Largest vocabulary a job may count over: the packed upper triangle of 10,000 concepts
/// is 5·10⁷ cells (200 MB of f32 per site, 800 MB of f64 for the coordinator's dense
/// matrix), which is as far as one coordinator should go.
pub const MAX_VOCABULARY: usize = 10_000;

/// Validated `[params]` of a `pmi_svd` job. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PmiSvdParams {
    /// Length of the windows a patient's timeline is cut into; two concepts co-occur when
    /// they fall in the same window.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Embedding dimension d (rank of the truncated SVD).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// `"top:K"`: the K most frequent concepts, selected privately in a first round;
    /// otherwise the path of a CSV of concepts (`system,code` per line), read by the
    /// coordinator and sent to the sites.
    #[serde(default = "default_vocabulary")]
    pub vocabulary: String,
    /// Most distinct concept pairs one patient contributes (sampled uniformly when over):
    /// the L2 sensitivity of the released counts is √max_pairs_per_patient.
    #[serde(default = "default_max_pairs")]
    pub max_pairs_per_patient: u32,
    /// Summed cells below this count are dropped before PMI.
    #[serde(default = "default_count_threshold")]
    pub count_threshold: f64,
    /// The shift k of shifted positive PMI, max(PMI − ln k, 0).
    #[serde(default = "default_shift_k")]
    pub shift_k: f64,
    /// Optional related-pairs CSV (`system_a,code_a,system_b,code_b,relation`), read by
    /// the coordinator to evaluate the embeddings in the report.
    #[serde(default)]
    pub pairs: Option<String>,
    /// Vocabulary selection: most distinct concepts one patient contributes to the
    /// frequency counts (sampled uniformly when over); L2 sensitivity √ of it.
    #[serde(default = "default_max_concepts")]
    pub max_concepts_per_patient: u32,
    /// Vocabulary selection: the share of the job's Gaussian budget (of 1/σ², in (0, 1))
    /// spent on the concept frequencies; the rest goes to the co-occurrence counts.
    #[serde(default = "default_selection_share")]
    pub selection_share: f64,
    /// Vocabulary selection: the share of the job's δ (in (0, 1)) allowed for a concept
    /// held by one patient passing the release threshold.
    #[serde(default = "default_selection_delta_share")]
    pub selection_delta_share: f64,
    /// Besides `count_threshold`, summed cells below this many standard deviations of
    /// their noise are dropped. Default 0: on the synthetic benchmark any cut above the
    /// count threshold lowered the AUC (positive PMI and the truncated SVD already damp
    /// noise-only cells); raise it for vocabularies much larger than the signal.
    #[serde(default = "default_noise_cutoff")]
    pub noise_cutoff: f64,
    /// Seed of the randomized SVD's test matrix (the SVD is post-processing; the seed only
    /// makes the result reproducible).
    #[serde(default)]
    pub svd_seed: u64,
}

fn default_window_days() -> u32 {
    30
}
fn default_dim() -> usize {
    100
}
fn default_vocabulary() -> String {
    "top:2000".into()
}
fn default_max_pairs() -> u32 {
    1000
}
fn default_count_threshold() -> f64 {
    10.0
}
fn default_shift_k() -> f64 {
    1.0
}
fn default_max_concepts() -> u32 {
    100
}
fn default_selection_share() -> f64 {
    0.1
}
fn default_selection_delta_share() -> f64 {
    0.5
}
fn default_noise_cutoff() -> f64 {
    0.0
}

/// Where the job's vocabulary comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VocabularySource {
    /// The K most frequent concepts, selected with DP in a first round.
    Top(usize),
    /// A concept list the coordinator reads from this path.
    File(String),
}

impl PmiSvdParams {
    /// Reads and checks the params of a `pmi_svd` spec; reports every problem found.
    pub fn from_spec(spec: &JobSpec) -> Result<PmiSvdParams, Vec<SpecIssue>> {
        let issue = |field: &str, message: String| SpecIssue {
            field: field.to_string(),
            message,
        };
        // Every field has a default, so a spec without `[params]` is fine.
        let value = match &spec.params {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v.clone(),
        };
        let params: PmiSvdParams =
            serde_json::from_value(value).map_err(|e| vec![issue("params", e.to_string())])?;
        let mut issues = Vec::new();
        if params.window_days == 0 {
            issues.push(issue(
                "params.window_days",
                "expected at least 1 day".into(),
            ));
        }
        if params.dim == 0 {
            issues.push(issue("params.dim", "expected at least 1".into()));
        }
        match params.vocabulary_source() {
            Ok(VocabularySource::Top(k)) if !(2..=MAX_VOCABULARY).contains(&k) => {
                issues.push(issue(
                    "params.vocabulary",
                    format!("top:{k}: expected between 2 and {MAX_VOCABULARY} concepts"),
                ))
            }
            Ok(VocabularySource::Top(k)) if params.dim >= k => issues.push(issue(
                "params.dim",
                format!(
                    "{} is not below the vocabulary size {k}; expected dim < K",
                    params.dim
                ),
            )),
            Ok(_) => {}
            Err(message) => issues.push(issue("params.vocabulary", message)),
        }
        if params.max_pairs_per_patient == 0 {
            issues.push(issue(
                "params.max_pairs_per_patient",
                "expected at least 1".into(),
            ));
        }
        if !(params.count_threshold.is_finite() && params.count_threshold >= 0.0) {
            issues.push(issue(
                "params.count_threshold",
                format!("{}: expected a finite number ≥ 0", params.count_threshold),
            ));
        }
        if !(params.shift_k.is_finite() && params.shift_k > 0.0) {
            issues.push(issue(
                "params.shift_k",
                format!("{}: expected a finite number > 0", params.shift_k),
            ));
        }
        if let Some(p) = &params.pairs
            && p.trim().is_empty()
        {
            issues.push(issue(
                "params.pairs",
                "expected the path of a pairs CSV".into(),
            ));
        }
        if params.max_concepts_per_patient == 0 {
            issues.push(issue(
                "params.max_concepts_per_patient",
                "expected at least 1".into(),
            ));
        }
        for (field, value) in [
            ("params.selection_share", params.selection_share),
            ("params.selection_delta_share", params.selection_delta_share),
        ] {
            if !(value > 0.0 && value < 1.0) {
                issues.push(issue(
                    field,
                    format!("{value}: expected a number in (0, 1)"),
                ));
            }
        }
        if !(params.noise_cutoff.is_finite() && params.noise_cutoff >= 0.0) {
            issues.push(issue(
                "params.noise_cutoff",
                format!("{}: expected a finite number ≥ 0", params.noise_cutoff),
            ));
        }
        if spec.privacy.delta.is_none() {
            issues.push(issue(
                "privacy.delta",
                "pmi_svd releases Gaussian counts and needs a delta".into(),
            ));
        }
        if issues.is_empty() {
            Ok(params)
        } else {
            Err(issues)
        }
    }

    /// `top:K` or a file; an error message for a malformed `top:`.
    pub fn vocabulary_source(&self) -> Result<VocabularySource, String> {
        let v = self.vocabulary.trim();
        if let Some(k) = v.strip_prefix("top:") {
            return k
                .trim()
                .parse::<usize>()
                .map(VocabularySource::Top)
                .map_err(|_| {
                    format!(
                        "{v:?}: expected top:K with K a whole number, or the path of a concept CSV"
                    )
                });
        }
        if v.is_empty() {
            return Err("expected top:K or the path of a concept CSV".into());
        }
        Ok(VocabularySource::File(v.to_string()))
    }
}
