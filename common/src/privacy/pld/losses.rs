//! Per-mechanism privacy loss curves and their hockey-stick divergences δ(ε): the input of
//! the connect-the-dots discretisation.
//!
//! A port of dp-accounting's `AdditiveNoisePrivacyLoss` (python/dp_accounting/pld/
//! privacy_loss_mechanism.py) for Gaussian and Laplace noise with Poisson subsampling.
//! Everything is normalised by sensitivity: the query moves by 1, the noise has scale σ or
//! b. Pure ε-DP mechanisms have no curve here: their dominating pair (randomized response)
//! is a two-point distribution built directly in [`super::pmf`].
//!
//! Conventions (dp-accounting's): the privacy loss at an output x is
//! ln(μ_upper(x) / μ_lower(x)) and is non-increasing in x, so the set of outputs with loss
//! ≥ ε is a half-line (−∞, x(ε)] and δ(ε) = μ_upper(x ≤ x(ε)) − e^ε μ_lower(x ≤ x(ε)).

use crate::privacy::error::{self, PrivacyError};
use crate::privacy::special;

/// ln of the noise mass dp-accounting discards before discretising
/// (`log_mass_truncation_bound = -50`); the discarded mass goes to +∞ loss.
#[cfg(test)]
const LOG_MASS_TRUNCATION_BOUND: f64 = -50.0;

/// Φ⁻¹(½·e⁻⁵⁰): the standard-normal quantile at which each Gaussian tail holds half of
/// dp-accounting's truncated mass e⁻⁵⁰ (SciPy's `norm.ppf(0.5 * exp(-50))`; checked
/// against `log_ndtr` in the tests).
const GAUSSIAN_TAIL_QUANTILE: f64 = -9.745_474_864_965_935;

/// Which neighbour plays the "upper" distribution μ_upper in the privacy loss.
///
/// Silo's unit of privacy is add/remove-one: the reported ε is the worse of the two
/// directions (for Poisson subsampling with q < 1 they differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adjacency {
    /// μ_upper = M(D), μ_lower = M(D ∪ {u}): the unit is added.
    Add,
    /// μ_upper = M(D), μ_lower = M(D ∖ {u}): the unit is removed.
    Remove,
}

/// The noise distribution μ of an additive mechanism, per unit of sensitivity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
    /// Normal noise with standard deviation σ (= noise multiplier).
    Gaussian {
        /// σ / Δ₂.
        sigma: f64,
    },
    /// Laplace noise with scale b (= noise multiplier).
    Laplace {
        /// b / Δ₁.
        scale: f64,
    },
}

impl Noise {
    fn cdf(self, x: f64) -> f64 {
        match self {
            Noise::Gaussian { sigma } => special::norm_cdf(x / sigma),
            Noise::Laplace { scale } => {
                if x < 0.0 {
                    0.5 * (x / scale).exp()
                } else {
                    1.0 - 0.5 * (-x / scale).exp()
                }
            }
        }
    }

    fn log_cdf(self, x: f64) -> f64 {
        match self {
            Noise::Gaussian { sigma } => special::log_ndtr(x / sigma),
            Noise::Laplace { scale } => {
                if x < 0.0 {
                    -std::f64::consts::LN_2 + x / scale
                } else {
                    (-0.5 * (-x / scale).exp()).ln_1p()
                }
            }
        }
    }

    /// Privacy loss without subsampling, REMOVE direction: ln(μ(x + 1) / μ(x)).
    fn loss_without_subsampling_remove(self, x: f64) -> f64 {
        match self {
            Noise::Gaussian { sigma } => (-0.5 - x) / (sigma * sigma),
            Noise::Laplace { scale } => (x.abs() - (x + 1.0).abs()) / scale,
        }
    }

    /// Largest x whose loss (no subsampling, REMOVE) is at least `loss`.
    fn inverse_loss_without_subsampling_remove(self, loss: f64) -> f64 {
        match self {
            Noise::Gaussian { sigma } => -0.5 - loss * sigma * sigma,
            Noise::Laplace { scale } => {
                let threshold = loss * scale;
                if threshold > 1.0 {
                    f64::NEG_INFINITY
                } else if threshold <= -1.0 {
                    f64::INFINITY
                } else {
                    0.5 * (-1.0 - threshold)
                }
            }
        }
    }
}

