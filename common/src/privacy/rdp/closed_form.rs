//! Closed-form Rényi divergences: Gaussian, Laplace and pure-DP (randomized response).
//!
//! Each function takes parameters the caller has already validated (finite, > 0; order
//! finite and > 1) and returns the RDP ε(α) of one release, normalised by sensitivity.
//! The formulas are rearranged so that small privacy losses keep their digits: the naive
//! forms subtract two numbers near ln 2 and lose everything below 1e-16 in absolute terms,
//! which would round weak-but-nonzero losses *down*.

use std::f64::consts::LN_2;

/// RDP of the Gaussian mechanism with noise multiplier σ (noise std = σ · Δ₂): α / (2σ²).
///
/// # Privacy
///
/// - Neighbouring relation: add/remove one privacy unit; Δ₂ bounds how far the query's
///   output moves in L2 norm, so the two output distributions are N(μ, σ²Δ₂²) and
///   N(μ', σ²Δ₂²) with ‖μ − μ'‖₂ ≤ Δ₂.
/// - Normalisation: dividing by Δ₂ gives (in the direction of the shift) N(0, σ²) against
///   N(1, σ²), whose Rényi divergence of order α is α / (2σ²) in either direction
///   (Mironov 2017, arXiv 1702.07476, Prop. 7 and Table II); a shorter shift gives less.
/// - Guarantee: (α, α/(2σ²))-RDP at every α > 1.
/// - Rounding: one multiplication and one division, each correctly rounded; the relative
///   error (≤ 2 ulp) is far below what the (ε, δ) conversion can resolve.
pub(crate) fn gaussian(noise_multiplier: f64, order: f64) -> f64 {
    order / (2.0 * noise_multiplier * noise_multiplier)
}

/// RDP of the Laplace mechanism with scale b = `noise_multiplier` · Δ₁:
/// (1/(α−1)) ln( α/(2α−1) e^{(α−1)/b} + (α−1)/(2α−1) e^{−α/b} ).
///
/// # Privacy
///
/// - Neighbouring relation: add/remove one privacy unit; Δ₁ bounds the L1 change of the
///   query.
/// - Normalisation: with λ = b/Δ₁, one coordinate shifted by the whole Δ₁ is Lap(0, λ)
///   against Lap(1, λ). A shift split across coordinates is no worse: the per-coordinate
///   divergences add, and as a function of the shift d the divergence is a log-sum-exp of
///   affine functions of d (convex) that vanishes at d = 0, hence superadditive.
/// - Guarantee: the formula above, Mironov 2017 (arXiv 1702.07476), Prop. 6 (Table II);
///   it increases to the pure ε = 1/λ as α → ∞.
/// - Rounding: for (α−1)/λ ≤ 1 the argument of the logarithm is written as 1 + x with
///   x = [α·(e^{t₁}−1−t₁) + (α−1)·(e^{t₂}−1−t₂)] / (2α−1), t₁ = (α−1)/λ, t₂ = −α/λ: the
///   first-order terms cancel exactly on paper, leaving a sum of non-negative terms with
///   no cancellation. Larger arguments use log-space addition, where the result is large
///   and well conditioned.
pub(crate) fn laplace(noise_multiplier: f64, order: f64) -> f64 {
    let alpha = order;
    let inv_b = 1.0 / noise_multiplier;
    let t1 = (alpha - 1.0) * inv_b;
    let t2 = -alpha * inv_b;
    let denom = 2.0 * alpha - 1.0;
    let log_arg = if t1 <= 1.0 {
        let x = (alpha * expm1_minus_x(t1) + (alpha - 1.0) * expm1_minus_x(t2)) / denom;
        x.ln_1p()
    } else {
        let ln_denom = denom.ln();
        crate::privacy::special::log_add(
            alpha.ln() - ln_denom + t1,
            (alpha - 1.0).ln() - ln_denom + t2,
        )
    };
    // Never above the pure-DP bound 1/λ (D_α ≤ D_∞): only rounding could push it over.
    (log_arg / (alpha - 1.0)).min(inv_b)
}

/// RDP of any ε-DP mechanism, via its dominating pair: randomized response with
/// P = (p, 1−p), Q = (1−p, p), p = e^ε / (1 + e^ε).
///
/// D_α(P‖Q) = (1/(α−1)) ln( p^α (1−p)^{1−α} + (1−p)^α p^{1−α} )
///          = (1/(α−1)) [ ln cosh((α − ½)ε) − ln cosh(ε/2) ],
/// capped at ε.
///
/// # Privacy
///
/// - Neighbouring relation: add/remove one privacy unit, whatever the mechanism's own
///   notion of sensitivity: the event carries ε already.
/// - Guarantee: on each pair of neighbours an ε-DP mechanism's output can be simulated
///   by post-processing randomized response with the same ε (Kairouz, Oh & Viswanath
///   2015, arXiv 1311.0776; the dominating pair of Zhu, Dong & Wang 2022, arXiv
///   2106.08567), so by the data-processing inequality its Rényi divergences are at most
///   randomized response's, which Mironov 2017 (arXiv 1702.07476, Prop. 5) gives as the
///   first line above. The ln cosh form is the same number: factor e^{ε/2}·2cosh(·) out of
///   numerator and denominator. It never exceeds D_∞ = ε.
/// - Rounding: the ln cosh form has no cancellation for small ε (each ln cosh is computed
///   as ln1p(2 sinh²(x/2)) to full relative precision); the result is ≥ 0 by construction
///   since (α − ½)ε > ε/2 for α > 1.
pub(crate) fn pure_dp(epsilon: f64, order: f64) -> f64 {
    let value = (ln_cosh((order - 0.5) * epsilon) - ln_cosh(0.5 * epsilon)) / (order - 1.0);
    value.min(epsilon)
}

