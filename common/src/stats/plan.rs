//! Calibration and release of a `dp_stats` job: [`DpStatsPlan`].
//!
//! The plan is computed from the job spec alone (no data), so the site can check its
//! policy and budget against the plan's privacy events *before* it reads anything, then
//! aggregate, charge the ledger, and only then add noise ([`DpStatsPlan::release`]).
//!
//! Quantities, with m = `max_rows_per_unit` and B = max(|lower|, |upper|):
//!
//! | statistic | released | L1 sensitivity | L2 sensitivity |
//! | --- | --- | --- | --- |
//! | count | number of bounded rows | m | m |
//! | sum | Σ clamp(x, lower, upper) | m·B | m·B |
//! | mean | the sum and the count above (mean = noisy sum / noisy count) | both | both |
//! | histogram | rows per bin | m | m |
//!
//! Noise: Laplace with b = Δ₁/ε (pure ε-DP), or Gaussian with σ = z·Δ₂ where z is the
//! smallest noise multiplier for which the PLD accountant certifies (ε, δ) at the job's δ
//! ([`crate::privacy::calibrate::gaussian`]). A mean is two releases: with Laplace each
//! gets ε/2 (basic composition); with Gaussian both get the same z, calibrated for the
//! 2-fold composition. Counts are released as real numbers (OpenDP's exact float samplers
//! for a secure source); rounding them is post-processing left to the reader.

use serde_json::json;

use super::StatsError;
use super::release::{DpStatsRelease, NoisyValue, ratio};
use crate::privacy::Composition;
use crate::privacy::calibrate;
use crate::privacy::mechanisms::{GaussianMechanism, LaplaceMechanism, Mechanism};
use crate::privacy::noise::NoiseSource;
use crate::privacy::pld::PldAccountant;
use crate::spec::{DpStatsParams, JobKind, JobSpec, NoiseKind, Statistic};

/// Relative amount added to a calibrated Gaussian σ so that the mechanism's noise
/// multiplier, after its own downward rounding, is still at least the calibrated one.
const SIGMA_MARGIN: f64 = 1e-9;

/// Which quantity a mechanism releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quantity {
    Count,
    Sum,
    Histogram,
}

impl Quantity {
    fn name(self) -> &'static str {
        match self {
            Quantity::Count => "count",
            Quantity::Sum => "sum",
            Quantity::Histogram => "histogram",
        }
    }
}

/// The noise of one quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Noise {
    Laplace(LaplaceMechanism),
    Gaussian(GaussianMechanism),
}

impl Noise {
    fn mechanism(&self) -> &dyn Mechanism {
        match self {
            Noise::Laplace(m) => m,
            Noise::Gaussian(m) => m,
        }
    }

    /// Standard deviation of one coordinate's noise: b·√2 for Laplace, σ for Gaussian.
    fn std(&self) -> f64 {
        match self {
            Noise::Laplace(m) => m.scale() * std::f64::consts::SQRT_2,
            Noise::Gaussian(m) => m.sigma(),
        }
    }

    fn add<R: NoiseSource + ?Sized>(
        &self,
        values: &mut [f64],
        rng: &mut R,
    ) -> Result<(), StatsError> {
        match self {
            Noise::Laplace(m) => m.release_f64(values, rng)?,
            Noise::Gaussian(m) => m.release_f64(values, rng)?,
        }
        Ok(())
    }
}

/// One mechanism use: a quantity, its sensitivity bound and its noise.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Part {
    quantity: Quantity,
    /// Largest change of the quantity (in the mechanism's norm) from adding or removing one
    /// unit's rows after bounding.
    sensitivity: f64,
    noise: Noise,
}

