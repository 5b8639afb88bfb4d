//! Noise for DP releases: where the random bits come from and how noise is drawn.
//!
//! Two families of samplers, chosen by size (DESIGN section 2, rule 5):
//!
//! - **Fast samplers** ([`add_gaussian_f64`], [`add_gaussian_f32`], [`add_laplace_f64`],
//!   [`add_laplace_f32`]) for gradients and matrices: ChaCha20 output from a
//!   [`NoiseSource`], Box–Muller or sign × exponential in f64, and a floating-point
//!   mitigation: the exact sum `x + noise` is rounded to a grid of spacing ≈ scale · 2^-30
//!   ([`grid`] documents the choice and its residual risk). Tens of millions of values per
//!   second on one core.
//! - **Exact samplers** ([`exact`]) from OpenDP for small releases (counts, statistics):
//!   provably distributed as their privacy proofs assume, but slow.
//!
//! [`SecureRng`] (ChaCha20 keyed from the OS) is the production source;
//! [`SimulationRng::seeded_insecure`] exists for tests, synthetic data and simulation only.

pub mod exact;
mod gaussian;
pub mod grid;
mod laplace;
mod source;
#[cfg(test)]
pub(crate) mod testing;

pub use exact::{discrete_gaussian, discrete_laplace, exact_gaussian, exact_laplace};
pub use gaussian::{add_gaussian_f32, add_gaussian_f64};
pub use laplace::{add_laplace_f32, add_laplace_f64};
pub use source::{NoiseSource, SecureRng, SimulationRng};

use super::error::PrivacyError;

/// Smallest noise scale the fast samplers accept (2^-960): keeps the grid spacing normal.
pub const MIN_FAST_SCALE: f64 = f64::from_bits((1023 - 960) << 52);
/// Largest noise scale the fast samplers accept (2^960): keeps every noise value finite.
pub const MAX_FAST_SCALE: f64 = f64::from_bits((1023 + 960) << 52);

/// Checks a fast sampler's noise scale lies in [[`MIN_FAST_SCALE`], [`MAX_FAST_SCALE`]].
pub(crate) fn check_scale(name: &'static str, scale: f64) -> Result<f64, PrivacyError> {
    if (MIN_FAST_SCALE..=MAX_FAST_SCALE).contains(&scale) {
        Ok(scale)
    } else {
        Err(PrivacyError::invalid(
            name,
            scale,
            "a finite number in [2^-960, 2^960]",
        ))
    }
}

/// Rejects data containing NaN or ±inf, naming the first offending index.
///
/// A non-finite value would pass through noise unchanged (or poison it) and is always an
/// upstream bug (a NaN gradient, an overflowed sum); releasing it would be wrong and could
/// leak which record caused it, so the whole release is refused.
pub(crate) fn check_finite<T: Real>(values: &[T]) -> Result<(), PrivacyError> {
    match values.iter().position(|v| !v.to_f64().is_finite()) {
        None => Ok(()),
        Some(index) => Err(PrivacyError::Numerical(format!(
            "value at index {index} of the data to release is {}: data must be finite",
            values[index].to_f64()
        ))),
    }
}

/// The floating-point types the samplers work on; all noise arithmetic is done in f64.
pub(crate) trait Real: Copy {
    fn to_f64(self) -> f64;
    fn from_f64(value: f64) -> Self;
}

impl Real for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(value: f64) -> Self {
        value
    }
}

impl Real for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(value: f64) -> Self {
        value as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_bounds_are_the_documented_powers_of_two() {
        assert_eq!(MIN_FAST_SCALE, 2f64.powi(-960));
        assert_eq!(MAX_FAST_SCALE, 2f64.powi(960));
        assert!(check_scale("s", 1.0).is_ok());
        assert!(check_scale("s", f64::NAN).is_err());
    }
}
