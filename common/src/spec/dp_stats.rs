//! Parameters of a `dp_stats` job.

use serde::{Deserialize, Serialize};

use super::{JobSpec, SpecIssue};

/// The statistic a `dp_stats` job releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    /// Number of rows (after contribution bounding).
    Count,
    /// Sum of a column clamped to [lower, upper].
    Sum,
    /// Mean of a column clamped to [lower, upper]: a noisy sum over a noisy count.
    Mean,
    /// Counts in declared bins.
    Histogram,
}

/// The noise a `dp_stats` job uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// Pure ε-DP (L1 sensitivity); the default when the spec has no δ.
    Laplace,
    /// (ε, δ)-DP (L2 sensitivity); needs `privacy.delta`.
    Gaussian,
}

/// Validated `[params]` of a `dp_stats` job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpStatsParams {
    /// Which statistic.
    pub statistic: Statistic,
    /// The numeric column (not needed for `count`).
    #[serde(default)]
    pub column: Option<String>,
    /// Lower clamp bound of the column.
    #[serde(default)]
    pub lower: Option<f64>,
    /// Upper clamp bound of the column.
    #[serde(default)]
    pub upper: Option<f64>,
    /// Histogram bin edges, strictly increasing (histogram only).
    #[serde(default)]
    pub bins: Option<Vec<f64>>,
    /// Laplace or Gaussian; defaults to Laplace without δ and Gaussian with δ.
    #[serde(default)]
    pub mechanism: Option<NoiseKind>,
    /// Most rows one privacy unit may contribute (default 1); extra rows are dropped.
    #[serde(default = "one")]
    pub max_rows_per_unit: u32,
}

fn one() -> u32 {
    1
}

impl DpStatsParams {
    /// Reads and checks the params of a `dp_stats` spec; reports every problem found.
    pub fn from_spec(spec: &JobSpec) -> Result<DpStatsParams, Vec<SpecIssue>> {
        let issue = |field: &str, message: String| SpecIssue {
            field: field.to_string(),
            message,
        };
        let params: DpStatsParams = serde_json::from_value(spec.params.clone())
            .map_err(|e| vec![issue("params", e.to_string())])?;
        let mut issues = Vec::new();
        let needs_column = params.statistic != Statistic::Count;
        if needs_column {
            match &params.column {
                Some(c) if !c.trim().is_empty() => {}
                _ => issues.push(issue(
                    "params.column",
                    "expected the numeric column to summarise".into(),
                )),
            }
            match (params.lower, params.upper) {
                (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo < hi => {}
                (Some(lo), Some(hi)) => issues.push(issue(
                    "params.lower",
                    format!("lower {lo} and upper {hi}: expected finite bounds with lower < upper"),
                )),
                _ => issues.push(issue(
                    "params.lower",
                    "expected both lower and upper clamp bounds".into(),
                )),
            }
        }
        match (params.statistic, &params.bins) {
            (Statistic::Histogram, Some(bins)) => {
                if bins.len() < 2 {
                    issues.push(issue(
                        "params.bins",
                        "expected at least two bin edges".into(),
                    ));
                } else if bins.iter().any(|b| !b.is_finite())
                    || bins.windows(2).any(|w| w[0] >= w[1])
                {
                    issues.push(issue(
                        "params.bins",
                        "expected finite, strictly increasing bin edges".into(),
                    ));
                }
            }
            (Statistic::Histogram, None) => issues.push(issue(
                "params.bins",
                "a histogram needs its bin edges declared".into(),
            )),
            (_, Some(_)) => issues.push(issue(
                "params.bins",
                "bins apply only to statistic = \"histogram\"".into(),
            )),
            (_, None) => {}
        }
        if params.max_rows_per_unit == 0 {
            issues.push(issue(
                "params.max_rows_per_unit",
                "expected at least 1".into(),
            ));
        }
        if params.noise_kind(spec) == NoiseKind::Gaussian && spec.privacy.delta.is_none() {
            issues.push(issue(
                "privacy.delta",
                "the Gaussian mechanism needs a delta".into(),
            ));
        }
        if issues.is_empty() {
            Ok(params)
        } else {
            Err(issues)
        }
    }

    /// The mechanism in effect: the declared one, else Laplace without δ, Gaussian with δ.
    pub fn noise_kind(&self, spec: &JobSpec) -> NoiseKind {
        self.mechanism.unwrap_or(if spec.privacy.delta.is_some() {
            NoiseKind::Gaussian
        } else {
            NoiseKind::Laplace
        })
    }
}