/// The privacy loss of an additive-noise mechanism with Poisson subsampling, in one
/// adjacency direction: the pair (μ_upper, μ_lower) whose hockey-stick divergence is the
/// mechanism's δ(ε). Build it with [`AdditiveNoiseLoss::gaussian`] or
/// [`AdditiveNoiseLoss::laplace`], whose docs state the guarantee.
///
/// # Privacy
///
/// - **Neighbouring relation**: add/remove one privacy unit, one direction per value
///   ([`Adjacency`]); callers take the worse direction.
/// - **Sensitivity**: normalised to 1. A query of sensitivity Δ with noise of scale σ·Δ
///   has exactly the loss of scale σ here, because the loss depends only on shift/scale.
/// - **Source**: dp-accounting's `AdditiveNoisePrivacyLoss` (Doroshenko et al. 2022,
///   arXiv 2207.04380), ported formula by formula.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdditiveNoiseLoss {
    noise: Noise,
    sampling_prob: f64,
    adjacency: Adjacency,
}

impl AdditiveNoiseLoss {
    /// The loss of `noise` after Poisson sampling with probability `sampling_prob`;
    /// σ or b must be finite and > 0, q in (0, 1].
    pub fn new(
        noise: Noise,
        sampling_prob: f64,
        adjacency: Adjacency,
    ) -> Result<Self, PrivacyError> {
        match noise {
            Noise::Gaussian { sigma } => error::positive("noise multiplier", sigma)?,
            Noise::Laplace { scale } => error::positive("laplace scale", scale)?,
        };
        error::sample_rate(sampling_prob)?;
        Ok(AdditiveNoiseLoss {
            noise,
            sampling_prob,
            adjacency,
        })
    }

    /// The Gaussian mechanism with noise multiplier σ, after Poisson sampling at rate q.
    ///
    /// # Privacy
    ///
    /// - **Neighbouring relation**: add/remove one unit. With μ = N(0, σ²), REMOVE compares
    ///   μ_upper = q·μ(x + 1) + (1 − q)·μ(x) with μ_lower = μ(x); ADD compares μ_upper =
    ///   μ(x) with μ_lower = q·μ(x − 1) + (1 − q)·μ(x). For q < 1 the two differ and both
    ///   are needed.
    /// - **Sensitivity**: L2, normalised: σ = noise standard deviation / Δ₂ (a unit shifts
    ///   the clipped sum by at most Δ₂).
    /// - **Guarantee**: δ(ε) is exact for this pair, which is the tight dominating pair of
    ///   the Poisson-subsampled Gaussian (Koskela, Jälkö & Honkela 2020, arXiv 1906.03049;
    ///   Zhu, Dong & Wang 2022, arXiv 2106.08567); for q = 1 it is the exact Gaussian curve
    ///   Φ(−εσ + 1/(2σ)) − e^ε Φ(−εσ − 1/(2σ)) of Balle & Wang 2018 (arXiv 1805.06530),
    ///   the same in both directions.
    pub fn gaussian(
        sigma: f64,
        sampling_prob: f64,
        adjacency: Adjacency,
    ) -> Result<Self, PrivacyError> {
        Self::new(Noise::Gaussian { sigma }, sampling_prob, adjacency)
    }

    /// The Laplace mechanism with scale b (no subsampling).
    ///
    /// # Privacy
    ///
    /// - **Neighbouring relation**: add/remove one unit; with μ = Lap(0, b) the pair is
    ///   (μ(x + 1), μ(x)), and both directions coincide by symmetry.
    /// - **Sensitivity**: L1, normalised: b = noise scale / Δ₁.
    /// - **Guarantee**: the loss lies in [−1/b, 1/b], i.e. pure (1/b)-DP, and
    ///   δ(ε) = 1 − e^{(ε − 1/b)/2} for |ε| < 1/b is exact, so composed Laplace releases
    ///   cost less than T/b (dp-accounting's `LaplacePrivacyLoss`; Koskela et al. 2020,
    ///   arXiv 1906.03049).
    pub fn laplace(scale: f64, adjacency: Adjacency) -> Result<Self, PrivacyError> {
        Self::new(Noise::Laplace { scale }, 1.0, adjacency)
    }

    fn subsampled(&self) -> bool {
        self.sampling_prob < 1.0
    }

