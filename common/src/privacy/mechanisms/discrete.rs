//! Integer-valued mechanisms for counts: the discrete Laplace and the discrete Gaussian,
//! both sampled exactly by OpenDP.
//!
//! Counts stay integers (no rounding artefacts, no floating-point attack surface) and the
//! guarantees match the continuous mechanisms'. OpenDP draws its own OS-seeded randomness
//! (see [`noise::exact`]), so these mechanisms take no
//! [`NoiseSource`](crate::privacy::noise::NoiseSource)
//! and cannot be seeded. Noisy counts saturate at the i64 bounds (post-processing).

use serde::Serialize;

use super::gaussian::rho_of;
use super::laplace::epsilon_of;
use super::{Guarantee, Mechanism, multiplier_down, scale_meeting};
use crate::privacy::error::{self, PrivacyError};
use crate::privacy::event::PrivacyEvent;
use crate::privacy::noise;

/// Adds discrete Laplace (two-sided geometric) noise, P(k) ∝ exp(−|k|/b), to integer counts.
///
/// # Privacy
///
/// - **Neighbouring relation:** add/remove one privacy unit.
/// - **Sensitivity:** Δ₁ bounds ‖f(D) − f(D′)‖₁ for the integer-valued query; for counts
///   where a unit contributes at most k records, Δ₁ = k. The mechanism cannot verify it.
/// - **Guarantee:** pure ε-DP with ε = Δ₁/b (Ghosh, Roughgarden & Sundararajan 2009,
///   "Universally utility-maximizing privacy mechanisms", arXiv 0811.2841; Canonne, Kamath &
///   Steinke 2020, arXiv 2004.00010, §5.2). The accountants compose it as
///   [`PrivacyEvent::PureDp`] with that ε, valid for every ε-DP mechanism (and tight for
///   Δ₁ = 1, where the privacy loss takes only the values ±ε).
/// - **Sampling:** OpenDP's exact sampler.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DiscreteLaplace {
    l1_sensitivity: f64,
    scale: f64,
}

impl DiscreteLaplace {
    /// A discrete Laplace mechanism with scale `scale` (b) for integer queries of L1
    /// sensitivity `l1_sensitivity`; both finite and > 0, and Δ₁/b finite and > 0.
    pub fn new(l1_sensitivity: f64, scale: f64) -> Result<Self, PrivacyError> {
        error::positive("l1 sensitivity", l1_sensitivity)?;
        error::positive("discrete laplace scale", scale)?;
        let mechanism = DiscreteLaplace {
            l1_sensitivity,
            scale,
        };
        error::positive("epsilon", mechanism.epsilon())?;
        Ok(mechanism)
    }

    /// The least-noise discrete Laplace meeting ε-DP: b = Δ₁/ε, rounded up.
    pub fn from_epsilon(l1_sensitivity: f64, epsilon: f64) -> Result<Self, PrivacyError> {
        error::positive("l1 sensitivity", l1_sensitivity)?;
        error::positive("epsilon", epsilon)?;
        let scale = scale_meeting(l1_sensitivity / epsilon, epsilon, |b| {
            epsilon_of(l1_sensitivity, b)
        })?;
        Self::new(l1_sensitivity, scale)
    }

    /// ε = Δ₁/b, rounded up.
    pub fn epsilon(&self) -> f64 {
        epsilon_of(self.l1_sensitivity, self.scale)
    }

    /// b.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Adds the noise to `counts` in place (on OpenDP failure they are left untouched).
    pub fn release(&self, counts: &mut [i64]) -> Result<(), PrivacyError> {
        let noised = noise::discrete_laplace(counts, self.scale)?;
        counts.copy_from_slice(&noised);
        Ok(())
    }
}

impl Mechanism for DiscreteLaplace {
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
        PrivacyEvent::PureDp {
            epsilon: self.epsilon(),
        }
    }
}

/// Adds discrete Gaussian noise, P(k) ∝ exp(−k²/(2σ²)), to integer counts.
///
/// # Privacy
///
/// - **Neighbouring relation:** add/remove one privacy unit.
/// - **Sensitivity:** Δ₂ bounds ‖f(D) − f(D′)‖₂ for the integer-valued query (e.g. √k for
///   a histogram where a unit touches at most k cells by at most 1). Not verifiable here.
/// - **Guarantee:** ρ-zCDP with ρ = Δ₂²/(2σ²), where σ is the scale parameter (Canonne,
///   Kamath & Steinke 2020, arXiv 2004.00010, Thm 4 and Thm 14 for vectors). Its Rényi
///   divergences are no larger than the continuous Gaussian's, so the accountants compose
///   it as [`PrivacyEvent::Gaussian`] with noise multiplier σ/Δ₂ (safe).
/// - **Sampling:** OpenDP's exact sampler. (σ is the scale parameter; the variance is
///   slightly below σ² for small σ, which only helps utility estimates err on the safe side.)
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DiscreteGaussian {
    l2_sensitivity: f64,
    sigma: f64,
}

