//! RDP of the Poisson-subsampled Gaussian mechanism (the DP-SGD step).
//!
//! A port of Opacus's `opacus/accountants/analysis/rdp.py` (`_compute_rdp`,
//! `_compute_log_a`, `_compute_log_a_for_int_alpha`, `_compute_log_a_for_frac_alpha`),
//! itself from TensorFlow Privacy, which implements Mironov, Talwar & Zhang 2019,
//! "Rényi Differential Privacy of the Sampled Gaussian Mechanism" (arXiv 1908.10530),
//! Section 3.3. The algorithm and its stopping rule are Opacus's; the arithmetic differs
//! only where it is more accurate (`ln_1p(−q)` for ln(1 − q); the generalised binomial
//! coefficient accumulated in log space instead of SciPy's `binom` through the beta
//! function).

use crate::privacy::error::PrivacyError;
use crate::privacy::special::{log_add, log_erfc, log_sub};

/// Opacus stops the fractional-order series once both new terms are below e^{−30}.
const LOG_STOP: f64 = -30.0;

/// A guard against a series that never meets the stopping rule (parameters far outside
/// anything DP-SGD uses), and the largest order accepted: both sums have at least α terms.
/// Past i ≈ α the fractional terms decay like i^{−α−2}, so realistic inputs stop within a
/// few tens of thousands of terms.
const MAX_TERMS: u64 = 10_000_000;

/// RDP of one step of the Poisson-subsampled Gaussian mechanism at order α.
///
/// `sample_rate` q ∈ (0, 1], `noise_multiplier` σ > 0 and `order` α > 1 (finite) must
/// already be validated. q = 1 is the plain Gaussian, α / (2σ²).
///
/// # Privacy
///
/// - Neighbouring relation: add/remove one privacy unit. Each unit is included in the
///   batch independently with probability q; the batch sum of per-unit contributions
///   clipped to L2 norm C gets N(0, σ²C²) noise.
/// - Normalisation: dividing by the clipping norm C (the sensitivity of the sum under
///   add/remove) gives the pair μ₀ = N(0, σ²) and μ = (1 − q)N(0, σ²) + qN(1, σ²).
/// - Guarantee: ε(α) = ln A_α / (α − 1) with A_α = E_{z∼μ₀}[(μ(z)/μ₀(z))^α]. Mironov,
///   Talwar & Zhang 2019 (arXiv 1908.10530, Section 3) show D_α(μ‖μ₀) ≥ D_α(μ₀‖μ) for
///   these pairs, so A_α bounds both directions of add/remove. For integer
///   α, A_α is the finite binomial sum Σᵢ C(α,i) qⁱ(1−q)^{α−i} e^{(i²−i)/(2σ²)}; for
///   fractional α it is the convergent series of Section 3.3, split at z₀.
/// - Rounding: terms are combined in log space. The fractional series is cut off by
///   Opacus's rule (both new terms below e^{−30}). Past i > α + 1 the terms alternate in
///   sign with decreasing magnitude, so the omitted tail is smaller than the last term,
///   which is added once more to round A_α upward (a cut before that point is Opacus's
///   heuristic; the extra term still covers a tail of up to e^{−30}). Both change ε(α)
///   by at most e^{−30}/(α − 1) ≈ 1e-13/(α − 1). The result is never below 0 (A_α ≥ 1).
pub(crate) fn rdp(
    sample_rate: f64,
    noise_multiplier: f64,
    order: f64,
) -> Result<f64, PrivacyError> {
    let (q, sigma, alpha) = (sample_rate, noise_multiplier, order);
    if q == 1.0 {
        return Ok(super::closed_form::gaussian(sigma, alpha));
    }
    // Both sums need at least α terms; refuse rather than run for hours.
    if alpha > MAX_TERMS as f64 {
        return Err(PrivacyError::Numerical(format!(
            "order {alpha} is too large for the subsampled Gaussian series \
             (at most {MAX_TERMS})"
        )));
    }
    let log_a = if alpha.fract() == 0.0 {
        log_a_int(q, sigma, alpha as u64)
    } else {
        log_a_frac(q, sigma, alpha)?
    };
    if log_a.is_nan() {
        return Err(PrivacyError::Numerical(format!(
            "subsampled Gaussian RDP is NaN at q = {q}, sigma = {sigma}, order = {alpha}"
        )));
    }
    // A_α ≥ 1 (Jensen), so ln A_α ≥ 0; a tiny negative value is rounding.
    Ok((log_a / (alpha - 1.0)).max(0.0))
}