    /// CDF of μ_upper at x.
    fn mu_upper_cdf(&self, x: f64) -> f64 {
        let q = self.sampling_prob;
        match self.adjacency {
            Adjacency::Add => self.noise.cdf(x),
            Adjacency::Remove if !self.subsampled() => self.noise.cdf(x + 1.0),
            Adjacency::Remove => (1.0 - q) * self.noise.cdf(x) + q * self.noise.cdf(x + 1.0),
        }
    }

    /// ln of the CDF of μ_lower at x.
    fn mu_lower_log_cdf(&self, x: f64) -> f64 {
        let q = self.sampling_prob;
        match self.adjacency {
            Adjacency::Remove => self.noise.log_cdf(x),
            Adjacency::Add if !self.subsampled() => self.noise.log_cdf(x - 1.0),
            Adjacency::Add => special::log_add(
                (-q).ln_1p() + self.noise.log_cdf(x),
                q.ln() + self.noise.log_cdf(x - 1.0),
            ),
        }
    }

    fn loss_remove(&self, x: f64) -> f64 {
        let without = self.noise.loss_without_subsampling_remove(x);
        if !self.subsampled() {
            return without;
        }
        // ln(1 − q + q·e^L) = ln1p(q·expm1(L)); when e^L overflows, L + ln q.
        let grown = self.sampling_prob * without.exp_m1();
        if grown.is_finite() {
            grown.ln_1p()
        } else {
            without + self.sampling_prob.ln()
        }
    }

    /// The privacy loss ln(μ_upper(x) / μ_lower(x)); non-increasing in x.
    pub fn privacy_loss(&self, x: f64) -> f64 {
        match self.adjacency {
            Adjacency::Remove => self.loss_remove(x),
            // By symmetry of μ the ADD loss is the REMOVE loss reflected.
            Adjacency::Add => -self.loss_remove(-x),
        }
    }

    /// The largest x whose privacy loss is at least `loss` (±∞ when none / all are).
    pub fn inverse_privacy_loss(&self, loss: f64) -> f64 {
        let q = self.sampling_prob;
        match self.adjacency {
            Adjacency::Remove => {
                if !self.subsampled() {
                    return self.noise.inverse_loss_without_subsampling_remove(loss);
                }
                // The REMOVE loss is always above ln(1 − q).
                let floor = (-q).ln_1p();
                if is_close(loss, floor) || loss <= floor {
                    return self
                        .noise
                        .inverse_loss_without_subsampling_remove(f64::NEG_INFINITY);
                }
                // Undo the subsampling: L = ln(1 + (e^ε − 1)/q).
                let ratio = loss.exp_m1() / q;
                let without = if ratio.is_finite() {
                    ratio.ln_1p()
                } else {
                    loss - q.ln()
                };
                self.noise.inverse_loss_without_subsampling_remove(without)
            }
            Adjacency::Add => {
                if !self.subsampled() {
                    return 1.0 + self.noise.inverse_loss_without_subsampling_remove(loss);
                }
                // The ADD loss is always below −ln(1 − q).
                let ceiling = -(-q).ln_1p();
                if is_close(loss, ceiling) {
                    return 1.0
                        + self
                            .noise
                            .inverse_loss_without_subsampling_remove(f64::INFINITY);
                }
                if loss > ceiling {
                    return f64::NEG_INFINITY;
                }
                // L = −ln(1 + (e^{−ε} − 1)/q).
                let ratio = (-loss).exp_m1() / q;
                let without = if ratio.is_finite() {
                    -ratio.ln_1p()
                } else {
                    loss + q.ln()
                };
                1.0 + self.noise.inverse_loss_without_subsampling_remove(without)
            }
        }
    }

    /// The ε-hockey-stick divergence sup over events of μ_upper(S) − e^ε μ_lower(S): the
    /// δ at which this one release is (ε, δ)-DP in this direction.
    pub fn delta_for_epsilon(&self, epsilon: f64) -> f64 {
        let q = self.sampling_prob;
        if self.subsampled() {
            match self.adjacency {
                // e^ε μ_lower ≥ μ_upper everywhere once ε ≥ −ln(1 − q).
                Adjacency::Add if epsilon >= -(-q).ln_1p() => return 0.0,
                // Every output has loss > ε: δ = 1 − e^ε.
                Adjacency::Remove if epsilon <= (-q).ln_1p() => {
                    return (-epsilon.exp_m1()).clamp(0.0, 1.0);
                }
                _ => {}
            }
        }
        let x = self.inverse_privacy_loss(epsilon);
        let delta = self.mu_upper_cdf(x) - (epsilon + self.mu_lower_log_cdf(x)).exp();
        // dp-accounting clips to [0, 1] against rounding; NaN would be a bug upstream and
        // is caught by the connect-the-dots validation.
        if delta.is_nan() {
            delta
        } else {
            delta.clamp(0.0, 1.0)
        }
    }

