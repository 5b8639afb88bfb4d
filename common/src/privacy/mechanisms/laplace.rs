//! The Laplace mechanism on real values: pure ε-DP, for counts and bounded sums released as
//! reals.

use serde::Serialize;

use super::{
    F32, F64, Guarantee, Mechanism, loss_up, multiplier_down, release_with, scale_meeting,
};
use crate::privacy::error::{self, PrivacyError};
use crate::privacy::event::PrivacyEvent;
use crate::privacy::noise::{self, NoiseSource};

/// Adds Laplace(b) noise (density ∝ exp(−|x|/b)) to each coordinate of a query of L1
/// sensitivity Δ₁.
///
/// # Privacy
///
/// - **Neighbouring relation:** add/remove one privacy unit (all of its records).
/// - **Sensitivity:** Δ₁ bounds ‖f(D) − f(D′)‖₁ over neighbours. For a count where each
///   unit contributes at most k records, Δ₁ = k; for a sum of values clamped to [L, U]
///   with at most k records per unit, Δ₁ = k · max(|L|, |U|) (removing a unit removes at
///   most k terms, each of magnitude at most max(|L|, |U|)); for a vector, the sum of the
///   per-coordinate bounds. The mechanism cannot verify Δ₁.
/// - **Guarantee:** pure ε-DP with ε = Δ₁/b (Dwork, McSherry, Nissim & Smith 2006,
///   "Calibrating noise to sensitivity", TCC, doi:10.1007/11681878_14; the standard
///   statement is Dwork & Roth 2014, Thm 3.6). The accountants receive the tighter
///   [`PrivacyEvent::Laplace`] with noise multiplier b/Δ₁, whose privacy loss distribution
///   is exact.
/// - **Sampling:** releases of at most [`EXACT_RELEASE_MAX_LEN`] values with a secure
///   source use OpenDP's exact sampler (discrete Laplace on the float lattice, Canonne,
///   Kamath & Steinke 2020, arXiv 2004.00010, §5.2); longer ones use the fast sampler with
///   the grid mitigation, whose residual risk is stated in [`noise::grid`]. Integer counts
///   that should stay integers use [`super::DiscreteLaplace`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LaplaceMechanism {
    l1_sensitivity: f64,
    scale: f64,
}

impl LaplaceMechanism {
    /// A Laplace mechanism with noise scale `scale` (b) for a query of L1 sensitivity
    /// `l1_sensitivity`.
    ///
    /// Both must be finite and > 0, `scale` within the fast sampler's range [2^-960, 2^960],
    /// and ε = Δ₁/b must be finite and > 0.
    pub fn new(l1_sensitivity: f64, scale: f64) -> Result<Self, PrivacyError> {
        error::positive("l1 sensitivity", l1_sensitivity)?;
        error::positive("laplace noise scale", scale)?;
        noise::check_scale("laplace noise scale", scale)?;
        let mechanism = LaplaceMechanism {
            l1_sensitivity,
            scale,
        };
        error::positive("noise multiplier", mechanism.noise_multiplier())?;
        error::positive("epsilon", mechanism.epsilon())?;
        Ok(mechanism)
    }

    /// The least-noise Laplace mechanism meeting ε-DP: b = Δ₁/ε, rounded up so that
    /// [`Self::epsilon`] never exceeds `epsilon`.
    pub fn from_epsilon(l1_sensitivity: f64, epsilon: f64) -> Result<Self, PrivacyError> {
        error::positive("l1 sensitivity", l1_sensitivity)?;
        error::positive("epsilon", epsilon)?;
        let scale = scale_meeting(l1_sensitivity / epsilon, epsilon, |b| {
            epsilon_of(l1_sensitivity, b)
        })?;
        Self::new(l1_sensitivity, scale)
    }

    /// Δ₁.
    pub fn l1_sensitivity(&self) -> f64 {
        self.l1_sensitivity
    }

    /// b, the noise scale (standard deviation b·√2).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// b/Δ₁, rounded down.
    pub fn noise_multiplier(&self) -> f64 {
        multiplier_down(self.scale / self.l1_sensitivity)
    }

    /// ε = Δ₁/b, rounded up.
    pub fn epsilon(&self) -> f64 {
        epsilon_of(self.l1_sensitivity, self.scale)
    }

    /// Adds the noise to `values` in place.
    ///
    /// Fails, leaving `values` untouched, if a value is NaN or infinite (the error names its
    /// index) or if OpenDP fails.
    pub fn release_f64<R: NoiseSource + ?Sized>(
        &self,
        values: &mut [f64],
        rng: &mut R,
    ) -> Result<(), PrivacyError> {
        release_with(
            values,
            rng,
            self.scale,
            noise::exact_laplace,
            noise::add_laplace_f64,
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
            self.scale,
            noise::exact_laplace,
            noise::add_laplace_f32,
            F32,
        )
    }
}