/// ln A_α for integer α: the exact binomial sum (`_compute_log_a_for_int_alpha`).
fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let ln_q = q.ln();
    let ln_1mq = (-q).ln_1p();
    let two_var = 2.0 * sigma * sigma;
    let n = alpha as f64;
    let mut log_a = f64::NEG_INFINITY;
    // ln C(α, i), accumulated as ln C(α, i−1) + ln((α − i + 1)/i).
    let mut log_binom = 0.0;
    for i in 0..=alpha {
        let fi = i as f64;
        if i > 0 {
            log_binom += (n - fi + 1.0).ln() - fi.ln();
        }
        let log_coef = log_binom + fi * ln_q + (n - fi) * ln_1mq;
        log_a = log_add(log_a, log_coef + (fi * fi - fi) / two_var);
    }
    log_a
}

/// ln A_α for fractional α: the two-sided series (`_compute_log_a_for_frac_alpha`).
///
/// The generalised binomial coefficient C(α, i) = α(α−1)…(α−i+1)/i! is tracked as
/// ln|C| and a sign, updated by the factor (α − i + 1)/i; it turns negative (and then
/// alternates) once i > α + 1.
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> Result<f64, PrivacyError> {
    let ln_q = q.ln();
    let ln_1mq = (-q).ln_1p();
    let two_var = 2.0 * sigma * sigma;
    let erfc_scale = std::f64::consts::SQRT_2 * sigma;
    let ln_half = -std::f64::consts::LN_2;
    // z₀ = σ² ln(1/q − 1) + ½, the point where the two mixture components cross.
    let z0 = sigma * sigma * (ln_1mq - ln_q) + 0.5;

    let mut log_a0 = f64::NEG_INFINITY;
    let mut log_a1 = f64::NEG_INFINITY;
    let mut log_abs_coef = 0.0;
    let mut coef_positive = true;
    let mut i: u64 = 0;
    loop {
        let fi = i as f64;
        if i > 0 {
            let factor = alpha - fi + 1.0;
            log_abs_coef += factor.abs().ln() - fi.ln();
            if factor < 0.0 {
                coef_positive = !coef_positive;
            }
        }
        let j = alpha - fi;

        let log_t0 = log_abs_coef + fi * ln_q + j * ln_1mq;
        let log_t1 = log_abs_coef + j * ln_q + fi * ln_1mq;

        let log_e0 = ln_half + log_erfc((fi - z0) / erfc_scale);
        let log_e1 = ln_half + log_erfc((z0 - j) / erfc_scale);

        let log_s0 = log_t0 + (fi * fi - fi) / two_var + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
        if log_s0.is_nan() || log_s1.is_nan() {
            return Err(PrivacyError::Numerical(format!(
                "subsampled Gaussian series term {i} is NaN at q = {q}, sigma = {sigma}, \
                 order = {alpha}"
            )));
        }

        if coef_positive {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            // Partial sums of the alternating tail stay positive; Opacus raises if not.
            log_a0 =
                log_sub(log_a0, log_s0).ok_or_else(|| negative_partial_sum(q, sigma, alpha))?;
            log_a1 =
                log_sub(log_a1, log_s1).ok_or_else(|| negative_partial_sum(q, sigma, alpha))?;
        }

        i += 1;
        let last = log_s0.max(log_s1);
        if last < LOG_STOP {
            // Round up: the omitted alternating tail is smaller than the last term.
            return Ok(log_add(log_add(log_a0, log_a1), last));
        }
        if i >= MAX_TERMS {
            return Err(PrivacyError::Numerical(format!(
                "subsampled Gaussian series did not converge in {MAX_TERMS} terms at \
                 q = {q}, sigma = {sigma}, order = {alpha}"
            )));
        }
    }
}