    /// δ(k·d) for k = `lo`..=`hi`: [`Self::delta_for_epsilon`] at every grid point.
    pub(crate) fn delta_grid(&self, lo: i64, hi: i64, d: f64) -> Vec<f64> {
        let mut deltas = Vec::with_capacity(usize::try_from(hi - lo + 1).unwrap_or(0));
        self.for_each_grid_delta(lo, hi, d, |_, delta, _| deltas.push(delta));
        deltas
    }

    /// Calls `f(k, δ(ε), e^ε − 1)` at ε = k·d for k = `lo`..=`hi` in order: the values of
    /// [`Self::delta_for_epsilon`] up to round-off (a few ulp of each CDF term).
    ///
    /// The subsampled Gaussian in the REMOVE direction, the case that matters for
    /// DP-SGD, has a faster path: μ_upper = (1 − q)·μ + q·μ(· + 1) and μ_lower = μ share
    /// Φ(x/σ), so δ = (1 − q)·Φ(x/σ) + q·Φ((x + 1)/σ) − e^ε·Φ(x/σ); e^ε is computed once
    /// per point (serving e^ε − 1 for the inverse loss as well); and both Φ's come from
    /// [`NormalCdfWalk`]s, since consecutive grid points move x only a little. Points
    /// where the general formula takes a special branch (ε at or below ln(1 − q),
    /// ε > 700, x/σ ∉ (−20, 5]) are evaluated by [`Self::delta_for_epsilon`] itself.
    pub(crate) fn for_each_grid_delta(
        &self,
        lo: i64,
        hi: i64,
        d: f64,
        mut f: impl FnMut(i64, f64, f64),
    ) {
        let fast = match self.noise {
            Noise::Gaussian { sigma }
                if self.adjacency == Adjacency::Remove && self.subsampled() =>
            {
                Some(sigma)
            }
            _ => None,
        };
        let Some(sigma) = fast else {
            for k in lo..=hi {
                let epsilon = k as f64 * d;
                f(k, self.delta_for_epsilon(epsilon), epsilon.exp_m1());
            }
            return;
        };
        let q = self.sampling_prob;
        let floor = (-q).ln_1p();
        let inv_sigma = 1.0 / sigma;
        let mut cdf_x = NormalCdfWalk::new();
        let mut cdf_x_plus_one = NormalCdfWalk::new();
        for k in lo..=hi {
            let epsilon = k as f64 * d;
            // e^ε − 1, accurate to ~1 ulp either way (e^ε − 1 is exact for e^ε ≥ 2).
            let exp_m1 = if epsilon < std::f64::consts::LN_2 {
                epsilon.exp_m1()
            } else {
                epsilon.exp() - 1.0
            };
            let general = epsilon <= floor || is_close(epsilon, floor) || epsilon > 700.0;
            // x(ε) as `inverse_privacy_loss` computes it: the subsampling undone, then the
            // Gaussian loss inverted. (For ratio ≥ 1, ln(1 + ratio) is as accurate as
            // ln_1p and cheaper.)
            let ratio = exp_m1 / q;
            let unsampled = if ratio >= 1.0 {
                (1.0 + ratio).ln()
            } else {
                ratio.ln_1p()
            };
            let x = -0.5 - unsampled * sigma * sigma;
            let z = x * inv_sigma;
            if general || !ratio.is_finite() || !(z > -20.0 && z <= 5.0) {
                f(k, self.delta_for_epsilon(epsilon), exp_m1);
                continue;
            }
            let cdf = cdf_x.cdf(z);
            let upper = (1.0 - q) * cdf + q * cdf_x_plus_one.cdf((x + 1.0) * inv_sigma);
            let delta = upper - (exp_m1 + 1.0) * cdf;
            f(
                k,
                if delta.is_nan() {
                    delta
                } else {
                    delta.clamp(0.0, 1.0)
                },
                exp_m1,
            );
        }
    }

    /// The same noise and sampling probability in the other adjacency direction.
    pub(crate) fn flipped(&self) -> Self {
        let adjacency = match self.adjacency {
            Adjacency::Add => Adjacency::Remove,
            Adjacency::Remove => Adjacency::Add,
        };
        AdditiveNoiseLoss { adjacency, ..*self }
    }

