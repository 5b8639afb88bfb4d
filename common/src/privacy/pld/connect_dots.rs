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
use super::losses::{AdditiveNoiseLoss, Adjacency};
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
    let (lo, hi) = grid(loss, d)?;
    fixed_gap(d, lo, loss.delta_grid(lo, hi, d))
}

/// The pessimistic connect-the-dots PMFs of a subsampled loss (q < 1) in both directions,
/// as (REMOVE, ADD): the same PMFs as [`pessimistic_pmf`] on each direction, with the ADD
/// curve read off the REMOVE one instead of evaluated afresh.
///
/// # Privacy
///
/// The ADD pair is the REMOVE pair swapped and mirrored (x ↦ −x; the noise is
/// symmetric), and the hockey-stick divergence of a swapped pair is
/// H_{e^ε}(Q‖P) = 1 − e^ε + e^ε·H_{e^{−ε}}(P‖Q) (integrate (q − γp)₊ = q − γp + γ(p − q/γ)₊
/// with γ = e^ε). So δ_ADD(ε) = e^ε·(δ_REMOVE(−ε) + e^{−ε} − 1) exactly; −ε is a grid point
/// whenever ε is, and the REMOVE grid already covers the mirrored ADD grid (both are cut
/// at the same noise quantiles). Each ADD value is thus exact up to round-off — about
/// 1e-16 absolute, the same as evaluating the ADD curve directly, whose two CDF terms
/// are near 1 where δ_ADD is small — and the domination argument of [`pessimistic_pmf`]
/// applies unchanged.
pub(crate) fn pessimistic_pmf_pair(
    remove: &AdditiveNoiseLoss,
    d: f64,
) -> Result<(Pmf, Pmf), PldError> {
    let add = remove.flipped();
    let q = remove.sampling_prob();
    if remove.adjacency() != Adjacency::Remove || q >= 1.0 {
        return Ok((pessimistic_pmf(remove, d)?, pessimistic_pmf(&add, d)?));
    }
    let (lo_r, hi_r) = grid(remove, d)?;
    let (lo_a, hi_a) = grid(&add, d)?;
    // Usually exactly the REMOVE grid; widened if round-off in the bounds says otherwise.
    let (lo, hi) = (lo_r.min(-hi_a), hi_r.max(-lo_a));
    check_count(lo, hi)?;
    // δ_ADD(ε) = 0 from −ln(1 − q) on, as `AdditiveNoiseLoss::delta_for_epsilon` has it.
    let ceiling = -(-q).ln_1p();
    let mut deltas = Vec::with_capacity((hi - lo + 1) as usize);
    let mut add_deltas = vec![0.0; (hi_a - lo_a + 1) as usize];
    remove.for_each_grid_delta(lo, hi, d, |k, delta, exp_m1| {
        deltas.push(delta);
        // The ADD grid point −k: δ_ADD(−ε) = (δ_REMOVE(ε) + e^ε − 1)/e^ε.
        let k_add = -k;
        if (lo_a..=hi_a).contains(&k_add) {
            let add = if k_add as f64 * d >= ceiling {
                0.0
            } else {
                (delta + exp_m1) / (1.0 + exp_m1)
            };
            add_deltas[(k_add - lo_a) as usize] = if add.is_nan() {
                add
            } else {
                add.clamp(0.0, 1.0)
            };
        }
    });
    if (lo, hi) != (lo_r, hi_r) {
        deltas = deltas[(lo_r - lo) as usize..=(hi_r - lo) as usize].to_vec();
    }
    Ok((fixed_gap(d, lo_r, deltas)?, fixed_gap(d, lo_a, add_deltas)?))
}

/// The grid indices [lo, hi] covering `loss`'s ε range.
fn grid(loss: &AdditiveNoiseLoss, d: f64) -> Result<(i64, i64), PldError> {
    let (eps_lower, eps_upper) = loss.epsilon_bounds();
    if !(eps_lower.is_finite() && eps_upper.is_finite()) {
        return Err(PrivacyError::Numerical(format!(
            "PLD loss range [{eps_lower}, {eps_upper}] is not finite"
        ))
        .into());
    }
    let hi = (eps_upper / d).ceil();
    let lo = (eps_lower / d).floor();
    if hi - lo + 1.0 > fft::MAX_LEN as f64 {
        return Err(PldError::TooLarge {
            len: (hi - lo + 1.0) as u128,
        });
    }
    Ok((lo as i64, hi as i64))
}

/// Refuses a grid of more than [`fft::MAX_LEN`] points.
fn check_count(lo: i64, hi: i64) -> Result<(), PldError> {
    fft::check_len((hi - lo) as u128 + 1).map(|_| ())
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
    let n = deltas.len();
    let expm1_d = d.exp_m1();
    let exp_d = d.exp();
    // One pass: δ made monotone up to round-off and then forced monotone
    // (np.minimum.accumulate), and the masses written over the δ's in place; `prev`, `here`
    // hold the monotone δ_{i−1}, δ_i. Round-off can make a mass slightly negative;
    // dp-accounting sets it to 0.
    let mut prev = deltas[0];
    let mut here = deltas[0];
    for i in 0..n {
        let next = if i + 1 < n {
            let raw = deltas[i + 1];
            if raw - here > DELTA_DIFF_TOLERANCE {
                return Err(PrivacyError::Numerical(format!(
                    "hockey-stick divergence increases with epsilon at grid point {}: {} -> {}",
                    lower + i as i64 + 1,
                    here,
                    raw
                ))
                .into());
            }
            raw.min(here)
        } else {
            here
        };
        let mass = if i == 0 {
            1.0 - here + (next - here) / expm1_d
        } else if i + 1 < n {
            ((next - here) - (here - prev) * exp_d) / expm1_d
        } else {
            (here - prev) / (-d).exp_m1()
        };
        deltas[i] = mass.max(0.0);
        (prev, here) = (here, next);
    }
    let infinity_mass = prev;
    Ok(Pmf::from_grid(lower, deltas, infinity_mass))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pair_matches_each_direction_alone() {
        let d = 1e-4;
        for &(sigma, q) in &[(1.0, 0.01), (0.7, 0.001), (3.0, 0.5)] {
            let remove = AdditiveNoiseLoss::gaussian(sigma, q, Adjacency::Remove).unwrap();
            let (pair_remove, pair_add) = pessimistic_pmf_pair(&remove, d).unwrap();
            let alone_remove = pessimistic_pmf(&remove, d).unwrap();
            let alone_add = pessimistic_pmf(&remove.flipped(), d).unwrap();
            for i in 0..200 {
                let eps = i as f64 * 0.0317;
                for (pair, alone) in [(&pair_remove, &alone_remove), (&pair_add, &alone_add)] {
                    let (x, y) = (
                        pair.delta_for_epsilon(d, eps),
                        alone.delta_for_epsilon(d, eps),
                    );
                    // The masses are second differences of δ over e^d − 1 ≈ 1e-4, so the
                    // ~1e-16 round-off of each δ becomes ~1e-12 per mass, which can add up
                    // over the ~10⁴ masses above ε.
                    assert!(
                        (x - y).abs() <= 1e-9 * (1.0 + y),
                        "σ={sigma} q={q} ε={eps}: {x} vs {y}"
                    );
                }
            }
        }
    }
}