impl Mechanism for LaplaceMechanism {
    fn sensitivity(&self) -> f64 {
        self.l1_sensitivity
    }

    fn noise_scale(&self) -> f64 {
        self.scale
    }

    fn guarantee(&self) -> Guarantee {
        Guarantee::PureDp {
            epsilon: self.epsilon(),
        }
    }

    fn event(&self) -> PrivacyEvent {
        PrivacyEvent::Laplace {
            noise_multiplier: self.noise_multiplier(),
        }
    }
}

/// ε = Δ/b, rounded up.
pub(super) fn epsilon_of(sensitivity: f64, scale: f64) -> f64 {
    loss_up(sensitivity / scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::testing::{self, Expected};
    use crate::privacy::noise::{SecureRng, SimulationRng};

    fn name_of(r: Result<LaplaceMechanism, PrivacyError>) -> &'static str {
        match r {
            Err(PrivacyError::InvalidParameter { name, .. }) => name,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn constructors_reject_invalid_parameters() {
        for bad in [0.0, -0.5, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(name_of(LaplaceMechanism::new(bad, 1.0)), "l1 sensitivity");
            assert_eq!(
                name_of(LaplaceMechanism::new(1.0, bad)),
                "laplace noise scale"
            );
            assert_eq!(name_of(LaplaceMechanism::from_epsilon(1.0, bad)), "epsilon");
            assert_eq!(
                name_of(LaplaceMechanism::from_epsilon(bad, 1.0)),
                "l1 sensitivity"
            );
        }
        assert_eq!(
            name_of(LaplaceMechanism::new(1.0, 1e300)),
            "laplace noise scale"
        );
        assert_eq!(
            name_of(LaplaceMechanism::new(1e-300, 1e200)),
            "noise multiplier"
        );
    }

    #[test]
    fn epsilon_guarantee_and_event_follow_the_formulas() {
        let m = LaplaceMechanism::new(3.0, 1.5).unwrap();
        assert!(m.epsilon() >= 2.0 && m.epsilon() < 2.0 * (1.0 + 1e-14));
        assert_eq!(
            m.guarantee(),
            Guarantee::PureDp {
                epsilon: m.epsilon()
            }
        );
        let PrivacyEvent::Laplace { noise_multiplier } = m.event() else {
            panic!("expected a Laplace event")
        };
        assert!(noise_multiplier <= 0.5 && noise_multiplier > 0.5 * (1.0 - 1e-14));
        assert_eq!((m.sensitivity(), m.noise_scale()), (3.0, 1.5));
    }

    #[test]
    fn from_epsilon_meets_the_target_from_below() {
        for (delta1, eps) in [(1.0, 1.0), (5.0, 0.1), (0.01, 3.0)] {
            let m = LaplaceMechanism::from_epsilon(delta1, eps).unwrap();
            assert!(m.epsilon() <= eps);
            assert!(m.epsilon() > eps * (1.0 - 1e-13));
            assert!((m.scale() - delta1 / eps).abs() < 1e-13 * m.scale());
        }
    }

    #[test]
    fn release_adds_noise_of_the_right_scale() {
        let m = LaplaceMechanism::from_epsilon(2.0, 1.0).unwrap(); // b = 2
        let mut rng = SimulationRng::seeded_insecure(13);
        let mut v = vec![100.0_f64; 300_000];
        m.release_f64(&mut v, &mut rng).unwrap();
        testing::check(&v, &Expected::laplace(100.0, m.scale())).unwrap();

        let mut secure = SecureRng::from_os().unwrap();
        let mut all = Vec::new();
        for _ in 0..10 {
            let mut w = vec![0.0_f32; 1000];
            m.release_f32(&mut w, &mut secure).unwrap();
            all.extend(w.iter().map(|&x| x as f64));
        }
        testing::check(&all, &Expected::laplace(0.0, m.scale())).unwrap();
    }

    #[test]
    fn release_rejects_non_finite_data_naming_the_index() {
        let m = LaplaceMechanism::new(1.0, 1.0).unwrap();
        let mut rng = SimulationRng::seeded_insecure(0);
        let err = m
            .release_f32(&mut [0.0, 1.0, f32::NAN], &mut rng)
            .unwrap_err();
        assert!(err.to_string().contains("index 2"), "{err}");
    }
}