/// eᵗ − 1 − t to full relative precision (it is ≥ 0 for every t).
fn expm1_minus_x(t: f64) -> f64 {
    if t.abs() < 0.5 {
        // Taylor series t²/2! + t³/3! + …; |t| < 0.5 makes each term < half the previous,
        // so 30 terms reach far below one ulp.
        let mut term = t * t / 2.0;
        let mut sum = term;
        let mut k = 3.0;
        while term.abs() > sum.abs() * 1e-18 && k < 40.0 {
            term *= t / k;
            sum += term;
            k += 1.0;
        }
        sum
    } else {
        t.exp_m1() - t
    }
}

/// ln cosh x to full relative precision, without overflow.
fn ln_cosh(x: f64) -> f64 {
    let a = x.abs();
    if a < 1.0 {
        // cosh x − 1 = 2 sinh²(x/2): no cancellation for small x.
        let s = (0.5 * a).sinh();
        (2.0 * s * s).ln_1p()
    } else {
        a + (-2.0 * a).exp().ln_1p() - LN_2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn gaussian_closed_form() {
        assert_eq!(gaussian(1.0, 2.0), 1.0);
        assert_eq!(gaussian(2.0, 8.0), 1.0);
        assert!(rel(gaussian(0.7, 3.3), 3.3 / (2.0 * 0.49)) < 1e-15);
    }

    #[test]
    fn laplace_matches_naive_formula_where_it_is_well_conditioned() {
        for &b in &[0.3f64, 1.0, 2.0, 5.0] {
            for &a in &[1.1f64, 1.5, 2.0, 7.3, 40.0] {
                let naive = ((a / (2.0 * a - 1.0)) * ((a - 1.0) / b).exp()
                    + ((a - 1.0) / (2.0 * a - 1.0)) * (-a / b).exp())
                .ln()
                    / (a - 1.0);
                assert!(
                    rel(laplace(b, a), naive) < 1e-10,
                    "b={b} a={a}: {} vs {naive}",
                    laplace(b, a)
                );
            }
        }
    }

    #[test]
    fn laplace_tends_to_pure_epsilon() {
        for &b in &[0.5, 1.0, 3.0] {
            let big = laplace(b, 1e7);
            assert!(rel(big, 1.0 / b) < 1e-5, "b={b}: {big}");
            assert!(big <= 1.0 / b);
            // Monotone in α on the way there.
            assert!(laplace(b, 2.0) < laplace(b, 10.0));
            assert!(laplace(b, 10.0) < big);
        }
    }

    #[test]
    fn laplace_small_loss_keeps_its_digits() {
        // For large b, D_α ≈ α / (2b²) (second-order expansion of Prop. 6).
        let b = 1e6;
        let a = 3.0;
        assert!(rel(laplace(b, a), a / (2.0 * b * b)) < 1e-5);
    }

    #[test]
    fn pure_dp_is_randomized_response() {
        for &eps in &[0.01, 0.5, 1.0, 3.0, 20.0] {
            for &a in &[1.1, 2.0, 5.5, 63.0] {
                let v = pure_dp(eps, a);
                assert!(v > 0.0 && v <= eps, "eps={eps} a={a}: {v}");
                if eps <= 3.0 {
                    // The definition, evaluated directly where it is well conditioned.
                    let p = eps.exp() / (1.0 + eps.exp());
                    let direct = (p.powf(a) * (1.0 - p).powf(1.0 - a)
                        + (1.0 - p).powf(a) * p.powf(1.0 - a))
                    .ln()
                        / (a - 1.0);
                    assert!(rel(v, direct) < 1e-9, "eps={eps} a={a}: {v} vs {direct}");
                }
            }
        }
        // Small ε: D_α ≈ α ε² / 2 (Bun & Steinke 2016, arXiv 1605.02065, Prop. 1.4 is the
        // upper bound; randomized response attains it to second order).
        let eps = 1e-6;
        assert!(rel(pure_dp(eps, 2.0), eps * eps) < 1e-6);
        // Large α approaches ε from below.
        assert!(rel(pure_dp(1.0, 1e6), 1.0) < 1e-5);
    }

    #[test]
    fn helpers_are_accurate() {
        assert!(rel(expm1_minus_x(1e-8), 5e-17) < 1e-8);
        assert!(rel(expm1_minus_x(0.4), 0.4f64.exp() - 1.4) < 1e-14);
        assert!(rel(expm1_minus_x(-3.0), (-3.0f64).exp() + 2.0) < 1e-15);
        assert!(rel(ln_cosh(1e-5), 5e-11) < 1e-9);
        assert!(rel(ln_cosh(2.0), 2.0f64.cosh().ln()) < 1e-15);
        assert!(rel(ln_cosh(800.0), 800.0 - LN_2) < 1e-15);
    }
}
