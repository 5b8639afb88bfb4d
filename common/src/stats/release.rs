//! What a site releases for a `dp_stats` task: [`DpStatsRelease`], serialised as JSON in
//! the task result, parsed by the coordinator.
//!
//! Every number in it is either a noisy value, a noise standard deviation that is a
//! function of public parameters only, or a parameter from the job spec; the exact count
//! of rows or units never appears (DESIGN section 2, rule 1).

use serde::{Deserialize, Serialize};

use super::StatsError;
use crate::spec::{NoiseKind, Statistic};

/// One released quantity: the noisy value and the standard deviation of its noise.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoisyValue {
    /// The noisy value.
    pub value: f64,
    /// The standard deviation of the noise added to it (of the DP noise only: sampling
    /// variability of the data is not included). For derived quantities (a mean) the
    /// delta-method approximation.
    pub noise_std: f64,
}

impl NoisyValue {
    fn check(&self, what: &str) -> Result<(), StatsError> {
        if self.value.is_finite() && self.noise_std.is_finite() && self.noise_std >= 0.0 {
            Ok(())
        } else {
            Err(StatsError::NonFinite(format!(
                "{what} = {} (noise std {}): expected finite numbers",
                self.value, self.noise_std
            )))
        }
    }
}

/// The result of a `dp_stats` task at one site.
///
/// The fields present depend on the statistic: `count` → `count`; `sum` → `sum`; `mean` →
/// `sum`, `count` and the derived `mean`; `histogram` → `histogram` (one value per bin,
/// bins `[bins[i], bins[i+1])`, the last closed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpStatsRelease {
    /// The statistic.
    pub statistic: Statistic,
    /// The noise used.
    pub mechanism: NoiseKind,
    /// The ε this release was calibrated to (at `delta` for the Gaussian).
    pub epsilon: f64,
    /// The δ of the Gaussian calibration; `None` for Laplace (pure DP).
    pub delta: Option<f64>,
    /// The column summarised (`None` for a plain count).
    pub column: Option<String>,
    /// Clamp bounds of the column.
    pub lower: Option<f64>,
    /// Clamp bounds of the column.
    pub upper: Option<f64>,
    /// Most rows one unit contributed.
    pub max_rows_per_unit: u32,
    /// Histogram bin edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<Vec<f64>>,
    /// Noisy number of (bounded) rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<NoisyValue>,
    /// Noisy sum of the clamped column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<NoisyValue>,
    /// Noisy sum / noisy count (post-processing); absent when the noisy count is ≤ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<NoisyValue>,
    /// Noisy bin counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Vec<NoisyValue>>,
}

impl DpStatsRelease {
    /// Parses a release from JSON and checks every number is finite.
    pub fn from_json(bytes: &[u8]) -> Result<DpStatsRelease, StatsError> {
        let r: DpStatsRelease =
            serde_json::from_slice(bytes).map_err(|e| StatsError::Malformed(e.to_string()))?;
        r.validate()?;
        Ok(r)
    }

    /// The release as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a validated release always serialises")
    }

    /// Checks every number is finite and the fields match the statistic.
    pub fn validate(&self) -> Result<(), StatsError> {
        let has = |b: bool, what: &str| {
            if b {
                Ok(())
            } else {
                Err(StatsError::Malformed(format!(
                    "a {:?} release needs {what}",
                    self.statistic
                )))
            }
        };
        match self.statistic {
            Statistic::Count => has(self.count.is_some(), "count")?,
            Statistic::Sum => has(self.sum.is_some(), "sum")?,
            Statistic::Mean => has(self.sum.is_some() && self.count.is_some(), "sum and count")?,
            Statistic::Histogram => {
                has(
                    self.histogram.is_some() && self.bins.is_some(),
                    "histogram and bins",
                )?;
                let (h, b) = (
                    self.histogram.as_ref().unwrap(),
                    self.bins.as_ref().unwrap(),
                );
                if b.len() != h.len() + 1 {
                    return Err(StatsError::Malformed(format!(
                        "{} bin edges for {} bins: expected one more edge than bins",
                        b.len(),
                        h.len()
                    )));
                }
            }
        }
        for (name, v) in [
            ("count", &self.count),
            ("sum", &self.sum),
            ("mean", &self.mean),
        ] {
            if let Some(v) = v {
                v.check(name)?;
            }
        }
        for (i, v) in self.histogram.iter().flatten().enumerate() {
            v.check(&format!("histogram[{i}]"))?;
        }
        if !self.epsilon.is_finite() || self.epsilon <= 0.0 {
            return Err(StatsError::Malformed(format!(
                "epsilon {}: expected a finite number > 0",
                self.epsilon
            )));
        }
        Ok(())
    }
}

/// sum / count with the delta-method standard deviation of the ratio, from independent
/// noise on the two; `None` when the count is not positive.
///
/// Var(S/C) ≈ Var(S)/C² + S²·Var(C)/C⁴ (first-order Taylor expansion around the noisy
/// values; it understates the spread when the count is small relative to its noise).
pub fn ratio(sum: NoisyValue, count: NoisyValue) -> Option<NoisyValue> {
    if count.value.is_nan() || count.value <= 0.0 {
        return None;
    }
    let c = count.value;
    let value = sum.value / c;
    let var = (sum.noise_std / c).powi(2) + (sum.value * count.noise_std / (c * c)).powi(2);
    let out = NoisyValue {
        value,
        noise_std: var.sqrt(),
    };
    (out.value.is_finite() && out.noise_std.is_finite()).then_some(out)
}