    /// The sampling probability q.
    pub(crate) fn sampling_prob(&self) -> f64 {
        self.sampling_prob
    }

    /// The adjacency direction.
    pub(crate) fn adjacency(&self) -> Adjacency {
        self.adjacency
    }

    /// The range of ε the connect-the-dots grid must cover, as (ε_lower, ε_upper).
    ///
    /// Losses above ε_upper carry at most ½·e⁻⁵⁰ of μ_upper's mass and become mass at +∞;
    /// losses below ε_lower are rounded up to ε_lower. Both are pessimistic.
    pub fn epsilon_bounds(&self) -> (f64, f64) {
        match self.noise {
            Noise::Gaussian { sigma } => {
                // dp-accounting truncates μ at its ½e⁻⁵⁰ quantiles and widens the window by the
                // sensitivity on one side. We cut each side where *μ_upper* has ½e⁻⁵⁰ left:
                // the same guarantee, and for q = 1 a loss window 1/σ² narrower (Gaussians
                // composed many times have a tiny σ, where dp-accounting's grid explodes).
                let z = GAUSSIAN_TAIL_QUANTILE * sigma; // negative
                let (lower_x, upper_x) = match self.adjacency {
                    // μ_upper = (1 − q)·N(0, σ²) + q·N(−1, σ²).
                    Adjacency::Remove if self.subsampled() => (z - 1.0, -z),
                    Adjacency::Remove => (z - 1.0, -z - 1.0),
                    // μ_upper = N(0, σ²).
                    Adjacency::Add => (z, -z),
                };
                (self.privacy_loss(upper_x), self.privacy_loss(lower_x))
            }
            Noise::Laplace { scale } => {
                let max = 1.0 / scale;
                let q = self.sampling_prob;
                if !self.subsampled() {
                    return (-max, max);
                }
                let up = (q * max.exp_m1()).ln_1p();
                let down = (q * (-max).exp_m1()).ln_1p();
                match self.adjacency {
                    Adjacency::Remove => (down, up),
                    Adjacency::Add => (-up, -down),
                }
            }
        }
    }
}

/// Python's `math.isclose` with its default relative tolerance 1e-9.
fn is_close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Taylor terms kept by [`NormalCdfWalk`].
const WALK_TERMS: usize = 9;

/// The largest |h|·(|a| + 3) [`NormalCdfWalk`] serves from an anchor a.
const WALK_REACH: f64 = 0.1;

/// The standard normal CDF Φ along a sequence of nearby points, by Taylor expansion
/// around exactly evaluated anchors: the connect-the-dots grid of a Gaussian loss asks for
/// Φ at ~10⁵ points that move by ~10⁻⁴ from one to the next, and a short polynomial in the
/// offset is several times cheaper than an erfc.
///
/// Around an anchor a, Φ(a + h) = Φ(a) + φ(a)·Σ_{n≥0} gₙ(a)·h^{n+1}/(n+1)!, where
/// gₙ = φ⁽ⁿ⁾/φ is the n-th probabilists' Hermite polynomial up to sign (g₀ = 1, g₁ = −a,
/// g_{n+1} = −a·gₙ − n·g_{n−1}). With |h|·(|a| + 3) ≤ 0.1 and nine terms the first
/// omitted term is below 3·10⁻¹⁷ of φ(a)·|h| ≤ 0.1·Φ(a + h) (|gₙ(a)| ≤ (|a| + √n)ⁿ), so
/// each value is as accurate as the anchor's erfc, a few ulp; points farther away become
/// new anchors.
struct NormalCdfWalk {
    anchor: f64,
    cdf: f64,
    /// φ(a)·gₙ(a)/(n+1)!: Φ(a + h) = Φ(a) + h·Σₙ coeffs[n]·hⁿ.
    coeffs: [f64; WALK_TERMS],
    /// The largest |h| served from the anchor.
    radius: f64,
}

impl NormalCdfWalk {
    /// A walk with no anchor yet.
    fn new() -> Self {
        NormalCdfWalk {
            anchor: 0.0,
            cdf: 0.5,
            coeffs: [0.0; WALK_TERMS],
            radius: -1.0,
        }
    }