/// The calibrated plan of a `dp_stats` release: what will be computed, with which noise,
/// and the privacy events to charge. Built from the spec alone.
///
/// # Privacy
///
/// - **Neighbouring relation:** add/remove one privacy unit (all of its rows). The caller
///   bounds each unit to at most m = `max_rows_per_unit` rows
///   ([`super::bound_contributions`]) and the plan clamps values to [lower, upper]
///   ([`DpStatsPlan::aggregate`]). Clamping the *data* is part of contribution bounding
///   (it is what makes the sensitivity finite); it is not a clamp of any privacy
///   parameter, which are rejected when invalid.
/// - **Sensitivity:** count: one unit adds or removes ≤ m rows, so |Δcount| ≤ m (L1 = L2);
///   sum: ≤ m terms each of magnitude ≤ B = max(|lower|, |upper|), so |Δsum| ≤ m·B;
///   histogram: each row falls in at most one bin, so the bin counts change by ≤ m in L1,
///   and in L2 by ≤ m too (worst case: all m rows in one bin; √(Σ cᵢ²) ≤ Σ cᵢ).
/// - **Guarantee:** Laplace: the statistic is ε-DP (mean: two ε/2-DP releases, ε-DP by
///   basic composition). Gaussian: (ε, δ)-DP at the job δ as certified by the PLD
///   accountant for the 1- or 2-fold composition. The ledger charges the exact events
///   ([`DpStatsPlan::events`]), not the target.
/// - **Papers:** Dwork, McSherry, Nissim & Smith 2006 (Laplace, doi:10.1007/11681878_14);
///   Dwork & Roth 2014, Thm A.1 (Gaussian); Doroshenko et al. 2022, arXiv 2207.04380 (PLD
///   calibration); Canonne, Kamath & Steinke 2020, arXiv 2004.00010 (exact samplers).
#[derive(Clone, Debug, PartialEq)]
pub struct DpStatsPlan {
    params: DpStatsParams,
    noise: NoiseKind,
    epsilon: f64,
    delta: Option<f64>,
    parts: Vec<Part>,
}

/// The exact (un-noised) aggregate of a site's data.
///
/// Secret: it never leaves the site and has no `Serialize`, `Clone` or revealing `Debug`.
/// The only way out is [`DpStatsPlan::release`], which adds the noise.
pub struct ExactAggregate {
    /// One vector per plan part (a scalar is a vector of one).
    values: Vec<Vec<f64>>,
}

impl std::fmt::Debug for ExactAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExactAggregate { .. }")
    }
}

impl DpStatsPlan {
    /// Validates the spec's `dp_stats` params and calibrates the noise.
    pub fn new(spec: &JobSpec) -> Result<DpStatsPlan, StatsError> {
        if spec.kind != JobKind::DpStats {
            return Err(StatsError::Spec(format!(
                "a {} job is not dp_stats",
                spec.kind
            )));
        }
        let params = DpStatsParams::from_spec(spec)
            .map_err(|issues| StatsError::Spec(crate::spec::describe(&issues)))?;
        let noise = params.noise_kind(spec);
        let epsilon = spec.privacy.epsilon;
        let m = f64::from(params.max_rows_per_unit);
        let bound = match (params.lower, params.upper) {
            (Some(lo), Some(hi)) => lo.abs().max(hi.abs()),
            _ => 0.0,
        };
        let quantities: Vec<(Quantity, f64)> = match params.statistic {
            Statistic::Count => vec![(Quantity::Count, m)],
            Statistic::Sum => vec![(Quantity::Sum, m * bound)],
            Statistic::Mean => vec![(Quantity::Sum, m * bound), (Quantity::Count, m)],
            Statistic::Histogram => vec![(Quantity::Histogram, m)],
        };
        if quantities.iter().any(|(_, s)| !(s.is_finite() && *s > 0.0)) {
            return Err(StatsError::Spec(format!(
                "params: the sensitivity m·max(|lower|, |upper|) = {} is not a finite number > 0; \
                 expected bounds with max(|lower|, |upper|) > 0",
                m * bound
            )));
        }
        let k = quantities.len() as u64;
        let parts = match noise {
            NoiseKind::Laplace => {
                let share = epsilon / k as f64;
                quantities
                    .into_iter()
                    .map(|(quantity, s)| {
                        Ok(Part {
                            quantity,
                            sensitivity: s,
                            noise: Noise::Laplace(LaplaceMechanism::from_epsilon(s, share)?),
                        })
                    })
                    .collect::<Result<Vec<_>, StatsError>>()?
            }
            NoiseKind::Gaussian => {
                let delta = spec.privacy.delta.ok_or_else(|| {
                    StatsError::Spec("privacy.delta: the Gaussian mechanism needs a delta".into())
                })?;
                let z = calibrate::gaussian(&PldAccountant::default(), epsilon, delta, k)?
                    .noise_multiplier;
                quantities
                    .into_iter()
                    .map(|(quantity, s)| {
                        let sigma = z * s * (1.0 + SIGMA_MARGIN);
                        Ok(Part {
                            quantity,
                            sensitivity: s,
                            noise: Noise::Gaussian(GaussianMechanism::new(s, sigma)?),
                        })
                    })
                    .collect::<Result<Vec<_>, StatsError>>()?
            }
        };
        Ok(DpStatsPlan {
            params,
            noise,
            epsilon,
            delta: match noise {
                NoiseKind::Laplace => None,
                NoiseKind::Gaussian => spec.privacy.delta,
            },
            parts,
        })
    }

