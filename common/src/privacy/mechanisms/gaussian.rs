//! The Gaussian mechanism on real vectors: zCDP, for statistics, gradients and matrices.

use serde::Serialize;

use super::{
    F32, F64, Guarantee, Mechanism, loss_up, multiplier_down, release_with, scale_meeting,
};
use crate::privacy::error::{self, PrivacyError};
use crate::privacy::event::PrivacyEvent;
use crate::privacy::noise::{self, NoiseSource};

/// Adds N(0, σ²) noise to each coordinate of a vector query of L2 sensitivity Δ₂.
///
/// # Privacy
///
/// - **Neighbouring relation:** add/remove one privacy unit (all of its records).
/// - **Sensitivity:** Δ₂ bounds ‖f(D) − f(D′)‖₂ over neighbours. The caller derives it from
///   contribution bounding: a sum of per-unit vectors clipped to L2 norm C has Δ₂ = C (one
///   unit adds or removes one clipped vector); a histogram where a unit touches at most k
///   cells, each by at most 1, has Δ₂ = √k. The mechanism cannot verify Δ₂.
/// - **Guarantee:** ρ-zCDP with ρ = Δ₂²/(2σ²) (Bun & Steinke 2016, arXiv 1605.02065,
///   Prop. 1.6), equivalently Rényi DP of every order α with ε(α) = αΔ₂²/(2σ²) (Mironov
///   2017, arXiv 1702.07476). Its privacy curve depends only on σ/Δ₂, which is the
///   [`PrivacyEvent::Gaussian`] noise multiplier the accountants compose.
/// - **Sampling:** releases of at most [`EXACT_RELEASE_MAX_LEN`] values with a secure
///   source use OpenDP's exact sampler (Canonne, Kamath & Steinke 2020, arXiv 2004.00010);
///   longer ones use the fast ChaCha20 sampler with the grid mitigation, whose residual
///   risk is stated in [`noise::grid`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GaussianMechanism {
    l2_sensitivity: f64,
    sigma: f64,
}

impl GaussianMechanism {
    /// A Gaussian mechanism with noise standard deviation `sigma` for a query of L2
    /// sensitivity `l2_sensitivity`.
    ///
    /// Both must be finite and > 0, `sigma` within the fast sampler's range [2^-960, 2^960],
    /// and σ/Δ₂ and ρ must be representable (finite, > 0).
    pub fn new(l2_sensitivity: f64, sigma: f64) -> Result<Self, PrivacyError> {
        error::positive("l2 sensitivity", l2_sensitivity)?;
        error::positive("gaussian noise std", sigma)?;
        noise::check_scale("gaussian noise std", sigma)?;
        let mechanism = GaussianMechanism {
            l2_sensitivity,
            sigma,
        };
        error::positive("noise multiplier", mechanism.noise_multiplier())?;
        error::positive("rho", mechanism.rho())?;
        Ok(mechanism)
    }

    /// The least-noise Gaussian mechanism meeting ρ-zCDP: σ = Δ₂/sqrt(2ρ), rounded up so
    /// that [`Self::rho`] never exceeds `rho`.
    pub fn from_rho(l2_sensitivity: f64, rho: f64) -> Result<Self, PrivacyError> {
        error::positive("l2 sensitivity", l2_sensitivity)?;
        error::positive("rho", rho)?;
        let sigma = scale_meeting(l2_sensitivity / (2.0 * rho).sqrt(), rho, |sigma| {
            rho_of(l2_sensitivity, sigma)
        })?;
        Self::new(l2_sensitivity, sigma)
    }

    /// Δ₂.
    pub fn l2_sensitivity(&self) -> f64 {
        self.l2_sensitivity
    }

    /// σ, the noise standard deviation.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// σ/Δ₂, rounded down.
    pub fn noise_multiplier(&self) -> f64 {
        multiplier_down(self.sigma / self.l2_sensitivity)
    }

    /// ρ = Δ₂²/(2σ²), rounded up.
    pub fn rho(&self) -> f64 {
        rho_of(self.l2_sensitivity, self.sigma)
    }

    /// Adds the noise to `values` in place.
    ///
    /// Fails, leaving `values` untouched, if a value is NaN or infinite (the error names its
    /// index) or if OpenDP fails. See the type's `# Privacy` section for which sampler runs.
    pub fn release_f64<R: NoiseSource + ?Sized>(
        &self,
        values: &mut [f64],
        rng: &mut R,
    ) -> Result<(), PrivacyError> {
        release_with(
            values,
            rng,
            self.sigma,
            noise::exact_gaussian,
            noise::add_gaussian_f64,
            F64,
        )
    }

    /// [`Self::release_f64`] for f32 data (noise added in f64, result cast to f32).
    pub fn release_f32<R: NoiseSource + ?Sized>(
        &self,
        values: &mut [f32],
        rng: &mut R,
    ) -> Result<(), PrivacyError> {
        release_with(
            values,
            rng,
            self.sigma,
            noise::exact_gaussian,
            noise::add_gaussian_f32,
            F32,
        )
    }
}

impl Mechanism for GaussianMechanism {
    fn sensitivity(&self) -> f64 {
        self.l2_sensitivity
    }

    fn noise_scale(&self) -> f64 {
        self.sigma
    }

    fn guarantee(&self) -> Guarantee {
        Guarantee::Zcdp { rho: self.rho() }
    }

    fn event(&self) -> PrivacyEvent {
        PrivacyEvent::Gaussian {
            noise_multiplier: self.noise_multiplier(),
        }
    }
}

