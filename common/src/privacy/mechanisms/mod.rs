//! DP mechanisms: values that know their sensitivity, their noise and their guarantee
//! (STYLE rule 9), and release data with noise from [`super::noise`].
//!
//! - [`GaussianMechanism`] (zCDP) and [`LaplaceMechanism`] (pure ε) for real-valued
//!   vectors and statistics;
//! - [`DiscreteLaplace`] and [`DiscreteGaussian`] for integer counts (OpenDP, exact);
//! - [`SubsampledGaussian`], the descriptor of a DP-SGD run (Poisson rate, noise
//!   multiplier, steps, clipping), which yields the [`Composition`](super::Composition) to
//!   charge.
//!
//! Constructors reject invalid parameters (never clamp). Every mechanism exposes its
//! [`Guarantee`] and the [`PrivacyEvent`](super::PrivacyEvent) the accountants compose; privacy quantities are
//! rounded toward the unsafe-for-us side (ε and ρ up, noise multipliers down; STYLE
//! rule 10).
//!
//! All mechanisms use the add/remove-one-privacy-unit neighbouring relation of
//! [`PrivacyEvent`](super::PrivacyEvent); the sensitivity a caller supplies must bound the change of the released
//! quantity under that relation, after the site's contribution bounding (clipping,
//! per-unit caps). A mechanism cannot check that bound: it is the caller's proof
//! obligation, recorded in the ledger with the parameters.

mod discrete;
mod gaussian;
mod guarantee;
mod laplace;
mod subsampled;

pub use discrete::{DiscreteGaussian, DiscreteLaplace};
pub use gaussian::GaussianMechanism;
pub use guarantee::{Guarantee, Mechanism};
pub use laplace::LaplaceMechanism;
pub use subsampled::{Clipping, SubsampledGaussian};

use super::error::PrivacyError;
use super::noise::NoiseSource;

/// Releases of at most this many values use OpenDP's exact samplers when the noise source
/// is secure; longer ones use the fast ChaCha20 samplers with the grid mitigation.
///
/// OpenDP's exact continuous Gaussian costs 15-80 µs per value (`benches/noise.rs`: about
/// 40 µs on the 2-core machine), so 1024 values take 15-80 ms: acceptable next to the
/// network round trip and ledger fsync of a release, while counts, means and small
/// histograms get provably exact noise. Gradients and matrices (10^5-10^7 values) would
/// take seconds to minutes, and take the fast path (about 55 M values/s). With a [`SimulationRng`](super::noise::SimulationRng) every release uses
/// the fast path, so seeded runs are reproducible (OpenDP cannot be seeded).
pub const EXACT_RELEASE_MAX_LEN: usize = 1024;

/// Slack for privacy arithmetic: 4 ulps exceeds the rounding error of the two or three f64
/// operations behind each formula here, so multiplying by (1 ± SLACK) rounds safely.
const SLACK: f64 = 4.0 * f64::EPSILON;

/// Rounds a privacy loss (ε, ρ) upward.
/// The shared release path of the continuous mechanisms: OpenDP's exact sampler (on an f64
/// copy) for releases of at most [`EXACT_RELEASE_MAX_LEN`] values from a secure source, the
/// fast ChaCha20 sampler otherwise. Either way `values` is untouched on error.
fn release_with<T: Copy, R: NoiseSource + ?Sized>(
    values: &mut [T],
    rng: &mut R,
    scale: f64,
    exact: fn(&[f64], f64) -> Result<Vec<f64>, PrivacyError>,
    fast: fn(&mut R, &mut [T], f64) -> Result<(), PrivacyError>,
    (widen, narrow): Convert<T>,
) -> Result<(), PrivacyError> {
    if rng.is_secure() && values.len() <= EXACT_RELEASE_MAX_LEN {
        let wide: Vec<f64> = values.iter().map(|&v| widen(v)).collect();
        let noised = exact(&wide, scale)?;
        for (value, noisy) in values.iter_mut().zip(noised) {
            *value = narrow(noisy);
        }
        Ok(())
    } else {
        fast(rng, values, scale)
    }
}

/// How a release widens its data to f64 for the exact sampler, and narrows the result.
type Convert<T> = (fn(T) -> f64, fn(f64) -> T);
/// Widening/narrowing for f64 data (identity).
const F64: Convert<f64> = (|v| v, |v| v);
/// Widening/narrowing for f32 data: noise is added in f64, the result cast back.
const F32: Convert<f32> = (|v| v as f64, |v| v as f32);

fn loss_up(value: f64) -> f64 {
    value * (1.0 + SLACK)
}

/// Rounds a noise multiplier (noise / sensitivity) downward.
fn multiplier_down(value: f64) -> f64 {
    value * (1.0 - SLACK)
}

/// Increases a noise scale from its closed-form value until `loss(scale) ≤ target`, so that
/// a mechanism built "from a target" never reports more than the target after rounding.
fn scale_meeting(
    initial: f64,
    target: f64,
    loss: impl Fn(f64) -> f64,
) -> Result<f64, super::PrivacyError> {
    let mut scale = initial * (1.0 + SLACK);
    for _ in 0..64 {
        if loss(scale) <= target {
            return Ok(scale);
        }
        scale = scale.next_up();
    }
    Err(super::PrivacyError::Numerical(format!(
        "no noise scale near {initial} meets the target {target}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_goes_the_safe_way() {
        for x in [1e-300, 0.1, 1.0, 3.7, 1e300] {
            assert!(loss_up(x) > x);
            assert!(multiplier_down(x) < x);
        }
    }

    #[test]
    fn scale_meeting_never_exceeds_the_target() {
        let rho = |s: f64| loss_up(1.0 / (2.0 * s * s));
        for target in [1e-6_f64, 0.01, 0.5, 3.0, 1e6] {
            let s = scale_meeting((1.0 / (2.0 * target)).sqrt(), target, rho).unwrap();
            assert!(rho(s) <= target);
            assert!(rho(s) > target * (1.0 - 1e-13));
        }
    }
}