    /// Φ(z).
    #[inline]
    fn cdf(&mut self, z: f64) -> f64 {
        let h = z - self.anchor;
        if h.abs() <= self.radius {
            // Σₙ cₙ·hⁿ by Estrin's scheme (a shallower dependency chain than Horner's).
            let c: &[f64; 9] = &self.coeffs;
            let h2 = h * h;
            let h4 = h2 * h2;
            let low = (c[0] + c[1] * h) + h2 * (c[2] + c[3] * h);
            let high = (c[4] + c[5] * h) + h2 * (c[6] + c[7] * h);
            let sum = low + h4 * (high + h4 * c[8]);
            return self.cdf + h * sum;
        }
        // Too far from the anchor (or no anchor, or NaN): z becomes the anchor.
        self.reanchor(z);
        self.cdf
    }

    #[cold]
    fn reanchor(&mut self, z: f64) {
        self.anchor = z;
        self.cdf = special::norm_cdf(z);
        if !z.is_finite() {
            self.radius = -1.0;
            return;
        }
        // φ(z) with z² split exactly into hi + lo, so the exponent carries no round-off.
        let hi = z * z;
        let lo = z.mul_add(z, -hi);
        let pdf = (-0.5 * hi).exp() * (1.0 - 0.5 * lo) / (2.0 * std::f64::consts::PI).sqrt();
        let (mut previous, mut g) = (0.0, 1.0);
        let mut factorial = 1.0;
        for (n, c) in self.coeffs.iter_mut().enumerate() {
            factorial *= (n + 1) as f64;
            *c = pdf * g / factorial;
            let next = -z * g - n as f64 * previous;
            (previous, g) = (g, next);
        }
        self.radius = WALK_REACH / (z.abs() + 3.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Balle & Wang's exact δ(ε) for the Gaussian mechanism with sensitivity 1.
    fn analytic_gaussian_delta(sigma: f64, eps: f64) -> f64 {
        special::norm_cdf(-eps * sigma + 0.5 / sigma)
            - eps.exp() * special::norm_cdf(-eps * sigma - 0.5 / sigma)
    }

    #[test]
    fn tail_quantile_matches_log_ndtr() {
        let target = 0.5f64.ln() + LOG_MASS_TRUNCATION_BOUND;
        assert!((special::log_ndtr(GAUSSIAN_TAIL_QUANTILE) - target).abs() < 1e-9);
    }

    #[test]
    fn gaussian_delta_matches_closed_form_both_directions() {
        for &sigma in &[0.5, 1.0, 3.0] {
            for &eps in &[0.0, 0.3, 1.0, 2.5] {
                let exact = analytic_gaussian_delta(sigma, eps);
                for adjacency in [Adjacency::Remove, Adjacency::Add] {
                    let got = AdditiveNoiseLoss::gaussian(sigma, 1.0, adjacency)
                        .unwrap()
                        .delta_for_epsilon(eps);
                    assert!(
                        (got - exact).abs() <= 1e-12 + 1e-9 * exact,
                        "σ={sigma} ε={eps} {adjacency:?}: {got} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn laplace_delta_matches_closed_form() {
        // δ(ε) = 1 − e^{(ε − 1/b)/2} for |ε| ≤ 1/b, 0 above.
        let b = 2.0;
        for &eps in &[0.0f64, 0.1, 0.3, 0.5, 0.7] {
            let exact = if eps >= 1.0 / b {
                0.0
            } else {
                1.0 - ((eps - 1.0 / b) / 2.0).exp()
            };
            let got = AdditiveNoiseLoss::laplace(b, Adjacency::Remove)
                .unwrap()
                .delta_for_epsilon(eps);
            assert!((got - exact).abs() < 1e-12, "ε={eps}: {got} vs {exact}");
        }
    }

    #[test]
    fn subsampled_losses_invert_and_directions_differ() {
        let q = 0.01;
        for adjacency in [Adjacency::Remove, Adjacency::Add] {
            let loss = AdditiveNoiseLoss::gaussian(1.0, q, adjacency).unwrap();
            for &x in &[-8.0, -2.0, 0.0, 1.5, 6.0] {
                let l = loss.privacy_loss(x);
                let back = loss.inverse_privacy_loss(l);
                assert!(
                    (back - x).abs() < 1e-6 * (1.0 + x.abs()),
                    "{adjacency:?} x={x}"
                );
            }
            // Non-increasing in x.
            assert!(loss.privacy_loss(-1.0) >= loss.privacy_loss(1.0));
        }
        let remove = AdditiveNoiseLoss::gaussian(1.0, q, Adjacency::Remove).unwrap();
        let add = AdditiveNoiseLoss::gaussian(1.0, q, Adjacency::Add).unwrap();
        // Past −ln(1 − q) the ADD divergence vanishes; the REMOVE one does not.
        let eps = 0.05;
        assert_eq!(add.delta_for_epsilon(eps), 0.0);
        assert!(remove.delta_for_epsilon(eps) > 0.0);
    }

    #[test]
    fn epsilon_bounds_cover_the_loss_range() {
        let loss = AdditiveNoiseLoss::gaussian(1.0, 0.01, Adjacency::Remove).unwrap();
        let (lo, hi) = loss.epsilon_bounds();
        assert!(lo < 0.0 && lo > -0.02, "{lo}");
        assert!(hi > 5.0 && hi < 6.0, "{hi}");
        assert!(loss.delta_for_epsilon(hi) < 1e-20);
        let add = AdditiveNoiseLoss::gaussian(1.0, 0.01, Adjacency::Add).unwrap();
        let (lo, hi) = add.epsilon_bounds();
        assert!(lo < -4.0 && hi > 0.0 && hi < 0.02, "{lo} {hi}");
    }

    #[test]
    fn constructors_reject_bad_parameters() {
        assert!(AdditiveNoiseLoss::gaussian(0.0, 0.5, Adjacency::Add).is_err());
        assert!(AdditiveNoiseLoss::gaussian(1.0, 0.0, Adjacency::Add).is_err());
        assert!(AdditiveNoiseLoss::gaussian(1.0, 1.5, Adjacency::Remove).is_err());
        assert!(AdditiveNoiseLoss::laplace(f64::NAN, Adjacency::Remove).is_err());
    }

    /// |Φ(z) − want| in units of the round-off of `special::norm_cdf` itself: its
    /// argument z/√2 carries half an ulp, which moves Φ by ~z²/2 ulp in the lower tail.
    fn error_units(got: f64, want: f64, z: f64) -> f64 {
        (got - want).abs() / (want * f64::EPSILON * (1.0 + z * z))
    }

    #[test]
    fn normal_cdf_walk_matches_erfc() {
        let mut walk = NormalCdfWalk::new();
        let mut worst: f64 = 0.0;
        let mut anchors = 0;
        // Down from 6 to −19 in steps growing from 1e-4 to 1e-2, then back up.
        let mut z = 6.0;
        let mut step = -1e-4;
        let mut radius = walk.radius;
        while z > -19.0 {
            let got = walk.cdf(z);
            if walk.radius != radius {
                anchors += 1;
                radius = walk.radius;
            }
            worst = worst.max(error_units(got, special::norm_cdf(z), z));
            z += step;
            step *= 1.0003;
        }
        while z < 6.0 {
            let got = walk.cdf(z);
            worst = worst.max(error_units(got, special::norm_cdf(z), z));
            z += 7e-4;
        }
        assert!(worst < 2.0, "worst error {worst} units");
        assert!(anchors > 10, "{anchors}");
    }

    #[test]
    fn grid_deltas_match_pointwise_deltas() {
        let d = 1e-4;
        for &(sigma, q) in &[
            (1.0, 0.01),
            (0.5, 0.001),
            (2.0, 0.3),
            (0.05, 0.02),
            (5.0, 0.99),
        ] {
            for adjacency in [Adjacency::Remove, Adjacency::Add] {
                let loss = AdditiveNoiseLoss::gaussian(sigma, q, adjacency).unwrap();
                let (lo, hi) = loss.epsilon_bounds();
                let (lo, hi) = ((lo / d).floor() as i64, (hi / d).ceil() as i64);
                let mut worst: f64 = 0.0;
                loss.for_each_grid_delta(lo, hi, d, |k, delta, exp_m1| {
                    let epsilon = k as f64 * d;
                    let want = loss.delta_for_epsilon(epsilon);
                    // Absolute round-off of the two CDF terms (≤ 1) that δ is a difference of.
                    worst = worst.max((delta - want).abs() / (1e-16 + 1e-13 * want));
                    assert!((exp_m1 - epsilon.exp_m1()).abs() <= 4e-16 * epsilon.exp_m1().abs());
                });
                assert!(worst <= 1.0, "σ={sigma} q={q} {adjacency:?}: {worst}");
            }
        }
    }
}
