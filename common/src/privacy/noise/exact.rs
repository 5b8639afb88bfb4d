//! Exact samplers from OpenDP, for small releases (counts, sums, statistics).
//!
//! OpenDP samples on an integer lattice with exact (big-integer/rational) arithmetic, so its
//! noise has exactly the distribution its privacy proof assumes and resists floating-point
//! attacks (Mironov 2012) without a heuristic. The price is speed: the continuous Gaussian
//! on f64 costs 15-80 µs per value depending on the machine and its load (`benches/noise.rs`:
//! about 4 s for 100 k values on the shared 2-core machine), which is why vectors use the
//! fast samplers ([`super::add_gaussian_f64`]).
//!
//! - continuous Laplace / Gaussian on f64: OpenDP's `make_laplace` / `make_gaussian` on
//!   `AtomDomain<f64>` vectors with the finest granularity `k` (the data are rounded to the
//!   nearest multiple of 2^-1074, i.e. not at all, then discrete noise on that lattice is
//!   added: Canonne, Kamath & Steinke 2020, arXiv 2004.00010);
//! - discrete Laplace (geometric) and discrete Gaussian on i64: the same constructors on
//!   integer domains; results saturate at the i64 bounds (post-processing).
//!
//! Randomness: these samplers draw their own bits, never from a [`super::NoiseSource`].
//! Silo builds OpenDP without its `use-openssl` feature, so the bits come from rand 0.7's
//! `thread_rng` (ChaCha20, keyed from the OS and re-keyed every 64 KiB): a CSPRNG seeded
//! from the OS, as DESIGN rule 5 requires, though OpenDP itself prefers OpenSSL's
//! `RAND_priv_bytes`. Consequently these samplers cannot be seeded.
//!
//! OpenDP's `Measurement` is not `Send`: each call builds and invokes one synchronously.

use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{L1Distance, L2Distance};

use super::check_finite;
use crate::privacy::error::{self, PrivacyError};

/// Adds exact Gaussian noise N(0, `scale`²) to each value (OpenDP `make_gaussian`).
///
/// Rejects a non-positive or non-finite `scale` and non-finite values (naming the index).
pub fn exact_gaussian(values: &[f64], scale: f64) -> Result<Vec<f64>, PrivacyError> {
    error::positive("gaussian noise std", scale)?;
    check_finite(values)?;
    let measurement = make_gaussian::<_, _, ZeroConcentratedDivergence>(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        L2Distance::<f64>::default(),
        scale,
        None,
    )
    .map_err(|e| opendp_error("gaussian", "build", e))?;
    measurement
        .invoke(&values.to_vec())
        .map_err(|e| opendp_error("gaussian", "sample", e))
}

/// Adds exact Laplace noise with scale `scale` (variance 2·scale²) to each value (OpenDP
/// `make_laplace`).
///
/// Rejects a non-positive or non-finite `scale` and non-finite values (naming the index).
pub fn exact_laplace(values: &[f64], scale: f64) -> Result<Vec<f64>, PrivacyError> {
    error::positive("laplace noise scale", scale)?;
    check_finite(values)?;
    let measurement = make_laplace::<_, _, MaxDivergence>(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        L1Distance::<f64>::default(),
        scale,
        None,
    )
    .map_err(|e| opendp_error("laplace", "build", e))?;
    measurement
        .invoke(&values.to_vec())
        .map_err(|e| opendp_error("laplace", "sample", e))
}