    /// The validated params.
    pub fn params(&self) -> &DpStatsParams {
        &self.params
    }

    /// The noise kind.
    pub fn noise(&self) -> NoiseKind {
        self.noise
    }

    /// The privacy events of this release, to charge before it happens.
    pub fn events(&self) -> Vec<Composition> {
        self.parts
            .iter()
            .map(|p| Composition::new(p.noise.mechanism().event(), 1))
            .collect()
    }

    /// The mechanism's name for the ledger (`laplace`, `gaussian`).
    pub fn mechanism_name(&self) -> &'static str {
        match self.noise {
            NoiseKind::Laplace => "laplace",
            NoiseKind::Gaussian => "gaussian",
        }
    }

    /// Parameters for the ledger: the statistic, bounds, and each part's noise.
    pub fn parameters_json(&self) -> serde_json::Value {
        let parts: Vec<_> = self
            .parts
            .iter()
            .map(|p| {
                let mech = p.noise.mechanism();
                json!({
                    "quantity": p.quantity.name(),
                    "noise_scale": mech.noise_scale(),
                    "noise_std": p.noise.std(),
                    "guarantee": mech.guarantee(),
                })
            })
            .collect();
        json!({
            "statistic": self.params.statistic,
            "column": self.params.column,
            "lower": self.params.lower,
            "upper": self.params.upper,
            "bins": self.params.bins,
            "max_rows_per_unit": self.params.max_rows_per_unit,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "parts": parts,
        })
    }

    /// Sensitivities for the ledger, with the reason in words.
    pub fn sensitivity_json(&self) -> serde_json::Value {
        let norm = match self.noise {
            NoiseKind::Laplace => "l1",
            NoiseKind::Gaussian => "l2",
        };
        let m = self.params.max_rows_per_unit;
        let parts: Vec<_> = self
            .parts
            .iter()
            .map(|p| {
                let why = match p.quantity {
                    Quantity::Count => format!("one unit adds or removes at most {m} rows"),
                    Quantity::Sum => format!("at most {m} rows per unit, each clamped to magnitude max(|lower|, |upper|)"),
                    Quantity::Histogram => format!("at most {m} rows per unit, each in at most one bin"),
                };
                json!({ "quantity": p.quantity.name(), "norm": norm, "value": p.sensitivity, "why": why })
            })
            .collect();
        json!({ "relation": "add/remove one privacy unit", "parts": parts })
    }

    /// The guarantee in words, for the ledger and logs.
    pub fn guarantee(&self, privacy_unit: &str) -> String {
        match self.delta {
            None => format!(
                "({}, 0)-DP (Laplace), add/remove one {privacy_unit}",
                self.epsilon
            ),
            Some(d) => format!(
                "({}, {d:e})-DP (Gaussian, PLD-calibrated), add/remove one {privacy_unit}",
                self.epsilon
            ),
        }
    }

    /// Computes the exact aggregate of `values`: the column values of the rows kept after
    /// contribution bounding (any numbers for a count; only their number matters).
    ///
    /// Values are clamped to [lower, upper]; histogram rows outside the bin range (after
    /// clamping) fall in no bin. Refuses a non-finite input or result before anything is
    /// charged.
    pub fn aggregate(&self, values: &[f64]) -> Result<ExactAggregate, StatsError> {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(StatsError::NonFinite(format!(
                "input value {i} is {}: expected finite values",
                values[i]
            )));
        }
        let clamp = |x: f64| match (self.params.lower, self.params.upper) {
            (Some(lo), Some(hi)) => x.clamp(lo, hi),
            _ => x,
        };
        let out: Vec<Vec<f64>> = self
            .parts
            .iter()
            .map(|p| match p.quantity {
                Quantity::Count => vec![values.len() as f64],
                Quantity::Sum => vec![values.iter().map(|&x| clamp(x)).sum()],
                Quantity::Histogram => {
                    let edges = self.params.bins.as_deref().unwrap_or_default();
                    let mut counts = vec![0.0; edges.len().saturating_sub(1)];
                    for &x in values {
                        if let Some(bin) = bin_of(edges, clamp(x)) {
                            counts[bin] += 1.0;
                        }
                    }
                    counts
                }
            })
            .collect();
        for (p, v) in self.parts.iter().zip(&out) {
            if v.iter().any(|x| !x.is_finite()) {
                return Err(StatsError::NonFinite(format!(
                    "the exact {} is not finite (overflow?); refusing to release it",
                    p.quantity.name()
                )));
            }
        }
        Ok(ExactAggregate { values: out })
    }

    /// Adds the noise and builds the release. Call only after the plan's events have been
    /// charged durably (DESIGN section 2, rule 2).
    ///
    /// `rng` must be a [`crate::privacy::noise::SecureRng`] for a real release.
    pub fn release<R: NoiseSource + ?Sized>(
        &self,
        aggregate: ExactAggregate,
        rng: &mut R,
    ) -> Result<DpStatsRelease, StatsError> {
        if aggregate.values.len() != self.parts.len() {
            return Err(StatsError::Malformed(
                "the aggregate does not belong to this plan".into(),
            ));
        }
        let mut release = DpStatsRelease {
            statistic: self.params.statistic,
            mechanism: self.noise,
            epsilon: self.epsilon,
            delta: self.delta,
            column: self.params.column.clone(),
            lower: self.params.lower,
            upper: self.params.upper,
            max_rows_per_unit: self.params.max_rows_per_unit,
            bins: self.params.bins.clone(),
            count: None,
            sum: None,
            mean: None,
            histogram: None,
        };
        for (p, mut values) in self.parts.iter().zip(aggregate.values) {
            p.noise.add(&mut values, rng)?;
            let std = p.noise.std();
            let noisy: Vec<NoisyValue> = values
                .iter()
                .map(|&value| NoisyValue {
                    value,
                    noise_std: std,
                })
                .collect();
            match p.quantity {
                Quantity::Count => release.count = noisy.first().copied(),
                Quantity::Sum => release.sum = noisy.first().copied(),
                Quantity::Histogram => release.histogram = Some(noisy),
            }
        }
        if let (Statistic::Mean, Some(s), Some(c)) =
            (self.params.statistic, release.sum, release.count)
        {
            release.mean = ratio(s, c);
        }
        release.validate()?;
        Ok(release)
    }
}

/// The bin of `x`: `[edges[i], edges[i+1])`, the last bin closed; `None` outside.
fn bin_of(edges: &[f64], x: f64) -> Option<usize> {
    let n = edges.len();
    if n < 2 || x < edges[0] || x > edges[n - 1] {
        return None;
    }
    // First edge strictly greater than x, minus one; x == last edge goes in the last bin.
    let upper = edges.partition_point(|&e| e <= x);
    Some(upper.saturating_sub(1).min(n - 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_half_open_and_the_last_is_closed() {
        let e = [0.0, 18.0, 40.0, 65.0, 120.0];
        assert_eq!(bin_of(&e, 0.0), Some(0));
        assert_eq!(bin_of(&e, 17.9), Some(0));
        assert_eq!(bin_of(&e, 18.0), Some(1));
        assert_eq!(bin_of(&e, 120.0), Some(3));
        assert_eq!(bin_of(&e, 120.1), None);
        assert_eq!(bin_of(&e, -1.0), None);
    }
}