/// ρ = Δ²/(2σ²), rounded up.
pub(super) fn rho_of(sensitivity: f64, sigma: f64) -> f64 {
    let ratio = sensitivity / sigma;
    loss_up(0.5 * ratio * ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::mechanisms::EXACT_RELEASE_MAX_LEN;
    use crate::privacy::noise::testing::{self, Expected};
    use crate::privacy::noise::{SecureRng, SimulationRng};

    #[test]
    fn constructor_rejects_invalid_parameters() {
        let name_of = |r: Result<GaussianMechanism, PrivacyError>| match r {
            Err(PrivacyError::InvalidParameter { name, .. }) => name,
            other => panic!("expected an invalid parameter, got {other:?}"),
        };
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(name_of(GaussianMechanism::new(bad, 1.0)), "l2 sensitivity");
            assert_eq!(
                name_of(GaussianMechanism::new(1.0, bad)),
                "gaussian noise std"
            );
            assert_eq!(name_of(GaussianMechanism::from_rho(1.0, bad)), "rho");
            assert_eq!(
                name_of(GaussianMechanism::from_rho(bad, 0.5)),
                "l2 sensitivity"
            );
        }
        assert_eq!(
            name_of(GaussianMechanism::new(1.0, 1e-300)),
            "gaussian noise std"
        );
        // σ/Δ₂ underflows or overflows; ρ overflows.
        assert_eq!(
            name_of(GaussianMechanism::new(1e300, 1e-200)),
            "noise multiplier"
        );
        assert_eq!(
            name_of(GaussianMechanism::new(1e-300, 1e200)),
            "noise multiplier"
        );
        assert_eq!(name_of(GaussianMechanism::new(1e100, 1e-60)), "rho");
    }

    #[test]
    fn rho_and_event_follow_the_formulas() {
        let m = GaussianMechanism::new(2.0, 4.0).unwrap();
        // ρ = 4 / 32 = 0.125, rounded up by a few ulps at most.
        assert!(m.rho() >= 0.125 && m.rho() < 0.125 * (1.0 + 1e-14));
        assert_eq!(m.guarantee(), Guarantee::Zcdp { rho: m.rho() });
        let PrivacyEvent::Gaussian { noise_multiplier } = m.event() else {
            panic!("expected a Gaussian event")
        };
        assert!(noise_multiplier <= 2.0 && noise_multiplier > 2.0 * (1.0 - 1e-14));
        assert_eq!(m.sensitivity(), 2.0);
        assert_eq!(m.noise_scale(), 4.0);
    }

    #[test]
    fn from_rho_meets_the_target_from_below() {
        for (delta2, rho) in [(1.0, 0.5), (3.0, 0.01), (0.1, 10.0), (7.0, 1e-6)] {
            let m = GaussianMechanism::from_rho(delta2, rho).unwrap();
            assert!(m.rho() <= rho, "{} > {rho}", m.rho());
            assert!(m.rho() > rho * (1.0 - 1e-13));
            let sigma = delta2 / (2.0 * rho).sqrt();
            assert!((m.sigma() - sigma).abs() < 1e-13 * sigma);
        }
    }

    #[test]
    fn fast_release_adds_noise_of_the_right_scale() {
        // 2048 values: above the exact threshold, so the seeded fast path runs.
        let m = GaussianMechanism::new(0.5, 1.5).unwrap();
        let mut rng = SimulationRng::seeded_insecure(31);
        let mut all = Vec::new();
        for _ in 0..100 {
            let mut v = vec![3.0_f64; 2048];
            m.release_f64(&mut v, &mut rng).unwrap();
            all.extend(v);
        }
        testing::check(&all, &Expected::gaussian(3.0, 1.5)).unwrap();

        let mut v = vec![-1.0_f32; 200_000];
        m.release_f32(&mut v, &mut rng).unwrap();
        let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        testing::check(&v, &Expected::gaussian(-1.0, 1.5)).unwrap();
    }

    #[test]
    fn seeded_small_releases_are_reproducible_fast_path() {
        let m = GaussianMechanism::new(1.0, 1.0).unwrap();
        let run = || {
            let mut rng = SimulationRng::seeded_insecure(5);
            let mut v = vec![0.0_f32; 10];
            m.release_f32(&mut v, &mut rng).unwrap();
            v
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn secure_small_release_uses_opendp_with_the_right_scale() {
        let m = GaussianMechanism::new(1.0, 2.0).unwrap();
        let mut rng = SecureRng::from_os().unwrap();
        let mut all = Vec::new();
        for _ in 0..10 {
            let mut v = vec![1.0_f64; EXACT_RELEASE_MAX_LEN];
            m.release_f64(&mut v, &mut rng).unwrap();
            all.extend(v);
        }
        testing::check(&all, &Expected::gaussian(1.0, 2.0)).unwrap();
        let mut v = vec![1.0_f32; 4];
        m.release_f32(&mut v, &mut rng).unwrap();
        assert!(v.iter().all(|x| *x != 1.0));
    }

    #[test]
    fn release_rejects_non_finite_data_naming_the_index() {
        let m = GaussianMechanism::new(1.0, 1.0).unwrap();
        let mut secure = SecureRng::from_os().unwrap();
        let mut seeded = SimulationRng::seeded_insecure(0);
        let mut v = vec![0.0_f64; 5000];
        v[4321] = f64::NAN;
        let err = m.release_f64(&mut v, &mut seeded).unwrap_err();
        assert!(err.to_string().contains("index 4321"), "{err}");
        assert!(v[..4321].iter().all(|x| *x == 0.0));
        let mut w = [1.0_f32, f32::NEG_INFINITY];
        let err = m.release_f32(&mut w, &mut secure).unwrap_err();
        assert!(err.to_string().contains("index 1"), "{err}");
        assert_eq!(w[0], 1.0);
    }
}
