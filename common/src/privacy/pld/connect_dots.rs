//! Pessimistic "connect the dots" discretisation of a privacy loss (Doroshenko, Ghazi,
//! Kamath, Kumar & Manurangsi 2022, arXiv 2207.04380, Algorithm 1), dp-accounting's
//! default (`use_connect_dots=True`, `create_pmf_pessimistic_connect_dots_fixed_gap`).
//!
//! Given the mechanism's exact δ(ε) at the grid points ε_i = i·d, the discrete PLD puts
//! mass on the ε_i (and δ(ε_n) at +∞) so that its own δ-curve interpolates the exact one
//! linearly in e^ε between grid points. Because δ is convex in e^ε, the interpolation lies
//! above it: the discrete PLD dominates the mechanism at every ε, hence after any
//! composition too — pessimistic, and much tighter than rounding each loss up.

use super::fft;
use super::losses::AdditiveNoiseLoss;
use super::pmf::{PldError, Pmf};
use crate::privacy::PrivacyError;

/// dp-accounting's `_DELTA_DIFF_TOLERANCE`: how far δ(ε) may rise between grid points
/// (round-off) before the curve is rejected as not monotone.
const DELTA_DIFF_TOLERANCE: f64 = 1e-12;

/// The pessimistic connect-the-dots PMF of `loss` on the grid of spacing `d`.
///
/// # Privacy
///
/// The result dominates `loss`: for every ε its hockey-stick divergence is ≥ the exact
/// δ(ε) (arXiv 2207.04380: Algorithm 1 with the pessimistic masses and its domination
/// theorem), so an ε read
/// off it — alone or composed — is never below the truth. Losses above the covered range
/// go to +∞ (mass δ(ε_max)); losses below it are rounded up to the lowest grid point.
pub(crate) fn pessimistic_pmf(loss: &AdditiveNoiseLoss, d: f64) -> Result<Pmf, PldError> {
    let (eps_lower, eps_upper) = loss.epsilon_bounds();
    if !(eps_lower.is_finite() && eps_upper.is_finite()) {
        return Err(PrivacyError::Numerical(format!(
            "PLD loss range [{eps_lower}, {eps_upper}] is not finite"
        ))
        .into());
    }
    let hi = (eps_upper / d).ceil();
    let lo = (eps_lower / d).floor();
    let count = hi - lo + 1.0;
    if count > fft::MAX_LEN as f64 {
        return Err(PldError::TooLarge { len: count as u128 });
    }
    let (lo, hi) = (lo as i64, hi as i64);
    let deltas: Vec<f64> = (lo..=hi)
        .map(|k| loss.delta_for_epsilon(k as f64 * d))
        .collect();
    fixed_gap(d, lo, deltas)
}

/// dp-accounting's `create_pmf_pessimistic_connect_dots_fixed_gap`: masses on the
/// consecutive grid points `lower`, `lower` + 1, … from δ at those points.
///
/// With n points and Δ_i = δ_{i+1} − δ_i:
/// p_1 = 1 − δ_1 + Δ_1 / (e^d − 1), p_i = (Δ_i − e^d·Δ_{i−1}) / (e^d − 1),
/// p_n = Δ_{n−1} / (e^{−d} − 1), and δ_n at +∞.
pub(crate) fn fixed_gap(d: f64, lower: i64, mut deltas: Vec<f64>) -> Result<Pmf, PldError> {
    let Some(&first) = deltas.first() else {
        return Err(PrivacyError::Numerical("empty connect-the-dots grid".into()).into());
    };
    if deltas.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(
            PrivacyError::Numerical("hockey-stick divergence outside [0, 1]".into()).into(),
        );
    }
    if deltas.len() == 1 {
        return Ok(Pmf::from_grid(lower, vec![1.0 - first], first));
    }
    // Monotone up to round-off, then forced monotone (np.minimum.accumulate).
    for i in 1..deltas.len() {
        if deltas[i] - deltas[i - 1] > DELTA_DIFF_TOLERANCE {
            return Err(PrivacyError::Numerical(format!(
                "hockey-stick divergence increases with epsilon at grid point {}: {} -> {}",
                lower + i as i64,
                deltas[i - 1],
                deltas[i]
            ))
            .into());
        }
        deltas[i] = deltas[i].min(deltas[i - 1]);
    }
    let n = deltas.len();
    let expm1_d = d.exp_m1();
    let exp_d = d.exp();
    let mut probs = Vec::with_capacity(n);
    probs.push(1.0 - deltas[0] + (deltas[1] - deltas[0]) / expm1_d);
    for i in 1..n - 1 {
        let next = deltas[i + 1] - deltas[i];
        let prev = deltas[i] - deltas[i - 1];
        probs.push((next - prev * exp_d) / expm1_d);
    }
    probs.push((deltas[n - 1] - deltas[n - 2]) / (-d).exp_m1());
    // Round-off can make a mass slightly negative; dp-accounting sets it to 0.
    for p in probs.iter_mut() {
        *p = p.max(0.0);
    }
    Ok(Pmf::from_grid(lower, probs, deltas[n - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::pld::losses::Adjacency;

    #[test]
    fn dominates_the_gaussian_curve_between_grid_points() {
        let d = 1e-2;
        let loss = AdditiveNoiseLoss::gaussian(1.0, 1.0, Adjacency::Remove).unwrap();
        let pmf = pessimistic_pmf(&loss, d).unwrap();
        for i in 0..300 {
            let eps = i as f64 * 0.00737;
            let exact = loss.delta_for_epsilon(eps);
            let discrete = pmf.delta_for_epsilon(d, eps);
            // Equal at grid points up to round-off, above in between.
            assert!(
                discrete >= exact * (1.0 - 1e-12),
                "ε={eps}: {discrete} < {exact}"
            );
            assert!(discrete <= exact + 1e-3, "ε={eps}: {discrete} ≫ {exact}");
        }
    }

    #[test]
    fn masses_sum_to_one() {
        let loss = AdditiveNoiseLoss::gaussian(0.8, 0.05, Adjacency::Add).unwrap();
        let pmf = pessimistic_pmf(&loss, 1e-3).unwrap();
        let Pmf::Dense {
            probs,
            infinity_mass,
            ..
        } = &pmf
        else {
            panic!("expected a dense PMF")
        };
        let total: f64 = probs.iter().sum::<f64>() + infinity_mass;
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn single_point_grid() {
        let pmf = fixed_gap(0.1, 3, vec![0.25]).unwrap();
        assert_eq!(pmf.infinity_mass(), 0.25);
        assert!(
            (pmf.delta_for_epsilon(0.1, 0.0) - (0.25 + 0.75 * -(-0.3f64).exp_m1())).abs() < 1e-15
        );
    }

    #[test]
    fn rejects_increasing_deltas() {
        assert!(fixed_gap(0.1, 0, vec![0.5, 0.6, 0.1]).is_err());
    }
}