/// Adds discrete Laplace (two-sided geometric) noise to each count: P(k) ∝ exp(−|k|/scale).
///
/// Rejects a non-positive or non-finite `scale`. Results saturate at the i64 bounds.
pub fn discrete_laplace(values: &[i64], scale: f64) -> Result<Vec<i64>, PrivacyError> {
    error::positive("discrete laplace scale", scale)?;
    let measurement = make_laplace::<_, _, MaxDivergence>(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(|e| opendp_error("discrete laplace", "build", e))?;
    measurement
        .invoke(&values.to_vec())
        .map_err(|e| opendp_error("discrete laplace", "sample", e))
}

/// Adds discrete Gaussian noise to each count: P(k) ∝ exp(−k²/(2·scale²)) (Canonne, Kamath &
/// Steinke 2020, arXiv 2004.00010).
///
/// Rejects a non-positive or non-finite `scale`. Results saturate at the i64 bounds.
pub fn discrete_gaussian(values: &[i64], scale: f64) -> Result<Vec<i64>, PrivacyError> {
    error::positive("discrete gaussian scale", scale)?;
    let measurement = make_gaussian::<_, _, ZeroConcentratedDivergence>(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L2Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(|e| opendp_error("discrete gaussian", "build", e))?;
    measurement
        .invoke(&values.to_vec())
        .map_err(|e| opendp_error("discrete gaussian", "sample", e))
}

/// OpenDP's errors carry a variant and an optional message; keep both.
fn opendp_error(sampler: &str, stage: &str, e: opendp::error::Error) -> PrivacyError {
    PrivacyError::Numerical(format!(
        "OpenDP {sampler} sampler failed to {stage}: {} {}",
        e.variant,
        e.message.unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::testing::{self, Expected};

    // OpenDP draws from its own OS-seeded generator, so these tests are not seeded: the
    // tolerances (5 standard errors) make a false alarm about a one-in-a-million event.

    #[test]
    fn exact_gaussian_statistics() {
        let out = exact_gaussian(&vec![5.0; 20_000], 2.0).unwrap();
        testing::check(&out, &Expected::gaussian(5.0, 2.0)).unwrap();
        testing::check_ks(&out, |x| testing::normal_cdf((x - 5.0) / 2.0)).unwrap();
    }

    #[test]
    fn exact_laplace_statistics() {
        let out = exact_laplace(&vec![-1.0; 20_000], 0.5).unwrap();
        testing::check(&out, &Expected::laplace(-1.0, 0.5)).unwrap();
        testing::check_ks(&out, |x| testing::laplace_cdf(x + 1.0, 0.5)).unwrap();
    }

    #[test]
    fn discrete_laplace_statistics() {
        let b = 2.0;
        let out = discrete_laplace(&vec![100; 50_000], b).unwrap();
        let out: Vec<f64> = out.iter().map(|&k| k as f64).collect();
        let pmf = |k: i64| (-(k.abs() as f64) / b).exp();
        testing::check(&out, &Expected::discrete(100.0, pmf, 3.0 * b, 200)).unwrap();
    }

    #[test]
    fn discrete_gaussian_statistics() {
        let sigma = 3.0;
        let out = discrete_gaussian(&vec![-7; 50_000], sigma).unwrap();
        let out: Vec<f64> = out.iter().map(|&k| k as f64).collect();
        let pmf = |k: i64| (-((k * k) as f64) / (2.0 * sigma * sigma)).exp();
        let expected = Expected::discrete(-7.0, pmf, 3.0 * sigma, 200);
        // For σ = 3 the discrete Gaussian's variance is σ² to many digits.
        assert!((expected.variance - sigma * sigma).abs() < 1e-9);
        testing::check(&out, &expected).unwrap();
        assert!(out.iter().all(|x| x.fract() == 0.0));
    }

    #[test]
    fn rejects_bad_scales_and_data() {
        for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(exact_gaussian(&[0.0], scale).is_err());
            assert!(exact_laplace(&[0.0], scale).is_err());
            assert!(discrete_laplace(&[0], scale).is_err());
            assert!(discrete_gaussian(&[0], scale).is_err());
        }
        let err = exact_gaussian(&[0.0, 1.0, f64::NAN], 1.0).unwrap_err();
        assert!(err.to_string().contains("index 2"), "{err}");
        let err = exact_laplace(&[f64::INFINITY], 1.0).unwrap_err();
        assert!(err.to_string().contains("index 0"), "{err}");
    }

    #[test]
    fn saturates_at_the_integer_bounds() {
        let out = discrete_laplace(&[i64::MAX; 64], 10.0).unwrap();
        assert!(out.iter().all(|&x| x > i64::MAX - 1000));
        assert!(out.contains(&i64::MAX));
    }
}
