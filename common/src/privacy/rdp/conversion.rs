//! From an RDP curve to (ε, δ): the improved conversion of Balle et al. 2020.
//!
//! Opacus's `get_privacy_spent` and Google's dp-accounting both use it; it is tighter than
//! Mironov's original ε = ρ(α) + ln(1/δ)/(α − 1) by roughly ln(α)/(α − 1).

use crate::privacy::error::{self, PrivacyError};

/// An (ε, δ) guarantee read off an RDP curve, with the order that gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RdpEpsilon {
    /// The smallest ε over the order grid (0 for an empty history, +∞ when every order's
    /// divergence is infinite).
    pub epsilon: f64,
    /// The order α attaining it; `None` when no order was used (an all-zero curve, or
    /// every order infinite). An optimum at either end of the grid means a wider grid
    /// could give a smaller ε.
    pub order: Option<f64>,
}

/// Converts an RDP curve (`curve[k]` is the divergence at `orders[k]`) into the smallest
/// ε such that the mechanism is (ε, δ)-DP.
///
/// ε = min over α of ρ(α) − (ln δ + ln α)/(α − 1) + ln((α − 1)/α).
///
/// # Privacy
///
/// - Guarantee: Balle, Barthe, Gaboardi, Hsu & Sato 2020 (arXiv 1905.09982), Thm. 21 —
///   an (α, ρ)-RDP mechanism is (ε, δ)-DP with the ε above, for every α > 1 separately,
///   so the minimum over any grid is valid. This is the formula of Opacus's
///   `get_privacy_spent`. It holds for whatever neighbouring relation the curve was
///   computed under (here add/remove one unit, both directions).
/// - An all-zero curve is an empty history (or one whose every count is 0): D_α = 0
///   means the output distributions are identical, so ε = 0 exactly. Per-event curves
///   of real mechanisms are never exactly 0 (see [`super::event_rdp`]), so a weak
///   mechanism cannot be mistaken for no mechanism.
/// - Rounding: the result is raised by 4 machine epsilons (relative) plus 1e-15
///   (absolute), more than the f64 rounding of the formula, so it can only overstate ε.
///
/// Errors: δ outside (0, 1); a curve of the wrong length; an order that is not finite
/// and > 1; a curve value that is NaN or negative (curves may come back from a ledger).
pub fn epsilon_from_curve(
    orders: &[f64],
    curve: &[f64],
    delta: f64,
) -> Result<RdpEpsilon, PrivacyError> {
    error::delta(delta)?;
    super::orders::validate(orders)?;
    if curve.len() != orders.len() {
        return Err(PrivacyError::invalid(
            "rdp curve length",
            curve.len() as f64,
            "one value per order",
        ));
    }
    for &value in curve {
        if value.is_nan() || value < 0.0 {
            return Err(PrivacyError::invalid(
                "rdp value",
                value,
                "a number >= 0 (or +inf)",
            ));
        }
    }
    if curve.iter().all(|&v| v == 0.0) {
        return Ok(RdpEpsilon {
            epsilon: 0.0,
            order: None,
        });
    }

    let ln_delta = delta.ln();
    let mut best = RdpEpsilon {
        epsilon: f64::INFINITY,
        order: None,
    };
    for (&alpha, &rho) in orders.iter().zip(curve) {
        if rho == f64::INFINITY {
            continue;
        }
        let eps = rho - (ln_delta + alpha.ln()) / (alpha - 1.0) + (-1.0 / alpha).ln_1p();
        if eps < best.epsilon {
            best = RdpEpsilon {
                epsilon: eps,
                order: Some(alpha),
            };
        }
    }
    if best.epsilon.is_finite() {
        // Round up past the few ulp of error in the formula above.
        best.epsilon += best.epsilon.abs() * 4.0 * f64::EPSILON + 1e-15;
        // A negative ε can come out of the formula when the divergence is tiny. (ε, δ)-DP
        // implies (ε', δ)-DP for every ε' ≥ ε, and ε = 0 is the smallest meaningful value,
        // so reporting 0 is still a valid (and the tightest expressible) guarantee.
        best.epsilon = best.epsilon.max(0.0);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula_at_one_order() {
        // ρ = 1 at α = 2, δ = 1e-5: ε = 1 − ln(2e-5) + ln(1/2) = 1 + ln(1e5) − 2 ln 2.
        let got = epsilon_from_curve(&[2.0], &[1.0], 1e-5).unwrap();
        let want = 1.0 + 1e5f64.ln() - 2.0 * 2f64.ln();
        assert!((got.epsilon - want).abs() < 1e-13);
        assert!(got.epsilon >= want);
        assert_eq!(got.order, Some(2.0));
    }

    #[test]
    fn picks_the_best_order() {
        // Gaussian σ = 1: ρ(α) = α/2. The optimum at δ = 1e-5 sits near α ≈ 5-6.
        let orders: Vec<f64> = (2..=20).map(f64::from).collect();
        let curve: Vec<f64> = orders.iter().map(|a| a / 2.0).collect();
        let got = epsilon_from_curve(&orders, &curve, 1e-5).unwrap();
        let at = |a: f64| a / 2.0 - (1e-5f64.ln() + a.ln()) / (a - 1.0) + ((a - 1.0) / a).ln();
        let order = got.order.unwrap();
        for &a in &orders {
            assert!(at(order) <= at(a));
        }
        assert!(got.epsilon >= at(order));
    }

    #[test]
    fn zero_curve_is_zero_and_infinite_curve_is_infinite() {
        let zero = epsilon_from_curve(&[2.0, 3.0], &[0.0, 0.0], 1e-6).unwrap();
        assert_eq!(zero.epsilon, 0.0);
        assert_eq!(zero.order, None);
        let inf = epsilon_from_curve(&[2.0, 3.0], &[f64::INFINITY; 2], 1e-6).unwrap();
        assert_eq!(inf.epsilon, f64::INFINITY);
        assert_eq!(inf.order, None);
        // One finite order is enough.
        let mixed = epsilon_from_curve(&[2.0, 3.0], &[f64::INFINITY, 0.5], 1e-6).unwrap();
        assert_eq!(mixed.order, Some(3.0));
    }

    #[test]
    fn tiny_divergence_reports_zero_not_negative() {
        // Large α and a huge δ make the correction terms exceed ρ.
        let got = epsilon_from_curve(&[50.0], &[1e-9], 0.9).unwrap();
        assert_eq!(got.epsilon, 0.0);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        for delta in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(epsilon_from_curve(&[2.0], &[1.0], delta).is_err());
        }
        assert!(epsilon_from_curve(&[2.0, 3.0], &[1.0], 1e-5).is_err());
        assert!(epsilon_from_curve(&[2.0], &[f64::NAN], 1e-5).is_err());
        assert!(epsilon_from_curve(&[2.0], &[-1e-3], 1e-5).is_err());
        assert!(epsilon_from_curve(&[1.0], &[1.0], 1e-5).is_err());
        assert!(epsilon_from_curve(&[], &[], 1e-5).is_err());
    }
}
