//! Noise calibration: the smallest noise multiplier that meets a target (ε, δ).
//!
//! ε is non-increasing in the noise multiplier σ for every event Silo accounts, so the
//! inverse is a bisection. The search keeps an invariant bracket `[lo, hi]` where `hi`
//! meets the target and `lo` does not, and always returns `hi`: the answer is never a σ
//! whose ε exceeds the target (STYLE rule 10: round privacy arithmetic toward safety).

use super::error::{self, PrivacyError};
use super::{Accountant, Composition, PrivacyEvent};

/// Largest noise multiplier the search will consider. Beyond it the query is useless.
pub const MAX_NOISE_MULTIPLIER: f64 = 1.0e4;
/// Smallest noise multiplier the search will consider.
pub const MIN_NOISE_MULTIPLIER: f64 = 1.0e-3;
/// Relative width of the final bracket.
const RELATIVE_TOLERANCE: f64 = 1.0e-4;

/// The result of a calibration: σ and the ε it actually achieves (≤ the target).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// The smallest noise multiplier found that meets the target (within 0.01 %).
    pub noise_multiplier: f64,
    /// The accountant's ε at that σ; never above the target.
    pub epsilon: f64,
}

/// Smallest σ such that `accountant` reports ε ≤ `target_epsilon` at `delta` for the
/// history `history(σ)`.
///
/// `history` must describe a family of mechanisms whose ε does not increase with σ.
pub fn noise_multiplier<A, F>(
    accountant: &A,
    target_epsilon: f64,
    delta: f64,
    history: F,
) -> Result<Calibration, PrivacyError>
where
    A: Accountant + ?Sized,
    F: Fn(f64) -> Result<Vec<Composition>, PrivacyError>,
{
    error::positive("target epsilon", target_epsilon)?;
    error::delta(delta)?;
    let eps_at =
        |sigma: f64| -> Result<f64, PrivacyError> { accountant.epsilon(&history(sigma)?, delta) };

    // Bracket: grow hi until it meets the target, shrink lo until it does not.
    let mut hi = 1.0;
    let mut eps_hi = eps_at(hi)?;
    while eps_hi > target_epsilon {
        if hi >= MAX_NOISE_MULTIPLIER {
            return Err(PrivacyError::Infeasible(format!(
                "no noise multiplier up to {MAX_NOISE_MULTIPLIER} reaches epsilon {target_epsilon} at delta {delta} \
                 (epsilon there is {eps_hi})"
            )));
        }
        hi = (hi * 2.0).min(MAX_NOISE_MULTIPLIER);
        eps_hi = eps_at(hi)?;
    }
    let mut lo = hi / 2.0;
    loop {
        if eps_at(lo)? > target_epsilon {
            break;
        }
        hi = lo;
        if hi <= MIN_NOISE_MULTIPLIER {
            // Even negligible noise meets the target: report the floor, which is safe.
            return Ok(Calibration {
                noise_multiplier: hi,
                epsilon: eps_at(hi)?,
            });
        }
        lo = (lo / 2.0).max(MIN_NOISE_MULTIPLIER);
    }
    while hi - lo > RELATIVE_TOLERANCE * hi {
        let mid = 0.5 * (lo + hi);
        if eps_at(mid)? > target_epsilon {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let epsilon = eps_at(hi)?;
    debug_assert!(epsilon <= target_epsilon);
    Ok(Calibration {
        noise_multiplier: hi,
        epsilon,
    })
}

/// σ for `steps` steps of DP-SGD with Poisson sampling rate `sample_rate`.
pub fn dp_sgd<A: Accountant + ?Sized>(
    accountant: &A,
    target_epsilon: f64,
    delta: f64,
    sample_rate: f64,
    steps: u64,
) -> Result<Calibration, PrivacyError> {
    error::sample_rate(sample_rate)?;
    if steps == 0 {
        return Err(PrivacyError::invalid("steps", 0.0, "at least 1"));
    }
    noise_multiplier(accountant, target_epsilon, delta, |sigma| {
        Ok(vec![Composition::new(
            PrivacyEvent::subsampled_gaussian(sample_rate, sigma)?,
            steps,
        )])
    })
}

/// σ for `compositions` releases of the plain Gaussian mechanism.
pub fn gaussian<A: Accountant + ?Sized>(
    accountant: &A,
    target_epsilon: f64,
    delta: f64,
    compositions: u64,
) -> Result<Calibration, PrivacyError> {
    if compositions == 0 {
        return Err(PrivacyError::invalid("compositions", 0.0, "at least 1"));
    }
    noise_multiplier(accountant, target_epsilon, delta, |sigma| {
        Ok(vec![Composition::new(
            PrivacyEvent::gaussian(sigma)?,
            compositions,
        )])
    })
}