fn negative_partial_sum(q: f64, sigma: f64, alpha: f64) -> PrivacyError {
    PrivacyError::Numerical(format!(
        "subsampled Gaussian series went negative at q = {q}, sigma = {sigma}, order = {alpha}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn full_sampling_is_the_gaussian() {
        for &sigma in &[0.5, 1.0, 4.0] {
            for &alpha in &[1.1, 2.0, 7.5, 63.0] {
                assert_eq!(
                    rdp(1.0, sigma, alpha).unwrap(),
                    alpha / (2.0 * sigma * sigma)
                );
            }
        }
    }

    #[test]
    fn integer_formula_is_near_gaussian_for_q_near_one() {
        // q → 1 makes the mixture the plain Gaussian; the binomial sum must agree.
        let v = rdp(1.0 - 1e-12, 1.0, 4.0).unwrap();
        assert!(rel(v, 2.0) < 1e-9, "{v}");
    }

    #[test]
    fn integer_and_fractional_orders_are_continuous() {
        for &(q, sigma) in &[(0.01, 1.0), (0.1, 0.8), (0.001, 2.0), (0.5, 1.5)] {
            for &k in &[2.0, 3.0, 5.0, 12.0] {
                let exact = rdp(q, sigma, k).unwrap();
                let below = rdp(q, sigma, k - 1e-9).unwrap();
                let above = rdp(q, sigma, k + 1e-9).unwrap();
                assert!(
                    rel(below, exact) < 1e-6 && rel(above, exact) < 1e-6,
                    "q={q} sigma={sigma} k={k}: {below} {exact} {above}"
                );
            }
        }
    }

    #[test]
    fn never_above_the_gaussian_and_increasing_in_q_and_order() {
        let sigma = 1.1;
        for &alpha in &[1.5, 2.0, 4.4, 10.0, 32.0] {
            let mut prev = 0.0;
            for &q in &[1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9] {
                let v = rdp(q, sigma, alpha).unwrap();
                assert!(v > prev, "q={q} alpha={alpha}: {v} ≤ {prev}");
                assert!(v <= alpha / (2.0 * sigma * sigma));
                prev = v;
            }
        }
        let mut prev = 0.0;
        for &alpha in &[1.1, 1.5, 2.0, 2.5, 3.0, 8.0, 8.5, 20.0, 63.0] {
            let v = rdp(0.02, 0.9, alpha).unwrap();
            assert!(v >= prev, "alpha={alpha}");
            prev = v;
        }
    }

    #[test]
    fn small_q_matches_second_order_expansion() {
        // For small q, ε(α) ≈ q² α (e^{1/σ²} − 1) / 2 (Mironov et al. 2019, Section 3.3).
        let (q, sigma) = (1e-5f64, 2.0f64);
        for &alpha in &[2.0, 2.5, 10.0] {
            let approx = q * q * alpha * ((1.0 / (sigma * sigma)).exp_m1()) / 2.0;
            let v = rdp(q, sigma, alpha).unwrap();
            assert!(rel(v, approx) < 1e-3, "alpha={alpha}: {v} vs {approx}");
        }
    }

    #[test]
    fn integer_orders_match_expanded_binomial_sums() {
        // A₂ = 1 + q²(e^{1/σ²} − 1); A₃ = (1−q)³ + 3q(1−q)² + 3q²(1−q)e^{1/σ²} + q³e^{3/σ²}.
        for &(q, sigma) in &[(0.01f64, 1.0f64), (0.2, 0.7), (0.003, 3.0)] {
            let e1 = (1.0 / (sigma * sigma)).exp();
            let a2 = (q * q * (e1 - 1.0)).ln_1p();
            let got = rdp(q, sigma, 2.0).unwrap();
            assert!(
                rel(got, a2) < 1e-9,
                "q={q}: {got} vs {a2}: {}",
                rel(got, a2)
            );
            let p = 1.0 - q;
            let a3 = p.powi(3)
                + 3.0 * q * p * p
                + 3.0 * q * q * p * e1
                + q.powi(3) * (3.0 / (sigma * sigma)).exp();
            assert!(rel(rdp(q, sigma, 3.0).unwrap(), a3.ln() / 2.0) < 1e-9);
        }
    }

    #[test]
    fn absurd_orders_are_refused_not_looped_over() {
        assert!(matches!(
            rdp(0.01, 1.0, 1e8),
            Err(PrivacyError::Numerical(_))
        ));
        // q = 1 is closed form at any order.
        assert_eq!(rdp(1.0, 1.0, 1e8).unwrap(), 5e7);
    }
}