impl DiscreteGaussian {
    /// A discrete Gaussian mechanism with scale `sigma` for integer queries of L2
    /// sensitivity `l2_sensitivity`; both finite and > 0, σ/Δ₂ and ρ finite and > 0.
    pub fn new(l2_sensitivity: f64, sigma: f64) -> Result<Self, PrivacyError> {
        error::positive("l2 sensitivity", l2_sensitivity)?;
        error::positive("discrete gaussian scale", sigma)?;
        let mechanism = DiscreteGaussian {
            l2_sensitivity,
            sigma,
        };
        error::positive("noise multiplier", mechanism.noise_multiplier())?;
        error::positive("rho", mechanism.rho())?;
        Ok(mechanism)
    }

    /// The least-noise discrete Gaussian meeting ρ-zCDP: σ = Δ₂/sqrt(2ρ), rounded up.
    pub fn from_rho(l2_sensitivity: f64, rho: f64) -> Result<Self, PrivacyError> {
        error::positive("l2 sensitivity", l2_sensitivity)?;
        error::positive("rho", rho)?;
        let sigma = scale_meeting(l2_sensitivity / (2.0 * rho).sqrt(), rho, |sigma| {
            rho_of(l2_sensitivity, sigma)
        })?;
        Self::new(l2_sensitivity, sigma)
    }

    /// ρ = Δ₂²/(2σ²), rounded up.
    pub fn rho(&self) -> f64 {
        rho_of(self.l2_sensitivity, self.sigma)
    }

    /// σ/Δ₂, rounded down.
    pub fn noise_multiplier(&self) -> f64 {
        multiplier_down(self.sigma / self.l2_sensitivity)
    }

    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Adds the noise to `counts` in place (on OpenDP failure they are left untouched).
    pub fn release(&self, counts: &mut [i64]) -> Result<(), PrivacyError> {
        let noised = noise::discrete_gaussian(counts, self.sigma)?;
        counts.copy_from_slice(&noised);
        Ok(())
    }
}

impl Mechanism for DiscreteGaussian {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::testing::{self, Expected};

    fn name_of<T: std::fmt::Debug>(r: Result<T, PrivacyError>) -> &'static str {
        match r {
            Err(PrivacyError::InvalidParameter { name, .. }) => name,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn constructors_reject_invalid_parameters() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(name_of(DiscreteLaplace::new(bad, 1.0)), "l1 sensitivity");
            assert_eq!(
                name_of(DiscreteLaplace::new(1.0, bad)),
                "discrete laplace scale"
            );
            assert_eq!(name_of(DiscreteLaplace::from_epsilon(1.0, bad)), "epsilon");
            assert_eq!(name_of(DiscreteGaussian::new(bad, 1.0)), "l2 sensitivity");
            assert_eq!(
                name_of(DiscreteGaussian::new(1.0, bad)),
                "discrete gaussian scale"
            );
            assert_eq!(name_of(DiscreteGaussian::from_rho(1.0, bad)), "rho");
        }
        assert_eq!(name_of(DiscreteLaplace::new(1e300, 1e-300)), "epsilon");
        assert_eq!(name_of(DiscreteGaussian::new(1e100, 1e-60)), "rho");
    }

    #[test]
    fn guarantees_and_events() {
        let dl = DiscreteLaplace::from_epsilon(1.0, 0.5).unwrap();
        assert!(dl.epsilon() <= 0.5 && dl.epsilon() > 0.5 * (1.0 - 1e-13));
        assert!((dl.scale() - 2.0).abs() < 1e-12);
        assert_eq!(
            dl.event(),
            PrivacyEvent::PureDp {
                epsilon: dl.epsilon()
            }
        );
        assert_eq!(
            dl.guarantee(),
            Guarantee::PureDp {
                epsilon: dl.epsilon()
            }
        );

        let dg = DiscreteGaussian::new(2.0_f64.sqrt(), 2.0).unwrap();
        // ρ = 2 / 8 = 0.25 (Canonne, Kamath & Steinke: Δ²/(2σ²)).
        assert!(dg.rho() >= 0.25 && dg.rho() < 0.25 * (1.0 + 1e-14));
        let PrivacyEvent::Gaussian { noise_multiplier } = dg.event() else {
            panic!("expected a Gaussian event")
        };
        assert!(noise_multiplier <= 2.0 / 2.0_f64.sqrt());
        assert!(noise_multiplier > 2.0_f64.sqrt() * (1.0 - 1e-14));
        let from_rho = DiscreteGaussian::from_rho(1.0, 0.125).unwrap();
        assert!(from_rho.rho() <= 0.125 && (from_rho.sigma() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn releases_add_noise_of_the_right_scale() {
        let dl = DiscreteLaplace::new(1.0, 1.5).unwrap();
        let mut counts = vec![40_i64; 50_000];
        dl.release(&mut counts).unwrap();
        let samples: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let pmf = |k: i64| (-(k.abs() as f64) / 1.5).exp();
        testing::check(&samples, &Expected::discrete(40.0, pmf, 4.5, 300)).unwrap();

        let dg = DiscreteGaussian::new(1.0, 4.0).unwrap();
        let mut counts = vec![0_i64; 50_000];
        dg.release(&mut counts).unwrap();
        let samples: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let pmf = |k: i64| (-((k * k) as f64) / 32.0).exp();
        testing::check(&samples, &Expected::discrete(0.0, pmf, 12.0, 300)).unwrap();
    }
}
