//! Fast Laplace noise for large vectors: a random sign times an exponential, from ChaCha20
//! output, added with the grid mitigation of [`super::grid`].
//!
//! `±b · (−ln U)` with a fair sign and `U` uniform on (0, 1) is exactly Laplace(b). `U`
//! keeps 53 significant bits at every scale ([`super::source::open01`]), so `−ln U` has
//! absolute resolution about 2^-52 everywhere up to its maximum of about 694 (no gaps in the
//! tails, which is where textbook inverse-CDF samplers are coarsest).

use super::grid::Grid;
use super::source::{NoiseSource, open01_and_bit};
use super::{Real, check_finite, check_scale};
use crate::privacy::error::PrivacyError;

/// One Laplace(1) draw.
#[inline]
pub(crate) fn standard_laplace<R: NoiseSource + ?Sized>(rng: &mut R) -> f64 {
    let (u, spare_bit) = open01_and_bit(rng);
    let magnitude = -u.ln();
    if spare_bit { magnitude } else { -magnitude }
}

/// Adds Laplace(`scale`) noise (variance 2·scale²) to every value in place, with the grid
/// mitigation.
///
/// Rejects a `scale` outside [2^-960, 2^960] and any non-finite value (naming its index)
/// before touching the slice.
///
/// # Security
///
/// As for the Gaussian ([`super::add_gaussian_f64`]): use [`super::SecureRng`] outside
/// tests; each value released is the exact `x + N` rounded to a multiple of the largest
/// power of two ≤ `scale · 2^-30`; the residual risk is stated in [`super::grid`].
pub fn add_laplace_f64<R: NoiseSource + ?Sized>(
    rng: &mut R,
    values: &mut [f64],
    scale: f64,
) -> Result<(), PrivacyError> {
    add_laplace(rng, values, scale)
}

/// [`add_laplace_f64`] for f32 data (noise drawn and added in f64, result cast to f32).
///
/// # Security
///
/// As for [`add_laplace_f64`]; the cast to f32 is post-processing of the f64 release.
pub fn add_laplace_f32<R: NoiseSource + ?Sized>(
    rng: &mut R,
    values: &mut [f32],
    scale: f64,
) -> Result<(), PrivacyError> {
    add_laplace(rng, values, scale)
}

fn add_laplace<T: Real, R: NoiseSource + ?Sized>(
    rng: &mut R,
    values: &mut [T],
    scale: f64,
) -> Result<(), PrivacyError> {
    check_scale("laplace noise scale", scale)?;
    check_finite(values)?;
    let grid = Grid::for_scale(scale);
    for value in values.iter_mut() {
        let noise = scale * standard_laplace(rng);
        *value = T::from_f64(grid.round_sum(value.to_f64(), noise));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::SimulationRng;
    use crate::privacy::noise::testing::{self, Expected};

    const N: usize = 400_000;

    #[test]
    fn standard_laplace_moments_tails_and_cdf() {
        let mut rng = SimulationRng::seeded_insecure(77);
        let mut v = vec![0.0_f64; N];
        add_laplace_f64(&mut rng, &mut v, 1.0).unwrap();
        testing::check(&v, &Expected::laplace(0.0, 1.0)).unwrap();
        testing::check_ks(&v, |x| testing::laplace_cdf(x, 1.0)).unwrap();
    }

    #[test]
    fn scaled_and_shifted_f32() {
        let b = 0.4;
        let mut rng = SimulationRng::seeded_insecure(78);
        let mut v = vec![-3.0_f32; N];
        add_laplace_f32(&mut rng, &mut v, b).unwrap();
        let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        testing::check(&v, &Expected::laplace(-3.0, b)).unwrap();
    }

    #[test]
    fn the_check_detects_a_wrong_scale() {
        let mut rng = SimulationRng::seeded_insecure(77);
        let mut v = vec![0.0_f64; N];
        add_laplace_f64(&mut rng, &mut v, 1.0).unwrap();
        assert!(testing::check(&v, &Expected::laplace(0.0, 1.03)).is_err());
        // A Gaussian of the same variance has the wrong tails and CDF.
        assert!(testing::check(&v, &Expected::gaussian(0.0, 2f64.sqrt())).is_err());
        assert!(testing::check_ks(&v, |x| testing::normal_cdf(x / 2f64.sqrt())).is_err());
    }

    #[test]
    fn rejects_bad_scale_and_non_finite_data() {
        let mut rng = SimulationRng::seeded_insecure(0);
        for scale in [0.0, -2.0, f64::NAN, f64::INFINITY] {
            let err = add_laplace_f64(&mut rng, &mut [1.0], scale).unwrap_err();
            assert!(
                matches!(
                    err,
                    PrivacyError::InvalidParameter {
                        name: "laplace noise scale",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let mut v = [0.0_f32, f32::INFINITY];
        let err = add_laplace_f32(&mut rng, &mut v, 1.0).unwrap_err();
        assert!(err.to_string().contains("index 1"), "{err}");
        assert_eq!(v[0], 0.0);
    }
}
