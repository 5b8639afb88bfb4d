//! Special functions the accountants share: normal CDF and its logarithm, log-space sums.
//!
//! `libm`'s `erfc` is accurate to a few ulp over its whole range; the log-CDF switches to
//! the asymptotic series deep in the lower tail, where `erfc` would underflow.

use std::f64::consts::{LN_2, PI, SQRT_2};

/// Standard normal CDF Φ(x).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / SQRT_2)
}

/// Standard normal survival function 1 − Φ(x), accurate in the upper tail.
pub fn norm_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / SQRT_2)
}

/// ln Φ(x), accurate for all x (the role of SciPy's `log_ndtr`).
pub fn log_ndtr(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x > 5.0 {
        // Φ(x) = 1 − sf(x) with sf tiny: log1p keeps the digits.
        (-norm_sf(x)).ln_1p()
    } else if x > -20.0 {
        norm_cdf(x).ln()
    } else {
        // Asymptotic expansion: Φ(x) = φ(x)/|x| · (1 − 1/x² + 3/x⁴ − 15/x⁶ + 105/x⁸ − …).
        let x2 = x * x;
        let inv = 1.0 / x2;
        let series = 1.0 - inv * (1.0 - 3.0 * inv * (1.0 - 5.0 * inv * (1.0 - 7.0 * inv)));
        -0.5 * x2 - 0.5 * (2.0 * PI).ln() - (-x).ln() + series.ln()
    }
}

/// ln erfc(x), as Opacus computes it: ln 2 + ln Φ(−x√2).
pub fn log_erfc(x: f64) -> f64 {
    LN_2 + log_ndtr(-x * SQRT_2)
}

/// ln(eᵃ + eᵇ) without overflow; −∞ is the additive identity.
pub fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// ln(eᵃ − eᵇ) for a ≥ b; returns −∞ when a = b. `None` when b > a (negative result).
pub fn log_sub(a: f64, b: f64) -> Option<f64> {
    if b > a {
        return None;
    }
    if b == f64::NEG_INFINITY {
        return Some(a);
    }
    if a == b {
        return Some(f64::NEG_INFINITY);
    }
    // ln(eᵃ − eᵇ) = a + ln(1 − e^{b−a}); ln(−expm1) is accurate when b − a is small.
    Some(a + (-(b - a).exp_m1()).ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_matches_known_values() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-16);
        assert!((norm_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
        // Φ(−10) = 7.619853024160527e-24 (mpmath).
        assert!((norm_cdf(-10.0) / 7.619_853_024_160_527e-24 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn log_ndtr_is_continuous_across_branches() {
        for &x in &[-20.0f64, 5.0] {
            let below = log_ndtr(x - 1e-9);
            let above = log_ndtr(x + 1e-9);
            assert!(
                (below - above).abs() < 1e-6 * below.abs().max(1e-12),
                "x={x}: {below} vs {above}"
            );
        }
        // ln Φ(−40) = −804.6084420137538 (mpmath).
        assert!((log_ndtr(-40.0) + 804.608_442_013_753_8).abs() < 1e-9);
    }

    #[test]
    fn log_space_arithmetic() {
        assert!((log_add(2f64.ln(), 3f64.ln()) - 5f64.ln()).abs() < 1e-15);
        assert_eq!(log_add(f64::NEG_INFINITY, 1.0), 1.0);
        assert!((log_sub(5f64.ln(), 3f64.ln()).unwrap() - 2f64.ln()).abs() < 1e-15);
        assert_eq!(log_sub(1.0, 2.0), None);
    }
}
